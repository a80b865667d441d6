//! Quality assurance (D17, C9): scorecards, the weekly sample, reviews and calibration.
//!
//! The decisions are pure and take what they need as arguments (no clock, no I/O):
//!
//! * [`score`]: a scorecard and an evaluator's marks in, the total out (weights; a failed
//!   critical criterion zeroes it); timestamps into the recording for comments;
//! * [`sample`]: the tenant's local ISO week ([`sample::Week`]) and the seeded weekly draw,
//!   a pure function from (seed, calls, size) to the sample, so a recorded draw can be
//!   re-derived and audited;
//! * [`spread`]: the spread of several evaluators' scores of the same call (calibration).
//!
//! [`job`] is the thin driver: it reads the week's calls from the store, draws, records the
//! draw through the journal and refreshes the mean-score gauge. The desk's pages are
//! `crate::desk::qa`.

pub mod job;
pub mod sample;
pub mod score;
pub mod spread;
