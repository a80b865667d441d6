//! Throughput of the ACD routing core (`navbat::acd`), in decisions per second.
//!
//! Method: a contact centre of 40 operators (uz, ru or both; topic skills mixed; 2 of them
//! reserve staff), 4 queues (one per strategy except ring-all), and 1,000 calls waiting with
//! mixed topics and priorities, all operators busy. One benchmark iteration is one full
//! decision cycle, 4 decisions:
//! 1. `CallEnded` for the longest-running call (operator into wrap-up),
//! 2. `handle_timeout` at the wrap-up end (operator available, takes the best call for them
//!    across all queues, `Offer`),
//! 3. `Answered` for that offer,
//! 4. `Enqueue` of a fresh call like the one just taken (no operator free: it waits), so the
//!    waiting set stays at 1,000.
//!
//! Every emitted action is drained and inspected, as a driver would. Virtual time moves 2 ms per
//! cycle. `enqueue_abandon` measures an enqueue plus the abandonment of a waiting call
//! (2 decisions) against the same 1,000-call backlog.
//!
//! Run: `cargo bench --bench acd -- --warm-up-time 1 --measurement-time 3`.
//!
//! First figures (2-core VM shared with other builds, load average ~4, so pessimistic):
//! decision cycle 2.06 us per cycle = 1.94 M decisions/s; enqueue+abandon 1.56 us per pair
//! = 1.28 M decisions/s.

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use navbat::acd::{
    Acd, Action, CallId, Input, Millis, OperatorId, OperatorSpec, OperatorState, QueueId,
    QueueParams, QueueSpec, SkillSet, Strategy, TenantId,
};

const UZ: u8 = 0;
const RU: u8 = 1;
const TOPICS: [u8; 3] = [2, 3, 4];
const WAITING: usize = 1_000;

/// A call's routing attributes: queue, priority, extra skills.
type Shape = (QueueId, u8, SkillSet);

struct Centre {
    acd: Acd,
    now: Millis,
    next_call: u64,
    rng: u64,
    /// Answered calls and their operators, longest-running first.
    on_call: VecDeque<(CallId, OperatorId)>,
    /// Shapes of the calls in the ACD, to enqueue look-alikes.
    shapes: HashMap<CallId, Shape>,
    /// Calls known to be waiting (for the abandon benchmark).
    waiting: VecDeque<CallId>,
    actions: Vec<Action>,
}

impl Centre {
    fn new() -> Centre {
        let params = QueueParams {
            max_wait_ms: 30 * 24 * 3_600_000,
            ring_timeout_ms: 30_000,
            wrap_up_ms: 1,
            max_missed_offers: 3,
            reserve_after_ms: Some(60_000),
            max_waiting: None,
            live_reserve_percent: 0,
        };
        let queues = [
            ("dtm-uz", UZ, Strategy::LongestIdle),
            ("dtm-ru", RU, Strategy::RoundRobin),
            ("support-uz", UZ, Strategy::FewestCalls),
            ("support-ru", RU, Strategy::LongestIdle),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (name, lang, strategy))| QueueSpec {
            id: QueueId(i as u16),
            tenant: TenantId((i / 2) as u16),
            name: name.into(),
            skills: SkillSet::EMPTY.with(lang),
            strategy,
            normal: params.clone(),
            surge: params.clone(),
        })
        .collect();
        let operators = (0..40u32)
            .map(|i| {
                let langs = match i % 3 {
                    0 => SkillSet::EMPTY.with(UZ).with(RU),
                    1 => SkillSet::EMPTY.with(UZ),
                    _ => SkillSet::EMPTY.with(RU),
                };
                // Most know every topic; every fifth lacks one.
                let skills = TOPICS
                    .iter()
                    .filter(|&&t| i % 5 != 4 || t != TOPICS[(i as usize / 5) % 3])
                    .fold(langs, |s, &t| s.with(t));
                OperatorSpec {
                    id: OperatorId(i),
                    skills,
                    reserve: i >= 38,
                }
            })
            .collect();
        let mut centre = Centre {
            acd: Acd::new(queues, operators),
            now: Millis::from_secs(1),
            next_call: 1,
            rng: 0x9e37_79b9_7f4a_7c15,
            on_call: VecDeque::new(),
            shapes: HashMap::new(),
            waiting: VecDeque::new(),
            actions: Vec::new(),
        };
        for i in 0..40 {
            centre.input(Input::SetOperatorState {
                operator: OperatorId(i),
                state: OperatorState::Available,
            });
        }
        // Fill the regular operators, then build the backlog.
        while centre.on_call.len() < 38 {
            let shape = centre.random_shape();
            centre.enqueue(shape);
        }
        while centre.waiting.len() < WAITING {
            let shape = centre.random_shape();
            centre.enqueue(shape);
        }
        centre
    }

    fn random_shape(&mut self) -> Shape {
        // xorshift: deterministic, no dependency.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let r = self.rng;
        let queue = QueueId((r % 4) as u16);
        let priority = u8::from((r >> 8).is_multiple_of(10));
        let topic = SkillSet::EMPTY.with(TOPICS[((r >> 16) % 3) as usize]);
        (queue, priority, topic)
    }

    fn input(&mut self, input: Input) {
        self.acd.handle_input(self.now, input);
        self.react();
    }

    /// Drains actions like a driver; every operator answers every offer at once.
    fn react(&mut self) {
        self.actions.clear();
        while let Some(action) = self.acd.poll_action() {
            self.actions.push(action);
        }
        let offers: Vec<(CallId, OperatorId)> = self
            .actions
            .iter()
            .filter_map(|a| match *a {
                Action::Offer { call, operator } => Some((call, operator)),
                _ => None,
            })
            .collect();
        for (call, operator) in offers {
            self.acd
                .handle_input(self.now, Input::Answered { call, operator });
            while let Some(action) = self.acd.poll_action() {
                black_box(action);
            }
            self.on_call.push_back((call, operator));
        }
    }

    /// Enqueues a call; true if it has to wait.
    fn enqueue(&mut self, (queue, priority, skills): Shape) -> bool {
        let call = CallId(self.next_call);
        self.next_call += 1;
        self.shapes.insert(call, (queue, priority, skills));
        let answered_before = self.on_call.len();
        self.input(Input::Enqueue {
            call,
            queue,
            priority,
            skills,
        });
        let waits = self.on_call.len() == answered_before;
        if waits {
            self.waiting.push_back(call);
        }
        waits
    }

    /// One decision cycle: end a call, wrap-up ends and a waiting call is offered and
    /// answered, a look-alike call arrives.
    fn cycle(&mut self) {
        let (ended, _) = self.on_call.pop_front().expect("someone is on a call");
        self.shapes.remove(&ended);
        self.now = self.now.plus(1);
        self.input(Input::CallEnded { call: ended });
        let before = self.on_call.len();
        self.now = self.now.plus(1);
        while let Some(due) = self.acd.poll_timeout().filter(|&t| t <= self.now) {
            self.acd.handle_timeout(due);
            self.react();
        }
        // Replace each call taken from the backlog with a look-alike.
        let taken: Vec<Shape> = self
            .on_call
            .range(before..)
            .map(|(call, _)| self.shapes[call])
            .collect();
        for shape in taken {
            self.enqueue(shape);
            // Only the abandon benchmark needs to know who waits.
            self.waiting.clear();
        }
    }
}

fn decision_cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("acd");
    group.throughput(Throughput::Elements(4));
    let mut centre = Centre::new();
    group.bench_function("decision_cycle_40ops_1000waiting", |b| {
        b.iter(|| centre.cycle())
    });
    group.throughput(Throughput::Elements(2));
    let mut centre = Centre::new();
    group.bench_function("enqueue_abandon_1000waiting", |b| {
        b.iter(|| {
            let shape = centre.random_shape();
            centre.enqueue(shape);
            // Abandon the oldest call we know is waiting (may have been answered meanwhile:
            // then it is a rejection, still a decision).
            let call = centre.waiting.pop_front().expect("backlog");
            centre.shapes.remove(&call);
            centre.input(Input::CallerLeft { call });
        })
    });
    group.finish();
}

criterion_group!(benches, decision_cycle);
criterion_main!(benches);
