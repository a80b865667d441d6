//! Listen-in (D17): the decisions about a supervisor on a call.
//!
//! A supervisor listens, whispers or barges into a conversation: rung by navbat (the HTTP
//! API or the desk; their softphone answers like an operator's) or dialling a feature code
//! for the operator's call. One supervisor per call; asking again with another mode changes
//! the mode. The driver (`actors::call::listen`) finds the supervisor's phone, allocates the
//! port and answers or rings the leg; the core decides who may join, when they are in, and
//! when they are out.

use super::core::CallCore;
use super::types::{Action, Attempt};
use crate::events::EventKind;
use crate::media::MonitorMode;

/// The supervisor on a call.
#[derive(Debug, Clone)]
pub(super) struct Monitor {
    /// Their ringing (`None`: they dialled in by feature code).
    attempt: Option<Attempt>,
    ext: String,
    mode: MonitorMode,
    /// Their leg is in the media.
    pub(super) answered: bool,
}

/// Why a supervisor cannot join a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    /// No such call in progress.
    #[error("no such call in progress")]
    UnknownCall,
    /// The call is not (yet) between a caller and an operator.
    #[error("the call is not in conversation with an operator")]
    NotTalking,
    /// Another supervisor is on the call.
    #[error("another supervisor is already on this call")]
    Busy,
    /// The supervisor's extension is not configured.
    #[error("no operator with that extension; supervisors use their operator extension")]
    UnknownSupervisor,
    /// The supervisor's softphone is not registered.
    #[error("the supervisor's softphone is not registered")]
    NotRegistered,
    /// The media engine is not running.
    #[error("the media engine is not running")]
    NoMedia,
    /// No RTP port is free.
    #[error("no free RTP port")]
    NoPort,
    /// The supervisor's phone offered no SDP we can answer (G.711 over RTP/AVP).
    #[error("the supervisor's SDP offer has no usable audio")]
    UnusableOffer,
}

/// What to do about a supervisor's request to be rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorPlan {
    /// They were on the call already: only the mode changed.
    ModeChanged,
    /// Ring their phone: find it, take [`CallCore::take_monitor_attempt`], ring, then
    /// [`CallCore::monitor_ringing`].
    Ring,
}

impl CallCore {
    /// A supervisor asks to be rung onto this call in `mode`.
    pub fn plan_monitor(
        &mut self,
        supervisor: &str,
        mode: MonitorMode,
    ) -> Result<MonitorPlan, MonitorError> {
        if !self.is_talking() {
            return Err(MonitorError::NotTalking);
        }
        let Some(m) = self.monitor.as_mut() else {
            return Ok(MonitorPlan::Ring);
        };
        if m.ext != supervisor {
            return Err(MonitorError::Busy);
        }
        m.mode = mode;
        if m.answered {
            self.actions.push_back(Action::SetMonitorMode(mode));
        }
        Ok(MonitorPlan::ModeChanged)
    }

    /// The number of the supervisor's ringing (taken even if the ringing then fails, like
    /// an operator's).
    pub fn take_monitor_attempt(&mut self) -> Attempt {
        self.take_attempt()
    }

    /// The supervisor's phone rings as `attempt`.
    pub fn monitor_ringing(&mut self, attempt: Attempt, supervisor: String, mode: MonitorMode) {
        self.monitor = Some(Monitor {
            attempt: Some(attempt),
            ext: supervisor,
            mode,
            answered: false,
        });
    }

    /// Whether a supervisor who dialled in may join now.
    pub fn check_dialled_monitor(&self) -> Result<(), MonitorError> {
        if !self.is_talking() {
            return Err(MonitorError::NotTalking);
        }
        if self.monitor.is_some() {
            return Err(MonitorError::Busy);
        }
        Ok(())
    }

    /// A supervisor who dialled in was answered and mixed in.
    pub fn monitor_joined(&mut self, supervisor: String, mode: MonitorMode) {
        self.emit(EventKind::MonitorStarted {
            call: self.call_ref().to_string(),
            supervisor: supervisor.clone(),
            mode,
        });
        self.monitor = Some(Monitor {
            attempt: None,
            ext: supervisor,
            mode,
            answered: true,
        });
    }

    /// `attempt` answered: if it is the supervisor's ringing, mix them in. Returns whether
    /// it was.
    pub(super) fn monitor_answered(&mut self, attempt: Attempt, sdp: &Option<String>) -> bool {
        let Some(m) = self.monitor.as_mut().filter(|m| m.attempt == Some(attempt)) else {
            return false;
        };
        m.answered = true;
        let (ext, mode) = (m.ext.clone(), m.mode);
        self.actions.push_back(Action::MonitorAnswered {
            attempt,
            sdp: sdp.clone(),
            mode,
        });
        self.emit(EventKind::MonitorStarted {
            call: self.call_ref().to_string(),
            supervisor: ext,
            mode,
        });
        true
    }

    /// `attempt` failed or hung up: if it is the supervisor's ringing, they are out.
    /// Returns whether it was.
    pub(super) fn monitor_ended(&mut self, attempt: Attempt) -> bool {
        let theirs = self
            .monitor
            .as_ref()
            .is_some_and(|m| m.attempt == Some(attempt));
        if !theirs {
            return false;
        }
        self.monitor = None;
        self.actions.push_back(Action::EndMonitor);
        true
    }

    pub(super) fn on_dialled_monitor_gone(&mut self, supervisor: &str) {
        let dialled = self
            .monitor
            .as_ref()
            .is_some_and(|m| m.ext == supervisor && m.attempt.is_none());
        if dialled {
            self.monitor = None;
            self.actions.push_back(Action::EndMonitor);
        }
    }
}
