//! OperatorActor: one per operator. Owns the operator's registration (contact
//! binding and its expiry) and tells the ACD when the operator can work.

use super::acd_host::{AcdActor, Feed};
use super::Shared;
use crate::acd::{Input, OperatorId, OperatorState};
use crate::events::EventKind;
use crate::sip::ContactBinding;
use actix::prelude::*;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// An operator as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    /// Extension.
    pub ext: String,
    /// ACD state name.
    pub state: String,
    /// Whether a phone is registered.
    pub registered: bool,
    /// The registered Contact.
    pub contact: Option<String>,
    /// Reserve staff (D11).
    pub reserve: bool,
}

/// One operator.
pub struct OperatorActor {
    id: OperatorId,
    ext: String,
    shared: Arc<Shared>,
    acd: Addr<AcdActor>,
    expiry: Option<SpawnHandle>,
    state: OperatorState,
}

impl OperatorActor {
    /// The actor for operator `id`.
    pub fn new(id: OperatorId, shared: Arc<Shared>, acd: Addr<AcdActor>) -> OperatorActor {
        OperatorActor {
            id,
            ext: shared.model.operator_ext(id).to_string(),
            shared,
            acd,
            expiry: None,
            state: OperatorState::LoggedOut,
        }
    }

    fn unbind(&mut self, reason: &str) {
        if self.shared.presence.remove(self.id).is_some() {
            if let Some(shared) = self.shared.presence.shared() {
                shared.withdraw(&self.ext);
            }
            self.shared.events.emit(EventKind::OperatorUnregistered {
                operator: self.ext.clone(),
                reason: reason.into(),
            });
            self.acd.do_send(Feed(Input::SetOperatorState {
                operator: self.id,
                state: OperatorState::LoggedOut,
            }));
        }
    }
}

impl Actor for OperatorActor {
    type Context = Context<Self>;
}

/// The operator's phone registered (or refreshed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Registered {
    /// Where the phone is.
    pub binding: ContactBinding,
    /// Granted lifetime.
    pub expires_secs: u32,
}

impl Handler<Registered> for OperatorActor {
    type Result = ();
    fn handle(&mut self, msg: Registered, ctx: &mut Context<Self>) {
        if let Some(shared) = self.shared.presence.shared() {
            shared.publish(
                &self.ext,
                crate::presence::shared::OperatorEntry {
                    state: super::acd_host::state_name(self.state).into(),
                    contact: Some(msg.binding.stored()),
                    idle_since_ms: crate::store::db::now_ms().max(0) as u64,
                },
            );
        }
        let fresh = self.shared.presence.insert(self.id, msg.binding).is_none();
        self.shared.events.emit(EventKind::OperatorRegistered {
            operator: self.ext.clone(),
            expires_secs: msg.expires_secs,
        });
        if let Some(h) = self.expiry.take() {
            ctx.cancel_future(h);
        }
        // A little grace past the granted time, as phones refresh at the end.
        let lifetime = Duration::from_secs(u64::from(msg.expires_secs) + 5);
        self.expiry = Some(ctx.run_later(lifetime, |act, _| {
            act.expiry = None;
            act.unbind("expired");
        }));
        if fresh
            && self.shared.config.operators_defaults.available_on_register
            && self.state == OperatorState::LoggedOut
        {
            self.acd.do_send(Feed(Input::SetOperatorState {
                operator: self.id,
                state: OperatorState::Available,
            }));
        }
    }
}

/// The operator's phone removed its binding.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unregistered;

impl Handler<Unregistered> for OperatorActor {
    type Result = ();
    fn handle(&mut self, _: Unregistered, ctx: &mut Context<Self>) {
        if let Some(h) = self.expiry.take() {
            ctx.cancel_future(h);
        }
        self.unbind("unregistered");
    }
}

/// The ACD's view of this operator's state, mirrored here.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StateMirror(pub OperatorState);

impl Handler<StateMirror> for OperatorActor {
    type Result = ();
    fn handle(&mut self, msg: StateMirror, _: &mut Context<Self>) {
        self.state = msg.0;
    }
}
