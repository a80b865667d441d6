//! The web desk's state that the router keeps in its `Shared`: the live-call table (an event
//! sink), login limits, session and token caches, disposition revisions and web-form limits.
//!
//! Declared here, beside `Shared`, rather than in `desk`: the router builds it and the desk
//! (above the actors) reaches it through the router, so the actors need not import the desk.
//! Its behaviour (forgetting sessions, checking limits) stays with the desk.

use crate::accounts::limiter::LoginLimiter;
use crate::accounts::Principal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A cached lookup.
#[derive(Clone)]
pub(crate) struct Cached {
    pub principal: Principal,
    pub expires_at_ms: i64,
    pub fetched: Instant,
}

/// The desk's state, shared by every HTTP worker (it lives in the router's `Shared`).
pub struct DeskState {
    /// Calls as the desk sees them, and the notices desks react to.
    pub live: Arc<super::live::LiveCalls>,
    /// Login attempts.
    pub limiter: Mutex<LoginLimiter>,
    pub(crate) sessions: Mutex<HashMap<String, Cached>>,
    pub(crate) tokens: Mutex<HashMap<String, Cached>>,
    /// The last disposition revision this process wrote per call (two quick saves must not
    /// both be revision 1 while the first is still on its way to the database).
    pub(crate) revisions: Mutex<HashMap<String, i64>>,
    /// Web-form requests per source address.
    pub form_limit: Mutex<crate::requests::limit::SourceLimit>,
}

impl DeskState {
    /// A desk with the configured login limits.
    pub fn new(config: &crate::config::Config) -> DeskState {
        DeskState {
            live: Arc::new(super::live::LiveCalls::default()),
            limiter: Mutex::new(LoginLimiter::new(config.desk.login_limit)),
            sessions: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            revisions: Mutex::new(HashMap::new()),
            form_limit: Mutex::new(crate::requests::limit::SourceLimit::new(
                config.requests.form_per_source_per_hour,
            )),
        }
    }
}
