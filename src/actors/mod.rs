//! The actors: one per call ([`call::CallActor`]), per queue
//! ([`queue::QueueActor`]) and per operator ([`operator::OperatorActor`]),
//! plus the host of the pure routing core ([`acd_host::AcdActor`]). They hold
//! addresses, timers and I/O; decisions live in `acd`, `ivr` and `call`.

pub mod acd_host;
pub mod blocked;
pub mod call;
pub mod callback;
pub mod deadline;
pub mod desk_state;
pub mod feature;
pub mod gate;
pub mod listeners;
pub mod live;
pub mod model;
pub mod notices;
pub mod operator;
pub mod poll;
pub mod queue;
pub mod sms;

use crate::acd::{CallId, Millis};
use crate::config::Config;
use crate::events::{EventBus, EventKind, MemorySink};
use crate::media::PortPool;
use crate::presence::Presence;
use crate::sip::{Admission, ContactBinding, IncomingCall, SipApplication, SipStack};
use acd_host::AcdActor;
use actix::prelude::*;
use call::CallActor;
use gate::ChannelGate;
use model::RoutingModel;
use operator::OperatorActor;
use queue::QueueActor;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// What every actor shares: configuration, model, clock, sinks, limits.
pub struct Shared {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Names <-> core ids.
    pub model: RoutingModel,
    /// The event bus.
    pub events: EventBus,
    /// The in-memory event ring (API, tests).
    pub memory: Arc<MemorySink>,
    /// Channel admission.
    pub gate: Arc<ChannelGate>,
    /// RTP ports.
    pub ports: Arc<PortPool>,
    /// Registered contacts.
    pub presence: Presence<ContactBinding>,
    /// The SIP layer, once started.
    pub sip: OnceLock<SipStack>,
    /// The event store (journal and database), when the router runs with one.
    pub store: Option<crate::store::Store>,
    /// The media engine, once started (without it calls are signalled but carry no audio).
    pub media: OnceLock<crate::media::MediaEngine>,
    /// The web desk's state (live calls, login limits, session cache).
    pub desk: Arc<desk_state::DeskState>,
    /// Requests from every channel (issue 14).
    pub requests: Arc<crate::requests::Requests>,
    /// The SIP identities of accounts that may listen by feature code (D19).
    pub listeners: Arc<listeners::Listeners>,
    started: Instant,
    calls: Mutex<HashMap<String, Addr<CallActor>>>,
}

impl Shared {
    /// Monotonic milliseconds since start: the `now` the pure cores see.
    pub fn now(&self) -> Millis {
        Millis(self.started.elapsed().as_millis() as u64)
    }

    /// Remembers a call in progress (for shutdown).
    pub fn register_call(&self, call_ref: &str, addr: Addr<CallActor>) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(call_ref.to_string(), addr);
    }

    /// Forgets a finished call.
    pub fn unregister_call(&self, call_ref: &str) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(call_ref);
    }

    /// The actor of a call in progress.
    pub fn call(&self, call_ref: &str) -> Option<Addr<CallActor>> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(call_ref)
            .cloned()
    }

    /// Addresses of the calls in progress.
    pub fn live_calls(&self) -> Vec<Addr<CallActor>> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// Opens the recording of a bridged conversation for `tenant`: a `recording_started` event
/// (the file and this node's address, so the index finds the recording while it grows) now,
/// and a `recording` event (duration, size, SHA-256) at its end, or a warning if the file
/// failed.
pub(crate) fn open_recording(
    recorder: &crate::media::recorder::Recorder,
    events: &EventBus,
    call: &str,
    tenant: &str,
) -> crate::media::recorder::Recording {
    let mut recording = recorder.open_for(call, tenant);
    let node_url = recorder.node_url().map(str::to_owned);
    events.emit(EventKind::RecordingStarted {
        call: call.to_owned(),
        tenant: tenant.to_owned(),
        path: recorder.path_for(call).display().to_string(),
        node_url: node_url.clone(),
        key_id: recorder.key_id().map(str::to_owned),
    });
    let events = events.clone();
    recording.on_done(Box::new(move |result| match result {
        Ok(done) => {
            events.emit(EventKind::Recording {
                call: done.call,
                path: done.path.display().to_string(),
                duration_ms: done.duration_ms,
                bytes: done.bytes,
                sha256: done.sha256,
                tenant: Some(done.tenant),
                node_url,
                key_id: done.key_id,
            });
        }
        Err(e) => tracing::warn!(error = %e, "recording failed"),
    }));
    recording
}

/// The running router: the actors and the shared state.
#[derive(Clone)]
pub struct Router {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// The ACD host.
    pub acd: Addr<AcdActor>,
    /// Operator actors by id.
    pub operators: Arc<Vec<Addr<OperatorActor>>>,
    /// Queue actors by id.
    pub queues: Arc<Vec<Addr<QueueActor>>>,
    arbiter: ArbiterHandle,
    next_call: Arc<AtomicU64>,
    /// The cheap look the SIP guard takes at new INVITEs (`[sip.door] screen_calls`).
    screen: Option<Arc<blocked::RouterScreen>>,
    /// Calls refused for want of a channel, summarised once a second (issue 18 part 3):
    /// the screen's refusals and the admissions that find no channel after it passed them.
    blocked: Arc<blocked::BlockedTally>,
}

/// Start-up failure of the router.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The configuration cannot be mapped onto the core.
    #[error(transparent)]
    Model(#[from] model::TooManySkills),
    /// The SMS actor cannot start (TLS client).
    #[error(transparent)]
    Sms(#[from] sms::StartError),
}

impl Router {
    /// Starts the actors on the current actix system, without a store, presence in memory.
    pub fn start(config: Arc<Config>, memory_events: usize) -> Result<Router, RouterError> {
        Router::start_with(config, memory_events, None, Presence::default())
    }

    /// Starts the actors with an event store (every event also goes to it) and a presence.
    pub fn start_with(
        config: Arc<Config>,
        memory_events: usize,
        store: Option<crate::store::Store>,
        presence: Presence<ContactBinding>,
    ) -> Result<Router, RouterError> {
        let (model, queue_specs, op_specs) = RoutingModel::build(&config)?;
        let memory = Arc::new(MemorySink::bounded(
            memory_events,
            config.http.events_feed_bytes,
        ));
        let metrics = Arc::new(crate::metrics::MetricsSink::new(&config));
        let sms_triggers = Arc::new(sms::SmsTriggers::new(config.clone(), config.sms.as_ref()));
        let desk = Arc::new(desk_state::DeskState::new(&config));
        let requests = crate::requests::Requests::new(&config, store.clone());
        actix::spawn(requests.clone().restore());
        let uid_store = store.clone();
        let (call_requests, missed) = crate::requests::calls::CallRequests::new(
            &config,
            Box::new(move |call| uid_store.as_ref().map(|s| s.call_uid(call))),
        );
        actix::spawn(crate::requests::calls::run(requests.clone(), missed));
        crate::requests::start_channels(&config, &requests);
        let notice_store = store.clone();
        let (notice_triggers, notice_rx) = notices::Notifier::triggers(Box::new(move |call| {
            notice_store.as_ref().map(|s| s.store_name(call))
        }));
        if let Some(store) = &store {
            let setup = notices::setup(&config, store.clone(), requests.clone());
            actix::spawn(notices::run(setup, notice_rx));
        }
        let mut sinks: Vec<Arc<dyn crate::events::EventSink>> = vec![
            memory.clone(),
            desk.live.clone(),
            Arc::new(crate::events::LogSink),
            metrics.clone(),
            sms_triggers.clone(),
            call_requests,
            notice_triggers,
        ];
        if let Some(store) = &store {
            sinks.push(Arc::new(store.clone()));
        }
        let events = EventBus::new(sinks);
        actix::spawn(crate::requests::clocks::watch(
            requests.clone(),
            requests.clocks(),
            events.clone(),
            config.tenants.iter().map(|t| t.id.clone()).collect(),
        ));
        let gate = ChannelGate::new(
            config.limits.channels,
            config
                .tenants
                .iter()
                .map(|t| t.channels.unwrap_or(config.limits.channels))
                .collect(),
        );
        let ports = PortPool::new(
            config.media.rtp_ip,
            config.media.rtp_port_min,
            config.media.rtp_port_max,
        );
        let shared = Arc::new(Shared {
            config: config.clone(),
            model,
            events,
            memory,
            gate,
            ports,
            presence,
            sip: OnceLock::new(),
            store,
            media: OnceLock::new(),
            desk,
            requests,
            listeners: Arc::default(),
            started: Instant::now(),
            calls: Mutex::new(HashMap::new()),
        });
        if let Some(store) = &shared.store {
            actix::spawn(listeners::refresh(
                shared.listeners.clone(),
                store.clone(),
                config.clone(),
            ));
        }
        let acd = AcdActor::new(shared.clone(), queue_specs, op_specs).start();
        let operators: Vec<Addr<OperatorActor>> = (0..shared.model.operator_count())
            .map(|i| {
                OperatorActor::new(
                    crate::acd::OperatorId(i as u32),
                    shared.clone(),
                    acd.clone(),
                )
                .start()
            })
            .collect();
        let queues: Vec<Addr<QueueActor>> = shared
            .model
            .queue_ids()
            .map(|_| QueueActor::default().start())
            .collect();
        acd.do_send(acd_host::Attach {
            operators: operators.clone(),
            queues: queues.clone(),
        });
        poll::MetricsPoller::new(shared.clone(), acd.clone(), metrics).start();
        if let Some(sms) = &config.sms {
            sms::start(
                shared.config.clone(),
                shared.events.clone(),
                shared.store.clone(),
                sms,
                &sms_triggers,
            )?;
        }
        let tally = Arc::new(blocked::BlockedTally::new(config.tenants.len()));
        blocked::BlockedSummariser::new(
            shared.config.clone(),
            shared.events.clone(),
            tally.clone(),
        )
        .start();
        let screen = config.sip.door.screen_calls.then(|| {
            Arc::new(blocked::RouterScreen::new(
                shared.config.clone(),
                shared.gate.clone(),
                tally.clone(),
            ))
        });
        Ok(Router {
            screen,
            blocked: tally,
            shared,
            acd,
            operators: Arc::new(operators),
            queues: Arc::new(queues),
            arbiter: Arbiter::current(),
            next_call: Arc::new(AtomicU64::new(1)),
        })
    }
}

impl SipApplication for Router {
    fn credentials(&self, ext: &str) -> Option<String> {
        self.shared.config.operator(ext).map(|o| o.ha1.clone())
    }

    fn credentials_sha256(&self, ext: &str) -> Option<String> {
        self.shared
            .config
            .operator(ext)
            .and_then(|o| o.ha1_sha256.clone())
    }

    fn offers_sha256(&self) -> bool {
        self.shared
            .config
            .operators
            .iter()
            .any(|o| o.ha1_sha256.is_some())
    }

    fn credentials_for(&self, method: &str, ext: &str) -> Option<String> {
        // Listening accounts dial feature codes (INVITE); only operators register.
        self.credentials(ext).or_else(|| {
            (method == "INVITE")
                .then(|| self.shared.listeners.ha1(ext))
                .flatten()
        })
    }

    fn registered(&self, ext: &str, binding: ContactBinding, expires_secs: u32) {
        if let Some(id) = self.shared.model.operator(ext) {
            self.operators[id.0 as usize].do_send(operator::Registered {
                binding,
                expires_secs,
            });
        }
    }

    fn unregistered(&self, ext: &str) {
        if let Some(id) = self.shared.model.operator(ext) {
            self.operators[id.0 as usize].do_send(operator::Unregistered);
        }
    }

    fn auth_failed(&self, failure: crate::sip::AuthFailure) {
        self.shared.events.emit(EventKind::AuthFailed {
            method: failure.method.into(),
            account: failure.account,
            known: failure.known,
            source: failure.source,
            reason: failure.reason.into(),
        });
    }

    fn admit(&self, call: IncomingCall) -> Admission {
        let config = &self.shared.config;
        let Some(tenant_idx) = config
            .tenants
            .iter()
            .position(|t| t.dids.iter().any(|d| d == &call.did))
        else {
            return Admission::Reject {
                status: 404,
                retry_after: None,
            };
        };
        let tenant = &config.tenants[tenant_idx];
        if !tenant.accepts_calls_from(call.source) {
            // Not the tenant's trunk: refused before any record or event is made, so a flood
            // from elsewhere costs no channel, no call record and no text.
            tracing::debug!(tenant = %tenant.id, source = ?call.source, "INVITE from outside trunk_sources");
            return Admission::Reject {
                status: 403,
                retry_after: None,
            };
        }
        // A channel first: a call refused for want of one (the screen passed it a moment
        // before, or the screen is off) is counted into the summary, not given a call record
        // and three events, so a flood through the stack costs no more text than one at the
        // door.
        let ticket = match self.shared.gate.try_acquire(tenant_idx) {
            Ok(t) => t,
            Err(reason) => {
                self.blocked
                    .count(tenant_idx, reason, call.transport, call.caller.expose());
                return Admission::Reject {
                    status: 503,
                    retry_after: Some(config.limits.retry_after.as_secs() as u32),
                };
            }
        };
        let n = self.next_call.fetch_add(1, Ordering::Relaxed);
        let call_ref = format!("c{n}");
        self.shared.events.emit(EventKind::CallArrived {
            call: call_ref.clone(),
            tenant: tenant.id.clone(),
            did: call.did.clone(),
            caller: call.caller.clone(),
            transport: call.transport.into(),
        });
        let shared = self.shared.clone();
        let acd = self.acd.clone();
        let arbiter = self.arbiter.clone();
        let caller = call.caller;
        Admission::Accept(Box::new(move |leg| {
            CallActor::start_in_arbiter(&arbiter, move |_| {
                CallActor::new(
                    CallId(n),
                    call_ref,
                    tenant_idx,
                    caller,
                    leg,
                    shared,
                    acd,
                    ticket,
                )
            })
            .recipient()
        }))
    }

    fn call_screen(&self) -> Option<Arc<dyn crate::sip::guard::CallScreen>> {
        self.screen
            .clone()
            .map(|s| s as Arc<dyn crate::sip::guard::CallScreen>)
    }

    fn admit_monitor(&self, dial: crate::sip::features::MonitorDial) -> Admission {
        feature::admit(&self.shared, &self.arbiter, dial)
    }
}
