//! The reports page (D20): a tenant's monthly statistics in the desk, with the workbook,
//! the CSV tables and JSON to download, for the client's officer (own tenants only),
//! supervisors and admins. A tenant the account does not work for is not there (404).
//! Every viewing and every download is written to the audit log; the call rows link to the
//! call's page and, for the roles that may hear recordings (the recording route's), to the
//! recording, whose own route checks and audits each play again.

use super::auth::audit;
use super::pages::{chrome, html, not_found, page_principal, visible_tenants, Chrome};
use super::with_db;
use crate::accounts::{Lang as AccountLang, Principal, Role};
use crate::actors::Router;
use crate::report::{self, labels, Month, MonthlyReport};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

/// Who may open reports.
pub const REPORT_ROLES: &[Role] = &[Role::Supervisor, Role::Officer, Role::Admin];

/// A file to send: its bytes, content type and name.
type Download = (Vec<u8>, &'static str, String);

/// Calls listed on the page (the files hold them all).
const PAGE_DETAILS: usize = 500;

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    c: Chrome,
    title: String,
    tenants: Vec<(String, String, bool)>,
    tenant: String,
    month: String,
    show: String,
    download: String,
    csv_keys: Vec<&'static str>,
    body: String,
}

#[derive(Deserialize)]
struct ReportQuery {
    tenant: Option<String>,
    month: Option<String>,
    format: Option<String>,
    table: Option<String>,
}

fn lang_of(p: &Principal) -> labels::Lang {
    match p.account.language {
        AccountLang::Uz => labels::Lang::Uz,
        AccountLang::Ru => labels::Lang::Ru,
    }
}

/// The tenant and month asked for, checked: `Err` is the answer (404 for a tenant not
/// theirs, 400 for a month that is not one).
fn pick(router: &Router, p: &Principal, q: &ReportQuery) -> Result<(String, Month), HttpResponse> {
    let visible = visible_tenants(router, p);
    let tenant = match &q.tenant {
        Some(t) => t.clone(),
        None => visible.first().cloned().ok_or_else(|| not_found(p))?,
    };
    if !visible.contains(&tenant) || p.sees(&tenant).is_err() {
        return Err(not_found(p));
    }
    let tz = router
        .shared
        .config
        .tenant(&tenant)
        .map(|t| t.timezone.clone())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let month = match q.month.as_deref().filter(|m| !m.is_empty()) {
        None => Month::containing(jiff::Timestamp::now(), &tz),
        Some(text) => Month::parse(text).map_err(|e| {
            super::pages::message(
                p,
                StatusCode::BAD_REQUEST,
                "bad-month",
                &lang_of(p).of(labels::MONTH),
                &e.to_string(),
            )
        })?,
    };
    Ok((tenant, month))
}

async fn load(router: &Router, tenant: &str, month: Month) -> Result<MonthlyReport, String> {
    let config = router.shared.config.clone();
    let t = tenant.to_owned();
    let pii = super::pii(router);
    with_db(router, move |pool, _| async move {
        Ok(report::build(&pool, pii.as_deref(), &config, &t, month).await)
    })
    .await?
    .map_err(|e| e.to_string())
}

fn unavailable(e: String) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain; charset=utf-8")
        .body(e)
}

async fn reports_page(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<ReportQuery>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, REPORT_ROLES).await);
    let (tenant, month) = or_answer!(pick(&router, &p, &q));
    let r = match load(&router, &tenant, month).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    audit(
        &router,
        &p,
        Some(&req),
        "report_viewed",
        Some(&tenant),
        Some(&month.to_string()),
        None,
    );
    let lang = lang_of(&p);
    let view = report::html::View {
        base_url: None,
        listen: crate::accounts::roles::RECORDINGS.contains(&p.role()),
        details_limit: PAGE_DETAILS,
    };
    let tenants = visible_tenants(&router, &p)
        .into_iter()
        .map(|id| {
            let name = router
                .shared
                .config
                .tenant(&id)
                .map(|t| lang.of_config(&t.name))
                .unwrap_or_else(|| id.clone());
            let selected = id == tenant;
            (id, name, selected)
        })
        .collect();
    html(
        StatusCode::OK,
        ReportsPage {
            c: chrome(&p),
            title: lang.of(labels::TITLE),
            tenants,
            month: month.to_string(),
            show: lang.of(labels::SHOW),
            download: lang.of(labels::DOWNLOAD),
            csv_keys: report::csv::keys(&r),
            body: report::html::fragment(&r, lang, &view),
            tenant,
        }
        .render(),
    )
}

async fn report_download(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<ReportQuery>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, REPORT_ROLES).await);
    let (tenant, month) = or_answer!(pick(&router, &p, &q));
    let format = q.format.clone().unwrap_or_else(|| "xlsx".into());
    let table = q.table.clone().unwrap_or_else(|| "summary".into());
    if !matches!(format.as_str(), "xlsx" | "csv" | "json") {
        return not_found(&p);
    }
    let r = match load(&router, &tenant, month).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    let name = format!("navbat-{tenant}-{month}");
    // The workbook and the JSON of a big month take a moment: off the HTTP thread.
    let (fmt, key) = (format.clone(), table.clone());
    let built = web::block(move || -> Result<Option<Download>, String> {
        Ok(match fmt.as_str() {
            "xlsx" => Some((
                report::xlsx::workbook(&r).map_err(|e| e.to_string())?,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                format!("{name}.xlsx"),
            )),
            "json" => Some((
                serde_json::to_vec_pretty(&r).map_err(|e| e.to_string())?,
                "application/json",
                format!("{name}.json"),
            )),
            _ => report::csv::one(&r, &key, labels::Lang::Both).map(|text| {
                (
                    text.into_bytes(),
                    "text/csv; charset=utf-8",
                    format!("{name}-{key}.csv"),
                )
            }),
        })
    })
    .await;
    let (bytes, kind, file) = match built {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return not_found(&p),
        Ok(Err(e)) => return unavailable(e),
        Err(e) => return unavailable(e.to_string()),
    };
    audit(
        &router,
        &p,
        Some(&req),
        "report_downloaded",
        Some(&tenant),
        Some(&month.to_string()),
        Some(if format == "csv" {
            format!("csv:{table}")
        } else {
            format
        }),
    );
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes)
}

/// Registers the reports page and its downloads.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports", web::get().to(reports_page))
        .route("/reports/download", web::get().to(report_download));
}
