//! What the report reads from the store: plain `SELECT`s by tenant and month, written once
//! for both back ends (`$n` placeholders, `CAST(... AS BIGINT)` for flags, no dialect
//! functions), each returning rows the pure [`super::compute`] counts.

use super::Month;
use serde::Deserialize;
use sqlx::{AnyPool, Row};
use std::collections::{BTreeSet, HashSet};

/// One call record. `Debug` masks the number.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CallRow {
    /// `node:boot:call`.
    pub uid: String,
    /// The full number, opened (personal data: only [`super::compute`] sees it, to show it
    /// masked).
    pub caller: Option<String>,
    /// The lookup hash of the number ([`crate::pii::Pii::lookup`]): repeats are counted by it.
    pub caller_key: Option<String>,
    /// Arrival, Unix ms.
    pub arrived_at_ms: i64,
    /// Joined a queue.
    pub enqueued_at_ms: Option<i64>,
    /// Answered.
    pub answered_at_ms: Option<i64>,
    /// Ended.
    pub ended_at_ms: Option<i64>,
    /// Language chosen.
    pub language: Option<String>,
    /// IVR topic.
    pub topic: Option<String>,
    /// Operator who answered.
    pub operator: Option<String>,
    /// Outcome (`None` while the call has not ended).
    pub outcome: Option<String>,
    /// Wait in queue, ms.
    pub wait_ms: Option<i64>,
    /// Talk, ms.
    pub talk_ms: Option<i64>,
    /// Arrived in surge mode.
    pub surge: bool,
    /// The earlier call of the same number it repeats.
    pub repeat_of: Option<String>,
    /// A recording exists.
    pub recording: bool,
}

impl std::fmt::Debug for CallRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let caller = self
            .caller
            .as_deref()
            .map(|c| crate::privacy::PhoneNumber::new(c).masked());
        write!(
            f,
            "CallRow({} {:?} {:?} at {})",
            self.uid, caller, self.outcome, self.arrived_at_ms
        )
    }
}

/// An operator's after-call form on a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispositionRow {
    /// The call.
    pub call_uid: String,
    /// Who took the call.
    pub operator: Option<String>,
    /// The operator's topic.
    pub topic: Option<String>,
    /// Category.
    pub category: String,
    /// `resolved`, `unresolved` or `disputed`.
    pub resolution: String,
}

/// A request registered in the month.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRow {
    /// Number.
    pub id: String,
    /// Channel.
    pub channel: String,
    /// Priority.
    pub priority: String,
    /// Status.
    pub status: String,
    /// Clocks recorded as breached.
    pub breaches: Vec<String>,
}

/// A surge switch of the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurgeSwitch {
    /// When, Unix ms.
    pub at_ms: i64,
    /// On or off.
    pub on: bool,
    /// Who or what switched it.
    pub by: String,
}

/// A hold or resume on a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldMark {
    /// The call.
    pub call_uid: String,
    /// When.
    pub at_ms: i64,
    /// `caller` or `operator`.
    pub by: String,
    /// Held (true) or resumed.
    pub held: bool,
}

/// An operator's state change around after-call work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// Extension.
    pub operator: String,
    /// From.
    pub from: String,
    /// To.
    pub to: String,
    /// When.
    pub at_ms: i64,
}

/// Everything the report counts for one tenant and month.
#[derive(Clone, Debug, Default)]
pub struct MonthData {
    /// The month's call records, by arrival.
    pub calls: Vec<CallRow>,
    /// Their dispositions.
    pub dispositions: Vec<DispositionRow>,
    /// `(call_uid, status)` of the callbacks booked for them.
    pub callbacks: Vec<(String, String)>,
    /// Requests registered in the month.
    pub requests: Vec<RequestRow>,
    /// The last surge switch before the month.
    pub surge_before: Option<SurgeSwitch>,
    /// Surge switches in the month.
    pub surge: Vec<SurgeSwitch>,
    /// Holds on the month's calls.
    pub holds: Vec<HoldMark>,
    /// State changes of the operators who answered the month's calls, by time.
    pub states: Vec<StateChange>,
    /// QA evaluations saved in the month, per operator: (ext, count, mean in tenths of a
    /// per cent).
    pub qa: Vec<(String, u32, f64)>,
}

/// How far past the month's end a call that arrived in it may still be talking, on hold or
/// in after-call work (its holds and wrap-up are read up to here).
pub const TAIL_MS: i64 = 24 * 3_600_000;

/// Reads a tenant's month from the store. `tz` is the tenant's zone.
pub async fn month_data(
    pool: &AnyPool,
    pii: Option<&crate::pii::Pii>,
    tenant: &str,
    month: Month,
    tz: &jiff::tz::TimeZone,
) -> Result<MonthData, sqlx::Error> {
    let (start, end) = month.range_ms(tz);
    let month_text = month.to_string();
    let mut data = MonthData {
        qa: crate::store::qa::operator_means(pool, tenant, start, end).await?,
        ..MonthData::default()
    };
    let rows = sqlx::query(
        "SELECT call_uid, caller_number, arrived_at_ms, enqueued_at_ms, answered_at_ms, \
         ended_at_ms, language, topic, operator, outcome, wait_ms, talk_ms, \
         CAST(CASE WHEN surge THEN 1 ELSE 0 END AS BIGINT), repeat_of, \
         CAST(CASE WHEN recording_ref IS NOT NULL OR EXISTS (SELECT 1 FROM recordings r \
         WHERE r.call_uid = call_records.call_uid) THEN 1 ELSE 0 END AS BIGINT), \
         caller_lookup FROM call_records WHERE tenant = $1 AND month = $2",
    )
    .bind(tenant.to_owned())
    .bind(month_text.clone())
    .fetch_all(pool)
    .await?;
    data.calls.reserve(rows.len());
    for r in &rows {
        data.calls.push(CallRow {
            uid: r.try_get(0)?,
            caller: crate::pii::open_opt(pii, crate::pii::field::CALLER_NUMBER, r.try_get(1)?)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            caller_key: r.try_get(15)?,
            arrived_at_ms: r.try_get::<Option<i64>, _>(2)?.unwrap_or(start),
            enqueued_at_ms: r.try_get(3)?,
            answered_at_ms: r.try_get(4)?,
            ended_at_ms: r.try_get(5)?,
            language: r.try_get(6)?,
            topic: r.try_get(7)?,
            operator: r.try_get(8)?,
            outcome: r.try_get(9)?,
            wait_ms: r.try_get(10)?,
            talk_ms: r.try_get(11)?,
            surge: r.try_get::<i64, _>(12)? != 0,
            repeat_of: r.try_get(13)?,
            recording: r.try_get::<i64, _>(14)? != 0,
        });
    }
    drop(rows);
    blocked_summaries(pool, tenant, start, end, &mut data.calls).await?;
    // Arrival order, then the name: the same order whatever order the database returned.
    data.calls
        .sort_by(|a, b| (a.arrived_at_ms, &a.uid).cmp(&(b.arrived_at_ms, &b.uid)));

    let rows = sqlx::query(
        "SELECT d.call_uid, d.operator, d.topic_code, d.category, d.outcome, \
         CAST(CASE WHEN d.disputed THEN 2 WHEN d.resolved THEN 1 ELSE 0 END AS BIGINT) \
         FROM dispositions d JOIN call_records c ON c.call_uid = d.call_uid \
         WHERE c.tenant = $1 AND c.month = $2",
    )
    .bind(tenant.to_owned())
    .bind(month_text.clone())
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let outcome: Option<String> = r.try_get(4)?;
        let flags: i64 = r.try_get(5)?;
        let resolution = match outcome.as_deref() {
            Some(o @ ("resolved" | "unresolved" | "disputed")) => o.to_owned(),
            _ => match flags {
                2 => "disputed",
                1 => "resolved",
                _ => "unresolved",
            }
            .to_owned(),
        };
        data.dispositions.push(DispositionRow {
            call_uid: r.try_get(0)?,
            operator: r.try_get(1)?,
            topic: r.try_get(2)?,
            category: r.try_get(3)?,
            resolution,
        });
    }
    data.dispositions
        .sort_by(|a, b| a.call_uid.cmp(&b.call_uid));

    // Callbacks are booked under the original call's arrival, so the month's range finds them.
    let rows = sqlx::query(
        "SELECT call_uid, status FROM callback_requests \
         WHERE tenant = $1 AND arrived_at_ms >= $2 AND arrived_at_ms < $3",
    )
    .bind(tenant.to_owned())
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let call: Option<String> = r.try_get(0)?;
        data.callbacks
            .push((call.unwrap_or_default(), r.try_get::<String, _>(1)?));
    }
    data.callbacks.sort();

    let rows = sqlx::query(
        "SELECT id, channel, priority, status, head FROM requests \
         WHERE tenant = $1 AND registered_at_ms >= $2 AND registered_at_ms < $3",
    )
    .bind(tenant.to_owned())
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    #[derive(Deserialize)]
    struct HeadBreaches {
        #[serde(default)]
        breaches: Vec<String>,
    }
    for r in &rows {
        let head: String = r.try_get(4)?;
        let breaches = serde_json::from_str::<HeadBreaches>(&head)
            .map(|h| h.breaches)
            .unwrap_or_default();
        data.requests.push(RequestRow {
            id: r.try_get(0)?,
            channel: r.try_get(1)?,
            priority: r.try_get(2)?,
            status: r.try_get(3)?,
            breaches,
        });
    }
    data.requests.sort_by(|a, b| a.id.cmp(&b.id));

    // Surge switches: every one up to the month's end (there are few), to know the state the
    // month began in.
    let rows = sqlx::query(
        "SELECT at_ms, body FROM call_events WHERE kind = 'surge_changed' AND at_ms < $1 \
         ORDER BY at_ms, event_uid",
    )
    .bind(end)
    .fetch_all(pool)
    .await?;
    #[derive(Deserialize)]
    struct Surge {
        tenant: String,
        on: bool,
        #[serde(default)]
        by: String,
    }
    for r in &rows {
        let at: i64 = r.try_get(0)?;
        let body: String = r.try_get(1)?;
        let Ok(s) = serde_json::from_str::<Surge>(&body) else {
            continue;
        };
        if s.tenant != tenant {
            continue;
        }
        let switch = SurgeSwitch {
            at_ms: at,
            on: s.on,
            by: s.by,
        };
        if at < start {
            data.surge_before = Some(switch);
        } else {
            data.surge.push(switch);
        }
    }

    // Holds of the month's calls (a call arriving on the last evening may be held after
    // midnight).
    let uids: HashSet<&str> = data.calls.iter().map(|c| c.uid.as_str()).collect();
    let rows = sqlx::query(
        "SELECT call_uid, at_ms, body FROM call_events WHERE kind = 'call_hold' \
         AND at_ms >= $1 AND at_ms < $2 ORDER BY at_ms, event_uid",
    )
    .bind(start)
    .bind(end + TAIL_MS)
    .fetch_all(pool)
    .await?;
    #[derive(Deserialize)]
    struct Hold {
        by: String,
        held: bool,
    }
    for r in &rows {
        let call: Option<String> = r.try_get(0)?;
        let Some(call) = call.filter(|c| uids.contains(c.as_str())) else {
            continue;
        };
        let body: String = r.try_get(2)?;
        let Ok(h) = serde_json::from_str::<Hold>(&body) else {
            continue;
        };
        data.holds.push(HoldMark {
            call_uid: call,
            at_ms: r.try_get(1)?,
            by: h.by,
            held: h.held,
        });
    }

    // After-call work: the state changes of the operators who answered, by operator (the
    // table's index), from the month's start to a day past its end.
    let operators: BTreeSet<&str> = data
        .calls
        .iter()
        .filter_map(|c| c.operator.as_deref())
        .collect();
    for op in operators {
        let rows = sqlx::query(
            "SELECT from_state, to_state, at_ms FROM operator_state_changes \
             WHERE operator = $1 AND at_ms >= $2 AND at_ms < $3 ORDER BY at_ms, event_uid",
        )
        .bind(op.to_owned())
        .bind(start)
        .bind(end + TAIL_MS)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            data.states.push(StateChange {
                operator: op.to_owned(),
                from: r.try_get(0)?,
                to: r.try_get(1)?,
                at_ms: r.try_get(2)?,
            });
        }
    }
    Ok(data)
}

/// Calls the SIP guard refused for full channels are counted, not recorded one by one
/// (`blocked_summary` events, issue 18): each summary of `tenant` in `[start, end)` adds its
/// count of blocked calls, arrived at the summary's time, with no caller (so they count as
/// blocked and missed, never as repeats).
async fn blocked_summaries(
    pool: &AnyPool,
    tenant: &str,
    start: i64,
    end: i64,
    calls: &mut Vec<CallRow>,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT event_uid, at_ms, body FROM call_events \
         WHERE kind = 'blocked_summary' AND at_ms >= $1 AND at_ms < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let uid: String = r.try_get(0)?;
        let at: i64 = r.try_get(1)?;
        let body: String = r.try_get(2)?;
        let Ok(crate::events::EventKind::BlockedSummary {
            tenant: of, count, ..
        }) = serde_json::from_str(&body)
        else {
            continue;
        };
        if of != tenant {
            continue;
        }
        // A summary covers at most a second of one tenant's refusals; the bound keeps a
        // corrupt count from exhausting memory.
        for k in 0..count.min(MAX_BLOCKED_PER_SUMMARY) {
            calls.push(CallRow {
                uid: format!("{uid}#{k}"),
                caller: None,
                caller_key: None,
                arrived_at_ms: at,
                enqueued_at_ms: None,
                answered_at_ms: None,
                ended_at_ms: Some(at),
                language: None,
                topic: None,
                operator: None,
                outcome: Some("blocked".to_owned()),
                wait_ms: Some(0),
                talk_ms: Some(0),
                surge: false,
                repeat_of: None,
                recording: false,
            });
        }
    }
    Ok(())
}

/// Most blocked calls one `blocked_summary` stands for in the report (a second of a flood
/// far above any trunk's rate).
const MAX_BLOCKED_PER_SUMMARY: u64 = 1_000_000;
