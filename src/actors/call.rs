//! CallActor: one per call, the B2BUA. Answers the caller, runs the IVR,
//! joins the queue, rings the operators the ACD chooses, joins the legs on
//! answer, and ends both legs when either side hangs up. Every step is an
//! event; the call ends with exactly one outcome.

use super::acd_host::{AcdActor, Enqueue, Feed};
use super::gate::ChannelTicket;
use super::Shared;
use crate::acd::{CallId, Input, Millis, OperatorId, Outcome, QueueId};
use crate::events::{CallOutcome, EventKind};
use crate::ivr::{IvrAction, IvrSession};
use crate::media::RtpPort;
use crate::privacy::PhoneNumber;
use crate::sip::{sdp, CallerLeg, ContactBinding, LegEvent, LegMsg, OperatorLeg};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In the IVR menu.
    Ivr,
    /// In a queue (waiting or being offered).
    Queued,
    /// Caller and operator are joined.
    Talking,
    /// Over; the actor stops.
    Done,
}

struct Offer {
    attempt: u64,
    ext: String,
    leg: Option<OperatorLeg>,
    _port: Option<RtpPort>,
}

/// One call.
pub struct CallActor {
    id: CallId,
    call_ref: String,
    tenant: usize,
    tenant_name: String,
    caller: PhoneNumber,
    leg: CallerLeg,
    shared: Arc<Shared>,
    acd: Addr<AcdActor>,
    _ticket: ChannelTicket,
    phase: Phase,
    ivr: Option<IvrSession>,
    ivr_timer: Option<SpawnHandle>,
    caller_port: Option<RtpPort>,
    queue: Option<QueueId>,
    enqueued_at: Option<Millis>,
    answered_at: Option<Millis>,
    offers: HashMap<OperatorId, Offer>,
    talking_with: Option<(OperatorId, Offer)>,
    next_attempt: u64,
}

/// What the ACD decided about this call.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub enum AcdDecision {
    /// Ring this operator.
    Offer {
        /// The operator.
        operator: OperatorId,
        /// Their extension.
        ext: String,
        /// Where their phone is (None: no longer registered).
        binding: Option<Box<ContactBinding>>,
    },
    /// Stop ringing this operator.
    Withdraw {
        /// The operator.
        operator: OperatorId,
    },
    /// The call left the ACD with this outcome.
    Finished(Outcome),
    /// The core refused an answer (it had withdrawn the offer first).
    AnswerRefused {
        /// The operator.
        operator: OperatorId,
    },
}

/// End the call now (shutdown deadline).
#[derive(Message)]
#[rtype(result = "()")]
pub struct HangUpNow;

impl CallActor {
    /// A call actor for an admitted call.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: CallId,
        call_ref: String,
        tenant: usize,
        caller: PhoneNumber,
        leg: CallerLeg,
        shared: Arc<Shared>,
        acd: Addr<AcdActor>,
        ticket: ChannelTicket,
    ) -> CallActor {
        CallActor {
            id,
            call_ref,
            tenant_name: shared.config.tenants[tenant].id.clone(),
            tenant,
            caller,
            leg,
            shared,
            acd,
            _ticket: ticket,
            phase: Phase::Ivr,
            ivr: None,
            ivr_timer: None,
            caller_port: None,
            queue: None,
            enqueued_at: None,
            answered_at: None,
            offers: HashMap::new(),
            talking_with: None,
            next_attempt: 1,
        }
    }

    fn finish(&mut self, outcome: CallOutcome, ended_by: &str, ctx: &mut Context<Self>) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        let now = self.shared.now();
        let wait_ms = match (self.enqueued_at, self.answered_at) {
            (Some(e), Some(a)) => a.0.saturating_sub(e.0),
            (Some(e), None) => now.0.saturating_sub(e.0),
            _ => 0,
        };
        let talk_ms = self
            .answered_at
            .map(|a| now.0.saturating_sub(a.0))
            .unwrap_or(0);
        self.shared.events.emit(EventKind::CallFinished {
            call: self.call_ref.clone(),
            tenant: self.tenant_name.clone(),
            queue: self
                .queue
                .map(|q| self.shared.model.queue_name(q).to_string()),
            operator: self.talking_with.as_ref().map(|(_, o)| o.ext.clone()),
            outcome,
            wait_ms,
            talk_ms,
            ended_by: ended_by.into(),
        });
        ctx.stop();
    }

    fn answer_caller(&mut self, ctx: &mut Context<Self>) -> bool {
        let port = match self.shared.ports.allocate() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(call = %self.call_ref, error = %e, "no RTP port");
                self.leg.reject(503);
                self.finish(CallOutcome::Failed, "router", ctx);
                return false;
            }
        };
        let ip = self.shared.config.media.rtp_ip;
        let session = self.id.0;
        let body = match self.leg.remote_offer().and_then(sdp::parse) {
            Some(offer) => match sdp::answer(&offer, ip, port.addr().port(), session) {
                Some((body, _codec)) => body,
                None => {
                    self.leg.reject(488);
                    self.finish(CallOutcome::Failed, "router", ctx);
                    return false;
                }
            },
            // No offer in the INVITE: ours goes in the 200, the answer in the ACK.
            None => sdp::offer(ip, port.addr().port(), session),
        };
        self.caller_port = Some(port);
        if let Err(e) = self.leg.answer(body) {
            tracing::warn!(call = %self.call_ref, error = %e, "answer failed");
            self.finish(CallOutcome::Failed, "router", ctx);
            return false;
        }
        true
    }

    fn run_ivr(&mut self, ctx: &mut Context<Self>) {
        while let Some(action) = self.ivr.as_mut().and_then(|s| s.poll_action()) {
            match action {
                IvrAction::Play(prompt) => {
                    // The media engine plays it; until then it is only traced.
                    tracing::debug!(call = %self.call_ref, ?prompt, "prompt");
                }
                IvrAction::Step { level, digit } => {
                    self.shared.events.emit(EventKind::IvrStep {
                        call: self.call_ref.clone(),
                        level,
                        digit,
                    });
                }
                IvrAction::Route {
                    language,
                    topic,
                    queue,
                } => {
                    self.enqueue(&language, topic, &queue, ctx);
                    return;
                }
                IvrAction::Hangup { reason } => {
                    tracing::debug!(call = %self.call_ref, ?reason, "IVR hangup");
                    self.leg.hangup();
                    self.finish(CallOutcome::IvrHangup, "ivr", ctx);
                    return;
                }
            }
        }
        self.arm_ivr_timer(ctx);
    }

    fn arm_ivr_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.ivr_timer.take() {
            ctx.cancel_future(h);
        }
        if let Some(deadline) = self.ivr.as_ref().and_then(|s| s.deadline()) {
            let delay = deadline.saturating_sub(self.shared.now().0);
            self.ivr_timer = Some(ctx.run_later(Duration::from_millis(delay), |act, ctx| {
                act.ivr_timer = None;
                if act.phase == Phase::Ivr {
                    let now = act.shared.now().0;
                    if let Some(s) = act.ivr.as_mut() {
                        s.on_timeout(now);
                    }
                    act.run_ivr(ctx);
                }
            }));
        }
    }

    fn enqueue(
        &mut self,
        language: &str,
        topic: Option<String>,
        queue: &str,
        ctx: &mut Context<Self>,
    ) {
        let Some(qid) = self.shared.model.queue(queue) else {
            tracing::error!(call = %self.call_ref, queue, "IVR routed to an unknown queue");
            self.leg.hangup();
            self.finish(CallOutcome::Failed, "router", ctx);
            return;
        };
        self.ivr = None;
        if let Some(h) = self.ivr_timer.take() {
            ctx.cancel_future(h);
        }
        self.phase = Phase::Queued;
        self.queue = Some(qid);
        self.enqueued_at = Some(self.shared.now());
        let priority = self
            .shared
            .config
            .queues
            .get(qid.0 as usize)
            .map(|q| q.priority)
            .unwrap_or(0);
        self.shared.events.emit(EventKind::CallEnqueued {
            call: self.call_ref.clone(),
            tenant: self.tenant_name.clone(),
            queue: queue.to_string(),
            language: language.to_string(),
            topic: topic.clone(),
            priority,
        });
        self.acd.do_send(Enqueue {
            call: self.id,
            addr: ctx.address(),
            queue: qid,
            priority,
            skills: self.shared.model.topic_skill(topic.as_deref()),
        });
    }

    fn ring(
        &mut self,
        operator: OperatorId,
        ext: String,
        binding: Option<ContactBinding>,
        ctx: &mut Context<Self>,
    ) {
        let attempt = self.next_attempt;
        self.next_attempt += 1;
        let decline = |act: &mut CallActor, status: u16| {
            act.shared.events.emit(EventKind::OfferDeclined {
                call: act.call_ref.clone(),
                operator: act.shared.model.operator_ext(operator).to_string(),
                status,
            });
            act.acd.do_send(Feed(Input::Declined {
                call: act.id,
                operator,
            }));
        };
        let (Some(binding), Some(sip)) = (binding, self.shared.sip.get()) else {
            decline(self, 480);
            return;
        };
        let port = match self.shared.ports.allocate() {
            Ok(p) => p,
            Err(_) => {
                decline(self, 503);
                return;
            }
        };
        let offer = sdp::offer(
            self.shared.config.media.rtp_ip,
            port.addr().port(),
            self.id.0 * 1000 + attempt,
        );
        let recipient = ctx.address().recipient::<LegMsg>();
        match sip.call_operator(&binding, &self.caller, offer, attempt, recipient) {
            Ok(leg) => {
                self.offers.insert(
                    operator,
                    Offer {
                        attempt,
                        ext,
                        leg: Some(leg),
                        _port: Some(port),
                    },
                );
            }
            Err(e) => {
                tracing::debug!(call = %self.call_ref, error = %e, "cannot ring operator");
                decline(self, 503);
            }
        }
    }

    fn offer_by_attempt(&self, attempt: u64) -> Option<OperatorId> {
        self.offers
            .iter()
            .find(|(_, o)| o.attempt == attempt)
            .map(|(op, _)| *op)
    }

    fn drop_all_offers(&mut self) {
        for (_, offer) in self.offers.drain() {
            if let Some(leg) = offer.leg {
                leg.hangup();
            }
        }
    }
}

impl Actor for CallActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.shared.register_call(&self.call_ref, ctx.address());
        let shared = self.shared.clone();
        let tenant = &shared.config.tenants[self.tenant];
        if !tenant.is_open(jiff::Timestamp::now()) {
            // C3: outside working hours. With the media engine this plays
            // the hours announcement before hanging up.
            self.leg.reject(480);
            self.finish(CallOutcome::Closed, "router", ctx);
            return;
        }
        if !self.answer_caller(ctx) {
            return;
        }
        let now = self.shared.now().0;
        self.ivr = Some(IvrSession::start(&tenant.ivr, now));
        self.run_ivr(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.shared.unregister_call(&self.call_ref);
    }
}

impl Handler<LegMsg> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: LegMsg, ctx: &mut Context<Self>) {
        if self.phase == Phase::Done {
            // A late event for a finished call: make sure no leg lingers.
            if let LegEvent::OperatorAnswered { attempt } = msg.0 {
                if let Some(op) = self.offer_by_attempt(attempt) {
                    if let Some(o) = self.offers.remove(&op) {
                        if let Some(l) = o.leg {
                            l.hangup();
                        }
                    }
                }
            }
            return;
        }
        match msg.0 {
            LegEvent::CallerConfirmed => {}
            LegEvent::CallerDtmf { digit, via } => {
                self.shared.events.emit(EventKind::DtmfReceived {
                    call: self.call_ref.clone(),
                    digit,
                    via: via.into(),
                });
                if self.phase == Phase::Ivr {
                    let now = self.shared.now().0;
                    if let Some(s) = self.ivr.as_mut() {
                        s.on_digit(now, digit);
                    }
                    self.run_ivr(ctx);
                }
            }
            LegEvent::CallerGone { cause } => match self.phase {
                Phase::Ivr => self.finish(CallOutcome::Abandoned, "caller", ctx),
                Phase::Queued => {
                    self.drop_all_offers();
                    self.acd.do_send(Feed(Input::CallerLeft { call: self.id }));
                    self.finish(CallOutcome::Abandoned, "caller", ctx);
                }
                Phase::Talking => {
                    if let Some((_, o)) = &self.talking_with {
                        if let Some(l) = &o.leg {
                            l.hangup();
                        }
                    }
                    self.acd.do_send(Feed(Input::CallEnded { call: self.id }));
                    tracing::debug!(call = %self.call_ref, cause, "caller hung up");
                    self.finish(CallOutcome::Answered, "caller", ctx);
                }
                Phase::Done => {}
            },
            LegEvent::OperatorRinging { .. } => {}
            LegEvent::OperatorAnswered { attempt } => {
                let Some(op) = self.offer_by_attempt(attempt) else {
                    return;
                };
                if self.phase != Phase::Queued {
                    if let Some(o) = self.offers.remove(&op) {
                        if let Some(l) = o.leg {
                            l.hangup();
                        }
                    }
                    return;
                }
                let offer = self.offers.remove(&op).expect("found above");
                self.phase = Phase::Talking;
                let now = self.shared.now();
                self.answered_at = Some(now);
                let wait_ms = self
                    .enqueued_at
                    .map(|e| now.0.saturating_sub(e.0))
                    .unwrap_or(0);
                self.shared.events.emit(EventKind::CallAnswered {
                    call: self.call_ref.clone(),
                    queue: self
                        .queue
                        .map(|q| self.shared.model.queue_name(q).to_string())
                        .unwrap_or_default(),
                    operator: offer.ext.clone(),
                    wait_ms,
                });
                self.talking_with = Some((op, offer));
                self.acd.do_send(Feed(Input::Answered {
                    call: self.id,
                    operator: op,
                }));
            }
            LegEvent::OperatorFailed { attempt, status } => {
                let Some(op) = self.offer_by_attempt(attempt) else {
                    return; // an offer we withdrew ourselves (487 after CANCEL)
                };
                self.offers.remove(&op);
                self.shared.events.emit(EventKind::OfferDeclined {
                    call: self.call_ref.clone(),
                    operator: self.shared.model.operator_ext(op).to_string(),
                    status,
                });
                self.acd.do_send(Feed(Input::Declined {
                    call: self.id,
                    operator: op,
                }));
            }
            LegEvent::OperatorGone { attempt, cause } => {
                let talking = matches!(&self.talking_with, Some((_, o)) if o.attempt == attempt);
                if talking && self.phase == Phase::Talking {
                    self.leg.hangup();
                    self.acd.do_send(Feed(Input::CallEnded { call: self.id }));
                    tracing::debug!(call = %self.call_ref, cause, "operator hung up");
                    self.finish(CallOutcome::Answered, "operator", ctx);
                }
            }
        }
    }
}

impl Handler<AcdDecision> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: AcdDecision, ctx: &mut Context<Self>) {
        match msg {
            AcdDecision::Offer {
                operator,
                ext,
                binding,
            } => {
                if self.phase == Phase::Queued {
                    self.ring(operator, ext, binding.map(|b| *b), ctx);
                }
            }
            AcdDecision::Withdraw { operator } => {
                if let Some(offer) = self.offers.remove(&operator) {
                    if let Some(leg) = offer.leg {
                        leg.hangup();
                    }
                }
            }
            AcdDecision::Finished(outcome) => match outcome {
                Outcome::Answered | Outcome::Abandoned => {}
                Outcome::TimedOut => {
                    self.drop_all_offers();
                    self.leg.hangup();
                    self.finish(CallOutcome::TimedOut, "router", ctx);
                }
                Outcome::Blocked => {
                    self.leg.hangup();
                    self.finish(CallOutcome::Blocked, "router", ctx);
                }
            },
            AcdDecision::AnswerRefused { operator } => {
                if let Some((op, offer)) = self.talking_with.take() {
                    if op == operator {
                        if let Some(l) = offer.leg {
                            l.hangup();
                        }
                        self.phase = Phase::Queued;
                        self.answered_at = None;
                    } else {
                        self.talking_with = Some((op, offer));
                    }
                }
            }
        }
    }
}

impl Handler<HangUpNow> for CallActor {
    type Result = ();

    fn handle(&mut self, _: HangUpNow, ctx: &mut Context<Self>) {
        match self.phase {
            Phase::Done => {}
            Phase::Talking => {
                if let Some((_, o)) = &self.talking_with {
                    if let Some(l) = &o.leg {
                        l.hangup();
                    }
                }
                self.leg.hangup();
                self.acd.do_send(Feed(Input::CallEnded { call: self.id }));
                self.finish(CallOutcome::Answered, "shutdown", ctx);
            }
            Phase::Queued => {
                self.drop_all_offers();
                self.leg.hangup();
                self.acd.do_send(Feed(Input::CallerLeft { call: self.id }));
                self.finish(CallOutcome::Abandoned, "shutdown", ctx);
            }
            Phase::Ivr => {
                self.leg.hangup();
                self.finish(CallOutcome::Abandoned, "shutdown", ctx);
            }
        }
    }
}
