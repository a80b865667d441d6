//! The two legs of a B2BUA call and the tasks that turn dialog states into
//! messages for the call's actor.

use super::sdp::Negotiated;
use super::{ContactBinding, SipError, SipStack};
use crate::privacy::PhoneNumber;
use rsipstack::dialog::dialog::{DialogState, DialogStateReceiver, TerminatedReason};
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, StatusCode};
use std::sync::{Arc, Mutex};

/// What happened on a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// The caller's ACK arrived: the call is established.
    CallerConfirmed,
    /// A DTMF digit from the caller (`via`: "info").
    CallerDtmf {
        /// 0-9, *, #, A-D
        digit: char,
        /// How it arrived.
        via: &'static str,
    },
    /// The caller's leg ended (BYE, CANCEL, timeout).
    CallerGone {
        /// Why, in words for the event log.
        cause: &'static str,
    },
    /// The operator's phone is ringing.
    OperatorRinging {
        /// The offer attempt.
        attempt: u64,
    },
    /// The operator answered.
    OperatorAnswered {
        /// The offer attempt.
        attempt: u64,
        /// The SDP answer in the 2xx, if it had a body.
        sdp: Option<String>,
    },
    /// The operator's phone refused or could not be reached.
    OperatorFailed {
        /// The offer attempt.
        attempt: u64,
        /// The final status (408 for no response).
        status: u16,
    },
    /// The caller sent a re-offer (re-INVITE or UPDATE with SDP) and we answered it: hold
    /// (`held`) or resume, and possibly another codec or address.
    CallerHold {
        /// On hold now.
        held: bool,
        /// The caller's leg's media from now on.
        media: Negotiated,
    },
    /// The operator sent a re-offer and we answered it (see `CallerHold`).
    OperatorHold {
        /// The offer attempt.
        attempt: u64,
        /// On hold now.
        held: bool,
        /// The operator's leg's media from now on.
        media: Negotiated,
    },
    /// The operator's established leg ended.
    OperatorGone {
        /// The offer attempt.
        attempt: u64,
        /// Why, in words for the event log.
        cause: &'static str,
    },
}

impl LegEvent {
    /// Whether the call must get this event whatever its mailbox holds. The leg's ends and
    /// answers (answer, refusal, BYE/CANCEL) happen once per leg and the caller's ACK once
    /// per INVITE transaction, so they bound themselves, and losing one would leave a leg
    /// up or a call without its right outcome. Keys by INFO, re-offers and ringing can
    /// come as fast as a peer sends them: those are shed when the call's mailbox is full
    /// (a person keys a few digits a second; only a flood fills it). A shed re-offer
    /// leaves the media on the leg's earlier parameters until the next one.
    pub fn must_deliver(&self) -> bool {
        match self {
            LegEvent::CallerConfirmed
            | LegEvent::CallerGone { .. }
            | LegEvent::OperatorAnswered { .. }
            | LegEvent::OperatorFailed { .. }
            | LegEvent::OperatorGone { .. } => true,
            LegEvent::CallerDtmf { .. }
            | LegEvent::CallerHold { .. }
            | LegEvent::OperatorHold { .. }
            | LegEvent::OperatorRinging { .. } => false,
        }
    }
}

/// A [`LegEvent`] as an actix message.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct LegMsg(pub LegEvent);

/// Sends a leg's event to its call. Lossy events respect the call's bounded mailbox and
/// are counted when shed; the rest always go (see [`LegEvent::must_deliver`]). A call that
/// has ended takes nothing, and that is no loss. Returns `false` when the event was shed.
pub(super) fn deliver(to: &actix::Recipient<LegMsg>, event: LegEvent) -> bool {
    if event.must_deliver() {
        to.do_send(LegMsg(event));
        return true;
    }
    match to.try_send(LegMsg(event)) {
        Err(actix::prelude::SendError::Full(_)) => {
            let mailbox = crate::metrics::MAILBOX_CALL_LEG;
            metrics::counter!(crate::metrics::MAILBOX_SHED, "mailbox" => mailbox).increment(1);
            false
        }
        Ok(()) | Err(actix::prelude::SendError::Closed(_)) => true,
    }
}

/// The caller's leg (we are the UAS): over UDP on navbat's own transactions (`own::uas`),
/// otherwise (TCP, feature codes) on rsipstack's dialogs.
#[derive(Clone)]
pub struct CallerLeg {
    offer: Option<Arc<str>>,
    kind: CallerKind,
}

#[derive(Clone)]
enum CallerKind {
    Stack {
        stack: SipStack,
        dialog: InviteDialog,
        local_sdp: Arc<Mutex<Option<String>>>,
    },
    Own(super::own::OwnCaller),
}

impl std::fmt::Debug for CallerLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerLeg").finish_non_exhaustive()
    }
}

impl CallerLeg {
    pub(super) fn new(
        stack: SipStack,
        dialog: InviteDialog,
        req: &rsipstack::sip::Request,
    ) -> CallerLeg {
        let offer =
            (!req.body().is_empty()).then(|| String::from_utf8_lossy(req.body()).as_ref().into());
        CallerLeg {
            offer,
            kind: CallerKind::Stack {
                stack,
                dialog,
                local_sdp: Arc::new(Mutex::new(None)),
            },
        }
    }

    pub(super) fn own(leg: super::own::OwnCaller, offer: Option<String>) -> CallerLeg {
        CallerLeg {
            offer: offer.map(Into::into),
            kind: CallerKind::Own(leg),
        }
    }

    /// Our side's SDP of an rsipstack leg (what its re-INVITEs are answered from).
    fn stack_sdp(&self) -> Option<Arc<Mutex<Option<String>>>> {
        match &self.kind {
            CallerKind::Stack { local_sdp, .. } => Some(local_sdp.clone()),
            CallerKind::Own(_) => None,
        }
    }

    /// The caller's SDP offer, if the INVITE carried one.
    pub fn remote_offer(&self) -> Option<&str> {
        self.offer.as_deref()
    }

    /// Sends 183 Session Progress with this SDP: early media (the greeting instead of
    /// ringback, D5) flows before the call is answered.
    pub fn progress(&self, sdp: String) -> Result<(), SipError> {
        match &self.kind {
            CallerKind::Own(leg) => leg.progress(sdp),
            CallerKind::Stack {
                dialog, local_sdp, ..
            } => {
                *local_sdp.lock().unwrap_or_else(|e| e.into_inner()) = Some(sdp.clone());
                dialog.ringing(
                    Some(vec![Header::ContentType("application/sdp".into())]),
                    Some(sdp.into_bytes()),
                )?;
                Ok(())
            }
        }
    }

    /// Answers with 200 OK and this SDP.
    pub fn answer(&self, sdp: String) -> Result<(), SipError> {
        match &self.kind {
            CallerKind::Own(leg) => leg.answer(sdp),
            CallerKind::Stack {
                dialog, local_sdp, ..
            } => {
                *local_sdp.lock().unwrap_or_else(|e| e.into_inner()) = Some(sdp.clone());
                dialog.accept(
                    Some(vec![Header::ContentType("application/sdp".into())]),
                    Some(sdp.into_bytes()),
                )?;
                Ok(())
            }
        }
    }

    /// Refuses the INVITE before it was answered.
    pub fn reject(&self, status: u16) {
        match &self.kind {
            CallerKind::Own(leg) => leg.reject(status),
            CallerKind::Stack { dialog, .. } => {
                if let Err(e) = dialog.reject(Some(StatusCode::from(status)), None) {
                    tracing::debug!(error = %e, "reject failed");
                }
            }
        }
    }

    /// Ends the leg: BYE once answered; a leg never answered (still in early media) gets a
    /// final `480 Temporarily Unavailable` instead, so the caller is never left waiting
    /// in the early state.
    pub fn hangup(&self) {
        let (stack, dialog) = match &self.kind {
            CallerKind::Own(leg) => return leg.hangup(),
            CallerKind::Stack { stack, dialog, .. } => (stack, dialog),
        };
        let state = dialog.state();
        if state.can_cancel() {
            self.reject(480);
            return;
        }
        let waiting_ack = state.waiting_ack();
        let dialog = dialog.clone();
        stack.inner.rt.spawn(async move {
            if waiting_ack {
                // RFC 3261 §15: no BYE before the ACK of our 200 (or its transaction's end,
                // 64*T1): an operator who hangs up at once must not race the caller's ACK.
                let until = tokio::time::Instant::now() + std::time::Duration::from_secs(32);
                while dialog.state().waiting_ack() && tokio::time::Instant::now() < until {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            if let Err(e) = dialog.hangup().await {
                tracing::debug!(error = %e, "caller hangup failed");
            }
        });
    }
}

/// The operator's leg (we are the UAC): over UDP on navbat's own transactions
/// (`own::uac`), otherwise (TCP) on rsipstack's dialogs.
#[derive(Clone)]
pub struct OperatorLeg(OperatorKind);

#[derive(Clone)]
enum OperatorKind {
    Stack {
        stack: SipStack,
        dialog: InviteDialog,
    },
    Own(super::own::OwnLeg),
}

impl std::fmt::Debug for OperatorLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorLeg").finish_non_exhaustive()
    }
}

impl OperatorLeg {
    pub(super) fn own(leg: super::own::OwnLeg) -> OperatorLeg {
        OperatorLeg(OperatorKind::Own(leg))
    }

    /// Stops ringing (CANCEL) or ends the call (BYE), whichever applies.
    pub fn hangup(&self) {
        match &self.0 {
            OperatorKind::Own(leg) => leg.hangup(),
            OperatorKind::Stack { stack, dialog } => {
                let dialog = dialog.clone();
                stack.inner.rt.spawn(async move {
                    if let Err(e) = dialog.hangup().await {
                        tracing::debug!(error = %e, "operator hangup failed");
                    }
                });
            }
        }
    }
}

/// What a leg answers to an in-dialog re-INVITE or UPDATE.
#[derive(Debug)]
pub(super) struct ReofferReply {
    /// 200, or 488 when the offer is unusable.
    pub(super) status: u16,
    /// The SDP of the answer, if any.
    pub(super) sdp: Option<String>,
    /// When an offer was answered: whether the peer now holds the call, and the leg's media
    /// from now on.
    pub(super) outcome: Option<(bool, Negotiated)>,
}

/// The answer to an in-dialog re-INVITE or UPDATE with `body` on a leg whose local SDP is
/// `local`: without a body, 200 with our current SDP (or none); with an offer, our answer in
/// the answering direction (RFC 3264 §8.4: `sendonly` is answered `recvonly`, `inactive`
/// `inactive`), keeping the codec in use when the offer still lists it, and `local` becomes
/// that answer (what a later body-less re-INVITE gets back). An unusable offer gets 488 and
/// changes nothing.
pub(super) fn reoffer_reply(local: &mut Option<String>, body: &[u8]) -> ReofferReply {
    static VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let Some(current) = local.as_deref() else {
        return ReofferReply {
            status: 200,
            sdp: None,
            outcome: None,
        };
    };
    if body.is_empty() {
        return ReofferReply {
            status: 200,
            sdp: Some(current.to_owned()),
            outcome: None,
        };
    }
    let offer = String::from_utf8_lossy(body);
    let version = VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    match super::sdp::answer_reoffer(current, &offer, version) {
        Some(answer) => {
            *local = Some(answer.body.clone());
            ReofferReply {
                status: 200,
                sdp: Some(answer.body),
                outcome: Some((answer.asked.is_hold(), answer.media)),
            }
        }
        None => ReofferReply {
            status: 488,
            sdp: None,
            outcome: None,
        },
    }
}

/// Answers an in-dialog re-INVITE or UPDATE on an rsipstack leg ([`reoffer_reply`]).
async fn answer_update(
    req: &rsipstack::sip::Request,
    handle: rsipstack::dialog::dialog::TransactionHandle,
    local: &Mutex<Option<String>>,
) -> Option<(bool, Negotiated)> {
    let reply = reoffer_reply(
        &mut local.lock().unwrap_or_else(|e| e.into_inner()),
        req.body(),
    );
    let status = StatusCode::from(reply.status);
    let result = match reply.sdp {
        Some(sdp) => {
            let sdp_header = Some(vec![Header::ContentType("application/sdp".into())]);
            handle
                .respond(status, sdp_header, Some(sdp.into_bytes()))
                .await
        }
        None => handle.reply(status).await,
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "re-INVITE answer failed");
    }
    reply.outcome
}

fn cause(reason: &TerminatedReason) -> &'static str {
    match reason {
        TerminatedReason::Timeout => "timeout",
        TerminatedReason::UacCancel => "cancel",
        TerminatedReason::UacBye | TerminatedReason::UasBye => "bye",
        TerminatedReason::UacBusy | TerminatedReason::UasBusy => "busy",
        TerminatedReason::UasDecline => "decline",
        _ => "error",
    }
}

/// DTMF digits carried by an INFO body (RFC 2976 INFO with the
/// `application/dtmf-relay` or `application/dtmf` conventions).
pub fn info_digits(content_type: &str, body: &str) -> Option<Vec<char>> {
    let ct = content_type.trim().to_ascii_lowercase();
    let valid = |c: char| c.is_ascii_digit() || "*#ABCDabcd".contains(c);
    if ct.starts_with("application/dtmf-relay") {
        for line in body.lines() {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim().eq_ignore_ascii_case("signal") {
                    let v = v.trim();
                    let digit = match v {
                        "10" => Some('*'),
                        "11" => Some('#'),
                        _ => v.chars().next().filter(|c| v.len() == 1 && valid(*c)),
                    };
                    return Some(
                        digit
                            .map(|d| vec![d.to_ascii_uppercase()])
                            .unwrap_or_default(),
                    );
                }
            }
        }
        Some(Vec::new())
    } else if ct.starts_with("application/dtmf") {
        Some(
            body.trim()
                .chars()
                .filter(|c| valid(*c))
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        )
    } else {
        None
    }
}

pub(super) async fn pump_caller(
    mut rx: DialogStateReceiver,
    to: actix::Recipient<LegMsg>,
    leg: CallerLeg,
    stack: SipStack,
    // Held while the dialog lives: the source's call counts at the door until it ends.
    _door_ticket: Option<super::guard::DoorTicket>,
) {
    while let Some(state) = rx.recv().await {
        match state {
            DialogState::Confirmed(..) => {
                deliver(&to, LegEvent::CallerConfirmed);
            }
            DialogState::Info(_, req, handle) => {
                let ct = req.header_value("Content-Type").unwrap_or_default();
                let body = String::from_utf8_lossy(req.body()).into_owned();
                match info_digits(&ct, &body) {
                    Some(digits) => {
                        let _ = handle.reply(StatusCode::OK).await;
                        for digit in digits {
                            deliver(&to, LegEvent::CallerDtmf { digit, via: "info" });
                        }
                    }
                    None => {
                        let _ = handle.reply(StatusCode::UnsupportedMediaType).await;
                    }
                }
            }
            DialogState::Updated(_, req, handle) => {
                // re-INVITE or UPDATE: hold, resume or a refreshed offer.
                let Some(local_sdp) = leg.stack_sdp() else {
                    continue;
                };
                if let Some((held, media)) = answer_update(&req, handle, &local_sdp).await {
                    deliver(&to, LegEvent::CallerHold { held, media });
                }
            }
            DialogState::Options(_, _, handle) => {
                let _ = handle.reply(StatusCode::OK).await;
            }
            DialogState::Message(_, _, handle)
            | DialogState::Notify(_, _, handle)
            | DialogState::Refer(_, _, handle)
            | DialogState::Publish(_, _, handle) => {
                let _ = handle.reply(StatusCode::MethodNotAllowed).await;
            }
            DialogState::Terminated(id, reason) => {
                stack.inner.dialogs.remove_dialog(&id);
                deliver(
                    &to,
                    LegEvent::CallerGone {
                        cause: cause(&reason),
                    },
                );
                break;
            }
            _ => {}
        }
    }
}

pub(super) fn call_operator(
    stack: &SipStack,
    binding: &ContactBinding,
    caller: &PhoneNumber,
    sdp_offer: String,
    attempt: u64,
    to: actix::Recipient<LegMsg>,
) -> Result<OperatorLeg, SipError> {
    let inner = &stack.inner;
    let host = inner.contact.host_with_port.clone();
    // The operator's phone shows the caller's number: operators need it to
    // work the request (D18 allows it; logs never see it).
    let user = caller.expose();
    let user = if user.is_empty() { "anonymous" } else { user };
    let caller_uri = rsipstack::sip::Uri::try_from(format!("sip:{user}@{host}"))
        .or_else(|_| rsipstack::sip::Uri::try_from(format!("sip:anonymous@{host}")))
        .map_err(|e| SipError::Stack(e.to_string()))?;
    // Our own Call-ID: 128 random bits at our host (the stack's default names its
    // author's domain).
    let call_id = format!("{:032x}@{}", rand::random::<u128>(), host.host);
    let opt = InviteOption {
        call_id: Some(call_id),
        caller: caller_uri,
        callee: binding.contact.clone(),
        destination: Some(binding.target.clone()),
        content_type: Some("application/sdp".into()),
        offer: Some(sdp_offer.clone().into_bytes()),
        contact: inner.contact.clone(),
        ..Default::default()
    };
    let (state_tx, state_rx) = inner.dialogs.new_dialog_state_channel();
    let _guard = inner.rt.enter();
    let (dialog, join) = inner.dialogs.do_invite_async(opt, state_tx)?;
    let leg = OperatorLeg(OperatorKind::Stack {
        stack: stack.clone(),
        dialog,
    });
    let dialogs = inner.dialogs.clone();
    let to2 = to.clone();
    // Our side of the operator leg's SDP: the offer, settled on the codec the operator's
    // answer chose, then each answer to a re-offer.
    let local = Arc::new(Mutex::new(Some(sdp_offer.clone())));
    let local2 = local.clone();
    inner.rt.spawn(async move {
        let mut rx = state_rx;
        while let Some(state) = rx.recv().await {
            match state {
                DialogState::Early(..) => {
                    deliver(&to2, LegEvent::OperatorRinging { attempt });
                }
                DialogState::Info(_, _, handle) | DialogState::Options(_, _, handle) => {
                    let _ = handle.reply(StatusCode::OK).await;
                }
                DialogState::Updated(_, req, handle) => {
                    if let Some((held, media)) = answer_update(&req, handle, &local).await {
                        deliver(
                            &to2,
                            LegEvent::OperatorHold {
                                attempt,
                                held,
                                media,
                            },
                        );
                    }
                }
                DialogState::Terminated(id, reason) => {
                    dialogs.remove_dialog(&id);
                    deliver(
                        &to2,
                        LegEvent::OperatorGone {
                            attempt,
                            cause: cause(&reason),
                        },
                    );
                    break;
                }
                _ => {}
            }
        }
    });
    inner.rt.spawn(async move {
        let event = match join.await {
            Ok(Ok((_, Some(resp))))
                if resp.status_code.kind() == rsipstack::sip::StatusCodeKind::Successful =>
            {
                let sdp = (!resp.body().is_empty())
                    .then(|| String::from_utf8_lossy(resp.body()).into_owned());
                if let Some(ours) = sdp
                    .as_deref()
                    .and_then(|theirs| super::sdp::settled(&sdp_offer, theirs, 2))
                {
                    *local2.lock().unwrap_or_else(|e| e.into_inner()) = Some(ours);
                }
                LegEvent::OperatorAnswered { attempt, sdp }
            }
            Ok(Ok((_, Some(resp)))) => LegEvent::OperatorFailed {
                attempt,
                status: u16::from(resp.status_code),
            },
            Ok(Ok((_, None))) => LegEvent::OperatorFailed {
                attempt,
                status: 408,
            },
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "operator INVITE failed");
                LegEvent::OperatorFailed {
                    attempt,
                    status: 503,
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "operator INVITE task failed");
                LegEvent::OperatorFailed {
                    attempt,
                    status: 500,
                }
            }
        };
        deliver(&to, event);
    });
    Ok(leg)
}

#[cfg(test)]
mod tests {
    use super::{deliver, info_digits, LegEvent, LegMsg};
    use actix::prelude::*;

    /// A call that has not had a turn yet: its mailbox fills.
    #[derive(Default)]
    struct BusyCall {
        got: Vec<LegEvent>,
    }

    impl Actor for BusyCall {
        type Context = Context<Self>;
    }

    impl Handler<LegMsg> for BusyCall {
        type Result = ();
        fn handle(&mut self, msg: LegMsg, _: &mut Context<Self>) {
            self.got.push(msg.0);
        }
    }

    #[derive(Message)]
    #[rtype(result = "Vec<LegEvent>")]
    struct Got;

    impl Handler<Got> for BusyCall {
        type Result = MessageResult<Got>;
        fn handle(&mut self, _: Got, _: &mut Context<Self>) -> Self::Result {
            MessageResult(std::mem::take(&mut self.got))
        }
    }

    #[test]
    fn a_flood_of_keys_is_shed_at_the_mailbox_bound_but_the_hang_up_arrives() {
        actix::System::new().block_on(async {
            let call = BusyCall::create(|ctx| {
                ctx.set_mailbox_capacity(4);
                BusyCall::default()
            });
            let to = call.clone().recipient::<LegMsg>();
            let answered = deliver(
                &to,
                LegEvent::OperatorAnswered {
                    attempt: 1,
                    sdp: None,
                },
            );
            let keys = (0..50)
                .filter(|_| {
                    deliver(
                        &to,
                        LegEvent::CallerDtmf {
                            digit: '5',
                            via: "info",
                        },
                    )
                })
                .count();
            let gone = deliver(&to, LegEvent::CallerGone { cause: "bye" });
            let got = call.send(Got).await.expect("the call is up");
            assert!(answered && gone);
            assert!((1..50).contains(&keys), "{keys} of 50 keys queued");
            assert_eq!(got.len(), keys + 2, "{got:?}");
            assert!(matches!(got[0], LegEvent::OperatorAnswered { .. }));
            assert!(matches!(got.last(), Some(LegEvent::CallerGone { .. })));
        });
    }

    #[test]
    fn dtmf_relay_and_plain_dtmf_bodies() {
        assert_eq!(
            info_digits("application/dtmf-relay", "Signal=1\r\nDuration=160\r\n"),
            Some(vec!['1'])
        );
        assert_eq!(
            info_digits("application/dtmf-relay", "Signal=11\r\n"),
            Some(vec!['#'])
        );
        assert_eq!(info_digits("Application/DTMF", "5"), Some(vec!['5']));
        assert_eq!(
            info_digits("application/dtmf-relay", "Signal=x9\r\n"),
            Some(vec![])
        );
        assert_eq!(info_digits("text/plain", "1"), None);
    }
}
