//! navbat: an actor-based contact-centre call router.
#![forbid(unsafe_code)]

pub mod acd;
pub mod events;
pub mod privacy;
pub mod sip;
