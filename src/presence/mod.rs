//! Operator presence: where each operator's phone is registered.
//!
//! In memory for now (one node); the Redis back end for several nodes comes
//! with the persistence issue behind this same interface.

use crate::acd::OperatorId;
use crate::sip::ContactBinding;
use std::collections::HashMap;
use std::sync::RwLock;

/// Registered contacts by operator.
#[derive(Default, Debug)]
pub struct Presence {
    bindings: RwLock<HashMap<OperatorId, ContactBinding>>,
}

impl Presence {
    /// The operator's binding, if registered.
    pub fn binding(&self, op: OperatorId) -> Option<ContactBinding> {
        self.bindings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&op)
            .cloned()
    }

    /// Sets a binding; returns the previous one.
    pub fn insert(&self, op: OperatorId, b: ContactBinding) -> Option<ContactBinding> {
        self.bindings
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(op, b)
    }

    /// Removes a binding; returns it.
    pub fn remove(&self, op: OperatorId) -> Option<ContactBinding> {
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
