//! What the journal holds and how a batch of it becomes rows.
//!
//! A [`JournalEntry`] is one event as the logs show it (personal data masked) plus what only the
//! store may see: the caller's full number and the repeat-call link found at arrival. Entries
//! are folded, in journal order, into per-call [`CallPatch`]es; each patch is upserted with a
//! merge rule per column, so applying the same entries twice leaves the same row (a replay
//! after a crash inserts nothing twice and changes nothing).

use super::outbox::{CallbackRow, SmsRow, StoreRecord};
use crate::events::EventKind;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The link from a call to the same caller's earlier calls (D20).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepeatLink {
    /// `call_uid` of the caller's most recent earlier call in the window.
    pub previous: String,
    /// How many earlier calls from this number fall in the window.
    pub earlier_calls: u32,
}

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JournalEntry {
    /// `node:boot:seq`: unique across restarts and nodes, the primary key of the timeline.
    pub uid: String,
    /// The node that emitted it.
    pub node: String,
    /// The process start (boot) that emitted it.
    pub boot: String,
    /// The bus sequence number inside that boot.
    pub seq: u64,
    /// Wall-clock milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The event as JSON (the same form the logs carry: numbers masked), kept as the text the
    /// journal holds: it becomes the timeline row's body as is, and the call-record facts
    /// are read from it as a typed [`EventKind`] (see [`fold`]). `null` on a [`StoreRecord`]
    /// line.
    pub event: Box<serde_json::value::RawValue>,
    /// The caller's number, sealed ([`crate::pii`]; `call_arrived` only). A journal written
    /// before schema 9 holds it plain: the store seals such entries as it reads them
    /// ([`seal_entry`]) and `navbat migrate` rewrites them sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The lookup hash of the caller's number ([`crate::pii::Pii::lookup`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_lookup: Option<String>,
    /// Repeat-call link found at arrival (`call_arrived` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<RepeatLink>,
    /// The tenant's surge flag at arrival (`call_arrived` only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub surge: bool,
    /// A step of the SMS outbox or the callback book (instead of an event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<StoreRecord>,
}

/// The two fields every entry is looked at for (unknown fields are skipped unparsed).
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    call: Option<std::borrow::Cow<'a, str>>,
}

impl JournalEntry {
    fn head(&self) -> Head<'_> {
        serde_json::from_str(self.event.get()).unwrap_or(Head {
            kind: None,
            call: None,
        })
    }

    /// The call the event belongs to, as `node:boot:call`, if it names one.
    pub fn call_uid(&self) -> Option<String> {
        self.head()
            .call
            .map(|call| call_uid(&self.node, &self.boot, &call))
    }
}

/// Seals the caller of an entry written before schema 9 (plain number, no lookup hash);
/// returns whether it changed. A sealed entry is left as it is.
pub fn seal_entry(entry: &mut JournalEntry, pii: &crate::pii::Pii) -> bool {
    let Some(caller) = entry.caller.as_deref() else {
        return false;
    };
    if crate::pii::is_sealed(caller) && entry.caller_lookup.is_some() {
        return false;
    }
    if crate::pii::is_sealed(caller) {
        match pii.open(crate::pii::field::CALLER_NUMBER, caller) {
            Ok(plain) => entry.caller_lookup = Some(pii.lookup(&plain)),
            // Left for the database writer to report when it folds the entry.
            Err(_) => return false,
        }
    } else {
        entry.caller_lookup = Some(pii.lookup(caller));
        entry.caller = Some(pii.seal(crate::pii::field::CALLER_NUMBER, caller));
    }
    true
}

/// The store's name of a call: unique across restarts (`boot`) and nodes.
pub fn call_uid(node: &str, boot: &str, call: &str) -> String {
    format!("{node}:{boot}:{call}")
}

/// The name serde gives a unit variant (`CallOutcome::TimedOut` -> `timed_out`): the very text
/// the journal holds, so the call record keeps the column values it always had.
fn serde_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        // Unit variants always serialise as strings; anything else is a bug in the enum.
        other => other.map(|v| v.to_string()).unwrap_or_default(),
    }
}

/// A value bound to a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// Text or NULL.
    Text(Option<String>),
    /// Integer or NULL.
    Int(Option<i64>),
    /// Boolean or NULL.
    Bool(Option<bool>),
}

/// How a column of an existing row takes a new value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The first value written stays (arrival time, outcome, ...).
    First,
    /// A later non-NULL value replaces it (queue after a transfer, answering operator, ...).
    Last,
}

/// The columns of `call_records` after `call_uid`, with their merge rule, in bind order.
pub const CALL_COLUMNS: &[(&str, Merge)] = &[
    ("node", Merge::First),
    ("boot", Merge::First),
    ("call_ref", Merge::First),
    ("tenant", Merge::First),
    ("did", Merge::First),
    ("caller_number", Merge::First),
    ("caller_lookup", Merge::First),
    ("month", Merge::First),
    ("arrived_at_ms", Merge::First),
    ("enqueued_at_ms", Merge::First),
    ("offered_at_ms", Merge::First),
    ("answered_at_ms", Merge::First),
    ("ended_at_ms", Merge::First),
    ("ivr_level1", Merge::First),
    ("ivr_level2", Merge::First),
    ("language", Merge::Last),
    ("topic", Merge::Last),
    ("queue", Merge::Last),
    ("priority", Merge::Last),
    ("operator", Merge::Last),
    ("outcome", Merge::First),
    ("ended_by", Merge::First),
    ("blocked_reason", Merge::First),
    ("wait_ms", Merge::First),
    ("talk_ms", Merge::First),
    ("surge", Merge::First),
    ("repeat_of", Merge::First),
    ("repeat_count", Merge::First),
    ("recording_ref", Merge::Last),
];

/// What one batch says about one call; `None` leaves the column as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallPatch {
    /// The call's store name.
    pub call_uid: String,
    node: Option<String>,
    boot: Option<String>,
    call_ref: Option<String>,
    tenant: Option<String>,
    did: Option<String>,
    caller_number: Option<String>,
    caller_lookup: Option<String>,
    month: Option<String>,
    arrived_at_ms: Option<i64>,
    enqueued_at_ms: Option<i64>,
    offered_at_ms: Option<i64>,
    answered_at_ms: Option<i64>,
    ended_at_ms: Option<i64>,
    ivr_level1: Option<String>,
    ivr_level2: Option<String>,
    language: Option<String>,
    topic: Option<String>,
    queue: Option<String>,
    priority: Option<i64>,
    operator: Option<String>,
    outcome: Option<String>,
    ended_by: Option<String>,
    blocked_reason: Option<String>,
    wait_ms: Option<i64>,
    talk_ms: Option<i64>,
    surge: Option<bool>,
    repeat_of: Option<String>,
    repeat_count: Option<i64>,
    recording_ref: Option<String>,
}

impl CallPatch {
    /// Whether the batch holds the call's arrival: its row is new unless this batch is a
    /// replay (the arrival is every call's first event).
    pub fn has_arrival(&self) -> bool {
        self.arrived_at_ms.is_some()
    }

    /// Values in [`CALL_COLUMNS`] order.
    pub fn params(&self) -> Vec<Param> {
        let t = |v: &Option<String>| Param::Text(v.clone());
        let i = |v: &Option<i64>| Param::Int(*v);
        vec![
            t(&self.node),
            t(&self.boot),
            t(&self.call_ref),
            t(&self.tenant),
            t(&self.did),
            t(&self.caller_number),
            t(&self.caller_lookup),
            t(&self.month),
            i(&self.arrived_at_ms),
            i(&self.enqueued_at_ms),
            i(&self.offered_at_ms),
            i(&self.answered_at_ms),
            i(&self.ended_at_ms),
            t(&self.ivr_level1),
            t(&self.ivr_level2),
            t(&self.language),
            t(&self.topic),
            t(&self.queue),
            i(&self.priority),
            t(&self.operator),
            t(&self.outcome),
            t(&self.ended_by),
            t(&self.blocked_reason),
            i(&self.wait_ms),
            i(&self.talk_ms),
            Param::Bool(self.surge),
            t(&self.repeat_of),
            i(&self.repeat_count),
            t(&self.recording_ref),
        ]
    }
}

/// A timeline row.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// `node:boot:seq`.
    pub event_uid: String,
    /// The call, if any.
    pub call_uid: Option<String>,
    /// Emitting node.
    pub node: String,
    /// Emitting boot.
    pub boot: String,
    /// Sequence number in the boot.
    pub seq: i64,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// `kind` tag.
    pub kind: String,
    /// Masked JSON.
    pub body: String,
}

/// An operator state change row.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorStateRow {
    /// `node:boot:seq` of the event.
    pub event_uid: String,
    /// Emitting node.
    pub node: String,
    /// Extension.
    pub operator: String,
    /// Old state.
    pub from_state: String,
    /// New state.
    pub to_state: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at_ms: i64,
}

/// A recording row (one per recorded call: its start and its end merge into it).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordingRow {
    /// The call's store name (rows of schema 1: `node:boot:seq` of the recording event).
    pub recording_uid: String,
    /// The call recorded.
    pub call_uid: String,
    /// The file on `node`.
    pub location: String,
    /// Length (`None` until the recording ends).
    pub duration_ms: Option<i64>,
    /// Size (`None` until the recording ends).
    pub bytes: Option<i64>,
    /// Checksum.
    pub sha256: Option<String>,
    /// When it was started or completed, whichever came last.
    pub at_ms: i64,
    /// The call's tenant (`None`: taken from the call record when written).
    pub tenant: Option<String>,
    /// The node whose disk holds the file.
    pub node: String,
    /// Where other nodes fetch it from.
    pub node_url: Option<String>,
    /// When recording began.
    pub started_at_ms: Option<i64>,
    /// The key the file is encrypted with.
    pub key_id: Option<String>,
}

/// A batch folded into rows, ready for one transaction.
#[derive(Debug, Default)]
pub struct Rows {
    /// One patch per call, in first-seen order.
    pub calls: Vec<CallPatch>,
    /// Every entry of the batch.
    pub events: Vec<EventRow>,
    /// `operator_state` entries.
    pub operator_states: Vec<OperatorStateRow>,
    /// `recording` entries.
    pub recordings: Vec<RecordingRow>,
    /// SMS outbox rows (one per message of the batch).
    pub sms: Vec<SmsRow>,
    /// Callback request rows (one per request of the batch).
    pub callbacks: Vec<CallbackRow>,
    /// Audit log lines.
    pub audit: Vec<super::people::AuditRow>,
    /// Dispositions (the highest revision per call of the batch).
    pub dispositions: Vec<super::people::DispositionRecord>,
    /// Request steps in journal order, with their entry's uid.
    pub requests: Vec<(String, crate::request_model::RequestStep)>,
    /// Notice steps in journal order, with their entry's time.
    pub notices: Vec<(i64, crate::notices::NoticeStep)>,
    /// QA steps in journal order.
    pub qa: Vec<super::qa::QaStep>,
    /// Entries whose event JSON matched no known shape (kept in the timeline only).
    pub unreadable: usize,
}

/// Adds a recording's start or end to the batch's rows, merged into the row of the same
/// recording if the batch has one (one row per key and statement: Postgres refuses to upsert
/// a row twice in one `INSERT`). `seen` maps a recording uid to its index in `rows`: a batch
/// holds hundreds of recordings at a thousand calls a second, so it is not searched row by
/// row. The merge follows the database's: known values win over unknown ones, the end's
/// length, size and checksum over the start's nothing.
fn merge_recording(
    rows: &mut Vec<RecordingRow>,
    seen: &mut HashMap<String, usize>,
    new: RecordingRow,
) {
    let Some(old) = seen.get(&new.recording_uid).and_then(|&i| rows.get_mut(i)) else {
        seen.insert(new.recording_uid.clone(), rows.len());
        rows.push(new);
        return;
    };
    old.location = new.location;
    old.at_ms = old.at_ms.max(new.at_ms);
    old.duration_ms = new.duration_ms.or(old.duration_ms);
    old.bytes = new.bytes.or(old.bytes);
    old.sha256 = new.sha256.or(old.sha256.take());
    old.tenant = old.tenant.take().or(new.tenant);
    old.node_url = old.node_url.take().or(new.node_url);
    old.started_at_ms = old.started_at_ms.or(new.started_at_ms);
    old.key_id = new.key_id.or(old.key_id.take());
}

/// Folds entries (in journal order) into rows. `month_of` turns a tenant and a time into the
/// report month in that tenant's zone.
pub fn fold(entries: &[JournalEntry], month_of: &dyn Fn(&str, i64) -> String) -> Rows {
    let mut rows = Rows::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut recordings: HashMap<String, usize> = HashMap::new();
    for entry in entries {
        // Outbox and callback steps have tables of their own, not the timeline.
        if let Some(record) = &entry.record {
            match record {
                StoreRecord::Audit(a) => rows.audit.push(super::people::AuditRow {
                    uid: entry.uid.clone(),
                    at_ms: entry.at_ms as i64,
                    entry: a.clone(),
                }),
                StoreRecord::Disposition(d) => {
                    super::people::fold_disposition(&mut rows.dispositions, d)
                }
                StoreRecord::Request(step) => {
                    rows.requests.push((entry.uid.clone(), (**step).clone()))
                }
                StoreRecord::Notice(step) => {
                    rows.notices.push((entry.at_ms as i64, (**step).clone()))
                }
                StoreRecord::Qa(step) => rows.qa.push((**step).clone()),
                _ => super::outbox::fold_record(entry, record, &mut rows.sms, &mut rows.callbacks),
            }
            continue;
        }
        let at = entry.at_ms as i64;
        let head = entry.head();
        let kind = head.kind.as_deref().unwrap_or("unknown");
        let call = head
            .call
            .as_deref()
            .map(|c| call_uid(&entry.node, &entry.boot, c));
        rows.events.push(EventRow {
            event_uid: entry.uid.clone(),
            call_uid: call.clone(),
            node: entry.node.clone(),
            boot: entry.boot.clone(),
            seq: entry.seq as i64,
            at_ms: at,
            kind: kind.to_owned(),
            body: entry.event.get().to_owned(),
        });
        // Typed, so a renamed event field is a compile error here rather than a fact quietly
        // missing from the call records. Kinds this build does not know (a newer node's) and
        // shapes that do not parse join the timeline only.
        let event = match serde_json::from_str::<EventKind>(entry.event.get()) {
            Ok(event) => event,
            Err(_) => {
                rows.unreadable += 1;
                continue;
            }
        };
        if let EventKind::OperatorState {
            operator,
            from,
            to,
            reason,
        } = event
        {
            rows.operator_states.push(OperatorStateRow {
                event_uid: entry.uid.clone(),
                node: entry.node.clone(),
                operator,
                from_state: from,
                to_state: to,
                reason,
                at_ms: at,
            });
            continue;
        }
        let Some(call_uid) = call else { continue };
        if !folds_into_a_call_record(&event) {
            continue;
        }
        let slot = *index.entry(call_uid.clone()).or_insert_with(|| {
            rows.calls.push(CallPatch {
                call_uid: call_uid.clone(),
                ..CallPatch::default()
            });
            rows.calls.len() - 1
        });
        let patch = &mut rows.calls[slot];
        let first = |field: &mut Option<i64>| {
            if field.is_none() {
                *field = Some(at);
            }
        };
        match event {
            EventKind::CallArrived {
                call, tenant, did, ..
            } => {
                patch.node = Some(entry.node.clone());
                patch.boot = Some(entry.boot.clone());
                patch.call_ref = Some(call);
                patch.month = Some(month_of(&tenant, at));
                patch.tenant = Some(tenant);
                patch.did = Some(did);
                // The sealed number travels beside the event (the event's own is masked).
                patch.caller_number = entry.caller.clone();
                patch.caller_lookup = entry.caller_lookup.clone();
                patch.arrived_at_ms = Some(at);
                patch.surge = Some(entry.surge);
                if let Some(link) = &entry.repeat {
                    patch.repeat_of = Some(link.previous.clone());
                    patch.repeat_count = Some(i64::from(link.earlier_calls));
                } else {
                    patch.repeat_count = Some(0);
                }
            }
            EventKind::CallBlocked { reason, .. } => {
                patch.blocked_reason.get_or_insert(serde_name(&reason));
            }
            EventKind::IvrStep { level, digit, .. } => {
                let digit = digit.map_or_else(|| "-".to_owned(), String::from);
                match level {
                    1 => {
                        patch.ivr_level1.get_or_insert(digit);
                    }
                    _ => {
                        patch.ivr_level2.get_or_insert(digit);
                    }
                }
            }
            EventKind::CallEnqueued {
                queue,
                language,
                topic,
                priority,
                ..
            } => {
                first(&mut patch.enqueued_at_ms);
                patch.queue = Some(queue);
                patch.language = Some(language);
                if topic.is_some() {
                    patch.topic = topic;
                }
                patch.priority = Some(i64::from(priority));
            }
            EventKind::CallOffered { .. } => {
                first(&mut patch.offered_at_ms);
            }
            EventKind::CallAnswered { operator, .. } => {
                first(&mut patch.answered_at_ms);
                patch.operator = Some(operator);
            }
            EventKind::CallFinished {
                operator,
                queue,
                outcome,
                wait_ms,
                talk_ms,
                ended_by,
                ..
            } => {
                first(&mut patch.ended_at_ms);
                if operator.is_some() {
                    patch.operator = operator;
                }
                if queue.is_some() {
                    patch.queue = queue;
                }
                patch.outcome.get_or_insert(serde_name(&outcome));
                patch.wait_ms.get_or_insert(wait_ms as i64);
                patch.talk_ms.get_or_insert(talk_ms as i64);
                patch.ended_by.get_or_insert(ended_by);
            }
            EventKind::Recording {
                path,
                duration_ms,
                bytes,
                sha256,
                tenant,
                node_url,
                key_id,
                ..
            } => {
                patch.recording_ref = Some(path.clone());
                merge_recording(
                    &mut rows.recordings,
                    &mut recordings,
                    RecordingRow {
                        recording_uid: call_uid.clone(),
                        call_uid: call_uid.clone(),
                        location: path,
                        duration_ms: Some(duration_ms as i64),
                        bytes: Some(bytes as i64),
                        sha256: Some(sha256),
                        at_ms: at,
                        tenant,
                        node: entry.node.clone(),
                        node_url,
                        started_at_ms: None,
                        key_id,
                    },
                );
            }
            EventKind::RecordingStarted {
                path,
                tenant,
                node_url,
                key_id,
                ..
            } => merge_recording(
                &mut rows.recordings,
                &mut recordings,
                RecordingRow {
                    recording_uid: call_uid.clone(),
                    call_uid: call_uid.clone(),
                    location: path,
                    duration_ms: None,
                    bytes: None,
                    sha256: None,
                    at_ms: at,
                    tenant: Some(tenant),
                    node: entry.node.clone(),
                    node_url,
                    started_at_ms: Some(at),
                    key_id,
                },
            ),
            _ => {}
        }
    }
    rows
}

/// Whether an event sets a column of its call's record (the others join the timeline only),
/// so a call's patch is opened only for events that fill it.
fn folds_into_a_call_record(event: &EventKind) -> bool {
    matches!(
        event,
        EventKind::CallArrived { .. }
            | EventKind::CallBlocked { .. }
            | EventKind::IvrStep { .. }
            | EventKind::CallEnqueued { .. }
            | EventKind::CallOffered { .. }
            | EventKind::CallAnswered { .. }
            | EventKind::CallFinished { .. }
            | EventKind::Recording { .. }
            | EventKind::RecordingStarted { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(seq: u64, event: serde_json::Value) -> JournalEntry {
        let arrival = event["kind"] == "call_arrived";
        let caller = arrival.then(|| "pii1.k1.c2VhbGVk".to_owned());
        let caller_lookup = arrival.then(|| "0123456789abcdef0123456789abcdef".to_owned());
        JournalEntry {
            uid: format!("n:b:{seq}"),
            node: "n".into(),
            boot: "b".into(),
            seq,
            at_ms: 1_000 * seq,
            event: serde_json::value::RawValue::from_string(event.to_string()).unwrap(),
            caller,
            caller_lookup,
            repeat: None,
            surge: false,
            record: None,
        }
    }

    fn call_entries() -> Vec<JournalEntry> {
        vec![
            entry(
                1,
                json!({"kind":"call_arrived","call":"c1","tenant":"dtm","did":"712","caller":"+9989******67","transport":"udp"}),
            ),
            entry(
                2,
                json!({"kind":"ivr_step","call":"c1","level":1,"digit":"1"}),
            ),
            entry(
                3,
                json!({"kind":"ivr_step","call":"c1","level":2,"digit":"2"}),
            ),
            entry(
                4,
                json!({"kind":"call_enqueued","call":"c1","tenant":"dtm","queue":"dtm-uz","language":"uz","topic":"results","priority":0}),
            ),
            entry(
                5,
                json!({"kind":"call_offered","call":"c1","queue":"dtm-uz","operator":"1001"}),
            ),
            entry(
                6,
                json!({"kind":"call_answered","call":"c1","queue":"dtm-uz","operator":"1001","wait_ms":2000}),
            ),
            entry(
                7,
                json!({"kind":"operator_state","operator":"1001","from":"ringing","to":"on_call","reason":"Answered"}),
            ),
            entry(
                8,
                json!({"kind":"call_finished","call":"c1","tenant":"dtm","queue":"dtm-uz","operator":"1001","outcome":"answered","wait_ms":2000,"talk_ms":5000,"ended_by":"caller"}),
            ),
            entry(
                9,
                json!({"kind":"recording","call":"c1","path":"rec/c1.wav","duration_ms":5000,"bytes":80000,"sha256":"ab"}),
            ),
        ]
    }

    #[test]
    fn a_call_folds_into_one_patch_with_every_field() {
        let rows = fold(&call_entries(), &|t, _| format!("{t}-month"));
        assert_eq!(rows.events.len(), 9);
        assert_eq!(rows.operator_states.len(), 1);
        assert_eq!(rows.recordings.len(), 1);
        assert_eq!(rows.calls.len(), 1);
        let p = &rows.calls[0];
        assert_eq!(p.call_uid, "n:b:c1");
        assert_eq!(p.caller_number.as_deref(), Some("pii1.k1.c2VhbGVk"));
        assert_eq!(
            p.caller_lookup.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(p.month.as_deref(), Some("dtm-month"));
        assert_eq!(p.ivr_level1.as_deref(), Some("1"));
        assert_eq!(p.ivr_level2.as_deref(), Some("2"));
        assert_eq!(p.topic.as_deref(), Some("results"));
        assert_eq!(p.operator.as_deref(), Some("1001"));
        assert_eq!(p.outcome.as_deref(), Some("answered"));
        assert_eq!(p.arrived_at_ms, Some(1000));
        assert_eq!(p.answered_at_ms, Some(6000));
        assert_eq!(p.ended_at_ms, Some(8000));
        assert_eq!(p.talk_ms, Some(5000));
        assert_eq!(p.recording_ref.as_deref(), Some("rec/c1.wav"));
        assert_eq!(p.params().len(), CALL_COLUMNS.len());
        // The timeline keeps the masked form only.
        assert!(!rows.events[0].body.contains("901234567"));
    }

    #[test]
    fn split_batches_give_the_same_fields_as_one() {
        let all = call_entries();
        let whole = fold(&all, &|_, _| "m".into());
        let (a, b) = all.split_at(4);
        let first = fold(a, &|_, _| "m".into());
        let second = fold(b, &|_, _| "m".into());
        // Merging the two patches by the column rules gives the whole patch.
        let merged: Vec<Param> = first.calls[0]
            .params()
            .into_iter()
            .zip(second.calls[0].params())
            .zip(CALL_COLUMNS)
            .map(|((old, new), (_, merge))| {
                let is_null = |p: &Param| {
                    matches!(p, Param::Text(None) | Param::Int(None) | Param::Bool(None))
                };
                match merge {
                    Merge::First if !is_null(&old) => old,
                    Merge::Last if is_null(&new) => old,
                    _ if is_null(&new) => old,
                    _ => new,
                }
            })
            .collect();
        assert_eq!(merged, whole.calls[0].params());
    }

    #[test]
    fn an_older_entry_is_sealed_once_and_keeps_no_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        crate::keyfile::Keys::generate(&path, 0).unwrap();
        let pii = crate::pii::Pii::load(&path).unwrap();
        // As an older navbat wrote it: the number plain, no lookup hash.
        let mut e = call_entries().remove(0);
        e.caller = Some("+998901234567".into());
        e.caller_lookup = None;
        assert!(seal_entry(&mut e, &pii));
        let json = serde_json::to_string(&e).unwrap();
        let debug = format!("{e:?}");
        for text in [&json, &debug] {
            assert!(!text.contains("901234567"), "{text}");
        }
        assert_eq!(e.caller_lookup, Some(pii.lookup("+998901234567")));
        let sealed = e.caller.clone().unwrap();
        assert_eq!(
            pii.open(crate::pii::field::CALLER_NUMBER, &sealed).unwrap(),
            "+998901234567"
        );
        // Sealed already: left as it is (idempotent).
        assert!(!seal_entry(&mut e, &pii));
        assert_eq!(e.caller.as_deref(), Some(sealed.as_str()));
        // Sealed without its hash (cut short by hand): the hash is filled in from the number.
        e.caller_lookup = None;
        assert!(seal_entry(&mut e, &pii));
        assert_eq!(e.caller_lookup, Some(pii.lookup("998901234567")));
    }

    #[test]
    fn unknown_kinds_join_the_timeline_only() {
        let rows = fold(
            &[entry(1, json!({"kind":"something_new","call":"c9"}))],
            &|_, _| "m".into(),
        );
        assert_eq!(rows.events.len(), 1);
        assert_eq!(rows.events[0].call_uid.as_deref(), Some("n:b:c9"));
        assert_eq!(rows.calls.len(), 0);
    }
}
