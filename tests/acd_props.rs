//! Property tests of the ACD core: random configurations and random input sequences in virtual
//! time, checked against a small independent model after every step.
//!
//! Checked after every input or timeout:
//! 1. an operator is only offered a call while Available and without another outstanding offer,
//!    and only a call they are eligible for (skills, and reserve staff after the step);
//! 2. FIFO within a priority class per queue: among calls never re-queued, a call is never
//!    offered while an earlier call of the same queue and priority still waits and is eligible
//!    for the same operator;
//! 3. every accepted Enqueue gets exactly one Finished, and after draining (everyone available,
//!    every offer answered, every call ended, time moved on) every call is finished;
//! 4. actions are consistent: Withdraw only for an outstanding offer, Answered/Declined accepted
//!    exactly when the offer is outstanding, every Rejected predicted, state changes chain;
//! 5. no operator is idle while a waiting call is eligible for them.

use std::collections::{BTreeMap, BTreeSet};

use navbat::acd::{
    Acd, Action, CallId, Input, Millis, OperatorId, OperatorSpec, OperatorState, Outcome, QueueId,
    QueueParams, QueueSpec, SkillSet, Strategy as Routing, TenantId,
};
use proptest::prelude::*;

const TENANTS: u16 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Ringing,
    Connected,
}

#[derive(Clone, Debug)]
struct ModelCall {
    queue: usize,
    priority: u8,
    need: SkillSet,
    enqueued_at: Millis,
    seq: u64,
    requeued: bool,
    phase: Phase,
}

/// What the test believes the ACD's state is, rebuilt only from inputs and emitted actions.
struct Model {
    queues: Vec<QueueSpec>,
    operators: Vec<OperatorSpec>,
    surge: [bool; TENANTS as usize],
    states: Vec<OperatorState>,
    /// Outstanding offers: (call, operator).
    offers: BTreeSet<(CallId, OperatorId)>,
    calls: BTreeMap<CallId, ModelCall>,
    finished: BTreeMap<CallId, u32>,
    accepted_enqueues: BTreeSet<CallId>,
    next_call: u64,
    next_seq: u64,
}

impl Model {
    fn params(&self, queue: usize) -> &QueueParams {
        let q = &self.queues[queue];
        if self.surge[usize::from(q.tenant.0)] {
            &q.surge
        } else {
            &q.normal
        }
    }

    fn eligible(&self, op: usize, call: &ModelCall, now: Millis) -> bool {
        let spec = &self.operators[op];
        if !spec.skills.contains(call.need) {
            return false;
        }
        if !spec.reserve {
            return true;
        }
        match self.params(call.queue).reserve_after_ms {
            None => false,
            Some(after) => now.saturating_since(call.enqueued_at) >= after,
        }
    }

    fn has_offer(&self, op: OperatorId) -> bool {
        self.offers.iter().any(|&(_, o)| o == op)
    }

    fn offers_for(&self, call: CallId) -> usize {
        self.offers.iter().filter(|&&(c, _)| c == call).count()
    }

    /// Applies one action the ACD emitted, checking it against the model.
    fn apply(&mut self, now: Millis, action: &Action) -> Result<(), TestCaseError> {
        match *action {
            Action::Offer { call, operator } => {
                let op = operator.0 as usize;
                prop_assert_eq!(
                    self.states[op],
                    OperatorState::Available,
                    "offer to busy op"
                );
                prop_assert!(!self.has_offer(operator), "two offers for {:?}", operator);
                let c = self.calls.get(&call).cloned();
                prop_assert!(c.is_some(), "offer of unknown call");
                let c = c.unwrap();
                prop_assert!(c.phase != Phase::Connected);
                prop_assert!(self.eligible(op, &c, now), "offer to ineligible op");
                if !c.requeued && c.phase == Phase::Waiting {
                    for (id, earlier) in &self.calls {
                        let jumped = earlier.queue == c.queue
                            && earlier.priority == c.priority
                            && earlier.seq < c.seq
                            && !earlier.requeued
                            && earlier.phase == Phase::Waiting
                            && self.eligible(op, earlier, now);
                        prop_assert!(!jumped, "{:?} offered before earlier {:?}", call, id);
                    }
                }
                self.offers.insert((call, operator));
                self.calls.get_mut(&call).unwrap().phase = Phase::Ringing;
            }
            Action::Withdraw { call, operator } => {
                prop_assert!(self.offers.remove(&(call, operator)), "withdraw w/o offer");
            }
            Action::Requeued { call, .. } => {
                prop_assert_eq!(self.offers_for(call), 0);
                let c = self.calls.get_mut(&call);
                prop_assert!(c.is_some());
                let c = c.unwrap();
                prop_assert_eq!(c.phase, Phase::Ringing);
                c.phase = Phase::Waiting;
                c.requeued = true;
            }
            Action::Finished { call, outcome } => {
                let count = self.finished.entry(call).or_insert(0);
                *count += 1;
                prop_assert_eq!(*count, 1, "{:?} finished twice", call);
                prop_assert!(self.accepted_enqueues.contains(&call));
                if outcome == Outcome::Answered {
                    prop_assert_eq!(self.calls[&call].phase, Phase::Connected);
                } else {
                    prop_assert_eq!(self.offers_for(call), 0, "finished while ringing");
                    prop_assert!(self.calls.remove(&call).is_some() || outcome == Outcome::Blocked);
                }
            }
            Action::OperatorChanged {
                operator, from, to, ..
            } => {
                let op = operator.0 as usize;
                prop_assert_eq!(self.states[op], from, "state chain broken");
                prop_assert!(from != to);
                if to == OperatorState::Ringing {
                    prop_assert!(self.has_offer(operator));
                } else {
                    prop_assert!(!self.has_offer(operator), "left Ringing with an offer");
                }
                self.states[op] = to;
            }
            Action::Rejected { reason } => {
                prop_assert!(false, "unpredicted rejection {:?}", reason);
            }
        }
        Ok(())
    }

    /// Checks properties that must hold between steps.
    fn check_idle(&self, acd: &Acd, now: Millis) -> Result<(), TestCaseError> {
        for (op, &state) in self.states.iter().enumerate() {
            prop_assert_eq!(acd.operator_state(OperatorId(op as u32)), state);
            if state != OperatorState::Available {
                continue;
            }
            for (id, c) in &self.calls {
                let idle_with_work = c.phase == Phase::Waiting && self.eligible(op, c, now);
                prop_assert!(!idle_with_work, "op {} idle while {:?} waits", op, id);
            }
        }
        Ok(())
    }
}

/// The ACD plus its model, driven in virtual time.
struct Sim {
    acd: Acd,
    model: Model,
    now: Millis,
}

impl Sim {
    fn drain(&mut self, rejected: bool) -> Result<(), TestCaseError> {
        let actions: Vec<Action> = std::iter::from_fn(|| self.acd.poll_action()).collect();
        if rejected {
            prop_assert!(
                matches!(actions[..], [Action::Rejected { .. }]),
                "expected one rejection, got {:?}",
                actions
            );
            return Ok(());
        }
        for action in &actions {
            self.model.apply(self.now, action)?;
        }
        self.model.check_idle(&self.acd, self.now)
    }

    /// Moves virtual time to `to`, firing every deadline at its own instant.
    fn advance_to(&mut self, to: Millis) -> Result<(), TestCaseError> {
        while let Some(due) = self.acd.poll_timeout().filter(|&t| t <= to) {
            // A deadline may lie in the past right after surge shortened a wait: fire it now.
            self.now = due.max(self.now);
            self.acd.handle_timeout(self.now);
            self.drain(false)?;
        }
        self.now = to;
        Ok(())
    }

    fn input(&mut self, input: Input, rejected: bool) -> Result<(), TestCaseError> {
        self.acd.handle_input(self.now, input);
        self.drain(rejected)
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let m = &mut self.model;
        let active: Vec<CallId> = m.calls.keys().copied().collect();
        let pick_call = |sel: usize| active.get(sel % active.len().max(1)).copied();
        match *step {
            Step::Advance(ms) => return self.advance_to(self.now.plus(ms)),
            Step::Enqueue {
                queue,
                priority,
                extra,
            } => {
                let call = CallId(m.next_call);
                m.next_call += 1;
                let known = usize::from(queue) < m.queues.len();
                if known {
                    let q = usize::from(queue);
                    m.accepted_enqueues.insert(call);
                    m.calls.insert(
                        call,
                        ModelCall {
                            queue: q,
                            priority,
                            need: m.queues[q].skills.union(SkillSet(extra)),
                            enqueued_at: self.now,
                            seq: m.next_seq,
                            requeued: false,
                            phase: Phase::Waiting,
                        },
                    );
                    m.next_seq += 1;
                }
                let input = Input::Enqueue {
                    call,
                    queue: QueueId(queue),
                    priority,
                    skills: SkillSet(extra),
                };
                self.input(input, !known)?;
                // A blocked call never waited; the model entry goes with its Finished.
                if self.model.finished.contains_key(&call) {
                    self.model.calls.remove(&call);
                }
            }
            Step::Duplicate(sel) => {
                if let Some(call) = pick_call(sel) {
                    let queue = QueueId(m.calls[&call].queue as u16);
                    let input = Input::Enqueue {
                        call,
                        queue,
                        priority: 0,
                        skills: SkillSet::EMPTY,
                    };
                    self.input(input, true)?;
                }
            }
            Step::CallerLeft(sel) => {
                if let Some(call) = pick_call(sel) {
                    let rejected = m.calls[&call].phase == Phase::Connected;
                    self.input(Input::CallerLeft { call }, rejected)?;
                }
            }
            Step::Answer(sel) | Step::Decline(sel) => {
                let offers: Vec<_> = m.offers.iter().copied().collect();
                if offers.is_empty() {
                    return Ok(());
                }
                let (call, operator) = offers[sel % offers.len()];
                m.offers.remove(&(call, operator));
                if matches!(step, Step::Answer(_)) {
                    m.calls.get_mut(&call).unwrap().phase = Phase::Connected;
                    self.input(Input::Answered { call, operator }, false)?;
                } else {
                    self.input(Input::Declined { call, operator }, false)?;
                }
            }
            Step::Stray { call, op } => {
                // Any pair; accepted only for an outstanding offer.
                let call = pick_call(call).unwrap_or(CallId(u64::MAX));
                let operator = OperatorId((op % (m.operators.len() + 1)) as u32);
                let outstanding = m.offers.remove(&(call, operator));
                if outstanding {
                    m.calls.get_mut(&call).unwrap().phase = Phase::Connected;
                }
                self.input(Input::Answered { call, operator }, !outstanding)?;
            }
            Step::End(sel) => {
                let connected: Vec<CallId> = m
                    .calls
                    .iter()
                    .filter(|(_, c)| c.phase == Phase::Connected)
                    .map(|(&id, _)| id)
                    .collect();
                let call = if connected.is_empty() || sel % 4 == 0 {
                    pick_call(sel).unwrap_or(CallId(u64::MAX))
                } else {
                    connected[sel % connected.len()]
                };
                let accepted = m
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.phase == Phase::Connected);
                if accepted {
                    m.calls.remove(&call);
                }
                self.input(Input::CallEnded { call }, !accepted)?;
            }
            Step::SetState { op, state } => {
                let operator = OperatorId((op % (m.operators.len() + 1)) as u32);
                let state = STATES[state % STATES.len()];
                let rejected = operator.0 as usize >= m.operators.len()
                    || !matches!(
                        state,
                        OperatorState::LoggedOut | OperatorState::Available | OperatorState::Break
                    );
                self.input(Input::SetOperatorState { operator, state }, rejected)?;
            }
            Step::Surge { tenant, on } => {
                let known = m.queues.iter().any(|q| q.tenant.0 == tenant);
                if known {
                    m.surge[usize::from(tenant)] = on;
                }
                self.input(
                    Input::SetSurge {
                        tenant: TenantId(tenant),
                        on,
                    },
                    !known,
                )?;
            }
        }
        Ok(())
    }

    /// Everyone works: answer every offer, end every call, move time on, until no call is left.
    fn drain_all(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..10_000 {
            if self.model.calls.is_empty() {
                break;
            }
            for op in 0..self.model.operators.len() {
                if matches!(
                    self.model.states[op],
                    OperatorState::LoggedOut | OperatorState::Break
                ) {
                    let input = Input::SetOperatorState {
                        operator: OperatorId(op as u32),
                        state: OperatorState::Available,
                    };
                    self.input(input, false)?;
                }
            }
            while let Some(&(call, operator)) = self.model.offers.iter().next() {
                self.model.offers.remove(&(call, operator));
                self.model.calls.get_mut(&call).unwrap().phase = Phase::Connected;
                self.input(Input::Answered { call, operator }, false)?;
            }
            let connected: Vec<CallId> = self
                .model
                .calls
                .iter()
                .filter(|(_, c)| c.phase == Phase::Connected)
                .map(|(&id, _)| id)
                .collect();
            for call in connected {
                self.model.calls.remove(&call);
                self.input(Input::CallEnded { call }, false)?;
            }
            match self.acd.poll_timeout() {
                Some(due) => self.advance_to(due.max(self.now))?,
                None => prop_assert!(self.model.calls.is_empty(), "calls stuck, no deadline"),
            }
        }
        prop_assert!(self.model.calls.is_empty(), "calls left after draining");
        prop_assert_eq!(self.acd.calls_in_progress(), 0);
        for call in &self.model.accepted_enqueues {
            prop_assert_eq!(self.model.finished.get(call), Some(&1), "{:?}", call);
        }
        Ok(())
    }
}

const STATES: [OperatorState; 6] = [
    OperatorState::LoggedOut,
    OperatorState::Available,
    OperatorState::Ringing,
    OperatorState::OnCall,
    OperatorState::WrapUp,
    OperatorState::Break,
];

#[derive(Clone, Debug)]
enum Step {
    Advance(u64),
    Enqueue {
        queue: u16,
        priority: u8,
        extra: u64,
    },
    Duplicate(usize),
    CallerLeft(usize),
    Answer(usize),
    Decline(usize),
    Stray {
        call: usize,
        op: usize,
    },
    End(usize),
    SetState {
        op: usize,
        state: usize,
    },
    Surge {
        tenant: u16,
        on: bool,
    },
}

fn params() -> impl Strategy<Value = QueueParams> {
    (
        5_000u64..120_000,
        1_000u64..20_000,
        prop_oneof![Just(0u64), 1u64..10_000],
        0u32..4,
        prop_oneof![Just(None), Just(Some(0u64)), (1u64..30_000).prop_map(Some)],
        prop_oneof![3 => Just(None), 1 => (0u32..5).prop_map(Some)],
    )
        .prop_map(
            |(max_wait_ms, ring_timeout_ms, wrap_up_ms, max_missed_offers, reserve, cap)| {
                QueueParams {
                    max_wait_ms,
                    ring_timeout_ms,
                    wrap_up_ms,
                    max_missed_offers,
                    reserve_after_ms: reserve,
                    max_waiting: cap,
                    live_reserve_percent: 0,
                }
            },
        )
}

fn routing() -> impl Strategy<Value = Routing> {
    prop_oneof![
        Just(Routing::LongestIdle),
        Just(Routing::RoundRobin),
        Just(Routing::FewestCalls),
        Just(Routing::RingAll),
    ]
}

/// Skills: bits 0-1 are languages (queues need one), bits 2-4 topics (calls may need one).
fn config() -> impl Strategy<Value = (Vec<QueueSpec>, Vec<OperatorSpec>)> {
    let queues = prop::collection::vec((0..TENANTS, 0u64..4, routing(), params(), params()), 1..5)
        .prop_map(|qs| {
            qs.into_iter()
                .enumerate()
                .map(|(i, (tenant, lang, strategy, normal, surge))| QueueSpec {
                    id: QueueId(i as u16),
                    tenant: TenantId(tenant),
                    name: format!("q{i}"),
                    skills: SkillSet(lang),
                    strategy,
                    normal,
                    surge,
                })
                .collect::<Vec<_>>()
        });
    let operators = prop::collection::vec((0u64..32, 0u64..32, prop::bool::weighted(0.15)), 1..=40)
        .prop_map(|os| {
            os.into_iter()
                .enumerate()
                .map(|(i, (a, b, reserve))| OperatorSpec {
                    id: OperatorId(i as u32),
                    // OR of two draws: most operators have most skills.
                    skills: SkillSet(a | b),
                    reserve,
                })
                .collect::<Vec<_>>()
        });
    (queues, operators)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u64..15_000).prop_map(Step::Advance),
        5 => (0u16..5, 0u8..3, prop_oneof![2 => Just(0u64), 1 => (0u64..3).prop_map(|t| 4 << t)])
            .prop_map(|(queue, priority, extra)| Step::Enqueue { queue, priority, extra }),
        1 => any::<usize>().prop_map(Step::Duplicate),
        1 => any::<usize>().prop_map(Step::CallerLeft),
        4 => any::<usize>().prop_map(Step::Answer),
        1 => any::<usize>().prop_map(Step::Decline),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(call, op)| Step::Stray { call, op }),
        3 => any::<usize>().prop_map(Step::End),
        3 => (any::<usize>(), 0usize..8).prop_map(|(op, state)| Step::SetState { op, state }),
        1 => (0..TENANTS + 1, any::<bool>()).prop_map(|(tenant, on)| Step::Surge { tenant, on }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn routing_keeps_its_promises(
        (queues, operators) in config(),
        steps in prop::collection::vec(step(), 1..200),
    ) {
        let n = operators.len();
        let mut sim = Sim {
            acd: Acd::new(queues.clone(), operators.clone()),
            model: Model {
                queues,
                operators,
                surge: [false; TENANTS as usize],
                states: vec![OperatorState::LoggedOut; n],
                offers: BTreeSet::new(),
                calls: BTreeMap::new(),
                finished: BTreeMap::new(),
                accepted_enqueues: BTreeSet::new(),
                next_call: 1,
                next_seq: 0,
            },
            now: Millis::from_secs(100),
        };
        // Most operators log in first, so that there is routing to do.
        for op in 0..n {
            if op % 4 != 3 {
                sim.input(Input::SetOperatorState {
                    operator: OperatorId(op as u32),
                    state: OperatorState::Available,
                }, false)?;
            }
        }
        for step in &steps {
            sim.step(step)?;
        }
        sim.drain_all()?;
    }
}
