//! navbat's own transactions over UDP ([`super::txn`]), and what runs on them (issue 18
//! part 4): out-of-dialog REGISTER and OPTIONS (here), the callers' legs (`uas`) and the
//! operators' legs (`uac`).
//!
//! REGISTER and OPTIONS are the requests a scanner or a password guesser sends by the
//! thousand (svmap's OPTIONS, svwar's and svcrack's REGISTER); the call legs are most of what
//! a busy hotline holds. On rsipstack each transaction became a task with a channel and the
//! whole request and response kept for 32 s; here each is one record of a transaction layer
//! holding at most the one message it may have to send again, under 1 KB. The call legs have
//! a layer of their own, so a REGISTER flood cannot take their room.
//!
//! The UDP reader ([`super::guard::GuardedUdpSocket::serve`]) offers every parsed message
//! here first ([`OwnTransactions::offer`]). Ours: responses whose branch we made, requests
//! whose To tag we made, a new INVITE (a caller's, or a supervisor's feature code) and its
//! CANCEL, out-of-dialog REGISTER and OPTIONS. A request from an RFC 2543 peer (no magic cookie in
//! its branch) is matched by a branch made from its Request-URI, From tag, Call-ID, CSeq
//! number and top Via (`rfc2543_branch`). The rest (a CANCEL or a request in a dialog
//! navbat does not have) goes on to rsipstack, which answers it 481 as before. Over TCP
//! everything still goes through rsipstack; the registrar answers both kinds through
//! [`Reply`].

mod uac;
mod uas;

pub(crate) use uac::{Local, OwnLeg};
pub(crate) use uas::OwnCaller;

use super::registrar::Registrar;
use super::tag::header_tag;
use super::txn::{
    Action, Config, Method, Millis, Refused, RequestMeta, TransactionLayer, TxnId, Verdict, Wire,
};
use super::{allow_headers, method_index, SipCounters};
use crate::metrics::{sip_code_label, sip_method_label, SIP_REQUESTS, SIP_RESPONSES};
use async_trait::async_trait;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Request, Response, SipMessage, StatusCode};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a request handler answers: on navbat's own transaction ([`OwnRequest`]) or on an
/// rsipstack transaction (TCP).
#[async_trait]
pub(super) trait Reply: Send {
    /// The request being answered.
    fn request(&self) -> &Request;
    /// Answers with `status` and these extra headers (no body).
    async fn reply_with(&mut self, status: StatusCode, headers: Vec<Header>);
    /// Answers with `status`.
    async fn reply(&mut self, status: StatusCode) {
        self.reply_with(status, Vec::new()).await;
    }
}

#[async_trait]
impl Reply for rsipstack::transaction::Transaction {
    fn request(&self) -> &Request {
        &self.original
    }

    async fn reply_with(&mut self, status: StatusCode, headers: Vec<Header>) {
        if let Err(e) =
            rsipstack::transaction::Transaction::reply_with(self, status, headers, None).await
        {
            tracing::debug!(error = %e, "reply failed");
        }
    }
}

/// The layer, the socket it answers through, and the handlers of what it takes.
pub(super) struct OwnTransactions {
    state: Mutex<Shared>,
    epoch: Instant,
    socket: Arc<super::guard::GuardedUdpSocket>,
    wake: tokio::sync::Notify,
    registrar: Arc<Registrar>,
    /// Decides on new INVITEs (`uas`).
    admitter: Arc<super::Admitter>,
    counters: Arc<SipCounters>,
    user_agent: String,
    /// Our Via and Contact for the operator legs, set once the listeners are known.
    local: std::sync::OnceLock<Local>,
}

impl OwnTransactions {
    /// A layer with the RFC's timers answering through `socket`; its timer task runs until
    /// `cancel`.
    pub(super) fn start(
        socket: Arc<super::guard::GuardedUdpSocket>,
        registrar: Arc<Registrar>,
        admitter: Arc<super::Admitter>,
        counters: Arc<SipCounters>,
        user_agent: String,
        cancel: CancellationToken,
    ) -> Arc<OwnTransactions> {
        let own = Arc::new(OwnTransactions {
            state: Mutex::new(Shared {
                layer: TransactionLayer::new(Config {
                    max_live: MAX_LIVE,
                    ..Config::default()
                }),
                source_of: HashMap::new(),
                live_by_source: HashMap::new(),
                legs: uac::Legs::default(),
            }),
            epoch: Instant::now(),
            socket,
            wake: tokio::sync::Notify::new(),
            registrar,
            admitter,
            counters,
            user_agent,
            local: std::sync::OnceLock::new(),
        });
        tokio::spawn(own.clone().run_timers(cancel));
        own
    }

    /// Sets where the operator legs' requests say they come from (once; later calls are
    /// ignored).
    pub(super) fn set_local(&self, local: Local) {
        let _ = self.local.set(local);
    }

    fn now(&self) -> Millis {
        Millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `message` (a datagram of `len` bytes) if it is an out-of-dialog REGISTER or
    /// OPTIONS this layer can match; gives it back otherwise (for rsipstack). A datagram over
    /// [`MAX_KEPT_REQUEST`] is not taken: the response kept for its retransmissions copies
    /// its Via, From and To, and the layer's memory is bounded by count times that size.
    pub(super) fn offer(
        self: &Arc<Self>,
        message: SipMessage,
        from: SocketAddr,
        len: usize,
    ) -> Option<SipMessage> {
        let req = match message {
            SipMessage::Response(resp) => match uac::our_branch(&resp) {
                Some(branch) => {
                    self.leg_response(&resp, &branch);
                    return None;
                }
                None => return Some(SipMessage::Response(resp)),
            },
            SipMessage::Request(req) => req,
        };
        // The To tag, read once: ours names one of our legs; none means out of dialog.
        let to_tag = to_tag(&req);
        let out_of_dialog = to_tag.is_none();
        if let Some(key) = to_tag.filter(|t| t.starts_with(uac::TAG_PREFIX)) {
            return self.leg_request(req, from, key).map(SipMessage::Request);
        }
        // A new INVITE over UDP (a caller's, or a supervisor's feature code), and its CANCEL.
        if out_of_dialog {
            match req.method {
                rsipstack::sip::Method::Invite => {
                    let feature = super::features::parse(&super::dialled(&req));
                    return self
                        .caller_invite(req, from, feature)
                        .map(SipMessage::Request);
                }
                rsipstack::sip::Method::Cancel if self.is_caller_cancel(&req) => {
                    self.caller_cancel(req, from);
                    return None;
                }
                _ => {}
            }
        }
        let method = match req.method {
            rsipstack::sip::Method::Register => Method::Register,
            rsipstack::sip::Method::Options if out_of_dialog => Method::Options,
            _ => return Some(SipMessage::Request(req)),
        };
        let via = (len <= MAX_KEPT_REQUEST).then(|| top_via(&req)).flatten();
        let Some((branch, sent_by)) = via else {
            return Some(SipMessage::Request(req));
        };
        let cseq_method = req
            .cseq_header()
            .ok()
            .and_then(|c| c.method().ok())
            .map_or(Method::Other, |m| Method::from_token(&m.to_string()));
        let meta = RequestMeta {
            method,
            branch: &branch,
            sent_by: &sent_by,
            cseq_method,
            reliable: false,
            peer: from,
        };
        let name = if method == Method::Register {
            "REGISTER"
        } else {
            "OPTIONS"
        };
        let label = sip_method_label(name);
        let source = super::auth::group(from.ip());
        let verdict = {
            let mut state = self.state();
            let verdict = if state.live_of(source) >= MAX_PER_SOURCE {
                // Over its share: answered without a transaction (a retransmission of one
                // it still has gets the same 503, not the stored answer).
                Err(Refused::Full {
                    limit: MAX_PER_SOURCE,
                })
            } else {
                state.layer.on_request(self.now(), &meta)
            };
            if let Ok(Verdict::New { txn, .. }) = verdict {
                state.source_of.insert(txn, source);
                *state.live_by_source.entry(source).or_default() += 1;
            }
            self.flush(&mut state);
            verdict
        };
        match verdict {
            Ok(Verdict::New { txn, .. }) => {
                // Counted as rsipstack counted: new requests, not the retransmissions a
                // transaction absorbs.
                metrics::counter!(SIP_REQUESTS, "direction" => "in", "method" => label)
                    .increment(1);
                self.counters.requests[method_index(name)].fetch_add(1, Ordering::Relaxed);
                let request = OwnRequest {
                    own: self.clone(),
                    txn,
                    req,
                    answered: false,
                };
                match method {
                    Method::Register => {
                        let registrar = self.registrar.clone();
                        tokio::spawn(async move { registrar.handle(request).await });
                    }
                    _ => {
                        let mut request = request;
                        request.answer(StatusCode::OK, allow_headers());
                    }
                }
                None
            }
            Ok(Verdict::Unmatchable) => Some(SipMessage::Request(req)),
            Ok(_) => None, // a retransmission: absorbed, or answered from the stored response
            Err(Refused::Full { .. }) => {
                // Stateless, kept nowhere: the peer retries after the flood.
                metrics::counter!(SIP_REQUESTS, "direction" => "in", "method" => label)
                    .increment(1);
                metrics::counter!(SIP_RESPONSES, "direction" => "out", "method" => label,
                    "code" => sip_code_label(503))
                .increment(1);
                let headers = vec![Header::RetryAfter("5".into())];
                let bytes =
                    self.response_bytes(&req, StatusCode::ServiceUnavailable, headers, Vec::new());
                self.send(&bytes, from);
                None
            }
            Err(Refused::CseqMethodMismatch | Refused::HashCollision) => {
                self.counters.guard.dropped.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Sends what the layer queued and forgets the transactions that ended; wakes the timer
    /// task (a new deadline may be the nearest).
    fn flush(&self, state: &mut Shared) {
        self.drain(state);
        self.wake.notify_one();
    }

    fn drain(&self, state: &mut Shared) {
        while let Some(action) = state.layer.poll_action() {
            match action {
                Action::Send { to, bytes, .. } => self.send(bytes.as_bytes(), to),
                Action::Terminated { txn } => state.ended(txn),
                _ => {}
            }
        }
    }

    /// One datagram now. If the kernel's buffer is full it is dropped and counted, as the
    /// network would: the peer retransmits, and the transaction answers again.
    fn send(&self, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = self.socket.try_send_to(bytes, to) {
            self.counters
                .own_send_dropped
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, %to, "SIP send dropped");
        }
    }

    /// A response to `req` (RFC 3261 §8.2.6.2): its Via, From, To (with our tag on a final
    /// answer), Call-ID and CSeq, then `headers`, our User-Agent and `body`.
    fn response_bytes(
        &self,
        req: &Request,
        status: StatusCode,
        headers: Vec<Header>,
        body: Vec<u8>,
    ) -> Vec<u8> {
        let add_tag = status.code() >= 200 && !has_to_tag(req);
        self.response_bytes_tagging(req, status, headers, body, add_tag)
    }

    /// [`response_bytes`](Self::response_bytes) for a caller that has already read the
    /// request's To tag: `add_tag` is whether the answer's To gets a tag of ours (a final
    /// answer to a request outside a dialog). The To header is parsed once a request.
    fn response_bytes_tagging(
        &self,
        req: &Request,
        status: StatusCode,
        headers: Vec<Header>,
        body: Vec<u8>,
        add_tag: bool,
    ) -> Vec<u8> {
        let mut copied: Vec<Header> = req
            .headers
            .iter()
            .filter(|h| {
                matches!(
                    h,
                    Header::Via(_)
                        | Header::CallId(_)
                        | Header::From(_)
                        | Header::To(_)
                        | Header::CSeq(_)
                )
            })
            .cloned()
            .collect();
        if add_tag {
            for header in copied.iter_mut() {
                if let Header::To(to) = header {
                    *header = Header::To(to.with_tag(rsipstack::transaction::make_tag()));
                }
            }
        }
        copied.extend(headers);
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        copied.push(Header::ContentLength(len.into()));
        copied.push(Header::UserAgent(self.user_agent.clone().into()));
        let resp = Response {
            status_code: status,
            wire_reason: None,
            version: rsipstack::sip::Version::V2,
            headers: copied.into(),
            body,
        };
        resp.to_string().into_bytes()
    }

    async fn run_timers(self: Arc<Self>, cancel: CancellationToken) {
        // The gauges walk every transaction: measured at most once a second, and a second
        // after a change at the latest.
        let mut measured = Millis::ZERO;
        let mut changed = false;
        loop {
            let next = {
                let state = self.state();
                match (state.layer.poll_timeout(), state.legs.layer.poll_timeout()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            let measure_at = changed.then(|| measured.plus(1_000));
            let wake_at = match (next, measure_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match wake_at {
                    Some(at) => {
                        let wait = at.saturating_since(self.now());
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {
                    changed = true;
                    continue;
                }
                () = sleep => {}
            }
            let mut state = self.state();
            let now = self.now();
            state.layer.handle_timeout(now);
            self.drain(&mut state);
            state.legs.layer.handle_timeout(now);
            self.drain_legs(&mut state);
            changed = true;
            if now.saturating_since(measured) >= 1_000 {
                measured = now;
                changed = false;
                let (layer, legs) = (&state.layer, &state.legs.layer);
                self.counters
                    .own_transactions
                    .store((layer.len() + legs.len()) as u64, Ordering::Relaxed);
                self.counters.own_transaction_bytes.store(
                    (layer.footprint_total() + legs.footprint_total()) as u64,
                    Ordering::Relaxed,
                );
                self.counters
                    .own_call_legs
                    .store(state.legs.calls() as u64, Ordering::Relaxed);
            }
        }
    }
}

/// The layer and who holds its transactions, under one lock.
struct Shared {
    layer: TransactionLayer,
    /// The source (an IPv6 address: its /64) of each live transaction.
    source_of: HashMap<TxnId, IpAddr>,
    /// Live transactions by source, for [`MAX_PER_SOURCE`].
    live_by_source: HashMap<IpAddr, usize>,
    /// The operator legs on their own layer.
    legs: uac::Legs,
}

impl Shared {
    fn live_of(&self, source: IpAddr) -> usize {
        self.live_by_source.get(&source).copied().unwrap_or(0)
    }

    fn ended(&mut self, txn: TxnId) {
        let Some(source) = self.source_of.remove(&txn) else {
            return;
        };
        if let Some(n) = self.live_by_source.get_mut(&source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.live_by_source.remove(&source);
            }
        }
    }
}

/// A request on one of navbat's own server transactions. Answered once; a handler that
/// returns without answering leaves a 500 (the transaction must end).
pub(super) struct OwnRequest {
    own: Arc<OwnTransactions>,
    txn: TxnId,
    req: Request,
    answered: bool,
}

impl OwnRequest {
    fn answer(&mut self, status: StatusCode, headers: Vec<Header>) {
        if self.answered {
            return;
        }
        self.answered = true;
        let code = status.code();
        let bytes = self
            .own
            .response_bytes(&self.req, status, headers, Vec::new());
        let label = sip_method_label(&self.req.method.to_string());
        metrics::counter!(SIP_RESPONSES, "direction" => "out", "method" => label,
            "code" => sip_code_label(code))
        .increment(1);
        let mut state = self.own.state();
        let now = self.own.now();
        if let Err(e) = state.layer.respond(now, self.txn, code, Wire::from(bytes)) {
            tracing::debug!(error = %e, "response on an own transaction refused");
        }
        self.own.flush(&mut state);
    }
}

impl Drop for OwnRequest {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(StatusCode::ServerInternalError, Vec::new());
        }
    }
}

#[async_trait]
impl Reply for OwnRequest {
    fn request(&self) -> &Request {
        &self.req
    }

    async fn reply_with(&mut self, status: StatusCode, headers: Vec<Header>) {
        self.answer(status, headers);
    }
}

/// Whether the request's To has a tag (it belongs to a dialog).
pub(super) fn has_to_tag(req: &Request) -> bool {
    to_tag(req).is_some()
}

/// The tag of the request's To, if it has one.
fn to_tag(req: &Request) -> Option<String> {
    req.to_header()
        .ok()
        .and_then(|t| header_tag(t.value()))
        .map(str::to_owned)
}

/// Most REGISTER and OPTIONS transactions alive at once: a scanner at 3,000 a second for
/// Timer J's 32 s. About 70 MB at the usual 700 bytes each; at most about 220 MB with every
/// request at [`MAX_KEPT_REQUEST`]. Beyond it: a stateless 503 with Retry-After.
const MAX_LIVE: usize = 100_000;

/// Most live transactions one source (an IPv6 address: its /64) may hold: a tenth of
/// [`MAX_LIVE`], so one scanner cannot take the room other sources' phones need to register.
/// A whole call centre behind one NAT address registers a few hundred phones.
const MAX_PER_SOURCE: usize = MAX_LIVE / 10;

/// The largest datagram whose REGISTER or OPTIONS navbat keeps a transaction for (RFC 3261
/// §18.1.1: requests within 200 bytes of a 1,500-byte path MTU belong on TCP).
const MAX_KEPT_REQUEST: usize = 1_500;

/// The top Via's branch (at most 128 bytes) and sent-by (`host[:port]`), from its text. A
/// request from an RFC 2543 peer (no branch, or one without the magic cookie, or the bare
/// cookie of RFC 4475 §3.2.1) gets a branch made from what RFC 3261 §17.2.3 matches such a
/// request by, so the layer matches it like any other ([`rfc2543_branch`]).
fn top_via(req: &Request) -> Option<(String, String)> {
    let via = req.via_header().ok()?.value().to_string();
    let (first, branch, sent_by) = via_parts(&via)?;
    match branch {
        Some(branch) => Some((branch.to_owned(), sent_by)),
        None => Some((rfc2543_branch(req, first)?, sent_by)),
    }
}

/// The magic cookie an RFC 3261 branch starts with (§8.1.1.7).
const MAGIC_COOKIE: &str = "z9hG4bK";

/// The top value of a Via header, its branch if it is an RFC 3261 one (the magic cookie and
/// more, at most 128 bytes), and its sent-by (`host[:port]`, lower case).
fn via_parts(via: &str) -> Option<(&str, Option<&str>, String)> {
    // A header may carry several Via values; the first is the top one.
    let first = via.split(',').next()?.trim();
    let protocol_and_sent_by = first.split(';').next()?.trim();
    let sent_by = protocol_and_sent_by.split_whitespace().nth(1)?;
    let branch = super::inspect::branch_param(first)
        .filter(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE));
    Some((first, branch, sent_by.to_ascii_lowercase()))
}

/// A branch for a request from an RFC 2543 peer, which has no usable branch: a keyed hash of
/// what RFC 3261 §17.2.3 matches it by, the Request-URI, the From tag, the Call-ID, the CSeq
/// number and the top Via (`top`, with the `received` navbat noted). The CSeq method and the
/// To tag are left out, so the INVITE, its CANCEL (§9.1: same Request-URI, Call-ID, From,
/// CSeq number and top Via) and the ACK of a non-2xx answer (§17.1.1.3) share the INVITE's
/// branch, as an RFC 3261 peer's do; the layer tells them apart by method. The key is random
/// for each process, so a peer cannot make two requests collide on purpose.
fn rfc2543_branch(req: &Request, top: &str) -> Option<String> {
    use std::hash::BuildHasher;
    static KEYS: std::sync::OnceLock<[std::collections::hash_map::RandomState; 2]> =
        std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(Default::default);
    let call_id = req.call_id_header().ok()?.value();
    let (seq, _) = uac::cseq_of(req)?;
    let from = req.from_header().ok().map(|f| f.value());
    let from_tag = from.and_then(header_tag).unwrap_or_default();
    let uri = req.uri.to_string();
    let mut halves = keys
        .iter()
        .map(|key| key.hash_one((uri.as_str(), from_tag, call_id, seq, top)));
    let (a, b) = (halves.next()?, halves.next()?);
    Some(format!("{MAGIC_COOKIE}.2543.{a:016x}{b:016x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_via_gives_branch_and_sent_by() {
        let parts = |v: &'static str| via_parts(v).map(|(_, b, s)| (b, s));
        assert_eq!(
            parts("SIP/2.0/UDP 127.0.0.1:5070;rport;branch=z9hG4bK-1;received=127.0.0.1"),
            Some((Some("z9hG4bK-1"), "127.0.0.1:5070".into()))
        );
        assert_eq!(
            parts("SIP/2.0/UDP Host.Example ; branch = z9hG4bKx , SIP/2.0/UDP b;branch=z9hG4bKy"),
            Some((Some("z9hG4bKx"), "host.example".into()))
        );
        // RFC 2543 peers: no branch, one without the cookie, the bare cookie (RFC 4475
        // §3.2.1); and a branch over 128 bytes. The layer gets a made-up branch for these.
        assert_eq!(
            parts("SIP/2.0/UDP 10.0.0.1"),
            Some((None, "10.0.0.1".into()))
        );
        assert_eq!(
            parts("SIP/2.0/UDP 10.0.0.1;branch=1234"),
            Some((None, "10.0.0.1".into()))
        );
        assert_eq!(
            parts("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK"),
            Some((None, "10.0.0.1".into()))
        );
        let long = format!("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{}", "x".repeat(200));
        assert_eq!(
            via_parts(&long).map(|(_, b, _)| b),
            Some(None),
            "a branch over 128 bytes is not kept"
        );
        assert_eq!(parts("garbage"), None);
    }

    fn request(text: &str) -> Request {
        match SipMessage::try_from(text.as_bytes()).expect("parses") {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("a request"),
        }
    }

    fn rfc2543(method: &str, cseq_method: &str, to_tag: &str, seq: u32) -> Request {
        request(&format!(
            "{method} sip:1000@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP gw.example.com:5060\r\n\
             From: <sip:998901234567@gw.example.com>;tag=f1\r\n\
             To: <sip:1000@example.com>{to_tag}\r\n\
             Call-ID: old-peer-1@gw.example.com\r\n\
             CSeq: {seq} {cseq_method}\r\n\
             Content-Length: 0\r\n\r\n"
        ))
    }

    #[test]
    fn an_rfc_2543_invite_its_cancel_and_its_ack_share_a_made_up_branch_and_others_do_not() {
        let invite = top_via(&rfc2543("INVITE", "INVITE", "", 56)).expect("a branch");
        assert!(invite.0.starts_with(MAGIC_COOKIE), "{invite:?}");
        assert_eq!(invite.1, "gw.example.com:5060");
        assert_eq!(
            top_via(&rfc2543("INVITE", "INVITE", "", 56)),
            Some(invite.clone()),
            "a retransmission gets the same branch"
        );
        assert_eq!(
            top_via(&rfc2543("CANCEL", "CANCEL", "", 56)),
            Some(invite.clone())
        );
        assert_eq!(
            top_via(&rfc2543("ACK", "ACK", ";tag=nb-x", 56)),
            Some(invite.clone()),
            "the ACK of a non-2xx answer carries our To tag and still matches"
        );
        assert_ne!(
            top_via(&rfc2543("INVITE", "INVITE", "", 57)),
            Some(invite.clone()),
            "another CSeq is another transaction"
        );
        let other_call = request(
            "INVITE sip:1000@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP gw.example.com:5060\r\n\
             From: <sip:998901234567@gw.example.com>;tag=f1\r\n\
             To: <sip:1000@example.com>\r\n\
             Call-ID: old-peer-2@gw.example.com\r\n\
             CSeq: 56 INVITE\r\n\
             Content-Length: 0\r\n\r\n",
        );
        assert_ne!(top_via(&other_call), Some(invite));
    }
}
