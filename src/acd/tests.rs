//! Unit tests of the ACD rules, in virtual time.

use super::*;

const UZ: u8 = 0;
const RU: u8 = 1;
const TOPIC: u8 = 2;

fn skills(bits: &[u8]) -> SkillSet {
    bits.iter().fold(SkillSet::EMPTY, |s, &b| s.with(b))
}

fn params() -> QueueParams {
    QueueParams {
        max_wait_ms: 300_000,
        ring_timeout_ms: 10_000,
        wrap_up_ms: 5_000,
        max_missed_offers: 0,
        reserve_after_ms: None,
        max_waiting: None,
        live_reserve_percent: 0,
    }
}

fn queue(id: u16, skill_bits: &[u8], strategy: Strategy) -> QueueSpec {
    QueueSpec {
        id: QueueId(id),
        tenant: TenantId(0),
        name: format!("q{id}"),
        skills: skills(skill_bits),
        strategy,
        normal: params(),
        surge: params(),
    }
}

fn op(id: u32, skill_bits: &[u8]) -> OperatorSpec {
    OperatorSpec {
        id: OperatorId(id),
        skills: skills(skill_bits),
        reserve: false,
    }
}

fn reserve_op(id: u32, skill_bits: &[u8]) -> OperatorSpec {
    OperatorSpec {
        reserve: true,
        ..op(id, skill_bits)
    }
}

/// Drives an [`Acd`] in virtual time, the way the QueueActor does.
struct Harness {
    acd: Acd,
    now: Millis,
}

impl Harness {
    fn new(queues: Vec<QueueSpec>, operators: Vec<OperatorSpec>) -> Harness {
        Harness {
            acd: Acd::new(queues, operators),
            now: Millis::from_secs(1000),
        }
    }

    fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.acd.poll_action()).collect()
    }

    fn input(&mut self, input: Input) -> Vec<Action> {
        self.acd.handle_input(self.now, input);
        self.drain()
    }

    /// Moves time on by `ms`, firing each deadline at its own instant.
    fn advance(&mut self, ms: u64) -> Vec<Action> {
        let end = self.now.plus(ms);
        let mut out = Vec::new();
        while let Some(due) = self.acd.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(due);
            self.acd.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = end;
        out
    }

    fn set(&mut self, operator: u32, state: OperatorState) -> Vec<Action> {
        self.input(Input::SetOperatorState {
            operator: OperatorId(operator),
            state,
        })
    }

    fn available(&mut self, operators: &[u32]) {
        for &o in operators {
            self.set(o, OperatorState::Available);
        }
    }

    fn enqueue(&mut self, call: u64, queue: u16, priority: u8) -> Vec<Action> {
        self.enqueue_with(call, queue, priority, SkillSet::EMPTY)
    }

    fn enqueue_with(
        &mut self,
        call: u64,
        queue: u16,
        priority: u8,
        extra: SkillSet,
    ) -> Vec<Action> {
        self.input(Input::Enqueue {
            call: CallId(call),
            queue: QueueId(queue),
            priority,
            skills: extra,
        })
    }

    fn answer(&mut self, call: u64, operator: u32) -> Vec<Action> {
        self.input(Input::Answered {
            call: CallId(call),
            operator: OperatorId(operator),
        })
    }

    fn decline(&mut self, call: u64, operator: u32) -> Vec<Action> {
        self.input(Input::Declined {
            call: CallId(call),
            operator: OperatorId(operator),
        })
    }

    fn end(&mut self, call: u64) -> Vec<Action> {
        self.input(Input::CallEnded { call: CallId(call) })
    }

    fn left(&mut self, call: u64) -> Vec<Action> {
        self.input(Input::CallerLeft { call: CallId(call) })
    }

    fn state(&self, operator: u32) -> OperatorState {
        self.acd.operator_state(OperatorId(operator))
    }

    /// Offers `call` to `operator` and has it answered (asserting the offer happened).
    fn connect(&mut self, call: u64, queue: u16, operator: u32) {
        let actions = self.enqueue(call, queue, 0);
        assert_eq!(offers(&actions), vec![(call, operator)], "{actions:?}");
        self.answer(call, operator);
    }
}

fn offers(actions: &[Action]) -> Vec<(u64, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Offer { call, operator } => Some((call.0, operator.0)),
            _ => None,
        })
        .collect()
}

fn withdraws(actions: &[Action]) -> Vec<(u64, u32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Withdraw { call, operator } => Some((call.0, operator.0)),
            _ => None,
        })
        .collect()
}

fn finished(actions: &[Action]) -> Vec<(u64, Outcome)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Finished { call, outcome } => Some((call.0, *outcome)),
            _ => None,
        })
        .collect()
}

fn changed(actions: &[Action], operator: u32) -> Vec<(OperatorState, ChangeReason)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::OperatorChanged {
                operator: o,
                to,
                reason,
                ..
            } if o.0 == operator => Some((*to, *reason)),
            _ => None,
        })
        .collect()
}

fn rejected(actions: &[Action]) -> Option<RejectReason> {
    match actions {
        [Action::Rejected { reason }] => Some(*reason),
        _ => None,
    }
}

fn four_uz(strategy: Strategy) -> Harness {
    Harness::new(
        vec![queue(0, &[UZ], strategy)],
        (0..4).map(|i| op(i, &[UZ])).collect(),
    )
}

// ----- value types --------------------------------------------------------------------------

#[test]
fn millis_and_skills_helpers() {
    assert_eq!(Millis::from_secs(2), Millis(2000));
    assert_eq!(Millis(5).plus(7), Millis(12));
    assert_eq!(Millis(u64::MAX).plus(1), Millis(u64::MAX));
    assert_eq!(Millis(10).saturating_since(Millis(4)), 6);
    assert_eq!(Millis(4).saturating_since(Millis(10)), 0);
    let uz_topic = skills(&[UZ, TOPIC]);
    assert!(uz_topic.contains(skills(&[UZ])));
    assert!(uz_topic.contains(SkillSet::EMPTY));
    assert!(!uz_topic.contains(skills(&[RU])));
    assert_eq!(skills(&[UZ]).union(skills(&[RU])), skills(&[UZ, RU]));
    assert!(uz_topic.has(TOPIC) && !uz_topic.has(RU) && !uz_topic.has(64));
    assert!(SkillSet::default().is_empty());
}

#[test]
#[should_panic(expected = "operator ids must be 0..n")]
fn new_panics_on_out_of_order_ids() {
    Acd::new(vec![queue(0, &[], Strategy::LongestIdle)], vec![op(1, &[])]);
}

// ----- strategies -----------------------------------------------------------------------------

#[test]
fn operators_start_logged_out_and_calls_wait_for_them() {
    let mut h = four_uz(Strategy::LongestIdle);
    assert_eq!(h.state(0), OperatorState::LoggedOut);
    assert!(offers(&h.enqueue(1, 0, 0)).is_empty());
    assert_eq!(h.acd.waiting_position(CallId(1)), Some((QueueId(0), 1)));
    let actions = h.set(2, OperatorState::Available);
    assert_eq!(offers(&actions), vec![(1, 2)]);
    assert_eq!(h.state(2), OperatorState::Ringing);
}

#[test]
fn longest_idle_goes_to_the_operator_free_longest() {
    let mut h = four_uz(Strategy::LongestIdle);
    for o in [2, 0, 3, 1] {
        h.available(&[o]);
        h.advance(1000);
    }
    assert_eq!(offers(&h.enqueue(1, 0, 0)), vec![(1, 2)]);
    assert_eq!(offers(&h.enqueue(2, 0, 0)), vec![(2, 0)]);
    assert_eq!(offers(&h.enqueue(3, 0, 0)), vec![(3, 3)]);
}

#[test]
fn round_robin_follows_the_queue_cursor() {
    let mut q = queue(0, &[UZ], Strategy::RoundRobin);
    q.normal.wrap_up_ms = 0;
    let mut h = Harness::new(vec![q], (0..3).map(|i| op(i, &[UZ])).collect());
    h.available(&[2, 1, 0]);
    let mut served = Vec::new();
    for call in 1..=5 {
        let actions = h.enqueue(call, 0, 0);
        let [(_, o)] = offers(&actions)[..] else {
            panic!("{actions:?}")
        };
        served.push(o);
        h.answer(call, o);
        // Wrap-up 0: straight back to Available, so everyone is free every time.
        assert_eq!(changed(&h.end(call), o)[0].0, OperatorState::Available);
    }
    assert_eq!(served, vec![0, 1, 2, 0, 1]);
}

#[test]
fn fewest_calls_prefers_the_least_loaded_then_longest_idle() {
    let mut q0 = queue(0, &[UZ], Strategy::FewestCalls);
    let mut q1 = queue(1, &[UZ], Strategy::LongestIdle);
    q0.normal.wrap_up_ms = 0;
    q1.normal.wrap_up_ms = 0;
    let mut h = Harness::new(vec![q0, q1], (0..3).map(|i| op(i, &[UZ])).collect());
    h.available(&[0]);
    h.advance(10);
    h.available(&[1]);
    h.advance(10);
    h.available(&[2]);
    // op0 answers two calls, op1 one, op2 none (through the longest-idle queue).
    for (call, operator) in [(1, 0), (2, 1), (3, 2), (4, 0)] {
        h.advance(10);
        h.connect(call, 1, operator);
        h.end(call);
    }
    // answered: op0 = 2, op1 = 1, op2 = 1; op1 has been idle longer than op2.
    assert_eq!(offers(&h.enqueue(5, 0, 0)), vec![(5, 1)]);
    assert_eq!(offers(&h.enqueue(6, 0, 0)), vec![(6, 2)]);
    assert_eq!(offers(&h.enqueue(7, 0, 0)), vec![(7, 0)]);
}

#[test]
fn ring_all_rings_everyone_and_the_first_answer_wins() {
    let mut q = queue(0, &[UZ], Strategy::RingAll);
    q.normal.max_missed_offers = 1;
    let mut h = Harness::new(
        vec![q],
        vec![op(0, &[UZ]), op(1, &[RU]), op(2, &[UZ, RU]), op(3, &[UZ])],
    );
    h.available(&[0, 1, 2, 3]);
    let actions = h.enqueue(1, 0, 0);
    assert_eq!(offers(&actions), vec![(1, 0), (1, 2), (1, 3)]);
    let actions = h.answer(1, 2);
    assert_eq!(finished(&actions), vec![(1, Outcome::Answered)]);
    assert_eq!(withdraws(&actions), vec![(1, 0), (1, 3)]);
    assert_eq!(h.state(2), OperatorState::OnCall);
    // Losing a ring-all race is not a missed offer (max_missed_offers = 1 would mean Break).
    for o in [0, 3] {
        assert_eq!(
            changed(&actions, o),
            vec![(OperatorState::Available, ChangeReason::OfferWithdrawn)]
        );
    }
    // The losers are free for the next call.
    assert_eq!(offers(&h.enqueue(2, 0, 0)), vec![(2, 0), (2, 3)]);
    // A late answer from the loser is rejected.
    h.answer(2, 0);
    assert_eq!(
        rejected(&h.answer(2, 3)),
        Some(RejectReason::NotRinging {
            call: CallId(2),
            operator: OperatorId(3)
        })
    );
}

#[test]
fn ring_all_ring_timeout_requeues_once_and_rings_again() {
    let mut h = Harness::new(
        vec![queue(0, &[UZ], Strategy::RingAll)],
        vec![op(0, &[UZ]), op(1, &[UZ])],
    );
    h.available(&[0, 1]);
    assert_eq!(offers(&h.enqueue(1, 0, 0)), vec![(1, 0), (1, 1)]);
    let actions = h.advance(10_000);
    assert_eq!(withdraws(&actions), vec![(1, 0), (1, 1)]);
    let requeued: Vec<_> = actions
        .iter()
        .filter(|a| matches!(a, Action::Requeued { .. }))
        .collect();
    assert_eq!(requeued.len(), 1);
    // Nobody else is eligible, so the same pair is rung again.
    assert_eq!(offers(&actions), vec![(1, 0), (1, 1)]);
}

#[test]
fn round_robin_skips_busy_and_ineligible_operators() {
    let mut q = queue(0, &[UZ], Strategy::RoundRobin);
    q.normal.wrap_up_ms = 0;
    let mut h = Harness::new(
        vec![q],
        vec![op(0, &[UZ]), op(1, &[RU]), op(2, &[UZ]), op(3, &[UZ])],
    );
    h.available(&[0, 1, 2, 3]);
    h.connect(1, 0, 0);
    h.connect(2, 0, 2); // op1 lacks UZ
    h.end(1);
    // op3 is next after op2; then the cursor wraps to op0.
    h.connect(3, 0, 3);
    h.connect(4, 0, 0);
}

// ----- skills and priorities -------------------------------------------------------------------

#[test]
fn calls_need_queue_and_call_skills() {
    let mut h = Harness::new(
        vec![queue(0, &[UZ], Strategy::LongestIdle)],
        vec![op(0, &[UZ]), op(1, &[RU, TOPIC]), op(2, &[UZ, TOPIC])],
    );
    h.available(&[0]);
    h.advance(1);
    h.available(&[1, 2]);
    assert_eq!(
        offers(&h.enqueue_with(1, 0, 0, skills(&[TOPIC]))),
        vec![(1, 2)]
    );
    assert_eq!(offers(&h.enqueue(2, 0, 0)), vec![(2, 0)]);
    // Only op1 is free, and it lacks UZ.
    assert!(offers(&h.enqueue(3, 0, 0)).is_empty());
}

#[test]
fn available_operator_takes_highest_priority_then_longest_waiting_across_queues() {
    let mut h = Harness::new(
        vec![
            queue(0, &[UZ], Strategy::LongestIdle),
            queue(1, &[RU], Strategy::LongestIdle),
        ],
        vec![op(0, &[UZ, RU])],
    );
    h.enqueue(1, 1, 0); // ru, oldest, low priority
    h.advance(1000);
    h.enqueue(2, 0, 0); // uz, low priority
    h.advance(1000);
    h.enqueue(3, 0, 5); // uz, newest, high priority
    h.enqueue(4, 1, 5); // ru, high priority, after 3
    assert_eq!(h.acd.waiting_position(CallId(3)), Some((QueueId(0), 1)));
    assert_eq!(h.acd.waiting_position(CallId(2)), Some((QueueId(0), 2)));
    let mut served = Vec::new();
    let mut actions = h.set(0, OperatorState::Available);
    for _ in 0..4 {
        let [(call, _)] = offers(&actions)[..] else {
            panic!("{actions:?}")
        };
        served.push(call);
        h.answer(call, 0);
        h.end(call);
        actions = h.advance(5_000);
    }
    assert_eq!(served, vec![3, 4, 1, 2]);
}

// ----- missed offers ---------------------------------------------------------------------------

#[test]
fn ring_timeout_withdraws_requeues_at_head_and_tries_someone_else() {
    let mut h = four_uz(Strategy::LongestIdle);
    h.available(&[0]);
    h.advance(1);
    h.available(&[1]);
    h.connect(100, 0, 0); // op0 busy
    assert_eq!(offers(&h.enqueue(1, 0, 0)), vec![(1, 1)]);
    h.advance(1);
    h.enqueue(2, 0, 0);
    let actions = h.advance(10_000);
    assert_eq!(withdraws(&actions), vec![(1, 1)]);
    assert!(actions.contains(&Action::Requeued {
        call: CallId(1),
        operator: OperatorId(1)
    }));
    // Nobody else is free: op1 gets the head call again (call 1, not call 2).
    assert_eq!(offers(&actions), vec![(1, 1)]);
    assert_eq!(
        changed(&actions, 1),
        vec![
            (OperatorState::Available, ChangeReason::RingTimeout),
            (OperatorState::Ringing, ChangeReason::Offer)
        ]
    );
    // A newly free operator takes the waiting call 2 at once; another stays idle.
    assert_eq!(offers(&h.set(2, OperatorState::Available)), vec![(2, 2)]);
    assert!(offers(&h.set(3, OperatorState::Available)).is_empty());
    // After the next miss, call 1 goes to someone else (op3), and op1 stays free.
    let actions = h.advance(10_000);
    assert_eq!(withdraws(&actions), vec![(1, 1), (2, 2)]);
    assert_eq!(offers(&actions), vec![(1, 3), (2, 1)]);
}

#[test]
fn requeued_call_goes_before_older_calls_of_its_priority() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.max_missed_offers = 1;
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ]), op(1, &[UZ, TOPIC])]);
    h.available(&[1]);
    h.connect(100, 0, 1); // op1 (the only TOPIC speaker) busy
    h.enqueue_with(1, 0, 0, skills(&[TOPIC])); // oldest, waits for op1
    h.advance(1000);
    h.enqueue(9, 0, 3); // higher priority stays first
    h.advance(1000);
    h.available(&[0]);
    h.enqueue(2, 0, 0); // offered to op0
    h.answer(9, 0);
    h.end(9);
    let mut actions = h.advance(5_000); // op0 wrap-up ends, call 2 offered
    assert_eq!(offers(&actions), vec![(2, 0)]);
    h.advance(1000);
    h.enqueue(3, 0, 0);
    actions = h.advance(10_000); // missed: op0 -> Break (max 1 miss)
    assert_eq!(
        changed(&actions, 0),
        vec![(OperatorState::Break, ChangeReason::MissedOffers)]
    );
    assert_eq!(h.acd.waiting_position(CallId(2)), Some((QueueId(0), 1)));
    assert_eq!(h.acd.waiting_position(CallId(1)), Some((QueueId(0), 2)));
    assert_eq!(h.acd.waiting_position(CallId(3)), Some((QueueId(0), 3)));
    // Back from break, op0 takes call 2 (the re-queued head), not call 3.
    assert_eq!(offers(&h.set(0, OperatorState::Available)), vec![(2, 0)]);
}

#[test]
fn declined_is_a_miss_without_withdraw_and_repeated_misses_mean_break() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.max_missed_offers = 2;
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ])]);
    h.available(&[0]);
    h.enqueue(1, 0, 0);
    let actions = h.decline(1, 0);
    assert!(withdraws(&actions).is_empty());
    assert_eq!(
        changed(&actions, 0),
        vec![
            (OperatorState::Available, ChangeReason::Declined),
            (OperatorState::Ringing, ChangeReason::Offer)
        ]
    );
    let actions = h.advance(10_000);
    assert_eq!(withdraws(&actions), vec![(1, 0)]);
    assert_eq!(
        changed(&actions, 0),
        vec![(OperatorState::Break, ChangeReason::MissedOffers)]
    );
    assert_eq!(h.acd.waiting_position(CallId(1)), Some((QueueId(0), 1)));
    // Back from break: the count starts again.
    assert_eq!(offers(&h.set(0, OperatorState::Available)), vec![(1, 0)]);
    let actions = h.decline(1, 0);
    assert_eq!(offers(&actions), vec![(1, 0)]);
}

#[test]
fn an_answered_call_resets_the_missed_count() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.max_missed_offers = 2;
    q.normal.wrap_up_ms = 0;
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ])]);
    h.available(&[0]);
    h.enqueue(1, 0, 0);
    h.decline(1, 0); // miss 1, re-offered
    h.answer(1, 0);
    h.end(1);
    h.enqueue(2, 0, 0);
    let actions = h.decline(2, 0); // miss 1 again, not 2
    assert_eq!(offers(&actions), vec![(2, 0)]);
    assert_eq!(h.state(0), OperatorState::Ringing);
}

// ----- overflow and surge ---------------------------------------------------------------------

fn overflow_centre() -> Harness {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.reserve_after_ms = Some(30_000);
    q.surge.reserve_after_ms = Some(0);
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ]), reserve_op(1, &[UZ, RU])]);
    h.available(&[0, 1]);
    h.connect(100, 0, 0); // the regular operator is busy
    h
}

#[test]
fn reserve_staff_take_calls_at_the_overflow_step() {
    let mut h = overflow_centre();
    assert!(offers(&h.enqueue(1, 0, 0)).is_empty());
    assert!(offers(&h.advance(29_999)).is_empty());
    assert_eq!(offers(&h.advance(1)), vec![(1, 1)]);
    let snap = h.acd.queue_snapshot(QueueId(0), h.now);
    assert_eq!((snap.waiting, snap.ringing), (0, 1));
}

#[test]
fn reserve_staff_take_calls_at_once_in_surge() {
    let mut h = overflow_centre();
    h.enqueue(1, 0, 0);
    h.advance(5_000);
    let actions = h.input(Input::SetSurge {
        tenant: TenantId(0),
        on: true,
    });
    assert_eq!(offers(&actions), vec![(1, 1)]);
    assert!(h.acd.surge(QueueId(0)));
    h.answer(1, 1);
    // New calls in surge go to reserve at once too; out of surge they wait again.
    h.end(1);
    h.input(Input::SetSurge {
        tenant: TenantId(0),
        on: false,
    });
    h.advance(5_000); // reserve wrap-up
    assert!(offers(&h.enqueue(2, 0, 0)).is_empty());
    h.input(Input::SetSurge {
        tenant: TenantId(0),
        on: true,
    });
    assert_eq!(h.state(1), OperatorState::Ringing);
    assert_eq!(
        rejected(&h.input(Input::SetSurge {
            tenant: TenantId(9),
            on: true
        })),
        Some(RejectReason::UnknownTenant(TenantId(9)))
    );
}

#[test]
fn reserve_waits_when_surge_lengthens_the_step() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.reserve_after_ms = Some(10_000);
    q.surge.reserve_after_ms = None;
    let mut h = Harness::new(vec![q], vec![reserve_op(0, &[UZ])]);
    h.available(&[0]);
    h.enqueue(1, 0, 0);
    h.input(Input::SetSurge {
        tenant: TenantId(0),
        on: true,
    });
    assert!(offers(&h.advance(60_000)).is_empty());
    let snap = h.acd.queue_snapshot(QueueId(0), h.now);
    assert_eq!(
        snap.operators_available, 0,
        "reserve does not serve in surge"
    );
    assert_eq!(snap.longest_wait_ms, 60_000);
}

// ----- wrap-up, max wait, blocking ------------------------------------------------------------

#[test]
fn wrap_up_then_available_and_takes_the_next_call() {
    let mut h = four_uz(Strategy::LongestIdle);
    h.available(&[0]);
    h.connect(1, 0, 0);
    h.enqueue(2, 0, 0);
    let actions = h.end(1);
    assert_eq!(
        changed(&actions, 0),
        vec![(OperatorState::WrapUp, ChangeReason::CallEnded)]
    );
    assert_eq!(h.acd.poll_timeout(), Some(h.now.plus(5_000)));
    assert!(h.advance(4_999).is_empty());
    let actions = h.advance(1);
    assert_eq!(
        changed(&actions, 0),
        vec![
            (OperatorState::Available, ChangeReason::WrapUpDone),
            (OperatorState::Ringing, ChangeReason::Offer)
        ]
    );
    assert_eq!(offers(&actions), vec![(2, 0)]);
}

#[test]
fn available_during_wrap_up_ends_it_early() {
    let mut h = four_uz(Strategy::LongestIdle);
    h.available(&[0]);
    h.connect(1, 0, 0);
    h.end(1);
    let actions = h.set(0, OperatorState::Available);
    assert_eq!(
        changed(&actions, 0),
        vec![(OperatorState::Available, ChangeReason::External)]
    );
    // The wrap-up deadline is gone; only the ACD's other timers remain (none here).
    assert_eq!(h.acd.poll_timeout(), None);
}

#[test]
fn end_wrap_up_ends_only_a_wrap_up_and_takes_its_deadline_along() {
    let mut h = four_uz(Strategy::LongestIdle);
    h.available(&[0]);
    h.connect(1, 0, 0);
    h.end(1);
    let end = |h: &mut Harness| {
        h.input(Input::EndWrapUp {
            operator: OperatorId(0),
        })
    };
    assert_eq!(
        changed(&end(&mut h), 0),
        vec![(OperatorState::Available, ChangeReason::WrapUpDone)]
    );
    assert_eq!(h.acd.poll_timeout(), None);
    // Not in wrap-up: nothing changes (a break stays a break).
    h.set(0, OperatorState::Break);
    assert!(end(&mut h).is_empty());
    assert_eq!(h.acd.operator_state(OperatorId(0)), OperatorState::Break);
    // A second call's wrap-up runs its full time.
    h.set(0, OperatorState::Available);
    h.connect(2, 0, 0);
    h.end(2);
    assert!(h.advance(4_999).is_empty());
    assert_eq!(
        changed(&h.advance(1), 0),
        vec![(OperatorState::Available, ChangeReason::WrapUpDone)]
    );
}

#[test]
fn wrap_up_uses_the_params_active_at_answer() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.surge.wrap_up_ms = 60_000;
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ])]);
    h.available(&[0]);
    h.connect(1, 0, 0);
    h.input(Input::SetSurge {
        tenant: TenantId(0),
        on: true,
    });
    h.end(1);
    assert_eq!(h.acd.poll_timeout(), Some(h.now.plus(5_000)));
}

#[test]
fn max_wait_times_out_a_waiting_call() {
    let mut h = four_uz(Strategy::LongestIdle);
    h.enqueue(1, 0, 0);
    assert!(h.advance(299_999).is_empty());
    assert_eq!(finished(&h.advance(1)), vec![(1, Outcome::TimedOut)]);
    assert_eq!(h.acd.calls_in_progress(), 0);
    assert_eq!(
        rejected(&h.left(1)),
        Some(RejectReason::UnknownCall(CallId(1)))
    );
}

#[test]
fn max_wait_lets_a_ringing_offer_finish_first() {
    let mut h = four_uz(Strategy::LongestIdle);
    h.enqueue(1, 0, 0);
    h.enqueue(2, 0, 0);
    h.advance(295_000);
    h.available(&[0, 1]);
    assert!(h.advance(5_000).is_empty(), "both ringing at max wait");
    assert_eq!(finished(&h.answer(1, 0)), vec![(1, Outcome::Answered)]);
    let actions = h.advance(5_000);
    assert_eq!(withdraws(&actions), vec![(2, 1)]);
    assert_eq!(finished(&actions), vec![(2, Outcome::TimedOut)]);
    assert!(!actions.iter().any(|a| matches!(a, Action::Requeued { .. })));
}

#[test]
fn surge_shortens_the_max_wait_of_calls_already_waiting() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.surge.max_wait_ms = 60_000;
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ])]);
    h.enqueue(1, 0, 0);
    h.advance(30_000);
    h.enqueue(2, 0, 0);
    h.advance(40_000);
    h.input(Input::SetSurge {
        tenant: TenantId(0),
        on: true,
    });
    // Call 1 is past the surge limit already: it goes at the next timeout.
    assert!(h.acd.poll_timeout().unwrap() <= h.now);
    assert_eq!(finished(&h.advance(0)), vec![(1, Outcome::TimedOut)]);
    assert_eq!(finished(&h.advance(19_000)), vec![]);
    h.input(Input::SetSurge {
        tenant: TenantId(0),
        on: false,
    });
    assert_eq!(h.acd.waiting_position(CallId(2)), Some((QueueId(0), 1)));
}

#[test]
fn a_full_queue_blocks_new_callers_who_would_have_to_wait() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.max_waiting = Some(2);
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ])]);
    h.enqueue(1, 0, 0);
    h.enqueue(2, 0, 0);
    assert_eq!(finished(&h.enqueue(3, 0, 0)), vec![(3, Outcome::Blocked)]);
    assert_eq!(h.acd.calls_in_progress(), 2);
    // A call that can be offered at once is never blocked.
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.max_waiting = Some(0);
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ])]);
    h.available(&[0]);
    assert_eq!(offers(&h.enqueue(1, 0, 0)), vec![(1, 0)]);
    assert_eq!(finished(&h.enqueue(2, 0, 0)), vec![(2, Outcome::Blocked)]);
}

// ----- caller leaves ----------------------------------------------------------------------------

#[test]
fn caller_leaving_while_waiting_ringing_or_answered() {
    let mut h = Harness::new(
        vec![queue(0, &[UZ], Strategy::RingAll)],
        vec![op(0, &[UZ]), op(1, &[UZ])],
    );
    h.enqueue(1, 0, 0);
    assert_eq!(finished(&h.left(1)), vec![(1, Outcome::Abandoned)]);
    h.available(&[0, 1]);
    h.enqueue(2, 0, 0);
    h.enqueue(3, 0, 0);
    let actions = h.left(2);
    assert_eq!(withdraws(&actions), vec![(2, 0), (2, 1)]);
    assert_eq!(finished(&actions), vec![(2, Outcome::Abandoned)]);
    let last_withdraw = actions
        .iter()
        .rposition(|a| matches!(a, Action::Withdraw { .. }))
        .unwrap();
    let finish = actions
        .iter()
        .position(|a| matches!(a, Action::Finished { .. }))
        .unwrap();
    assert!(last_withdraw < finish);
    assert_eq!(
        changed(&actions, 0)[0],
        (OperatorState::Available, ChangeReason::OfferWithdrawn)
    );
    // Both are free again and ring for the waiting call 3.
    assert_eq!(offers(&actions), vec![(3, 0), (3, 1)]);
    h.answer(3, 1);
    assert_eq!(
        rejected(&h.left(3)),
        Some(RejectReason::AlreadyAnswered(CallId(3)))
    );
}

// ----- operator state changes ------------------------------------------------------------------

#[test]
fn logging_out_while_ringing_requeues_the_call_without_a_miss() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.max_missed_offers = 1;
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ]), op(1, &[UZ])]);
    h.available(&[0]);
    h.advance(1);
    h.enqueue(1, 0, 0);
    h.available(&[1]);
    let actions = h.set(0, OperatorState::LoggedOut);
    assert_eq!(withdraws(&actions), vec![(1, 0)]);
    assert_eq!(
        changed(&actions, 0),
        vec![(OperatorState::LoggedOut, ChangeReason::External)]
    );
    assert_eq!(offers(&actions), vec![(1, 1)]);
    let actions = h.set(1, OperatorState::Break);
    assert_eq!(withdraws(&actions), vec![(1, 1)]);
    assert_eq!(h.state(1), OperatorState::Break);
    assert_eq!(h.acd.waiting_position(CallId(1)), Some((QueueId(0), 1)));
}

#[test]
fn break_during_a_call_applies_when_it_ends_without_wrap_up() {
    let mut h = four_uz(Strategy::LongestIdle);
    h.available(&[0]);
    h.connect(1, 0, 0);
    assert!(h.set(0, OperatorState::Break).is_empty());
    assert_eq!(h.state(0), OperatorState::OnCall);
    let actions = h.end(1);
    assert_eq!(
        changed(&actions, 0),
        vec![(OperatorState::Break, ChangeReason::AfterCall)]
    );
    // Available during a call cancels a remembered request.
    h.available(&[0]);
    h.connect(2, 0, 0);
    h.set(0, OperatorState::LoggedOut);
    h.set(0, OperatorState::Available);
    assert_eq!(
        changed(&h.end(2), 0),
        vec![(OperatorState::WrapUp, ChangeReason::CallEnded)]
    );
}

#[test]
fn invalid_inputs_are_rejected_and_change_nothing() {
    let mut h = four_uz(Strategy::LongestIdle);
    assert_eq!(
        rejected(&h.set(0, OperatorState::OnCall)),
        Some(RejectReason::NotExternalState(OperatorState::OnCall))
    );
    assert_eq!(
        rejected(&h.set(9, OperatorState::Available)),
        Some(RejectReason::UnknownOperator(OperatorId(9)))
    );
    assert_eq!(
        rejected(&h.enqueue(1, 7, 0)),
        Some(RejectReason::UnknownQueue(QueueId(7)))
    );
    h.enqueue(1, 0, 0);
    assert_eq!(
        rejected(&h.enqueue(1, 0, 0)),
        Some(RejectReason::DuplicateCall(CallId(1)))
    );
    assert_eq!(
        rejected(&h.answer(1, 0)),
        Some(RejectReason::NotRinging {
            call: CallId(1),
            operator: OperatorId(0)
        })
    );
    assert_eq!(
        rejected(&h.decline(2, 0)),
        Some(RejectReason::UnknownCall(CallId(2)))
    );
    assert_eq!(
        rejected(&h.end(1)),
        Some(RejectReason::NotAnswered(CallId(1)))
    );
    assert!(
        h.set(0, OperatorState::LoggedOut).is_empty(),
        "same state: ignored"
    );
    assert_eq!(h.acd.waiting_position(CallId(1)), Some((QueueId(0), 1)));
    assert_eq!(
        h.acd.operator_state(OperatorId(99)),
        OperatorState::LoggedOut
    );
    assert_eq!(
        h.acd.queue_snapshot(QueueId(9), h.now),
        QueueSnapshot::empty(QueueId(9))
    );
}

#[test]
fn snapshot_counts_calls_and_eligible_operators() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.reserve_after_ms = Some(1_000);
    let mut h = Harness::new(
        vec![q],
        vec![
            op(0, &[UZ]),
            op(1, &[UZ]),
            op(2, &[RU]),
            reserve_op(3, &[UZ]),
        ],
    );
    h.available(&[0, 1, 2]);
    h.set(3, OperatorState::Break);
    h.connect(1, 0, 0);
    h.enqueue_with(2, 0, 0, skills(&[TOPIC])); // nobody can take it
    h.enqueue(3, 0, 0); // rings op1
    h.advance(500);
    let snap = h.acd.queue_snapshot(QueueId(0), h.now);
    assert_eq!(
        snap,
        QueueSnapshot {
            queue: QueueId(0),
            surge: false,
            waiting: 1,
            callbacks_waiting: 0,
            ringing: 1,
            longest_wait_ms: 500,
            operators_available: 0,
            operators_ringing: 1,
            operators_on_call: 1,
            operators_wrap_up: 0,
            operators_on_break: 1,
            operators_logged_out: 0,
        }
    );
}

// ----- callbacks ----------------------------------------------------------------------------

fn enqueue_callback(h: &mut Harness, call: u64, arrived: Millis) -> Vec<Action> {
    h.input(Input::EnqueueCallback {
        call: CallId(call),
        queue: QueueId(0),
        priority: 0,
        skills: SkillSet::EMPTY,
        arrived,
    })
}

#[test]
fn a_callback_keeps_its_original_place_among_live_callers() {
    let mut h = four_uz(Strategy::LongestIdle);
    let start = h.now;
    h.enqueue(1, 0, 0); // queued at start
    h.advance(10_000);
    h.enqueue(2, 0, 0); // queued at start + 10 s
    h.advance(10_000);
    // The caller behind this callback first queued at start + 5 s: between calls 1 and 2.
    let a = enqueue_callback(&mut h, 100, Millis(start.0 + 5_000));
    assert!(a.is_empty(), "{a:?}");
    // An arrival "in the future" is taken as now, never ahead of anyone.
    let later = Millis(h.now.0 + 60_000);
    assert!(enqueue_callback(&mut h, 101, later).is_empty());
    let order: Vec<(u64, u32)> = (0..4)
        .flat_map(|o| offers(&h.set(o, OperatorState::Available)))
        .collect();
    assert_eq!(order, vec![(1, 0), (100, 1), (2, 2), (101, 3)]);
}

#[test]
fn a_callback_has_no_max_wait_and_is_never_blocked() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.max_waiting = Some(0);
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ])]);
    let now = h.now;
    let a = enqueue_callback(&mut h, 100, now);
    assert!(finished(&a).is_empty(), "{a:?}");
    // A live caller is refused by the cap of 0 waiting...
    let a = h.enqueue(1, 0, 0);
    assert_eq!(finished(&a), vec![(1, Outcome::Blocked)]);
    // ...and the callback outlives any max wait.
    let a = h.advance(10_000_000);
    assert!(finished(&a).is_empty(), "{a:?}");
    let a = h.set(0, OperatorState::Available);
    assert_eq!(offers(&a), vec![(100, 0)]);
}

/// Four operators, half kept for live callers: while live callers wait, callbacks (which
/// keep earlier places) get two operators at most; the rest go to live callers even though
/// the callbacks arrived first. With nobody live waiting, callbacks take everyone.
#[test]
fn the_live_reserve_keeps_operators_for_live_callers_while_they_wait() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.live_reserve_percent = 50;
    let mut h = Harness::new(vec![q], (0..4).map(|i| op(i, &[UZ])).collect());
    let early = Millis(h.now.0 - 60_000);
    for cb in 100..104 {
        enqueue_callback(&mut h, cb, early);
    }
    h.enqueue(1, 0, 0);
    h.enqueue(2, 0, 0);
    let order: Vec<(u64, u32)> = (0..4)
        .flat_map(|o| offers(&h.set(o, OperatorState::Available)))
        .collect();
    // As operators log in one by one the reserve is of those serving at that moment: the
    // second of two would be a second callback (100 % of them), the third of three is one
    // callback of three, the fourth would make two of four.
    assert_eq!(order, vec![(100, 0), (1, 1), (101, 2), (2, 3)]);
    // Live callers served, nobody live waits: the next free operator takes a callback
    // even though two are already on callbacks.
    h.answer(1, 1);
    let a = h.input(Input::CallEnded { call: CallId(1) });
    assert!(offers(&a).is_empty(), "wrap-up first: {a:?}");
    let a = h.advance(5_000);
    assert_eq!(offers(&a), vec![(102, 1)]);
}

/// Without a reserve (the default) arrival order alone decides, as before.
#[test]
fn without_a_live_reserve_callbacks_keep_their_places() {
    let mut h = four_uz(Strategy::LongestIdle);
    let early = Millis(h.now.0 - 60_000);
    for cb in 100..104 {
        enqueue_callback(&mut h, cb, early);
    }
    h.enqueue(1, 0, 0);
    let order: Vec<(u64, u32)> = (0..4)
        .flat_map(|o| offers(&h.set(o, OperatorState::Available)))
        .collect();
    assert_eq!(order, vec![(100, 0), (101, 1), (102, 2), (103, 3)]);
}

/// Pending callbacks hold no channel: the cap on waiting callers does not count them, and
/// the snapshot shows them apart.
#[test]
fn pending_callbacks_do_not_count_against_the_waiting_cap() {
    let mut q = queue(0, &[UZ], Strategy::LongestIdle);
    q.normal.max_waiting = Some(1);
    let mut h = Harness::new(vec![q], vec![op(0, &[UZ])]);
    let now = h.now;
    for cb in 100..105 {
        enqueue_callback(&mut h, cb, now);
    }
    assert!(finished(&h.enqueue(1, 0, 0)).is_empty());
    assert_eq!(finished(&h.enqueue(2, 0, 0)), vec![(2, Outcome::Blocked)]);
    let snap = h.acd.queue_snapshot(QueueId(0), h.now);
    assert_eq!((snap.waiting, snap.callbacks_waiting), (1, 5));
}
