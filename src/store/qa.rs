//! QA steps in the store (D17, C9): the weekly samples, evaluations, disputes and their
//! answers, calibration sessions. Each is a [`QaStep`] that rides the journal like every
//! other record ([`super::outbox::StoreRecord::Qa`]) and is written here by the DB writer,
//! idempotently (a replayed batch changes nothing). Schema 8 (`qa_*` tables).
//!
//! The decisions (the score, the draw, the spread) are `crate::qa`'s; this module only keeps
//! their results.

use serde::{Deserialize, Serialize};
use sqlx::Row;

/// One call put in a week's QA queue, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedCall {
    /// The call's store name.
    pub call_uid: String,
    /// The operator who had it.
    pub operator: String,
    /// `random`, `complaint`, `unresolved`, `disputed`, `manual`.
    pub reason: String,
}

/// A week's draw, as recorded so it can be re-derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    /// The seed (decimal; a u64).
    pub seed: String,
    /// How many candidate calls the draw saw.
    pub candidates: u32,
    /// SHA-256 of the candidates' names (`crate::qa::sample::digest`).
    pub digest: String,
    /// Calls drawn per operator.
    pub per_operator: u32,
}

/// A comment with its place in the recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Seconds from the start of the recording.
    pub at_secs: u32,
    /// What the evaluator says.
    pub text: String,
}

/// One evaluator's scoring of one call.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Its id.
    pub id: String,
    /// The call's tenant.
    pub tenant: String,
    /// The call's store name.
    pub call_uid: String,
    /// The operator who had the call.
    pub operator: Option<String>,
    /// The evaluator's username.
    pub evaluator: String,
    /// The evaluator's role.
    pub evaluator_role: String,
    /// The calibration session it belongs to (`None`: a regular evaluation).
    pub session: Option<String>,
    /// Mark per criterion id.
    pub marks: Vec<(String, u8)>,
    /// Comments with timestamps.
    pub comments: Vec<Comment>,
    /// The total (tenths of a per cent, `crate::qa::score::total`).
    pub total_tenths: u32,
    /// When it was saved (Unix ms).
    pub at_ms: i64,
}

/// Names only the evaluation, not its comments (free text).
impl std::fmt::Debug for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Evaluation({} of {})", self.id, self.call_uid)
    }
}

/// A durable QA step.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum QaStep {
    /// Calls put in a week's queue; with the draw the first time a week is sampled.
    Queued {
        /// Tenant.
        tenant: String,
        /// `2026-W49`.
        week: String,
        /// The draw (kept once per tenant and week: the first one stands).
        draw: Option<Draw>,
        /// The calls.
        picks: Vec<QueuedCall>,
        /// When.
        at_ms: i64,
    },
    /// An evaluation saved.
    Evaluated(Box<Evaluation>),
    /// The operator disputes an evaluation.
    Disputed {
        /// The evaluation.
        evaluation: String,
        /// Who.
        by: String,
        /// Why.
        reason: String,
        /// When.
        at_ms: i64,
    },
    /// A supervisor answers a dispute.
    Answered {
        /// The evaluation.
        evaluation: String,
        /// Who.
        by: String,
        /// The answer.
        answer: String,
        /// When.
        at_ms: i64,
    },
    /// A calibration session opened on some calls.
    SessionOpened {
        /// Its id.
        session: String,
        /// Tenant.
        tenant: String,
        /// Its name.
        title: String,
        /// The calls' store names.
        calls: Vec<String>,
        /// Who opened it.
        by: String,
        /// When.
        at_ms: i64,
    },
    /// A calibration session closed: every score shown to every evaluator.
    SessionClosed {
        /// Its id.
        session: String,
        /// Who.
        by: String,
        /// When.
        at_ms: i64,
    },
}

/// Names the step and its subject only (comments, reasons and answers are free text).
impl std::fmt::Debug for QaStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QaStep::Queued {
                tenant,
                week,
                picks,
                ..
            } => write!(f, "QaQueued({tenant} {week}, {} calls)", picks.len()),
            QaStep::Evaluated(e) => write!(f, "Qa{e:?}"),
            QaStep::Disputed { evaluation, .. } => write!(f, "QaDisputed({evaluation})"),
            QaStep::Answered { evaluation, .. } => write!(f, "QaAnswered({evaluation})"),
            QaStep::SessionOpened { session, .. } => write!(f, "QaSessionOpened({session})"),
            QaStep::SessionClosed { session, .. } => write!(f, "QaSessionClosed({session})"),
        }
    }
}

const SAMPLE_INSERT: &str = "INSERT INTO qa_samples (tenant, week, seed, candidates, digest, \
     per_operator, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (tenant, week) DO NOTHING";
const QUEUE_INSERT: &str = "INSERT INTO qa_queue (tenant, week, call_uid, operator, reason, \
     at_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, week, call_uid) DO NOTHING";
const EVALUATION_INSERT: &str = "INSERT INTO qa_evaluations (evaluation_id, tenant, call_uid, \
     operator, evaluator, evaluator_role, session_id, marks, comments, total_tenths, at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT (evaluation_id) DO NOTHING";
const DISPUTE_UPDATE: &str = "UPDATE qa_evaluations SET dispute_reason = $1, disputed_by = $2, \
     disputed_at_ms = $3 WHERE evaluation_id = $4 AND dispute_reason IS NULL";
const ANSWER_UPDATE: &str = "UPDATE qa_evaluations SET answer = $1, answered_by = $2, \
     answered_at_ms = $3 WHERE evaluation_id = $4 AND answer IS NULL";
const SESSION_INSERT: &str = "INSERT INTO qa_sessions (session_id, tenant, title, calls, \
     opened_by, opened_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (session_id) DO NOTHING";
const SESSION_CLOSE: &str = "UPDATE qa_sessions SET closed_by = $1, closed_at_ms = $2 \
     WHERE session_id = $3 AND closed_at_ms IS NULL";

macro_rules! write_steps {
    ($conn:expr, $steps:expr) => {{
        for step in $steps {
            match step {
                QaStep::Queued {
                    tenant,
                    week,
                    draw,
                    picks,
                    at_ms,
                } => {
                    if let Some(d) = draw {
                        sqlx::query(SAMPLE_INSERT)
                            .bind(tenant.clone())
                            .bind(week.clone())
                            .bind(d.seed.clone())
                            .bind(i64::from(d.candidates))
                            .bind(d.digest.clone())
                            .bind(i64::from(d.per_operator))
                            .bind(*at_ms)
                            .execute(&mut *$conn)
                            .await?;
                    }
                    for p in picks {
                        sqlx::query(QUEUE_INSERT)
                            .bind(tenant.clone())
                            .bind(week.clone())
                            .bind(p.call_uid.clone())
                            .bind(p.operator.clone())
                            .bind(p.reason.clone())
                            .bind(*at_ms)
                            .execute(&mut *$conn)
                            .await?;
                    }
                }
                QaStep::Evaluated(e) => {
                    sqlx::query(EVALUATION_INSERT)
                        .bind(e.id.clone())
                        .bind(e.tenant.clone())
                        .bind(e.call_uid.clone())
                        .bind(e.operator.clone())
                        .bind(e.evaluator.clone())
                        .bind(e.evaluator_role.clone())
                        .bind(e.session.clone())
                        .bind(serde_json::to_string(&e.marks).unwrap_or_default())
                        .bind(serde_json::to_string(&e.comments).unwrap_or_default())
                        .bind(i64::from(e.total_tenths))
                        .bind(e.at_ms)
                        .execute(&mut *$conn)
                        .await?;
                }
                QaStep::Disputed {
                    evaluation,
                    by,
                    reason,
                    at_ms,
                } => {
                    sqlx::query(DISPUTE_UPDATE)
                        .bind(reason.clone())
                        .bind(by.clone())
                        .bind(*at_ms)
                        .bind(evaluation.clone())
                        .execute(&mut *$conn)
                        .await?;
                }
                QaStep::Answered {
                    evaluation,
                    by,
                    answer,
                    at_ms,
                } => {
                    sqlx::query(ANSWER_UPDATE)
                        .bind(answer.clone())
                        .bind(by.clone())
                        .bind(*at_ms)
                        .bind(evaluation.clone())
                        .execute(&mut *$conn)
                        .await?;
                }
                QaStep::SessionOpened {
                    session,
                    tenant,
                    title,
                    calls,
                    by,
                    at_ms,
                } => {
                    sqlx::query(SESSION_INSERT)
                        .bind(session.clone())
                        .bind(tenant.clone())
                        .bind(title.clone())
                        .bind(calls.join(" "))
                        .bind(by.clone())
                        .bind(*at_ms)
                        .execute(&mut *$conn)
                        .await?;
                }
                QaStep::SessionClosed { session, by, at_ms } => {
                    sqlx::query(SESSION_CLOSE)
                        .bind(by.clone())
                        .bind(*at_ms)
                        .bind(session.clone())
                        .execute(&mut *$conn)
                        .await?;
                }
            }
        }
        Ok(())
    }};
}

/// Writes a batch's QA steps on SQLite (inside its transaction), in journal order.
pub async fn write_any(
    conn: &mut sqlx::AnyConnection,
    steps: &[QaStep],
) -> Result<(), sqlx::Error> {
    write_steps!(conn, steps)
}

/// The same on Postgres.
pub async fn write_postgres(
    conn: &mut sqlx::PgConnection,
    steps: &[QaStep],
) -> Result<(), sqlx::Error> {
    write_steps!(conn, steps)
}

// ----- reading ------------------------------------------------------------------------------

/// A recorded draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleRow {
    /// Tenant.
    pub tenant: String,
    /// Week.
    pub week: String,
    /// The draw.
    pub seed: String,
    /// Candidates seen.
    pub candidates: i64,
    /// Their digest.
    pub digest: String,
    /// Per operator.
    pub per_operator: i64,
    /// When.
    pub at_ms: i64,
}

/// The draw recorded for `tenant`'s `week`.
pub async fn sample(
    pool: &sqlx::AnyPool,
    tenant: &str,
    week: &str,
) -> Result<Option<SampleRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT tenant, week, seed, candidates, digest, per_operator, at_ms FROM qa_samples \
         WHERE tenant = $1 AND week = $2",
    )
    .bind(tenant.to_owned())
    .bind(week.to_owned())
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(SampleRow {
            tenant: r.try_get(0)?,
            week: r.try_get(1)?,
            seed: r.try_get(2)?,
            candidates: r.try_get(3)?,
            digest: r.try_get(4)?,
            per_operator: r.try_get(5)?,
            at_ms: r.try_get(6)?,
        })
    })
    .transpose()
}

/// A call of a week's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueRow {
    /// The call.
    pub call_uid: String,
    /// The operator.
    pub operator: Option<String>,
    /// Why.
    pub reason: String,
    /// When it joined.
    pub at_ms: i64,
}

/// `tenant`'s queue of `week`, in order of joining.
pub async fn queue(
    pool: &sqlx::AnyPool,
    tenant: &str,
    week: &str,
) -> Result<Vec<QueueRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT call_uid, operator, reason, at_ms FROM qa_queue WHERE tenant = $1 AND week = $2 \
         ORDER BY at_ms, call_uid",
    )
    .bind(tenant.to_owned())
    .bind(week.to_owned())
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(QueueRow {
                call_uid: r.try_get(0)?,
                operator: r.try_get(1)?,
                reason: r.try_get(2)?,
                at_ms: r.try_get(3)?,
            })
        })
        .collect()
}

/// An evaluation as stored, with its dispute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationRow {
    /// The evaluation.
    pub evaluation: Evaluation,
    /// The operator's reason, when disputed.
    pub dispute_reason: Option<String>,
    /// Who disputed.
    pub disputed_by: Option<String>,
    /// When.
    pub disputed_at_ms: Option<i64>,
    /// The supervisor's answer.
    pub answer: Option<String>,
    /// Who answered.
    pub answered_by: Option<String>,
    /// When.
    pub answered_at_ms: Option<i64>,
}

const EVALUATION_COLUMNS: &str = "evaluation_id, tenant, call_uid, operator, evaluator, \
     evaluator_role, session_id, marks, comments, total_tenths, at_ms, dispute_reason, \
     disputed_by, disputed_at_ms, answer, answered_by, answered_at_ms";

fn evaluation_row(r: &sqlx::any::AnyRow) -> Result<EvaluationRow, sqlx::Error> {
    let marks: String = r.try_get(7)?;
    let comments: String = r.try_get(8)?;
    let total: i64 = r.try_get(9)?;
    Ok(EvaluationRow {
        evaluation: Evaluation {
            id: r.try_get(0)?,
            tenant: r.try_get(1)?,
            call_uid: r.try_get(2)?,
            operator: r.try_get(3)?,
            evaluator: r.try_get(4)?,
            evaluator_role: r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
            session: r.try_get(6)?,
            marks: serde_json::from_str(&marks).unwrap_or_default(),
            comments: serde_json::from_str(&comments).unwrap_or_default(),
            total_tenths: total.clamp(0, 1000) as u32,
            at_ms: r.try_get(10)?,
        },
        dispute_reason: r.try_get(11)?,
        disputed_by: r.try_get(12)?,
        disputed_at_ms: r.try_get(13)?,
        answer: r.try_get(14)?,
        answered_by: r.try_get(15)?,
        answered_at_ms: r.try_get(16)?,
    })
}

/// Which evaluations to read.
#[derive(Debug, Clone)]
pub enum Which<'a> {
    /// One by id.
    Id(&'a str),
    /// The regular (not calibration) evaluations of a call.
    Call(&'a str),
    /// The regular evaluations of an operator's calls in some tenants.
    Operator(&'a str),
    /// A tenant's regular evaluations with a dispute not answered yet.
    OpenDisputes(&'a str),
    /// A tenant's regular evaluations saved in `[from, to)` ms.
    Tenant(&'a str, i64, i64),
    /// The evaluations of a calibration session.
    Session(&'a str),
}

/// Evaluations, newest first.
pub async fn evaluations(
    pool: &sqlx::AnyPool,
    which: Which<'_>,
) -> Result<Vec<EvaluationRow>, sqlx::Error> {
    let (filter, a, b, c) = match which {
        Which::Id(id) => ("evaluation_id = $1", id.to_owned(), 0, 0),
        Which::Call(call) => (
            "call_uid = $1 AND session_id IS NULL",
            call.to_owned(),
            0,
            0,
        ),
        Which::Operator(op) => ("operator = $1 AND session_id IS NULL", op.to_owned(), 0, 0),
        Which::OpenDisputes(t) => (
            "tenant = $1 AND session_id IS NULL AND dispute_reason IS NOT NULL AND answer IS NULL",
            t.to_owned(),
            0,
            0,
        ),
        Which::Tenant(t, from, to) => (
            "tenant = $1 AND session_id IS NULL AND at_ms >= $2 AND at_ms < $3",
            t.to_owned(),
            from,
            to,
        ),
        Which::Session(s) => ("session_id = $1", s.to_owned(), 0, 0),
    };
    let sql = format!(
        "SELECT {EVALUATION_COLUMNS} FROM qa_evaluations WHERE {filter} \
         ORDER BY at_ms DESC, evaluation_id"
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(a);
    if matches!(which, Which::Tenant(..)) {
        q = q.bind(b).bind(c);
    }
    let rows = q.fetch_all(pool).await?;
    rows.iter().map(evaluation_row).collect()
}

/// A calibration session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Its id.
    pub session: String,
    /// Tenant.
    pub tenant: String,
    /// Name.
    pub title: String,
    /// The calls.
    pub calls: Vec<String>,
    /// Who opened it.
    pub opened_by: String,
    /// When.
    pub opened_at_ms: i64,
    /// When it was closed.
    pub closed_at_ms: Option<i64>,
}

/// Calibration sessions: one (`Some(id)`) or a tenant's, newest first.
pub async fn sessions(
    pool: &sqlx::AnyPool,
    tenant: &str,
    id: Option<&str>,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    let rows = match id {
        Some(id) => sqlx::query(
            "SELECT session_id, tenant, title, calls, opened_by, opened_at_ms, closed_at_ms \
             FROM qa_sessions WHERE session_id = $1",
        )
        .bind(id.to_owned()),
        None => sqlx::query(
            "SELECT session_id, tenant, title, calls, opened_by, opened_at_ms, closed_at_ms \
             FROM qa_sessions WHERE tenant = $1 ORDER BY opened_at_ms DESC LIMIT 50",
        )
        .bind(tenant.to_owned()),
    }
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let calls: String = r.try_get(3)?;
            Ok(SessionRow {
                session: r.try_get(0)?,
                tenant: r.try_get(1)?,
                title: r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
                calls: calls.split_whitespace().map(str::to_owned).collect(),
                opened_by: r.try_get(4)?,
                opened_at_ms: r.try_get(5)?,
                closed_at_ms: r.try_get(6)?,
            })
        })
        .collect()
}

/// An answered call of `[from, to)` that may be sampled: (store name, operator, category,
/// outcome of its disposition).
pub type CandidateRow = (String, String, Option<String>, Option<String>);

/// `tenant`'s calls answered by an operator that arrived in `[from, to)` ms, with their
/// disposition's category and outcome.
pub async fn candidates(
    pool: &sqlx::AnyPool,
    tenant: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<CandidateRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.call_uid, c.operator, d.category, d.outcome FROM call_records c \
         LEFT JOIN dispositions d ON d.call_uid = c.call_uid \
         WHERE c.tenant = $1 AND c.operator IS NOT NULL AND c.answered_at_ms IS NOT NULL \
         AND c.arrived_at_ms >= $2 AND c.arrived_at_ms < $3 ORDER BY c.call_uid",
    )
    .bind(tenant.to_owned())
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(pool)
    .await?;
    let mut out: Vec<CandidateRow> = Vec::with_capacity(rows.len());
    for r in rows {
        let row: CandidateRow = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
        // A call with several disposition rows counts once (the first one read).
        if out.last().is_some_and(|l| l.0 == row.0) {
            continue;
        }
        out.push(row);
    }
    Ok(out)
}

/// Per operator of `tenant`: the regular evaluations saved in `[from, to)` ms, as (operator,
/// count, mean in tenths of a per cent), by operator.
pub async fn operator_means(
    pool: &sqlx::AnyPool,
    tenant: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(String, u32, f64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT operator, total_tenths FROM qa_evaluations WHERE tenant = $1 \
         AND session_id IS NULL AND operator IS NOT NULL AND at_ms >= $2 AND at_ms < $3",
    )
    .bind(tenant.to_owned())
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(pool)
    .await?;
    let mut by: std::collections::BTreeMap<String, (u32, i64)> = Default::default();
    for r in rows {
        let op: String = r.try_get(0)?;
        let total: i64 = r.try_get(1)?;
        let e = by.entry(op).or_default();
        e.0 += 1;
        e.1 += total;
    }
    Ok(by
        .into_iter()
        .map(|(op, (n, sum))| (op, n, sum as f64 / f64::from(n)))
        .collect())
}
