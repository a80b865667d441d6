//! The ACD (automatic call distribution) routing core: queues, skills, priorities,
//! strategies, operator states, wrap-up, missed offers, overflow to reserve staff, surge.
//!
//! Pure and deterministic: time comes in as [`Millis`], decisions come out as [`Action`]s.
//! No clock reads, no I/O, no async, no actix - the router's `AcdActor` (one for all queues
//! and operators, `actors::acd_host`) and the load generator's simulator (`loadgen sim`)
//! drive the very same [`Acd`]. [`expected_wait_ms`] is the one wait estimate, used by the
//! queue announcements, the surge trigger and the metrics:
//!
//! ```
//! use navbat::acd::*;
//! let queue = QueueSpec {
//!     id: QueueId(0),
//!     tenant: TenantId(0),
//!     name: "dtm-uz".into(),
//!     skills: SkillSet::EMPTY.with(0),
//!     strategy: Strategy::LongestIdle,
//!     normal: QueueParams::default(),
//!     surge: QueueParams::default(),
//! };
//! let op = OperatorSpec { id: OperatorId(0), skills: SkillSet::EMPTY.with(0), reserve: false };
//! let mut acd = Acd::new(vec![queue], vec![op]);
//! let now = Millis::from_secs(1);
//! acd.handle_input(now, Input::SetOperatorState { operator: OperatorId(0), state: OperatorState::Available });
//! acd.handle_input(now, Input::Enqueue { call: CallId(7), queue: QueueId(0), priority: 0, skills: SkillSet::EMPTY });
//! let actions: Vec<Action> = std::iter::from_fn(|| acd.poll_action()).collect();
//! assert!(actions.contains(&Action::Offer { call: CallId(7), operator: OperatorId(0) }));
//! assert_eq!(acd.poll_timeout(), Some(now.plus(20_000))); // the ring timeout
//! ```
#![deny(missing_docs)]

mod engine;
mod types;
mod wait;

#[cfg(test)]
mod tests;

pub use engine::Acd;
pub use types::{
    Action, CallId, ChangeReason, Input, Millis, OperatorId, OperatorSpec, OperatorState, Outcome,
    QueueId, QueueParams, QueueSnapshot, QueueSpec, RejectReason, SkillSet, Strategy, TenantId,
};
pub use wait::expected_wait_ms;
