//! Typed events: every call, queue and operator transition.
//!
//! Actors build an [`EventKind`] and hand it to the [`EventBus`], which
//! stamps it with a sequence number and wall-clock time and gives it to every
//! [`EventSink`]. Sinks must not block the caller: the in-memory sink is a
//! bounded ring that counts what it sheds; the log sink writes one JSON line
//! per event. The database sink (journal, SQLite, Postgres) plugs in here.

use crate::privacy::PhoneNumber;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// How a call ended. Every call gets exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// An operator answered.
    Answered,
    /// The caller hung up before an operator answered (in the IVR or queue).
    Abandoned,
    /// The caller waited the queue's maximum wait and was let go.
    TimedOut,
    /// Refused at the door: channel limit, queue full or shutting down.
    Blocked,
    /// The line was closed (outside working hours or on a holiday, C3).
    Closed,
    /// The IVR ended the call (no usable input after the retries).
    IvrHangup,
    /// The call failed for a technical reason (e.g. the caller leg broke).
    Failed,
    /// Surge mode: the caller took a self-service branch, heard the information and was let
    /// go (or was sent it by SMS) without an operator.
    Deflected,
    /// Surge mode: the caller accepted a callback while waiting and was let go; the callback
    /// keeps their place (see `callback_*` events).
    CallbackRequested,
}

/// Why a call was blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    /// The global channel limit (D6) was reached.
    GlobalChannels,
    /// The tenant's own channel limit was reached.
    TenantChannels,
    /// The queue's waiting-call cap was reached.
    QueueFull,
    /// The router is draining for shutdown.
    ShuttingDown,
}

/// The transport of summaries written before `blocked_summary` carried one (all were UDP).
fn udp() -> String {
    "udp".into()
}

/// One event's payload, tagged by `kind` in JSON.
///
/// Read back too: the store folds its journal's events into call records by these variants
/// (`store::record::fold`), so the JSON names here are a format on disk: rename a field or a
/// variant only with a `#[serde(rename)]` or `alias` that keeps the old name readable.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// An INVITE for a known DID arrived.
    CallArrived {
        call: String,
        tenant: String,
        did: String,
        caller: PhoneNumber,
        transport: String,
    },
    /// The call was refused at the door; a `call_finished` with `blocked` follows.
    CallBlocked {
        call: String,
        tenant: String,
        reason: BlockReason,
    },
    /// Calls refused for want of a channel in the last interval, counted rather than
    /// recorded one by one (issue 18): the router's screen answered them statelessly, or
    /// admission found no channel (channels full, or draining), so they have no call record
    /// and no `call_*` events. At most one a tenant, reason and transport a second; `sample`
    /// holds a few of the callers' numbers, masked. `transport` ("udp" or "tcp") is absent
    /// from summaries written before it existed, which were all UDP.
    BlockedSummary {
        tenant: String,
        reason: BlockReason,
        #[serde(default = "udp")]
        transport: String,
        count: u64,
        sample: Vec<String>,
    },
    /// A menu level of the IVR completed.
    IvrStep {
        call: String,
        level: u8,
        digit: Option<char>,
    },
    /// A DTMF digit arrived from the caller.
    DtmfReceived {
        call: String,
        digit: char,
        via: String,
    },
    /// The call joined a queue.
    CallEnqueued {
        call: String,
        tenant: String,
        queue: String,
        language: String,
        topic: Option<String>,
        priority: u8,
    },
    /// An operator's phone is being rung for the call.
    CallOffered {
        call: String,
        queue: String,
        operator: String,
    },
    /// Ringing an operator stopped without an answer (timeout, caller left, another answered).
    OfferWithdrawn { call: String, operator: String },
    /// The operator's phone refused the offer.
    OfferDeclined {
        call: String,
        operator: String,
        status: u16,
    },
    /// The call went back to the head of its queue after a missed offer.
    CallRequeued {
        call: String,
        queue: String,
        operator: String,
    },
    /// An operator answered; the legs are joined.
    CallAnswered {
        call: String,
        queue: String,
        operator: String,
        wait_ms: u64,
    },
    /// The call ended with exactly one outcome.
    CallFinished {
        call: String,
        tenant: String,
        queue: Option<String>,
        operator: Option<String>,
        outcome: CallOutcome,
        wait_ms: u64,
        talk_ms: u64,
        ended_by: String,
    },
    /// An operator's ACD state changed.
    OperatorState {
        operator: String,
        from: String,
        to: String,
        reason: String,
    },
    /// An operator's softphone registered or refreshed its binding.
    OperatorRegistered { operator: String, expires_secs: u32 },
    /// An operator's binding was removed or expired.
    OperatorUnregistered { operator: String, reason: String },
    /// A REGISTER or a supervisor's feature-code INVITE failed authentication: the method,
    /// the account (a known extension in full, a guess masked), where it came from and why,
    /// also when the failure banned the source (rate-limited; `navbat_sip_auth_failures_total`
    /// counts every one).
    AuthFailed {
        method: String,
        account: String,
        known: bool,
        source: String,
        reason: String,
    },
    /// A call's recording began (D19): the file it grows in, on this node, and the address
    /// other nodes fetch it from while the call goes on.
    RecordingStarted {
        call: String,
        tenant: String,
        path: String,
        node_url: Option<String>,
        key_id: Option<String>,
    },
    /// A call's recording is complete (D19, C9): the file, its length, size and SHA-256.
    Recording {
        call: String,
        path: String,
        duration_ms: u64,
        bytes: u64,
        sha256: String,
        tenant: Option<String>,
        node_url: Option<String>,
        key_id: Option<String>,
    },
    /// An operator saved (or a supervisor edited) the after-call form of a call.
    DispositionSaved {
        call: String,
        tenant: String,
        operator: Option<String>,
        category: String,
        outcome: String,
        revision: i64,
    },
    /// A request's SLA clock came near its deadline or ran out (C4-C7), once per clock.
    RequestSla {
        request: String,
        tenant: String,
        /// `first_answer`, `out_of_hours_contact`, `resolution`, `moderation`.
        clock: String,
        /// `near_breach` or `breached`.
        state: String,
    },
    /// A side of an answered call put it on hold (`held`) or took it off (re-INVITE with
    /// `sendonly`/`inactive` and back). `by` is `caller` or `operator`. The monthly report
    /// sums these into hold time (D20).
    CallHold {
        call: String,
        by: String,
        held: bool,
    },
    /// A supervisor joined a live call (D17).
    MonitorStarted {
        call: String,
        supervisor: String,
        mode: MonitorMode,
    },
    /// A tenant's surge flag changed. `by` says who or what switched it: `manual:<who>`,
    /// `calendar`, or `auto:<metric>=<value>` (see [`crate::surge::Cause::describe`]).
    SurgeChanged {
        tenant: String,
        on: bool,
        by: String,
    },
    /// A caller accepted a callback (surge mode). `call` is the call that asked for it;
    /// `callback` the request's id. The number is masked in logs and views.
    CallbackRequested {
        callback: String,
        call: String,
        tenant: String,
        queue: String,
        number: PhoneNumber,
        language: String,
    },
    /// A callback request was refused (`reason`: `already_pending`, `full`, `invalid_number`,
    /// `store`: the journal buffer was full); the caller stays in the queue.
    CallbackRefused {
        call: String,
        tenant: String,
        reason: String,
    },
    /// One dial attempt of a callback ended: `result` is `connected`, `no_answer`, `busy`,
    /// or `failed` (the trunk refused); `operator` took it. `call` is the original call.
    CallbackAttempt {
        callback: String,
        call: String,
        queue: String,
        operator: String,
        attempt: u32,
        result: String,
        status: Option<u16>,
        talk_ms: u64,
    },
    /// A callback is over: `outcome` is `connected` or `gave_up`.
    CallbackFinished {
        callback: String,
        call: String,
        tenant: String,
        queue: String,
        outcome: String,
        attempts: u32,
    },
    /// The results-day door policy made an offer (issue 19): `at_door` at queue entry (the
    /// expected wait was long), else after `offer_after` in the queue; `callback` is `today`,
    /// `next_morning` or `none` (none can be kept); `sms`: the information by SMS.
    DoorOffer {
        call: String,
        tenant: String,
        queue: String,
        at_door: bool,
        callback: String,
        sms: bool,
    },
    /// What the caller did with the door offer: `callback`, `sms` or `declined` (no key in
    /// the choice window: the caller keeps waiting).
    DoorChoice {
        call: String,
        tenant: String,
        queue: String,
        choice: String,
    },
    /// An SMS changed state (D12): `queued`, `retrying`, `sent`, `failed`, or `rejected`
    /// (number not valid, outbox full). `id` is the message's idempotency key.
    SmsStatus {
        id: String,
        tenant: String,
        purpose: String,
        to: PhoneNumber,
        status: String,
        attempts: u32,
        detail: Option<String>,
    },
}

impl EventKind {
    /// The `kind` tag as it appears in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::CallArrived { .. } => "call_arrived",
            EventKind::CallBlocked { .. } => "call_blocked",
            EventKind::BlockedSummary { .. } => "blocked_summary",
            EventKind::IvrStep { .. } => "ivr_step",
            EventKind::DtmfReceived { .. } => "dtmf_received",
            EventKind::CallEnqueued { .. } => "call_enqueued",
            EventKind::CallOffered { .. } => "call_offered",
            EventKind::OfferWithdrawn { .. } => "offer_withdrawn",
            EventKind::OfferDeclined { .. } => "offer_declined",
            EventKind::CallRequeued { .. } => "call_requeued",
            EventKind::CallAnswered { .. } => "call_answered",
            EventKind::CallFinished { .. } => "call_finished",
            EventKind::OperatorState { .. } => "operator_state",
            EventKind::OperatorRegistered { .. } => "operator_registered",
            EventKind::OperatorUnregistered { .. } => "operator_unregistered",
            EventKind::AuthFailed { .. } => "auth_failed",
            EventKind::RecordingStarted { .. } => "recording_started",
            EventKind::Recording { .. } => "recording",
            EventKind::MonitorStarted { .. } => "monitor_started",
            EventKind::CallHold { .. } => "call_hold",
            EventKind::DispositionSaved { .. } => "disposition_saved",
            EventKind::RequestSla { .. } => "request_sla",
            EventKind::SurgeChanged { .. } => "surge_changed",
            EventKind::SmsStatus { .. } => "sms_status",
            EventKind::CallbackRequested { .. } => "callback_requested",
            EventKind::CallbackRefused { .. } => "callback_refused",
            EventKind::CallbackAttempt { .. } => "callback_attempt",
            EventKind::CallbackFinished { .. } => "callback_finished",
            EventKind::DoorOffer { .. } => "door_offer",
            EventKind::DoorChoice { .. } => "door_choice",
        }
    }
}

/// A stamped event.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Process-wide sequence number, starting at 1.
    pub seq: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The payload.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Where events go. Implementations must return quickly and never block.
pub trait EventSink: Send + Sync {
    /// Takes one event.
    fn emit(&self, event: &Event);
}

/// Keeps the newest events in memory for the API and tests, as their JSON (what the API
/// serves); bounded in count and bytes, counts what it sheds.
///
/// An event is serialised once, into one allocation: the ring holds about a third of what
/// clones of the events did, its byte count is exact (allocator rounding aside), and the API
/// answers by joining strings.
pub struct MemorySink {
    ring: Mutex<Ring>,
    capacity: usize,
    max_bytes: usize,
    shed: AtomicU64,
}

/// The events kept: sequence number and JSON.
#[derive(Default)]
struct Ring {
    events: VecDeque<(u64, Box<str>)>,
    bytes: usize,
}

/// The bytes the in-memory ring holds by default (`[http] events_feed_mib`): a flood of
/// refused calls with long From and To values must not turn a count bound into hundreds of
/// megabytes.
pub const MEMORY_RING_BYTES: usize = 16 * 1024 * 1024;

/// Bytes one kept event costs: its JSON and its slot in the ring.
fn kept_bytes(json: &str) -> usize {
    std::mem::size_of::<(u64, Box<str>)>() + json.len()
}

impl MemorySink {
    /// A ring that keeps at most `capacity` events and [`MEMORY_RING_BYTES`].
    pub fn new(capacity: usize) -> MemorySink {
        MemorySink::bounded(capacity, MEMORY_RING_BYTES)
    }

    /// A ring that keeps at most `capacity` events and about `max_bytes` bytes of them.
    pub fn bounded(capacity: usize, max_bytes: usize) -> MemorySink {
        MemorySink {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.min(4096)),
                bytes: 0,
            }),
            capacity,
            max_bytes,
            shed: AtomicU64::new(0),
        }
    }

    /// The bytes the ring holds now.
    pub fn bytes(&self) -> usize {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// Events with `seq > after`, oldest first, as one JSON array.
    pub fn since_json(&self, after: u64) -> String {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        // The ring is in sequence order: skip the older ones without looking at them.
        let first = ring.events.partition_point(|(seq, _)| *seq <= after);
        let kept = ring.events.range(first..);
        let mut out =
            String::with_capacity(2 + kept.clone().map(|(_, j)| j.len() + 1).sum::<usize>());
        out.push('[');
        for (i, (_, json)) in kept.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(json);
        }
        out.push(']');
        out
    }

    /// Events with `seq > after`, oldest first, parsed (the unit tests' reader; the API
    /// answers with [`since_json`](Self::since_json)).
    #[cfg(test)]
    pub fn since(&self, after: u64) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.since_json(after)).unwrap_or_default()
    }

    /// How many events were dropped because the ring was full.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }
}

impl EventSink for MemorySink {
    fn emit(&self, event: &Event) {
        let json = match serde_json::to_string(event) {
            Ok(json) => json.into_boxed_str(),
            Err(_) => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let size = kept_bytes(&json);
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        while !ring.events.is_empty()
            && (ring.events.len() >= self.capacity || ring.bytes + size > self.max_bytes)
        {
            if let Some((_, gone)) = ring.events.pop_front() {
                ring.bytes -= kept_bytes(&gone);
            }
            self.shed.fetch_add(1, Ordering::Relaxed);
        }
        ring.bytes += size;
        ring.events.push_back((event.seq, json));
    }
}

/// Writes each event as one JSON line at `info` on target `navbat::events`.
/// Personal data inside events is already masked by its type.
pub struct LogSink;

impl EventSink for LogSink {
    fn emit(&self, event: &Event) {
        if tracing::enabled!(target: "navbat::events", tracing::Level::INFO) {
            match serde_json::to_string(event) {
                Ok(line) => tracing::info!(target: "navbat::events", "{line}"),
                Err(e) => {
                    tracing::warn!(target: "navbat::events", error = %e, "event not serialisable")
                }
            }
        }
    }
}

/// What a supervisor does on a live call (D17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// Hears both sides; nobody hears the supervisor.
    Listen,
    /// Hears both sides; only the operator hears the supervisor.
    Whisper,
    /// Three-way: everyone hears everyone.
    Barge,
}

/// Stamps events and fans them out to the sinks. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    /// The last sequence number given out. Held while the event is handed to
    /// the sinks, so every sink sees events in sequence order even when
    /// several threads emit at once (the SIP threads emit arrivals, the actor
    /// thread the rest).
    seq: Mutex<u64>,
    sinks: Vec<Arc<dyn EventSink>>,
}

impl EventBus {
    /// A bus over these sinks.
    pub fn new(sinks: Vec<Arc<dyn EventSink>>) -> EventBus {
        EventBus {
            inner: Arc::new(BusInner {
                seq: Mutex::new(0),
                sinks,
            }),
        }
    }

    /// Stamps and delivers one event; returns its sequence number.
    pub fn emit(&self, kind: EventKind) -> u64 {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let mut last = self.inner.seq.lock().unwrap_or_else(|e| e.into_inner());
        *last += 1;
        let event = Event {
            seq: *last,
            at_ms,
            kind,
        };
        for sink in &self.inner.sinks {
            sink.emit(&event);
        }
        event.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sink_is_bounded_and_counts_shed() {
        let mem = Arc::new(MemorySink::new(2));
        let bus = EventBus::new(vec![mem.clone()]);
        for i in 0..3 {
            bus.emit(EventKind::SurgeChanged {
                tenant: format!("t{i}"),
                on: true,
                by: "test".into(),
            });
        }
        let kept = mem.since(0);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0]["seq"], 2);
        assert_eq!(kept[1]["tenant"], "t2");
        assert_eq!(mem.since(2).len(), 1);
        assert_eq!(mem.since_json(3), "[]");
        assert_eq!(mem.shed(), 1);
    }

    #[test]
    fn memory_sink_is_bounded_in_bytes_too() {
        let surge = |by: String| EventKind::SurgeChanged {
            tenant: "t".into(),
            on: true,
            by,
        };
        let one = kept_bytes(
            &serde_json::to_string(&Event {
                seq: 1,
                at_ms: 1,
                kind: surge("x".repeat(1000)),
            })
            .unwrap(),
        );
        // Room for three big events by bytes, a thousand by count.
        let mem = Arc::new(MemorySink::bounded(1000, 3 * one + one / 2));
        let bus = EventBus::new(vec![mem.clone()]);
        for _ in 0..10 {
            bus.emit(surge("x".repeat(1000)));
        }
        assert_eq!(mem.since(0).len(), 3);
        assert_eq!(mem.shed(), 7);
        assert!(mem.bytes() <= 3 * one + one / 2);
        // Small events fit many to the same bytes.
        for _ in 0..10 {
            bus.emit(surge("y".into()));
        }
        assert!(mem.since(0).len() >= 10);
    }

    #[test]
    fn sinks_see_sequence_order_across_threads() {
        let mem = Arc::new(MemorySink::new(100_000));
        let bus = EventBus::new(vec![mem.clone()]);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let bus = bus.clone();
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        bus.emit(EventKind::SurgeChanged {
                            tenant: format!("t{t}"),
                            on: i % 2 == 0,
                            by: "test".into(),
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let seqs: Vec<u64> = mem
            .since(0)
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs.len(), 8_000);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn json_has_kind_tag_and_masked_caller() {
        let e = Event {
            seq: 1,
            at_ms: 0,
            kind: EventKind::CallArrived {
                call: "c1".into(),
                tenant: "dtm".into(),
                did: "712351914".into(),
                caller: PhoneNumber::new("+998901234567"),
                transport: "udp".into(),
            },
        };
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"kind\":\"call_arrived\""));
        assert!(!json.contains("901234567"));
        assert_eq!(e.kind.name(), "call_arrived");
    }
}
