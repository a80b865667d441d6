//! Request steps in the database (issue 14): the DB writer's half of [`crate::requests`].
//!
//! Each step of a batch, in journal order: the request's row takes the step's head only when
//! its version is newer; the step, its message, attachments and call link are inserted once
//! (keyed by the journal entry's uid or the message's uid), so a replayed batch changes
//! nothing.

use crate::request_model::{Change, RequestStep};

const HEAD_UPSERT: &str = "INSERT INTO requests (id, tenant, channel, kind, priority, status, \
     assignee, subject, intake_key, registered_at_ms, first_answer_at_ms, resolved_at_ms, \
     closed_at_ms, updated_at_ms, version, head) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (id) DO UPDATE SET channel = excluded.channel, kind = excluded.kind, \
     priority = excluded.priority, status = excluded.status, assignee = excluded.assignee, \
     subject = excluded.subject, first_answer_at_ms = excluded.first_answer_at_ms, \
     resolved_at_ms = excluded.resolved_at_ms, closed_at_ms = excluded.closed_at_ms, \
     updated_at_ms = excluded.updated_at_ms, version = excluded.version, head = excluded.head \
     WHERE requests.version < excluded.version";

const STEP_INSERT: &str = "INSERT INTO request_steps (step_uid, request_id, at_ms, actor, kind, \
     version, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (step_uid) DO NOTHING";

const MESSAGE_INSERT: &str = "INSERT INTO request_messages (message_uid, request_id, at_ms, \
     direction, channel, author, body, external_id, to_addr, attachments, delivery) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (message_uid) DO NOTHING";

const DELIVERY_UPDATE: &str = "UPDATE request_messages SET delivery = $1, delivery_detail = $2 \
     WHERE message_uid = $3 AND (delivery IS NULL OR delivery <> 'sent')";

const CALL_INSERT: &str = "INSERT INTO request_calls (request_id, call_uid) VALUES ($1, $2) \
     ON CONFLICT (request_id, call_uid) DO NOTHING";

/// The parts of one step as rows.
struct StepRows {
    head_json: String,
    detail: Option<String>,
    message: Option<(String, &'static str, String, Option<String>)>,
}

fn rows_of(step: &RequestStep) -> StepRows {
    let head_json = serde_json::to_string(&step.head).unwrap_or_else(|_| "{}".to_owned());
    let detail = match step.change.message() {
        Some(m) => Some(m.uid.clone()),
        None => serde_json::to_string(&step.change).ok(),
    };
    let message = step.change.message().map(|m| {
        let attachments = serde_json::to_string(&m.attachments).unwrap_or_else(|_| "[]".to_owned());
        let delivery = (matches!(
            m.direction,
            crate::request_model::Direction::Out | crate::request_model::Direction::Letter
        ) && matches!(
            m.channel,
            crate::request_model::Channel::Email | crate::request_model::Channel::Telegram
        ))
        .then(|| "queued".to_owned());
        (
            attachments,
            m.direction.as_str(),
            m.channel.as_str().to_owned(),
            delivery,
        )
    });
    StepRows {
        head_json,
        detail,
        message,
    }
}

macro_rules! write_steps {
    ($conn:expr, $steps:expr) => {{
        for (uid, step) in $steps {
            let h = &step.head;
            let rows = rows_of(step);
            sqlx::query(HEAD_UPSERT)
                .bind(h.id.clone())
                .bind(h.tenant.clone())
                .bind(h.channel.as_str())
                .bind(h.kind.as_str())
                .bind(h.priority.as_str())
                .bind(h.status.as_str())
                .bind(h.assignee.clone())
                .bind(h.subject.clone())
                .bind(h.intake_key.clone())
                .bind(h.registered_at_ms)
                .bind(h.first_answer_at_ms)
                .bind(h.resolved_at_ms)
                .bind(h.closed_at_ms)
                .bind(h.updated_at_ms)
                .bind(h.version)
                .bind(rows.head_json)
                .execute(&mut *$conn)
                .await?;
            sqlx::query(STEP_INSERT)
                .bind(uid.clone())
                .bind(h.id.clone())
                .bind(step.at_ms)
                .bind(step.actor.clone())
                .bind(step.change.name())
                .bind(h.version)
                .bind(rows.detail)
                .execute(&mut *$conn)
                .await?;
            if let (Some(m), Some((attachments, direction, channel, delivery))) =
                (step.change.message(), rows.message)
            {
                sqlx::query(MESSAGE_INSERT)
                    .bind(m.uid.clone())
                    .bind(h.id.clone())
                    .bind(step.at_ms)
                    .bind(direction)
                    .bind(channel)
                    .bind(m.author.clone())
                    .bind(m.body.clone())
                    .bind(m.external_id.clone())
                    .bind(m.to.clone())
                    .bind(attachments)
                    .bind(delivery)
                    .execute(&mut *$conn)
                    .await?;
            }
            match &step.change {
                Change::Delivery {
                    message_uid,
                    state,
                    detail,
                } => {
                    sqlx::query(DELIVERY_UPDATE)
                        .bind(state.clone())
                        .bind(detail.clone())
                        .bind(message_uid.clone())
                        .execute(&mut *$conn)
                        .await?;
                }
                Change::CallLinked { call_uid } => {
                    sqlx::query(CALL_INSERT)
                        .bind(h.id.clone())
                        .bind(call_uid.clone())
                        .execute(&mut *$conn)
                        .await?;
                }
                Change::Opened { .. } => {
                    for call in &h.calls {
                        sqlx::query(CALL_INSERT)
                            .bind(h.id.clone())
                            .bind(call.clone())
                            .execute(&mut *$conn)
                            .await?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }};
}

/// Writes a batch's request steps on SQLite (inside its transaction).
pub async fn write_any(
    conn: &mut sqlx::AnyConnection,
    steps: &[(String, RequestStep)],
) -> Result<(), sqlx::Error> {
    write_steps!(conn, steps)
}

/// The same on Postgres.
pub async fn write_postgres(
    conn: &mut sqlx::PgConnection,
    steps: &[(String, RequestStep)],
) -> Result<(), sqlx::Error> {
    write_steps!(conn, steps)
}
