//! Records of people's work that ride the journal like every event: the audit log (who did
//! what, when, from where) and the operators' dispositions (after-call work).
//!
//! Both are written by [`crate::store::Store::record`]: fsynced to the journal first, then folded
//! into their tables by the database writer in the same transaction as the events of the
//! batch. Audit rows are keyed by the journal entry's uid (`node:boot:r<n>`), so a replay
//! inserts nothing twice; the table refuses updates and deletes (triggers, schema 3). A
//! disposition row is keyed by its call and replaced only by a higher revision.
//!
//! Here, not in `store`, because accounts read and write these rows too while the
//! configuration (below the store) checks accounts: the store reaches them through
//! `store::people`.

use serde::{Deserialize, Serialize};

/// One line of the audit log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Username, `bootstrap-token` or `shell`.
    pub actor: String,
    /// The actor's role.
    pub role: Option<String>,
    /// The tenant the action concerns.
    pub tenant: Option<String>,
    /// What was done: `login`, `login_failed`, `logout`, `recording_play`, `monitor_start`,
    /// `disposition_saved`, `account_added`, `token_created`, ...
    pub action: String,
    /// What it was done to (a call, an account, a token id, an article).
    pub target: Option<String>,
    /// The client's address.
    pub source: Option<String>,
    /// More, in words (never a secret or a full number).
    pub detail: Option<String>,
}

impl std::fmt::Debug for AuditEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Audit({} {})", self.actor, self.action)
    }
}

/// An audit row as the batch writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    /// The journal entry's uid.
    pub uid: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// The entry.
    pub entry: AuditEntry,
}

/// An operator's after-call work on one call (D20 categories, C8 caller details, C10 notes).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispositionRecord {
    /// The call (`call_records.call_uid`); also the disposition's key.
    pub call_uid: String,
    /// Tenant.
    pub tenant: String,
    /// The operator who took the call.
    pub operator: Option<String>,
    /// Topic from the tenant's classifier.
    pub topic: Option<String>,
    /// `question`, `complaint`, `suggestion`, `application`.
    pub category: String,
    /// `resolved`, `unresolved`, `disputed`.
    pub outcome: String,
    /// Free text.
    pub notes: String,
    /// The caller's name (personal data).
    pub caller_name: Option<String>,
    /// Their organisation.
    pub organisation: Option<String>,
    /// Their taxpayer number, 9 digits (personal data).
    pub stir: Option<String>,
    /// 1 for the first save, +1 per edit.
    pub revision: i64,
    /// Who saved it.
    pub saved_by: String,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// No personal data in debug output.
impl std::fmt::Debug for DispositionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Disposition({} r{} {} {})",
            self.call_uid, self.revision, self.category, self.outcome
        )
    }
}

/// Keeps the highest revision per call of a batch.
pub fn fold_disposition(rows: &mut Vec<DispositionRecord>, record: &DispositionRecord) {
    match rows.iter_mut().find(|r| r.call_uid == record.call_uid) {
        Some(row) if row.revision < record.revision => *row = record.clone(),
        Some(_) => {}
        None => rows.push(record.clone()),
    }
}

const AUDIT_INSERT: &str = "INSERT INTO audit_log (audit_uid, at_ms, actor, role, tenant, action, \
     target, source, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (audit_uid) DO NOTHING";

const DISPOSITION_UPSERT: &str = "INSERT INTO dispositions (disposition_uid, call_uid, operator, \
     topic_code, category, resolved, disputed, notes, at_ms, tenant, outcome, caller_name, \
     organisation, stir, revision, saved_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (disposition_uid) DO UPDATE SET operator = excluded.operator, \
     topic_code = excluded.topic_code, category = excluded.category, \
     resolved = excluded.resolved, disputed = excluded.disputed, notes = excluded.notes, \
     at_ms = excluded.at_ms, tenant = excluded.tenant, outcome = excluded.outcome, \
     caller_name = excluded.caller_name, organisation = excluded.organisation, \
     stir = excluded.stir, revision = excluded.revision, saved_by = excluded.saved_by \
     WHERE dispositions.revision < excluded.revision";

macro_rules! bind_audit {
    ($q:expr, $r:expr) => {
        $q.bind($r.uid.clone())
            .bind($r.at_ms)
            .bind($r.entry.actor.clone())
            .bind($r.entry.role.clone())
            .bind($r.entry.tenant.clone())
            .bind($r.entry.action.clone())
            .bind($r.entry.target.clone())
            .bind($r.entry.source.clone())
            .bind($r.entry.detail.clone())
    };
}

macro_rules! bind_disposition {
    ($q:expr, $r:expr) => {
        $q.bind($r.call_uid.clone())
            .bind($r.call_uid.clone())
            .bind($r.operator.clone())
            .bind($r.topic.clone())
            .bind($r.category.clone())
            .bind($r.outcome == "resolved")
            .bind($r.outcome == "disputed")
            .bind($r.notes.clone())
            .bind($r.at_ms)
            .bind($r.tenant.clone())
            .bind($r.outcome.clone())
            .bind($r.caller_name.clone())
            .bind($r.organisation.clone())
            .bind($r.stir.clone())
            .bind($r.revision)
            .bind($r.saved_by.clone())
    };
}

/// Writes the batch's audit and disposition rows on SQLite (inside its transaction).
pub async fn write_any(
    conn: &mut sqlx::AnyConnection,
    audit: &[AuditRow],
    dispositions: &[DispositionRecord],
) -> Result<(), sqlx::Error> {
    for r in audit {
        bind_audit!(sqlx::query(AUDIT_INSERT), r)
            .execute(&mut *conn)
            .await?;
    }
    for r in dispositions {
        bind_disposition!(sqlx::query(DISPOSITION_UPSERT), r)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The same on Postgres.
pub async fn write_postgres(
    conn: &mut sqlx::PgConnection,
    audit: &[AuditRow],
    dispositions: &[DispositionRecord],
) -> Result<(), sqlx::Error> {
    for r in audit {
        bind_audit!(sqlx::query(AUDIT_INSERT), r)
            .execute(&mut *conn)
            .await?;
    }
    for r in dispositions {
        bind_disposition!(sqlx::query(DISPOSITION_UPSERT), r)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// An audit row written straight to the database, for changes made from the shell while the
/// journal belongs to a running navbat (`navbat user ...`).
pub async fn insert_direct<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    pool: E,
    uid: &str,
    at_ms: i64,
    entry: &AuditEntry,
) -> Result<(), sqlx::Error> {
    let row = AuditRow {
        uid: uid.to_owned(),
        at_ms,
        entry: entry.clone(),
    };
    bind_audit!(sqlx::query(AUDIT_INSERT), row)
        .execute(pool)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(rev: i64, notes: &str) -> DispositionRecord {
        DispositionRecord {
            call_uid: "n:b:c1".into(),
            tenant: "support".into(),
            operator: Some("1001".into()),
            topic: None,
            category: "question".into(),
            outcome: "resolved".into(),
            notes: notes.into(),
            caller_name: Some("Aziz Karimov".into()),
            organisation: None,
            stir: Some("123456789".into()),
            revision: rev,
            saved_by: "op1001".into(),
            at_ms: rev,
        }
    }

    #[test]
    fn the_highest_revision_of_a_batch_wins() {
        let mut rows = Vec::new();
        fold_disposition(&mut rows, &d(2, "second"));
        fold_disposition(&mut rows, &d(1, "first"));
        fold_disposition(&mut rows, &d(3, "third"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].notes, "third");
    }

    #[test]
    fn debug_hides_personal_data() {
        let text = format!("{:?}", d(1, "n"));
        assert!(
            !text.contains("Aziz") && !text.contains("123456789"),
            "{text}"
        );
    }
}
