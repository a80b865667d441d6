//! The call core: one call's phases and every decision about how it goes and how it ends.
//!
//! A call is admitted, greeted and walked through the IVR, queued, offered to operators,
//! bridged (and maybe held or listened to by a supervisor), and ended with exactly one
//! outcome. [`CallCore`] holds that story as a state machine in the style of [`crate::acd`]
//! (and of quinn-proto and str0m): the driver feeds it [`Input`]s with `now`, fires its
//! timer when [`CallCore::poll_timeout`] says, and does the [`Action`]s it drains from
//! [`CallCore::poll_action`]. Pure and deterministic: no clock reads, no sockets, no actix,
//! no async; the `CallActor` in `actors::call` is its driver, and the tests here drive it in
//! virtual time.
//!
//! ```
//! use navbat::acd::Millis;
//! use navbat::call::*;
//! let mut call = CallCore::new(CallSetup {
//!     call_ref: "c1".into(),
//!     tenant: "dtm".into(),
//!     greeting_barge_in: true,
//!     announce_every_ms: None,
//!     callback_offer: None,
//!     door: None,
//! });
//! // A closed line without early media: refused with 480 at once.
//! call.handle_input(Millis(0), Input::Arrived(Arrival { open: false, media: None, session: false, ivr: None }));
//! let actions: Vec<Action> = std::iter::from_fn(|| call.poll_action()).collect();
//! assert!(matches!(actions[0], Action::RejectCaller { status: 480 }));
//! assert!(matches!(actions.last(), Some(Action::Finished)));
//! assert_eq!(call.phase(), CallPhase::Ended);
//! assert_eq!(call.poll_timeout(), None);
//! ```
#![deny(missing_docs)]

pub mod answer;
mod core;
mod monitor;
mod types;

#[cfg(test)]
mod tests;

pub use self::core::CallCore;
pub use monitor::{MonitorError, MonitorPlan};
pub use types::{
    AcdRequest, Action, Arrival, Attempt, CallPhase, CallSetup, CallbackOfferSpec, CallerMedia,
    DoorSpec, Ending, Input, PlayId, Prompt,
};
