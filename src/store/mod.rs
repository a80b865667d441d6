//! The store: every event kept (C2), call records for the monthly statistics (D20).
//!
//! ```text
//! EventBus --emit--> [bounded buffer] --> journal writer thread --fsync--> data/journal/*.jnl
//!                                                                               |
//!                               SQLite | Postgres <-- batches, idempotent -- DB writer task
//! ```
//!
//! * `emit` adds the caller's full number and the repeat-call link to the event and hands it
//!   to a bounded buffer (`database.buffer_events`, default 262,144 events, minutes of the
//!   peak rate) without waiting. If the buffer is full, which only happens when the journal
//!   disk stops keeping up, `emit` waits for room (back-pressure, counted in
//!   `navbat_journal_waits_total`, an error logged): an event shed there would be a call
//!   record lost (C2), so the router slows to the journal's pace instead. The wait cannot
//!   deadlock: the journal writer is a thread of its own that needs nothing from the
//!   emitters. Only a writer that has stopped loses events (`navbat_journal_shed_events_total`).
//!   SMS and callback steps ([`Store::record`]) are not waited for: a full buffer refuses
//!   them and the caller reports the refusal.
//! * The journal writer appends JSON lines and fsyncs after each batch (see [`journal`]).
//! * The database writer reads the durable journal in batches, folds them into rows
//!   ([`record`]) and writes each batch in one transaction with `ON CONFLICT` upserts keyed by
//!   `node:boot:seq` (events) and `node:boot:call` (call records), so a replay inserts
//!   nothing twice. Only after the commit does the journal cursor move. While the database is
//!   down it retries with backoff; calls go on and the journal grows.
//! * At start-up the journal is replayed from the cursor: everything fsynced before a
//!   `kill -9` reaches the database.
//! * The SMS outbox and the callback book ride the same path as records of their own
//!   ([`Store::record`], folded into `sms_messages` and `callback_requests`); their pending
//!   work comes back at start-up from the database and the undrained journal ([`outbox`]).
//!
//! The full caller number is stored (journal and `call_records.caller_number`) because the
//! work needs it (repeat calls, callbacks); the timeline's JSON and every view keep it masked.

pub mod db;
pub mod journal;
pub mod notices;
pub mod outbox;
pub mod qa;
// The people's records sit with the accounts (see there); the store folds and writes them.
pub use crate::accounts::people;
pub mod record;
pub mod repeat;
pub mod requests;
pub mod seal;
pub mod sealing;

use crate::config::{Config, DatabaseUrl};
use crate::events::{Event, EventKind, EventSink};
use crate::pii::{field, Pii};
use crate::privacy::PhoneNumber;
use db::{CallSummary, Db};
use journal::{Durable, Reader};
use record::{call_uid, JournalEntry, RepeatLink};
use repeat::RepeatIndex;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// What can go wrong in the store; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A journal file operation failed.
    #[error("journal: cannot {action} {path}: {source}; fix: check that the directory exists, is writable and the disk is not full (database.journal_dir)")]
    Journal {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process holds the journal directory.
    #[error("journal: {dir} is in use by another navbat process; fix: give each process its own database.journal_dir")]
    JournalInUse {
        /// The directory.
        dir: PathBuf,
    },
    /// The database refused or could not be reached.
    #[error("database {url}: {source}; fix: check that the server runs and database.url (or DATABASE_URL) is right")]
    Database {
        /// The URL, password hidden.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A migration failed.
    #[error("migration {version} ({name}) failed: {source}; fix: read the error, repair the schema by hand or restore the database, then run `navbat migrate`")]
    Migration {
        /// Its number.
        version: i64,
        /// Its name.
        name: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The store's runtime could not start.
    #[error("cannot start the store's runtime: {0}")]
    Runtime(std::io::Error),
    /// The store's task ended.
    #[error("the store is shut down")]
    Closed,
    /// Callers' personal data cannot be sealed or opened: the key file does not fit the
    /// database, or a row is damaged or still plain (see [`crate::pii`]).
    #[error(transparent)]
    Pii(#[from] crate::pii::PiiError),
}

impl StoreError {
    pub(crate) fn journal(path: &Path, action: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Journal {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Everything the store needs, taken from the configuration once.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The database.
    pub url: DatabaseUrl,
    /// Journal directory.
    pub journal_dir: PathBuf,
    /// Buffer in front of the journal, in events.
    pub buffer_events: usize,
    /// Events per fsync at most.
    pub journal_batch_events: usize,
    /// Events per database transaction at most.
    pub db_batch_events: usize,
    /// Journal segment size.
    pub journal_segment_bytes: u64,
    /// This node's name.
    pub node: String,
    /// Repeat-call window.
    pub repeat_window: Duration,
    /// Each tenant's time zone (report months are local months).
    pub time_zones: HashMap<String, jiff::tz::TimeZone>,
    /// The keys that seal callers' personal data ([`crate::pii`]).
    pub pii: Arc<Pii>,
}

impl StoreSettings {
    /// Settings from a validated configuration, the resolved database URL and the personal
    /// data keys (from `[recordings] key_file`).
    pub fn from_config(config: &Config, url: DatabaseUrl, pii: Arc<Pii>) -> StoreSettings {
        StoreSettings {
            url,
            journal_dir: config.database.journal_dir.clone(),
            buffer_events: config.database.buffer_events,
            journal_batch_events: config.database.journal_batch_events,
            db_batch_events: config.database.db_batch_events,
            journal_segment_bytes: config.database.journal_segment_bytes,
            node: config.node.id.clone(),
            repeat_window: config.history.repeat_window,
            time_zones: config
                .tenants
                .iter()
                .map(|t| (t.id.clone(), t.timezone.clone()))
                .collect(),
            pii,
        }
    }
}

/// What goes through the buffer: serialised by the journal writer into a [`JournalEntry`]
/// line (the same field names).
#[derive(Serialize)]
struct Pending {
    uid: String,
    node: String,
    boot: String,
    seq: u64,
    at_ms: u64,
    /// `null` on a record line (the journal reader requires the field).
    event: Option<Event>,
    /// Sealed ([`crate::pii`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller_lookup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat: Option<RepeatLink>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    surge: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<outbox::StoreRecord>,
    /// Told once the line is fsynced.
    #[serde(skip)]
    ack: Option<journal::Ack>,
}

impl journal::Line for Pending {
    fn take_ack(&mut self) -> Option<journal::Ack> {
        self.ack.take()
    }
}

/// The journal's buffer is full: the record was not taken (see [`Store::record`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the journal buffer is full (database.buffer_events); fix: the journal disk is not keeping up or failing")]
pub struct BufferFull;

/// Progress of the database writer.
#[derive(Debug, Default)]
struct Progress {
    /// Entries of this boot committed to the database.
    drained: AtomicU64,
    /// Entries of earlier boots (journal replay) committed.
    replayed: AtomicU64,
    /// `at_ms` of the oldest entry being written (0: nothing waiting).
    head_at_ms: AtomicU64,
    db_up: AtomicBool,
    db_failures: AtomicU64,
}

/// Figures for `/metrics` and the status API.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreHealth {
    /// `"sqlite"` or `"postgres"`.
    pub backend: &'static str,
    /// Events accepted by `emit` and not yet in the database.
    pub depth_events: u64,
    /// Age of the oldest event not yet in the database, in seconds (0 when caught up).
    pub lag_seconds: f64,
    /// Events or steps not kept: the journal writer had stopped, or (steps only) the
    /// buffer was full.
    pub shed_events: u64,
    /// Times an event waited for room in the full buffer (back-pressure; nothing lost).
    pub waited_events: u64,
    /// Whether the last database write or check succeeded.
    pub db_up: bool,
    /// Events accepted since start.
    pub accepted_events: u64,
    /// Events fsynced to the journal since start.
    pub journaled_events: u64,
    /// Events of this process in the database.
    pub drained_events: u64,
    /// Events of earlier runs replayed from the journal into the database.
    pub replayed_events: u64,
    /// Failed database writes (each retried).
    pub db_failures: u64,
    /// Calls the repeat-call index holds in memory.
    pub repeat_calls: u64,
}

/// A caller's earlier calls, for the operator's view and the reports (numbers masked).
#[derive(Clone, Debug, Serialize)]
pub struct CallHistory {
    /// The call asked about.
    pub call: String,
    /// Its caller, masked.
    pub caller: PhoneNumber,
    /// The window looked at, in days.
    pub window_days: u64,
    /// The caller's earlier calls in the window, newest first.
    pub earlier: Vec<HistoryItem>,
}

/// One earlier call.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryItem {
    /// The store's name of the call.
    pub call: String,
    /// Tenant.
    pub tenant: Option<String>,
    /// Arrival, ms since the epoch.
    pub arrived_at_ms: Option<i64>,
    /// How it ended.
    pub outcome: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Operator.
    pub operator: Option<String>,
    /// Talk time.
    pub talk_ms: Option<i64>,
    /// Recording file, if any.
    pub recording: Option<String>,
}

impl From<CallSummary> for HistoryItem {
    fn from(s: CallSummary) -> HistoryItem {
        HistoryItem {
            call: s.call_uid,
            tenant: s.tenant,
            arrived_at_ms: s.arrived_at_ms,
            outcome: s.outcome,
            topic: s.topic,
            operator: s.operator,
            talk_ms: s.talk_ms,
            recording: s.recording_ref,
        }
    }
}

struct Inner {
    node: String,
    boot: String,
    /// Boxed: a bounded std channel allocates and touches every slot up front, so
    /// `buffer_events` (262,144 by default) slots of a whole `Pending` cost about 190 MB of
    /// resident memory at start; boxed, a slot is a pointer (4 MB).
    tx: mpsc::SyncSender<Box<Pending>>,
    accepted: AtomicU64,
    shed: AtomicU64,
    /// Events that found the buffer full and waited for room.
    waited: AtomicU64,
    durable: Arc<Durable>,
    progress: Arc<Progress>,
    repeat: Arc<Mutex<RepeatIndex>>,
    surge: Mutex<HashMap<String, bool>>,
    /// Seals callers' numbers and makes their lookup hashes.
    pii: Arc<Pii>,
    /// Records handed to the journal (their uids: `node:boot:r<n>`).
    records: AtomicU64,
    recovery: Arc<outbox::Recovery>,
    /// Request steps the journal had not yet given the database at start-up.
    undrained_requests: Mutex<Vec<crate::request_model::RequestStep>>,
    /// Notice steps the journal had not yet given the database at start-up.
    undrained_notices: Mutex<Vec<crate::notices::NoticeStep>>,
    window: Duration,
    db: Db,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    _lock: journal::DirLock,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            rt.shutdown_background();
        }
    }
}

/// The store: an [`EventSink`] plus the queries the API needs. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("node", &self.inner.node)
            .field("boot", &self.inner.boot)
            .field("db", self.inner.db.url())
            .finish()
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(200);
/// How long the database writer lets events gather before a transaction that would not be
/// full (see `Drainer::run`).
const COALESCE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Store {
    /// Opens the journal (replaying what an earlier run left), starts the writers and, if the
    /// database answers within a few seconds, migrates it and loads the repeat-call index.
    /// A database that is down is not an error: it is retried in the background.
    ///
    /// Call it outside any async runtime (it runs its own).
    pub fn open(settings: StoreSettings) -> Result<Store, StoreError> {
        let lock = journal::lock_dir(&settings.journal_dir)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("navbat-store")
            .enable_all()
            .build()
            .map_err(StoreError::Runtime)?;
        let handle = runtime.handle().clone();
        // The pool's maintenance tasks live on the store's runtime.
        let db = {
            let _inside = runtime.enter();
            Db::connect_lazy(&settings.url)?.with_pii(settings.pii.clone())
        };
        let (tx, rx) = mpsc::sync_channel::<Box<Pending>>(settings.buffer_events);
        let cursor = journal::load_cursor(&settings.journal_dir);
        // Outbox and callback steps of earlier runs that the database may not have yet.
        let mut undrained = outbox::undrained_records(&settings.journal_dir, cursor)?;
        // Back into memory plain (an older navbat's plain records are taken as they are).
        for record in &mut undrained {
            seal::seal_record(record, &settings.pii);
            seal::open_record(record, &settings.pii)?;
        }
        let durable = journal::start_writer(
            &settings.journal_dir,
            rx,
            settings.journal_batch_events,
            settings.journal_segment_bytes,
        )?;
        let boot = format!("{:016x}", rand::random::<u64>());
        let window_ms = settings.repeat_window.as_millis() as u64;
        let repeat = Arc::new(Mutex::new(RepeatIndex::new(window_ms)));
        let progress = Arc::new(Progress::default());

        // Ready the database now if it answers, so the first calls already see repeats.
        let ready = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), async {
                prepare(&db, &settings, &repeat).await?;
                db.pending_work(&settings.node).await
            })
            .await
        });
        let recovery = Arc::new(outbox::Recovery::default());
        let prepared = match ready {
            Ok(Ok(work)) => {
                progress.db_up.store(true, Ordering::Relaxed);
                recovery.add(outbox::merge(work, &undrained), true);
                true
            }
            // The key file does not fit the database: no start, never a plain-text fallback.
            Ok(Err(StoreError::Pii(e))) => return Err(StoreError::Pii(e)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "database not ready at start-up; journaling and retrying");
                false
            }
            Err(_) => {
                tracing::warn!(db = %settings.url, "database did not answer in 5 s; journaling and retrying");
                false
            }
        };
        if !prepared {
            // The journal's part now; the database's once it answers (see `Drainer::run`).
            recovery.add(outbox::recover(&undrained), false);
        }
        let drainer = Drainer {
            db: db.clone(),
            dir: settings.journal_dir.clone(),
            reader: Arc::new(Mutex::new(Reader::new(&settings.journal_dir, cursor))),
            durable: durable.clone(),
            progress: progress.clone(),
            repeat: repeat.clone(),
            boot: boot.clone(),
            batch: settings.db_batch_events.max(1),
            time_zones: Arc::new(settings.time_zones.clone()),
            pii: settings.pii.clone(),
            node: settings.node.clone(),
            url: settings.url.clone(),
            prepared,
            recovery: recovery.clone(),
            window_ms,
        };
        runtime.spawn(drainer.run());
        tracing::info!(
            db = %settings.url,
            journal = %settings.journal_dir.display(),
            node = %settings.node,
            boot = %boot,
            "store open"
        );
        Ok(Store {
            inner: Arc::new(Inner {
                node: settings.node,
                boot,
                tx,
                accepted: AtomicU64::new(0),
                shed: AtomicU64::new(0),
                waited: AtomicU64::new(0),
                durable,
                progress,
                repeat,
                surge: Mutex::new(HashMap::new()),
                pii: settings.pii.clone(),
                records: AtomicU64::new(0),
                recovery,
                undrained_requests: Mutex::new(
                    undrained
                        .iter()
                        .filter_map(|r| match r {
                            outbox::StoreRecord::Request(step) => Some((**step).clone()),
                            _ => None,
                        })
                        .collect(),
                ),
                undrained_notices: Mutex::new(
                    undrained
                        .iter()
                        .filter_map(|r| match r {
                            outbox::StoreRecord::Notice(step) => Some((**step).clone()),
                            _ => None,
                        })
                        .collect(),
                ),
                window: settings.repeat_window,
                db,
                runtime: Mutex::new(Some(runtime)),
                handle,
                _lock: lock,
            }),
        })
    }

    /// This process's boot id (part of every event's and call's store name).
    pub fn boot(&self) -> &str {
        &self.inner.boot
    }

    /// The store name of a call of this process (`node:boot:c17`).
    pub fn call_uid(&self, call: &str) -> String {
        call_uid(&self.inner.node, &self.inner.boot, call)
    }

    /// The store name of a call given as this process's name (`c17`) or already as a store
    /// name (`node:boot:c17`).
    pub fn store_name(&self, call: &str) -> String {
        if call.contains(':') {
            call.to_owned()
        } else {
            self.call_uid(call)
        }
    }

    /// The keys that seal callers' personal data ([`crate::pii`]).
    pub fn pii(&self) -> &Arc<Pii> {
        &self.inner.pii
    }

    /// The database handle (reports, tests).
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Runs `fut` on the store's runtime (where its connections live) and awaits it from
    /// any runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner
            .handle
            .spawn(fut)
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Hands a step of the SMS outbox or the callback book to the journal, without waiting.
    /// The receiver resolves once the step is fsynced (an error only if the store shut
    /// down first). `Err` when the journal's buffer is full: the step is not kept (counted
    /// as shed, like an event).
    pub fn record(
        &self,
        mut record: outbox::StoreRecord,
    ) -> Result<tokio::sync::oneshot::Receiver<()>, BufferFull> {
        let inner = &self.inner;
        // Callers' details are sealed before they reach the journal (D18); a number is
        // found again by its lookup hash.
        let caller_lookup = seal::record_number(&record).map(|(n, _)| inner.pii.lookup(n));
        seal::seal_record(&mut record, &inner.pii);
        let n = inner.records.fetch_add(1, Ordering::Relaxed) + 1;
        let (ack, done) = tokio::sync::oneshot::channel();
        let pending = Pending {
            uid: format!("{}:{}:r{n}", inner.node, inner.boot),
            node: inner.node.clone(),
            boot: inner.boot.clone(),
            seq: 0,
            at_ms: db::now_ms().max(0) as u64,
            event: None,
            caller: None,
            caller_lookup,
            repeat: None,
            surge: false,
            record: Some(record),
            ack: Some(ack),
        };
        if inner.push(pending) {
            Ok(done)
        } else {
            tracing::error!("journal buffer full: an SMS or callback step was not kept");
            Err(BufferFull)
        }
    }

    /// Unsent SMS of earlier runs recovered since the last call (see [`outbox::Recovery`]).
    pub fn take_recovered_sms(&self) -> outbox::Recovered<(crate::sms::Message, u32)> {
        self.inner.recovery.take_sms()
    }

    /// Pending callbacks of earlier runs recovered since the last call.
    pub fn take_recovered_callbacks(&self) -> outbox::Recovered<crate::callback::CallbackRequest> {
        self.inner.recovery.take_callbacks()
    }

    /// Request steps of earlier runs that the database may not have (once; see
    /// [`crate::request_model::Book::restore`]).
    pub fn take_undrained_requests(&self) -> Vec<crate::request_model::RequestStep> {
        std::mem::take(
            &mut *self
                .inner
                .undrained_requests
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// Notice steps of earlier runs that the database may not have (once).
    pub fn take_undrained_notices(&self) -> Vec<crate::notices::NoticeStep> {
        std::mem::take(
            &mut *self
                .inner
                .undrained_notices
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// How many entries this process has handed to the journal so far: a mark for
    /// [`Store::caught_up`].
    pub fn mark(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// Waits, up to `deadline`, until the database holds every entry handed over up to
    /// `mark` (entries drain in order). `false` when the database is behind or down: the
    /// entries are safe in the journal, only a page read now would not show them yet.
    pub async fn caught_up(&self, mark: u64, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        loop {
            if self.inner.progress.drained.load(Ordering::Relaxed) >= mark {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Current figures.
    pub fn health(&self) -> StoreHealth {
        let inner = &self.inner;
        let accepted = inner.accepted.load(Ordering::Relaxed);
        let drained = inner.progress.drained.load(Ordering::Relaxed);
        let depth = accepted.saturating_sub(drained);
        let head = inner.progress.head_at_ms.load(Ordering::Relaxed);
        let lag = if depth > 0 && head > 0 {
            (db::now_ms() as u64).saturating_sub(head) as f64 / 1000.0
        } else {
            0.0
        };
        StoreHealth {
            backend: inner.db.url().backend(),
            depth_events: depth,
            lag_seconds: lag,
            shed_events: inner.shed.load(Ordering::Relaxed),
            waited_events: inner.waited.load(Ordering::Relaxed),
            db_up: inner.progress.db_up.load(Ordering::Relaxed),
            accepted_events: accepted,
            journaled_events: inner.durable.events.load(Ordering::Relaxed),
            drained_events: drained,
            replayed_events: inner.progress.replayed.load(Ordering::Relaxed),
            db_failures: inner.progress.db_failures.load(Ordering::Relaxed),
            repeat_calls: inner.repeat.lock().unwrap_or_else(|e| e.into_inner()).len() as u64,
        }
    }

    /// Waits (polling, up to `deadline`) until every accepted event is fsynced and, if the
    /// database is reachable, written to it. Returns whether the database caught up; what it
    /// did not take stays in the journal for the next start.
    pub fn flush(&self, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        loop {
            let h = self.health();
            if h.depth_events == 0 {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The caller's earlier calls within the repeat window before `call` (a call of this
    /// process such as `c17`, or a store name `node:boot:c17`).
    pub async fn history(&self, call: &str) -> Result<Option<CallHistory>, StoreError> {
        let uid = self.store_name(call);
        let known = self
            .inner
            .repeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .caller_of(&uid);
        let db = self.inner.db.clone();
        let window_ms = self.inner.window.as_millis() as i64;
        let lookup_uid = uid.clone();
        let pii = self.inner.pii.clone();
        let found = self
            .run(async move {
                // The number to show comes from the call's row (opened); the lookup hash
                // finds the earlier calls. A call not yet in the database shows the earlier
                // calls the index knows of, with its number as the earlier rows have it.
                let row = db.call(&lookup_uid).await?;
                let (lookup, at, caller) = match (known, row) {
                    (
                        _,
                        Some(CallSummary {
                            caller_number: Some(caller),
                            arrived_at_ms: Some(at),
                            ..
                        }),
                    ) => (pii.lookup(&caller), at, Some(caller)),
                    (Some((lookup, at)), _) => (lookup, at as i64, None),
                    _ => return Ok(None),
                };
                // Up to and including its own millisecond (as the repeat index links them);
                // the call itself is left out below.
                let earlier = db.calls_from(&lookup, at - window_ms, at + 1).await?;
                let caller = caller
                    .or_else(|| earlier.iter().find_map(|s| s.caller_number.clone()))
                    .unwrap_or_default();
                Ok::<_, StoreError>(Some((caller, earlier)))
            })
            .await??;
        Ok(found.map(|(caller, earlier)| CallHistory {
            call: uid.clone(),
            caller: PhoneNumber::new(caller),
            window_days: self.inner.window.as_secs() / 86_400,
            earlier: earlier
                .into_iter()
                .filter(|s| s.call_uid != uid)
                .map(HistoryItem::from)
                .collect(),
        }))
    }
}

impl EventSink for Store {
    fn emit(&self, event: &Event) {
        let inner = &self.inner;
        let mut caller = None;
        let mut caller_lookup = None;
        let mut repeat = None;
        let mut surge = false;
        match &event.kind {
            EventKind::CallArrived {
                call,
                tenant,
                caller: number,
                ..
            } => {
                let uid = call_uid(&inner.node, &inner.boot, call);
                // The index, the journal and the database know the caller by the lookup hash;
                // the number itself only sealed (D18).
                let lookup = inner.pii.lookup(number.expose());
                repeat = inner
                    .repeat
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .arrive(&lookup, &uid, event.at_ms);
                surge = inner
                    .surge
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(tenant)
                    .copied()
                    .unwrap_or(false);
                caller = Some(inner.pii.seal(field::CALLER_NUMBER, number.expose()));
                caller_lookup = Some(lookup);
            }
            EventKind::SurgeChanged { tenant, on, .. } => {
                inner
                    .surge
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(tenant.clone(), *on);
            }
            _ => {}
        }
        let pending = Pending {
            uid: format!("{}:{}:{}", inner.node, inner.boot, event.seq),
            node: inner.node.clone(),
            boot: inner.boot.clone(),
            seq: event.seq,
            at_ms: event.at_ms,
            event: Some(event.clone()),
            caller,
            caller_lookup,
            repeat,
            surge,
            record: None,
            ack: None,
        };
        inner.push_waiting(pending);
    }
}

impl Inner {
    /// Hands an event's line to the journal's buffer, waiting for room when it is full (see
    /// the module's doc: back-pressure, never a dropped event). The bus holds its order lock
    /// meanwhile, so the journal keeps the events in sequence order.
    fn push_waiting(&self, pending: Pending) {
        let pending = match self.tx.try_send(Box::new(pending)) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(mpsc::TrySendError::Full(pending)) => pending,
            Err(mpsc::TrySendError::Disconnected(_)) => return self.lost(),
        };
        let n = self.waited.fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() {
            tracing::error!(
                waited = n + 1,
                "event buffer full: the router is waiting for the journal; fix: the journal \
                 disk is not keeping up or failing; free it, or raise database.buffer_events"
            );
        }
        match self.tx.send(pending) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => self.lost(),
        }
    }

    /// Counts an event the stopped journal writer could not take.
    fn lost(&self) {
        let n = self.shed.fetch_add(1, Ordering::Relaxed);
        if n.is_power_of_two() {
            tracing::error!(
                shed = n + 1,
                "journal writer stopped: events are being LOST (C2); fix: see the journal \
                 writer's error above and restart"
            );
        }
    }

    /// Hands a line to the journal's buffer without waiting; `false` (counted as shed, and
    /// reported at powers of two) when the buffer is full.
    fn push(&self, pending: Pending) -> bool {
        match self.tx.try_send(Box::new(pending)) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                let n = self.shed.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::error!(
                        shed = n + 1,
                        "event buffer full: events are being LOST (C2); fix: the journal disk \
                         is not keeping up or failing; free it, or raise database.buffer_events"
                    );
                }
                false
            }
        }
    }
}

/// Migrates, closes calls a crashed earlier run left open, and loads the repeat index.
async fn prepare(
    db: &Db,
    settings: &StoreSettings,
    repeat: &Mutex<RepeatIndex>,
) -> Result<(), StoreError> {
    let ran = db.migrate().await?;
    if ran > 0 {
        tracing::info!(migrations = ran, db = %settings.url, "database migrated");
    }
    let sealed = sealing::ready(db, &settings.pii).await?;
    if sealed.total() > 0 {
        tracing::info!(?sealed, "plain personal data of an older navbat sealed");
    }
    let since = db::now_ms() - settings.repeat_window.as_millis() as i64;
    let recent = db.recent_callers(since).await?;
    let mut index = repeat.lock().unwrap_or_else(|e| e.into_inner());
    for (uid, caller, at) in recent {
        index.arrive(&caller, &uid, at.max(0) as u64);
    }
    drop(index);
    Ok(())
}

/// The database writer task.
struct Drainer {
    db: Db,
    dir: PathBuf,
    /// Shared with the blocking thread that reads and folds the next batch.
    reader: Arc<Mutex<Reader>>,
    durable: Arc<Durable>,
    progress: Arc<Progress>,
    repeat: Arc<Mutex<RepeatIndex>>,
    boot: String,
    node: String,
    batch: usize,
    time_zones: Arc<HashMap<String, jiff::tz::TimeZone>>,
    pii: Arc<Pii>,
    url: DatabaseUrl,
    prepared: bool,
    /// Where the database's pending outbox and callback work goes once it is read.
    recovery: Arc<outbox::Recovery>,
    window_ms: u64,
}

/// A batch read from the journal and folded into rows, ready for one transaction.
struct Batch {
    rows: record::Rows,
    /// The journal position just after its last entry (the cursor once it is written).
    last: journal::Position,
    /// `at_ms` of its first entry (for the lag figure).
    head_at_ms: u64,
    /// Entries of this boot.
    ours: u64,
    /// Entries of earlier boots (replay).
    older: u64,
    /// `(call_uid, caller, at_ms)` of the replayed arrivals, for the repeat index.
    older_arrivals: Vec<(String, String, u64)>,
}

/// The report month of `at_ms` in the tenant's time zone.
fn month_of(time_zones: &HashMap<String, jiff::tz::TimeZone>, tenant: &str, at_ms: i64) -> String {
    let tz = time_zones
        .get(tenant)
        .cloned()
        .unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::from_millisecond(at_ms)
        .map(|t| tz.to_datetime(t).strftime("%Y-%m").to_string())
        .unwrap_or_default()
}

/// Reads up to `max` entries before `end` and folds them, on a blocking thread (file reads
/// and JSON decoding), so that it can run while the previous batch is being written.
/// `Ok(None)`: nothing new. On a read error the reader is back where it started.
async fn read_batch(
    reader: Arc<Mutex<Reader>>,
    max: usize,
    end: journal::Position,
    boot: String,
    time_zones: Arc<HashMap<String, jiff::tz::TimeZone>>,
    pii: Arc<Pii>,
) -> Result<Option<Batch>, StoreError> {
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = reader.lock().unwrap_or_else(|e| e.into_inner());
        let start = reader.position();
        let entries = match reader.read(max, end) {
            Ok(entries) => entries,
            Err(e) => {
                reader.rewind(start);
                return Err(e);
            }
        };
        drop(reader);
        let Some(&(_, last)) = entries.last() else {
            return Ok(None);
        };
        let mut entries: Vec<JournalEntry> = entries.into_iter().map(|(e, _)| e).collect();
        // Entries of an older navbat carry the number plain: sealed before they are folded.
        for entry in &mut entries {
            record::seal_entry(entry, &pii);
            seal::seal_entry_record(entry, &pii);
        }
        let rows = record::fold(&entries, &|t, at| month_of(&time_zones, t, at));
        let ours = entries.iter().filter(|e| e.boot == boot).count() as u64;
        let older_arrivals = entries
            .iter()
            .filter(|e| e.boot != boot)
            .filter_map(|e| match (e.call_uid(), &e.caller_lookup) {
                (Some(uid), Some(lookup)) => Some((uid, lookup.clone(), e.at_ms)),
                _ => None,
            })
            .collect();
        Ok(Some(Batch {
            rows,
            last,
            head_at_ms: entries[0].at_ms,
            ours,
            older: entries.len() as u64 - ours,
            older_arrivals,
        }))
    });
    match task.await {
        Ok(result) => result,
        // The reader thread panicked: report it as a read failure (the batch is read again).
        Err(e) => Err(StoreError::journal(
            Path::new("journal"),
            "read",
            std::io::Error::other(e.to_string()),
        )),
    }
}

impl Drainer {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut closed_interrupted = false;
        let mut idle_checks = 0u32;
        // The next batch, read and folded while the current one was being written.
        let mut next: Option<Batch> = None;
        // Segments before this one are already deleted.
        let mut dropped_before = 0u64;
        loop {
            if !self.prepared {
                let settings_window = Duration::from_millis(self.window_ms);
                let ready = match self.db.migrate().await {
                    Ok(_) => sealing::ready(&self.db, &self.pii).await,
                    Err(e) => Err(e),
                };
                match ready {
                    Ok(_) => {
                        self.prepared = true;
                        self.progress.db_up.store(true, Ordering::Relaxed);
                        let since = db::now_ms() - settings_window.as_millis() as i64;
                        if let Ok(recent) = self.db.recent_callers(since).await {
                            let mut index = self.repeat.lock().unwrap_or_else(|e| e.into_inner());
                            for (uid, caller, at) in recent {
                                index.arrive(&caller, &uid, at.max(0) as u64);
                            }
                        }
                        backoff = BACKOFF_MIN;
                    }
                    Err(e) => {
                        self.down(&e, &mut backoff).await;
                        continue;
                    }
                }
            }
            let batch = match next.take() {
                Some(batch) => batch,
                None => match self.read(self.durable.end()).await {
                    Ok(Some(batch)) => batch,
                    Ok(None) => {
                        if !self.recovery.complete() {
                            // The journal is replayed: the database holds every step of the
                            // earlier runs, so its pending work is complete.
                            match self.db.pending_work(&self.node).await {
                                Ok(work) => self.recovery.add(work, true),
                                Err(e) => {
                                    self.down(&e, &mut backoff).await;
                                    continue;
                                }
                            }
                        }
                        if !closed_interrupted {
                            // Only after the replay: an earlier run's calls may still end in it.
                            match self.db.close_interrupted(&self.node, &self.boot).await {
                                Ok(n) => {
                                    closed_interrupted = true;
                                    if n > 0 {
                                        tracing::warn!(
                                            calls = n,
                                            "calls left open by an earlier run closed as failed"
                                        );
                                    }
                                }
                                Err(e) => {
                                    self.down(&e, &mut backoff).await;
                                    continue;
                                }
                            }
                        }
                        tokio::select! {
                            _ = self.durable.notify.notified() => {}
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                                idle_checks += 1;
                                if idle_checks.is_multiple_of(5) {
                                    let up = self.db.ping().await;
                                    self.progress.db_up.store(up, Ordering::Relaxed);
                                }
                            }
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the journal; retrying");
                        tokio::time::sleep(BACKOFF_MAX).await;
                        continue;
                    }
                },
            };
            self.progress
                .head_at_ms
                .store(batch.head_at_ms.max(1), Ordering::Relaxed);
            // Write this batch while the next one is read and folded. A batch that did not
            // fill up means the journal is keeping pace: the next read waits COALESCE first,
            // so each transaction carries at least that much of the event stream (SQLite
            // writes every touched index page to its WAL once per commit, so many small
            // commits cost far more than a few large ones; the events are already durable
            // in the journal meanwhile).
            let full = batch.ours + batch.older >= self.batch as u64;
            let (_, read) = tokio::join!(self.write_until_done(&batch.rows, &mut backoff), async {
                if !full {
                    tokio::time::sleep(COALESCE).await;
                }
                self.read(self.durable.end()).await
            });
            next = match read {
                Ok(batch) => batch,
                Err(e) => {
                    // Read again (and report again) on the next turn, after a pause.
                    tracing::error!(error = %e, "cannot read the journal; retrying");
                    None
                }
            };
            backoff = BACKOFF_MIN;
            self.progress.db_up.store(true, Ordering::Relaxed);
            if let Err(e) = journal::save_cursor(&self.dir, batch.last) {
                // The rows are in; a stale cursor only means a harmless replay.
                tracing::error!(error = %e, "cannot save the journal cursor");
            } else if batch.last.segment > dropped_before {
                match journal::drop_segments_before(&self.dir, batch.last.segment) {
                    Ok(()) => dropped_before = batch.last.segment,
                    Err(e) => tracing::error!(error = %e, "cannot delete drained journal segments"),
                }
            }
            if !batch.older_arrivals.is_empty() {
                let mut index = self.repeat.lock().unwrap_or_else(|e| e.into_inner());
                for (uid, caller, at) in &batch.older_arrivals {
                    index.arrive(caller, uid, *at);
                }
            }
            self.progress
                .replayed
                .fetch_add(batch.older, Ordering::Relaxed);
            self.progress
                .drained
                .fetch_add(batch.ours, Ordering::Relaxed);
            self.progress.head_at_ms.store(
                next.as_ref().map(|b| b.head_at_ms.max(1)).unwrap_or(0),
                Ordering::Relaxed,
            );
        }
    }

    /// The next batch after the reader's position, up to `end`.
    fn read(
        &self,
        end: journal::Position,
    ) -> impl std::future::Future<Output = Result<Option<Batch>, StoreError>> + 'static {
        read_batch(
            self.reader.clone(),
            self.batch,
            end,
            self.boot.clone(),
            self.time_zones.clone(),
            self.pii.clone(),
        )
    }

    /// Writes a batch, retrying with backoff while the database is down.
    async fn write_until_done(&self, rows: &record::Rows, backoff: &mut Duration) {
        loop {
            match self.db.write(rows).await {
                Ok(()) => return,
                Err(e) => self.down(&e, backoff).await,
            }
        }
    }

    async fn down(&self, e: &StoreError, backoff: &mut Duration) {
        let failures = self.progress.db_failures.fetch_add(1, Ordering::Relaxed);
        self.progress.db_up.store(false, Ordering::Relaxed);
        if failures.is_power_of_two() || failures.is_multiple_of(100) {
            tracing::warn!(error = %e, db = %self.url, "database write failed; events stay in the journal and are retried");
        }
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(BACKOFF_MAX);
    }
}
