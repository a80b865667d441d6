//! navbat's own SIP transaction layer (issue 18 part 4): RFC 3261 §17 with the RFC 6026
//! corrections, sans-IO, in virtual time. Out-of-dialog REGISTER and OPTIONS over UDP run on
//! it (`super::own`), and so do both legs of calls over UDP (`super::own`'s `uas` and `uac`).
//!
//! Why: rsipstack keeps each transaction as a task with a channel and the whole parsed
//! request and response for up to 32 s, about 10 KB each. Here a transaction that has its
//! final response and waits out its timer is one small record holding at most one outgoing
//! message (under 1 KB with a 450-byte response), and the layer never sees a parsed
//! message: the reader parses each datagram once and hands over a [`RequestMeta`] or
//! [`ResponseMeta`].
//!
//! Pure and deterministic like `acd`: time comes in as [`Millis`], decisions come out as
//! [`Action`]s and verdicts. No clock reads, no I/O, no async, no parser. The four state
//! machines are §17.1.1 (client INVITE, with RFC 6026's Accepted), §17.1.2 (client
//! non-INVITE), §17.2.1 (server INVITE, with RFC 6026's Accepted) and §17.2.2 (server
//! non-INVITE); matching is §17.1.3 and §17.2.3 for RFC 3261 branches only.
//!
//! ```
//! use navbat::sip::txn::*;
//! let mut layer = TransactionLayer::new(Config::default());
//! let peer = "192.0.2.7:5060".parse().unwrap();
//! let options = RequestMeta {
//!     method: Method::Options,
//!     branch: "z9hG4bK776asdhds",
//!     sent_by: "192.0.2.7:5060",
//!     cseq_method: Method::Options,
//!     reliable: false,
//!     peer,
//! };
//! let now = Millis::from_secs(1);
//! let Ok(Verdict::New { txn, .. }) = layer.on_request(now, &options) else { panic!() };
//! layer.respond(now, txn, 200, Wire::from("SIP/2.0 200 OK\r\n...")).unwrap();
//! assert!(matches!(layer.poll_action(), Some(Action::Send { .. })));
//! // The retransmitted OPTIONS is answered from the stored response, not passed up.
//! let again = layer.on_request(now.plus(500), &options).unwrap();
//! assert!(matches!(again, Verdict::Retransmission { resent: true, .. }));
//! assert_eq!(layer.poll_timeout(), Some(now.plus(32_000))); // timer J
//! ```
#![deny(missing_docs)]

mod layer;
mod types;

#[cfg(test)]
mod tests;

pub use layer::{Counters, TransactionLayer};
pub use types::{
    Action, Config, Kind, Method, Millis, OutgoingRequest, Refused, RequestMeta, ResponseMeta,
    ResponseVerdict, State, Timers, TxnError, TxnId, Verdict, Wire, MAGIC_COOKIE,
};
