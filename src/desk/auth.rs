//! Who is asking: sessions, personal tokens and the bootstrap token mapped to a
//! [`Principal`]; CSRF checks; the audit trail of what they do.
//!
//! Lookups are cached for [`CACHE_TTL`] per process so that a page or API call costs no
//! database query in the common case; logging out, disabling an account and revoking a token
//! on this node drop the cache entries at once (on another node they stop working within
//! the TTL).

use super::DeskState;
use crate::accounts::{self, db, Principal, Role, Via};
use crate::actors::Router;
use crate::store::outbox::StoreRecord;
use crate::store::people::AuditEntry;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The session cookie.
pub const SESSION_COOKIE: &str = "navbat_session";
/// The login form's CSRF cookie (before there is a session).
pub const LOGIN_CSRF_COOKIE: &str = "navbat_login_csrf";
/// The language cookie before login.
pub const LANG_COOKIE: &str = "navbat_lang";
/// Header that carries the CSRF token on htmx and fetch requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a looked-up session or token is trusted without asking the database again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Cache entries at most (each map).
const CACHE_MAX: usize = 20_000;

pub(crate) use crate::actors::desk_state::Cached;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    crate::store::db::now_ms()
}

/// The client's address (the TCP peer; no forwarding header is trusted).
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// Why no principal.
#[derive(Debug)]
pub enum AuthError {
    /// No credentials, or not valid ones (401).
    Missing,
    /// The store did not answer (503).
    Store(String),
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The principal behind the request, from the bootstrap token, a personal token or the
/// session cookie (in that order).
pub async fn principal(router: &Router, req: &HttpRequest) -> Result<Principal, AuthError> {
    let desk = &router.shared.desk;
    if let Some(token) = bearer(req) {
        if let Some(boot) = router.shared.config.http.admin_token.as_deref() {
            if accounts::same_secret(token, boot) {
                return Ok(Principal::bootstrap());
            }
        }
        let hash = accounts::secret_hash(token);
        if let Some(p) = desk.cached(&desk.tokens, &hash) {
            return Ok(p);
        }
        let store = router.shared.store.as_ref().ok_or(AuthError::Missing)?;
        let pool = store.db().pool().clone();
        let h = hash.clone();
        let found = store
            .run(async move { db::token(&pool, &h).await })
            .await
            .map_err(|e| AuthError::Store(e.to_string()))?
            .map_err(|e| AuthError::Store(e.to_string()))?;
        let Some((account, id)) = found else {
            return Err(AuthError::Missing);
        };
        let p = Principal {
            account,
            via: Via::Token(id),
        };
        desk.remember(&desk.tokens, hash, p.clone(), i64::MAX);
        return Ok(p);
    }
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Err(AuthError::Missing);
    };
    let hash = accounts::secret_hash(cookie.value());
    if let Some(p) = desk.cached(&desk.sessions, &hash) {
        return Ok(p);
    }
    let store = router.shared.store.as_ref().ok_or(AuthError::Missing)?;
    let pool = store.db().pool().clone();
    let h = hash.clone();
    let now = now_ms();
    let found = store
        .run(async move { db::session(&pool, &h, now).await })
        .await
        .map_err(|e| AuthError::Store(e.to_string()))?
        .map_err(|e| AuthError::Store(e.to_string()))?;
    let Some((account, csrf, expires)) = found else {
        return Err(AuthError::Missing);
    };
    let p = Principal {
        account,
        via: Via::Session {
            csrf,
            id_hash: hash.clone(),
        },
    };
    desk.remember(&desk.sessions, hash, p.clone(), expires);
    Ok(p)
}

impl DeskState {
    pub(crate) fn cached(
        &self,
        map: &std::sync::Mutex<std::collections::HashMap<String, Cached>>,
        key: &str,
    ) -> Option<Principal> {
        let m = map.lock().unwrap_or_else(|e| e.into_inner());
        let c = m.get(key)?;
        (c.fetched.elapsed() < CACHE_TTL && c.expires_at_ms > now_ms()).then(|| c.principal.clone())
    }

    pub(crate) fn remember(
        &self,
        map: &std::sync::Mutex<std::collections::HashMap<String, Cached>>,
        key: String,
        principal: Principal,
        expires_at_ms: i64,
    ) {
        let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= CACHE_MAX {
            m.retain(|_, c| c.fetched.elapsed() < CACHE_TTL);
            if m.len() >= CACHE_MAX {
                m.clear();
            }
        }
        m.insert(
            key,
            Cached {
                principal,
                expires_at_ms,
                fetched: Instant::now(),
            },
        );
    }

    /// Drops every cached session and token of `username` (logout elsewhere, disable).
    pub fn forget_user(&self, username: &str) {
        for map in [&self.sessions, &self.tokens] {
            map.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, c| c.principal.account.username != username);
        }
    }

    /// Drops one cached session or token.
    pub fn forget(&self, hash: &str) {
        for map in [&self.sessions, &self.tokens] {
            map.lock().unwrap_or_else(|e| e.into_inner()).remove(hash);
        }
    }

    /// Drops every cached token (after a revocation).
    pub fn forget_tokens(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A JSON error body.
pub fn json_error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({"error": code, "message": message.into()}))
}

/// The principal for an API route that allows `roles`: 401 without credentials, 403 for
/// another role, 503 when the store does not answer.
pub async fn api_principal(
    router: &Router,
    req: &HttpRequest,
    roles: &[Role],
) -> Result<Principal, HttpResponse> {
    let p = match principal(router, req).await {
        Ok(p) => p,
        Err(AuthError::Missing) => {
            return Err(json_error(
                StatusCode::UNAUTHORIZED,
                "unauthorised",
                "send Authorization: Bearer <token> (a personal token from /account, or \
                 http.admin_token) or log in at /login",
            ))
        }
        Err(AuthError::Store(e)) => {
            return Err(json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                e,
            ))
        }
    };
    if p.require(roles).is_err() {
        return Err(json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the role {} may not use this route (allowed: {})",
                p.role(),
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if req.method() != actix_web::http::Method::GET {
        check_csrf(&p, req, None)?;
    }
    Ok(p)
}

/// For a browser session, the request must carry the session's CSRF token (form field
/// `csrf` given here, or the `X-CSRF-Token` header); tokens sent as bearer credentials
/// cannot be forged by another site and need none.
pub fn check_csrf(
    p: &Principal,
    req: &HttpRequest,
    form: Option<&str>,
) -> Result<(), HttpResponse> {
    let Some(expected) = p.csrf() else {
        return Ok(());
    };
    let given = form.or_else(|| req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
    match given {
        Some(g) if accounts::same_secret(g, expected) => Ok(()),
        _ => {
            metrics::counter!("navbat_desk_csrf_refused_total").increment(1);
            Err(json_error(
                StatusCode::FORBIDDEN,
                "csrf",
                "the form's security token is missing or stale; reload the page and try again \
                 / formaning xavfsizlik belgisi eskirgan: sahifani yangilang / токен формы \
                 устарел: обновите страницу",
            ))
        }
    }
}

/// Writes a line of the audit log through the journal. Never fails the request: a full
/// journal buffer is counted and logged by the store.
pub fn audit(
    router: &Router,
    actor: &Principal,
    req: Option<&HttpRequest>,
    action: &str,
    tenant: Option<&str>,
    target: Option<&str>,
    detail: Option<String>,
) {
    audit_as(
        router,
        actor.username(),
        Some(actor.role()),
        req.map(client_ip),
        action,
        tenant,
        target,
        detail,
    );
}

/// [`audit`] for someone who is not (yet) a principal, e.g. a failed login.
#[allow(clippy::too_many_arguments)]
pub fn audit_as(
    router: &Router,
    actor: &str,
    role: Option<Role>,
    source: Option<IpAddr>,
    action: &str,
    tenant: Option<&str>,
    target: Option<&str>,
    detail: Option<String>,
) {
    let Some(store) = router.shared.store.as_ref() else {
        return;
    };
    let entry = AuditEntry {
        actor: actor.to_owned(),
        role: role.map(|r| r.as_str().to_owned()),
        tenant: tenant.map(str::to_owned),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        source: source.map(|ip| ip.to_string()),
        detail,
    };
    metrics::counter!("navbat_audit_records_total", "action" => action.to_owned()).increment(1);
    let _ = store.record(StoreRecord::Audit(entry));
}
