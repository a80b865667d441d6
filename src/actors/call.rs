//! CallActor: one per call, the B2BUA's driver. The decisions (phases, IVR, queue, offers,
//! answer, hold, listen-in, outcome) live in the pure [`CallCore`]; this actor turns leg
//! messages, media messages, ACD decisions and its one timer into the core's inputs, and the
//! core's actions into SIP, media, ACD and event messages.
//!
//! It greets the caller with early media (183 with SDP, D5), answers when the greeting has
//! played, plays the IVR's prompts and hears keys (RFC 4733 or INFO), queues the call with
//! hold music and announcements, rings the operators the ACD chooses, bridges and records the
//! audio on answer (D19, C9), lets a supervisor listen, whisper or barge (D17, see
//! [`listen`]), and ends every leg when either side hangs up.
//!
//! The actor never touches a socket: its media session runs on the media runtime and is
//! steered with [`MediaCommand`]s; the session's [`MediaEvent`]s come back as messages.
//! Its mailbox is bounded ([`CALL_MAILBOX_CAPACITY`]); the SIP legs shed only what may be
//! lost (see `sip::legs`).

mod listen;

use super::acd_host::{
    AcdActor, AskDoorOffer, DoorClosed, Enqueue, Feed, LeftForSms, RequestCallback, WaitingPosition,
};
use super::gate::ChannelTicket;
use super::Shared;
use crate::acd::{CallId, Millis, OperatorId, Outcome, TenantId};
use crate::call::{
    AcdRequest, Action, Arrival, Attempt, CallCore, CallSetup, CallbackOfferSpec, CallerMedia,
    DoorSpec, Input, PlayId, Prompt,
};
use crate::callback::door::{CallbackWhen, Offer as DoorOffer};
use crate::ivr::IvrSession;
use crate::media::{
    announce, Codec, LegSpec, MediaCommand, MediaEvent, MediaHandle, MediaMsg, RtpPort,
};
use crate::privacy::PhoneNumber;
use crate::sip::{sdp, CallerLeg, ContactBinding, LegEvent, LegMsg, OperatorLeg};
use actix::prelude::*;
use listen::MonitorLeg;
use std::collections::HashMap;
use std::sync::Arc;

pub use crate::call::MonitorError;
pub use listen::{JoinDialledMonitor, MonitorLegGone, StartMonitor};

/// The call actor's mailbox capacity: what the SIP legs' lossy events (keys by INFO,
/// re-offers, ringing) may queue before they are shed and counted. A person keys a few
/// digits a second; only a flood fills it.
pub const CALL_MAILBOX_CAPACITY: usize = 256;

/// A phone rung for the call: its leg, and its RTP port until the bridge takes it.
struct Phone {
    leg: Option<OperatorLeg>,
    port: Option<RtpPort>,
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
    /// The channel this call holds (D6), given back when the call is finished, not when
    /// the actor is dropped (found by `loadgen run --surge`: calls were refused at the door
    /// while fewer calls than channels were in progress).
    ticket: Option<ChannelTicket>,
    core: CallCore,
    /// The core's next deadline and the timer armed for it.
    timer: super::deadline::DeadlineTimer,
    session: Option<MediaHandle>,
    /// The 200 OK body, sent when the core answers the caller (after early media).
    answer_sdp: Option<String>,
    phones: HashMap<Attempt, Phone>,
    /// Where the phones of offers not yet rung are (taken by the core's `Ring`).
    bindings: HashMap<OperatorId, Option<ContactBinding>>,
    monitor_leg: Option<MonitorLeg>,
    monitor_port: Option<RtpPort>,
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
    /// The call went back to the head of its queue after this operator missed it.
    Requeued {
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
    /// The door policy's offer at queue entry (surge, `[tenant.surge.door]`): the expected
    /// wait is long.
    DoorOffer(DoorOffer),
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
        let config = &shared.config.tenants[tenant];
        let core = CallCore::new(CallSetup {
            call_ref: call_ref.clone(),
            tenant: config.id.clone(),
            greeting_barge_in: config.ivr.greeting_barge_in,
            announce_every_ms: shared
                .config
                .media
                .announce_every
                .map(|d| d.as_millis() as u64),
            callback_offer: config.surge.callback.map(|c| CallbackOfferSpec {
                after_ms: c.offer_after.as_millis() as u64,
                digit: c.digit.as_char(),
            }),
            door: config.surge.door.map(|d| DoorSpec {
                sms_digit: d.sms_digit.as_char(),
                choice_window_ms: d.choice_window.as_millis() as u64,
            }),
        });
        CallActor {
            id,
            call_ref,
            tenant_name: config.id.clone(),
            tenant,
            caller,
            leg,
            shared,
            acd,
            ticket: Some(ticket),
            core,
            timer: Default::default(),
            session: None,
            answer_sdp: None,
            phones: HashMap::new(),
            bindings: HashMap::new(),
            monitor_leg: None,
            monitor_port: None,
        }
    }

    /// One input to the core, then everything it decided.
    fn feed(&mut self, input: Input, ctx: &mut Context<Self>) {
        let now = self.shared.now();
        self.core.handle_input(now, input);
        self.drive(ctx);
    }

    /// Does the core's actions, then arms the timer for its next deadline.
    fn drive(&mut self, ctx: &mut Context<Self>) {
        while let Some(action) = self.core.poll_action() {
            self.perform(action, ctx);
        }
        self.rearm(ctx);
    }

    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = self.core.poll_timeout();
        let now = self.shared.now();
        self.timer.rearm(next, now, ctx, |act: &mut Self, ctx| {
            act.timer.fired();
            let now = act.shared.now();
            let surge = act.shared.model.surge_on(TenantId(act.tenant as u16));
            act.core.handle_timeout(now, surge);
            act.drive(ctx);
        });
    }

    /// An answer to an action, fed while the actions are being done: its own actions
    /// follow in the same drain.
    fn answer(&mut self, input: Input) {
        let now = self.shared.now();
        self.core.handle_input(now, input);
    }

    fn perform(&mut self, action: Action, ctx: &mut Context<Self>) {
        match action {
            Action::Emit(kind) => {
                self.shared.events.emit(kind);
            }
            Action::AnswerCaller => {
                let ok = match self.answer_sdp.take() {
                    Some(body) => self.send_200(body),
                    None => true,
                };
                self.answer(Input::CallerAnswered { ok });
            }
            Action::HangUpCaller => self.leg.hangup(),
            Action::RejectCaller { status } => self.leg.reject(status),
            Action::Play { id, prompt } => {
                let clips = self.prompt_clips(&prompt);
                if let Some(s) = &self.session {
                    s.send(MediaCommand::Play { clips, id: id.0 });
                }
            }
            Action::StopPrompts => self.media(MediaCommand::StopPrompts),
            Action::Music(on) => self.music(on),
            Action::Route { queue } => {
                let input = match self.shared.model.queue(&queue) {
                    Some(qid) => Input::Enqueued {
                        queue: qid,
                        priority: self
                            .shared
                            .config
                            .queues
                            .get(qid.0 as usize)
                            .map(|q| q.priority)
                            .unwrap_or(0),
                        name: queue,
                    },
                    None => {
                        tracing::error!(call = %self.call_ref, queue, "IVR routed to an unknown queue");
                        Input::RouteFailed
                    }
                };
                self.answer(input);
            }
            Action::Enqueue {
                queue,
                priority,
                topic,
            } => self.acd.do_send(Enqueue {
                call: self.id,
                addr: ctx.address(),
                queue,
                priority,
                skills: self.shared.model.topic_skill(topic.as_deref()),
            }),
            Action::Acd(request) => {
                let call = self.id;
                let input = match request {
                    AcdRequest::CallerLeft => crate::acd::Input::CallerLeft { call },
                    AcdRequest::CallEnded => crate::acd::Input::CallEnded { call },
                    AcdRequest::Answered { operator } => {
                        crate::acd::Input::Answered { call, operator }
                    }
                    AcdRequest::Declined { operator } => {
                        crate::acd::Input::Declined { call, operator }
                    }
                    AcdRequest::LeftForSms => {
                        self.acd.do_send(LeftForSms(call));
                        return;
                    }
                    AcdRequest::DoorClosed => {
                        self.acd.do_send(DoorClosed(call));
                        return;
                    }
                };
                self.acd.do_send(Feed(input));
            }
            Action::Ring { operator, attempt } => {
                if let Err(status) = self.ring(operator, attempt, ctx) {
                    self.answer(Input::RingFailed { attempt, status });
                }
            }
            Action::HangUpPhone { attempt } => {
                if let Some(Phone { leg: Some(leg), .. }) = self.phones.remove(&attempt) {
                    leg.hangup();
                }
            }
            Action::Bridge { attempt, sdp } => {
                let port = self.phones.get_mut(&attempt).and_then(|p| p.port.take());
                self.bridge(port, sdp);
            }
            Action::Unbridge => self.media(MediaCommand::Unbridge),
            Action::AskPosition => self.ask_position(ctx),
            Action::RequestCallback {
                queue,
                language,
                enqueued_at,
                next_morning,
            } => self.request_callback(queue, language, enqueued_at, next_morning, ctx),
            Action::AskDoorOffer { queue } => self.ask_door_offer(queue, ctx),
            Action::Hold { by, held } => self.hold(by, held),
            Action::Renegotiate { side, media } => self.media(MediaCommand::Renegotiate {
                side,
                codec: media.codec,
                telephone_event: media.telephone_event,
                remote: media.remote,
            }),
            Action::MonitorAnswered { sdp, mode, .. } => self.monitor_answered(sdp, mode),
            Action::SetMonitorMode(mode) => self.media(MediaCommand::SetMonitorMode(mode)),
            Action::EndMonitor => {
                self.monitor_leg = None;
                self.monitor_port = None;
                self.media(MediaCommand::EndMonitor);
            }
            Action::HangUpMonitor => {
                self.monitor_port = None;
                if let Some(leg) = self.monitor_leg.take() {
                    leg.hangup();
                }
            }
            Action::StopMedia => {
                if let Some(session) = self.session.take() {
                    session.send(MediaCommand::Stop);
                }
            }
            Action::Finished => {
                self.timer.cancel(ctx);
                self.ticket = None;
                ctx.stop();
            }
        }
    }

    fn media(&self, command: MediaCommand) {
        if let Some(s) = &self.session {
            s.send(command);
        }
    }

    /// Negotiates the caller's media and starts the session. With an SDP offer and a media
    /// engine the caller gets 183 with our answer (early media) and the 200 waits for the
    /// core; otherwise the caller is answered at once.
    fn start_caller_media(&mut self, ctx: &mut Context<Self>) -> CallerMedia {
        let port = match self.shared.ports.allocate() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(call = %self.call_ref, error = %e, "no RTP port");
                self.leg.reject(503);
                return CallerMedia::Failed;
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
                    return CallerMedia::Failed;
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
            return self.answer_now(body);
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
        self.session = Some(handle);
        if offer.is_none() {
            return self.answer_now(body);
        }
        if let Err(e) = self.leg.progress(body.clone()) {
            tracing::debug!(call = %self.call_ref, error = %e, "183 failed; answering");
            return self.answer_now(body);
        }
        self.answer_sdp = Some(body);
        CallerMedia::Early
    }

    fn answer_now(&mut self, body: String) -> CallerMedia {
        if self.send_200(body) {
            CallerMedia::Answered
        } else {
            CallerMedia::Failed
        }
    }

    fn send_200(&self, body: String) -> bool {
        match self.leg.answer(body) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(call = %self.call_ref, error = %e, "answer failed");
                false
            }
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

    fn prompt_clips(&self, prompt: &Prompt) -> Vec<crate::media::prompts::Clip> {
        match prompt {
            Prompt::Ivr { stem, language } => self.clips(stem, language.as_deref()),
            Prompt::PleaseWait { language } => self.clips("please-wait", language.as_deref()),
            Prompt::Announcement {
                position,
                serving,
                language,
            } => {
                let handle_secs = self.shared.config.media.average_handle.as_secs();
                let wait = announce::expected_wait_secs(*position, *serving, handle_secs);
                announce::announcement(*position, wait)
                    .iter()
                    .flat_map(|name| self.clips(name, language.as_deref()))
                    .collect()
            }
            Prompt::CallbackOffer { digit, language } => {
                // Each language's offer whole (invitation, then its key) before the next.
                let languages: Vec<&str> = match language {
                    Some(l) => vec![l.as_str()],
                    None => crate::config::SUPPORTED_LANGUAGES.to_vec(),
                };
                let names = announce::callback_offer(*digit);
                languages
                    .iter()
                    .flat_map(|l| names.iter().flat_map(|n| self.clips(n, Some(l))))
                    .collect()
            }
            Prompt::CallbackBooked { language } => {
                self.clips("callback-booked", language.as_deref())
            }
            Prompt::DoorOffer {
                callback,
                sms_digit,
                language,
            } => {
                let languages: Vec<&str> = match language {
                    Some(l) => vec![l.as_str()],
                    None => crate::config::SUPPORTED_LANGUAGES.to_vec(),
                };
                let names = self.door_offer_names(*callback, *sms_digit);
                languages
                    .iter()
                    .flat_map(|l| names.iter().flat_map(|n| self.clips(n, Some(l))))
                    .collect()
            }
            Prompt::SmsSent { language } => self.clips("sms-sent", language.as_deref()),
            Prompt::Closed => self.clips("closed", None),
        }
    }

    /// The door offer's prompt names: the callback invitation (for today, or "tomorrow
    /// morning between <start> and <end>" o'clock for the window) and its key, then the SMS
    /// invitation and its key.
    fn door_offer_names(
        &self,
        callback: Option<(CallbackWhen, char)>,
        sms_digit: Option<char>,
    ) -> Vec<String> {
        let mut names = Vec::new();
        match callback {
            Some((CallbackWhen::Today, digit)) => {
                names.extend(announce::callback_offer(digit));
            }
            Some((CallbackWhen::NextMorning, digit)) => {
                names.push("callback-offer-morning".into());
                let window = self.shared.config.tenants[self.tenant]
                    .surge
                    .door
                    .and_then(|d| d.next_morning);
                if let Some(w) = window {
                    names.push(format!("number-{}", w.start.minutes() / 60));
                    names.push("callback-offer-morning-and".into());
                    names.push(format!("number-{}", w.end.minutes() / 60));
                }
                names.push(announce::press_key(digit));
            }
            None => {}
        }
        if let Some(digit) = sms_digit {
            names.push("sms-offer".into());
            names.push(announce::press_key(digit));
        }
        names
    }

    fn music(&self, on: bool) {
        let Some(session) = &self.session else {
            return;
        };
        if !on {
            session.send(MediaCommand::Music(None));
            return;
        }
        let Some(engine) = self.shared.media.get() else {
            return;
        };
        match engine.prompts.music() {
            Ok(m) => session.send(MediaCommand::Music(Some(m))),
            Err(e) if e.is_news() => {
                tracing::warn!(call = %self.call_ref, error = %e, "no hold music")
            }
            Err(_) => {}
        }
    }

    /// Rings an operator's phone for the offer; `Err(status)` when it cannot be rung (480:
    /// not registered or no SIP stack, 503: no port or the INVITE could not go out).
    fn ring(
        &mut self,
        operator: OperatorId,
        attempt: Attempt,
        ctx: &mut Context<Self>,
    ) -> Result<(), u16> {
        let binding = self.bindings.remove(&operator).flatten();
        let (Some(binding), Some(sip)) = (binding, self.shared.sip.get()) else {
            return Err(480);
        };
        let port = self.shared.ports.allocate().map_err(|_| 503u16)?;
        let offer = sdp::offer(
            self.shared.config.media.rtp_ip,
            port.addr().port(),
            self.id.0 * 1000 + attempt.0,
        );
        let recipient = ctx.address().recipient::<LegMsg>();
        match sip.call_operator(&binding, &self.caller, offer, attempt.0, recipient) {
            Ok(leg) => {
                self.phones.insert(
                    attempt,
                    Phone {
                        leg: Some(leg),
                        port: Some(port),
                    },
                );
                Ok(())
            }
            Err(e) => {
                tracing::debug!(call = %self.call_ref, error = %e, "cannot ring operator");
                Err(503)
            }
        }
    }

    /// Asks the ACD where the call stands; the core plays the announcement.
    fn ask_position(&mut self, ctx: &mut Context<Self>) {
        self.acd
            .send(WaitingPosition(self.id))
            .into_actor(self)
            .map(|res, act, ctx| {
                if let Ok(Some((position, serving))) = res {
                    act.feed(Input::Position { position, serving }, ctx);
                }
            })
            .wait(ctx);
    }

    /// Asks the ACD to book the callback the caller accepted (see `acd_host`).
    fn request_callback(
        &mut self,
        queue: crate::acd::QueueId,
        language: String,
        enqueued_at: Millis,
        next_morning: bool,
        ctx: &mut Context<Self>,
    ) {
        let request = RequestCallback {
            call: self.id,
            call_ref: self.call_ref.clone(),
            queue,
            number: self.caller.clone(),
            language: language.clone(),
            enqueued_at,
            next_morning,
        };
        self.acd
            .send(request)
            .into_actor(self)
            .map(move |result, act, ctx| {
                let input = match result {
                    Ok(Ok(_)) => Input::CallbackBooked {
                        audible: !act.clips("callback-booked", Some(&language)).is_empty(),
                    },
                    // Refused (the reason is an event), or the host is gone.
                    Ok(Err(_)) | Err(_) => Input::CallbackRefused,
                };
                act.feed(input, ctx);
            })
            .wait(ctx);
    }

    /// Asks the ACD host what the door policy offers now (capacity checked when the offer
    /// is made).
    fn ask_door_offer(&mut self, queue: crate::acd::QueueId, ctx: &mut Context<Self>) {
        self.acd
            .send(AskDoorOffer {
                call: self.id,
                queue,
            })
            .into_actor(self)
            .map(|result, act, ctx| {
                let offer = result.unwrap_or_default();
                act.feed(
                    Input::DoorOffer {
                        offer,
                        at_door: false,
                    },
                    ctx,
                );
            })
            .wait(ctx);
    }

    /// The operator answered: relay and record the audio.
    fn bridge(&mut self, port: Option<RtpPort>, answer: Option<String>) {
        let (Some(engine), Some(session), Some(port)) =
            (self.shared.media.get(), self.session.as_ref(), port)
        else {
            return;
        };
        let recording = super::open_recording(
            &engine.recorder,
            &self.shared.events,
            &self.call_ref,
            &self.tenant_name,
        );
        session.send(MediaCommand::Bridge {
            operator: leg_spec(port, answer.as_deref()),
            recording: Some(recording),
        });
    }

    /// A side of the bridge holds or resumes: the held party hears the hold music instead
    /// of silence, and the recording goes on.
    fn hold(&self, by: crate::media::HoldBy, held: bool) {
        let (Some(session), Some(engine)) = (&self.session, self.shared.media.get()) else {
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

/// A rung phone's leg for the media session: its answer's address and codec (PCMU when the
/// answer has none we know).
fn leg_spec(port: RtpPort, answer: Option<&str>) -> LegSpec {
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
}

impl Actor for CallActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(CALL_MAILBOX_CAPACITY);
        self.shared.register_call(&self.call_ref, ctx.address());
        let shared = self.shared.clone();
        let tenant = &shared.config.tenants[self.tenant];
        let open = tenant.is_open(jiff::Timestamp::now());
        // A closed line sets up media only to play its hours announcement as early media.
        let early_media = self.shared.media.get().is_some() && self.leg.remote_offer().is_some();
        let media = (open || early_media).then(|| self.start_caller_media(ctx));
        if !open {
            // Never answered: the announcement plays as early media, then 480.
            self.answer_sdp = None;
        }
        let ivr = (open && media.is_some_and(|m| m != CallerMedia::Failed)).then(|| {
            let surge = shared
                .model
                .surge_on(TenantId(self.tenant as u16))
                .then(|| crate::ivr::SurgeMenu::from_config(&tenant.surge));
            Box::new(IvrSession::start_in_surge(
                &tenant.ivr,
                surge,
                self.shared.now().0,
            ))
        });
        let arrival = Arrival {
            open,
            media,
            session: self.session.is_some(),
            ivr,
        };
        self.feed(Input::Arrived(arrival), ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.shared.unregister_call(&self.call_ref);
    }
}

impl Handler<LegMsg> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: LegMsg, ctx: &mut Context<Self>) {
        let input = match msg.0 {
            LegEvent::CallerConfirmed => Input::CallerConfirmed,
            LegEvent::CallerDtmf { digit, via } => Input::Digit { digit, via },
            LegEvent::CallerGone { cause } => {
                tracing::debug!(call = %self.call_ref, cause, "caller leg ended");
                Input::CallerGone { cause }
            }
            LegEvent::OperatorRinging { .. } => return,
            LegEvent::CallerHold { held, media } => Input::CallerReoffer { held, media },
            LegEvent::OperatorHold {
                attempt,
                held,
                media,
            } => Input::PhoneReoffer {
                attempt: Attempt(attempt),
                held,
                media,
            },
            LegEvent::OperatorAnswered { attempt, sdp } => Input::PhoneAnswered {
                attempt: Attempt(attempt),
                sdp,
            },
            LegEvent::OperatorFailed { attempt, status } => Input::PhoneFailed {
                attempt: Attempt(attempt),
                status,
            },
            LegEvent::OperatorGone { attempt, cause } => {
                tracing::debug!(call = %self.call_ref, cause, "operator leg ended");
                Input::PhoneGone {
                    attempt: Attempt(attempt),
                    cause,
                }
            }
        };
        self.feed(input, ctx);
    }
}

impl Handler<AcdDecision> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: AcdDecision, ctx: &mut Context<Self>) {
        let ext = |act: &Self, op: OperatorId| act.shared.model.operator_ext(op).to_string();
        let input = match msg {
            AcdDecision::Offer {
                operator,
                ext,
                binding,
            } => {
                self.bindings.insert(operator, binding.map(|b| *b));
                Input::Offered { operator, ext }
            }
            AcdDecision::Withdraw { operator } => Input::Withdrawn {
                operator,
                ext: ext(self, operator),
            },
            AcdDecision::Requeued { operator } => Input::Requeued {
                operator,
                ext: ext(self, operator),
            },
            AcdDecision::Finished(outcome) => Input::AcdFinished(outcome),
            AcdDecision::AnswerRefused { operator } => Input::AnswerRefused { operator },
            AcdDecision::DoorOffer(offer) => Input::DoorOffer {
                offer,
                at_door: true,
            },
        };
        self.feed(input, ctx);
        // An offer the core did not ring (the call is no longer queued) leaves nothing.
        self.bindings.clear();
    }
}

impl Handler<HangUpNow> for CallActor {
    type Result = ();

    fn handle(&mut self, _: HangUpNow, ctx: &mut Context<Self>) {
        self.feed(Input::Shutdown, ctx);
    }
}

impl Handler<MediaMsg> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: MediaMsg, ctx: &mut Context<Self>) {
        let input = match msg.0 {
            MediaEvent::Played { id, idle } => Input::Played {
                id: PlayId(id),
                idle,
            },
            MediaEvent::Dtmf { digit } => Input::Digit {
                digit,
                via: "rfc4733",
            },
            MediaEvent::Ended { caller, operator } => {
                tracing::debug!(call = %self.call_ref, ?caller, ?operator, "media ended");
                return;
            }
        };
        self.feed(input, ctx);
    }
}

/// A call found in conversation with an operator: its name and tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSeen {
    /// The call (`c17`).
    pub call: String,
    /// Its tenant's id.
    pub tenant: String,
}

/// Whether this call is in conversation with operator `.0` (an extension); if so, which
/// call of which tenant.
#[derive(Message, Debug)]
#[rtype(result = "Option<CallSeen>")]
pub struct OnCallWith(pub String);

impl Handler<OnCallWith> for CallActor {
    type Result = Option<CallSeen>;

    fn handle(&mut self, msg: OnCallWith, _: &mut Context<Self>) -> Option<CallSeen> {
        (self.core.talking_with() == Some(msg.0.as_str())).then(|| CallSeen {
            call: self.call_ref.clone(),
            tenant: self.tenant_name.clone(),
        })
    }
}
