//! The desk's pages and their actions. Every handler states the roles it allows; tenant
//! checks answer 404 (what belongs to another tenant is not there for you); every form
//! carries the session's CSRF token.

use super::auth::{
    self, audit, audit_as, client_ip, now_ms, LANG_COOKIE, LOGIN_CSRF_COOKIE, SESSION_COOKIE,
};
use super::disposition::{self, Form as DispositionForm, OUTCOMES};
use super::i18n::T;
use super::live::{LiveCall, Notice};
use super::with_db;
use crate::accounts::limiter::Verdict;
use crate::accounts::{self, db, Lang, Principal, Role};
use crate::actors::Router;
use crate::store::outbox::StoreRecord;
use crate::store::people::DispositionRecord;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use std::collections::HashMap;

// ----- common ------------------------------------------------------------------------------

/// What every page's frame needs.
pub struct Chrome {
    /// Texts.
    pub t: &'static T,
    /// Username.
    pub user: String,
    /// Role name.
    pub role: &'static str,
    /// CSRF token for forms.
    pub csrf: String,
    /// Logged in.
    pub signed_in: bool,
    /// Shows the desk link.
    pub has_desk: bool,
    /// Shows the floor link.
    pub has_floor: bool,
    /// Shows the audit link.
    pub has_audit: bool,
    /// Shows the reports link (monthly statistics).
    pub has_reports: bool,
    /// Shows the requests link (with its texts).
    pub requests: Option<&'static super::rtexts::RT>,
}

const DESK_ROLES: &[Role] = &[Role::Operator, Role::Supervisor, Role::Admin];
const FLOOR_ROLES: &[Role] = &[Role::Supervisor, Role::Officer, Role::Admin];
const ACT_ROLES: &[Role] = &[Role::Supervisor, Role::Admin];
const KB_WRITE_ROLES: &[Role] = &[Role::Editor, Role::Supervisor, Role::Admin];
const AUDIT_ROLES: &[Role] = &[Role::Officer, Role::Admin];
pub(super) const EVERYONE: &[Role] = &[
    Role::Operator,
    Role::Supervisor,
    Role::Editor,
    Role::Officer,
    Role::Admin,
];

pub(super) fn chrome(p: &Principal) -> Chrome {
    let role = p.role();
    Chrome {
        t: T::of(p.account.language),
        user: p.account.display_name.clone(),
        role: role.as_str(),
        csrf: p.csrf().unwrap_or_default().to_owned(),
        signed_in: true,
        has_desk: DESK_ROLES.contains(&role),
        has_floor: FLOOR_ROLES.contains(&role),
        has_audit: AUDIT_ROLES.contains(&role),
        has_reports: super::reports::REPORT_ROLES.contains(&role),
        requests: Some(super::rtexts::RT::of(p.account.language)),
    }
}

pub(super) fn html(status: StatusCode, body: Result<String, askama::Error>) -> HttpResponse {
    match body {
        Ok(b) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header(("X-Frame-Options", "DENY"))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .insert_header(("Referrer-Policy", "same-origin"))
            .body(b),
        Err(e) => {
            tracing::error!(error = %e, "desk template failed");
            HttpResponse::InternalServerError().body("template error")
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    c: Chrome,
    id: &'a str,
    title: &'a str,
    text: &'a str,
}

pub(super) fn message(
    p: &Principal,
    status: StatusCode,
    id: &str,
    title: &str,
    text: &str,
) -> HttpResponse {
    html(
        status,
        MessagePage {
            c: chrome(p),
            id,
            title,
            text,
        }
        .render(),
    )
}

pub(super) fn forbidden(p: &Principal) -> HttpResponse {
    let t = T::of(p.account.language);
    message(
        p,
        StatusCode::FORBIDDEN,
        "forbidden",
        t.forbidden_title,
        t.forbidden_text,
    )
}

pub(super) fn not_found(p: &Principal) -> HttpResponse {
    let t = T::of(p.account.language);
    message(
        p,
        StatusCode::NOT_FOUND,
        "not-found",
        t.not_found_title,
        t.not_found_text,
    )
}

pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

/// The principal for a page: a redirect to the login page without one, the 403 page for
/// another role.
pub(super) async fn page_principal(
    router: &Router,
    req: &HttpRequest,
    roles: &[Role],
) -> Result<Principal, HttpResponse> {
    match auth::principal(router, req).await {
        Ok(p) if p.require(roles).is_ok() => Ok(p),
        Ok(p) => Err(forbidden(&p)),
        Err(auth::AuthError::Missing) => {
            let next = req.uri().path();
            Err(redirect(&format!(
                "/login?next={}",
                if next.starts_with('/') && !next.starts_with("//") {
                    next
                } else {
                    "/"
                }
            )))
        }
        Err(auth::AuthError::Store(e)) => Err(HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "{} / {}: {e}",
                super::i18n::UZ.err_store,
                super::i18n::RU.err_store
            ))),
    }
}

fn landing(role: Role) -> &'static str {
    match role {
        Role::Operator => "/desk",
        Role::Supervisor | Role::Officer | Role::Admin => "/supervisor",
        Role::Editor => "/kb",
    }
}

/// The desk's time zone: the first tenant's.
fn zone(router: &Router) -> jiff::tz::TimeZone {
    router
        .shared
        .config
        .tenants
        .first()
        .map(|t| t.timezone.clone())
        .unwrap_or(jiff::tz::TimeZone::UTC)
}

pub(super) fn local_time(router: &Router, ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|ts| {
            zone(router)
                .to_datetime(ts)
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

pub(super) fn duration_text(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn tenant_name(router: &Router, tenant: &str, lang: Lang) -> String {
    router
        .shared
        .config
        .tenants
        .iter()
        .find(|t| t.id == tenant)
        .map(|t| match lang {
            Lang::Uz => t.name.uz.clone(),
            Lang::Ru => t.name.ru.clone(),
        })
        .unwrap_or_else(|| tenant.to_owned())
}

fn topic_label(router: &Router, tenant: &str, topic: Option<&str>, lang: Lang) -> String {
    let Some(topic) = topic else {
        return "-".into();
    };
    router
        .shared
        .config
        .tenants
        .iter()
        .find(|t| t.id == tenant)
        .and_then(|t| t.desk.classifier.iter().find(|(code, _)| code == topic))
        .map(|(_, l)| match lang {
            Lang::Uz => l.uz.clone(),
            Lang::Ru => l.ru.clone(),
        })
        .unwrap_or_else(|| topic.to_owned())
}

/// The caller as this principal may see them (D18).
fn caller_shown(router: &Router, p: &Principal, caller: &crate::privacy::PhoneNumber) -> String {
    if router
        .shared
        .config
        .desk
        .full_number_roles
        .contains(&p.role())
    {
        caller.expose().to_owned()
    } else {
        caller.masked()
    }
}

pub(super) fn visible_tenants(router: &Router, p: &Principal) -> Vec<String> {
    router
        .shared
        .config
        .tenants
        .iter()
        .filter(|t| p.account.tenants.allows(&t.id))
        .map(|t| t.id.clone())
        .collect()
}

// ----- login, logout, language ---------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    error: Option<String>,
    next: String,
    username: String,
}

fn lang_of_request(req: &HttpRequest) -> Lang {
    req.cookie(LANG_COOKIE)
        .and_then(|c| Lang::parse(c.value()))
        .unwrap_or_default()
}

fn cookie<'a>(router: &Router, name: &'a str, value: String, max_age_secs: i64) -> Cookie<'a> {
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    c.set_http_only(true);
    c.set_same_site(SameSite::Strict);
    c.set_secure(router.shared.config.desk.secure_cookies);
    c.set_max_age(actix_web::cookie::time::Duration::seconds(max_age_secs));
    c
}

fn login_page(
    router: &Router,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<String>,
    next: &str,
    username: &str,
) -> HttpResponse {
    let csrf = req
        .cookie(LOGIN_CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 64)
        .unwrap_or_else(accounts::new_secret);
    let c = Chrome {
        t: T::of(lang_of_request(req)),
        user: String::new(),
        role: "",
        csrf: csrf.clone(),
        signed_in: false,
        has_desk: false,
        has_floor: false,
        has_audit: false,
        has_reports: false,
        requests: None,
    };
    let mut resp = html(
        status,
        LoginPage {
            c,
            error,
            next: next.to_owned(),
            username: username.to_owned(),
        }
        .render(),
    );
    let _ = resp.add_cookie(&cookie(router, LOGIN_CSRF_COOKIE, csrf, 3600));
    resp
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

fn safe_next(next: Option<&str>) -> Option<String> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .map(str::to_owned)
}

async fn login_form(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<NextQuery>,
) -> HttpResponse {
    if let Ok(p) = auth::principal(&router, &req).await {
        return redirect(landing(p.role()));
    }
    let next = safe_next(q.next.as_deref()).unwrap_or_default();
    login_page(&router, &req, StatusCode::OK, None, &next, "")
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn login(
    router: web::Data<Router>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let t = T::of(lang_of_request(&req));
    let expected = req.cookie(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    if !expected.is_some_and(|e| accounts::same_secret(&e, &form.csrf)) {
        metrics::counter!("navbat_desk_csrf_refused_total").increment(1);
        return login_page(
            &router,
            &req,
            StatusCode::FORBIDDEN,
            Some(t.login_expired.to_owned()),
            &form.next,
            "",
        );
    }
    let username = form.username.trim().to_lowercase();
    let ip = client_ip(&req);
    let now = now_ms().max(0) as u64;
    let verdict = router
        .shared
        .desk
        .limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(now, &username, ip);
    if let Verdict::Wait {
        retry_after_ms,
        scope,
    } = verdict
    {
        metrics::counter!("navbat_desk_logins_total", "result" => "limited").increment(1);
        let secs = retry_after_ms.div_ceil(1000);
        tracing::warn!(account = %username, source = %ip, ?scope, retry_after_secs = secs, "web login refused: too many failures");
        let mut resp = login_page(
            &router,
            &req,
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!("{} {secs}", t.login_wait)),
            &form.next,
            &username,
        );
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let lookup = username.clone();
    let found = with_db(&router, move |pool, _| async move {
        db::for_login(&pool, &lookup).await
    })
    .await;
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            return login_page(
                &router,
                &req,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(format!("{} ({e})", t.err_store)),
                &form.next,
                &username,
            )
        }
    };
    let (hash, account) = match found {
        Some((a, h)) if !a.disabled => (h, Some(a)),
        _ => (accounts::dummy_hash().to_owned(), None),
    };
    let password = form.password.clone();
    // argon2 takes tens of milliseconds of CPU: off the HTTP worker.
    let ok = web::block(move || accounts::verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let Some(account) = account.filter(|_| ok) else {
        router
            .shared
            .desk
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed(now, &username, ip);
        metrics::counter!("navbat_desk_logins_total", "result" => "failed").increment(1);
        tracing::warn!(account = %username, source = %ip, "web login failed");
        audit_as(
            &router,
            &username,
            None,
            Some(ip),
            "login_failed",
            None,
            None,
            None,
        );
        return login_page(
            &router,
            &req,
            StatusCode::UNAUTHORIZED,
            Some(t.login_failed.to_owned()),
            &form.next,
            &username,
        );
    };
    router
        .shared
        .desk
        .limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .succeeded(&username, ip);
    let secret = accounts::new_secret();
    let csrf = accounts::new_secret();
    let ttl = router.shared.config.desk.session_ttl;
    let now_i = now_ms();
    let expires = now_i + ttl.as_millis() as i64;
    let id_hash = accounts::secret_hash(&secret);
    let (u, c, src) = (account.username.clone(), csrf.clone(), ip.to_string());
    let created = with_db(&router, move |pool, _| async move {
        db::create_session(&pool, &id_hash, &u, &c, &src, now_i, expires).await
    })
    .await;
    if let Err(e) = created {
        return login_page(
            &router,
            &req,
            StatusCode::SERVICE_UNAVAILABLE,
            Some(format!("{} ({e})", t.err_store)),
            &form.next,
            &username,
        );
    }
    metrics::counter!("navbat_desk_logins_total", "result" => "ok").increment(1);
    let p = Principal {
        account: account.clone(),
        via: accounts::Via::Session {
            csrf,
            id_hash: String::new(),
        },
    };
    audit(&router, &p, Some(&req), "login", None, None, None);
    let to = safe_next(Some(&form.next)).unwrap_or_else(|| landing(account.role).to_owned());
    let mut resp = redirect(&to);
    let _ = resp.add_cookie(&cookie(
        &router,
        SESSION_COOKIE,
        secret,
        ttl.as_secs() as i64,
    ));
    let mut gone = cookie(&router, LOGIN_CSRF_COOKIE, String::new(), 0);
    gone.make_removal();
    let _ = resp.add_cookie(&gone);
    resp
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    router: web::Data<Router>,
    req: HttpRequest,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let Ok(p) = auth::principal(&router, &req).await else {
        return redirect("/login");
    };
    if let Err(resp) = auth::check_csrf(&p, &req, Some(&form.csrf)) {
        return resp;
    }
    if let accounts::Via::Session { id_hash, .. } = &p.via {
        let h = id_hash.clone();
        router.shared.desk.forget(&h);
        let _ = with_db(&router, move |pool, _| async move {
            db::delete_session(&pool, &h).await
        })
        .await;
    }
    audit(&router, &p, Some(&req), "logout", None, None, None);
    let mut resp = redirect("/login");
    let mut gone = cookie(&router, SESSION_COOKIE, String::new(), 0);
    gone.make_removal();
    let _ = resp.add_cookie(&gone);
    resp
}

#[derive(Deserialize)]
struct LangForm {
    #[serde(default)]
    csrf: String,
    lang: String,
}

async fn set_lang(
    router: web::Data<Router>,
    req: HttpRequest,
    form: web::Form<LangForm>,
) -> HttpResponse {
    let lang = Lang::parse(&form.lang).unwrap_or_default();
    let back = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("://").map(|i| &r[i + 3..]))
        .and_then(|r| r.find('/').map(|i| r[i..].to_owned()))
        .and_then(|p| safe_next(Some(&p)))
        .unwrap_or_else(|| "/".into());
    match auth::principal(&router, &req).await {
        Ok(p) => {
            if let Err(resp) = auth::check_csrf(&p, &req, Some(&form.csrf)) {
                return resp;
            }
            let u = p.username().to_owned();
            let _ = with_db(&router, move |pool, _| async move {
                db::set_language(&pool, &u, lang).await
            })
            .await;
            router.shared.desk.forget_user(p.username());
            let mut resp = redirect(&back);
            let _ = resp.add_cookie(&cookie(
                &router,
                LANG_COOKIE,
                lang.as_str().into(),
                365 * 86_400,
            ));
            resp
        }
        Err(_) => {
            let mut resp = redirect(&back);
            let _ = resp.add_cookie(&cookie(
                &router,
                LANG_COOKIE,
                lang.as_str().into(),
                365 * 86_400,
            ));
            resp
        }
    }
}

async fn root(router: web::Data<Router>, req: HttpRequest) -> HttpResponse {
    match auth::principal(&router, &req).await {
        Ok(p) => redirect(landing(p.role())),
        Err(_) => redirect("/login"),
    }
}

// ----- the operator's desk -------------------------------------------------------------------

#[derive(Template)]
#[template(path = "desk.html")]
struct DeskPage {
    c: Chrome,
    ext: Option<String>,
    state: String,
    break_reasons: Vec<(String, String)>,
    figures: db::DayFigures,
    talk: String,
    pop: Option<String>,
}

struct HistoryView {
    call: String,
    when: String,
    topic: String,
    outcome: String,
    category: Option<String>,
    notes: String,
}

#[derive(Template)]
#[template(path = "pop.html")]
struct PopFragment {
    t: &'static T,
    csrf: String,
    call: String,
    phase: &'static str,
    caller: String,
    tenant: String,
    tenant_name: String,
    language: String,
    topic: String,
    topic_code: String,
    waited: String,
    history: Vec<HistoryView>,
    categories: Vec<(String, String)>,
    topics: Vec<(String, String)>,
    outcomes: Vec<(String, String)>,
    require_details: bool,
    articles: Vec<(String, String, String)>,
}

async fn operator_state(router: &Router, ext: &str) -> String {
    match router
        .acd
        .send(crate::actors::acd_host::OperatorStates)
        .await
    {
        Ok(list) => list
            .into_iter()
            .find(|o| o.ext == ext)
            .map(|o| o.state)
            .unwrap_or_else(|| "logged_out".into()),
        Err(_) => "logged_out".into(),
    }
}

fn start_of_today_ms(router: &Router) -> i64 {
    let tz = zone(router);
    let today = tz.to_datetime(jiff::Timestamp::now()).start_of_day();
    tz.to_timestamp(today)
        .map(|t| t.as_millisecond())
        .unwrap_or(0)
}

/// Renders the screen pop of `call` for `p`.
async fn render_pop(router: &Router, p: &Principal, call: &LiveCall) -> String {
    let lang = p.account.language;
    let t = T::of(lang);
    let phase = if call.ended.is_some() {
        "ended"
    } else if call.answered_at_ms.is_some() {
        "talking"
    } else {
        "ringing"
    };
    let since = call.enqueued_at_ms.unwrap_or(call.arrived_at_ms);
    let until = call
        .answered_at_ms
        .or(call.ended.map(|e| e.0))
        .unwrap_or_else(|| now_ms().max(0) as u64);
    let tenant_cfg = router
        .shared
        .config
        .tenants
        .iter()
        .find(|x| x.id == call.tenant);
    let (categories, topics, require_details) = match tenant_cfg {
        Some(tc) => (
            tc.desk
                .categories
                .iter()
                .map(|c| (c.clone(), t.category_name(c).to_owned()))
                .collect(),
            tc.desk
                .classifier
                .iter()
                .map(|(code, l)| {
                    (
                        code.clone(),
                        match lang {
                            Lang::Uz => l.uz.clone(),
                            Lang::Ru => l.ru.clone(),
                        },
                    )
                })
                .collect(),
            tc.desk.require_caller_details,
        ),
        None => (Vec::new(), Vec::new(), false),
    };
    // Earlier calls of the same number within the repeat window, of the tenants this person
    // works for, with their dispositions (C10).
    let mut history = Vec::new();
    if let Some(store) = router.shared.store.as_ref() {
        if let Ok(Some(h)) = store.history(&call.call).await {
            let items: Vec<_> = h
                .earlier
                .into_iter()
                .filter(|i| {
                    i.tenant
                        .as_deref()
                        .is_some_and(|tn| p.account.tenants.allows(tn))
                })
                .take(10)
                .collect();
            let uids: Vec<String> = items.iter().map(|i| i.call.clone()).collect();
            let pii = super::pii(router);
            let disp: HashMap<String, DispositionRecord> =
                with_db(router, move |pool, _| async move {
                    db::dispositions(&pool, pii.as_deref(), &uids).await
                })
                .await
                .unwrap_or_default()
                .into_iter()
                .map(|d| (d.call_uid.clone(), d))
                .collect();
            for i in items {
                let d = disp.get(&i.call);
                history.push(HistoryView {
                    when: local_time(router, i.arrived_at_ms.unwrap_or(0)),
                    topic: topic_label(
                        router,
                        i.tenant.as_deref().unwrap_or(""),
                        i.topic.as_deref(),
                        lang,
                    ),
                    outcome: d
                        .map(|d| t.outcome_name(&d.outcome).to_owned())
                        .unwrap_or_else(|| {
                            t.outcome_name(i.outcome.as_deref().unwrap_or(""))
                                .to_owned()
                        }),
                    category: d.map(|d| t.category_name(&d.category).to_owned()),
                    notes: d.map(|d| d.notes.clone()).unwrap_or_default(),
                    call: i.call,
                });
            }
        }
    }
    let (tenant, topic) = (call.tenant.clone(), call.topic.clone());
    let articles = with_db(router, move |pool, _| async move {
        db::articles(&pool, &tenant, topic.as_deref(), 5).await
    })
    .await
    .unwrap_or_default()
    .into_iter()
    .map(|a| {
        (
            a.id.clone(),
            a.title(lang).to_owned(),
            a.body(lang).to_owned(),
        )
    })
    .collect();
    PopFragment {
        t,
        csrf: p.csrf().unwrap_or_default().to_owned(),
        call: call.call.clone(),
        phase,
        caller: caller_shown(router, p, &call.caller),
        tenant: call.tenant.clone(),
        tenant_name: tenant_name(router, &call.tenant, lang),
        language: call.language.clone().unwrap_or_else(|| "-".into()),
        topic: topic_label(router, &call.tenant, call.topic.as_deref(), lang),
        topic_code: call.topic.clone().unwrap_or_default(),
        waited: duration_text(until.saturating_sub(since) as i64),
        history,
        categories,
        topics,
        outcomes: OUTCOMES
            .iter()
            .map(|o| ((*o).to_owned(), t.outcome_name(o).to_owned()))
            .collect(),
        require_details,
        articles,
    }
    .render()
    .unwrap_or_else(|e| format!("<p class=\"error\">{e}</p>"))
}

async fn desk_page(router: web::Data<Router>, req: HttpRequest) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, DESK_ROLES).await);
    let ext = p.account.operator_ext.clone();
    let lang = p.account.language;
    let (state, figures, pop) = match &ext {
        Some(e) => {
            let from = start_of_today_ms(&router);
            let e2 = e.clone();
            let figures = with_db(&router, move |pool, _| async move {
                db::day_figures(&pool, &e2, from).await
            })
            .await
            .unwrap_or_default();
            let pop = match router.shared.desk.live.latest_for(e) {
                Some(call) if p.account.tenants.allows(&call.tenant) => {
                    Some(render_pop(&router, &p, &call).await)
                }
                _ => None,
            };
            (operator_state(&router, e).await, figures, pop)
        }
        None => ("logged_out".into(), db::DayFigures::default(), None),
    };
    let break_reasons = router
        .shared
        .config
        .desk
        .break_reasons
        .iter()
        .map(|b| {
            (
                b.code.clone(),
                match lang {
                    Lang::Uz => b.label.uz.clone(),
                    Lang::Ru => b.label.ru.clone(),
                },
            )
        })
        .collect();
    html(
        StatusCode::OK,
        DeskPage {
            c: chrome(&p),
            ext,
            state,
            break_reasons,
            talk: duration_text(figures.talk_ms),
            figures,
            pop,
        }
        .render(),
    )
}

fn sse_frame(event: &str, data: &str) -> web::Bytes {
    let mut out = format!("event: {event}\n");
    for line in data.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    web::Bytes::from(out)
}

/// `GET /desk/events`: Server-Sent Events for the operator's own desk: `pop` (the screen
/// pop, rendered, when their phone rings, is answered and when the call ends) and `state`.
async fn desk_events(router: web::Data<Router>, req: HttpRequest) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, DESK_ROLES).await);
    let Some(ext) = p.account.operator_ext.clone() else {
        return HttpResponse::NoContent().finish();
    };
    let mut rx = router.shared.desk.live.subscribe();
    let router = router.into_inner();
    let (tx, response) = sse_channel(16);
    actix_web::rt::spawn(async move {
        loop {
            let notice = tokio::select! {
                n = rx.recv() => n,
                _ = tokio::time::sleep(std::time::Duration::from_secs(15)) => {
                    if tx.send(Ok(web::Bytes::from_static(b": keep-alive\n\n"))).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let notice = match notice {
                Ok(n) => n,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    metrics::counter!("navbat_desk_notices_lagged_total").increment(n);
                    crate::metrics::mailbox_shed("desk_live", n);
                    continue;
                }
                Err(_) => return,
            };
            if notice.operator() != Some(ext.as_str()) {
                continue;
            }
            let t = T::of(p.account.language);
            let frame = match &notice {
                Notice::Offered { call, .. } => {
                    let Some(live) = router.shared.desk.live.get(call) else {
                        continue;
                    };
                    if !p.account.tenants.allows(&live.tenant) {
                        continue;
                    }
                    metrics::counter!("navbat_desk_screen_pops_total").increment(1);
                    sse_frame("pop", &render_pop(&router, &p, &live).await)
                }
                // Only the heading changes: what the operator is typing in the form stays.
                Notice::Answered { .. } => sse_frame("phase", t.pop_talking),
                Notice::Ended { .. } => sse_frame("phase", t.pop_ended),
                Notice::Withdrawn { .. } => sse_frame(
                    "pop",
                    &format!("<p id=\"no-call\">{}</p>", t.waiting_for_call),
                ),
                Notice::State { to, .. } => sse_frame("state", t.state_name(to)),
            };
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
        }
    });
    response
}

/// A Server-Sent Events response and the sender that feeds it (`capacity` frames queued at
/// most), with its first comment line already queued so the browser sees the stream open.
fn sse_channel(
    capacity: usize,
) -> (
    tokio::sync::mpsc::Sender<Result<web::Bytes, actix_web::Error>>,
    HttpResponse,
) {
    let (tx, body) = tokio::sync::mpsc::channel(capacity.max(1));
    // The channel is new and empty: this cannot fail.
    let _ = tx.try_send(Ok(web::Bytes::from_static(b": connected\n\n")));
    let response = HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(tokio_stream_from(body));
    (tx, response)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<web::Bytes, actix_web::Error>>,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[derive(Deserialize)]
struct StateForm {
    #[serde(default)]
    csrf: String,
    state: String,
    reason: Option<String>,
}

/// Why an operator's state was not changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateChangeError {
    /// Not `available`, `break` or `logged_out`.
    UnknownState,
    /// No operator with that extension.
    UnknownOperator,
}

/// Sets operator `ext`'s state (`available`, `break`, `logged_out`) in the ACD and audits it
/// with the break's reason. Every page and route that changes an operator's state comes
/// here (after its own role and scope checks).
pub(crate) async fn change_operator_state(
    router: &Router,
    p: &Principal,
    req: &HttpRequest,
    ext: &str,
    state: &str,
    reason: Option<&str>,
) -> Result<(), StateChangeError> {
    use crate::acd::OperatorState as S;
    let to = match state {
        "available" => S::Available,
        "break" => S::Break,
        "logged_out" => S::LoggedOut,
        _ => return Err(StateChangeError::UnknownState),
    };
    let id = router
        .shared
        .model
        .operator(ext)
        .ok_or(StateChangeError::UnknownOperator)?;
    // Awaited, so the next read of the state sees the change.
    let _ = router
        .acd
        .send(crate::actors::acd_host::Feed(
            crate::acd::Input::SetOperatorState {
                operator: id,
                state: to,
            },
        ))
        .await;
    let detail = match reason.filter(|_| to == S::Break) {
        Some(r) => format!("{state} ({r})"),
        None => state.to_owned(),
    };
    audit(
        router,
        p,
        Some(req),
        "operator_state",
        None,
        Some(ext),
        Some(detail),
    );
    Ok(())
}

async fn desk_state(
    router: web::Data<Router>,
    req: HttpRequest,
    form: web::Form<StateForm>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, DESK_ROLES).await);
    or_answer!(auth::check_csrf(&p, &req, Some(&form.csrf)));
    let Some(ext) = p.account.operator_ext.clone() else {
        return forbidden(&p);
    };
    let reason = form.reason.as_deref().filter(|r| {
        router
            .shared
            .config
            .desk
            .break_reasons
            .iter()
            .any(|b| b.code == *r)
    });
    if change_operator_state(&router, &p, &req, &ext, &form.state, reason)
        .await
        .is_err()
    {
        return not_found(&p);
    }
    redirect("/desk")
}

#[derive(Template)]
#[template(path = "acw_result.html")]
struct AcwResult {
    t: &'static T,
    problems: Vec<(&'static str, &'static str)>,
    revision: i64,
    request: Option<String>,
}

fn store_uid(router: &Router, call: &str) -> Option<String> {
    Some(router.shared.store.as_ref()?.store_name(call))
}

/// Saves the after-call form (C8, C10, D20): checked, written through the journal (the
/// answer waits for the fsync), an event emitted, audited; ends wrap-up where the tenant says
/// saving does.
async fn save_disposition(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<DispositionForm>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, DESK_ROLES).await);
    or_answer!(auth::check_csrf(&p, &req, Some(&form.csrf)));
    let t = T::of(p.account.language);
    let call = path.into_inner();
    let Some(uid) = store_uid(&router, &call) else {
        return HttpResponse::ServiceUnavailable().body(t.err_store);
    };
    let (tenant, operator) = match super::call_owner(&router, &call).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(&p),
        Err(_) => return HttpResponse::ServiceUnavailable().body(t.err_store),
    };
    if p.sees(&tenant).is_err() {
        return not_found(&p);
    }
    let own = operator.as_deref().is_some_and(|o| p.is_operator(o));
    if p.role() == Role::Operator && !own {
        return html(
            StatusCode::FORBIDDEN,
            AcwResult {
                t,
                problems: vec![("call", t.err_not_your_call)],
                revision: 0,
                request: None,
            }
            .render(),
        );
    }
    let Some(rules) = router
        .shared
        .config
        .tenants
        .iter()
        .find(|x| x.id == tenant)
        .map(|x| x.desk.clone())
    else {
        return not_found(&p);
    };
    let checked = match disposition::check(&form, &rules) {
        Ok(c) => c,
        Err(problems) => {
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                AcwResult {
                    t,
                    problems: problems.iter().map(|x| (x.field(), x.message(t))).collect(),
                    revision: 0,
                    request: None,
                }
                .render(),
            )
        }
    };
    let u = uid.clone();
    let pii = super::pii(&router);
    let stored = with_db(&router, move |pool, _| async move {
        db::dispositions(&pool, pii.as_deref(), &[u]).await
    })
    .await
    .ok()
    .and_then(|v| v.into_iter().map(|d| d.revision).max())
    .unwrap_or(0);
    let revision = {
        let mut revs = router
            .shared
            .desk
            .revisions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if revs.len() > 50_000 {
            revs.clear();
        }
        let r = revs.get(&uid).copied().unwrap_or(0).max(stored) + 1;
        revs.insert(uid.clone(), r);
        r
    };
    let record = DispositionRecord {
        call_uid: uid.clone(),
        tenant: tenant.clone(),
        operator: operator.clone(),
        topic: checked.topic.clone(),
        category: checked.category.clone(),
        outcome: checked.outcome.clone(),
        notes: checked.notes.clone(),
        caller_name: checked.caller_name.clone(),
        organisation: checked.organisation.clone(),
        stir: checked.stir.clone(),
        revision,
        saved_by: p.username().to_owned(),
        at_ms: now_ms(),
    };
    let Some(store) = router.shared.store.as_ref() else {
        return HttpResponse::ServiceUnavailable().body(t.err_store);
    };
    let durable = match store.record(StoreRecord::Disposition(record)) {
        Ok(rx) => rx.await.is_ok(),
        Err(_) => false,
    };
    if !durable {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            AcwResult {
                t,
                problems: vec![("store", t.err_store)],
                revision: 0,
                request: None,
            }
            .render(),
        );
    }
    router
        .shared
        .events
        .emit(crate::events::EventKind::DispositionSaved {
            call: call.clone(),
            tenant: tenant.clone(),
            operator: operator.clone(),
            category: checked.category.clone(),
            outcome: checked.outcome.clone(),
            revision,
        });
    audit(
        &router,
        &p,
        Some(&req),
        if revision == 1 {
            "disposition_saved"
        } else {
            "disposition_edited"
        },
        Some(&tenant),
        Some(&uid),
        Some(format!(
            "{} {} r{revision}",
            checked.category, checked.outcome
        )),
    );
    metrics::counter!("navbat_desk_dispositions_total", "outcome" => checked.outcome.clone())
        .increment(1);
    // Saving ends wrap-up where the tenant says so (the queue's timer caps it either way).
    // The core ends it only if they are in wrap-up, so a late save cannot undo a break.
    if own && rules.wrap_up_ends == crate::config::desk::WrapUpEnds::Saved {
        if let Some(id) = operator
            .as_deref()
            .and_then(|e| router.shared.model.operator(e))
        {
            router.acd.do_send(crate::actors::acd_host::Feed(
                crate::acd::Input::EndWrapUp { operator: id },
            ));
        }
    }
    // A request for the call when a call back or an answer is owed (one per call).
    let request = if form.open_request.is_empty() {
        None
    } else {
        let caller = router.shared.desk.live.get(&call).map(|c| c.caller);
        let new = super::requests::from_call(
            &tenant,
            &uid,
            &checked,
            caller.as_ref().map(|c| c.expose().to_owned()),
            p.username(),
        );
        match router
            .shared
            .requests
            .intake(Some(&format!("acw:{uid}")), new)
            .await
        {
            Ok((id, _)) => Some(id),
            Err(e) => {
                tracing::warn!(error = %e, call = %call, "request from the after-call form not opened");
                None
            }
        }
    };
    html(
        StatusCode::OK,
        AcwResult {
            t,
            problems: Vec::new(),
            revision,
            request,
        }
        .render(),
    )
}

// ----- the floor (supervisor, officer) -------------------------------------------------------

#[derive(Template)]
#[template(path = "supervisor.html")]
struct SupervisorPage {
    c: Chrome,
    can_act: bool,
    floor: String,
}

struct QueueRow {
    id: String,
    tenant: String,
    waiting: usize,
    longest_wait: String,
    available: usize,
    on_call: usize,
    wrap_up: usize,
    on_break: usize,
    surge: bool,
}

struct CallRow {
    call: String,
    tenant: String,
    caller: String,
    topic: String,
    operator: String,
    age: String,
    talking: bool,
}

struct OperatorRow {
    ext: String,
    state: String,
    registered: bool,
}

#[derive(Template)]
#[template(path = "floor.html")]
struct FloorFragment {
    t: &'static T,
    csrf: String,
    can_act: bool,
    tenants: Vec<String>,
    queues: Vec<QueueRow>,
    calls: Vec<CallRow>,
    operators: Vec<OperatorRow>,
}

/// Whether operator `ext` serves any queue of a tenant `p` sees (by language skills).
pub fn operator_in_scope(router: &Router, p: &Principal, ext: &str) -> bool {
    if p.account.tenants == accounts::Tenants::All {
        return true;
    }
    let config = &router.shared.config;
    let Some(op) = config.operators.iter().find(|o| o.ext == ext) else {
        return false;
    };
    config
        .queues
        .iter()
        .filter(|q| p.account.tenants.allows(&q.tenant))
        .any(|q| op.languages.iter().any(|l| l == &q.language))
}

async fn render_floor(router: &Router, p: &Principal) -> String {
    let t = T::of(p.account.language);
    let model = &router.shared.model;
    let mut queues = Vec::new();
    if let Ok(snaps) = router.acd.send(crate::actors::acd_host::Snapshots).await {
        for s in snaps {
            let tenant = model.tenant_name(model.queue_tenant(s.queue)).to_owned();
            if !p.account.tenants.allows(&tenant) {
                continue;
            }
            queues.push(QueueRow {
                id: model.queue_name(s.queue).to_owned(),
                tenant,
                waiting: s.waiting,
                longest_wait: duration_text(s.longest_wait_ms as i64),
                available: s.operators_available,
                on_call: s.operators_on_call,
                wrap_up: s.operators_wrap_up,
                on_break: s.operators_on_break,
                surge: s.surge,
            });
        }
    }
    let now = now_ms().max(0) as u64;
    let calls = router
        .shared
        .desk
        .live
        .live()
        .into_iter()
        .filter(|c| p.account.tenants.allows(&c.tenant))
        .map(|c| CallRow {
            caller: caller_shown(router, p, &c.caller),
            topic: topic_label(router, &c.tenant, c.topic.as_deref(), p.account.language),
            operator: c.operator.clone().unwrap_or_default(),
            age: duration_text(now.saturating_sub(c.arrived_at_ms) as i64),
            talking: c.answered_at_ms.is_some(),
            tenant: c.tenant,
            call: c.call,
        })
        .collect();
    let operators = match router
        .acd
        .send(crate::actors::acd_host::OperatorStates)
        .await
    {
        Ok(list) => list
            .into_iter()
            .filter(|o| operator_in_scope(router, p, &o.ext))
            .map(|o| OperatorRow {
                ext: o.ext,
                state: o.state,
                registered: o.registered,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    FloorFragment {
        t,
        csrf: p.csrf().unwrap_or_default().to_owned(),
        can_act: p.require(ACT_ROLES).is_ok(),
        tenants: visible_tenants(router, p),
        queues,
        calls,
        operators,
    }
    .render()
    .unwrap_or_else(|e| format!("<p class=\"error\">{e}</p>"))
}

async fn supervisor_page(router: web::Data<Router>, req: HttpRequest) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, FLOOR_ROLES).await);
    let floor = render_floor(&router, &p).await;
    html(
        StatusCode::OK,
        SupervisorPage {
            c: chrome(&p),
            can_act: p.require(ACT_ROLES).is_ok(),
            floor,
        }
        .render(),
    )
}

/// How long the floor stream gathers changes before it renders (a burst of arrivals is one
/// render), and how often it renders anyway (waiting times and ages go on growing).
const FLOOR_GATHER: std::time::Duration = std::time::Duration::from_millis(250);
const FLOOR_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET /supervisor/events`: Server-Sent Events for the supervisor's floor: a `floor` event
/// with the rendered floor (scoped to the viewer's tenants, read-only for officers) after
/// each change of calls, queues or operators, at most four a second, and every 5 s.
async fn floor_events(router: web::Data<Router>, req: HttpRequest) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, FLOOR_ROLES).await);
    let mut changes = router.shared.desk.live.floor_changes();
    let router = router.into_inner();
    let (tx, response) = sse_channel(4);
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tokio::time::sleep(FLOOR_GATHER).await;
                }
                _ = tokio::time::sleep(FLOOR_REFRESH) => {}
                _ = tx.closed() => return,
            }
            changes.borrow_and_update();
            let frame = sse_frame("floor", &render_floor(&router, &p).await);
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
        }
    });
    response
}

#[derive(Deserialize)]
struct ModeForm {
    #[serde(default)]
    csrf: String,
    mode: String,
}

/// A one-line answer to an htmx action (escaped by askama like every page).
#[derive(Template)]
#[template(
    source = "<p id=\"{{ id }}\" class=\"{{ class }}\">{{ text }}</p>",
    ext = "html"
)]
struct Small<'a> {
    id: &'a str,
    class: &'a str,
    text: &'a str,
}

fn small(status: StatusCode, id: &str, text: &str) -> HttpResponse {
    let class = if status.is_success() { "ok" } else { "error" };
    html(status, Small { id, class, text }.render())
}

async fn floor_monitor(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<ModeForm>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, ACT_ROLES).await);
    or_answer!(auth::check_csrf(&p, &req, Some(&form.csrf)));
    let t = T::of(p.account.language);
    let call = path.into_inner();
    let Some(live) = router.shared.desk.live.get(&call) else {
        return not_found(&p);
    };
    if p.sees(&live.tenant).is_err() {
        return not_found(&p);
    }
    let Some(ext) = p.account.operator_ext.clone() else {
        return small(StatusCode::CONFLICT, "monitor-error", t.no_ext);
    };
    let mode = match form.mode.as_str() {
        "listen" => crate::media::MonitorMode::Listen,
        "whisper" => crate::media::MonitorMode::Whisper,
        "barge" => crate::media::MonitorMode::Barge,
        _ => return not_found(&p),
    };
    let result = match router.shared.call(&call) {
        None => Err(crate::actors::call::MonitorError::UnknownCall),
        Some(addr) => addr
            .send(crate::actors::call::StartMonitor {
                supervisor: ext.clone(),
                mode,
            })
            .await
            .unwrap_or(Err(crate::actors::call::MonitorError::UnknownCall)),
    };
    match result {
        Ok(()) => {
            audit(
                &router,
                &p,
                Some(&req),
                "monitor_start",
                Some(&live.tenant),
                Some(&call),
                Some(form.mode.clone()),
            );
            small(StatusCode::ACCEPTED, "monitor-ok", t.monitor_ringing)
        }
        Err(e) => small(StatusCode::CONFLICT, "monitor-error", &e.to_string()),
    }
}

async fn floor_operator_state(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<StateForm>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, ACT_ROLES).await);
    or_answer!(auth::check_csrf(&p, &req, Some(&form.csrf)));
    let ext = path.into_inner();
    if !operator_in_scope(&router, &p, &ext) {
        return not_found(&p);
    }
    if change_operator_state(&router, &p, &req, &ext, &form.state, None)
        .await
        .is_err()
    {
        return not_found(&p);
    }
    small(
        StatusCode::OK,
        "state-ok",
        T::of(p.account.language).state_name(&form.state),
    )
}

async fn floor_surge(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<ModeForm>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, ACT_ROLES).await);
    or_answer!(auth::check_csrf(&p, &req, Some(&form.csrf)));
    let name = path.into_inner();
    let (Some(tenant), true) = (router.shared.model.tenant(&name), p.sees(&name).is_ok()) else {
        return not_found(&p);
    };
    let by = format!("desk:{}", p.username());
    let manual = match form.mode.as_str() {
        "on" => crate::surge::Manual::Forced { on: true, by },
        "off" => crate::surge::Manual::Forced { on: false, by },
        "auto" => crate::surge::Manual::Auto,
        _ => return not_found(&p),
    };
    let _ = router
        .acd
        .send(crate::actors::acd_host::SetSurge { tenant, manual })
        .await;
    audit(
        &router,
        &p,
        Some(&req),
        "surge_switch",
        Some(&name),
        Some(&name),
        Some(form.mode.clone()),
    );
    small(
        StatusCode::OK,
        "surge-ok",
        &format!("{}: {}", T::of(p.account.language).surge, form.mode),
    )
}

// ----- a call's page -----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "call.html")]
struct CallPage {
    c: Chrome,
    call: String,
    tenant: String,
    caller: String,
    arrived: String,
    topic: String,
    outcome: String,
    operator: String,
    disposition: Option<(String, String, String, String)>,
    /// The recording's address, for those who may hear it (`recordings::access`).
    recording: Option<String>,
    nt: &'static super::rtexts::RT,
    notices: Vec<super::requests::NoticeRow>,
}

async fn call_page(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, EVERYONE).await);
    if p.role() == Role::Editor {
        return forbidden(&p);
    }
    let call = path.into_inner();
    let Some(uid) = store_uid(&router, &call) else {
        return not_found(&p);
    };
    let u = uid.clone();
    let pii = super::pii(&router);
    let found = with_db(&router, move |pool, _| async move {
        let summary = db::call_view(&pool, pii.as_deref(), &u).await?;
        let disp = db::dispositions(&pool, pii.as_deref(), std::slice::from_ref(&u)).await?;
        let recorded = crate::recordings::index::for_call(&pool, &u)
            .await?
            .is_some();
        Ok((summary, disp, recorded))
    })
    .await;
    let (summary, disp, recorded) = match found {
        Ok((Some(s), d, r)) => (s, d, r),
        Ok((None, ..)) => return not_found(&p),
        Err(_) => {
            return HttpResponse::ServiceUnavailable().body(T::of(p.account.language).err_store)
        }
    };
    let tenant = summary.tenant.clone().unwrap_or_default();
    if p.sees(&tenant).is_err() {
        return not_found(&p);
    }
    if p.role() == Role::Operator
        && !summary
            .operator
            .as_deref()
            .is_some_and(|o| p.is_operator(o))
    {
        return not_found(&p);
    }
    // The player only for those the recording route would serve (it checks again).
    let recording = {
        let rules = router
            .shared
            .config
            .tenants
            .iter()
            .find(|t| t.id == tenant)
            .map(|t| t.recordings)
            .unwrap_or_default();
        let own = summary
            .operator
            .as_deref()
            .is_some_and(|o| p.is_operator(o));
        let allowed = crate::recordings::access::decide(p.role(), true, own, rules)
            == crate::recordings::access::Access::Allowed;
        (recorded && allowed).then(|| format!("/api/recordings/{uid}"))
    };
    let t = T::of(p.account.language);
    let nt = super::rtexts::RT::of(p.account.language);
    let notices = super::requests::notice_rows(&router, &uid, nt).await;
    let caller =
        crate::privacy::PhoneNumber::new(summary.caller_number.clone().unwrap_or_default());
    audit(
        &router,
        &p,
        Some(&req),
        "call_viewed",
        Some(&tenant),
        Some(&uid),
        None,
    );
    html(
        StatusCode::OK,
        CallPage {
            c: chrome(&p),
            call: uid,
            caller: caller_shown(&router, &p, &caller),
            arrived: local_time(&router, summary.arrived_at_ms.unwrap_or(0)),
            topic: topic_label(
                &router,
                &tenant,
                summary.topic.as_deref(),
                p.account.language,
            ),
            outcome: t
                .outcome_name(summary.outcome.as_deref().unwrap_or(""))
                .to_owned(),
            operator: summary.operator.unwrap_or_default(),
            disposition: disp.into_iter().next().map(|d| {
                (
                    t.category_name(&d.category).to_owned(),
                    t.outcome_name(&d.outcome).to_owned(),
                    d.notes,
                    d.saved_by,
                )
            }),
            recording,
            tenant,
            nt,
            notices,
        }
        .render(),
    )
}

// ----- knowledge base ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "kb_list.html")]
struct KbList {
    c: Chrome,
    tenants: Vec<String>,
    tenant: String,
    q: String,
    can_edit: bool,
    articles: Vec<(String, String, String)>,
}

#[derive(Deserialize)]
struct KbQuery {
    tenant: Option<String>,
    q: Option<String>,
}

/// The tenant a page asked for (`?tenant=`), or the first the principal sees; another
/// tenant, or none at all, is the 404 page.
fn chosen_tenant(
    p: &Principal,
    tenants: &[String],
    wanted: Option<&String>,
) -> Result<String, HttpResponse> {
    match wanted {
        Some(tn) if tenants.contains(tn) => Ok(tn.clone()),
        Some(_) => Err(not_found(p)),
        None => tenants.first().cloned().ok_or_else(|| not_found(p)),
    }
}

async fn kb_list(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<KbQuery>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, EVERYONE).await);
    let tenants = visible_tenants(&router, &p);
    let tenant = or_answer!(chosen_tenant(&p, &tenants, q.tenant.as_ref()));
    let text = q.q.clone().unwrap_or_default();
    let lang = p.account.language;
    let (tn, qq) = (tenant.clone(), text.clone());
    let found = with_db(&router, move |pool, pg| async move {
        db::search(&pool, pg, &tn, &qq, 50).await
    })
    .await
    .unwrap_or_default();
    html(
        StatusCode::OK,
        KbList {
            c: chrome(&p),
            can_edit: p.require(KB_WRITE_ROLES).is_ok(),
            articles: found
                .into_iter()
                .map(|a| {
                    (
                        a.id.clone(),
                        a.title(lang).to_owned(),
                        topic_label(&router, &a.tenant, a.topic.as_deref(), lang),
                    )
                })
                .collect(),
            tenants,
            tenant,
            q: text,
        }
        .render(),
    )
}

#[derive(Template)]
#[template(path = "kb_article.html")]
struct KbArticle {
    c: Chrome,
    a: db::Article,
    title: String,
    body: String,
    topic: String,
    kind: String,
    updated: String,
    can_edit: bool,
    revisions: Vec<(i64, String, String, String)>,
}

async fn load_article(
    router: &Router,
    p: &Principal,
    id: String,
) -> Result<(db::Article, Vec<db::Article>), HttpResponse> {
    let found = with_db(router, move |pool, _| async move {
        let a = db::article_by_id(&pool, &id).await?;
        let revs = match &a {
            Some(a) => db::revisions(&pool, &a.id).await?,
            None => Vec::new(),
        };
        Ok((a, revs))
    })
    .await;
    match found {
        Ok((Some(a), revs)) if p.sees(&a.tenant).is_ok() => Ok((a, revs)),
        Ok(_) => Err(not_found(p)),
        Err(_) => Err(HttpResponse::ServiceUnavailable().body(T::of(p.account.language).err_store)),
    }
}

async fn kb_article(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, EVERYONE).await);
    let (a, revs) = match load_article(&router, &p, path.into_inner()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let lang = p.account.language;
    let t = T::of(lang);
    html(
        StatusCode::OK,
        KbArticle {
            c: chrome(&p),
            title: a.title(lang).to_owned(),
            body: a.body(lang).to_owned(),
            topic: a
                .topic
                .as_deref()
                .map(|tp| topic_label(&router, &a.tenant, Some(tp), lang))
                .unwrap_or_else(|| t.any_topic.to_owned()),
            kind: if a.kind == "script" {
                t.kind_script
            } else {
                t.kind_faq
            }
            .to_owned(),
            updated: local_time(&router, a.updated_at_ms),
            can_edit: p.require(KB_WRITE_ROLES).is_ok(),
            revisions: revs
                .iter()
                .map(|r| {
                    (
                        r.revision,
                        local_time(&router, r.updated_at_ms),
                        r.updated_by.clone(),
                        r.title(lang).to_owned(),
                    )
                })
                .collect(),
            a,
        }
        .render(),
    )
}

#[derive(Template)]
#[template(path = "kb_edit.html")]
struct KbEdit {
    c: Chrome,
    a: db::Article,
    topics: Vec<(String, String)>,
    topic_code: String,
    error: Option<String>,
}

fn kb_topics(router: &Router, tenant: &str, lang: Lang) -> Vec<(String, String)> {
    router
        .shared
        .config
        .tenants
        .iter()
        .find(|t| t.id == tenant)
        .map(|t| {
            t.desk
                .classifier
                .iter()
                .map(|(c, l)| {
                    (
                        c.clone(),
                        match lang {
                            Lang::Uz => l.uz.clone(),
                            Lang::Ru => l.ru.clone(),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn kb_edit_page(
    router: &Router,
    p: &Principal,
    a: db::Article,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let topics = kb_topics(router, &a.tenant, p.account.language);
    html(
        status,
        KbEdit {
            c: chrome(p),
            topic_code: a.topic.clone().unwrap_or_default(),
            topics,
            a,
            error,
        }
        .render(),
    )
}

async fn kb_new(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<KbQuery>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, KB_WRITE_ROLES).await);
    let tenants = visible_tenants(&router, &p);
    let tenant = or_answer!(chosen_tenant(&p, &tenants, q.tenant.as_ref()));
    let a = db::Article {
        id: format!("kb-{}", &accounts::new_secret()[..16]),
        tenant,
        topic: None,
        kind: "faq".into(),
        title_uz: String::new(),
        title_ru: String::new(),
        body_uz: String::new(),
        body_ru: String::new(),
        revision: 0,
        updated_by: String::new(),
        updated_at_ms: 0,
    };
    kb_edit_page(&router, &p, a, None, StatusCode::OK)
}

async fn kb_edit(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, KB_WRITE_ROLES).await);
    match load_article(&router, &p, path.into_inner()).await {
        Ok((a, _)) => kb_edit_page(&router, &p, a, None, StatusCode::OK),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct KbForm {
    #[serde(default)]
    csrf: String,
    id: String,
    revision: i64,
    tenant: String,
    #[serde(default)]
    topic: String,
    kind: String,
    #[serde(default)]
    title_uz: String,
    #[serde(default)]
    title_ru: String,
    #[serde(default)]
    body_uz: String,
    #[serde(default)]
    body_ru: String,
}

async fn kb_save(
    router: web::Data<Router>,
    req: HttpRequest,
    form: web::Form<KbForm>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, KB_WRITE_ROLES).await);
    or_answer!(auth::check_csrf(&p, &req, Some(&form.csrf)));
    let f = form.into_inner();
    if p.sees(&f.tenant).is_err()
        || !router
            .shared
            .config
            .tenants
            .iter()
            .any(|t| t.id == f.tenant)
    {
        return not_found(&p);
    }
    let t = T::of(p.account.language);
    let topic = (!f.topic.is_empty()).then(|| f.topic.clone());
    let a = db::Article {
        id: f
            .id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(40)
            .collect(),
        tenant: f.tenant.clone(),
        topic: topic.filter(|tp| {
            kb_topics(&router, &f.tenant, Lang::Uz)
                .iter()
                .any(|(c, _)| c == tp)
        }),
        kind: if f.kind == "script" { "script" } else { "faq" }.into(),
        title_uz: f.title_uz.trim().chars().take(300).collect(),
        title_ru: f.title_ru.trim().chars().take(300).collect(),
        body_uz: f.body_uz.trim().chars().take(20_000).collect(),
        body_ru: f.body_ru.trim().chars().take(20_000).collect(),
        revision: f.revision,
        updated_by: p.username().to_owned(),
        updated_at_ms: now_ms(),
    };
    if a.title_uz.is_empty()
        || a.title_ru.is_empty()
        || a.body_uz.is_empty()
        || a.body_ru.is_empty()
        || a.id.is_empty()
    {
        return kb_edit_page(
            &router,
            &p,
            a,
            Some(t.err_title.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let saved_a = a.clone();
    let expected = f.revision;
    let saved = with_db(&router, move |pool, pg| async move {
        db::save_article(&pool, pg, &saved_a, expected).await
    })
    .await;
    match saved {
        Ok(Some(rev)) => {
            audit(
                &router,
                &p,
                Some(&req),
                "kb_saved",
                Some(&a.tenant),
                Some(&a.id),
                Some(format!("revision {rev}")),
            );
            redirect(&format!("/kb/{}", a.id))
        }
        Ok(None) => kb_edit_page(
            &router,
            &p,
            a,
            Some(t.conflict.into()),
            StatusCode::CONFLICT,
        ),
        Err(e) => kb_edit_page(
            &router,
            &p,
            a,
            Some(format!("{} ({e})", t.err_store)),
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}

// ----- audit log ---------------------------------------------------------------------------

struct AuditRowView {
    when: String,
    actor: String,
    role: String,
    tenant: String,
    action: String,
    target: String,
    source: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    rows: Vec<AuditRowView>,
    older: Option<i64>,
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<i64>,
}

async fn audit_page(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<AuditQuery>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, AUDIT_ROLES).await);
    let before = q.before.unwrap_or(i64::MAX);
    let tenants = p.account.tenants.ids().map(<[String]>::to_vec);
    let rows = with_db(&router, move |pool, _| async move {
        db::audit(&pool, tenants.as_deref(), before, 200).await
    })
    .await
    .unwrap_or_default();
    let older = (rows.len() == 200)
        .then(|| rows.last().map(|r| r.at_ms))
        .flatten();
    html(
        StatusCode::OK,
        AuditPage {
            c: chrome(&p),
            rows: rows
                .into_iter()
                .map(|r| AuditRowView {
                    when: local_time(&router, r.at_ms),
                    actor: r.entry.actor,
                    role: r.entry.role.unwrap_or_default(),
                    tenant: r.entry.tenant.unwrap_or_default(),
                    action: r.entry.action,
                    target: r.entry.target.unwrap_or_default(),
                    source: r.entry.source.unwrap_or_default(),
                    detail: r.entry.detail.unwrap_or_default(),
                })
                .collect(),
            older,
        }
        .render(),
    )
}

// ----- account and tokens --------------------------------------------------------------------

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    c: Chrome,
    tenants: String,
    new_token: Option<String>,
    tokens: Vec<(String, String, String, String, bool)>,
}

async fn account_page_with(
    router: &Router,
    p: &Principal,
    new_token: Option<String>,
) -> HttpResponse {
    let who = (p.role() != Role::Admin).then(|| p.username().to_owned());
    let tokens = with_db(router, move |pool, _| async move {
        db::tokens(&pool, who.as_deref()).await
    })
    .await
    .unwrap_or_default();
    html(
        StatusCode::OK,
        AccountPage {
            c: chrome(p),
            tenants: p.account.tenants.to_stored(),
            new_token,
            tokens: tokens
                .into_iter()
                .map(|t| {
                    (
                        t.id,
                        t.username,
                        t.label,
                        local_time(router, t.created_at_ms),
                        t.revoked_at_ms.is_some(),
                    )
                })
                .collect(),
        }
        .render(),
    )
}

async fn account_page(router: web::Data<Router>, req: HttpRequest) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, EVERYONE).await);
    account_page_with(&router, &p, None).await
}

/// Creates a personal API token for `p`; returns the secret (shown once).
pub async fn create_token(
    router: &Router,
    p: &Principal,
    label: &str,
    req: &HttpRequest,
) -> Result<(String, String), String> {
    let secret = format!("nvb_{}", accounts::new_secret());
    let id = format!("t_{}", &accounts::new_secret()[..12]);
    let hash = accounts::secret_hash(&secret);
    let (i, u, l) = (
        id.clone(),
        p.username().to_owned(),
        label.chars().take(100).collect::<String>(),
    );
    let now = now_ms();
    with_db(router, move |pool, _| async move {
        db::create_token(&pool, &i, &hash, &u, &l, now).await
    })
    .await?;
    audit(
        router,
        p,
        Some(req),
        "token_created",
        None,
        Some(&id),
        Some(label.chars().take(100).collect()),
    );
    Ok((id, secret))
}

/// Revokes token `id` if `p` owns it or is an admin. `Ok(false)` when it is not theirs or
/// does not exist.
pub async fn revoke_token(
    router: &Router,
    p: &Principal,
    id: &str,
    req: &HttpRequest,
) -> Result<bool, String> {
    let i = id.to_owned();
    let owner = with_db(router, move |pool, _| async move {
        db::token_owner(&pool, &i).await
    })
    .await?;
    match owner {
        Some(o) if o == p.username() || p.role() == Role::Admin => {
            let i = id.to_owned();
            let now = now_ms();
            with_db(router, move |pool, _| async move {
                db::revoke_token(&pool, &i, now).await
            })
            .await?;
            router.shared.desk.forget_tokens();
            audit(
                router,
                p,
                Some(req),
                "token_revoked",
                None,
                Some(id),
                Some(format!("owner {o}")),
            );
            Ok(true)
        }
        _ => Ok(false),
    }
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

async fn account_token(
    router: web::Data<Router>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, EVERYONE).await);
    or_answer!(auth::check_csrf(&p, &req, Some(&form.csrf)));
    match create_token(&router, &p, form.label.trim(), &req).await {
        Ok((_, secret)) => account_page_with(&router, &p, Some(secret)).await,
        Err(e) => HttpResponse::ServiceUnavailable().body(e),
    }
}

async fn account_revoke(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, EVERYONE).await);
    or_answer!(auth::check_csrf(&p, &req, Some(&form.csrf)));
    match revoke_token(&router, &p, &path.into_inner(), &req).await {
        Ok(true) => redirect("/account"),
        Ok(false) => not_found(&p),
        Err(e) => HttpResponse::ServiceUnavailable().body(e),
    }
}

// ----- static files --------------------------------------------------------------------------

async fn static_file(path: web::Path<String>) -> HttpResponse {
    let (body, kind): (&'static [u8], &str) = match path.as_str() {
        "htmx.min.js" => (include_bytes!("static/htmx.min.js"), "text/javascript"),
        "htmx-sse.min.js" => (include_bytes!("static/htmx-sse.min.js"), "text/javascript"),
        "desk.css" => (include_bytes!("static/desk.css"), "text/css"),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

/// Registers the desk's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/login", web::get().to(login_form))
        .route("/login", web::post().to(login))
        .route("/logout", web::post().to(logout))
        .route("/lang", web::post().to(set_lang))
        .route("/desk", web::get().to(desk_page))
        .route("/desk/events", web::get().to(desk_events))
        .route("/desk/state", web::post().to(desk_state))
        .route(
            "/desk/calls/{call}/disposition",
            web::post().to(save_disposition),
        )
        .route("/supervisor", web::get().to(supervisor_page))
        .route("/supervisor/events", web::get().to(floor_events))
        .route(
            "/supervisor/calls/{call}/monitor",
            web::post().to(floor_monitor),
        )
        .route(
            "/supervisor/operators/{ext}/state",
            web::post().to(floor_operator_state),
        )
        .route("/supervisor/surge/{tenant}", web::post().to(floor_surge))
        .route("/calls/{call}", web::get().to(call_page))
        .route("/kb", web::get().to(kb_list))
        .route("/kb/new", web::get().to(kb_new))
        .route("/kb/save", web::post().to(kb_save))
        .route("/kb/{id}", web::get().to(kb_article))
        .route("/kb/{id}/edit", web::get().to(kb_edit))
        .route("/audit", web::get().to(audit_page))
        .route("/account", web::get().to(account_page))
        .route("/account/tokens", web::post().to(account_token))
        .route(
            "/account/tokens/{id}/revoke",
            web::post().to(account_revoke),
        )
        .route("/static/{file}", web::get().to(static_file));
}
