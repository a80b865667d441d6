//! The pure book of callback requests and the records the store keeps of it.
//!
//! A caller who waited past the threshold and accepted a callback leaves the line but keeps
//! their place: the request carries the original arrival time. [`CallbackBook::next_for`]
//! decides whether a free operator of a queue should take the oldest callback or the
//! oldest live caller: whichever arrived first. A caller never has two pending callbacks for
//! the same tenant. After no answer the request is retried after a pause, up to a limit;
//! every end is an outcome. Every step (booked, an unanswered attempt, finished) is a
//! [`CallbackRecord`] that the driver hands to the store (journal, then the
//! `callback_requests` table; `store::outbox`), from which pending requests come back after
//! a restart.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One callback request.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRequest {
    /// Unique id.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// Queue id whose operators call back.
    pub queue: String,
    /// The caller's number, E.164 (validated by the caller of [`CallbackBook::request`]).
    pub number: String,
    /// Language chosen in the IVR.
    pub language: String,
    /// When the original call arrived (Unix ms): the place in the queue.
    pub arrived_ms: i64,
    /// Dial attempts so far.
    pub attempts: u32,
    /// Not before this time (Unix ms): the pause after an unanswered attempt.
    pub due_ms: i64,
    /// The call that asked for it (its events join that call's timeline).
    #[serde(default)]
    pub call: String,
}

/// The number masked (D18).
impl std::fmt::Debug for CallbackRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackRequest")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("queue", &self.queue)
            .field(
                "number",
                &crate::privacy::PhoneNumber::new(self.number.clone()),
            )
            .field("arrived_ms", &self.arrived_ms)
            .field("attempts", &self.attempts)
            .field("due_ms", &self.due_ms)
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

/// Retry rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackPolicy {
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Pause after an unanswered attempt (ms).
    pub retry_after_ms: i64,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The caller already has a pending callback for this tenant.
    #[error("a callback for this number is already pending ({0})")]
    AlreadyPending(String),
    /// The book is full.
    #[error("the callback book holds {0} requests already")]
    Full(usize),
}

/// Why a waiting caller's acceptance of the callback offer was refused (the caller keeps
/// waiting). Each is a `callback_refused` event with [`CallbackRefusal::label`] as its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackRefusal {
    /// The call is no longer waiting in a queue (answered or gone meanwhile).
    #[error("the call is no longer waiting")]
    NotWaiting,
    /// The tenant has no `[tenant.surge.callback]` section.
    #[error("callbacks are not enabled for this tenant: add [tenant.surge.callback]")]
    Disabled,
    /// The caller's number cannot be dialled back (not E.164).
    #[error("the caller's number cannot be dialled back")]
    InvalidNumber,
    /// The book refused it.
    #[error(transparent)]
    Book(#[from] CallbackError),
    /// The journal did not take the booking (its buffer is full).
    #[error("the booking could not be stored")]
    Store,
}

impl CallbackRefusal {
    /// The reason as events and metrics name it.
    pub fn label(&self) -> &'static str {
        match self {
            CallbackRefusal::NotWaiting => "not_waiting",
            CallbackRefusal::Disabled => "disabled",
            CallbackRefusal::InvalidNumber => "invalid_number",
            CallbackRefusal::Book(CallbackError::AlreadyPending(_)) => "already_pending",
            CallbackRefusal::Book(CallbackError::Full(_)) => "full",
            CallbackRefusal::Store => "store",
        }
    }
}

/// How a dial attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialResult {
    /// Caller and operator talked.
    Connected,
    /// The caller did not answer (or was busy).
    NoAnswer,
}

/// What the book decided after an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackOutcome {
    /// Done: connected.
    Connected,
    /// Try again at `due_ms`.
    Retry {
        /// When.
        due_ms: i64,
    },
    /// Given up after the last attempt.
    GaveUp,
    /// Dropped undialled: a request of an earlier run that came back (the database was down at
    /// start-up) after the same caller had booked another one for the tenant.
    Superseded,
}

/// Whom a free operator should serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The live caller at the head of the queue.
    LiveCall,
    /// This callback.
    Callback(String),
}

/// The pending callbacks of all tenants. Bounded.
#[derive(Debug, Clone)]
pub struct CallbackBook {
    policy: CallbackPolicy,
    tenant_policies: BTreeMap<String, CallbackPolicy>,
    capacity: usize,
    requests: BTreeMap<String, CallbackRequest>,
    dialling: Vec<String>,
}

impl CallbackBook {
    /// An empty book.
    pub fn new(policy: CallbackPolicy, capacity: usize) -> CallbackBook {
        CallbackBook {
            policy,
            tenant_policies: BTreeMap::new(),
            capacity,
            requests: BTreeMap::new(),
            dialling: Vec::new(),
        }
    }

    /// Retry rules for one tenant's requests (others use the book's default).
    pub fn set_tenant_policy(&mut self, tenant: &str, policy: CallbackPolicy) {
        self.tenant_policies.insert(tenant.to_string(), policy);
    }

    /// Forgets a request without an outcome (it could not be stored).
    pub fn remove(&mut self, id: &str) -> Option<CallbackRequest> {
        self.dialling.retain(|d| d != id);
        self.requests.remove(id)
    }

    /// Books a callback (also used to restore one from the log).
    pub fn request(&mut self, request: CallbackRequest) -> Result<(), CallbackError> {
        if let Some(existing) = self
            .requests
            .values()
            .find(|r| r.tenant == request.tenant && r.number == request.number)
        {
            return Err(CallbackError::AlreadyPending(existing.id.clone()));
        }
        if self.requests.len() >= self.capacity {
            return Err(CallbackError::Full(self.capacity));
        }
        self.requests.insert(request.id.clone(), request);
        Ok(())
    }

    /// Whether an operator of `queue` who just became free at `now_ms` should take a
    /// callback or the live call at the head of the queue, which arrived at
    /// `oldest_live_arrival_ms` (`None` when nobody waits). Whoever arrived first goes first.
    pub fn next_for(
        &self,
        queue: &str,
        oldest_live_arrival_ms: Option<i64>,
        now_ms: i64,
    ) -> Option<Next> {
        let head = self
            .requests
            .values()
            .filter(|r| r.queue == queue && r.due_ms <= now_ms && !self.dialling.contains(&r.id))
            .min_by_key(|r| (r.arrived_ms, r.id.clone()));
        match (head, oldest_live_arrival_ms) {
            (None, None) => None,
            (None, Some(_)) => Some(Next::LiveCall),
            (Some(cb), Some(live)) if live < cb.arrived_ms => Some(Next::LiveCall),
            (Some(cb), _) => Some(Next::Callback(cb.id.clone())),
        }
    }

    /// The driver started dialling callback `id`.
    pub fn start_dial(&mut self, id: &str) {
        if self.requests.contains_key(id) && !self.dialling.iter().any(|d| d == id) {
            self.dialling.push(id.to_string());
        }
    }

    /// A dial attempt of `id` ended at `now_ms`.
    pub fn on_dial_result(
        &mut self,
        id: &str,
        result: DialResult,
        now_ms: i64,
    ) -> Option<CallbackOutcome> {
        self.dialling.retain(|d| d != id);
        let request = self.requests.get_mut(id)?;
        let policy = self
            .tenant_policies
            .get(&request.tenant)
            .copied()
            .unwrap_or(self.policy);
        request.attempts += 1;
        let outcome = match result {
            DialResult::Connected => CallbackOutcome::Connected,
            DialResult::NoAnswer if request.attempts >= policy.max_attempts => {
                CallbackOutcome::GaveUp
            }
            DialResult::NoAnswer => {
                request.due_ms = now_ms + policy.retry_after_ms;
                return Some(CallbackOutcome::Retry {
                    due_ms: request.due_ms,
                });
            }
        };
        self.requests.remove(id);
        Some(outcome)
    }

    /// A pending request.
    pub fn get(&self, id: &str) -> Option<&CallbackRequest> {
        self.requests.get(id)
    }

    /// Pending requests.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// `tenant`'s pending requests due before `split_ms` (promised for today) and from then
    /// on (promised for the next morning's window): the door policy's figures
    /// (`callback::door::Capacity`).
    pub fn pending_split(&self, tenant: &str, split_ms: i64) -> (usize, usize) {
        self.requests
            .values()
            .filter(|r| r.tenant == tenant)
            .fold((0, 0), |(today, later), r| {
                if r.due_ms < split_ms {
                    (today + 1, later)
                } else {
                    (today, later + 1)
                }
            })
    }
}

/// One step of a request, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum CallbackRecord {
    /// Booked.
    Requested(CallbackRequest),
    /// An attempt went unanswered.
    Retry {
        /// Request id.
        id: String,
        /// Attempts so far.
        attempts: u32,
        /// Next attempt not before.
        due_ms: i64,
    },
    /// Finished (connected or given up).
    Finished {
        /// Request id.
        id: String,
        /// How.
        outcome: CallbackOutcome,
        /// Attempts made.
        attempts: u32,
    },
}

impl CallbackRecord {
    /// The request id.
    pub fn id(&self) -> &str {
        match self {
            CallbackRecord::Requested(r) => &r.id,
            CallbackRecord::Retry { id, .. } | CallbackRecord::Finished { id, .. } => id,
        }
    }

    /// The step's name.
    pub fn step(&self) -> &'static str {
        match self {
            CallbackRecord::Requested(_) => "requested",
            CallbackRecord::Retry { .. } => "retry",
            CallbackRecord::Finished { .. } => "finished",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CallbackPolicy {
        CallbackPolicy {
            max_attempts: 3,
            retry_after_ms: 60_000,
        }
    }

    fn req(id: &str, number: &str, arrived_ms: i64) -> CallbackRequest {
        CallbackRequest {
            id: id.into(),
            tenant: "dtm".into(),
            queue: "dtm-uz".into(),
            number: number.into(),
            language: "uz".into(),
            arrived_ms,
            attempts: 0,
            due_ms: 0,
            call: String::new(),
        }
    }

    #[test]
    fn one_pending_callback_per_caller_per_tenant() {
        let mut b = CallbackBook::new(policy(), 10);
        b.request(req("a", "+998900000001", 10)).unwrap();
        assert_eq!(
            b.request(req("b", "+998900000001", 20)),
            Err(CallbackError::AlreadyPending("a".into()))
        );
        let mut other_tenant = req("c", "+998900000001", 20);
        other_tenant.tenant = "support".into();
        b.request(other_tenant).unwrap();
    }

    #[test]
    fn whoever_arrived_first_is_served_first() {
        let mut b = CallbackBook::new(policy(), 10);
        b.request(req("a", "+998900000001", 1_000)).unwrap();
        // A live caller who arrived earlier goes first...
        assert_eq!(b.next_for("dtm-uz", Some(500), 5_000), Some(Next::LiveCall));
        // ...one who arrived later waits for the callback.
        assert_eq!(
            b.next_for("dtm-uz", Some(2_000), 5_000),
            Some(Next::Callback("a".into()))
        );
        assert_eq!(
            b.next_for("dtm-uz", None, 5_000),
            Some(Next::Callback("a".into()))
        );
        assert_eq!(b.next_for("dtm-ru", None, 5_000), None);
    }

    #[test]
    fn callbacks_are_served_in_arrival_order_and_retried_then_given_up() {
        let mut b = CallbackBook::new(policy(), 10);
        b.request(req("late", "+998900000002", 2_000)).unwrap();
        b.request(req("early", "+998900000001", 1_000)).unwrap();
        assert_eq!(
            b.next_for("dtm-uz", None, 0),
            Some(Next::Callback("early".into()))
        );
        b.start_dial("early");
        assert_eq!(
            b.next_for("dtm-uz", None, 0),
            Some(Next::Callback("late".into()))
        );
        assert_eq!(
            b.on_dial_result("early", DialResult::NoAnswer, 10_000),
            Some(CallbackOutcome::Retry { due_ms: 70_000 })
        );
        // Not due yet: the later one goes.
        assert_eq!(
            b.next_for("dtm-uz", None, 69_999),
            Some(Next::Callback("late".into()))
        );
        assert_eq!(
            b.next_for("dtm-uz", Some(1_500), 70_000),
            Some(Next::Callback("early".into()))
        );
        b.on_dial_result("early", DialResult::NoAnswer, 70_000);
        assert_eq!(
            b.on_dial_result("early", DialResult::NoAnswer, 130_000),
            Some(CallbackOutcome::GaveUp)
        );
        assert_eq!(
            b.on_dial_result("late", DialResult::Connected, 130_000),
            Some(CallbackOutcome::Connected)
        );
        assert!(b.is_empty());
    }
}
