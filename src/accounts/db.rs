//! The queries behind accounts, sessions, API tokens, the audit log, dispositions and the
//! knowledge base. Statements are the same on SQLite and Postgres (`$n` placeholders) except
//! full-text search, which each back end does its own way.

use super::people::{AuditEntry, DispositionRecord};
use super::{Account, Lang, Role, Tenants};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

const ACCOUNT_COLUMNS: &str = "username, display_name, role, tenants, operator_ext, language, \
                               CASE WHEN disabled THEN 1 ELSE 0 END";

fn account(row: &AnyRow) -> Result<Account, sqlx::Error> {
    let role: String = row.try_get(2)?;
    let tenants: String = row.try_get(3)?;
    let language: String = row.try_get(5)?;
    let disabled: i64 = row.try_get(6)?;
    Ok(Account {
        username: row.try_get(0)?,
        display_name: row.try_get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Operator),
        tenants: Tenants::parse(&tenants),
        operator_ext: row.try_get(4)?,
        language: Lang::parse(&language).unwrap_or_default(),
        disabled: disabled != 0,
    })
}

/// A new account.
#[derive(Clone, Debug)]
pub struct NewAccount {
    /// The account.
    pub account: Account,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// Adds an account; `Ok(false)` when the username (or the extension) is taken.
pub async fn add(pool: &AnyPool, new: &NewAccount, now_ms: i64) -> Result<bool, sqlx::Error> {
    let a = &new.account;
    let r = sqlx::query(
        "INSERT INTO accounts (username, display_name, role, tenants, operator_ext, language, \
         password_hash, disabled, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) ON CONFLICT DO NOTHING",
    )
    .bind(a.username.clone())
    .bind(a.display_name.clone())
    .bind(a.role.as_str())
    .bind(a.tenants.to_stored())
    .bind(a.operator_ext.clone())
    .bind(a.language.as_str())
    .bind(new.password_hash.clone())
    .bind(a.disabled)
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Sets a password; `false` when there is no such account.
pub async fn set_password(
    pool: &AnyPool,
    username: &str,
    hash: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE accounts SET password_hash = $2, updated_at_ms = $3 WHERE username = $1",
    )
    .bind(username.to_owned())
    .bind(hash.to_owned())
    .bind(now_ms)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Disables or enables an account; disabling also ends its sessions. `false` when there is
/// no such account.
pub async fn set_disabled(
    pool: &AnyPool,
    username: &str,
    disabled: bool,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let r =
        sqlx::query("UPDATE accounts SET disabled = $2, updated_at_ms = $3 WHERE username = $1")
            .bind(username.to_owned())
            .bind(disabled)
            .bind(now_ms)
            .execute(pool)
            .await?;
    if disabled {
        sqlx::query("DELETE FROM web_sessions WHERE username = $1")
            .bind(username.to_owned())
            .execute(pool)
            .await?;
    }
    Ok(r.rows_affected() == 1)
}

/// Sets the language of an account's pages.
pub async fn set_language(pool: &AnyPool, username: &str, lang: Lang) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE accounts SET language = $2 WHERE username = $1")
        .bind(username.to_owned())
        .bind(lang.as_str())
        .execute(pool)
        .await
        .map(|_| ())
}

/// The account and its password hash, for a login.
pub async fn for_login(
    pool: &AnyPool,
    username: &str,
) -> Result<Option<(Account, String)>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE username = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(username.to_owned())
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((account(&r)?, r.try_get(7)?))).transpose()
}

/// One account.
pub async fn get(pool: &AnyPool, username: &str) -> Result<Option<Account>, sqlx::Error> {
    Ok(for_login(pool, username).await?.map(|(a, _)| a))
}

/// Every account, by username.
pub async fn list(pool: &AnyPool) -> Result<Vec<Account>, sqlx::Error> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    rows.iter().map(account).collect()
}

/// Number of accounts.
pub async fn count(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) FROM accounts")
        .fetch_one(pool)
        .await?
        .try_get(0)
}

// ----- sessions ---------------------------------------------------------------------------

/// A new browser session.
pub async fn create_session(
    pool: &AnyPool,
    id_hash: &str,
    username: &str,
    csrf: &str,
    source: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, username, csrf, source, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id_hash.to_owned())
    .bind(username.to_owned())
    .bind(csrf.to_owned())
    .bind(source.to_owned())
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(pool)
    .await
    .map(|_| ())
}

/// The live session with this cookie hash: its account (enabled), CSRF token and expiry.
pub async fn session(
    pool: &AnyPool,
    id_hash: &str,
    now_ms: i64,
) -> Result<Option<(Account, String, i64)>, sqlx::Error> {
    let cols = ACCOUNT_COLUMNS.replace("username", "a.username");
    let sql = format!(
        "SELECT {cols}, s.csrf, s.expires_at_ms FROM web_sessions s \
         JOIN accounts a ON a.username = s.username \
         WHERE s.id_hash = $1 AND s.expires_at_ms > $2 AND NOT a.disabled"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id_hash.to_owned())
        .bind(now_ms)
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((account(&r)?, r.try_get(7)?, r.try_get(8)?)))
        .transpose()
}

/// Ends a session.
pub async fn delete_session(pool: &AnyPool, id_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
        .bind(id_hash.to_owned())
        .execute(pool)
        .await
        .map(|_| ())
}

/// Removes expired sessions; returns how many.
pub async fn purge_sessions(pool: &AnyPool, now_ms: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM web_sessions WHERE expires_at_ms <= $1")
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
}

// ----- API tokens -------------------------------------------------------------------------

/// A personal API token as lists show it (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Public id.
    pub id: String,
    /// Owner.
    pub username: String,
    /// What it is for.
    pub label: String,
    /// Created (Unix ms).
    pub created_at_ms: i64,
    /// Revoked (Unix ms), if.
    pub revoked_at_ms: Option<i64>,
}

/// Stores a new token (its hash).
pub async fn create_token(
    pool: &AnyPool,
    id: &str,
    token_hash: &str,
    username: &str,
    label: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_tokens (id, token_hash, username, label, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.to_owned())
    .bind(token_hash.to_owned())
    .bind(username.to_owned())
    .bind(label.to_owned())
    .bind(now_ms)
    .execute(pool)
    .await
    .map(|_| ())
}

/// The enabled account behind a live token, and the token's id.
pub async fn token(
    pool: &AnyPool,
    token_hash: &str,
) -> Result<Option<(Account, String)>, sqlx::Error> {
    let cols = ACCOUNT_COLUMNS.replace("username", "a.username");
    let sql = format!(
        "SELECT {cols}, t.id FROM api_tokens t JOIN accounts a ON a.username = t.username \
         WHERE t.token_hash = $1 AND t.revoked_at_ms IS NULL AND NOT a.disabled"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(token_hash.to_owned())
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((account(&r)?, r.try_get(7)?))).transpose()
}

/// Tokens of one account, or of everyone.
pub async fn tokens(pool: &AnyPool, username: Option<&str>) -> Result<Vec<TokenInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, username, label, created_at_ms, revoked_at_ms FROM api_tokens \
         WHERE ($1 IS NULL OR username = $1) ORDER BY created_at_ms DESC",
    )
    .bind(username.map(str::to_owned))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                id: r.try_get(0)?,
                username: r.try_get(1)?,
                label: r.try_get(2)?,
                created_at_ms: r.try_get(3)?,
                revoked_at_ms: r.try_get(4)?,
            })
        })
        .collect()
}

/// Revokes a token; `false` when it was already revoked (or does not exist).
pub async fn revoke_token(pool: &AnyPool, id: &str, now_ms: i64) -> Result<bool, sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL")
        .bind(id.to_owned())
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// The owner of a token id.
pub async fn token_owner(pool: &AnyPool, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT username FROM api_tokens WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(pool)
        .await?
        .map(|r| r.try_get(0))
        .transpose()
}

// ----- SIP identities of listening accounts ----------------------------------------------

/// The SIP identity of an account that may listen to live calls by feature code from a
/// softphone (officers, supervisor accounts; `navbat user sip`), with the account's role,
/// tenants and state as they are now.
#[derive(Clone, PartialEq, Eq)]
pub struct SipIdentity {
    /// The account.
    pub username: String,
    /// The SIP user name its softphone authenticates as.
    pub ext: String,
    /// The account's role.
    pub role: Role,
    /// The account's tenants.
    pub tenants: Tenants,
    /// Whether the account is disabled (its identity then authenticates nothing).
    pub disabled: bool,
    /// The realm the HA1s were made for.
    pub realm: String,
    /// `md5(ext:realm:password)`, hex.
    pub ha1_md5: String,
    /// `sha256(ext:realm:password)`, hex (RFC 7616).
    pub ha1_sha256: String,
}

impl std::fmt::Debug for SipIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SipIdentity({} {} {})",
            self.username, self.ext, self.role
        )
    }
}

/// The account that holds extension `ext`, as its operator extension or its SIP identity.
pub async fn ext_owner(pool: &AnyPool, ext: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT username FROM accounts WHERE operator_ext = $1 \
         UNION SELECT username FROM account_sip WHERE ext = $1",
    )
    .bind(ext.to_owned())
    .fetch_optional(pool)
    .await?;
    row.map(|r| r.try_get(0)).transpose()
}

/// Gives account `username` the SIP identity `ext` with these HA1s (replacing its earlier
/// one). The caller checks that nobody else holds `ext` ([`ext_owner`]); the unique index
/// refuses it anyway.
pub async fn set_sip(
    pool: &AnyPool,
    username: &str,
    ext: &str,
    realm: &str,
    ha1_md5: &str,
    ha1_sha256: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account_sip (username, ext, realm, ha1_md5, ha1_sha256, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO UPDATE SET \
         ext = excluded.ext, realm = excluded.realm, ha1_md5 = excluded.ha1_md5, \
         ha1_sha256 = excluded.ha1_sha256, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(username.to_owned())
    .bind(ext.to_owned())
    .bind(realm.to_owned())
    .bind(ha1_md5.to_owned())
    .bind(ha1_sha256.to_owned())
    .bind(now_ms)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Removes account `username`'s SIP identity; `false` when it had none.
pub async fn remove_sip(pool: &AnyPool, username: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM account_sip WHERE username = $1")
        .bind(username.to_owned())
        .execute(pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Every SIP identity with its account, by extension.
pub async fn sip_identities(pool: &AnyPool) -> Result<Vec<SipIdentity>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT s.username, s.ext, a.role, a.tenants, \
         CASE WHEN a.disabled THEN 1 ELSE 0 END, s.realm, s.ha1_md5, s.ha1_sha256 \
         FROM account_sip s JOIN accounts a ON a.username = s.username ORDER BY s.ext",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let role: String = r.try_get(2)?;
            let tenants: String = r.try_get(3)?;
            let disabled: i64 = r.try_get(4)?;
            Ok(SipIdentity {
                username: r.try_get(0)?,
                ext: r.try_get(1)?,
                role: Role::parse(&role).unwrap_or(Role::Operator),
                tenants: Tenants::parse(&tenants),
                disabled: disabled != 0,
                realm: r.try_get(5)?,
                ha1_md5: r.try_get(6)?,
                ha1_sha256: r.try_get(7)?,
            })
        })
        .collect()
}

// ----- audit log --------------------------------------------------------------------------

/// One audit row as the pages and the API show it: when, and the entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditView {
    /// When (Unix ms).
    pub at_ms: i64,
    /// Who did what, to what, from where.
    #[serde(flatten)]
    pub entry: AuditEntry,
}

/// The newest `limit` audit rows before `before_ms`, of these tenants (`None`: all, with the
/// rows of no tenant too).
pub async fn audit(
    pool: &AnyPool,
    tenants: Option<&[String]>,
    before_ms: i64,
    limit: i64,
) -> Result<Vec<AuditView>, sqlx::Error> {
    let rows =
        match tenants {
            None => sqlx::query(
                "SELECT at_ms, actor, role, tenant, action, target, source, detail FROM audit_log \
                 WHERE at_ms < $1 ORDER BY at_ms DESC LIMIT $2",
            )
            .bind(before_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?,
            Some(ids) => {
                // Tenant ids are checked names from the config; still bound, one placeholder each.
                let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
                let sql = format!(
                "SELECT at_ms, actor, role, tenant, action, target, source, detail FROM audit_log \
                 WHERE at_ms < $1 AND tenant IN ({}) ORDER BY at_ms DESC LIMIT $2",
                if marks.is_empty() {
                    "NULL".to_owned()
                } else {
                    marks.join(", ")
                }
            );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(before_ms)
                    .bind(limit);
                for id in ids {
                    q = q.bind(id.clone());
                }
                q.fetch_all(pool).await?
            }
        };
    rows.iter()
        .map(|r| {
            Ok(AuditView {
                at_ms: r.try_get(0)?,
                entry: AuditEntry {
                    actor: r.try_get(1)?,
                    role: r.try_get(2)?,
                    tenant: r.try_get(3)?,
                    action: r.try_get(4)?,
                    target: r.try_get(5)?,
                    source: r.try_get(6)?,
                    detail: r.try_get(7)?,
                },
            })
        })
        .collect()
}

/// Writes an audit row directly (changes from the shell).
pub async fn audit_direct(
    pool: &AnyPool,
    entry: &AuditEntry,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let uid = format!("shell:{now_ms}:{}", &super::new_secret()[..12]);
    super::people::insert_direct(pool, &uid, now_ms, entry).await
}

// ----- dispositions -----------------------------------------------------------------------

const DISPOSITION_COLUMNS: &str = "call_uid, tenant, operator, topic_code, category, outcome, \
     notes, caller_name, organisation, stir, revision, saved_by, at_ms";

/// A disposition row with the caller's details opened ([`crate::pii`]); without keys, or
/// with keys that do not open them, a decode error naming the fix.
fn disposition(
    r: &AnyRow,
    pii: Option<&crate::pii::Pii>,
) -> Result<DispositionRecord, sqlx::Error> {
    use crate::pii::{field, open_opt};
    let open = |i: usize, f: &'static str| -> Result<Option<String>, sqlx::Error> {
        open_opt(pii, f, r.try_get(i)?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    Ok(DispositionRecord {
        call_uid: r.try_get(0)?,
        tenant: r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
        operator: r.try_get(2)?,
        topic: r.try_get(3)?,
        category: r.try_get(4)?,
        outcome: r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
        notes: r.try_get::<Option<String>, _>(6)?.unwrap_or_default(),
        caller_name: open(7, field::CALLER_NAME)?,
        organisation: open(8, field::ORGANISATION)?,
        stir: open(9, field::STIR)?,
        revision: r.try_get(10)?,
        saved_by: r.try_get::<Option<String>, _>(11)?.unwrap_or_default(),
        at_ms: r.try_get(12)?,
    })
}

/// The disposition of these calls (those that have one).
pub async fn dispositions(
    pool: &AnyPool,
    pii: Option<&crate::pii::Pii>,
    call_uids: &[String],
) -> Result<Vec<DispositionRecord>, sqlx::Error> {
    if call_uids.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (0..call_uids.len())
        .map(|i| format!("${}", i + 1))
        .collect();
    let sql = format!(
        "SELECT {DISPOSITION_COLUMNS} FROM dispositions WHERE call_uid IN ({})",
        marks.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for c in call_uids {
        q = q.bind(c.clone());
    }
    q.fetch_all(pool)
        .await?
        .iter()
        .map(|r| disposition(r, pii))
        .collect()
}

/// An operator's figures for a day: calls answered, talk time, dispositions saved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    /// Calls they answered.
    pub answered: i64,
    /// Their talk time, ms.
    pub talk_ms: i64,
    /// Dispositions they saved.
    pub dispositions: i64,
    /// Of which resolved.
    pub resolved: i64,
}

/// `operator`'s figures since `from_ms`.
pub async fn day_figures(
    pool: &AnyPool,
    operator: &str,
    from_ms: i64,
) -> Result<DayFigures, sqlx::Error> {
    let calls = sqlx::query(
        "SELECT COUNT(*), COALESCE(SUM(talk_ms), 0) FROM call_records \
         WHERE operator = $1 AND arrived_at_ms >= $2 AND outcome = 'answered'",
    )
    .bind(operator.to_owned())
    .bind(from_ms)
    .fetch_one(pool)
    .await?;
    let disp = sqlx::query(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN outcome = 'resolved' THEN 1 ELSE 0 END), 0) \
         FROM dispositions WHERE operator = $1 AND at_ms >= $2",
    )
    .bind(operator.to_owned())
    .bind(from_ms)
    .fetch_one(pool)
    .await?;
    Ok(DayFigures {
        answered: calls.try_get(0)?,
        talk_ms: calls.try_get(1)?,
        dispositions: disp.try_get(0)?,
        resolved: disp.try_get(1)?,
    })
}

// ----- knowledge base ---------------------------------------------------------------------

/// A knowledge-base article (D2, D3): an FAQ answer or a call script, in both languages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Article {
    /// Id (`kb-<hex>`).
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// The IVR topic it answers (`None`: any).
    pub topic: Option<String>,
    /// `faq` or `script`.
    pub kind: String,
    /// Title in Uzbek.
    pub title_uz: String,
    /// Title in Russian.
    pub title_ru: String,
    /// Text in Uzbek.
    pub body_uz: String,
    /// Text in Russian.
    pub body_ru: String,
    /// Revision number (1 = first).
    pub revision: i64,
    /// Who saved this revision.
    pub updated_by: String,
    /// When (Unix ms).
    pub updated_at_ms: i64,
}

impl Article {
    /// Title in `lang`.
    pub fn title(&self, lang: Lang) -> &str {
        match lang {
            Lang::Uz => &self.title_uz,
            Lang::Ru => &self.title_ru,
        }
    }

    /// Text in `lang`.
    pub fn body(&self, lang: Lang) -> &str {
        match lang {
            Lang::Uz => &self.body_uz,
            Lang::Ru => &self.body_ru,
        }
    }
}

const ARTICLE_COLUMNS: &str = "id, tenant, topic, kind, title_uz, title_ru, body_uz, body_ru, \
                               revision, updated_by, updated_at_ms";

fn article(r: &AnyRow) -> Result<Article, sqlx::Error> {
    Ok(Article {
        id: r.try_get(0)?,
        tenant: r.try_get(1)?,
        topic: r.try_get(2)?,
        kind: r.try_get(3)?,
        title_uz: r.try_get(4)?,
        title_ru: r.try_get(5)?,
        body_uz: r.try_get(6)?,
        body_ru: r.try_get(7)?,
        revision: r.try_get(8)?,
        updated_by: r.try_get(9)?,
        updated_at_ms: r.try_get(10)?,
    })
}

/// Saves an article: a new one (revision 1) or a new revision of an existing one, keeping
/// every revision, and the search index in step. Returns the revision written; `None` when
/// `expected_revision` is not the current one (someone else saved in between).
pub async fn save_article(
    pool: &AnyPool,
    postgres: bool,
    a: &Article,
    expected_revision: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let current: Option<i64> = sqlx::query("SELECT revision FROM kb_articles WHERE id = $1")
        .bind(a.id.clone())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    if current.unwrap_or(0) != expected_revision {
        return Ok(None);
    }
    let revision = expected_revision + 1;
    let sql = format!(
        "INSERT INTO kb_articles ({ARTICLE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (id) DO UPDATE SET topic = excluded.topic, kind = excluded.kind, \
         title_uz = excluded.title_uz, title_ru = excluded.title_ru, body_uz = excluded.body_uz, \
         body_ru = excluded.body_ru, revision = excluded.revision, \
         updated_by = excluded.updated_by, updated_at_ms = excluded.updated_at_ms"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(a.id.clone())
        .bind(a.tenant.clone())
        .bind(a.topic.clone())
        .bind(a.kind.clone())
        .bind(a.title_uz.clone())
        .bind(a.title_ru.clone())
        .bind(a.body_uz.clone())
        .bind(a.body_ru.clone())
        .bind(revision)
        .bind(a.updated_by.clone())
        .bind(a.updated_at_ms)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO kb_revisions (article_id, revision, topic, kind, title_uz, title_ru, \
         body_uz, body_ru, updated_by, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(a.id.clone())
    .bind(revision)
    .bind(a.topic.clone())
    .bind(a.kind.clone())
    .bind(a.title_uz.clone())
    .bind(a.title_ru.clone())
    .bind(a.body_uz.clone())
    .bind(a.body_ru.clone())
    .bind(a.updated_by.clone())
    .bind(a.updated_at_ms)
    .execute(&mut *tx)
    .await?;
    if !postgres {
        sqlx::query("DELETE FROM kb_search WHERE article_id = $1")
            .bind(a.id.clone())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO kb_search (article_id, tenant, body) VALUES ($1, $2, $3)")
            .bind(a.id.clone())
            .bind(a.tenant.clone())
            .bind(format!(
                "{} {} {} {}",
                a.title_uz, a.title_ru, a.body_uz, a.body_ru
            ))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Some(revision))
}

/// One article.
pub async fn article_by_id(pool: &AnyPool, id: &str) -> Result<Option<Article>, sqlx::Error> {
    let sql = format!("SELECT {ARTICLE_COLUMNS} FROM kb_articles WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.to_owned())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(article)
        .transpose()
}

/// Every revision of an article, newest first.
pub async fn revisions(pool: &AnyPool, id: &str) -> Result<Vec<Article>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.article_id, a.tenant, r.topic, r.kind, r.title_uz, r.title_ru, r.body_uz, \
         r.body_ru, r.revision, r.updated_by, r.updated_at_ms FROM kb_revisions r \
         JOIN kb_articles a ON a.id = r.article_id WHERE r.article_id = $1 \
         ORDER BY r.revision DESC",
    )
    .bind(id.to_owned())
    .fetch_all(pool)
    .await?;
    rows.iter().map(article).collect()
}

/// Articles of a tenant: for a topic (and those for any topic) when `topic` is given, else
/// all; newest first, at most `limit`.
pub async fn articles(
    pool: &AnyPool,
    tenant: &str,
    topic: Option<&str>,
    limit: i64,
) -> Result<Vec<Article>, sqlx::Error> {
    let sql = format!(
        "SELECT {ARTICLE_COLUMNS} FROM kb_articles WHERE tenant = $1 \
         AND ($2 IS NULL OR topic = $2 OR topic IS NULL) \
         ORDER BY CASE WHEN topic IS NULL THEN 1 ELSE 0 END, updated_at_ms DESC LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant.to_owned())
        .bind(topic.map(str::to_owned))
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(article).collect()
}

/// Full-text search in a tenant's articles (both languages), best matches first.
pub async fn search(
    pool: &AnyPool,
    postgres: bool,
    tenant: &str,
    query: &str,
    limit: i64,
) -> Result<Vec<Article>, sqlx::Error> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '`' && c != 'ʻ')
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| w.replace(['\'', '`', 'ʻ'], ""))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return articles(pool, tenant, None, limit).await;
    }
    let rows = if postgres {
        let cols = ARTICLE_COLUMNS;
        let sql = format!(
            "SELECT {cols} FROM kb_articles WHERE tenant = $1 AND \
             to_tsvector('simple', title_uz || ' ' || title_ru || ' ' || body_uz || ' ' || body_ru) \
             @@ to_tsquery('simple', $2) \
             ORDER BY ts_rank(to_tsvector('simple', title_uz || ' ' || title_ru || ' ' || body_uz \
             || ' ' || body_ru), to_tsquery('simple', $2)) DESC LIMIT $3"
        );
        let q = words
            .iter()
            .map(|w| format!("{}:*", w.to_lowercase()))
            .collect::<Vec<_>>()
            .join(" & ");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .bind(q)
            .bind(limit)
            .fetch_all(pool)
            .await?
    } else {
        let cols = ARTICLE_COLUMNS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {cols} FROM kb_search s JOIN kb_articles a ON a.id = s.article_id \
             WHERE kb_search MATCH $1 AND s.tenant = $2 ORDER BY rank LIMIT $3"
        );
        // Each word as a quoted prefix term: no FTS5 syntax reaches the engine from input.
        let q = words
            .iter()
            .map(|w| format!("\"{}\"*", w.replace('"', "")))
            .collect::<Vec<_>>()
            .join(" AND ");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(q)
            .bind(tenant.to_owned())
            .bind(limit)
            .fetch_all(pool)
            .await?
    };
    rows.iter().map(article).collect()
}

// ----- calls as the desk reads them ---------------------------------------------------------

/// A call record as the call page shows it (`Debug` masks the number).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallView {
    /// Tenant.
    pub tenant: Option<String>,
    /// The caller's full number (mask it before showing it).
    pub caller_number: Option<String>,
    /// Arrival (Unix ms).
    pub arrived_at_ms: Option<i64>,
    /// Topic.
    pub topic: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
    /// Operator.
    pub operator: Option<String>,
}

impl std::fmt::Debug for CallView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallView")
            .field("tenant", &self.tenant)
            .field(
                "caller_number",
                &self
                    .caller_number
                    .as_deref()
                    .map(crate::privacy::PhoneNumber::new),
            )
            .field("arrived_at_ms", &self.arrived_at_ms)
            .field("topic", &self.topic)
            .field("outcome", &self.outcome)
            .field("operator", &self.operator)
            .finish()
    }
}

/// One call record, its number opened with `pii` ([`crate::pii`]; without keys a sealed
/// number is a decode error naming the fix).
pub async fn call_view(
    pool: &AnyPool,
    pii: Option<&crate::pii::Pii>,
    call_uid: &str,
) -> Result<Option<CallView>, sqlx::Error> {
    sqlx::query(
        "SELECT tenant, caller_number, arrived_at_ms, topic, outcome, operator FROM call_records \
         WHERE call_uid = $1",
    )
    .bind(call_uid.to_owned())
    .fetch_optional(pool)
    .await?
    .map(|r| {
        Ok(CallView {
            tenant: r.try_get(0)?,
            caller_number: crate::pii::open_opt(
                pii,
                crate::pii::field::CALLER_NUMBER,
                r.try_get(1)?,
            )
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            arrived_at_ms: r.try_get(2)?,
            topic: r.try_get(3)?,
            outcome: r.try_get(4)?,
            operator: r.try_get(5)?,
        })
    })
    .transpose()
}

#[cfg(test)]
mod call_view_tests {
    use super::CallView;

    #[test]
    fn a_call_view_debugs_with_the_number_masked() {
        let v = CallView {
            caller_number: Some("+998901234567".into()),
            ..CallView::default()
        };
        let shown = format!("{v:?}");
        assert!(shown.contains("+9989******67"), "{shown}");
        assert!(!shown.contains("901234567"), "{shown}");
    }
}
