//! The caller's leg over UDP on navbat's own transactions: the UAS side of a call
//! (issue 18 part 4).
//!
//! The trunk's INVITE gets 100 Trying at once, then the door and the application decide
//! ([`crate::sip::Admitter`], the same decision the rsipstack path takes): a refusal is a
//! final response the INVITE's transaction repeats until its ACK (timer H); an admitted call
//! gets a [`super::OwnCaller`] and its actor. The actor sends 183 with the greeting's SDP
//! (early media, D5), answers 200 (retransmitted until the ACK, §13.3.1.4), refuses, or hangs
//! up: 480 before an answer, BYE after it (after the ACK of our 200, §15). From the caller:
//! CANCEL (200, then 487 for the INVITE), ACK, BYE, INFO with DTMF, re-INVITE and UPDATE
//! (hold and resume), OPTIONS; an out-of-order CSeq gets 500 (§12.2.2).
//!
//! Every new INVITE in a datagram navbat reads (up to 8 KB; larger ones are answered 513 by
//! the guard) is taken here; the responses kept for its retransmissions copy only its Via,
//! From, To, Call-ID and CSeq, not its SDP. A feature-code INVITE (a supervisor listening
//! in, `features.rs`) is a leg like a caller's once its digest is right; until then it is
//! answered 407 with the challenges. INVITEs over TCP stay on rsipstack.

use super::uac::{
    finish_message, random_token, split_list, uri_of, Purpose, BRANCH_PREFIX, TAG_PREFIX,
};
use super::{has_to_tag, OwnTransactions, Shared};
use crate::metrics::{sip_code_label, SIP_INVITE_LATENCY, SIP_REQUESTS, SIP_RESPONSES};
use crate::sip::guard::DoorTicket;
use crate::sip::legs::{deliver, info_digits, reoffer_reply, LegEvent, LegMsg};
use crate::sip::tag::header_tag;
use crate::sip::txn::{
    Method, Millis, OutgoingRequest, Refused, RequestMeta, TxnId, Verdict, Wire,
};
use crate::sip::{method_index, CallerLeg, Decision, SipError};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Request, StatusCode};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One caller's leg.
pub(super) struct Caller {
    call_id: String,
    /// The call's actor (set, under the lock, before anything can happen on the leg).
    to: Option<actix::Recipient<LegMsg>>,
    /// Where the INVITE came from: every response and request of the leg goes here.
    peer: SocketAddr,
    remote_tag: Option<String>,
    /// The INVITE's Via, From, Call-ID and CSeq lines, for its responses.
    head: String,
    /// The INVITE's Record-Route lines (copied into the responses that make the dialog).
    record_route: String,
    /// The INVITE's To value (no tag) and From value (with the caller's tag).
    to_value: String,
    from_value: String,
    /// The route set (the INVITE's Record-Route, in order) and the remote target (its
    /// Contact), for our BYE.
    route: Vec<String>,
    target: String,
    invite_txn: TxnId,
    invite_branch: String,
    /// A final response went out.
    final_sent: bool,
    /// Our 200 waits for its ACK.
    awaiting_ack: bool,
    /// The call hung up before the ACK of our 200: BYE when it comes.
    hangup_pending: bool,
    cseq: u32,
    remote_cseq: u32,
    local_sdp: Option<String>,
    reinvite: Option<TxnId>,
    /// The source's place at the door, while the leg lives.
    _ticket: Option<DoorTicket>,
}

impl Caller {
    /// Whether an in-dialog request with this Call-ID and From tag is the caller's.
    pub(super) fn matches(&self, call_id: &str, from_tag: Option<&str>) -> bool {
        self.call_id == call_id && self.remote_tag.as_deref() == from_tag
    }

    fn tell(&self, event: LegEvent) {
        if let Some(to) = &self.to {
            deliver(to, event);
        }
    }

    /// A response to the INVITE: `tag` puts our To tag on it; a dialog-making one (18x, 2xx)
    /// carries our Contact and the Record-Route.
    fn response(
        &self,
        local_tag: &str,
        status: u16,
        contact: Option<&str>,
        extra: &str,
        body: Option<&str>,
        user_agent: &str,
    ) -> Wire {
        let mut m = String::with_capacity(600 + body.map_or(0, str::len));
        let _ = write!(
            m,
            "SIP/2.0 {}\r\n{}To: {}",
            StatusCode::from(status),
            self.head,
            self.to_value
        );
        if status > 100 {
            let _ = write!(m, ";tag={local_tag}");
        }
        m.push_str("\r\n");
        if let Some(contact) = contact {
            m.push_str(&self.record_route);
            let _ = write!(m, "Contact: <{contact}>\r\n");
        }
        m.push_str(extra);
        finish_message(m, user_agent, body)
    }
}

/// The caller's leg as the call's actor holds it.
#[derive(Clone)]
pub(crate) struct OwnCaller {
    own: Arc<OwnTransactions>,
    key: Arc<str>,
}

impl OwnCaller {
    /// 183 Session Progress with this SDP (early media).
    pub(crate) fn progress(&self, sdp: String) -> Result<(), SipError> {
        self.own.caller_sdp_response(&self.key, 183, sdp)
    }

    /// 200 OK with this SDP, retransmitted until the caller's ACK.
    pub(crate) fn answer(&self, sdp: String) -> Result<(), SipError> {
        self.own.caller_sdp_response(&self.key, 200, sdp)
    }

    /// Refuses the INVITE with `status` before it was answered.
    pub(crate) fn reject(&self, status: u16) {
        self.own.caller_reject(&self.key, status);
    }

    /// 480 before an answer, BYE after it.
    pub(crate) fn hangup(&self) {
        self.own.caller_hangup(&self.key);
    }
}

fn gone() -> SipError {
    SipError::Stack("the caller's leg has ended".into())
}

/// The text of the headers `wanted` of `req`, one line each, in order.
fn lines_of(req: &Request, wanted: impl Fn(&Header) -> Option<(&'static str, String)>) -> String {
    let mut out = String::new();
    for header in req.headers.iter() {
        if let Some((name, value)) = wanted(header) {
            let _ = write!(out, "{name}: {value}\r\n");
        }
    }
    out
}

impl OwnTransactions {
    /// Takes a new INVITE from `from` (UDP, no To tag; `feature`: the code it dialled, for a
    /// supervisor's call, decided on its digest first): its transaction,
    /// 100 Trying, the decision, and the leg. Handed back (for rsipstack) when the layer
    /// cannot match it or our addresses are not known yet.
    pub(super) fn caller_invite(
        self: &Arc<Self>,
        req: Request,
        from: SocketAddr,
        feature: Option<crate::sip::features::FeatureCode>,
    ) -> Option<Request> {
        let received = std::time::Instant::now();
        if self.local.get().is_none() {
            return Some(req);
        }
        let (Some((branch, sent_by)), Some((cseq, cseq_method))) =
            (super::top_via(&req), super::uac::cseq_of(&req))
        else {
            return Some(req);
        };
        let Ok(call_id) = req.call_id_header().map(|c| c.value().to_owned()) else {
            return Some(req);
        };
        let meta = RequestMeta {
            method: Method::Invite,
            branch: &branch,
            sent_by: &sent_by,
            cseq_method,
            reliable: false,
            peer: from,
        };
        let local_tag = format!("{TAG_PREFIX}{}", random_token());
        let head = lines_of(&req, |h| match h {
            Header::Via(v) => Some(("Via", v.value().to_owned())),
            Header::From(v) => Some(("From", v.value().to_owned())),
            Header::CallId(v) => Some(("Call-ID", v.value().to_owned())),
            Header::CSeq(v) => Some(("CSeq", v.value().to_owned())),
            _ => None,
        });
        let record_route = lines_of(&req, |h| match h {
            Header::RecordRoute(v) => Some(("Record-Route", v.value().to_owned())),
            _ => None,
        });
        let mut route = Vec::new();
        let mut target = None;
        for header in req.headers.iter() {
            match header {
                Header::RecordRoute(r) => route.extend(split_list(r.value())),
                Header::Contact(c) if target.is_none() => {
                    target = split_list(c.value()).first().map(|v| uri_of(v).to_owned());
                }
                _ => {}
            }
        }
        let header_value = |h: Option<&Header>| match h {
            Some(Header::To(v)) => v.value().to_owned(),
            Some(Header::From(v)) => v.value().to_owned(),
            _ => String::new(),
        };
        let to_value = header_value(req.headers.iter().find(|h| matches!(h, Header::To(_))));
        let from_value = header_value(req.headers.iter().find(|h| matches!(h, Header::From(_))));
        let remote_tag = req
            .from_header()
            .ok()
            .and_then(|f| header_tag(f.value()))
            .map(str::to_owned);
        let mut caller = Caller {
            call_id,
            to: None,
            peer: from,
            remote_tag,
            head,
            record_route,
            to_value,
            from_value,
            route,
            target: target.unwrap_or_else(|| req.uri.to_string()),
            invite_txn: TxnId(0),
            invite_branch: branch.clone(),
            final_sent: false,
            awaiting_ack: false,
            hangup_pending: false,
            cseq: 0,
            remote_cseq: cseq,
            local_sdp: None,
            reinvite: None,
            _ticket: None,
        };
        let txn = {
            let mut state = self.state();
            let now = self.now();
            let txn = match state.legs.layer.on_request(now, &meta) {
                Ok(Verdict::New { txn, .. }) => txn,
                Ok(Verdict::Unmatchable) => return Some(req),
                Ok(_) => {
                    // A retransmission: the layer answered it from what it keeps.
                    self.flush_legs(&mut state);
                    return None;
                }
                Err(Refused::Full { .. } | Refused::HashCollision) => {
                    // The peer retransmits; nothing is kept.
                    self.counters.guard.dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                Err(Refused::CseqMethodMismatch) => {
                    self.counters.guard.dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            };
            metrics::counter!(SIP_REQUESTS, "direction" => "in", "method" => "INVITE").increment(1);
            self.counters.requests[method_index("INVITE")].fetch_add(1, Ordering::Relaxed);
            caller.invite_txn = txn;
            let trying = caller.response(&local_tag, 100, None, "", None, &self.user_agent);
            if let Err(e) = state.legs.layer.respond(now, txn, 100, trying) {
                tracing::debug!(error = %e, "100 Trying refused");
            }
            count_response("INVITE", 100);
            metrics::histogram!(SIP_INVITE_LATENCY, "role" => "uas")
                .record(received.elapsed().as_secs_f64());
            self.flush_legs(&mut state);
            txn
        };
        // The decision outside the lock: the application and the door have locks of their own.
        // A feature code is a supervisor's call: digest first (407 until it is right).
        let decision = match feature {
            Some(code) => self.admitter.decide_feature(&req, code),
            None => self.admitter.decide(&req, "udp"),
        };
        let (status, extra) = match decision {
            Decision::Challenge { offers } => (
                407,
                offers
                    .iter()
                    .map(|o| format!("Proxy-Authenticate: {o}\r\n"))
                    .collect::<String>(),
            ),
            Decision::Reject {
                status,
                retry_after,
            } => (
                status,
                retry_after.map_or_else(String::new, |s| format!("Retry-After: {s}\r\n")),
            ),
            Decision::Accept { start, ticket } => {
                caller._ticket = ticket;
                let offer = (!req.body().is_empty())
                    .then(|| String::from_utf8_lossy(req.body()).into_owned());
                let key: Arc<str> = local_tag.as_str().into();
                let leg = CallerLeg::own(
                    OwnCaller {
                        own: self.clone(),
                        key: key.clone(),
                    },
                    offer,
                );
                // Under the lock: the actor is only made here (it starts on its arbiter and
                // waits for the lock to reach its leg), and a CANCEL that came meanwhile finds
                // the leg with its actor.
                let mut state = self.state();
                caller.to = Some(start(leg));
                state.legs.invites.insert(branch, key.clone());
                state
                    .legs
                    .txns
                    .insert(txn, (key.clone(), Purpose::CallerInvite));
                state.legs.callers.insert(key, caller);
                return None;
            }
        };
        let bytes = caller.response(&local_tag, status, None, &extra, None, &self.user_agent);
        let mut state = self.state();
        let now = self.now();
        if let Err(e) = state.legs.layer.respond(now, txn, status, bytes) {
            tracing::debug!(error = %e, "refusal refused");
        }
        count_response("INVITE", status);
        self.flush_legs(&mut state);
        None
    }

    /// 183 or 200 with our SDP on the caller's INVITE; a 200 is retransmitted until the ACK.
    fn caller_sdp_response(&self, key: &str, status: u16, sdp: String) -> Result<(), SipError> {
        let local = self.local.get().ok_or_else(gone)?;
        let mut state = self.state();
        let now = self.now();
        let caller = state.legs.callers.get_mut(key).ok_or_else(gone)?;
        if caller.final_sent {
            return Err(gone());
        }
        let answer = status == 200;
        let extra = if answer {
            format!("Allow: {}\r\n", crate::sip::ALLOW)
        } else {
            String::new()
        };
        let bytes = caller.response(
            key,
            status,
            Some(&local.contact),
            &extra,
            Some(&sdp),
            &self.user_agent,
        );
        caller.local_sdp = Some(sdp);
        let txn = caller.invite_txn;
        let result = if answer {
            caller.final_sent = true;
            caller.awaiting_ack = true;
            let branch = caller.invite_branch.clone();
            state.legs.invites.remove(&branch);
            state
                .legs
                .layer
                .respond_2xx_retransmitting(now, txn, status, bytes)
        } else {
            state.legs.layer.respond(now, txn, status, bytes)
        };
        result.map_err(|e| SipError::Stack(e.to_string()))?;
        count_response("INVITE", status);
        self.flush_legs(&mut state);
        Ok(())
    }

    /// A final non-2xx to the INVITE; the leg ends.
    fn caller_refuse(&self, state: &mut Shared, now: Millis, key: &str, status: u16) {
        let Some(mut caller) = state.legs.callers.remove(key) else {
            return;
        };
        if caller.final_sent {
            state.legs.callers.insert(key.into(), caller);
            return;
        }
        caller.final_sent = true;
        state.legs.invites.remove(&caller.invite_branch);
        let bytes = caller.response(key, status, None, "", None, &self.user_agent);
        if let Err(e) = state
            .legs
            .layer
            .respond(now, caller.invite_txn, status, bytes)
        {
            tracing::debug!(error = %e, "final answer refused");
        }
        count_response("INVITE", status);
        let cause = match status {
            487 => "cancel",
            486 | 600 => "busy",
            603 => "decline",
            _ => "error",
        };
        caller.tell(LegEvent::CallerGone { cause });
    }

    fn caller_reject(&self, key: &str, status: u16) {
        let mut state = self.state();
        let now = self.now();
        self.caller_refuse(&mut state, now, key, status);
        self.flush_legs(&mut state);
    }

    fn caller_hangup(&self, key: &str) {
        let mut state = self.state();
        let now = self.now();
        let Some(caller) = state.legs.callers.get_mut(key) else {
            return;
        };
        if !caller.final_sent {
            // Never left waiting in the early state.
            self.caller_refuse(&mut state, now, key, 480);
        } else if caller.awaiting_ack {
            // §15: no BYE before the ACK of our 200 (or its 64*T1).
            caller.hangup_pending = true;
        } else {
            self.caller_bye(&mut state, now, key, "bye");
        }
        self.flush_legs(&mut state);
    }

    /// Our BYE to the caller; the leg ends, and the call hears of it with `cause`.
    fn caller_bye(&self, state: &mut Shared, now: Millis, key: &str, cause: &'static str) {
        let Some(mut caller) = state.legs.callers.remove(key) else {
            return;
        };
        if let Some(local) = self.local.get() {
            caller.cseq += 1;
            let branch = format!("{BRANCH_PREFIX}{}", random_token());
            let mut m = String::with_capacity(600);
            let _ = write!(
                m,
                "BYE {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\n\
                 Max-Forwards: 70\r\nFrom: {};tag={key}\r\nTo: {}\r\nCall-ID: {}\r\n\
                 CSeq: {} BYE\r\n",
                caller.target,
                local.sent_by,
                caller.to_value,
                caller.from_value,
                caller.call_id,
                caller.cseq
            );
            for route in &caller.route {
                let _ = write!(m, "Route: {route}\r\n");
            }
            let bytes = finish_message(m, &self.user_agent, None);
            let req = OutgoingRequest {
                method: Method::Bye,
                branch: &branch,
                to: caller.peer,
                reliable: false,
            };
            match state.legs.layer.send_request(now, &req, bytes) {
                Ok(txn) => {
                    metrics::counter!(SIP_REQUESTS, "direction" => "out", "method" => "BYE")
                        .increment(1);
                    state.legs.txns.insert(txn, (key.into(), Purpose::Other));
                }
                Err(e) => tracing::debug!(error = %e, "BYE to the caller not sent"),
            }
        }
        caller.tell(LegEvent::CallerGone { cause });
    }

    /// The caller's ACK for our 200.
    pub(super) fn caller_ack(&self, state: &mut Shared, now: Millis, key: &str) {
        let Some(caller) = state.legs.callers.get_mut(key) else {
            return;
        };
        if let Some(txn) = caller.reinvite.take() {
            let _ = state.legs.layer.ack_received(now, txn);
            return;
        }
        if !caller.awaiting_ack {
            return;
        }
        caller.awaiting_ack = false;
        let txn = caller.invite_txn;
        caller.tell(LegEvent::CallerConfirmed);
        let hangup = caller.hangup_pending;
        if let Err(e) = state.legs.layer.ack_received(now, txn) {
            tracing::debug!(error = %e, "ACK after the INVITE's end");
        }
        if hangup {
            self.caller_bye(state, now, key, "bye");
        }
    }

    /// Our 200 was never acknowledged (64*T1): the session ends (§13.3.1.4).
    pub(super) fn caller_ack_timeout(&self, state: &mut Shared, now: Millis, key: &str) {
        let Some(caller) = state.legs.callers.get_mut(key) else {
            return;
        };
        caller.awaiting_ack = false;
        self.caller_bye(state, now, key, "timeout");
    }

    /// A CANCEL without a To tag: ours when it names the branch of a caller's INVITE that has
    /// no final answer yet.
    pub(super) fn is_caller_cancel(&self, req: &Request) -> bool {
        let Some((branch, _)) = super::top_via(req) else {
            return false;
        };
        self.state().legs.invites.contains_key(&branch)
    }

    /// A CANCEL of a caller's INVITE (§9.2): 200 for it, 487 for the INVITE.
    pub(super) fn caller_cancel(&self, req: Request, from: SocketAddr) {
        let (Some((branch, sent_by)), Some((_, cseq_method))) =
            (super::top_via(&req), super::uac::cseq_of(&req))
        else {
            return;
        };
        let meta = RequestMeta {
            method: Method::Cancel,
            branch: &branch,
            sent_by: &sent_by,
            cseq_method,
            reliable: false,
            peer: from,
        };
        let mut state = self.state();
        let now = self.now();
        let Ok(Verdict::New { txn, cancels, .. }) = state.legs.layer.on_request(now, &meta) else {
            self.flush_legs(&mut state);
            return;
        };
        metrics::counter!(SIP_REQUESTS, "direction" => "in", "method" => "CANCEL").increment(1);
        self.counters.requests[method_index("CANCEL")].fetch_add(1, Ordering::Relaxed);
        let key = cancels
            .and_then(|invite| state.legs.txns.get(&invite))
            .map(|(key, _)| key.clone());
        let status = if key.is_some() { 200 } else { 481 };
        let bytes = self.response_bytes(&req, StatusCode::from(status), Vec::new(), Vec::new());
        if let Err(e) = state
            .legs
            .layer
            .respond(now, txn, status, Wire::from(bytes))
        {
            tracing::debug!(error = %e, "answer to CANCEL refused");
        }
        count_response("CANCEL", status);
        if let Some(key) = key {
            self.caller_refuse(&mut state, now, &key, 487);
        }
        self.flush_legs(&mut state);
    }

    /// An in-dialog request from the caller on a new server transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn caller_request(
        &self,
        state: &mut Shared,
        now: Millis,
        key: &str,
        txn: TxnId,
        method: Method,
        cseq: u32,
        req: &Request,
    ) {
        let Some(caller) = state.legs.callers.get_mut(key) else {
            return;
        };
        let in_order = cseq > caller.remote_cseq;
        if in_order {
            caller.remote_cseq = cseq;
        }
        let contact = || {
            self.local.get().map_or_else(Vec::new, |l| {
                vec![Header::Contact(format!("<{}>", l.contact).into())]
            })
        };
        let (status, headers, body, retransmit) = match method {
            _ if !in_order => (500, Vec::new(), None, false),
            Method::Bye => {
                if let Some(caller) = state.legs.callers.remove(key) {
                    state.legs.invites.remove(&caller.invite_branch);
                    caller.tell(LegEvent::CallerGone { cause: "bye" });
                    if !caller.final_sent {
                        // §15.1.2: a BYE before our final answer ends the INVITE with 487.
                        let bytes = caller.response(key, 487, None, "", None, &self.user_agent);
                        let _ = state.legs.layer.respond(now, caller.invite_txn, 487, bytes);
                    }
                }
                (200, Vec::new(), None, false)
            }
            Method::Info => {
                let ct = req
                    .headers
                    .iter()
                    .find_map(|h| match h {
                        Header::ContentType(c) => Some(c.value().to_owned()),
                        _ => None,
                    })
                    .unwrap_or_default();
                let body = String::from_utf8_lossy(req.body());
                match info_digits(&ct, &body) {
                    Some(digits) => {
                        for digit in digits {
                            caller.tell(LegEvent::CallerDtmf { digit, via: "info" });
                        }
                        (200, Vec::new(), None, false)
                    }
                    None => (415, Vec::new(), None, false),
                }
            }
            Method::Invite if caller.reinvite.is_some() || caller.awaiting_ack => {
                // §14.2: an INVITE while our answer to the last one awaits its ACK.
                (500, vec![Header::RetryAfter("1".into())], None, false)
            }
            Method::Invite | Method::Update => {
                let reply = reoffer_reply(&mut caller.local_sdp, req.body());
                if let Some((held, media)) = reply.outcome {
                    caller.tell(LegEvent::CallerHold { held, media });
                }
                let invite = method == Method::Invite && reply.status == 200;
                if invite {
                    caller.reinvite = Some(txn);
                }
                (reply.status, contact(), reply.sdp, invite)
            }
            Method::Options => (200, crate::sip::allow_headers(), None, false),
            _ => (
                405,
                vec![Header::Allow(crate::sip::ALLOW.into())],
                None,
                false,
            ),
        };
        self.respond_in_dialog(state, now, txn, req, status, headers, body, retransmit);
    }

    /// Answers an in-dialog request on its server transaction.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn respond_in_dialog(
        &self,
        state: &mut Shared,
        now: Millis,
        txn: TxnId,
        req: &Request,
        status: u16,
        mut headers: Vec<Header>,
        body: Option<String>,
        retransmit: bool,
    ) {
        let body = match body {
            Some(sdp) => {
                headers.push(Header::ContentType("application/sdp".into()));
                sdp.into_bytes()
            }
            None => Vec::new(),
        };
        // A final answer with nothing of ours but its status (the 200 to a BYE or an INFO,
        // a 481) is built again for a retransmitted request instead of being kept.
        let final_answer = status >= 200;
        // Read once: it decides both the rebuild and whether the answer's To gets our tag.
        let to_tagged = final_answer && has_to_tag(req);
        let rebuildable = to_tagged
            && headers.is_empty()
            && body.is_empty()
            && req.method != rsipstack::sip::Method::Invite;
        let bytes = Wire::from(self.response_bytes_tagging(
            req,
            StatusCode::from(status),
            headers,
            body,
            final_answer && !to_tagged,
        ));
        count_response(&req.method.to_string(), status);
        let result = if retransmit {
            state
                .legs
                .layer
                .respond_2xx_retransmitting(now, txn, status, bytes)
        } else if rebuildable {
            state
                .legs
                .layer
                .respond_rebuildable(now, txn, status, bytes)
        } else {
            state.legs.layer.respond(now, txn, status, bytes)
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "in-dialog answer refused");
        }
    }
}

fn count_response(method: &str, status: u16) {
    metrics::counter!(SIP_RESPONSES, "direction" => "out",
        "method" => crate::metrics::sip_method_label(method),
        "code" => sip_code_label(status))
    .increment(1);
}
