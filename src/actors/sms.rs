//! The SMS actor and the event sink that decides which calls get a message.
//!
//! [`SmsTriggers`] watches the event stream (who called, which language, which self-service
//! key, how the call ended) and asks the [`SmsActor`] for a message when the configuration
//! says so: a deflection (the self-service information as a text), a callback confirmation
//! (the call ended `callback_requested`), a missed call (abandoned or blocked). It never blocks: requests go through the actor's bounded mailbox with
//! `try_send`, and what does not fit is counted.
//!
//! The actor owns the pure [`Outbox`], hands every step to the store as an [`SmsRecord`]
//! (journal, then the `sms_messages` table), sends through the [`SmsProvider`], and reports
//! each step as an `sms_status` event. A new message is sent only once its `queued` step is
//! fsynced, so a crash after the first attempt cannot lose it; nothing waits on the
//! database. At start-up (and, if the database was down then, once it is back) the store
//! hands back the unsent messages of earlier runs with their ids, so a retry after a restart
//! carries the same idempotency key.
//!
//! Here, with the router's other running pieces, rather than in `sms`: the actor holds a store
//! handle, and the store keeps the SMS records, so it sits above both.

use crate::config::Config;
pub use crate::config::SmsSettings;
use crate::events::{CallOutcome, Event, EventBus, EventKind, EventSink};
use crate::privacy::PhoneNumber;
use crate::sms::gateway::SmsProvider;
use crate::sms::{
    AttemptResult, Message, MessageKind, Outbox, Outcome, RetryPolicy, SmsRecord, Template, E164,
};
use crate::store::Store;
use actix::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the actor looks for due messages.
pub const TICK: Duration = Duration::from_millis(200);

/// Most unsent messages kept; more are refused (and reported).
pub const OUTBOX_CAPACITY: usize = 100_000;

/// Most SMS requests waiting in the actor's mailbox.
pub const MAILBOX: usize = 10_000;

/// Most calls the trigger sink follows at once.
pub const MAX_TRACKED_CALLS: usize = 100_000;

/// Ask for one message.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct QueueSms {
    /// Tenant id.
    pub tenant: String,
    /// The number as the caller id gave it (validated by the actor).
    pub to: PhoneNumber,
    /// What for.
    pub kind: MessageKind,
    /// The text.
    pub text: String,
}

/// Sends SMS from the durable outbox.
pub struct SmsActor {
    /// Node id (in message ids) and tenants' time zones (the daily cap's day).
    config: Arc<Config>,
    /// Where `sms_status` events go.
    events: EventBus,
    /// Keeps every step durably, when the router runs with a store.
    store: Option<Store>,
    /// The origin of the outbox's monotonic milliseconds.
    started: Instant,
    outbox: Outbox,
    provider: Rc<dyn SmsProvider>,
    /// Prefix of this run's message ids (wall-clock ms at start), so ids stay unique across
    /// restarts (and, with the node's name, across nodes sharing a database).
    boot: u64,
    next: u64,
    /// While the store may still hand back work of earlier runs: the messages this run has
    /// finished, so that a late copy of one (read from the database before its last step
    /// reached it) is not sent again.
    finished: HashSet<String>,
    recovering: bool,
    /// Texts per number (a caller's number can be forged).
    limiter: crate::sms::limits::SmsLimiter,
}

impl SmsActor {
    /// An actor sending through `provider`; the unsent messages of earlier runs come from
    /// the store once it runs.
    pub fn new(
        config: Arc<Config>,
        events: EventBus,
        store: Option<Store>,
        provider: Rc<dyn SmsProvider>,
        retry: RetryPolicy,
        limits: crate::sms::limits::SmsLimitPolicy,
    ) -> SmsActor {
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let recovering = store.is_some();
        SmsActor {
            config,
            events,
            store,
            started: Instant::now(),
            outbox: Outbox::new(retry, OUTBOX_CAPACITY),
            provider,
            boot,
            next: 0,
            finished: HashSet::new(),
            recovering,
            limiter: crate::sms::limits::SmsLimiter::new(limits),
        }
    }

    /// Monotonic milliseconds since the actor started: the outbox's `now`.
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Takes what the store has recovered since the last look.
    fn recover(&mut self) {
        let Some(store) = &self.store else {
            self.recovering = false;
            return;
        };
        let recovered = store.take_recovered_sms();
        let now = self.now();
        let mut resumed = 0usize;
        for (message, attempts) in recovered.items {
            if self.finished.contains(&message.id) || self.outbox.message(&message.id).is_some() {
                continue;
            }
            // Full only if more are pending than the capacity; those wait for the next start.
            if self.outbox.enqueue(now, message, attempts).is_ok() {
                resumed += 1;
            }
        }
        if resumed > 0 {
            tracing::info!(messages = resumed, "unsent SMS of an earlier run resumed");
        }
        if recovered.complete {
            self.recovering = false;
            self.finished = HashSet::new();
        }
    }

    fn status(&self, m: &Message, status: &str, attempts: u32, detail: Option<String>) {
        self.events.emit(EventKind::SmsStatus {
            id: m.id.clone(),
            tenant: m.tenant.clone(),
            purpose: m.kind.as_str().into(),
            to: PhoneNumber::new(m.to.clone()),
            status: status.into(),
            attempts,
            detail,
        });
    }

    /// A request refused before it became a message: its one status event.
    fn refuse(&self, id: String, msg: QueueSms, status: &str, detail: String) {
        self.events.emit(EventKind::SmsStatus {
            id,
            tenant: msg.tenant,
            purpose: msg.kind.as_str().into(),
            to: msg.to,
            status: status.into(),
            attempts: 0,
            detail: Some(detail),
        });
    }

    /// Hands a step to the store. `Ok(None)`: no store (nothing is kept across a restart).
    fn record(
        &self,
        record: SmsRecord,
    ) -> Result<Option<tokio::sync::oneshot::Receiver<()>>, crate::store::BufferFull> {
        match &self.store {
            Some(store) => store
                .record(crate::store::outbox::StoreRecord::Sms(record))
                .map(Some),
            None => Ok(None),
        }
    }

    /// A step after the first: not waited for (lost only with a crash inside one fsync, and
    /// then the retry carries the same idempotency key).
    fn note(&mut self, record: SmsRecord) {
        if matches!(record, SmsRecord::Sent { .. } | SmsRecord::Failed { .. }) && self.recovering {
            self.finished.insert(record.id().to_owned());
        }
        if let Err(e) = self.record(record) {
            tracing::error!(error = %e, "SMS step not stored");
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.recovering {
            self.recover();
        }
        let now = self.now();
        for message in self.outbox.take_due(now) {
            let provider = self.provider.clone();
            let id = message.id.clone();
            ctx.spawn(
                async move { provider.send(&message).await }
                    .into_actor(self)
                    .map(move |result, act, _| act.on_result(&id, result)),
            );
        }
    }

    fn on_result(&mut self, id: &str, result: AttemptResult) {
        let now = self.now();
        let Some(message) = self.outbox.message(id).cloned() else {
            return;
        };
        match self.outbox.on_result(now, id, result) {
            Some(Outcome::Sent { attempts }) => {
                self.note(SmsRecord::Sent {
                    id: id.into(),
                    attempts,
                });
                self.status(&message, "sent", attempts, None);
            }
            Some(Outcome::Retry {
                attempts,
                due_ms,
                detail,
            }) => {
                let wall_due = crate::store::db::now_ms() + due_ms.saturating_sub(now) as i64;
                self.note(SmsRecord::Attempted {
                    id: id.into(),
                    attempts,
                    due_ms: wall_due,
                    detail: detail.clone(),
                });
                self.status(&message, "retrying", attempts, Some(detail));
            }
            Some(Outcome::Failed { attempts, detail }) => {
                self.note(SmsRecord::Failed {
                    id: id.into(),
                    attempts,
                    detail: detail.clone(),
                });
                self.status(&message, "failed", attempts, Some(detail));
            }
            None => {}
        }
    }

    /// The message is durable: into the outbox, first attempt at once.
    fn admit(&mut self, message: Message, ctx: &mut Context<Self>) {
        let now = self.now();
        match self.outbox.enqueue(now, message.clone(), 0) {
            Ok(()) => self.status(&message, "queued", 0, None),
            Err(full) => {
                self.note(SmsRecord::Failed {
                    id: message.id.clone(),
                    attempts: 0,
                    detail: full.to_string(),
                });
                self.status(&message, "rejected", 0, Some(full.to_string()));
            }
        }
        self.tick(ctx);
    }
}

impl Actor for SmsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.recover();
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
    }
}

impl Handler<QueueSms> for SmsActor {
    type Result = ();
    fn handle(&mut self, msg: QueueSms, ctx: &mut Context<Self>) {
        self.next += 1;
        let id = format!("sms-{}-{:x}-{}", self.config.node.id, self.boot, self.next);
        let to = match E164::parse(msg.to.expose()) {
            Ok(n) => n,
            Err(e) => return self.refuse(id, msg, "rejected", e.to_string()),
        };
        // The day as the tenant counts it: the daily cap starts at its midnight.
        let now = jiff::Timestamp::now();
        let day = self
            .config
            .tenant(&msg.tenant)
            .map(|t| t.timezone.to_datetime(now).date())
            .unwrap_or_else(|| jiff::tz::TimeZone::UTC.to_datetime(now).date());
        let day = i64::from(day.year()) * 400 + i64::from(day.day_of_year());
        let now_ms = u64::try_from(now.as_millisecond()).unwrap_or(0);
        let missed_call = msg.kind == MessageKind::MissedCall;
        // Counted per tenant and number: each tenant's day is its own.
        let key = format!("{}\u{0}{}", msg.tenant, to.expose());
        let verdict = self.limiter.decide(now_ms, day, &key, missed_call);
        if let Some(why) = verdict.refusal() {
            return self.refuse(id, msg, "limited", why.into());
        }
        let message = Message {
            id,
            to: to.expose().to_string(),
            text: msg.text,
            kind: msg.kind,
            tenant: msg.tenant,
        };
        // Durable before the first attempt: a crash after it still sends it, with this id.
        match self.record(SmsRecord::Queued {
            message: message.clone(),
        }) {
            Ok(Some(durable)) => {
                ctx.spawn(
                    durable
                        .into_actor(self)
                        .map(move |_, act, ctx| act.admit(message, ctx)),
                );
            }
            Ok(None) => self.admit(message, ctx),
            Err(e) => self.status(&message, "rejected", 0, Some(e.to_string())),
        }
    }
}

/// What the sink remembers of a call in progress.
#[derive(Debug, Clone, Default)]
struct CallInfo {
    tenant: String,
    caller: PhoneNumber,
    language: Option<String>,
    /// The last level-2 key (a self-service key ends the call as deflected).
    topic_digit: Option<char>,
    /// The caller took the door offer's SMS: the information is the first self-service
    /// branch's.
    door_sms: bool,
    /// The door offer's callback was for the next morning's window.
    offered_morning: bool,
    /// The callback booked is for the next morning's window.
    next_morning: bool,
}

/// Decides from the event stream which calls get an SMS.
pub struct SmsTriggers {
    config: Arc<Config>,
    templates: BTreeMap<MessageKind, Template>,
    missed_call_after: Vec<CallOutcome>,
    calls: Mutex<HashMap<String, CallInfo>>,
    actor: OnceLock<Recipient<QueueSms>>,
    /// Requests not taken because the actor's mailbox was full (or calls beyond the tracking
    /// bound).
    shed: AtomicU64,
}

impl SmsTriggers {
    /// A sink sending the kinds that have a template in `settings` (none without).
    pub fn new(config: Arc<Config>, settings: Option<&SmsSettings>) -> SmsTriggers {
        SmsTriggers {
            config: config.clone(),
            templates: settings.map(|s| s.templates.clone()).unwrap_or_default(),
            missed_call_after: settings
                .map(|s| s.missed_call_after.clone())
                .unwrap_or_default(),
            calls: Mutex::new(HashMap::new()),
            actor: OnceLock::new(),
            shed: AtomicU64::new(0),
        }
    }

    /// Connects the actor once it runs; until then nothing is sent.
    pub fn attach(&self, actor: Recipient<QueueSms>) {
        let _ = self.actor.set(actor);
    }

    /// Requests dropped so far.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    fn request(&self, info: CallInfo, kind: MessageKind) {
        let Some(template) = self.templates.get(&kind) else {
            return;
        };
        let Some(actor) = self.actor.get() else {
            return;
        };
        let tenant = self.config.tenant(&info.tenant);
        let language = info.language.as_deref();
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        if let Some(t) = tenant {
            values.insert(
                "tenant",
                t.name.text(language.unwrap_or("uz")).unwrap_or("").into(),
            );
            let chosen = info
                .topic_digit
                .and_then(|d| t.surge.self_service_for_digit(d))
                .or_else(|| t.surge.self_service.first().filter(|_| info.door_sms));
            if let Some(choice) = chosen {
                values.insert(
                    "info",
                    choice
                        .label
                        .text(language.unwrap_or("uz"))
                        .unwrap_or("")
                        .into(),
                );
            }
        }
        if let Some(w) = tenant
            .and_then(|t| t.surge.door)
            .and_then(|d| d.next_morning)
            .filter(|_| info.next_morning)
        {
            values.insert("window", format!("{}-{}", w.start, w.end));
        }
        let text = template.render(language, &values);
        let request = QueueSms {
            tenant: info.tenant,
            to: info.caller,
            kind,
            text,
        };
        // `try_send`, not `do_send`: actix's `do_send` ignores the mailbox's capacity.
        if actor.try_send(request).is_err() {
            self.shed.fetch_add(1, Ordering::Relaxed);
            crate::metrics::mailbox_shed("sms", 1);
        }
    }
}

impl EventSink for SmsTriggers {
    fn emit(&self, event: &Event) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        match &event.kind {
            EventKind::CallArrived {
                call,
                tenant,
                caller,
                ..
            } => {
                if calls.len() >= MAX_TRACKED_CALLS {
                    self.shed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                calls.insert(
                    call.clone(),
                    CallInfo {
                        tenant: tenant.clone(),
                        caller: caller.clone(),
                        ..CallInfo::default()
                    },
                );
            }
            EventKind::IvrStep {
                call, level, digit, ..
            } => {
                if let Some(info) = calls.get_mut(call) {
                    if *level == 1 {
                        let tenant = self.config.tenant(&info.tenant);
                        info.language = digit
                            .and_then(|d| tenant.and_then(|t| t.ivr.language_for_digit(d)))
                            .map(|c| c.language.clone());
                    } else {
                        info.topic_digit = *digit;
                    }
                }
            }
            EventKind::CallEnqueued { call, language, .. } => {
                if let Some(info) = calls.get_mut(call) {
                    info.language = Some(language.clone());
                }
            }
            EventKind::DoorOffer { call, callback, .. } => {
                if let Some(info) = calls.get_mut(call) {
                    info.offered_morning = callback == "next_morning";
                }
            }
            EventKind::DoorChoice { call, choice, .. } => {
                if let Some(info) = calls.get_mut(call) {
                    info.door_sms = choice == "sms";
                    info.next_morning = choice == "callback" && info.offered_morning;
                }
            }
            EventKind::CallFinished { call, outcome, .. } => {
                let Some(info) = calls.remove(call) else {
                    return;
                };
                drop(calls);
                let kind = match outcome {
                    CallOutcome::Deflected => MessageKind::Deflection,
                    // The confirmation of a booked callback (its place is kept).
                    CallOutcome::CallbackRequested
                        if info.next_morning
                            && self
                                .templates
                                .contains_key(&MessageKind::CallbackNextMorning) =>
                    {
                        MessageKind::CallbackNextMorning
                    }
                    CallOutcome::CallbackRequested => MessageKind::CallbackConfirmation,
                    o if self.missed_call_after.contains(o) => MessageKind::MissedCall,
                    _ => return,
                };
                self.request(info, kind);
            }
            _ => {}
        }
    }
}

/// Why the SMS actor cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The TLS client for the gateway cannot be built.
    #[error(transparent)]
    Tls(#[from] crate::sms::gateway::TlsSetupError),
}

/// Starts the SMS actor when `[sms]` is configured, and connects `triggers` to it.
pub fn start(
    config: Arc<Config>,
    events: EventBus,
    store: Option<Store>,
    settings: &SmsSettings,
    triggers: &SmsTriggers,
) -> Result<Addr<SmsActor>, StartError> {
    let provider: Rc<dyn SmsProvider> = Rc::new(crate::sms::gateway::HttpGateway::new(
        settings.gateway.clone(),
    )?);
    let actor = SmsActor::new(
        config,
        events,
        store,
        provider,
        settings.retry,
        settings.limits,
    );
    let addr = actor.start();
    triggers.attach(addr.clone().recipient());
    Ok(addr)
}
