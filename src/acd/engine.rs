//! The routing state machine: [`Acd`].
//!
//! # Data layout (why it is fast)
//! * Waiting calls live in *buckets*, one per (queue, needed skills, priority). A bucket is a
//!   `BTreeSet` ordered head-first: re-queued calls, then everyone else, each by enqueue time
//!   then arrival sequence. Every operator keeps the list of buckets whose skills they have, so
//!   "the best call for this operator" is one `first()` per bucket they can serve - a number
//!   bounded by queues x topics x priorities, independent of how many calls wait.
//! * Available operators are a bitset; "the best operator for this call" is one pass over the
//!   available operators (O(operators)).
//! * Deadlines are a `BTreeSet<(Millis, Timer)>` with eager removal, so
//!   [`Acd::poll_timeout`] is exact and the set never holds stale entries.
//!
//! Invariant kept after every input and timeout: no available operator is eligible for a
//! waiting call. So a newly waiting call only needs the available operators, and a newly
//! available operator only needs the waiting calls.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, VecDeque};

use super::types::{
    Action, CallId, ChangeReason, Input, Millis, OperatorId, OperatorSpec, OperatorState, Outcome,
    QueueId, QueueParams, QueueSnapshot, QueueSpec, RejectReason, SkillSet, Strategy, TenantId,
};

/// The ACD routing core. Pure: no clock, no I/O; feed it inputs and timeouts, drain actions.
///
/// Driving it (the str0m/quinn run loop):
/// 1. [`Acd::handle_input`] for each event, or [`Acd::handle_timeout`] when the deadline from
///    [`Acd::poll_timeout`] has come;
/// 2. then [`Acd::poll_action`] until it returns `None`.
///
/// # Documented choices
/// * Operators start [`OperatorState::LoggedOut`].
/// * Queue order is: higher priority first; within a priority, re-queued calls first (among
///   themselves by original enqueue time), then the rest by enqueue time then arrival. The same
///   order ranks calls of different queues for an operator who becomes available.
/// * After a missed offer (ring timeout or decline) the call is offered to the other available
///   eligible operators first; the operator who missed it is then served like anyone who became
///   available, so they get the same call again only if nobody else took it.
/// * A ring-all call whose offer is ringing does not take in operators who become available
///   later; it is offered to them only if it goes back to waiting.
/// * Max wait reached while an offer rings: the ring finishes first. If it is answered the call
///   is answered; otherwise (ring timeout, decline, operator logged out) the call finishes
///   [`Outcome::TimedOut`] instead of being re-queued.
/// * The queue-length cap counts only calls that have to wait: an arriving call that can be
///   offered at once is never blocked, and re-queued calls are never blocked.
/// * LoggedOut/Break asked for while ringing withdraws the offer (not a miss) and re-queues the
///   call; while on a call it is remembered and applied when the call ends (no wrap-up);
///   Available while on a call cancels such a remembered request. Any accepted outside state
///   resets the missed-offer count.
/// * An operator whose offer is withdrawn through no fault of theirs (caller left, another
///   ring-all operator answered) keeps their idle-since time; a missed offer restarts it.
/// * Surge switching re-times max-wait and overflow deadlines of the tenant's calls at once
///   (from their original enqueue time), then lets available operators take any call that
///   became eligible.
/// * Timers due at the same millisecond fire in this order: max wait, ring timeout, wrap-up
///   end, overflow step (each by arrival order).
#[derive(Debug)]
pub struct Acd {
    queues: Vec<QueueState>,
    operators: Vec<OperatorEntry>,
    /// Bit `i` set = operator `i` is Available.
    available: Vec<u64>,
    calls: HashMap<CallId, CallEntry>,
    buckets: Vec<Bucket>,
    bucket_index: HashMap<(QueueId, SkillSet, u8, bool), usize>,
    timers: BTreeSet<(Millis, Timer)>,
    actions: VecDeque<Action>,
    next_seq: u64,
    /// Reused buffer for operator choices, so routing does not allocate.
    scratch: Vec<OperatorId>,
}

#[derive(Debug)]
struct QueueState {
    spec: QueueSpec,
    surge: bool,
    /// The operator this queue last offered a call to (for round robin).
    last_offered: Option<OperatorId>,
    /// Live callers waiting in its buckets (the `max_waiting` cap counts these).
    waiting: usize,
    /// Callbacks waiting in its buckets: they hold no channel, so no cap counts them.
    callbacks_waiting: usize,
    ringing: usize,
    buckets: Vec<usize>,
}

impl QueueState {
    fn params(&self) -> &QueueParams {
        if self.surge {
            &self.spec.surge
        } else {
            &self.spec.normal
        }
    }
}

#[derive(Debug)]
struct OperatorEntry {
    spec: OperatorSpec,
    state: OperatorState,
    idle_since: Millis,
    answered: u64,
    missed_in_row: u32,
    /// The call being offered to them or that they are on.
    call: Option<CallId>,
    wrap_up_due: Option<Millis>,
    /// LoggedOut or Break asked for during a call.
    after_call: Option<OperatorState>,
    /// Buckets whose needed skills they have.
    buckets: Vec<usize>,
}

#[derive(Debug)]
struct Bucket {
    queue: QueueId,
    priority: u8,
    /// Holds callbacks (else live callers).
    callback: bool,
    /// Whether some reserve operator has the skills (else no overflow timer is needed).
    has_reserve: bool,
    calls: BTreeSet<WaitKey>,
}

/// Position of a waiting call inside its bucket, head first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct WaitKey {
    /// 0 = re-queued (head of the class), 1 = never re-queued.
    class: u8,
    enqueued_at: Millis,
    seq: u64,
    call: CallId,
}

const CLASS_REQUEUED: u8 = 0;
const CLASS_NORMAL: u8 = 1;

#[derive(Debug)]
struct CallEntry {
    id: CallId,
    queue: QueueId,
    priority: u8,
    need: SkillSet,
    bucket: usize,
    enqueued_at: Millis,
    seq: u64,
    requeued: bool,
    /// A callback: no maximum wait (the caller is not on the line).
    callback: bool,
    /// Max wait passed while ringing: finish TimedOut instead of re-queueing.
    expired: bool,
    max_wait_due: Option<Millis>,
    reserve_due: Option<Millis>,
    phase: Phase,
}

impl CallEntry {
    fn wait_key(&self) -> WaitKey {
        WaitKey {
            class: if self.requeued {
                CLASS_REQUEUED
            } else {
                CLASS_NORMAL
            },
            enqueued_at: self.enqueued_at,
            seq: self.seq,
            call: self.id,
        }
    }
}

#[derive(Debug)]
enum Phase {
    /// In its bucket (or about to be put there).
    Waiting,
    /// Offered; `operators` are still ringing (ring-all may ring several).
    Ringing {
        operators: Vec<OperatorId>,
        due: Millis,
    },
    /// Answered; kept until CallEnded to know whom to put into wrap-up, and for how long.
    Connected {
        operator: OperatorId,
        wrap_up_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    MaxWait { seq: u64, call: CallId },
    RingTimeout { seq: u64, call: CallId },
    WrapUpEnd { operator: OperatorId },
    ReserveStep { seq: u64, call: CallId },
}

/// What happens to an operator whose ringing stops.
#[derive(Clone, Copy, Debug)]
enum RingEnd {
    /// A missed offer (ring timeout or decline): Available, or Break after too many.
    Missed(ChangeReason),
    /// Not their fault: straight to this state.
    Cancelled(OperatorState, ChangeReason),
}

fn queue_index(queue: QueueId) -> usize {
    usize::from(queue.0)
}

fn operator_index(operator: OperatorId) -> usize {
    // u32 always fits in usize on the targets we build for (32 and 64 bit).
    operator.0 as usize
}

/// Whether a call enqueued at `enqueued_at` may go to reserve staff at `now`.
fn reserve_allowed(params: &QueueParams, enqueued_at: Millis, now: Millis) -> bool {
    match params.reserve_after_ms {
        None => false,
        Some(after) => now.saturating_since(enqueued_at) >= after,
    }
}

impl Acd {
    /// Builds the ACD from configuration. Every operator starts logged out and every tenant
    /// out of surge mode.
    ///
    /// # Panics
    /// If `queues[i].id != QueueId(i)` or `operators[i].id != OperatorId(i)` for some `i`: ids
    /// are indices assigned in configuration order, so this is a programmer error.
    pub fn new(queues: Vec<QueueSpec>, operators: Vec<OperatorSpec>) -> Acd {
        for (i, queue) in queues.iter().enumerate() {
            assert_eq!(
                queue_index(queue.id),
                i,
                "queue ids must be 0..n in configuration order"
            );
        }
        for (i, operator) in operators.iter().enumerate() {
            assert_eq!(
                operator_index(operator.id),
                i,
                "operator ids must be 0..n in configuration order"
            );
        }
        let words = operators.len().div_ceil(64);
        Acd {
            queues: queues
                .into_iter()
                .map(|spec| QueueState {
                    spec,
                    surge: false,
                    last_offered: None,
                    waiting: 0,
                    callbacks_waiting: 0,
                    ringing: 0,
                    buckets: Vec::new(),
                })
                .collect(),
            operators: operators
                .into_iter()
                .map(|spec| OperatorEntry {
                    spec,
                    state: OperatorState::LoggedOut,
                    idle_since: Millis::ZERO,
                    answered: 0,
                    missed_in_row: 0,
                    call: None,
                    wrap_up_due: None,
                    after_call: None,
                    buckets: Vec::new(),
                })
                .collect(),
            available: vec![0; words],
            calls: HashMap::new(),
            buckets: Vec::new(),
            bucket_index: HashMap::new(),
            timers: BTreeSet::new(),
            actions: VecDeque::new(),
            next_seq: 0,
            scratch: Vec::new(),
        }
    }

    /// Applies one input at time `now`. Drain [`Acd::poll_action`] afterwards.
    pub fn handle_input(&mut self, now: Millis, input: Input) {
        match input {
            Input::Enqueue {
                call,
                queue,
                priority,
                skills,
            } => self.enqueue(now, call, queue, priority, skills, None),
            Input::EnqueueCallback {
                call,
                queue,
                priority,
                skills,
                arrived,
            } => self.enqueue(now, call, queue, priority, skills, Some(arrived.min(now))),
            Input::CallerLeft { call } => self.caller_left(now, call),
            Input::Answered { call, operator } => self.answered(now, call, operator),
            Input::Declined { call, operator } => self.declined(now, call, operator),
            Input::CallEnded { call } => self.call_ended(now, call),
            Input::SetOperatorState { operator, state } => {
                self.set_operator_state(now, operator, state)
            }
            Input::SetSurge { tenant, on } => self.set_surge(now, tenant, on),
            Input::EndWrapUp { operator } => self.end_wrap_up(now, operator),
        }
    }

    /// Fires every deadline due at or before `now`: ring timeouts, max-wait exits, wrap-up
    /// ends and overflow steps. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Millis) {
        while let Some(&(due, timer)) = self.timers.first() {
            if due > now {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::MaxWait { call, .. } => self.max_wait_reached(call),
                Timer::RingTimeout { call, .. } => self.ring_timed_out(now, call),
                Timer::WrapUpEnd { operator } => self.wrap_up_done(now, operator),
                Timer::ReserveStep { call, .. } => self.reserve_step(now, call),
            }
        }
    }

    /// The next action to carry out, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest pending deadline; call [`Acd::handle_timeout`] then. `None` = no deadline.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.first().map(|&(due, _)| due)
    }

    /// The state of an operator; `LoggedOut` for an unknown id.
    pub fn operator_state(&self, op: OperatorId) -> OperatorState {
        self.operators
            .get(operator_index(op))
            .map_or(OperatorState::LoggedOut, |o| o.state)
    }

    /// Expected wait in milliseconds of a caller who joins `queue` now, each call taking
    /// `handle_ms`: the one estimate ([`QueueSnapshot::expected_wait_ms`]) under the queue's
    /// active maximum wait (its surge one in surge mode). 0 for an unknown queue.
    pub fn expected_wait_ms(&self, queue: QueueId, now: Millis, handle_ms: u64) -> u64 {
        let Some(q) = self.queues.get(queue_index(queue)) else {
            return 0;
        };
        self.queue_snapshot(queue, now)
            .expected_wait_ms(handle_ms, q.params().max_wait_ms)
    }

    /// The queue's active parameters (its surge ones in surge mode); `None` for an unknown
    /// queue. The door policy reads the maximum wait and the wrap-up from them.
    pub fn active_params(&self, queue: QueueId) -> Option<&QueueParams> {
        self.queues.get(queue_index(queue)).map(|q| q.params())
    }

    /// Operators who could take a call of any of `queues` and are on duty (not logged out,
    /// not on a break), each counted once: the staff a callback promise is checked against
    /// (`callback::door::Capacity::serving`). Reserve staff count where a queue lets them
    /// serve.
    pub fn on_duty_for(&self, queues: &[QueueId]) -> usize {
        let queues: Vec<&QueueState> = queues
            .iter()
            .filter_map(|q| self.queues.get(queue_index(*q)))
            .collect();
        self.operators
            .iter()
            .filter(|op| !matches!(op.state, OperatorState::LoggedOut | OperatorState::Break))
            .filter(|op| {
                queues.iter().any(|q| {
                    op.spec.skills.contains(q.spec.skills)
                        && (!op.spec.reserve || q.params().reserve_after_ms.is_some())
                })
            })
            .count()
    }

    /// Regular (not reserve) operators who could take a call of any of `queues`, whatever
    /// their state: the staff of a next-morning callback window.
    pub fn staff_for(&self, queues: &[QueueId]) -> usize {
        let queues: Vec<&QueueState> = queues
            .iter()
            .filter_map(|q| self.queues.get(queue_index(*q)))
            .collect();
        self.operators
            .iter()
            .filter(|op| !op.spec.reserve)
            .filter(|op| {
                queues
                    .iter()
                    .any(|q| op.spec.skills.contains(q.spec.skills))
            })
            .count()
    }

    /// Whether the queue's tenant is in surge mode; `false` for an unknown queue.
    pub fn surge(&self, queue: QueueId) -> bool {
        self.queues.get(queue_index(queue)).is_some_and(|q| q.surge)
    }

    /// Number of calls in the ACD (waiting, ringing, or answered and not yet ended).
    pub fn calls_in_progress(&self) -> usize {
        self.calls.len()
    }

    /// The queue and 1-based position of a waiting call (`None` if it is not waiting: unknown,
    /// ringing or answered). Costs O(position): meant for announcements, not routing.
    pub fn waiting_position(&self, call: CallId) -> Option<(QueueId, usize)> {
        let entry = self.calls.get(&call)?;
        if !matches!(entry.phase, Phase::Waiting) {
            return None;
        }
        let key = entry.wait_key();
        let queue = &self.queues[queue_index(entry.queue)];
        let mut ahead = 0;
        for &b in &queue.buckets {
            let bucket = &self.buckets[b];
            if bucket.priority > entry.priority {
                ahead += bucket.calls.len();
            } else if bucket.priority == entry.priority {
                ahead += bucket.calls.range(..key).count();
            }
        }
        Some((entry.queue, ahead + 1))
    }

    /// A view of one queue at `now`; all zero for an unknown queue. Costs O(operators +
    /// buckets of the queue).
    pub fn queue_snapshot(&self, queue: QueueId, now: Millis) -> QueueSnapshot {
        let mut snap = QueueSnapshot::empty(queue);
        let Some(q) = self.queues.get(queue_index(queue)) else {
            return snap;
        };
        snap.surge = q.surge;
        snap.waiting = q.waiting;
        snap.callbacks_waiting = q.callbacks_waiting;
        snap.ringing = q.ringing;
        let oldest = q
            .buckets
            .iter()
            .filter(|&&b| !self.buckets[b].callback)
            .flat_map(|&b| {
                let calls = &self.buckets[b].calls;
                let requeued = calls.first().filter(|k| k.class == CLASS_REQUEUED);
                let normal = calls.range(first_of_class(CLASS_NORMAL)..).next();
                requeued.into_iter().chain(normal).map(|k| k.enqueued_at)
            })
            .min();
        snap.longest_wait_ms = oldest.map_or(0, |t| now.saturating_since(t));
        let reserve_serves = q.params().reserve_after_ms.is_some();
        for op in &self.operators {
            if !op.spec.skills.contains(q.spec.skills) || (op.spec.reserve && !reserve_serves) {
                continue;
            }
            let count = match op.state {
                OperatorState::LoggedOut => &mut snap.operators_logged_out,
                OperatorState::Available => &mut snap.operators_available,
                OperatorState::Ringing => &mut snap.operators_ringing,
                OperatorState::OnCall => &mut snap.operators_on_call,
                OperatorState::WrapUp => &mut snap.operators_wrap_up,
                OperatorState::Break => &mut snap.operators_on_break,
            };
            *count += 1;
        }
        snap
    }

    // ----- inputs -------------------------------------------------------------------------

    fn enqueue(
        &mut self,
        now: Millis,
        call: CallId,
        queue: QueueId,
        priority: u8,
        skills: SkillSet,
        callback_arrived: Option<Millis>,
    ) {
        let Some(q) = self.queues.get(queue_index(queue)) else {
            return self.reject(RejectReason::UnknownQueue(queue));
        };
        if self.calls.contains_key(&call) {
            return self.reject(RejectReason::DuplicateCall(call));
        }
        let need = q.spec.skills.union(skills);
        let max_waiting = q.params().max_waiting;
        let bucket = self.bucket_for(queue, need, priority, callback_arrived.is_some());
        let seq = self.next_seq;
        self.next_seq += 1;
        self.calls.insert(
            call,
            CallEntry {
                id: call,
                queue,
                priority,
                need,
                bucket,
                enqueued_at: callback_arrived.unwrap_or(now),
                seq,
                requeued: false,
                callback: callback_arrived.is_some(),
                expired: false,
                max_wait_due: None,
                reserve_due: None,
                phase: Phase::Waiting,
            },
        );
        let mut chosen = std::mem::take(&mut self.scratch);
        self.choose_operators(now, call, &[], &mut chosen);
        if !chosen.is_empty() {
            self.offer(now, call, &chosen);
        } else if callback_arrived.is_none()
            && max_waiting
                .is_some_and(|cap| self.queues[queue_index(queue)].waiting >= cap as usize)
        {
            self.calls.remove(&call);
            self.push(Action::Finished {
                call,
                outcome: Outcome::Blocked,
            });
        } else {
            self.put_in_bucket(call);
        }
        self.scratch = chosen;
        if self.calls.contains_key(&call) {
            self.arm_call_timers(now, call);
        }
    }

    fn caller_left(&mut self, now: Millis, call: CallId) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return self.reject(RejectReason::UnknownCall(call));
        };
        match &mut entry.phase {
            Phase::Connected { .. } => self.reject(RejectReason::AlreadyAnswered(call)),
            Phase::Waiting => {
                self.take_from_bucket(call);
                self.finish(call, Outcome::Abandoned);
            }
            Phase::Ringing { operators, due } => {
                let operators = std::mem::take(operators);
                let due = *due;
                self.stop_ringing_timer(call, due);
                for &op in &operators {
                    self.withdraw(call, op);
                    self.transition(
                        now,
                        op,
                        OperatorState::Available,
                        ChangeReason::OfferWithdrawn,
                    );
                }
                self.finish(call, Outcome::Abandoned);
                for &op in &operators {
                    self.serve_operator(now, op);
                }
            }
        }
    }

    fn answered(&mut self, now: Millis, call: CallId, operator: OperatorId) {
        if let Err(reason) = self.check_offer(call, operator) {
            return self.reject(reason);
        }
        let entry = self.calls.get_mut(&call).expect("checked above");
        let wrap_up_ms = self.queues[queue_index(entry.queue)].params().wrap_up_ms;
        let Phase::Ringing { operators, due } = std::mem::replace(
            &mut entry.phase,
            Phase::Connected {
                operator,
                wrap_up_ms,
            },
        ) else {
            unreachable!("check_offer found the call ringing")
        };
        self.stop_ringing_timer(call, due);
        self.disarm_call_timers(call);
        let op = &mut self.operators[operator_index(operator)];
        op.answered += 1;
        op.missed_in_row = 0;
        self.transition(now, operator, OperatorState::OnCall, ChangeReason::Answer);
        self.push(Action::Finished {
            call,
            outcome: Outcome::Answered,
        });
        for &other in operators.iter().filter(|&&o| o != operator) {
            self.withdraw(call, other);
            self.transition(
                now,
                other,
                OperatorState::Available,
                ChangeReason::OfferWithdrawn,
            );
        }
        for &other in operators.iter().filter(|&&o| o != operator) {
            self.serve_operator(now, other);
        }
    }

    fn declined(&mut self, now: Millis, call: CallId, operator: OperatorId) {
        if let Err(reason) = self.check_offer(call, operator) {
            return self.reject(reason);
        }
        // The phone already refused: no Withdraw.
        self.stop_ringing(
            now,
            call,
            operator,
            false,
            RingEnd::Missed(ChangeReason::Declined),
        );
        self.after_ringing_stopped(now, call, &[operator]);
        self.serve_operator(now, operator);
    }

    fn call_ended(&mut self, now: Millis, call: CallId) {
        let Some(entry) = self.calls.get(&call) else {
            return self.reject(RejectReason::UnknownCall(call));
        };
        let Phase::Connected {
            operator,
            wrap_up_ms,
        } = entry.phase
        else {
            return self.reject(RejectReason::NotAnswered(call));
        };
        self.calls.remove(&call);
        let op = &mut self.operators[operator_index(operator)];
        op.call = None;
        if let Some(state) = op.after_call.take() {
            self.transition(now, operator, state, ChangeReason::AfterCall);
        } else if wrap_up_ms == 0 {
            self.transition(
                now,
                operator,
                OperatorState::Available,
                ChangeReason::CallEnded,
            );
            self.serve_operator(now, operator);
        } else {
            self.transition(
                now,
                operator,
                OperatorState::WrapUp,
                ChangeReason::CallEnded,
            );
            let due = now.plus(wrap_up_ms);
            self.operators[operator_index(operator)].wrap_up_due = Some(due);
            self.timers.insert((due, Timer::WrapUpEnd { operator }));
        }
    }

    fn set_operator_state(&mut self, now: Millis, operator: OperatorId, state: OperatorState) {
        use OperatorState as S;
        if operator_index(operator) >= self.operators.len() {
            return self.reject(RejectReason::UnknownOperator(operator));
        }
        if !matches!(state, S::LoggedOut | S::Available | S::Break) {
            return self.reject(RejectReason::NotExternalState(state));
        }
        let op = &mut self.operators[operator_index(operator)];
        let from = op.state;
        match from {
            _ if from == state => {}
            S::OnCall => {
                op.after_call = (state != S::Available).then_some(state);
            }
            S::Ringing if state == S::Available => {}
            S::Ringing => {
                op.missed_in_row = 0;
                let call = op.call.expect("a ringing operator has a call");
                self.stop_ringing(
                    now,
                    call,
                    operator,
                    true,
                    RingEnd::Cancelled(state, ChangeReason::External),
                );
                self.after_ringing_stopped(now, call, &[operator]);
            }
            S::LoggedOut | S::Available | S::WrapUp | S::Break => {
                op.missed_in_row = 0;
                self.transition(now, operator, state, ChangeReason::External);
                self.serve_operator(now, operator);
            }
        }
    }

    fn set_surge(&mut self, now: Millis, tenant: TenantId, on: bool) {
        let mut known = false;
        let mut changed = false;
        for queue in self.queues.iter_mut().filter(|q| q.spec.tenant == tenant) {
            known = true;
            changed |= queue.surge != on;
            queue.surge = on;
        }
        if !known {
            return self.reject(RejectReason::UnknownTenant(tenant));
        }
        if !changed {
            return;
        }
        // Rare event: re-time this tenant's calls and rebalance, O(calls + operators).
        let queues = &self.queues;
        let mut affected: Vec<(u64, CallId)> = self
            .calls
            .values()
            .filter(|c| {
                !matches!(c.phase, Phase::Connected { .. })
                    && queues[queue_index(c.queue)].spec.tenant == tenant
            })
            .map(|c| (c.seq, c.id))
            .collect();
        affected.sort_unstable();
        for &(_, call) in &affected {
            self.disarm_call_timers(call);
            self.arm_call_timers(now, call);
        }
        let mut free: Vec<(Millis, OperatorId)> = self
            .operators
            .iter()
            .filter(|o| o.state == OperatorState::Available)
            .map(|o| (o.idle_since, o.spec.id))
            .collect();
        free.sort_unstable();
        for (_, op) in free {
            self.serve_operator(now, op);
        }
    }

    // ----- timeouts -----------------------------------------------------------------------

    fn max_wait_reached(&mut self, call: CallId) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        entry.max_wait_due = None;
        match entry.phase {
            Phase::Waiting => {
                self.take_from_bucket(call);
                self.finish(call, Outcome::TimedOut);
            }
            Phase::Ringing { .. } => entry.expired = true,
            Phase::Connected { .. } => {}
        }
    }

    fn ring_timed_out(&mut self, now: Millis, call: CallId) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        let Phase::Ringing { operators, .. } = &mut entry.phase else {
            return;
        };
        let operators = operators.clone();
        for &op in &operators {
            self.stop_ringing(
                now,
                call,
                op,
                true,
                RingEnd::Missed(ChangeReason::RingTimeout),
            );
        }
        self.after_ringing_stopped(now, call, &operators);
        for &op in &operators {
            self.serve_operator(now, op);
        }
    }

    fn wrap_up_done(&mut self, now: Millis, operator: OperatorId) {
        let op = &mut self.operators[operator_index(operator)];
        op.wrap_up_due = None;
        if op.state == OperatorState::WrapUp {
            self.transition(
                now,
                operator,
                OperatorState::Available,
                ChangeReason::WrapUpDone,
            );
            self.serve_operator(now, operator);
        }
    }

    /// Ends a wrap-up before its time; `transition` drops its deadline, so the old timer
    /// cannot cut the next wrap-up short.
    fn end_wrap_up(&mut self, now: Millis, operator: OperatorId) {
        let Some(op) = self.operators.get(operator_index(operator)) else {
            return self.reject(RejectReason::UnknownOperator(operator));
        };
        if op.state == OperatorState::WrapUp {
            self.transition(
                now,
                operator,
                OperatorState::Available,
                ChangeReason::WrapUpDone,
            );
            self.serve_operator(now, operator);
        }
    }

    fn reserve_step(&mut self, now: Millis, call: CallId) {
        let Some(entry) = self.calls.get_mut(&call) else {
            return;
        };
        entry.reserve_due = None;
        if !matches!(entry.phase, Phase::Waiting) {
            return;
        }
        let mut chosen = std::mem::take(&mut self.scratch);
        self.choose_operators(now, call, &[], &mut chosen);
        if !chosen.is_empty() {
            self.take_from_bucket(call);
            self.offer(now, call, &chosen);
        }
        self.scratch = chosen;
    }

    // ----- routing ------------------------------------------------------------------------

    /// Whether one more operator on a callback of `queue` would break its live reserve
    /// ([`QueueParams::live_reserve_percent`]): of the operators serving it, those ringing
    /// for or talking to a callback (of any queue: an operator of two languages on the other
    /// queue's callback is not serving this queue's live callers either) already fill the
    /// rest. O(operators).
    fn live_reserve_full(&self, queue: QueueId) -> bool {
        let q = &self.queues[queue_index(queue)];
        let reserve = u64::from(q.params().live_reserve_percent.min(100));
        if reserve == 0 {
            return false;
        }
        let need = q.spec.skills;
        let (mut serving, mut on_callbacks) = (0u64, 0u64);
        for op in &self.operators {
            if !op.spec.skills.contains(need)
                || matches!(op.state, OperatorState::Break | OperatorState::LoggedOut)
            {
                continue;
            }
            serving += 1;
            if op
                .call
                .and_then(|c| self.calls.get(&c))
                .is_some_and(|e| e.callback)
            {
                on_callbacks += 1;
            }
        }
        // Rounded in the callbacks' favour, so one operator of a small queue may still take
        // a callback: at least one callback always moves unless the reserve is 100 %.
        on_callbacks * 100 >= serving * (100 - reserve)
    }

    /// Fills `chosen` with the operators `call` should be offered to now, by its queue's
    /// strategy: empty if nobody eligible is available. O(operators).
    fn choose_operators(
        &self,
        now: Millis,
        call: CallId,
        exclude: &[OperatorId],
        chosen: &mut Vec<OperatorId>,
    ) {
        chosen.clear();
        let entry = &self.calls[&call];
        let queue = &self.queues[queue_index(entry.queue)];
        let reserve_ok = reserve_allowed(queue.params(), entry.enqueued_at, now);
        let strategy = queue.spec.strategy;
        let n = self.operators.len() as u64;
        let rr_start = queue.last_offered.map_or(0, |o| u64::from(o.0) + 1);
        let mut best: Option<((u64, u64, u32), OperatorId)> = None;
        for (w, &word) in self.available.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let op = &self.operators[i];
                if !op.spec.skills.contains(entry.need)
                    || (op.spec.reserve && !reserve_ok)
                    || exclude.contains(&op.spec.id)
                {
                    continue;
                }
                let id = op.spec.id;
                let key = match strategy {
                    Strategy::RingAll => {
                        chosen.push(id);
                        continue;
                    }
                    Strategy::LongestIdle => (op.idle_since.0, 0, id.0),
                    Strategy::FewestCalls => (op.answered, op.idle_since.0, id.0),
                    Strategy::RoundRobin => ((u64::from(id.0) + n - rr_start % n) % n, 0, 0),
                };
                if best.is_none_or(|(k, _)| key < k) {
                    best = Some((key, id));
                }
            }
        }
        if let Some((_, id)) = best {
            chosen.push(id);
        }
    }

    /// An Available operator takes the best waiting call they are eligible for, across all
    /// queues. O(buckets they can serve x log calls).
    fn serve_operator(&mut self, now: Millis, operator: OperatorId) {
        let op = &self.operators[operator_index(operator)];
        if op.state != OperatorState::Available {
            return;
        }
        // The best live caller and the best callback this operator may take.
        let mut best_live: Option<((Reverse<u8>, WaitKey), usize)> = None;
        let mut best_callback: Option<((Reverse<u8>, WaitKey), usize)> = None;
        for &b in &op.buckets {
            let bucket = &self.buckets[b];
            let candidate = if op.spec.reserve {
                let params = self.queues[queue_index(bucket.queue)].params();
                match params.reserve_after_ms {
                    None => None,
                    Some(after) => now.0.checked_sub(after).and_then(|latest| {
                        // Each class is in enqueue-time order, so only its head can qualify.
                        let requeued = bucket.calls.first().filter(|k| k.class == CLASS_REQUEUED);
                        let normal = bucket.calls.range(first_of_class(CLASS_NORMAL)..).next();
                        requeued
                            .into_iter()
                            .chain(normal)
                            .find(|k| k.enqueued_at.0 <= latest)
                    }),
                }
            } else {
                bucket.calls.first()
            };
            if let Some(&key) = candidate {
                let rank = (Reverse(bucket.priority), key);
                let best = if bucket.callback {
                    &mut best_callback
                } else {
                    &mut best_live
                };
                if best.is_none_or(|(r, _)| rank < r) {
                    *best = Some((rank, b));
                }
            }
        }
        let best = match (best_live, best_callback) {
            (Some(live), Some(callback)) if callback.0 < live.0 => {
                let queue = self.buckets[callback.1].queue;
                if self.live_reserve_full(queue) {
                    Some(live)
                } else {
                    Some(callback)
                }
            }
            (Some(live), _) => Some(live),
            (None, callback) => callback,
        };
        let Some(((_, key), _)) = best else {
            return;
        };
        let call = key.call;
        self.take_from_bucket(call);
        let mut chosen = std::mem::take(&mut self.scratch);
        chosen.clear();
        let strategy = self.queues[queue_index(self.calls[&call].queue)]
            .spec
            .strategy;
        if strategy == Strategy::RingAll {
            self.choose_operators(now, call, &[], &mut chosen);
        }
        if !chosen.contains(&operator) {
            chosen.push(operator);
        }
        self.offer(now, call, &chosen);
        self.scratch = chosen;
    }

    /// Rings `operators` (all Available and eligible) for `call` (not in a bucket).
    fn offer(&mut self, now: Millis, call: CallId, operators: &[OperatorId]) {
        let entry = self.calls.get_mut(&call).expect("offered call exists");
        let queue = &mut self.queues[queue_index(entry.queue)];
        let due = now.plus(queue.params().ring_timeout_ms);
        queue.ringing += 1;
        queue.last_offered = operators.last().copied();
        entry.phase = Phase::Ringing {
            operators: operators.to_vec(),
            due,
        };
        self.timers.insert((
            due,
            Timer::RingTimeout {
                seq: entry.seq,
                call,
            },
        ));
        for &operator in operators {
            self.push(Action::Offer { call, operator });
            self.operators[operator_index(operator)].call = Some(call);
            self.transition(now, operator, OperatorState::Ringing, ChangeReason::Offer);
        }
    }

    /// Stops one operator ringing for `call` and moves them on. The call stays Ringing (maybe
    /// with nobody left): follow with [`Acd::after_ringing_stopped`].
    fn stop_ringing(
        &mut self,
        now: Millis,
        call: CallId,
        operator: OperatorId,
        withdraw: bool,
        end: RingEnd,
    ) {
        let entry = self.calls.get_mut(&call).expect("ringing call exists");
        if let Phase::Ringing { operators, .. } = &mut entry.phase {
            operators.retain(|&o| o != operator);
        }
        let max_missed = self.queues[queue_index(entry.queue)]
            .params()
            .max_missed_offers;
        self.operators[operator_index(operator)].call = None;
        if withdraw {
            self.withdraw(call, operator);
        }
        match end {
            RingEnd::Missed(reason) => {
                let op = &mut self.operators[operator_index(operator)];
                op.missed_in_row += 1;
                if max_missed > 0 && op.missed_in_row >= max_missed {
                    op.missed_in_row = 0;
                    self.transition(
                        now,
                        operator,
                        OperatorState::Break,
                        ChangeReason::MissedOffers,
                    );
                } else {
                    self.transition(now, operator, OperatorState::Available, reason);
                }
            }
            RingEnd::Cancelled(state, reason) => self.transition(now, operator, state, reason),
        }
    }

    /// If nobody rings for `call` any more, it goes back to the head of its queue (or finishes
    /// TimedOut if its max wait passed meanwhile) and is offered to available eligible
    /// operators other than `released`. The caller then serves `released`.
    fn after_ringing_stopped(&mut self, now: Millis, call: CallId, released: &[OperatorId]) {
        let entry = self.calls.get_mut(&call).expect("ringing call exists");
        let Phase::Ringing { operators, due } = &entry.phase else {
            return;
        };
        if !operators.is_empty() {
            return;
        }
        let due = *due;
        let expired = entry.expired;
        entry.phase = Phase::Waiting;
        entry.requeued = true;
        self.stop_ringing_timer(call, due);
        if expired {
            return self.finish(call, Outcome::TimedOut);
        }
        if let Some(&operator) = released.last() {
            self.push(Action::Requeued { call, operator });
        }
        let mut chosen = std::mem::take(&mut self.scratch);
        self.choose_operators(now, call, released, &mut chosen);
        if chosen.is_empty() {
            self.put_in_bucket(call);
        } else {
            self.offer(now, call, &chosen);
        }
        self.scratch = chosen;
    }

    // ----- bookkeeping --------------------------------------------------------------------

    /// Changes an operator's state, keeping the available set, idle clock and wrap-up timer
    /// in step, and reports it.
    fn transition(
        &mut self,
        now: Millis,
        operator: OperatorId,
        to: OperatorState,
        reason: ChangeReason,
    ) {
        let i = operator_index(operator);
        let op = &mut self.operators[i];
        let from = op.state;
        op.state = to;
        if from == OperatorState::WrapUp {
            if let Some(due) = op.wrap_up_due.take() {
                self.timers.remove(&(due, Timer::WrapUpEnd { operator }));
            }
        }
        let bit = 1u64 << (i % 64);
        if to == OperatorState::Available {
            if reason != ChangeReason::OfferWithdrawn {
                op.idle_since = now;
            }
            self.available[i / 64] |= bit;
        } else {
            self.available[i / 64] &= !bit;
        }
        self.push(Action::OperatorChanged {
            operator,
            from,
            to,
            reason,
        });
    }

    /// The bucket for (queue, need, priority, callback or live), created on first use and
    /// registered with every operator who has the skills. Callbacks have buckets of their own
    /// so that the live-reserve rule can find the best live caller and the best callback.
    fn bucket_for(
        &mut self,
        queue: QueueId,
        need: SkillSet,
        priority: u8,
        callback: bool,
    ) -> usize {
        if let Some(&b) = self.bucket_index.get(&(queue, need, priority, callback)) {
            return b;
        }
        let b = self.buckets.len();
        let mut has_reserve = false;
        for op in &mut self.operators {
            if op.spec.skills.contains(need) {
                op.buckets.push(b);
                has_reserve |= op.spec.reserve;
            }
        }
        self.buckets.push(Bucket {
            queue,
            priority,
            callback,
            has_reserve,
            calls: BTreeSet::new(),
        });
        self.queues[queue_index(queue)].buckets.push(b);
        self.bucket_index
            .insert((queue, need, priority, callback), b);
        b
    }

    fn put_in_bucket(&mut self, call: CallId) {
        let entry = &self.calls[&call];
        self.buckets[entry.bucket].calls.insert(entry.wait_key());
        let queue = &mut self.queues[queue_index(entry.queue)];
        if entry.callback {
            queue.callbacks_waiting += 1;
        } else {
            queue.waiting += 1;
        }
    }

    fn take_from_bucket(&mut self, call: CallId) {
        let entry = &self.calls[&call];
        if self.buckets[entry.bucket].calls.remove(&entry.wait_key()) {
            let queue = &mut self.queues[queue_index(entry.queue)];
            if entry.callback {
                queue.callbacks_waiting -= 1;
            } else {
                queue.waiting -= 1;
            }
        }
    }

    /// Sets the max-wait and overflow-step deadlines from the active parameters.
    fn arm_call_timers(&mut self, now: Millis, call: CallId) {
        let entry = self.calls.get_mut(&call).expect("call exists");
        let params = self.queues[queue_index(entry.queue)].params();
        if !entry.expired && !entry.callback {
            let due = entry.enqueued_at.plus(params.max_wait_ms);
            entry.max_wait_due = Some(due);
            self.timers.insert((
                due,
                Timer::MaxWait {
                    seq: entry.seq,
                    call,
                },
            ));
        }
        if let Some(after) = params.reserve_after_ms {
            let due = entry.enqueued_at.plus(after);
            // A step already reached was applied by the routing that follows arming.
            if due > now && self.buckets[entry.bucket].has_reserve {
                entry.reserve_due = Some(due);
                self.timers.insert((
                    due,
                    Timer::ReserveStep {
                        seq: entry.seq,
                        call,
                    },
                ));
            }
        }
    }

    fn disarm_call_timers(&mut self, call: CallId) {
        let entry = self.calls.get_mut(&call).expect("call exists");
        let seq = entry.seq;
        if let Some(due) = entry.max_wait_due.take() {
            self.timers.remove(&(due, Timer::MaxWait { seq, call }));
        }
        if let Some(due) = entry.reserve_due.take() {
            self.timers.remove(&(due, Timer::ReserveStep { seq, call }));
        }
    }

    fn stop_ringing_timer(&mut self, call: CallId, due: Millis) {
        let entry = &self.calls[&call];
        self.timers.remove(&(
            due,
            Timer::RingTimeout {
                seq: entry.seq,
                call,
            },
        ));
        self.queues[queue_index(entry.queue)].ringing -= 1;
    }

    /// Removes a call that is neither in a bucket nor ringing, and reports its outcome.
    fn finish(&mut self, call: CallId, outcome: Outcome) {
        self.disarm_call_timers(call);
        self.calls.remove(&call);
        self.push(Action::Finished { call, outcome });
    }

    /// Whether `operator` has an outstanding offer for `call`.
    fn check_offer(&self, call: CallId, operator: OperatorId) -> Result<(), RejectReason> {
        if operator_index(operator) >= self.operators.len() {
            return Err(RejectReason::UnknownOperator(operator));
        }
        let entry = self
            .calls
            .get(&call)
            .ok_or(RejectReason::UnknownCall(call))?;
        match &entry.phase {
            Phase::Ringing { operators, .. } if operators.contains(&operator) => Ok(()),
            _ => Err(RejectReason::NotRinging { call, operator }),
        }
    }

    fn withdraw(&mut self, call: CallId, operator: OperatorId) {
        self.push(Action::Withdraw { call, operator });
    }

    fn reject(&mut self, reason: RejectReason) {
        self.push(Action::Rejected { reason });
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}

/// The smallest key of a class, to seek to the class's head.
fn first_of_class(class: u8) -> WaitKey {
    WaitKey {
        class,
        enqueued_at: Millis::ZERO,
        seq: 0,
        call: CallId(0),
    }
}
