//! What a run or simulation measured: outcome totals, waiting times, per-interval series,
//! latency histograms; and how it is written out (JSON summary, CSV, HTML with charts).

use hdrhistogram::Histogram;
use navbat::chart::{chart, Series, Style, PALETTE};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Shared style of the HTML pages.
pub const CSS: &str = "body{font:14px sans-serif;margin:24px;max-width:920px;color:#222}table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}h2{margin-top:32px}.note{color:#555}";

/// How many outcomes there are.
pub const OUTCOMES: usize = 9;

/// How a call ended, as loadgen saw it; names follow navbat's `call_finished` outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// An operator answered.
    Answered,
    /// The caller hung up before an operator answered.
    Abandoned,
    /// The router let the caller go after the queue's maximum wait.
    TimedOut,
    /// Refused at the door (channels, queue full): SIP 503.
    Blocked,
    /// The line was closed (outside hours): SIP 480.
    Closed,
    /// Ended by the IVR.
    IvrHangup,
    /// Anything else (no answer from the router, unexpected status).
    Failed,
    /// Surge mode: the caller took a self-service branch instead of waiting.
    Deflected,
    /// Surge mode: the caller accepted a callback and hung up; the callback itself is
    /// counted apart ([`CallbackTally`]).
    CallbackRequested,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; OUTCOMES] = [
        Outcome::Answered,
        Outcome::Abandoned,
        Outcome::TimedOut,
        Outcome::Blocked,
        Outcome::Closed,
        Outcome::IvrHangup,
        Outcome::Failed,
        Outcome::Deflected,
        Outcome::CallbackRequested,
    ];

    /// The snake_case name, as navbat writes it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Abandoned => "abandoned",
            Outcome::TimedOut => "timed_out",
            Outcome::Blocked => "blocked",
            Outcome::Closed => "closed",
            Outcome::IvrHangup => "ivr_hangup",
            Outcome::Failed => "failed",
            Outcome::Deflected => "deflected",
            Outcome::CallbackRequested => "callback_requested",
        }
    }
}

/// Counts for one interval of scenario time.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Bucket {
    /// Calls that arrived.
    pub arrivals: u64,
    /// Calls that ended, by outcome (indexed like [`Outcome::ALL`]).
    pub outcomes: [u64; OUTCOMES],
    /// Answered calls whose wait was within the target.
    pub answered_in_target: u64,
    /// Calls that ended having been offered to the queue (for the service level).
    pub queued_ended: u64,
    /// Most callers waiting at once.
    pub queue_max: u64,
    /// Callers waiting at the last observation.
    pub queue_last: u64,
    /// Most channels held at once in each phase (indexed like [`PHASE_NAMES`]; simulation
    /// only).
    pub channels_max: [u32; PHASES],
    /// Surge policy offers made, and taken (a callback or the SMS).
    pub offers: u64,
    /// See `offers`.
    pub offers_taken: u64,
    /// Callbacks promised (today or for the morning), and the room left for today's at the
    /// last offer (the capacity they were checked against).
    pub callbacks_promised: u64,
    /// See `callbacks_promised`.
    pub callback_room_last: u64,
}

/// Phases a channel is held in: greeting and IVR, the self-service information, waiting in
/// the queue (the offer included), talking to an operator, a callback's dial-out.
pub const PHASE_NAMES: [&str; PHASES] = ["ivr", "info", "queue", "talk", "callback"];
/// Number of phases.
pub const PHASES: usize = 5;
/// Greeting and IVR.
pub const IVR: usize = 0;
/// The self-service information.
pub const INFO: usize = 1;
/// Waiting in the queue.
pub const QUEUE: usize = 2;
/// Talking to an operator.
pub const TALK: usize = 3;
/// A callback's dial-out (ringing the operator, then talking).
pub const CALLBACK: usize = 4;

/// Collects what a run or simulation measured, in scenario time.
pub struct Recorder {
    /// Scenario seconds per bucket.
    pub bucket_secs: f64,
    /// Service-level target, seconds.
    pub target_secs: f64,
    /// Per-interval counts.
    pub buckets: Vec<Bucket>,
    /// Totals by outcome.
    pub totals: BTreeMap<Outcome, u64>,
    /// Queue wait of answered calls, milliseconds of scenario time.
    pub answered_wait_ms: Histogram<u64>,
    /// Time in queue of abandoned calls, milliseconds of scenario time.
    pub abandoned_wait_ms: Histogram<u64>,
    /// Named wall-clock latencies in microseconds (SIP runs only).
    pub latencies_us: BTreeMap<&'static str, Histogram<u64>>,
    /// Surge callbacks (simulation only).
    pub callbacks: CallbackTally,
    /// The results-day policy: offers made and taken, and what each caller got (simulation
    /// only).
    pub policy: PolicyTally,
}

/// The surge policy's offers (`navbat::callback::door`) and, per caller, what they got in the
/// end (simulation only).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PolicyTally {
    /// Offers made at the door of the queue (the expected wait was beyond the limit).
    pub offers_at_door: u64,
    /// Offers made in the queue after `offer_after` (the wait had looked short).
    pub offers_in_queue: u64,
    /// Offers with a callback for today.
    pub offered_callback_today: u64,
    /// Offers with a callback for the next morning (none could be kept today).
    pub offered_callback_next_morning: u64,
    /// Offers without any callback (none could be kept today or in the morning window).
    pub offered_without_callback: u64,
    /// Callbacks for today accepted.
    pub took_callback_today: u64,
    /// Callbacks for the next morning accepted.
    pub took_callback_next_morning: u64,
    /// Information by SMS accepted.
    pub took_sms: u64,
    /// Callers let go at the maximum wait who had not been offered anything (should be 0).
    pub let_go_unoffered: u64,
    /// What each caller got: an operator answered live.
    pub got_live: u64,
    /// ... a callback in which an operator talked to them.
    pub got_callback: u64,
    /// ... a callback promised for the next morning's window.
    pub got_callback_next_morning: u64,
    /// ... a callback promised for today and not done by the end of the run.
    pub got_callback_pending: u64,
    /// ... the information from the self-service branch.
    pub got_info_self_service: u64,
    /// ... the information by SMS.
    pub got_info_sms: u64,
    /// ... nothing: refused at the door, abandoned, let go at the maximum wait.
    pub got_nothing: u64,
    /// Operator conversations with live callers and with callbacks begun while live callers
    /// waited, during the profile.
    pub conversations_live: u64,
    /// See `conversations_live`.
    pub conversations_callback: u64,
}

impl PolicyTally {
    /// Counts an offer by the callback it holds.
    pub fn count_offered(&mut self, callback: Option<navbat::callback::door::CallbackWhen>) {
        use navbat::callback::door::CallbackWhen;
        match callback {
            Some(CallbackWhen::Today) => self.offered_callback_today += 1,
            Some(CallbackWhen::NextMorning) => self.offered_callback_next_morning += 1,
            None => self.offered_without_callback += 1,
        }
    }
}

/// Surge callbacks: requested by waiting callers, completed when an operator talked to the
/// caller, pending when the run ended.
#[derive(Clone, Debug)]
pub struct CallbackTally {
    /// Callers who accepted the offer.
    pub requested: u64,
    /// Callbacks in which an operator talked to the caller.
    pub completed: u64,
    /// From the caller's joining the queue (the place the callback keeps) to the operator's
    /// answer of the callback, milliseconds of scenario time.
    pub wait_ms: Histogram<u64>,
    /// When the last callback was answered, scenario milliseconds.
    pub last_answered_ms: Option<u64>,
    /// Requested by the profile's end (the last arrival's time) and not yet answered then.
    pub pending_at_profile_end: u64,
}

impl Default for CallbackTally {
    fn default() -> CallbackTally {
        CallbackTally {
            requested: 0,
            completed: 0,
            wait_ms: histogram(),
            last_answered_ms: None,
            pending_at_profile_end: 0,
        }
    }
}

impl CallbackTally {
    /// Requested and not (yet) completed.
    pub fn pending(&self) -> u64 {
        self.requested.saturating_sub(self.completed)
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

impl Recorder {
    /// Closes the run's policy figures: callbacks still pending when the profile ended
    /// (`requested_by_end - completed_by_end`) and what each caller got, from the totals.
    /// The simulator and `loadgen run` both end here, so their tables are the same sums.
    pub fn close_policy(&mut self, requested_by_end: u64, completed_by_end: u64) {
        self.callbacks.pending_at_profile_end = requested_by_end.saturating_sub(completed_by_end);
        let total = |o: Outcome| self.totals.get(&o).copied().unwrap_or(0);
        let got_live = total(Outcome::Answered);
        let got_info = total(Outcome::Deflected);
        let got_nothing = [
            Outcome::Blocked,
            Outcome::Abandoned,
            Outcome::TimedOut,
            Outcome::Closed,
            Outcome::IvrHangup,
            Outcome::Failed,
        ]
        .into_iter()
        .map(total)
        .sum();
        let completed = self.callbacks.completed;
        let pending = self.callbacks.pending();
        let p = &mut self.policy;
        p.got_live = got_live;
        p.got_callback = completed;
        p.got_callback_pending = pending;
        p.got_info_self_service = got_info.saturating_sub(p.got_info_sms);
        p.got_nothing = got_nothing;
    }

    /// A recorder with `bucket_secs`-long intervals.
    pub fn new(bucket_secs: f64, target_secs: f64) -> Recorder {
        Recorder {
            bucket_secs,
            target_secs,
            buckets: Vec::new(),
            totals: BTreeMap::new(),
            answered_wait_ms: histogram(),
            abandoned_wait_ms: histogram(),
            latencies_us: BTreeMap::new(),
            callbacks: CallbackTally::default(),
            policy: PolicyTally::default(),
        }
    }

    fn bucket(&mut self, at_ms: u64) -> &mut Bucket {
        let i = (at_ms as f64 / 1000.0 / self.bucket_secs) as usize;
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, Bucket::default());
        }
        &mut self.buckets[i]
    }

    /// A call arrived.
    pub fn arrival(&mut self, at_ms: u64) {
        self.bucket(at_ms).arrivals += 1;
    }

    /// A call ended at `at_ms`; `wait_ms` is its time in queue if it joined one.
    pub fn finished(&mut self, at_ms: u64, outcome: Outcome, wait_ms: Option<u64>) {
        *self.totals.entry(outcome).or_default() += 1;
        let target_ms = (self.target_secs * 1000.0) as u64;
        let idx = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(6); // Failed
        let b = self.bucket(at_ms);
        b.outcomes[idx] += 1;
        if let Some(w) = wait_ms {
            b.queued_ended += 1;
            if outcome == Outcome::Answered && w <= target_ms {
                b.answered_in_target += 1;
            }
        }
        match (outcome, wait_ms) {
            (Outcome::Answered, Some(w)) => {
                let _ = self.answered_wait_ms.record(w.max(1));
            }
            (Outcome::Abandoned, Some(w)) => {
                let _ = self.abandoned_wait_ms.record(w.max(1));
            }
            _ => {}
        }
    }

    /// `waiting` callers are in queue at `at_ms`.
    pub fn queue_length(&mut self, at_ms: u64, waiting: u64) {
        let b = self.bucket(at_ms);
        b.queue_max = b.queue_max.max(waiting);
        b.queue_last = waiting;
    }

    /// Channels held by phase at `at_ms`.
    pub fn channels(&mut self, at_ms: u64, held: &[u32; PHASES]) {
        let b = self.bucket(at_ms);
        for (m, h) in b.channels_max.iter_mut().zip(held) {
            *m = (*m).max(*h);
        }
    }

    /// A surge-policy offer at `at_ms`, `taken` or not, with `room` left for today's callbacks.
    pub fn offer(&mut self, at_ms: u64, taken: bool, promised: bool, room: u64) {
        let b = self.bucket(at_ms);
        b.offers += 1;
        b.offers_taken += u64::from(taken);
        b.callbacks_promised += u64::from(promised);
        b.callback_room_last = room;
    }

    /// A wall-clock latency sample.
    pub fn latency(&mut self, name: &'static str, micros: u64) {
        let _ = self
            .latencies_us
            .entry(name)
            .or_insert_with(histogram)
            .record(micros.max(1));
    }

    /// Calls ended, all outcomes.
    pub fn ended(&self) -> u64 {
        self.totals.values().sum()
    }

    /// Service level over the whole run: answered within target / calls that queued.
    pub fn service_level(&self) -> f64 {
        let (hit, all) = self.buckets.iter().fold((0, 0), |(h, a), b| {
            (h + b.answered_in_target, a + b.queued_ended)
        });
        if all == 0 {
            1.0
        } else {
            hit as f64 / all as f64
        }
    }

    /// The summary as JSON (percentiles in milliseconds).
    pub fn summary(&self) -> serde_json::Value {
        let pct = |h: &Histogram<u64>, scale: f64| {
            serde_json::json!({
                "count": h.len(),
                "mean": h.mean() / scale,
                "p50": h.value_at_quantile(0.5) as f64 / scale,
                "p90": h.value_at_quantile(0.9) as f64 / scale,
                "p99": h.value_at_quantile(0.99) as f64 / scale,
                "p999": h.value_at_quantile(0.999) as f64 / scale,
                "max": h.max() as f64 / scale,
            })
        };
        let totals: serde_json::Map<String, serde_json::Value> = Outcome::ALL
            .iter()
            .map(|o| {
                (
                    o.name().to_string(),
                    self.totals.get(o).copied().unwrap_or(0).into(),
                )
            })
            .collect();
        let latencies: serde_json::Map<String, serde_json::Value> = self
            .latencies_us
            .iter()
            .map(|(k, h)| (format!("{k}_ms"), pct(h, 1000.0)))
            .collect();
        serde_json::json!({
            "calls_ended": self.ended(),
            "outcomes": totals,
            "service_level": self.service_level(),
            "target_secs": self.target_secs,
            "answered_wait_secs": pct(&self.answered_wait_ms, 1000.0),
            "abandoned_wait_secs": pct(&self.abandoned_wait_ms, 1000.0),
            "latency": latencies,
            "callbacks": {
                "requested": self.callbacks.requested,
                "completed": self.callbacks.completed,
                "pending": self.callbacks.pending(),
                "pending_at_profile_end": self.callbacks.pending_at_profile_end,
                "wait_secs": pct(&self.callbacks.wait_ms, 1000.0),
                "last_answered_secs": self.callbacks.last_answered_ms.map(|m| m as f64 / 1000.0),
            },
            "policy": self.policy,
        })
    }

    /// Per-interval CSV.
    pub fn csv(&self) -> String {
        let mut s = String::from("t_secs,arrivals");
        for o in Outcome::ALL {
            let _ = write!(s, ",{}", o.name());
        }
        s.push_str(",queue_max,queue_last,service_level");
        for p in PHASE_NAMES {
            let _ = write!(s, ",channels_{p}_max");
        }
        s.push_str(",offers,offers_taken,callbacks_promised,callback_room\n");
        for (i, b) in self.buckets.iter().enumerate() {
            let _ = write!(s, "{:.0},{}", i as f64 * self.bucket_secs, b.arrivals);
            for c in b.outcomes {
                let _ = write!(s, ",{c}");
            }
            let sl = if b.queued_ended > 0 {
                format!("{:.4}", b.answered_in_target as f64 / b.queued_ended as f64)
            } else {
                String::new()
            };
            let _ = write!(s, ",{},{},{}", b.queue_max, b.queue_last, sl);
            for m in b.channels_max {
                let _ = write!(s, ",{m}");
            }
            let _ = writeln!(
                s,
                ",{},{},{},{}",
                b.offers, b.offers_taken, b.callbacks_promised, b.callback_room_last
            );
        }
        s
    }

    /// The HTML report: `title`, a free-form header section, and the charts.
    pub fn html(&self, title: &str, header_html: &str, start_hour: f64) -> String {
        // Charts are in scenario hours of day when the scenario is long, else in minutes.
        let long = self.buckets.len() as f64 * self.bucket_secs > 3.0 * 3600.0;
        let (unit, x_label) = if long {
            (3600.0, "scenario time (hour of day)")
        } else {
            (60.0, "scenario time (minutes)")
        };
        let origin = if long { start_hour } else { 0.0 };
        // Merge buckets so charts have at most ~240 points.
        let merge = (self.buckets.len() / 240).max(1);
        let groups: Vec<(f64, Bucket)> = self
            .buckets
            .chunks(merge)
            .enumerate()
            .map(|(i, ch)| {
                let mut m = Bucket::default();
                for b in ch {
                    m.arrivals += b.arrivals;
                    for k in 0..OUTCOMES {
                        m.outcomes[k] += b.outcomes[k];
                    }
                    m.answered_in_target += b.answered_in_target;
                    m.queued_ended += b.queued_ended;
                    m.queue_max = m.queue_max.max(b.queue_max);
                }
                let x = origin + (i * merge) as f64 * self.bucket_secs / unit;
                (x, m)
            })
            .collect();
        let per = merge as f64 * self.bucket_secs;
        let queue = chart(
            "Callers waiting in queue (max per interval)",
            x_label,
            "callers",
            Style::Lines,
            &[Series {
                name: "waiting",
                colour: PALETTE[0],
                points: groups
                    .iter()
                    .map(|(x, b)| (*x, b.queue_max as f64))
                    .collect(),
            }],
        );
        let arrivals = chart(
            &format!("Arrivals per {}", duration_label(per)),
            x_label,
            "calls",
            Style::Lines,
            &[Series {
                name: "arrivals",
                colour: PALETTE[4],
                points: groups
                    .iter()
                    .map(|(x, b)| (*x, b.arrivals as f64))
                    .collect(),
            }],
        );
        let sl = chart(
            &format!(
                "Service level over time (answered within {} s / calls that queued)",
                self.target_secs
            ),
            x_label,
            "service level",
            Style::Lines,
            &[Series {
                name: "service level",
                colour: PALETTE[2],
                points: groups
                    .iter()
                    .map(|(x, b)| {
                        (
                            *x,
                            if b.queued_ended > 0 {
                                b.answered_in_target as f64 / b.queued_ended as f64
                            } else {
                                f64::NAN
                            },
                        )
                    })
                    .collect(),
            }],
        );
        let colours = [
            "#2ca02c", "#d62728", "#ff7f0e", "#7f7f7f", "#9467bd", "#8c564b", "#000000", "#17becf",
            "#1f77b4",
        ];
        let outcome_series: Vec<Series> = Outcome::ALL
            .iter()
            .enumerate()
            .filter(|(k, _)| groups.iter().any(|(_, b)| b.outcomes[*k] > 0))
            .map(|(k, o)| Series {
                name: o.name(),
                colour: colours[k],
                points: groups
                    .iter()
                    .map(|(x, b)| (*x, b.outcomes[k] as f64))
                    .collect(),
            })
            .collect();
        let outcomes = chart(
            &format!("Outcomes per {}", duration_label(per)),
            x_label,
            "calls",
            Style::StackedBars,
            &outcome_series,
        );
        let waits = self.wait_distribution_chart();
        let mut totals =
            String::from("<table><tr><th>outcome</th><th>calls</th><th>share</th></tr>");
        let all = self.ended().max(1) as f64;
        for o in Outcome::ALL {
            let n = self.totals.get(&o).copied().unwrap_or(0);
            let _ = write!(
                totals,
                "<tr><td>{}</td><td>{n}</td><td>{:.2}%</td></tr>",
                o.name(),
                n as f64 * 100.0 / all
            );
        }
        let _ = write!(
            totals,
            "<tr><th>total</th><th>{}</th><th></th></tr></table>",
            self.ended()
        );
        let mut lat = String::new();
        if !self.latencies_us.is_empty() {
            lat.push_str("<h2>Latency (wall clock)</h2><table><tr><th>measure</th><th>count</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>");
            for (k, h) in &self.latencies_us {
                let _ = write!(
                    lat,
                    "<tr><td>{k}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                    h.len(),
                    h.value_at_quantile(0.5) as f64 / 1000.0,
                    h.value_at_quantile(0.9) as f64 / 1000.0,
                    h.value_at_quantile(0.99) as f64 / 1000.0,
                    h.value_at_quantile(0.999) as f64 / 1000.0,
                    h.max() as f64 / 1000.0
                );
            }
            lat.push_str("</table>");
        }
        let cb = &self.callbacks;
        if cb.requested > 0 {
            let _ = write!(
                totals,
                "<table><tr><th>callbacks</th><th>requested</th><th>completed</th><th>pending at the end</th><th>wait p50 s</th><th>wait max s</th></tr><tr><td></td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.0}</td></tr></table>",
                cb.requested,
                cb.completed,
                cb.pending(),
                cb.wait_ms.value_at_quantile(0.5) as f64 / 1000.0,
                cb.wait_ms.max() as f64 / 1000.0,
            );
        }
        let w = &self.answered_wait_ms;
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>{CSS}</style></head><body><h1>{t}</h1>{header_html}<h2>Outcomes</h2>{totals}<p>Service level (answered within {target} s of joining the queue, over calls that queued): <b>{sl:.1}%</b>. Answered calls waited p50 {p50:.1} s, p90 {p90:.1} s, p99 {p99:.1} s (scenario time).</p>{lat}<h2>Charts</h2>{arrivals}{queue}{waits}{sl_chart}{outcomes}</body></html>",
            t = title,
            target = self.target_secs,
            sl = self.service_level() * 100.0,
            p50 = w.value_at_quantile(0.5) as f64 / 1000.0,
            p90 = w.value_at_quantile(0.9) as f64 / 1000.0,
            p99 = w.value_at_quantile(0.99) as f64 / 1000.0,
            sl_chart = sl,
        )
    }

    /// Waiting-time distribution: share of answered calls per wait band.
    fn wait_distribution_chart(&self) -> String {
        let h = &self.answered_wait_ms;
        let max_s = (h.value_at_quantile(0.995) as f64 / 1000.0).max(10.0);
        let step = (max_s / 40.0).ceil().max(1.0);
        let n = h.len().max(1) as f64;
        let mut answered = Vec::new();
        let mut abandoned = Vec::new();
        let a = &self.abandoned_wait_ms;
        let mut lo = 0.0;
        while lo < max_s {
            let hi = lo + step;
            let count = |h: &Histogram<u64>| {
                h.count_between((lo * 1000.0) as u64, (hi * 1000.0) as u64 - 1) as f64
            };
            answered.push((lo + step / 2.0, count(h) / n));
            abandoned.push((lo + step / 2.0, count(a) / a.len().max(1) as f64));
            lo = hi;
        }
        chart(
            &format!("Time in queue, share of calls per {step:.0} s band"),
            "seconds in queue (scenario time)",
            "share",
            Style::Lines,
            &[
                Series {
                    name: "answered",
                    colour: PALETTE[2],
                    points: answered,
                },
                Series {
                    name: "abandoned",
                    colour: PALETTE[1],
                    points: abandoned,
                },
            ],
        )
    }
}

fn duration_label(secs: f64) -> String {
    if secs >= 3600.0 && (secs / 3600.0).fract() == 0.0 {
        format!("{} h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{secs:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_reports() {
        let mut r = Recorder::new(60.0, 20.0);
        r.arrival(0);
        r.finished(5_000, Outcome::Answered, Some(3_000));
        r.arrival(61_000);
        r.finished(90_000, Outcome::Abandoned, Some(25_000));
        r.finished(61_000, Outcome::Blocked, None);
        r.queue_length(70_000, 4);
        r.latency("invite_to_final", 1500);
        assert_eq!(r.ended(), 3);
        assert!((r.service_level() - 0.5).abs() < 1e-9);
        let s = r.summary();
        assert_eq!(s["outcomes"]["blocked"], 1);
        assert_eq!(r.csv().lines().count(), 3);
        let page = r.html("t", "<p>x</p>", 0.0);
        assert!(page.contains("<svg") && page.ends_with("</html>"));
    }
}
