//! What the desk knows of calls in progress, fed by the event bus: a bounded table of live
//! and recently ended calls (tenant, masked caller, language, topic, who took it) and a
//! broadcast of the moments a desk reacts to (an operator's phone rings, a call is answered
//! or ends, an operator's state changes).
//!
//! `emit` never blocks: the table is behind a short mutex and the broadcast channel drops the
//! oldest notices for a subscriber that falls behind (counted; its desk re-reads on the next
//! notice).

use crate::events::{CallOutcome, Event, EventKind, EventSink};
use crate::privacy::PhoneNumber;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::{broadcast, watch};

/// Ended calls kept for after-call work and lookups.
const ENDED_KEPT: usize = 5_000;
/// Live calls at most (beyond the channel limit of any deployment).
const LIVE_MAX: usize = 20_000;

/// One call as the desk sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveCall {
    /// The call's name in this run (`c17`).
    pub call: String,
    /// Tenant.
    pub tenant: String,
    /// The caller (masked when shown).
    pub caller: PhoneNumber,
    /// Arrival (Unix ms).
    pub arrived_at_ms: u64,
    /// Language chosen.
    pub language: Option<String>,
    /// Topic chosen.
    pub topic: Option<String>,
    /// Queue.
    pub queue: Option<String>,
    /// Joined the queue (Unix ms).
    pub enqueued_at_ms: Option<u64>,
    /// The operator being rung or who answered.
    pub operator: Option<String>,
    /// Answered (Unix ms).
    pub answered_at_ms: Option<u64>,
    /// Ended (Unix ms) and how.
    pub ended: Option<(u64, CallOutcome)>,
}

/// A moment a desk reacts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The operator's phone is ringing with this call.
    Offered {
        /// Call.
        call: String,
        /// Operator's extension.
        operator: String,
    },
    /// Ringing stopped without an answer.
    Withdrawn {
        /// Call.
        call: String,
        /// Operator.
        operator: String,
    },
    /// The operator answered.
    Answered {
        /// Call.
        call: String,
        /// Operator.
        operator: String,
    },
    /// The call ended.
    Ended {
        /// Call.
        call: String,
        /// The operator who had it, if any.
        operator: Option<String>,
    },
    /// An operator's ACD state changed.
    State {
        /// Operator.
        operator: String,
        /// New state.
        to: String,
    },
}

impl Notice {
    /// The operator it concerns.
    pub fn operator(&self) -> Option<&str> {
        match self {
            Notice::Offered { operator, .. }
            | Notice::Withdrawn { operator, .. }
            | Notice::Answered { operator, .. }
            | Notice::State { operator, .. } => Some(operator),
            Notice::Ended { operator, .. } => operator.as_deref(),
        }
    }
}

#[derive(Default)]
struct Table {
    calls: HashMap<String, LiveCall>,
    ended: VecDeque<String>,
}

/// The table, the broadcast, and the floor's change counter.
pub struct LiveCalls {
    table: Mutex<Table>,
    tx: broadcast::Sender<Notice>,
    /// Bumped whenever what the supervisor's floor shows changes (a call arrives, joins a
    /// queue, rings, is answered or ends; an operator's state changes). A `watch` keeps only
    /// the newest value, so a burst of changes wakes a floor stream once.
    floor: watch::Sender<u64>,
}

impl Default for LiveCalls {
    fn default() -> LiveCalls {
        LiveCalls {
            table: Mutex::new(Table::default()),
            tx: broadcast::channel(4096).0,
            floor: watch::channel(0).0,
        }
    }
}

impl LiveCalls {
    /// A subscription to the notices.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.tx.subscribe()
    }

    /// A subscription to the floor's changes: `changed()` resolves after the next change
    /// (several changes in between count as one).
    pub fn floor_changes(&self) -> watch::Receiver<u64> {
        self.floor.subscribe()
    }

    /// One call (live or recently ended).
    pub fn get(&self, call: &str) -> Option<LiveCall> {
        self.lock().calls.get(call).cloned()
    }

    /// Calls not yet ended, oldest first.
    pub fn live(&self) -> Vec<LiveCall> {
        let mut v: Vec<LiveCall> = self
            .lock()
            .calls
            .values()
            .filter(|c| c.ended.is_none())
            .cloned()
            .collect();
        v.sort_by_key(|c| c.arrived_at_ms);
        v
    }

    /// The newest call the operator was offered or took, if it is live or recently ended.
    pub fn latest_for(&self, operator: &str) -> Option<LiveCall> {
        self.lock()
            .calls
            .values()
            .filter(|c| c.operator.as_deref() == Some(operator))
            .max_by_key(|c| c.arrived_at_ms)
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self, n: Notice) {
        // No subscriber is not an error.
        let _ = self.tx.send(n);
    }
}

impl EventSink for LiveCalls {
    fn emit(&self, event: &Event) {
        let at = event.at_ms;
        let floor_changed = matches!(
            event.kind,
            EventKind::CallArrived { .. }
                | EventKind::CallEnqueued { .. }
                | EventKind::CallOffered { .. }
                | EventKind::OfferWithdrawn { .. }
                | EventKind::OfferDeclined { .. }
                | EventKind::CallAnswered { .. }
                | EventKind::CallFinished { .. }
                | EventKind::OperatorState { .. }
                | EventKind::OperatorRegistered { .. }
                | EventKind::OperatorUnregistered { .. }
        );
        let notice = {
            let mut t = self.lock();
            match &event.kind {
                EventKind::CallArrived {
                    call,
                    tenant,
                    caller,
                    ..
                } => {
                    if t.calls.len() < LIVE_MAX + ENDED_KEPT {
                        t.calls.insert(
                            call.clone(),
                            LiveCall {
                                call: call.clone(),
                                tenant: tenant.clone(),
                                caller: caller.clone(),
                                arrived_at_ms: at,
                                language: None,
                                topic: None,
                                queue: None,
                                enqueued_at_ms: None,
                                operator: None,
                                answered_at_ms: None,
                                ended: None,
                            },
                        );
                    }
                    None
                }
                EventKind::CallEnqueued {
                    call,
                    queue,
                    language,
                    topic,
                    ..
                } => {
                    if let Some(c) = t.calls.get_mut(call) {
                        c.queue = Some(queue.clone());
                        c.language = Some(language.clone());
                        c.topic = topic.clone();
                        c.enqueued_at_ms.get_or_insert(at);
                    }
                    None
                }
                EventKind::CallOffered { call, operator, .. } => {
                    if let Some(c) = t.calls.get_mut(call) {
                        c.operator = Some(operator.clone());
                    }
                    Some(Notice::Offered {
                        call: call.clone(),
                        operator: operator.clone(),
                    })
                }
                EventKind::OfferWithdrawn { call, operator }
                | EventKind::OfferDeclined { call, operator, .. } => {
                    if let Some(c) = t.calls.get_mut(call) {
                        if c.answered_at_ms.is_none() && c.operator.as_ref() == Some(operator) {
                            c.operator = None;
                        }
                    }
                    Some(Notice::Withdrawn {
                        call: call.clone(),
                        operator: operator.clone(),
                    })
                }
                EventKind::CallAnswered { call, operator, .. } => {
                    if let Some(c) = t.calls.get_mut(call) {
                        c.operator = Some(operator.clone());
                        c.answered_at_ms = Some(at);
                    }
                    Some(Notice::Answered {
                        call: call.clone(),
                        operator: operator.clone(),
                    })
                }
                EventKind::CallFinished {
                    call,
                    operator,
                    outcome,
                    ..
                } => {
                    let mut known = false;
                    if let Some(c) = t.calls.get_mut(call) {
                        c.ended = Some((at, *outcome));
                        if operator.is_some() {
                            c.operator = operator.clone();
                        }
                        known = true;
                    }
                    if known {
                        t.ended.push_back(call.clone());
                        while t.ended.len() > ENDED_KEPT {
                            if let Some(old) = t.ended.pop_front() {
                                t.calls.remove(&old);
                            }
                        }
                    }
                    Some(Notice::Ended {
                        call: call.clone(),
                        operator: operator.clone(),
                    })
                }
                EventKind::OperatorState { operator, to, .. } => Some(Notice::State {
                    operator: operator.clone(),
                    to: to.clone(),
                }),
                _ => None,
            }
        };
        if let Some(n) = notice {
            self.notify(n);
        }
        if floor_changed {
            self.floor.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            at_ms: 1_000 * seq,
            kind,
        }
    }

    #[test]
    fn a_call_is_followed_from_arrival_to_end_and_the_operator_is_told() {
        let live = LiveCalls::default();
        let mut rx = live.subscribe();
        live.emit(&ev(
            1,
            EventKind::CallArrived {
                call: "c1".into(),
                tenant: "dtm".into(),
                did: "712351914".into(),
                caller: PhoneNumber::new("+998901234567"),
                transport: "udp".into(),
            },
        ));
        live.emit(&ev(
            2,
            EventKind::CallEnqueued {
                call: "c1".into(),
                tenant: "dtm".into(),
                queue: "dtm-uz".into(),
                language: "uz".into(),
                topic: Some("results".into()),
                priority: 0,
            },
        ));
        live.emit(&ev(
            3,
            EventKind::CallOffered {
                call: "c1".into(),
                queue: "dtm-uz".into(),
                operator: "1001".into(),
            },
        ));
        assert_eq!(
            rx.try_recv().unwrap(),
            Notice::Offered {
                call: "c1".into(),
                operator: "1001".into()
            }
        );
        let c = live.latest_for("1001").unwrap();
        assert_eq!(c.topic.as_deref(), Some("results"));
        assert_eq!(c.caller.masked(), "+9989******67");
        assert_eq!(live.live().len(), 1);
        live.emit(&ev(
            4,
            EventKind::CallFinished {
                call: "c1".into(),
                tenant: "dtm".into(),
                queue: Some("dtm-uz".into()),
                operator: Some("1001".into()),
                outcome: CallOutcome::Answered,
                wait_ms: 0,
                talk_ms: 1,
                ended_by: "caller".into(),
            },
        ));
        assert!(live.live().is_empty());
        assert!(live.get("c1").unwrap().ended.is_some());
    }

    #[test]
    fn ended_calls_are_bounded() {
        let live = LiveCalls::default();
        for i in 0..(ENDED_KEPT + 100) {
            let call = format!("c{i}");
            live.emit(&ev(
                1,
                EventKind::CallArrived {
                    call: call.clone(),
                    tenant: "dtm".into(),
                    did: "1".into(),
                    caller: PhoneNumber::new("1"),
                    transport: "udp".into(),
                },
            ));
            live.emit(&ev(
                2,
                EventKind::CallFinished {
                    call,
                    tenant: "dtm".into(),
                    queue: None,
                    operator: None,
                    outcome: CallOutcome::Abandoned,
                    wait_ms: 0,
                    talk_ms: 0,
                    ended_by: "caller".into(),
                },
            ));
        }
        assert!(live.get("c0").is_none());
        assert!(live.get(&format!("c{}", ENDED_KEPT + 99)).is_some());
    }

    #[test]
    fn the_floor_is_told_of_changes_once_per_look() {
        let live = LiveCalls::default();
        let mut floor = live.floor_changes();
        assert!(!floor.has_changed().unwrap());
        for (seq, call) in [(1, "c1"), (2, "c2")] {
            live.emit(&ev(
                seq,
                EventKind::CallArrived {
                    call: call.into(),
                    tenant: "dtm".into(),
                    did: "1".into(),
                    caller: PhoneNumber::new("1"),
                    transport: "udp".into(),
                },
            ));
        }
        // Two arrivals, one wake-up.
        assert!(floor.has_changed().unwrap());
        floor.borrow_and_update();
        assert!(!floor.has_changed().unwrap());
        live.emit(&ev(
            3,
            EventKind::OperatorState {
                operator: "1001".into(),
                from: "available".into(),
                to: "break".into(),
                reason: "lunch".into(),
            },
        ));
        assert!(floor.has_changed().unwrap());
    }
}
