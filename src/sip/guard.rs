//! The UDP front door: every datagram is screened before the SIP stack sees it.
//!
//! rsipstack drops what it cannot parse without a trace and has no notion of
//! methods it does not know. The guard wraps the listening socket: a datagram
//! that parses and carries what a transaction needs goes on to the stack;
//! anything else gets the response RFC 3261 asks for when we can still build
//! one (400 Bad Request, 501 Not Implemented for an unknown method, 505 for
//! another SIP version) or is dropped, and either way it is counted.

use super::door::{Door, DoorPolicy, Refusal, Verdict};
use crate::config::Network;
use async_trait::async_trait;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::SipMessage;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The prefix of the To tag of every answer the guard sends itself. An ACK carrying it
/// acknowledges one of those answers (RFC 3261 §17.2.1) and is absorbed here; the `-` keeps
/// it apart from the stack's own tags, which are alphanumeric.
const STATELESS_TAG: &str = "nbs-";

/// The door's state behind a lock, with the clock it reads (the driver of the pure
/// [`Door`]).
pub struct DoorGate {
    door: Mutex<Door>,
    epoch: Instant,
    retry_after: String,
    /// The door's queue bound, kept outside the lock: every datagram asks.
    queue: usize,
    /// The router's cheap look at a new call the door admitted, if it gives one.
    calls: Option<Arc<dyn CallScreen>>,
}

/// What the door knows of a new INVITE when it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Nothing: a new call.
    New,
    /// A retransmission of one passed on to the stack: it goes to its transaction.
    Passed,
    /// A retransmission of one refused after admission: answered again, not counted again.
    Refused,
}

/// The router's verdict on a new INVITE the door let through, taken from a read-only
/// snapshot (the numbers, the tenants' trunks, the channel counts) before the stack spends a
/// transaction on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallVerdict {
    /// Hand it to the stack (the router decides again there, exactly).
    Pass,
    /// No tenant has this number: 404.
    UnknownNumber,
    /// The number's tenant does not take calls from this source: 403.
    ForeignTrunk,
    /// All channels (the tenant's or all of them) are in use, or the router is draining:
    /// 503 with this Retry-After. The router has counted the call as blocked.
    Full { retry_after_secs: u32 },
}

impl CallVerdict {
    fn index(self) -> usize {
        match self {
            CallVerdict::Pass | CallVerdict::UnknownNumber => 0,
            CallVerdict::ForeignTrunk => 1,
            CallVerdict::Full { .. } => 2,
        }
    }
}

/// What the guard asks the router about a new call before the stack sees it. Must be
/// cheap, lock-light and never wait: it runs on the socket's read loop.
pub trait CallScreen: Send + Sync {
    /// The verdict on a new INVITE for `did` from `source`; `caller` is the From user
    /// (personal data: never logged in full); `transport` is "udp" or "tcp". `first`: false
    /// for the retransmission of an INVITE refused already (answer it the same, count it
    /// once).
    fn screen_call(
        &self,
        did: &str,
        source: IpAddr,
        caller: &str,
        transport: &'static str,
        first: bool,
    ) -> CallVerdict;
}

impl DoorGate {
    /// A gate with `policy`; `trunks` as in [`Door::new`].
    pub fn new(policy: DoorPolicy, trunks: Vec<Network>) -> DoorGate {
        DoorGate {
            retry_after: format!("Retry-After: {}\r\n", policy.retry_after_secs),
            queue: policy.queue,
            door: Mutex::new(Door::new(policy, trunks)),
            epoch: Instant::now(),
            calls: None,
        }
    }

    /// The same gate, asking `calls` about every new INVITE it admits (None: it does not).
    pub fn with_calls(mut self, calls: Option<Arc<dyn CallScreen>>) -> DoorGate {
        self.calls = calls;
        self
    }

    /// The router's verdict on an admitted new INVITE (`Pass` without a screen). Feature
    /// codes (`*51<ext>`...) are authenticated internal calls and always pass.
    fn screen_call(
        &self,
        head: &Head,
        from: IpAddr,
        transport: &'static str,
        first: bool,
    ) -> CallVerdict {
        let Some(calls) = &self.calls else {
            return CallVerdict::Pass;
        };
        let Some(did) = head.request_line.as_ref().and_then(|l| uri_user(&l.uri)) else {
            return CallVerdict::Pass;
        };
        if super::features::parse(did).is_some() {
            return CallVerdict::Pass;
        }
        let caller = head.from.as_deref().and_then(uri_user).unwrap_or_default();
        calls.screen_call(did, from, caller, transport, first)
    }

    /// Takes one of `ip`'s stateless answers for a refusal after admission (see
    /// [`Door::spend_answer`]).
    fn spend_answer(&self, ip: IpAddr, key: u64) -> bool {
        let now = self.now_ms();
        self.door().spend_answer(now, ip, key)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn door(&self) -> std::sync::MutexGuard<'_, Door> {
        // A panic elsewhere while holding the lock leaves counts that are still counts.
        self.door.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The verdict on a new INVITE from `ip` (`key`: [`invite_key`]).
    pub fn screen_invite(&self, ip: IpAddr, queued: usize, key: u64) -> Verdict {
        let now = self.now_ms();
        self.door().screen_invite(now, ip, queued, key)
    }

    /// [`DoorGate::screen_invite`], and what the door knows of this INVITE already.
    fn screen_new_invite(&self, ip: IpAddr, queued: usize, key: u64) -> (Verdict, Seen) {
        let now = self.now_ms();
        let mut door = self.door();
        let seen = if door.passed_before(key) {
            Seen::Passed
        } else if door.refused_before(key) {
            Seen::Refused
        } else {
            Seen::New
        };
        (door.screen_invite(now, ip, queued, key), seen)
    }

    /// Whether another datagram may go on with `queued` waiting.
    pub fn admits_other(&self, queued: usize) -> bool {
        super::door::admits_other(self.queue, queued)
    }

    /// Counts a call from `ip`; the ticket gives it back when dropped.
    pub fn start_call(self: &Arc<Self>, ip: IpAddr) -> Result<DoorTicket, Refusal> {
        let now = self.now_ms();
        self.door().start_call(now, ip)?;
        Ok(DoorTicket {
            gate: self.clone(),
            ip,
        })
    }

    /// Calls in progress counted for `ip`'s source.
    pub fn calls_of(&self, ip: IpAddr) -> u32 {
        self.door().calls_of(ip)
    }

    /// The limits in force.
    pub fn policy(&self) -> DoorPolicy {
        self.door().policy()
    }

    /// The `Retry-After` header line of a refusal.
    fn retry_after(&self) -> &str {
        &self.retry_after
    }
}

/// One call counted against its source; dropping it ends the call for the door.
pub struct DoorTicket {
    gate: Arc<DoorGate>,
    ip: IpAddr,
}

impl Drop for DoorTicket {
    fn drop(&mut self) {
        self.gate.door().end_call(self.ip);
    }
}

impl std::fmt::Debug for DoorTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DoorTicket").finish_non_exhaustive()
    }
}

/// What the door says about a datagram before it is screened in full.
#[derive(Debug, PartialEq, Eq)]
pub enum Fast {
    /// Screen it as usual.
    Screen,
    /// It is done with: answered, absorbed or dropped (and counted).
    Done(Screen),
}

/// The door's look at one datagram from `from`: a new INVITE (no To tag) is judged by the
/// door and a refusal answered statelessly from a light scan of its head, without the full
/// parse; an ACK of one of the guard's own answers is absorbed; anything else is shed when
/// the queue to the stack is at twice its bound. Counts into `counters`.
pub fn door_check(packet: &[u8], from: IpAddr, gate: &DoorGate, counters: &GuardCounters) -> Fast {
    let queued = counters.queued();
    // CRLFs before the start line are allowed (RFC 3261 §7.5).
    let start = packet.trim_ascii_start();
    let is_invite = start.starts_with(b"INVITE ");
    let is_ack = start.starts_with(b"ACK ");
    if is_invite || is_ack {
        let text = String::from_utf8_lossy(start);
        let head = Head::scan(&text);
        let to_tag = head.to.as_deref().and_then(to_tag);
        if is_ack {
            if to_tag.is_some_and(|t| t.starts_with(STATELESS_TAG)) {
                counters.acks_absorbed.fetch_add(1, Ordering::Relaxed);
                return Fast::Done(Screen::Drop("ACK of a stateless answer"));
            }
        } else if to_tag.is_none() {
            return match judge_new_invite(&head, from, "udp", queued, gate, counters) {
                None => Fast::Screen,
                Some(done) => Fast::Done(done),
            };
        }
    }
    if gate.admits_other(queued) {
        Fast::Screen
    } else {
        counters.door_shed.fetch_add(1, Ordering::Relaxed);
        Fast::Done(Screen::Drop("queue to the stack full"))
    }
}

/// The door's and the router's verdict on a new INVITE (no To tag) from `from`, with
/// `queued` messages waiting for the stack: `None` when it goes on to the stack, else the
/// stateless answer or the drop (counted). One judgement for datagrams and streams.
fn judge_new_invite(
    head: &Head,
    from: IpAddr,
    transport: &'static str,
    queued: usize,
    gate: &DoorGate,
    counters: &GuardCounters,
) -> Option<Screen> {
    let key = invite_key(head);
    let (verdict, seen) = gate.screen_new_invite(from, queued, key);
    let call = match verdict {
        Verdict::Admit if seen != Seen::Passed => {
            gate.screen_call(head, from, transport, seen == Seen::New)
        }
        _ => CallVerdict::Pass,
    };
    if call != CallVerdict::Pass {
        return Some(refuse_call(head, from, gate, counters, call, key));
    }
    counters.count_door(verdict);
    match verdict {
        Verdict::Admit => None,
        Verdict::Answer(refusal) => {
            let reason = match refusal {
                Refusal::Rate => "too many new calls from this address",
                Refusal::Calls => "too many calls in progress from this address",
                Refusal::Queue => "overloaded",
            };
            Some(answer_or_drop(
                head,
                503,
                reason,
                Some(gate.retry_after().to_owned()),
            ))
        }
        Verdict::Drop(_) => Some(Screen::Drop("refused by the door past the answer budget")),
    }
}

/// What identifies a request and its retransmissions: its Call-ID and top Via (which
/// carries the branch), hashed.
fn invite_key(head: &Head) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    head.call_id.hash(&mut h);
    head.vias.first().hash(&mut h);
    h.finish()
}

/// A stateless answer to a new INVITE the router refuses (`call` is not `Pass`), within
/// the source's answer budget; past it the INVITE is dropped. Counted either way.
fn refuse_call(
    head: &Head,
    from: IpAddr,
    gate: &DoorGate,
    counters: &GuardCounters,
    call: CallVerdict,
    key: u64,
) -> Screen {
    if !gate.spend_answer(from, key) {
        counters.calls_dropped.fetch_add(1, Ordering::Relaxed);
        return Screen::Drop("refused by the router past the answer budget");
    }
    counters.calls_answered[call.index()].fetch_add(1, Ordering::Relaxed);
    match call {
        CallVerdict::UnknownNumber => answer_or_drop(head, 404, "no such number", None),
        CallVerdict::ForeignTrunk => {
            answer_or_drop(head, 403, "not a trunk of this number's tenant", None)
        }
        CallVerdict::Full { retry_after_secs } => answer_or_drop(
            head,
            503,
            "all channels in use",
            Some(format!("Retry-After: {retry_after_secs}\r\n")),
        ),
        CallVerdict::Pass => Screen::Drop("unreachable: a passed call is not refused"),
    }
}

/// The user part of a SIP URI in a Request-URI or a From/To value (`"Name" <sip:user@host>;tag=x`,
/// `sip:user@host;user=phone`); None without one, or when it is escaped (`%`), which the
/// stack's parser reads and the router then judges.
fn uri_user(value: &str) -> Option<&str> {
    let start = value.find("sip:").or_else(|| value.find("sips:"))?;
    let rest = &value[start..];
    let rest = &rest[rest.find(':')? + 1..];
    let end = rest.find(['@', '>', ';', ' '])?;
    if rest.as_bytes().get(end) != Some(&b'@') {
        return None;
    }
    let user = rest[..end].split(';').next().unwrap_or_default();
    (!user.is_empty() && !user.contains('%')).then_some(user)
}

/// The tag of a To (or From) header value, if it has one.
fn to_tag(value: &str) -> Option<&str> {
    let lower = value.to_ascii_lowercase();
    let at = lower.find(";tag=")?;
    let rest = &value[at + 5..];
    let end = rest.find([';', ' ', '\t', '>']).unwrap_or(rest.len());
    let tag = rest[..end].trim();
    (!tag.is_empty()).then_some(tag)
}

/// Counters of what the front door turned away.
#[derive(Default, Debug)]
pub struct GuardCounters {
    /// Datagrams passed on to the stack.
    pub passed: AtomicU64,
    /// Of those, requests normalised first (RFC 2543 From without tag, spaced tag).
    pub normalised: AtomicU64,
    /// Bad requests answered with 400.
    pub rejected_400: AtomicU64,
    /// Requests with unknown methods answered with 501.
    pub rejected_501: AtomicU64,
    /// Requests with another SIP version answered with 505.
    pub rejected_505: AtomicU64,
    /// Requests larger than the UDP read buffer answered with 513.
    pub rejected_513: AtomicU64,
    /// Datagrams dropped without an answer (garbage, bad responses, bad ACKs).
    pub dropped: AtomicU64,
    /// UDP messages handed to the stack (keep-alives, which it answers at once, aside).
    pub handed: AtomicU64,
    /// UDP messages the stack has taken up (seen by [`StreamGuard`]); `handed` minus this is
    /// what waits between the socket and the stack's transaction layer.
    pub taken: AtomicU64,
    /// New INVITEs the door let through.
    pub door_admitted: AtomicU64,
    /// New INVITEs refused with a stateless 503, by [`Refusal`] (rate, calls, queue).
    pub door_answered: [AtomicU64; 3],
    /// New INVITEs refused and dropped (the source's answer budget was spent), by [`Refusal`].
    pub door_dropped: [AtomicU64; 3],
    /// Other datagrams shed because the queue to the stack was at twice its bound.
    pub door_shed: AtomicU64,
    /// ACKs of the guard's own stateless answers, absorbed here.
    pub acks_absorbed: AtomicU64,
    /// New INVITEs the door let through that the router refused at once, answered
    /// statelessly: unknown number (404), foreign trunk (403), channels full (503).
    pub calls_answered: [AtomicU64; 3],
    /// Of those, dropped instead (the source's answer budget was spent).
    pub calls_dropped: AtomicU64,
}

fn refusal_index(r: Refusal) -> usize {
    match r {
        Refusal::Rate => 0,
        Refusal::Calls => 1,
        Refusal::Queue => 2,
    }
}

impl GuardCounters {
    /// Counts a request answered by the guard itself, by status class.
    pub fn count_answer(&self, status: u16) {
        let counter = match status {
            501 => &self.rejected_501,
            505 => &self.rejected_505,
            513 => &self.rejected_513,
            _ => &self.rejected_400,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a door verdict.
    pub fn count_door(&self, verdict: Verdict) {
        let counter = match verdict {
            Verdict::Admit => &self.door_admitted,
            Verdict::Answer(r) => &self.door_answered[refusal_index(r)],
            Verdict::Drop(r) => &self.door_dropped[refusal_index(r)],
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// UDP messages passed on and not yet taken by the stack.
    pub fn queued(&self) -> usize {
        let handed = self.handed.load(Ordering::Relaxed);
        let taken = self.taken.load(Ordering::Relaxed);
        usize::try_from(handed.saturating_sub(taken)).unwrap_or(usize::MAX)
    }

    /// Total datagrams turned away (answered or dropped).
    pub fn turned_away(&self) -> u64 {
        self.rejected_400.load(Ordering::Relaxed)
            + self.rejected_501.load(Ordering::Relaxed)
            + self.rejected_505.load(Ordering::Relaxed)
            + self.rejected_513.load(Ordering::Relaxed)
            + self.dropped.load(Ordering::Relaxed)
    }
}

/// The verdict on one datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Screen {
    /// Hand it to the stack.
    Pass,
    /// Hand this normalised copy to the stack instead (e.g. an RFC 2543
    /// request without a From tag, or a tag written with spaces around `=`,
    /// which the stack cannot key a transaction on).
    PassRewritten(Vec<u8>),
    /// Answer with these bytes and do not pass it on.
    Answer { status: u16, bytes: Vec<u8> },
    /// Drop it silently (counted).
    Drop(&'static str),
}

/// The methods navbat implements, for `Allow` headers.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REGISTER, UPDATE, PRACK";

const KNOWN_METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// Screens one datagram. Pure; used by the socket wrapper and by tests.
pub fn screen(packet: &[u8]) -> Screen {
    screen_parsed(packet).0
}

/// Screens one datagram and gives back the message the screen parsed when it passes (the
/// normalised one after a rewrite), so the stack is handed it without a second parse. `None`
/// with a pass: a keep-alive.
pub fn screen_parsed(packet: &[u8]) -> (Screen, Option<SipMessage>) {
    if packet.iter().all(|b| b.is_ascii_whitespace()) {
        return (Screen::Pass, None); // keep-alive, answered by the reader
    }
    let parsed = SipMessage::try_from(packet);
    let text = String::from_utf8_lossy(packet);
    let head = Head::scan(&text);
    let verdict = match parsed {
        Ok(SipMessage::Request(_))
            if head
                .request_line
                .as_ref()
                .is_some_and(|l| !l.version.eq_ignore_ascii_case("SIP/2.0")) =>
        {
            answer_or_drop(&head, 505, "SIP version not supported", None)
        }
        Ok(SipMessage::Request(mut req)) => {
            let verdict = screen_request(&mut req, &head);
            return match verdict {
                Screen::Pass | Screen::PassRewritten(_) => {
                    (verdict, Some(SipMessage::Request(req)))
                }
                other => (other, None),
            };
        }
        Ok(SipMessage::Response(resp)) => {
            let ok = resp.via_header().is_ok()
                && resp.cseq_header().is_ok()
                && resp.call_id_header().is_ok()
                && resp.from_header().is_ok()
                && resp.to_header().is_ok();
            if ok {
                return (Screen::Pass, Some(SipMessage::Response(resp)));
            }
            Screen::Drop("response without the mandatory headers")
        }
        Err(_) => {
            let Some(line) = &head.request_line else {
                return (Screen::Drop("not a SIP message"), None);
            };
            if !line.version.eq_ignore_ascii_case("SIP/2.0") {
                return (
                    answer_or_drop(&head, 505, "SIP version not supported", None),
                    None,
                );
            }
            if is_token(&line.method) && !KNOWN_METHODS.contains(&line.method.as_str()) {
                return (answer_or_drop(&head, 501, "unknown method", None), None);
            }
            answer_or_drop(&head, 400, "unparseable request", None)
        }
    };
    (verdict, None)
}

/// Screens a datagram that did not fit the read buffer (`head`: the part that did): a request
/// gets 513 Message Too Large (RFC 3261 §21.5.11) when its head has what a response needs,
/// anything else is dropped. It is never passed on: a cut message would be read as another.
pub fn screen_truncated(head: &[u8]) -> Screen {
    let text = String::from_utf8_lossy(head);
    answer_or_drop(
        &Head::scan(&text),
        513,
        "larger than navbat reads over UDP (8 KB): send it over TCP",
        None,
    )
}

/// Option tags navbat supports in `Require` (RFC 3261 §8.2.2.3): none yet.
const SUPPORTED_EXTENSIONS: &[&str] = &[];

fn screen_request(req: &mut rsipstack::sip::Request, head: &Head) -> Screen {
    use rsipstack::sip::Method;
    if head.content_lengths_disagree {
        return answer_or_drop(head, 400, "conflicting Content-Length headers", None);
    }
    // Judged on the text: the stack's URI parser maps some unknown schemes to sip.
    let scheme_ok = head
        .request_line
        .as_ref()
        .and_then(|l| l.uri.split_once(':'))
        .is_some_and(|(scheme, _)| {
            scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")
        });
    let answerable = !matches!(req.method, Method::Ack | Method::Cancel);
    if !scheme_ok && answerable {
        return answer_or_drop(head, 416, "unsupported Request-URI scheme", None);
    }
    if answerable {
        let unsupported: Vec<String> = head
            .require
            .iter()
            .filter(|tag| !SUPPORTED_EXTENSIONS.contains(&tag.as_str()))
            .cloned()
            .collect();
        if !unsupported.is_empty() {
            let extra = format!("Unsupported: {}\r\n", unsupported.join(", "));
            return answer_or_drop(head, 420, "unsupported extension required", Some(extra));
        }
    }
    let mut rewritten = false;
    if req
        .from_header()
        .ok()
        .and_then(|f| f.tag().ok().flatten())
        .is_none()
    {
        // RFC 3261 §8.2.6.2 allows RFC 2543 peers without a From tag, and
        // LWS around `=` is legal (§25.1); the stack handles neither, so the
        // tag is normalised, or one is derived from the Call-ID (stable across
        // retransmissions, so they still match the same transaction).
        let Some(from) = &head.from else {
            return answer_or_drop(head, 400, "missing From", None);
        };
        let mut value = normalise_tag(from);
        if !value.to_ascii_lowercase().contains(";tag=") {
            let call_id = head.call_id.as_deref().unwrap_or_default();
            let digest = md5::Digest::finalize(<md5::Md5 as md5::Digest>::new_with_prefix(call_id));
            value.push_str(&format!(";tag=rfc2543-{}", hex::encode(&digest[..6])));
        }
        req.headers
            .unique_push(rsipstack::sip::Header::From(value.into()));
        if let Some(to) = &head.to {
            req.headers
                .unique_push(rsipstack::sip::Header::To(normalise_tag(to).into()));
        }
        rewritten = true;
        // A From whose URI the stack cannot read keeps no tag it can key on, rewritten or not
        // (found by the sip_screen fuzz target, tests/fixtures/fuzz/sip_screen/from-tag-unreadable).
        if req
            .from_header()
            .ok()
            .and_then(|f| f.tag().ok().flatten())
            .is_none()
        {
            return answer_or_drop(head, 400, "From without a usable tag", None);
        }
    }
    match request_problem(req, head) {
        Some(reason) => answer_or_drop(head, 400, reason, None),
        None if rewritten => Screen::PassRewritten(req.to_string().into_bytes()),
        None => Screen::Pass,
    }
}

/// `;  tag = x` -> `;tag=x` (folded header values are already unfolded).
fn normalise_tag(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find(';') {
        out.push_str(&rest[..i]);
        let after = rest[i + 1..].trim_start();
        let lower = after.to_ascii_lowercase();
        if lower.starts_with("tag") && after[3..].trim_start().starts_with('=') {
            let val = after[3..].trim_start()[1..].trim_start();
            out.push_str(";tag=");
            rest = val;
        } else {
            out.push(';');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

fn request_problem(req: &rsipstack::sip::Request, head: &Head) -> Option<&'static str> {
    if req.via_header().is_err() {
        return Some("missing or bad Via");
    }
    if req.from_header().is_err() || req.to_header().is_err() {
        return Some("missing From or To");
    }
    if req.call_id_header().is_err() {
        return Some("missing Call-ID");
    }
    // Not `?`: that would return "no problem" for a request without CSeq, and pass it on
    // (found by the sip_parse fuzz target, tests/fixtures/fuzz/sip_parse/cseq-line-cut-by-cr).
    let Ok(cseq) = req.cseq_header() else {
        return Some("CSeq missing, malformed or for another method");
    };
    match (cseq.seq(), cseq.method()) {
        (Ok(_), Ok(m)) if m == req.method => {}
        (Ok(_), Ok(m)) if req.method == rsipstack::sip::Method::Cancel && m == req.method => {}
        _ => return Some("CSeq missing, malformed or for another method"),
    }
    if rsipstack::transaction::key::TransactionKey::from_request(
        req,
        rsipstack::transaction::key::TransactionRole::Server,
    )
    .is_err()
    {
        return Some("no usable transaction key");
    }
    if let Some(declared) = head.content_length {
        if declared > head.body_len {
            return Some("Content-Length larger than the body");
        }
    }
    None
}

fn answer_or_drop(head: &Head, status: u16, reason: &'static str, extra: Option<String>) -> Screen {
    let Some(line) = &head.request_line else {
        return Screen::Drop(reason);
    };
    if line.method.eq_ignore_ascii_case("ACK") {
        return Screen::Drop("bad ACK (never answered)");
    }
    if head.vias.is_empty() || head.from.is_none() || head.to.is_none() || head.call_id.is_none() {
        return Screen::Drop(reason);
    }
    // The answer copies these values; one with a bare CR (only LF ends a line in the scan)
    // would split a header of ours in two for a peer that ends lines at CR. Found by the
    // sip_screen fuzz target (tests/fixtures/fuzz/sip_screen/bare-cr-in-from).
    let mut echoed = head.vias.iter().chain(&head.require).chain(
        [&head.from, &head.to, &head.call_id, &head.cseq]
            .into_iter()
            .flatten(),
    );
    if echoed.any(|v| v.contains(['\r', '\n'])) {
        return Screen::Drop("bare CR in a header the answer would copy");
    }
    let phrase = match status {
        400 => "Bad Request",
        501 => "Not Implemented",
        505 => "Version Not Supported",
        416 => "Unsupported URI Scheme",
        513 => "Message Too Large",
        420 => "Bad Extension",
        403 => "Forbidden",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut out = format!("SIP/2.0 {status} {phrase}\r\n");
    for v in &head.vias {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!(
        "From: {}\r\n",
        head.from.as_deref().unwrap_or_default()
    ));
    let to = head.to.as_deref().unwrap_or_default();
    if normalise_tag(to).to_ascii_lowercase().contains(";tag=") {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        // The same tag for every retransmission of the request, so each gets the same answer
        // and its ACK is recognised (the guard keeps no state to remember a random one).
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        head.call_id.hash(&mut h);
        head.vias.first().hash(&mut h);
        out.push_str(&format!(
            "To: {to};tag={STATELESS_TAG}{:016x}\r\n",
            h.finish()
        ));
    }
    out.push_str(&format!(
        "Call-ID: {}\r\n",
        head.call_id.as_deref().unwrap_or_default()
    ));
    if let Some(cseq) = &head.cseq {
        out.push_str(&format!("CSeq: {cseq}\r\n"));
    }
    if status == 501 {
        out.push_str(&format!("Allow: {ALLOW}\r\n"));
    }
    if let Some(extra) = extra {
        out.push_str(&extra);
    }
    out.push_str(&format!("Warning: 399 navbat \"{reason}\"\r\n"));
    out.push_str("Content-Length: 0\r\n\r\n");
    Screen::Answer {
        status,
        bytes: out.into_bytes(),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

struct RequestLine {
    method: String,
    uri: String,
    version: String,
}

/// A forgiving textual scan of the header block, enough to answer a message
/// the real parser refused: unfolds continuation lines, knows compact forms.
#[derive(Default)]
struct Head {
    request_line: Option<RequestLine>,
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
    content_length: Option<usize>,
    content_lengths_disagree: bool,
    require: Vec<String>,
    body_len: usize,
}

impl Head {
    fn scan(text: &str) -> Head {
        let mut head = Head::default();
        let (header_block, body) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => match text.find("\n\n") {
                Some(i) => (&text[..i], &text[i + 2..]),
                None => (text, ""),
            },
        };
        head.body_len = body.len();
        let mut lines: Vec<String> = Vec::new();
        for raw in header_block.split('\n') {
            let line = raw.trim_end_matches('\r');
            if (line.starts_with(' ') || line.starts_with('\t')) && !lines.is_empty() {
                let last = lines.last_mut().expect("checked non-empty");
                last.push(' ');
                last.push_str(line.trim());
            } else {
                lines.push(line.to_string());
            }
        }
        let mut it = lines.into_iter();
        if let Some(first) = it.next() {
            let parts: Vec<&str> = first.split_whitespace().collect();
            if parts.len() == 3 && parts[2].to_ascii_uppercase().starts_with("SIP/") {
                head.request_line = Some(RequestLine {
                    method: parts[0].to_string(),
                    uri: parts[1].to_string(),
                    version: parts[2].to_string(),
                });
            }
        }
        for line in it {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim().to_string();
            match name.trim().to_ascii_lowercase().as_str() {
                "via" | "v" => head
                    .vias
                    .extend(split_commas(&value).into_iter().filter(|v| !v.is_empty())),
                "from" | "f" => head.from = Some(value),
                "to" | "t" => head.to = Some(value),
                "call-id" | "i" => head.call_id = Some(value),
                "cseq" => head.cseq = Some(value),
                "content-length" | "l" => {
                    let n = value.parse().ok();
                    if head.content_length.is_some() && head.content_length != n {
                        head.content_lengths_disagree = true;
                    }
                    head.content_length = n;
                }
                "require" => head
                    .require
                    .extend(split_commas(&value).into_iter().filter(|t| !t.is_empty())),
                _ => {}
            }
        }
        head
    }
}

fn split_commas(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c)
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// Something to do once the stack has started its listeners (it is given the first event).
pub type LateListener = Box<dyn FnOnce() + Send>;

/// The same screening for stream transports, where the stack parses the framing itself: the
/// connections rsipstack opens to reach a peer. Those navbat accepts were framed and screened
/// by `tcp.rs` already; here, for every stream, the door judges new INVITEs, ACKs of the
/// guard's answers are absorbed, and a message that parses but lacks what a transaction
/// needs is answered with 400.
pub struct StreamGuard {
    counters: Arc<GuardCounters>,
    gate: Arc<DoorGate>,
    tcp: Option<StreamTcp>,
}

/// What the stream guard knows of navbat's own TCP listener.
pub struct StreamTcp {
    /// The listening address (the local address of every connection it accepted).
    pub local: rsipstack::transport::SipAddr,
    /// The counters whose `taken` the guard keeps.
    pub counters: Arc<super::tcp::TcpCounters>,
    /// Run at the first event, once the stack has started its listeners.
    pub late: Mutex<Option<LateListener>>,
}

impl StreamGuard {
    /// A guard counting into `counters`, asking `gate` about new INVITEs; `tcp`: the TCP
    /// listening address, its counters and a function run at the first event.
    pub fn new(
        counters: Arc<GuardCounters>,
        gate: Arc<DoorGate>,
        tcp: Option<StreamTcp>,
    ) -> StreamGuard {
        StreamGuard {
            counters,
            gate,
            tcp,
        }
    }
}

#[async_trait]
impl rsipstack::transaction::endpoint::TransportEventInspector for StreamGuard {
    async fn handle(
        &self,
        event: rsipstack::transport::TransportEvent,
    ) -> Option<rsipstack::transport::TransportEvent> {
        use rsipstack::transport::TransportEvent;
        if let Some(tcp) = &self.tcp {
            let run = tcp.late.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(run) = run {
                run();
            }
            if let TransportEvent::Incoming(_, conn, _) = &event {
                if conn.is_reliable() && conn.get_addr() == &tcp.local {
                    tcp.counters.taken.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let TransportEvent::Incoming(_, conn, _) = &event {
            if !conn.is_reliable() {
                self.counters.taken.fetch_add(1, Ordering::Relaxed);
            }
        }
        let TransportEvent::Incoming(SipMessage::Request(req), conn, from) = event else {
            return Some(event);
        };
        if !conn.is_reliable() {
            // UDP was screened by the socket guard already.
            return Some(TransportEvent::Incoming(
                SipMessage::Request(req),
                conn,
                from,
            ));
        }
        let text = req.to_string();
        let mut head = Head::scan(&text);
        // The stream framing already cut the body by Content-Length.
        head.content_length = None;
        let to_tag = head.to.as_deref().and_then(to_tag);
        if req.method == rsipstack::sip::Method::Ack
            && to_tag.is_some_and(|t| t.starts_with(STATELESS_TAG))
        {
            self.counters.acks_absorbed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let new_invite = req.method == rsipstack::sip::Method::Invite && to_tag.is_none();
        let peer = authenticate_peer(&from);
        if let (true, Some(ip)) = (new_invite, peer) {
            // A stream has no queue of ours in front of it: the door judges rate and calls,
            // the router the number, the trunk and the channels, as for a datagram.
            if let Some(done) = judge_new_invite(&head, ip, "tcp", 0, &self.gate, &self.counters) {
                if let Screen::Answer { bytes, .. } = done {
                    if let Ok(msg) = SipMessage::try_from(bytes.as_slice()) {
                        let _ = conn.send(msg, None).await;
                    }
                }
                return None;
            }
        }
        let mut req = req;
        match screen_request(&mut req, &head) {
            Screen::Pass => {
                return Some(TransportEvent::Incoming(
                    SipMessage::Request(req),
                    conn,
                    from,
                ))
            }
            Screen::PassRewritten(_) => {
                self.counters.normalised.fetch_add(1, Ordering::Relaxed);
                return Some(TransportEvent::Incoming(
                    SipMessage::Request(req),
                    conn,
                    from,
                ));
            }
            Screen::Answer { status, bytes } => {
                self.counters.count_answer(status);
                if let Ok(msg) = SipMessage::try_from(bytes.as_slice()) {
                    let _ = conn.send(msg, None).await;
                }
            }
            Screen::Drop(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        None
    }
}

/// The address a stream message came from.
fn authenticate_peer(from: &rsipstack::transport::SipAddr) -> Option<IpAddr> {
    from.addr
        .host
        .to_string()
        .trim_matches(['[', ']'])
        .parse()
        .ok()
}

/// The listening UDP socket with the guard in front of the stack.
pub struct GuardedUdpSocket {
    socket: tokio::net::UdpSocket,
    counters: Arc<GuardCounters>,
    gate: Arc<DoorGate>,
}

impl GuardedUdpSocket {
    /// Wraps a bound socket; new INVITEs are judged by `gate`.
    pub fn new(
        socket: tokio::net::UdpSocket,
        counters: Arc<GuardCounters>,
        gate: Arc<DoorGate>,
    ) -> GuardedUdpSocket {
        GuardedUdpSocket {
            socket,
            counters,
            gate,
        }
    }

    /// One datagram into `buf`, with whether the kernel cut it to fit (`MSG_TRUNC` in the
    /// flags `recvmsg` returns: the same one system call as `recv_from`).
    async fn recv_noting_truncation(
        &self,
        buf: &mut [u8],
    ) -> std::io::Result<(usize, SocketAddr, bool)> {
        use nix::sys::socket::{recvmsg, MsgFlags, SockaddrStorage};
        use std::os::fd::AsRawFd;
        let fd = self.socket.as_raw_fd();
        loop {
            self.socket.readable().await?;
            let got = self.socket.try_io(tokio::io::Interest::READABLE, || {
                let mut iov = [std::io::IoSliceMut::new(buf)];
                let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, None, MsgFlags::empty())
                    .map_err(std::io::Error::from)?;
                let from = msg
                    .address
                    .and_then(|a| {
                        a.as_sockaddr_in()
                            .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                            .or_else(|| {
                                a.as_sockaddr_in6()
                                    .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                            })
                    })
                    .ok_or_else(|| std::io::Error::other("datagram without a source"))?;
                Ok((msg.bytes, from, msg.flags.contains(MsgFlags::MSG_TRUNC)))
            });
            match got {
                Ok(got) => return Ok(got),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl GuardedUdpSocket {
    /// Reads the socket for good: each datagram is screened and parsed once, and what passes
    /// is handed to the stack already parsed (`feed`, as coming from `conn`), so the stack
    /// does not parse it again. Answers and drops never reach the stack. Ends with `cancel`.
    pub(super) async fn serve(
        self: Arc<Self>,
        conn: rsipstack::transport::udp::UdpConnection,
        feed: rsipstack::transport::connection::TransportSender,
        own: Option<Arc<super::own::OwnTransactions>>,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let got = tokio::select! {
                () = cancel.cancelled() => return,
                got = self.recv_noting_truncation(&mut buf) => got,
            };
            let (len, from, truncated) = match got {
                Ok(got) => got,
                Err(e) => {
                    tracing::debug!(error = %e, "SIP UDP receive failed");
                    continue;
                }
            };
            let packet = &buf[..len];
            let (verdict, message) = if truncated {
                (screen_truncated(packet), None)
            } else {
                match door_check(packet, from.ip(), &self.gate, &self.counters) {
                    Fast::Screen => {
                        super::warn_limit::from_source(from.ip(), || screen_parsed(packet))
                    }
                    Fast::Done(Screen::Answer { bytes, .. }) => {
                        let _ = self.socket.send_to(&bytes, from).await;
                        continue;
                    }
                    Fast::Done(_) => continue,
                }
            };
            match verdict {
                Screen::Pass | Screen::PassRewritten(_) => {
                    self.counters.passed.fetch_add(1, Ordering::Relaxed);
                    if matches!(verdict, Screen::PassRewritten(_)) {
                        self.counters.normalised.fetch_add(1, Ordering::Relaxed);
                    }
                    let Some(message) = message else {
                        // A keep-alive: CRLFCRLF gets CRLF (as rsipstack answered it; phones
                        // send it over UDP too, though RFC 5626 §3.5.1 defines it for
                        // streams); other blank datagrams are nothing.
                        if packet == b"\r\n\r\n" {
                            let _ = self.socket.send_to(b"\r\n", from).await;
                        }
                        continue;
                    };
                    let message = match SipConnection::update_msg_received(
                        message,
                        from,
                        rsipstack::sip::Transport::Udp,
                    ) {
                        Ok(message) => message,
                        Err(e) => {
                            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%from, error = %e, "cannot note the source in Via");
                            continue;
                        }
                    };
                    // Out-of-dialog REGISTER and OPTIONS stay with navbat (`own.rs`).
                    let message = match &own {
                        Some(own) => match own.offer(message, from, len) {
                            Some(message) => message,
                            None => continue,
                        },
                        None => message,
                    };
                    self.counters.handed.fetch_add(1, Ordering::Relaxed);
                    let source = SipAddr {
                        r#type: Some(rsipstack::sip::Transport::Udp),
                        addr: from.into(),
                    };
                    let event =
                        TransportEvent::Incoming(message, SipConnection::Udp(conn.clone()), source);
                    if feed.send(event).is_err() {
                        return; // the stack has stopped
                    }
                }
                Screen::Answer { status, bytes } => {
                    self.counters.count_answer(status);
                    tracing::debug!(%from, status, "malformed SIP answered");
                    let _ = self.socket.send_to(&bytes, from).await;
                }
                Screen::Drop(reason) => {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%from, reason, "malformed SIP dropped");
                }
            }
        }
    }
}

impl GuardedUdpSocket {
    /// Sends one datagram if the kernel takes it at once.
    pub(super) fn try_send_to(&self, bytes: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        self.socket.try_send_to(bytes, to)
    }
}

/// What navbat reads of one datagram: a larger one is answered 513 (RFC 3261 §18.1.1 has UDP
/// messages near the path MTU; anything bigger belongs on TCP).
const MAX_DATAGRAM: usize = 8 * 1024;

/// The stack's view of the socket: it sends through it, and never reads (navbat's reader,
/// [`GuardedUdpSocket::serve`], does, and hands over what it parsed).
#[async_trait]
impl rsipstack::platform::net::UdpSocket for GuardedUdpSocket {
    async fn recv_from(&self, _buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        std::future::pending().await
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: x1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn good_request_passes() {
        assert_eq!(screen(OPTIONS.as_bytes()), Screen::Pass);
        assert_eq!(screen(b"\r\n\r\n"), Screen::Pass);
    }

    #[test]
    fn a_bare_cr_in_a_header_it_would_copy_is_dropped_not_answered() {
        // An unknown method: refused by the parser, so answered from the textual scan.
        let m = OPTIONS
            .replace("OPTIONS sip", "NEWMETHOD sip")
            .replace("1 OPTIONS", "1 NEWMETHOD")
            .replace("tag=1", "tag=1\rInjected: yes");
        assert!(matches!(screen(m.as_bytes()), Screen::Drop(_)));
    }

    #[test]
    fn a_request_without_cseq_gets_400() {
        let m = OPTIONS.replace("CSeq: 1 OPTIONS\r\n", "");
        assert!(matches!(
            screen(m.as_bytes()),
            Screen::Answer { status: 400, .. }
        ));
    }

    #[test]
    fn garbage_is_dropped() {
        assert!(matches!(screen(b"hello world"), Screen::Drop(_)));
        assert!(matches!(screen(&[0xff, 0x00, 0x13]), Screen::Drop(_)));
    }

    #[test]
    fn unknown_method_gets_501_with_allow() {
        let m = OPTIONS
            .replace("OPTIONS sip", "NEWMETHOD sip")
            .replace("1 OPTIONS", "1 NEWMETHOD");
        match screen(m.as_bytes()) {
            Screen::Answer { status, bytes } => {
                let s = String::from_utf8(bytes).unwrap();
                assert_eq!(status, 501);
                assert!(s.contains("Allow: INVITE"));
                assert!(s.contains("Call-ID: x1"));
                assert!(s.contains(";tag="));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cseq_method_mismatch_gets_400() {
        let m = OPTIONS.replace("1 OPTIONS", "1 INVITE");
        assert!(matches!(
            screen(m.as_bytes()),
            Screen::Answer { status: 400, .. }
        ));
    }

    #[test]
    fn missing_call_id_is_dropped_not_answered() {
        let m = OPTIONS.replace("Call-ID: x1\r\n", "");
        assert!(matches!(screen(m.as_bytes()), Screen::Drop(_)));
    }

    #[test]
    fn short_body_gets_400() {
        let m = OPTIONS.replace("Content-Length: 0", "Content-Length: 50");
        assert!(matches!(
            screen(m.as_bytes()),
            Screen::Answer { status: 400, .. }
        ));
    }

    #[test]
    fn other_version_gets_505() {
        let m = OPTIONS.replace("sip:127.0.0.1 SIP/2.0", "sip:127.0.0.1 SIP/7.0");
        assert!(matches!(
            screen(m.as_bytes()),
            Screen::Answer { status: 505, .. }
        ));
    }

    const INVITE: &str = "INVITE sip:712351914@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKf1\r\nFrom: <sip:998901234567@192.0.2.9>;tag=a1\r\nTo: <sip:712351914@127.0.0.1>\r\nCall-ID: flood-1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    fn gate(calls: u32) -> (DoorGate, GuardCounters) {
        let policy = DoorPolicy {
            source: super::super::door::Caps {
                invites_per_sec: 1,
                burst: 2,
                calls,
            },
            answers_per_sec: 2,
            ..DoorPolicy::default()
        };
        let trunk = Network::parse("127.0.0.1").unwrap();
        (DoorGate::new(policy, vec![trunk]), GuardCounters::default())
    }

    #[test]
    fn a_flood_gets_stateless_503s_then_drops_and_their_acks_are_absorbed() {
        let (gate, counters) = gate(10);
        let from: IpAddr = "192.0.2.9".parse().unwrap();
        let check = |p: &str| door_check(p.as_bytes(), from, &gate, &counters);
        let call = |n: u32| INVITE.replace("flood-1", &format!("flood-{n}"));
        assert_eq!(check(&call(1)), Fast::Screen);
        assert_eq!(check(&call(2)), Fast::Screen);
        // A retransmission of an admitted INVITE goes on to its transaction.
        assert_eq!(check(&call(1)), Fast::Screen);
        let first = match check(INVITE.replace("flood-1", "flood-3").as_str()) {
            Fast::Done(Screen::Answer { status: 503, bytes }) => String::from_utf8(bytes).unwrap(),
            other => panic!("{other:?}"),
        };
        assert!(first.contains("Retry-After: 5\r\n"), "{first}");
        assert!(first.contains("Call-ID: flood-3\r\n"), "{first}");
        assert!(first.contains("Via: SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKf1\r\n"));
        // A retransmission gets the same answer, To tag included.
        match check(&call(3)) {
            Fast::Done(Screen::Answer { bytes, .. }) => assert_eq!(first.as_bytes(), bytes),
            other => panic!("{other:?}"),
        }
        // Past the answer budget: dropped, counted.
        assert!(matches!(check(&call(4)), Fast::Done(Screen::Drop(_))));
        assert_eq!(counters.door_admitted.load(Ordering::Relaxed), 3);
        assert_eq!(counters.door_answered[0].load(Ordering::Relaxed), 2);
        assert_eq!(counters.door_dropped[0].load(Ordering::Relaxed), 1);
        // The ACK of the 503 never reaches the stack.
        let to = first
            .lines()
            .find(|l| l.starts_with("To: "))
            .unwrap()
            .to_string();
        let ack = call(3)
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK")
            .replace("To: <sip:712351914@127.0.0.1>", &to);
        assert!(matches!(check(&ack), Fast::Done(Screen::Drop(_))));
        assert_eq!(counters.acks_absorbed.load(Ordering::Relaxed), 1);
        // Another ACK (of a call the stack answered) goes on to be screened.
        let ack_other = ack.replace("nbs-", "abc");
        assert_eq!(check(&ack_other), Fast::Screen);
        // A trunk source is not held to the source caps.
        let trunk: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(
                door_check(INVITE.as_bytes(), trunk, &gate, &counters),
                Fast::Screen
            );
        }
    }

    #[test]
    fn an_invite_after_leading_crlfs_meets_the_door_too() {
        let (gate, counters) = gate(0);
        let from: IpAddr = "192.0.2.9".parse().unwrap();
        for n in 0..3 {
            let m = format!("\r\n{}", INVITE.replace("flood-1", &format!("crlf-{n}")));
            door_check(m.as_bytes(), from, &gate, &counters);
        }
        assert_eq!(counters.door_admitted.load(Ordering::Relaxed), 2);
        assert_eq!(counters.door_answered[0].load(Ordering::Relaxed), 1);
    }

    #[test]
    fn in_dialog_requests_pass_the_door_until_the_queue_is_twice_full() {
        let (gate, counters) = gate(10);
        let from: IpAddr = "192.0.2.9".parse().unwrap();
        let bye = OPTIONS
            .replace("OPTIONS sip", "BYE sip")
            .replace("1 OPTIONS", "2 BYE");
        assert_eq!(
            door_check(bye.as_bytes(), from, &gate, &counters),
            Fast::Screen
        );
        counters.handed.store(2 * 4096, Ordering::Relaxed);
        assert!(matches!(
            door_check(bye.as_bytes(), from, &gate, &counters),
            Fast::Done(Screen::Drop(_))
        ));
        assert_eq!(counters.door_shed.load(Ordering::Relaxed), 1);
        counters.taken.store(4096, Ordering::Relaxed);
        assert_eq!(
            door_check(bye.as_bytes(), from, &gate, &counters),
            Fast::Screen
        );
        // ...while new INVITEs are refused as soon as it is full.
        match door_check(INVITE.as_bytes(), from, &gate, &counters) {
            Fast::Done(Screen::Answer { status: 503, bytes }) => {
                assert!(String::from_utf8(bytes).unwrap().contains("overloaded"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_ticket_holds_a_call_until_dropped() {
        let (gate, _) = gate(1);
        let gate = Arc::new(gate);
        let from: IpAddr = "192.0.2.9".parse().unwrap();
        let ticket = gate.start_call(from).unwrap();
        assert_eq!(gate.calls_of(from), 1);
        assert!(gate.start_call(from).is_err());
        drop(ticket);
        assert_eq!(gate.calls_of(from), 0);
        assert!(gate.start_call(from).is_ok());
    }

    #[test]
    fn bad_ack_is_never_answered() {
        let m = OPTIONS
            .replace("OPTIONS sip", "ACK sip")
            .replace("1 OPTIONS", "1 INVITE");
        assert!(matches!(screen(m.as_bytes()), Screen::Drop(_)));
    }
}
