//! navbat: an actor-based contact-centre call router.
#![forbid(unsafe_code)]

pub mod acd;
