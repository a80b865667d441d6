//! What a load test or simulation replays: the arrival profile, the caller and operator
//! models, the staffing and the router settings - and the navbat configuration built from
//! them, so the simulator and the real router route with the same settings.

use crate::dist::{Dist, Rng};
use std::path::Path;

/// A stretch of scenario time with a fixed number of arrivals, spread uniformly at random
/// within it (a Poisson process conditioned on its count).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Segment {
    /// Start, seconds from the scenario's origin.
    pub start_secs: f64,
    /// Length, seconds.
    pub len_secs: f64,
    /// Calls arriving in it.
    pub calls: u64,
}

/// When calls arrive.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Profile {
    /// A name for reports.
    pub name: String,
    /// Back-to-back segments.
    pub segments: Vec<Segment>,
    /// Wall-clock hour of day the scenario starts at (for charts only).
    pub start_hour: f64,
}

/// Hourly shares of the built-in results-day profile, 08:00 to 20:00: results are published
/// at 10:00, calls jump at once and decay through the afternoon.
const RESULTS_DAY_SHARES: [f64; 12] = [
    0.03, 0.05, 0.19, 0.16, 0.12, 0.10, 0.08, 0.07, 0.06, 0.05, 0.05, 0.04,
];

impl Profile {
    /// `calls` arrivals at a constant rate over `duration_secs`.
    pub fn constant(calls: u64, duration_secs: f64) -> Profile {
        Profile {
            name: format!("constant {calls} calls in {duration_secs} s"),
            segments: vec![Segment {
                start_secs: 0.0,
                len_secs: duration_secs,
                calls,
            }],
            start_hour: 0.0,
        }
    }

    /// A rate rising linearly from `from_per_sec` to `to_per_sec` over `duration_secs`, in
    /// one-minute steps.
    pub fn ramp(from_per_sec: f64, to_per_sec: f64, duration_secs: f64) -> Profile {
        let steps = (duration_secs / 60.0).ceil().max(1.0) as usize;
        let len = duration_secs / steps as f64;
        let mut carry = 0.0;
        let segments = (0..steps)
            .map(|i| {
                let mid = (i as f64 + 0.5) / steps as f64;
                let exact = (from_per_sec + (to_per_sec - from_per_sec) * mid) * len + carry;
                let calls = exact.floor().max(0.0);
                carry = exact - calls;
                Segment {
                    start_secs: i as f64 * len,
                    len_secs: len,
                    calls: calls as u64,
                }
            })
            .collect();
        Profile {
            name: format!("ramp {from_per_sec}/s to {to_per_sec}/s over {duration_secs} s"),
            segments,
            start_hour: 0.0,
        }
    }

    /// The built-in results day: `calls` (150,000 in the tender, D21) from 08:00 to 20:00,
    /// peaking in the hour after results are published at 10:00.
    pub fn results_day(calls: u64) -> Profile {
        let mut left = calls;
        let n = RESULTS_DAY_SHARES.len();
        let segments = RESULTS_DAY_SHARES
            .iter()
            .enumerate()
            .map(|(i, share)| {
                let c = if i + 1 == n {
                    left
                } else {
                    ((calls as f64) * share).round() as u64
                };
                left -= c.min(left);
                Segment {
                    start_secs: i as f64 * 3600.0,
                    len_secs: 3600.0,
                    calls: c,
                }
            })
            .collect();
        Profile {
            name: format!("results day, {calls} calls 08:00-20:00"),
            segments,
            start_hour: 8.0,
        }
    }

    /// A curve from CSV: header `start_secs,len_secs,calls` (or `minute,calls`, one-minute
    /// segments).
    pub fn from_csv(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .unwrap_or("")
            .split(',')
            .map(|c| c.trim().to_lowercase())
            .collect();
        let col = |n: &str| header.iter().position(|c| c == n);
        let calls_at = col("calls").ok_or(ProfileError::Header)?;
        let mut segments = Vec::new();
        for (i, line) in lines.enumerate() {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let num = |idx: Option<usize>| {
                idx.and_then(|i| cells.get(i))
                    .and_then(|c| c.parse::<f64>().ok())
                    .filter(|x| x.is_finite() && *x >= 0.0)
            };
            let bad = ProfileError::Line(i + 2);
            let calls = num(Some(calls_at)).ok_or(ProfileError::Line(i + 2))?;
            let (start, len) = if let Some(m) = num(col("minute")) {
                (m * 60.0, 60.0)
            } else {
                (
                    num(col("start_secs")).ok_or(ProfileError::Line(i + 2))?,
                    num(col("len_secs")).ok_or(bad)?,
                )
            };
            segments.push(Segment {
                start_secs: start,
                len_secs: len,
                calls: calls.round() as u64,
            });
        }
        Ok(Profile {
            name: format!("curve {}", path.display()),
            segments,
            start_hour: 0.0,
        })
    }

    /// Total calls.
    pub fn calls(&self) -> u64 {
        self.segments.iter().map(|s| s.calls).sum()
    }

    /// Scenario length, seconds.
    pub fn duration_secs(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.start_secs + s.len_secs)
            .fold(0.0, f64::max)
    }

    /// Every arrival time in milliseconds, ascending, at most `limit` of them.
    pub fn arrivals_ms(&self, rng: &mut Rng, limit: u64) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.calls().min(limit) as usize);
        for s in &self.segments {
            let mut seg: Vec<u64> = (0..s.calls)
                .map(|_| ((s.start_secs + rng.unit() * s.len_secs) * 1000.0) as u64)
                .collect();
            seg.sort_unstable();
            out.extend(seg);
        }
        out.sort_unstable();
        out.truncate(limit as usize);
        out
    }
}

/// The arrival curve could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read arrival curve {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No usable header.
    #[error("arrival curve needs a header: start_secs,len_secs,calls or minute,calls")]
    Header,
    /// A bad line.
    #[error("arrival curve line {0}: expected non-negative numbers")]
    Line(usize),
}

/// Everything about the callers, operators and router settings of one run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Scenario {
    /// When calls arrive.
    pub profile: Profile,
    /// Random seed.
    pub seed: u64,
    /// Caller patience in the queue (from joining the queue to hanging up), seconds.
    pub patience: Dist,
    /// Talk time once answered, seconds.
    pub handle: Dist,
    /// How long an operator's phone rings before they answer, seconds.
    pub ring_delay: Dist,
    /// After-call work of the operator, seconds; when shorter than the queue's wrap-up the
    /// operator ends wrap-up early through the API.
    pub operator_wrap_up: Dist,
    /// Time in the IVR before joining the queue (greeting and two menu levels), seconds.
    pub ivr_secs: f64,
    /// Weights of the language digits 1 (uz) and 2 (ru).
    pub language_weights: [f64; 2],
    /// Weights of the topic digits 1, 2, 3, 0.
    pub topic_weights: [f64; 4],
    /// Operators (extensions 2001...).
    pub operators: u32,
    /// Of them, the share speaking both languages; the rest split between uz and ru.
    pub bilingual_share: f64,
    /// Reserve staff (extensions 2901...), bilingual.
    pub reserve: u32,
    /// Simultaneous calls the router admits (D6).
    pub channels: u32,
    /// Queue: maximum wait, seconds.
    pub max_wait_secs: u64,
    /// Queue: ring timeout, seconds.
    pub ring_timeout_secs: u64,
    /// Queue: wrap-up, seconds.
    pub wrap_up_secs: u64,
    /// Queue: reserve staff are offered calls after this wait, seconds.
    pub reserve_after_secs: Option<u64>,
    /// Queue: cap on waiting calls.
    pub max_waiting: Option<u32>,
    /// Service-level target time, seconds.
    pub target_secs: f64,
    /// Tenant in surge mode from the start: the queues use the surge maximum wait and take
    /// reserve staff at once, and a share of callers takes the self-service branch.
    pub surge: bool,
    /// Surge: the queues' maximum wait, seconds.
    pub surge_max_wait_secs: u64,
    /// Surge: share of callers (0-1) who take self-service and end as deflected.
    pub surge_deflect_share: f64,
    /// Surge: a caller still waiting this long after joining the queue is offered a
    /// callback (the tenant's `offer_after_secs`), seconds.
    pub surge_callback_after_secs: f64,
    /// Surge: share of offered callers (0-1) who accept the callback and hang up; the
    /// callback is served later at their place in the queue.
    pub surge_callback_accept: f64,
    /// Surge: the results-day policy (`navbat::callback::door` and the live reserve); `None`:
    /// the surge of before (callback offered after `surge_callback_after_secs`, no reserve).
    pub surge_policy: Option<SurgePolicy>,
    /// At most this many calls are placed.
    pub call_limit: u64,
}

/// The results-day policy, as the simulator models it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SurgePolicy {
    /// Surge greeting and IVR, seconds (instead of `ivr_secs`).
    pub ivr_secs: f64,
    /// The self-service information prompt, seconds (the channel is held while it plays).
    pub info_secs: f64,
    /// The offer is made at queue entry when the expected wait is above this, seconds.
    pub offer_above_secs: f64,
    /// The offer prompt, seconds: the caller decides when it ends.
    pub offer_secs: f64,
    /// After the caller keys the callback or the SMS, the confirmation prompt holds the
    /// channel this long, seconds (0: freed at once).
    pub confirm_secs: f64,
    /// Share of offered callers (0-1) who, not taking a callback, take the SMS.
    pub sms_accept: f64,
    /// Share of the operators kept for live callers while live callers wait, percent.
    pub live_reserve_percent: u8,
    /// The next morning's callback window, seconds (0: none).
    pub next_morning_secs: f64,
}

impl Default for SurgePolicy {
    /// The demo tenant's policy (BENCHMARKS.md, "Results-day policy").
    fn default() -> SurgePolicy {
        SurgePolicy {
            ivr_secs: 14.0,
            info_secs: 6.8,
            offer_above_secs: 60.0,
            offer_secs: 8.0,
            confirm_secs: 3.6,
            sms_accept: 0.5,
            live_reserve_percent: 30,
            next_morning_secs: 7200.0,
        }
    }
}

impl Scenario {
    /// The navbat configuration for this scenario as TOML: the demo configuration with its
    /// operators replaced by the scenario's, its queue timings, channel limit and addresses.
    ///
    /// Timings are whole seconds in navbat's configuration, so with time compression they
    /// are rounded, at least 1 s.
    pub fn navbat_toml(&self, compression: f64, ports: &Ports) -> String {
        // Whole seconds, at least 1 unless the setting is 0 (e.g. no wrap-up).
        let c = |secs: u64| -> i64 {
            if secs == 0 {
                0
            } else {
                ((secs as f64 / compression).round() as i64).max(1)
            }
        };
        let mut doc: toml::Table =
            toml::from_str(DEMO_CONFIG).expect("the demo configuration is valid TOML");
        let ip = "127.0.0.1";
        if let Some(sip) = doc.get_mut("sip").and_then(|v| v.as_table_mut()) {
            sip.insert("udp".into(), format!("{ip}:{}", ports.sip).into());
            sip.insert("tcp".into(), format!("{ip}:{}", ports.sip).into());
        }
        if let Some(http) = doc.get_mut("http").and_then(|v| v.as_table_mut()) {
            http.insert("listen".into(), format!("{ip}:{}", ports.http).into());
        }
        if let Some(media) = doc.get_mut("media").and_then(|v| v.as_table_mut()) {
            media.insert("rtp_port_min".into(), (ports.rtp_min as i64).into());
            media.insert("rtp_port_max".into(), (ports.rtp_max as i64).into());
        }
        if let Some(limits) = doc.get_mut("limits").and_then(|v| v.as_table_mut()) {
            limits.insert("channels".into(), (self.channels as i64).into());
        }
        if let Some(tenants) = doc.get_mut("tenant").and_then(|v| v.as_array_mut()) {
            for t in tenants.iter_mut().filter_map(|t| t.as_table_mut()) {
                let share = if t.get("id").and_then(|v| v.as_str()) == Some("dtm") {
                    self.channels
                } else {
                    self.channels.min(50)
                };
                t.insert("channels".into(), (share as i64).into());
                if t.get("id").and_then(|v| v.as_str()) == Some("dtm") {
                    self.dtm_surge(t, &c, ports);
                }
            }
        }
        if let Some(queues) = doc.get_mut("queue").and_then(|v| v.as_array_mut()) {
            for q in queues.iter_mut().filter_map(|q| q.as_table_mut()) {
                q.insert("max_wait_secs".into(), c(self.max_wait_secs).into());
                q.insert("ring_timeout_secs".into(), c(self.ring_timeout_secs).into());
                q.insert("wrap_up_secs".into(), c(self.wrap_up_secs).into());
                match self.reserve_after_secs {
                    Some(r) => {
                        q.insert("reserve_after_secs".into(), c(r).into());
                    }
                    None => {
                        q.remove("reserve_after_secs");
                    }
                }
                match self.max_waiting {
                    Some(m) => {
                        q.insert("max_waiting".into(), (m as i64).into());
                    }
                    None => {
                        q.remove("max_waiting");
                    }
                }
                if self.surge {
                    let mut surge = toml::Table::new();

                    surge.insert("max_wait_secs".into(), c(self.surge_max_wait_secs).into());
                    surge.insert("reserve_after_secs".into(), 0i64.into());
                    q.insert("surge".into(), toml::Value::Table(surge));
                } else {
                    q.remove("surge");
                }
            }
        }
        let mut ops = Vec::new();
        for op in self.operator_roster() {
            let mut t = toml::Table::new();
            t.insert("ext".into(), op.ext.clone().into());
            t.insert("name".into(), format!("Load operator {}", op.ext).into());
            t.insert(
                "ha1".into(),
                navbat::config::digest_ha1(&op.ext, "navbat", &op.password).into(),
            );
            t.insert(
                "languages".into(),
                toml::Value::Array(op.languages.iter().map(|l| (*l).into()).collect()),
            );
            if op.reserve {
                t.insert("reserve".into(), true.into());
            }
            ops.push(toml::Value::Table(t));
        }
        doc.insert("operator".into(), toml::Value::Array(ops));
        if let Some(gateway) = ports.sms_gateway {
            if let Some(sms) = doc.get_mut("sms").and_then(|v| v.as_table_mut()) {
                sms.insert("enabled".into(), true.into());
                // Only the texts the policy sends: the information (self-service and the
                // door's SMS key) and the callback confirmations; no missed-call texts.
                sms.insert("missed_call_after".into(), toml::Value::Array(Vec::new()));
                if let Some(g) = sms.get_mut("gateway").and_then(|v| v.as_table_mut()) {
                    g.insert("url".into(), format!("http://{gateway}/sms").into());
                }
                if let Some(t) = sms.get_mut("templates").and_then(|v| v.as_table_mut()) {
                    t.remove("missed_call");
                }
            }
        }
        if let Some(dir) = &ports.data_dir {
            let d = dir.display();
            let mut set = |section: &str, key: &str, value: String| {
                let t = doc
                    .entry(section)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let Some(t) = t.as_table_mut() {
                    t.insert(key.into(), value.into());
                }
            };
            set("database", "url", format!("sqlite://{d}/navbat.db"));
            set("database", "journal_dir", format!("{d}/journal"));
            set("media", "recordings_dir", format!("{d}/recordings"));
            set("requests", "attachments_dir", format!("{d}/attachments"));
            set("recordings", "key_file", format!("{d}/keys/recordings.key"));
        }
        if let Some(trunk) = ports.trunk {
            if let Some(t) = doc.get_mut("trunk").and_then(|v| v.as_table_mut()) {
                t.insert("outbound".into(), trunk.to_string().into());
            }
        }
        toml::to_string(&doc).expect("a TOML table serialises")
    }

    /// The DTM tenant's surge settings: the results-day policy from the same values the
    /// simulator uses (`[tenant.surge] greeting`, `[tenant.surge.callback]`,
    /// `[tenant.surge.door]`), or without the policy no door and no live reserve; and the
    /// tenant's clock when the run sets one (so that it closes when the profile ends).
    fn dtm_surge(&self, t: &mut toml::Table, c: &impl Fn(u64) -> i64, ports: &Ports) {
        if let Some(clock) = &ports.tenant_clock {
            t.insert("timezone".into(), clock.zone.clone().into());
            let mut day = toml::Table::new();
            let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
            day.insert(
                "days".into(),
                toml::Value::Array(days.iter().map(|d| (*d).into()).collect()),
            );
            day.insert("open".into(), "00:00".into());
            day.insert("close".into(), clock.close.clone().into());
            t.insert(
                "hours".into(),
                toml::Value::Array(vec![toml::Value::Table(day)]),
            );
        }
        let Some(surge) = t.get_mut("surge").and_then(|v| v.as_table_mut()) else {
            return;
        };
        let policy = self.surge_policy.as_ref();
        surge.insert("greeting".into(), policy.is_some().into());
        let secs = |s: f64| c(s.round().max(0.0) as u64);
        if let Some(callback) = surge.get_mut("callback").and_then(|v| v.as_table_mut()) {
            callback.insert(
                "live_reserve_percent".into(),
                policy
                    .map_or(0, |p| i64::from(p.live_reserve_percent))
                    .into(),
            );
            callback.insert(
                "offer_after_secs".into(),
                secs(self.surge_callback_after_secs).into(),
            );
        }
        match policy {
            Some(p) => {
                let mut door = toml::Table::new();
                door.insert("offer_above_secs".into(), secs(p.offer_above_secs).into());
                door.insert("sms_digit".into(), SMS_DIGIT.to_string().into());
                // The window starts at 08:00; its length is the scenario's (whole minutes).
                let minutes = (p.next_morning_secs / 60.0).round() as i64;
                if minutes > 0 {
                    let end = 8 * 60 + minutes.min(15 * 60);
                    let mut window = toml::Table::new();
                    window.insert("start".into(), "08:00".into());
                    window.insert(
                        "end".into(),
                        format!("{:02}:{:02}", end / 60, end % 60).into(),
                    );
                    door.insert("next_morning".into(), toml::Value::Table(window));
                }
                surge.insert("door".into(), toml::Value::Table(door));
            }
            None => {
                surge.remove("door");
            }
        }
    }

    /// The operators of the scenario, in configuration order.
    pub fn operator_roster(&self) -> Vec<RosterEntry> {
        let both = (self.operators as f64 * self.bilingual_share).round() as u32;
        let rest = self.operators - both.min(self.operators);
        let mut out = Vec::new();
        for i in 0..self.operators {
            let ext = format!("{}", 2001 + i);
            let languages = if i < both {
                vec!["uz", "ru"]
            } else if (i - both) < rest.div_ceil(2) {
                vec!["uz"]
            } else {
                vec!["ru"]
            };
            out.push(RosterEntry {
                password: format!("load{ext}"),
                ext,
                languages,
                reserve: false,
            });
        }
        for i in 0..self.reserve {
            let ext = format!("{}", 2901 + i);
            out.push(RosterEntry {
                password: format!("load{ext}"),
                ext,
                languages: vec!["uz", "ru"],
                reserve: true,
            });
        }
        out
    }

    /// The navbat configuration as typed values, for the simulator.
    pub fn navbat_config(&self) -> Result<navbat::config::Config, ScenarioError> {
        let text = self.navbat_toml(1.0, &Ports::default());
        navbat::config::Config::from_toml_str(&text, "loadgen scenario")
            .map_err(|e| ScenarioError::Config(e.to_string()))
    }
}

/// The scenario does not make a valid navbat configuration.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// navbat refused the generated configuration.
    #[error("the scenario's navbat configuration is invalid: {0}")]
    Config(String),
    /// Too many skills for the ACD core.
    #[error("{0}")]
    Skills(String),
}

/// One simulated operator.
#[derive(Clone, Debug)]
pub struct RosterEntry {
    /// Extension.
    pub ext: String,
    /// SIP password.
    pub password: String,
    /// Languages spoken.
    pub languages: Vec<&'static str>,
    /// Reserve staff.
    pub reserve: bool,
}

/// The tenant's clock for a run: a fixed UTC offset and the closing time of its one
/// opening (every day from 00:00), so that the router's "until closing" matches the
/// simulator's (the profile's end).
#[derive(Clone, Debug)]
pub struct TenantClock {
    /// `timezone`, e.g. `+01:00`.
    pub zone: String,
    /// Closing time, `HH:MM` local.
    pub close: String,
}

/// The door offer's SMS key (`[tenant.surge.door] sms_digit`); the callback key is the demo
/// configuration's `[tenant.surge.callback] digit`, 1.
pub const SMS_DIGIT: char = '2';
/// The callback key of the demo configuration.
pub const CALLBACK_DIGIT: char = '1';
/// The demo configuration's self-service key (results: where they are published).
pub const SELF_SERVICE_DIGIT: char = '7';

/// Where an embedded navbat listens, and what it talks to.
#[derive(Clone, Debug)]
pub struct Ports {
    /// SIP, UDP and TCP.
    pub sip: u16,
    /// HTTP API.
    pub http: u16,
    /// First RTP port.
    pub rtp_min: u16,
    /// Last RTP port.
    pub rtp_max: u16,
    /// loadgen's SMS gateway sink (`[sms]` is enabled and sent there).
    pub sms_gateway: Option<std::net::SocketAddr>,
    /// Where callbacks are dialled (`[trunk] outbound`): loadgen's callers.
    pub trunk: Option<std::net::SocketAddr>,
    /// The DTM tenant's clock.
    pub tenant_clock: Option<TenantClock>,
    /// Where the router keeps its database, journal, recordings and key (else the demo's
    /// `data/`).
    pub data_dir: Option<std::path::PathBuf>,
}

impl Default for Ports {
    fn default() -> Ports {
        Ports {
            sip: 5060,
            http: 8080,
            rtp_min: 20000,
            rtp_max: 20999,
            sms_gateway: None,
            trunk: None,
            tenant_clock: None,
            data_dir: None,
        }
    }
}

/// The demo configuration the scenario's is derived from.
pub const DEMO_CONFIG: &str = include_str!("../../config/navbat.toml");

/// The DID of the round-the-clock DTM line in the demo configuration.
pub const DTM_DID: &str = "712351914";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn scenario() -> Scenario {
        Scenario {
            profile: Profile::results_day(150_000),
            seed: 1,
            patience: Dist::Exp { mean: 120.0 },
            handle: Dist::Exp { mean: 180.0 },
            ring_delay: Dist::Const { value: 3.0 },
            operator_wrap_up: Dist::Const { value: 10.0 },
            ivr_secs: 8.0,
            language_weights: [0.7, 0.3],
            topic_weights: [0.2, 0.5, 0.1, 0.2],
            operators: 40,
            bilingual_share: 0.6,
            reserve: 2,
            channels: 300,
            max_wait_secs: 300,
            ring_timeout_secs: 20,
            wrap_up_secs: 15,
            reserve_after_secs: Some(60),
            max_waiting: Some(500),
            target_secs: 20.0,
            surge: false,
            surge_max_wait_secs: 120,
            surge_deflect_share: 0.0,
            surge_callback_after_secs: 45.0,
            surge_callback_accept: 0.0,
            surge_policy: None,
            call_limit: u64::MAX,
        }
    }

    #[test]
    fn results_day_has_exactly_its_calls() {
        let p = Profile::results_day(150_000);
        assert_eq!(p.calls(), 150_000);
        assert_eq!(p.duration_secs(), 12.0 * 3600.0);
        let a = p.arrivals_ms(&mut Rng::seeded(3), u64::MAX);
        assert_eq!(a.len(), 150_000);
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn ramp_keeps_its_total() {
        let p = Profile::ramp(0.0, 2.0, 600.0);
        assert_eq!(p.calls(), 600);
    }

    #[test]
    fn generated_policy_config_is_valid_and_carries_the_policy() {
        let mut s = scenario();
        s.surge = true;
        s.surge_max_wait_secs = 90;
        s.surge_policy = Some(SurgePolicy {
            offer_above_secs: 45.0,
            live_reserve_percent: 20,
            next_morning_secs: 5400.0,
            ..SurgePolicy::default()
        });
        let ports = Ports {
            sms_gateway: Some("127.0.0.1:9".parse().unwrap()),
            trunk: Some("127.0.0.1:7".parse().unwrap()),
            tenant_clock: Some(TenantClock {
                zone: "+01:00".into(),
                close: "12:34".into(),
            }),
            ..Ports::default()
        };
        let text = s.navbat_toml(1.0, &ports);
        let c = navbat::config::Config::from_toml_str(&text, "t").unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let dtm = &doc["tenant"].as_array().unwrap()[0];
        assert_eq!(dtm["surge"]["greeting"].as_bool(), Some(true));
        assert_eq!(
            dtm["surge"]["door"]["offer_above_secs"].as_integer(),
            Some(45)
        );
        assert_eq!(dtm["surge"]["door"]["sms_digit"].as_str(), Some("2"));
        assert_eq!(
            dtm["surge"]["door"]["next_morning"]["end"].as_str(),
            Some("09:30")
        );
        assert_eq!(
            dtm["surge"]["callback"]["live_reserve_percent"].as_integer(),
            Some(20)
        );
        assert_eq!(dtm["hours"][0]["close"].as_str(), Some("12:34"));
        assert_eq!(doc["sms"]["enabled"].as_bool(), Some(true));
        assert_eq!(
            doc["sms"]["gateway"]["url"].as_str(),
            Some("http://127.0.0.1:9/sms")
        );
        assert_eq!(doc["trunk"]["outbound"].as_str(), Some("127.0.0.1:7"));
        let tenant = c.tenant("dtm").unwrap();
        assert!(tenant.surge.door.is_some());
        assert!(c.sms.is_some());
        // Without the policy: no door, no reserve, the long greeting.
        s.surge_policy = None;
        let text = s.navbat_toml(1.0, &Ports::default());
        let c = navbat::config::Config::from_toml_str(&text, "t").unwrap();
        assert!(c.tenant("dtm").unwrap().surge.door.is_none());
    }

    #[test]
    fn generated_config_is_valid_for_navbat() {
        let s = scenario();
        let config = s.navbat_config().unwrap();
        assert_eq!(config.operators.len(), 42);
        let text = s.navbat_toml(60.0, &Ports::default());
        let c = navbat::config::Config::from_toml_str(&text, "t").unwrap();
        assert_eq!(c.operators.len(), 42);
    }
}
