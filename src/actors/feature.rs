//! A supervisor's feature-code call (D17): `*51<ext>` listen, `*52<ext>` whisper, `*53<ext>`
//! barge (see [`crate::sip::features`]). The SIP layer has authenticated the INVITE; here
//! navbat checks the supervisor may monitor, finds the live call operator `<ext>` is on, and
//! gives the supervisor's leg to that call's actor, which answers it and mixes the audio as
//! for a monitor started from the HTTP API.
//!
//! One [`FeatureCall`] actor per such INVITE owns the supervisor's leg events: when the
//! supervisor hangs up it tells the call, so the call's own caller leg is never confused with
//! the supervisor's.

use super::call::{
    CallActor, CallSeen, JoinDialledMonitor, MonitorError, MonitorLegGone, OnCallWith,
};
use super::Shared;
use crate::accounts::{Role, Tenants};
use crate::recordings::access::{decide_live, Access};
use crate::sip::features::MonitorDial;
use crate::sip::{Admission, CallerLeg, LegEvent, LegMsg};
use crate::store::outbox::StoreRecord;
use crate::store::people::AuditEntry;
use actix::prelude::*;
use std::sync::Arc;
use std::time::Instant;

/// Who dialled the feature code.
#[derive(Clone, Debug)]
enum Listener {
    /// A configured supervisor (`[[operator]] supervisor = true`): every call, every mode.
    Configured,
    /// An account's SIP identity (`navbat user sip`): its role and tenants decide
    /// ([`decide_live`]), and each join is written to the audit log.
    Account {
        username: String,
        role: Role,
        tenants: Tenants,
    },
}

impl Listener {
    /// The `role` label of [`crate::metrics::FEATURE_CODES`].
    fn label(&self) -> &'static str {
        match self {
            Listener::Configured => "config_supervisor",
            Listener::Account {
                role: Role::Supervisor,
                ..
            } => "supervisor",
            Listener::Account {
                role: Role::Officer,
                ..
            } => "officer",
            Listener::Account { .. } => "other",
        }
    }
}

/// The mode as the audit log writes it (as the events do).
fn mode_name(mode: crate::events::MonitorMode) -> &'static str {
    use crate::events::MonitorMode::*;
    match mode {
        Listen => "listen",
        Whisper => "whisper",
        Barge => "barge",
    }
}

fn count(role: &'static str, result: &'static str) {
    metrics::counter!(crate::metrics::FEATURE_CODES, "role" => role, "result" => result)
        .increment(1);
}

/// Whether configured operator `ext` serves a queue of one of `tenants` (as the desk scopes
/// operators: by the queues' languages).
fn operator_serves(shared: &Shared, ext: &str, tenants: &Tenants) -> bool {
    let config = &shared.config;
    let Some(op) = config.operator(ext) else {
        return false;
    };
    config
        .queues
        .iter()
        .filter(|q| tenants.allows(&q.tenant))
        .any(|q| op.languages.iter().any(|l| l == &q.language))
}

/// Decides on an authenticated feature-code INVITE: 403 when the user may not monitor (not a
/// supervisor; an officer asking to whisper or barge), 404 when the extension is not an
/// operator's (or, for an account, not an operator of its tenants: answered alike), 503
/// without a media engine; otherwise the INVITE is taken and a [`FeatureCall`] looks for the
/// operator's call.
pub(super) fn admit(shared: &Arc<Shared>, arbiter: &ArbiterHandle, dial: MonitorDial) -> Admission {
    let reject = |status| Admission::Reject {
        status,
        retry_after: None,
    };
    let listener = match shared.config.operator(&dial.supervisor) {
        Some(o) if o.supervisor => Some(Listener::Configured),
        Some(_) => None,
        None => shared
            .listeners
            .get(&dial.supervisor)
            .map(|i| Listener::Account {
                username: i.username,
                role: i.role,
                tenants: i.tenants,
            }),
    };
    let Some(listener) = listener else {
        tracing::info!(user = %dial.supervisor, "feature code refused: not a supervisor");
        count("other", "wrong_role");
        return reject(403);
    };
    let target_known = shared.config.operator(&dial.code.target).is_some();
    if let Listener::Account { role, tenants, .. } = &listener {
        let serves = target_known && operator_serves(shared, &dial.code.target, tenants);
        match decide_live(*role, dial.code.mode, serves) {
            Access::Allowed => {}
            Access::WrongRole => {
                tracing::info!(user = %dial.supervisor, role = %role, mode = ?dial.code.mode, "feature code refused: not for this role");
                count(listener.label(), "wrong_role");
                return reject(403);
            }
            Access::NotFound => {
                count(listener.label(), "not_found");
                return reject(404);
            }
        }
    }
    if !target_known {
        count(listener.label(), "not_found");
        return reject(404);
    }
    if shared.media.get().is_none() {
        count(listener.label(), "refused");
        return reject(503);
    }
    let shared = shared.clone();
    let arbiter = arbiter.clone();
    Admission::Accept(Box::new(move |leg| {
        FeatureCall::start_in_arbiter(&arbiter, move |_| FeatureCall {
            shared,
            leg,
            dial,
            listener,
            joined: None,
        })
        .recipient()
    }))
}

/// The SIP status for a call that cannot take the supervisor.
fn status_of(e: MonitorError) -> u16 {
    match e {
        MonitorError::UnknownCall | MonitorError::NotTalking | MonitorError::NotRegistered => 480,
        MonitorError::Busy => 486,
        MonitorError::UnknownSupervisor => 404,
        MonitorError::UnusableOffer => 488,
        MonitorError::NoMedia | MonitorError::NoPort => 503,
    }
}

/// One supervisor's feature-code call.
pub struct FeatureCall {
    shared: Arc<Shared>,
    leg: CallerLeg,
    dial: MonitorDial,
    listener: Listener,
    /// The call joined, once it took the supervisor, and since when.
    joined: Option<(Addr<CallActor>, CallSeen, Instant)>,
}

impl FeatureCall {
    /// A line of the audit log for an account's live listen (configured supervisors are not
    /// accounts: their joins are the `monitor_started` events).
    fn audit(&self, action: &str, seen: &CallSeen, detail: String) {
        let Listener::Account { username, role, .. } = &self.listener else {
            return;
        };
        let Some(store) = self.shared.store.as_ref() else {
            return;
        };
        let entry = AuditEntry {
            actor: username.clone(),
            role: Some(role.as_str().to_owned()),
            tenant: Some(seen.tenant.clone()),
            action: action.to_owned(),
            target: Some(store.call_uid(&seen.call)),
            source: self.dial.source_ip.map(|ip| ip.to_string()),
            detail: Some(detail),
        };
        metrics::counter!("navbat_audit_records_total", "action" => action.to_owned()).increment(1);
        let _ = store.record(StoreRecord::Audit(entry));
    }
}

impl Actor for FeatureCall {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let calls = self.shared.live_calls();
        let target = self.dial.code.target.clone();
        let join = JoinDialledMonitor {
            supervisor: self.dial.supervisor.clone(),
            mode: self.dial.code.mode,
            leg: self.leg.clone(),
        };
        let listener = self.listener.clone();
        let mode = self.dial.code.mode;
        async move {
            let mut found = None;
            for call in calls {
                if let Ok(Some(seen)) = call.send(OnCallWith(target.clone())).await {
                    found = Some((call, seen));
                    break;
                }
            }
            let (call, seen) = found.ok_or(MonitorError::NotTalking)?;
            if let Listener::Account { role, tenants, .. } = &listener {
                // Another tenant's call is answered as no call at all (480).
                if decide_live(*role, mode, tenants.allows(&seen.tenant)) != Access::Allowed {
                    return Err(MonitorError::NotTalking);
                }
            }
            match call.send(join).await {
                Ok(Ok(())) => Ok((call, seen)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(MonitorError::UnknownCall),
            }
        }
        .into_actor(self)
        .map(|result, act, ctx| match result {
            Ok((call, seen)) => {
                count(act.listener.label(), "joined");
                act.audit(
                    "live_listen",
                    &seen,
                    format!(
                        "{}; softphone {} ({}); operator {}; call {}",
                        mode_name(act.dial.code.mode),
                        act.dial.supervisor,
                        act.dial.source.as_deref().unwrap_or("-"),
                        act.dial.code.target,
                        seen.call
                    ),
                );
                act.joined = Some((call, seen, Instant::now()));
            }
            Err(e) => {
                tracing::info!(
                    supervisor = %act.dial.supervisor,
                    target = %act.dial.code.target,
                    error = %e,
                    "feature code refused"
                );
                let result = match e {
                    MonitorError::NotTalking | MonitorError::UnknownCall => "not_found",
                    _ => "refused",
                };
                count(act.listener.label(), result);
                act.leg.reject(status_of(e));
                ctx.stop();
            }
        })
        .wait(ctx);
    }
}

impl Handler<LegMsg> for FeatureCall {
    type Result = ();

    fn handle(&mut self, msg: LegMsg, ctx: &mut Context<Self>) {
        if let LegEvent::CallerGone { .. } = msg.0 {
            if let Some((call, seen, since)) = self.joined.take() {
                call.do_send(MonitorLegGone {
                    supervisor: self.dial.supervisor.clone(),
                });
                let secs = since.elapsed().as_secs();
                self.audit(
                    "live_listen_end",
                    &seen,
                    format!(
                        "{}; softphone {}; operator {}; call {}; {secs} s",
                        mode_name(self.dial.code.mode),
                        self.dial.supervisor,
                        self.dial.code.target,
                        seen.call
                    ),
                );
            }
            ctx.stop();
        }
    }
}
