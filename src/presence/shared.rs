//! Presence shared by several router nodes through Redis.
//!
//! Keys (all under `navbat:`):
//! * `op:{ext}`, a hash owned by the node where the operator's phone registered: `node`,
//!   `state` (the ACD state there), `contact` (the serialisable binding, JSON), `idle_since_ms`.
//!   It expires after `expiry` unless that node's heartbeat refreshes it, so the operators of a
//!   dead node are released on their own.
//! * `claim:{ext}`, a string `node/holder` set with `SET NX PX` before a node offers a call to
//!   the operator, held while the operator rings, talks and wraps up, released (compare and
//!   delete) afterwards. Only one node can hold it: two nodes never offer the same operator.
//!
//! Every heartbeat this node rewrites all its operators and re-asserts the claims it holds;
//! then it reads every operator's entry and claim into a snapshot ([`SharedPresence::view`]).
//! When Redis is down the writes fail, the snapshot is marked stale, claims answer
//! [`Claim::Unavailable`] and the node keeps routing its own operators on its local view; when
//! Redis returns (even empty, after a restart), the next heartbeat writes everything back.
//!
//! Limit: during a network partition where only some nodes reach Redis, a node that cannot
//! reach it still offers its own operators without a claim; a node that can may claim one of
//! them until its entry expires. With one Redis server that all nodes lose together (the usual
//! failure) this cannot happen.

use crate::binding::StoredBinding;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PREFIX: &str = "navbat:";

/// What this node says about one of its operators.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperatorEntry {
    /// ACD state name (`available`, `on_call`, ...).
    pub state: String,
    /// Where the phone is registered.
    pub contact: Option<StoredBinding>,
    /// Since when the operator is idle (ms since the epoch), for longest-idle across nodes.
    pub idle_since_ms: u64,
}

/// An operator as every node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharedOperator {
    /// The node the phone is registered on.
    pub node: String,
    /// ACD state on that node.
    pub state: String,
    /// Where the phone is registered.
    pub contact: Option<StoredBinding>,
    /// Idle since (ms since the epoch).
    pub idle_since_ms: u64,
    /// Who holds the operator's claim (`node/holder`), if anyone.
    pub claimed_by: Option<String>,
}

impl SharedOperator {
    /// Free for an offer: available where registered and claimed by nobody.
    pub fn is_free(&self) -> bool {
        self.state == "available" && self.claimed_by.is_none()
    }
}

/// The answer to a claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This node holds the operator now.
    Won,
    /// Someone else holds it (`node/holder`).
    Lost(String),
    /// Redis did not answer: only the node's own operators may be offered, on its local view.
    Unavailable,
}

#[derive(Debug, Default)]
struct Local {
    operators: HashMap<String, OperatorEntry>,
    removed: Vec<String>,
    /// Claims this node holds: ext -> holder value.
    held: HashMap<String, String>,
}

#[derive(Debug)]
struct State {
    node: String,
    expiry: Duration,
    local: Mutex<Local>,
    view: Mutex<HashMap<String, SharedOperator>>,
    up: AtomicBool,
    rounds: AtomicU64,
    wake: tokio::sync::Notify,
}

/// One node's handle on the shared presence. Cheap to clone.
#[derive(Clone)]
pub struct SharedPresence {
    state: Arc<State>,
    conn: ConnectionManager,
    handle: tokio::runtime::Handle,
    _runtime: Arc<RuntimeHolder>,
}

struct RuntimeHolder(Mutex<Option<tokio::runtime::Runtime>>);

impl Drop for RuntimeHolder {
    fn drop(&mut self) {
        if let Some(rt) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for SharedPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPresence")
            .field("node", &self.state.node)
            .finish()
    }
}

/// Start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// The URL is not usable.
    #[error("presence.redis_url: {0}; fix: write redis://host:6379")]
    Url(redis::RedisError),
    /// The runtime did not start.
    #[error("cannot start the presence runtime: {0}")]
    Runtime(std::io::Error),
}

const CLAIM_OR_RENEW: &str = r"
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return v";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

impl SharedPresence {
    /// Starts the heartbeat task; does not wait for Redis (it may be down at start).
    /// Call it outside any async runtime.
    pub fn start(
        url: &str,
        node: &str,
        heartbeat: Duration,
        expiry: Duration,
    ) -> Result<SharedPresence, PresenceError> {
        let client = redis::Client::open(url).map_err(PresenceError::Url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("navbat-presence")
            .enable_all()
            .build()
            .map_err(PresenceError::Runtime)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = {
            let _inside = runtime.enter();
            ConnectionManager::new_lazy_with_config(client, config).map_err(PresenceError::Url)?
        };
        let state = Arc::new(State {
            node: node.to_owned(),
            expiry,
            local: Mutex::new(Local::default()),
            view: Mutex::new(HashMap::new()),
            up: AtomicBool::new(false),
            rounds: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
        });
        let task_state = state.clone();
        let task_conn = conn.clone();
        runtime.spawn(async move {
            loop {
                let ok = round(&task_state, &mut task_conn.clone()).await;
                task_state.up.store(ok, Ordering::Relaxed);
                task_state.rounds.fetch_add(1, Ordering::Release);
                tokio::select! {
                    _ = tokio::time::sleep(heartbeat) => {}
                    _ = task_state.wake.notified() => {}
                }
            }
        });
        Ok(SharedPresence {
            state,
            conn,
            handle: runtime.handle().clone(),
            _runtime: Arc::new(RuntimeHolder(Mutex::new(Some(runtime)))),
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.state.node
    }

    /// Whether the last heartbeat reached Redis.
    pub fn is_up(&self) -> bool {
        self.state.up.load(Ordering::Relaxed)
    }

    /// Heartbeat rounds completed (tests wait on it instead of on time).
    pub fn rounds(&self) -> u64 {
        self.state.rounds.load(Ordering::Acquire)
    }

    /// Asks for a heartbeat now (after a local change).
    pub fn poke(&self) {
        self.state.wake.notify_one();
    }

    /// Sets what this node says about one of its operators; written at the next heartbeat.
    pub fn publish(&self, ext: &str, entry: OperatorEntry) {
        let mut local = self.state.local.lock().unwrap_or_else(|e| e.into_inner());
        local.removed.retain(|e| e != ext);
        local.operators.insert(ext.to_owned(), entry);
        drop(local);
        self.poke();
    }

    /// The operator left this node (unregistered or expired).
    pub fn withdraw(&self, ext: &str) {
        let mut local = self.state.local.lock().unwrap_or_else(|e| e.into_inner());
        if local.operators.remove(ext).is_some() {
            local.removed.push(ext.to_owned());
        }
        drop(local);
        self.poke();
    }

    /// Every operator as of the last heartbeat (empty while Redis is down).
    pub fn view(&self) -> HashMap<String, SharedOperator> {
        self.state
            .view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Claims `ext` for `holder` (e.g. a call) until released or `ttl` passes without a
    /// heartbeat; atomic in Redis.
    pub async fn claim(&self, ext: &str, holder: &str, ttl: Duration) -> Claim {
        let value = format!("{}/{holder}", self.state.node);
        let mut conn = self.conn.clone();
        let key = format!("{PREFIX}claim:{ext}");
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(CLAIM_OR_RENEW)
            .arg(1)
            .arg(&key)
            .arg(&value)
            .arg(ttl.as_millis() as u64);
        let fut = async move { cmd.query_async::<redis::Value>(&mut conn).await };
        let answer = match self.handle.spawn(fut).await {
            Ok(Ok(v)) => v,
            _ => return Claim::Unavailable,
        };
        match answer {
            redis::Value::Int(1) => {
                self.state
                    .local
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .held
                    .insert(ext.to_owned(), value);
                Claim::Won
            }
            redis::Value::BulkString(b) => Claim::Lost(String::from_utf8_lossy(&b).into_owned()),
            other => Claim::Lost(format!("{other:?}")),
        }
    }

    /// Releases a claim this node holds for `ext` (no effect on anyone else's).
    pub async fn release(&self, ext: &str) {
        let value = self
            .state
            .local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .held
            .remove(ext);
        let Some(value) = value else { return };
        let mut conn = self.conn.clone();
        let key = format!("{PREFIX}claim:{ext}");
        let fut = async move {
            redis::cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(&key)
                .arg(&value)
                .query_async::<i64>(&mut conn)
                .await
        };
        let _ = self.handle.spawn(fut).await;
        self.poke();
    }
}

/// One heartbeat: write this node's operators and claims, then read everyone's.
async fn round(state: &State, conn: &mut ConnectionManager) -> bool {
    let (operators, removed, held) = {
        let mut local = state.local.lock().unwrap_or_else(|e| e.into_inner());
        (
            local.operators.clone(),
            std::mem::take(&mut local.removed),
            local.held.clone(),
        )
    };
    let expiry_ms = state.expiry.as_millis() as u64;
    let mut pipe = redis::pipe();
    for (ext, entry) in &operators {
        let key = format!("{PREFIX}op:{ext}");
        let contact = entry
            .contact
            .as_ref()
            .and_then(|c| serde_json::to_string(c).ok())
            .unwrap_or_default();
        pipe.cmd("HSET")
            .arg(&key)
            .arg("node")
            .arg(&state.node)
            .arg("state")
            .arg(&entry.state)
            .arg("contact")
            .arg(contact)
            .arg("idle_since_ms")
            .arg(entry.idle_since_ms)
            .ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(expiry_ms).ignore();
    }
    for ext in &removed {
        // Only our own entry: another node may own it by now.
        pipe.cmd("EVAL")
            .arg("if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
            .arg(1)
            .arg(format!("{PREFIX}op:{ext}"))
            .arg(&state.node)
            .ignore();
    }
    for (ext, value) in &held {
        pipe.cmd("EVAL")
            .arg(CLAIM_OR_RENEW)
            .arg(1)
            .arg(format!("{PREFIX}claim:{ext}"))
            .arg(value)
            .arg(expiry_ms)
            .ignore();
    }
    if !operators.is_empty() || !removed.is_empty() || !held.is_empty() {
        if let Err(e) = pipe.query_async::<()>(conn).await {
            tracing::debug!(error = %e, "presence heartbeat: Redis unreachable");
            let mut local = state.local.lock().unwrap_or_else(|e| e.into_inner());
            local.removed.extend(removed);
            drop(local);
            // A stale view would show other nodes' operators as free: drop it.
            state.view.lock().unwrap_or_else(|e| e.into_inner()).clear();
            return false;
        }
    }
    match read_all(conn).await {
        Ok(view) => {
            *state.view.lock().unwrap_or_else(|e| e.into_inner()) = view;
            true
        }
        Err(e) => {
            tracing::debug!(error = %e, "presence read: Redis unreachable");
            state.view.lock().unwrap_or_else(|e| e.into_inner()).clear();
            false
        }
    }
}

async fn read_all(
    conn: &mut ConnectionManager,
) -> Result<HashMap<String, SharedOperator>, redis::RedisError> {
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{PREFIX}op:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let mut view = HashMap::new();
    if keys.is_empty() {
        return Ok(view);
    }
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("HGETALL").arg(key);
        let ext = &key[PREFIX.len() + 3..];
        pipe.cmd("GET").arg(format!("{PREFIX}claim:{ext}"));
    }
    let answers: Vec<redis::Value> = pipe.query_async(conn).await?;
    for (key, pair) in keys.iter().zip(answers.chunks(2)) {
        let ext = key[PREFIX.len() + 3..].to_owned();
        let fields: HashMap<String, String> =
            redis::from_redis_value(pair[0].clone()).unwrap_or_default();
        let Some(node) = fields.get("node").cloned() else {
            continue;
        };
        let claimed_by: Option<String> = redis::from_redis_value(pair[1].clone()).unwrap_or(None);
        view.insert(
            ext,
            SharedOperator {
                node,
                state: fields.get("state").cloned().unwrap_or_default(),
                contact: fields
                    .get("contact")
                    .and_then(|c| serde_json::from_str(c).ok()),
                idle_since_ms: fields
                    .get("idle_since_ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                claimed_by,
            },
        );
    }
    Ok(view)
}
