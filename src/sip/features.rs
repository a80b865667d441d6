//! Feature codes dialled from a softphone (D17): a supervisor dials `*51<ext>` to listen to,
//! `*52<ext>` to whisper to, or `*53<ext>` to barge into the call that operator `<ext>` is
//! on, and navbat answers and mixes them into that call's audio.
//!
//! Such an INVITE is authenticated like a REGISTER (digest, RFC 3261 §22; here with a 407
//! challenge and `Proxy-Authorization`, as a registrar-proxy does for INVITE, same realm and
//! credentials); the application then decides ([`SipApplication::admit_monitor`]) whether
//! the user may monitor and which call it joins. Refusals are plain SIP answers: 403 (not a
//! supervisor), 404 (no such extension), 480 (the operator is not on a call), 486 (another
//! supervisor is already there).

use super::authenticate::{Authenticator, Checked};
use super::{Admission, Decision, SipApplication, SipCounters};
use crate::media::MonitorMode;
use rsipstack::sip::prelude::HeadersExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Dialled before an extension: listen (hears both sides; nobody hears the supervisor).
pub const LISTEN: &str = "*51";
/// Dialled before an extension: whisper (only the operator hears the supervisor).
pub const WHISPER: &str = "*52";
/// Dialled before an extension: barge (three-way).
pub const BARGE: &str = "*53";

/// A parsed feature code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureCode {
    /// What the supervisor does.
    pub mode: MonitorMode,
    /// The operator's extension whose call is joined.
    pub target: String,
}

/// A supervisor's authenticated feature-code INVITE, for the application to decide on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorDial {
    /// The authenticated extension that dialled.
    pub supervisor: String,
    /// What was dialled.
    pub code: FeatureCode,
    /// Where the INVITE came from (`udp 203.0.113.5:5060`), for the audit log.
    pub source: Option<String>,
    /// Its address alone.
    pub source_ip: Option<std::net::IpAddr>,
}

/// The feature code in a dialled number, if it is one. `*` may arrive escaped (`%2A`).
pub fn parse(dialled: &str) -> Option<FeatureCode> {
    let dialled = dialled.trim();
    let (prefix, target) = if let Some(rest) = strip_star(dialled) {
        (rest.get(..2)?, rest.get(2..)?)
    } else {
        return None;
    };
    let mode = match prefix {
        "51" => MonitorMode::Listen,
        "52" => MonitorMode::Whisper,
        "53" => MonitorMode::Barge,
        _ => return None,
    };
    let plausible = !target.is_empty()
        && target.len() <= 32
        && target.bytes().all(|b| b.is_ascii_alphanumeric());
    plausible.then(|| FeatureCode {
        mode,
        target: target.to_string(),
    })
}

fn strip_star(s: &str) -> Option<&str> {
    s.strip_prefix('*').or_else(|| {
        s.get(..3)
            .filter(|p| p.eq_ignore_ascii_case("%2a"))
            .map(|_| &s[3..])
    })
}

/// Authenticates feature-code INVITEs and hands them to the application.
pub(super) struct FeatureDoor {
    auth: Arc<Authenticator>,
    counters: Arc<SipCounters>,
}

impl FeatureDoor {
    pub(super) fn new(auth: Arc<Authenticator>, counters: Arc<SipCounters>) -> Self {
        FeatureDoor { auth, counters }
    }

    /// Decides on a feature-code INVITE: a challenge until its digest is right, a refusal
    /// for a banned or throttled account or source, else the application's decision on the
    /// dial. The same for a datagram on navbat's own transactions and for a stream on
    /// rsipstack's.
    pub(super) fn decide(
        &self,
        req: &rsipstack::sip::Request,
        code: FeatureCode,
        app: &dyn SipApplication,
    ) -> Decision {
        let header = if req.header_value("Proxy-Authorization").is_some() {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        let supervisor = match self.auth.check(req, header, "INVITE") {
            Checked::Authenticated { user } => user,
            Checked::Challenge { stale } => {
                return Decision::Challenge {
                    offers: self.auth.challenge(req, stale),
                }
            }
            Checked::Failed => {
                return Decision::Challenge {
                    offers: self.auth.challenge(req, false),
                }
            }
            Checked::Banned => {
                return Decision::Reject {
                    status: 403,
                    retry_after: None,
                }
            }
            Checked::Throttled { retry_after_secs } => {
                return Decision::Reject {
                    status: 503,
                    retry_after: Some(retry_after_secs),
                }
            }
        };
        let from = super::authenticate::source_of(req);
        let dial = MonitorDial {
            supervisor,
            code,
            source: from.as_ref().map(|s| s.to_string().to_ascii_lowercase()),
            source_ip: from.as_ref().and_then(super::authenticate::source_ip),
        };
        match app.admit_monitor(dial) {
            Admission::Reject {
                status,
                retry_after,
            } => {
                self.counters
                    .invites_rejected
                    .fetch_add(1, Ordering::Relaxed);
                Decision::Reject {
                    status,
                    retry_after,
                }
            }
            Admission::Accept(start) => Decision::Accept {
                start,
                ticket: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_codes() {
        assert_eq!(
            parse("*511001"),
            Some(FeatureCode {
                mode: MonitorMode::Listen,
                target: "1001".into()
            })
        );
        assert_eq!(parse("*521001").unwrap().mode, MonitorMode::Whisper);
        assert_eq!(parse("%2A531001").unwrap().mode, MonitorMode::Barge);
        assert_eq!(parse("*53"), None);
        assert_eq!(parse("*541001"), None);
        assert_eq!(parse("712351914"), None);
        assert_eq!(parse("*51 1001"), None);
        assert_eq!(parse("*5"), None);
        assert_eq!(parse("*"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("*51\u{e9}"), None);
        assert_eq!(parse(&format!("*51{}", "1".repeat(33))), None);
    }
}
