//! navbat: an actor-based contact-centre call router.
//!
//! See `README.md` for running it and `../shared/design.md` for the
//! architecture: SIP in [`sip`], one actor per call, queue and operator in
//! [`actors`], the pure routing core in [`acd`] and the pure IVR in [`ivr`].
#![forbid(unsafe_code)]

pub mod accounts;
pub mod acd;
pub mod actors;
pub mod binding;
pub mod call;
pub mod callback;
pub mod chart;
pub mod config;
pub mod desk;
pub mod events;
pub mod http;
pub mod ivr;
pub mod keyfile;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod millis;
pub mod money;
pub mod notices;
pub mod pii;
pub mod presence;
pub mod privacy;
pub mod qa;
pub mod recordings;
pub mod report;
pub mod request_model;
pub mod requests;
pub mod schedule;
pub mod sip;
pub mod sla;
pub mod sms;
pub mod store;
pub mod surge;
pub mod tls;
