//! The requests pages of the desk (issue 14): the inbox and the request page with its thread,
//! reply box, notes, status, assignment, classification, and the editor's letter to the
//! client's chancellery (D15). Officers read; operators, editors, supervisors and admins act.
//! Another tenant's request is 404, like everything else of another tenant.

use super::auth::{self, audit};
use super::pages::{chrome, html, local_time, not_found, page_principal, redirect, Chrome};
use super::rtexts::RT;
use super::with_db;
use crate::accounts::{Principal, Role};
use crate::actors::Router;
use crate::requests::{
    db as rdb, Change, Channel, Direction, Head, Message, Priority, RequestError, Status,
};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

/// Who sees requests.
pub const READ_ROLES: &[Role] = &[
    Role::Operator,
    Role::Editor,
    Role::Supervisor,
    Role::Officer,
    Role::Admin,
];
/// Who works them.
pub const WORK_ROLES: &[Role] = &[Role::Operator, Role::Editor, Role::Supervisor, Role::Admin];
/// Who writes to the chancellery.
pub const LETTER_ROLES: &[Role] = &[Role::Editor, Role::Supervisor, Role::Admin];

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// One inbox row.
pub struct Row {
    /// Number.
    pub id: String,
    /// Registered, local.
    pub registered: String,
    /// Channel name.
    pub channel: &'static str,
    /// Priority code and name.
    pub priority: (&'static str, &'static str),
    /// Subject.
    pub subject: String,
    /// Requester, masked.
    pub requester: String,
    /// Status name.
    pub status: &'static str,
    /// Assignee.
    pub assignee: String,
    /// SLA text and CSS class.
    pub sla: (String, &'static str),
}

/// Hours and minutes, in the page's language.
fn span(secs: i64, r: &RT) -> String {
    let secs = secs.unsigned_abs();
    let (h, m) = (secs / 3600, (secs % 3600).div_ceil(60));
    let (hu, mu) = if std::ptr::eq(r, &super::rtexts::RU) {
        ("ч", "мин")
    } else {
        ("soat", "daq")
    };
    if h > 0 {
        format!("{h} {hu} {m} {mu}")
    } else {
        format!("{m} {mu}")
    }
}

/// A notice delivery as a page shows it.
pub struct NoticeRow {
    /// When (local).
    pub when: String,
    /// Why.
    pub kinds: String,
    /// Channel.
    pub channel: String,
    /// State code.
    pub state: String,
    /// State in words.
    pub state_text: &'static str,
    /// Why it failed; a digest's size.
    pub detail: String,
}

/// The notice deliveries about a call or request, for its page.
pub async fn notice_rows(router: &Router, target: &str, r: &'static RT) -> Vec<NoticeRow> {
    let wanted = target.to_owned();
    with_db(router, move |pool, _| async move {
        crate::store::notices::for_target(&pool, &wanted).await
    })
    .await
    .unwrap_or_default()
    .into_iter()
    .map(|d| NoticeRow {
        when: local_time(router, d.updated_at_ms),
        kinds: d.kinds,
        channel: d.channel,
        state_text: r.notice_state(&d.state),
        state: d.state,
        detail: match (d.detail, d.digest_of) {
            (Some(why), _) => why,
            (None, Some(n)) => format!("digest ({n})"),
            _ => String::new(),
        },
    })
    .collect()
}

/// The SLA cell of a request: the clock that matters most now (a breached one, else the
/// one with the least time left), as time left, and its CSS class.
pub fn sla_cell(router: &Router, head: &Head, r: &RT, now: i64) -> (String, &'static str) {
    use crate::sla::ClockState;
    let clock = router
        .shared
        .requests
        .clocks()
        .state(head, now)
        .and_then(|s| crate::requests::clocks::shown(&s, head.status));
    let Some(c) = clock else {
        return ("—".to_owned(), "");
    };
    let name = match crate::requests::clocks::rule_name(c.rule) {
        "resolution" => r.resolution,
        "moderation" => r.moderation,
        _ => r.first_answer,
    };
    match c.state {
        ClockState::Breached => (
            format!("{name}: {} (+{})", r.breached, span(c.left_secs, r)),
            "sla-breached",
        ),
        ClockState::Paused => (
            format!("{name}: {} · {}", r.paused, span(c.left_secs, r)),
            "sla-paused",
        ),
        _ if c.near_breach => (
            format!("{name}: {} ({})", span(c.left_secs, r), r.near_breach),
            "sla-near",
        ),
        _ => (format!("{name}: {}", span(c.left_secs, r)), "sla-running"),
    }
}

fn row(router: &Router, h: &Head, r: &'static RT, now: i64) -> Row {
    Row {
        id: h.id.clone(),
        registered: local_time(router, h.registered_at_ms),
        channel: r.channel(h.channel.as_str()),
        priority: (h.priority.as_str(), r.priority(h.priority.as_str())),
        subject: h.subject.clone(),
        requester: h.requester.label(),
        status: r.status(h.status.as_str()),
        assignee: h.assignee.clone().unwrap_or_default(),
        sla: sla_cell(router, h, r, now),
    }
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct Inbox {
    c: Chrome,
    r: &'static RT,
    rows: Vec<Row>,
    status: String,
    statuses: Vec<(&'static str, &'static str)>,
    priority: String,
    priorities: Vec<(&'static str, &'static str)>,
    channel: String,
    channels: Vec<(&'static str, &'static str)>,
    mine: bool,
    sla: String,
    query: String,
}

#[derive(Deserialize, Default)]
struct InboxQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    mine: Option<String>,
    /// `near` (near breach or breached) or `breached`.
    #[serde(default)]
    sla: String,
}

async fn inbox(
    router: web::Data<Router>,
    req: HttpRequest,
    q: web::Query<InboxQuery>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, READ_ROLES).await);
    let r = RT::of(p.account.language);
    let now = now_ms();
    let me = p.username().to_owned();
    let mine = q.mine.is_some();
    let status = Status::parse(&q.status);
    let priority = Priority::parse(&q.priority);
    let channel = Channel::parse(&q.channel);
    let keep = |h: &Head| {
        p.sees(&h.tenant).is_ok()
            && priority.is_none_or(|x| h.priority == x)
            && channel.is_none_or(|x| h.channel == x)
            && (!mine || h.assignee.as_deref() == Some(me.as_str()))
    };
    let heads: Vec<Head> = match status {
        Some(s) if !s.is_open() => {
            let tenants = super::pages::visible_tenants(&router, &p);
            let wanted = s.as_str();
            let pii = super::pii(&router);
            with_db(&router, move |pool, _| async move {
                rdb::list(&pool, pii.as_deref(), Some(&tenants), &[wanted], 500).await
            })
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|h| keep(h))
            .collect()
        }
        Some(s) => router.shared.requests.open(|h| h.status == s && keep(h)),
        None => router.shared.requests.open(keep),
    };
    // The least time left first (breached ones lead), then the most urgent, then the oldest.
    let clocks = router.shared.requests.clocks();
    let mut keyed: Vec<(i64, bool, Head)> = heads
        .into_iter()
        .map(|h| {
            let c = clocks
                .state(&h, now)
                .and_then(|s| crate::requests::clocks::shown(&s, h.status));
            let left = c.map(|c| c.left_secs).unwrap_or(i64::MAX);
            let near =
                c.is_some_and(|c| c.near_breach || c.state == crate::sla::ClockState::Breached);
            (left, near, h)
        })
        .filter(|(left, near, _)| match q.sla.as_str() {
            "near" => *near,
            "breached" => *left < 0,
            _ => true,
        })
        .collect();
    keyed.sort_by_key(|(left, _, h)| (*left, h.priority, h.registered_at_ms));
    let mut heads: Vec<Head> = keyed.into_iter().map(|(_, _, h)| h).collect();
    heads.truncate(500);
    html(
        StatusCode::OK,
        Inbox {
            c: chrome(&p),
            r,
            rows: heads.iter().map(|h| row(&router, h, r, now)).collect(),
            status: q.status.clone(),
            statuses: Status::ALL
                .iter()
                .map(|s| (s.as_str(), r.status(s.as_str())))
                .collect(),
            priority: q.priority.clone(),
            priorities: Priority::ALL
                .iter()
                .map(|s| (s.as_str(), r.priority(s.as_str())))
                .collect(),
            channel: q.channel.clone(),
            channels: Channel::ALL
                .iter()
                .map(|s| (s.as_str(), r.channel(s.as_str())))
                .collect(),
            mine,
            sla: q.sla.clone(),
            query: req.query_string().to_owned(),
        }
        .render(),
    )
}

/// A thread message as the page shows it.
pub struct ShownMessage {
    uid: String,
    at: String,
    class: &'static str,
    who: String,
    body: String,
    delivery: String,
    attachments: Vec<(String, String, u64)>,
}

#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    c: Chrome,
    r: &'static RT,
    h: Head,
    row: Row,
    category: String,
    messages: Vec<ShownMessage>,
    history: Vec<(String, String, String)>,
    can_work: bool,
    can_letter: bool,
    chancellery: Option<String>,
    letter: String,
    next_statuses: Vec<(&'static str, &'static str)>,
    priorities: Vec<(&'static str, &'static str)>,
    categories: Vec<(&'static str, &'static str)>,
    forwarded: String,
    problem: Option<String>,
    nt: &'static RT,
    notices: Vec<NoticeRow>,
}

/// A request from memory, else from the database.
pub async fn find(router: &Router, id: &str) -> Option<Head> {
    match router.shared.requests.head(id) {
        Some(h) => Some(h),
        None => {
            let wanted = id.to_owned();
            let pii = super::pii(router);
            with_db(router, move |pool, _| async move {
                rdb::head(&pool, pii.as_deref(), &wanted).await
            })
            .await
            .ok()
            .flatten()
        }
    }
}

/// A request the principal may see.
async fn visible(router: &Router, p: &Principal, id: &str) -> Result<Head, HttpResponse> {
    match find(router, id).await {
        Some(h) if p.sees(&h.tenant).is_ok() => Ok(h),
        _ => Err(not_found(p)),
    }
}

async fn request_page_with(
    router: &Router,
    p: &Principal,
    id: &str,
    problem: Option<String>,
) -> HttpResponse {
    let h = or_answer!(visible(router, p, id).await);
    let r = RT::of(p.account.language);
    router.shared.requests.settle().await;
    let wanted = h.id.clone();
    let pii = super::pii(router);
    let (thread, history) = with_db(router, move |pool, _| async move {
        Ok((
            rdb::thread(&pool, pii.as_deref(), &wanted).await?,
            rdb::history(&pool, &wanted).await?,
        ))
    })
    .await
    .unwrap_or_default();
    let messages = thread
        .into_iter()
        .map(|m| ShownMessage {
            uid: m.uid,
            at: local_time(router, m.at_ms),
            class: match m.direction.as_str() {
                "in" => "in",
                "out" => "out",
                "letter" => "letter",
                _ => "note",
            },
            who: match m.direction.as_str() {
                "in" => r.from_customer.to_owned(),
                "out" => format!("{} · {}", r.to_customer, m.author.unwrap_or_default()),
                "letter" => format!(
                    "{} → {} · {}",
                    r.letter,
                    m.to.unwrap_or_default(),
                    m.author.unwrap_or_default()
                ),
                _ => format!("{} · {}", r.internal_note, m.author.unwrap_or_default()),
            },
            body: m.body,
            delivery: match m.delivery.as_deref() {
                Some("sent") => r.delivery_sent.to_owned(),
                Some("failed") => format!(
                    "{}: {}",
                    r.delivery_failed,
                    m.delivery_detail.unwrap_or_default()
                ),
                Some(_) => r.delivery_queued.to_owned(),
                None => String::new(),
            },
            attachments: m
                .attachments
                .into_iter()
                .map(|a| (a.sha256, a.file_name, a.bytes))
                .collect(),
        })
        .collect();
    let history = history
        .into_iter()
        .map(|s| (local_time(router, s.at_ms), s.actor, s.kind))
        .collect();
    let tenant = router
        .shared
        .config
        .tenants
        .iter()
        .find(|t| t.id == h.tenant);
    let chancellery = tenant.and_then(|t| t.requests.chancellery.clone());
    let letter = letter_draft(tenant, &h);
    let notices = notice_rows(router, &h.id, r).await;
    let now = now_ms();
    html(
        StatusCode::OK,
        RequestPage {
            c: chrome(p),
            r,
            row: row(router, &h, r, now),
            category: h
                .category
                .as_deref()
                .map(|c| r.category(c).to_owned())
                .unwrap_or_default(),
            messages,
            history,
            can_work: p.require(WORK_ROLES).is_ok(),
            can_letter: p.require(LETTER_ROLES).is_ok(),
            chancellery,
            letter,
            next_statuses: Status::ALL
                .iter()
                .filter(|s| h.status.can_move_to(**s))
                .map(|s| (s.as_str(), r.status(s.as_str())))
                .collect(),
            priorities: Priority::ALL
                .iter()
                .map(|s| (s.as_str(), r.priority(s.as_str())))
                .collect(),
            categories: ["question", "complaint", "suggestion", "application"]
                .iter()
                .map(|c| (*c, r.category(c)))
                .collect(),
            forwarded: h
                .forwarded_at_ms
                .map(|ms| local_time(router, ms))
                .unwrap_or_default(),
            h,
            problem,
            nt: r,
            notices,
        }
        .render(),
    )
}

async fn request_page(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let p = or_answer!(page_principal(&router, &req, READ_ROLES).await);
    request_page_with(&router, &p, &path, None).await
}

#[derive(Deserialize)]
struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    reference: String,
}

/// The channel a reply goes out by: the one it came from; a web request with an address is
/// answered by e-mail; a phone request's "reply" records the call back.
pub fn reply_channel(h: &Head) -> Channel {
    match h.channel {
        Channel::Web if h.requester.email.is_some() => Channel::Email,
        Channel::Web => Channel::Phone,
        c => c,
    }
}

/// A new e-mail Message-ID for an outbound message of request `id`.
pub fn new_message_id(id: &str) -> String {
    format!("{id}.{}@navbat", &crate::accounts::new_secret()[..16])
}

async fn act(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<ActForm>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let roles = if action == "letter" || action == "answer" {
        LETTER_ROLES
    } else {
        WORK_ROLES
    };
    let p = or_answer!(page_principal(&router, &req, roles).await);
    or_answer!(auth::check_csrf(&p, &req, Some(&form.csrf)));
    let h = or_answer!(visible(&router, &p, &id).await);
    let r = RT::of(p.account.language);
    let body: String = form.body.trim().chars().take(20_000).collect();
    let me = p.username().to_owned();
    let message =
        |direction: Direction, channel: Channel, external: Option<String>, to: Option<String>| {
            Change::Message {
                message: Message {
                    uid: String::new(),
                    direction,
                    channel,
                    author: Some(me.clone()),
                    body: body.clone(),
                    external_id: external,
                    attachments: Vec::new(),
                    to,
                },
            }
        };
    let change = match action.as_str() {
        "reply" | "note" | "letter" if body.is_empty() => {
            return request_page_with(&router, &p, &id, Some(r.text_needed.to_owned())).await
        }
        "reply" => {
            let channel = reply_channel(&h);
            let external = (channel == Channel::Email).then(|| new_message_id(&h.id));
            message(Direction::Out, channel, external, None)
        }
        "note" => message(Direction::Note, h.channel, None, None),
        "letter" => {
            let Some(to) = router
                .shared
                .config
                .tenants
                .iter()
                .find(|t| t.id == h.tenant)
                .and_then(|t| t.requests.chancellery.clone())
            else {
                return request_page_with(&router, &p, &id, Some(r.refused.to_owned())).await;
            };
            // The thread goes with the letter, as a text file kept like any attachment.
            let thread = thread_text(&router, &h).await;
            let dir = &router.shared.config.requests.attachments_dir;
            let name = format!("{}-thread.txt", h.id);
            let file = crate::requests::attach::check(
                thread.as_bytes(),
                &name,
                router.shared.config.requests.attachment_max_bytes,
            )
            .and_then(|a| crate::requests::attach::keep(dir, &a, thread.as_bytes()).map(|()| a));
            let mut letter = message(
                Direction::Letter,
                Channel::Email,
                Some(new_message_id(&h.id)),
                Some(to),
            );
            if let (Change::Message { message }, Ok(a)) = (&mut letter, file) {
                message.attachments.push(a);
            }
            letter
        }
        "answer" => Change::ChancelleryAnswer {
            reference: form.reference.trim().to_owned(),
        },
        "status" => match Status::parse(&form.to) {
            Some(to) => Change::Status { from: h.status, to },
            None => return not_found(&p),
        },
        "assign" => Change::Assigned {
            from: h.assignee.clone(),
            to: match form.to.as_str() {
                "" => None,
                "me" => Some(me.clone()),
                other => Some(other.chars().take(64).collect()),
            },
        },
        "classify" => Change::Classified {
            priority: Priority::parse(&form.priority).unwrap_or(h.priority),
            category: ["question", "complaint", "suggestion", "application"]
                .iter()
                .find(|c| **c == form.category)
                .map(|c| (*c).to_owned()),
            topic: h.topic.clone(),
        },
        "resubmit" => Change::Resubmitted,
        _ => return not_found(&p),
    };
    if action == "answer" && form.reference.trim().is_empty() {
        return request_page_with(&router, &p, &id, Some(r.refused.to_owned())).await;
    }
    let name = change.name();
    match router.shared.requests.change(&h.id, change, &me).await {
        Ok(_) => {
            if action == "answer" && !body.is_empty() {
                let note = message(Direction::Note, h.channel, None, None);
                let _ = router.shared.requests.change(&h.id, note, &me).await;
            }
            audit(
                &router,
                &p,
                Some(&req),
                &format!("request_{name}"),
                Some(&h.tenant),
                Some(&h.id),
                None,
            );
            router.shared.requests.settle().await;
            redirect(&format!("/requests/{}", h.id))
        }
        Err(e @ (RequestError::Transition { .. } | RequestError::Invalid(_))) => {
            request_page_with(&router, &p, &id, Some(format!("{}: {e}", r.refused))).await
        }
        Err(e) => {
            tracing::warn!(error = %e, request = %h.id, "request change not kept");
            HttpResponse::ServiceUnavailable().body(format!("{}: {e}", r.refused))
        }
    }
}

/// The request an operator opens from the after-call form: a phone request about the call,
/// assigned to them, with what they wrote as its first note.
pub fn from_call(
    tenant: &str,
    call_uid: &str,
    d: &super::disposition::Checked,
    phone: Option<String>,
    operator: &str,
) -> crate::requests::NewRequest {
    let subject = d
        .notes
        .lines()
        .next()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.chars().take(120).collect())
        .or_else(|| d.topic.clone())
        .unwrap_or_else(|| d.category.clone());
    crate::requests::NewRequest {
        tenant: tenant.to_owned(),
        channel: Channel::Phone,
        kind: crate::requests::Kind::Ordinary,
        priority: if d.category == "complaint" || d.outcome == "disputed" {
            Priority::High
        } else {
            Priority::Normal
        },
        category: Some(d.category.clone()),
        topic: d.topic.clone(),
        subject,
        requester: crate::requests::Requester {
            name: d.caller_name.clone(),
            phone,
            organisation: d.organisation.clone(),
            stir: d.stir.clone(),
            ..Default::default()
        },
        language: "uz".to_owned(),
        message: (!d.notes.is_empty()).then(|| Message {
            uid: String::new(),
            direction: Direction::Note,
            channel: Channel::Phone,
            author: Some(operator.to_owned()),
            body: d.notes.clone(),
            external_id: None,
            attachments: Vec::new(),
            to: None,
        }),
        call_uid: Some(call_uid.to_owned()),
        actor: operator.to_owned(),
        assignee: Some(operator.to_owned()),
    }
}

/// The request's thread as plain text (the letter's attachment), oldest first; notes left out.
async fn thread_text(router: &Router, h: &Head) -> String {
    router.shared.requests.settle().await;
    let wanted = h.id.clone();
    let pii = super::pii(router);
    let thread = with_db(router, move |pool, _| async move {
        rdb::thread(&pool, pii.as_deref(), &wanted).await
    })
    .await
    .unwrap_or_default();
    let mut out = format!(
        "Murojaat / Обращение {}\n{}\n{}: {}\n\n",
        h.id,
        h.subject,
        local_time(router, h.registered_at_ms),
        h.channel
    );
    for m in thread
        .iter()
        .filter(|m| m.direction == "in" || m.direction == "out")
    {
        out.push_str(&format!(
            "--- {} · {} ---\n{}\n\n",
            local_time(router, m.at_ms),
            if m.direction == "in" {
                "Mijoz / Клиент"
            } else {
                "Operator / Оператор"
            },
            m.body
        ));
    }
    out
}

/// The letter to the chancellery as the editor starts it: the tenant's template (or the
/// built-in one) in the request's language, with the request's facts filled in.
pub fn letter_draft(tenant: Option<&crate::config::Tenant>, h: &Head) -> String {
    let ru = h.language == "ru";
    let template = tenant
        .and_then(|t| {
            if ru {
                t.requests.letter_ru.clone()
            } else {
                t.requests.letter_uz.clone()
            }
        })
        .unwrap_or_else(|| {
            if ru {
                "В канцелярию\n\nНаправляем обращение № {number} от {date} ({channel}).\nТема: {subject}\nЗаявитель: {requester}\n\nПросим рассмотреть и сообщить ответ с его номером.\nПереписка с заявителем приложена.\n".to_owned()
            } else {
                "Devonxonaga\n\n{date} sanasida kelib tushgan {number}-sonli murojaatni ({channel}) yuboramiz.\nMavzu: {subject}\nMurojaatchi: {requester}\n\nKo'rib chiqib, javobni raqami bilan ma'lum qilishingizni so'raymiz.\nMurojaatchi bilan yozishmalar ilova qilingan.\n".to_owned()
            }
        });
    let date = jiff::Timestamp::from_millisecond(h.registered_at_ms)
        .map(|t| {
            let zone = tenant
                .map(|t| t.timezone.clone())
                .unwrap_or(jiff::tz::TimeZone::UTC);
            zone.to_datetime(t).date().to_string()
        })
        .unwrap_or_default();
    template
        .replace("{number}", &h.id)
        .replace("{date}", &date)
        .replace("{channel}", h.channel.as_str())
        .replace("{subject}", &h.subject)
        .replace(
            "{requester}",
            &h.requester
                .name
                .clone()
                .unwrap_or_else(|| h.requester.label()),
        )
}

/// A file of a request's thread, to those who see the request.
async fn attachment(
    router: web::Data<Router>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, sha) = path.into_inner();
    let p = or_answer!(page_principal(&router, &req, READ_ROLES).await);
    let h = or_answer!(visible(&router, &p, &id).await);
    let wanted = h.id.clone();
    let pii = super::pii(&router);
    let thread = with_db(&router, move |pool, _| async move {
        rdb::thread(&pool, pii.as_deref(), &wanted).await
    })
    .await
    .unwrap_or_default();
    let Some(a) = thread
        .iter()
        .flat_map(|m| m.attachments.iter())
        .find(|a| a.sha256 == sha)
        .cloned()
    else {
        return not_found(&p);
    };
    let dir = &router.shared.config.requests.attachments_dir;
    let bytes = match crate::requests::attach::path_of(dir, &a.sha256).map(std::fs::read) {
        Some(Ok(b)) => b,
        _ => return not_found(&p),
    };
    audit(
        &router,
        &p,
        Some(&req),
        "request_attachment_download",
        Some(&h.tenant),
        Some(&h.id),
        Some(a.file_name.clone()),
    );
    HttpResponse::Ok()
        .content_type(a.media_type.clone())
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\"",
                a.file_name.replace(['"', '\\'], "_")
            ),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(bytes)
}

/// Registers the requests pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/requests", web::get().to(inbox))
        .route("/requests/{id}", web::get().to(request_page))
        .route("/requests/{id}/files/{sha}", web::get().to(attachment))
        .route("/requests/{id}/{action}", web::post().to(act));
}
