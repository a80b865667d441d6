//! Callbacks in surge mode: the dial-out ([`CallbackActor`], one per attempt) and the state
//! the ACD host keeps for the book ([`CallbackHost`]).
//!
//! A pending callback waits in the routing core as a callback entry at its original arrival
//! (`acd::Input::EnqueueCallback`). When the core offers it to an operator the host starts a
//! [`CallbackActor`]: it INVITEs the operator first (their phone shows the caller's number,
//! as for a live call), and once the operator answers it INVITEs the caller's number through
//! the trunk (`[trunk]`); when the caller answers the two legs are bridged and recorded as an
//! inbound call is (D19). An operator who does not answer is a missed offer (the core offers
//! the callback to someone else); a caller who does not answer, is busy or is unreachable is
//! an unanswered attempt, retried by the book after a pause up to the tenant's limit. Every
//! attempt and the final outcome are events (`callback_attempt`, `callback_finished`) that
//! carry the original call, so they join its timeline.

use super::acd_host::AcdActor;
use super::gate::ChannelTicket;
use super::Shared;
use crate::acd::{CallId, Millis, OperatorId};
use crate::callback::{CallbackBook, CallbackRequest, Readmission};
use crate::media::{Codec, LegSpec, MediaCommand, MediaEvent, MediaHandle, MediaMsg, RtpPort};
use crate::privacy::PhoneNumber;
use crate::sip::{sdp, ContactBinding, LegEvent, LegMsg, OperatorLeg};
use actix::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Core call ids of callbacks start here, far above the ids of inbound calls.
pub const CALLBACK_ID_BASE: u64 = 1 << 48;

/// Leg tag of the operator's leg.
const OPERATOR_LEG: u64 = 1;
/// Leg tag of the caller's (trunk) leg.
const TRUNK_LEG: u64 = 2;

/// What the ACD host keeps for callbacks.
pub struct CallbackHost {
    /// The pending requests (kept durably by the store: each step is a record).
    pub book: CallbackBook,
    /// While the store may still hand back requests of earlier runs: those finished in this
    /// run, so that a late copy of one (read from the database before its end reached it)
    /// is not dialled again.
    pub finished: HashSet<String>,
    /// Whether the store may still hand back requests of earlier runs.
    pub recovering: bool,
    /// Core call id -> request id, for callbacks waiting or being dialled in the core.
    pub in_core: HashMap<CallId, String>,
    /// Dial-outs in progress, by core call id.
    pub actors: HashMap<CallId, Addr<CallbackActor>>,
    /// The operator of each dial-out in progress.
    pub operators: HashMap<CallId, OperatorId>,
    /// Next core id offset.
    pub next_core: u64,
    /// Next request number.
    pub next_request: u64,
    /// This run's start (wall ms), part of request ids.
    pub boot: u64,
    /// Requests out of the core because no channel was free for their dial-out (the pure
    /// core shared with the simulator).
    pub readmission: Readmission<String>,
    /// The timer of the readmission's next check, when one is armed.
    pub readmit_timer: super::deadline::DeadlineTimer,
}

impl CallbackHost {
    /// A host over `book`; `recovering` while the store may hand back earlier requests.
    pub fn new(book: CallbackBook, recovering: bool) -> CallbackHost {
        CallbackHost {
            book,
            finished: HashSet::new(),
            recovering,
            in_core: HashMap::new(),
            actors: HashMap::new(),
            operators: HashMap::new(),
            next_core: 0,
            next_request: 0,
            boot: wall_ms().max(0) as u64,
            readmission: Readmission::new(),
            readmit_timer: Default::default(),
        }
    }

    /// A fresh core call id.
    pub fn core_id(&mut self) -> CallId {
        self.next_core += 1;
        CallId(CALLBACK_ID_BASE + self.next_core)
    }

    /// A fresh request id, unique across restarts and across the nodes sharing a database.
    pub fn request_id(&mut self, node: &str) -> String {
        self.next_request += 1;
        format!("cb-{node}-{:x}-{}", self.boot, self.next_request)
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How one dial attempt ended, as the actor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialEnd {
    /// Caller and operator talked for `talk_ms`.
    Connected {
        /// Talk time.
        talk_ms: u64,
    },
    /// The caller did not answer, was busy, or the trunk refused: `status` is the SIP final
    /// status (408 when nothing answered, 487 when navbat cancelled at the ring timeout).
    NotReached {
        /// The final status.
        status: u16,
    },
    /// The operator hung up before the caller answered: not the caller's attempt.
    OperatorLeft,
}

impl DialEnd {
    /// The `result` of the `callback_attempt` event.
    pub fn label(self) -> &'static str {
        match self {
            DialEnd::Connected { .. } => "connected",
            DialEnd::NotReached {
                status: 486 | 600 | 603,
            } => "busy",
            DialEnd::NotReached {
                status: 408 | 480 | 487,
            } => "no_answer",
            DialEnd::NotReached { .. } => "failed",
            DialEnd::OperatorLeft => "operator_left",
        }
    }
}

/// What a dial-out tells the ACD host.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum CallbackProgress {
    /// The operator answered: they are on this callback now.
    OperatorAnswered {
        /// The callback's core id.
        call: CallId,
        /// The operator.
        operator: OperatorId,
    },
    /// The operator's phone refused or could not be reached: a missed offer.
    OperatorDeclined {
        /// The callback's core id.
        call: CallId,
        /// The operator.
        operator: OperatorId,
        /// The final status.
        status: u16,
    },
    /// The attempt is over (after the operator answered).
    Ended {
        /// The callback's core id.
        call: CallId,
        /// How.
        end: DialEnd,
    },
}

/// The core withdrew the offer (ring timeout, or an answer raced the withdrawal): drop
/// every leg quietly; the core has the callback again.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CallbackWithdraw;

/// End the attempt now (shutdown).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct CallbackHangUp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    RingingOperator,
    DiallingCaller,
    Talking,
    Done,
}

/// One dial attempt of a callback.
pub struct CallbackActor {
    shared: Arc<Shared>,
    acd: Addr<AcdActor>,
    call: CallId,
    request: CallbackRequest,
    operator: OperatorId,
    binding: Option<ContactBinding>,
    attempt_ref: String,
    phase: Phase,
    operator_leg: Option<OperatorLeg>,
    operator_port: Option<RtpPort>,
    operator_sdp: Option<String>,
    trunk_leg: Option<OperatorLeg>,
    trunk_port: Option<RtpPort>,
    media: Option<MediaHandle>,
    answered_at: Option<Millis>,
    ring_timer: Option<SpawnHandle>,
    /// The trunk channel this attempt holds (D6), released when it ends.
    channel: Option<ChannelTicket>,
}

impl CallbackActor {
    /// An attempt of `request` (core id `call`) through `operator`, whose phone is at
    /// `binding` (`None`: not reachable, reported as a missed offer), holding the trunk
    /// channel `channel` until the attempt ends.
    pub fn new(
        shared: Arc<Shared>,
        acd: Addr<AcdActor>,
        call: CallId,
        request: CallbackRequest,
        operator: OperatorId,
        binding: Option<ContactBinding>,
        channel: ChannelTicket,
    ) -> CallbackActor {
        let attempt_ref = format!("{}-a{}", request.id, request.attempts + 1);
        CallbackActor {
            shared,
            acd,
            call,
            request,
            operator,
            binding,
            attempt_ref,
            phase: Phase::RingingOperator,
            operator_leg: None,
            operator_port: None,
            operator_sdp: None,
            trunk_leg: None,
            trunk_port: None,
            media: None,
            answered_at: None,
            ring_timer: None,
            channel: Some(channel),
        }
    }

    fn declined(&mut self, status: u16, ctx: &mut Context<Self>) {
        self.acd.do_send(CallbackProgress::OperatorDeclined {
            call: self.call,
            operator: self.operator,
            status,
        });
        self.close(ctx);
    }

    fn ended(&mut self, end: DialEnd, ctx: &mut Context<Self>) {
        if self.phase == Phase::Done {
            return;
        }
        self.acd.do_send(CallbackProgress::Ended {
            call: self.call,
            end,
        });
        self.close(ctx);
    }

    /// Hangs up whatever is up and stops.
    fn close(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Done;
        if let Some(l) = self.operator_leg.take() {
            l.hangup();
        }
        if let Some(l) = self.trunk_leg.take() {
            l.hangup();
        }
        if let Some(m) = self.media.take() {
            m.send(MediaCommand::Stop);
        }
        // The channel is free as soon as the legs are hung up, not when the actor is dropped.
        self.channel = None;
        ctx.stop();
    }

    fn ring_operator(&mut self, ctx: &mut Context<Self>) {
        let (Some(binding), Some(sip)) = (self.binding.clone(), self.shared.sip.get()) else {
            return self.declined(480, ctx);
        };
        let Ok(port) = self.shared.ports.allocate() else {
            return self.declined(503, ctx);
        };
        let offer = sdp::offer(
            self.shared.config.media.rtp_ip,
            port.addr().port(),
            self.call.0.wrapping_mul(10) + OPERATOR_LEG,
        );
        // The operator's phone shows the caller's number, as for a live call.
        let number = PhoneNumber::new(self.request.number.clone());
        let to = ctx.address().recipient::<LegMsg>();
        match sip.call_operator(&binding, &number, offer, OPERATOR_LEG, to) {
            Ok(leg) => {
                self.operator_leg = Some(leg);
                self.operator_port = Some(port);
            }
            Err(e) => {
                tracing::debug!(callback = %self.attempt_ref, error = %e, "cannot ring operator");
                self.declined(503, ctx);
            }
        }
    }

    /// The operator is on the line: dial the caller through the trunk.
    fn dial_caller(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::DiallingCaller;
        let Some(trunk) = self.shared.config.trunk.clone() else {
            return self.ended(DialEnd::NotReached { status: 503 }, ctx);
        };
        let user = trunk.format(&self.request.number);
        let Some(binding) = ContactBinding::from_stored(&trunk.binding(&user)) else {
            return self.ended(DialEnd::NotReached { status: 484 }, ctx);
        };
        let (Some(sip), Ok(port)) = (self.shared.sip.get(), self.shared.ports.allocate()) else {
            return self.ended(DialEnd::NotReached { status: 503 }, ctx);
        };
        let offer = sdp::offer(
            self.shared.config.media.rtp_ip,
            port.addr().port(),
            self.call.0.wrapping_mul(10) + TRUNK_LEG,
        );
        // The caller sees the tenant's number, so they know who calls back.
        let from = self
            .shared
            .config
            .tenant(&self.request.tenant)
            .and_then(|t| t.dids.first().cloned())
            .unwrap_or_default();
        let to = ctx.address().recipient::<LegMsg>();
        match sip.call_operator(&binding, &PhoneNumber::new(from), offer, TRUNK_LEG, to) {
            Ok(leg) => {
                self.trunk_leg = Some(leg);
                self.trunk_port = Some(port);
                self.ring_timer = Some(ctx.run_later(trunk.ring_timeout, |act, _| {
                    act.ring_timer = None;
                    if act.phase == Phase::DiallingCaller {
                        // CANCEL; the 487 that follows ends the attempt as unanswered.
                        if let Some(l) = &act.trunk_leg {
                            l.hangup();
                        }
                    }
                }));
            }
            Err(e) => {
                tracing::debug!(callback = %self.attempt_ref, error = %e, "cannot dial the trunk");
                self.ended(DialEnd::NotReached { status: 503 }, ctx);
            }
        }
    }

    /// Both answered: relay and record, the trunk leg as the caller's side.
    fn bridge(&mut self, trunk_sdp: Option<String>, ctx: &mut Context<Self>) {
        self.phase = Phase::Talking;
        self.answered_at = Some(self.shared.now());
        if let Some(h) = self.ring_timer.take() {
            ctx.cancel_future(h);
        }
        let Some(engine) = self.shared.media.get() else {
            return;
        };
        let spec = |port: RtpPort, answer: Option<&str>| {
            let remote = answer.and_then(sdp::parse);
            LegSpec {
                port,
                remote: remote.as_ref().and_then(|r| r.addr()),
                codec: remote
                    .as_ref()
                    .and_then(|r| r.codec())
                    .unwrap_or(Codec::Pcmu),
                telephone_event: remote.as_ref().and_then(|r| r.telephone_event),
            }
        };
        let (Some(trunk_port), Some(operator_port)) =
            (self.trunk_port.take(), self.operator_port.take())
        else {
            return;
        };
        let session = engine.start_session(
            spec(trunk_port, trunk_sdp.as_deref()),
            ctx.address().recipient::<MediaMsg>(),
        );
        let recording = super::open_recording(
            &engine.recorder,
            &self.shared.events,
            &self.attempt_ref,
            &self.request.tenant,
        );
        session.send(MediaCommand::Bridge {
            operator: spec(operator_port, self.operator_sdp.as_deref()),
            recording: Some(recording),
        });
        self.media = Some(session);
    }

    fn talk_ms(&self) -> u64 {
        self.answered_at
            .map(|a| self.shared.now().0.saturating_sub(a.0))
            .unwrap_or(0)
    }
}

impl Actor for CallbackActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.ring_operator(ctx);
    }
}

impl Handler<LegMsg> for CallbackActor {
    type Result = ();

    fn handle(&mut self, msg: LegMsg, ctx: &mut Context<Self>) {
        if self.phase == Phase::Done {
            return;
        }
        match msg.0 {
            LegEvent::OperatorAnswered {
                attempt: OPERATOR_LEG,
                sdp,
            } if self.phase == Phase::RingingOperator => {
                self.operator_sdp = sdp;
                self.acd.do_send(CallbackProgress::OperatorAnswered {
                    call: self.call,
                    operator: self.operator,
                });
                self.dial_caller(ctx);
            }
            LegEvent::OperatorFailed {
                attempt: OPERATOR_LEG,
                status,
            } if self.phase == Phase::RingingOperator => {
                self.operator_leg = None;
                self.declined(status, ctx);
            }
            // Before an answer, a leg's end is followed by its final status (OperatorFailed),
            // which is what counts.
            LegEvent::OperatorGone {
                attempt: OPERATOR_LEG,
                ..
            } if self.phase != Phase::RingingOperator => {
                self.operator_leg = None;
                let end = match self.phase {
                    Phase::Talking => DialEnd::Connected {
                        talk_ms: self.talk_ms(),
                    },
                    _ => DialEnd::OperatorLeft,
                };
                self.ended(end, ctx);
            }
            LegEvent::OperatorAnswered {
                attempt: TRUNK_LEG,
                sdp,
            } if self.phase == Phase::DiallingCaller => self.bridge(sdp, ctx),
            LegEvent::OperatorFailed {
                attempt: TRUNK_LEG,
                status,
            } if self.phase == Phase::DiallingCaller => {
                self.trunk_leg = None;
                self.ended(DialEnd::NotReached { status }, ctx);
            }
            LegEvent::OperatorGone {
                attempt: TRUNK_LEG, ..
            } if self.phase == Phase::Talking => {
                self.trunk_leg = None;
                let talk_ms = self.talk_ms();
                self.ended(DialEnd::Connected { talk_ms }, ctx);
            }
            _ => {}
        }
    }
}

impl Handler<MediaMsg> for CallbackActor {
    type Result = ();

    fn handle(&mut self, msg: MediaMsg, _: &mut Context<Self>) {
        if let MediaEvent::Ended { .. } = msg.0 {
            tracing::debug!(callback = %self.attempt_ref, "callback media ended");
        }
    }
}

impl Handler<CallbackWithdraw> for CallbackActor {
    type Result = ();

    fn handle(&mut self, _: CallbackWithdraw, ctx: &mut Context<Self>) {
        if self.phase != Phase::Done {
            self.close(ctx);
        }
    }
}

impl Handler<CallbackHangUp> for CallbackActor {
    type Result = ();

    fn handle(&mut self, _: CallbackHangUp, ctx: &mut Context<Self>) {
        match self.phase {
            Phase::Done => {}
            Phase::RingingOperator => self.declined(487, ctx),
            Phase::DiallingCaller => self.ended(DialEnd::OperatorLeft, ctx),
            Phase::Talking => {
                let talk_ms = self.talk_ms();
                self.ended(DialEnd::Connected { talk_ms }, ctx)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::gate::ChannelGate;
    use crate::callback::CallbackPolicy;

    fn request(id: &str, tenant: &str, arrived_ms: i64) -> CallbackRequest {
        CallbackRequest {
            id: id.into(),
            tenant: tenant.into(),
            queue: "q".into(),
            number: format!("+99890000{arrived_ms:04}"),
            language: "uz".into(),
            arrived_ms,
            attempts: 0,
            due_ms: 0,
            call: String::new(),
        }
    }

    /// The gate's free channels drive the shared readmission core: oldest first, no more
    /// than the free channels of the gate and of their tenant allow, none while the gate is
    /// full or draining.
    #[test]
    fn readmission_follows_the_gate() {
        let policy = CallbackPolicy {
            max_attempts: 3,
            retry_after_ms: 1000,
        };
        let mut host = CallbackHost::new(CallbackBook::new(policy, 100), false);
        for (id, tenant, at) in [
            ("c", "a", 30),
            ("a", "a", 10),
            ("b", "b", 20),
            ("d", "a", 40),
        ] {
            host.book.request(request(id, tenant, at)).unwrap();
            let r = host.book.get(id).unwrap();
            host.readmission.park(
                Millis(0),
                id.to_string(),
                usize::from(tenant == "b"),
                r.arrived_ms,
            );
        }
        let keep = |id: &String| id != "none";
        // Global 3 channels; tenant a 2, tenant b 1.
        let gate = ChannelGate::new(3, vec![2, 1]);
        let held: Vec<_> = (0..2).map(|_| gate.try_acquire(0).unwrap()).collect();
        let _b = gate.try_acquire(1).unwrap();
        let due = host.readmission.poll_timeout().unwrap();
        assert!(
            host.readmission
                .handle_timeout(due, &*gate, keep)
                .is_empty(),
            "the gate is full"
        );
        assert_eq!(host.readmission.len(), 4);
        drop(held);
        // Two of tenant a's channels free, tenant b's still held: a and c (oldest of a).
        let due = host.readmission.poll_timeout().unwrap();
        assert_eq!(
            host.readmission.handle_timeout(due, &*gate, keep),
            vec!["a", "c"]
        );
        assert_eq!(host.readmission.len(), 2);
        gate.start_draining();
        let due = host.readmission.poll_timeout().unwrap();
        assert!(
            host.readmission
                .handle_timeout(due, &*gate, keep)
                .is_empty(),
            "draining"
        );
    }
}
