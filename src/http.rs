//! The HTTP API (actix-web): live queue and operator state, operator state
//! changes, the event feed, surge switching, call history, recordings, monitoring, the audit
//! log and personal API tokens.
//!
//! Every route but `/api/health` and `/metrics` needs a principal: a personal token
//! (`Authorization: Bearer nvb_...`, made on the desk's account page or `POST /api/tokens`),
//! a desk session cookie (then writes also need `X-CSRF-Token`), or the bootstrap token
//! `http.admin_token` (an admin of every tenant, for automation). Each route names the roles
//! it allows (403 for another role); what belongs to a tenant the account does not work for
//! answers 404.
// The handlers' errors are the HTTP responses themselves (see `desk`).
#![allow(clippy::result_large_err)]

use crate::actors::acd_host::{OperatorStates, SetSurge, Snapshots, SurgeStates};
use crate::actors::queue::Totals;
use crate::actors::Router;
use crate::desk::or_answer;
use actix_web::{web, HttpRequest, HttpResponse, Responder};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct QueueView {
    id: String,
    tenant: String,
    surge: bool,
    waiting: usize,
    ringing: usize,
    longest_wait_ms: u64,
    available: usize,
    operators_ringing: usize,
    on_call: usize,
    wrap_up: usize,
    on_break: usize,
    logged_out: usize,
    totals: crate::actors::queue::QueueTotals,
}

#[derive(Serialize)]
struct ApiError {
    error: &'static str,
    message: String,
}

fn error(status: actix_web::http::StatusCode, code: &'static str, message: String) -> HttpResponse {
    HttpResponse::build(status).json(ApiError {
        error: code,
        message,
    })
}

// Declared with the accounts (the desk's pages check them too); named here as the API's.
pub use crate::accounts::roles;

use crate::accounts::Principal;
use crate::desk::auth::api_principal;

/// 404 unless `p` may see the call (its tenant; an operator only their own calls).
async fn may_see_call(
    router: &Router,
    p: &Principal,
    call: &str,
) -> Result<(String, Option<String>), HttpResponse> {
    let not_found = || {
        error(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no call {call}"),
        )
    };
    let Ok(Some((tenant, operator))) = crate::desk::call_owner(router, call).await else {
        return Err(not_found());
    };
    if p.sees(&tenant).is_err() {
        return Err(not_found());
    }
    if p.role() == crate::accounts::Role::Operator
        && !operator.as_deref().is_some_and(|o| p.is_operator(o))
    {
        return Err(not_found());
    }
    Ok((tenant, operator))
}

async fn queues(router: web::Data<Router>, req: HttpRequest) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::FLOOR_READ).await);
    let Ok(snaps) = router.acd.send(Snapshots).await else {
        return error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "router is not answering".into(),
        );
    };
    let mut out = Vec::new();
    for s in snaps {
        let totals = match router.queues.get(s.queue.0 as usize) {
            Some(q) => q.send(Totals).await.unwrap_or_default(),
            None => Default::default(),
        };
        let model = &router.shared.model;
        if p.sees(model.tenant_name(model.queue_tenant(s.queue)))
            .is_err()
        {
            continue;
        }
        out.push(QueueView {
            id: model.queue_name(s.queue).into(),
            tenant: model.tenant_name(model.queue_tenant(s.queue)).into(),
            surge: s.surge,
            waiting: s.waiting,
            ringing: s.ringing,
            longest_wait_ms: s.longest_wait_ms,
            available: s.operators_available,
            operators_ringing: s.operators_ringing,
            on_call: s.operators_on_call,
            wrap_up: s.operators_wrap_up,
            on_break: s.operators_on_break,
            logged_out: s.operators_logged_out,
            totals,
        });
    }
    HttpResponse::Ok().json(out)
}

async fn operators(router: web::Data<Router>, req: HttpRequest) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::OPERATORS).await);
    match router.acd.send(OperatorStates).await {
        Ok(v) => {
            let officer = p.role() == crate::accounts::Role::Officer;
            let list: Vec<_> = v
                .into_iter()
                .filter(|o| crate::desk::pages::operator_in_scope(&router, &p, &o.ext))
                .map(|mut o| {
                    // Where a phone is registered is for the people who run the floor.
                    if officer {
                        o.contact = None;
                    }
                    o
                })
                .collect();
            HttpResponse::Ok().json(list)
        }
        Err(_) => error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "router is not answering".into(),
        ),
    }
}

#[derive(Deserialize)]
struct StateChange {
    state: String,
}

async fn set_operator_state(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<StateChange>,
) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::OPERATOR_STATE).await);
    let ext = path.into_inner();
    let allowed = match p.role() {
        crate::accounts::Role::Operator => p.is_operator(&ext),
        _ => crate::desk::pages::operator_in_scope(&router, &p, &ext),
    };
    if !allowed {
        return error(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_operator",
            format!("no operator with extension {ext}"),
        );
    }
    use crate::desk::pages::{change_operator_state, StateChangeError};
    match change_operator_state(&router, &p, &req, &ext, &body.state, None).await {
        Ok(()) => {}
        Err(StateChangeError::UnknownOperator) => {
            return error(
                actix_web::http::StatusCode::NOT_FOUND,
                "unknown_operator",
                format!("no operator with extension {ext}"),
            )
        }
        Err(StateChangeError::UnknownState) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "bad_state",
                format!(
                    "state {:?} cannot be set; use available, break or logged_out",
                    body.state
                ),
            )
        }
    }
    HttpResponse::Accepted().json(serde_json::json!({"ext": ext, "requested": body.state}))
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<u64>,
}

async fn events(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<EventsQuery>,
) -> impl Responder {
    or_answer!(api_principal(&router, &req, roles::ADMIN).await);
    HttpResponse::Ok()
        .content_type("application/json")
        .body(router.shared.memory.since_json(q.after.unwrap_or(0)))
}

/// `POST /api/tenants/{id}/surge` body: `{"on": true}` or `{"on": false}` forces surge until
/// handed back with `{"mode": "auto"}`; `by` names the supervisor (default `api`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SurgeChange {
    on: Option<bool>,
    mode: Option<String>,
    by: Option<String>,
}

impl SurgeChange {
    /// The controller setting asked for, or what is wrong with the body.
    fn manual(&self) -> Result<crate::surge::Manual, String> {
        let by = self.by.clone().unwrap_or_else(|| "api".into());
        match (self.on, self.mode.as_deref()) {
            (Some(on), None | Some("manual")) => Ok(crate::surge::Manual::Forced { on, by }),
            (None, Some("auto")) => Ok(crate::surge::Manual::Auto),
            _ => Err("send {\"on\": true|false} to force surge, or {\"mode\": \"auto\"} to hand it back to the calendar and the automatic trigger".into()),
        }
    }
}

async fn set_surge(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<SurgeChange>,
) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::SUPERVISE).await);
    let name = path.into_inner();
    let (Some(tenant), true) = (router.shared.model.tenant(&name), p.sees(&name).is_ok()) else {
        return error(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_tenant",
            format!("no tenant {name}"),
        );
    };
    let manual = match body.manual() {
        Ok(m) => m,
        Err(message) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "bad_surge_request",
                message,
            )
        }
    };
    let (mode, on) = match &manual {
        crate::surge::Manual::Auto => ("auto", None),
        crate::surge::Manual::Forced { on, .. } => ("manual", Some(*on)),
    };
    crate::desk::auth::audit(
        &router,
        &p,
        Some(&req),
        "surge_switch",
        Some(&name),
        Some(&name),
        Some(mode.to_owned()),
    );
    // Awaited, so a following read of /api/queues sees the switch.
    let _ = router.acd.send(SetSurge { tenant, manual }).await;
    HttpResponse::Accepted().json(serde_json::json!({"tenant": name, "mode": mode, "surge": on}))
}

/// `GET /api/surge`: every tenant's surge state and mode.
async fn surge_states(router: web::Data<Router>, req: HttpRequest) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::FLOOR_READ).await);
    match router.acd.send(SurgeStates).await {
        Ok(states) => {
            let states: Vec<_> = states
                .into_iter()
                .filter(|s| p.sees(&s.tenant).is_ok())
                .collect();
            HttpResponse::Ok().json(states)
        }
        Err(e) => error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "acd_unavailable",
            e.to_string(),
        ),
    }
}

async fn health(router: web::Data<Router>) -> impl Responder {
    let gate = &router.shared.gate;
    HttpResponse::Ok().json(serde_json::json!({
        "status": if gate.draining() { "draining" } else { "ok" },
        "channels_in_use": gate.in_use(),
        "channels_limit": gate.limit(),
        "operators_registered": router.shared.presence.registered(),
    }))
}

#[derive(Deserialize)]
struct MonitorRequest {
    supervisor: String,
    mode: crate::media::MonitorMode,
}

/// `POST /api/calls/{call}/monitor` `{"supervisor": "1901", "mode": "listen"|"whisper"|"barge"}`:
/// rings the supervisor's softphone and joins it to the live call (D17); with the same
/// supervisor already on the call, changes the mode.
async fn monitor(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<MonitorRequest>,
) -> impl Responder {
    use crate::actors::call::{MonitorError, StartMonitor};
    let p = or_answer!(api_principal(&router, &req, roles::SUPERVISE).await);
    let call = path.into_inner();
    let tenant = match may_see_call(&router, &p, &call).await {
        Ok((tenant, _)) => tenant,
        Err(r) => return r,
    };
    let result = match router.shared.call(&call) {
        None => Err(MonitorError::UnknownCall),
        Some(addr) => addr
            .send(StartMonitor {
                supervisor: body.supervisor.clone(),
                mode: body.mode,
            })
            .await
            .unwrap_or(Err(MonitorError::UnknownCall)),
    };
    use actix_web::http::StatusCode as S;
    match result {
        Ok(()) => {
            crate::desk::auth::audit(
                &router,
                &p,
                Some(&req),
                "monitor_start",
                Some(&tenant),
                Some(&call),
                Some(format!("{:?} by {}", body.mode, body.supervisor)),
            );
            HttpResponse::Accepted().json(serde_json::json!({
                "call": call, "supervisor": body.supervisor, "mode": body.mode
            }))
        }
        Err(e) => {
            let (status, code) = match e {
                MonitorError::UnknownCall => (S::NOT_FOUND, "unknown_call"),
                MonitorError::UnknownSupervisor => (S::NOT_FOUND, "unknown_supervisor"),
                MonitorError::NotTalking | MonitorError::Busy => (S::CONFLICT, "not_possible"),
                MonitorError::NotRegistered => (S::CONFLICT, "not_registered"),
                MonitorError::UnusableOffer => (S::CONFLICT, "not_possible"),
                MonitorError::NoMedia | MonitorError::NoPort => {
                    (S::SERVICE_UNAVAILABLE, "no_media")
                }
            };
            error(status, code, e.to_string())
        }
    }
}

/// A caller's earlier calls within the repeat window (D20), numbers masked (admin).
async fn call_history(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::HISTORY).await);
    let Some(store) = router.shared.store.as_ref() else {
        return error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "no_store",
            "this router runs without a store".into(),
        );
    };
    let call = path.into_inner();
    if let Err(r) = may_see_call(&router, &p, &call).await {
        return r;
    }
    match store.history(&call).await {
        Ok(Some(mut history)) => {
            history
                .earlier
                .retain(|i| i.tenant.as_deref().is_some_and(|t| p.sees(t).is_ok()));
            HttpResponse::Ok().json(history)
        }
        Ok(None) => error(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no call {call} in the store (yet)"),
        ),
        Err(e) => error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
    }
}

/// The store's journal and database figures (admin).
async fn store_status(router: web::Data<Router>, req: HttpRequest) -> impl Responder {
    or_answer!(api_principal(&router, &req, roles::ADMIN).await);
    match router.shared.store.as_ref() {
        Some(store) => HttpResponse::Ok().json(store.health()),
        None => HttpResponse::Ok().json(serde_json::json!(null)),
    }
}

/// Prometheus text exposition (open like the other reads: loopback by default).
async fn metrics() -> impl Responder {
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(crate::metrics::render())
}

/// `GET /api/me`: who the credentials belong to.
async fn me(router: web::Data<Router>, req: HttpRequest) -> impl Responder {
    match api_principal(&router, &req, roles::EVERYONE).await {
        Ok(p) => HttpResponse::Ok().json(&p.account),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/audit?before=<ms>&limit=<n>`: the audit log, newest first (an officer sees their
/// tenants' part).
async fn audit_log(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<AuditQuery>,
) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::AUDIT).await);
    let tenants = p.account.tenants.ids().map(<[String]>::to_vec);
    let (before, limit) = (
        q.before.unwrap_or(i64::MAX),
        q.limit.unwrap_or(200).clamp(1, 1000),
    );
    store_list(&router, move |pool, _| async move {
        crate::accounts::db::audit(&pool, tenants.as_deref(), before, limit).await
    })
    .await
}

/// `GET /api/tokens`: the caller's personal tokens (an admin: everyone's), never the secrets.
async fn tokens(router: web::Data<Router>, req: HttpRequest) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::EVERYONE).await);
    let who = (p.role() != crate::accounts::Role::Admin).then(|| p.username().to_owned());
    store_list(&router, move |pool, _| async move {
        crate::accounts::db::tokens(&pool, who.as_deref()).await
    })
    .await
}

#[derive(Deserialize)]
struct NewToken {
    label: String,
}

/// `POST /api/tokens {"label": "..."}`: a new personal token for the caller; the secret is
/// in this answer only. The bootstrap token cannot own one (create an admin account).
async fn create_token(
    router: web::Data<Router>,
    req: HttpRequest,
    body: web::Json<NewToken>,
) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::EVERYONE).await);
    if p.via == crate::accounts::Via::Bootstrap {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "bootstrap_token",
            "the bootstrap token has no account to own a token; create an admin with `navbat user add`".into(),
        );
    }
    match crate::desk::pages::create_token(&router, &p, body.label.trim(), &req).await {
        Ok((id, secret)) => HttpResponse::Created()
            .json(serde_json::json!({"id": id, "token": secret, "label": body.label.trim()})),
        Err(e) => error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e,
        ),
    }
}

/// `DELETE /api/tokens/{id}`: revokes a token of the caller's (an admin: anyone's).
async fn revoke_token(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::EVERYONE).await);
    let id = path.into_inner();
    match crate::desk::pages::revoke_token(&router, &p, &id, &req).await {
        Ok(true) => HttpResponse::Ok().json(serde_json::json!({"id": id, "revoked": true})),
        Ok(false) => error(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_token",
            format!("no token {id} of yours"),
        ),
        Err(e) => error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e,
        ),
    }
}

/// `GET /api/calls/{call}/disposition`: the after-call form saved for a call (personal data
/// only for roles that see full numbers).
async fn disposition(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::HISTORY).await);
    let call = path.into_inner();
    or_answer!(may_see_call(&router, &p, &call).await);
    let Some(uid) = router.shared.store.as_ref().map(|s| s.store_name(&call)) else {
        return error(
            actix_web::http::StatusCode::NOT_FOUND,
            "no_disposition",
            format!("no disposition for {call}"),
        );
    };
    let pii = crate::desk::pii(&router);
    let found = crate::desk::with_db(&router, move |pool, _| async move {
        crate::accounts::db::dispositions(&pool, pii.as_deref(), &[uid]).await
    })
    .await;
    match found {
        Ok(list) => match list.into_iter().next() {
            Some(d) => {
                let full = router
                    .shared
                    .config
                    .desk
                    .full_number_roles
                    .contains(&p.role());
                let hide = |v: Option<String>| {
                    v.map(|x| {
                        if full {
                            x
                        } else {
                            crate::privacy::PhoneNumber::new(x).masked()
                        }
                    })
                };
                HttpResponse::Ok().json(serde_json::json!({
                    "call": d.call_uid, "tenant": d.tenant, "operator": d.operator,
                    "topic": d.topic, "category": d.category, "outcome": d.outcome,
                    "notes": d.notes, "caller_name": hide(d.caller_name),
                    "organisation": d.organisation, "stir": hide(d.stir),
                    "revision": d.revision, "saved_by": d.saved_by, "at_ms": d.at_ms,
                }))
            }
            None => error(
                actix_web::http::StatusCode::NOT_FOUND,
                "no_disposition",
                format!("no disposition for {call}"),
            ),
        },
        _ => error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store did not answer".into(),
        ),
    }
}

#[derive(Deserialize)]
struct KbQuery {
    tenant: String,
    q: Option<String>,
}

/// `GET /api/kb?tenant=dtm&q=natija`: knowledge-base search (both languages).
async fn kb_search(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<KbQuery>,
) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::EVERYONE).await);
    if p.sees(&q.tenant).is_err() || router.shared.model.tenant(&q.tenant).is_none() {
        return error(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_tenant",
            format!("no tenant {}", q.tenant),
        );
    }
    let (tenant, text) = (q.tenant.clone(), q.q.clone().unwrap_or_default());
    store_list(&router, move |pool, pg| async move {
        crate::accounts::db::search(&pool, pg, &tenant, &text, 50).await
    })
    .await
}

/// A request as the API shows it: the requester masked (D18), the SLA clock that matters.
#[derive(Serialize)]
struct RequestView {
    id: String,
    tenant: String,
    channel: &'static str,
    kind: &'static str,
    priority: &'static str,
    status: &'static str,
    category: Option<String>,
    topic: Option<String>,
    subject: String,
    requester: String,
    assignee: Option<String>,
    registered_at_ms: i64,
    first_answer_at_ms: Option<i64>,
    resolved_at_ms: Option<i64>,
    forwarded_at_ms: Option<i64>,
    chancellery_ref: Option<String>,
    calls: Vec<String>,
    sla: Option<SlaView>,
}

#[derive(Serialize)]
struct SlaView {
    clock: &'static str,
    state: &'static str,
    left_secs: i64,
    deadline_ms: i64,
}

fn request_view(router: &Router, h: &crate::requests::Head, now: i64) -> RequestView {
    let sla = router
        .shared
        .requests
        .clocks()
        .state(h, now)
        .and_then(|s| crate::requests::clocks::shown(&s, h.status))
        .map(|c| SlaView {
            clock: crate::requests::clocks::rule_name(c.rule),
            state: match c.state {
                crate::sla::ClockState::Running if c.near_breach => "near_breach",
                crate::sla::ClockState::Running => "running",
                crate::sla::ClockState::Paused => "paused",
                crate::sla::ClockState::Met => "met",
                crate::sla::ClockState::Breached => "breached",
            },
            left_secs: c.left_secs,
            deadline_ms: c.deadline.as_millisecond(),
        });
    RequestView {
        id: h.id.clone(),
        tenant: h.tenant.clone(),
        channel: h.channel.as_str(),
        kind: h.kind.as_str(),
        priority: h.priority.as_str(),
        status: h.status.as_str(),
        category: h.category.clone(),
        topic: h.topic.clone(),
        subject: h.subject.clone(),
        requester: h.requester.label(),
        assignee: h.assignee.clone(),
        registered_at_ms: h.registered_at_ms,
        first_answer_at_ms: h.first_answer_at_ms,
        resolved_at_ms: h.resolved_at_ms,
        forwarded_at_ms: h.forwarded_at_ms,
        chancellery_ref: h.chancellery_ref.clone(),
        calls: h.calls.clone(),
        sla,
    }
}

/// `GET /api/requests`: the open requests of the caller's tenants, the least time left first.
async fn requests_list(router: web::Data<Router>, req: HttpRequest) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::EVERYONE).await);
    let now = jiff::Timestamp::now().as_millisecond();
    let mut views: Vec<RequestView> = router
        .shared
        .requests
        .open(|h| p.sees(&h.tenant).is_ok())
        .iter()
        .map(|h| request_view(&router, h, now))
        .collect();
    views.sort_by_key(|v| {
        (
            v.sla.as_ref().map(|s| s.left_secs).unwrap_or(i64::MAX),
            v.registered_at_ms,
        )
    });
    HttpResponse::Ok().json(views)
}

/// `GET /api/requests/{id}`: one request with its thread (404 for another tenant's).
async fn request_one(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> impl Responder {
    let p = or_answer!(api_principal(&router, &req, roles::EVERYONE).await);
    let id = path.into_inner();
    let head = crate::desk::requests::find(&router, &id).await;
    let Some(h) = head.filter(|h| p.sees(&h.tenant).is_ok()) else {
        return error(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_request",
            format!("no request {id}"),
        );
    };
    let wanted = h.id.clone();
    let pii = crate::desk::pii(&router);
    let thread = crate::desk::with_db(&router, move |pool, _| async move {
        crate::requests::db::thread(&pool, pii.as_deref(), &wanted).await
    })
    .await
    .unwrap_or_default();
    let now = jiff::Timestamp::now().as_millisecond();
    HttpResponse::Ok().json(serde_json::json!({
        "request": request_view(&router, &h, now),
        "thread": thread,
    }))
}

/// A list from the store as JSON: `[]` for a router without a store, 503 when the store
/// fails.
async fn store_list<T, F, Fut>(router: &Router, f: F) -> HttpResponse
where
    T: Serialize + Send + 'static,
    F: FnOnce(sqlx::AnyPool, bool) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<T>, sqlx::Error>> + Send + 'static,
{
    if router.shared.store.is_none() {
        return HttpResponse::Ok().json(Vec::<()>::new());
    }
    match crate::desk::with_db(router, f).await {
        Ok(list) => HttpResponse::Ok().json(list),
        Err(e) => error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e,
        ),
    }
}

/// Registers the routes (the API's and the desk's pages).
pub fn routes(cfg: &mut web::ServiceConfig) {
    crate::desk::pages::routes(cfg);
    crate::desk::requests::routes(cfg);
    crate::desk::reports::routes(cfg);
    crate::desk::form::routes(cfg);
    crate::desk::recordings::routes(cfg);
    crate::desk::qa::routes(cfg);
    cfg.route("/metrics", web::get().to(metrics))
        .route("/api/health", web::get().to(health))
        .route("/api/queues", web::get().to(queues))
        .route("/api/operators", web::get().to(operators))
        .route(
            "/api/operators/{ext}/state",
            web::post().to(set_operator_state),
        )
        .route("/api/events", web::get().to(events))
        .route("/api/calls/{call}/history", web::get().to(call_history))
        .route("/api/store", web::get().to(store_status))
        .route("/api/calls/{call}/monitor", web::post().to(monitor))
        .route("/api/surge", web::get().to(surge_states))
        .route("/api/tenants/{id}/surge", web::post().to(set_surge))
        .route("/api/me", web::get().to(me))
        .route("/api/audit", web::get().to(audit_log))
        .route("/api/tokens", web::get().to(tokens))
        .route("/api/tokens", web::post().to(create_token))
        .route("/api/tokens/{id}", web::delete().to(revoke_token))
        .route("/api/calls/{call}/disposition", web::get().to(disposition))
        .route("/api/kb", web::get().to(kb_search))
        .route("/api/requests", web::get().to(requests_list))
        .route("/api/requests/{id}", web::get().to(request_one));
}
