//! Listen-in (D17), the driver's side: a supervisor rung by navbat (HTTP API, desk) or
//! dialling a feature code joins a conversation to listen, whisper or barge. Who may join
//! and when they are in or out is the call core's decision (`call::monitor`); this file
//! finds the supervisor's phone, allocates the port, rings or answers the leg and mixes it
//! into the media session.

use super::{leg_spec, CallActor};
use crate::call::{Input, MonitorError, MonitorPlan};
use crate::media::{LegSpec, MediaCommand, MonitorMode};
use crate::sip::{sdp, CallerLeg, LegMsg, OperatorLeg};
use actix::prelude::*;

/// How the supervisor came: rung by navbat (HTTP API) or dialling a feature code.
pub(super) enum MonitorLeg {
    Rung(OperatorLeg),
    Dialled(CallerLeg),
}

impl MonitorLeg {
    pub(super) fn hangup(&self) {
        match self {
            MonitorLeg::Rung(l) => l.hangup(),
            MonitorLeg::Dialled(l) => l.hangup(),
        }
    }
}

/// A supervisor asks to listen to, whisper to or barge into this call (D17).
#[derive(Message, Debug)]
#[rtype(result = "Result<(), MonitorError>")]
pub struct StartMonitor {
    /// The supervisor's extension (their softphone is rung).
    pub supervisor: String,
    /// What they do.
    pub mode: MonitorMode,
}

impl Handler<StartMonitor> for CallActor {
    type Result = Result<(), MonitorError>;

    fn handle(&mut self, msg: StartMonitor, ctx: &mut Context<Self>) -> Self::Result {
        let result = self.start_monitor(msg.supervisor, msg.mode, ctx);
        self.drive(ctx);
        result
    }
}

/// A supervisor dialled a feature code for this call's operator (D17): answer their leg and
/// mix them in.
#[derive(Message)]
#[rtype(result = "Result<(), MonitorError>")]
pub struct JoinDialledMonitor {
    /// The supervisor's (authenticated) extension.
    pub supervisor: String,
    /// What they do.
    pub mode: MonitorMode,
    /// Their leg, not yet answered.
    pub leg: CallerLeg,
}

impl Handler<JoinDialledMonitor> for CallActor {
    type Result = Result<(), MonitorError>;

    fn handle(&mut self, msg: JoinDialledMonitor, ctx: &mut Context<Self>) -> Self::Result {
        let result = self.join_dialled_monitor(msg);
        self.drive(ctx);
        result
    }
}

/// The supervisor who dialled in hung up.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MonitorLegGone {
    /// Their extension.
    pub supervisor: String,
}

impl Handler<MonitorLegGone> for CallActor {
    type Result = ();

    fn handle(&mut self, msg: MonitorLegGone, ctx: &mut Context<Self>) {
        self.feed(
            Input::DialledMonitorGone {
                supervisor: msg.supervisor,
            },
            ctx,
        );
    }
}

impl CallActor {
    /// Rings a supervisor to listen, whisper or barge; changes the mode when they are on
    /// the call already.
    fn start_monitor(
        &mut self,
        ext: String,
        mode: MonitorMode,
        ctx: &mut Context<Self>,
    ) -> Result<(), MonitorError> {
        if self.core.plan_monitor(&ext, mode)? == MonitorPlan::ModeChanged {
            return Ok(());
        }
        let op = self
            .shared
            .model
            .operator(&ext)
            .ok_or(MonitorError::UnknownSupervisor)?;
        let binding = self
            .shared
            .presence
            .binding(op)
            .ok_or(MonitorError::NotRegistered)?;
        let sip = self.shared.sip.get().ok_or(MonitorError::NoMedia)?;
        if self.session.is_none() {
            return Err(MonitorError::NoMedia);
        }
        let port = self
            .shared
            .ports
            .allocate()
            .map_err(|_| MonitorError::NoPort)?;
        let attempt = self.core.take_monitor_attempt();
        let offer = sdp::offer(
            self.shared.config.media.rtp_ip,
            port.addr().port(),
            self.id.0 * 1000 + attempt.0,
        );
        let recipient = ctx.address().recipient::<LegMsg>();
        let leg = sip
            .call_operator(&binding, &self.caller, offer, attempt.0, recipient)
            .map_err(|_| MonitorError::NotRegistered)?;
        self.core.monitor_ringing(attempt, ext, mode);
        self.monitor_leg = Some(MonitorLeg::Rung(leg));
        self.monitor_port = Some(port);
        Ok(())
    }

    /// The supervisor's rung phone answered: their leg joins the media session.
    pub(super) fn monitor_answered(&mut self, sdp: Option<String>, mode: MonitorMode) {
        if let (Some(port), Some(session)) = (self.monitor_port.take(), &self.session) {
            session.send(MediaCommand::Monitor {
                leg: leg_spec(port, sdp.as_deref()),
                mode,
            });
        }
    }

    /// Answers a supervisor's feature-code INVITE with our SDP and adds their leg to the
    /// media session in `mode`.
    fn join_dialled_monitor(&mut self, msg: JoinDialledMonitor) -> Result<(), MonitorError> {
        self.core.check_dialled_monitor()?;
        let session = self.session.as_ref().ok_or(MonitorError::NoMedia)?;
        let offer = msg
            .leg
            .remote_offer()
            .and_then(sdp::parse)
            .ok_or(MonitorError::UnusableOffer)?;
        let port = self
            .shared
            .ports
            .allocate()
            .map_err(|_| MonitorError::NoPort)?;
        let (body, codec) = sdp::answer(
            &offer,
            self.shared.config.media.rtp_ip,
            port.addr().port(),
            self.id.0 * 1000 + 999,
        )
        .ok_or(MonitorError::UnusableOffer)?;
        msg.leg.answer(body).map_err(|e| {
            tracing::debug!(call = %self.call_ref, error = %e, "supervisor answer failed");
            MonitorError::NoMedia
        })?;
        session.send(MediaCommand::Monitor {
            leg: LegSpec {
                port,
                remote: offer.addr(),
                codec,
                telephone_event: offer.telephone_event,
            },
            mode: msg.mode,
        });
        self.core.monitor_joined(msg.supervisor, msg.mode);
        self.monitor_leg = Some(MonitorLeg::Dialled(msg.leg));
        Ok(())
    }
}
