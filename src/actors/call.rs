//! CallActor: one per call, the B2BUA. Greets the caller with early media (183 with SDP,
//! D5), answers when the greeting has played, runs the IVR with prompts and RFC 4733 (or
//! INFO) keys, joins the queue with hold music and announcements, rings the operators the
//! ACD chooses, bridges and records the audio on answer (D19, C9), lets a supervisor listen,
//! whisper or barge (D17), and ends every leg when either side hangs up. Every step is an
//! event; the call ends with exactly one outcome.
//!
//! The actor never touches a socket: its media session runs on the media runtime and is
//! steered with [`MediaCommand`]s; the session's [`MediaEvent`]s come back as messages.

mod answer;
mod callback_offer;

use super::acd_host::{AcdActor, Enqueue, Feed, WaitingPosition};
use super::gate::ChannelTicket;
use super::Shared;
use crate::acd::{CallId, Input, Millis, OperatorId, Outcome, QueueId};
use crate::events::{CallOutcome, EventKind};
use crate::ivr::{IvrAction, IvrSession, PromptName};
use crate::media::{
    announce, Codec, LegSpec, MediaCommand, MediaEvent, MediaHandle, MediaMsg, MonitorMode, RtpPort,
};
use crate::privacy::PhoneNumber;
use crate::sip::{sdp, CallerLeg, ContactBinding, LegEvent, LegMsg, OperatorLeg};
use actix::prelude::*;
use answer::{talking_outcome, AnswerStep, CallerAnswer};
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
    /// Left the queue for a callback: the confirmation plays, then the call ends.
    Leaving,
    /// Over; the actor stops.
    Done,
}

struct Offer {
    attempt: u64,
    ext: String,
    leg: Option<OperatorLeg>,
    port: Option<RtpPort>,
}

/// A supervisor's leg on this call (D17).
struct Monitor {
    /// The ringing attempt (0: the supervisor dialled in by feature code).
    attempt: u64,
    ext: String,
    mode: MonitorMode,
    leg: Option<MonitorLeg>,
    port: Option<RtpPort>,
    answered: bool,
}

/// How the supervisor came: rung by navbat (HTTP API) or dialling a feature code.
enum MonitorLeg {
    Rung(OperatorLeg),
    Dialled(CallerLeg),
}

impl MonitorLeg {
    fn hangup(&self) {
        match self {
            MonitorLeg::Rung(l) => l.hangup(),
            MonitorLeg::Dialled(l) => l.hangup(),
        }
    }
}

/// What the call's media is doing for the actor's decisions.
#[derive(Default)]
struct MediaState {
    session: Option<MediaHandle>,
    /// The 200 OK body, sent once the greeting (early media) has played.
    answer_sdp: Option<String>,
    /// Hang up (with this outcome) when this Play is done.
    hangup_after: Option<(u64, CallOutcome, &'static str)>,
    /// The id of the last Play sent.
    last_play: u64,
    /// Prompts are queued or playing: the IVR's digit timer waits for them.
    playing: bool,
    announce_timer: Option<SpawnHandle>,
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
    media: MediaState,
    /// When the caller's leg is answered (the 200 OK).
    answer: CallerAnswer,
    /// The caller's ACK arrived.
    caller_confirmed: bool,
    language: Option<String>,
    monitor: Option<Monitor>,
    queue: Option<QueueId>,
    enqueued_at: Option<Millis>,
    answered_at: Option<Millis>,
    offers: HashMap<OperatorId, Offer>,
    talking_with: Option<(OperatorId, Offer)>,
    next_attempt: u64,
    /// The callback offer was played (surge mode).
    callback_offered: bool,
    /// The caller pressed the callback key (one try per call).
    callback_asked: bool,
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
        let barge_in = shared.config.tenants[tenant].ivr.greeting_barge_in;
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
            media: MediaState::default(),
            answer: CallerAnswer::early(barge_in),
            caller_confirmed: false,
            language: None,
            monitor: None,
            queue: None,
            enqueued_at: None,
            answered_at: None,
            offers: HashMap::new(),
            talking_with: None,
            next_attempt: 1,
            callback_offered: false,
            callback_asked: false,
        }
    }

    fn finish(&mut self, outcome: CallOutcome, ended_by: &str, ctx: &mut Context<Self>) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        if let Some(m) = self.monitor.take() {
            if let Some(l) = m.leg {
                l.hangup();
            }
        }
        if let Some(session) = self.media.session.take() {
            session.send(MediaCommand::Stop);
        }
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

    /// Negotiates the caller's media and starts the session. With an SDP offer and a media
    /// engine the caller gets 183 with our answer (early media) and the 200 follows once the
    /// greeting has played; otherwise the caller is answered at once. `false`: the call is
    /// over (rejected).
    fn start_caller_media(&mut self, ctx: &mut Context<Self>) -> bool {
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
        let offer = self.leg.remote_offer().and_then(sdp::parse);
        let (body, codec, remote, te) = match &offer {
            Some(offer) => match sdp::answer(offer, ip, port.addr().port(), session) {
                Some((body, codec)) => (body, codec, offer.addr(), offer.telephone_event),
                None => {
                    self.leg.reject(488);
                    self.finish(CallOutcome::Failed, "router", ctx);
                    return false;
                }
            },
            // No offer in the INVITE: ours goes in the 200, the answer in the ACK; the
            // remote address is learnt from the first packet (symmetric RTP).
            None => (
                sdp::offer(ip, port.addr().port(), session),
                Codec::Pcmu,
                None,
                Some(sdp::OFFER_TELEPHONE_EVENT),
            ),
        };
        let Some(engine) = self.shared.media.get() else {
            drop(port);
            return self.answer_now(body, ctx);
        };
        let handle = engine.start_session(
            LegSpec {
                port,
                remote,
                codec,
                telephone_event: te,
            },
            ctx.address().recipient::<MediaMsg>(),
        );
        self.media.session = Some(handle);
        if offer.is_some() {
            if let Err(e) = self.leg.progress(body.clone()) {
                tracing::debug!(call = %self.call_ref, error = %e, "183 failed; answering");
                return self.answer_now(body, ctx);
            }
            self.media.answer_sdp = Some(body);
            true
        } else {
            self.answer_now(body, ctx)
        }
    }

    fn answer_now(&mut self, body: String, ctx: &mut Context<Self>) -> bool {
        if let Err(e) = self.leg.answer(body) {
            tracing::warn!(call = %self.call_ref, error = %e, "answer failed");
            self.finish(CallOutcome::Failed, "router", ctx);
            return false;
        }
        self.answer.mark_answered();
        true
    }

    /// Sends the 200 OK that ends the early media (see [`answer`] for when).
    fn answer_caller(&mut self, ctx: &mut Context<Self>) {
        if let Some(body) = self.media.answer_sdp.take() {
            self.answer_now(body, ctx);
        }
    }

    /// The clips of prompt `name` in `language`, or Uzbek then Russian when `None`.
    fn clips(&self, name: &str, language: Option<&str>) -> Vec<crate::media::prompts::Clip> {
        let Some(engine) = self.shared.media.get() else {
            return Vec::new();
        };
        let languages: Vec<&str> = match language {
            Some(l) => vec![l],
            None => crate::config::SUPPORTED_LANGUAGES.to_vec(),
        };
        languages
            .into_iter()
            .filter_map(|l| match engine.prompts.clip(&self.tenant_name, l, name) {
                Ok(c) => Some(c),
                Err(e) => {
                    if e.is_news() {
                        tracing::warn!(call = %self.call_ref, error = %e, "prompt not played");
                    }
                    None
                }
            })
            .collect()
    }

    /// Queues prompts; returns the Play id, or `None` without a media session.
    fn play(&mut self, clips: Vec<crate::media::prompts::Clip>) -> Option<u64> {
        let session = self.media.session.as_ref()?;
        self.media.last_play += 1;
        let id = self.media.last_play;
        session.send(MediaCommand::Play { clips, id });
        self.media.playing = true;
        Some(id)
    }

    fn run_ivr(&mut self, ctx: &mut Context<Self>) {
        while let Some(action) = self.ivr.as_mut().and_then(|s| s.poll_action()) {
            match action {
                IvrAction::Play(prompt) => {
                    let stem = self
                        .ivr
                        .as_ref()
                        .map_or(prompt.name.file_stem(), |s| s.prompt_stem(prompt.name));
                    let clips = self.clips(stem, prompt.language.as_deref());
                    let id = self.play(clips);
                    if let (PromptName::Greeting, Some(id)) = (prompt.name, id) {
                        self.answer.greeting_queued(id);
                    }
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
                    let outcome = match reason {
                        crate::ivr::HangupReason::SelfService { .. } => CallOutcome::Deflected,
                        _ => CallOutcome::IvrHangup,
                    };
                    if self.media.playing && self.media.session.is_some() {
                        // Say goodbye (or the self-service information) first.
                        self.media.hangup_after = Some((self.media.last_play, outcome, "ivr"));
                        return;
                    }
                    self.leg.hangup();
                    self.finish(outcome, "ivr", ctx);
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
        if self.media.playing {
            return; // armed again when the prompts have played
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
        self.language = Some(language.to_string());
        self.enqueued_at = Some(self.shared.now());
        self.start_waiting_media(ctx);
        self.arm_callback_offer(ctx);
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
                        port: Some(port),
                    },
                );
            }
            Err(e) => {
                tracing::debug!(call = %self.call_ref, error = %e, "cannot ring operator");
                decline(self, 503);
            }
        }
    }

    /// In the queue: "please wait", then hold music, and the place/expected-wait
    /// announcement every `media.announce_every`.
    fn start_waiting_media(&mut self, ctx: &mut Context<Self>) {
        let shared = self.shared.clone();
        let Some(engine) = shared.media.get() else {
            return;
        };
        let language = self.language.clone();
        let clips = self.clips("please-wait", language.as_deref());
        self.play(clips);
        match engine.prompts.music() {
            Ok(m) => {
                if let Some(s) = &self.media.session {
                    s.send(MediaCommand::Music(Some(m)));
                }
            }
            Err(e) if e.is_news() => {
                tracing::warn!(call = %self.call_ref, error = %e, "no hold music")
            }
            Err(_) => {}
        }
        if let Some(every) = self.shared.config.media.announce_every {
            self.media.announce_timer = Some(ctx.run_interval(every, |act, ctx| {
                act.announce(ctx);
            }));
        }
    }

    fn stop_waiting_media(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.media.announce_timer.take() {
            ctx.cancel_future(h);
        }
    }

    /// Asks the ACD where the call stands and plays the announcement.
    fn announce(&mut self, ctx: &mut Context<Self>) {
        if self.phase != Phase::Queued || self.media.playing {
            return;
        }
        let handle_secs = self.shared.config.media.average_handle.as_secs();
        self.acd
            .send(WaitingPosition(self.id))
            .into_actor(self)
            .map(move |res, act, _| {
                let Ok(Some((position, serving))) = res else {
                    return;
                };
                if act.phase != Phase::Queued {
                    return;
                }
                let wait = announce::expected_wait_secs(position, serving, handle_secs);
                let language = act.language.clone();
                let clips: Vec<_> = announce::announcement(position, wait)
                    .iter()
                    .flat_map(|name| act.clips(name, language.as_deref()))
                    .collect();
                act.play(clips);
            })
            .wait(ctx);
    }

    /// The operator answered: relay and record the audio.
    fn bridge(&mut self, port: Option<RtpPort>, answer: Option<String>, ctx: &mut Context<Self>) {
        self.stop_waiting_media(ctx);
        self.media.playing = false;
        let (Some(engine), Some(session), Some(port)) =
            (self.shared.media.get(), self.media.session.as_ref(), port)
        else {
            return;
        };
        let remote = answer.as_deref().and_then(sdp::parse);
        let leg = LegSpec {
            port,
            remote: remote.as_ref().and_then(|r| r.addr()),
            codec: remote
                .as_ref()
                .and_then(|r| r.codec())
                .unwrap_or(Codec::Pcmu),
            telephone_event: remote.as_ref().and_then(|r| r.telephone_event),
        };
        let recording = super::open_recording(
            &engine.recorder,
            &self.shared.events,
            &self.call_ref,
            &self.tenant_name,
        );
        session.send(MediaCommand::Bridge {
            operator: leg,
            recording: Some(recording),
        });
    }

    /// Rings a supervisor to listen, whisper or barge (D17); changes the mode when one is
    /// already on the call.
    fn start_monitor(
        &mut self,
        ext: &str,
        mode: MonitorMode,
        ctx: &mut Context<Self>,
    ) -> Result<(), MonitorError> {
        if self.phase != Phase::Talking {
            return Err(MonitorError::NotTalking);
        }
        if let Some(m) = self.monitor.as_mut() {
            if m.ext == ext {
                m.mode = mode;
                if m.answered {
                    if let Some(s) = &self.media.session {
                        s.send(MediaCommand::SetMonitorMode(mode));
                    }
                }
                return Ok(());
            }
            return Err(MonitorError::Busy);
        }
        let op = self
            .shared
            .model
            .operator(ext)
            .ok_or(MonitorError::UnknownSupervisor)?;
        let binding = self
            .shared
            .presence
            .binding(op)
            .ok_or(MonitorError::NotRegistered)?;
        let sip = self.shared.sip.get().ok_or(MonitorError::NoMedia)?;
        if self.media.session.is_none() {
            return Err(MonitorError::NoMedia);
        }
        let port = self
            .shared
            .ports
            .allocate()
            .map_err(|_| MonitorError::NoPort)?;
        let attempt = self.next_attempt;
        self.next_attempt += 1;
        let offer = sdp::offer(
            self.shared.config.media.rtp_ip,
            port.addr().port(),
            self.id.0 * 1000 + attempt,
        );
        let recipient = ctx.address().recipient::<LegMsg>();
        let leg = sip
            .call_operator(&binding, &self.caller, offer, attempt, recipient)
            .map_err(|_| MonitorError::NotRegistered)?;
        self.monitor = Some(Monitor {
            attempt,
            ext: ext.to_string(),
            mode,
            leg: Some(MonitorLeg::Rung(leg)),
            port: Some(port),
            answered: false,
        });
        Ok(())
    }

    fn on_media(&mut self, event: MediaEvent, ctx: &mut Context<Self>) {
        match event {
            MediaEvent::Played { id, idle } => {
                if self.answer.on_played(id) == AnswerStep::Answer {
                    self.answer_caller(ctx);
                    if self.phase == Phase::Done {
                        return;
                    }
                }
                if let Some((after, outcome, by)) = self.media.hangup_after {
                    if after == id {
                        self.media.hangup_after = None;
                        match outcome {
                            CallOutcome::Closed => self.leg.reject(480),
                            _ => self.leg.hangup(),
                        }
                        self.finish(outcome, by, ctx);
                        return;
                    }
                }
                if id == self.media.last_play && idle {
                    self.media.playing = false;
                    if self.phase == Phase::Ivr {
                        let now = self.shared.now().0;
                        if let Some(s) = self.ivr.as_mut() {
                            s.on_playback_finished(now);
                        }
                        self.arm_ivr_timer(ctx);
                    }
                }
            }
            MediaEvent::Dtmf { digit } => self.on_digit(digit, "rfc4733", ctx),
            MediaEvent::Ended { caller, operator } => {
                tracing::debug!(call = %self.call_ref, ?caller, ?operator, "media ended");
            }
        }
    }

    fn on_digit(&mut self, digit: char, via: &'static str, ctx: &mut Context<Self>) {
        self.shared.events.emit(EventKind::DtmfReceived {
            call: self.call_ref.clone(),
            digit,
            via: via.into(),
        });
        if self.phase == Phase::Queued {
            return self.on_queued_digit(digit, ctx);
        }
        if self.phase != Phase::Ivr || self.media.hangup_after.is_some() {
            return;
        }
        match self.answer.on_key() {
            AnswerStep::CutGreetingAndAnswer => {
                // Keyed ahead during the greeting (early media): the greeting is cut and the
                // call answered now, so the IVR's next prompts are heard in an answered call.
                self.stop_prompts();
                self.answer_caller(ctx);
                if self.phase == Phase::Done {
                    return;
                }
            }
            AnswerStep::Answer | AnswerStep::Wait => {
                if self.answer.answered() && self.media.playing {
                    // Barge-in: the caller knows what to press; stop talking.
                    self.stop_prompts();
                }
            }
        }
        let now = self.shared.now().0;
        if let Some(s) = self.ivr.as_mut() {
            s.on_digit(now, digit);
        }
        self.run_ivr(ctx);
    }

    fn stop_prompts(&mut self) {
        if let Some(s) = &self.media.session {
            s.send(MediaCommand::StopPrompts);
        }
        self.media.playing = false;
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
            // C3: outside working hours: the hours announcement as early media (where the
            // caller offered SDP), then 480, so the call is never answered nor charged.
            if self.shared.media.get().is_some() && self.leg.remote_offer().is_some() {
                if !self.start_caller_media(ctx) {
                    return;
                }
                if self.answer.answered() {
                    // Could not send 183: nothing can be heard before an answer.
                    self.leg.hangup();
                    self.finish(CallOutcome::Closed, "router", ctx);
                    return;
                }
                self.media.answer_sdp = None;
                let clips = self.clips("closed", None);
                if let Some(id) = self.play(clips) {
                    self.media.hangup_after = Some((id, CallOutcome::Closed, "router"));
                    return;
                }
            }
            self.leg.reject(480);
            self.finish(CallOutcome::Closed, "router", ctx);
            return;
        }
        if !self.start_caller_media(ctx) {
            return;
        }
        let now = self.shared.now().0;
        let surge = shared
            .model
            .surge_on(crate::acd::TenantId(self.tenant as u16))
            .then(|| crate::ivr::SurgeMenu::from_config(&tenant.surge));
        self.ivr = Some(IvrSession::start_in_surge(&tenant.ivr, surge, now));
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
            if let LegEvent::OperatorAnswered { attempt, .. } = msg.0 {
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
            LegEvent::CallerConfirmed => self.caller_confirmed = true,
            LegEvent::CallerDtmf { digit, via } => self.on_digit(digit, via, ctx),
            LegEvent::CallerGone { cause } => match self.phase {
                Phase::Ivr => match self.media.hangup_after {
                    // Hung up during the goodbye or the closed announcement.
                    Some((_, outcome, _)) => self.finish(outcome, "caller", ctx),
                    None => self.finish(CallOutcome::Abandoned, "caller", ctx),
                },
                Phase::Queued => {
                    self.drop_all_offers();
                    self.acd.do_send(Feed(Input::CallerLeft { call: self.id }));
                    self.finish(CallOutcome::Abandoned, "caller", ctx);
                }
                // Hung up during the callback confirmation: the callback stands.
                Phase::Leaving => self.finish(CallOutcome::CallbackRequested, "caller", ctx),
                Phase::Talking => {
                    if let Some((_, o)) = &self.talking_with {
                        if let Some(l) = &o.leg {
                            l.hangup();
                        }
                    }
                    self.acd.do_send(Feed(Input::CallEnded { call: self.id }));
                    tracing::debug!(call = %self.call_ref, cause, "caller hung up");
                    let outcome =
                        talking_outcome(self.answer.answered(), self.caller_confirmed, Some(cause));
                    self.finish(outcome, "caller", ctx);
                }
                Phase::Done => {}
            },
            LegEvent::OperatorRinging { .. } => {}
            LegEvent::CallerHold { held, media } => {
                self.renegotiated(crate::media::HoldBy::Caller, media);
                self.on_hold(crate::media::HoldBy::Caller, held);
            }
            LegEvent::OperatorHold {
                attempt,
                held,
                media,
            } => {
                let talking = matches!(&self.talking_with, Some((_, o)) if o.attempt == attempt);
                if talking {
                    self.renegotiated(crate::media::HoldBy::Operator, media);
                    self.on_hold(crate::media::HoldBy::Operator, held);
                }
            }
            LegEvent::OperatorAnswered {
                attempt,
                sdp: answer,
            } => {
                if let Some(m) = self.monitor.as_mut().filter(|m| m.attempt == attempt) {
                    m.answered = true;
                    let remote = answer.as_deref().and_then(sdp::parse);
                    if let (Some(port), Some(session)) = (m.port.take(), &self.media.session) {
                        session.send(MediaCommand::Monitor {
                            leg: LegSpec {
                                port,
                                remote: remote.as_ref().and_then(|r| r.addr()),
                                codec: remote
                                    .as_ref()
                                    .and_then(|r| r.codec())
                                    .unwrap_or(Codec::Pcmu),
                                telephone_event: remote.as_ref().and_then(|r| r.telephone_event),
                            },
                            mode: m.mode,
                        });
                    }
                    self.shared.events.emit(EventKind::MonitorStarted {
                        call: self.call_ref.clone(),
                        supervisor: m.ext.clone(),
                        mode: m.mode,
                    });
                    return;
                }
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
                if self.answer.on_operator_answered() == AnswerStep::Answer {
                    // The caller is answered before the bridge, never later: a greeting
                    // still playing is cut by the bridge.
                    self.answer_caller(ctx);
                    if self.phase == Phase::Done {
                        // The 200 could not be sent: the call failed; free the operator.
                        self.drop_all_offers();
                        self.acd.do_send(Feed(Input::CallerLeft { call: self.id }));
                        return;
                    }
                }
                let mut offer = self.offers.remove(&op).expect("found above");
                self.phase = Phase::Talking;
                self.bridge(offer.port.take(), answer, ctx);
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
            LegEvent::OperatorFailed { attempt, .. } | LegEvent::OperatorGone { attempt, .. }
                if self.monitor.as_ref().is_some_and(|m| m.attempt == attempt) =>
            {
                self.monitor = None;
                if let Some(s) = &self.media.session {
                    s.send(MediaCommand::EndMonitor);
                }
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
                    let outcome =
                        talking_outcome(self.answer.answered(), self.caller_confirmed, None);
                    self.finish(outcome, "operator", ctx);
                }
            }
        }
    }
}

impl Handler<AcdDecision> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: AcdDecision, ctx: &mut Context<Self>) {
        if let AcdDecision::Finished(Outcome::TimedOut | Outcome::Blocked) = msg {
            self.stop_waiting_media(ctx);
        }
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
                        if let Some(s) = &self.media.session {
                            s.send(MediaCommand::Unbridge);
                        }
                        self.start_waiting_media(ctx);
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
                let outcome = talking_outcome(self.answer.answered(), self.caller_confirmed, None);
                self.finish(outcome, "shutdown", ctx);
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
            Phase::Leaving => {
                self.leg.hangup();
                self.finish(CallOutcome::CallbackRequested, "shutdown", ctx);
            }
        }
    }
}

impl Handler<MediaMsg> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: MediaMsg, ctx: &mut Context<Self>) {
        if self.phase != Phase::Done {
            self.on_media(msg.0, ctx);
        }
    }
}

/// Why a supervisor cannot join a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    /// No such call in progress.
    #[error("no such call in progress")]
    UnknownCall,
    /// The call is not (yet) between a caller and an operator.
    #[error("the call is not in conversation with an operator")]
    NotTalking,
    /// Another supervisor is on the call.
    #[error("another supervisor is already on this call")]
    Busy,
    /// The supervisor's extension is not configured.
    #[error("no operator with that extension; supervisors use their operator extension")]
    UnknownSupervisor,
    /// The supervisor's softphone is not registered.
    #[error("the supervisor's softphone is not registered")]
    NotRegistered,
    /// The media engine is not running.
    #[error("the media engine is not running")]
    NoMedia,
    /// No RTP port is free.
    #[error("no free RTP port")]
    NoPort,
    /// The supervisor's phone offered no SDP we can answer (G.711 over RTP/AVP).
    #[error("the supervisor's SDP offer has no usable audio")]
    UnusableOffer,
}

/// A supervisor asks to listen to, whisper to or barge into this call (D17).
#[derive(Message, Debug)]
#[rtype(result = "Result<(), MonitorError>")]
pub struct StartMonitor {
    /// The supervisor's extension (their softphone is rung).
    pub supervisor: String,
    /// What they do.
    pub mode: MonitorMode,
}

impl Handler<StartMonitor> for CallActor {
    type Result = Result<(), MonitorError>;

    fn handle(&mut self, msg: StartMonitor, ctx: &mut Context<Self>) -> Self::Result {
        self.start_monitor(&msg.supervisor, msg.mode, ctx)
    }
}

/// Whether this call is in conversation with operator `.0` (an extension).
#[derive(Message, Debug)]
#[rtype(result = "bool")]
pub struct OnCallWith(pub String);

impl Handler<OnCallWith> for CallActor {
    type Result = bool;

    fn handle(&mut self, msg: OnCallWith, _: &mut Context<Self>) -> bool {
        self.phase == Phase::Talking
            && self
                .talking_with
                .as_ref()
                .is_some_and(|(_, o)| o.ext == msg.0)
    }
}

/// A supervisor dialled a feature code for this call's operator (D17): answer their leg and
/// mix them in.
#[derive(Message)]
#[rtype(result = "Result<(), MonitorError>")]
pub struct JoinDialledMonitor {
    /// The supervisor's (authenticated) extension.
    pub supervisor: String,
    /// What they do.
    pub mode: MonitorMode,
    /// Their leg, not yet answered.
    pub leg: CallerLeg,
}

impl Handler<JoinDialledMonitor> for CallActor {
    type Result = Result<(), MonitorError>;

    fn handle(&mut self, msg: JoinDialledMonitor, _: &mut Context<Self>) -> Self::Result {
        self.join_dialled_monitor(msg)
    }
}

/// The supervisor who dialled in hung up.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MonitorLegGone {
    /// Their extension.
    pub supervisor: String,
}

impl Handler<MonitorLegGone> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: MonitorLegGone, _: &mut Context<Self>) {
        let dialled = self.monitor.as_ref().is_some_and(|m| {
            m.ext == msg.supervisor && matches!(m.leg, Some(MonitorLeg::Dialled(_)))
        });
        if dialled {
            self.monitor = None;
            if let Some(s) = &self.media.session {
                s.send(MediaCommand::EndMonitor);
            }
        }
    }
}

impl CallActor {
    /// Answers a supervisor's feature-code INVITE with our SDP and adds their leg to the
    /// media session in `mode`.
    fn join_dialled_monitor(&mut self, msg: JoinDialledMonitor) -> Result<(), MonitorError> {
        if self.phase != Phase::Talking {
            return Err(MonitorError::NotTalking);
        }
        if self.monitor.is_some() {
            return Err(MonitorError::Busy);
        }
        let session = self.media.session.as_ref().ok_or(MonitorError::NoMedia)?;
        let offer = msg
            .leg
            .remote_offer()
            .and_then(sdp::parse)
            .ok_or(MonitorError::UnusableOffer)?;
        let port = self
            .shared
            .ports
            .allocate()
            .map_err(|_| MonitorError::NoPort)?;
        let (body, codec) = sdp::answer(
            &offer,
            self.shared.config.media.rtp_ip,
            port.addr().port(),
            self.id.0 * 1000 + 999,
        )
        .ok_or(MonitorError::UnusableOffer)?;
        msg.leg.answer(body).map_err(|e| {
            tracing::debug!(call = %self.call_ref, error = %e, "supervisor answer failed");
            MonitorError::NoMedia
        })?;
        session.send(MediaCommand::Monitor {
            leg: LegSpec {
                port,
                remote: offer.addr(),
                codec,
                telephone_event: offer.telephone_event,
            },
            mode: msg.mode,
        });
        self.shared.events.emit(EventKind::MonitorStarted {
            call: self.call_ref.clone(),
            supervisor: msg.supervisor.clone(),
            mode: msg.mode,
        });
        self.monitor = Some(Monitor {
            attempt: 0,
            ext: msg.supervisor,
            mode: msg.mode,
            leg: Some(MonitorLeg::Dialled(msg.leg)),
            port: None,
            answered: true,
        });
        Ok(())
    }
}

impl CallActor {
    /// A leg's re-offer was answered (by the SIP layer, RFC 3264): its media follows the
    /// new codec and address at once, in any phase of the call.
    fn renegotiated(&mut self, side: crate::media::HoldBy, media: crate::sip::sdp::Negotiated) {
        if let Some(session) = &self.media.session {
            session.send(MediaCommand::Renegotiate {
                side,
                codec: media.codec,
                telephone_event: media.telephone_event,
                remote: media.remote,
            });
        }
    }

    /// A side of the bridge put the call on hold or resumed it (re-INVITE, answered per
    /// RFC 3264 by the SIP layer): the held party hears the hold music instead of silence,
    /// and the recording goes on. Outside a conversation a hold changes nothing: the caller
    /// hears prompts or music anyway.
    fn on_hold(&mut self, by: crate::media::HoldBy, held: bool) {
        if self.phase != Phase::Talking {
            return;
        }
        // Kept in the timeline for the monthly report's hold time, media or not.
        self.shared.events.emit(EventKind::CallHold {
            call: self.call_ref.clone(),
            by: match by {
                crate::media::HoldBy::Caller => "caller",
                crate::media::HoldBy::Operator => "operator",
            }
            .to_owned(),
            held,
        });
        let (Some(session), Some(engine)) = (&self.media.session, self.shared.media.get()) else {
            return;
        };
        let music = if held {
            match engine.prompts.music() {
                Ok(m) => Some(m),
                Err(e) => {
                    if e.is_news() {
                        tracing::warn!(call = %self.call_ref, error = %e, "no hold music");
                    }
                    None
                }
            }
        } else {
            None
        };
        tracing::debug!(call = %self.call_ref, ?by, held, "hold");
        session.send(MediaCommand::Hold { by, music });
    }
}
