//! The recording routes (the index, files, access and retention are `crate::recordings`'s;
//! this is their HTTP face, beside the desk's other routes):
//!
//! * `GET /api/recordings/{call}`: listen (inline WAV, range requests), audited as
//!   `recording_play`;
//! * `GET /api/recordings/{call}/download`: the same bytes as an attachment, audited as
//!   `recording_download`;
//! * `GET /api/recordings?tenant=T[&from_ms=..&to_ms=..]`: the tenant's index (no audio),
//!   audited as `recording_export`.
//!
//! A play or download is audited once per listening: when it asks from the first byte (no
//! `Range`, or one starting at 0); the further range requests a player makes while seeking
//! are not each a new line. A refused request is not audited (the route answered nothing).

use crate::accounts::{Principal, Role, Via};
use crate::actors::Router;
use crate::desk::auth::{api_principal, audit, json_error};
use crate::recordings::access::{decide, Access, ROLES};
use crate::recordings::file::{Playable, ReadError};
use crate::recordings::index::IndexRow;
use crate::recordings::range::{wanted, Wanted};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use std::path::PathBuf;

/// The header a node puts on a request it relays to the node holding a recording.
pub const RELAY_HEADER: &str = "X-Navbat-Relay";
/// Bytes read from the file per piece of a streamed answer.
const PIECE: usize = 64 * 1024;
/// Rows one export answers at most.
const EXPORT_LIMIT: i64 = 10_000;

/// Roles of `GET /api/recordings` (the index export): not operators.
pub const EXPORT_ROLES: &[Role] = &[Role::Supervisor, Role::Officer, Role::Admin];

/// Registers the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/recordings", web::get().to(export))
        .route("/api/recordings/{call}", web::get().to(listen))
        .route("/api/recordings/{call}/download", web::get().to(download));
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Listen,
    Download,
}

async fn listen(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    answer(&router, &req, &path.into_inner(), Use::Listen).await
}

async fn download(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    answer(&router, &req, &path.into_inner(), Use::Download).await
}

fn not_found(code: &'static str, call: &str) -> HttpResponse {
    let message = match code {
        "unknown_call" => format!("no call {call}"),
        _ => format!("no recording for call {call}"),
    };
    json_error(StatusCode::NOT_FOUND, code, message)
}

/// Whether `p` is a peer node relaying a request it has already checked and audited.
fn relayed(p: &Principal, req: &HttpRequest) -> bool {
    matches!(p.via, Via::Bootstrap) && req.headers().contains_key(RELAY_HEADER)
}

async fn answer(router: &Router, req: &HttpRequest, call: &str, how: Use) -> HttpResponse {
    let p = or_answer!(api_principal(router, req, ROLES).await);
    let relay = relayed(&p, req);
    let Ok(Some((tenant, operator))) = crate::desk::call_owner(router, call).await else {
        return not_found("unknown_call", call);
    };
    let rules = router
        .shared
        .config
        .tenants
        .iter()
        .find(|t| t.id == tenant)
        .map(|t| t.recordings)
        .unwrap_or_default();
    let own = operator.as_deref().is_some_and(|o| p.is_operator(o));
    match decide(p.role(), p.sees(&tenant).is_ok(), own, rules) {
        Access::Allowed => {}
        Access::NotFound => return not_found("unknown_call", call),
        Access::WrongRole => {
            return json_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "the role {} may not hear recordings of {tenant} (operators: only their own \
                     calls, where [tenant.recordings] operators_hear_own = true)",
                    p.role()
                ),
            )
        }
    }
    let uid = match router.shared.store.as_ref() {
        Some(store) => store.store_name(call),
        None => call.to_owned(),
    };
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let from_start = match range.as_deref() {
        None => true,
        Some(r) => matches!(wanted(Some(r), u64::MAX), Wanted::Part { start: 0, .. }),
    };
    if from_start && !relay {
        let action = match how {
            Use::Listen => "recording_play",
            Use::Download => "recording_download",
        };
        audit(
            router,
            &p,
            Some(req),
            action,
            Some(&tenant),
            Some(&uid),
            range.clone(),
        );
    }
    match locate(router, call, &uid, relay).await {
        Source::Local(path) => {
            let keys = router
                .shared
                .media
                .get()
                .and_then(|m| m.recorder.keys().cloned());
            serve_file(path, keys, range.as_deref(), how, &uid).await
        }
        Source::Remote(url) => relay_to(router, &url, &uid, how, range.as_deref()).await,
        Source::Nowhere => not_found("no_recording", call),
    }
}

enum Source {
    Local(PathBuf),
    Remote(String),
    Nowhere,
}

/// Where the recording of `call` (store name `uid`) is: this process's own call's file
/// (also before its index row is written), a file this node holds from an earlier run, or
/// the node whose row names it.
async fn locate(router: &Router, call: &str, uid: &str, relay: bool) -> Source {
    let engine = router.shared.media.get();
    let local = call.rsplit(':').next().unwrap_or(call);
    let this_run = match router.shared.store.as_ref() {
        Some(store) => store.call_uid(local) == uid,
        None => true,
    };
    if this_run {
        if let Some(engine) = engine {
            return Source::Local(engine.recorder.path_for(local));
        }
    }
    let u = uid.to_owned();
    let row: Option<IndexRow> = crate::desk::with_db(router, move |pool, _| async move {
        crate::recordings::index::for_call(&pool, &u).await
    })
    .await
    .ok()
    .flatten();
    let Some(row) = row else {
        return Source::Nowhere;
    };
    let me = &router.shared.config.node.id;
    match (&row.node, &row.node_url) {
        // Every row names its node since schema 7 (older rows were given theirs then).
        (None, _) => Source::Nowhere,
        (Some(node), _) if node == me => Source::Local(PathBuf::from(row.location)),
        // A relayed request is served from this node's disk or not at all: never relayed on.
        (Some(_), _) if relay => Source::Nowhere,
        (Some(_), Some(url)) => Source::Remote(url.clone()),
        (Some(_), None) => Source::Nowhere,
    }
}

/// Answers with the file's bytes as a WAV: 200 whole or 206 for a range, streamed.
async fn serve_file(
    path: PathBuf,
    keys: Option<std::sync::Arc<crate::recordings::seal::Keys>>,
    range: Option<&str>,
    how: Use,
    uid: &str,
) -> HttpResponse {
    let opened = web::block(move || Playable::open(&path, keys.as_deref())).await;
    let playable = match opened {
        Ok(Ok(p)) => p,
        Ok(Err(ReadError::Missing(_))) => return not_found("no_recording", uid),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot serve a recording");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "recording_unreadable",
                e.to_string(),
            );
        }
        Err(_) => {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is too busy to read the file; retry",
            )
        }
    };
    if playable.is_empty() {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the recording has no audio yet; retry in a second",
        );
    }
    let len = playable.len();
    let (status, start, end) = match wanted(range, len) {
        Wanted::Whole => (StatusCode::OK, 0, len - 1),
        Wanted::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
        Wanted::Unsatisfiable => {
            return HttpResponse::RangeNotSatisfiable()
                .insert_header((header::CONTENT_RANGE, format!("bytes */{len}")))
                .insert_header((header::ACCEPT_RANGES, "bytes"))
                .finish()
        }
    };
    let mut resp = HttpResponse::build(status);
    resp.content_type("audio/wav")
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::PARTIAL_CONTENT {
        resp.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")));
    }
    if how == Use::Download {
        let name: String = uid
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        resp.insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"recording-{name}.wav\""),
        ));
    }
    let body = futures_util::stream::unfold(
        (playable, start, end + 1),
        |(mut playable, at, stop)| async move {
            if at >= stop {
                return None;
            }
            let want = ((stop - at) as usize).min(PIECE);
            let read = web::block(move || {
                let mut buf = vec![0u8; want];
                let n = playable.read_at(at, &mut buf);
                (playable, buf, n)
            })
            .await;
            match read {
                Ok((playable, mut buf, Ok(n))) if n > 0 => {
                    buf.truncate(n);
                    Some((
                        Ok::<_, std::io::Error>(web::Bytes::from(buf)),
                        (playable, at + n as u64, stop),
                    ))
                }
                Ok((playable, _, Ok(_))) => Some((
                    Err(std::io::Error::other("the recording ended early")),
                    (playable, stop, stop),
                )),
                Ok((playable, _, Err(e))) => Some((
                    Err(std::io::Error::other(e.to_string())),
                    (playable, stop, stop),
                )),
                Err(_) => None,
            }
        },
    );
    resp.no_chunking(end + 1 - start).streaming(body)
}

/// Fetches the recording from the node that holds it, with the cluster's bootstrap token,
/// and passes its answer through (status, range headers, body streamed).
async fn relay_to(
    router: &Router,
    base: &str,
    uid: &str,
    how: Use,
    range: Option<&str>,
) -> HttpResponse {
    let Some(token) = router.shared.config.http.admin_token.as_deref() else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_cluster_token",
            "the recording is on another node, which this node reaches with http.admin_token; \
             fix: set the same http.admin_token on every node",
        );
    };
    let mut url = format!("{base}/api/recordings/{}", urlencode(uid));
    if how == Use::Download {
        url.push_str("/download");
    }
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .finish();
    let mut request = client
        .get(&url)
        .insert_header((header::AUTHORIZATION, format!("Bearer {token}")))
        .insert_header((RELAY_HEADER, router.shared.config.node.id.as_str()));
    if let Some(r) = range {
        request = request.insert_header((header::RANGE, r));
    }
    let upstream = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(node_url = %base, error = %e, "cannot fetch a recording from its node");
            return json_error(
                StatusCode::BAD_GATEWAY,
                "node_unreachable",
                format!(
                    "the recording is on the node at {base}, which does not answer; retry when \
                     it is up"
                ),
            );
        }
    };
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = HttpResponse::build(status);
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_RANGE,
        header::ACCEPT_RANGES,
        header::CONTENT_DISPOSITION,
        header::CACHE_CONTROL,
    ] {
        if let Some(v) = upstream.headers().get(&name) {
            resp.insert_header((name, v.clone()));
        }
    }
    let len = upstream
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match len {
        Some(n) => resp.no_chunking(n).streaming(upstream),
        None => resp.streaming(upstream),
    }
}

/// Percent-encodes what a store name may hold beyond letters, digits and `-`.
fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
struct ExportQuery {
    tenant: String,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

/// `GET /api/recordings?tenant=T`: the index of a tenant's recordings (call, operator,
/// start, length, size, SHA-256, node), oldest first, at most 10,000.
async fn export(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<ExportQuery>,
) -> HttpResponse {
    let p = or_answer!(api_principal(&router, &req, EXPORT_ROLES).await);
    let q = q.into_inner();
    if p.sees(&q.tenant).is_err()
        || !router
            .shared
            .config
            .tenants
            .iter()
            .any(|t| t.id == q.tenant)
    {
        return json_error(
            StatusCode::NOT_FOUND,
            "unknown_tenant",
            format!("no tenant {}", q.tenant),
        );
    }
    let (from, to) = (q.from_ms.unwrap_or(0), q.to_ms.unwrap_or(i64::MAX));
    let tenant = q.tenant.clone();
    let rows = crate::desk::with_db(&router, move |pool, _| async move {
        crate::recordings::index::for_tenant(&pool, &tenant, from, to, EXPORT_LIMIT).await
    })
    .await;
    match rows {
        Ok(rows) => {
            audit(
                &router,
                &p,
                Some(&req),
                "recording_export",
                Some(&q.tenant),
                Some(&q.tenant),
                Some(format!("{} recordings, {from}..{to} ms", rows.len())),
            );
            HttpResponse::Ok().json(rows)
        }
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e),
    }
}
