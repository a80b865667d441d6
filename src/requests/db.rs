//! Reading requests back from the database: what the book restores at start-up, and what the
//! request page and the closed lists show. Writes come only through the journal
//! ([`crate::store::requests`]).

use super::{Head, KEY_MEMORY_MS};
use crate::pii::{Pii, PiiError};
use crate::store::seal;
use sqlx::{AnyPool, Row};

/// Closed requests updated within this long are loaded into the book at start-up too (the
/// customer may write back).
const RECENT_CLOSED_MS: i64 = 7 * 24 * 3600 * 1000;

/// A sealed value that does not open, as the driver's error (the callers report it).
fn decode(e: PiiError) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// The keys, or the error that says a sealed value was read without them.
fn keys(pii: Option<&Pii>) -> Result<&Pii, sqlx::Error> {
    pii.ok_or_else(|| {
        decode(PiiError::NoKey {
            field: crate::pii::field::REQUESTER,
        })
    })
}

/// The heads of `rows`, their requesters opened ([`crate::pii`]; the list shows names and
/// masked contacts). A head that does not parse is skipped, one that does not open is an
/// error.
fn heads(rows: Vec<sqlx::any::AnyRow>, pii: Option<&Pii>) -> Result<Vec<Head>, sqlx::Error> {
    let mut out = Vec::with_capacity(rows.len());
    for json in rows
        .into_iter()
        .filter_map(|r| r.try_get::<String, _>("head").ok())
    {
        let Ok(mut head) = serde_json::from_str::<Head>(&json) else {
            continue;
        };
        seal::open_head(&mut head, keys(pii)?).map_err(decode)?;
        out.push(head);
    }
    Ok(out)
}

/// What [`super::Book::restore`] needs from the database at `now_ms`.
pub struct Restore {
    /// Open and recently closed heads.
    pub heads: Vec<Head>,
    /// Intake and message keys of the last 30 days.
    pub keys: Vec<(String, String, i64)>,
    /// Numbers given in the last two days (counters continue from them).
    pub numbers: Vec<String>,
}

/// Reads what the book needs to start.
pub async fn restore(
    pool: &AnyPool,
    pii: Option<&Pii>,
    now_ms: i64,
) -> Result<Restore, sqlx::Error> {
    let open = sqlx::query(
        "SELECT head FROM requests WHERE status NOT IN ('resolved', 'closed') \
         OR updated_at_ms > $1",
    )
    .bind(now_ms - RECENT_CLOSED_MS)
    .fetch_all(pool)
    .await?;
    let since = now_ms - KEY_MEMORY_MS;
    let mut keys = Vec::new();
    for r in sqlx::query(
        "SELECT intake_key, id, registered_at_ms FROM requests \
         WHERE intake_key IS NOT NULL AND registered_at_ms > $1",
    )
    .bind(since)
    .fetch_all(pool)
    .await?
    {
        keys.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
    }
    for r in sqlx::query(
        "SELECT external_id, request_id, at_ms FROM request_messages \
         WHERE external_id IS NOT NULL AND at_ms > $1",
    )
    .bind(since)
    .fetch_all(pool)
    .await?
    {
        let x: String = r.try_get(0)?;
        keys.push((format!("msg:{x}"), r.try_get(1)?, r.try_get(2)?));
    }
    let numbers = sqlx::query("SELECT id FROM requests WHERE registered_at_ms > $1")
        .bind(now_ms - 2 * 24 * 3600 * 1000)
        .fetch_all(pool)
        .await?
        .into_iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect();
    Ok(Restore {
        heads: heads(open, pii)?,
        keys,
        numbers,
    })
}

/// One request's head.
pub async fn head(
    pool: &AnyPool,
    pii: Option<&Pii>,
    id: &str,
) -> Result<Option<Head>, sqlx::Error> {
    Ok(heads(
        sqlx::query("SELECT head FROM requests WHERE id = $1")
            .bind(id)
            .fetch_all(pool)
            .await?,
        pii,
    )?
    .pop())
}

/// Requests of `tenants` in `statuses`, newest first, at most `limit`.
pub async fn list(
    pool: &AnyPool,
    pii: Option<&Pii>,
    tenants: Option<&[String]>,
    statuses: &[&str],
    limit: i64,
) -> Result<Vec<Head>, sqlx::Error> {
    let mut sql = String::from("SELECT head FROM requests WHERE 1 = 1");
    let mut n = 0;
    let mut binds: Vec<String> = Vec::new();
    if let Some(ts) = tenants {
        if ts.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(" AND tenant IN (");
        for (i, t) in ts.iter().enumerate() {
            n += 1;
            sql.push_str(&format!("{}${n}", if i > 0 { ", " } else { "" }));
            binds.push(t.clone());
        }
        sql.push(')');
    }
    if !statuses.is_empty() {
        sql.push_str(" AND status IN (");
        for (i, s) in statuses.iter().enumerate() {
            n += 1;
            sql.push_str(&format!("{}${n}", if i > 0 { ", " } else { "" }));
            binds.push((*s).to_owned());
        }
        sql.push(')');
    }
    sql.push_str(&format!(
        " ORDER BY registered_at_ms DESC LIMIT {}",
        limit.clamp(1, 1000)
    ));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    heads(q.fetch_all(pool).await?, pii)
}

/// A message of the thread as the page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ThreadMessage {
    /// `<request>-m<n>`.
    pub uid: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// `in`, `out`, `note`, `letter`.
    pub direction: String,
    /// Channel.
    pub channel: String,
    /// Who wrote it (staff).
    pub author: Option<String>,
    /// The text.
    pub body: String,
    /// Files.
    pub attachments: Vec<super::attach::Attachment>,
    /// `queued`, `sent`, `failed` for outbound.
    pub delivery: Option<String>,
    /// Why delivery failed.
    pub delivery_detail: Option<String>,
    /// Where a letter went.
    pub to: Option<String>,
}

/// The thread, oldest first.
pub async fn thread(
    pool: &AnyPool,
    pii: Option<&Pii>,
    id: &str,
) -> Result<Vec<ThreadMessage>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT message_uid, at_ms, direction, channel, author, body, attachments, delivery, \
         delivery_detail, to_addr FROM request_messages WHERE request_id = $1 \
         ORDER BY at_ms, message_uid",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let attachments: String = r.try_get(6)?;
        let pii = keys(pii)?;
        let body: String = r.try_get(5)?;
        let to: Option<String> = r.try_get(9)?;
        out.push(ThreadMessage {
            uid: r.try_get(0)?,
            at_ms: r.try_get(1)?,
            direction: r.try_get(2)?,
            channel: r.try_get(3)?,
            author: r.try_get(4)?,
            body: pii
                .open(crate::pii::field::MESSAGE_BODY, &body)
                .map_err(decode)?,
            attachments: serde_json::from_str(&attachments).unwrap_or_default(),
            delivery: r.try_get(7)?,
            delivery_detail: r.try_get(8)?,
            to: to
                .map(|t| pii.open(crate::pii::field::MESSAGE_TO, &t))
                .transpose()
                .map_err(decode)?,
        });
    }
    Ok(out)
}

/// A step of the request's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryStep {
    /// When.
    pub at_ms: i64,
    /// Who.
    pub actor: String,
    /// `opened`, `status`, ...
    pub kind: String,
    /// The change as JSON (or the message uid).
    pub detail: Option<String>,
}

/// Every change, oldest first.
pub async fn history(pool: &AnyPool, id: &str) -> Result<Vec<HistoryStep>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT at_ms, actor, kind, detail FROM request_steps WHERE request_id = $1 \
         ORDER BY version, at_ms",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(HistoryStep {
            at_ms: r.try_get(0)?,
            actor: r.try_get(1)?,
            kind: r.try_get(2)?,
            detail: r.try_get(3)?,
        });
    }
    Ok(out)
}

/// Requests a call is linked to.
pub async fn for_call(pool: &AnyPool, call_uid: &str) -> Result<Vec<String>, sqlx::Error> {
    Ok(
        sqlx::query("SELECT request_id FROM request_calls WHERE call_uid = $1")
            .bind(call_uid)
            .fetch_all(pool)
            .await?
            .into_iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .collect(),
    )
}

/// Outbound messages not yet sent (`delivery = 'queued'`), oldest first, with their request.
pub async fn queued(
    pool: &AnyPool,
    pii: Option<&Pii>,
) -> Result<Vec<(String, super::Message)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT request_id, message_uid, direction, channel, author, body, external_id, to_addr, \
         attachments FROM request_messages WHERE delivery = 'queued' ORDER BY at_ms LIMIT 10000",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let direction: String = r.try_get(2)?;
        let channel: String = r.try_get(3)?;
        let (Some(direction), Some(channel)) = (
            super::Direction::parse(&direction),
            super::Channel::parse(&channel),
        ) else {
            continue;
        };
        let mut message = super::Message {
            uid: r.try_get(1)?,
            direction,
            channel,
            author: r.try_get(4)?,
            body: r.try_get(5)?,
            external_id: r.try_get(6)?,
            attachments: serde_json::from_str(&r.try_get::<String, _>(8)?).unwrap_or_default(),
            to: r.try_get(7)?,
        };
        seal::open_message(&mut message, keys(pii)?).map_err(decode)?;
        out.push((r.try_get(0)?, message));
    }
    Ok(out)
}
