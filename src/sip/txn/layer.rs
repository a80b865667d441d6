//! The transaction state machines: [`TransactionLayer`].
//!
//! # Data layout (why it is small)
//! * A transaction is one fixed-size [`Txn`] record: its matching hash, its branch, the peer,
//!   the one outgoing message it may have to send again (the request while it is being
//!   retransmitted, the last response of a server transaction, the ACK of a client INVITE
//!   that got a 300-699), two deadlines and a few flags. The incoming request is never
//!   kept; a finished transaction holds at most one message.
//! * Matching is one `HashMap<u64, TxnId>` lookup on a keyed 64-bit hash of the §17 key
//!   (side, branch, sent-by, method); a hit is confirmed against the stored branch and method.
//! * All deadlines of all transactions are one `BTreeSet<(Millis, TxnId, Slot)>` with eager
//!   removal (each transaction has at most a retransmit and an end deadline), so
//!   [`TransactionLayer::poll_timeout`] is exact and O(log n).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::mem::size_of;
use std::net::SocketAddr;

use super::types::{
    Action, Config, Kind, Method, Millis, OutgoingRequest, Refused, RequestMeta, ResponseMeta,
    ResponseVerdict, State, Timers, TxnError, TxnId, Verdict, Wire, MAGIC_COOKIE,
};

/// RFC 3261 §17 transactions with RFC 6026's corrections, for any number of peers. Pure: no
/// clock, no I/O, no parser; feed it inputs and timeouts, drain actions.
///
/// Driving it (the str0m/quinn run loop):
/// 1. [`on_request`](Self::on_request) / [`on_response`](Self::on_response) for each
///    message the reader parsed, the TU's [`respond`](Self::respond),
///    [`send_request`](Self::send_request), [`send_ack`](Self::send_ack) and friends, or
///    [`handle_timeout`](Self::handle_timeout) when the deadline from
///    [`poll_timeout`](Self::poll_timeout) has come;
/// 2. then [`poll_action`](Self::poll_action) until it returns `None`.
///
/// Every call that takes `now` first fires the timers due by then, so after any call
/// [`poll_timeout`](Self::poll_timeout) is later than the latest `now` seen. A `now` earlier
/// than one already seen is taken as that one.
///
/// # Documented choices
/// * Server transactions in Trying/Proceeding have no timer (as in the RFC): the TU must
///   answer every [`Verdict::New`]. A client INVITE in Proceeding waits for its final
///   response; after sending a CANCEL the TU calls [`cancelling`](Self::cancelling) so it
///   ends after 64*T1 at the latest (§9.1).
/// * The 2xx to an INVITE is the TU's to retransmit (RFC 6026); it may hand that to the
///   layer with [`respond_2xx_retransmitting`](Self::respond_2xx_retransmitting) and
///   report the ACK (which has its own branch) with [`ack_received`](Self::ack_received).
/// * A client INVITE that got a 300-699 over a reliable transport ends as soon as its ACK is
///   supplied (timer D is zero), or after 64*T1 if the TU never supplies it.
/// * The sent-by is part of the hash only; a hit is confirmed by branch and method. Two live
///   transactions with the same hash are refused ([`Refused::HashCollision`]).
/// * Timers due at the same millisecond fire in transaction order, an end before a
///   retransmission.
#[derive(Debug)]
pub struct TransactionLayer {
    timers_cfg: Timers,
    max_live: usize,
    /// Keys the matching hash with per-process random keys (SipHash), so a peer cannot
    /// forge colliding branches.
    hasher: RandomState,
    /// Boxed: a table keeps spare slots (up to twice the live count after it grows), and a
    /// spare slot then costs 17 bytes, not the whole record.
    txns: HashMap<TxnId, Box<Txn>>,
    index: HashMap<u64, TxnId>,
    timers: BTreeSet<TimerEntry>,
    actions: VecDeque<Action>,
    next_id: u64,
    now: Millis,
    counters: Counters,
}

/// Counts of what the layer refused or could not place, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// New transactions refused because [`Config::max_live`] were alive.
    pub refused_full: u64,
    /// Requests without the magic cookie ([`Verdict::Unmatchable`]).
    pub unmatchable: u64,
    /// Responses that matched no client transaction ([`ResponseVerdict::Unmatched`]).
    pub unmatched_responses: u64,
}

/// A deadline: when, whose, which of its two.
type TimerEntry = (Millis, TxnId, Slot);

/// The two deadlines a transaction can have. `End` sorts first: at a tie the transaction
/// ends rather than retransmit once more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    /// B, F, H, J, K, D, I, L, M, or the §9.1 wait after CANCEL.
    End,
    /// A, E, G, or the 2xx retransmission service.
    Retransmit,
}

#[derive(Debug)]
struct Txn {
    /// The matching hash (its key in `index`).
    hash: u64,
    /// The top Via branch, to confirm a hash hit.
    branch: Box<str>,
    /// Where its messages go.
    peer: SocketAddr,
    /// The one message it may have to send again.
    out: Option<Wire>,
    retransmit_at: Option<Millis>,
    end_at: Option<Millis>,
    /// The next retransmission interval.
    interval_ms: u64,
    kind: Kind,
    state: State,
    /// The request method (INVITE for both INVITE kinds).
    method: Method,
    reliable: bool,
    /// Server INVITE, Accepted: the 2xx service runs and the ACK has not come.
    awaiting_ack: bool,
    /// Client INVITE: the TU sent a CANCEL.
    cancelling: bool,
    /// Server non-INVITE, Completed: the final response's status, kept instead of its bytes
    /// because the TU builds that response again from a retransmitted request
    /// ([`TransactionLayer::respond_rebuildable`]).
    rebuild: Option<u16>,
}

impl Txn {
    fn wrong_state(&self, txn: TxnId, what: &'static str) -> TxnError {
        TxnError::WrongState {
            txn,
            kind: self.kind,
            state: self.state,
            what,
        }
    }

    /// Bytes this transaction costs: its record and its entries in the layer's tables, and
    /// what it holds on the heap (allocator rounding and the tables' spare capacity aside).
    fn footprint(&self) -> usize {
        let timers = usize::from(self.retransmit_at.is_some()) + usize::from(self.end_at.is_some());
        // One control byte per hash-table slot.
        size_of::<(TxnId, Box<Txn>)>()
            + 1
            + size_of::<Txn>()
            + size_of::<(u64, TxnId)>()
            + 1
            + timers * size_of::<TimerEntry>()
            + self.branch.len()
            + self.out.as_ref().map_or(0, Wire::heap_bytes)
    }
}

/// Which side a matching key belongs to (hashed in, so a client and a server transaction
/// with the same branch never meet).
#[derive(Clone, Copy)]
enum Side {
    Client = 1,
    Server = 2,
}

impl TransactionLayer {
    /// An empty layer.
    pub fn new(config: Config) -> TransactionLayer {
        TransactionLayer {
            timers_cfg: config.timers.sane(),
            max_live: config.max_live,
            hasher: RandomState::new(),
            txns: HashMap::new(),
            index: HashMap::new(),
            timers: BTreeSet::new(),
            actions: VecDeque::new(),
            next_id: 0,
            now: Millis::ZERO,
            counters: Counters::default(),
        }
    }

    // ---- inputs from the network ----

    /// A request came in (§17.2.3 matching). Creates a server transaction for a new request
    /// (never for an ACK), absorbs or answers a retransmission, and sorts ACKs.
    pub fn on_request(&mut self, now: Millis, req: &RequestMeta<'_>) -> Result<Verdict, Refused> {
        let now = self.advance(now);
        if req.cseq_method != req.method {
            return Err(Refused::CseqMethodMismatch);
        }
        if !req.branch.starts_with(MAGIC_COOKIE) {
            self.counters.unmatchable += 1;
            return Ok(Verdict::Unmatchable);
        }
        // An ACK matches the INVITE transaction it acknowledges.
        let key_method = if req.method == Method::Ack {
            Method::Invite
        } else {
            req.method
        };
        let hash = self.hash(Side::Server, req.branch, req.sent_by, key_method);
        match self.find(hash, req.branch, key_method, true)? {
            Some(id) if req.method == Method::Ack => Ok(self.server_ack(now, id)),
            Some(id) => Ok(self.server_retransmission(id)),
            None if req.method == Method::Ack => Ok(Verdict::AckFor2xx { txn: None }),
            None => {
                self.admit()?;
                let (kind, state) = if req.method == Method::Invite {
                    (Kind::ServerInvite, State::Proceeding)
                } else {
                    (Kind::ServerNonInvite, State::Trying)
                };
                let cancels = if req.method == Method::Cancel {
                    let invite = self.hash(Side::Server, req.branch, req.sent_by, Method::Invite);
                    self.find(invite, req.branch, Method::Invite, true)
                        .ok()
                        .flatten()
                } else {
                    None
                };
                let txn = self.insert(Txn {
                    hash,
                    branch: req.branch.into(),
                    peer: req.peer,
                    out: None,
                    retransmit_at: None,
                    end_at: None,
                    interval_ms: 0,
                    kind,
                    state,
                    method: key_method,
                    reliable: req.reliable,
                    awaiting_ack: false,
                    cancelling: false,
                    rebuild: None,
                });
                Ok(Verdict::New {
                    txn,
                    send_trying: kind == Kind::ServerInvite,
                    cancels,
                })
            }
        }
    }

    /// A response came in (§17.1.3 matching by branch and CSeq method).
    pub fn on_response(
        &mut self,
        now: Millis,
        resp: &ResponseMeta<'_>,
    ) -> Result<ResponseVerdict, TxnError> {
        let now = self.advance(now);
        let status = resp.status;
        if !(100..=699).contains(&status) {
            return Err(TxnError::InvalidStatus(status));
        }
        let hash = self.hash(Side::Client, resp.branch, "", resp.cseq_method);
        let Some(id) = self
            .find(hash, resp.branch, resp.cseq_method, false)
            .ok()
            .flatten()
        else {
            self.counters.unmatched_responses += 1;
            return Ok(ResponseVerdict::Unmatched);
        };
        let t = &self.timers_cfg;
        let (m, t4, d) = (t.sixty_four_t1(), t.t4_ms, t.d_ms);
        let Some(txn) = self.txns.get(&id) else {
            return Ok(ResponseVerdict::Unmatched);
        };
        let (kind, state, reliable) = (txn.kind, txn.state, txn.reliable);
        let absorbed = ResponseVerdict::Absorbed {
            txn: id,
            ack_resent: false,
        };
        let verdict = match (kind, state) {
            (Kind::ClientInvite, State::Calling | State::Proceeding) => match status {
                100..=199 => {
                    if state == State::Calling {
                        // §17.1.1.2: a provisional stops A and B; the request is not sent again.
                        self.clear_timers(id);
                        let cancelling = self.with(id, |x| {
                            x.state = State::Proceeding;
                            x.out = None;
                            x.cancelling
                        });
                        if cancelling == Some(true) {
                            self.set_end(now, id, m);
                        }
                    }
                    ResponseVerdict::Deliver { txn: id }
                }
                200..=299 => {
                    // RFC 6026 §7.2: Accepted, timer M absorbs nothing but keeps matching.
                    self.clear_timers(id);
                    self.with(id, |x| {
                        x.state = State::Accepted;
                        x.out = None;
                    });
                    self.set_end(now, id, m);
                    ResponseVerdict::Deliver { txn: id }
                }
                _ => {
                    self.clear_timers(id);
                    self.with(id, |x| {
                        x.state = State::Completed;
                        x.out = None;
                    });
                    // Unreliable: timer D. Reliable: D is zero, but the ACK's bytes are still
                    // to come from the TU; wait 64*T1 for them at most.
                    self.set_end(now, id, if reliable { m } else { d });
                    ResponseVerdict::AckNeeded { txn: id }
                }
            },
            (Kind::ClientInvite, State::Accepted) if (200..=299).contains(&status) => {
                ResponseVerdict::Deliver { txn: id }
            }
            (Kind::ClientInvite, State::Completed) if status >= 300 => {
                let ack_resent = self.resend(id);
                ResponseVerdict::Absorbed {
                    txn: id,
                    ack_resent,
                }
            }
            (Kind::ClientNonInvite, State::Trying | State::Proceeding) => {
                if status < 200 {
                    // §17.1.2.2: timer E goes on (at T2 once it next fires).
                    self.with(id, |x| x.state = State::Proceeding);
                } else {
                    self.clear_timers(id);
                    self.with(id, |x| {
                        x.state = State::Completed;
                        x.out = None;
                    });
                    self.set_end(now, id, if reliable { 0 } else { t4 });
                }
                ResponseVerdict::Deliver { txn: id }
            }
            _ => absorbed,
        };
        Ok(verdict)
    }

    // ---- the TU's calls ----

    /// The TU sends a response on server transaction `txn` (§17.2.1, §17.2.2); `bytes` go to
    /// the request's peer now, and are kept if the transaction may have to send them again.
    ///
    /// A 2xx to an INVITE moves it to Accepted (RFC 6026) and is not kept: retransmitting
    /// it is the TU's ([`respond`](Self::respond) again with the 2xx, which is sent as is)
    /// or the layer's on request ([`respond_2xx_retransmitting`](Self::respond_2xx_retransmitting)).
    pub fn respond(
        &mut self,
        now: Millis,
        txn: TxnId,
        status: u16,
        bytes: Wire,
    ) -> Result<(), TxnError> {
        self.respond_inner(now, txn, status, bytes, false)
    }

    /// Like [`respond`](Self::respond) with a final response to a non-INVITE request that
    /// the TU can build again, byte for byte, from the request alone (the request's own
    /// Via, From, To with its tag, Call-ID and CSeq, no body): the transaction keeps the
    /// status instead of the bytes while timer J runs. A retransmitted request then gets
    /// [`Verdict::Retransmission`] with `rebuild: Some(status)`, and the TU sends what it
    /// builds with [`send_again`](Self::send_again). At 1,000 calls/s a caller's INFOs and
    /// BYE keep about 100,000 such transactions alive; their responses were 30 MB.
    pub fn respond_rebuildable(
        &mut self,
        now: Millis,
        txn: TxnId,
        status: u16,
        bytes: Wire,
    ) -> Result<(), TxnError> {
        self.check(
            txn,
            "forget anything but a final non-INVITE response",
            |t| t.kind == Kind::ServerNonInvite && status >= 200,
        )?;
        self.respond_inner(now, txn, status, bytes, false)?;
        if let Some(t) = self.txns.get_mut(&txn) {
            t.out = None;
            t.rebuild = Some(status);
        }
        Ok(())
    }

    /// Sends `bytes`, built again by the TU after a [`Verdict::Retransmission`] with
    /// `rebuild`, to the peer of server transaction `txn`. False if `txn` has ended.
    pub fn send_again(&mut self, txn: TxnId, bytes: Wire) -> bool {
        let Some(t) = self.txns.get(&txn) else {
            return false;
        };
        self.actions.push_back(Action::Send {
            txn,
            to: t.peer,
            bytes,
        });
        true
    }

    /// Like [`respond`](Self::respond) with a 2xx to an INVITE, and the layer retransmits
    /// it for the TU (§13.3.1.4: at T1, then doubling up to T2) until
    /// [`ack_received`](Self::ack_received); with no ACK after 64*T1 it emits
    /// [`Action::AckTimeout`]. Over TCP too: the ACK is end to end, so a reliable hop
    /// does not make it arrive.
    pub fn respond_2xx_retransmitting(
        &mut self,
        now: Millis,
        txn: TxnId,
        status: u16,
        bytes: Wire,
    ) -> Result<(), TxnError> {
        self.check(txn, "retransmit anything but a 2xx to an INVITE", |t| {
            t.kind == Kind::ServerInvite && (200..=299).contains(&status)
        })?;
        self.respond_inner(now, txn, status, bytes, true)
    }

    /// `Ok` if `txn` is live and `allowed` holds for it; otherwise the error saying the TU
    /// tried to do `what` to it.
    fn check(
        &self,
        txn: TxnId,
        what: &'static str,
        allowed: impl FnOnce(&Txn) -> bool,
    ) -> Result<(), TxnError> {
        let t = self.txns.get(&txn).ok_or(TxnError::Unknown(txn))?;
        if allowed(t) {
            Ok(())
        } else {
            Err(t.wrong_state(txn, what))
        }
    }

    /// The dialog layer matched the ACK for the 2xx of server INVITE `txn`: the 2xx
    /// retransmission service stops and its bytes are dropped; the transaction stays
    /// Accepted until timer L.
    pub fn ack_received(&mut self, now: Millis, txn: TxnId) -> Result<(), TxnError> {
        self.advance(now);
        let t = self.txns.get_mut(&txn).ok_or(TxnError::Unknown(txn))?;
        if t.kind != Kind::ServerInvite || t.state != State::Accepted {
            return Err(t.wrong_state(txn, "take the ACK for a 2xx"));
        }
        t.awaiting_ack = false;
        t.out = None;
        if let Some(at) = t.retransmit_at.take() {
            self.timers.remove(&(at, txn, Slot::Retransmit));
        }
        Ok(())
    }

    /// The TU starts a client transaction (§17.1.1 for INVITE, §17.1.2 otherwise): `bytes`
    /// go to `req.to` now and, over UDP, again on timer A or E until a response comes.
    pub fn send_request(
        &mut self,
        now: Millis,
        req: &OutgoingRequest<'_>,
        bytes: Wire,
    ) -> Result<TxnId, TxnError> {
        let now = self.advance(now);
        if req.method == Method::Ack {
            return Err(TxnError::AckIsNotATransaction);
        }
        if !req.branch.starts_with(MAGIC_COOKIE) {
            return Err(TxnError::BranchWithoutCookie);
        }
        let hash = self.hash(Side::Client, req.branch, "", req.method);
        match self.find(hash, req.branch, req.method, false) {
            Ok(Some(_)) => return Err(TxnError::DuplicateBranch),
            Ok(None) => {}
            Err(refused) => return Err(refused.into()),
        }
        self.admit()?;
        let invite = req.method == Method::Invite;
        let t1 = self.timers_cfg.t1_ms;
        let id = self.insert(Txn {
            hash,
            branch: req.branch.into(),
            peer: req.to,
            out: (!req.reliable).then(|| bytes.clone()),
            retransmit_at: None,
            end_at: None,
            interval_ms: t1,
            kind: if invite {
                Kind::ClientInvite
            } else {
                Kind::ClientNonInvite
            },
            state: if invite {
                State::Calling
            } else {
                State::Trying
            },
            method: req.method,
            reliable: req.reliable,
            awaiting_ack: false,
            cancelling: false,
            rebuild: None,
        });
        self.actions.push_back(Action::Send {
            txn: id,
            to: req.to,
            bytes,
        });
        if !req.reliable {
            self.set_retransmit(now, id, t1);
        }
        let b_or_f = self.timers_cfg.sixty_four_t1();
        self.set_end(now, id, b_or_f);
        Ok(id)
    }

    /// The TU supplies the ACK for the 300-699 that client INVITE `txn` reported with
    /// [`ResponseVerdict::AckNeeded`] (§17.1.1.3). It is sent now and again for each
    /// retransmitted final response until timer D; over TCP the transaction then ends.
    pub fn send_ack(&mut self, now: Millis, txn: TxnId, bytes: Wire) -> Result<(), TxnError> {
        self.advance(now);
        let t = self.txns.get_mut(&txn).ok_or(TxnError::Unknown(txn))?;
        if t.kind != Kind::ClientInvite || t.state != State::Completed || t.out.is_some() {
            return Err(t.wrong_state(txn, "send an ACK for a 300-699"));
        }
        let (to, reliable) = (t.peer, t.reliable);
        if !reliable {
            t.out = Some(bytes.clone());
        }
        self.actions.push_back(Action::Send { txn, to, bytes });
        if reliable {
            self.terminate(txn);
        }
        Ok(())
    }

    /// The TU sent a CANCEL for client INVITE `txn` (§9.1): if no final response comes
    /// within 64*T1 of the provisional (or of now, if one came already), the transaction
    /// ends with [`Action::Timeout`].
    pub fn cancelling(&mut self, now: Millis, txn: TxnId) -> Result<(), TxnError> {
        let now = self.advance(now);
        let t = self.txns.get_mut(&txn).ok_or(TxnError::Unknown(txn))?;
        if t.kind != Kind::ClientInvite || !matches!(t.state, State::Calling | State::Proceeding) {
            return Err(t.wrong_state(txn, "be cancelled"));
        }
        let first = !t.cancelling;
        t.cancelling = true;
        if t.state == State::Proceeding && first {
            let m = self.timers_cfg.sixty_four_t1();
            self.set_end(now, txn, m);
        }
        Ok(())
    }

    /// Whether the TU should still send 100 Trying on server INVITE `txn` (§17.2.1): it has
    /// sent no response yet.
    pub fn trying_needed(&self, txn: TxnId) -> bool {
        self.txns.get(&txn).is_some_and(|t| {
            t.kind == Kind::ServerInvite && t.state == State::Proceeding && t.out.is_none()
        })
    }

    // ---- time and output ----

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Millis) {
        self.advance(now);
    }

    /// The earliest deadline, when [`handle_timeout`](Self::handle_timeout) should be called.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.timers.first().map(|&(at, _, _)| at)
    }

    /// The next thing to do, in order; `None` when idle.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ---- inspection ----

    /// The state of a live transaction.
    pub fn state(&self, txn: TxnId) -> Option<State> {
        self.txns.get(&txn).map(|t| t.state)
    }

    /// The kind of a live transaction.
    pub fn kind(&self, txn: TxnId) -> Option<Kind> {
        self.txns.get(&txn).map(|t| t.kind)
    }

    /// How many transactions are alive.
    pub fn len(&self) -> usize {
        self.txns.len()
    }

    /// Whether no transaction is alive.
    pub fn is_empty(&self) -> bool {
        self.txns.is_empty()
    }

    /// Bytes live transaction `txn` costs: its record, its entries in the matching index
    /// and the timer queue, its branch and the message it keeps (allocator rounding and the
    /// tables' spare capacity aside; [`footprint_total`](Self::footprint_total) counts those).
    pub fn footprint(&self, txn: TxnId) -> Option<usize> {
        self.txns.get(&txn).map(|t| t.footprint())
    }

    /// Bytes the whole layer holds: its tables at their capacity, timer-queue nodes at a
    /// half-full worst case, and every transaction's heap.
    pub fn footprint_total(&self) -> usize {
        let tables = self.txns.capacity() * (size_of::<(TxnId, Box<Txn>)>() + 1)
            + self.index.capacity() * (size_of::<(u64, TxnId)>() + 1)
            + self.timers.len() * size_of::<TimerEntry>() * 2
            + self.actions.capacity() * size_of::<Action>();
        let heap: usize = self
            .txns
            .values()
            .map(|t| size_of::<Txn>() + t.branch.len() + t.out.as_ref().map_or(0, Wire::heap_bytes))
            .sum();
        size_of::<Self>() + tables + heap
    }

    /// What the layer refused so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    // ---- inside ----

    /// Takes `now` (never going back) and fires what is due by then.
    fn advance(&mut self, now: Millis) -> Millis {
        self.now = self.now.max(now);
        let now = self.now;
        while let Some(&(at, txn, slot)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.fire(now, txn, slot);
        }
        now
    }

    fn fire(&mut self, now: Millis, id: TxnId, slot: Slot) {
        let t2 = self.timers_cfg.t2_ms;
        let Some(t) = self.txns.get_mut(&id) else {
            return;
        };
        match slot {
            Slot::Retransmit => {
                t.retransmit_at = None;
                let next = match (t.kind, t.state) {
                    // Timer A doubles without a cap (§17.1.1.2); B ends it.
                    (Kind::ClientInvite, State::Calling) => t.interval_ms.saturating_mul(2),
                    // Timer E: doubling up to T2; T2 once a provisional came (§17.1.2.2).
                    (Kind::ClientNonInvite, State::Trying) => {
                        t.interval_ms.saturating_mul(2).min(t2)
                    }
                    (Kind::ClientNonInvite, State::Proceeding) => t2,
                    // Timer G, and the 2xx service (§13.3.1.4): doubling up to T2.
                    (Kind::ServerInvite, State::Completed | State::Accepted) => {
                        t.interval_ms.saturating_mul(2).min(t2)
                    }
                    _ => return,
                };
                let Some(bytes) = t.out.clone() else {
                    return;
                };
                t.interval_ms = next;
                let to = t.peer;
                self.actions.push_back(Action::Send { txn: id, to, bytes });
                self.set_retransmit(now, id, next);
            }
            Slot::End => {
                t.end_at = None;
                match (t.kind, t.state) {
                    // B, F, or the §9.1 wait after CANCEL.
                    (Kind::ClientInvite, State::Calling | State::Proceeding)
                    | (Kind::ClientNonInvite, State::Trying | State::Proceeding) => {
                        self.actions.push_back(Action::Timeout { txn: id });
                    }
                    // H, or the end of the 2xx service with no ACK.
                    (Kind::ServerInvite, State::Completed) => {
                        self.actions.push_back(Action::AckTimeout { txn: id });
                    }
                    (Kind::ServerInvite, State::Accepted) if t.awaiting_ack => {
                        self.actions.push_back(Action::AckTimeout { txn: id });
                    }
                    // D, I, J, K, L, M: the transaction has waited out its time.
                    _ => {}
                }
                self.terminate(id);
            }
        }
    }

    fn respond_inner(
        &mut self,
        now: Millis,
        id: TxnId,
        status: u16,
        bytes: Wire,
        retransmit_2xx: bool,
    ) -> Result<(), TxnError> {
        let now = self.advance(now);
        if !(100..=699).contains(&status) {
            return Err(TxnError::InvalidStatus(status));
        }
        let cfg = self.timers_cfg;
        let m = cfg.sixty_four_t1();
        let t = self.txns.get_mut(&id).ok_or(TxnError::Unknown(id))?;
        let to = t.peer;
        match (t.kind, t.state) {
            (Kind::ServerNonInvite, State::Trying | State::Proceeding) => {
                t.out = Some(bytes.clone());
                self.actions.push_back(Action::Send { txn: id, to, bytes });
                if status < 200 {
                    t.state = State::Proceeding;
                } else {
                    // §17.2.2: Completed, timer J absorbs and answers retransmissions.
                    t.state = State::Completed;
                    let j = if t.reliable { 0 } else { m };
                    self.set_end(now, id, j);
                }
            }
            (Kind::ServerInvite, State::Proceeding) => match status {
                100..=199 => {
                    t.out = Some(bytes.clone());
                    self.actions.push_back(Action::Send { txn: id, to, bytes });
                }
                200..=299 => {
                    // RFC 6026 §7.1: Accepted for timer L; the 2xx is the TU's.
                    t.state = State::Accepted;
                    t.out = retransmit_2xx.then(|| bytes.clone());
                    t.awaiting_ack = retransmit_2xx;
                    t.interval_ms = cfg.t1_ms;
                    self.actions.push_back(Action::Send { txn: id, to, bytes });
                    if retransmit_2xx {
                        self.set_retransmit(now, id, cfg.t1_ms);
                    }
                    self.set_end(now, id, m);
                }
                _ => {
                    // §17.2.1: Completed, timer G (UDP) re-sends it, H waits for the ACK.
                    t.state = State::Completed;
                    t.out = Some(bytes.clone());
                    t.interval_ms = cfg.t1_ms;
                    let reliable = t.reliable;
                    self.actions.push_back(Action::Send { txn: id, to, bytes });
                    if !reliable {
                        self.set_retransmit(now, id, cfg.t1_ms);
                    }
                    self.set_end(now, id, m);
                }
            },
            // RFC 6026 §7.1: a 2xx the TU retransmits is passed to the transport.
            (Kind::ServerInvite, State::Accepted)
                if (200..=299).contains(&status) && !retransmit_2xx =>
            {
                self.actions.push_back(Action::Send { txn: id, to, bytes });
            }
            _ => return Err(t.wrong_state(id, "send this response")),
        }
        Ok(())
    }

    fn server_ack(&mut self, now: Millis, id: TxnId) -> Verdict {
        let t4 = self.timers_cfg.t4_ms;
        let Some(t) = self.txns.get_mut(&id) else {
            return Verdict::AckFor2xx { txn: None };
        };
        match t.state {
            State::Completed => {
                // §17.2.1: Confirmed; timer I absorbs ACK retransmissions.
                t.state = State::Confirmed;
                t.out = None;
                let i = if t.reliable { 0 } else { t4 };
                self.clear_timers(id);
                self.set_end(now, id, i);
                Verdict::AckAbsorbed { txn: id }
            }
            State::Accepted => Verdict::AckFor2xx { txn: Some(id) },
            // A repeated ACK, or one before any final response: nothing to do.
            _ => Verdict::AckAbsorbed { txn: id },
        }
    }

    fn server_retransmission(&mut self, id: TxnId) -> Verdict {
        let Some(t) = self.txns.get(&id) else {
            return Verdict::Unmatchable;
        };
        let state = t.state;
        // §17.2.1/§17.2.2: re-send the last response in Proceeding and Completed (a
        // non-INVITE in Trying has none); Confirmed and Accepted absorb (RFC 6026: the 2xx
        // is the TU's).
        let rebuild = t.rebuild;
        let resent = match state {
            State::Proceeding | State::Completed => self.resend(id),
            _ => false,
        };
        Verdict::Retransmission {
            txn: id,
            state,
            resent,
            rebuild,
        }
    }

    /// Queues the kept message of `id` again, if it keeps one.
    fn resend(&mut self, id: TxnId) -> bool {
        match self.txns.get(&id).and_then(|t| t.out.clone()) {
            Some(bytes) => self.send_again(id, bytes),
            None => false,
        }
    }

    fn hash(&self, side: Side, branch: &str, sent_by: &str, method: Method) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u8(side as u8);
        h.write(branch.as_bytes());
        // Never inside a str: the branch ends here.
        h.write_u8(0xff);
        for b in sent_by.bytes() {
            h.write_u8(b.to_ascii_lowercase());
        }
        h.write_u8(0xff);
        h.write_u8(method.code());
        h.finish()
    }

    /// The live transaction with this key; a different one holding the hash is a collision.
    fn find(
        &self,
        hash: u64,
        branch: &str,
        method: Method,
        server: bool,
    ) -> Result<Option<TxnId>, Refused> {
        let Some(&id) = self.index.get(&hash) else {
            return Ok(None);
        };
        let Some(t) = self.txns.get(&id) else {
            return Ok(None);
        };
        let is_server = matches!(t.kind, Kind::ServerInvite | Kind::ServerNonInvite);
        if &*t.branch == branch && t.method == method && is_server == server {
            Ok(Some(id))
        } else {
            Err(Refused::HashCollision)
        }
    }

    fn admit(&mut self) -> Result<(), Refused> {
        if self.txns.len() >= self.max_live {
            self.counters.refused_full += 1;
            return Err(Refused::Full {
                limit: self.max_live,
            });
        }
        Ok(())
    }

    fn insert(&mut self, txn: Txn) -> TxnId {
        let id = TxnId(self.next_id);
        self.next_id += 1;
        // `find` saw no live transaction under this hash.
        self.index.insert(txn.hash, id);
        self.txns.insert(id, Box::new(txn));
        id
    }

    fn terminate(&mut self, id: TxnId) {
        self.clear_timers(id);
        if let Some(t) = self.txns.remove(&id) {
            if self.index.get(&t.hash) == Some(&id) {
                self.index.remove(&t.hash);
            }
            self.actions.push_back(Action::Terminated { txn: id });
        }
    }

    /// Runs `f` on live transaction `id`.
    fn with<R>(&mut self, id: TxnId, f: impl FnOnce(&mut Txn) -> R) -> Option<R> {
        self.txns.get_mut(&id).map(|t| f(t))
    }

    fn clear_timers(&mut self, id: TxnId) {
        if let Some(t) = self.txns.get_mut(&id) {
            if let Some(at) = t.retransmit_at.take() {
                self.timers.remove(&(at, id, Slot::Retransmit));
            }
            if let Some(at) = t.end_at.take() {
                self.timers.remove(&(at, id, Slot::End));
            }
        }
    }

    fn set_retransmit(&mut self, now: Millis, id: TxnId, after_ms: u64) {
        if let Some(t) = self.txns.get_mut(&id) {
            if let Some(at) = t.retransmit_at.take() {
                self.timers.remove(&(at, id, Slot::Retransmit));
            }
            let at = now.plus(after_ms.max(1));
            t.retransmit_at = Some(at);
            self.timers.insert((at, id, Slot::Retransmit));
        }
    }

    /// Sets the end deadline `after_ms` from now; zero ends the transaction at once.
    fn set_end(&mut self, now: Millis, id: TxnId, after_ms: u64) {
        if after_ms == 0 {
            self.terminate(id);
            return;
        }
        if let Some(t) = self.txns.get_mut(&id) {
            if let Some(at) = t.end_at.take() {
                self.timers.remove(&(at, id, Slot::End));
            }
            let at = now.plus(after_ms);
            t.end_at = Some(at);
            self.timers.insert((at, id, Slot::End));
        }
    }
}
