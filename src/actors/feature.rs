//! A supervisor's feature-code call (D17): `*51<ext>` listen, `*52<ext>` whisper, `*53<ext>`
//! barge (see [`crate::sip::features`]). The SIP layer has authenticated the INVITE; here
//! navbat checks the supervisor may monitor, finds the live call operator `<ext>` is on, and
//! gives the supervisor's leg to that call's actor, which answers it and mixes the audio as
//! for a monitor started from the HTTP API.
//!
//! One [`FeatureCall`] actor per such INVITE owns the supervisor's leg events: when the
//! supervisor hangs up it tells the call, so the call's own caller leg is never confused with
//! the supervisor's.

use super::call::{CallActor, JoinDialledMonitor, MonitorError, MonitorLegGone, OnCallWith};
use super::Shared;
use crate::sip::features::MonitorDial;
use crate::sip::{Admission, CallerLeg, LegEvent, LegMsg};
use actix::prelude::*;
use std::sync::Arc;

/// Decides on an authenticated feature-code INVITE: 403 when the user is not a supervisor,
/// 404 when the extension is not an operator's, 503 without a media engine; otherwise the
/// INVITE is taken and a [`FeatureCall`] looks for the operator's call.
pub(super) fn admit(shared: &Arc<Shared>, arbiter: &ArbiterHandle, dial: MonitorDial) -> Admission {
    let reject = |status| Admission::Reject {
        status,
        retry_after: None,
    };
    let allowed = shared
        .config
        .operator(&dial.supervisor)
        .is_some_and(|o| o.supervisor);
    if !allowed {
        tracing::info!(user = %dial.supervisor, "feature code refused: not a supervisor");
        return reject(403);
    }
    if shared.config.operator(&dial.code.target).is_none() {
        return reject(404);
    }
    if shared.media.get().is_none() {
        return reject(503);
    }
    let shared = shared.clone();
    let arbiter = arbiter.clone();
    Admission::Accept(Box::new(move |leg| {
        FeatureCall::start_in_arbiter(&arbiter, move |_| FeatureCall {
            shared,
            leg,
            dial,
            call: None,
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
    /// The call joined, once it took the supervisor.
    call: Option<Addr<CallActor>>,
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
        async move {
            let mut found = None;
            for call in calls {
                if let Ok(true) = call.send(OnCallWith(target.clone())).await {
                    found = Some(call);
                    break;
                }
            }
            let call = found.ok_or(MonitorError::NotTalking)?;
            match call.send(join).await {
                Ok(Ok(())) => Ok(call),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(MonitorError::UnknownCall),
            }
        }
        .into_actor(self)
        .map(|result, act, ctx| match result {
            Ok(call) => act.call = Some(call),
            Err(e) => {
                tracing::info!(
                    supervisor = %act.dial.supervisor,
                    target = %act.dial.code.target,
                    error = %e,
                    "feature code refused"
                );
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
            if let Some(call) = self.call.take() {
                call.do_send(MonitorLegGone {
                    supervisor: self.dial.supervisor.clone(),
                });
            }
            ctx.stop();
        }
    }
}
