//! The notifier: turns triggers into notices, journals them, and drives the pure
//! [`Outbox`] against the tenants' mail relays and Telegram groups.
//!
//! Here, with the router's other running pieces, rather than in `notices`: it holds a store
//! handle, and the store keeps the notices' steps, so it sits above both.

use crate::events::{Event, EventKind, EventSink};
use crate::notices::outbox::{Action, Attempt, Outbox};
use crate::notices::{digest, Channel, Notice, NoticeKind, NoticeStep, Target};
use crate::requests::telegram::{Bot, TelegramError, TelegramSettings};
use crate::store::outbox::StoreRecord;
use crate::store::Store;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const QUEUE: usize = 4096;

/// Something that may deserve a notice.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// A disposition was saved.
    Disposition {
        /// The call's store name.
        uid: String,
        /// Tenant.
        tenant: String,
        /// Category.
        category: String,
        /// Outcome.
        outcome: String,
        /// Operator.
        operator: Option<String>,
    },
    /// A request's clock ran out.
    SlaBreach {
        /// The request.
        request: String,
        /// Tenant.
        tenant: String,
        /// The clock.
        clock: String,
    },
}

/// Where a tenant's notices go.
#[derive(Clone)]
pub struct TenantNotices {
    /// What triggers a notice.
    pub on: Vec<NoticeKind>,
    /// The e-mail list and the relay to send through.
    pub email: Option<(Vec<String>, crate::mail::MailSettings)>,
    /// The Telegram group and the bot.
    pub telegram: Option<(i64, TelegramSettings)>,
    /// The tenant's zone (times in texts).
    pub zone: jiff::tz::TimeZone,
}

impl TenantNotices {
    fn channels(&self) -> Vec<Channel> {
        let mut c = Vec::new();
        if self.email.is_some() {
            c.push(Channel::Email);
        }
        if self.telegram.is_some() {
            c.push(Channel::Telegram);
        }
        c
    }
}

/// The event sink that hands triggers to the notifier (never blocks the bus; a full queue is
/// counted and logged).
pub struct NoticeTriggers {
    tx: tokio::sync::mpsc::Sender<Trigger>,
    uid: crate::requests::calls::StoreName,
    shed: AtomicU64,
}

impl EventSink for NoticeTriggers {
    fn emit(&self, event: &Event) {
        let trigger = match &event.kind {
            EventKind::DispositionSaved {
                call,
                tenant,
                category,
                outcome,
                operator,
                ..
            } => {
                let Some(uid) = (self.uid)(call) else { return };
                Trigger::Disposition {
                    uid,
                    tenant: tenant.clone(),
                    category: category.clone(),
                    outcome: outcome.clone(),
                    operator: operator.clone(),
                }
            }
            EventKind::RequestSla {
                request,
                tenant,
                clock,
                state,
            } if state == "breached" => Trigger::SlaBreach {
                request: request.clone(),
                tenant: tenant.clone(),
                clock: clock.clone(),
            },
            _ => return,
        };
        if self.tx.try_send(trigger).is_err() {
            let n = self.shed.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("navbat_notices_shed_total").increment(1);
            crate::metrics::mailbox_shed("notices", 1);
            if n.is_power_of_two() {
                tracing::error!(
                    shed = n + 1,
                    "notice queue full: notices are not being made"
                );
            }
        }
    }
}

/// The notifier's handle.
pub struct Notifier;

impl Notifier {
    /// The sink and the receiver [`run`] drains.
    pub fn triggers(
        uid: crate::requests::calls::StoreName,
    ) -> (Arc<NoticeTriggers>, tokio::sync::mpsc::Receiver<Trigger>) {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        (
            Arc::new(NoticeTriggers {
                tx,
                uid,
                shed: AtomicU64::new(0),
            }),
            rx,
        )
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn local(zone: &jiff::tz::TimeZone, ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| zone.to_datetime(t).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Everything the notifier needs.
pub struct Setup {
    /// Per tenant.
    pub tenants: HashMap<String, TenantNotices>,
    /// The desk's address for links (`http://127.0.0.1:8080`).
    pub desk_url: String,
    /// Notices alone per tenant, channel and minute before a digest.
    pub per_minute: u32,
    /// The store (journal and database).
    pub store: Store,
    /// The requests (for SLA notices' facts).
    pub requests: Arc<crate::requests::Requests>,
}

/// The notifier's setup from the configuration.
pub fn setup(
    config: &crate::config::Config,
    store: Store,
    requests: Arc<crate::requests::Requests>,
) -> Setup {
    let tenants = config
        .tenants
        .iter()
        .map(|t| {
            let n = &t.notices;
            let email = match (&t.requests.mail, n.emails.is_empty()) {
                (Some(mail), false) => Some((n.emails.clone(), mail.clone())),
                _ => None,
            };
            let telegram = match (&t.requests.telegram, n.telegram_chat) {
                (Some(tg), Some(chat)) => Some((
                    chat,
                    TelegramSettings {
                        tenant: t.id.clone(),
                        api: tg.api.clone(),
                        token: tg.token.clone(),
                        poll_timeout_secs: tg.poll_timeout_secs,
                        ask_details: false,
                    },
                )),
                _ => None,
            };
            (
                t.id.clone(),
                TenantNotices {
                    on: n.on.clone(),
                    email,
                    telegram,
                    zone: t.timezone.clone(),
                },
            )
        })
        .collect();
    Setup {
        tenants,
        desk_url: config.notices.desk_url.clone(),
        per_minute: config.notices.digest_above_per_minute,
        store,
        requests,
    }
}

/// Builds the notice a trigger deserves, if any (reads the call record for its facts).
async fn notice_for(setup: &Setup, trigger: Trigger) -> Option<Notice> {
    match trigger {
        Trigger::Disposition {
            uid,
            tenant,
            category,
            outcome,
            operator,
        } => {
            let t = setup.tenants.get(&tenant)?;
            let mut kinds = Vec::new();
            if outcome == "unresolved" && t.on.contains(&NoticeKind::Unresolved) {
                kinds.push(NoticeKind::Unresolved);
            }
            if outcome == "disputed" && t.on.contains(&NoticeKind::Disputed) {
                kinds.push(NoticeKind::Disputed);
            }
            if category == "complaint" && t.on.contains(&NoticeKind::Complaint) {
                kinds.push(NoticeKind::Complaint);
            }
            if kinds.is_empty() {
                return None;
            }
            let db = setup.store.db().clone();
            let wanted = uid.clone();
            let view = setup
                .store
                .run(async move {
                    crate::accounts::db::call_view(db.pool(), db.pii().map(|p| &**p), &wanted).await
                })
                .await
                .ok()
                .and_then(|r| r.ok())
                .flatten();
            let number = view
                .as_ref()
                .and_then(|v| v.caller_number.as_deref())
                .map(|n| crate::privacy::PhoneNumber::new(n).masked())
                .unwrap_or_else(|| "—".to_owned());
            let when = view
                .as_ref()
                .and_then(|v| v.arrived_at_ms)
                .map(|ms| local(&t.zone, ms))
                .unwrap_or_default();
            let topic = view
                .as_ref()
                .and_then(|v| v.topic.clone())
                .unwrap_or_else(|| "—".to_owned());
            let operator = operator.unwrap_or_else(|| "—".to_owned());
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            Some(Notice {
                id: format!("call:{uid}:{}", names.join("+")),
                tenant: tenant.clone(),
                kinds,
                target: Target::Call(uid.clone()),
                created_at_ms: now_ms(),
                text_uz: format!(
                    "Qo'ng'iroq {when}, raqam {number}, mavzu {topic}, toifa {category}, natija {outcome}, operator {operator}."
                ),
                text_ru: format!(
                    "Звонок {when}, номер {number}, тема {topic}, категория {category}, итог {outcome}, оператор {operator}."
                ),
                link: format!("{}/calls/{uid}", setup.desk_url),
            })
        }
        Trigger::SlaBreach {
            request,
            tenant,
            clock,
        } => {
            let t = setup.tenants.get(&tenant)?;
            if !t.on.contains(&NoticeKind::SlaBreach) {
                return None;
            }
            let head = setup.requests.head(&request);
            let (registered, channel, priority) = head
                .map(|h| {
                    (
                        local(&t.zone, h.registered_at_ms),
                        h.channel.as_str(),
                        h.priority.as_str(),
                    )
                })
                .unwrap_or_default();
            Some(Notice {
                id: format!("request:{request}:{clock}"),
                tenant: tenant.clone(),
                kinds: vec![NoticeKind::SlaBreach],
                target: Target::Request(request.clone()),
                created_at_ms: now_ms(),
                text_uz: format!(
                    "Murojaat {request} ({channel}, {priority}, {registered}): «{clock}» muddati o'tdi."
                ),
                text_ru: format!(
                    "Обращение {request} ({channel}, {priority}, {registered}): нарушен срок «{clock}»."
                ),
                link: format!("{}/requests/{request}", setup.desk_url),
            })
        }
    }
}

/// Sends one action; `Attempt` and the reason of a failure.
async fn send(
    setup: &Setup,
    bots: &HashMap<String, Bot>,
    tenant: &str,
    channel: Channel,
    notices: &[Notice],
) -> (Attempt, Option<String>) {
    let Some(t) = setup.tenants.get(tenant) else {
        return (Attempt::GiveUp, Some("no such tenant".to_owned()));
    };
    let (subject, body) = match notices {
        [one] => one.message(),
        many => digest(tenant, many),
    };
    match channel {
        Channel::Email => {
            let Some((to, mail)) = &t.email else {
                return (Attempt::GiveUp, Some("no e-mail list".to_owned()));
            };
            for addr in to {
                let unique = format!(
                    "{}.{}",
                    notices.first().map(|n| n.id.as_str()).unwrap_or(""),
                    notices.len()
                );
                let out = crate::mail::Outgoing {
                    to_addr: crate::mail::EmailAddress::new(addr.clone()),
                    to_name: None,
                    subject: subject.clone(),
                    text: body.clone(),
                    message_id: crate::mail::message_id_for(&unique, &mail.smtp.from_addr),
                    in_reply_to: None,
                    references: Vec::new(),
                    attachments: Vec::new(),
                    auto_reply: true,
                };
                if let Err(e) = crate::mail::send(mail, &out).await {
                    let attempt = if e.is_permanent() {
                        Attempt::GiveUp
                    } else {
                        Attempt::Retry
                    };
                    return (attempt, Some(e.to_string()));
                }
            }
            (Attempt::Sent, None)
        }
        Channel::Telegram => {
            let (Some((chat, _)), Some(bot)) = (&t.telegram, bots.get(tenant)) else {
                return (Attempt::GiveUp, Some("no Telegram group".to_owned()));
            };
            match bot
                .send_message(*chat, &format!("{subject}\n\n{body}"))
                .await
            {
                Ok(_) => (Attempt::Sent, None),
                Err(e @ TelegramError::RetryAfter(_)) | Err(e @ TelegramError::Transient(_)) => {
                    (Attempt::Retry, Some(e.to_string()))
                }
                Err(e) => (Attempt::GiveUp, Some(e.to_string())),
            }
        }
    }
}

fn journal(store: &Store, step: NoticeStep) -> Option<tokio::sync::oneshot::Receiver<()>> {
    store.record(StoreRecord::Notice(Box::new(step))).ok()
}

/// Runs the notifier until the process ends (on an actix thread: the Telegram client).
pub async fn run(setup: Setup, mut triggers: tokio::sync::mpsc::Receiver<Trigger>) {
    let bots: HashMap<String, Bot> = setup
        .tenants
        .iter()
        .filter_map(|(id, t)| {
            t.telegram
                .as_ref()
                .map(|(_, s)| (id.clone(), Bot::new(s, Duration::from_secs(30))))
        })
        .collect();
    // Every series exists from the start (dashboards and alert rules see zeros).
    for t in setup.tenants.keys() {
        metrics::counter!("navbat_notices_total", "tenant" => t.clone()).increment(0);
    }
    for c in [Channel::Email, Channel::Telegram] {
        for state in ["sent", "retrying", "failed"] {
            metrics::counter!("navbat_notice_deliveries_total", "channel" => c.as_str(), "state" => state)
                .increment(0);
        }
    }
    metrics::counter!("navbat_notices_shed_total").increment(0);
    let mut outbox = Outbox::new(setup.per_minute);
    let mut known: HashSet<String> = HashSet::new();
    // Deliveries of earlier runs not yet sent: the database's, then the journal's on top.
    let db = setup.store.db().clone();
    let pending = setup
        .store
        .run(async move { self::pending(db.pool()).await })
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    // (notice, attempts, due, done) per delivery: the database's, then the journal's steps
    // in order on top (a step the database already has changes nothing).
    let mut recovered: HashMap<(String, Channel), RecoveredDelivery> = HashMap::new();
    for (notice, channel, attempts, due, done) in pending.known {
        recovered.insert(
            (notice.id.clone(), channel),
            (Some(notice), attempts, due, done),
        );
    }
    for id in pending.ids {
        known.insert(id);
    }
    for step in setup.store.take_undrained_notices() {
        match step {
            NoticeStep::Queued { notice, channels } => {
                known.insert(notice.id.clone());
                for c in channels {
                    let e = recovered.entry((notice.id.clone(), c)).or_insert((
                        None,
                        0,
                        notice.created_at_ms,
                        false,
                    ));
                    e.0.get_or_insert_with(|| notice.clone());
                }
            }
            NoticeStep::Delivery {
                id,
                channel,
                state,
                attempts,
                due_ms,
                ..
            } => {
                let e = recovered
                    .entry((id, channel))
                    .or_insert((None, 0, 0, false));
                if attempts >= e.1 {
                    e.1 = attempts;
                    e.2 = due_ms.unwrap_or(e.2);
                    e.3 = state != "retrying";
                }
            }
        }
    }
    for ((_, channel), (notice, attempts, due, done)) in recovered {
        if let (Some(notice), false) = (notice, done) {
            outbox.add(notice, channel, attempts, due);
        }
    }
    let (results_tx, mut results) =
        tokio::sync::mpsc::channel::<(String, Channel, Vec<Notice>, Attempt, Option<String>)>(64);
    let setup = Arc::new(setup);
    let bots = std::rc::Rc::new(bots);
    loop {
        let now = now_ms();
        for Action::Send {
            tenant,
            channel,
            notices,
        } in outbox.poll(now)
        {
            let (setup, bots, tx) = (setup.clone(), bots.clone(), results_tx.clone());
            actix::spawn(async move {
                let (attempt, detail) = send(&setup, &bots, &tenant, channel, &notices).await;
                let _ = tx.send((tenant, channel, notices, attempt, detail)).await;
            });
        }
        let wait = outbox
            .next_due(now_ms())
            .map(|due| Duration::from_millis((due - now_ms()).clamp(1, 60_000) as u64))
            .unwrap_or(Duration::from_secs(60));
        tokio::select! {
            Some(trigger) = triggers.recv() => {
                let Some(notice) = notice_for(&setup, trigger).await else { continue };
                if !known.insert(notice.id.clone()) {
                    continue;
                }
                let Some(t) = setup.tenants.get(&notice.tenant) else { continue };
                let channels = t.channels();
                let step = NoticeStep::Queued { notice: notice.clone(), channels: channels.clone() };
                // On disk before the first attempt.
                let kept = match journal(&setup.store, step) {
                    Some(ack) => ack.await.is_ok(),
                    None => false,
                };
                if !kept {
                    known.remove(&notice.id);
                    tracing::error!(notice = %notice.id, "notice not journaled: not sent");
                    continue;
                }
                metrics::counter!("navbat_notices_total", "tenant" => notice.tenant.clone()).increment(1);
                for c in channels {
                    outbox.add(notice.clone(), c, 0, now_ms());
                }
            }
            Some((tenant, channel, notices, attempt, detail)) = results.recv() => {
                let digest_of = (notices.len() > 1).then_some(notices.len() as u32);
                for o in outbox.done(&tenant, channel, attempt, now_ms()) {
                    metrics::counter!("navbat_notice_deliveries_total", "channel" => channel.as_str(), "state" => o.state).increment(1);
                    if o.state != "sent" {
                        tracing::warn!(notice = %o.id, channel = channel.as_str(), state = o.state, error = detail.as_deref().unwrap_or(""), "notice not delivered");
                    }
                    let _ = journal(&setup.store, NoticeStep::Delivery {
                        id: o.id,
                        channel,
                        state: o.state.to_owned(),
                        attempts: o.attempts,
                        due_ms: o.due_ms,
                        detail: detail.clone().filter(|_| o.state != "sent"),
                        digest_of,
                    });
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// A recovered delivery: the notice, channel, attempts, due time, and whether it is done.
pub type Recovered = (Notice, Channel, u32, i64, bool);

/// A delivery being recovered: the notice (once known), attempts, due time, done.
type RecoveredDelivery = (Option<Notice>, u32, i64, bool);

/// What the database says about notices: deliveries not finished, and the ids known.
#[derive(Default)]
pub struct Pending {
    /// Unfinished deliveries.
    pub known: Vec<Recovered>,
    /// Every notice id of the last 30 days (so a trigger replayed makes nothing new).
    pub ids: Vec<String>,
}

/// Reads the unfinished deliveries and the recent notice ids.
pub async fn pending(pool: &sqlx::AnyPool) -> Result<Pending, sqlx::Error> {
    use sqlx::Row;
    let mut out = Pending::default();
    let since = now_ms() - 30 * 24 * 3600 * 1000;
    for r in sqlx::query("SELECT id FROM notices WHERE created_at_ms > $1")
        .bind(since)
        .fetch_all(pool)
        .await?
    {
        out.ids.push(r.try_get(0)?);
    }
    for r in sqlx::query(
        "SELECT n.body, d.channel, d.attempts, d.due_ms FROM notice_deliveries d \
         JOIN notices n ON n.id = d.notice_id WHERE d.state IN ('queued', 'retrying')",
    )
    .fetch_all(pool)
    .await?
    {
        let body: String = r.try_get(0)?;
        let channel: String = r.try_get(1)?;
        let attempts: i64 = r.try_get(2)?;
        let due: Option<i64> = r.try_get(3)?;
        if let (Ok(notice), Some(channel)) = (
            serde_json::from_str::<Notice>(&body),
            Channel::parse(&channel),
        ) {
            out.known.push((
                notice,
                channel,
                attempts.clamp(0, i64::from(u32::MAX)) as u32,
                due.unwrap_or(0),
                false,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventBus;

    /// The `navbat_mailbox_shed_total` value for `mailbox` in the exported text.
    fn exported_shed(mailbox: &str) -> f64 {
        let prefix = format!("{}{{mailbox=\"{mailbox}\"}} ", crate::metrics::MAILBOX_SHED);
        crate::metrics::render()
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    #[test]
    fn a_full_notice_queue_sheds_and_the_mailbox_counter_rises() {
        crate::metrics::install();
        let before = exported_shed("notices");
        // Nobody drains the receiver: the notifier has stalled.
        let (sink, _rx) = Notifier::triggers(Box::new(|call: &str| Some(format!("n:b:{call}"))));
        let bus = EventBus::new(vec![sink.clone()]);
        for i in 0..QUEUE + 3 {
            bus.emit(EventKind::DispositionSaved {
                call: format!("c{i}"),
                tenant: "dtm".into(),
                operator: None,
                category: "complaint".into(),
                outcome: "unresolved".into(),
                revision: 1,
            });
        }
        assert_eq!(sink.shed.load(Ordering::Relaxed), 3);
        assert_eq!(exported_shed("notices") - before, 3.0);
    }
}
