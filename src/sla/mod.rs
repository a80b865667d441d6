//! SLA clocks in working hours (requirements C3-C7): when a request must get its first
//! answer, be resolved, or (a catalogue card) be moderated, and how much time is left.
//!
//! Pure and deterministic, like [`crate::acd`]: the rules ([`SlaRules`]), the tenant's working
//! time ([`BusinessCalendar`]), a request's facts ([`RequestFacts`]) and `now` go in; the
//! clocks ([`SlaState`]) come out. Nothing here reads a clock, touches I/O or awaits. A
//! driver keeps the open requests' states and sleeps until [`next_change`], the way the
//! queue actor sleeps until `Acd::poll_timeout`:
//!
//! ```
//! use navbat::sla::*;
//! let zone = jiff::tz::TimeZone::fixed(jiff::tz::offset(5));
//! let hours = navbat::config::Hours::Weekly(vec![navbat::config::OpeningWindow {
//!     days: vec![jiff::civil::Weekday::Monday, jiff::civil::Weekday::Tuesday],
//!     open: navbat::config::ClockTime::parse("08:00").unwrap(),
//!     close: navbat::config::ClockTime::parse("20:00").unwrap(),
//! }]);
//! let calendar = BusinessCalendar::new(zone, &hours, &[], &[], jiff::civil::Weekday::Monday);
//! let rules = SlaRules::default();
//! // An e-mail on Monday 2026-03-02 at 19:55: 5 minutes on Monday, 5 on Tuesday (C4).
//! let registered: jiff::Timestamp = "2026-03-02T19:55:00+05:00".parse().unwrap();
//! let facts = RequestFacts::new(registered, Channel::Email, Priority::Normal, RequestKind::Ordinary);
//! let state = evaluate(&rules, &calendar, &facts, registered);
//! let first = state.first_answer.unwrap();
//! assert_eq!(first.deadline, "2026-03-03T08:05:00+05:00".parse().unwrap());
//! assert_eq!(first.state, ClockState::Running);
//! // Nothing changes before 20% of the budget is left: Tuesday 08:03.
//! assert_eq!(next_change([&state], registered), Some("2026-03-03T08:03:00+05:00".parse().unwrap()));
//! ```
//!
//! # Documented choices
//! * **Working days** ([`BusinessCalendar::add_working_days`]): "N working days" ends at the
//!   close of the N-th working day after the day the clock started, as the Civil Code counts
//!   periods (from the next day) and as a support manager reads "within 2 working days" (by
//!   the end of the second working day). The start day never counts, so a request on Monday
//!   morning and one on Monday evening are both due by Wednesday's close; low priority is
//!   therefore never stricter than normal (24 working hours = two 12-hour days from the
//!   registration instant). Calendar days end at the local midnight after the N-th day.
//! * **Phone requests**: a call during working hours is answered by the queue (its service
//!   level), so it has no first-answer clock; a phone request registered outside working
//!   hours (a missed call or voicemail to call back) follows C5 like every other channel.
//! * **C5 replaces C4** for a request registered outside working hours (07:59 and 20:00
//!   exactly are outside; 08:00 is inside): the first answer is due by 10:00 of the next
//!   working day (the same day for a request before the opening).
//! * **Pauses** (waiting for the customer, when [`SlaRules::pause_while_waiting`]) stop every
//!   running clock; counted time excludes them, so a deadline moves by exactly the paused
//!   working time (calendar time for round-the-clock rules). A paused clock's deadline reads
//!   as if the customer answered now; it changes only with an input.
//! * **Breach** is when more than the budget has been counted; see [`Clock`].
//! * **Moderation**: each (re)submission starts a fresh clock; a return for an error or an
//!   acceptance stops it. Earlier rounds are history.
#![deny(missing_docs)]

mod calendar;
mod clock;
mod rules;
mod types;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use calendar::BusinessCalendar;
pub use clock::{
    evaluate, next_change, Clock, ClockRule, ClockState, Counting, Pause, RequestFacts, SlaState,
};
pub use rules::{Budget, DayKind, Share, SlaRules};
pub use types::{Channel, Priority, RequestKind};
