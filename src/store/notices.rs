//! Notice steps in the database (D7): the DB writer's half of [`crate::notices`].

use crate::notices::{NoticeStep, Target};

const NOTICE_INSERT: &str = "INSERT INTO notices (id, tenant, kinds, target_kind, target_id, \
     created_at_ms, body) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING";

const DELIVERY_UPSERT: &str = "INSERT INTO notice_deliveries (notice_id, channel, state, \
     attempts, due_ms, detail, digest_of, progress, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (notice_id, channel) DO UPDATE SET state = excluded.state, \
     attempts = excluded.attempts, due_ms = excluded.due_ms, detail = excluded.detail, \
     digest_of = excluded.digest_of, progress = excluded.progress, \
     updated_at_ms = excluded.updated_at_ms \
     WHERE notice_deliveries.progress < excluded.progress";

/// A delivery's progress: grows with every step.
fn progress(state: &str, attempts: u32) -> i64 {
    let stage = match state {
        "queued" => 0,
        "retrying" => 1,
        _ => 2,
    };
    i64::from(attempts) * 4 + stage
}

macro_rules! write_steps {
    ($conn:expr, $steps:expr) => {{
        for (at_ms, step) in $steps {
            match step {
                NoticeStep::Queued { notice, channels } => {
                    let kinds: Vec<&str> = notice.kinds.iter().map(|k| k.as_str()).collect();
                    let (kind, id) = match &notice.target {
                        Target::Call(id) => ("call", id.clone()),
                        Target::Request(id) => ("request", id.clone()),
                    };
                    sqlx::query(NOTICE_INSERT)
                        .bind(notice.id.clone())
                        .bind(notice.tenant.clone())
                        .bind(kinds.join(","))
                        .bind(kind)
                        .bind(id)
                        .bind(notice.created_at_ms)
                        .bind(serde_json::to_string(notice).unwrap_or_default())
                        .execute(&mut *$conn)
                        .await?;
                    for c in channels {
                        sqlx::query(DELIVERY_UPSERT)
                            .bind(notice.id.clone())
                            .bind(c.as_str())
                            .bind("queued")
                            .bind(0i64)
                            .bind(Some(notice.created_at_ms))
                            .bind(None::<String>)
                            .bind(None::<i64>)
                            .bind(progress("queued", 0))
                            .bind(*at_ms)
                            .execute(&mut *$conn)
                            .await?;
                    }
                }
                NoticeStep::Delivery {
                    id,
                    channel,
                    state,
                    attempts,
                    due_ms,
                    detail,
                    digest_of,
                } => {
                    sqlx::query(DELIVERY_UPSERT)
                        .bind(id.clone())
                        .bind(channel.as_str())
                        .bind(state.clone())
                        .bind(i64::from(*attempts))
                        .bind(*due_ms)
                        .bind(detail.clone())
                        .bind(digest_of.map(i64::from))
                        .bind(progress(state, *attempts))
                        .bind(*at_ms)
                        .execute(&mut *$conn)
                        .await?;
                }
            }
        }
        Ok(())
    }};
}

/// Writes a batch's notice steps on SQLite (inside its transaction).
pub async fn write_any(
    conn: &mut sqlx::AnyConnection,
    steps: &[(i64, NoticeStep)],
) -> Result<(), sqlx::Error> {
    write_steps!(conn, steps)
}

/// The same on Postgres.
pub async fn write_postgres(
    conn: &mut sqlx::PgConnection,
    steps: &[(i64, NoticeStep)],
) -> Result<(), sqlx::Error> {
    write_steps!(conn, steps)
}

/// A notice's deliveries as a page shows them.
#[derive(Debug, Clone)]
pub struct DeliveryView {
    /// The notice's kinds.
    pub kinds: String,
    /// Channel.
    pub channel: String,
    /// State.
    pub state: String,
    /// Attempts.
    pub attempts: i64,
    /// Why it failed.
    pub detail: Option<String>,
    /// Digest size.
    pub digest_of: Option<i64>,
    /// Last change.
    pub updated_at_ms: i64,
}

/// The deliveries of the notices about `target_id` (a call's store name or a request id).
pub async fn for_target(
    pool: &sqlx::AnyPool,
    target_id: &str,
) -> Result<Vec<DeliveryView>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT n.kinds, d.channel, d.state, d.attempts, d.detail, d.digest_of, d.updated_at_ms \
         FROM notices n JOIN notice_deliveries d ON d.notice_id = n.id \
         WHERE n.target_id = $1 ORDER BY n.created_at_ms, d.channel",
    )
    .bind(target_id.to_owned())
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(DeliveryView {
            kinds: r.try_get(0)?,
            channel: r.try_get(1)?,
            state: r.try_get(2)?,
            attempts: r.try_get(3)?,
            detail: r.try_get(4)?,
            digest_of: r.try_get(5)?,
            updated_at_ms: r.try_get(6)?,
        });
    }
    Ok(out)
}
