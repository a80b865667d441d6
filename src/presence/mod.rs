//! Operator presence: where each operator's phone is registered, and (with several nodes)
//! what every node says about its operators.
//!
//! One interface, two back ends: [`Presence`] always keeps this node's view in memory (the
//! routing core reads it synchronously); with `presence.backend = "redis"` it also publishes
//! every registration and state change to Redis through [`shared::SharedPresence`], which
//! heartbeats, expires a dead node's operators, claims operators atomically before an offer
//! and resyncs after a Redis outage. Without Redis (`memory`) the shared part is absent and
//! a claim always succeeds: one node cannot race itself (its ACD core serialises offers).

pub mod shared;

use crate::acd::OperatorId;
use std::collections::HashMap;
use std::sync::RwLock;

/// Registered contacts by operator, plus the shared presence when configured.
///
/// Generic over the binding (the router keeps `sip::B`), so presence does not
/// depend on the SIP layer.
#[derive(Debug)]
pub struct Presence<B> {
    bindings: RwLock<HashMap<OperatorId, B>>,
    shared: Option<shared::SharedPresence>,
}

impl<B> Default for Presence<B> {
    fn default() -> Self {
        Presence {
            bindings: RwLock::default(),
            shared: None,
        }
    }
}

impl<B: Clone> Presence<B> {
    /// Presence in memory, published to Redis too when `shared` is given.
    pub fn new(shared: Option<shared::SharedPresence>) -> Presence<B> {
        Presence {
            bindings: RwLock::default(),
            shared,
        }
    }

    /// The Redis side, when configured.
    pub fn shared(&self) -> Option<&shared::SharedPresence> {
        self.shared.as_ref()
    }

    /// The operator's binding, if registered.
    pub fn binding(&self, op: OperatorId) -> Option<B> {
        self.bindings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&op)
            .cloned()
    }

    /// Whether the operator has a binding here (no clone of it).
    pub fn is_registered(&self, op: OperatorId) -> bool {
        self.bindings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&op)
    }

    /// Sets a binding; returns the previous one.
    pub fn insert(&self, op: OperatorId, b: B) -> Option<B> {
        self.bindings
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(op, b)
    }

    /// Removes a binding; returns it.
    pub fn remove(&self, op: OperatorId) -> Option<B> {
        self.bindings
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&op)
    }

    /// How many operators are registered.
    pub fn registered(&self) -> usize {
        self.bindings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}
