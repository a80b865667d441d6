//! Callbacks in surge mode: the pure core shared by the router (`actors::acd_host`) and the
//! load generator's simulator (`loadgen sim`), so a what-if study runs the router's own rules.
//!
//! - [`book`]: the pending requests, their retries and outcomes, and the records the store
//!   keeps of them.
//! - [`door`]: the results-day policy's offer at the door of the queue (a callback that can
//!   be kept, for today or the next morning, and the information by SMS).
//! - [`readmit`]: callbacks whose dial-out found every trunk channel busy leave the routing
//!   core and come back at their original places, as many as channels are free, every
//!   [`readmit::NO_CHANNEL_RETRY_MS`].
//!
//! A pending request waits in the routing core (`acd`) as a callback entry placed at its
//! original arrival (`acd::Input::EnqueueCallback`), so the core's one ordering rule decides
//! between callbacks and live callers. The dial-out itself (operator first, then the caller
//! through the trunk) is the router's `actors::callback`; the simulator models it.
//!
//! Everything takes `now` as an argument; nothing here reads a clock or does I/O.

pub mod book;
pub mod door;
pub mod readmit;

pub use book::{
    CallbackBook, CallbackError, CallbackOutcome, CallbackPolicy, CallbackRecord, CallbackRefusal,
    CallbackRequest, DialResult, Next,
};
pub use readmit::{FreeChannels, Readmission, NO_CHANNEL_RETRY_MS};
