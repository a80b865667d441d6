//! The monthly statistics (D20) and the invoice (D24), computed from the store.
//!
//! ```text
//! call_records, dispositions, recordings, callback_requests, requests,
//! operator_state_changes, call_events (surge, hold)      (SQLite or Postgres)
//!        |  load::month_data: plain SELECTs, the same text on both back ends
//!        v
//!   MonthData (rows) --compute::monthly (pure)--> MonthlyReport --> xlsx / html / csv / json
//! ```
//!
//! The database only selects rows (by tenant and month, the month being the call's local
//! month in the tenant's time zone, as the store writes `call_records.month`); every figure
//! is counted in Rust from the rows, so SQLite and Postgres give the same report for the
//! same rows, down to the last percentile. Percentiles are nearest-rank over the exact
//! waits in milliseconds; averages are integer milliseconds (rounded down); shares are
//! percentages for display only; money is exact ([`money::Money`]).
//!
//! Personal data (D18): callers' numbers leave this module only masked
//! ([`crate::privacy::PhoneNumber::masked`]); repeat callers are counted by their full
//! number inside [`compute`] and shown masked.

pub mod billing;
pub mod compute;
pub mod csv;
pub mod html;
pub mod labels;
pub mod load;
// Money sits below `report` and `config` (which prices with it); kept reachable here.
pub use crate::money;
pub mod table;
pub mod xlsx;

pub use compute::{monthly, Context};
pub use load::{month_data, MonthData};

use serde::Serialize;
use std::fmt;

/// A calendar month, `2026-11`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Year, 2000..=2999.
    pub year: i16,
    /// Month, 1..=12.
    pub month: i8,
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The month is not `YYYY-MM`.
    #[error("\"{0}\" is not a month; write it as YYYY-MM, e.g. 2026-11")]
    Month(String),
    /// No such tenant in the configuration.
    #[error("no tenant \"{tenant}\" in the configuration; fix: use one of {known}")]
    Tenant {
        /// The id asked for.
        tenant: String,
        /// The configured ids.
        known: String,
    },
    /// The database failed.
    #[error("the database failed while the report was read: {0}")]
    Database(#[from] sqlx::Error),
    /// Callers' sealed numbers cannot be opened.
    #[error("the report cannot read callers' numbers: {0}")]
    Pii(#[from] crate::pii::PiiError),
    /// The invoice could not be priced.
    #[error("the invoice cannot be priced: {0}")]
    Billing(#[from] billing::BillingError),
    /// Writing an output failed.
    #[error("cannot write {path}: {detail}")]
    Write {
        /// The file or directory.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

impl Month {
    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Month, ReportError> {
        let bad = || ReportError::Month(text.to_owned());
        let t = text.trim();
        let (y, m) = t.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !(y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()))
        {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        if !(2000..=2999).contains(&year) || !(1..=12).contains(&month) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    /// The month `now` falls in, in `tz`.
    pub fn containing(now: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> Month {
        let d = tz.to_datetime(now).date();
        Month {
            year: d.year(),
            month: d.month(),
        }
    }

    /// The month before.
    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// The month after.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Its first day.
    pub fn first_day(self) -> jiff::civil::Date {
        // year and month are range-checked where a Month is made.
        jiff::civil::Date::new(self.year, self.month, 1).unwrap_or_default()
    }

    /// How many days it has.
    pub fn days(self) -> i8 {
        self.first_day().days_in_month()
    }

    /// `[start, end)` in Unix milliseconds: local midnight of its first day to local midnight
    /// of the next month's, in `tz`.
    pub fn range_ms(self, tz: &jiff::tz::TimeZone) -> (i64, i64) {
        let at = |m: Month| {
            m.first_day()
                .to_zoned_datetime(tz.clone())
                .map(|z| z.timestamp().as_millisecond())
                .unwrap_or(0)
        };
        (at(self), at(self.next()))
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A name and how many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    /// The code (`answered`, `web`, `high`...).
    pub key: String,
    /// How many.
    pub count: u64,
}

/// The headline figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Every call that arrived (every call record of the month).
    pub offered: u64,
    /// Answered by an operator.
    pub answered: u64,
    /// Abandoned, timed out, blocked or closed.
    pub missed: u64,
    /// Answered by the IVR's self-service (surge deflection).
    pub deflected: u64,
    /// The caller accepted a callback.
    pub callback_requested: u64,
    /// Callbacks of this month's calls that reached the caller.
    pub called_back: u64,
    /// IVR hang-ups, failures and calls without an outcome yet.
    pub other_ends: u64,
    /// Calls that joined a queue.
    pub queued: u64,
    /// Answered within the service-level target.
    pub answered_in_sl: u64,
    /// The target, seconds.
    pub sl_target_secs: u64,
    /// `answered_in_sl / queued`, percent (0 when nothing queued).
    pub service_level_pct: f64,
    /// Wait of answered calls, nearest-rank percentiles and mean, milliseconds.
    pub wait_p50_ms: u64,
    /// 90th percentile.
    pub wait_p90_ms: u64,
    /// 95th percentile.
    pub wait_p95_ms: u64,
    /// Mean (rounded down).
    pub wait_avg_ms: u64,
    /// Talk time of answered calls, milliseconds.
    pub talk_total_ms: u64,
    /// Per answered call (rounded down).
    pub talk_avg_ms: u64,
    /// Time on hold (either side), milliseconds.
    pub hold_total_ms: u64,
    /// Per answered call.
    pub hold_avg_ms: u64,
    /// Operators' after-call work following this month's answered calls, milliseconds.
    pub wrap_total_ms: u64,
    /// Per answered call.
    pub wrap_avg_ms: u64,
    /// Calls that arrived while the tenant was in surge mode.
    pub surge_calls: u64,
}

/// One local day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DayRow {
    /// `2026-11-03`.
    pub day: String,
    /// Calls that arrived.
    pub offered: u64,
    /// Answered.
    pub answered: u64,
    /// Missed (abandoned, timed out, blocked, closed).
    pub missed: u64,
    /// Deflected.
    pub deflected: u64,
    /// Callback requested.
    pub callback_requested: u64,
    /// Anything else.
    pub other: u64,
}

/// A topic, by the caller's IVR choice and by the operator's classification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TopicRow {
    /// Topic code; empty for "none".
    pub code: String,
    /// Label, Uzbek.
    pub label_uz: String,
    /// Label, Russian.
    pub label_ru: String,
    /// Calls whose IVR choice was this topic.
    pub ivr_calls: u64,
    /// Of those, answered.
    pub ivr_answered: u64,
    /// Calls the operator classified under this topic.
    pub classified: u64,
    /// Calls with this topic both ways.
    pub agree: u64,
}

/// A category of request (D20).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CategoryRow {
    /// `question`, `complaint`, `suggestion`, `application`.
    pub category: String,
    /// Calls so classified.
    pub calls: u64,
    /// Resolved.
    pub resolved: u64,
    /// Unresolved.
    pub unresolved: u64,
    /// Disputed.
    pub disputed: u64,
}

/// One operator's month.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperatorRow {
    /// Extension.
    pub ext: String,
    /// Name from the configuration.
    pub name: String,
    /// Calls answered.
    pub calls: u64,
    /// Talk, ms.
    pub talk_ms: u64,
    /// Hold, ms.
    pub hold_ms: u64,
    /// After-call work, ms.
    pub wrap_ms: u64,
    /// Talk + hold + after-call work, ms.
    pub handle_ms: u64,
    /// Per call (rounded down).
    pub handle_avg_ms: u64,
    /// Calls they classified.
    pub dispositions: u64,
    /// Of those, resolved.
    pub resolved: u64,
    /// `resolved / dispositions`, percent.
    pub resolved_pct: f64,
    /// The mean QA score (D17, per cent) of their calls' evaluations saved in the month
    /// (calibration scores not counted); `None` when none was.
    pub qa_score: Option<f64>,
    /// How many evaluations that mean is of.
    pub qa_count: u64,
}

/// Repeat callers (numbers masked).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RepeatStats {
    /// Distinct numbers that called.
    pub callers: u64,
    /// Numbers that called more than once.
    pub repeat_callers: u64,
    /// `repeat_callers / callers`, percent.
    pub repeat_share_pct: f64,
    /// Calls from those numbers.
    pub repeat_calls: u64,
    /// Calls the store linked to an earlier call of the same number (`repeat_of`).
    pub marked_repeats: u64,
    /// Calls without a number.
    pub anonymous: u64,
    /// `(times, numbers, calls)`: how many numbers called 1, 2, 3, 4, 5, 6-10, 11+ times.
    pub distribution: Vec<RepeatBucket>,
    /// The most frequent callers (masked), most calls first, at most 20.
    pub top: Vec<Count>,
}

/// A bucket of the repeat distribution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepeatBucket {
    /// `1`, `2`, ..., `6-10`, `11+`.
    pub times: String,
    /// Numbers that called so many times.
    pub callers: u64,
    /// Their calls.
    pub calls: u64,
}

/// Requests registered in the month.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestStats {
    /// All.
    pub total: u64,
    /// By channel.
    pub by_channel: Vec<Count>,
    /// By priority.
    pub by_priority: Vec<Count>,
    /// Resolved or closed with no clock breached.
    pub sla_met: u64,
    /// At least one clock breached.
    pub sla_breached: u64,
    /// Still open, nothing breached yet.
    pub sla_open: u64,
    /// Breaches by clock.
    pub breaches_by_clock: Vec<Count>,
}

/// A stretch of surge mode and what it did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SurgePeriod {
    /// Local start, `2026-11-20 09:00`.
    pub from: String,
    /// Local end (or the month's end).
    pub to: String,
    /// Minutes.
    pub minutes: u64,
    /// Who or what switched it on (`calendar`, `auto:...`, `manual:<who>`).
    pub by: String,
    /// Calls that arrived in it.
    pub calls: u64,
    /// Answered.
    pub answered: u64,
    /// Deflected to self-service.
    pub deflected: u64,
    /// Callback accepted.
    pub callback_requested: u64,
    /// Abandoned, timed out, blocked or closed.
    pub missed: u64,
}

/// One call, as the details sheet lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DetailRow {
    /// The store's name of the call.
    pub call: String,
    /// Local arrival, `2026-11-03 14:22:05`.
    pub time: String,
    /// The caller's number, masked (D18).
    pub number: String,
    /// `uz`, `ru`.
    pub language: String,
    /// The IVR topic.
    pub ivr_topic: String,
    /// The operator's classification.
    pub topic: String,
    /// Category.
    pub category: String,
    /// `resolved`, `unresolved`, `disputed` or empty.
    pub resolution: String,
    /// Outcome.
    pub outcome: String,
    /// Operator's extension.
    pub operator: String,
    /// Wait, ms.
    pub wait_ms: u64,
    /// Talk, ms.
    pub talk_ms: u64,
    /// Hold, ms.
    pub hold_ms: u64,
    /// After-call work, ms.
    pub wrap_ms: u64,
    /// Arrived in surge mode.
    pub surge: bool,
    /// Calls from this number in the month (this one included); 0 without a number.
    pub caller_calls: u64,
    /// A recording exists.
    pub recording: bool,
    /// The call's page in the desk (recording behind the role checks of its routes).
    pub link: String,
}

/// A tenant's month.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonthlyReport {
    /// Tenant id.
    pub tenant: String,
    /// Tenant name, Uzbek.
    pub tenant_name_uz: String,
    /// Tenant name, Russian.
    pub tenant_name_ru: String,
    /// `2026-11`.
    pub month: String,
    /// IANA name (or offset) of the zone the month and times are in.
    pub time_zone: String,
    /// Headline figures.
    pub summary: Summary,
    /// Every outcome, in a fixed order, with calls.
    pub outcomes: Vec<Count>,
    /// One row per local day.
    pub days: Vec<DayRow>,
    /// Topics, IVR and classification side by side.
    pub topics: Vec<TopicRow>,
    /// Categories with their resolution.
    pub categories: Vec<CategoryRow>,
    /// Answered calls nobody classified.
    pub not_classified: u64,
    /// Per operator.
    pub operators: Vec<OperatorRow>,
    /// Repeat callers.
    pub repeat: RepeatStats,
    /// Requests of the month.
    pub requests: RequestStats,
    /// Surge periods.
    pub surge: Vec<SurgePeriod>,
    /// Every call.
    pub details: Vec<DetailRow>,
    /// The invoice, when the tenant has `[tenant.billing]`.
    pub invoice: Option<billing::Invoice>,
}

/// Reads `tenant`'s `month` from the store and counts it: the whole report.
/// `pii` opens the callers' sealed numbers ([`crate::pii`]; the report shows them masked and
/// counts distinct callers by their lookup hash).
pub async fn build(
    pool: &sqlx::AnyPool,
    pii: Option<&crate::pii::Pii>,
    config: &crate::config::Config,
    tenant: &str,
    month: Month,
) -> Result<MonthlyReport, ReportError> {
    let ctx = Context::from_config(config, tenant, month)?;
    let data = month_data(pool, pii, &ctx.tenant, month, &ctx.tz).await?;
    monthly(&ctx, &data)
}

/// The invoice as text for a terminal (`navbat report billing`), both languages.
pub fn invoice_text(r: &MonthlyReport) -> Option<String> {
    use labels::Lang::Both;
    let inv = r.invoice.as_ref()?;
    let mut out = format!(
        "{}: {} / {} ({}), {}\n",
        Both.of(labels::INVOICE),
        r.tenant_name_uz,
        r.tenant_name_ru,
        r.tenant,
        r.month
    );
    let line = |out: &mut String, label: labels::L, value: String| {
        out.push_str(&format!("{:<62} {value}\n", Both.of(label)));
    };
    line(
        &mut out,
        labels::PRICING,
        Both.of(if inv.pricing == "graduated" {
            labels::PRICING_GRADUATED
        } else {
            labels::PRICING_VOLUME
        }),
    );
    for (outcome, n) in &inv.billable {
        out.push_str(&format!(
            "  {:<60} {n}\n",
            Both.of(labels::outcome(outcome))
        ));
    }
    line(&mut out, labels::VOLUME, inv.volume.to_string());
    line(
        &mut out,
        labels::TIER,
        format!("{} ({})", inv.tier, inv.tier_range),
    );
    line(
        &mut out,
        labels::UNIT_PRICE,
        format!("{} {}", inv.unit_price, inv.currency),
    );
    if inv.lines.len() > 1 {
        for l in &inv.lines {
            out.push_str(&format!(
                "  {} {}: {}-{} x {} = {} {}\n",
                Both.of(labels::TIER),
                l.tier,
                l.from_call,
                l.to_call,
                l.unit_price,
                l.amount,
                inv.currency
            ));
        }
    }
    line(
        &mut out,
        labels::TOTAL,
        format!("{} {}", inv.total, inv.currency),
    );
    Some(out)
}

/// Milliseconds as seconds with one decimal, for display (`12.3`).
pub fn secs(ms: u64) -> f64 {
    (ms / 100) as f64 / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_strictly_and_know_their_range() {
        let m = Month::parse("2026-11").unwrap();
        assert_eq!(m.to_string(), "2026-11");
        assert_eq!(m.days(), 30);
        assert_eq!(Month::parse("2028-02").unwrap().days(), 29);
        for bad in [
            "2026-13", "2026-1", "26-11", "2026/11", "", "abcd-ef", "1999-01", "2026-00",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(5));
        let (start, end) = m.range_ms(&tz);
        // 2026-11-01T00:00+05:00 = 2026-10-31T19:00Z.
        assert_eq!(start, 1_793_473_200_000);
        assert_eq!(end - start, 30 * 86_400_000);
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
        assert_eq!(
            Month::parse("2026-01").unwrap().previous().to_string(),
            "2025-12"
        );
    }
}
