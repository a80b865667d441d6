//! One digest check for every door that asks for credentials: the registrar (REGISTER, 401)
//! and the supervisors' feature codes (INVITE, 407). It applies the rules of [`super::auth`]
//! around the arithmetic of [`super::digest`], logs and reports each failure (rate-limited),
//! and counts everything in [`SipCounters`].

use super::auth::{Admit, AuthGuard, AuthPolicy};
use super::digest::{self, Algorithm, NonceCheck, NonceSigner};
use super::{SipApplication, SipCounters};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::transport::{SipAddr, SipConnection};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// At most this many failed authentications a second are logged and reported as events; the
/// rest are counted (`auth_failures`) and summed up in one line, so a guessing flood cannot
/// flood the log, the journal and the database too.
const FAILURE_REPORTS_PER_SEC: u32 = 20;

/// A failed authentication, for the log and the event feed (what an administrator or
/// fail2ban looks for): which account, from where, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// "REGISTER" or "INVITE" (a supervisor's feature code).
    pub method: &'static str,
    /// The account tried: a configured extension in full, anything else masked (a guess may
    /// be somebody's phone number, D18).
    pub account: String,
    /// Whether the account exists.
    pub known: bool,
    /// Where the request came from (`udp 203.0.113.5:5060`: the packet's source).
    pub source: String,
    /// Why: "wrong password", "unknown account", "wrong realm", "replayed nonce count",
    /// "no qop=auth", "digest uri is not the Request-URI", "account differs from To",
    /// "source banned" (the ban starts), "account throttled" (the delay starts).
    pub reason: &'static str,
}

/// The outcome of [`Authenticator::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// No usable credentials, or a nonce not ours or out of date: challenge (again).
    Challenge {
        /// The nonce was ours but old (`stale=true`: the client retries without asking).
        stale: bool,
    },
    /// The credentials are wrong (already logged and counted): challenge again.
    Failed,
    /// The source is banned: refuse without checking (403).
    Banned,
    /// The account must wait: refuse without checking (503 with Retry-After).
    Throttled {
        /// Seconds until the next attempt is checked.
        retry_after_secs: u32,
    },
    /// Good credentials for this account.
    Authenticated {
        /// The user name.
        user: String,
    },
}

/// Per-second budget of failure reports.
#[derive(Debug)]
struct ReportBudget {
    window: Instant,
    used: u32,
    suppressed: u64,
}

/// Checks digest credentials; shared by the registrar and the feature-code door.
pub(super) struct Authenticator {
    realm: String,
    nonces: NonceSigner,
    guard: Mutex<AuthGuard>,
    app: Arc<dyn SipApplication>,
    counters: Arc<SipCounters>,
    /// Compared against when the user is unknown, so both paths do the same work.
    decoy_ha1: String,
    /// The same for a SHA-256 response.
    decoy_ha1_sha256: String,
    reports: Mutex<ReportBudget>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Authenticator {
    pub(super) fn new(
        realm: String,
        nonces: NonceSigner,
        policy: AuthPolicy,
        app: Arc<dyn SipApplication>,
        counters: Arc<SipCounters>,
    ) -> Authenticator {
        let decoy_password = hex::encode(rand::random::<[u8; 16]>());
        let decoy_ha1 = digest::ha1("decoy", &realm, &decoy_password);
        let decoy_ha1_sha256 = digest::ha1_sha256("decoy", &realm, &decoy_password);
        Authenticator {
            decoy_ha1_sha256,
            realm,
            nonces,
            guard: Mutex::new(AuthGuard::new(policy)),
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

    /// A fresh challenge's `WWW-Authenticate` / `Proxy-Authenticate` value for `req`. The
    /// nonce is bound to the request's source address: an answer sent from another address
    /// (a forged packet meant to get an office banned) is not checked, only challenged.
    ///
    /// SHA-256 (RFC 7616) is offered first, beside MD5, to every user alike while the
    /// operators have SHA-256 HA1s (all or none, checked with the config), so the offer does
    /// not tell which users exist.
    pub(super) fn challenge(&self, req: &rsipstack::sip::Request, stale: bool) -> Vec<String> {
        let now_secs = now_ms() / 1000;
        let ip = source_of(req).as_ref().and_then(source_ip);
        let nonce = self.nonces.issue(now_secs, ip);
        let mut offers = Vec::with_capacity(2);
        if self.app.offers_sha256() {
            offers.push(digest::challenge_with(
                Algorithm::Sha256,
                &self.realm,
                &nonce,
                stale,
            ));
        }
        offers.push(digest::challenge(&self.realm, &nonce, stale));
        offers
    }

    /// Checks the credentials in header `header` of `req` for `method`.
    pub(super) fn check(
        &self,
        req: &rsipstack::sip::Request,
        header: &str,
        method: &'static str,
    ) -> Checked {
        let now = now_ms();
        let source = source_of(req);
        let source_ip = source.as_ref().and_then(source_ip);
        if let Some(ip) = source_ip {
            if self.guard().banned(now, ip).is_some() {
                self.counters.auth_refused.fetch_add(1, Ordering::Relaxed);
                return Checked::Banned;
            }
        }
        // A client answering both challenges sends one header for each: SHA-256 is checked
        // when among them.
        let all: Vec<digest::DigestCredentials> = req
            .headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(header))
            .filter_map(|h| digest::parse_authorization(h.value().trim()))
            .collect();
        let chosen = all
            .iter()
            .position(|c| Algorithm::of(c) == Some(Algorithm::Sha256))
            .unwrap_or(0);
        let Some(creds) = all.into_iter().nth(chosen) else {
            return Checked::Challenge { stale: false };
        };
        let algorithm = Algorithm::of(&creds).unwrap_or(Algorithm::Md5);
        match self.nonces.check(&creds.nonce, now / 1000, source_ip) {
            NonceCheck::Invalid => return Checked::Challenge { stale: false },
            NonceCheck::Stale => return Checked::Challenge { stale: true },
            NonceCheck::Valid => {}
        }
        // Attempts whose source cannot be told (no usable Via) are checked under one address.
        let ip = source_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        match self.guard().admit(now, ip, &creds.username) {
            Admit::Check => {}
            Admit::SourceBanned { .. } => {
                self.counters.auth_refused.fetch_add(1, Ordering::Relaxed);
                return Checked::Banned;
            }
            Admit::AccountThrottled {
                until_ms,
                source_banned_until_ms,
            } => {
                self.counters.auth_refused.fetch_add(1, Ordering::Relaxed);
                if let Some(until) = source_banned_until_ms {
                    let known = self.app.credentials_for(method, &creds.username).is_some();
                    self.banned_now(now, ip, until, req, method, &creds.username, known);
                }
                let secs = until_ms.saturating_sub(now).div_ceil(1000).max(1);
                return Checked::Throttled {
                    retry_after_secs: u32::try_from(secs).unwrap_or(u32::MAX),
                };
            }
        }
        let known = match algorithm {
            Algorithm::Md5 => self.app.credentials_for(method, &creds.username),
            Algorithm::Sha256 => self.app.credentials_sha256(&creds.username),
        };
        let exists = known.is_some() || self.app.credentials_for(method, &creds.username).is_some();
        let ha1 = known.clone().unwrap_or_else(|| match algorithm {
            Algorithm::Md5 => self.decoy_ha1.clone(),
            Algorithm::Sha256 => self.decoy_ha1_sha256.clone(),
        });
        // Always computed, so every path costs the same.
        let response_ok = digest::verify(&ha1, method, &creds);
        let reason = if !exists {
            Some("unknown account")
        } else if known.is_none() {
            Some("no SHA-256 credentials for this account")
        } else if creds.realm != self.realm {
            Some("wrong realm")
        } else if !response_ok {
            Some("wrong password")
        } else if !creds
            .qop
            .as_deref()
            .is_some_and(|q| q.eq_ignore_ascii_case("auth"))
        {
            // RFC 2069 responses (no qop, no nonce count) can be replayed at will.
            Some("no qop=auth")
        } else if !same_target(&creds.uri, &req.uri) {
            // A response computed for another Request-URI is a captured one replayed here.
            Some("digest uri is not the Request-URI")
        } else {
            let nc = creds
                .nc
                .as_deref()
                .and_then(|nc| u32::from_str_radix(nc, 16).ok());
            let expires_ms = self
                .nonces
                .expires_at(&creds.nonce)
                .map_or(now, |secs| secs.saturating_mul(1000));
            match nc {
                Some(nc) if self.guard().accept_count(now, &creds.nonce, nc, expires_ms) => None,
                _ => Some("replayed nonce count"),
            }
        };
        match reason {
            None => {
                self.guard().succeeded(now, ip, &creds.username);
                let slot = match algorithm {
                    Algorithm::Md5 => 0,
                    Algorithm::Sha256 => 1,
                };
                self.counters.auth_succeeded[slot].fetch_add(1, Ordering::Relaxed);
                Checked::Authenticated {
                    user: creds.username,
                }
            }
            Some("replayed nonce count") => {
                // A right answer whose count was used before: a replay, or a phone whose
                // requests crossed on UDP. Nothing is gained by it, so it is not counted as a
                // guess (that would let a phone's own retransmissions ban its office): a
                // fresh challenge, stale, which a genuine phone answers without asking.
                self.counters.auth_replays.fetch_add(1, Ordering::Relaxed);
                self.report(req, method, &creds.username, true, "replayed nonce count");
                Checked::Challenge { stale: true }
            }
            Some(reason) => {
                self.fail(now, ip, req, method, &creds.username, exists, reason);
                Checked::Failed
            }
        }
    }

    /// An authenticated request that is still refused (the account is not the To user):
    /// counted and reported like a failed check.
    pub(super) fn refused(
        &self,
        req: &rsipstack::sip::Request,
        method: &'static str,
        user: &str,
        reason: &'static str,
    ) {
        let ip = source_of(req)
            .as_ref()
            .and_then(source_ip)
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        self.fail(now_ms(), ip, req, method, user, true, reason);
    }

    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        now: u64,
        ip: IpAddr,
        req: &rsipstack::sip::Request,
        method: &'static str,
        account: &str,
        known: bool,
        reason: &'static str,
    ) {
        self.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
        let effect = self.guard().failed(now, ip, account);
        self.report(req, method, account, known, reason);
        if let Some(until) = effect.source_banned_until_ms {
            self.banned_now(now, ip, until, req, method, account, known);
        }
    }

    /// A source has just been banned: counted, logged and reported once.
    #[allow(clippy::too_many_arguments)]
    fn banned_now(
        &self,
        now: u64,
        ip: IpAddr,
        until: u64,
        req: &rsipstack::sip::Request,
        method: &'static str,
        account: &str,
        known: bool,
    ) {
        self.counters.auth_bans.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            source = %ip,
            secs = until.saturating_sub(now) / 1000,
            "source banned after repeated authentication failures"
        );
        self.report(req, method, account, known, "source banned");
    }

    /// Logs a failure and reports it to the application, within the per-second budget.
    fn report(
        &self,
        req: &rsipstack::sip::Request,
        method: &'static str,
        account: &str,
        known: bool,
        reason: &'static str,
    ) {
        let (report, untold) = {
            let mut b = self.reports.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let mut untold = 0;
            if now.duration_since(b.window).as_secs() >= 1 {
                untold = std::mem::take(&mut b.suppressed);
                b.window = now;
                b.used = 0;
            }
            if b.used < FAILURE_REPORTS_PER_SEC {
                b.used += 1;
                (true, untold)
            } else {
                b.suppressed += 1;
                (false, untold)
            }
        };
        if untold > 0 {
            tracing::warn!(
                failures = untold,
                "authentication failures not logged one by one in the last second"
            );
        }
        if !report {
            return;
        }
        let failure = AuthFailure {
            method,
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
            method = failure.method,
            account = %failure.account,
            source = %failure.source,
            reason = failure.reason,
            "{} authentication failed",
            failure.method
        );
        self.app.auth_failed(failure);
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, AuthGuard> {
        self.guard.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a request came from: its top Via with the `received` and `rport` the transport
/// layer wrote from the packet's real source.
pub(super) fn source_of(req: &rsipstack::sip::Request) -> Option<SipAddr> {
    req.via_header()
        .ok()
        .and_then(|v| SipConnection::parse_target_from_via(v).ok())
        .map(|(t, hp)| SipAddr {
            r#type: Some(t),
            addr: hp,
        })
}

pub(super) fn source_ip(addr: &SipAddr) -> Option<IpAddr> {
    addr.addr
        .host
        .to_string()
        .trim_matches(['[', ']'])
        .parse()
        .ok()
}

/// Whether the digest `uri` names the request's target: same scheme, host and port (5060 when
/// absent). The user part and parameters may differ: SIPp, for one, answers a challenge to
/// `INVITE sip:*511001@host` with `uri="sip:host"`. A response is bound to its method by the
/// digest itself, and to one use by its nonce count, so what this check adds is that a
/// response captured on the way to another server is refused here.
fn same_target(digest_uri: &str, request_uri: &rsipstack::sip::Uri) -> bool {
    let Ok(uri) = rsipstack::sip::Uri::try_from(digest_uri.trim()) else {
        return false;
    };
    let port = |u: &rsipstack::sip::Uri| u.host_with_port.port.as_ref().map_or(5060, |p| p.value());
    let scheme = |u: &rsipstack::sip::Uri| u.scheme.clone().unwrap_or(rsipstack::sip::Scheme::Sip);
    scheme(&uri) == scheme(request_uri)
        && uri
            .host_with_port
            .host
            .to_string()
            .eq_ignore_ascii_case(&request_uri.host_with_port.host.to_string())
        && port(&uri) == port(request_uri)
}

#[cfg(test)]
mod tests {
    use super::same_target;

    #[test]
    fn the_digest_uri_must_name_the_request_uri() {
        let req = rsipstack::sip::Uri::try_from("sip:127.0.0.1:5060").unwrap();
        assert!(same_target("sip:127.0.0.1:5060", &req));
        assert!(same_target("sip:127.0.0.1:5060;transport=udp", &req));
        assert!(!same_target("sip:127.0.0.1:5070", &req));
        assert!(!same_target("sip:10.0.0.1:5060", &req));
        assert!(
            same_target("sip:1001@127.0.0.1:5060", &req),
            "the user part may differ"
        );
        assert!(!same_target("not a uri", &req));
        let default_port = rsipstack::sip::Uri::try_from("sip:navbat.example").unwrap();
        assert!(same_target("sip:NAVBAT.example:5060", &default_port));
        let feature = rsipstack::sip::Uri::try_from("sip:*511001@127.0.0.1:5060").unwrap();
        assert!(same_target("sip:*511001@127.0.0.1:5060", &feature));
        assert!(
            same_target("sip:127.0.0.1:5060", &feature),
            "as SIPp answers"
        );
        assert!(!same_target("sip:*511001@127.0.0.2:5060", &feature));
    }
}
