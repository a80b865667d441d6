//! The SMS outbox and the callback book in the store (issue 7, D12).
//!
//! Neither keeps a file of its own any more: every step of a message (queued, an attempt
//! that failed, sent, given up) and of a callback request (booked, an unanswered attempt,
//! finished) is a [`StoreRecord`] that rides the same path as the call events:
//!
//! ```text
//! SmsActor / AcdActor --Store::record--> [bounded buffer] --> journal (fsync) --> DB writer
//!        ^                                                      |                    |
//!        '--------- ack once fsynced (journal::Ack) ------------'     sms_messages / callback_requests
//! ```
//!
//! * Nothing waits on the database: `record` is a `try_send` into the journal's buffer; the
//!   caller may await the fsync (an SMS is durable before its first attempt, a callback before
//!   the caller hears it is booked).
//! * The DB writer folds a batch's records into one row per message or request
//!   ([`fold_record`]) and upserts it ([`write_any`], [`write_postgres`]). Every row carries a
//!   `progress` number (`attempts * 4 + stage`) that only grows: an upsert changes a row only
//!   when it is further along, so a replayed batch changes nothing.
//! * At start-up the pending messages and requests of this node are recovered ([`recover`]):
//!   the database's pending rows, with the journal's undrained records of earlier runs
//!   applied on top, so a record written while the database was down still counts, with its
//!   id (the SMS idempotency key) unchanged. If the database does not answer at start-up, the
//!   journal's part is recovered at once and the database's part as soon as the DB writer has
//!   replayed the journal into it ([`Recovery`]).
//!
//! Rows and records keep the phone number sealed, with its lookup hash beside it
//! ([`super::seal`]); the work recovered at start-up is opened again (an SMS must be sent, a
//! callback dialled). `Debug` of a record masks it.

use super::journal::{self, Position};
use super::record::{call_uid, JournalEntry};
use super::StoreError;
use crate::callback::{CallbackOutcome, CallbackRecord, CallbackRequest};
use crate::sms::{Message, MessageKind, SmsRecord};
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, AssertSqlSafe, Row};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

/// A durable step of the SMS outbox or the callback book, as the journal carries it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum StoreRecord {
    /// A step of one SMS.
    Sms(SmsRecord),
    /// A step of one callback request.
    Callback(CallbackRecord),
    /// A line of the audit log.
    Audit(super::people::AuditEntry),
    /// An operator's after-call work on a call.
    Disposition(super::people::DispositionRecord),
    /// A change of a request (issue 14).
    Request(Box<crate::request_model::RequestStep>),
    /// A step of a notice to the client (D7).
    Notice(Box<crate::notices::NoticeStep>),
    /// A QA step: a week's sample, an evaluation, a dispute, a calibration session (D17).
    Qa(Box<super::qa::QaStep>),
}

/// Names the step and the id only: records hold full numbers (D18).
impl std::fmt::Debug for StoreRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreRecord::Sms(r) => write!(f, "Sms({} {})", r.step(), r.id()),
            StoreRecord::Callback(r) => write!(f, "Callback({} {})", r.step(), r.id()),
            StoreRecord::Audit(a) => write!(f, "{a:?}"),
            StoreRecord::Disposition(d) => write!(f, "{d:?}"),
            StoreRecord::Request(r) => write!(f, "{r:?}"),
            StoreRecord::Notice(n) => write!(f, "{n:?}"),
            StoreRecord::Qa(q) => write!(f, "{q:?}"),
        }
    }
}

/// Stages inside one attempt count, for [`SmsRow::progress`] and [`CallbackRow::progress`].
const STAGE_NEW: i64 = 0;
const STAGE_RETRY: i64 = 1;
const STAGE_DONE: i64 = 2;

fn progress(attempts: u32, stage: i64) -> i64 {
    i64::from(attempts) * 4 + stage
}

/// One `sms_messages` row as a batch leaves it; `None` columns keep what the row has.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsRow {
    /// The message id (its idempotency key at the gateway).
    pub id: String,
    /// The node that queued it.
    pub node: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// `deflection`, `callback_confirmation`, `missed_call`.
    pub purpose: Option<String>,
    /// The E.164 number, sealed ([`crate::pii::field::SMS_TO`]).
    pub to_number: Option<String>,
    /// Its lookup hash ([`crate::pii::Pii::lookup`]).
    pub to_lookup: Option<String>,
    /// The text.
    pub body: Option<String>,
    /// When it was queued (Unix ms).
    pub queued_at_ms: Option<i64>,
    /// `queued`, `retrying`, `sent`, `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Grows with every step; a row only takes a patch that is further along.
    pub progress: i64,
    /// Last attempt (Unix ms).
    pub last_attempt_at_ms: Option<i64>,
    /// Next attempt not before (Unix ms), while retrying.
    pub next_attempt_at_ms: Option<i64>,
    /// Sent or given up (Unix ms).
    pub finished_at_ms: Option<i64>,
    /// What the gateway said last, when it was not a success.
    pub detail: Option<String>,
    /// Time of the step (Unix ms).
    pub updated_at_ms: i64,
}

/// One `callback_requests` row as a batch leaves it.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackRow {
    /// The request id.
    pub id: String,
    /// The node that booked it (and dials it).
    pub node: Option<String>,
    /// Tenant.
    pub tenant: Option<String>,
    /// Queue whose operators call back.
    pub queue: Option<String>,
    /// The call that asked for it (`node:boot:call`, as in `call_records`).
    pub call_uid: Option<String>,
    /// The E.164 number, sealed ([`crate::pii::field::CALLBACK_NUMBER`]).
    pub caller_number: Option<String>,
    /// Its lookup hash ([`crate::pii::Pii::lookup`]).
    pub caller_lookup: Option<String>,
    /// Language chosen in the IVR.
    pub language: Option<String>,
    /// The original call's arrival (Unix ms): its place in the queue.
    pub arrived_at_ms: Option<i64>,
    /// When it was booked (Unix ms).
    pub requested_at_ms: Option<i64>,
    /// `pending`, `retrying`, `connected`, `gave_up`.
    pub status: String,
    /// Dial attempts made.
    pub attempts: i64,
    /// Grows with every step.
    pub progress: i64,
    /// Not dialled before (Unix ms).
    pub due_at_ms: Option<i64>,
    /// Last attempt (Unix ms).
    pub last_attempt_at_ms: Option<i64>,
    /// Connected or given up (Unix ms).
    pub finished_at_ms: Option<i64>,
    /// Time of the step (Unix ms).
    pub updated_at_ms: i64,
}

/// Id and state only: rows hold full numbers (D18).
impl std::fmt::Debug for SmsRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmsRow({} {} {})", self.id, self.status, self.attempts)
    }
}

/// Id and state only.
impl std::fmt::Debug for CallbackRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CallbackRow({} {} {})",
            self.id, self.status, self.attempts
        )
    }
}

/// Folds one record of `entry` into `sms` / `callbacks` (one row per id, in first-seen order;
/// a step that is not further along than the row's is ignored).
pub fn fold_record(
    entry: &JournalEntry,
    record: &StoreRecord,
    sms: &mut Vec<SmsRow>,
    callbacks: &mut Vec<CallbackRow>,
) {
    let at = entry.at_ms as i64;
    match record {
        StoreRecord::Sms(r) => {
            let slot = match sms.iter().position(|row| row.id == r.id()) {
                Some(i) => i,
                None => {
                    sms.push(SmsRow {
                        id: r.id().to_owned(),
                        node: None,
                        tenant: None,
                        purpose: None,
                        to_number: None,
                        to_lookup: None,
                        body: None,
                        queued_at_ms: None,
                        status: String::new(),
                        attempts: 0,
                        progress: -1,
                        last_attempt_at_ms: None,
                        next_attempt_at_ms: None,
                        finished_at_ms: None,
                        detail: None,
                        updated_at_ms: at,
                    });
                    sms.len() - 1
                }
            };
            let row = &mut sms[slot];
            if let SmsRecord::Queued { message } = r {
                row.node = Some(entry.node.clone());
                row.tenant = Some(message.tenant.clone());
                row.purpose = Some(message.kind.as_str().to_owned());
                row.to_number = Some(message.to.clone());
                row.to_lookup = entry.caller_lookup.clone();
                row.body = Some(message.text.clone());
                row.queued_at_ms = Some(at);
            }
            let (status, attempts, stage) = match r {
                SmsRecord::Queued { .. } => ("queued", 0, STAGE_NEW),
                SmsRecord::Attempted { attempts, .. } => ("retrying", *attempts, STAGE_RETRY),
                SmsRecord::Sent { attempts, .. } => ("sent", *attempts, STAGE_DONE),
                SmsRecord::Failed { attempts, .. } => ("failed", *attempts, STAGE_DONE),
            };
            let p = progress(attempts, stage);
            if p <= row.progress {
                return;
            }
            row.status = status.to_owned();
            row.attempts = i64::from(attempts);
            row.progress = p;
            row.updated_at_ms = at;
            row.last_attempt_at_ms = (attempts > 0).then_some(at);
            row.next_attempt_at_ms = match r {
                SmsRecord::Attempted { due_ms, .. } => Some(*due_ms),
                _ => None,
            };
            row.finished_at_ms = (stage == STAGE_DONE).then_some(at);
            row.detail = match r {
                SmsRecord::Attempted { detail, .. } | SmsRecord::Failed { detail, .. } => {
                    Some(detail.clone())
                }
                _ => None,
            };
        }
        // Folded by `record::fold` into tables of their own.
        StoreRecord::Audit(_)
        | StoreRecord::Disposition(_)
        | StoreRecord::Request(_)
        | StoreRecord::Notice(_)
        | StoreRecord::Qa(_) => {}
        StoreRecord::Callback(r) => {
            let slot = match callbacks.iter().position(|row| row.id == r.id()) {
                Some(i) => i,
                None => {
                    callbacks.push(CallbackRow {
                        id: r.id().to_owned(),
                        node: None,
                        tenant: None,
                        queue: None,
                        call_uid: None,
                        caller_number: None,
                        caller_lookup: None,
                        language: None,
                        arrived_at_ms: None,
                        requested_at_ms: None,
                        status: String::new(),
                        attempts: 0,
                        progress: -1,
                        due_at_ms: None,
                        last_attempt_at_ms: None,
                        finished_at_ms: None,
                        updated_at_ms: at,
                    });
                    callbacks.len() - 1
                }
            };
            let row = &mut callbacks[slot];
            if let CallbackRecord::Requested(request) = r {
                row.node = Some(entry.node.clone());
                row.tenant = Some(request.tenant.clone());
                row.queue = Some(request.queue.clone());
                row.call_uid = (!request.call.is_empty())
                    .then(|| call_uid(&entry.node, &entry.boot, &request.call));
                row.caller_number = Some(request.number.clone());
                row.caller_lookup = entry.caller_lookup.clone();
                row.language = Some(request.language.clone());
                row.arrived_at_ms = Some(request.arrived_ms);
                row.requested_at_ms = Some(at);
            }
            let (status, attempts, stage, due) = match r {
                CallbackRecord::Requested(q) => ("pending", q.attempts, STAGE_NEW, Some(q.due_ms)),
                CallbackRecord::Retry {
                    attempts, due_ms, ..
                } => ("retrying", *attempts, STAGE_RETRY, Some(*due_ms)),
                CallbackRecord::Finished {
                    attempts, outcome, ..
                } => (
                    match outcome {
                        CallbackOutcome::Connected => "connected",
                        CallbackOutcome::Superseded => "superseded",
                        _ => "gave_up",
                    },
                    *attempts,
                    STAGE_DONE,
                    None,
                ),
            };
            let p = progress(attempts, stage);
            if p <= row.progress {
                return;
            }
            row.status = status.to_owned();
            row.attempts = i64::from(attempts);
            row.progress = p;
            row.updated_at_ms = at;
            row.due_at_ms = due;
            if stage != STAGE_NEW {
                row.last_attempt_at_ms = Some(at);
            }
            row.finished_at_ms = (stage == STAGE_DONE).then_some(at);
        }
    }
}

const SMS_COLUMNS: &str = "id, node, tenant, purpose, to_number, to_lookup, body, queued_at_ms, \
                           status, attempts, progress, last_attempt_at_ms, next_attempt_at_ms, \
                           finished_at_ms, detail, updated_at_ms";

/// Static columns keep their first value; the state columns take the patch when it is
/// further along (so a replay, or an older step, changes nothing).
const SMS_UPSERT: &str = "INSERT INTO sms_messages (id, node, tenant, purpose, to_number, body, \
     queued_at_ms, status, attempts, progress, last_attempt_at_ms, next_attempt_at_ms, \
     finished_at_ms, detail, updated_at_ms, to_lookup) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT (id) DO UPDATE SET \
     node = COALESCE(sms_messages.node, excluded.node), \
     tenant = COALESCE(sms_messages.tenant, excluded.tenant), \
     purpose = COALESCE(sms_messages.purpose, excluded.purpose), \
     to_number = COALESCE(sms_messages.to_number, excluded.to_number), \
     to_lookup = COALESCE(sms_messages.to_lookup, excluded.to_lookup), \
     body = COALESCE(sms_messages.body, excluded.body), \
     queued_at_ms = COALESCE(sms_messages.queued_at_ms, excluded.queued_at_ms), \
     status = excluded.status, attempts = excluded.attempts, progress = excluded.progress, \
     last_attempt_at_ms = COALESCE(excluded.last_attempt_at_ms, sms_messages.last_attempt_at_ms), \
     next_attempt_at_ms = excluded.next_attempt_at_ms, \
     finished_at_ms = excluded.finished_at_ms, \
     detail = COALESCE(excluded.detail, sms_messages.detail), \
     updated_at_ms = excluded.updated_at_ms \
     WHERE sms_messages.progress < excluded.progress";

const CALLBACK_UPSERT: &str = "INSERT INTO callback_requests (id, node, tenant, queue, call_uid, \
     caller_number, language, arrived_at_ms, requested_at_ms, status, attempts, progress, \
     due_at_ms, last_attempt_at_ms, finished_at_ms, updated_at_ms, caller_lookup) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
     ON CONFLICT (id) DO UPDATE SET \
     node = COALESCE(callback_requests.node, excluded.node), \
     tenant = COALESCE(callback_requests.tenant, excluded.tenant), \
     queue = COALESCE(callback_requests.queue, excluded.queue), \
     call_uid = COALESCE(callback_requests.call_uid, excluded.call_uid), \
     caller_number = COALESCE(callback_requests.caller_number, excluded.caller_number), \
     caller_lookup = COALESCE(callback_requests.caller_lookup, excluded.caller_lookup), \
     language = COALESCE(callback_requests.language, excluded.language), \
     arrived_at_ms = COALESCE(callback_requests.arrived_at_ms, excluded.arrived_at_ms), \
     requested_at_ms = COALESCE(callback_requests.requested_at_ms, excluded.requested_at_ms), \
     status = excluded.status, attempts = excluded.attempts, progress = excluded.progress, \
     due_at_ms = excluded.due_at_ms, \
     last_attempt_at_ms = COALESCE(excluded.last_attempt_at_ms, callback_requests.last_attempt_at_ms), \
     finished_at_ms = excluded.finished_at_ms, updated_at_ms = excluded.updated_at_ms \
     WHERE callback_requests.progress < excluded.progress";

/// Binds a row's values in the column order of the upserts above (the same for both
/// drivers, whose query types differ).
macro_rules! bind_sms {
    ($q:expr, $r:expr) => {
        $q.bind($r.id.clone())
            .bind($r.node.clone())
            .bind($r.tenant.clone())
            .bind($r.purpose.clone())
            .bind($r.to_number.clone())
            .bind($r.body.clone())
            .bind($r.queued_at_ms)
            .bind($r.status.clone())
            .bind($r.attempts)
            .bind($r.progress)
            .bind($r.last_attempt_at_ms)
            .bind($r.next_attempt_at_ms)
            .bind($r.finished_at_ms)
            .bind($r.detail.clone())
            .bind($r.updated_at_ms)
            .bind($r.to_lookup.clone())
    };
}

macro_rules! bind_callback {
    ($q:expr, $r:expr) => {
        $q.bind($r.id.clone())
            .bind($r.node.clone())
            .bind($r.tenant.clone())
            .bind($r.queue.clone())
            .bind($r.call_uid.clone())
            .bind($r.caller_number.clone())
            .bind($r.language.clone())
            .bind($r.arrived_at_ms)
            .bind($r.requested_at_ms)
            .bind($r.status.clone())
            .bind($r.attempts)
            .bind($r.progress)
            .bind($r.due_at_ms)
            .bind($r.last_attempt_at_ms)
            .bind($r.finished_at_ms)
            .bind($r.updated_at_ms)
            .bind($r.caller_lookup.clone())
    };
}

/// Upserts the batch's outbox and callback rows on SQLite (inside the batch's transaction).
pub async fn write_any(
    conn: &mut sqlx::AnyConnection,
    sms: &[SmsRow],
    callbacks: &[CallbackRow],
) -> Result<(), sqlx::Error> {
    for r in sms {
        bind_sms!(sqlx::query(SMS_UPSERT), r)
            .execute(&mut *conn)
            .await?;
    }
    for r in callbacks {
        bind_callback!(sqlx::query(CALLBACK_UPSERT), r)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The same on Postgres. Outbox rows are few next to the events (a few per call at most), so
/// one statement per row is enough.
pub async fn write_postgres(
    conn: &mut sqlx::PgConnection,
    sms: &[SmsRow],
    callbacks: &[CallbackRow],
) -> Result<(), sqlx::Error> {
    for r in sms {
        bind_sms!(sqlx::query(SMS_UPSERT), r)
            .execute(&mut *conn)
            .await?;
    }
    for r in callbacks {
        bind_callback!(sqlx::query(CALLBACK_UPSERT), r)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// What is still to do: unsent messages (with their attempts) and pending callbacks.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PendingWork {
    /// Unsent messages by id, with the attempts made.
    pub sms: BTreeMap<String, (Message, u32)>,
    /// Pending callback requests by id.
    pub callbacks: BTreeMap<String, CallbackRequest>,
}

impl std::fmt::Debug for PendingWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingWork")
            .field("sms", &self.sms.keys().collect::<Vec<_>>())
            .field("callbacks", &self.callbacks.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PendingWork {
    /// Applies one record (in journal order) on top of what is known.
    pub fn apply(&mut self, record: &StoreRecord) {
        match record {
            StoreRecord::Sms(SmsRecord::Queued { message }) => {
                self.sms
                    .entry(message.id.clone())
                    .or_insert_with(|| (message.clone(), 0));
            }
            StoreRecord::Sms(SmsRecord::Attempted { id, attempts, .. }) => {
                if let Some(entry) = self.sms.get_mut(id) {
                    entry.1 = entry.1.max(*attempts);
                }
            }
            StoreRecord::Sms(SmsRecord::Sent { id, .. } | SmsRecord::Failed { id, .. }) => {
                self.sms.remove(id);
            }
            StoreRecord::Callback(CallbackRecord::Requested(request)) => {
                self.callbacks
                    .entry(request.id.clone())
                    .or_insert_with(|| request.clone());
            }
            StoreRecord::Callback(CallbackRecord::Retry {
                id,
                attempts,
                due_ms,
                ..
            }) => {
                if let Some(r) = self.callbacks.get_mut(id) {
                    if *attempts >= r.attempts {
                        r.attempts = *attempts;
                        r.due_ms = *due_ms;
                    }
                }
            }
            StoreRecord::Callback(CallbackRecord::Finished { id, .. }) => {
                self.callbacks.remove(id);
            }
            // Not pending work: nothing to resume at start-up.
            StoreRecord::Audit(_)
            | StoreRecord::Disposition(_)
            | StoreRecord::Request(_)
            | StoreRecord::Notice(_)
            | StoreRecord::Qa(_) => {}
        }
    }
}

/// The records of earlier runs in the journal after the drained position `from` (the DB
/// writer has not written them yet), in order. Read before this run's writer starts.
///
/// After a long database outage the undrained journal can hold millions of events, so lines
/// are only searched for a `"record":` field and just that field is decoded; a torn last
/// line (a crash mid-write) is skipped as the journal reader does.
pub fn undrained_records(dir: &Path, from: Position) -> Result<Vec<StoreRecord>, StoreError> {
    #[derive(Deserialize)]
    struct RecordOnly {
        #[serde(default)]
        record: Option<StoreRecord>,
    }
    const MARK: &[u8] = b"\"record\":";
    let mut out = Vec::new();
    let mut line = Vec::with_capacity(512);
    for segment in journal::segments(dir)?
        .into_iter()
        .filter(|&n| n >= from.segment)
    {
        let path = journal::segment_path(dir, segment);
        let mut file = match File::open(&path) {
            Ok(f) => BufReader::with_capacity(256 * 1024, f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(StoreError::journal(&path, "open", e)),
        };
        if segment == from.segment {
            file.seek(SeekFrom::Start(from.offset))
                .map_err(|e| StoreError::journal(&path, "seek", e))?;
        }
        loop {
            line.clear();
            let n = file
                .read_until(b'\n', &mut line)
                .map_err(|e| StoreError::journal(&path, "read", e))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            if !line.windows(MARK.len()).any(|w| w == MARK) {
                continue;
            }
            if let Ok(RecordOnly {
                record: Some(record),
            }) = serde_json::from_slice(&line)
            {
                out.push(record);
            }
        }
    }
    Ok(out)
}

/// This node's unsent messages and pending callbacks in the database, their numbers opened
/// with `pii` (a sealed number without keys, or a plain one, is an error).
pub async fn pending_in_db(
    pool: &AnyPool,
    pii: Option<&crate::pii::Pii>,
    node: &str,
) -> Result<PendingWork, sqlx::Error> {
    use crate::pii::field;
    let open = |f: &'static str, value: Option<String>| -> Result<String, sqlx::Error> {
        Ok(crate::pii::open_opt(pii, f, value)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?
            .unwrap_or_default())
    };
    let mut work = PendingWork::default();
    let sql = format!(
        "SELECT {SMS_COLUMNS} FROM sms_messages WHERE node = $1 \
         AND status IN ('queued', 'retrying') ORDER BY queued_at_ms, id"
    );
    for row in sqlx::query(AssertSqlSafe(sql))
        .bind(node.to_owned())
        .fetch_all(pool)
        .await?
    {
        let id: String = row.try_get("id")?;
        let purpose: Option<String> = row.try_get("purpose")?;
        let Some(kind) = purpose.as_deref().and_then(kind_of) else {
            tracing::warn!(sms = %id, "unsent SMS of an unknown purpose left in the database");
            continue;
        };
        let message = Message {
            id: id.clone(),
            to: open(field::SMS_TO, row.try_get("to_number")?)?,
            text: row
                .try_get::<Option<String>, _>("body")?
                .unwrap_or_default(),
            kind,
            tenant: row
                .try_get::<Option<String>, _>("tenant")?
                .unwrap_or_default(),
        };
        let attempts: i64 = row.try_get("attempts")?;
        work.sms
            .insert(id, (message, attempts.clamp(0, u32::MAX as i64) as u32));
    }
    for row in sqlx::query(
        "SELECT id, tenant, queue, call_uid, caller_number, language, arrived_at_ms, attempts, \
         due_at_ms FROM callback_requests WHERE node = $1 \
         AND status IN ('pending', 'retrying') ORDER BY arrived_at_ms, id",
    )
    .bind(node.to_owned())
    .fetch_all(pool)
    .await?
    {
        let id: String = row.try_get("id")?;
        let text = |name: &str| -> Result<String, sqlx::Error> {
            Ok(row.try_get::<Option<String>, _>(name)?.unwrap_or_default())
        };
        let call_uid = text("call_uid")?;
        let request = CallbackRequest {
            id: id.clone(),
            tenant: text("tenant")?,
            queue: text("queue")?,
            number: open(field::CALLBACK_NUMBER, row.try_get("caller_number")?)?,
            language: text("language")?,
            arrived_ms: row.try_get::<Option<i64>, _>("arrived_at_ms")?.unwrap_or(0),
            attempts: row.try_get::<i64, _>("attempts")?.clamp(0, u32::MAX as i64) as u32,
            due_ms: row.try_get::<Option<i64>, _>("due_at_ms")?.unwrap_or(0),
            // The call's own name inside its run (`c17`), the last part of its store name.
            call: call_uid.rsplit(':').next().unwrap_or_default().to_owned(),
        };
        work.callbacks.insert(id, request);
    }
    Ok(work)
}

fn kind_of(purpose: &str) -> Option<MessageKind> {
    serde_json::from_value(serde_json::Value::String(purpose.to_owned())).ok()
}

/// Recovered work handed to the actors, in one or two deliveries: what was known at
/// start-up, then (if the database was down then) the database's part once the DB writer has
/// replayed the journal into it. Each consumer takes its own part.
#[derive(Debug, Default)]
pub struct Recovery {
    state: Mutex<RecoveryState>,
}

#[derive(Debug, Default)]
struct RecoveryState {
    sms: Vec<(Message, u32)>,
    callbacks: Vec<CallbackRequest>,
    /// The database's part has been added: nothing more will come.
    complete: bool,
}

/// One take of recovered work.
#[derive(Debug, Default)]
pub struct Recovered<T> {
    /// New items since the last take (an item may repeat one already known: match by id).
    pub items: Vec<T>,
    /// Nothing more will come after this take.
    pub complete: bool,
}

impl Recovery {
    /// Adds work; `complete` when it includes the database's part.
    pub fn add(&self, work: PendingWork, complete: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.sms.extend(work.sms.into_values());
        state.callbacks.extend(work.callbacks.into_values());
        state.complete |= complete;
    }

    /// Whether the database's part has been added.
    pub fn complete(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .complete
    }

    /// The messages recovered since the last take.
    pub fn take_sms(&self) -> Recovered<(Message, u32)> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Recovered {
            items: std::mem::take(&mut state.sms),
            complete: state.complete,
        }
    }

    /// The callback requests recovered since the last take.
    pub fn take_callbacks(&self) -> Recovered<CallbackRequest> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Recovered {
            items: std::mem::take(&mut state.callbacks),
            complete: state.complete,
        }
    }
}

/// The database's pending work of `node` with the undrained journal `records` applied on top.
pub fn merge(mut from_db: PendingWork, records: &[StoreRecord]) -> PendingWork {
    for r in records {
        from_db.apply(r);
    }
    from_db
}

/// The journal's part alone (the database did not answer at start-up).
pub fn recover(records: &[StoreRecord]) -> PendingWork {
    merge(PendingWork::default(), records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at_ms: u64, record: StoreRecord) -> JournalEntry {
        JournalEntry {
            uid: format!("n:b:r{at_ms}"),
            node: "n".into(),
            boot: "b".into(),
            seq: 0,
            at_ms,
            event: serde_json::value::RawValue::from_string("null".into()).unwrap(),
            caller: None,
            caller_lookup: None,
            repeat: None,
            surge: false,
            record: Some(record),
        }
    }

    fn message(id: &str) -> Message {
        Message {
            id: id.into(),
            to: "+998901234567".into(),
            text: "salom".into(),
            kind: MessageKind::MissedCall,
            tenant: "dtm".into(),
        }
    }

    fn request(id: &str) -> CallbackRequest {
        CallbackRequest {
            id: id.into(),
            tenant: "dtm".into(),
            queue: "dtm-uz".into(),
            number: "+998900000011".into(),
            language: "uz".into(),
            arrived_ms: 500,
            attempts: 0,
            due_ms: 0,
            call: "c3".into(),
        }
    }

    fn sms_steps() -> Vec<StoreRecord> {
        vec![
            StoreRecord::Sms(SmsRecord::Queued {
                message: message("a"),
            }),
            StoreRecord::Sms(SmsRecord::Attempted {
                id: "a".into(),
                attempts: 1,
                due_ms: 9_000,
                detail: "HTTP 500".into(),
            }),
            StoreRecord::Sms(SmsRecord::Sent {
                id: "a".into(),
                attempts: 2,
            }),
        ]
    }

    #[test]
    fn steps_fold_into_one_row_that_only_moves_forward() {
        let steps = sms_steps();
        let (mut sms, mut cbs) = (Vec::new(), Vec::new());
        for (i, r) in steps.iter().enumerate() {
            fold_record(
                &entry(1_000 * (i as u64 + 1), r.clone()),
                r,
                &mut sms,
                &mut cbs,
            );
        }
        // An older step seen again (a replay) changes nothing.
        fold_record(
            &entry(9_999, steps[1].clone()),
            &steps[1],
            &mut sms,
            &mut cbs,
        );
        assert_eq!(sms.len(), 1);
        let row = &sms[0];
        assert_eq!(row.status, "sent");
        assert_eq!(row.attempts, 2);
        assert_eq!(row.to_number.as_deref(), Some("+998901234567"));
        assert_eq!(row.queued_at_ms, Some(1_000));
        assert_eq!(row.finished_at_ms, Some(3_000));
        assert_eq!(row.next_attempt_at_ms, None);
        assert_eq!(row.detail, None);
    }

    #[test]
    fn callback_steps_fold_and_link_the_call() {
        let steps = [
            StoreRecord::Callback(CallbackRecord::Requested(request("cb1"))),
            StoreRecord::Callback(CallbackRecord::Retry {
                id: "cb1".into(),
                attempts: 1,
                due_ms: 70_000,
            }),
        ];
        let (mut sms, mut cbs) = (Vec::new(), Vec::new());
        for r in &steps {
            fold_record(&entry(2_000, r.clone()), r, &mut sms, &mut cbs);
        }
        let row = &cbs[0];
        assert_eq!(row.call_uid.as_deref(), Some("n:b:c3"));
        assert_eq!(row.status, "retrying");
        assert_eq!(row.due_at_ms, Some(70_000));
        assert_eq!(row.arrived_at_ms, Some(500));
        // Closed undialled (the caller booked again meanwhile): finished, not retried.
        let closed = StoreRecord::Callback(CallbackRecord::Finished {
            id: "cb1".into(),
            outcome: CallbackOutcome::Superseded,
            attempts: 1,
        });
        fold_record(&entry(3_000, closed.clone()), &closed, &mut sms, &mut cbs);
        assert_eq!(cbs[0].status, "superseded");
        assert_eq!(
            (cbs[0].due_at_ms, cbs[0].finished_at_ms),
            (None, Some(3_000))
        );
    }

    #[test]
    fn pending_work_follows_the_records() {
        let mut records = sms_steps();
        records.pop();
        records.push(StoreRecord::Callback(CallbackRecord::Requested(request(
            "cb1",
        ))));
        records.push(StoreRecord::Callback(CallbackRecord::Requested(request(
            "cb2",
        ))));
        records.push(StoreRecord::Callback(CallbackRecord::Finished {
            id: "cb2".into(),
            outcome: CallbackOutcome::GaveUp,
            attempts: 3,
        }));
        let work = recover(&records);
        assert_eq!(work.sms.get("a").map(|(_, n)| *n), Some(1));
        assert_eq!(work.callbacks.keys().collect::<Vec<_>>(), vec!["cb1"]);
        // A record that ends a message known only to the database removes it.
        let done = merge(
            work.clone(),
            &[StoreRecord::Sms(SmsRecord::Sent {
                id: "a".into(),
                attempts: 2,
            })],
        );
        assert!(done.sms.is_empty());
    }

    #[test]
    fn undrained_records_are_read_from_the_cursor_in_order_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel(100);
        let durable = journal::start_writer(dir.path(), rx, 1, 1 << 20).unwrap();
        let event = |seq: u64| JournalEntry {
            event: serde_json::value::RawValue::from_string(
                r#"{"kind":"recording","call":"c1","path":"x"}"#.into(),
            )
            .unwrap(),
            record: None,
            ..entry(seq, sms_steps()[0].clone())
        };
        let steps = sms_steps();
        tx.send(entry(1, steps[0].clone())).unwrap();
        tx.send(event(2)).unwrap();
        tx.send(entry(3, steps[1].clone())).unwrap();
        tx.send(event(4)).unwrap();
        tx.send(entry(5, steps[2].clone())).unwrap();
        while durable.events.load(std::sync::atomic::Ordering::Acquire) < 5 {
            std::thread::yield_now();
        }
        drop(tx);
        // Drained up to the first event: the first step is in the database already.
        let mut reader = super::super::journal::Reader::new(dir.path(), Position::default());
        let end = durable.end();
        let drained = reader.read(2, end).unwrap().last().unwrap().1;
        let segment = journal::segment_path(dir.path(), end.segment);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(segment)
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"record\":{\"table\":\"sms\",\"st").unwrap();
        assert_eq!(
            undrained_records(dir.path(), drained).unwrap(),
            steps[1..].to_vec()
        );
    }

    #[test]
    fn debug_of_a_record_hides_the_number() {
        let r = StoreRecord::Sms(SmsRecord::Queued {
            message: message("a"),
        });
        let text = format!("{r:?}");
        assert!(!text.contains("901234567"), "{text}");
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("+998901234567"), "{json}");
        let back: StoreRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
