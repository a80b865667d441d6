//! Value types of the ACD core: time, ids, skills, configuration, inputs and actions.
//!
//! Everything here is plain data. The decisions live in [`super::Acd`].

pub use crate::millis::Millis;

/// Identifies one call for as long as it is inside the ACD. Chosen by the driver; it may be
/// reused once the call's [`Action::Finished`] has been emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

/// Identifies an operator: the index of its [`OperatorSpec`] in the configuration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperatorId(pub u32);

/// Identifies a queue: the index of its [`QueueSpec`] in the configuration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(pub u16);

/// Identifies a tenant (a client organisation); surge mode is switched per tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(pub u16);

/// A set of up to 64 skills (languages, topics), one bit each. Bit meanings come from config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SkillSet(pub u64);

impl SkillSet {
    /// No skills at all; every operator has it.
    pub const EMPTY: SkillSet = SkillSet(0);

    /// Whether `self` has every skill of `other` (is a superset of it).
    pub const fn contains(self, other: SkillSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// This set plus skill number `bit`.
    ///
    /// # Panics
    /// If `bit >= 64`: skill numbers come from validated configuration, so this is a
    /// programmer error, not bad input.
    pub const fn with(self, bit: u8) -> SkillSet {
        assert!(bit < 64, "a SkillSet holds skills 0..=63");
        SkillSet(self.0 | (1u64 << bit))
    }

    /// Every skill that is in `self` or in `other`.
    pub const fn union(self, other: SkillSet) -> SkillSet {
        SkillSet(self.0 | other.0)
    }

    /// Whether skill number `bit` is in the set (always false for `bit >= 64`).
    pub const fn has(self, bit: u8) -> bool {
        bit < 64 && self.0 & (1u64 << bit) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// How a queue chooses among several available operators for one of its calls.
///
/// An operator who becomes available always takes the best call waiting for them across all
/// queues (highest priority, then longest waiting); the strategy only decides which operator
/// a call goes to when several are free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// The operator who has been available longest (since they last became available).
    #[default]
    LongestIdle,
    /// The next eligible operator after the one this queue last offered to, in id order
    /// (wrapping). Every offer of the queue's calls moves the cursor, including offers made
    /// because an operator became available and picked one of its calls.
    RoundRobin,
    /// The operator with the fewest answered calls so far; ties go to the longest idle.
    FewestCalls,
    /// Every eligible available operator at once; the first to answer wins.
    RingAll,
}

/// The timing and limit parameters of a queue; each queue has a normal and a surge set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueParams {
    /// A caller still waiting this long after enqueue leaves with [`Outcome::TimedOut`].
    pub max_wait_ms: u64,
    /// An offer not answered in this time is withdrawn and counts as a missed offer.
    pub ring_timeout_ms: u64,
    /// After an answered call ends the operator is in [`OperatorState::WrapUp`] this long.
    pub wrap_up_ms: u64,
    /// This many missed offers in a row put the operator on [`OperatorState::Break`]
    /// (0 = never).
    pub max_missed_offers: u32,
    /// Overflow step: after this wait reserve operators may take the call too.
    /// `None` = never, `Some(0)` = at once.
    pub reserve_after_ms: Option<u64>,
    /// Queue length cap: an enqueued call that would have to wait while this many calls
    /// already wait finishes at once as [`Outcome::Blocked`].
    pub max_waiting: Option<u32>,
    /// Share of the queue's serving operators (percent) kept for live callers while live
    /// callers wait: callbacks ([`Input::EnqueueCallback`]) then hold at most the rest, so
    /// pending callbacks, which keep their callers' original places, cannot take every
    /// operator. 0: arrival order alone decides between callbacks and live callers.
    pub live_reserve_percent: u8,
}

impl Default for QueueParams {
    /// Ten minutes' wait, 20 s ring, 10 s wrap-up, break after 3 misses, no reserve, no cap.
    fn default() -> Self {
        QueueParams {
            max_wait_ms: 600_000,
            ring_timeout_ms: 20_000,
            wrap_up_ms: 10_000,
            max_missed_offers: 3,
            reserve_after_ms: None,
            max_waiting: None,
            live_reserve_percent: 0,
        }
    }
}

/// The configuration of one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSpec {
    /// Must equal the queue's index in the configuration order.
    pub id: QueueId,
    /// The tenant the queue belongs to (surge mode is per tenant).
    pub tenant: TenantId,
    /// Human-readable name (for reports; the core does not use it).
    pub name: String,
    /// Skills every operator serving this queue must have.
    pub skills: SkillSet,
    /// How a call chooses among several available operators.
    pub strategy: Strategy,
    /// Parameters while the tenant is not in surge mode.
    pub normal: QueueParams,
    /// Parameters while the tenant is in surge mode.
    pub surge: QueueParams,
}

/// The configuration of one operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorSpec {
    /// Must equal the operator's index in the configuration order.
    pub id: OperatorId,
    /// The operator's skills.
    pub skills: SkillSet,
    /// Reserve staff take a call only after the queue's overflow step
    /// ([`QueueParams::reserve_after_ms`]).
    pub reserve: bool,
}

/// The routing state of an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperatorState {
    /// Not registered / not working. Every operator starts here.
    LoggedOut,
    /// Free to take a call.
    Available,
    /// Their phone is ringing with an offer.
    Ringing,
    /// Talking to a caller.
    OnCall,
    /// After-call work; becomes available when it ends.
    WrapUp,
    /// Paused (by themselves, a supervisor, or after repeated missed offers).
    Break,
}

/// How a call left the ACD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// An operator answered it.
    Answered,
    /// The caller hung up before an operator answered.
    Abandoned,
    /// It waited [`QueueParams::max_wait_ms`] without being answered.
    TimedOut,
    /// The queue was full ([`QueueParams::max_waiting`]) when it arrived.
    Blocked,
}

/// Why an operator changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeReason {
    /// Set from outside ([`Input::SetOperatorState`]).
    External,
    /// A state asked for from outside during a call, applied when the call ended.
    AfterCall,
    /// They were offered a call.
    Offer,
    /// They answered the offered call.
    Answer,
    /// Their call ended (into wrap-up, or straight to available when wrap-up is 0).
    CallEnded,
    /// Their wrap-up time is over.
    WrapUpDone,
    /// Their offer rang out unanswered (a missed offer).
    RingTimeout,
    /// Their phone refused the offer (a missed offer).
    Declined,
    /// They missed [`QueueParams::max_missed_offers`] offers in a row.
    MissedOffers,
    /// Their offer was withdrawn through no fault of theirs (the caller left or another
    /// ring-all operator answered); they keep their place in the idle order.
    OfferWithdrawn,
}

/// Why an input was refused. Nothing changed when an input is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// No such queue is configured.
    UnknownQueue(QueueId),
    /// No such operator is configured.
    UnknownOperator(OperatorId),
    /// No queue of this tenant is configured.
    UnknownTenant(TenantId),
    /// The call is not (or no longer) in the ACD.
    UnknownCall(CallId),
    /// A call with this id is already in the ACD.
    DuplicateCall(CallId),
    /// The operator has no outstanding offer for this call.
    NotRinging {
        /// The call named by the input.
        call: CallId,
        /// The operator named by the input.
        operator: OperatorId,
    },
    /// The call has not been answered, so it cannot end.
    NotAnswered(CallId),
    /// The call was already answered; the router ends it with [`Input::CallEnded`].
    AlreadyAnswered(CallId),
    /// Only LoggedOut, Available and Break may be set from outside.
    NotExternalState(OperatorState),
}

/// Everything that can happen to the ACD, apart from time passing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A caller joins a queue. `skills` are extra skills this call needs (e.g. its topic) on
    /// top of the queue's.
    Enqueue {
        /// The new call's id (must not be in the ACD already).
        call: CallId,
        /// The queue to join.
        queue: QueueId,
        /// Higher is served first.
        priority: u8,
        /// Skills needed on top of the queue's.
        skills: SkillSet,
    },
    /// A callback (surge mode) joins a queue at its original place: `arrived` is when the
    /// caller who asked for it first joined the queue. It waits like a live call, ordered by
    /// that time (never ahead of a caller who waited longer, never behind one who came later),
    /// but has no maximum wait and is never blocked by the queue-length cap: the caller is
    /// not on the line. When it is offered and answered the driver dials the caller.
    EnqueueCallback {
        /// The callback's id in the core (must not be in the ACD already).
        call: CallId,
        /// The queue whose operators call back.
        queue: QueueId,
        /// Higher is served first.
        priority: u8,
        /// Skills needed on top of the queue's.
        skills: SkillSet,
        /// The original arrival (at most `now`).
        arrived: Millis,
    },
    /// The caller hung up (while waiting or while an operator was being rung).
    CallerLeft {
        /// The call.
        call: CallId,
    },
    /// The operator's phone answered this offer.
    Answered {
        /// The call offered.
        call: CallId,
        /// The operator who answered.
        operator: OperatorId,
    },
    /// The operator's phone refused or failed the offer: a missed offer, without Withdraw.
    Declined {
        /// The call offered.
        call: CallId,
        /// The operator who refused.
        operator: OperatorId,
    },
    /// An answered call ended (either side hung up): the operator goes to wrap-up.
    CallEnded {
        /// The call.
        call: CallId,
    },
    /// Operator presence set from outside. Only LoggedOut, Available and Break are accepted.
    SetOperatorState {
        /// The operator.
        operator: OperatorId,
        /// The requested state.
        state: OperatorState,
    },
    /// The operator finished their after-call work before the wrap-up time (the desk's form
    /// was saved): ends wrap-up now. Nothing happens in any other state, so a late request
    /// cannot undo a break or touch an offer.
    EndWrapUp {
        /// The operator.
        operator: OperatorId,
    },
    /// Switch a tenant's queues between their `normal` and `surge` parameters.
    SetSurge {
        /// The tenant.
        tenant: TenantId,
        /// Surge on (true) or off.
        on: bool,
    },
}

/// What the driver must do (or record) as a result of an input or a timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ring this operator for this call (ring-all emits several offers for one call).
    Offer {
        /// The call.
        call: CallId,
        /// The operator to ring.
        operator: OperatorId,
    },
    /// Stop ringing this operator for this call.
    Withdraw {
        /// The call.
        call: CallId,
        /// The operator to stop ringing.
        operator: OperatorId,
    },
    /// The call left the ACD for good; emitted exactly once per enqueued call.
    Finished {
        /// The call.
        call: CallId,
        /// How it left.
        outcome: Outcome,
    },
    /// The call went back to the head of its priority class after an offer ended unanswered.
    Requeued {
        /// The call.
        call: CallId,
        /// The operator whose offer ended last (for ring-all, the last of the group).
        operator: OperatorId,
    },
    /// An operator changed state.
    OperatorChanged {
        /// The operator.
        operator: OperatorId,
        /// The state before.
        from: OperatorState,
        /// The state after.
        to: OperatorState,
        /// Why.
        reason: ChangeReason,
    },
    /// An input was not valid in the current state; nothing changed.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
}

/// A point-in-time view of one queue, for wallboards and announcements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// The queue.
    pub queue: QueueId,
    /// Whether its tenant is in surge mode.
    pub surge: bool,
    /// Live callers waiting (not being offered right now).
    pub waiting: usize,
    /// Callbacks waiting for an operator (their callers are not on the line).
    pub callbacks_waiting: usize,
    /// Calls whose offer is ringing right now.
    pub ringing: usize,
    /// How long the longest-waiting of the `waiting` live callers has waited (0 if none).
    pub longest_wait_ms: u64,
    /// Operators who could serve this queue (skills, and reserve staff only when the active
    /// parameters have an overflow step), by state:
    pub operators_available: usize,
    /// ... ringing (for any call),
    pub operators_ringing: usize,
    /// ... on a call (any call),
    pub operators_on_call: usize,
    /// ... in wrap-up,
    pub operators_wrap_up: usize,
    /// ... on break,
    pub operators_on_break: usize,
    /// ... logged out.
    pub operators_logged_out: usize,
}

impl QueueSnapshot {
    /// An all-zero snapshot (also what an unknown queue id yields).
    pub const fn empty(queue: QueueId) -> QueueSnapshot {
        QueueSnapshot {
            queue,
            surge: false,
            waiting: 0,
            callbacks_waiting: 0,
            ringing: 0,
            longest_wait_ms: 0,
            operators_available: 0,
            operators_ringing: 0,
            operators_on_call: 0,
            operators_wrap_up: 0,
            operators_on_break: 0,
            operators_logged_out: 0,
        }
    }
}
