//! Re-evaluating every open request's SLA clocks (`navbat::sla::evaluate`) and finding the next
//! instant anything changes (`navbat::sla::next_change`).
//!
//! Method: 100,000 open requests of the demo's support tenant (weekdays 08:00-20:00
//! Asia/Tashkent, the 2026 decree's holidays and moved days; the calendar is built from
//! `config/navbat.toml` exactly as the router would), registered at random instants over the
//! 7 days before `now` = Thursday 2026-03-12 11:00 Tashkent (so their clocks span a weekend
//! and the 9 March holiday). Mix: channels phone/e-mail/Telegram/web 25 % each; priorities
//! critical 5 %, high 20 %, normal 55 %, low 20 %; 5 % catalogue cards (half of them
//! returned and resubmitted); 30 % already answered; 10 % with a finished wait for the
//! customer, 3 % waiting now. One iteration evaluates all 100,000 and takes `next_change`
//! over them, as a driver's sweep would; the results are kept (a `Vec` reused) and
//! inspected. The same sweep is also run at Tuesday 2026-03-24 09:00, the first working day
//! after the spring's longest run of days off (Ramazon hayit on Friday 20 March, the Navruz
//! weekend, Navruz moved to Monday 23 March), and against the round-the-clock `dtm`
//! calendar (the fast path).
//!
//! Run: `cargo bench --bench sla -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jiff::{SignedDuration, Timestamp};
use navbat::config::Config;
use navbat::sla::{
    evaluate, next_change, BusinessCalendar, Channel, ClockState, Pause, Priority, RequestFacts,
    RequestKind, SlaRules, SlaState,
};

const OPEN: usize = 100_000;

/// A small deterministic generator (xorshift64*), so every run sees the same requests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn plus(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs))
        .expect("within range")
}

fn open_requests(now: Timestamp, seed: u64) -> Vec<RequestFacts> {
    let mut rng = Rng(seed);
    let window = 7 * 86_400;
    (0..OPEN)
        .map(|_| {
            let registered = plus(now, -(rng.below(window) as i64) - 1);
            let channel = Channel::ALL[rng.below(4) as usize];
            let priority = match rng.below(100) {
                0..=4 => Priority::Critical,
                5..=24 => Priority::High,
                25..=79 => Priority::Normal,
                _ => Priority::Low,
            };
            let kind = if rng.below(100) < 5 {
                RequestKind::Moderation
            } else {
                RequestKind::Ordinary
            };
            let mut facts = RequestFacts::new(registered, channel, priority, kind);
            let age = now.as_second() - registered.as_second();
            if kind == RequestKind::Moderation {
                facts.submissions.push(registered);
                if rng.below(2) == 0 && age > 7200 {
                    let returned = plus(registered, 3600);
                    facts.returns.push(returned);
                    facts
                        .submissions
                        .push(plus(returned, 1 + rng.below((age - 3601) as u64) as i64));
                }
            } else if rng.below(100) < 30 {
                facts.first_answer_at = Some(plus(registered, rng.below(age as u64) as i64));
            }
            match rng.below(100) {
                0..=9 if age > 4 => {
                    let from = plus(registered, rng.below(age as u64 / 2) as i64);
                    let until = plus(from, 1 + rng.below(age as u64 / 2) as i64);
                    facts.waiting_for_customer.push(Pause {
                        from,
                        until: Some(until),
                    });
                }
                10..=12 => facts.waiting_for_customer.push(Pause {
                    from: plus(registered, rng.below(age as u64) as i64),
                    until: None,
                }),
                _ => {}
            }
            facts
        })
        .collect()
}

/// One driver sweep: every state re-evaluated, then the next instant to wake up.
fn sweep(
    rules: &SlaRules,
    calendar: &BusinessCalendar,
    requests: &[RequestFacts],
    now: Timestamp,
    states: &mut Vec<SlaState>,
) -> (Option<Timestamp>, usize) {
    states.clear();
    states.extend(requests.iter().map(|f| evaluate(rules, calendar, f, now)));
    let breached = states.iter().filter(|s| s.any_breached()).count();
    (next_change(states.iter(), now), breached)
}

fn sla_sweep(c: &mut Criterion) {
    let config = Config::embedded_default();
    let support = config.tenant("support").expect("demo support tenant");
    let dtm = config.tenant("dtm").expect("demo dtm tenant");
    let support_calendar = support.business_calendar();
    let dtm_calendar = dtm.business_calendar();
    assert!(dtm_calendar.is_always_open());
    let rules = &support.sla;

    let mut group = c.benchmark_group("sla");
    group.throughput(Throughput::Elements(OPEN as u64));
    group.sample_size(20);
    let mut states = Vec::with_capacity(OPEN);

    for (name, calendar, now) in [
        (
            "sweep_100k_support_thu_1100",
            &support_calendar,
            "2026-03-12T11:00:00+05:00",
        ),
        (
            "sweep_100k_support_after_navruz",
            &support_calendar,
            "2026-03-24T09:00:00+05:00",
        ),
        (
            "sweep_100k_dtm_24x7",
            &dtm_calendar,
            "2026-03-12T11:00:00+05:00",
        ),
    ] {
        let now: Timestamp = now.parse().expect("instant");
        let requests = open_requests(now, 0x5EED_0001);
        // Not timed: the sweep does what its name says.
        let (wake, breached) = sweep(rules, calendar, &requests, now, &mut states);
        let running = states
            .iter()
            .flat_map(|s| s.clocks())
            .filter(|c| c.state == ClockState::Running)
            .count();
        assert!(wake.is_some_and(|t| t > now) && running > 0 && breached > 0);
        eprintln!(
            "{name}: {running} running clocks, {breached} requests breached, next change {wake:?}"
        );
        group.bench_function(name, |b| {
            b.iter(|| black_box(sweep(rules, calendar, &requests, now, &mut states)))
        });
    }
    group.finish();
}

criterion_group!(benches, sla_sweep);
criterion_main!(benches);
