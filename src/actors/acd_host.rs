//! AcdActor: hosts the pure routing core and drives its timers.
//!
//! It holds no routing logic: inputs from calls, operators and the API go
//! into [`Acd::handle_input`], the core's actions come out of
//! [`Acd::poll_action`] and are delivered to the actors they concern. The
//! core sees every queue and every operator at once, which is what makes "an
//! operator is never offered two calls" a property of one pure function
//! rather than of a protocol between actors.

use super::call::{AcdDecision, CallActor};
use super::callback::{
    wall_ms, CallbackActor, CallbackHost, CallbackProgress, CallbackWithdraw, DialEnd,
    NO_CHANNEL_RETRY,
};
use super::operator::{OperatorActor, OperatorView};
use super::queue::{QueueActor, QueueTally};
use super::Shared;
use crate::acd::{
    Acd, Action, CallId, Input, Millis, OperatorId, OperatorSpec, OperatorState, QueueId,
    QueueSnapshot, QueueSpec, SkillSet, TenantId,
};
use crate::callback::{
    CallbackBook, CallbackError, CallbackOutcome, CallbackPolicy, CallbackRecord, CallbackRequest,
    DialResult,
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
    timer: Option<(Millis, SpawnHandle)>,
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
        let callbacks = open_callbacks(&shared);
        AcdActor {
            core: Acd::new(queues, operators),
            surge,
            callbacks,
            shared,
            calls: HashMap::new(),
            call_queue: HashMap::new(),
            operators: Vec::new(),
            queues: Vec::new(),
            timer: None,
            remote: HashMap::new(),
            held_elsewhere: std::collections::HashSet::new(),
            mirroring: false,
            claiming: HashMap::new(),
            claim_tokens: 0,
            lost_claim_round: HashMap::new(),
        }
    }

    /// Feeds a state from the shared view (not an event, not published back).
    fn mirror(&mut self, operator: OperatorId, state: OperatorState, ctx: &mut Context<Self>) {
        self.mirroring = true;
        self.feed(Input::SetOperatorState { operator, state }, ctx);
        self.mirroring = false;
    }

    /// One look at the shared presence: remote operators free on their node become
    /// candidates here; local operators another node claimed are parked until released.
    fn sync_shared(&mut self, ctx: &mut Context<Self>) {
        let Some(shared) = self.shared.presence.shared().cloned() else {
            return;
        };
        let view = shared.view();
        let mine = format!("{}/", shared.node());
        for i in 0..self.shared.model.operator_count() {
            let id = OperatorId(i as u32);
            let ext = self.ext(id);
            let state = self.core.operator_state(id);
            let entry = view.get(&ext);
            if let Some(&lost) = self.lost_claim_round.get(&id) {
                if shared.rounds() < lost + 2 {
                    continue;
                }
                self.lost_claim_round.remove(&id);
            }
            if self.shared.presence.is_registered(id) {
                self.remote.remove(&id);
                let claimed_elsewhere = entry
                    .and_then(|o| o.claimed_by.as_deref())
                    .is_some_and(|c| !c.starts_with(&mine));
                if claimed_elsewhere && state == OperatorState::Available {
                    self.held_elsewhere.insert(id);
                    self.mirror(id, OperatorState::Break, ctx);
                } else if !claimed_elsewhere
                    && self.held_elsewhere.remove(&id)
                    && state == OperatorState::Break
                {
                    self.mirror(id, OperatorState::Available, ctx);
                }
                continue;
            }
            let free = entry
                .filter(|o| o.node != shared.node() && o.is_free())
                .and_then(|o| o.contact.as_ref())
                .and_then(crate::sip::ContactBinding::from_stored);
            match free {
                Some(binding) => {
                    self.remote.insert(id, binding);
                    if state == OperatorState::LoggedOut {
                        self.mirror(id, OperatorState::Available, ctx);
                    }
                }
                None => {
                    // Not free (or gone): no longer a candidate here. The check is on the
                    // state, not on whether it was in `remote`: an operator this node took
                    // (claimed, rang, talked to) comes back Available after wrap-up while
                    // its own node still shows it busy, and must not be offered without a
                    // contact until that node says it is free again.
                    self.remote.remove(&id);
                    if state == OperatorState::Available {
                        self.mirror(id, OperatorState::LoggedOut, ctx);
                    }
                }
            }
        }
    }

    /// Tells the other nodes about a local operator's new state; releases this node's claim
    /// when the operator is done with our call.
    fn publish_state(&mut self, operator: OperatorId, from: OperatorState, to: OperatorState) {
        let Some(shared) = self.shared.presence.shared().cloned() else {
            return;
        };
        let ext = self.ext(operator);
        if let Some(binding) = self.shared.presence.binding(operator) {
            shared.publish(
                &ext,
                crate::presence::shared::OperatorEntry {
                    state: state_name(to).into(),
                    contact: Some(binding.stored()),
                    idle_since_ms: crate::store::db::now_ms().max(0) as u64,
                },
            );
        }
        let busy = |s| {
            matches!(
                s,
                OperatorState::Ringing | OperatorState::OnCall | OperatorState::WrapUp
            )
        };
        if busy(from) && !busy(to) {
            actix::spawn(async move { shared.release(&ext).await });
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

    /// Claims `operator` in Redis (with shared presence) for `holder`, then reaches them:
    /// a live call's offer, or a callback's dial-out, which rings the operator first. So a
    /// callback, like a live call, never rings an operator another node holds.
    fn claim_then_reach(
        &mut self,
        call: CallId,
        operator: OperatorId,
        reach: Reach,
        holder: String,
        ctx: &mut Context<Self>,
    ) {
        let local = self.shared.presence.binding(operator);
        let binding = local
            .clone()
            .or_else(|| self.remote.get(&operator).cloned());
        let ext = self.ext(operator);
        let Some(shared) = self.shared.presence.shared().cloned() else {
            self.reach(reach, call, operator, ext, binding, ctx);
            return;
        };
        let ttl = self.shared.config.presence.expiry;
        let is_local = local.is_some();
        let claim_ext = ext.clone();
        let claimer = shared.clone();
        self.claim_tokens += 1;
        let token = self.claim_tokens;
        self.claiming.insert((call, operator), token);
        ctx.spawn(
            async move { claimer.claim(&claim_ext, &holder, ttl).await }
                .into_actor(self)
                .map(move |claim, act, ctx| {
                    use crate::presence::shared::Claim;
                    let won = claim == Claim::Won;
                    if act.claiming.get(&(call, operator)) != Some(&token) {
                        // Withdrawn while the claim was under way (the caller left, ...).
                        if won {
                            actix::spawn(async move { shared.release(&ext).await });
                        }
                        return;
                    }
                    let go = match &claim {
                        Claim::Won => true,
                        Claim::Unavailable => is_local,
                        Claim::Lost(_) => false,
                    };
                    if go {
                        act.claiming.remove(&(call, operator));
                        act.reach(reach, call, operator, ext, binding, ctx);
                        return;
                    }
                    if let Claim::Lost(by) = &claim {
                        tracing::debug!(operator = %ext, held_by = %by, "operator claimed by another node; offer dropped");
                    }
                    act.lost_claim_round.insert(operator, shared.rounds());
                    shared.poke();
                    if is_local {
                        act.held_elsewhere.insert(operator);
                        act.mirror(operator, OperatorState::Break, ctx);
                    } else {
                        act.remote.remove(&operator);
                        act.mirror(operator, OperatorState::LoggedOut, ctx);
                    }
                    act.claiming.remove(&(call, operator));
                }),
        );
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

    /// Hands an offer to the call actor (which INVITEs the phone) and records it.
    fn send_offer(
        &mut self,
        call: CallId,
        operator: OperatorId,
        ext: String,
        binding: Option<crate::sip::ContactBinding>,
    ) {
        self.shared.events.emit(EventKind::CallOffered {
            call: call_ref(call),
            queue: self.queue_of(call),
            operator: ext.clone(),
        });
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
        if let Some((at, handle)) = self.timer {
            if Some(at) == next {
                return;
            }
            ctx.cancel_future(handle);
            self.timer = None;
        }
        if let Some(at) = next {
            let delay = at.0.saturating_sub(self.shared.now().0);
            let handle = ctx.run_later(Duration::from_millis(delay), move |act, ctx| {
                act.timer = None;
                let now = act.shared.now();
                act.core.handle_timeout(now);
                act.drain(ctx);
            });
            self.timer = Some((at, handle));
        }
    }

    /// Runs every tenant's surge controller once and applies the switches it decides.
    fn evaluate_surge(&mut self, ctx: &mut Context<Self>) {
        let now = self.shared.now();
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        for t in 0..self.surge.len() {
            let tenant = TenantId(t as u16);
            let load = self.tenant_load(tenant, now);
            if let Some(switch) = self.surge[t].evaluate(now.0, wall_ms, load) {
                self.shared.model.record_surge(tenant, switch.on);
                self.shared.events.emit(EventKind::SurgeChanged {
                    tenant: self.shared.model.tenant_name(tenant).into(),
                    on: switch.on,
                    by: switch.cause.describe(),
                });
                self.feed(
                    Input::SetSurge {
                        tenant,
                        on: switch.on,
                    },
                    ctx,
                );
            }
        }
    }

    /// The load on a tenant's queues, for its surge controller.
    fn tenant_load(&self, tenant: TenantId, now: Millis) -> crate::surge::Load {
        let shared = &self.shared;
        let handle = shared.config.media.average_handle.as_secs_f64();
        crate::surge::tenant_load(
            shared
                .model
                .queue_ids()
                .filter(|q| shared.model.queue_tenant(*q) == tenant)
                .map(|q| {
                    let snap = self.core.queue_snapshot(q, now);
                    let name = shared.model.queue_name(q);
                    let max_wait = shared
                        .config
                        .queues
                        .iter()
                        .find(|c| c.id == name)
                        .map(|c| c.timing(snap.surge).max_wait.as_secs_f64())
                        .unwrap_or(0.0);
                    // With nobody waiting the queue adds no load, even when nobody is
                    // staffed (the estimate is then the max wait): an empty line at night
                    // is not a surge.
                    let expected_wait_secs = if snap.waiting == 0 {
                        0.0
                    } else {
                        super::poll::expected_wait_secs(&snap, handle, max_wait)
                    };
                    QueueLoad {
                        expected_wait_secs,
                        waiting: snap.waiting,
                        available: snap.operators_available,
                    }
                }),
        )
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
                self.shared.events.emit(EventKind::OfferWithdrawn {
                    call: self.call_name(call),
                    operator: self.ext(operator),
                });
                if let Some(addr) = self.calls.get(&call) {
                    addr.do_send(AcdDecision::Withdraw { operator });
                }
                self.withdraw_callback(call, operator);
            }
            Action::Requeued { call, operator } => {
                self.shared.events.emit(EventKind::CallRequeued {
                    call: self.call_name(call),
                    queue: self.queue_of(call),
                    operator: self.ext(operator),
                });
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

/// Live queue figures for the API.
#[derive(Message)]
#[rtype(result = "Vec<QueueSnapshot>")]
pub struct Snapshots;

impl Handler<Snapshots> for AcdActor {
    type Result = MessageResult<Snapshots>;
    fn handle(&mut self, _: Snapshots, _: &mut Context<Self>) -> Self::Result {
        let now = self.shared.now();
        let ids: Vec<QueueId> = self.shared.model.queue_ids().collect();
        MessageResult(
            ids.into_iter()
                .map(|q| self.core.queue_snapshot(q, now))
                .collect(),
        )
    }
}

/// How many operators are in each state, by [`state_name`]: what the metrics poller needs
/// every second, without building [`OperatorStates`]' per-operator views (600 bindings cloned
/// a second on the routing thread).
#[derive(Message)]
#[rtype(result = "Vec<(&'static str, usize)>")]
pub struct OperatorStateCounts;

impl Handler<OperatorStateCounts> for AcdActor {
    type Result = MessageResult<OperatorStateCounts>;
    fn handle(&mut self, _: OperatorStateCounts, _: &mut Context<Self>) -> Self::Result {
        let mut counts: Vec<(&'static str, usize)> = [
            OperatorState::LoggedOut,
            OperatorState::Available,
            OperatorState::Ringing,
            OperatorState::OnCall,
            OperatorState::WrapUp,
            OperatorState::Break,
        ]
        .into_iter()
        .map(|s| (state_name(s), 0))
        .collect();
        for i in 0..self.shared.model.operator_count() {
            let name = state_name(self.core.operator_state(OperatorId(i as u32)));
            if let Some(c) = counts.iter_mut().find(|(n, _)| *n == name) {
                c.1 += 1;
            }
        }
        MessageResult(counts)
    }
}

/// Operator states for the API.
#[derive(Message)]
#[rtype(result = "Vec<OperatorView>")]
pub struct OperatorStates;

impl Handler<OperatorStates> for AcdActor {
    type Result = MessageResult<OperatorStates>;
    fn handle(&mut self, _: OperatorStates, _: &mut Context<Self>) -> Self::Result {
        let n = self.shared.model.operator_count();
        MessageResult(
            (0..n)
                .map(|i| {
                    let id = OperatorId(i as u32);
                    let binding = self
                        .shared
                        .presence
                        .binding(id)
                        .or_else(|| self.remote.get(&id).cloned());
                    OperatorView {
                        ext: self.ext(id),
                        state: state_name(self.core.operator_state(id)).into(),
                        registered: binding.is_some(),
                        contact: binding.map(|b| b.uri),
                        reserve: self
                            .shared
                            .config
                            .operators
                            .get(i)
                            .map(|o| o.reserve)
                            .unwrap_or(false),
                    }
                })
                .collect(),
        )
    }
}

/// A supervisor's surge setting for a tenant: force on or off, or hand back to the calendar
/// and the automatic trigger. Applied at once; the switch (if any) is a `surge_changed` event.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetSurge {
    /// The tenant.
    pub tenant: TenantId,
    /// What the supervisor asked for.
    pub manual: Manual,
}

impl Handler<SetSurge> for AcdActor {
    type Result = ();
    fn handle(&mut self, msg: SetSurge, ctx: &mut Context<Self>) {
        if let Some(controller) = self.surge.get_mut(msg.tenant.0 as usize) {
            controller.set_manual(msg.manual);
            self.evaluate_surge(ctx);
        }
    }
}

/// A tenant's surge state for the API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SurgeView {
    /// Tenant id.
    pub tenant: String,
    /// Whether surge is on.
    pub on: bool,
    /// `auto` (calendar and load decide) or `manual`.
    pub mode: &'static str,
    /// Who forced it, in manual mode.
    pub by: Option<String>,
}

/// Every tenant's surge state.
#[derive(Message)]
#[rtype(result = "Vec<SurgeView>")]
pub struct SurgeStates;

impl Handler<SurgeStates> for AcdActor {
    type Result = MessageResult<SurgeStates>;
    fn handle(&mut self, _: SurgeStates, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.surge
                .iter()
                .enumerate()
                .map(|(t, c)| {
                    let (mode, by) = match c.manual() {
                        Manual::Auto => ("auto", None),
                        Manual::Forced { by, .. } => ("manual", Some(by.clone())),
                    };
                    SurgeView {
                        tenant: self.shared.model.tenant_name(TenantId(t as u16)).into(),
                        on: c.is_on(),
                        mode,
                        by,
                    }
                })
                .collect(),
        )
    }
}

/// Where a waiting call stands, for the queue announcement: its 1-based place and how many
/// operators are serving its queue (available or on a call). `None` when it is not waiting.
#[derive(Message)]
#[rtype(result = "Option<(usize, usize)>")]
pub struct WaitingPosition(pub CallId);

impl Handler<WaitingPosition> for AcdActor {
    type Result = Option<(usize, usize)>;
    fn handle(&mut self, msg: WaitingPosition, _: &mut Context<Self>) -> Self::Result {
        let (queue, position) = self.core.waiting_position(msg.0)?;
        let snap = self.core.queue_snapshot(queue, self.shared.now());
        Some((
            position,
            snap.operators_available + snap.operators_on_call + snap.operators_wrap_up,
        ))
    }
}

// ----- surge callbacks ----------------------------------------------------------------------

/// The callback book, empty: pending requests of earlier runs come from the store in
/// `started`.
fn open_callbacks(shared: &Shared) -> CallbackHost {
    let config = &shared.config;
    let mut book = CallbackBook::new(
        CallbackPolicy {
            max_attempts: 3,
            retry_after_ms: 120_000,
        },
        config.callbacks.capacity,
    );
    for t in &config.tenants {
        if let Some(offer) = &t.surge.callback {
            book.set_tenant_policy(
                &t.id,
                CallbackPolicy {
                    max_attempts: offer.max_attempts,
                    retry_after_ms: offer.retry_after.as_millis() as i64,
                },
            );
        }
    }
    CallbackHost::new(book, shared.store.is_some())
}

impl AcdActor {
    /// Pending callbacks of earlier runs the store has recovered go back into their queues,
    /// in arrival order. Called at start and, until the store has its database's part, every
    /// [`RECOVERY_CHECK`]; only a mutex is taken, nothing waits on the database.
    fn restore_callbacks(&mut self, ctx: &mut Context<Self>) {
        let Some(store) = self.shared.store.clone() else {
            self.callbacks.recovering = false;
            return;
        };
        let recovered = store.take_recovered_callbacks();
        let mut pending = recovered.items;
        pending.sort_by_key(|r| (r.arrived_ms, r.id.clone()));
        let mut restored = 0usize;
        for request in pending {
            let id = request.id.clone();
            if self.callbacks.finished.contains(&id) || self.callbacks.book.get(&id).is_some() {
                continue;
            }
            if self.shared.model.queue(&request.queue).is_none() {
                tracing::warn!(callback = %id, "pending callback for a queue no longer configured");
                continue;
            }
            let attempts = request.attempts;
            match self.callbacks.book.request(request) {
                Ok(()) => {
                    restored += 1;
                    self.schedule_callback(&id, ctx);
                }
                Err(CallbackError::AlreadyPending(newer)) => {
                    // Came back late (the database was down at start-up) after the caller had
                    // booked again: the booking in the core stands; this one is closed so that
                    // it does not stay pending in the table for ever.
                    tracing::warn!(callback = %id, kept = %newer, "recovered callback superseded by a newer booking");
                    if let Err(e) = self.record_callback(CallbackRecord::Finished {
                        id: id.clone(),
                        outcome: CallbackOutcome::Superseded,
                        attempts,
                    }) {
                        tracing::error!(error = %e, "callback progress not stored");
                    }
                }
                Err(CallbackError::Full(_)) => {
                    tracing::warn!(callback = %id, "callback book full: recovered callback waits for the next start");
                }
            }
        }
        if restored > 0 {
            tracing::info!(restored, "pending callbacks resumed");
        }
        if recovered.complete {
            self.callbacks.recovering = false;
            self.callbacks.finished = std::collections::HashSet::new();
        }
    }

    /// Hands a step of the book to the store. `Ok(None)`: no store.
    fn record_callback(
        &self,
        record: CallbackRecord,
    ) -> Result<Option<tokio::sync::oneshot::Receiver<()>>, crate::store::BufferFull> {
        match &self.shared.store {
            Some(store) => store.record(StoreRecord::Callback(record)).map(Some),
            None => Ok(None),
        }
    }

    /// Puts a pending callback into its queue when it is due.
    fn schedule_callback(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(request) = self.callbacks.book.get(id) else {
            return;
        };
        let wait = request.due_ms - wall_ms();
        if wait > 0 {
            let id = id.to_string();
            ctx.run_later(Duration::from_millis(wait as u64), move |act, ctx| {
                act.enqueue_callback(&id, ctx)
            });
        } else {
            self.enqueue_callback(id, ctx);
        }
    }

    /// The callback joins the core at its original arrival.
    fn enqueue_callback(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(request) = self.callbacks.book.get(id) else {
            return;
        };
        let Some(queue) = self.shared.model.queue(&request.queue) else {
            return;
        };
        let now = self.shared.now();
        let ago = (wall_ms() - request.arrived_ms).max(0) as u64;
        let priority = self
            .shared
            .config
            .queues
            .get(queue.0 as usize)
            .map(|q| q.priority)
            .unwrap_or(0);
        let call = self.callbacks.core_id();
        self.callbacks.in_core.insert(call, id.to_string());
        self.call_queue.insert(call, queue);
        self.feed(
            Input::EnqueueCallback {
                call,
                queue,
                priority,
                skills: SkillSet::EMPTY,
                arrived: Millis(now.0.saturating_sub(ago)),
            },
            ctx,
        );
    }

    /// The core offered a callback to `operator`: claim the operator (shared presence), then
    /// start the dial-out.
    fn dial_callback(&mut self, call: CallId, operator: OperatorId, ctx: &mut Context<Self>) {
        if self.callbacks.actors.contains_key(&call) {
            // Ring-all: a callback rings one operator at a time.
            self.feed(Input::Declined { call, operator }, ctx);
            return;
        }
        let Some(id) = self
            .callbacks
            .in_core
            .get(&call)
            .filter(|id| self.callbacks.book.get(id).is_some())
            .cloned()
        else {
            self.feed(Input::CallerLeft { call }, ctx);
            return;
        };
        self.claim_then_reach(call, operator, Reach::Callback, id, ctx);
    }

    /// The operator is ours: take a trunk channel and start the dial-out.
    fn start_callback_dial(
        &mut self,
        call: CallId,
        operator: OperatorId,
        binding: Option<crate::sip::ContactBinding>,
        ctx: &mut Context<Self>,
    ) {
        if self.callbacks.actors.contains_key(&call) {
            self.feed(Input::Declined { call, operator }, ctx);
            return;
        }
        let request = self
            .callbacks
            .in_core
            .get(&call)
            .and_then(|id| self.callbacks.book.get(id))
            .cloned();
        let Some(request) = request else {
            self.feed(Input::CallerLeft { call }, ctx);
            return;
        };
        // The dial-out goes through the trunk, so it holds a channel like an inbound call
        // (D6). It is taken before the operator is rung, so an operator never answers a
        // callback that then cannot be dialled. With none free the callback leaves the core
        // (its operator is free for the live callers, who already hold channels) and comes
        // back at its original place a moment later; that is not an attempt.
        let tenant = self
            .shared
            .config
            .tenants
            .iter()
            .position(|t| t.id == request.tenant)
            .unwrap_or(0);
        let ticket = match self.shared.gate.try_acquire(tenant) {
            Ok(ticket) => ticket,
            Err(reason) => {
                tracing::debug!(callback = %request.id, ?reason, "no free channel for a callback");
                self.callbacks.no_channel.push(request.id.clone());
                self.feed(Input::CallerLeft { call }, ctx);
                self.schedule_readmission(ctx);
                return;
            }
        };
        // As for a live call, the offer is an event once the claim is won and the phone is
        // actually rung.
        self.shared.events.emit(EventKind::CallOffered {
            call: self.call_name(call),
            queue: self.queue_of(call),
            operator: self.ext(operator),
        });
        let actor = CallbackActor::new(
            self.shared.clone(),
            ctx.address(),
            call,
            request,
            operator,
            binding,
            ticket,
        )
        .start();
        self.callbacks.actors.insert(call, actor);
        self.callbacks.operators.insert(call, operator);
    }

    /// Callbacks that found no free channel come back to their places once channels are
    /// free (checked every `NO_CHANNEL_RETRY`); none while the gate is full or draining.
    fn schedule_readmission(&mut self, ctx: &mut Context<Self>) {
        if self.callbacks.readmit_scheduled || self.callbacks.no_channel.is_empty() {
            return;
        }
        self.callbacks.readmit_scheduled = true;
        ctx.run_later(NO_CHANNEL_RETRY, |act, ctx| {
            act.callbacks.readmit_scheduled = false;
            if act.shared.gate.draining() {
                return; // they stay pending in the store and resume at the next start
            }
            let config = act.shared.config.clone();
            let index = |tenant: &str| {
                config
                    .tenants
                    .iter()
                    .position(|t| t.id == tenant)
                    .unwrap_or(0)
            };
            for id in act.callbacks.readmissible(&act.shared.gate, index) {
                act.enqueue_callback(&id, ctx);
            }
            act.schedule_readmission(ctx);
        });
    }

    /// The core withdrew a callback's offer: its dial-out stops quietly.
    fn withdraw_callback(&mut self, call: CallId, operator: OperatorId) {
        if self.callbacks.operators.get(&call) == Some(&operator) {
            self.callbacks.operators.remove(&call);
            if let Some(actor) = self.callbacks.actors.remove(&call) {
                actor.do_send(CallbackWithdraw);
            }
        }
    }

    fn refuse_callback<T>(
        &self,
        call: &str,
        tenant: &str,
        reason: &'static str,
    ) -> Result<T, &'static str> {
        self.shared.events.emit(EventKind::CallbackRefused {
            call: call.into(),
            tenant: tenant.into(),
            reason: reason.into(),
        });
        Err(reason)
    }

    /// A waiting caller accepted the callback offer. `Ok`: the request's id, and the
    /// receiver that resolves once the booking is fsynced (`None` without a store).
    fn request_callback(
        &mut self,
        msg: RequestCallback,
        ctx: &mut Context<Self>,
    ) -> Result<(String, Option<tokio::sync::oneshot::Receiver<()>>), &'static str> {
        let tenant = self
            .shared
            .model
            .tenant_name(self.shared.model.queue_tenant(msg.queue));
        let tenant = tenant.to_string();
        if !self.calls.contains_key(&msg.call) {
            return self.refuse_callback(&msg.call_ref, &tenant, "not_waiting");
        }
        let Some(offer) = self
            .shared
            .config
            .tenant(&tenant)
            .and_then(|t| t.surge.callback)
        else {
            return self.refuse_callback(&msg.call_ref, &tenant, "disabled");
        };
        let Ok(number) = crate::sms::E164::parse(msg.number.expose()) else {
            return self.refuse_callback(&msg.call_ref, &tenant, "invalid_number");
        };
        let now = self.shared.now();
        let waited = now.0.saturating_sub(msg.enqueued_at.0) as i64;
        let request = CallbackRequest {
            id: self.callbacks.request_id(&self.shared.config.node.id),
            tenant: tenant.clone(),
            queue: self.shared.model.queue_name(msg.queue).to_string(),
            number: number.expose().to_string(),
            language: msg.language,
            arrived_ms: wall_ms() - waited,
            attempts: 0,
            due_ms: 0,
            call: msg.call_ref.clone(),
        };
        self.callbacks.book.set_tenant_policy(
            &tenant,
            CallbackPolicy {
                max_attempts: offer.max_attempts,
                retry_after_ms: offer.retry_after.as_millis() as i64,
            },
        );
        match self.callbacks.book.request(request.clone()) {
            Ok(()) => {}
            Err(CallbackError::AlreadyPending(_)) => {
                return self.refuse_callback(&msg.call_ref, &tenant, "already_pending")
            }
            Err(CallbackError::Full(_)) => {
                return self.refuse_callback(&msg.call_ref, &tenant, "full")
            }
        }
        let durable = match self.record_callback(CallbackRecord::Requested(request.clone())) {
            Ok(durable) => durable,
            Err(e) => {
                tracing::error!(error = %e, "callback not stored");
                self.callbacks.book.remove(&request.id);
                return self.refuse_callback(&msg.call_ref, &tenant, "store");
            }
        };
        // The live call leaves the queue; its outcome is the call actor's (callback_requested),
        // so the core's `abandoned` for it is neither tallied nor delivered.
        self.calls.remove(&msg.call);
        self.call_queue.remove(&msg.call);
        self.feed(Input::CallerLeft { call: msg.call }, ctx);
        self.shared.events.emit(EventKind::CallbackRequested {
            callback: request.id.clone(),
            call: msg.call_ref,
            tenant,
            queue: request.queue.clone(),
            number: PhoneNumber::new(request.number.clone()),
            language: request.language.clone(),
        });
        self.enqueue_callback(&request.id, ctx);
        Ok((request.id, durable))
    }

    /// A dial-out reported progress.
    fn on_callback_progress(&mut self, msg: CallbackProgress, ctx: &mut Context<Self>) {
        match msg {
            CallbackProgress::OperatorAnswered { call, operator } => {
                self.feed(Input::Answered { call, operator }, ctx);
            }
            CallbackProgress::OperatorDeclined {
                call,
                operator,
                status,
            } => {
                if self.callbacks.operators.get(&call) != Some(&operator) {
                    return; // withdrawn meanwhile
                }
                self.callbacks.operators.remove(&call);
                self.callbacks.actors.remove(&call);
                let id = self
                    .callbacks
                    .in_core
                    .get(&call)
                    .cloned()
                    .unwrap_or_default();
                self.shared.events.emit(EventKind::OfferDeclined {
                    call: id,
                    operator: self.ext(operator),
                    status,
                });
                self.feed(Input::Declined { call, operator }, ctx);
            }
            CallbackProgress::Ended { call, end } => {
                let Some(operator) = self.callbacks.operators.remove(&call) else {
                    return;
                };
                self.callbacks.actors.remove(&call);
                let Some(id) = self.callbacks.in_core.get(&call).cloned() else {
                    return;
                };
                self.feed(Input::CallEnded { call }, ctx);
                self.callbacks.in_core.remove(&call);
                self.call_queue.remove(&call);
                self.on_callback_attempt(&id, operator, end, ctx);
            }
        }
    }

    /// Records an attempt and applies the book's decision.
    fn on_callback_attempt(
        &mut self,
        id: &str,
        operator: OperatorId,
        end: DialEnd,
        ctx: &mut Context<Self>,
    ) {
        let Some(request) = self.callbacks.book.get(id).cloned() else {
            return;
        };
        let (status, talk_ms) = match end {
            DialEnd::Connected { talk_ms } => (None, talk_ms),
            DialEnd::NotReached { status } => (Some(status), 0),
            DialEnd::OperatorLeft => (None, 0),
        };
        self.shared.events.emit(EventKind::CallbackAttempt {
            callback: id.to_string(),
            call: request.call.clone(),
            queue: request.queue.clone(),
            operator: self.ext(operator),
            attempt: request.attempts + 1,
            result: end.label().into(),
            status,
            talk_ms,
        });
        let result = match end {
            // Not the caller's attempt: back to the queue at once, at the same place.
            DialEnd::OperatorLeft => return self.enqueue_callback(id, ctx),
            DialEnd::Connected { .. } => DialResult::Connected,
            DialEnd::NotReached { .. } => DialResult::NoAnswer,
        };
        let Some(outcome) = self.callbacks.book.on_dial_result(id, result, wall_ms()) else {
            return;
        };
        let record = match &outcome {
            CallbackOutcome::Retry { due_ms } => CallbackRecord::Retry {
                id: id.to_string(),
                attempts: request.attempts + 1,
                due_ms: *due_ms,
            },
            other => {
                if self.callbacks.recovering {
                    self.callbacks.finished.insert(id.to_string());
                }
                CallbackRecord::Finished {
                    id: id.to_string(),
                    outcome: other.clone(),
                    attempts: request.attempts + 1,
                }
            }
        };
        // Not waited for: lost only with a crash inside one fsync (the request is then
        // dialled again after the restart).
        if let Err(e) = self.record_callback(record) {
            tracing::error!(error = %e, "callback progress not stored");
        }
        match outcome {
            CallbackOutcome::Retry { .. } => self.schedule_callback(id, ctx),
            done => {
                self.shared.events.emit(EventKind::CallbackFinished {
                    callback: id.to_string(),
                    call: request.call,
                    tenant: request.tenant,
                    queue: request.queue,
                    outcome: match done {
                        CallbackOutcome::Connected => "connected",
                        _ => "gave_up",
                    }
                    .into(),
                    attempts: request.attempts + 1,
                });
            }
        }
    }
}

/// A waiting caller accepts the callback offer. `Ok`: the request's id; the call leaves the
/// queue. `Err`: why not (`already_pending`, `invalid_number`, ...); the call keeps waiting.
#[derive(Message)]
#[rtype(result = "Result<String, &'static str>")]
pub struct RequestCallback {
    /// The call.
    pub call: CallId,
    /// Its external name.
    pub call_ref: String,
    /// Its queue.
    pub queue: QueueId,
    /// The caller's number.
    pub number: PhoneNumber,
    /// The language chosen.
    pub language: String,
    /// When it joined the queue: the place the callback keeps.
    pub enqueued_at: Millis,
}

/// Answers once the booking is fsynced, so a caller hears "booked" only for a request that
/// survives a crash; the host goes on meanwhile (nothing here waits on the database).
impl Handler<RequestCallback> for AcdActor {
    type Result = ResponseActFuture<Self, Result<String, &'static str>>;
    fn handle(&mut self, msg: RequestCallback, ctx: &mut Context<Self>) -> Self::Result {
        match self.request_callback(msg, ctx) {
            Err(reason) => Box::pin(fut::ready(Err(reason))),
            Ok((id, None)) => Box::pin(fut::ready(Ok(id))),
            Ok((id, Some(durable))) => Box::pin(
                async move {
                    // The caller's actor waits for this answer, so a journal disk that stopped
                    // taking writes must not hold it for ever: after a while the booking
                    // stands as it is (in the book, and journaled once the disk recovers).
                    match tokio::time::timeout(BOOKING_DURABLE_WAIT, durable).await {
                        Ok(_) => {}
                        Err(_) => tracing::error!(
                            callback = %id,
                            "callback booked before it reached the journal disk"
                        ),
                    }
                    Ok(id)
                }
                .into_actor(self),
            ),
        }
    }
}

impl Handler<CallbackProgress> for AcdActor {
    type Result = ();
    fn handle(&mut self, msg: CallbackProgress, ctx: &mut Context<Self>) {
        self.on_callback_progress(msg, ctx);
    }
}

/// Shutdown: ends every callback dial-out in progress (a connected one is finished, one not
/// yet connected stays pending in the store and resumes at the next start). Returns how many.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct HangUpCallbacks;

impl Handler<HangUpCallbacks> for AcdActor {
    type Result = usize;
    fn handle(&mut self, _: HangUpCallbacks, _: &mut Context<Self>) -> usize {
        for actor in self.callbacks.actors.values() {
            actor.do_send(super::callback::CallbackHangUp);
        }
        self.callbacks.actors.len()
    }
}
