//! Calls that become requests (C2, C5): a call that reached a closed line, and the outcomes a
//! tenant lists in `[tenant.requests] from_calls`, become a phone request, a call back to
//! make, with the caller's number; one per number and local day (the intake key
//! `phone:<tenant>:<lookup hash of the number>:<yymmdd>`), whatever the number of attempts.
//!
//! The sink only notes calls and hands finished ones to a bounded queue (a full queue is
//! counted and logged, never blocks the event bus); a task registers them.

use super::{Channel, Kind, NewRequest, Priority, Requester, Requests};
use crate::events::{CallOutcome, Event, EventKind, EventSink};
use crate::privacy::PhoneNumber;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const MAX_TRACKED: usize = 100_000;

/// Turns a call's name into its store name.
pub type StoreName = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;
const QUEUE: usize = 4096;

/// A finished call to register.
#[derive(Debug)]
pub struct MissedCall {
    tenant: String,
    caller: PhoneNumber,
    call_uid: Option<String>,
    outcome: CallOutcome,
    language: Option<String>,
}

struct Tracked {
    tenant: String,
    caller: PhoneNumber,
    language: Option<String>,
}

/// The event sink.
pub struct CallRequests {
    wanted: HashMap<String, Vec<CallOutcome>>,
    calls: Mutex<HashMap<String, Tracked>>,
    tx: tokio::sync::mpsc::Sender<MissedCall>,
    uid: StoreName,
    shed: AtomicU64,
}

impl CallRequests {
    /// A sink for `config`'s tenants and the receiver a [`run`] task drains. `uid` turns a
    /// call's name into its store name.
    pub fn new(
        config: &crate::config::Config,
        uid: StoreName,
    ) -> (Arc<CallRequests>, tokio::sync::mpsc::Receiver<MissedCall>) {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let wanted = config
            .tenants
            .iter()
            .filter(|t| !t.requests.from_calls.is_empty())
            .map(|t| (t.id.clone(), t.requests.from_calls.clone()))
            .collect();
        (
            Arc::new(CallRequests {
                wanted,
                calls: Mutex::new(HashMap::new()),
                tx,
                uid,
                shed: AtomicU64::new(0),
            }),
            rx,
        )
    }
}

impl EventSink for CallRequests {
    fn emit(&self, event: &Event) {
        match &event.kind {
            EventKind::CallArrived {
                call,
                tenant,
                caller,
                ..
            } if self.wanted.contains_key(tenant) => {
                let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
                if calls.len() < MAX_TRACKED {
                    calls.insert(
                        call.clone(),
                        Tracked {
                            tenant: tenant.clone(),
                            caller: caller.clone(),
                            language: None,
                        },
                    );
                }
            }
            EventKind::CallEnqueued { call, language, .. } => {
                let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(t) = calls.get_mut(call) {
                    t.language = Some(language.clone());
                }
            }
            EventKind::CallFinished { call, outcome, .. } => {
                let Some(t) = self
                    .calls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(call)
                else {
                    return;
                };
                let wanted = self
                    .wanted
                    .get(&t.tenant)
                    .is_some_and(|w| w.contains(outcome));
                // A caller without a number cannot be called back.
                let digits = t
                    .caller
                    .expose()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .count();
                if !wanted || digits < 7 {
                    return;
                }
                let missed = MissedCall {
                    tenant: t.tenant,
                    caller: t.caller,
                    call_uid: (self.uid)(call),
                    outcome: *outcome,
                    language: t.language,
                };
                if self.tx.try_send(missed).is_err() {
                    let n = self.shed.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("navbat_requests_refused_total", "channel" => "phone", "reason" => "queue_full")
                        .increment(1);
                    crate::metrics::mailbox_shed("call_requests", 1);
                    if n.is_power_of_two() {
                        tracing::error!(
                            shed = n + 1,
                            "call-back requests queue full: missed calls are not becoming requests"
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

/// The intake key of a missed call kept in memory only (no store): one request per number
/// and local day. With a store the key holds the number's lookup hash
/// ([`super::Requests::phone_key`]).
pub fn key(tenant: &str, number: &str, day: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    format!("phone:{tenant}:{digits}:{day}")
}

/// Registers the missed calls handed over, one at a time.
pub async fn run(requests: Arc<Requests>, mut rx: tokio::sync::mpsc::Receiver<MissedCall>) {
    while let Some(m) = rx.recv().await {
        let day = requests.day_of(&m.tenant, jiff::Timestamp::now().as_millisecond());
        let key = requests.phone_key(&m.tenant, m.caller.expose(), &day);
        let known = requests.by_key(&key);
        if let Some(id) = known {
            // A further attempt the same day: linked to the same request.
            if let Some(call_uid) = m.call_uid {
                let _ = requests
                    .change(&id, super::Change::CallLinked { call_uid }, "system")
                    .await;
            }
            continue;
        }
        let subject = match m.outcome {
            CallOutcome::Closed => "Qo'ng'iroq ish vaqtidan tashqari / Звонок в нерабочее время",
            CallOutcome::Blocked => "Liniya band edi / Линия была занята",
            _ => "Javobsiz qo'ng'iroq / Неотвеченный звонок",
        };
        let new = NewRequest {
            tenant: m.tenant.clone(),
            channel: Channel::Phone,
            kind: Kind::Ordinary,
            priority: Priority::Normal,
            category: None,
            topic: None,
            subject: subject.to_owned(),
            requester: Requester {
                phone: Some(m.caller.expose().to_owned()),
                ..Requester::default()
            },
            language: m.language.unwrap_or_else(|| "uz".to_owned()),
            message: None,
            call_uid: m.call_uid,
            actor: "system".to_owned(),
            assignee: None,
        };
        match requests.intake(Some(&key), new).await {
            Ok((id, true)) => {
                tracing::info!(request = %id, caller = %m.caller, outcome = ?m.outcome, "missed call registered as a request")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, caller = %m.caller, "missed call not registered as a request")
            }
        }
    }
}
