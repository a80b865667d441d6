//! A month of a tenant's rows written straight into a store (SQLite or Postgres), for the
//! report's tests, its benchmark and the example in `docs/`: call records with their
//! recordings, dispositions, callbacks, requests, operators' state changes around after-call
//! work, holds and surge switches in the timeline. Deterministic for a seed.
//!
//! The shape follows the DTM hotline: a quiet month of about 1,500 calls a day, and (with
//! `results_day`) the day results are published, when most of the month's calls arrive
//! between 09:00 and 15:00, surge mode is on, and self-service, callbacks and the channel
//! limit carry what 40 operators cannot.

#![allow(dead_code)]

use sqlx::{AnyPool, AssertSqlSafe};

/// What to generate.
#[derive(Clone, Debug)]
pub struct MonthSpec {
    /// Tenant id.
    pub tenant: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Offset of the tenant's zone from UTC, hours (Asia/Tashkent: 5).
    pub utc_offset_hours: i64,
    /// Calls in the month.
    pub calls: usize,
    /// Operators (extensions 1001...).
    pub operators: u32,
    /// The day (1-based) results come out: most calls that day, surge on.
    pub results_day: Option<u32>,
    /// Share of the month's calls on the results day.
    pub results_share: f64,
    /// Seed.
    pub seed: u64,
}

impl MonthSpec {
    /// A small month for tests.
    pub fn small(calls: usize, seed: u64) -> MonthSpec {
        MonthSpec {
            tenant: "dtm".into(),
            month: "2026-11".into(),
            utc_offset_hours: 5,
            calls,
            operators: 6,
            results_day: Some(20),
            results_share: 0.5,
            seed,
        }
    }

    /// A results-day month of `calls` calls with 40 operators.
    pub fn results_month(calls: usize) -> MonthSpec {
        MonthSpec {
            tenant: "dtm".into(),
            month: "2026-07".into(),
            utc_offset_hours: 5,
            calls,
            operators: 40,
            results_day: Some(24),
            results_share: 0.7,
            seed: 20_260_724,
        }
    }
}

/// splitmix64: small, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Exponential with mean `mean`.
    pub fn exp(&mut self, mean: f64) -> i64 {
        (-(1.0 - self.unit()).ln() * mean) as i64
    }
    pub fn pick<'a, T>(&mut self, weighted: &'a [(T, u32)]) -> &'a T {
        let total: u32 = weighted.iter().map(|w| w.1).sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (v, w) in weighted {
            if x < *w {
                return v;
            }
            x -= w;
        }
        &weighted[weighted.len() - 1].0
    }
}

/// A bound value.
#[derive(Clone, Debug)]
pub enum V {
    T(Option<String>),
    I(Option<i64>),
    B(bool),
}

fn s(v: impl Into<String>) -> V {
    V::T(Some(v.into()))
}
fn i(v: i64) -> V {
    V::I(Some(v))
}

/// The rows of a month, grouped by table, in column order.
#[derive(Default)]
pub struct Rows {
    pub calls: Vec<Vec<V>>,
    pub recordings: Vec<Vec<V>>,
    pub dispositions: Vec<Vec<V>>,
    pub callbacks: Vec<Vec<V>>,
    pub requests: Vec<Vec<V>>,
    pub states: Vec<Vec<V>>,
    pub events: Vec<Vec<V>>,
}

pub const CALL_COLUMNS: &[&str] = &[
    "call_uid",
    "node",
    "boot",
    "call_ref",
    "tenant",
    "did",
    "caller_number",
    "month",
    "arrived_at_ms",
    "enqueued_at_ms",
    "offered_at_ms",
    "answered_at_ms",
    "ended_at_ms",
    "ivr_level1",
    "ivr_level2",
    "language",
    "topic",
    "queue",
    "priority",
    "operator",
    "outcome",
    "ended_by",
    "blocked_reason",
    "wait_ms",
    "talk_ms",
    "surge",
    "repeat_of",
    "repeat_count",
    "recording_ref",
];
const RECORDING_COLUMNS: &[&str] = &[
    "recording_uid",
    "call_uid",
    "location",
    "duration_ms",
    "bytes",
    "sha256",
    "at_ms",
];
const DISPOSITION_COLUMNS: &[&str] = &[
    "disposition_uid",
    "call_uid",
    "operator",
    "topic_code",
    "category",
    "resolved",
    "disputed",
    "notes",
    "at_ms",
    "tenant",
    "outcome",
    "revision",
    "saved_by",
];
const CALLBACK_COLUMNS: &[&str] = &[
    "id",
    "node",
    "tenant",
    "queue",
    "call_uid",
    "caller_number",
    "language",
    "arrived_at_ms",
    "requested_at_ms",
    "status",
    "attempts",
    "progress",
    "updated_at_ms",
];
const REQUEST_COLUMNS: &[&str] = &[
    "id",
    "tenant",
    "channel",
    "kind",
    "priority",
    "status",
    "subject",
    "registered_at_ms",
    "updated_at_ms",
    "version",
    "head",
];
const STATE_COLUMNS: &[&str] = &[
    "event_uid",
    "node",
    "operator",
    "from_state",
    "to_state",
    "reason",
    "at_ms",
];
const EVENT_COLUMNS: &[&str] = &[
    "event_uid",
    "call_uid",
    "node",
    "boot",
    "seq",
    "at_ms",
    "kind",
    "body",
];

/// Unix ms of local midnight starting `day` (1-based) of the spec's month.
fn day_start(spec: &MonthSpec, day: u32) -> i64 {
    let (y, m) = spec.month.split_once('-').expect("YYYY-MM");
    let date = jiff::civil::Date::new(y.parse().unwrap(), m.parse().unwrap(), 1).unwrap();
    let utc = date
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond();
    utc + i64::from(day - 1) * 86_400_000 - spec.utc_offset_hours * 3_600_000
}

fn days_in(spec: &MonthSpec) -> u32 {
    let (y, m) = spec.month.split_once('-').expect("YYYY-MM");
    jiff::civil::Date::new(y.parse().unwrap(), m.parse().unwrap(), 1)
        .unwrap()
        .days_in_month() as u32
}

const TOPICS: [(&str, u32); 4] = [
    ("registration", 25),
    ("results", 45),
    ("complaints", 10),
    ("other", 20),
];

/// Generates the month's rows.
pub fn generate(spec: &MonthSpec) -> Rows {
    let mut rng = Rng::new(spec.seed);
    let mut rows = Rows::default();
    let days = days_in(spec);
    let first = day_start(spec, 1);
    // Arrival times: the quiet days spread over 07:00-23:00 with a midday hump; the
    // results day's share between 09:00 and 15:00.
    let results_calls = spec
        .results_day
        .map_or(0, |_| (spec.calls as f64 * spec.results_share) as usize);
    let mut arrivals: Vec<i64> = Vec::with_capacity(spec.calls);
    for k in 0..spec.calls {
        let at = if k < results_calls {
            let d = spec.results_day.unwrap_or(1);
            day_start(spec, d) + 9 * 3_600_000 + (rng.unit() * 6.0 * 3_600_000.0) as i64
        } else {
            let d = 1 + rng.below(u64::from(days)) as u32;
            let hour = 7.0 + 16.0 * (rng.unit() + rng.unit()) / 2.0;
            day_start(spec, d) + (hour * 3_600_000.0) as i64
        };
        arrivals.push(at);
    }
    arrivals.sort_unstable();
    // Surge: on for the results day 09:00-16:00 (calendar) and a short automatic one on the
    // 5th; the month starts with surge off (an "off" the month before).
    let mut surge: Vec<(i64, i64, &str)> = Vec::new();
    if let Some(d) = spec.results_day {
        surge.push((
            day_start(spec, d) + 9 * 3_600_000,
            day_start(spec, d) + 16 * 3_600_000,
            "calendar",
        ));
    }
    surge.push((
        day_start(spec, 5) + 11 * 3_600_000,
        day_start(spec, 5) + 11 * 3_600_000 + 45 * 60_000,
        "auto:expected_wait=131",
    ));
    let mut seq = 0i64;
    let mut event =
        |rows: &mut Rows, call: Option<&str>, at: i64, kind: &str, body: serde_json::Value| {
            seq += 1;
            rows.events.push(vec![
                s(format!("n1:b1:e{seq}")),
                V::T(call.map(str::to_owned)),
                s("n1"),
                s("b1"),
                i(seq),
                i(at),
                s(kind),
                s(body.to_string()),
            ]);
        };
    event(
        &mut rows,
        None,
        first - 86_400_000,
        "surge_changed",
        serde_json::json!({"seq": 0, "at_ms": first - 86_400_000, "kind": "surge_changed", "tenant": spec.tenant, "on": false, "by": "calendar"}),
    );
    // Another tenant's switch in the month: not this report's.
    event(
        &mut rows,
        None,
        first + 3_600_000,
        "surge_changed",
        serde_json::json!({"seq": 0, "at_ms": first + 3_600_000, "kind": "surge_changed", "tenant": "other-tenant", "on": true, "by": "calendar"}),
    );
    for (from, to, by) in &surge {
        event(
            &mut rows,
            None,
            *from,
            "surge_changed",
            serde_json::json!({"seq": 0, "at_ms": from, "kind": "surge_changed", "tenant": spec.tenant, "on": true, "by": by}),
        );
        event(
            &mut rows,
            None,
            *to,
            "surge_changed",
            serde_json::json!({"seq": 0, "at_ms": to, "kind": "surge_changed", "tenant": spec.tenant, "on": false, "by": by}),
        );
    }
    let pool_size = (spec.calls as f64 / 1.7).max(1.0) as u64;
    let mut last_call: std::collections::HashMap<u64, (String, i64)> = Default::default();
    let mut op_free: Vec<i64> = vec![0; spec.operators as usize];
    for (k, at) in arrivals.iter().copied().enumerate() {
        let uid = format!("n1:b1:c{k}");
        let in_surge = surge.iter().any(|(f, t, _)| at >= *f && at < *t);
        // Numbers: a few call many times (u² skews to the low indices).
        let u = rng.unit();
        let number_index = (pool_size as f64 * u * u) as u64;
        let anonymous = rng.below(200) == 0;
        let number = format!("+99890{:07}", number_index);
        let lang = *rng.pick(&[("uz", 7), ("ru", 3)]);
        let topic = *rng.pick(&TOPICS);
        let mut outcome = if in_surge {
            *rng.pick(&[
                ("answered", 40),
                ("abandoned", 14),
                ("deflected", 20),
                ("callback_requested", 12),
                ("blocked", 10),
                ("timed_out", 3),
                ("ivr_hangup", 1),
            ])
        } else {
            *rng.pick(&[
                ("answered", 86),
                ("abandoned", 7),
                ("timed_out", 2),
                ("blocked", 1),
                ("ivr_hangup", 2),
                ("failed", 1),
                ("closed", 1),
            ])
        };
        let unfinished = rng.below(1000) == 0;
        let enq = at + 6_000 + rng.below(6_000) as i64;
        let mut wait = match outcome {
            "answered" => rng.exp(if in_surge { 60_000.0 } else { 14_000.0 }),
            "abandoned" => rng.exp(50_000.0),
            "timed_out" => 300_000,
            "callback_requested" => 45_000 + rng.below(20_000) as i64,
            _ => 0,
        };
        let talk_drawn = 20_000 + rng.exp(130_000.0);
        // After-call work: the operator takes no call before it ends.
        let wrap = 3_000 + rng.exp(25_000.0);
        let mut op = None;
        if outcome == "answered" {
            // The operator free longest answers once free; a caller who would wait more than
            // five minutes more for one gives up, takes a callback or the self-service.
            let (idx, free) = op_free
                .iter()
                .copied()
                .enumerate()
                .min_by_key(|(_, t)| *t)
                .unwrap();
            if free > enq + wait + 300_000 {
                outcome = *rng.pick(&[
                    ("abandoned", 5),
                    ("callback_requested", 3),
                    ("deflected", 2),
                ]);
                wait = match outcome {
                    "abandoned" => rng.exp(90_000.0),
                    "callback_requested" => 45_000 + rng.below(20_000) as i64,
                    _ => 0,
                };
            } else {
                wait = wait.max(free - enq);
                op = Some(format!("{}", 1001 + idx));
                op_free[idx] = enq + wait + talk_drawn + 2 + wrap + 1_000;
            }
        }
        let queued = matches!(
            outcome,
            "answered" | "abandoned" | "timed_out" | "callback_requested"
        );
        let answered = outcome == "answered";
        let talk = if answered { talk_drawn } else { 0 };
        let answered_at = answered.then_some(enq + wait);
        let ended = if outcome == "blocked" {
            at
        } else if queued {
            enq + wait + talk
        } else {
            enq + rng.below(30_000) as i64
        };
        let (repeat_of, repeat_count) = match last_call.get(&number_index) {
            Some((prev, _)) if !anonymous => (Some(prev.clone()), 1),
            _ => (None, 0),
        };
        if !anonymous {
            last_call.insert(number_index, (uid.clone(), at));
        }
        let recording = answered.then(|| format!("recordings/{uid}.wav"));
        rows.calls.push(vec![
            s(&uid),
            s("n1"),
            s("b1"),
            s(format!("c{k}")),
            s(&spec.tenant),
            s("712351914"),
            if anonymous { V::T(None) } else { s(&number) },
            s(&spec.month),
            i(at),
            if queued { i(enq) } else { V::I(None) },
            if answered {
                i(enq + wait - 3_000)
            } else {
                V::I(None)
            },
            V::I(answered_at),
            if unfinished { V::I(None) } else { i(ended) },
            s(if lang == "uz" { "1" } else { "2" }),
            if outcome == "blocked" {
                V::T(None)
            } else {
                s("2")
            },
            s(lang),
            if outcome == "blocked" {
                V::T(None)
            } else {
                s(topic)
            },
            if queued {
                s(format!("{}-{lang}", spec.tenant))
            } else {
                V::T(None)
            },
            i(0),
            V::T(op.clone()),
            if unfinished { V::T(None) } else { s(outcome) },
            s("caller"),
            if outcome == "blocked" {
                s("tenant_channels")
            } else {
                V::T(None)
            },
            i(wait),
            i(talk),
            V::B(in_surge),
            V::T(repeat_of),
            i(repeat_count),
            V::T(recording.clone()),
        ]);
        if let (Some(path), Some(a)) = (&recording, answered_at) {
            rows.recordings.push(vec![
                s(format!("n1:b1:r{k}")),
                s(&uid),
                s(path),
                i(talk),
                i(talk * 16),
                s("00"),
                i(a + talk),
            ]);
        }
        if let (Some(op), Some(a)) = (&op, answered_at) {
            let end = a + talk;
            // Holds on one call in eight: the operator checks something.
            if rng.below(8) == 0 && talk > 20_000 {
                let from = a + talk / 3;
                let len = 5_000 + rng.below((talk / 3) as u64) as i64;
                event(
                    &mut rows,
                    Some(&uid),
                    from,
                    "call_hold",
                    serde_json::json!({"seq": 0, "at_ms": from, "kind": "call_hold", "call": format!("c{k}"), "by": "operator", "held": true}),
                );
                event(
                    &mut rows,
                    Some(&uid),
                    from + len,
                    "call_hold",
                    serde_json::json!({"seq": 0, "at_ms": from + len, "kind": "call_hold", "call": format!("c{k}"), "by": "operator", "held": false}),
                );
            }
            for (n, (from, to, t)) in [
                ("on_call", "wrap_up", end + 2),
                ("wrap_up", "available", end + 2 + wrap),
            ]
            .into_iter()
            .enumerate()
            {
                rows.states.push(vec![
                    s(format!("n1:b1:s{k}-{n}")),
                    s("n1"),
                    s(op),
                    s(from),
                    s(to),
                    s("test"),
                    i(t),
                ]);
            }
            // Nine in ten answered calls get their after-call form.
            if rng.below(10) != 0 {
                let category = *rng.pick(&[
                    ("question", 60),
                    ("complaint", 18),
                    ("suggestion", 6),
                    ("application", 16),
                ]);
                let resolution =
                    *rng.pick(&[("resolved", 78), ("unresolved", 16), ("disputed", 6)]);
                let classified = if rng.below(7) == 0 {
                    *rng.pick(&TOPICS)
                } else {
                    topic
                };
                rows.dispositions.push(vec![
                    s(&uid),
                    s(&uid),
                    s(op),
                    s(classified),
                    s(category),
                    V::B(resolution == "resolved"),
                    V::B(resolution == "disputed"),
                    s("izoh"),
                    i(end + 20_000),
                    s(&spec.tenant),
                    s(resolution),
                    i(1),
                    s(format!("op{op}")),
                ]);
            }
        }
        if outcome == "callback_requested" {
            let status = *rng.pick(&[("connected", 7), ("gave_up", 2), ("pending", 1)]);
            rows.callbacks.push(vec![
                s(format!("cb-{k}")),
                s("n1"),
                s(&spec.tenant),
                s(format!("{}-{lang}", spec.tenant)),
                s(&uid),
                s(&number),
                s(lang),
                i(at),
                i(enq + wait),
                s(status),
                i(1),
                i(4),
                i(enq + wait),
            ]);
        }
    }
    // Requests: one per 60 calls, across the month.
    let n_requests = (spec.calls / 60).max(3);
    for k in 0..n_requests {
        let d = 1 + rng.below(u64::from(days)) as u32;
        let at = day_start(spec, d) + rng.below(86_400_000) as i64;
        let channel = *rng.pick(&[("phone", 3), ("email", 2), ("telegram", 2), ("web", 4)]);
        let priority = *rng.pick(&[("critical", 1), ("high", 3), ("normal", 10), ("low", 2)]);
        let status = *rng.pick(&[
            ("new", 1),
            ("in_progress", 2),
            ("resolved", 5),
            ("closed", 4),
            ("waiting", 1),
        ]);
        let breaches: Vec<&str> = match rng.below(10) {
            0 => vec!["first_answer"],
            1 => vec!["resolution"],
            2 => vec!["first_answer", "resolution"],
            _ => vec![],
        };
        let id = format!("{}-{}-{k:04}", spec.tenant, spec.month.replace('-', ""));
        let head = serde_json::json!({
            "id": id, "tenant": spec.tenant, "channel": channel, "kind": "ordinary",
            "priority": priority, "status": status, "subject": "so'rov", "requester": {},
            "language": "uz", "registered_at_ms": at, "updated_at_ms": at + 1000,
            "version": 2, "breaches": breaches,
        });
        rows.requests.push(vec![
            s(&id),
            s(&spec.tenant),
            s(channel),
            s("ordinary"),
            s(priority),
            s(status),
            s("so'rov"),
            i(at),
            i(at + 1000),
            i(2),
            s(head.to_string()),
        ]);
    }
    // A request of the month before: not this month's.
    let before = first - 3_600_000;
    let id = format!("{}-before-0001", spec.tenant);
    let head = serde_json::json!({"id": id, "tenant": spec.tenant, "channel": "web", "kind": "ordinary",
        "priority": "normal", "status": "new", "subject": "x", "requester": {}, "language": "uz",
        "registered_at_ms": before, "updated_at_ms": before, "version": 1, "breaches": []});
    rows.requests.push(vec![
        s(&id),
        s(&spec.tenant),
        s("web"),
        s("ordinary"),
        s("normal"),
        s("new"),
        s("x"),
        i(before),
        i(before),
        i(1),
        s(head.to_string()),
    ]);
    rows
}

async fn insert(
    pool: &AnyPool,
    postgres: bool,
    table: &str,
    columns: &[&str],
    rows: &[Vec<V>],
) -> Result<(), sqlx::Error> {
    // SQLite: anonymous parameters and short statements (sqlx looks numbered ones up by
    // name, quadratic in their number; see src/store/db.rs).
    let per = if postgres {
        (30_000 / columns.len()).min(1_000)
    } else {
        128
    };
    let mut tx = pool.begin().await?;
    for chunk in rows.chunks(per) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        let mut n = 0;
        for (r, _) in chunk.iter().enumerate() {
            if r > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..columns.len() {
                if c > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                if postgres {
                    sql.push_str(&format!("${n}"));
                } else {
                    sql.push('?');
                }
            }
            sql.push(')');
        }
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            for v in row {
                q = match v {
                    V::T(t) => q.bind(t.clone()),
                    V::I(x) => q.bind(*x),
                    V::B(b) => q.bind(*b),
                };
            }
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Writes the rows into a migrated store.
pub async fn write(pool: &AnyPool, postgres: bool, rows: &Rows) -> Result<(), sqlx::Error> {
    let pg = postgres;
    insert(pool, pg, "call_records", CALL_COLUMNS, &rows.calls).await?;
    insert(pool, pg, "recordings", RECORDING_COLUMNS, &rows.recordings).await?;
    insert(
        pool,
        pg,
        "dispositions",
        DISPOSITION_COLUMNS,
        &rows.dispositions,
    )
    .await?;
    insert(
        pool,
        pg,
        "callback_requests",
        CALLBACK_COLUMNS,
        &rows.callbacks,
    )
    .await?;
    insert(pool, pg, "requests", REQUEST_COLUMNS, &rows.requests).await?;
    insert(
        pool,
        pg,
        "operator_state_changes",
        STATE_COLUMNS,
        &rows.states,
    )
    .await?;
    insert(pool, pg, "call_events", EVENT_COLUMNS, &rows.events).await?;
    Ok(())
}

/// Connects to `url`, migrates, and writes the month as an older navbat did (numbers and
/// caller details plain), then seals them as `navbat migrate` does with `pii`'s keys; returns
/// the store, able to open them.
pub async fn fill(
    url: &navbat::config::DatabaseUrl,
    spec: &MonthSpec,
    pii: std::sync::Arc<navbat::pii::Pii>,
) -> navbat::store::db::Db {
    let db = navbat::store::db::Db::connect_lazy(url)
        .expect("connect")
        .with_pii(pii.clone());
    db.migrate().await.expect("migrate");
    write(db.pool(), db.is_postgres(), &generate(spec))
        .await
        .expect("write the month");
    navbat::store::sealing::ready(&db, &pii)
        .await
        .expect("seal the month's personal data");
    db
}

/// Personal data keys in a key file of their own (kept in `dir`).
pub fn pii_in(dir: &std::path::Path) -> std::sync::Arc<navbat::pii::Pii> {
    let path = dir.join("keys/recordings.key");
    if !path.exists() {
        navbat::recordings::seal::Keys::generate(&path, 0).expect("key file");
    }
    std::sync::Arc::new(navbat::pii::Pii::load(&path).expect("keys"))
}

/// `(call_uid, full number)` of a month's calls as [`generate`] writes them.
pub fn numbers_by_call(spec: &MonthSpec) -> Vec<(String, String)> {
    let col = |name: &str| {
        CALL_COLUMNS
            .iter()
            .position(|c| *c == name)
            .expect("call_records column")
    };
    let (uid, number) = (col("call_uid"), col("caller_number"));
    generate(spec)
        .calls
        .iter()
        .filter_map(|row| match (&row[uid], &row[number]) {
            (V::T(Some(u)), V::T(Some(n))) => Some((u.clone(), n.clone())),
            _ => None,
        })
        .collect()
}

/// The distinct full numbers of a month as [`generate`] writes them.
pub fn numbers(spec: &MonthSpec) -> Vec<String> {
    let mut out: Vec<String> = numbers_by_call(spec).into_iter().map(|(_, n)| n).collect();
    out.sort();
    out.dedup();
    out
}
