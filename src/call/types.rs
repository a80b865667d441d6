//! Value types of the call core: its setup, inputs, actions and phases.
//!
//! Everything here is plain data. The decisions live in [`super::CallCore`].

use crate::acd::{Millis, OperatorId, QueueId};
use crate::callback::door::{CallbackWhen, Offer};
use crate::events::{CallOutcome, EventKind};
use crate::ivr::IvrSession;
use crate::media::{HoldBy, MonitorMode};
use crate::sip::sdp::Negotiated;

/// One ringing of a phone for this call (an operator's, or a supervisor's for listen-in).
/// Numbered by the call from 1, so a late event of an earlier ringing is never taken for the
/// current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt(pub u64);

/// The identifier of a prompt request, echoed back by the media session when it has played
/// (see [`Input::Played`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PlayId(pub u64);

/// What the core knows of the call from the start: names for its events and the tenant's
/// settings that shape its decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSetup {
    /// The call's external name (`c<n>`), used in every event.
    pub call_ref: String,
    /// The tenant's id, for the call's events.
    pub tenant: String,
    /// The tenant's `greeting_barge_in`: a key during the greeting cuts it and answers.
    pub greeting_barge_in: bool,
    /// How often a waiting caller hears their place and expected wait (`None`: never).
    pub announce_every_ms: Option<u64>,
    /// The in-queue callback offer of surge mode (`None`: the tenant offers no callbacks).
    pub callback_offer: Option<CallbackOfferSpec>,
    /// The results-day door policy (`[tenant.surge.door]`; `None`: the callback offer
    /// alone). With it the offer's content is the ACD host's decision
    /// ([`Input::DoorOffer`]), at queue entry or when the core asks at `offer_after`.
    pub door: Option<DoorSpec>,
}

/// The door offer's keys and how long the caller has to choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorSpec {
    /// The key that takes the information by SMS.
    pub sms_digit: char,
    /// After the offer has played, a key within this long takes it; then it is declined
    /// and the caller waits on.
    pub choice_window_ms: u64,
}

/// When and how the callback offer is made (surge mode only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackOfferSpec {
    /// Offered after the caller has waited this long in the queue.
    pub after_ms: u64,
    /// The key that accepts it.
    pub digit: char,
}

/// How the caller's leg came out of media negotiation (done by the driver, which owns the
/// ports and the SIP dialog).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerMedia {
    /// 183 with our answer went out: prompts play as early media and the 200 waits (see
    /// [`super::answer`]).
    Early,
    /// The 200 went out at once (no SDP offer, no media engine, or the 183 failed).
    Answered,
    /// The leg could not be set up; the driver already refused the INVITE (503 without a
    /// port, 488 for an unusable offer) or the 200 failed.
    Failed,
}

/// How the call arrived, as the driver found it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The tenant's line is open now (working hours, no holiday; C3).
    pub open: bool,
    /// The caller's media, when the driver set it up (`None`: a closed line without early
    /// media, refused at once).
    pub media: Option<CallerMedia>,
    /// A media session runs for the call: prompts, music and the bridge are possible.
    pub session: bool,
    /// The tenant's menu, started at the arrival (`None` for a closed line).
    pub ivr: Option<Box<IvrSession>>,
}

/// Something that happened to the call.
#[derive(Debug, Clone)]
pub enum Input {
    /// The call was admitted; the first input of every call.
    Arrived(Arrival),
    /// The driver's answer to [`Action::AnswerCaller`]: whether the 200 went out. The core
    /// waits for it before it decides anything else about the event that asked for it.
    CallerAnswered {
        /// The 200 was sent.
        ok: bool,
    },
    /// The caller's ACK arrived.
    CallerConfirmed,
    /// A key from the caller (RFC 4733 or SIP INFO).
    Digit {
        /// 0-9, *, #, A-D.
        digit: char,
        /// How it arrived, for the event log (`rfc4733`, `info`).
        via: &'static str,
    },
    /// Everything up to Play `id` has played; `idle`: nothing more is queued.
    Played {
        /// The [`Action::Play`] id.
        id: PlayId,
        /// No prompt left.
        idle: bool,
    },
    /// The driver's answer to [`Action::Route`]: the queue exists.
    Enqueued {
        /// The queue.
        queue: QueueId,
        /// Its name, for the events.
        name: String,
        /// Its priority.
        priority: u8,
    },
    /// The driver's answer to [`Action::Route`]: no such queue (a configuration error).
    RouteFailed,
    /// The ACD offers the call to this operator.
    Offered {
        /// The operator.
        operator: OperatorId,
        /// Their extension.
        ext: String,
    },
    /// The driver could not ring the operator of [`Action::Ring`] (`status` as a SIP
    /// final response would have said: 480 not registered, 503 no port or no stack).
    RingFailed {
        /// The ringing.
        attempt: Attempt,
        /// The status for the event.
        status: u16,
    },
    /// The ACD stopped the offer to this operator.
    Withdrawn {
        /// The operator.
        operator: OperatorId,
        /// Their extension.
        ext: String,
    },
    /// The ACD put the call back at the head of its queue after this operator missed it.
    Requeued {
        /// The operator.
        operator: OperatorId,
        /// Their extension.
        ext: String,
    },
    /// The ACD let the call go with this outcome.
    AcdFinished(crate::acd::Outcome),
    /// The ACD refused the operator's answer (it had withdrawn the offer first).
    AnswerRefused {
        /// The operator.
        operator: OperatorId,
    },
    /// A phone rung for this call answered (an operator's, or a supervisor's).
    PhoneAnswered {
        /// The ringing.
        attempt: Attempt,
        /// The SDP answer of the 2xx.
        sdp: Option<String>,
    },
    /// A phone rung for this call refused or could not be reached.
    PhoneFailed {
        /// The ringing.
        attempt: Attempt,
        /// The final status (408 for no response).
        status: u16,
    },
    /// An answered phone's leg ended.
    PhoneGone {
        /// The ringing.
        attempt: Attempt,
        /// Why, in words for the event log.
        cause: &'static str,
    },
    /// The caller's leg ended (BYE, CANCEL, timeout).
    CallerGone {
        /// Why, in words for the event log.
        cause: &'static str,
    },
    /// The caller re-offered (hold, resume, another codec); the SIP layer answered it.
    CallerReoffer {
        /// On hold now.
        held: bool,
        /// The caller's media from now on.
        media: Negotiated,
    },
    /// An operator's leg re-offered; the SIP layer answered it.
    PhoneReoffer {
        /// The ringing.
        attempt: Attempt,
        /// On hold now.
        held: bool,
        /// The leg's media from now on.
        media: Negotiated,
    },
    /// The ACD's answer to [`Action::AskPosition`].
    Position {
        /// Place in the queue, from 1.
        position: usize,
        /// Operators serving the queue.
        serving: usize,
    },
    /// The ACD's answer to [`Action::RequestCallback`]: booked. `audible`: the
    /// confirmation prompt exists in the caller's language.
    CallbackBooked {
        /// The confirmation can be played.
        audible: bool,
    },
    /// The ACD refused the callback (the reason is its own event): the caller waits on.
    CallbackRefused,
    /// The ACD host's door decision (surge, `[tenant.surge.door]`): what to offer the
    /// caller now. `at_door`: at queue entry, because the expected wait is long; else the
    /// answer to [`Action::AskDoorOffer`].
    DoorOffer {
        /// What is offered (nothing: no offer).
        offer: Offer,
        /// Made at queue entry.
        at_door: bool,
    },
    /// The supervisor who dialled in by feature code hung up.
    DialledMonitorGone {
        /// Their extension.
        supervisor: String,
    },
    /// The router shuts down: end the call now.
    Shutdown,
}

/// What to play; the driver turns it into audio clips of the tenant's prompts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// An IVR recording by file stem, in `language` (`None`: Uzbek then Russian).
    Ivr {
        /// The prompt's file stem.
        stem: String,
        /// The language, if chosen.
        language: Option<String>,
    },
    /// "Please wait" on joining the queue.
    PleaseWait {
        /// The caller's language.
        language: Option<String>,
    },
    /// Place in the queue and expected wait.
    Announcement {
        /// Place, from 1.
        position: usize,
        /// Operators serving the queue.
        serving: usize,
        /// The caller's language.
        language: Option<String>,
    },
    /// The callback offer: invitation, then the key.
    CallbackOffer {
        /// The accepting key.
        digit: char,
        /// The caller's language (`None`: each language in turn).
        language: Option<String>,
    },
    /// The door offer: the callback (today, or the next morning's window) with its key,
    /// then the SMS with its key.
    DoorOffer {
        /// The callback offered and its key, if any.
        callback: Option<(CallbackWhen, char)>,
        /// The SMS key, if the SMS is offered.
        sms_digit: Option<char>,
        /// The caller's language.
        language: Option<String>,
    },
    /// "The information is on its way by SMS."
    SmsSent {
        /// The caller's language.
        language: Option<String>,
    },
    /// "Your callback is booked."
    CallbackBooked {
        /// The caller's language.
        language: Option<String>,
    },
    /// The working-hours announcement of a closed line (bilingual).
    Closed,
}

/// A request to the ACD about this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcdRequest {
    /// The caller left while queued or being offered.
    CallerLeft,
    /// A conversation ended: the operator goes to wrap-up.
    CallEnded,
    /// This operator answered.
    Answered {
        /// The operator.
        operator: OperatorId,
    },
    /// This operator's phone refused the offer.
    Declined {
        /// The operator.
        operator: OperatorId,
    },
    /// The caller took the information by SMS and leaves the queue (`deflected`).
    LeftForSms,
    /// The door offer made to this caller is closed (keyed, declined, or the call moved
    /// on): it no longer holds a callback place.
    DoorClosed,
}

/// What the driver must do next, in order.
#[derive(Debug, Clone)]
pub enum Action {
    /// Put this event on the bus.
    Emit(EventKind),
    /// Send the caller the 200 that ends early media, then feed [`Input::CallerAnswered`].
    AnswerCaller,
    /// End the caller's leg (BYE, or 480 while still in early media).
    HangUpCaller,
    /// Refuse the caller's INVITE with this final status.
    RejectCaller {
        /// The status.
        status: u16,
    },
    /// Queue a prompt; report [`Input::Played`] with `id`.
    Play {
        /// Echoed back.
        id: PlayId,
        /// What to play.
        prompt: Prompt,
    },
    /// Drop queued and playing prompts.
    StopPrompts,
    /// Hold music while no prompt plays (`false`: silence).
    Music(bool),
    /// The IVR chose a queue by name: resolve it and feed [`Input::Enqueued`] or
    /// [`Input::RouteFailed`].
    Route {
        /// The queue's name.
        queue: String,
    },
    /// Put the call into the ACD.
    Enqueue {
        /// The queue.
        queue: QueueId,
        /// Its priority.
        priority: u8,
        /// The topic chosen (its skill is needed).
        topic: Option<String>,
    },
    /// Tell the ACD.
    Acd(AcdRequest),
    /// Ring this operator's phone; feed [`Input::RingFailed`] when it cannot be rung.
    Ring {
        /// The operator.
        operator: OperatorId,
        /// The ringing's number, for its leg's events.
        attempt: Attempt,
    },
    /// Stop ringing (CANCEL) or end (BYE) the phone of this ringing, and free its port.
    HangUpPhone {
        /// The ringing.
        attempt: Attempt,
    },
    /// Join the caller and this operator's leg, and record them.
    Bridge {
        /// The ringing that answered.
        attempt: Attempt,
        /// Its SDP answer.
        sdp: Option<String>,
    },
    /// Drop the operator's leg from the media (an answer the ACD refused).
    Unbridge,
    /// Ask the ACD for the call's place; feed [`Input::Position`] with the answer.
    AskPosition,
    /// Ask the ACD to book a callback; feed [`Input::CallbackBooked`] or
    /// [`Input::CallbackRefused`].
    RequestCallback {
        /// The queue.
        queue: QueueId,
        /// The caller's language.
        language: String,
        /// When the caller joined the queue: the place the callback keeps.
        enqueued_at: Millis,
        /// Promised for the next morning's window (the door policy), not for today.
        next_morning: bool,
    },
    /// Ask the ACD host what the door policy offers now (at `offer_after`); it answers
    /// with [`Input::DoorOffer`].
    AskDoorOffer {
        /// The queue.
        queue: QueueId,
    },
    /// A side of the bridge holds (hold music for the other) or resumes.
    Hold {
        /// Who.
        by: HoldBy,
        /// On hold now.
        held: bool,
    },
    /// A leg's media follows its re-offer.
    Renegotiate {
        /// Which leg.
        side: HoldBy,
        /// Its media from now on.
        media: Negotiated,
    },
    /// A supervisor's rung phone answered: mix their leg in.
    MonitorAnswered {
        /// Their ringing.
        attempt: Attempt,
        /// Their SDP answer.
        sdp: Option<String>,
        /// What they do.
        mode: MonitorMode,
    },
    /// The supervisor already on the call changes mode.
    SetMonitorMode(MonitorMode),
    /// The supervisor left: drop their leg from the media.
    EndMonitor,
    /// The call ends: hang up the supervisor's leg, rung or dialled.
    HangUpMonitor,
    /// Stop the media session.
    StopMedia,
    /// The call is over: every leg is handled; stop the driver.
    Finished,
}

/// Where the call is, as a supervisor would describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPhase {
    /// Not yet started.
    Admission,
    /// In the menu.
    Ivr,
    /// Waiting in a queue, no phone ringing.
    Queued,
    /// In a queue with at least one operator's phone ringing.
    Offering,
    /// Caller and operator talk.
    Bridged,
    /// Bridged, and a side holds.
    Held,
    /// Bridged, and a supervisor listens, whispers or barges.
    Monitored,
    /// A last prompt plays (goodbye, closed line, callback booked), then the call ends.
    Leaving,
    /// Over, with exactly one outcome.
    Ended,
}

/// How a call ended: its one outcome and who ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// The outcome.
    pub outcome: CallOutcome,
    /// Who ended it: `caller`, `operator`, `router`, `ivr` or `shutdown`.
    pub by: &'static str,
}
