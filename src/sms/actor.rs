//! The SMS actor and the event sink that decides which calls get a message.
//!
//! [`SmsTriggers`] watches the event stream (who called, which language, which self-service
//! key, how the call ended) and asks the [`SmsActor`] for a message when the configuration
//! says so: a deflection (the self-service information as a text), a callback confirmation
//! (the call ended `callback_requested`), a missed call (abandoned or blocked). It never blocks: requests go through the actor's bounded mailbox with
//! `try_send`, and what does not fit is counted.
//!
//! The actor owns the pure [`Outbox`], writes every step to the [`OutboxLog`] before acting
//! on it, sends through the [`SmsProvider`], and reports each step as an `sms_status` event.

use super::gateway::SmsProvider;
use super::log::{OutboxLog, Record};
use super::{AttemptResult, Message, MessageKind, Outbox, Outcome, RetryPolicy, Template, E164};
use crate::actors::Shared;
use crate::config::Config;
use crate::events::{CallOutcome, Event, EventKind, EventSink};
use crate::privacy::PhoneNumber;
use actix::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How often the actor looks for due messages.
pub const TICK: Duration = Duration::from_millis(200);

/// Most unsent messages kept; more are refused (and reported).
pub const OUTBOX_CAPACITY: usize = 100_000;

/// Most SMS requests waiting in the actor's mailbox.
pub const MAILBOX: usize = 10_000;

/// Most calls the trigger sink follows at once.
pub const MAX_TRACKED_CALLS: usize = 100_000;

/// The typed `[sms]` settings the actor and the sink need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsSettings {
    /// The gateway.
    pub gateway: super::gateway::GatewayConfig,
    /// The outbox log file.
    pub outbox_path: std::path::PathBuf,
    /// Retries.
    pub retry: RetryPolicy,
    /// Which kinds are sent, with their templates.
    pub templates: BTreeMap<MessageKind, Template>,
    /// Call outcomes that get the missed-call message (abandoned and blocked by default).
    pub missed_call_after: Vec<CallOutcome>,
}

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
    shared: Arc<Shared>,
    outbox: Outbox,
    log: Box<dyn OutboxLog>,
    provider: Rc<dyn SmsProvider>,
    /// Prefix of this run's message ids (wall-clock ms at start), so ids stay unique across
    /// restarts.
    boot: u64,
    next: u64,
}

impl SmsActor {
    /// An actor over `log`, replaying what it holds.
    pub fn new(
        shared: Arc<Shared>,
        mut log: Box<dyn OutboxLog>,
        provider: Rc<dyn SmsProvider>,
        retry: RetryPolicy,
    ) -> Result<SmsActor, super::log::LogError> {
        let mut outbox = Outbox::new(retry, OUTBOX_CAPACITY);
        let now = shared.now().0;
        for (message, attempts) in log.replay()? {
            // Full only if the log holds more than the capacity; those wait for the next start.
            let _ = outbox.enqueue(now, message, attempts);
        }
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Ok(SmsActor {
            shared,
            outbox,
            log,
            provider,
            boot,
            next: 0,
        })
    }

    fn status(&self, m: &Message, status: &str, attempts: u32, detail: Option<String>) {
        self.shared.events.emit(EventKind::SmsStatus {
            id: m.id.clone(),
            tenant: m.tenant.clone(),
            purpose: m.kind.as_str().into(),
            to: PhoneNumber::new(m.to.clone()),
            status: status.into(),
            attempts,
            detail,
        });
    }

    fn record(&mut self, record: &Record) -> bool {
        match self.log.append(record) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "SMS outbox log write failed");
                false
            }
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = self.shared.now().0;
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
        let now = self.shared.now().0;
        let Some(message) = self.outbox.message(id).cloned() else {
            return;
        };
        match self.outbox.on_result(now, id, result) {
            Some(Outcome::Sent { attempts }) => {
                self.record(&Record::Sent { id: id.into() });
                self.status(&message, "sent", attempts, None);
            }
            Some(Outcome::Retry {
                attempts, detail, ..
            }) => {
                self.record(&Record::Attempted {
                    id: id.into(),
                    attempts,
                });
                self.status(&message, "retrying", attempts, Some(detail));
            }
            Some(Outcome::Failed { attempts, detail }) => {
                self.record(&Record::Failed { id: id.into() });
                self.status(&message, "failed", attempts, Some(detail));
            }
            None => {}
        }
    }
}

impl Actor for SmsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX);
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
    }
}

impl Handler<QueueSms> for SmsActor {
    type Result = ();
    fn handle(&mut self, msg: QueueSms, ctx: &mut Context<Self>) {
        self.next += 1;
        let id = format!("sms-{:x}-{}", self.boot, self.next);
        let to = match E164::parse(msg.to.expose()) {
            Ok(n) => n,
            Err(e) => {
                self.shared.events.emit(EventKind::SmsStatus {
                    id,
                    tenant: msg.tenant,
                    purpose: msg.kind.as_str().into(),
                    to: msg.to,
                    status: "rejected".into(),
                    attempts: 0,
                    detail: Some(e.to_string()),
                });
                return;
            }
        };
        let message = Message {
            id,
            to: to.expose().to_string(),
            text: msg.text,
            kind: msg.kind,
            tenant: msg.tenant,
        };
        // Durable before anything else: a crash after this line still sends it.
        if !self.record(&Record::Queued(message.clone())) {
            self.status(
                &message,
                "rejected",
                0,
                Some("outbox log not writable".into()),
            );
            return;
        }
        let now = self.shared.now().0;
        match self.outbox.enqueue(now, message.clone(), 0) {
            Ok(()) => self.status(&message, "queued", 0, None),
            Err(full) => {
                self.record(&Record::Failed {
                    id: message.id.clone(),
                });
                self.status(&message, "rejected", 0, Some(full.to_string()));
            }
        }
        self.tick(ctx);
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
            if let Some(choice) = info
                .topic_digit
                .and_then(|d| t.surge.self_service_for_digit(d))
            {
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
        let text = template.render(language, &values);
        let request = QueueSms {
            tenant: info.tenant,
            to: info.caller,
            kind,
            text,
        };
        if actor.try_send(request).is_err() {
            self.shed.fetch_add(1, Ordering::Relaxed);
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
            EventKind::CallFinished { call, outcome, .. } => {
                let Some(info) = calls.remove(call) else {
                    return;
                };
                drop(calls);
                let kind = match outcome {
                    CallOutcome::Deflected => MessageKind::Deflection,
                    // The confirmation of a booked callback (its place is kept).
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
    /// The outbox log cannot be opened or read.
    #[error(transparent)]
    Outbox(#[from] super::log::LogError),
    /// The TLS client for the gateway cannot be built.
    #[error(transparent)]
    Tls(#[from] super::gateway::TlsSetupError),
}

/// Starts the SMS actor when `[sms]` is configured, and connects `triggers` to it.
pub fn start(
    shared: Arc<Shared>,
    settings: &SmsSettings,
    triggers: &SmsTriggers,
) -> Result<Addr<SmsActor>, StartError> {
    let log = super::log::FileLog::open(&settings.outbox_path)?;
    let provider: Rc<dyn SmsProvider> =
        Rc::new(super::gateway::HttpGateway::new(settings.gateway.clone())?);
    let actor = SmsActor::new(shared, Box::new(log), provider, settings.retry)?;
    let addr = actor.start();
    triggers.attach(addr.clone().recipient());
    Ok(addr)
}
