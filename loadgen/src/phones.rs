//! The simulated phones of `loadgen run`: thousands of callers and the operators' softphones
//! as one deterministic state machine over UDP datagrams.
//!
//! Why our own minimal UA instead of rsipstack's dialog layer: a caller here is a few
//! hundred bytes of state and a handful of timers in one heap, driven by one task that owns
//! two sockets, so 150,000 calls cost no task or channel per transaction; and because
//! callers and operators live in one state machine, "was this caller answered before their
//! patience ran out" is decided in one place, exactly once (see [`Phones`]).
//!
//! Pure in the quinn/str0m style: the driver passes `now` (microseconds since the run
//! started) into [`Phones::datagram`] and [`Phones::timeout`], sends what
//! [`Phones::poll_output`] yields and sleeps until [`Phones::next_deadline`].

use crate::dist::Rng;
use crate::report::{Outcome, Recorder, CALLBACK, INFO, IVR, PHASES, QUEUE, TALK};
use crate::scenario::{RosterEntry, Scenario, CALLBACK_DIGIT, SELF_SERVICE_DIGIT, SMS_DIGIT};
use crate::sipmsg::{digest_authorization, response, sdp, Message};
use navbat::callback::door::CallbackWhen;
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;

/// Which local socket a datagram uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sock {
    /// The callers' socket.
    Callers,
    /// The operators' socket.
    Operators,
}

/// What the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Send a datagram.
    Send {
        /// From which socket.
        sock: Sock,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Tell the router through its API that this operator finished wrap-up.
    SetAvailable(String),
}

/// Fixed addresses and timing of the run.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The router's SIP address (UDP).
    pub router: SocketAddr,
    /// Local address of the callers' socket.
    pub callers: SocketAddr,
    /// Local address of the operators' socket.
    pub operators: SocketAddr,
    /// Scenario seconds per wall second.
    pub compression: f64,
    /// The DID callers dial.
    pub did: String,
    /// Language digits in weight order.
    pub language_digits: Vec<char>,
    /// Topic digits in weight order.
    pub topic_digits: Vec<char>,
    /// The queue's wrap-up in scenario seconds (operators end theirs early through the API
    /// only when shorter).
    pub queue_wrap_up_secs: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Arrival(u32),
    Retransmit(u64),
    Digit(u32),
    Patience(u32),
    OperatorAnswer(u32),
    OperatorHangUp(u32),
    WrapUpDone(u32),
    Resend200(u32),
    /// The caller keys their choice of the door offer (surge policy).
    DoorKey(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallerState {
    Inviting,
    Ivr,
    Queued,
    /// Surge: listening to the self-service information, until the router hangs up.
    Info,
    Answered,
    Leaving,
    Done,
}

/// A caller's callback, as their phone sees it (surge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallbackState {
    None,
    /// Promised for today: the router will ring an operator, then this phone.
    Pending,
    /// An operator is being rung for it (a channel is held).
    Dialling,
    /// The router dialled this phone and it answered.
    Talking,
    /// Promised for the next morning's window (not served in the run).
    NextMorning,
}

struct Caller {
    call_id: String,
    from_tag: String,
    invite_branch: u64,
    cseq: u32,
    state: CallerState,
    invite_at: u64,
    got_response: bool,
    to_header: Option<String>,
    remote_target: String,
    language: char,
    topic: char,
    digits_sent: u8,
    enqueued_at: u64,
    ended: bool,
    /// When the first ringing or answer came (the greeting starts), for the surge IVR time.
    first_response_at: Option<u64>,
    /// The phase this call holds a channel in (`report::PHASES`), if any.
    held: Option<usize>,
    /// Surge: takes the self-service branch at the topic level.
    deflect: bool,
    /// Surge policy: the router made the door offer (its `door_offer` event).
    offered: bool,
    /// Surge policy: a door offer that came before this phone saw its last IVR key
    /// answered (the router offers as it enqueues, and its event can overtake the 200 to
    /// the INFO): it is taken up as soon as the caller is queued.
    early_offer: Option<(bool, String, bool)>,
    /// Surge policy: the key this caller will press for the offer, and whether the callback
    /// offered is for the next morning.
    choice: Option<(char, bool)>,
    /// The choice was keyed.
    keyed: bool,
    callback: CallbackState,
}

/// A client transaction waiting for a response (retransmitted on Timer A/E).
struct Txn {
    sock: Sock,
    bytes: Vec<u8>,
    interval_us: u64,
    started: u64,
    invite: bool,
    caller: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LegState {
    Ringing,
    Answered,
    Confirmed,
    Ending,
    Gone,
}

struct Leg {
    operator: u32,
    invite: Message,
    to_tag: String,
    caller: Option<u32>,
    state: LegState,
    remote_target: String,
    resend: u32,
    answered_at: u64,
    ok_bytes: Vec<u8>,
    local_cseq: u32,
    /// The router rings this operator for a callback (a channel is held for its dial-out).
    callback: bool,
}

struct Operator {
    entry: RosterEntry,
    registered: bool,
    reg_call_id: String,
    reg_cseq: u32,
    leg: Option<String>,
}

/// Counters of the SIP exchange, for the summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SipCounters {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams that did not parse or matched nothing.
    pub ignored: u64,
    /// Retransmissions sent.
    pub retransmissions: u64,
    /// Client transactions that timed out (32 s without a final response).
    pub transaction_timeouts: u64,
    /// Offers the operators received.
    pub offers: u64,
    /// Offers cancelled by the router (ring timeout or caller gone).
    pub cancels: u64,
    /// Wrap-ups ended early through the API.
    pub early_wrap_ups: u64,
}

/// All simulated phones.
pub struct Phones {
    setup: Setup,
    scenario: Scenario,
    rng: Rng,
    arrivals_us: Vec<u64>,
    started_at: Option<u64>,
    callers: Vec<Caller>,
    caller_by_call_id: HashMap<String, u32>,
    operators: Vec<Operator>,
    operator_by_ext: HashMap<String, u32>,
    legs: HashMap<String, Leg>,
    leg_keys: Vec<String>,
    txns: HashMap<u64, Txn>,
    timers: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    timer_seq: u64,
    next_branch: u64,
    out: VecDeque<Output>,
    /// Measurements (scenario time for waits, wall time for latencies).
    pub recorder: Recorder,
    /// SIP counters.
    pub counters: SipCounters,
    waiting: u64,
    ended: u64,
    /// Channels held by phase, as the phones see them.
    held: [u32; PHASES],
    /// The router's call reference (`c17`) of each caller, from its `call_arrived` events.
    call_refs: HashMap<String, u32>,
    /// Callers placed whose reference is not known yet, by the last two digits of their
    /// number (all an event shows of it).
    unmatched: Vec<BTreeSet<u32>>,
    /// Callbacks promised for today and not yet answered by the caller's phone.
    callbacks_pending: u64,
    /// Callback dial-outs to callers (Call-ID -> caller, our 200 OK).
    trunk_calls: HashMap<String, (u32, Vec<u8>)>,
    requested_by_end: u64,
    completed_by_end: u64,
    /// Router events the phones could not place (unknown reference).
    pub unplaced_events: u64,
    /// INVITE-to-final-response latencies (microseconds) since the driver last took them:
    /// the per-second latency series.
    pub window: Option<hdrhistogram::Histogram<u64>>,
}

const T1_US: u64 = 500_000;
const T2_US: u64 = 4_000_000;
const TXN_TIMEOUT_US: u64 = 32_000_000;

impl Phones {
    /// Phones for `scenario` with `arrivals_ms` (scenario time) and these operators.
    pub fn new(
        setup: Setup,
        scenario: Scenario,
        arrivals_ms: Vec<u64>,
        roster: Vec<RosterEntry>,
        bucket_secs: f64,
    ) -> Phones {
        let c = setup.compression;
        let arrivals_us = arrivals_ms
            .iter()
            .map(|ms| (*ms as f64 * 1000.0 / c) as u64)
            .collect();
        let operators: Vec<Operator> = roster
            .into_iter()
            .enumerate()
            .map(|(i, entry)| Operator {
                reg_call_id: format!("reg-{}-{i}", entry.ext),
                entry,
                registered: false,
                reg_cseq: 0,
                leg: None,
            })
            .collect();
        let operator_by_ext = operators
            .iter()
            .enumerate()
            .map(|(i, o)| (o.entry.ext.clone(), i as u32))
            .collect();
        Phones {
            rng: Rng::seeded(scenario.seed ^ 0x5EED),
            recorder: Recorder::new(bucket_secs, scenario.target_secs),
            setup,
            scenario,
            arrivals_us,
            started_at: None,
            callers: Vec::new(),
            caller_by_call_id: HashMap::new(),
            operators,
            operator_by_ext,
            legs: HashMap::new(),
            leg_keys: Vec::new(),
            txns: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            next_branch: 1,
            out: VecDeque::new(),
            counters: SipCounters::default(),
            waiting: 0,
            ended: 0,
            held: [0; PHASES],
            call_refs: HashMap::new(),
            unmatched: vec![BTreeSet::new(); 100],
            callbacks_pending: 0,
            trunk_calls: HashMap::new(),
            requested_by_end: 0,
            completed_by_end: 0,
            unplaced_events: 0,
            window: None,
        }
    }

    /// The router's SIP address.
    pub fn router(&self) -> SocketAddr {
        self.setup.router
    }

    fn invite_final(&mut self, us: u64) {
        let w = self.window.get_or_insert_with(|| {
            hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 2).expect("static bounds")
        });
        let _ = w.record(us.max(1));
    }

    /// Calls the scenario places.
    pub fn calls_planned(&self) -> u64 {
        self.arrivals_us.len() as u64
    }

    /// Calls placed so far.
    pub fn calls_placed(&self) -> u64 {
        self.callers.len() as u64
    }

    /// Calls that have ended.
    pub fn calls_ended(&self) -> u64 {
        self.ended
    }

    /// Callers in queue now.
    pub fn waiting(&self) -> u64 {
        self.waiting
    }

    /// Operators whose registration succeeded.
    pub fn registered(&self) -> usize {
        self.operators.iter().filter(|o| o.registered).count()
    }

    /// Operators.
    pub fn operator_count(&self) -> usize {
        self.operators.len()
    }

    /// Whether every call has ended.
    pub fn done(&self) -> bool {
        self.started_at.is_some()
            && self.ended >= self.arrivals_us.len() as u64
            && self.callbacks_pending == 0
    }

    /// Callbacks promised for today not yet answered by the caller's phone.
    pub fn callbacks_pending(&self) -> u64 {
        self.callbacks_pending
    }

    /// Whether the results-day policy is on (surge with `[tenant.surge.door]`).
    fn policy(&self) -> bool {
        self.scenario.surge && self.scenario.surge_policy.is_some()
    }

    /// Caller `n` now holds a channel in `phase` (or none).
    fn hold(&mut self, now: u64, n: u32, phase: Option<usize>) {
        let c = &mut self.callers[n as usize];
        if c.held == phase {
            return;
        }
        if let Some(p) = c.held {
            self.held[p] = self.held[p].saturating_sub(1);
        }
        if let Some(p) = phase {
            self.held[p] += 1;
        }
        c.held = phase;
        let sms = self.scenario_ms(now);
        self.recorder.channels(sms, &self.held);
    }

    /// A callback dial-out starts or ends holding a channel.
    fn hold_callback(&mut self, now: u64, up: bool) {
        if up {
            self.held[CALLBACK] += 1;
        } else {
            self.held[CALLBACK] = self.held[CALLBACK].saturating_sub(1);
        }
        let sms = self.scenario_ms(now);
        self.recorder.channels(sms, &self.held);
    }

    /// When caller `n` keys menu digit `k` (0: language, 1: topic). With the policy the
    /// IVR time counts from the greeting's start (it plays before the answer), as the
    /// simulator's `--surge-ivr-secs` does.
    fn digit_at(&self, now: u64, n: u32, k: u8) -> u64 {
        let policy_ivr = self
            .scenario
            .surge_policy
            .as_ref()
            .filter(|_| self.scenario.surge)
            .map(|p| p.ivr_secs);
        match (policy_ivr, self.callers[n as usize].first_response_at) {
            (Some(ivr), Some(start)) => {
                let at = start
                    + self
                        .compressed_us(ivr * f64::from(k + 1) / 2.0)
                        .unwrap_or(0);
                at.max(now)
            }
            _ => {
                now + self
                    .compressed_us(self.scenario.ivr_secs / 2.0)
                    .unwrap_or(0)
            }
        }
    }

    fn profile_end_ms(&self) -> u64 {
        (self.scenario.profile.duration_secs() * 1000.0) as u64
    }

    /// One of navbat's events (from its `/api/events` feed) that the callers act on:
    /// `call_arrived` ties the router's call reference to a caller, `door_offer` is the
    /// offer they hear (they hear no audio here, so the event stands in for the prompt).
    pub fn router_event(&mut self, now: u64, e: &serde_json::Value) {
        match e["kind"].as_str().unwrap_or("") {
            "call_arrived" => {
                let Some(call) = e["call"].as_str() else {
                    return;
                };
                let tail = e["caller"].as_str().unwrap_or("");
                let digits: Option<usize> = tail
                    .get(tail.len().saturating_sub(2)..)
                    .and_then(|d| d.parse().ok());
                let Some(d) = digits.filter(|d| *d < 100) else {
                    self.unplaced_events += 1;
                    return;
                };
                // The earliest caller placed with those last digits: the router numbers
                // calls in the order their INVITEs reach it.
                let Some(n) = self.unmatched[d].pop_first() else {
                    self.unplaced_events += 1;
                    return;
                };
                self.call_refs.insert(call.to_string(), n);
            }
            "door_offer" => {
                let Some(&n) = e["call"].as_str().and_then(|c| self.call_refs.get(c)) else {
                    self.unplaced_events += 1;
                    return;
                };
                let callback = e["callback"].as_str().unwrap_or("none");
                self.door_offer(
                    now,
                    n,
                    e["at_door"].as_bool() == Some(true),
                    callback,
                    e["sms"].as_bool() == Some(true),
                );
            }
            _ => {}
        }
    }

    /// The door offer reaches caller `n`: they decide as the simulator's callers do
    /// (a callback offered is taken with `--surge-callback-accept`, else the SMS with
    /// `--surge-sms-accept`) and key it when the simulator's offer time has passed.
    fn door_offer(&mut self, now: u64, n: u32, at_door: bool, callback: &str, sms: bool) {
        let Some(policy) = self.scenario.surge_policy.clone() else {
            return;
        };
        let c = &self.callers[n as usize];
        if c.state == CallerState::Ivr && c.digits_sent >= 2 && !c.offered {
            self.callers[n as usize].early_offer = Some((at_door, callback.to_string(), sms));
            return;
        }
        if c.state != CallerState::Queued || c.offered {
            return;
        }
        self.callers[n as usize].offered = true;
        let p = &mut self.recorder.policy;
        if at_door {
            p.offers_at_door += 1;
        } else {
            p.offers_in_queue += 1;
        }
        let when = match callback {
            "today" => Some(CallbackWhen::Today),
            "next_morning" => Some(CallbackWhen::NextMorning),
            _ => None,
        };
        p.count_offered(when);
        let offered_callback = when.map(|w| w == CallbackWhen::NextMorning);
        let takes_callback =
            offered_callback.is_some() && self.rng.unit() < self.scenario.surge_callback_accept;
        let takes_sms = !takes_callback && sms && self.rng.unit() < policy.sms_accept;
        let sms_t = self.scenario_ms(now);
        self.recorder
            .offer(sms_t, takes_callback || takes_sms, takes_callback, 0);
        let choice = if takes_callback {
            Some((CALLBACK_DIGIT, offered_callback == Some(true)))
        } else if takes_sms {
            Some((SMS_DIGIT, false))
        } else {
            None
        };
        if let Some(choice) = choice {
            self.callers[n as usize].choice = Some(choice);
            let delay = self.compressed_us(policy.offer_secs).unwrap_or(0);
            self.schedule(now + delay, Timer::DoorKey(n));
        }
    }

    /// Caller `n`'s last IVR key was answered: they wait in the queue (and take up a door
    /// offer that came first).
    fn join_queue(&mut self, now: u64, n: u32) {
        let c = &mut self.callers[n as usize];
        c.state = CallerState::Queued;
        c.enqueued_at = now;
        self.hold(now, n, Some(QUEUE));
        self.waiting += 1;
        let sms = self.scenario_ms(now);
        self.recorder.queue_length(sms, self.waiting);
        let p = self.scenario.patience.sample(&mut self.rng);
        if let Some(us) = self.compressed_us(p) {
            self.schedule(now + us, Timer::Patience(n));
        }
        if let Some((at_door, callback, sms)) = self.callers[n as usize].early_offer.take() {
            self.door_offer(now, n, at_door, &callback, sms);
        }
    }

    /// What each caller got, once the run is over (as the simulator computes it).
    pub fn close_policy(&mut self) {
        self.recorder
            .close_policy(self.requested_by_end, self.completed_by_end);
    }

    /// The next thing for the driver to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        let o = self.out.pop_front();
        if matches!(o, Some(Output::Send { .. })) {
            self.counters.sent += 1;
        }
        o
    }

    /// When [`Phones::timeout`] must be called next.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((t, _, _))| *t)
    }

    fn schedule(&mut self, at: u64, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at, self.timer_seq, timer)));
    }

    fn scenario_ms(&self, now: u64) -> u64 {
        let start = self.started_at.unwrap_or(0);
        (now.saturating_sub(start) as f64 * self.setup.compression / 1000.0) as u64
    }

    fn compressed_us(&self, scenario_secs: f64) -> Option<u64> {
        scenario_secs
            .is_finite()
            .then(|| (scenario_secs * 1e6 / self.setup.compression) as u64)
    }

    fn branch(&mut self) -> u64 {
        self.next_branch += 1;
        self.next_branch
    }

    fn via(&self, sock: Sock, branch: u64) -> String {
        let addr = match sock {
            Sock::Callers => self.setup.callers,
            Sock::Operators => self.setup.operators,
        };
        format!("Via: SIP/2.0/UDP {addr};branch=z9hG4bK{branch:x};rport\r\n")
    }

    fn send(&mut self, sock: Sock, bytes: Vec<u8>) {
        self.out.push_back(Output::Send { sock, bytes });
    }

    /// Sends a request as a client transaction, retransmitted until answered.
    fn send_request(
        &mut self,
        now: u64,
        sock: Sock,
        branch: u64,
        bytes: Vec<u8>,
        invite: bool,
        caller: Option<u32>,
    ) {
        self.txns.insert(
            branch,
            Txn {
                sock,
                bytes: bytes.clone(),
                interval_us: T1_US,
                started: now,
                invite,
                caller,
            },
        );
        self.schedule(now + T1_US, Timer::Retransmit(branch));
        self.send(sock, bytes);
    }

    // ---- registration ----------------------------------------------------------------

    /// Sends every operator's REGISTER (the 401 challenge is answered automatically).
    pub fn register_all(&mut self, now: u64) {
        for i in 0..self.operators.len() {
            self.register(now, i as u32, None);
        }
    }

    fn register(&mut self, now: u64, op: u32, challenge: Option<&str>) {
        let router = self.setup.router;
        let contact = self.setup.operators;
        let o = &mut self.operators[op as usize];
        o.reg_cseq += 1;
        let uri = format!("sip:{}", router);
        let auth = challenge
            .and_then(|c| {
                digest_authorization(
                    c,
                    &o.entry.ext,
                    &o.entry.password,
                    "REGISTER",
                    &uri,
                    &format!("{:08x}", op),
                )
            })
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let (ext, call_id, cseq) = (o.entry.ext.clone(), o.reg_call_id.clone(), o.reg_cseq);
        let branch = self.branch();
        let bytes = format!(
            "REGISTER {uri} SIP/2.0\r\n{}Max-Forwards: 70\r\nFrom: <sip:{ext}@{host}>;tag=r{op}\r\nTo: <sip:{ext}@{host}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{ext}@{contact}>\r\nExpires: 3600\r\n{auth}User-Agent: navbat-loadgen\r\nContent-Length: 0\r\n\r\n",
            self.via(Sock::Operators, branch),
            host = router.ip(),
        );
        self.send_request(
            now,
            Sock::Operators,
            branch,
            bytes.into_bytes(),
            false,
            None,
        );
    }

    // ---- calls -----------------------------------------------------------------------

    /// Starts the arrival clock: the first call goes out at `now` plus its arrival time.
    pub fn start_calls(&mut self, now: u64) {
        self.started_at = Some(now);
        if let Some(&first) = self.arrivals_us.first() {
            self.schedule(now + first, Timer::Arrival(0));
        }
    }

    fn place_call(&mut self, now: u64, n: u32) {
        if let Some(&next) = self.arrivals_us.get(n as usize + 1) {
            let start = self.started_at.unwrap_or(0);
            self.schedule(start + next, Timer::Arrival(n + 1));
        }
        let sms = self.scenario_ms(now);
        self.recorder.arrival(sms);
        let lang = self.rng.weighted(&self.scenario.language_weights);
        let topic = self.rng.weighted(&self.scenario.topic_weights);
        let call_id = format!("lg-{n}-{:x}", self.rng.next_u64() & 0xffff_ffff);
        let deflect = self.scenario.surge && self.rng.unit() < self.scenario.surge_deflect_share;
        self.unmatched[(n % 100) as usize].insert(n);
        let branch = self.branch();
        let caller = Caller {
            call_id: call_id.clone(),
            from_tag: format!("c{n}"),
            invite_branch: branch,
            cseq: 1,
            state: CallerState::Inviting,
            invite_at: now,
            got_response: false,
            to_header: None,
            remote_target: String::new(),
            language: self.setup.language_digits.get(lang).copied().unwrap_or('1'),
            topic: self.setup.topic_digits.get(topic).copied().unwrap_or('0'),
            digits_sent: 0,
            enqueued_at: 0,
            ended: false,
            first_response_at: None,
            held: None,
            deflect,
            offered: false,
            early_offer: None,
            choice: None,
            keyed: false,
            callback: CallbackState::None,
        };
        self.callers.push(caller);
        self.caller_by_call_id.insert(call_id.clone(), n);
        let bytes = self.invite_bytes(n, branch);
        self.send_request(now, Sock::Callers, branch, bytes, true, Some(n));
    }

    fn caller_number(n: u32) -> String {
        format!("998{n:09}")
    }

    fn invite_bytes(&self, n: u32, branch: u64) -> Vec<u8> {
        let c = &self.callers[n as usize];
        let router = self.setup.router;
        let me = self.setup.callers;
        let body = sdp(&me.ip().to_string(), 4000, n as u64);
        format!(
            "INVITE sip:{did}@{router} SIP/2.0\r\n{via}Max-Forwards: 70\r\nFrom: <sip:{num}@{ip}>;tag={tag}\r\nTo: <sip:{did}@{router}>\r\nCall-ID: {cid}\r\nCSeq: 1 INVITE\r\nContact: <sip:{num}@{me}>\r\nUser-Agent: navbat-loadgen\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{body}",
            did = self.setup.did,
            via = self.via(Sock::Callers, branch),
            num = Self::caller_number(n),
            ip = me.ip(),
            tag = c.from_tag,
            cid = c.call_id,
            len = body.len(),
        )
        .into_bytes()
    }

    /// An in-dialog request from caller `n`.
    fn caller_request(&mut self, now: u64, n: u32, method: &str, extra: &str, body: &str) {
        let branch = self.branch();
        let via = self.via(Sock::Callers, branch);
        let me = self.setup.callers;
        let c = &mut self.callers[n as usize];
        c.cseq += 1;
        let bytes = format!(
            "{method} {target} SIP/2.0\r\n{via}Max-Forwards: 70\r\nFrom: <sip:{num}@{ip}>;tag={tag}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{num}@{me}>\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
            target = c.remote_target,
            num = Self::caller_number(n),
            ip = me.ip(),
            tag = c.from_tag,
            to = c.to_header.as_deref().unwrap_or(""),
            cid = c.call_id,
            cseq = c.cseq,
            len = body.len(),
        );
        self.send_request(
            now,
            Sock::Callers,
            branch,
            bytes.into_bytes(),
            false,
            Some(n),
        );
    }

    fn ack_bytes(&self, n: u32, branch: u64, target: &str, to: &str) -> Vec<u8> {
        let c = &self.callers[n as usize];
        let me = self.setup.callers;
        format!(
            "ACK {target} SIP/2.0\r\n{via}Max-Forwards: 70\r\nFrom: <sip:{num}@{ip}>;tag={tag}\r\nTo: {to}\r\nCall-ID: {cid}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            via = self.via(Sock::Callers, branch),
            num = Self::caller_number(n),
            ip = me.ip(),
            tag = c.from_tag,
            cid = c.call_id,
        )
        .into_bytes()
    }

    /// Caller `n`'s call is over with `outcome`; `queued` when it was waiting in queue
    /// until now. Answered calls were recorded when the operator answered.
    fn finish_caller(&mut self, now: u64, n: u32, outcome: Outcome, queued: bool) {
        if self.callers[n as usize].ended {
            return;
        }
        self.hold(now, n, None);
        let c = &mut self.callers[n as usize];
        c.ended = true;
        self.ended += 1;
        if outcome == Outcome::Answered {
            return;
        }
        let enq = c.enqueued_at;
        let wait_ms = queued
            .then(|| (now.saturating_sub(enq) as f64 * self.setup.compression / 1000.0) as u64);
        let sms = self.scenario_ms(now);
        if queued {
            self.waiting = self.waiting.saturating_sub(1);
            self.recorder.queue_length(sms, self.waiting);
        }
        self.recorder.finished(sms, outcome, wait_ms);
    }

    // ---- inputs ----------------------------------------------------------------------

    /// A datagram arrived on `sock`.
    pub fn datagram(&mut self, now: u64, sock: Sock, bytes: &[u8]) {
        self.counters.received += 1;
        let Some(msg) = Message::parse(bytes) else {
            self.counters.ignored += 1;
            return;
        };
        match (sock, msg.status()) {
            (Sock::Callers, Some(_)) => self.caller_response(now, msg),
            (Sock::Callers, None) => self.caller_request_in(now, msg),
            (Sock::Operators, Some(_)) => self.operator_response(now, msg),
            (Sock::Operators, None) => self.operator_request_in(now, msg),
        }
    }

    fn end_txn(&mut self, msg: &Message, final_only: bool) -> Option<Txn> {
        let branch = msg.top_branch()?.strip_prefix("z9hG4bK")?;
        let key = u64::from_str_radix(branch, 16).ok()?;
        let status = msg.status().unwrap_or(0);
        if final_only && status < 200 {
            return None;
        }
        self.txns.remove(&key)
    }

    fn caller_response(&mut self, now: u64, msg: Message) {
        let Some(&n) = msg.call_id().and_then(|c| self.caller_by_call_id.get(c)) else {
            self.counters.ignored += 1;
            return;
        };
        let status = msg.status().unwrap_or(0);
        let Some((_, method)) = msg.cseq() else {
            return;
        };
        match method {
            "INVITE" => {
                let first = !self.callers[n as usize].got_response;
                if first {
                    self.callers[n as usize].got_response = true;
                    let at = self.callers[n as usize].invite_at;
                    self.recorder.latency("invite_to_first_response", now - at);
                }
                // Any response stops INVITE retransmission (Timer A).
                let branch = self.callers[n as usize].invite_branch;
                self.txns.remove(&branch);
                // Ringing or early media (the greeting) or the answer: a channel is held.
                if (180..300).contains(&status)
                    && self.callers[n as usize].state == CallerState::Inviting
                {
                    if self.callers[n as usize].first_response_at.is_none() {
                        self.callers[n as usize].first_response_at = Some(now);
                    }
                    self.hold(now, n, Some(IVR));
                }
                if status < 200 {
                    return;
                }
                let to = msg.header("to").unwrap_or("").to_string();
                if (200..300).contains(&status) {
                    let target = msg
                        .contact_uri()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("sip:{}", self.setup.router));
                    let c = &mut self.callers[n as usize];
                    let fresh = c.state == CallerState::Inviting;
                    c.to_header = Some(to.clone());
                    c.remote_target = target.clone();
                    let ack_branch = self.branch();
                    let ack = self.ack_bytes(n, ack_branch, &target, &to);
                    self.send(Sock::Callers, ack);
                    if fresh {
                        let at = self.callers[n as usize].invite_at;
                        self.recorder.latency("invite_to_200", now - at);
                        self.invite_final(now - at);
                        self.callers[n as usize].state = CallerState::Ivr;
                        let at = self.digit_at(now, n, 0);
                        self.schedule(at, Timer::Digit(n));
                    }
                } else {
                    let branch = self.callers[n as usize].invite_branch;
                    let uri = format!("sip:{}@{}", self.setup.did, self.setup.router);
                    let ack = self.ack_bytes(n, branch, &uri, &to);
                    self.send(Sock::Callers, ack);
                    if self.callers[n as usize].state == CallerState::Inviting {
                        let at = self.callers[n as usize].invite_at;
                        self.recorder.latency("invite_to_reject", now - at);
                        self.invite_final(now - at);
                        self.callers[n as usize].state = CallerState::Done;
                        let outcome = match status {
                            503 => Outcome::Blocked,
                            480 => Outcome::Closed,
                            _ => Outcome::Failed,
                        };
                        self.finish_caller(now, n, outcome, false);
                    }
                }
            }
            "INFO" => {
                let Some(txn) = self.end_txn(&msg, true) else {
                    return;
                };
                self.recorder.latency("info_to_200", now - txn.started);
                let c = &mut self.callers[n as usize];
                if c.state != CallerState::Ivr {
                    return;
                }
                if c.digits_sent == 1 {
                    let at = self.digit_at(now, n, 1);
                    self.schedule(at, Timer::Digit(n));
                } else if c.digits_sent >= 2 {
                    self.join_queue(now, n);
                }
            }
            "BYE" => {
                if let Some(txn) = self.end_txn(&msg, true) {
                    self.recorder.latency("bye_to_200", now - txn.started);
                }
                let c = &mut self.callers[n as usize];
                if c.state == CallerState::Leaving {
                    c.state = CallerState::Done;
                }
            }
            _ => {
                self.end_txn(&msg, true);
            }
        }
    }

    fn caller_request_in(&mut self, now: u64, msg: Message) {
        if let Some(cid) = msg.call_id().filter(|c| self.trunk_calls.contains_key(*c)) {
            return self.callback_request_in(now, cid.to_string(), msg);
        }
        if msg.method() == Some("INVITE") {
            return self.callback_invite(now, msg);
        }
        let Some(&n) = msg.call_id().and_then(|c| self.caller_by_call_id.get(c)) else {
            self.counters.ignored += 1;
            return;
        };
        match msg.method().unwrap_or("") {
            "BYE" => {
                let ok = response(&msg, 200, "OK", None, "", "");
                self.send(Sock::Callers, ok);
                let state = self.callers[n as usize].state;
                self.callers[n as usize].state = CallerState::Done;
                let c = &self.callers[n as usize];
                let keyed = c.keyed.then_some(c.choice).flatten();
                match state {
                    CallerState::Answered => {
                        self.hold(now, n, None);
                        self.finish_caller(now, n, Outcome::Answered, false)
                    }
                    CallerState::Queued => match keyed {
                        Some((CALLBACK_DIGIT, next_morning)) => {
                            if next_morning {
                                self.callers[n as usize].callback = CallbackState::NextMorning;
                                self.recorder.policy.got_callback_next_morning += 1;
                            } else {
                                self.callers[n as usize].callback = CallbackState::Pending;
                                self.callbacks_pending += 1;
                                self.recorder.callbacks.requested += 1;
                                if self.scenario_ms(now) <= self.profile_end_ms() {
                                    self.requested_by_end += 1;
                                }
                            }
                            self.finish_caller(now, n, Outcome::CallbackRequested, true)
                        }
                        Some(_) => {
                            self.recorder.policy.got_info_sms += 1;
                            self.finish_caller(now, n, Outcome::Deflected, true)
                        }
                        None => {
                            if self.policy() && !self.callers[n as usize].offered {
                                self.recorder.policy.let_go_unoffered += 1;
                            }
                            self.finish_caller(now, n, Outcome::TimedOut, true)
                        }
                    },
                    CallerState::Info => self.finish_caller(now, n, Outcome::Deflected, false),
                    CallerState::Ivr | CallerState::Inviting => {
                        self.finish_caller(now, n, Outcome::IvrHangup, false)
                    }
                    CallerState::Leaving | CallerState::Done => {}
                }
            }
            "ACK" => {}
            _ => {
                let ok = response(&msg, 200, "OK", None, "", "");
                self.send(Sock::Callers, ok);
            }
        }
    }

    /// The router dials a caller back (its trunk is our callers' socket): the phone whose
    /// callback is due answers at once, as the simulator assumes; any other call is busy.
    fn callback_invite(&mut self, now: u64, msg: Message) {
        let StartLine2 { user } = request_user(&msg);
        let n = user
            .strip_prefix("998")
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|n| (*n as usize) < self.callers.len());
        let due = n.filter(|n| {
            matches!(
                self.callers[*n as usize].callback,
                CallbackState::Pending | CallbackState::Dialling
            )
        });
        let Some(n) = due else {
            let busy = response(&msg, 486, "Busy Here", Some("busy"), "", "");
            self.send(Sock::Callers, busy);
            return;
        };
        let me = self.setup.callers;
        let body = sdp(&me.ip().to_string(), 4000, u64::from(n) + 1_000_000);
        let ok = response(
            &msg,
            200,
            "OK",
            Some(&format!("cb{n}")),
            &format!(
                "Contact: <sip:{}@{me}>\r\nContent-Type: application/sdp\r\n",
                Self::caller_number(n)
            ),
            &body,
        );
        self.send(Sock::Callers, ok.clone());
        let cid = msg.call_id().unwrap_or("").to_string();
        self.trunk_calls.insert(cid, (n, ok));
        self.callers[n as usize].callback = CallbackState::Talking;
        self.callbacks_pending = self.callbacks_pending.saturating_sub(1);
        let t = self.scenario_ms(now);
        let enq_ms = self.scenario_ms(self.callers[n as usize].enqueued_at);
        let cb = &mut self.recorder.callbacks;
        cb.completed += 1;
        let _ = cb.wait_ms.record(t.saturating_sub(enq_ms).max(1));
        cb.last_answered_ms = Some(t);
        if t <= self.profile_end_ms() {
            self.completed_by_end += 1;
        }
    }

    /// A request in a callback's dialog with the caller's phone.
    fn callback_request_in(&mut self, _now: u64, cid: String, msg: Message) {
        match msg.method().unwrap_or("") {
            "INVITE" => {
                // A retransmission: the same answer.
                if let Some((_, ok)) = self.trunk_calls.get(&cid) {
                    let ok = ok.clone();
                    self.send(Sock::Callers, ok);
                }
            }
            "ACK" => {}
            "BYE" | "CANCEL" => {
                let ok = response(&msg, 200, "OK", None, "", "");
                self.send(Sock::Callers, ok);
                if let Some((n, _)) = self.trunk_calls.remove(&cid) {
                    self.callers[n as usize].callback = CallbackState::None;
                }
            }
            _ => {
                let ok = response(&msg, 200, "OK", None, "", "");
                self.send(Sock::Callers, ok);
            }
        }
    }

    fn operator_response(&mut self, now: u64, msg: Message) {
        let Some((_, method)) = msg.cseq() else {
            return;
        };
        let status = msg.status().unwrap_or(0);
        match method {
            "REGISTER" => {
                let Some(txn) = self.end_txn(&msg, true) else {
                    return;
                };
                let Some(&op) = msg.sender_user().and_then(|u| self.operator_by_ext.get(u)) else {
                    return;
                };
                match status {
                    200..=299 => {
                        self.recorder.latency("register_to_200", now - txn.started);
                        self.operators[op as usize].registered = true;
                    }
                    401 | 407 => {
                        let name = if status == 401 {
                            "www-authenticate"
                        } else {
                            "proxy-authenticate"
                        };
                        if let Some(ch) = msg.header(name).map(str::to_string) {
                            if self.operators[op as usize].reg_cseq < 4 {
                                self.register(now, op, Some(&ch));
                            }
                        }
                    }
                    _ => {}
                }
            }
            "BYE" => {
                if let Some(txn) = self.end_txn(&msg, true) {
                    self.recorder
                        .latency("operator_bye_to_200", now - txn.started);
                }
                if let Some(leg) = msg.call_id().and_then(|c| self.legs.get(c)) {
                    let op = leg.operator;
                    self.operator_call_over(now, op, msg.call_id().unwrap_or(""));
                }
            }
            _ => {
                self.end_txn(&msg, true);
            }
        }
    }

    /// The operator's call is over: after-call work, then the API when it is shorter than
    /// the queue's wrap-up.
    fn operator_call_over(&mut self, now: u64, op: u32, call_id: &str) {
        if let Some(leg) = self.legs.get_mut(call_id) {
            let answered = matches!(
                leg.state,
                LegState::Confirmed | LegState::Ending | LegState::Answered
            );
            leg.state = LegState::Gone;
            let callback = leg.callback;
            self.legs.remove(call_id);
            if callback {
                self.hold_callback(now, false);
            }
            if self.operators[op as usize].leg.as_deref() == Some(call_id) {
                self.operators[op as usize].leg = None;
            }
            if answered {
                let w = self.scenario.operator_wrap_up.sample(&mut self.rng);
                if w < self.setup.queue_wrap_up_secs {
                    if let Some(us) = self.compressed_us(w) {
                        self.schedule(now + us, Timer::WrapUpDone(op));
                    }
                }
            }
        }
    }

    fn operator_request_in(&mut self, now: u64, msg: Message) {
        let Some(call_id) = msg.call_id().map(str::to_string) else {
            self.counters.ignored += 1;
            return;
        };
        match msg.method().unwrap_or("") {
            "INVITE" => {
                if let Some(leg) = self.legs.get(&call_id) {
                    // A retransmission: repeat our last response.
                    let bytes = if leg.state == LegState::Ringing {
                        response(&leg.invite, 180, "Ringing", Some(&leg.to_tag), "", "")
                    } else {
                        leg.ok_bytes.clone()
                    };
                    self.send(Sock::Operators, bytes);
                    return;
                }
                let StartLine2 { user } = request_user(&msg);
                let Some(&op) = self.operator_by_ext.get(&user) else {
                    let r = response(&msg, 404, "Not Found", Some("x"), "", "");
                    self.send(Sock::Operators, r);
                    return;
                };
                self.counters.offers += 1;
                let caller = msg
                    .sender_user()
                    .and_then(|u| u.strip_prefix("998"))
                    .and_then(|d| d.parse::<u32>().ok())
                    .filter(|n| (*n as usize) < self.callers.len());
                if let Some(n) = caller {
                    let enq = self.callers[n as usize].enqueued_at;
                    if self.callers[n as usize].state == CallerState::Queued {
                        self.recorder
                            .latency("queue_join_to_offer", now.saturating_sub(enq));
                    }
                }
                // A callback: the router rings the operator first, holding a channel.
                let callback = caller
                    .is_some_and(|n| self.callers[n as usize].callback == CallbackState::Pending);
                if let (true, Some(n)) = (callback, caller) {
                    self.callers[n as usize].callback = CallbackState::Dialling;
                    self.hold_callback(now, true);
                }
                let to_tag = format!("o{}", self.branch());
                let ringing = response(&msg, 180, "Ringing", Some(&to_tag), "", "");
                self.send(Sock::Operators, ringing);
                let idx = self.leg_keys.len() as u32;
                self.leg_keys.push(call_id.clone());
                self.legs.insert(
                    call_id.clone(),
                    Leg {
                        operator: op,
                        remote_target: msg
                            .contact_uri()
                            .map(str::to_string)
                            .unwrap_or_else(|| format!("sip:{}", self.setup.router)),
                        invite: msg,
                        to_tag,
                        caller,
                        state: LegState::Ringing,
                        resend: 0,
                        answered_at: 0,
                        ok_bytes: Vec::new(),
                        local_cseq: 0,
                        callback,
                    },
                );
                self.operators[op as usize].leg = Some(call_id);
                let delay = self.scenario.ring_delay.sample(&mut self.rng);
                let us = self.compressed_us(delay).unwrap_or(u64::MAX / 4);
                self.schedule(now + us, Timer::OperatorAnswer(idx));
            }
            "ACK" => {
                if let Some(leg) = self.legs.get_mut(&call_id) {
                    if leg.state == LegState::Answered {
                        leg.state = LegState::Confirmed;
                        let at = leg.answered_at;
                        self.recorder.latency("operator_200_to_ack", now - at);
                    }
                }
            }
            "CANCEL" => {
                let ok = response(&msg, 200, "OK", None, "", "");
                self.send(Sock::Operators, ok);
                if let Some(leg) = self.legs.get(&call_id) {
                    if leg.state == LegState::Ringing {
                        self.counters.cancels += 1;
                        let r = response(
                            &leg.invite,
                            487,
                            "Request Terminated",
                            Some(&leg.to_tag),
                            "",
                            "",
                        );
                        let (op, callback, caller) = (leg.operator, leg.callback, leg.caller);
                        self.send(Sock::Operators, r);
                        self.legs.remove(&call_id);
                        if callback {
                            // Not answered in time: the callback keeps its place.
                            self.hold_callback(now, false);
                            if let Some(n) = caller {
                                if self.callers[n as usize].callback == CallbackState::Dialling {
                                    self.callers[n as usize].callback = CallbackState::Pending;
                                }
                            }
                        }
                        if self.operators[op as usize].leg.as_deref() == Some(call_id.as_str()) {
                            self.operators[op as usize].leg = None;
                        }
                    }
                }
            }
            "BYE" => {
                let ok = response(&msg, 200, "OK", None, "", "");
                self.send(Sock::Operators, ok);
                if let Some(op) = self.legs.get(&call_id).map(|l| l.operator) {
                    self.operator_call_over(now, op, &call_id);
                }
            }
            _ => {
                let ok = response(&msg, 200, "OK", None, "", "");
                self.send(Sock::Operators, ok);
            }
        }
    }

    /// Timers due at or before `now`.
    pub fn timeout(&mut self, now: u64) {
        while let Some(Reverse((at, _, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            self.fire(now, timer);
        }
    }

    fn fire(&mut self, now: u64, timer: Timer) {
        match timer {
            Timer::Arrival(n) => self.place_call(now, n),
            Timer::Retransmit(branch) => {
                let Some(txn) = self.txns.get_mut(&branch) else {
                    return;
                };
                if now.saturating_sub(txn.started) >= TXN_TIMEOUT_US {
                    let txn = self.txns.remove(&branch).expect("present");
                    self.counters.transaction_timeouts += 1;
                    if let (true, Some(n)) = (txn.invite, txn.caller) {
                        if self.callers[n as usize].state == CallerState::Inviting {
                            self.callers[n as usize].state = CallerState::Done;
                            self.finish_caller(now, n, Outcome::Failed, false);
                        }
                    }
                    return;
                }
                let next = if txn.invite {
                    txn.interval_us * 2
                } else {
                    (txn.interval_us * 2).min(T2_US)
                };
                txn.interval_us = next;
                let (sock, bytes) = (txn.sock, txn.bytes.clone());
                self.counters.retransmissions += 1;
                self.send(sock, bytes);
                self.schedule(now + next, Timer::Retransmit(branch));
            }
            Timer::Digit(n) => {
                let c = &mut self.callers[n as usize];
                if c.state != CallerState::Ivr {
                    return;
                }
                let digit = if c.digits_sent == 0 {
                    c.language
                } else if c.deflect {
                    // Self-service: the information plays, then the router hangs up.
                    c.state = CallerState::Info;
                    SELF_SERVICE_DIGIT
                } else {
                    c.topic
                };
                c.digits_sent += 1;
                if digit == SELF_SERVICE_DIGIT && c.state == CallerState::Info {
                    self.hold(now, n, Some(INFO));
                }
                let body = format!("Signal={digit}\r\nDuration=160\r\n");
                self.caller_request(
                    now,
                    n,
                    "INFO",
                    "Content-Type: application/dtmf-relay\r\n",
                    &body,
                );
            }
            Timer::Patience(n) => {
                // A caller who keyed the offer waits for the router to end the call.
                let c = &self.callers[n as usize];
                if c.state != CallerState::Queued || c.keyed {
                    return;
                }
                // Decided here, once: an operator who has not sent 200 yet lost the race.
                self.callers[n as usize].state = CallerState::Leaving;
                self.finish_caller(now, n, Outcome::Abandoned, true);
                self.caller_request(now, n, "BYE", "", "");
            }
            Timer::OperatorAnswer(idx) => {
                let Some(key) = self.leg_keys.get(idx as usize).cloned() else {
                    return;
                };
                let Some(leg) = self.legs.get(&key) else {
                    return;
                };
                if leg.state != LegState::Ringing {
                    return;
                }
                let in_profile = self.scenario_ms(now) <= self.profile_end_ms();
                let (leg_callback, leg_caller) = (leg.callback, leg.caller);
                if leg_callback {
                    if in_profile && self.waiting > 0 {
                        self.recorder.policy.conversations_callback += 1;
                    }
                } else if let Some(n) = leg_caller {
                    if self.callers[n as usize].state != CallerState::Queued {
                        // The caller already hung up; the router will CANCEL this ring.
                        return;
                    }
                    self.callers[n as usize].state = CallerState::Answered;
                    let enq = self.callers[n as usize].enqueued_at;
                    let wait_ms =
                        (now.saturating_sub(enq) as f64 * self.setup.compression / 1000.0) as u64;
                    self.waiting = self.waiting.saturating_sub(1);
                    if in_profile && self.waiting > 0 {
                        self.recorder.policy.conversations_live += 1;
                    }
                    self.hold(now, n, Some(TALK));
                    let sms = self.scenario_ms(now);
                    self.recorder.queue_length(sms, self.waiting);
                    self.recorder
                        .finished(sms, Outcome::Answered, Some(wait_ms));
                }
                let Some(leg) = self.legs.get(&key) else {
                    return;
                };
                let me = self.setup.operators;
                let op = leg.operator;
                let ext = self.operators[op as usize].entry.ext.clone();
                let body = sdp(&me.ip().to_string(), 5000, idx as u64);
                let ok = response(
                    &leg.invite,
                    200,
                    "OK",
                    Some(&leg.to_tag),
                    &format!("Contact: <sip:{ext}@{me}>\r\nContent-Type: application/sdp\r\n"),
                    &body,
                );
                let leg = self.legs.get_mut(&key).expect("present");
                leg.state = LegState::Answered;
                leg.answered_at = now;
                leg.ok_bytes = ok.clone();
                self.send(Sock::Operators, ok);
                self.schedule(now + T1_US, Timer::Resend200(idx));
                let talk = self.scenario.handle.sample(&mut self.rng);
                let us = self.compressed_us(talk).unwrap_or(0);
                self.schedule(now + us, Timer::OperatorHangUp(idx));
            }
            Timer::Resend200(idx) => {
                let Some(key) = self.leg_keys.get(idx as usize) else {
                    return;
                };
                let Some(leg) = self.legs.get_mut(key) else {
                    return;
                };
                if leg.state != LegState::Answered || leg.resend >= 6 {
                    return;
                }
                leg.resend += 1;
                let wait = T1_US << leg.resend.min(3);
                let bytes = leg.ok_bytes.clone();
                self.counters.retransmissions += 1;
                self.send(Sock::Operators, bytes);
                self.schedule(now + wait, Timer::Resend200(idx));
            }
            Timer::OperatorHangUp(idx) => {
                let Some(key) = self.leg_keys.get(idx as usize).cloned() else {
                    return;
                };
                let Some(leg) = self.legs.get_mut(&key) else {
                    return;
                };
                if !matches!(leg.state, LegState::Answered | LegState::Confirmed) {
                    return;
                }
                leg.state = LegState::Ending;
                leg.local_cseq += 1;
                let branch = {
                    self.next_branch += 1;
                    self.next_branch
                };
                let leg = self.legs.get(&key).expect("present");
                let me = self.setup.operators;
                let ext = self.operators[leg.operator as usize].entry.ext.clone();
                let bytes = format!(
                    "BYE {target} SIP/2.0\r\n{via}Max-Forwards: 70\r\nFrom: {to};tag={tag}\r\nTo: {from}\r\nCall-ID: {key}\r\nCSeq: {cseq} BYE\r\nContact: <sip:{ext}@{me}>\r\nContent-Length: 0\r\n\r\n",
                    target = leg.remote_target,
                    via = self.via(Sock::Operators, branch),
                    to = leg.invite.header("to").unwrap_or(""),
                    tag = leg.to_tag,
                    from = leg.invite.header("from").unwrap_or(""),
                    cseq = leg.local_cseq + 1000,
                );
                self.send_request(
                    now,
                    Sock::Operators,
                    branch,
                    bytes.into_bytes(),
                    false,
                    None,
                );
            }
            Timer::DoorKey(n) => {
                let c = &mut self.callers[n as usize];
                let Some((digit, next_morning)) = c.choice else {
                    return;
                };
                if c.state != CallerState::Queued || c.keyed {
                    return;
                }
                c.keyed = true;
                let p = &mut self.recorder.policy;
                match (digit, next_morning) {
                    (CALLBACK_DIGIT, true) => p.took_callback_next_morning += 1,
                    (CALLBACK_DIGIT, false) => p.took_callback_today += 1,
                    _ => p.took_sms += 1,
                }
                let body = format!("Signal={digit}\r\nDuration=160\r\n");
                self.caller_request(
                    now,
                    n,
                    "INFO",
                    "Content-Type: application/dtmf-relay\r\n",
                    &body,
                );
            }
            Timer::WrapUpDone(op) => {
                if self.operators[op as usize].leg.is_none() {
                    self.counters.early_wrap_ups += 1;
                    let ext = self.operators[op as usize].entry.ext.clone();
                    self.out.push_back(Output::SetAvailable(ext));
                }
            }
        }
    }
}

struct StartLine2 {
    user: String,
}

/// The user part of a request's Request-URI.
fn request_user(msg: &Message) -> StartLine2 {
    let user = match &msg.start {
        crate::sipmsg::StartLine::Request(_, uri) => uri
            .strip_prefix("sip:")
            .and_then(|r| r.split('@').next())
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    StartLine2 { user }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::SurgePolicy;

    /// Phones for one call under the surge policy, its caller waiting in the queue, with
    /// these acceptance shares.
    fn queued(callback_accept: f64, sms_accept: f64) -> Phones {
        let mut sc = crate::scenario::tests::scenario();
        sc.surge = true;
        sc.surge_deflect_share = 0.0;
        sc.surge_callback_accept = callback_accept;
        sc.surge_policy = Some(SurgePolicy {
            sms_accept,
            ..SurgePolicy::default()
        });
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let setup = Setup {
            router: addr(5060),
            callers: addr(5070),
            operators: addr(5080),
            compression: 1.0,
            did: "712351914".into(),
            language_digits: vec!['1', '2'],
            topic_digits: vec!['1', '2', '3', '0'],
            queue_wrap_up_secs: 15.0,
        };
        let mut p = Phones::new(setup, sc, vec![0], Vec::new(), 1.0);
        p.start_calls(0);
        p.timeout(0);
        assert_eq!(p.calls_placed(), 1);
        while p.poll_output().is_some() {}
        let c = &mut p.callers[0];
        c.state = CallerState::Queued;
        c.remote_target = "sip:712351914@127.0.0.1:5060".into();
        c.to_header = Some("<sip:712351914@127.0.0.1:5060>;tag=r1".into());
        p
    }

    /// The router's events for caller 0 (number ...000): arrived as `c5`, then the offer.
    fn offer(p: &mut Phones, now: u64, callback: &str) {
        let arrived =
            serde_json::json!({"kind": "call_arrived", "call": "c5", "caller": "+9980*******00"});
        p.router_event(now, &arrived);
        let offer = serde_json::json!({"kind": "door_offer", "call": "c5", "at_door": true, "callback": callback, "sms": true});
        p.router_event(now, &offer);
    }

    /// INFO bodies the phones send.
    fn keys(p: &mut Phones) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(o) = p.poll_output() {
            if let Output::Send { bytes, .. } = o {
                let text = String::from_utf8_lossy(&bytes).to_string();
                if text.starts_with("INFO ") {
                    let signal = text.split("Signal=").nth(1).unwrap_or("");
                    out.push(signal.chars().take(1).collect());
                }
            }
        }
        out
    }

    #[test]
    fn a_caller_keys_the_callback_when_the_offer_time_has_passed() {
        let mut p = queued(1.0, 0.0);
        offer(&mut p, 1_000_000, "today");
        assert!(
            keys(&mut p).is_empty(),
            "not before the offer has been heard"
        );
        p.timeout(1_000_000 + 8_000_000);
        assert_eq!(keys(&mut p), ["1"]);
        assert_eq!(p.recorder.policy.offers_at_door, 1);
        assert_eq!(p.recorder.policy.offered_callback_today, 1);
        assert_eq!(p.recorder.policy.took_callback_today, 1);
    }

    #[test]
    fn without_a_callback_a_caller_takes_the_sms_or_declines() {
        let mut p = queued(1.0, 1.0);
        offer(&mut p, 0, "none");
        p.timeout(8_000_000);
        assert_eq!(keys(&mut p), ["2"]);
        assert_eq!(p.recorder.policy.took_sms, 1);
        let mut p = queued(0.0, 0.0);
        offer(&mut p, 0, "next_morning");
        p.timeout(60_000_000);
        assert!(keys(&mut p).is_empty());
        assert_eq!(p.recorder.policy.offered_callback_next_morning, 1);
    }

    #[test]
    fn an_offer_that_overtakes_the_last_key_s_answer_is_taken_up_in_the_queue() {
        let mut p = queued(1.0, 0.0);
        let c = &mut p.callers[0];
        c.state = CallerState::Ivr;
        c.digits_sent = 2;
        offer(&mut p, 1_000_000, "today");
        assert_eq!(p.recorder.policy.offers_at_door, 0, "not queued yet");
        p.join_queue(1_200_000, 0);
        assert_eq!(p.recorder.policy.offers_at_door, 1);
        p.timeout(1_200_000 + 8_000_000);
        assert_eq!(keys(&mut p), ["1"]);
        assert_eq!(p.recorder.policy.took_callback_today, 1);
    }

    #[test]
    fn an_offer_for_a_call_the_phones_cannot_place_is_counted_not_keyed() {
        let mut p = queued(1.0, 1.0);
        let offer = serde_json::json!({"kind": "door_offer", "call": "c9", "at_door": true, "callback": "today", "sms": true});
        p.router_event(0, &offer);
        p.timeout(60_000_000);
        assert!(keys(&mut p).is_empty());
        assert_eq!(p.unplaced_events, 1);
    }
}
