//! AcdActor: hosts the pure routing core and drives its timers.
//!
//! It holds no routing logic: inputs from calls, operators and the API go
//! into [`Acd::handle_input`], the core's actions come out of
//! [`Acd::poll_action`] and are delivered to the actors they concern. The
//! core sees every queue and every operator at once, which is what makes "an
//! operator is never offered two calls" a property of one pure function
//! rather than of a protocol between actors.

mod callbacks;
mod claims;
mod door;
mod queries;
mod surge;

pub use callbacks::{HangUpCallbacks, RequestCallback};
pub use door::{AskDoorOffer, DoorClosed, LeftForSms};
pub use queries::{OperatorStateCounts, OperatorStates, Snapshots, WaitingPosition};
pub use surge::{SetSurge, SurgeStates, SurgeView};

use super::call::{AcdDecision, CallActor};
use super::callback::{
    wall_ms, CallbackActor, CallbackHost, CallbackProgress, CallbackWithdraw, DialEnd,
};
use super::operator::{OperatorActor, OperatorView};
use super::queue::{QueueActor, QueueTally};
use super::Shared;
use crate::acd::{
    Acd, Action, CallId, Input, Millis, OperatorId, OperatorSpec, OperatorState, QueueId,
    QueueSnapshot, QueueSpec, SkillSet, TenantId,
};
use crate::callback::{
    CallbackBook, CallbackError, CallbackOutcome, CallbackPolicy, CallbackRecord, CallbackRefusal,
    CallbackRequest, DialResult,
};
use crate::events::EventKind;
use crate::privacy::PhoneNumber;
use crate::store::outbox::StoreRecord;
use crate::surge::{Manual, QueueLoad, SurgeController};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Hosts [`Acd`].
pub struct AcdActor {
    core: Acd,
    shared: Arc<Shared>,
    calls: HashMap<CallId, Addr<CallActor>>,
    call_queue: HashMap<CallId, QueueId>,
    operators: Vec<Addr<OperatorActor>>,
    queues: Vec<Addr<QueueActor>>,
    timer: super::deadline::DeadlineTimer,
    /// Shared presence (several nodes): operators registered on other nodes, mirrored into
    /// the core as available while Redis says they are free there.
    remote: HashMap<OperatorId, crate::sip::ContactBinding>,
    /// Local operators parked (Break) in the core because another node claimed them.
    held_elsewhere: std::collections::HashSet<OperatorId>,
    /// Operators whose claim this node lost, with the heartbeat round it happened in: the
    /// shared view is not trusted for them until a round that started after the loss (an
    /// older view does not show the other node's claim yet, and would free them at once).
    lost_claim_round: HashMap<OperatorId, u64>,
    /// Set while the core is fed from the shared view: those changes are not events.
    mirroring: bool,
    /// Offers waiting for their Redis claim: nothing has reached the phone yet, so a
    /// withdrawal meanwhile is not an event, and a claim won too late is given back.
    /// Each with a token, so that the answer to an older claim for the same pair (withdrawn,
    /// then offered again) is not mistaken for the current one.
    claiming: HashMap<(CallId, OperatorId), u64>,
    claim_tokens: u64,
    /// One surge controller per tenant, in tenant id order.
    surge: Vec<SurgeController>,
    /// Surge callbacks: the book and the dial-outs in progress.
    callbacks: CallbackHost,
    /// Door offers of a callback not yet keyed, declined or left, by call: each holds its
    /// place in the day's (or the morning's) room until it closes.
    open_offers: HashMap<CallId, (TenantId, crate::callback::door::CallbackWhen)>,
}

/// What an offer that won its operator's claim does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// A live call: the call actor INVITEs the operator.
    Live,
    /// A callback: its dial-out rings the operator, then the caller.
    Callback,
}

/// How often the host looks for callbacks the store recovered late (the database was down
/// at start-up).
pub const RECOVERY_CHECK: Duration = Duration::from_secs(1);

/// Longest wait for a callback booking to be fsynced before the caller is answered.
pub const BOOKING_DURABLE_WAIT: Duration = Duration::from_secs(2);

/// How often surge controllers look at the load and the calendar.
pub const SURGE_EVALUATE_EVERY: Duration = Duration::from_secs(1);

impl AcdActor {
    /// A host over a core built from these specs.
    pub fn new(
        shared: Arc<Shared>,
        queues: Vec<QueueSpec>,
        operators: Vec<OperatorSpec>,
    ) -> AcdActor {
        let surge = shared
            .config
            .tenants
            .iter()
            .map(|t| SurgeController::new(t.surge.policy()))
            .collect();
        let callbacks = callbacks::open_callbacks(&shared);
        AcdActor {
            core: Acd::new(queues, operators),
            surge,
            callbacks,
            shared,
            calls: HashMap::new(),
            call_queue: HashMap::new(),
            operators: Vec::new(),
            queues: Vec::new(),
            timer: Default::default(),
            remote: HashMap::new(),
            held_elsewhere: std::collections::HashSet::new(),
            mirroring: false,
            claiming: HashMap::new(),
            claim_tokens: 0,
            open_offers: HashMap::new(),
            lost_claim_round: HashMap::new(),
        }
    }

    /// Offers a call to an operator; with shared presence the operator is claimed in Redis
    /// first. Only a won claim (or, with Redis down, a local operator) reaches the phone and
    /// is a `call_offered` event. A lost claim is not the operator's miss: another node holds
    /// the operator, so it stops being a candidate here (a local one is parked, a remote one
    /// logged out) until the shared view shows it free again, and the call goes back to its
    /// queue for someone else.
    fn offer(&mut self, call: CallId, operator: OperatorId, ctx: &mut Context<Self>) {
        self.claim_then_reach(call, operator, Reach::Live, call_ref(call), ctx);
    }

    fn reach(
        &mut self,
        reach: Reach,
        call: CallId,
        operator: OperatorId,
        ext: String,
        binding: Option<crate::sip::ContactBinding>,
        ctx: &mut Context<Self>,
    ) {
        match reach {
            Reach::Live => self.send_offer(call, operator, ext, binding),
            Reach::Callback => self.start_callback_dial(call, operator, binding, ctx),
        }
    }

    /// Hands an offer to the call actor, which records it and INVITEs the phone (a live
    /// call's offer timeline comes from its call core alone).
    fn send_offer(
        &mut self,
        call: CallId,
        operator: OperatorId,
        ext: String,
        binding: Option<crate::sip::ContactBinding>,
    ) {
        if let Some(addr) = self.calls.get(&call) {
            addr.do_send(AcdDecision::Offer {
                operator,
                ext,
                binding: binding.map(Box::new),
            });
        }
    }

    fn feed(&mut self, input: Input, ctx: &mut Context<Self>) {
        let now = self.shared.now();
        self.core.handle_input(now, input);
        self.drain(ctx);
    }

    fn drain(&mut self, ctx: &mut Context<Self>) {
        while let Some(action) = self.core.poll_action() {
            self.deliver(action, ctx);
        }
        self.rearm(ctx);
    }

    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = self.core.poll_timeout();
        let now = self.shared.now();
        self.timer.rearm(next, now, ctx, |act: &mut Self, ctx| {
            act.timer.fired();
            let now = act.shared.now();
            act.core.handle_timeout(now);
            act.drain(ctx);
        });
    }

    /// The event name of a core call: `c<n>`, or the request id for a callback.
    fn call_name(&self, call: CallId) -> String {
        match self.callbacks.in_core.get(&call) {
            Some(id) => id.clone(),
            None => call_ref(call),
        }
    }

    fn ext(&self, op: OperatorId) -> String {
        self.shared.model.operator_ext(op).to_string()
    }

    fn queue_of(&self, call: CallId) -> String {
        self.call_queue
            .get(&call)
            .map(|q| self.shared.model.queue_name(*q).to_string())
            .unwrap_or_default()
    }

    fn deliver(&mut self, action: Action, ctx: &mut Context<Self>) {
        match action {
            Action::Offer { call, operator } => {
                if self.callbacks.in_core.contains_key(&call) {
                    self.dial_callback(call, operator, ctx);
                } else {
                    self.offer(call, operator, ctx);
                }
            }
            Action::Withdraw { call, operator } => {
                if self.claiming.remove(&(call, operator)).is_some() {
                    // The phone was never rung: nothing to withdraw.
                    return;
                }
                if self.callbacks.in_core.contains_key(&call)
                    && self.callbacks.operators.get(&call) != Some(&operator)
                {
                    // A callback that found no free channel: its operator was never rung.
                    return;
                }
                if let Some(addr) = self.calls.get(&call) {
                    // A live call reports its own offer timeline.
                    addr.do_send(AcdDecision::Withdraw { operator });
                } else if self.callbacks.in_core.contains_key(&call) {
                    self.shared.events.emit(EventKind::OfferWithdrawn {
                        call: self.call_name(call),
                        operator: self.ext(operator),
                    });
                }
                self.withdraw_callback(call, operator);
            }
            Action::Requeued { call, operator } => {
                if let Some(addr) = self.calls.get(&call) {
                    addr.do_send(AcdDecision::Requeued { operator });
                } else if self.callbacks.in_core.contains_key(&call) {
                    self.shared.events.emit(EventKind::CallRequeued {
                        call: self.call_name(call),
                        queue: self.queue_of(call),
                        operator: self.ext(operator),
                    });
                }
            }
            Action::Finished { call, outcome } => {
                if self.callbacks.in_core.contains_key(&call) {
                    // A callback left the waiting line; the book has its outcome. One being
                    // dialled (answered by its operator) is forgotten when the attempt ends.
                    if !self.callbacks.operators.contains_key(&call) {
                        self.callbacks.in_core.remove(&call);
                        self.call_queue.remove(&call);
                    }
                    return;
                }
                if let Some(q) = self.call_queue.remove(&call) {
                    if let Some(queue) = self.queues.get(q.0 as usize) {
                        queue.do_send(QueueTally(outcome));
                    }
                }
                self.open_offers.remove(&call);
                if let Some(addr) = self.calls.remove(&call) {
                    addr.do_send(AcdDecision::Finished(outcome));
                }
            }
            Action::OperatorChanged {
                operator,
                from,
                to,
                reason,
            } => {
                // A mirrored change of a remote operator is only this node's copy of what
                // another node said; one of a local operator is a real change of its state.
                let local = self.shared.presence.binding(operator).is_some();
                if !self.mirroring || local {
                    self.shared.events.emit(EventKind::OperatorState {
                        operator: self.ext(operator),
                        from: state_name(from).into(),
                        to: state_name(to).into(),
                        reason: format!("{reason:?}"),
                    });
                }
                // Mirrored changes of a local operator are published too: the other nodes
                // must see it parked while another node holds it, and free again after.
                self.publish_state(operator, from, to);
                if let Some(op) = self.operators.get(operator.0 as usize) {
                    op.do_send(super::operator::StateMirror(to));
                }
            }
            Action::Rejected { reason } => {
                tracing::debug!(?reason, "ACD input rejected");
                if let crate::acd::RejectReason::NotRinging { call, operator } = reason {
                    // An answer raced a withdrawal: the call actor drops that leg.
                    if let Some(addr) = self.calls.get(&call) {
                        addr.do_send(AcdDecision::AnswerRefused { operator });
                    }
                    self.withdraw_callback(call, operator);
                }
            }
        }
    }
}

/// The external name of a call id.
pub fn call_ref(call: CallId) -> String {
    format!("c{}", call.0)
}

/// The API name of an operator state.
pub fn state_name(s: OperatorState) -> &'static str {
    match s {
        OperatorState::LoggedOut => "logged_out",
        OperatorState::Available => "available",
        OperatorState::Ringing => "ringing",
        OperatorState::OnCall => "on_call",
        OperatorState::WrapUp => "wrap_up",
        OperatorState::Break => "break",
    }
}

impl Actor for AcdActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(100_000);
        if self.shared.presence.shared().is_some() {
            ctx.run_interval(self.shared.config.presence.heartbeat, |act, ctx| {
                act.sync_shared(ctx)
            });
        }
        self.restore_callbacks(ctx);
        // If the database was down at start-up, its pending callbacks come a little later.
        ctx.run_interval(RECOVERY_CHECK, |act, ctx| {
            if act.callbacks.recovering {
                act.restore_callbacks(ctx);
            }
        });
        // At once, so a tenant inside an exam period starts in surge, then every second.
        self.evaluate_surge(ctx);
        ctx.run_interval(SURGE_EVALUATE_EVERY, |act, ctx| act.evaluate_surge(ctx));
    }
}

/// Wires the per-queue and per-operator actors in after start.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Attach {
    /// One per operator, in id order.
    pub operators: Vec<Addr<OperatorActor>>,
    /// One per queue, in id order.
    pub queues: Vec<Addr<QueueActor>>,
}

impl Handler<Attach> for AcdActor {
    type Result = ();
    fn handle(&mut self, msg: Attach, _: &mut Context<Self>) {
        self.operators = msg.operators;
        self.queues = msg.queues;
    }
}

/// A call joins a queue.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueue {
    /// The call.
    pub call: CallId,
    /// Its actor.
    pub addr: Addr<CallActor>,
    /// The queue.
    pub queue: QueueId,
    /// Caller priority.
    pub priority: u8,
    /// Extra skills (topic).
    pub skills: SkillSet,
}

impl Handler<Enqueue> for AcdActor {
    type Result = ();
    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        // The door policy looks at the queue as the caller finds it, before joining.
        if let Some(offer) = self.offer_at_entry(msg.call, msg.queue) {
            msg.addr.do_send(AcdDecision::DoorOffer(offer));
        }
        self.calls.insert(msg.call, msg.addr);
        self.call_queue.insert(msg.call, msg.queue);
        self.feed(
            Input::Enqueue {
                call: msg.call,
                queue: msg.queue,
                priority: msg.priority,
                skills: msg.skills,
            },
            ctx,
        );
    }
}

/// Any other input to the core.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Feed(pub Input);

impl Handler<Feed> for AcdActor {
    type Result = ();
    fn handle(&mut self, msg: Feed, ctx: &mut Context<Self>) {
        self.feed(msg.0, ctx);
    }
}
