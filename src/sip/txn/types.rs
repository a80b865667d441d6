//! Value types of the transaction core: time, timer settings, the compact descriptions of
//! messages that the caller's parser produces, and what the core answers.
//!
//! Everything here is plain data. The decisions live in [`super::TransactionLayer`].

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// The prefix every RFC 3261 branch starts with (§8.1.1.7); without it a request comes from
/// an RFC 2543 peer and cannot be matched by branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

pub use crate::millis::Millis;

/// The RFC 3261 timer base values (§17.1.1.1, table 4 in appendix A), in milliseconds.
///
/// Every other timer derives from these: A, E and G start at T1 (E and G capped at T2),
/// B, F, H, J, L and M are 64*T1, I and K are T4, D is [`Timers::d_ms`]. On a reliable
/// transport I, J, K and D are zero and nothing is retransmitted by the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (default 500 ms). Values below 1 ms are taken as 1 ms.
    pub t1_ms: u64,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses
    /// (default 4 s). Values below T1 are taken as T1.
    pub t2_ms: u64,
    /// Longest time a message stays in the network (default 5 s).
    pub t4_ms: u64,
    /// Timer D on an unreliable transport: how long a client INVITE transaction absorbs
    /// retransmitted final responses (§17.1.1.2: at least 32 s; default 32 s).
    pub d_ms: u64,
}

impl Default for Timers {
    /// The RFC's defaults: T1 500 ms, T2 4 s, T4 5 s, D 32 s.
    fn default() -> Self {
        Timers {
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
            d_ms: 32_000,
        }
    }
}

impl Timers {
    /// The same timers with T1 at least 1 ms and T2 at least T1, so every retransmission
    /// interval is positive.
    pub(crate) fn sane(self) -> Timers {
        let t1_ms = self.t1_ms.max(1);
        Timers {
            t1_ms,
            t2_ms: self.t2_ms.max(t1_ms),
            ..self
        }
    }

    /// 64*T1: timers B, F, H, L and M (32 s by default).
    pub const fn sixty_four_t1(&self) -> u64 {
        self.t1_ms.saturating_mul(64)
    }
}

/// Settings of a [`super::TransactionLayer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The RFC 3261 timer values.
    pub timers: Timers,
    /// Most transactions alive at once (client and server together); a new one beyond it is
    /// refused with [`Refused::Full`], so a flood cannot grow memory without bound.
    pub max_live: usize,
}

impl Default for Config {
    /// RFC timers, at most 200,000 live transactions: about 145 MB if each holds a
    /// 450-byte message (720 bytes each as measured by the tests, tables included); more
    /// only if many are still retransmitting large requests.
    fn default() -> Self {
        Config {
            timers: Timers::default(),
            max_live: 200_000,
        }
    }
}

/// A SIP method, as far as the transaction layer cares. Names are case-sensitive
/// (RFC 3261 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// REGISTER
    Register,
    /// OPTIONS
    Options,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// SUBSCRIBE (RFC 6665)
    Subscribe,
    /// NOTIFY (RFC 6665)
    Notify,
    /// REFER (RFC 3515)
    Refer,
    /// MESSAGE (RFC 3428)
    Message,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any extension method. All extension methods match one another: two of them on the
    /// same branch and sent-by would be one transaction, which no conforming peer produces.
    Other,
}

impl Method {
    /// The method named by `token` (case-sensitive); [`Method::Other`] for any other name.
    pub fn from_token(token: &str) -> Method {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            _ => Method::Other,
        }
    }

    /// The method's name (`OTHER` for any method the layer does not name).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other => "OTHER",
        }
    }

    /// A one-byte code for the matching hash.
    pub(crate) const fn code(self) -> u8 {
        self as u8
    }
}

/// What the layer needs to know of a request that came in from the network: the caller
/// parsed it once and hands over these few fields, never the message itself.
#[derive(Clone, Copy, Debug)]
pub struct RequestMeta<'a> {
    /// The request method.
    pub method: Method,
    /// The `branch` parameter of the top Via.
    pub branch: &'a str,
    /// The sent-by of the top Via (`host[:port]`); hosts compare case-insensitively.
    pub sent_by: &'a str,
    /// The method of the CSeq header (must equal `method`, §8.1.1.5).
    pub cseq_method: Method,
    /// Whether it came over a reliable transport (TCP) rather than UDP.
    pub reliable: bool,
    /// Where the responses of the transaction go (the source, or what §18.2.2 says).
    pub peer: SocketAddr,
}

/// What the layer needs to know of a response that came in from the network.
#[derive(Clone, Copy, Debug)]
pub struct ResponseMeta<'a> {
    /// The status code (100..=699).
    pub status: u16,
    /// The `branch` parameter of the top Via.
    pub branch: &'a str,
    /// The method of the CSeq header.
    pub cseq_method: Method,
}

/// A request the TU sends, starting a client transaction; its serialised bytes go beside.
#[derive(Clone, Copy, Debug)]
pub struct OutgoingRequest<'a> {
    /// The request method (not ACK: an ACK is no transaction of its own).
    pub method: Method,
    /// The `branch` of the top Via the TU put in; must carry the magic cookie.
    pub branch: &'a str,
    /// Where the request (and its retransmissions, and an ACK for a non-2xx) goes.
    pub to: SocketAddr,
    /// Whether it goes over a reliable transport (TCP) rather than UDP.
    pub reliable: bool,
}

/// An outgoing SIP message, already serialised: shared, so a retransmission is a reference
/// count, not a copy. `Debug` shows only its length (the text holds phone numbers).
#[derive(Clone, PartialEq, Eq)]
pub struct Wire(Arc<[u8]>);

impl Wire {
    /// The serialised message.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes it holds on the heap: the message plus the two reference counts.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.0.len() + 2 * std::mem::size_of::<usize>()
    }
}

impl From<Vec<u8>> for Wire {
    fn from(bytes: Vec<u8>) -> Wire {
        Wire(bytes.into())
    }
}

impl From<&[u8]> for Wire {
    fn from(bytes: &[u8]) -> Wire {
        Wire(bytes.into())
    }
}

impl From<&str> for Wire {
    fn from(text: &str) -> Wire {
        Wire(text.as_bytes().into())
    }
}

impl AsRef<[u8]> for Wire {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Wire({} bytes)", self.0.len())
    }
}

/// Identifies one transaction for as long as it lives. Chosen by the layer, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TxnId(pub u64);

/// Which of the four RFC 3261 §17 state machines a transaction runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// §17.1.1 with RFC 6026 §7.2.
    ClientInvite,
    /// §17.1.2.
    ClientNonInvite,
    /// §17.2.1 with RFC 6026 §7.1.
    ServerInvite,
    /// §17.2.2.
    ServerNonInvite,
}

/// The state of a live transaction (Terminated ones are gone: [`Action::Terminated`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Client INVITE: sent, no response yet (timers A and B).
    Calling,
    /// Non-INVITE: the request is out (client) or in (server), no response yet.
    Trying,
    /// A provisional response was received (client) or sent (server), or a server INVITE
    /// awaits the TU's first response.
    Proceeding,
    /// A final response was received (client) or sent (server; for INVITE: 300-699);
    /// retransmissions are answered or absorbed until the timer runs out.
    Completed,
    /// Server INVITE: the ACK for its 300-699 came (timer I).
    Confirmed,
    /// INVITE with a 2xx (RFC 6026): timer L (server) or M (client) absorbs what follows.
    Accepted,
}

/// What to do with a request that came in from the network ([`super::TransactionLayer::on_request`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// A new server transaction: pass the request to the TU, which answers through
    /// [`super::TransactionLayer::respond`].
    New {
        /// The new transaction.
        txn: TxnId,
        /// An INVITE: the TU should send 100 Trying now unless it will respond within
        /// 200 ms (§17.2.1); see also [`super::TransactionLayer::trying_needed`].
        send_trying: bool,
        /// A CANCEL: the INVITE server transaction it cancels (same branch and sent-by,
        /// §9.2), if that is still alive; `None` means the TU answers 481.
        cancels: Option<TxnId>,
    },
    /// A retransmission of the request of `txn`: absorbed, and the last response re-sent
    /// when there is one (an [`Action::Send`] is queued then).
    Retransmission {
        /// The transaction it belongs to.
        txn: TxnId,
        /// Its state; [`State::Accepted`] tells a TU that retransmits its own 2xx that the
        /// caller has not seen it yet (§13.3.1.4).
        state: State,
        /// Whether a stored response was queued for sending again.
        resent: bool,
        /// The status of a final response the layer did not keep
        /// ([`super::TransactionLayer::respond_rebuildable`]): the TU builds it again from
        /// this request and sends it with [`super::TransactionLayer::send_again`].
        rebuild: Option<u16>,
    },
    /// An ACK for a 300-699 response of `txn` (§17.2.1): absorbed by the transaction.
    AckAbsorbed {
        /// The INVITE server transaction.
        txn: TxnId,
    },
    /// An ACK that is not for a non-2xx final response: the ACK for a 2xx, which is the
    /// dialog layer's (§13.3.1.4). `txn` is the INVITE transaction when the ACK reused its
    /// branch and that transaction is Accepted (RFC 6026 §7.1: passed to the TU).
    AckFor2xx {
        /// The Accepted INVITE server transaction it matched, if any.
        txn: Option<TxnId>,
    },
    /// The top Via branch lacks the magic cookie (an RFC 2543 peer): the layer does not do
    /// §17.2.3's legacy matching; the caller decides (answer statelessly or drop).
    Unmatchable,
}

/// What to do with a response that came in from the network ([`super::TransactionLayer::on_response`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum ResponseVerdict {
    /// Pass the response to the TU. Every 2xx to an INVITE comes here, the first and each
    /// retransmitted one, so the TU ACKs each (RFC 6026 §7.2).
    Deliver {
        /// The client transaction.
        txn: TxnId,
    },
    /// A first 300-699 to an INVITE: pass it to the TU, and supply the ACK's bytes once
    /// through [`super::TransactionLayer::send_ack`] (§17.1.1.3); the layer re-sends them for
    /// every retransmitted final response.
    AckNeeded {
        /// The client INVITE transaction.
        txn: TxnId,
    },
    /// A retransmission or a response the state does not take: not for the TU.
    Absorbed {
        /// The client transaction.
        txn: TxnId,
        /// Whether the stored ACK was queued for sending again.
        ack_resent: bool,
    },
    /// No client transaction matches (§17.1.3): passed to the core (§18.1.2), which drops
    /// it unless it is a 2xx to an INVITE of one of its dialogs (a late fork, or a
    /// retransmission after timer M) that it must still ACK.
    Unmatched,
}

/// Something the driver must do, polled through [`super::TransactionLayer::poll_action`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `bytes` to `to` (a first send or a retransmission).
    Send {
        /// The transaction it belongs to.
        txn: TxnId,
        /// The destination.
        to: SocketAddr,
        /// The serialised message.
        bytes: Wire,
    },
    /// A client transaction got no final response in time (timer B or F, or the §9.1
    /// wait after a CANCEL): the TU treats it as 408.
    Timeout {
        /// The client transaction (terminated right after).
        txn: TxnId,
    },
    /// A server INVITE transaction's response was never acknowledged: timer H for a
    /// 300-699, or 64*T1 of the 2xx retransmission service (§13.3.1.4: the session
    /// should end).
    AckTimeout {
        /// The server INVITE transaction (terminated right after).
        txn: TxnId,
    },
    /// The transaction has ended and is forgotten; its id is never used again.
    Terminated {
        /// The transaction.
        txn: TxnId,
    },
}

/// Why the layer would not take on a new transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// As many transactions are alive as [`Config::max_live`] allows.
    #[error("{limit} SIP transactions are already alive; answer 503 statelessly or raise the live-transaction cap")]
    Full {
        /// The cap.
        limit: usize,
    },
    /// The CSeq method differs from the request method (§8.1.1.5): a malformed request.
    #[error("the CSeq method differs from the request method; answer 400")]
    CseqMethodMismatch,
    /// A different live transaction has the same 64-bit matching hash (about one chance in
    /// 10^10 per request at the cap): the request cannot be told apart, so it is refused.
    #[error("the request's transaction key collides with another live transaction; drop it, the peer retransmits")]
    HashCollision,
}

/// Errors of the TU's calls on a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// No transaction could be created.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// No live transaction has this id (it terminated, or never was).
    #[error("no live SIP transaction {0:?}; it has terminated")]
    Unknown(TxnId),
    /// The call does not apply to this kind of transaction or in this state.
    #[error("SIP transaction {txn:?} ({kind:?}, {state:?}) cannot {what}")]
    WrongState {
        /// The transaction.
        txn: TxnId,
        /// Its kind.
        kind: Kind,
        /// Its state.
        state: State,
        /// What was asked.
        what: &'static str,
    },
    /// A status code outside 100..=699.
    #[error("SIP status {0} is outside 100..=699")]
    InvalidStatus(u16),
    /// A client request whose branch lacks the magic cookie `z9hG4bK`.
    #[error("the branch of an outgoing request must start with z9hG4bK")]
    BranchWithoutCookie,
    /// ACK is sent by the TU outside any transaction (for a 2xx) or through
    /// [`super::TransactionLayer::send_ack`] (for a 300-699).
    #[error("an ACK is not a transaction: send it directly, or through send_ack for a non-2xx")]
    AckIsNotATransaction,
    /// A live client transaction already has this branch and method.
    #[error("a live client transaction already has this branch and method; make a new branch")]
    DuplicateBranch,
}
