//! The monthly report counted from the month's rows: pure, no clock, no I/O.

use super::load::{CallRow, MonthData};
use super::{
    billing, CategoryRow, Count, DayRow, DetailRow, Month, MonthlyReport, OperatorRow,
    RepeatBucket, RepeatStats, ReportError, RequestStats, Summary, SurgePeriod, TopicRow,
};
use crate::config::billing::{TenantBilling, OUTCOME_NAMES};
use crate::config::{Bilingual, Config};
use crate::privacy::PhoneNumber;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the report needs to know of the tenant besides the rows.
#[derive(Clone, Debug)]
pub struct Context {
    /// Tenant id.
    pub tenant: String,
    /// Its name.
    pub name: Bilingual,
    /// Its time zone.
    pub tz: jiff::tz::TimeZone,
    /// The month.
    pub month: Month,
    /// Answered within this wait counts toward the service level.
    pub service_level_ms: u64,
    /// The IVR's topics, in menu order, with labels.
    pub ivr_topics: Vec<(String, Bilingual)>,
    /// The operators' classifier, with labels.
    pub classifier: Vec<(String, Bilingual)>,
    /// Operators' names by extension.
    pub operator_names: HashMap<String, String>,
    /// Billing rules.
    pub billing: Option<TenantBilling>,
}

impl Context {
    /// The context of `tenant`'s `month` from the configuration.
    pub fn from_config(
        config: &Config,
        tenant: &str,
        month: Month,
    ) -> Result<Context, ReportError> {
        let t = config.tenant(tenant).ok_or_else(|| ReportError::Tenant {
            tenant: tenant.to_owned(),
            known: config
                .tenants
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        Ok(Context {
            tenant: t.id.clone(),
            name: t.name.clone(),
            tz: t.timezone.clone(),
            month,
            service_level_ms: u64::try_from(t.service_level.as_millis()).unwrap_or(u64::MAX),
            ivr_topics: t
                .ivr
                .topics
                .iter()
                .map(|x| (x.topic.clone(), x.label.clone()))
                .collect(),
            classifier: t.desk.classifier.clone(),
            operator_names: config
                .operators
                .iter()
                .map(|o| (o.ext.clone(), o.name.clone()))
                .collect(),
            billing: t.billing.clone(),
        })
    }

    /// The zone's name as people know it (`Asia/Tashkent`), or its offset.
    pub fn tz_name(&self) -> String {
        self.tz
            .iana_name()
            .map(str::to_owned)
            .unwrap_or_else(|| self.tz.to_offset(jiff::Timestamp::UNIX_EPOCH).to_string())
    }

    fn local(&self, ms: i64, format: &str) -> String {
        jiff::Timestamp::from_millisecond(ms)
            .map(|ts| self.tz.to_datetime(ts).strftime(format).to_string())
            .unwrap_or_default()
    }
}

/// Outcomes that count as missed (D20).
pub const MISSED: [&str; 4] = ["abandoned", "timed_out", "blocked", "closed"];

/// Calls whose after-call work starts this long before the call's end still own it (the
/// operator's state and the call's end are separate events).
const WRAP_BEFORE_END_MS: i64 = 2_000;
/// ... or this long after it.
const WRAP_AFTER_END_MS: i64 = 10_000;

fn nonneg(v: Option<i64>) -> u64 {
    v.map_or(0, |x| u64::try_from(x).unwrap_or(0))
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Rounded to 0.01 so that every reader shows the same figure.
        (part as f64 * 10_000.0 / whole as f64).round() / 100.0
    }
}

/// The nearest-rank `q`-th percentile (0 < q <= 100) of sorted values: the smallest value
/// with at least q % of the values at or below it.
pub fn nearest_rank(sorted: &[u64], q: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len() as u64;
    let rank = (q * n).div_ceil(100).clamp(1, n);
    sorted[(rank - 1) as usize]
}

/// Hold time of one call from its marks (time order): the time either side held it, inside
/// `[answered, ended]`.
fn hold_of(marks: &[(i64, &str, bool)], answered: Option<i64>, ended: Option<i64>) -> u64 {
    let (Some(from), Some(to)) = (answered, ended) else {
        return 0;
    };
    if to < from {
        return 0;
    }
    let mut held: BTreeSet<&str> = BTreeSet::new();
    let mut since = from;
    let mut total = 0i64;
    for &(at, by, on) in marks {
        let at = at.clamp(from, to);
        if !held.is_empty() {
            total = total.saturating_add(at.saturating_sub(since));
        }
        since = at;
        if on {
            held.insert(by);
        } else {
            held.remove(by);
        }
    }
    if !held.is_empty() {
        total = total.saturating_add(to.saturating_sub(since));
    }
    u64::try_from(total).unwrap_or(0)
}

/// Counts the month.
pub fn monthly(ctx: &Context, data: &MonthData) -> Result<MonthlyReport, ReportError> {
    let calls = &data.calls;
    let (start, end) = ctx.month.range_ms(&ctx.tz);
    let outcome_of = |c: &CallRow| c.outcome.clone().unwrap_or_else(|| "unfinished".into());

    // Holds per call.
    let mut marks: HashMap<&str, Vec<(i64, &str, bool)>> = HashMap::new();
    for h in &data.holds {
        marks
            .entry(h.call_uid.as_str())
            .or_default()
            .push((h.at_ms, h.by.as_str(), h.held));
    }
    let hold: HashMap<&str, u64> = calls
        .iter()
        .filter_map(|c| {
            let m = marks.get(c.uid.as_str())?;
            Some((c.uid.as_str(), hold_of(m, c.answered_at_ms, c.ended_at_ms)))
        })
        .collect();

    // After-call work: each wrap-up stretch of an operator goes to their answered call that
    // ended just before it.
    let mut wrap: HashMap<&str, u64> = HashMap::new();
    let mut stretches: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    let mut by_op: HashMap<&str, Vec<&super::load::StateChange>> = HashMap::new();
    for s in &data.states {
        by_op.entry(s.operator.as_str()).or_default().push(s);
    }
    for (op, changes) in &by_op {
        let mut list = Vec::new();
        for (i, s) in changes.iter().enumerate() {
            if s.to == "wrap_up" {
                if let Some(next) = changes.get(i + 1) {
                    list.push((s.at_ms, next.at_ms.max(s.at_ms)));
                }
            }
        }
        stretches.insert(op, list);
    }
    let mut answered_by_op: HashMap<&str, Vec<&CallRow>> = HashMap::new();
    for c in calls {
        if c.outcome.as_deref() == Some("answered") {
            if let (Some(op), Some(_)) = (c.operator.as_deref(), c.ended_at_ms) {
                answered_by_op.entry(op).or_default().push(c);
            }
        }
    }
    for (op, list) in answered_by_op.iter_mut() {
        list.sort_by_key(|c| (c.ended_at_ms, c.uid.as_str()));
        let Some(st) = stretches.get(op) else {
            continue;
        };
        let mut k = 0;
        for c in list.iter() {
            let ended = c.ended_at_ms.unwrap_or(0);
            while k < st.len() && st[k].0 < ended.saturating_sub(WRAP_BEFORE_END_MS) {
                k += 1;
            }
            if k < st.len() && st[k].0 <= ended.saturating_add(WRAP_AFTER_END_MS) {
                wrap.insert(
                    c.uid.as_str(),
                    u64::try_from(st[k].1.saturating_sub(st[k].0)).unwrap_or(0),
                );
                k += 1;
            }
        }
    }

    // Outcomes.
    let mut outcome_counts: BTreeMap<String, u64> = BTreeMap::new();
    for c in calls {
        *outcome_counts.entry(outcome_of(c)).or_default() += 1;
    }
    let get = |k: &str| outcome_counts.get(k).copied().unwrap_or(0);
    let mut outcomes: Vec<Count> = OUTCOME_NAMES
        .iter()
        .map(|k| Count {
            key: (*k).to_owned(),
            count: get(k),
        })
        .collect();
    for (k, v) in &outcome_counts {
        if !OUTCOME_NAMES.contains(&k.as_str()) {
            outcomes.push(Count {
                key: k.clone(),
                count: *v,
            });
        }
    }

    // Waits, talk, hold, wrap-up.
    let answered: Vec<&CallRow> = calls
        .iter()
        .filter(|c| c.outcome.as_deref() == Some("answered"))
        .collect();
    let mut waits: Vec<u64> = answered.iter().map(|c| nonneg(c.wait_ms)).collect();
    waits.sort_unstable();
    let n_answered = answered.len() as u64;
    let avg = |total: u64| total.checked_div(n_answered).unwrap_or(0);
    let queued = calls.iter().filter(|c| c.enqueued_at_ms.is_some()).count() as u64;
    let in_sl = answered
        .iter()
        .filter(|c| c.enqueued_at_ms.is_some() && nonneg(c.wait_ms) <= ctx.service_level_ms)
        .count() as u64;
    let talk_total: u64 = answered.iter().map(|c| nonneg(c.talk_ms)).sum();
    let hold_total: u64 = answered
        .iter()
        .map(|c| hold.get(c.uid.as_str()).copied().unwrap_or(0))
        .sum();
    let wrap_total: u64 = answered
        .iter()
        .map(|c| wrap.get(c.uid.as_str()).copied().unwrap_or(0))
        .sum();
    let wait_total: u64 = waits.iter().sum();
    let called_back = data
        .callbacks
        .iter()
        .filter(|(_, status)| status == "connected")
        .count() as u64;
    let missed: u64 = MISSED.iter().map(|k| get(k)).sum();
    let summary = Summary {
        offered: calls.len() as u64,
        answered: get("answered"),
        missed,
        deflected: get("deflected"),
        callback_requested: get("callback_requested"),
        called_back,
        other_ends: calls.len() as u64
            - get("answered")
            - missed
            - get("deflected")
            - get("callback_requested"),
        queued,
        answered_in_sl: in_sl,
        sl_target_secs: ctx.service_level_ms / 1000,
        service_level_pct: pct(in_sl, queued),
        wait_p50_ms: nearest_rank(&waits, 50),
        wait_p90_ms: nearest_rank(&waits, 90),
        wait_p95_ms: nearest_rank(&waits, 95),
        wait_avg_ms: avg(wait_total),
        talk_total_ms: talk_total,
        talk_avg_ms: avg(talk_total),
        hold_total_ms: hold_total,
        hold_avg_ms: avg(hold_total),
        wrap_total_ms: wrap_total,
        wrap_avg_ms: avg(wrap_total),
        surge_calls: calls.iter().filter(|c| c.surge).count() as u64,
    };

    // Days.
    let first = ctx.month.first_day();
    let mut days: Vec<DayRow> = (0..ctx.month.days())
        .map(|d| DayRow {
            day: first
                .checked_add(jiff::Span::new().days(i64::from(d)))
                .map(|x| x.to_string())
                .unwrap_or_default(),
            ..DayRow::default()
        })
        .collect();
    for c in calls {
        let day = jiff::Timestamp::from_millisecond(c.arrived_at_ms)
            .map(|ts| ctx.tz.to_datetime(ts).day())
            .unwrap_or(1);
        let Some(row) = days.get_mut(usize::try_from(day - 1).unwrap_or(0)) else {
            continue;
        };
        row.offered += 1;
        match c.outcome.as_deref() {
            Some("answered") => row.answered += 1,
            Some(o) if MISSED.contains(&o) => row.missed += 1,
            Some("deflected") => row.deflected += 1,
            Some("callback_requested") => row.callback_requested += 1,
            _ => row.other += 1,
        }
    }

    // Dispositions.
    let disp: HashMap<&str, &super::load::DispositionRow> = data
        .dispositions
        .iter()
        .map(|d| (d.call_uid.as_str(), d))
        .collect();

    // Topics.
    let mut codes: Vec<String> = Vec::new();
    let mut labels: HashMap<String, Bilingual> = HashMap::new();
    for (code, label) in ctx.ivr_topics.iter().chain(ctx.classifier.iter()) {
        if !codes.contains(code) {
            codes.push(code.clone());
            labels.insert(code.clone(), label.clone());
        }
    }
    let mut extra: BTreeSet<String> = BTreeSet::new();
    for c in calls {
        extra.insert(c.topic.clone().unwrap_or_default());
    }
    for d in &data.dispositions {
        extra.insert(d.topic.clone().unwrap_or_default());
    }
    let has_none = extra.remove("");
    for code in extra {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    if has_none {
        codes.push(String::new());
    }
    let mut topic_index: HashMap<String, TopicRow> = codes
        .iter()
        .map(|code| {
            let (uz, ru) = match (code.as_str(), labels.get(code)) {
                ("", _) => (
                    super::labels::NONE.uz.to_owned(),
                    super::labels::NONE.ru.to_owned(),
                ),
                (_, Some(l)) => (l.uz.clone(), l.ru.clone()),
                (c, None) => (c.to_owned(), c.to_owned()),
            };
            (
                code.clone(),
                TopicRow {
                    code: code.clone(),
                    label_uz: uz,
                    label_ru: ru,
                    ivr_calls: 0,
                    ivr_answered: 0,
                    classified: 0,
                    agree: 0,
                },
            )
        })
        .collect();
    for c in calls {
        let code = c.topic.clone().unwrap_or_default();
        if let Some(row) = topic_index.get_mut(&code) {
            row.ivr_calls += 1;
            if c.outcome.as_deref() == Some("answered") {
                row.ivr_answered += 1;
            }
        }
        if let Some(d) = disp.get(c.uid.as_str()) {
            if d.topic.is_some() && d.topic == c.topic {
                if let Some(row) = topic_index.get_mut(&code) {
                    row.agree += 1;
                }
            }
        }
    }
    for d in &data.dispositions {
        if let Some(row) = topic_index.get_mut(d.topic.as_deref().unwrap_or("")) {
            row.classified += 1;
        }
    }
    let topics: Vec<TopicRow> = codes.iter().filter_map(|c| topic_index.remove(c)).collect();

    // Categories.
    let mut cat_codes: Vec<String> = ["question", "complaint", "suggestion", "application"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for d in &data.dispositions {
        if !cat_codes.contains(&d.category) {
            cat_codes.push(d.category.clone());
        }
    }
    let categories: Vec<CategoryRow> = cat_codes
        .iter()
        .map(|cat| {
            let of: Vec<_> = data
                .dispositions
                .iter()
                .filter(|d| &d.category == cat)
                .collect();
            let by = |r: &str| of.iter().filter(|d| d.resolution == r).count() as u64;
            CategoryRow {
                category: cat.clone(),
                calls: of.len() as u64,
                resolved: by("resolved"),
                unresolved: by("unresolved"),
                disputed: by("disputed"),
            }
        })
        .collect();
    let not_classified = answered
        .iter()
        .filter(|c| !disp.contains_key(c.uid.as_str()))
        .count() as u64;

    // Operators.
    let call_operator: HashMap<&str, Option<&str>> = calls
        .iter()
        .map(|c| (c.uid.as_str(), c.operator.as_deref()))
        .collect();
    let mut ops: BTreeSet<String> = answered.iter().filter_map(|c| c.operator.clone()).collect();
    let disp_operator = |d: &super::load::DispositionRow| -> Option<String> {
        d.operator.clone().or_else(|| {
            call_operator
                .get(d.call_uid.as_str())
                .copied()
                .flatten()
                .map(str::to_owned)
        })
    };
    for d in &data.dispositions {
        if let Some(op) = disp_operator(d) {
            ops.insert(op);
        }
    }
    ops.extend(data.qa.iter().map(|(op, ..)| op.clone()));
    let operators: Vec<OperatorRow> = ops
        .into_iter()
        .map(|ext| {
            let mine: Vec<&&CallRow> = answered
                .iter()
                .filter(|c| c.operator.as_deref() == Some(ext.as_str()))
                .collect();
            let talk: u64 = mine.iter().map(|c| nonneg(c.talk_ms)).sum();
            let held: u64 = mine
                .iter()
                .map(|c| hold.get(c.uid.as_str()).copied().unwrap_or(0))
                .sum();
            let wrapped: u64 = mine
                .iter()
                .map(|c| wrap.get(c.uid.as_str()).copied().unwrap_or(0))
                .sum();
            let ds: Vec<_> = data
                .dispositions
                .iter()
                .filter(|d| disp_operator(d).as_deref() == Some(ext.as_str()))
                .collect();
            let resolved = ds.iter().filter(|d| d.resolution == "resolved").count() as u64;
            let handle = talk + held + wrapped;
            OperatorRow {
                name: ctx.operator_names.get(&ext).cloned().unwrap_or_default(),
                calls: mine.len() as u64,
                talk_ms: talk,
                hold_ms: held,
                wrap_ms: wrapped,
                handle_ms: handle,
                handle_avg_ms: handle.checked_div(mine.len() as u64).unwrap_or(0),
                dispositions: ds.len() as u64,
                resolved,
                resolved_pct: pct(resolved, ds.len() as u64),
                qa_score: data
                    .qa
                    .iter()
                    .find(|(op, ..)| *op == ext)
                    .map(|(_, _, mean)| mean.round() / 10.0),
                qa_count: data
                    .qa
                    .iter()
                    .find(|(op, ..)| *op == ext)
                    .map_or(0, |(_, n, _)| u64::from(*n)),
                ext,
            }
        })
        .collect();

    // Repeat callers, counted by the number's lookup hash (the number itself is sealed).
    let mut per_number: HashMap<&str, u64> = HashMap::new();
    // A number to show (masked) per lookup hash.
    let mut shown: HashMap<&str, &str> = HashMap::new();
    let mut anonymous = 0;
    for c in calls {
        let number = c.caller.as_deref().filter(|n| !n.trim().is_empty());
        match (c.caller_key.as_deref(), number) {
            (Some(key), Some(n)) => {
                *per_number.entry(key).or_default() += 1;
                shown.entry(key).or_insert(n);
            }
            _ => anonymous += 1,
        }
    }
    let buckets: [(&str, u64, u64); 7] = [
        ("1", 1, 1),
        ("2", 2, 2),
        ("3", 3, 3),
        ("4", 4, 4),
        ("5", 5, 5),
        ("6-10", 6, 10),
        ("11+", 11, u64::MAX),
    ];
    let distribution = buckets
        .iter()
        .map(|(name, lo, hi)| {
            let inside = per_number.values().filter(|n| (*lo..=*hi).contains(*n));
            RepeatBucket {
                times: (*name).to_owned(),
                callers: inside.clone().count() as u64,
                calls: inside.sum(),
            }
        })
        .collect();
    let repeat_callers = per_number.values().filter(|n| **n > 1).count() as u64;
    // Ties in the number's order (as before the numbers were sealed), not the hash's.
    let mut top: Vec<(&str, u64)> = per_number
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, n)| (shown.get(k).copied().unwrap_or_default(), *n))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let repeat = RepeatStats {
        callers: per_number.len() as u64,
        repeat_callers,
        repeat_share_pct: pct(repeat_callers, per_number.len() as u64),
        repeat_calls: per_number.values().filter(|n| **n > 1).sum(),
        marked_repeats: calls.iter().filter(|c| c.repeat_of.is_some()).count() as u64,
        anonymous,
        distribution,
        top: top
            .into_iter()
            .take(20)
            .map(|(n, count)| Count {
                key: PhoneNumber::new(n).masked(),
                count,
            })
            .collect(),
    };

    // Requests.
    let ordered = |seen: BTreeMap<String, u64>, order: &[&str]| -> Vec<Count> {
        let mut out: Vec<Count> = order
            .iter()
            .map(|k| Count {
                key: (*k).to_owned(),
                count: seen.get(*k).copied().unwrap_or(0),
            })
            .collect();
        for (k, v) in seen {
            if !order.contains(&k.as_str()) {
                out.push(Count { key: k, count: v });
            }
        }
        out
    };
    let mut channels = BTreeMap::new();
    let mut priorities = BTreeMap::new();
    let mut clocks = BTreeMap::new();
    let (mut met, mut breached, mut open) = (0, 0, 0);
    for r in &data.requests {
        *channels.entry(r.channel.clone()).or_default() += 1;
        *priorities.entry(r.priority.clone()).or_default() += 1;
        let distinct: BTreeSet<&String> = r.breaches.iter().collect();
        for b in &distinct {
            *clocks.entry((*b).clone()).or_default() += 1;
        }
        if !distinct.is_empty() {
            breached += 1;
        } else if matches!(r.status.as_str(), "resolved" | "closed") {
            met += 1;
        } else {
            open += 1;
        }
    }
    let requests = RequestStats {
        total: data.requests.len() as u64,
        by_channel: ordered(channels, &["phone", "email", "telegram", "web"]),
        by_priority: ordered(priorities, &["critical", "high", "normal", "low"]),
        sla_met: met,
        sla_breached: breached,
        sla_open: open,
        breaches_by_clock: ordered(
            clocks,
            &[
                "first_answer",
                "out_of_hours_contact",
                "resolution",
                "moderation",
            ],
        ),
    };

    // Surge periods.
    let mut periods: Vec<(i64, i64, String)> = Vec::new();
    let mut on: Option<(i64, String)> = data
        .surge_before
        .as_ref()
        .filter(|s| s.on)
        .map(|s| (start, s.by.clone()));
    for s in &data.surge {
        match (&on, s.on) {
            (None, true) => on = Some((s.at_ms, s.by.clone())),
            (Some((from, by)), false) => {
                periods.push((*from, s.at_ms, by.clone()));
                on = None;
            }
            _ => {}
        }
    }
    if let Some((from, by)) = on {
        periods.push((from, end, by));
    }
    let surge = periods
        .into_iter()
        .map(|(from, to, by)| {
            let inside: Vec<&CallRow> = calls
                .iter()
                .filter(|c| c.arrived_at_ms >= from && c.arrived_at_ms < to)
                .collect();
            let count = |o: &str| {
                inside
                    .iter()
                    .filter(|c| c.outcome.as_deref() == Some(o))
                    .count() as u64
            };
            SurgePeriod {
                from: ctx.local(from, "%Y-%m-%d %H:%M"),
                to: ctx.local(to, "%Y-%m-%d %H:%M"),
                minutes: u64::try_from(to.saturating_sub(from) / 60_000).unwrap_or(0),
                by,
                calls: inside.len() as u64,
                answered: count("answered"),
                deflected: count("deflected"),
                callback_requested: count("callback_requested"),
                missed: MISSED.iter().map(|o| count(o)).sum(),
            }
        })
        .collect();

    // Every call.
    let details = calls
        .iter()
        .map(|c| {
            let d = disp.get(c.uid.as_str());
            let number = c.caller.as_deref().filter(|n| !n.trim().is_empty());
            DetailRow {
                call: c.uid.clone(),
                time: ctx.local(c.arrived_at_ms, "%Y-%m-%d %H:%M:%S"),
                number: number
                    .map(|n| PhoneNumber::new(n).masked())
                    .unwrap_or_default(),
                language: c.language.clone().unwrap_or_default(),
                ivr_topic: c.topic.clone().unwrap_or_default(),
                topic: d.and_then(|d| d.topic.clone()).unwrap_or_default(),
                category: d.map(|d| d.category.clone()).unwrap_or_default(),
                resolution: d.map(|d| d.resolution.clone()).unwrap_or_default(),
                outcome: outcome_of(c),
                operator: c.operator.clone().unwrap_or_default(),
                wait_ms: nonneg(c.wait_ms),
                talk_ms: nonneg(c.talk_ms),
                hold_ms: hold.get(c.uid.as_str()).copied().unwrap_or(0),
                wrap_ms: wrap.get(c.uid.as_str()).copied().unwrap_or(0),
                surge: c.surge,
                caller_calls: number
                    .and(c.caller_key.as_deref())
                    .and_then(|k| per_number.get(k))
                    .copied()
                    .unwrap_or(0),
                recording: c.recording,
                link: format!("/calls/{}", c.uid),
            }
        })
        .collect();

    let invoice = match &ctx.billing {
        Some(rules) => Some(billing::invoice(rules, &outcome_counts)?),
        None => None,
    };
    Ok(MonthlyReport {
        tenant: ctx.tenant.clone(),
        tenant_name_uz: ctx.name.uz.clone(),
        tenant_name_ru: ctx.name.ru.clone(),
        month: ctx.month.to_string(),
        time_zone: ctx.tz_name(),
        summary,
        outcomes,
        days,
        topics,
        categories,
        not_classified,
        operators,
        repeat,
        requests,
        surge,
        details,
        invoice,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::load::{DispositionRow, HoldMark, StateChange, SurgeSwitch};

    fn ctx() -> Context {
        Context {
            tenant: "dtm".into(),
            name: Bilingual {
                uz: "DTM".into(),
                ru: "ГЦТ".into(),
            },
            tz: jiff::tz::TimeZone::fixed(jiff::tz::offset(5)),
            month: Month::parse("2026-11").unwrap(),
            service_level_ms: 20_000,
            ivr_topics: vec![(
                "results".into(),
                Bilingual {
                    uz: "Natijalar".into(),
                    ru: "Результаты".into(),
                },
            )],
            classifier: vec![],
            operator_names: HashMap::from([("1001".to_owned(), "Aziza".to_owned())]),
            billing: None,
        }
    }

    const T0: i64 = 1_793_473_200_000; // 2026-11-01 00:00 +05:00

    fn call(uid: &str, at: i64, outcome: &str, wait: i64, talk: i64, caller: &str) -> CallRow {
        let answered = outcome == "answered";
        CallRow {
            uid: uid.into(),
            caller: Some(caller.into()),
            // The tests' numbers stand for their own lookup hashes.
            caller_key: Some(caller.into()),
            arrived_at_ms: at,
            enqueued_at_ms: Some(at + 1_000),
            answered_at_ms: answered.then_some(at + 1_000 + wait),
            ended_at_ms: Some(at + 1_000 + wait + talk),
            language: Some("uz".into()),
            topic: Some("results".into()),
            operator: answered.then(|| "1001".into()),
            outcome: Some(outcome.into()),
            wait_ms: Some(wait),
            talk_ms: Some(talk),
            surge: false,
            repeat_of: None,
            recording: answered,
        }
    }

    #[test]
    fn a_small_month_is_counted_exactly() {
        let mut data = MonthData {
            calls: vec![
                call("a", T0 + 1_000, "answered", 5_000, 60_000, "+998901111111"),
                call(
                    "b",
                    T0 + 86_400_000,
                    "answered",
                    30_000,
                    120_000,
                    "+998901111111",
                ),
                call(
                    "c",
                    T0 + 2 * 86_400_000,
                    "abandoned",
                    40_000,
                    0,
                    "+998902222222",
                ),
                call("d", T0 + 3 * 86_400_000, "deflected", 0, 0, "+998903333333"),
            ],
            ..MonthData::default()
        };
        data.calls[3].enqueued_at_ms = None;
        data.dispositions = vec![DispositionRow {
            call_uid: "a".into(),
            operator: Some("1001".into()),
            topic: Some("results".into()),
            category: "complaint".into(),
            resolution: "resolved".into(),
        }];
        // Call a: held 10 s by the operator; wrap-up 15 s after it ends.
        let a_answered = T0 + 1_000 + 1_000 + 5_000;
        data.holds = vec![
            HoldMark {
                call_uid: "a".into(),
                at_ms: a_answered + 10_000,
                by: "operator".into(),
                held: true,
            },
            HoldMark {
                call_uid: "a".into(),
                at_ms: a_answered + 20_000,
                by: "operator".into(),
                held: false,
            },
        ];
        let a_end = a_answered + 60_000;
        data.states = vec![
            StateChange {
                operator: "1001".into(),
                from: "on_call".into(),
                to: "wrap_up".into(),
                at_ms: a_end + 5,
            },
            StateChange {
                operator: "1001".into(),
                from: "wrap_up".into(),
                to: "available".into(),
                at_ms: a_end + 15_005,
            },
        ];
        data.surge = vec![
            SurgeSwitch {
                at_ms: T0 + 3 * 86_400_000 - 60_000,
                on: true,
                by: "calendar".into(),
            },
            SurgeSwitch {
                at_ms: T0 + 3 * 86_400_000 + 3_600_000,
                on: false,
                by: "calendar".into(),
            },
        ];
        let r = monthly(&ctx(), &data).unwrap();
        let s = &r.summary;
        assert_eq!((s.offered, s.answered, s.missed, s.deflected), (4, 2, 1, 1));
        assert_eq!((s.queued, s.answered_in_sl), (3, 1));
        assert_eq!(s.service_level_pct, 33.33);
        assert_eq!(
            (s.wait_p50_ms, s.wait_p90_ms, s.wait_avg_ms),
            (5_000, 30_000, 17_500)
        );
        assert_eq!((s.talk_total_ms, s.talk_avg_ms), (180_000, 90_000));
        assert_eq!((s.hold_total_ms, s.wrap_total_ms), (10_000, 15_000));
        assert_eq!(r.days.len(), 30);
        assert_eq!(
            (r.days[0].answered, r.days[2].missed, r.days[3].deflected),
            (1, 1, 1)
        );
        assert_eq!(r.repeat.callers, 3);
        assert_eq!(r.repeat.repeat_callers, 1);
        assert_eq!(r.repeat.top[0].key, "+9989******11");
        assert_eq!(r.topics[0].code, "results");
        assert_eq!(
            (
                r.topics[0].ivr_calls,
                r.topics[0].classified,
                r.topics[0].agree
            ),
            (4, 1, 1)
        );
        assert_eq!(r.categories[1].calls, 1);
        assert_eq!(r.not_classified, 1);
        assert_eq!(r.operators.len(), 1);
        let op = &r.operators[0];
        assert_eq!(
            (op.calls, op.handle_ms, op.resolved_pct),
            (2, 180_000 + 10_000 + 15_000, 100.0)
        );
        assert_eq!(op.name, "Aziza");
        assert_eq!(r.surge.len(), 1);
        assert_eq!(
            (r.surge[0].calls, r.surge[0].deflected, r.surge[0].minutes),
            (1, 1, 61)
        );
        assert_eq!(r.details[0].hold_ms, 10_000);
        assert_eq!(r.details[0].number, "+9989******11");
        assert_eq!(r.details[0].caller_calls, 2);
        assert!(!format!("{r:?}").contains("998901111111"));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(nearest_rank(&v, 50), 5);
        assert_eq!(nearest_rank(&v, 90), 9);
        assert_eq!(nearest_rank(&v, 95), 10);
        assert_eq!(nearest_rank(&[7], 95), 7);
        assert_eq!(nearest_rank(&[], 50), 0);
    }

    #[test]
    fn an_empty_month_and_odd_rows_do_not_panic() {
        let r = monthly(&ctx(), &MonthData::default()).unwrap();
        assert_eq!(r.summary.offered, 0);
        assert_eq!(r.summary.service_level_pct, 0.0);
        let mut data = MonthData::default();
        let mut odd = call("x", i64::MIN / 2, "weird", -5, -9, "");
        odd.answered_at_ms = Some(10);
        odd.ended_at_ms = Some(5);
        data.calls.push(odd);
        data.holds.push(HoldMark {
            call_uid: "x".into(),
            at_ms: i64::MAX,
            by: "caller".into(),
            held: true,
        });
        let r = monthly(&ctx(), &data).unwrap();
        assert_eq!(r.summary.other_ends, 1);
        assert_eq!(r.repeat.anonymous, 1);
    }
}
