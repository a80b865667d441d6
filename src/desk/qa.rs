//! The QA pages (D17, C9): the week's queue, the evaluation beside the recording player, the
//! operator's own scores and disputes, and calibration sessions with the client's officer.
//! The decisions (score, draw, spread) are [`crate::qa`]'s; every change is a
//! [`QaStep`] through the journal, and audited.
//!
//! | route | roles |
//! |---|---|
//! | `GET /qa` (the queue, disputes, sessions) | [`QUEUE_ROLES`] |
//! | `POST /qa/sample`, `POST /api/qa/sample` (draw a week) | [`ACT_ROLES`] |
//! | `GET`/`POST /qa/calls/{call}` (evaluate) | [`ACT_ROLES`] |
//! | `POST /qa/evaluations/{id}/answer` (answer a dispute) | [`ACT_ROLES`] |
//! | `GET /desk/qa`, `POST /desk/qa/{id}/dispute` (own scores) | [`MINE_ROLES`] |
//! | `POST /qa/calibrations`, `POST /qa/calibrations/{id}/close` | [`ACT_ROLES`] |
//! | `GET /qa/calibrations/{id}`, `POST /qa/calibrations/{id}/calls/{call}` | [`QUEUE_ROLES`] |
//!
//! What belongs to a tenant the account does not work for is not there (404).

use super::auth::{self, api_principal, audit, json_error, now_ms};
use super::pages::{
    chrome, html, local_time, message, not_found, page_principal, redirect, visible_tenants, Chrome,
};
use super::qtexts::QT;
use super::with_db;
use crate::accounts::{Lang, Principal, Role};
use crate::actors::Router;
use crate::config::qa::Scorecard;
use crate::config::Bilingual;
use crate::qa::job::{sample_week, Mode};
use crate::qa::sample::Week;
use crate::qa::score::{self, offset_text, parse_offset, percent_text, MAX_MARK};
use crate::qa::spread::spread;
use crate::store::outbox::StoreRecord;
use crate::store::qa::{self as rows, Comment, Evaluation, EvaluationRow, QaStep, Which};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

/// The queue, and calibration sessions: supervisors, the client's officer, admins.
pub const QUEUE_ROLES: &[Role] = &[Role::Supervisor, Role::Officer, Role::Admin];
/// Drawing, evaluating, answering disputes, opening and closing sessions.
pub const ACT_ROLES: &[Role] = &[Role::Supervisor, Role::Admin];
/// An operator's own scores and disputes.
pub const MINE_ROLES: &[Role] = &[Role::Operator];

/// Comment rows the evaluation form offers.
const COMMENT_ROWS: usize = 5;
/// The longest comment, dispute or answer kept.
const TEXT_MAX: usize = 2000;
/// How long a page waits for the database to hold what it just recorded.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Registers the QA routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/qa", web::get().to(queue_page))
        .route("/qa/sample", web::post().to(sample_form))
        .route("/api/qa/sample", web::post().to(sample_api))
        .route("/qa/calls/{call}", web::get().to(call_page))
        .route("/qa/calls/{call}", web::post().to(evaluate))
        .route("/qa/evaluations/{id}/answer", web::post().to(answer))
        .route("/desk/qa", web::get().to(mine_page))
        .route("/desk/qa/{id}/dispute", web::post().to(dispute))
        .route("/qa/calibrations", web::post().to(open_session))
        .route("/qa/calibrations/{id}", web::get().to(session_page))
        .route("/qa/calibrations/{id}/close", web::post().to(close_session))
        .route(
            "/qa/calibrations/{id}/calls/{call}",
            web::post().to(session_score),
        );
}

// ----- helpers -------------------------------------------------------------------------------

type Form = web::Form<HashMap<String, String>>;

fn qt(p: &Principal) -> &'static QT {
    QT::of(p.account.language)
}

fn text_of(b: &Bilingual, lang: Lang) -> String {
    match lang {
        Lang::Uz => b.uz.clone(),
        Lang::Ru => b.ru.clone(),
    }
}

fn card<'a>(router: &'a Router, tenant: &str) -> Option<&'a Scorecard> {
    router.shared.config.tenant(tenant)?.qa.as_ref()
}

fn csrf(
    p: &Principal,
    req: &HttpRequest,
    form: &HashMap<String, String>,
) -> Result<(), HttpResponse> {
    auth::check_csrf(p, req, form.get("csrf").map(String::as_str))
}

fn bad_form(p: &Principal, why: &str) -> HttpResponse {
    message(p, StatusCode::BAD_REQUEST, "bad-form", qt(p).bad_form, why)
}

fn store_down(p: &Principal) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain; charset=utf-8")
        .body(super::i18n::T::of(p.account.language).err_store)
}

/// Records `step` and waits for the fsync and (briefly) for the database, so the page the
/// answer redirects to shows it. `false`: not kept.
async fn keep(router: &Router, step: QaStep) -> bool {
    let Some(store) = router.shared.store.as_ref() else {
        return false;
    };
    let Ok(ack) = store.record(StoreRecord::Qa(Box::new(step))) else {
        return false;
    };
    let mark = store.mark();
    if ack.await.is_err() {
        return false;
    }
    store.caught_up(mark, CATCH_UP).await;
    true
}

/// A call as the QA pages need it.
struct CallFacts {
    uid: String,
    tenant: String,
    operator: Option<String>,
    arrived_ms: i64,
    recorded: bool,
}

/// The call `call` (this run's name or a store name) if it exists and `p` may see its
/// tenant; `Err` is the answer (404 or 503).
async fn call_facts(router: &Router, p: &Principal, call: &str) -> Result<CallFacts, HttpResponse> {
    let Some(uid) = router.shared.store.as_ref().map(|s| s.store_name(call)) else {
        return Err(store_down(p));
    };
    let u = uid.clone();
    let pii = super::pii(router);
    let found = with_db(router, move |pool, _| async move {
        let view = crate::accounts::db::call_view(&pool, pii.as_deref(), &u).await?;
        let recorded = crate::recordings::index::for_call(&pool, &u)
            .await?
            .is_some();
        Ok((view, recorded))
    })
    .await;
    match found {
        Ok((Some(v), recorded)) => {
            let tenant = v.tenant.clone().unwrap_or_default();
            if p.sees(&tenant).is_err() {
                return Err(not_found(p));
            }
            Ok(CallFacts {
                uid,
                tenant,
                operator: v.operator,
                arrived_ms: v.arrived_at_ms.unwrap_or(0),
                recorded,
            })
        }
        Ok((None, _)) => Err(not_found(p)),
        Err(_) => Err(store_down(p)),
    }
}

/// The player's source for `p`, when the recording route would serve them.
fn player(router: &Router, p: &Principal, f: &CallFacts) -> Option<String> {
    let rules = router
        .shared
        .config
        .tenant(&f.tenant)
        .map(|t| t.recordings)
        .unwrap_or_default();
    let own = f.operator.as_deref().is_some_and(|o| p.is_operator(o));
    let allowed = crate::recordings::access::decide(p.role(), true, own, rules)
        == crate::recordings::access::Access::Allowed;
    (f.recorded && allowed).then(|| format!("/api/recordings/{}", f.uid))
}

/// The marks of `form` (`mark_<criterion>`) on `card`, and the total.
fn marks_of(
    card: &Scorecard,
    form: &HashMap<String, String>,
    q: &QT,
    lang: Lang,
) -> Result<(Vec<(String, u8)>, score::Total), String> {
    let mut marks = Vec::with_capacity(card.criteria.len());
    for c in &card.criteria {
        let text = form
            .get(&format!("mark_{}", c.id))
            .map(String::as_str)
            .unwrap_or("");
        let mark = text
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|m| *m <= MAX_MARK)
            .ok_or_else(|| {
                format!(
                    "{}: {} \"{text}\" ({})",
                    text_of(&c.title, lang),
                    q.mark,
                    q.marks_hint
                )
            })?;
        marks.push((c.id.clone(), mark));
    }
    // Every criterion is marked once, 0-5, by construction: no other refusal is left.
    let total = score::total(card, &marks).map_err(|e| e.to_string())?;
    Ok((marks, total))
}

/// The timestamped comments of `form` (`at_N`, `text_N`); a row with text needs a time.
fn comments_of(form: &HashMap<String, String>, q: &QT) -> Result<Vec<Comment>, String> {
    let mut out = Vec::new();
    for k in 1..=COMMENT_ROWS {
        let text = form
            .get(&format!("text_{k}"))
            .map(|t| t.trim())
            .unwrap_or("");
        if text.is_empty() {
            continue;
        }
        let at = form
            .get(&format!("at_{k}"))
            .map(String::as_str)
            .unwrap_or("");
        let at_secs = parse_offset(at).ok_or_else(|| format!("{}: \"{at}\"", q.comment_at))?;
        out.push(Comment {
            at_secs,
            text: text.chars().take(TEXT_MAX).collect(),
        });
    }
    out.sort_by_key(|c| c.at_secs);
    Ok(out)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", &crate::accounts::new_secret()[..16])
}

/// A criterion of the form.
struct CriterionView {
    id: String,
    title: String,
    description: String,
    weight: u32,
    critical: bool,
}

fn criteria_view(card: &Scorecard, lang: Lang) -> Vec<CriterionView> {
    card.criteria
        .iter()
        .map(|c| CriterionView {
            id: c.id.clone(),
            title: text_of(&c.title, lang),
            description: text_of(&c.description, lang),
            weight: c.weight,
            critical: c.critical,
        })
        .collect()
}

/// An evaluation as the pages show it.
struct EvalView {
    id: String,
    call: String,
    total: String,
    zeroed: bool,
    evaluator: String,
    at: String,
    marks: Vec<(String, u8)>,
    comments: Vec<(u32, String, String)>,
    dispute: Option<String>,
    answer: Option<(String, String)>,
}

fn eval_view(router: &Router, e: &EvaluationRow, lang: Lang) -> EvalView {
    let ev = &e.evaluation;
    let card = card(router, &ev.tenant);
    let title = |id: &str| {
        card.and_then(|c| c.criterion(id))
            .map(|c| text_of(&c.title, lang))
            .unwrap_or_else(|| id.to_owned())
    };
    let zeroed = ev.total_tenths == 0
        && card.is_some_and(|c| {
            ev.marks
                .iter()
                .any(|(id, m)| *m == 0 && c.criterion(id).is_some_and(|c| c.critical))
        });
    EvalView {
        id: ev.id.clone(),
        call: ev.call_uid.clone(),
        total: percent_text(i64::from(ev.total_tenths)),
        zeroed,
        evaluator: ev.evaluator.clone(),
        at: local_time(router, ev.at_ms),
        marks: ev.marks.iter().map(|(id, m)| (title(id), *m)).collect(),
        comments: ev
            .comments
            .iter()
            .map(|c| (c.at_secs, offset_text(c.at_secs), c.text.clone()))
            .collect(),
        dispute: e.dispute_reason.clone(),
        answer: e
            .answer
            .clone()
            .map(|a| (e.answered_by.clone().unwrap_or_default(), a)),
    }
}

/// The week asked for (`?week=`), or this week in the tenant's zone.
fn week_of(router: &Router, tenant: &str, text: Option<&str>) -> Result<Week, String> {
    match text.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => Week::parse(w).map_err(|e| e.to_string()),
        None => {
            let tz = router
                .shared
                .config
                .tenant(tenant)
                .map(|t| t.timezone.clone())
                .unwrap_or(jiff::tz::TimeZone::UTC);
            Ok(Week::containing(jiff::Timestamp::now(), &tz))
        }
    }
}

/// The tenants with a scorecard that `p` works for.
fn qa_tenants(router: &Router, p: &Principal) -> Vec<String> {
    visible_tenants(router, p)
        .into_iter()
        .filter(|t| card(router, t).is_some())
        .collect()
}

async fn refresh_gauges(router: &Router) {
    if let Some(store) = router.shared.store.as_ref() {
        crate::qa::job::refresh_gauges(store, &router.shared.config, now_ms()).await;
    }
}

// ----- the queue -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "qa_queue.html")]
struct QueuePage {
    c: Chrome,
    q: &'static QT,
    tenants: Vec<(String, String)>,
    tenant: String,
    week: String,
    sample: Option<(String, i64)>,
    can_act: bool,
    rows: Vec<(String, String, String, String)>,
    disputes: Vec<EvalView>,
    sessions: Vec<(String, String, bool)>,
}

#[derive(Deserialize)]
struct QueueQuery {
    tenant: Option<String>,
    week: Option<String>,
}

async fn queue_page(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<QueueQuery>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, QUEUE_ROLES).await);
    let tenants = qa_tenants(&router, &p);
    let tenant = match &q.tenant {
        Some(t) if tenants.contains(t) => t.clone(),
        Some(_) => return not_found(&p),
        None => match tenants.first() {
            Some(t) => t.clone(),
            None => return not_found(&p),
        },
    };
    let week = match week_of(&router, &tenant, q.week.as_deref()) {
        Ok(w) => w,
        Err(e) => return bad_form(&p, &e),
    };
    let (t, w) = (tenant.clone(), week.to_string());
    let found = with_db(&router, move |pool, _| async move {
        let sample = rows::sample(&pool, &t, &w).await?;
        let queue = rows::queue(&pool, &t, &w).await?;
        let mut scored: HashMap<String, u32> = HashMap::new();
        for r in &queue {
            if let Some(e) = rows::evaluations(&pool, Which::Call(&r.call_uid))
                .await?
                .first()
            {
                scored.insert(r.call_uid.clone(), e.evaluation.total_tenths);
            }
        }
        let disputes = rows::evaluations(&pool, Which::OpenDisputes(&t)).await?;
        let sessions = rows::sessions(&pool, &t, None).await?;
        Ok((sample, queue, scored, disputes, sessions))
    })
    .await;
    let Ok((sample, queue, scored, disputes, sessions)) = found else {
        return store_down(&p);
    };
    let texts = qt(&p);
    let lang = p.account.language;
    let names = tenants
        .iter()
        .map(|id| {
            let name = router
                .shared
                .config
                .tenant(id)
                .map(|t| text_of(&t.name, lang))
                .unwrap_or_else(|| id.clone());
            (id.clone(), name)
        })
        .collect();
    audit(
        &router,
        &p,
        Some(&req),
        "qa_queue_viewed",
        Some(&tenant),
        Some(&week.to_string()),
        None,
    );
    html(
        StatusCode::OK,
        QueuePage {
            c: chrome(&p),
            q: texts,
            tenants: names,
            week: week.to_string(),
            sample: sample.map(|s| (s.seed, s.candidates)),
            can_act: ACT_ROLES.contains(&p.role()),
            rows: queue
                .iter()
                .map(|r| {
                    (
                        r.call_uid.clone(),
                        r.operator.clone().unwrap_or_default(),
                        texts.reason_name(&r.reason).to_owned(),
                        scored
                            .get(&r.call_uid)
                            .map(|t| percent_text(i64::from(*t)))
                            .unwrap_or_else(|| texts.not_scored.to_owned()),
                    )
                })
                .collect(),
            disputes: disputes
                .iter()
                .map(|e| eval_view(&router, e, lang))
                .collect(),
            sessions: sessions
                .into_iter()
                .map(|s| (s.session, s.title, s.closed_at_ms.is_none()))
                .collect(),
            tenant,
        }
        .render(),
    )
}

/// Draws a week for a page's form: the answer is the queue.
async fn sample_form(router: web::Data<Router>, req: HttpRequest, form: Form) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, ACT_ROLES).await);
    or_answer!(csrf(&p, &req, &form));
    let tenant = form.get("tenant").cloned().unwrap_or_default();
    if !qa_tenants(&router, &p).contains(&tenant) {
        return not_found(&p);
    }
    let week = match week_of(&router, &tenant, form.get("week").map(String::as_str)) {
        Ok(w) => w,
        Err(e) => return bad_form(&p, &e),
    };
    match run_sample(&router, &p, &req, &tenant, week, None).await {
        Ok(_) => redirect(&format!("/qa?tenant={tenant}&week={week}")),
        Err(e) => message(
            &p,
            StatusCode::SERVICE_UNAVAILABLE,
            "qa-failed",
            qt(&p).draw,
            &e,
        ),
    }
}

async fn run_sample(
    router: &Router,
    p: &Principal,
    req: &HttpRequest,
    tenant: &str,
    week: Week,
    seed: Option<u64>,
) -> Result<crate::qa::job::Sampled, String> {
    let store = router
        .shared
        .store
        .as_ref()
        .ok_or_else(|| "this router runs without a store".to_owned())?;
    let s = sample_week(
        store,
        &router.shared.config,
        tenant,
        week,
        Mode::Draw,
        seed,
        now_ms(),
    )
    .await
    .map_err(|e| e.to_string())?;
    audit(
        router,
        p,
        Some(req),
        "qa_sampled",
        Some(tenant),
        Some(&week.to_string()),
        Some(format!(
            "seed {}, {} candidates, {} added",
            s.seed.as_deref().unwrap_or("-"),
            s.candidates,
            s.added.len()
        )),
    );
    Ok(s)
}

#[derive(Deserialize)]
struct SampleBody {
    tenant: String,
    week: Option<String>,
    seed: Option<u64>,
}

/// `POST /api/qa/sample` `{"tenant": "dtm", "week": "2026-W49"}`: draws the week (once; a
/// later call adds its new mandatory calls) and answers what it did, with whether the
/// recorded draw re-derives from the calls now.
async fn sample_api(
    router: web::Data<Router>,
    req: HttpRequest,
    body: web::Json<SampleBody>,
) -> HttpResponse {
    let p = or_answer!(api_principal(&router, &req, ACT_ROLES).await);
    let b = body.into_inner();
    if p.sees(&b.tenant).is_err() || router.shared.config.tenant(&b.tenant).is_none() {
        return json_error(
            StatusCode::NOT_FOUND,
            "unknown_tenant",
            format!("no tenant {}", b.tenant),
        );
    }
    if card(&router, &b.tenant).is_none() {
        return json_error(
            StatusCode::CONFLICT,
            "no_scorecard",
            format!(
                "the tenant {} has no scorecard; add [tenant.qa] to its configuration",
                b.tenant
            ),
        );
    }
    let week = match week_of(&router, &b.tenant, b.week.as_deref()) {
        Ok(w) => w,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, "bad_week", e),
    };
    match run_sample(&router, &p, &req, &b.tenant, week, b.seed).await {
        Ok(s) => HttpResponse::Ok().json(s),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e),
    }
}

// ----- evaluating a call ---------------------------------------------------------------------

#[derive(Template)]
#[template(path = "qa_call.html")]
struct CallPage {
    c: Chrome,
    q: &'static QT,
    call: String,
    tenant: String,
    operator: String,
    arrived: String,
    recording: Option<String>,
    criteria: Vec<CriterionView>,
    marks: Vec<u8>,
    comment_rows: Vec<usize>,
    evaluations: Vec<EvalView>,
}

async fn call_page(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, ACT_ROLES).await);
    let f = or_answer!(call_facts(&router, &p, &path.into_inner()).await);
    let Some(card) = card(&router, &f.tenant) else {
        return message(
            &p,
            StatusCode::NOT_FOUND,
            "no-scorecard",
            qt(&p).evaluation_title,
            qt(&p).no_scorecard,
        );
    };
    let u = f.uid.clone();
    let Ok(evaluations) = with_db(&router, move |pool, _| async move {
        rows::evaluations(&pool, Which::Call(&u)).await
    })
    .await
    else {
        return store_down(&p);
    };
    let lang = p.account.language;
    audit(
        &router,
        &p,
        Some(&req),
        "qa_call_viewed",
        Some(&f.tenant),
        Some(&f.uid),
        None,
    );
    html(
        StatusCode::OK,
        CallPage {
            c: chrome(&p),
            q: qt(&p),
            recording: player(&router, &p, &f),
            arrived: local_time(&router, f.arrived_ms),
            operator: f.operator.clone().unwrap_or_default(),
            criteria: criteria_view(card, lang),
            marks: (0..=MAX_MARK).rev().collect(),
            comment_rows: (1..=COMMENT_ROWS).collect(),
            evaluations: evaluations
                .iter()
                .map(|e| eval_view(&router, e, lang))
                .collect(),
            call: f.uid,
            tenant: f.tenant,
        }
        .render(),
    )
}

/// Builds an evaluation of the call `f` by `p` from `form`; `Err` is the answer.
fn evaluation_of(
    router: &Router,
    p: &Principal,
    f: &CallFacts,
    session: Option<String>,
    form: &HashMap<String, String>,
) -> Result<Evaluation, HttpResponse> {
    let Some(card) = card(router, &f.tenant) else {
        return Err(not_found(p));
    };
    let (marks, total) =
        marks_of(card, form, qt(p), p.account.language).map_err(|e| bad_form(p, &e))?;
    let comments = comments_of(form, qt(p)).map_err(|e| bad_form(p, &e))?;
    Ok(Evaluation {
        id: new_id("qa"),
        tenant: f.tenant.clone(),
        call_uid: f.uid.clone(),
        operator: f.operator.clone(),
        evaluator: p.username().to_owned(),
        evaluator_role: p.role().as_str().to_owned(),
        session,
        marks,
        comments,
        total_tenths: total.tenths,
        at_ms: now_ms(),
    })
}

async fn evaluate(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, ACT_ROLES).await);
    or_answer!(csrf(&p, &req, &form));
    let f = or_answer!(call_facts(&router, &p, &path.into_inner()).await);
    let e = or_answer!(evaluation_of(&router, &p, &f, None, &form));
    let (id, total) = (e.id.clone(), e.total_tenths);
    if !keep(&router, QaStep::Evaluated(Box::new(e))).await {
        return store_down(&p);
    }
    audit(
        &router,
        &p,
        Some(&req),
        "qa_evaluation_saved",
        Some(&f.tenant),
        Some(&f.uid),
        Some(format!("{id}: {} %", percent_text(i64::from(total)))),
    );
    refresh_gauges(&router).await;
    redirect(&format!("/qa/calls/{}#{id}", f.uid))
}

/// A form's text field, trimmed and cut to `TEXT_MAX` characters ("" when absent).
fn short_text(form: &Form, key: &str) -> String {
    form.get(key)
        .map(|a| a.trim().chars().take(TEXT_MAX).collect())
        .unwrap_or_default()
}

/// A supervisor answers an operator's dispute.
async fn answer(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, ACT_ROLES).await);
    or_answer!(csrf(&p, &req, &form));
    let id = path.into_inner();
    let e = or_answer!(one_evaluation(&router, &p, &id).await);
    let text: String = short_text(&form, "answer");
    if text.is_empty() || e.dispute_reason.is_none() {
        return bad_form(&p, qt(&p).answer);
    }
    if e.answer.is_some() {
        return message(
            &p,
            StatusCode::CONFLICT,
            "already-answered",
            qt(&p).answered,
            qt(&p).answered,
        );
    }
    let step = QaStep::Answered {
        evaluation: id.clone(),
        by: p.username().to_owned(),
        answer: text,
        at_ms: now_ms(),
    };
    if !keep(&router, step).await {
        return store_down(&p);
    }
    audit(
        &router,
        &p,
        Some(&req),
        "qa_dispute_answered",
        Some(&e.evaluation.tenant),
        Some(&id),
        None,
    );
    redirect(&format!("/qa?tenant={}", e.evaluation.tenant))
}

/// The evaluation `id` if `p` may see its tenant (and, for an operator, it is theirs).
async fn one_evaluation(
    router: &Router,
    p: &Principal,
    id: &str,
) -> Result<EvaluationRow, HttpResponse> {
    let i = id.to_owned();
    let found = with_db(router, move |pool, _| async move {
        rows::evaluations(&pool, Which::Id(&i)).await
    })
    .await
    .map_err(|_| store_down(p))?;
    let Some(e) = found.into_iter().next() else {
        return Err(not_found(p));
    };
    let theirs = e
        .evaluation
        .operator
        .as_deref()
        .is_some_and(|o| p.is_operator(o));
    if p.sees(&e.evaluation.tenant).is_err()
        || (p.role() == Role::Operator && (!theirs || e.evaluation.session.is_some()))
    {
        return Err(not_found(p));
    }
    Ok(e)
}

// ----- the operator's own scores -------------------------------------------------------------

#[derive(Template)]
#[template(path = "qa_mine.html")]
struct MinePage {
    c: Chrome,
    q: &'static QT,
    evaluations: Vec<EvalView>,
}

async fn mine_page(router: web::Data<Router>, req: HttpRequest) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, MINE_ROLES).await);
    let ext = p.account.operator_ext.clone().unwrap_or_default();
    let e = ext.clone();
    let Ok(found) = with_db(&router, move |pool, _| async move {
        rows::evaluations(&pool, Which::Operator(&e)).await
    })
    .await
    else {
        return store_down(&p);
    };
    let lang = p.account.language;
    let evaluations = found
        .iter()
        .filter(|e| !ext.is_empty() && p.sees(&e.evaluation.tenant).is_ok())
        .map(|e| eval_view(&router, e, lang))
        .collect();
    html(
        StatusCode::OK,
        MinePage {
            c: chrome(&p),
            q: qt(&p),
            evaluations,
        }
        .render(),
    )
}

async fn dispute(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, MINE_ROLES).await);
    or_answer!(csrf(&p, &req, &form));
    let id = path.into_inner();
    let e = or_answer!(one_evaluation(&router, &p, &id).await);
    let reason: String = short_text(&form, "reason");
    if reason.is_empty() {
        return bad_form(&p, qt(&p).dispute_reason);
    }
    if e.dispute_reason.is_some() {
        return message(
            &p,
            StatusCode::CONFLICT,
            "already-disputed",
            qt(&p).disputed,
            qt(&p).already_disputed,
        );
    }
    let step = QaStep::Disputed {
        evaluation: id.clone(),
        by: p.username().to_owned(),
        reason,
        at_ms: now_ms(),
    };
    if !keep(&router, step).await {
        return store_down(&p);
    }
    audit(
        &router,
        &p,
        Some(&req),
        "qa_dispute",
        Some(&e.evaluation.tenant),
        Some(&id),
        None,
    );
    redirect("/desk/qa")
}

// ----- calibration ---------------------------------------------------------------------------

async fn open_session(router: web::Data<Router>, req: HttpRequest, form: Form) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, ACT_ROLES).await);
    or_answer!(csrf(&p, &req, &form));
    let tenant = form.get("tenant").cloned().unwrap_or_default();
    if !qa_tenants(&router, &p).contains(&tenant) {
        return not_found(&p);
    }
    let mut calls = Vec::new();
    for c in form
        .get("calls")
        .map(String::as_str)
        .unwrap_or("")
        .split(|ch: char| ch.is_whitespace() || ch == ',')
        .filter(|c| !c.is_empty())
        .take(50)
    {
        let f = or_answer!(call_facts(&router, &p, c).await);
        if f.tenant != tenant {
            return not_found(&p);
        }
        if !calls.contains(&f.uid) {
            calls.push(f.uid);
        }
    }
    if calls.is_empty() {
        return bad_form(&p, qt(&p).session_calls);
    }
    let id = new_id("cal");
    let title: String = form
        .get("title")
        .map(|t| t.trim().chars().take(200).collect())
        .unwrap_or_default();
    let step = QaStep::SessionOpened {
        session: id.clone(),
        tenant: tenant.clone(),
        title,
        calls: calls.clone(),
        by: p.username().to_owned(),
        at_ms: now_ms(),
    };
    if !keep(&router, step).await {
        return store_down(&p);
    }
    audit(
        &router,
        &p,
        Some(&req),
        "qa_calibration_opened",
        Some(&tenant),
        Some(&id),
        Some(format!("{} calls", calls.len())),
    );
    redirect(&format!("/qa/calibrations/{id}"))
}

/// A spread line: criterion id, its title, min, max, mean, std-dev (as shown).
type SpreadLine = (String, String, String, String, String, String);

/// One call of a session as the page shows it.
struct SessionCall {
    call: String,
    recording: Option<String>,
    /// Whether `p` may score it now (open, not scored by them yet).
    can_score: bool,
    /// The spread, when `p` may see it (they scored it, or the session is closed):
    /// (criterion title, min, max, mean, std-dev), the last line the total.
    spread: Option<(usize, Vec<SpreadLine>)>,
}

#[derive(Template)]
#[template(path = "qa_session.html")]
struct SessionPage {
    c: Chrome,
    q: &'static QT,
    id: String,
    title: String,
    tenant: String,
    open: bool,
    can_close: bool,
    criteria: Vec<CriterionView>,
    marks: Vec<u8>,
    calls: Vec<SessionCall>,
}

/// The session `id` and its evaluations, if `p` may see its tenant.
async fn one_session(
    router: &Router,
    p: &Principal,
    id: &str,
) -> Result<(rows::SessionRow, Vec<EvaluationRow>), HttpResponse> {
    let i = id.to_owned();
    let found = with_db(router, move |pool, _| async move {
        let s = rows::sessions(&pool, "", Some(&i)).await?;
        let e = rows::evaluations(&pool, Which::Session(&i)).await?;
        Ok((s, e))
    })
    .await
    .map_err(|_| store_down(p))?;
    match found {
        (s, e) if !s.is_empty() && p.sees(&s[0].tenant).is_ok() => {
            Ok((s.into_iter().next().unwrap_or_else(|| unreachable!()), e))
        }
        _ => Err(not_found(p)),
    }
}

fn fixed(v: f64) -> String {
    format!("{v:.2}")
}

async fn session_page(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, QUEUE_ROLES).await);
    let (s, evaluations) = or_answer!(one_session(&router, &p, &path.into_inner()).await);
    let Some(card) = card(&router, &s.tenant) else {
        return not_found(&p);
    };
    let lang = p.account.language;
    let open = s.closed_at_ms.is_none();
    let mut calls = Vec::new();
    for uid in &s.calls {
        let f = or_answer!(call_facts(&router, &p, uid).await);
        let on_call: Vec<&Evaluation> = evaluations
            .iter()
            .map(|e| &e.evaluation)
            .filter(|e| &e.call_uid == uid)
            .collect();
        let mine = on_call.iter().any(|e| e.evaluator == p.username());
        // Blind: the others' scores only once this evaluator has given theirs, or the
        // session is closed.
        let spread_rows = (mine || !open).then(|| {
            let mut lines = Vec::new();
            for c in &card.criteria {
                let values: Vec<f64> = on_call
                    .iter()
                    .filter_map(|e| e.marks.iter().find(|(id, _)| *id == c.id))
                    .map(|(_, m)| f64::from(*m))
                    .collect();
                if let Some(sp) = spread(&values) {
                    lines.push((
                        c.id.clone(),
                        text_of(&c.title, lang),
                        fixed(sp.min),
                        fixed(sp.max),
                        fixed(sp.mean),
                        fixed(sp.std_dev),
                    ));
                }
            }
            let totals: Vec<f64> = on_call
                .iter()
                .map(|e| f64::from(e.total_tenths) / 10.0)
                .collect();
            if let Some(sp) = spread(&totals) {
                lines.push((
                    "total".to_owned(),
                    qt(&p).total.to_owned(),
                    fixed(sp.min),
                    fixed(sp.max),
                    fixed(sp.mean),
                    fixed(sp.std_dev),
                ));
            }
            (on_call.len(), lines)
        });
        calls.push(SessionCall {
            recording: player(&router, &p, &f),
            can_score: open && !mine,
            spread: spread_rows,
            call: f.uid,
        });
    }
    audit(
        &router,
        &p,
        Some(&req),
        "qa_calibration_viewed",
        Some(&s.tenant),
        Some(&s.session),
        None,
    );
    html(
        StatusCode::OK,
        SessionPage {
            c: chrome(&p),
            q: qt(&p),
            id: s.session,
            title: s.title,
            tenant: s.tenant,
            open,
            can_close: open && ACT_ROLES.contains(&p.role()),
            criteria: criteria_view(card, lang),
            marks: (0..=MAX_MARK).rev().collect(),
            calls,
        }
        .render(),
    )
}

async fn session_score(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: Form,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, QUEUE_ROLES).await);
    or_answer!(csrf(&p, &req, &form));
    let (id, call) = path.into_inner();
    let (s, evaluations) = or_answer!(one_session(&router, &p, &id).await);
    let f = or_answer!(call_facts(&router, &p, &call).await);
    if !s.calls.contains(&f.uid) {
        return not_found(&p);
    }
    if s.closed_at_ms.is_some()
        || evaluations
            .iter()
            .any(|e| e.evaluation.call_uid == f.uid && e.evaluation.evaluator == p.username())
    {
        return message(
            &p,
            StatusCode::CONFLICT,
            "already-scored",
            qt(&p).calibration,
            qt(&p).already_scored,
        );
    }
    let e = or_answer!(evaluation_of(&router, &p, &f, Some(id.clone()), &form));
    let total = e.total_tenths;
    if !keep(&router, QaStep::Evaluated(Box::new(e))).await {
        return store_down(&p);
    }
    audit(
        &router,
        &p,
        Some(&req),
        "qa_calibration_scored",
        Some(&s.tenant),
        Some(&id),
        Some(format!("{}: {} %", f.uid, percent_text(i64::from(total)))),
    );
    redirect(&format!("/qa/calibrations/{id}"))
}

async fn close_session(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, ACT_ROLES).await);
    or_answer!(csrf(&p, &req, &form));
    let id = path.into_inner();
    let (s, evaluations) = or_answer!(one_session(&router, &p, &id).await);
    if s.closed_at_ms.is_none() {
        let step = QaStep::SessionClosed {
            session: id.clone(),
            by: p.username().to_owned(),
            at_ms: now_ms(),
        };
        if !keep(&router, step).await {
            return store_down(&p);
        }
        audit(
            &router,
            &p,
            Some(&req),
            "qa_calibration_closed",
            Some(&s.tenant),
            Some(&id),
            Some(format!("{} scores", evaluations.len())),
        );
    }
    redirect(&format!("/qa/calibrations/{id}"))
}
