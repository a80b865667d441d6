//! The HTTP API (actix-web): live queue and operator state, operator state
//! changes, the event feed and surge switching.
//!
//! Reads are open on the listen address (loopback by default); writes and the
//! event feed need `Authorization: Bearer <http.admin_token>`.

use crate::acd::{Input, OperatorState};
use crate::actors::acd_host::{Feed, OperatorStates, SetSurge, Snapshots, SurgeStates};
use crate::actors::queue::Totals;
use crate::actors::Router;
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

fn authorised(router: &Router, req: &HttpRequest) -> Result<(), Box<HttpResponse>> {
    let Some(token) = router.shared.config.http.admin_token.as_deref() else {
        return Err(Box::new(error(
            actix_web::http::StatusCode::FORBIDDEN,
            "no_admin_token",
            "this endpoint needs http.admin_token in the configuration".into(),
        )));
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same = given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if same {
        Ok(())
    } else {
        Err(Box::new(error(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "unauthorised",
            "send Authorization: Bearer <admin token>".into(),
        )))
    }
}

async fn queues(router: web::Data<Router>) -> impl Responder {
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

async fn operators(router: web::Data<Router>) -> impl Responder {
    match router.acd.send(OperatorStates).await {
        Ok(v) => HttpResponse::Ok().json(v),
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
    if let Err(resp) = authorised(&router, &req) {
        return *resp;
    }
    let ext = path.into_inner();
    let Some(id) = router.shared.model.operator(&ext) else {
        return error(
            actix_web::http::StatusCode::NOT_FOUND,
            "unknown_operator",
            format!("no operator with extension {ext}"),
        );
    };
    let state = match body.state.as_str() {
        "available" => OperatorState::Available,
        "break" => OperatorState::Break,
        "logged_out" => OperatorState::LoggedOut,
        other => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                "bad_state",
                format!("state {other:?} cannot be set; use available, break or logged_out"),
            )
        }
    };
    router.acd.do_send(Feed(Input::SetOperatorState {
        operator: id,
        state,
    }));
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
    if let Err(resp) = authorised(&router, &req) {
        return *resp;
    }
    HttpResponse::Ok().json(router.shared.memory.since(q.after.unwrap_or(0)))
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
    if let Err(resp) = authorised(&router, &req) {
        return *resp;
    }
    let name = path.into_inner();
    let Some(tenant) = router.shared.model.tenant(&name) else {
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
    // Awaited, so a following read of /api/queues sees the switch.
    let _ = router.acd.send(SetSurge { tenant, manual }).await;
    HttpResponse::Accepted().json(serde_json::json!({"tenant": name, "mode": mode, "surge": on}))
}

/// `GET /api/surge`: every tenant's surge state and mode.
async fn surge_states(router: web::Data<Router>) -> impl Responder {
    match router.acd.send(SurgeStates).await {
        Ok(states) => HttpResponse::Ok().json(states),
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

/// `GET /api/recordings/{call}`: the call's recording as WAV, also while it is being
/// written (the header is made to match the bytes so far), so the client's officer can
/// listen in near real time (D19). Admin token for now; roles come with the API issue.
async fn recording(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> impl Responder {
    if let Err(resp) = authorised(&router, &req) {
        return *resp;
    }
    let call = path.into_inner();
    let Some(engine) = router.shared.media.get() else {
        return error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "no_media",
            "the media engine is not running".into(),
        );
    };
    let file = engine.recorder.path_for(&call);
    let bytes = web::block(move || std::fs::read(file)).await;
    match bytes {
        Ok(Ok(bytes)) => match crate::media::recorder::snapshot(bytes) {
            Some(wav) => HttpResponse::Ok()
                .content_type("audio/wav")
                .insert_header(("Cache-Control", "no-store"))
                .body(wav),
            None => error(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the recording has no audio yet; retry in a second".into(),
            ),
        },
        _ => error(
            actix_web::http::StatusCode::NOT_FOUND,
            "no_recording",
            format!("no recording for call {call}"),
        ),
    }
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
    if let Err(resp) = authorised(&router, &req) {
        return *resp;
    }
    let call = path.into_inner();
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
        Ok(()) => HttpResponse::Accepted().json(serde_json::json!({
            "call": call, "supervisor": body.supervisor, "mode": body.mode
        })),
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
    if let Err(resp) = authorised(&router, &req) {
        return *resp;
    }
    let Some(store) = router.shared.store.as_ref() else {
        return error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "no_store",
            "this router runs without a store".into(),
        );
    };
    let call = path.into_inner();
    match store.history(&call).await {
        Ok(Some(history)) => HttpResponse::Ok().json(history),
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
    if let Err(resp) = authorised(&router, &req) {
        return *resp;
    }
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

/// Registers the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
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
        .route("/api/recordings/{call}", web::get().to(recording))
        .route("/api/calls/{call}/monitor", web::post().to(monitor))
        .route("/api/surge", web::get().to(surge_states))
        .route("/api/tenants/{id}/surge", web::post().to(set_surge));
}
