//! The QA job: the thin driver of [`super::sample`] in the router (and behind
//! `POST /api/qa/sample`, which `navbat qa sample --week` calls).
//!
//! Every hour, for each tenant with a scorecard: the week just past (the tenant's local ISO
//! week) is drawn once it is over (the first draw of a week stands and is recorded with its
//! seed), and this week's complaint, unresolved and disputed calls join the queue as they
//! come. It also refreshes the mean-score gauge of the last 30 days.

use super::sample::{digest, draw, Candidate, Reason, Week};
use crate::config::Config;
use crate::store::outbox::StoreRecord;
use crate::store::qa::{self as rows, Draw, QaStep, QueuedCall, Which};
use crate::store::Store;
use std::collections::HashSet;
use std::time::Duration;

/// How often the job runs.
pub const EVERY: Duration = Duration::from_secs(3600);
/// How long a sampling waits for the database to hold what it recorded.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Why a week could not be sampled.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// No such tenant, or it has no `[tenant.qa]`.
    #[error("the tenant {0} has no scorecard ([tenant.qa])")]
    NoScorecard(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(String),
    /// The journal did not take the record.
    #[error("the journal is full; retry")]
    JournalFull,
}

/// What to do with a week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Draw it if it has not been drawn (and add its mandatory calls).
    Draw,
    /// Only add its mandatory calls (a week still running).
    MandatoryOnly,
}

/// What a sampling did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sampled {
    /// Tenant.
    pub tenant: String,
    /// Week.
    pub week: String,
    /// The week's recorded draw, if it has one now.
    pub seed: Option<String>,
    /// Candidate calls seen now.
    pub candidates: usize,
    /// Their digest now.
    pub digest: String,
    /// Calls this run put in the queue.
    pub added: Vec<QueuedCall>,
    /// Whether re-deriving the recorded draw from the calls now gives the queue's random
    /// calls (`None` before the week is drawn).
    pub rederived: Option<bool>,
}

/// Samples `tenant`'s `week`: `seed` for the draw (`None`: a random one), `now_ms` the
/// time recorded.
pub async fn sample_week(
    store: &Store,
    config: &Config,
    tenant: &str,
    week: Week,
    mode: Mode,
    seed: Option<u64>,
    now_ms: i64,
) -> Result<Sampled, SampleError> {
    let t = config
        .tenant(tenant)
        .filter(|t| t.qa.is_some())
        .ok_or_else(|| SampleError::NoScorecard(tenant.to_owned()))?;
    let per_operator = t.qa.as_ref().map_or(0, |q| q.sample_per_operator_week);
    let (from, to) = week.range_ms(&t.timezone);
    let pool = store.db().pool().clone();
    let (id, w) = (tenant.to_owned(), week.to_string());
    let (drawn, queued, found) = store
        .run(async move {
            let drawn = rows::sample(&pool, &id, &w).await?;
            let queued = rows::queue(&pool, &id, &w).await?;
            let found = rows::candidates(&pool, &id, from, to).await?;
            Ok::<_, sqlx::Error>((drawn, queued, found))
        })
        .await
        .map_err(|e| SampleError::Store(e.to_string()))?
        .map_err(|e| SampleError::Store(e.to_string()))?;
    let calls: Vec<Candidate> = found
        .into_iter()
        .map(|(call_uid, operator, category, outcome)| Candidate {
            call_uid,
            operator,
            category,
            outcome,
        })
        .collect();
    let in_queue: HashSet<&str> = queued.iter().map(|q| q.call_uid.as_str()).collect();
    let (new_draw, picks) = match (&drawn, mode) {
        (None, Mode::Draw) => {
            let seed = seed.unwrap_or_else(rand::random::<u64>);
            let d = Draw {
                seed: seed.to_string(),
                candidates: calls.len() as u32,
                digest: digest(&calls),
                per_operator,
            };
            (Some(d), draw(seed, &calls, per_operator))
        }
        _ => (
            None,
            draw(0, &calls, 0)
                .into_iter()
                .filter(|p| p.reason != Reason::Random)
                .collect(),
        ),
    };
    let added: Vec<QueuedCall> = picks
        .into_iter()
        .filter(|p| !in_queue.contains(p.call_uid.as_str()))
        .map(|p| QueuedCall {
            call_uid: p.call_uid,
            operator: p.operator,
            reason: p.reason.as_str().to_owned(),
        })
        .collect();
    let seed_now = new_draw
        .as_ref()
        .map(|d| d.seed.clone())
        .or_else(|| drawn.as_ref().map(|d| d.seed.clone()));
    // Re-derive a recorded draw: the same seed on the calls now must give the queue's
    // random calls, as long as the calls are the ones it saw.
    let rederived = drawn.as_ref().and_then(|d| {
        let seed: u64 = d.seed.parse().ok()?;
        let again: HashSet<String> = draw(seed, &calls, d.per_operator as u32)
            .into_iter()
            .filter(|p| p.reason == Reason::Random)
            .map(|p| p.call_uid)
            .collect();
        let recorded: HashSet<String> = queued
            .iter()
            .filter(|q| q.reason == "random")
            .map(|q| q.call_uid.clone())
            .collect();
        Some(again == recorded)
    });
    if new_draw.is_some() || !added.is_empty() {
        let step = QaStep::Queued {
            tenant: tenant.to_owned(),
            week: week.to_string(),
            draw: new_draw,
            picks: added.clone(),
            at_ms: now_ms,
        };
        let ack = store
            .record(StoreRecord::Qa(Box::new(step)))
            .map_err(|_| SampleError::JournalFull)?;
        let mark = store.mark();
        let _ = ack.await;
        store.caught_up(mark, CATCH_UP).await;
    }
    Ok(Sampled {
        tenant: tenant.to_owned(),
        week: week.to_string(),
        seed: seed_now,
        candidates: calls.len(),
        digest: digest(&calls),
        added,
        rederived,
    })
}

/// Sets the mean-score gauges of every tenant with a scorecard from the last 30 days.
pub async fn refresh_gauges(store: &Store, config: &Config, now_ms: i64) {
    for t in config.tenants.iter().filter(|t| t.qa.is_some()) {
        let pool = store.db().pool().clone();
        let id = t.id.clone();
        let from = now_ms - 30 * 24 * 3600 * 1000;
        let got = store
            .run(
                async move { rows::evaluations(&pool, Which::Tenant(&id, from, now_ms + 1)).await },
            )
            .await;
        let Ok(Ok(list)) = got else {
            continue;
        };
        let n = list.len();
        let mean = if n == 0 {
            0.0
        } else {
            list.iter()
                .map(|e| f64::from(e.evaluation.total_tenths))
                .sum::<f64>()
                / n as f64
                / 10.0
        };
        metrics::gauge!(crate::metrics::QA_SCORE_MEAN, "tenant" => t.id.clone()).set(mean);
        metrics::gauge!(crate::metrics::QA_EVALUATIONS_30D, "tenant" => t.id.clone()).set(n as f64);
    }
}

/// The job: at start and every [`EVERY`].
pub async fn job(store: Store, config: std::sync::Arc<Config>) {
    loop {
        let now = jiff::Timestamp::now();
        for t in config.tenants.iter().filter(|t| t.qa.is_some()) {
            let this = Week::containing(now, &t.timezone);
            for (week, mode) in [(this.previous(), Mode::Draw), (this, Mode::MandatoryOnly)] {
                match sample_week(
                    &store,
                    &config,
                    &t.id,
                    week,
                    mode,
                    None,
                    now.as_millisecond(),
                )
                .await
                {
                    Ok(s) if !s.added.is_empty() => tracing::info!(
                        tenant = %t.id,
                        week = %s.week,
                        added = s.added.len(),
                        "QA sample: calls added to the queue"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(tenant = %t.id, error = %e, "QA sample failed"),
                }
            }
        }
        refresh_gauges(&store, &config, now.as_millisecond()).await;
        tokio::time::sleep(EVERY).await;
    }
}
