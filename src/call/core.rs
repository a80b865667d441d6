//! The call state machine: [`CallCore`].
//!
//! One per call. It owns the call's phase, the IVR session, the caller leg's answer state,
//! the offers ringing, the conversation, the supervisor on the call and the call's three
//! timers (the IVR's digit timer, the place announcement, the callback offer), and it makes
//! every outcome decision. The driver (`actors::call::CallActor`) owns the legs, the ports
//! and the media session, and does what the actions say.

use std::collections::VecDeque;

use super::answer::{talking_outcome, AnswerStep, CallerAnswer};
use super::monitor::Monitor;
use super::types::{
    AcdRequest, Action, Arrival, Attempt, CallPhase, CallSetup, CallerMedia, Ending, Input, PlayId,
    Prompt,
};
use crate::acd::{Millis, OperatorId, Outcome, QueueId};
use crate::callback::door::{CallbackWhen, Offer as DoorOffer};
use crate::events::{CallOutcome, EventKind};
use crate::ivr::{HangupReason, IvrAction, IvrSession, PromptName};
use crate::media::HoldBy;

/// The call core. Pure: no clock, no I/O, no actix; feed it inputs and timeouts, drain
/// actions.
///
/// Driving it (the str0m/quinn run loop):
/// 1. [`CallCore::handle_input`] for each event, or [`CallCore::handle_timeout`] when the
///    deadline from [`CallCore::poll_timeout`] has come;
/// 2. then [`CallCore::poll_action`] until it returns `None`. Actions that ask for an
///    answer ([`Action::AnswerCaller`], [`Action::Route`], [`Action::Ring`] on failure) are
///    answered with an input at once, before the next action is polled.
///
/// # Documented choices (each as the router behaved before the core existed)
/// * The call ends with exactly one [`Ending`]; after it every input is ignored, no timer is
///   left and the last action is [`Action::Finished`].
/// * The caller is answered no later than an operator answers (see [`super::answer`]); a
///   200 that cannot be sent ends the call `failed`.
/// * A caller who leaves while phones ring: the ACD is told, the phones stop, and each
///   stopped offer is an `offer_withdrawn` after the `call_finished`, as the ACD reported it.
/// * An operator's offer is an event even when the call cannot ring (no longer queued);
///   the ACD withdraws it after its ring timeout.
/// * Shutdown: a conversation ends as its legs say (`talking_outcome`), a waiting or IVR
///   caller is `abandoned`, a booked callback stays `callback_requested`.
#[derive(Debug)]
pub struct CallCore {
    setup: CallSetup,
    phase: Phase,
    ivr: Option<Box<IvrSession>>,
    answer: CallerAnswer,
    caller_confirmed: bool,
    /// A media session runs: prompts can play.
    session: bool,
    last_play: PlayId,
    /// Prompts are queued or playing: the IVR's digit timer waits for them.
    playing: bool,
    language: Option<String>,
    queue: Option<(QueueId, String)>,
    enqueued_at: Option<Millis>,
    answered_at: Option<Millis>,
    /// Phones ringing for the call, in the order the ACD offered them.
    offers: Vec<Offer>,
    /// The operator in conversation with the caller.
    talking: Option<Offer>,
    next_attempt: u64,
    pub(super) monitor: Option<Monitor>,
    held_by_caller: bool,
    held_by_operator: bool,
    announce_due: Option<Millis>,
    callback_due: Option<Millis>,
    callback_offered: bool,
    callback_asked: bool,
    /// The door offer the caller may still take (`[tenant.surge.door]`).
    door_open: Option<DoorOffer>,
    /// The door offer's prompt: once it has played the choice window starts.
    door_play: Option<PlayId>,
    /// When the open door offer counts as declined.
    choice_due: Option<Millis>,
    /// What to go on with once the 200 of [`Action::AnswerCaller`] is sent.
    resume: Option<Resume>,
    ending: Option<Ending>,
    pub(super) actions: VecDeque<Action>,
}

#[derive(Debug, Clone)]
enum Phase {
    Admission,
    Ivr,
    /// The IVR chose a queue; the driver resolves it.
    Routing {
        language: String,
        topic: Option<String>,
    },
    Queued,
    Talking,
    /// A last prompt plays; when Play `play` is done the call ends with `outcome`.
    Leaving {
        play: PlayId,
        outcome: CallOutcome,
        by: &'static str,
        /// The outcome if the router shuts down meanwhile.
        on_shutdown: CallOutcome,
    },
    Ended,
}

#[derive(Debug, Clone)]
struct Offer {
    operator: OperatorId,
    attempt: Attempt,
    ext: String,
}

/// The rest of an input that had to answer the caller first.
#[derive(Debug, Clone)]
enum Resume {
    Played {
        id: PlayId,
        idle: bool,
    },
    Digit(char),
    PhoneAnswered {
        attempt: Attempt,
        sdp: Option<String>,
    },
}

impl CallCore {
    /// A core for an admitted call; [`Input::Arrived`] starts it.
    pub fn new(setup: CallSetup) -> CallCore {
        let answer = CallerAnswer::early(setup.greeting_barge_in);
        CallCore {
            setup,
            phase: Phase::Admission,
            ivr: None,
            answer,
            caller_confirmed: false,
            session: false,
            last_play: PlayId(0),
            playing: false,
            language: None,
            queue: None,
            enqueued_at: None,
            answered_at: None,
            offers: Vec::new(),
            talking: None,
            next_attempt: 1,
            monitor: None,
            held_by_caller: false,
            held_by_operator: false,
            announce_due: None,
            callback_due: None,
            callback_offered: false,
            callback_asked: false,
            door_open: None,
            door_play: None,
            choice_due: None,
            resume: None,
            ending: None,
            actions: VecDeque::new(),
        }
    }

    /// Where the call is.
    pub fn phase(&self) -> CallPhase {
        match &self.phase {
            Phase::Admission => CallPhase::Admission,
            Phase::Ivr | Phase::Routing { .. } => CallPhase::Ivr,
            Phase::Queued if self.offers.is_empty() => CallPhase::Queued,
            Phase::Queued => CallPhase::Offering,
            Phase::Talking if self.monitor.as_ref().is_some_and(|m| m.answered) => {
                CallPhase::Monitored
            }
            Phase::Talking if self.held_by_caller || self.held_by_operator => CallPhase::Held,
            Phase::Talking => CallPhase::Bridged,
            Phase::Leaving { .. } => CallPhase::Leaving,
            Phase::Ended => CallPhase::Ended,
        }
    }

    /// How the call ended, once it has.
    pub fn ending(&self) -> Option<Ending> {
        self.ending
    }

    /// The extension of the operator in conversation with the caller, if any.
    pub fn talking_with(&self) -> Option<&str> {
        match self.phase {
            Phase::Talking => self.talking.as_ref().map(|o| o.ext.as_str()),
            _ => None,
        }
    }

    /// The next action for the driver, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`CallCore::handle_timeout`] must be called next (`None`: no timer).
    pub fn poll_timeout(&self) -> Option<Millis> {
        let ivr = match self.phase {
            // The digit timer waits for the prompts to finish.
            Phase::Ivr if !self.playing => self.ivr.as_ref().and_then(|s| s.deadline()).map(Millis),
            _ => None,
        };
        [ivr, self.announce_due, self.callback_due, self.choice_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires every timer due at `now`. `surge_on`: the tenant is in surge mode now (the
    /// callback offer is made only then).
    pub fn handle_timeout(&mut self, now: Millis, surge_on: bool) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        if matches!(self.phase, Phase::Ivr) && !self.playing {
            let due = self.ivr.as_ref().and_then(|s| s.deadline());
            if due.is_some_and(|d| d <= now.0) {
                if let Some(s) = self.ivr.as_mut() {
                    s.on_timeout(now.0);
                }
                self.run_ivr(now);
            }
        }
        if let (Some(due), Some(every)) = (self.announce_due, self.setup.announce_every_ms) {
            if due <= now {
                self.announce_due = Some(now.plus(every.max(1)));
                if matches!(self.phase, Phase::Queued) && !self.playing {
                    self.actions.push_back(Action::AskPosition);
                }
            }
        }
        if self.callback_due.is_some_and(|d| d <= now) {
            self.callback_due = None;
            self.offer_callback(surge_on);
        }
        if self.choice_due.is_some_and(|d| d <= now) {
            self.choice_due = None;
            self.close_door("declined");
        }
    }

    /// Takes in one input at `now`.
    pub fn handle_input(&mut self, now: Millis, input: Input) {
        if matches!(self.phase, Phase::Ended) {
            self.after_end(input);
            return;
        }
        match input {
            Input::Arrived(arrival) => self.on_arrived(now, arrival),
            Input::CallerAnswered { ok } => self.on_caller_answered(now, ok),
            Input::CallerConfirmed => self.caller_confirmed = true,
            Input::Digit { digit, via } => self.on_digit(now, digit, via),
            Input::Played { id, idle } => self.on_played(now, id, idle),
            Input::Enqueued {
                queue,
                name,
                priority,
            } => self.on_enqueued(now, queue, name, priority),
            Input::RouteFailed => {
                self.actions.push_back(Action::HangUpCaller);
                self.finish(now, CallOutcome::Failed, "router");
            }
            Input::Offered { operator, ext } => self.on_offered(operator, ext),
            Input::RingFailed { attempt, status } => self.on_phone_failed(attempt, status),
            Input::Withdrawn { operator, ext } => self.on_withdrawn(operator, ext),
            Input::Requeued { ext, .. } => {
                let queue = self.queue_name().unwrap_or_default();
                self.emit(EventKind::CallRequeued {
                    call: self.setup.call_ref.clone(),
                    queue,
                    operator: ext,
                });
            }
            Input::AcdFinished(outcome) => self.on_acd_finished(now, outcome),
            Input::AnswerRefused { operator } => self.on_answer_refused(now, operator),
            Input::PhoneAnswered { attempt, sdp } => self.on_phone_answered(now, attempt, sdp),
            Input::PhoneFailed { attempt, status } => {
                if !self.monitor_ended(attempt) {
                    self.on_phone_failed(attempt, status);
                }
            }
            Input::PhoneGone { attempt, cause } => {
                if !self.monitor_ended(attempt) {
                    self.on_phone_gone(now, attempt, cause);
                }
            }
            Input::CallerGone { cause } => self.on_caller_gone(now, cause),
            Input::CallerReoffer { held, media } => {
                self.actions.push_back(Action::Renegotiate {
                    side: HoldBy::Caller,
                    media,
                });
                self.on_hold(HoldBy::Caller, held);
            }
            Input::PhoneReoffer {
                attempt,
                held,
                media,
            } => {
                if self.talking.as_ref().is_some_and(|o| o.attempt == attempt) {
                    self.actions.push_back(Action::Renegotiate {
                        side: HoldBy::Operator,
                        media,
                    });
                    self.on_hold(HoldBy::Operator, held);
                }
            }
            Input::Position { position, serving } => {
                if matches!(self.phase, Phase::Queued) {
                    let language = self.language.clone();
                    self.play(Prompt::Announcement {
                        position,
                        serving,
                        language,
                    });
                }
            }
            Input::CallbackBooked { audible } => {
                if matches!(self.phase, Phase::Queued) {
                    self.leave_for_callback(now, audible);
                }
            }
            // The refusal is the ACD's own event; the caller keeps waiting (one try).
            Input::CallbackRefused => {}
            Input::DoorOffer { offer, at_door } => self.on_door_offer(now, offer, at_door),
            Input::DialledMonitorGone { supervisor } => self.on_dialled_monitor_gone(&supervisor),
            Input::Shutdown => self.on_shutdown(now),
        }
    }

    /// A late event for an ended call: make sure no phone that answers late is left up.
    fn after_end(&mut self, input: Input) {
        if let Input::PhoneAnswered { attempt, .. } = input {
            if let Some(i) = self.offers.iter().position(|o| o.attempt == attempt) {
                let offer = self.offers.remove(i);
                self.actions.push_back(Action::HangUpPhone {
                    attempt: offer.attempt,
                });
            }
        }
    }

    // ----- admission and the IVR ----------------------------------------------------------

    fn on_arrived(&mut self, now: Millis, arrival: Arrival) {
        if !matches!(self.phase, Phase::Admission) {
            return;
        }
        self.phase = Phase::Ivr;
        self.session = arrival.session;
        if arrival.media == Some(CallerMedia::Answered) {
            self.answer.mark_answered();
        }
        if !arrival.open {
            return self.closed(now, arrival.media);
        }
        match (arrival.media, arrival.ivr) {
            (Some(CallerMedia::Early | CallerMedia::Answered), Some(ivr)) => {
                self.ivr = Some(ivr);
                self.run_ivr(now);
            }
            (Some(CallerMedia::Failed), _) => self.finish(now, CallOutcome::Failed, "router"),
            // An open line always sets up media and a menu; without them nobody can help.
            _ => {
                self.actions.push_back(Action::HangUpCaller);
                self.finish(now, CallOutcome::Failed, "router");
            }
        }
    }

    /// C3: outside working hours the hours announcement plays as early media (where the
    /// caller offered SDP), then 480, so the call is never answered nor charged.
    fn closed(&mut self, now: Millis, media: Option<CallerMedia>) {
        match media {
            Some(CallerMedia::Failed) => self.finish(now, CallOutcome::Failed, "router"),
            // Could not send 183: nothing can be heard before an answer.
            Some(CallerMedia::Answered) => {
                self.actions.push_back(Action::HangUpCaller);
                self.finish(now, CallOutcome::Closed, "router");
            }
            Some(CallerMedia::Early) if self.session => {
                let play = self.play(Prompt::Closed);
                self.phase = Phase::Leaving {
                    play,
                    outcome: CallOutcome::Closed,
                    by: "router",
                    on_shutdown: CallOutcome::Abandoned,
                };
            }
            _ => {
                self.actions.push_back(Action::RejectCaller { status: 480 });
                self.finish(now, CallOutcome::Closed, "router");
            }
        }
    }

    fn run_ivr(&mut self, now: Millis) {
        while let Some(action) = self.ivr.as_mut().and_then(|s| s.poll_action()) {
            match action {
                IvrAction::Play(prompt) => {
                    let stem = self
                        .ivr
                        .as_ref()
                        .map_or(prompt.name.file_stem(), |s| s.prompt_stem(prompt.name))
                        .to_string();
                    let queued = self.session;
                    let id = self.play(Prompt::Ivr {
                        stem,
                        language: prompt.language,
                    });
                    // In surge the short surge greeting stands in for the greeting: its
                    // end answers the call too (else the caller stays in early media until
                    // an operator answers, found by `loadgen run --surge`).
                    let greeting = matches!(
                        prompt.name,
                        PromptName::Greeting | PromptName::SurgeGreeting
                    );
                    if greeting && queued {
                        self.answer.greeting_queued(id.0);
                    }
                }
                IvrAction::Step { level, digit } => self.emit(EventKind::IvrStep {
                    call: self.setup.call_ref.clone(),
                    level,
                    digit,
                }),
                IvrAction::Route {
                    language,
                    topic,
                    queue,
                } => {
                    self.phase = Phase::Routing { language, topic };
                    self.actions.push_back(Action::Route { queue });
                    return;
                }
                IvrAction::Hangup { reason } => {
                    let outcome = match reason {
                        HangupReason::SelfService { .. } => CallOutcome::Deflected,
                        _ => CallOutcome::IvrHangup,
                    };
                    if self.playing && self.session {
                        // Say goodbye (or the self-service information) first.
                        self.phase = Phase::Leaving {
                            play: self.last_play,
                            outcome,
                            by: "ivr",
                            on_shutdown: CallOutcome::Abandoned,
                        };
                        return;
                    }
                    self.actions.push_back(Action::HangUpCaller);
                    self.finish(now, outcome, "ivr");
                    return;
                }
            }
        }
    }

    /// Queues a prompt (when a media session runs) and returns its id.
    fn play(&mut self, prompt: Prompt) -> PlayId {
        if !self.session {
            return self.last_play;
        }
        self.last_play = PlayId(self.last_play.0 + 1);
        self.playing = true;
        self.actions.push_back(Action::Play {
            id: self.last_play,
            prompt,
        });
        self.last_play
    }

    fn stop_prompts(&mut self) {
        if self.session {
            self.actions.push_back(Action::StopPrompts);
        }
        self.playing = false;
    }

    /// Sends the 200 and waits for the driver to say whether it went out.
    fn answer_caller(&mut self, then: Resume) {
        self.resume = Some(then);
        self.actions.push_back(Action::AnswerCaller);
    }

    fn on_caller_answered(&mut self, now: Millis, ok: bool) {
        let Some(resume) = self.resume.take() else {
            return;
        };
        if !ok {
            if matches!(self.phase, Phase::Queued) {
                // The answering operator is freed with the others.
                return self.leave_queue(now, CallOutcome::Failed, "router", false);
            }
            return self.finish(now, CallOutcome::Failed, "router");
        }
        self.answer.mark_answered();
        match resume {
            Resume::Played { id, idle } => self.after_played(now, id, idle),
            Resume::Digit(digit) => self.ivr_digit(now, digit),
            Resume::PhoneAnswered { attempt, sdp } => self.connect(now, attempt, sdp),
        }
    }

    fn on_played(&mut self, now: Millis, id: PlayId, idle: bool) {
        if self.answer.on_played(id.0) == AnswerStep::Answer {
            return self.answer_caller(Resume::Played { id, idle });
        }
        self.after_played(now, id, idle);
    }

    fn after_played(&mut self, now: Millis, id: PlayId, idle: bool) {
        if let Phase::Leaving {
            play, outcome, by, ..
        } = self.phase
        {
            if play == id {
                self.actions.push_back(match outcome {
                    CallOutcome::Closed => Action::RejectCaller { status: 480 },
                    _ => Action::HangUpCaller,
                });
                return self.finish(now, outcome, by);
            }
        }
        if self.door_play.is_some_and(|p| id >= p) && self.door_open.is_some() {
            self.door_play = None;
            self.choice_due = self.setup.door.map(|d| now.plus(d.choice_window_ms));
        }
        if id == self.last_play && idle {
            self.playing = false;
            if matches!(self.phase, Phase::Ivr) {
                if let Some(s) = self.ivr.as_mut() {
                    s.on_playback_finished(now.0);
                }
            }
        }
    }

    fn on_digit(&mut self, now: Millis, digit: char, via: &'static str) {
        self.emit(EventKind::DtmfReceived {
            call: self.setup.call_ref.clone(),
            digit,
            via: via.into(),
        });
        match self.phase {
            Phase::Queued => self.queued_digit(now, digit),
            Phase::Ivr => match self.answer.on_key() {
                AnswerStep::CutGreetingAndAnswer => {
                    // Keyed ahead during the greeting (early media): the greeting is cut and
                    // the call answered now, so the next prompts are heard in an answered
                    // call.
                    self.stop_prompts();
                    self.answer_caller(Resume::Digit(digit));
                }
                AnswerStep::Answer | AnswerStep::Wait => {
                    if self.answer.answered() && self.playing {
                        // Barge-in: the caller knows what to press; stop talking.
                        self.stop_prompts();
                    }
                    self.ivr_digit(now, digit);
                }
            },
            _ => {}
        }
    }

    fn ivr_digit(&mut self, now: Millis, digit: char) {
        if let Some(s) = self.ivr.as_mut() {
            s.on_digit(now.0, digit);
        }
        self.run_ivr(now);
    }

    // ----- the queue ----------------------------------------------------------------------

    fn on_enqueued(&mut self, now: Millis, queue: QueueId, name: String, priority: u8) {
        let Phase::Routing { language, topic } = std::mem::replace(&mut self.phase, Phase::Queued)
        else {
            return;
        };
        self.ivr = None;
        self.queue = Some((queue, name.clone()));
        self.language = Some(language.clone());
        self.enqueued_at = Some(now);
        self.start_waiting_media(now);
        if let Some(offer) = self.setup.callback_offer {
            self.callback_due = Some(now.plus(offer.after_ms));
        }
        self.emit(EventKind::CallEnqueued {
            call: self.setup.call_ref.clone(),
            tenant: self.setup.tenant.clone(),
            queue: name,
            language,
            topic: topic.clone(),
            priority,
        });
        self.actions.push_back(Action::Enqueue {
            queue,
            priority,
            topic,
        });
    }

    /// "Please wait", then hold music, and the place announcement every
    /// `announce_every_ms`.
    fn start_waiting_media(&mut self, now: Millis) {
        if !self.session {
            return;
        }
        let language = self.language.clone();
        self.play(Prompt::PleaseWait { language });
        self.actions.push_back(Action::Music(true));
        self.announce_due = self.setup.announce_every_ms.map(|every| now.plus(every));
    }

    fn on_offered(&mut self, operator: OperatorId, ext: String) {
        self.emit(EventKind::CallOffered {
            call: self.setup.call_ref.clone(),
            queue: self.queue_name().unwrap_or_default(),
            operator: ext.clone(),
        });
        if !matches!(self.phase, Phase::Queued) {
            return;
        }
        let attempt = self.take_attempt();
        self.offers.push(Offer {
            operator,
            attempt,
            ext,
        });
        self.actions.push_back(Action::Ring { operator, attempt });
    }

    fn on_withdrawn(&mut self, operator: OperatorId, ext: String) {
        if matches!(self.phase, Phase::Leaving { .. }) {
            // Left the queue: its own withdrawals were reported then.
            return;
        }
        self.emit(EventKind::OfferWithdrawn {
            call: self.setup.call_ref.clone(),
            operator: ext,
        });
        if let Some(i) = self.offers.iter().position(|o| o.operator == operator) {
            let offer = self.offers.remove(i);
            self.actions.push_back(Action::HangUpPhone {
                attempt: offer.attempt,
            });
        }
    }

    /// A phone refused, or could not be rung.
    fn on_phone_failed(&mut self, attempt: Attempt, status: u16) {
        // Not found: an offer we withdrew ourselves (487 after CANCEL).
        let Some(i) = self.offers.iter().position(|o| o.attempt == attempt) else {
            return;
        };
        let offer = self.offers.remove(i);
        self.emit(EventKind::OfferDeclined {
            call: self.setup.call_ref.clone(),
            operator: offer.ext,
            status,
        });
        self.actions.push_back(Action::Acd(AcdRequest::Declined {
            operator: offer.operator,
        }));
    }

    fn on_phone_answered(&mut self, now: Millis, attempt: Attempt, sdp: Option<String>) {
        if self.monitor_answered(attempt, &sdp) {
            return;
        }
        let Some(i) = self.offers.iter().position(|o| o.attempt == attempt) else {
            return;
        };
        if !matches!(self.phase, Phase::Queued) {
            let offer = self.offers.remove(i);
            self.actions.push_back(Action::HangUpPhone {
                attempt: offer.attempt,
            });
            return;
        }
        if self.answer.on_operator_answered() == AnswerStep::Answer {
            // The caller is answered before the bridge, never later: a greeting still
            // playing is cut by the bridge.
            return self.answer_caller(Resume::PhoneAnswered { attempt, sdp });
        }
        self.connect(now, attempt, sdp);
    }

    /// The operator answered and the caller is answered: bridge, record, tell the ACD.
    fn connect(&mut self, now: Millis, attempt: Attempt, sdp: Option<String>) {
        let Some(i) = self.offers.iter().position(|o| o.attempt == attempt) else {
            return;
        };
        let offer = self.offers.remove(i);
        self.close_door("declined");
        self.phase = Phase::Talking;
        self.announce_due = None;
        self.playing = false;
        self.actions.push_back(Action::Bridge { attempt, sdp });
        self.answered_at = Some(now);
        let wait_ms = self.enqueued_at.map_or(0, |e| now.saturating_since(e));
        self.emit(EventKind::CallAnswered {
            call: self.setup.call_ref.clone(),
            queue: self.queue_name().unwrap_or_default(),
            operator: offer.ext.clone(),
            wait_ms,
        });
        self.actions.push_back(Action::Acd(AcdRequest::Answered {
            operator: offer.operator,
        }));
        self.talking = Some(offer);
    }

    fn on_answer_refused(&mut self, now: Millis, operator: OperatorId) {
        if !matches!(self.phase, Phase::Talking)
            || self.talking.as_ref().map(|o| o.operator) != Some(operator)
        {
            return;
        }
        let Some(offer) = self.talking.take() else {
            return;
        };
        self.actions.push_back(Action::HangUpPhone {
            attempt: offer.attempt,
        });
        self.phase = Phase::Queued;
        self.answered_at = None;
        if self.session {
            self.actions.push_back(Action::Unbridge);
        }
        self.start_waiting_media(now);
    }

    fn on_acd_finished(&mut self, now: Millis, outcome: Outcome) {
        match outcome {
            // Answered and abandoned calls end through their legs.
            Outcome::Answered | Outcome::Abandoned => {}
            Outcome::TimedOut => {
                self.announce_due = None;
                for offer in std::mem::take(&mut self.offers) {
                    self.actions.push_back(Action::HangUpPhone {
                        attempt: offer.attempt,
                    });
                }
                self.actions.push_back(Action::HangUpCaller);
                self.finish(now, CallOutcome::TimedOut, "router");
            }
            Outcome::Blocked => {
                self.announce_due = None;
                self.actions.push_back(Action::HangUpCaller);
                self.finish(now, CallOutcome::Blocked, "router");
            }
        }
    }

    // ----- the callback offer (surge mode) ------------------------------------------------

    /// The offer's timer: a caller still waiting, in surge mode, hears the offer once.
    fn offer_callback(&mut self, surge_on: bool) {
        let Some(offer) = self.setup.callback_offer else {
            return;
        };
        if !matches!(self.phase, Phase::Queued) || self.callback_offered || !surge_on {
            return;
        }
        self.callback_offered = true;
        if self.setup.door.is_some() {
            // What is offered is checked against capacity now, by the ACD host.
            if let Some((queue, _)) = &self.queue {
                self.actions
                    .push_back(Action::AskDoorOffer { queue: *queue });
            }
            return;
        }
        let language = self.language.clone();
        self.play(Prompt::CallbackOffer {
            digit: offer.digit,
            language,
        });
    }

    /// A key while queued: the callback acceptance, or nothing.
    fn queued_digit(&mut self, now: Millis, digit: char) {
        let Some(offer) = self.setup.callback_offer else {
            return;
        };
        if let Some(door) = self.setup.door {
            return self.door_digit(now, digit, offer.digit, door.sms_digit);
        }
        if !self.callback_offered || self.callback_asked || digit != offer.digit {
            return;
        }
        let (Some((queue, _)), Some(enqueued_at)) = (&self.queue, self.enqueued_at) else {
            return;
        };
        self.callback_asked = true;
        self.actions.push_back(Action::RequestCallback {
            queue: *queue,
            language: self.language.clone().unwrap_or_else(|| "uz".into()),
            enqueued_at,
            next_morning: false,
        });
    }

    // ----- the door offer (surge, `[tenant.surge.door]`) ------------------------------------

    /// The ACD host's decision: offer the caller a callback and/or the SMS now (once per
    /// call), or nothing. The offer stays open until a key takes it or the choice window
    /// after its prompt ends.
    fn on_door_offer(&mut self, now: Millis, offer: DoorOffer, at_door: bool) {
        let Some(door) = self.setup.door else {
            return;
        };
        if !matches!(self.phase, Phase::Queued) || self.door_open.is_some() {
            return;
        }
        if at_door && self.callback_offered {
            return;
        }
        // Made at the door, the offer is not made again after `offer_after`.
        self.callback_offered = true;
        self.callback_due = None;
        if !offer.is_some() {
            return;
        }
        self.door_open = Some(offer);
        let digit = self.setup.callback_offer.map(|c| c.digit);
        let language = self.language.clone();
        let callback = offer.callback.zip(digit);
        let play = self.play(Prompt::DoorOffer {
            callback,
            sms_digit: offer.sms.then_some(door.sms_digit),
            language,
        });
        if self.session {
            self.door_play = Some(play);
        } else {
            self.choice_due = Some(now.plus(door.choice_window_ms));
        }
    }

    /// A key while the door offer is open: the callback key books it (for today or the
    /// next morning, as offered), the SMS key takes the information and leaves.
    fn door_digit(&mut self, now: Millis, digit: char, callback_digit: char, sms_digit: char) {
        let Some(offer) = self.door_open else {
            return;
        };
        if digit == callback_digit && offer.callback.is_some() && !self.callback_asked {
            let (Some((queue, _)), Some(enqueued_at)) = (&self.queue, self.enqueued_at) else {
                return;
            };
            let queue = *queue;
            self.callback_asked = true;
            self.close_door("callback");
            self.actions.push_back(Action::RequestCallback {
                queue,
                language: self.language.clone().unwrap_or_else(|| "uz".into()),
                enqueued_at,
                next_morning: offer.callback == Some(CallbackWhen::NextMorning),
            });
        } else if digit == sms_digit && offer.sms {
            self.close_door("sms");
            self.leave_for_sms(now);
        }
    }

    /// Ends the open door offer with the caller's choice (`callback`, `sms`, `declined`).
    fn close_door(&mut self, choice: &str) {
        if self.door_open.take().is_none() {
            return;
        }
        self.door_play = None;
        self.choice_due = None;
        self.emit(EventKind::DoorChoice {
            call: self.setup.call_ref.clone(),
            tenant: self.setup.tenant.clone(),
            queue: self.queue_name().unwrap_or_default(),
            choice: choice.into(),
        });
        self.actions.push_back(Action::Acd(AcdRequest::DoorClosed));
    }

    /// The caller took the information by SMS: the call leaves the queue, hears that it is
    /// sent, and ends `deflected` (the deflection SMS goes out on that outcome).
    fn leave_for_sms(&mut self, now: Millis) {
        let dropped = std::mem::take(&mut self.offers);
        for offer in &dropped {
            self.actions.push_back(Action::HangUpPhone {
                attempt: offer.attempt,
            });
        }
        self.actions.push_back(Action::Acd(AcdRequest::LeftForSms));
        self.announce_due = None;
        self.callback_due = None;
        self.phase = Phase::Leaving {
            play: self.last_play,
            outcome: CallOutcome::Deflected,
            by: "caller",
            on_shutdown: CallOutcome::Deflected,
        };
        self.report_withdrawn(&dropped);
        if self.session {
            self.actions.push_back(Action::StopPrompts);
            self.actions.push_back(Action::Music(false));
            let language = self.language.clone();
            let play = self.play(Prompt::SmsSent { language });
            if let Phase::Leaving { play: p, .. } = &mut self.phase {
                *p = play;
            }
            return;
        }
        self.actions.push_back(Action::HangUpCaller);
        self.finish(now, CallOutcome::Deflected, "caller");
    }

    /// The callback is booked: confirm, then hang up with `callback_requested`. The ACD
    /// took the call out of the queue when it booked it, and withdrew its offers.
    fn leave_for_callback(&mut self, now: Millis, audible: bool) {
        let dropped = std::mem::take(&mut self.offers);
        for offer in &dropped {
            self.actions.push_back(Action::HangUpPhone {
                attempt: offer.attempt,
            });
        }
        self.announce_due = None;
        self.callback_due = None;
        self.phase = Phase::Leaving {
            play: self.last_play,
            outcome: CallOutcome::CallbackRequested,
            by: "caller",
            on_shutdown: CallOutcome::CallbackRequested,
        };
        self.report_withdrawn(&dropped);
        if self.session {
            self.actions.push_back(Action::StopPrompts);
            self.actions.push_back(Action::Music(false));
            if audible {
                let language = self.language.clone();
                let play = self.play(Prompt::CallbackBooked { language });
                if let Phase::Leaving { play: p, .. } = &mut self.phase {
                    *p = play;
                }
                return;
            }
        }
        self.actions.push_back(Action::HangUpCaller);
        self.finish(now, CallOutcome::CallbackRequested, "caller");
    }

    // ----- the conversation ---------------------------------------------------------------

    /// A side of the bridge holds or resumes. Outside a conversation a hold changes
    /// nothing: the caller hears prompts or music anyway.
    fn on_hold(&mut self, by: HoldBy, held: bool) {
        if !matches!(self.phase, Phase::Talking) {
            return;
        }
        match by {
            HoldBy::Caller => self.held_by_caller = held,
            HoldBy::Operator => self.held_by_operator = held,
        }
        // Kept in the timeline for the monthly report's hold time, media or not.
        self.emit(EventKind::CallHold {
            call: self.setup.call_ref.clone(),
            by: match by {
                HoldBy::Caller => "caller",
                HoldBy::Operator => "operator",
            }
            .to_owned(),
            held,
        });
        if self.session {
            self.actions.push_back(Action::Hold { by, held });
        }
    }

    fn on_phone_gone(&mut self, now: Millis, attempt: Attempt, _cause: &'static str) {
        let talking = self.talking.as_ref().is_some_and(|o| o.attempt == attempt);
        if talking && matches!(self.phase, Phase::Talking) {
            self.actions.push_back(Action::HangUpCaller);
            self.actions.push_back(Action::Acd(AcdRequest::CallEnded));
            let outcome = talking_outcome(self.answer.answered(), self.caller_confirmed, None);
            self.finish(now, outcome, "operator");
        }
    }

    fn on_caller_gone(&mut self, now: Millis, cause: &'static str) {
        match self.phase {
            Phase::Admission | Phase::Ivr | Phase::Routing { .. } => {
                self.finish(now, CallOutcome::Abandoned, "caller")
            }
            // Hung up during the goodbye, the closed announcement or the callback
            // confirmation: the outcome stands.
            Phase::Leaving { outcome, .. } => self.finish(now, outcome, "caller"),
            Phase::Queued => self.leave_queue(now, CallOutcome::Abandoned, "caller", false),
            Phase::Talking => {
                self.hang_up_talking();
                self.actions.push_back(Action::Acd(AcdRequest::CallEnded));
                let outcome =
                    talking_outcome(self.answer.answered(), self.caller_confirmed, Some(cause));
                self.finish(now, outcome, "caller");
            }
            Phase::Ended => {}
        }
    }

    fn on_shutdown(&mut self, now: Millis) {
        match self.phase {
            Phase::Ended => {}
            Phase::Talking => {
                self.hang_up_talking();
                self.actions.push_back(Action::HangUpCaller);
                self.actions.push_back(Action::Acd(AcdRequest::CallEnded));
                let outcome = talking_outcome(self.answer.answered(), self.caller_confirmed, None);
                self.finish(now, outcome, "shutdown");
            }
            Phase::Queued => self.leave_queue(now, CallOutcome::Abandoned, "shutdown", true),
            Phase::Admission | Phase::Ivr | Phase::Routing { .. } => {
                self.actions.push_back(Action::HangUpCaller);
                self.finish(now, CallOutcome::Abandoned, "shutdown");
            }
            Phase::Leaving { on_shutdown, .. } => {
                self.actions.push_back(Action::HangUpCaller);
                self.finish(now, on_shutdown, "shutdown");
            }
        }
    }

    fn hang_up_talking(&mut self) {
        if let Some(o) = &self.talking {
            self.actions
                .push_back(Action::HangUpPhone { attempt: o.attempt });
        }
    }

    /// The caller leaves the queue (hang-up, shutdown, a 200 that failed): the phones
    /// stop, the ACD is told, the call ends, and each stopped offer is reported withdrawn,
    /// after the end, as the ACD reported it.
    fn leave_queue(&mut self, now: Millis, outcome: CallOutcome, by: &'static str, hang_up: bool) {
        let dropped = std::mem::take(&mut self.offers);
        for offer in &dropped {
            self.actions.push_back(Action::HangUpPhone {
                attempt: offer.attempt,
            });
        }
        if hang_up {
            self.actions.push_back(Action::HangUpCaller);
        }
        self.actions.push_back(Action::Acd(AcdRequest::CallerLeft));
        self.finish(now, outcome, by);
        self.report_withdrawn(&dropped);
    }

    /// Reports the offers the call stopped itself as withdrawn; after the end, they still
    /// go before [`Action::Finished`], which stays the last action.
    fn report_withdrawn(&mut self, dropped: &[Offer]) {
        let finished = matches!(self.actions.back(), Some(Action::Finished));
        if finished {
            self.actions.pop_back();
        }
        for offer in dropped {
            self.emit(EventKind::OfferWithdrawn {
                call: self.setup.call_ref.clone(),
                operator: offer.ext.clone(),
            });
        }
        if finished {
            self.actions.push_back(Action::Finished);
        }
    }

    /// Ends the call with its one outcome: the supervisor's leg and the media stop, every
    /// timer is cancelled, `call_finished` goes out and the driver stops.
    fn finish(&mut self, now: Millis, outcome: CallOutcome, by: &'static str) {
        if matches!(self.phase, Phase::Ended) {
            return;
        }
        self.close_door("declined");
        self.phase = Phase::Ended;
        self.ending = Some(Ending { outcome, by });
        self.announce_due = None;
        self.callback_due = None;
        self.resume = None;
        self.ivr = None;
        if self.monitor.take().is_some() {
            self.actions.push_back(Action::HangUpMonitor);
        }
        if self.session {
            self.actions.push_back(Action::StopMedia);
        }
        let wait_ms = match (self.enqueued_at, self.answered_at) {
            (Some(e), Some(a)) => a.saturating_since(e),
            (Some(e), None) => now.saturating_since(e),
            _ => 0,
        };
        let talk_ms = self.answered_at.map_or(0, |a| now.saturating_since(a));
        self.emit(EventKind::CallFinished {
            call: self.setup.call_ref.clone(),
            tenant: self.setup.tenant.clone(),
            queue: self.queue_name(),
            operator: self.talking.as_ref().map(|o| o.ext.clone()),
            outcome,
            wait_ms,
            talk_ms,
            ended_by: by.into(),
        });
        self.actions.push_back(Action::Finished);
    }

    // ----- small helpers ------------------------------------------------------------------

    pub(super) fn emit(&mut self, kind: EventKind) {
        self.actions.push_back(Action::Emit(kind));
    }

    pub(super) fn call_ref(&self) -> &str {
        &self.setup.call_ref
    }

    pub(super) fn is_talking(&self) -> bool {
        matches!(self.phase, Phase::Talking)
    }

    pub(super) fn take_attempt(&mut self) -> Attempt {
        let a = Attempt(self.next_attempt);
        self.next_attempt += 1;
        a
    }

    fn queue_name(&self) -> Option<String> {
        self.queue.as_ref().map(|(_, name)| name.clone())
    }
}
