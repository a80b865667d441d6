//! The operator's leg over UDP on navbat's own transactions: the UAC side of a call
//! (issue 18 part 4).
//!
//! On rsipstack each operator leg was a dialog with its own tasks and channels, and each of
//! its transactions (INVITE, ACK, BYE or CANCEL, the operator's BYE) a task holding the
//! whole parsed request and response for up to 32 s: about half of the SIP core's memory at
//! a thousand calls a second. Here a leg is one record while the call lives, its
//! transactions are records of their own [`TransactionLayer`] (a REGISTER flood on the
//! out-of-dialog layer cannot take their room), and a finished one keeps at most the one
//! message it may have to send again.
//!
//! What a leg does (RFC 3261 §12-§15, §17.1): the INVITE with our SDP offer to the phone's
//! registered address; ringing on 180/183; on a 2xx the dialog, the ACK (sent again for
//! each retransmitted 2xx) and the operator's SDP; on 300-699 the transaction's ACK and the
//! status; hang-up as CANCEL once the phone has answered provisionally (§9.1; asked before
//! that, the CANCEL waits for the first provisional) or BYE once answered; the operator's
//! BYE, re-INVITE and UPDATE (hold and resume: our answer, retransmitted until the ACK),
//! INFO and OPTIONS; an out-of-order CSeq gets 500 (§12.2.2).
//!
//! Ours are told apart without a lookup: every branch we send starts with
//! [`BRANCH_PREFIX`] and every local tag with [`TAG_PREFIX`] (both with a `-`, which
//! rsipstack's alphanumeric ones never have). What has neither goes on to rsipstack.

use super::{OwnTransactions, Shared};
use crate::metrics::{
    sip_code_label, sip_method_label, SIP_INVITE_LATENCY, SIP_REQUESTS, SIP_RESPONSES, SIP_TIMEOUTS,
};
use crate::sip::legs::{deliver, reoffer_reply, LegEvent, LegMsg};
use crate::sip::tag::header_tag;
use crate::sip::txn::{
    Action, Config, Method, Millis, OutgoingRequest, Refused, RequestMeta, ResponseMeta,
    ResponseVerdict, TransactionLayer, TxnId, Verdict, Wire,
};
use crate::sip::{method_index, SipError};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Request, Response, StatusCode};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The start of every branch navbat's own client transactions send.
pub(crate) const BRANCH_PREFIX: &str = "z9hG4bK-nv";

/// The start of every local tag of navbat's own operator legs.
pub(crate) const TAG_PREFIX: &str = "nv-";

/// Most live transactions of operator legs: 1,000 calls a second hold about four each for
/// up to 32 s (128,000). A finished one keeps under 1 KB.
const MAX_LIVE: usize = 400_000;

/// Where our requests say they come from: the UDP listener.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    /// The sent-by of our Via (`host:port`).
    pub(crate) sent_by: String,
    /// Our Contact URI.
    pub(crate) contact: String,
}

/// The operator legs and their transactions.
pub(super) struct Legs {
    pub(super) layer: TransactionLayer,
    /// Operator legs by our tag.
    calls: HashMap<Arc<str>, Leg>,
    /// Caller legs by our tag.
    pub(super) callers: HashMap<Arc<str>, super::uas::Caller>,
    /// The branch of each caller's INVITE not answered finally yet (what a CANCEL names).
    pub(super) invites: HashMap<String, Arc<str>>,
    /// What each live client or server transaction of a leg is for.
    pub(super) txns: HashMap<TxnId, (Arc<str>, Purpose)>,
}

impl Default for Legs {
    fn default() -> Legs {
        Legs {
            layer: TransactionLayer::new(Config {
                max_live: MAX_LIVE,
                ..Config::default()
            }),
            calls: HashMap::new(),
            callers: HashMap::new(),
            invites: HashMap::new(),
            txns: HashMap::new(),
        }
    }
}

impl Legs {
    /// Call legs alive: operators' and callers'.
    pub(super) fn calls(&self) -> usize {
        self.calls.len() + self.callers.len()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// Our INVITE.
    Invite,
    /// A caller's INVITE.
    CallerInvite,
    /// Our CANCEL or BYE (nothing waits on their answer).
    Other,
    /// A request from the operator.
    Server,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The INVITE is out; no provisional yet.
    Calling,
    /// Ringing (a provisional came).
    Early,
    /// Answered and acknowledged.
    Confirmed,
}

/// One operator leg.
struct Leg {
    call_id: Arc<str>,
    attempt: u64,
    to: actix::Recipient<LegMsg>,
    /// The phone's address (where it registered from): every request of the leg goes here.
    peer: SocketAddr,
    /// Our From header value, with our tag.
    from: String,
    /// The To header value of the INVITE (no tag).
    to_uri: String,
    remote_tag: Option<String>,
    /// The INVITE's Request-URI (CANCEL and a non-2xx's ACK reuse it).
    invite_uri: String,
    /// The remote target once answered (the 2xx's Contact).
    target: String,
    /// The route set (the 2xx's Record-Route, reversed).
    route: Vec<String>,
    invite_branch: String,
    invite_txn: TxnId,
    /// Our last CSeq number.
    cseq: u32,
    /// The operator's last CSeq number.
    remote_cseq: Option<u32>,
    phase: Phase,
    /// Hang-up was asked before the answer: CANCEL (once a provisional came), and BYE if a
    /// 2xx comes all the same.
    hangup: bool,
    /// The CANCEL went out.
    cancel_sent: bool,
    /// The ACK for the 2xx, sent again for each retransmitted 2xx.
    ack: Option<Wire>,
    /// Our offer, then our side of the session (what re-offers are answered from).
    offer: String,
    local_sdp: Option<String>,
    sent_at: Instant,
    first_response: bool,
    /// The operator's re-INVITE whose 2xx waits for its ACK.
    reinvite: Option<TxnId>,
}

/// A handle the call actor holds: hangs up its leg.
#[derive(Clone)]
pub(crate) struct OwnLeg {
    own: Arc<OwnTransactions>,
    key: Arc<str>,
}

impl OwnLeg {
    /// Stops ringing (CANCEL) or ends the call (BYE), whichever applies.
    pub(crate) fn hangup(&self) {
        self.own.leg_hangup(&self.key);
    }
}

/// A user part a Request-URI and From can carry as is (the caller's number, normally).
fn plain_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-_.*#".contains(&b))
}

pub(super) fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The URI of a Contact (or Record-Route) value: inside `<>`, else up to its parameters.
pub(super) fn uri_of(value: &str) -> &str {
    let value = value.trim();
    match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// The values of a comma-separated header list, commas inside `<>` or quotes kept.
pub(super) fn split_list(value: &str) -> Vec<String> {
    let (mut out, mut cur) = (Vec::new(), String::new());
    let (mut angle, mut quote) = (false, false);
    for c in value.chars() {
        match c {
            '"' if !angle => quote = !quote,
            '<' if !quote => angle = true,
            '>' if !quote => angle = false,
            ',' if !angle && !quote => {
                out.push(std::mem::take(&mut cur).trim().to_owned());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

pub(super) fn cseq_of(headers: &impl HeadersExt) -> Option<(u32, Method)> {
    let cseq = headers.cseq_header().ok()?;
    let seq = cseq.seq().ok()?;
    let method = Method::from_token(&cseq.method().ok()?.to_string());
    Some((seq, method))
}

fn top_branch(headers: &impl HeadersExt) -> Option<String> {
    let via = headers.via_header().ok()?.value().to_string();
    let first = via.split(',').next()?;
    crate::sip::inspect::branch_param(first).map(str::to_owned)
}

/// The top Via branch of a response to one of our own client transactions; `None` when the
/// branch is not one we made.
pub(super) fn our_branch(resp: &Response) -> Option<String> {
    top_branch(resp).filter(|b| b.starts_with(BRANCH_PREFIX))
}

impl Leg {
    /// A request of this leg as sent on the wire.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        local: &Local,
        user_agent: &str,
        method: &str,
        uri: &str,
        branch: &str,
        cseq: u32,
        remote_tag: Option<&str>,
        extra: &str,
        body: Option<&str>,
    ) -> Wire {
        let mut m = String::with_capacity(512 + body.map_or(0, str::len));
        let _ = write!(
            m,
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {}\r\nTo: {}",
            local.sent_by, self.from, self.to_uri
        );
        if let Some(tag) = remote_tag {
            let _ = write!(m, ";tag={tag}");
        }
        let _ = write!(
            m,
            "\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n",
            self.call_id
        );
        if method != "CANCEL" && remote_tag.is_some() {
            for route in &self.route {
                let _ = write!(m, "Route: {route}\r\n");
            }
        }
        m.push_str(extra);
        finish_message(m, user_agent, body)
    }
}

/// Ends a message of ours: our User-Agent, then the SDP `body` (or none) with its length.
pub(super) fn finish_message(mut m: String, user_agent: &str, body: Option<&str>) -> Wire {
    let _ = write!(m, "User-Agent: {user_agent}\r\n");
    match body {
        Some(body) => {
            let _ = write!(
                m,
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
        None => m.push_str("Content-Length: 0\r\n\r\n"),
    }
    Wire::from(m.into_bytes())
}

fn count_out(method: &str) {
    metrics::counter!(SIP_REQUESTS, "direction" => "out", "method" => sip_method_label(method))
        .increment(1);
}

impl OwnTransactions {
    /// Rings an operator's phone at `peer` (UDP): INVITE `uri` from `caller` with our SDP
    /// `offer`; the leg's events go to `to` tagged with `attempt`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn call(
        self: &Arc<Self>,
        local: &Local,
        peer: SocketAddr,
        uri: &str,
        caller: &str,
        offer: String,
        attempt: u64,
        to: actix::Recipient<LegMsg>,
    ) -> Result<OwnLeg, SipError> {
        let host = local.sent_by.as_str();
        // The operator's phone shows the caller's number (D18 allows it; logs never see it).
        let user = if plain_user(caller) {
            caller
        } else {
            "anonymous"
        };
        let host_only = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let call_id: Arc<str> = format!("{:032x}@{host_only}", rand::random::<u128>()).into();
        let local_tag = format!("{TAG_PREFIX}{}", random_token());
        let key: Arc<str> = local_tag.as_str().into();
        let invite_branch = format!("{BRANCH_PREFIX}{}", random_token());
        let leg = Leg {
            call_id,
            attempt,
            to,
            peer,
            from: format!("<sip:{user}@{host}>;tag={local_tag}"),
            to_uri: format!("<{uri}>"),
            remote_tag: None,
            invite_uri: uri.to_owned(),
            target: uri.to_owned(),
            route: Vec::new(),
            invite_branch: invite_branch.clone(),
            invite_txn: TxnId(0),
            cseq: 1,
            remote_cseq: None,
            phase: Phase::Calling,
            hangup: false,
            cancel_sent: false,
            ack: None,
            local_sdp: Some(offer.clone()),
            offer,
            sent_at: Instant::now(),
            first_response: false,
            reinvite: None,
        };
        let extra = format!(
            "Contact: <{}>\r\nAllow: {}\r\n",
            local.contact,
            crate::sip::ALLOW
        );
        let bytes = leg.request(
            local,
            &self.user_agent,
            "INVITE",
            uri,
            &invite_branch,
            1,
            None,
            &extra,
            Some(&leg.offer),
        );
        let mut state = self.state();
        let now = self.now();
        let req = OutgoingRequest {
            method: Method::Invite,
            branch: &invite_branch,
            to: peer,
            reliable: false,
        };
        let txn = state
            .legs
            .layer
            .send_request(now, &req, bytes)
            .map_err(|e| SipError::Stack(e.to_string()))?;
        count_out("INVITE");
        let legs = &mut state.legs;
        legs.txns.insert(txn, (key.clone(), Purpose::Invite));
        legs.calls.insert(
            key.clone(),
            Leg {
                invite_txn: txn,
                ..leg
            },
        );
        self.flush_legs(&mut state);
        Ok(OwnLeg {
            own: self.clone(),
            key,
        })
    }

    /// The call hangs up its operator leg.
    fn leg_hangup(&self, key: &str) {
        let mut state = self.state();
        let now = self.now();
        let Some(leg) = state.legs.calls.get_mut(key) else {
            return;
        };
        match leg.phase {
            Phase::Calling => leg.hangup = true,
            Phase::Early => {
                leg.hangup = true;
                self.send_cancel(&mut state, now, key);
            }
            Phase::Confirmed => self.end_with_bye(&mut state, now, key),
        }
        self.flush_legs(&mut state);
    }

    fn send_cancel(&self, state: &mut Shared, now: Millis, key: &str) {
        let Some(local) = self.local.get() else {
            return;
        };
        let Some(leg) = state.legs.calls.get_mut(key) else {
            return;
        };
        if leg.cancel_sent {
            return;
        }
        leg.cancel_sent = true;
        // §9.1: the INVITE's Request-URI, Call-ID, From, To, top Via and CSeq number.
        let bytes = leg.request(
            local,
            &self.user_agent,
            "CANCEL",
            &leg.invite_uri,
            &leg.invite_branch,
            1,
            None,
            "",
            None,
        );
        let (branch, peer, invite) = (leg.invite_branch.clone(), leg.peer, leg.invite_txn);
        let req = OutgoingRequest {
            method: Method::Cancel,
            branch: &branch,
            to: peer,
            reliable: false,
        };
        match state.legs.layer.send_request(now, &req, bytes) {
            Ok(txn) => {
                count_out("CANCEL");
                state.legs.txns.insert(txn, (key.into(), Purpose::Other));
                if let Err(e) = state.legs.layer.cancelling(now, invite) {
                    tracing::debug!(error = %e, "CANCEL after the INVITE's end");
                }
            }
            Err(e) => tracing::debug!(error = %e, "CANCEL not sent"),
        }
    }

    /// Our BYE; the leg ends, and its call hears so.
    fn end_with_bye(&self, state: &mut Shared, now: Millis, key: &str) {
        self.send_bye(state, now, key);
        if let Some(leg) = state.legs.calls.remove(key) {
            deliver(
                &leg.to,
                LegEvent::OperatorGone {
                    attempt: leg.attempt,
                    cause: "bye",
                },
            );
        }
    }

    fn send_bye(&self, state: &mut Shared, now: Millis, key: &str) {
        let Some(local) = self.local.get() else {
            return;
        };
        let Some(leg) = state.legs.calls.get_mut(key) else {
            return;
        };
        leg.cseq += 1;
        let branch = format!("{BRANCH_PREFIX}{}", random_token());
        let bytes = leg.request(
            local,
            &self.user_agent,
            "BYE",
            &leg.target,
            &branch,
            leg.cseq,
            leg.remote_tag.as_deref(),
            "",
            None,
        );
        let req = OutgoingRequest {
            method: Method::Bye,
            branch: &branch,
            to: leg.peer,
            reliable: false,
        };
        match state.legs.layer.send_request(now, &req, bytes) {
            Ok(txn) => {
                count_out("BYE");
                state.legs.txns.insert(txn, (key.into(), Purpose::Other));
            }
            Err(e) => tracing::debug!(error = %e, "BYE not sent"),
        }
    }

    /// A response to one of our own client transactions (its top Via `branch`, [`our_branch`]).
    pub(super) fn leg_response(&self, resp: &Response, branch: &str) {
        let status = resp.status_code.code();
        let Some((_, cseq_method)) = cseq_of(resp) else {
            self.counters.guard.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let label = sip_method_label(cseq_method.as_str());
        metrics::counter!(SIP_RESPONSES, "direction" => "in", "method" => label,
            "code" => sip_code_label(status))
        .increment(1);
        let meta = ResponseMeta {
            status,
            branch,
            cseq_method,
        };
        let mut state = self.state();
        let now = self.now();
        let verdict = match state.legs.layer.on_response(now, &meta) {
            Ok(verdict) => verdict,
            Err(e) => {
                tracing::debug!(error = %e, "response refused");
                return;
            }
        };
        let txn = match verdict {
            ResponseVerdict::Deliver { txn } | ResponseVerdict::AckNeeded { txn } => txn,
            ResponseVerdict::Absorbed { .. } => {
                self.flush_legs(&mut state);
                return;
            }
            ResponseVerdict::Unmatched => {
                // A 2xx to the INVITE after timer M: ACK it again if the leg is still up.
                if cseq_method != Method::Invite {
                    return;
                }
                if let Some(key) = resp.from_header().ok().and_then(|f| header_tag(f.value())) {
                    if let Some(leg) = state.legs.calls.get(key) {
                        if let (Some(ack), 200..=299) = (&leg.ack, status) {
                            self.send(ack.as_bytes(), leg.peer);
                        }
                    }
                }
                return;
            }
        };
        let Some((key, Purpose::Invite)) = state.legs.txns.get(&txn).cloned() else {
            self.flush_legs(&mut state);
            return;
        };
        let Some(leg) = state.legs.calls.get_mut(&key) else {
            // The leg ended (a late 2xx after our BYE): nothing to tell anyone.
            self.flush_legs(&mut state);
            return;
        };
        if !leg.first_response {
            leg.first_response = true;
            let secs = leg.sent_at.elapsed().as_secs_f64();
            metrics::histogram!(SIP_INVITE_LATENCY, "role" => "uac").record(secs);
        }
        match (status, verdict) {
            (100..=199, _) => {
                if status > 100 {
                    leg.phase = Phase::Early;
                    deliver(
                        &leg.to,
                        LegEvent::OperatorRinging {
                            attempt: leg.attempt,
                        },
                    );
                }
                if leg.hangup {
                    // A provisional came: the CANCEL asked for earlier may go now (§9.1).
                    self.send_cancel(&mut state, now, &key);
                }
            }
            (200..=299, _) => self.answered(&mut state, &key, resp),
            (_, ResponseVerdict::AckNeeded { txn }) => {
                // §17.1.1.3: the INVITE's Request-URI, Call-ID, From, top Via and CSeq
                // number, the response's To.
                if let Some(local) = self.local.get() {
                    let tag = resp
                        .to_header()
                        .ok()
                        .and_then(|t| header_tag(t.value()))
                        .map(str::to_owned);
                    let bytes = leg.request(
                        local,
                        &self.user_agent,
                        "ACK",
                        &leg.invite_uri,
                        &leg.invite_branch,
                        1,
                        tag.as_deref(),
                        "",
                        None,
                    );
                    if let Err(e) = state.legs.layer.send_ack(now, txn, bytes) {
                        tracing::debug!(error = %e, "ACK for a non-2xx refused");
                    }
                }
                if let Some(leg) = state.legs.calls.remove(&key) {
                    deliver(
                        &leg.to,
                        LegEvent::OperatorFailed {
                            attempt: leg.attempt,
                            status,
                        },
                    );
                }
            }
            _ => {}
        }
        self.flush_legs(&mut state);
    }

    /// A 2xx to our INVITE, the first or a retransmission: ACK it (§13.2.2.4); the first
    /// makes the dialog.
    fn answered(&self, state: &mut Shared, key: &str, resp: &Response) {
        let Some(local) = self.local.get() else {
            return;
        };
        let Some(leg) = state.legs.calls.get_mut(key) else {
            return;
        };
        if let Some(ack) = &leg.ack {
            self.send(ack.as_bytes(), leg.peer);
            return;
        }
        leg.remote_tag = resp
            .to_header()
            .ok()
            .and_then(|t| header_tag(t.value()))
            .map(str::to_owned);
        let mut contact = None;
        let mut record_route = Vec::new();
        for header in resp.headers.iter() {
            match header {
                Header::Contact(c) if contact.is_none() => {
                    contact = split_list(c.value()).first().map(|v| uri_of(v).to_owned());
                }
                Header::RecordRoute(r) => record_route.extend(split_list(r.value())),
                _ => {}
            }
        }
        if let Some(target) = contact.filter(|t| !t.is_empty()) {
            leg.target = target;
        }
        record_route.reverse();
        leg.route = record_route;
        leg.phase = Phase::Confirmed;
        let branch = format!("{BRANCH_PREFIX}{}", random_token());
        let ack = leg.request(
            local,
            &self.user_agent,
            "ACK",
            &leg.target,
            &branch,
            1,
            leg.remote_tag.as_deref(),
            "",
            None,
        );
        count_out("ACK");
        self.send(ack.as_bytes(), leg.peer);
        leg.ack = Some(ack);
        let sdp =
            (!resp.body().is_empty()).then(|| String::from_utf8_lossy(resp.body()).into_owned());
        if let Some(ours) = sdp
            .as_deref()
            .and_then(|theirs| crate::sip::sdp::settled(&leg.offer, theirs, 2))
        {
            leg.local_sdp = Some(ours);
        }
        if leg.hangup {
            // Answered after the call let go of it: end it at once.
            let now = self.now();
            self.end_with_bye(state, now, key);
            return;
        }
        deliver(
            &leg.to,
            LegEvent::OperatorAnswered {
                attempt: leg.attempt,
                sdp,
            },
        );
    }

    /// An in-dialog request for one of our legs, an operator's or a caller's (its To tag,
    /// `key`, is one of ours). The layer sees it first, whether or not a leg is still up: a
    /// retransmitted BYE whose 200 was lost must get that 200 again, though the leg has
    /// ended, and an ACK may be for a final refusal. A new request for no live leg (or with
    /// the wrong Call-ID or From tag) is answered 481 here.
    pub(super) fn leg_request(
        &self,
        req: Request,
        from: SocketAddr,
        key: String,
    ) -> Option<Request> {
        let call_id = req.call_id_header().ok()?.value().to_owned();
        let from_tag = req
            .from_header()
            .ok()
            .and_then(|f| header_tag(f.value()))
            .map(str::to_owned);
        let (Some(branch_sent_by), Some((cseq, cseq_method))) =
            (super::top_via(&req), cseq_of(&req))
        else {
            return Some(req);
        };
        let method = Method::from_token(&req.method.to_string());
        let mut state = self.state();
        let now = self.now();
        let operator = state
            .legs
            .calls
            .get(key.as_str())
            .map(|l| *l.call_id == *call_id && from_tag == l.remote_tag);
        let caller = state
            .legs
            .callers
            .get(key.as_str())
            .map(|c| c.matches(&call_id, from_tag.as_deref()));
        let side = match (operator, caller) {
            (Some(true), _) => Some(Purpose::Invite),
            (_, Some(true)) => Some(Purpose::CallerInvite),
            _ => None,
        };
        let meta = RequestMeta {
            method,
            branch: &branch_sent_by.0,
            sent_by: &branch_sent_by.1,
            cseq_method,
            reliable: false,
            peer: from,
        };
        let verdict = match state.legs.layer.on_request(now, &meta) {
            Ok(verdict) => verdict,
            Err(Refused::Full { .. } | Refused::HashCollision) => return None, // retransmitted
            Err(Refused::CseqMethodMismatch) => {
                self.counters.guard.dropped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        };
        match (verdict, side) {
            (Verdict::New { txn, .. }, Some(side)) => {
                let name = req.method.to_string();
                metrics::counter!(SIP_REQUESTS, "direction" => "in",
                    "method" => sip_method_label(&name))
                .increment(1);
                self.counters.requests[method_index(&name)].fetch_add(1, Ordering::Relaxed);
                let key: Arc<str> = key.into();
                state.legs.txns.insert(txn, (key.clone(), Purpose::Server));
                if side == Purpose::Invite {
                    self.leg_server_request(&mut state, now, &key, txn, method, cseq, &req);
                } else {
                    self.caller_request(&mut state, now, &key, txn, method, cseq, &req);
                }
            }
            (Verdict::AckFor2xx { .. }, Some(Purpose::Invite)) => {
                let leg = state.legs.calls.get_mut(key.as_str());
                if let Some(txn) = leg.and_then(|l| l.reinvite.take()) {
                    if let Err(e) = state.legs.layer.ack_received(now, txn) {
                        tracing::debug!(error = %e, "ACK after the re-INVITE's end");
                    }
                }
            }
            (Verdict::New { txn, .. }, None) => {
                // §12.2.2: no such dialog (any more).
                let key: Arc<str> = key.into();
                state.legs.txns.insert(txn, (key, Purpose::Server));
                let status = 481;
                self.respond_in_dialog(&mut state, now, txn, &req, status, Vec::new(), None, false);
            }
            (Verdict::AckFor2xx { .. }, Some(_)) => self.caller_ack(&mut state, now, &key),
            (
                Verdict::Retransmission {
                    txn,
                    rebuild: Some(status),
                    ..
                },
                _,
            ) => {
                let bytes =
                    self.response_bytes(&req, StatusCode::from(status), Vec::new(), Vec::new());
                state.legs.layer.send_again(txn, Wire::from(bytes));
            }
            (Verdict::Unmatchable, _) => return Some(req),
            _ => {}
        }
        self.flush_legs(&mut state);
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn leg_server_request(
        &self,
        state: &mut Shared,
        now: Millis,
        key: &str,
        txn: TxnId,
        method: Method,
        cseq: u32,
        req: &Request,
    ) {
        let Some(leg) = state.legs.calls.get_mut(key) else {
            return;
        };
        let in_order = leg.remote_cseq.is_none_or(|last| cseq > last);
        if method != Method::Cancel && in_order {
            leg.remote_cseq = Some(cseq);
        }
        let contact = || {
            self.local.get().map_or_else(Vec::new, |l| {
                vec![Header::Contact(format!("<{}>", l.contact).into())]
            })
        };
        let (status, headers, body, retransmit) = match method {
            Method::Cancel => (200, Vec::new(), None, false),
            _ if !in_order => (500, Vec::new(), None, false),
            Method::Bye => {
                let leg = state.legs.calls.remove(key);
                if let Some(leg) = &leg {
                    deliver(
                        &leg.to,
                        LegEvent::OperatorGone {
                            attempt: leg.attempt,
                            cause: "bye",
                        },
                    );
                }
                (200, Vec::new(), None, false)
            }
            Method::Invite if leg.reinvite.is_some() => {
                // §14.2: an INVITE while our answer to the last one awaits its ACK.
                (500, vec![Header::RetryAfter("1".into())], None, false)
            }
            Method::Invite | Method::Update => {
                let reply = reoffer_reply(&mut leg.local_sdp, req.body());
                if let Some((held, media)) = reply.outcome {
                    deliver(
                        &leg.to,
                        LegEvent::OperatorHold {
                            attempt: leg.attempt,
                            held,
                            media,
                        },
                    );
                }
                let invite = method == Method::Invite && reply.status == 200;
                if invite {
                    leg.reinvite = Some(txn);
                }
                (reply.status, contact(), reply.sdp, invite)
            }
            Method::Info | Method::Options => (200, Vec::new(), None, false),
            _ => (
                405,
                vec![Header::Allow(crate::sip::ALLOW.into())],
                None,
                false,
            ),
        };
        self.respond_in_dialog(state, now, txn, req, status, headers, body, retransmit);
    }

    /// Sends what the legs' layer queued, tells the calls of timeouts, forgets what ended;
    /// wakes the timer task.
    pub(super) fn flush_legs(&self, state: &mut Shared) {
        self.drain_legs(state);
        self.wake.notify_one();
    }

    pub(super) fn drain_legs(&self, state: &mut Shared) {
        while let Some(action) = state.legs.layer.poll_action() {
            match action {
                Action::Send { to, bytes, .. } => self.send(bytes.as_bytes(), to),
                Action::Timeout { txn } => {
                    let Some((key, purpose)) = state.legs.txns.get(&txn).cloned() else {
                        continue;
                    };
                    let method = if purpose == Purpose::Invite {
                        "INVITE"
                    } else {
                        "BYE"
                    };
                    metrics::counter!(SIP_TIMEOUTS, "method" => method).increment(1);
                    if purpose != Purpose::Invite {
                        continue;
                    }
                    if let Some(leg) = state.legs.calls.remove(&key) {
                        deliver(
                            &leg.to,
                            LegEvent::OperatorFailed {
                                attempt: leg.attempt,
                                status: 408,
                            },
                        );
                    }
                }
                Action::AckTimeout { txn } => {
                    if let Some((key, Purpose::CallerInvite)) = state.legs.txns.get(&txn).cloned() {
                        let now = self.now();
                        self.caller_ack_timeout(state, now, &key);
                        continue;
                    }
                    // Our answer to a re-INVITE was never acknowledged; the call goes on.
                    if let Some((key, _)) = state.legs.txns.get(&txn) {
                        if let Some(leg) = state.legs.calls.get_mut(key) {
                            if leg.reinvite == Some(txn) {
                                leg.reinvite = None;
                            }
                        }
                    }
                }
                Action::Terminated { txn } => {
                    state.legs.txns.remove(&txn);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_and_record_route_values() {
        assert_eq!(
            uri_of("\"Op\" <sip:1001@10.0.0.5:5070;ob>;expires=60"),
            "sip:1001@10.0.0.5:5070;ob"
        );
        assert_eq!(uri_of("sip:1001@10.0.0.5;expires=60"), "sip:1001@10.0.0.5");
        assert_eq!(
            split_list("<sip:p1.example;lr>, \"a,b\" <sip:p2.example;lr>"),
            vec!["<sip:p1.example;lr>", "\"a,b\" <sip:p2.example;lr>"]
        );
    }

    #[test]
    fn only_plain_numbers_go_into_the_invite() {
        assert!(plain_user("+998901234567"));
        assert!(!plain_user("a b"));
        assert!(!plain_user("x@y"));
        assert!(!plain_user(""));
    }
}
