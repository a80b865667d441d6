//! REGISTER: digest authentication and contact bindings (RFC 3261 §10).
//!
//! The registrar authenticates and reports bindings to the application; the
//! bindings themselves live with the operators (OperatorActor / presence).

use super::digest::{self, NonceCheck, NonceSigner};
use super::{ContactBinding, SipApplication, SipCounters, SipSettings};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, StatusCode};
use rsipstack::transaction::Transaction;
use rsipstack::transport::{SipAddr, SipConnection};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// At most this many failed REGISTERs a second are logged and reported as events; the rest
/// are counted (`auth_failures`) and summed up in one line, so a guessing flood cannot flood
/// the log, the journal and the database too.
const FAILURE_REPORTS_PER_SEC: u32 = 20;

/// A failed REGISTER, for the log and the event feed (what an administrator or fail2ban
/// looks for): which account, from where, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterFailure {
    /// The account tried: a configured extension in full, anything else masked (a guess may be
    /// somebody's phone number, D18).
    pub account: String,
    /// Whether the account exists.
    pub known: bool,
    /// Where the REGISTER came from (`udp 203.0.113.5:5060`: the packet's source).
    pub source: String,
    /// "wrong password", "unknown account", "wrong realm" or "account differs from To".
    pub reason: &'static str,
}

/// Lets [`FAILURE_REPORTS_PER_SEC`] reports through per one-second window.
#[derive(Debug)]
struct ReportBudget {
    window: Instant,
    used: u32,
    suppressed: u64,
}

impl ReportBudget {
    /// Whether this failure may be reported; at the start of a window, how many were not.
    fn take(&mut self, now: Instant) -> (bool, u64) {
        let mut untold = 0;
        if now.duration_since(self.window).as_secs() >= 1 {
            untold = std::mem::take(&mut self.suppressed);
            self.window = now;
            self.used = 0;
        }
        if self.used < FAILURE_REPORTS_PER_SEC {
            self.used += 1;
            (true, untold)
        } else {
            self.suppressed += 1;
            (false, untold)
        }
    }
}

pub(super) struct Registrar {
    settings: SipSettings,
    nonces: NonceSigner,
    app: Arc<dyn SipApplication>,
    counters: Arc<SipCounters>,
    /// Compared against when the user is unknown, so both paths do the same work.
    decoy_ha1: String,
    reports: Mutex<ReportBudget>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The Contact URI and `expires` parameter of a Contact header value.
pub(super) fn parse_contact(value: &str) -> Option<(String, Option<u32>)> {
    let value = value.trim();
    if value == "*" {
        return Some(("*".into(), None));
    }
    let (uri, params) = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => (value[a + 1..b].to_string(), &value[b + 1..]),
        _ => match value.split_once(';') {
            Some((u, p)) => (u.trim().to_string(), p),
            None => (value.to_string(), ""),
        },
    };
    let expires = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("expires") {
            v.trim().parse().ok()
        } else {
            None
        }
    });
    Some((uri, expires))
}

impl Registrar {
    pub(super) fn new(
        settings: SipSettings,
        nonces: NonceSigner,
        app: Arc<dyn SipApplication>,
        counters: Arc<SipCounters>,
    ) -> Registrar {
        let decoy_ha1 = digest::ha1(
            "decoy",
            &settings.realm,
            &hex::encode(rand::random::<[u8; 16]>()),
        );
        Registrar {
            settings,
            nonces,
            app,
            counters,
            decoy_ha1,
            reports: Mutex::new(ReportBudget {
                window: Instant::now(),
                used: 0,
                suppressed: 0,
            }),
        }
    }

    /// Logs a failed REGISTER and reports it to the application, within the budget.
    fn failed(
        &self,
        req: &rsipstack::sip::Request,
        account: &str,
        known: bool,
        reason: &'static str,
    ) {
        let (report, untold) = self
            .reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(Instant::now());
        if untold > 0 {
            tracing::warn!(
                failures = untold,
                "REGISTER authentication failures not logged one by one in the last second"
            );
        }
        if !report {
            return;
        }
        let failure = RegisterFailure {
            account: if known {
                account.to_owned()
            } else {
                crate::privacy::PhoneNumber::new(account).masked()
            },
            known,
            source: source_of(req)
                .map(|s| s.to_string().to_ascii_lowercase())
                .unwrap_or_else(|| "unknown".to_owned()),
            reason,
        };
        tracing::warn!(
            account = %failure.account,
            source = %failure.source,
            reason = failure.reason,
            "REGISTER authentication failed"
        );
        self.app.registration_failed(failure);
    }

    async fn challenge(&self, tx: &mut Transaction, stale: bool) {
        let nonce = self.nonces.issue(now_secs());
        let value = digest::challenge(&self.settings.realm, &nonce, stale);
        let _ = tx
            .reply_with(
                StatusCode::Unauthorized,
                vec![Header::WwwAuthenticate(value.into())],
                None,
            )
            .await;
    }

    pub(super) async fn handle(&self, mut tx: Transaction) {
        let req = tx.original.clone();
        let aor_user = req
            .to_header()
            .ok()
            .and_then(|t| t.uri().ok())
            .and_then(|u| u.user().map(str::to_string))
            .unwrap_or_default();
        let Some(creds) = req
            .header_value("Authorization")
            .and_then(|v| digest::parse_authorization(&v))
        else {
            self.challenge(&mut tx, false).await;
            return;
        };
        match self.nonces.check(&creds.nonce, now_secs()) {
            NonceCheck::Invalid => {
                self.challenge(&mut tx, false).await;
                return;
            }
            NonceCheck::Stale => {
                self.challenge(&mut tx, true).await;
                return;
            }
            NonceCheck::Valid => {}
        }
        let known = self.app.credentials(&creds.username);
        let ha1 = known.clone().unwrap_or_else(|| self.decoy_ha1.clone());
        let good = digest::verify(&ha1, "REGISTER", &creds)
            && known.is_some()
            && creds.realm == self.settings.realm;
        if !good {
            // Same challenge for unknown users and wrong passwords.
            self.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
            let reason = match (known.is_some(), creds.realm == self.settings.realm) {
                (false, _) => "unknown account",
                (true, false) => "wrong realm",
                (true, true) => "wrong password",
            };
            self.failed(&req, &creds.username, known.is_some(), reason);
            self.challenge(&mut tx, false).await;
            return;
        }
        if creds.username != aor_user {
            self.failed(&req, &creds.username, true, "account differs from To");
            let _ = tx.reply(StatusCode::Forbidden).await;
            return;
        }
        let ext = creds.username;
        let header_expires: Option<u32> = req
            .header_value("Expires")
            .and_then(|v| v.trim().parse().ok());
        let contact_value = req.header_value("Contact");
        let Some(contact_value) = contact_value else {
            // A query: no bindings are listed (they live with the operator).
            let _ = tx.reply(StatusCode::OK).await;
            return;
        };
        let Some((uri, contact_expires)) = parse_contact(&contact_value) else {
            let _ = tx.reply(StatusCode::BadRequest).await;
            return;
        };
        let expires = contact_expires.or(header_expires).unwrap_or(3600);
        if uri == "*" || expires == 0 {
            self.app.unregistered(&ext);
            let _ = tx.reply(StatusCode::OK).await;
            return;
        }
        let min = self.settings.register_min_expires.as_secs() as u32;
        let max = self.settings.register_max_expires.as_secs() as u32;
        if expires < min {
            let _ = tx
                .reply_with(
                    StatusCode::IntervalTooBrief,
                    vec![Header::MinExpires(min.to_string().into())],
                    None,
                )
                .await;
            return;
        }
        let granted = expires.min(max);
        let Ok(contact) = rsipstack::sip::Uri::try_from(uri.clone()) else {
            let _ = tx.reply(StatusCode::BadRequest).await;
            return;
        };
        let target = source_of(&req).map(|source| choose_target(&contact, source));
        let Some(target) = target else {
            let _ = tx.reply(StatusCode::BadRequest).await;
            return;
        };
        let binding = ContactBinding {
            uri: uri.clone(),
            source: target.to_string(),
            target,
            contact,
        };
        self.app.registered(&ext, binding, granted);
        self.counters.registrations.fetch_add(1, Ordering::Relaxed);
        let _ = tx
            .reply_with(
                StatusCode::OK,
                vec![
                    Header::Contact(format!("<{uri}>;expires={granted}").into()),
                    Header::Expires(granted.to_string().into()),
                ],
                None,
            )
            .await;
    }
}

/// Where a request came from: its top Via with the `received` and `rport` the transport
/// layer wrote from the packet's real source.
fn source_of(req: &rsipstack::sip::Request) -> Option<SipAddr> {
    req.via_header()
        .ok()
        .and_then(|v| SipConnection::parse_target_from_via(v).ok())
        .map(|(t, hp)| SipAddr {
            r#type: Some(t),
            addr: hp,
        })
}

/// Where to send requests for a binding. The Contact is used when its host
/// is the address the REGISTER came from (the phone knows its own port, and a
/// softphone may register from one port and listen on another); otherwise the
/// phone is behind NAT and the source address is the only one that works.
fn choose_target(contact: &rsipstack::sip::Uri, source: SipAddr) -> SipAddr {
    let same_host = contact.host_with_port.host.to_string() == source.addr.host.to_string();
    if same_host {
        let transport = contact
            .params
            .iter()
            .find_map(|p| match p {
                rsipstack::sip::Param::Transport(t) => Some(*t),
                _ => None,
            })
            .or(source.r#type);
        SipAddr {
            r#type: transport,
            addr: contact.host_with_port.clone(),
        }
    } else {
        source
    }
}

#[cfg(test)]
mod tests {
    use super::parse_contact;

    #[test]
    fn contact_forms() {
        assert_eq!(
            parse_contact("<sip:1001@127.0.0.1:5070>;expires=60"),
            Some(("sip:1001@127.0.0.1:5070".into(), Some(60)))
        );
        assert_eq!(
            parse_contact("\"Op\" <sip:1001@h;transport=tcp>"),
            Some(("sip:1001@h;transport=tcp".into(), None))
        );
        assert_eq!(
            parse_contact("sip:1001@h;expires=0"),
            Some(("sip:1001@h".into(), Some(0)))
        );
        assert_eq!(parse_contact("*"), Some(("*".into(), None)));
    }
}
