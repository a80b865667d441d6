//! The book of requests: pure (no clock, no I/O), like the ACD core. It numbers requests,
//! knows every intake key it has seen, holds the heads of open requests, checks every change
//! against the status table and turns it into a [`RequestStep`] for the journal.
//!
//! A change is staged ([`Staged`]): the book already shows it, and the caller journals the
//! step; if the journal refuses it the caller [`Book::undo`]es it. Steps of one request are
//! handed to the journal in the order they were staged (the caller stages and records under
//! one lock), so the journal's order is the book's.

use super::types::{Channel, Direction, Kind, Priority, Requester, Status};
use super::{Change, Head, Message, Pause, RequestStep, MAX_REFERENCES};
use std::collections::{HashMap, VecDeque};

/// How long an intake key is remembered (a mail server may redeliver after days).
pub const KEY_MEMORY_MS: i64 = 30 * 24 * 3600 * 1000;
/// Closed heads kept in memory (for quick reopening and the page), newest first out last.
const RECENT_CLOSED: usize = 10_000;

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No such request (or not in memory and the caller must load it).
    #[error("no request {0}")]
    Unknown(String),
    /// The status table does not allow it.
    #[error("a request cannot go from {from} to {to}")]
    Transition {
        /// From.
        from: Status,
        /// To.
        to: Status,
    },
    /// The change needs something the request lacks.
    #[error("{0}")]
    Invalid(&'static str),
    /// The journal did not take it (full or shut down): nothing changed.
    #[error("the store did not take the change; try again")]
    NotKept,
    /// The book is not ready (the database did not answer at start-up).
    #[error("requests are not available yet: the database did not answer at start-up")]
    NotReady,
}

/// What the customer or the operator gives for a new request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// Tenant.
    pub tenant: String,
    /// Channel.
    pub channel: Channel,
    /// Kind.
    pub kind: Kind,
    /// Priority.
    pub priority: Priority,
    /// Category, if known.
    pub category: Option<String>,
    /// Topic, if known.
    pub topic: Option<String>,
    /// One line.
    pub subject: String,
    /// Who asks.
    pub requester: Requester,
    /// `uz` or `ru`.
    pub language: String,
    /// The first message (its `uid` is set by the book).
    pub message: Option<Message>,
    /// A call it is about.
    pub call_uid: Option<String>,
    /// Who registers it (`customer`, `system` or a username).
    pub actor: String,
    /// Assigned at once (an operator registering a phone request takes it).
    pub assignee: Option<String>,
}

impl NewRequest {
    /// A customer's request by a written channel: ordinary, normal priority, unclassified,
    /// unassigned, with its first message.
    pub fn from_customer(
        tenant: &str,
        channel: Channel,
        subject: String,
        requester: Requester,
        language: &str,
        message: Message,
    ) -> NewRequest {
        NewRequest {
            tenant: tenant.to_owned(),
            channel,
            kind: Kind::Ordinary,
            priority: Priority::Normal,
            category: None,
            topic: None,
            subject,
            requester,
            language: language.to_owned(),
            message: Some(message),
            call_uid: None,
            actor: "customer".to_owned(),
            assignee: None,
        }
    }
}

/// A change the book shows and the caller must journal (or undo).
#[derive(Debug, Clone)]
pub struct Staged {
    /// The step to journal.
    pub step: RequestStep,
    /// The head before (none for a new request).
    previous: Option<Head>,
    /// Keys this change taught the book.
    keys: Vec<String>,
    /// Whether it took a number.
    numbered: Option<(String, String)>,
}

/// What an intake gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// A new request (the staged step must be journaled).
    New(String),
    /// The key was seen before: this request, nothing staged.
    Known(String),
}

/// The book.
#[derive(Debug, Default)]
pub struct Book {
    heads: HashMap<String, Head>,
    closed_order: VecDeque<String>,
    keys: HashMap<String, (String, i64)>,
    key_order: VecDeque<(i64, String)>,
    counters: HashMap<(String, String), u32>,
    external: HashMap<String, String>,
    node_tag: Option<String>,
    ready: bool,
}

impl Book {
    /// An empty book. `node` is this node's id; it is written into numbers unless it is the
    /// default (`navbat`), so that two nodes never give the same number.
    pub fn new(node: &str) -> Book {
        Book {
            node_tag: (node != "navbat").then(|| node.to_owned()),
            ready: true,
            ..Book::default()
        }
    }

    /// A book that refuses intake until [`Book::restore`] (the database was down at start).
    pub fn not_ready(node: &str) -> Book {
        Book {
            ready: false,
            ..Book::new(node)
        }
    }

    /// Whether it takes changes.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// Rebuilds the book: heads of open (and recently closed) requests from the database,
    /// intake keys of the last [`KEY_MEMORY_MS`], the highest number per tenant and day, then
    /// the journal's undrained steps on top (a step older than the head it finds is skipped).
    pub fn restore(
        &mut self,
        heads: Vec<Head>,
        keys: Vec<(String, String, i64)>,
        numbers: Vec<String>,
        undrained: Vec<RequestStep>,
    ) {
        for head in heads {
            self.learn_head(&head);
            self.put(head);
        }
        for (key, id, at) in keys {
            self.remember_key(key, id, at);
        }
        for number in numbers {
            self.count_number(&number);
        }
        for step in undrained {
            let newer = self
                .heads
                .get(&step.head.id)
                .is_none_or(|h| h.version < step.head.version);
            self.count_number(&step.head.id);
            if let Some(key) = &step.head.intake_key {
                self.remember_key(
                    key.clone(),
                    step.head.id.clone(),
                    step.head.registered_at_ms,
                );
            }
            if let Some(m) = step.change.message() {
                if let Some(x) = &m.external_id {
                    self.remember_key(format!("msg:{x}"), step.head.id.clone(), step.at_ms);
                }
            }
            if newer {
                self.learn_head(&step.head);
                self.put(step.head);
            }
        }
        self.ready = true;
    }

    fn count_number(&mut self, id: &str) {
        // tenant-yymmdd[-node]-n
        let mut parts = id.rsplitn(2, '-');
        let (Some(n), Some(rest)) = (parts.next(), parts.next()) else {
            return;
        };
        let Ok(n) = n.parse::<u32>() else { return };
        let c = self.counters.entry(split_prefix(rest)).or_insert(0);
        *c = (*c).max(n);
    }

    fn learn_head(&mut self, head: &Head) {
        if let Some(r) = &head.thread_ref {
            self.external.insert(r.clone(), head.id.clone());
        }
        for r in &head.references {
            self.external.insert(r.clone(), head.id.clone());
        }
    }

    fn put(&mut self, head: Head) {
        if !head.status.is_open() {
            self.closed_order.push_back(head.id.clone());
            while self.closed_order.len() > RECENT_CLOSED {
                if let Some(old) = self.closed_order.pop_front() {
                    if self.heads.get(&old).is_some_and(|h| !h.status.is_open()) {
                        if let Some(gone) = self.heads.remove(&old) {
                            // Its thread's ids go too (a late answer reopens it from the
                            // database by the number in the subject).
                            for r in gone.references.iter().chain(gone.thread_ref.iter()) {
                                if self.external.get(r) == Some(&gone.id) {
                                    self.external.remove(r);
                                }
                            }
                        }
                    }
                }
            }
        }
        self.heads.insert(head.id.clone(), head);
    }

    fn remember_key(&mut self, key: String, id: String, at_ms: i64) {
        if self.keys.insert(key.clone(), (id, at_ms)).is_none() {
            self.key_order.push_back((at_ms, key));
        }
    }

    /// Forgets intake keys older than [`KEY_MEMORY_MS`] before `now_ms`.
    pub fn prune(&mut self, now_ms: i64) {
        while let Some((at, _)) = self.key_order.front() {
            if now_ms - *at <= KEY_MEMORY_MS {
                break;
            }
            if let Some((_, key)) = self.key_order.pop_front() {
                self.keys.remove(&key);
            }
        }
    }

    /// The request an intake key made, if seen.
    pub fn by_key(&self, key: &str) -> Option<&str> {
        self.keys.get(key).map(|(id, _)| id.as_str())
    }

    /// The request a message id (e-mail `Message-ID` of ours or theirs) belongs to.
    pub fn by_external(&self, external_id: &str) -> Option<&str> {
        self.external.get(external_id).map(String::as_str)
    }

    /// A head in memory.
    pub fn head(&self, id: &str) -> Option<&Head> {
        self.heads.get(id)
    }

    /// Puts a head read from the database (a closed request being reopened).
    pub fn load(&mut self, head: Head) {
        let newer = self
            .heads
            .get(&head.id)
            .is_none_or(|h| h.version < head.version);
        if newer {
            self.learn_head(&head);
            self.put(head);
        }
    }

    /// Open requests (any order).
    pub fn open(&self) -> impl Iterator<Item = &Head> {
        self.heads.values().filter(|h| h.status.is_open())
    }

    /// Registers a request under an intake key, or gives back the one the key made.
    /// `day` is the local date of `now_ms` in the tenant's zone as `yymmdd`.
    pub fn intake(
        &mut self,
        key: Option<&str>,
        mut new: NewRequest,
        day: &str,
        now_ms: i64,
    ) -> Result<(Intake, Option<Staged>), RequestError> {
        if !self.ready {
            return Err(RequestError::NotReady);
        }
        if let Some(id) = key.and_then(|k| self.by_key(k)) {
            return Ok((Intake::Known(id.to_owned()), None));
        }
        let prefix = match &self.node_tag {
            Some(node) => format!("{}-{day}-{node}", new.tenant),
            None => format!("{}-{day}", new.tenant),
        };
        let counter = self
            .counters
            .entry((new.tenant.clone(), split_prefix(&prefix).1))
            .or_insert(0);
        *counter += 1;
        let id = format!("{prefix}-{:04}", *counter);
        let mut head = Head {
            id: id.clone(),
            tenant: new.tenant.clone(),
            channel: new.channel,
            kind: new.kind,
            priority: new.priority,
            status: Status::New,
            category: new.category.take(),
            topic: new.topic.take(),
            subject: clip(&new.subject, 200),
            requester: new.requester.clone(),
            language: new.language.clone(),
            assignee: new.assignee.clone(),
            intake_key: key.map(str::to_owned),
            registered_at_ms: now_ms,
            first_answer_at_ms: None,
            resolved_at_ms: None,
            closed_at_ms: None,
            submitted_at_ms: (new.kind == Kind::Moderation).then_some(now_ms),
            pauses: Vec::new(),
            calls: new.call_uid.iter().cloned().collect(),
            forwarded_at_ms: None,
            chancellery_ref: None,
            thread_ref: None,
            references: Vec::new(),
            messages: 0,
            breaches: Vec::new(),
            updated_at_ms: now_ms,
            version: 1,
        };
        if let Some(chat) = head.requester.telegram_chat {
            // Later messages of the chat find the request by it (see `telegram`).
            head.references
                .push(format!("tgchat:{}:{chat}", head.tenant));
        }
        let mut keys = Vec::new();
        let message = new.message.take().map(|mut m| {
            head.messages += 1;
            m.uid = format!("{id}-m{}", head.messages);
            if let Some(x) = &m.external_id {
                head.thread_ref = Some(x.clone());
                head.references.push(x.clone());
                keys.push(format!("msg:{x}"));
            }
            m
        });
        if let Some(k) = key {
            keys.push(k.to_owned());
        }
        for k in &keys {
            self.remember_key(k.clone(), id.clone(), now_ms);
        }
        self.learn_head(&head);
        self.put(head.clone());
        let staged = Staged {
            step: RequestStep {
                head,
                change: Change::Opened { message },
                actor: new.actor,
                at_ms: now_ms,
            },
            previous: None,
            keys,
            numbered: Some((new.tenant, split_prefix(&prefix).1)),
        };
        Ok((Intake::New(id), Some(staged)))
    }

    /// Takes back a staged change the journal did not keep.
    pub fn undo(&mut self, staged: Staged) {
        let id = staged.step.head.id.clone();
        match staged.previous {
            Some(prev) => {
                self.heads.insert(id.clone(), prev);
            }
            None => {
                self.heads.remove(&id);
            }
        }
        for k in staged.keys {
            if self.keys.get(&k).is_some_and(|(owner, _)| *owner == id) {
                self.keys.remove(&k);
            }
        }
        if let Some(counter) = staged.numbered.and_then(|n| self.counters.get_mut(&n)) {
            // Only the newest number can be given back; an older gap stays a gap.
            if id.ends_with(&format!("-{:04}", *counter)) {
                *counter -= 1;
            }
        }
    }

    /// Applies `change` to request `id` at `now_ms` by `actor`, checking it first.
    pub fn change(
        &mut self,
        id: &str,
        change: Change,
        actor: &str,
        now_ms: i64,
    ) -> Result<Staged, RequestError> {
        if !self.ready {
            return Err(RequestError::NotReady);
        }
        let previous = self
            .heads
            .get(id)
            .cloned()
            .ok_or_else(|| RequestError::Unknown(id.to_owned()))?;
        let mut head = previous.clone();
        let mut keys = Vec::new();
        let change = match change {
            Change::Opened { .. } => return Err(RequestError::Invalid("a request opens once")),
            Change::Status { to, .. } => {
                let from = head.status;
                if !from.can_move_to(to) {
                    return Err(RequestError::Transition { from, to });
                }
                move_status(&mut head, to, now_ms);
                Change::Status { from, to }
            }
            Change::Message { mut message } => {
                head.messages += 1;
                message.uid = format!("{}-m{}", head.id, head.messages);
                if let Some(x) = &message.external_id {
                    keys.push(format!("msg:{x}"));
                    if head.references.len() < MAX_REFERENCES {
                        head.references.push(x.clone());
                    }
                }
                match message.direction {
                    Direction::In => {
                        if let Some(x) = &message.external_id {
                            head.thread_ref = Some(x.clone());
                        }
                        // The customer's answer: waiting ends, a solved request reopens.
                        if matches!(
                            head.status,
                            Status::Waiting | Status::Resolved | Status::Closed
                        ) {
                            move_status(&mut head, Status::InProgress, now_ms);
                        }
                    }
                    Direction::Out => {
                        if head.first_answer_at_ms.is_none() {
                            head.first_answer_at_ms = Some(now_ms);
                        }
                        if head.status == Status::New {
                            move_status(&mut head, Status::Answered, now_ms);
                        }
                    }
                    Direction::Letter => {
                        if head.forwarded_at_ms.is_none() {
                            head.forwarded_at_ms = Some(now_ms);
                        }
                        if head.status != Status::Forwarded && head.status.is_open() {
                            move_status(&mut head, Status::Forwarded, now_ms);
                        }
                    }
                    Direction::Note => {}
                }
                Change::Message { message }
            }
            Change::Assigned { to, .. } => {
                let from = head.assignee.clone();
                if from == to {
                    return Err(RequestError::Invalid("already assigned so"));
                }
                head.assignee = to.clone();
                Change::Assigned { from, to }
            }
            c @ Change::Classified { .. } => {
                if let Change::Classified {
                    priority,
                    category,
                    topic,
                } = &c
                {
                    head.priority = *priority;
                    head.category = category.clone();
                    head.topic = topic.clone();
                }
                c
            }
            Change::CallLinked { call_uid } => {
                if head.calls.contains(&call_uid) {
                    return Err(RequestError::Invalid("the call is already linked"));
                }
                if head.calls.len() < 50 {
                    head.calls.push(call_uid.clone());
                }
                Change::CallLinked { call_uid }
            }
            Change::ChancelleryAnswer { reference } => {
                if head.forwarded_at_ms.is_none() {
                    return Err(RequestError::Invalid("the request was not forwarded"));
                }
                head.chancellery_ref = Some(clip(&reference, 80));
                if head.status == Status::Forwarded {
                    move_status(&mut head, Status::InProgress, now_ms);
                }
                Change::ChancelleryAnswer { reference }
            }
            Change::Resubmitted => {
                if head.kind != Kind::Moderation {
                    return Err(RequestError::Invalid(
                        "only a moderation card is resubmitted",
                    ));
                }
                head.submitted_at_ms = Some(now_ms);
                if matches!(head.status, Status::Waiting | Status::Resolved) {
                    move_status(&mut head, Status::InProgress, now_ms);
                }
                Change::Resubmitted
            }
            c @ Change::Delivery { .. } => c,
            Change::Breached { clock } => {
                if head.breaches.contains(&clock) {
                    return Err(RequestError::Invalid("already recorded"));
                }
                head.breaches.push(clock.clone());
                Change::Breached { clock }
            }
        };
        head.version += 1;
        head.updated_at_ms = now_ms;
        for k in &keys {
            self.remember_key(k.clone(), head.id.clone(), now_ms);
        }
        self.learn_head(&head);
        self.put(head.clone());
        Ok(Staged {
            step: RequestStep {
                head,
                change,
                actor: actor.to_owned(),
                at_ms: now_ms,
            },
            previous: Some(previous),
            keys,
            numbered: None,
        })
    }
}

/// `(tenant, "yymmdd[-node]")` from `tenant-yymmdd[-node]`. Tenant ids have no `-` followed
/// by six digits, so the first such part starts the day.
fn split_prefix(prefix: &str) -> (String, String) {
    let bytes = prefix.as_bytes();
    let mut i = 0;
    while let Some(pos) = prefix[i..].find('-') {
        let at = i + pos;
        let day = &bytes[at + 1..];
        if day.len() >= 6
            && day[..6].iter().all(u8::is_ascii_digit)
            && (day.len() == 6 || day[6] == b'-')
        {
            return (prefix[..at].to_owned(), prefix[at + 1..].to_owned());
        }
        i = at + 1;
    }
    (prefix.to_owned(), String::new())
}

fn move_status(head: &mut Head, to: Status, now_ms: i64) {
    let from = head.status;
    if from == Status::Waiting {
        if let Some(p) = head.pauses.last_mut().filter(|p| p.to_ms.is_none()) {
            p.to_ms = Some(now_ms);
        }
    }
    if to == Status::Waiting && head.pauses.len() < 100 {
        head.pauses.push(Pause {
            from_ms: now_ms,
            to_ms: None,
        });
    }
    match to {
        Status::Resolved => head.resolved_at_ms = Some(now_ms),
        Status::Closed => {
            head.closed_at_ms = Some(now_ms);
            if head.resolved_at_ms.is_none() {
                head.resolved_at_ms = Some(now_ms);
            }
        }
        Status::InProgress if !from.is_open() => {
            head.resolved_at_ms = None;
            head.closed_at_ms = None;
        }
        _ => {}
    }
    head.status = to;
}

fn clip(text: &str, max: usize) -> String {
    let t = text.trim();
    match t.char_indices().nth(max) {
        Some((at, _)) => t[..at].to_owned(),
        None => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(tenant: &str, subject: &str) -> NewRequest {
        NewRequest {
            tenant: tenant.into(),
            channel: Channel::Web,
            kind: Kind::Ordinary,
            priority: Priority::Normal,
            category: None,
            topic: None,
            subject: subject.into(),
            requester: Requester {
                email: Some("a@example.uz".into()),
                ..Requester::default()
            },
            language: "ru".into(),
            message: Some(Message {
                uid: String::new(),
                direction: Direction::In,
                channel: Channel::Web,
                author: None,
                body: "Текст".into(),
                external_id: None,
                attachments: Vec::new(),
                to: None,
            }),
            call_uid: None,
            actor: "customer".into(),
            assignee: None,
        }
    }

    fn out(body: &str) -> Change {
        Change::Message {
            message: Message {
                uid: String::new(),
                direction: Direction::Out,
                channel: Channel::Email,
                author: Some("op1001".into()),
                body: body.into(),
                external_id: Some(format!("{body}@navbat")),
                attachments: Vec::new(),
                to: None,
            },
        }
    }

    fn open(book: &mut Book, key: &str, day: &str) -> String {
        match book
            .intake(Some(key), web("support", "s"), day, 1_000)
            .unwrap()
        {
            (Intake::New(id), Some(_)) => id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn numbers_count_per_tenant_and_day() {
        let mut book = Book::new("navbat");
        assert_eq!(open(&mut book, "k1", "261206"), "support-261206-0001");
        assert_eq!(open(&mut book, "k2", "261206"), "support-261206-0002");
        assert_eq!(open(&mut book, "k3", "261207"), "support-261207-0001");
        let (i, _) = book
            .intake(Some("k4"), web("dtm", "s"), "261206", 1)
            .unwrap();
        assert_eq!(i, Intake::New("dtm-261206-0001".into()));
        let mut other = Book::new("node-b");
        assert_eq!(
            open(&mut other, "k1", "261206"),
            "support-261206-node-b-0001"
        );
    }

    #[test]
    fn a_key_seen_before_gives_the_same_request() {
        let mut book = Book::new("navbat");
        let id = open(&mut book, "form:abc", "261206");
        let (again, staged) = book
            .intake(Some("form:abc"), web("support", "s"), "261206", 2_000)
            .unwrap();
        assert_eq!(again, Intake::Known(id));
        assert!(staged.is_none());
    }

    #[test]
    fn restore_continues_numbers_and_keys_and_skips_old_steps() {
        let mut first = Book::new("navbat");
        let (_, s1) = first
            .intake(Some("mail:<x@y>"), web("support", "s"), "261206", 1_000)
            .unwrap();
        let s1 = s1.unwrap();
        let s2 = first
            .change("support-261206-0001", out("hello"), "op1001", 2_000)
            .unwrap();
        // The database has step 1; the journal still has 1 and 2.
        let mut book = Book::not_ready("navbat");
        assert_eq!(
            book.intake(None, web("support", "s"), "261206", 3_000)
                .unwrap_err(),
            RequestError::NotReady
        );
        book.restore(
            vec![s1.step.head.clone()],
            vec![("mail:<x@y>".into(), "support-261206-0001".into(), 1_000)],
            vec!["support-261206-0001".into()],
            vec![s2.step.clone(), s1.step.clone()],
        );
        let head = book.head("support-261206-0001").unwrap();
        assert_eq!(head.version, 2);
        assert_eq!(head.status, Status::Answered);
        assert_eq!(book.by_key("mail:<x@y>"), Some("support-261206-0001"));
        assert_eq!(
            book.by_external("hello@navbat"),
            Some("support-261206-0001")
        );
        assert_eq!(open(&mut book, "k9", "261206"), "support-261206-0002");
    }

    #[test]
    fn undo_takes_everything_back() {
        let mut book = Book::new("navbat");
        let (_, staged) = book
            .intake(Some("k"), web("support", "s"), "261206", 1)
            .unwrap();
        book.undo(staged.unwrap());
        assert!(book.head("support-261206-0001").is_none());
        assert!(book.by_key("k").is_none());
        assert_eq!(open(&mut book, "k", "261206"), "support-261206-0001");
        let s = book
            .change(
                "support-261206-0001",
                Change::Status {
                    from: Status::New,
                    to: Status::Waiting,
                },
                "op",
                5,
            )
            .unwrap();
        book.undo(s);
        assert_eq!(
            book.head("support-261206-0001").unwrap().status,
            Status::New
        );
    }

    #[test]
    fn the_first_reply_answers_and_the_customer_reopens() {
        let mut book = Book::new("navbat");
        let id = open(&mut book, "k", "261206");
        let s = book.change(&id, out("r1"), "op1001", 2_000).unwrap();
        assert_eq!(s.step.head.status, Status::Answered);
        assert_eq!(s.step.head.first_answer_at_ms, Some(2_000));
        book.change(
            &id,
            Change::Status {
                from: Status::Answered,
                to: Status::Waiting,
            },
            "op1001",
            3_000,
        )
        .unwrap();
        let inbound = Change::Message {
            message: Message {
                uid: String::new(),
                direction: Direction::In,
                channel: Channel::Email,
                author: None,
                body: "answer".into(),
                external_id: Some("c2@example.uz".into()),
                attachments: Vec::new(),
                to: None,
            },
        };
        let s = book.change(&id, inbound, "customer", 10_000).unwrap();
        assert_eq!(s.step.head.status, Status::InProgress);
        assert_eq!(
            s.step.head.pauses,
            vec![Pause {
                from_ms: 3_000,
                to_ms: Some(10_000)
            }]
        );
        assert_eq!(s.step.head.thread_ref.as_deref(), Some("c2@example.uz"));
        assert_eq!(s.step.head.version, 4);
        // A second reply keeps the first answer's time.
        let s = book.change(&id, out("r2"), "op1001", 11_000).unwrap();
        assert_eq!(s.step.head.first_answer_at_ms, Some(2_000));
        assert_eq!(s.step.head.messages, 4);
    }

    #[test]
    fn refusals_are_typed() {
        let mut book = Book::new("navbat");
        let id = open(&mut book, "k", "261206");
        assert_eq!(
            book.change(
                &id,
                Change::Status {
                    from: Status::New,
                    to: Status::New
                },
                "op",
                1
            )
            .unwrap_err(),
            RequestError::Transition {
                from: Status::New,
                to: Status::New
            }
        );
        assert!(matches!(
            book.change(&id, Change::Resubmitted, "op", 1),
            Err(RequestError::Invalid(_))
        ));
        assert!(matches!(
            book.change("nope", Change::Resubmitted, "op", 1),
            Err(RequestError::Unknown(_))
        ));
        assert!(matches!(
            book.change(
                &id,
                Change::ChancelleryAnswer {
                    reference: "x".into()
                },
                "ed",
                1
            ),
            Err(RequestError::Invalid(_))
        ));
    }

    #[test]
    fn a_letter_forwards_and_the_answer_comes_back() {
        let mut book = Book::new("navbat");
        let id = open(&mut book, "k", "261206");
        let letter = Change::Message {
            message: Message {
                uid: String::new(),
                direction: Direction::Letter,
                channel: Channel::Email,
                author: Some("editor".into()),
                body: "Letter".into(),
                external_id: Some("l1@navbat".into()),
                attachments: Vec::new(),
                to: Some("devonxona@dtm.uz".into()),
            },
        };
        let s = book.change(&id, letter, "editor", 5).unwrap();
        assert_eq!(s.step.head.status, Status::Forwarded);
        assert_eq!(s.step.head.forwarded_at_ms, Some(5));
        let s = book
            .change(
                &id,
                Change::ChancelleryAnswer {
                    reference: "01-12/345".into(),
                },
                "editor",
                9,
            )
            .unwrap();
        assert_eq!(s.step.head.status, Status::InProgress);
        assert_eq!(s.step.head.chancellery_ref.as_deref(), Some("01-12/345"));
    }

    #[test]
    fn old_keys_are_forgotten() {
        let mut book = Book::new("navbat");
        open(&mut book, "k", "261206");
        book.prune(1_000 + KEY_MEMORY_MS);
        assert!(book.by_key("k").is_some());
        book.prune(1_001 + KEY_MEMORY_MS);
        assert!(book.by_key("k").is_none());
    }

    #[test]
    fn prefixes_split_at_the_day() {
        assert_eq!(
            split_prefix("support-261206"),
            ("support".into(), "261206".into())
        );
        assert_eq!(
            split_prefix("my-line-261206-node-b"),
            ("my-line".into(), "261206-node-b".into())
        );
    }
}
