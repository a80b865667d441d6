//! The public request form (D9): `/r/<tenant>`, no login, in Uzbek and Russian.
//!
//! * Each form carries a one-time token; the request's intake key is `web:<token>`, so a
//!   double click or a refresh of the answer gives the same request and number, never two.
//! * A hidden field (`website`) that people do not see: a form that fills it is a bot's; it
//!   gets the same-looking answer without a number and nothing is registered (counted).
//! * One source (an IPv6 /64 counts as one) may send `requests.form_per_source_per_hour`.
//! * The answer shows the request number once the request is on disk.

use super::pages::html;
use super::rtexts::RT;
use crate::accounts::Lang;
use crate::actors::Router;
use crate::requests::{Channel, Direction, Kind, Message, NewRequest, Priority, Requester};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

#[derive(Default, Deserialize)]
struct Fields {
    #[serde(default)]
    token: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    website: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    stir: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage<'a> {
    r: &'static RT,
    lang: &'a str,
    tenant: &'a str,
    tenant_name: &'a str,
    token: String,
    ask_stir: bool,
    categories: Vec<(&'static str, &'static str)>,
    f: &'a Fields,
    problems: Vec<&'static str>,
    number: Option<String>,
    by_email: bool,
    max_mib: u64,
}

const CATEGORIES: [&str; 4] = ["question", "complaint", "suggestion", "application"];

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

fn lang_of(text: Option<&str>) -> Lang {
    match text {
        Some("ru") => Lang::Ru,
        _ => Lang::Uz,
    }
}

fn page(
    router: &Router,
    tenant: &crate::config::Tenant,
    lang: Lang,
    f: &Fields,
    problems: Vec<&'static str>,
    number: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let r = RT::of(lang);
    let code = if lang == Lang::Ru { "ru" } else { "uz" };
    html(
        status,
        FormPage {
            r,
            lang: code,
            tenant: &tenant.id,
            tenant_name: if lang == Lang::Ru {
                &tenant.name.ru
            } else {
                &tenant.name.uz
            },
            token: crate::accounts::new_secret()[..32].to_owned(),
            ask_stir: tenant.desk.require_caller_details,
            categories: CATEGORIES.iter().map(|c| (*c, r.category(c))).collect(),
            f,
            problems,
            by_email: !f.email.trim().is_empty(),
            number,
            max_mib: router
                .shared
                .config
                .requests
                .attachment_max_bytes
                .div_ceil(1024 * 1024),
        }
        .render(),
    )
}

fn tenant_with_form<'a>(router: &'a Router, id: &str) -> Option<&'a crate::config::Tenant> {
    router
        .shared
        .config
        .tenants
        .iter()
        .find(|t| t.id == id && t.requests.web_form)
}

async fn form_get(
    router: web::Data<Router>,
    path: web::Path<String>,
    q: web::Query<LangQuery>,
) -> HttpResponse {
    let Some(tenant) = tenant_with_form(&router, &path) else {
        return HttpResponse::NotFound().body("no such form / такой формы нет");
    };
    let f = Fields {
        category: "question".into(),
        ..Fields::default()
    };
    page(
        &router,
        tenant,
        lang_of(q.lang.as_deref()),
        &f,
        Vec::new(),
        None,
        StatusCode::OK,
    )
}

/// What is wrong with a filled form (pure).
fn problems(f: &Fields, ask_stir: bool, r: &'static RT) -> Vec<&'static str> {
    let mut out = Vec::new();
    if f.text.trim().is_empty() {
        out.push(r.text_needed);
    }
    let email = f.email.trim();
    let phone: String = f.phone.chars().filter(|c| c.is_ascii_digit()).collect();
    if email.is_empty() && phone.len() < 7 {
        out.push(r.contact_needed);
    }
    if !email.is_empty() && !crate::requests::types::plausible_email(email) {
        out.push(r.bad_email);
    }
    let stir = f.stir.trim();
    if (ask_stir || !stir.is_empty())
        && (stir.len() != 9 || !stir.bytes().all(|b| b.is_ascii_digit()))
    {
        out.push(r.bad_stir);
    }
    out
}

fn some(text: &str, max: usize) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.chars().take(max).collect())
}

/// Why a posted form could not be read.
enum Unreadable {
    /// Over the size limit.
    TooLarge,
    /// Not a form.
    Malformed,
}

/// Text fields are at most this long in all.
const TEXT_LIMIT: usize = 64 * 1024;

/// Reads the form: `application/x-www-form-urlencoded`, or `multipart/form-data` with an
/// optional file in the field `file` (at most `file_limit` bytes).
async fn read_form(
    req: &HttpRequest,
    mut payload: web::Payload,
    file_limit: u64,
) -> Result<(Fields, Option<(String, Vec<u8>)>), Unreadable> {
    use futures_util::StreamExt;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        let mut body = Vec::new();
        while let Some(chunk) = payload.next().await {
            body.extend_from_slice(&chunk.map_err(|_| Unreadable::Malformed)?);
            if body.len() > TEXT_LIMIT {
                return Err(Unreadable::TooLarge);
            }
        }
        return serde_urlencoded::from_bytes(&body)
            .map(|f| (f, None))
            .map_err(|_| Unreadable::Malformed);
    }
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
    let mut text: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    let mut text_bytes = 0usize;
    let mut file = None;
    while let Some(field) = parts.next().await {
        let mut field = field.map_err(|_| Unreadable::Malformed)?;
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let cap = if name == "file" {
            file_limit as usize
        } else {
            TEXT_LIMIT
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            bytes.extend_from_slice(&chunk.map_err(|_| Unreadable::Malformed)?);
            if bytes.len() > cap {
                return Err(Unreadable::TooLarge);
            }
        }
        if name == "file" {
            if let Some(file_name) = file_name.filter(|n| !n.is_empty() && !bytes.is_empty()) {
                file = Some((file_name, bytes));
            }
        } else {
            text_bytes += bytes.len();
            if text_bytes > TEXT_LIMIT {
                return Err(Unreadable::TooLarge);
            }
            text.insert(
                name,
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            );
        }
    }
    serde_json::from_value(serde_json::Value::Object(text))
        .map(|f| (f, file))
        .map_err(|_| Unreadable::Malformed)
}

async fn form_post(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let Some(tenant) = tenant_with_form(&router, &path) else {
        return HttpResponse::NotFound().body("no such form / такой формы нет");
    };
    let limit = router.shared.config.requests.attachment_max_bytes;
    let (f, file) = match read_form(&req, payload, limit).await {
        Ok(read) => read,
        Err(why) => {
            // The form's language is in the body that could not be read: say it in both.
            let (uz, ru) = (RT::of(Lang::Uz), RT::of(Lang::Ru));
            let (status, texts) = match why {
                Unreadable::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    vec![uz.too_large, ru.too_large],
                ),
                Unreadable::Malformed => (
                    StatusCode::BAD_REQUEST,
                    vec![uz.text_needed, ru.text_needed],
                ),
            };
            return page(
                &router,
                tenant,
                Lang::Uz,
                &Fields::default(),
                texts,
                None,
                status,
            );
        }
    };
    let lang = lang_of(Some(f.lang.as_str()));
    let r = RT::of(lang);
    let now = jiff::Timestamp::now().as_millisecond();
    let ip = super::auth::client_ip(&req);
    if !f.website.is_empty() {
        metrics::counter!("navbat_requests_refused_total", "channel" => "web", "reason" => "honeypot")
            .increment(1);
        return page(
            &router,
            tenant,
            lang,
            &f,
            Vec::new(),
            Some(String::new()),
            StatusCode::OK,
        );
    }
    let allowed = router
        .shared
        .desk
        .form_limit
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .allow(ip, now);
    if !allowed {
        metrics::counter!("navbat_requests_refused_total", "channel" => "web", "reason" => "rate")
            .increment(1);
        return page(
            &router,
            tenant,
            lang,
            &f,
            vec![r.too_many],
            None,
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let mut found = problems(&f, tenant.desk.require_caller_details, r);
    let attachment = match &file {
        Some((name, bytes)) => match crate::requests::attach::check(bytes, name, limit) {
            Ok(a) => Some(a),
            Err(crate::requests::attach::AttachError::TooLarge { .. }) => {
                found.push(r.too_large);
                None
            }
            Err(_) => {
                found.push(r.bad_file);
                None
            }
        },
        None => None,
    };
    if !found.is_empty() {
        return page(
            &router,
            tenant,
            lang,
            &f,
            found,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let mut attachments = Vec::new();
    if let (Some(a), Some((_, bytes))) = (attachment, &file) {
        let dir = &router.shared.config.requests.attachments_dir;
        if let Err(e) = crate::requests::attach::keep(dir, &a, bytes) {
            tracing::error!(error = %e, "web-form attachment not kept");
            return page(
                &router,
                tenant,
                lang,
                &f,
                vec![r.unavailable],
                None,
                StatusCode::SERVICE_UNAVAILABLE,
            );
        }
        attachments.push(a);
    }
    let token_ok = f.token.len() == 32 && f.token.bytes().all(|b| b.is_ascii_hexdigit());
    let key = token_ok.then(|| format!("web:{}", f.token));
    let category = CATEGORIES
        .iter()
        .find(|c| **c == f.category)
        .map(|c| (*c).to_owned());
    let text: String = f.text.trim().chars().take(10_000).collect();
    let subject = some(&f.subject, 200)
        .unwrap_or_else(|| text.lines().next().unwrap_or("").chars().take(80).collect());
    let new = NewRequest {
        tenant: tenant.id.clone(),
        channel: Channel::Web,
        kind: Kind::Ordinary,
        priority: if category.as_deref() == Some("complaint") {
            Priority::High
        } else {
            Priority::Normal
        },
        category,
        topic: None,
        subject,
        requester: Requester {
            name: some(&f.name, 120),
            email: some(&f.email, 254),
            phone: some(&f.phone, 20),
            telegram_chat: None,
            organisation: some(&f.organisation, 200),
            stir: some(&f.stir, 9),
        },
        language: if lang == Lang::Ru { "ru" } else { "uz" }.to_owned(),
        message: Some(Message {
            uid: String::new(),
            direction: Direction::In,
            channel: Channel::Web,
            author: None,
            body: text,
            external_id: None,
            attachments,
            to: None,
        }),
        call_uid: None,
        actor: "customer".to_owned(),
        assignee: None,
    };
    match router.shared.requests.intake(key.as_deref(), new).await {
        Ok((number, fresh)) => {
            if fresh {
                tracing::info!(request = %number, tenant = %tenant.id, "web-form request registered");
                acknowledge(tenant, &number, f.email.trim(), lang);
            }
            page(
                &router,
                tenant,
                lang,
                &f,
                Vec::new(),
                Some(number),
                StatusCode::OK,
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "web-form request not taken");
            page(
                &router,
                tenant,
                lang,
                &f,
                vec![r.unavailable],
                None,
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}

/// Sends the requester the number by e-mail, when they gave an address and the tenant has a
/// mail relay. Best effort: the number is on their screen already; the mail is marked as
/// automatic (RFC 3834) so their auto-responder stays quiet.
fn acknowledge(tenant: &crate::config::Tenant, number: &str, email: &str, lang: Lang) {
    let Some(mail) = tenant.requests.mail.clone() else {
        return;
    };
    if email.is_empty() {
        return;
    }
    let r = RT::of(lang);
    let out = crate::mail::Outgoing {
        to_addr: crate::mail::EmailAddress::new(email),
        to_name: None,
        subject: format!("[{number}] {}", r.thanks_title),
        text: format!(
            "{}\n{}: {number}\n{}\n",
            r.thanks_text, r.your_number, r.answer_by_email
        ),
        message_id: crate::mail::message_id_for(&format!("{number}.ack"), &mail.smtp.from_addr),
        in_reply_to: None,
        references: Vec::new(),
        attachments: Vec::new(),
        auto_reply: true,
    };
    let number = number.to_owned();
    actix::spawn(async move {
        if let Err(e) = crate::mail::send(&mail, &out).await {
            tracing::warn!(request = %number, error = %e, "web-form acknowledgement not sent");
        }
    });
}

/// Registers the public form's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/r/{tenant}", web::get().to(form_get))
        .route("/r/{tenant}", web::post().to(form_post));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_needs_text_and_a_way_back() {
        let r = RT::of(Lang::Ru);
        let mut f = Fields::default();
        assert_eq!(
            problems(&f, false, r),
            vec![r.text_needed, r.contact_needed]
        );
        f.text = "Где результаты?".into();
        f.phone = "+998 90 123-45-67".into();
        assert!(problems(&f, false, r).is_empty());
        f.email = "not-an-address".into();
        assert_eq!(problems(&f, false, r), vec![r.bad_email]);
        f.email = "a@example.uz".into();
        assert_eq!(problems(&f, true, r), vec![r.bad_stir]);
        f.stir = "123456789".into();
        assert!(problems(&f, true, r).is_empty());
    }
}
