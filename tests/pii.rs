//! Callers' personal data sealed at rest (issue 16 part 2, D18): the raw bytes of the SQLite
//! file, of a Postgres data directory and of the journal hold no caller number, name,
//! organisation or STIR in the clear; repeat calls still link; a database read without the
//! key, or with another key, fails with the named error; `navbat migrate` seals what an older
//! navbat left plain, idempotently, and the data reads back.

mod common;
mod sms_stub;
mod store_support;

use navbat::config::DatabaseUrl;
use navbat::events::{CallOutcome, EventBus, EventKind, EventSink};
use navbat::pii::{Pii, PiiError};
use navbat::privacy::PhoneNumber;
use navbat::store::outbox::StoreRecord;
use navbat::store::people::DispositionRecord;
use navbat::store::{Store, StoreError, StoreSettings};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The caller of the store-level tests.
const NUMBER: &str = "+998901234567";
const NAME: &str = "Aziz Karimov";
const ORGANISATION: &str = "Turon Savdo MChJ";
const STIR: &str = "305123987";

/// What must not be found in the clear: the number with and without `+`, its digits without
/// the country code, and the caller's details.
fn needles(number: &str) -> Vec<String> {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    vec![
        number.to_owned(),
        digits.clone(),
        digits[3..].to_owned(),
        NAME.to_owned(),
        ORGANISATION.to_owned(),
        STIR.to_owned(),
    ]
}

/// Every regular file under `root`, recursively.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => todo.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out
}

/// The files under `root` whose raw bytes contain any of `needles`.
fn clear_hits(root: &Path, needles: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    for file in files(root) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                hits.push(format!("{} holds {n:?}", file.display()));
            }
        }
    }
    hits
}

fn settings(url: DatabaseUrl, dir: &Path, pii: Arc<Pii>) -> StoreSettings {
    StoreSettings {
        url,
        journal_dir: dir.join("journal"),
        buffer_events: 1 << 16,
        journal_batch_events: 256,
        db_batch_events: 1024,
        journal_segment_bytes: 1 << 20,
        node: "pii".into(),
        repeat_window: Duration::from_secs(7 * 86_400),
        time_zones: HashMap::new(),
        pii,
    }
}

fn call(bus: &EventBus, call: &str, caller: &str) {
    bus.emit(EventKind::CallArrived {
        call: call.into(),
        tenant: "dtm".into(),
        did: "712351914".into(),
        caller: PhoneNumber::new(caller),
        transport: "udp".into(),
    });
    bus.emit(EventKind::CallFinished {
        call: call.into(),
        tenant: "dtm".into(),
        queue: Some("dtm-uz".into()),
        operator: Some("1001".into()),
        outcome: CallOutcome::Answered,
        wait_ms: 1000,
        talk_ms: 30_000,
        ended_by: "caller".into(),
    });
}

fn disposition(call_uid: &str) -> DispositionRecord {
    DispositionRecord {
        call_uid: call_uid.into(),
        tenant: "dtm".into(),
        operator: Some("1001".into()),
        topic: Some("results".into()),
        category: "question".into(),
        outcome: "resolved".into(),
        notes: "natija".into(),
        caller_name: Some(NAME.into()),
        organisation: Some(ORGANISATION.into()),
        stir: Some(STIR.into()),
        revision: 1,
        saved_by: "op1".into(),
        at_ms: 1,
    }
}

fn flushed(store: &Store) {
    assert!(store.flush(Duration::from_secs(30)), "{:?}", store.health());
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Two calls from one number and a disposition with the caller's details, through the store
/// as the router feeds it; returns the store and the two calls' store names.
fn two_calls_and_a_disposition(store: &Store) -> (String, String) {
    let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
    call(&bus, "c1", NUMBER);
    call(&bus, "c2", "+998909999999");
    call(&bus, "c3", NUMBER);
    let (first, second) = (store.call_uid("c1"), store.call_uid("c3"));
    store
        .record(StoreRecord::Disposition(disposition(&first)))
        .expect("journal room");
    flushed(store);
    (first, second)
}

/// What every back end must show: the second call links to the first through the lookup
/// hash, the history opens the number, the disposition opens its details.
async fn reads_back(store: &Store, first: &str, second: &str) {
    let row = store.db().call(second).await.unwrap().expect("second call");
    assert_eq!(row.repeat_of.as_deref(), Some(first));
    assert_eq!(row.caller_number.as_deref(), Some(NUMBER));
    let history = store.history(second).await.unwrap().expect("history");
    assert_eq!(history.caller.expose(), NUMBER);
    let earlier: Vec<&str> = history.earlier.iter().map(|h| h.call.as_str()).collect();
    assert_eq!(earlier, vec![first]);
    let pii = store.db().pii().cloned();
    let d =
        navbat::accounts::db::dispositions(store.db().pool(), pii.as_deref(), &[first.to_owned()])
            .await
            .unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].caller_name.as_deref(), Some(NAME));
    assert_eq!(d[0].organisation.as_deref(), Some(ORGANISATION));
    assert_eq!(d[0].stir.as_deref(), Some(STIR));
}

#[test]
fn sqlite_file_and_journal_hold_no_caller_data_in_the_clear_and_repeats_link() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let pii = store_support::pii_keys(keys.path());
    let url = DatabaseUrl::Sqlite(format!(
        "sqlite://{}",
        dir.path().join("navbat.db").display()
    ));
    let store = Store::open(settings(url, dir.path(), pii)).unwrap();
    let (first, second) = two_calls_and_a_disposition(&store);
    block_on(store.run({
        let store = store.clone();
        async move { reads_back(&store, &first, &second).await }
    }))
    .unwrap();
    drop(store);
    // The database file (and its WAL) and every journal segment: nothing in the clear.
    let hits = clear_hits(dir.path(), &needles(NUMBER));
    assert!(hits.is_empty(), "{hits:#?}");
    // The search itself finds a number written plain (or it proves nothing).
    std::fs::write(dir.path().join("probe"), format!("x{}y", &NUMBER[4..])).unwrap();
    assert_eq!(clear_hits(dir.path(), &needles(NUMBER)).len(), 1);
}

#[test]
fn postgres_data_dir_holds_no_caller_data_in_the_clear_and_repeats_link() {
    let pg = store_support::Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let pii = store_support::pii_keys(keys.path());
    let url = DatabaseUrl::Postgres(pg.url());
    let store = Store::open(settings(url, dir.path(), pii)).unwrap();
    let (first, second) = two_calls_and_a_disposition(&store);
    block_on(store.run({
        let store = store.clone();
        async move {
            reads_back(&store, &first, &second).await;
            // Heap files as well as the WAL.
            sqlx::query("CHECKPOINT")
                .execute(store.db().pool())
                .await
                .unwrap();
        }
    }))
    .unwrap();
    drop(store);
    let hits = clear_hits(pg.data_dir(), &needles(NUMBER));
    assert!(hits.is_empty(), "{hits:#?}");
    let hits = clear_hits(dir.path(), &needles(NUMBER));
    assert!(hits.is_empty(), "{hits:#?}");
}

/// The number of the SMS and the callback of the outbox tests.
const OUTBOX_NUMBER: &str = "+998935551234";
/// The requester of the requests tests (with [`NAME`], [`ORGANISATION`], [`STIR`]).
const REQUESTER_PHONE: &str = "+998977654321";
const EMAIL: &str = "nodira.usmonova@example.uz";

/// Everything of the outbox tests that must not be found in the clear.
fn outbox_needles() -> Vec<String> {
    let mut out = needles(OUTBOX_NUMBER);
    out.extend(needles(REQUESTER_PHONE));
    out.push(EMAIL.to_owned());
    out
}

fn sms_queued() -> StoreRecord {
    StoreRecord::Sms(navbat::sms::SmsRecord::Queued {
        message: navbat::sms::Message {
            id: "sms-1".into(),
            to: OUTBOX_NUMBER.into(),
            text: "Qo'ng'iroq qildingiz / Вы звонили".into(),
            kind: navbat::sms::MessageKind::MissedCall,
            tenant: "dtm".into(),
        },
    })
}

fn callback_requested() -> StoreRecord {
    StoreRecord::Callback(navbat::callback::CallbackRecord::Requested(
        navbat::callback::CallbackRequest {
            id: "cb-1".into(),
            tenant: "dtm".into(),
            queue: "dtm-uz".into(),
            number: OUTBOX_NUMBER.into(),
            language: "uz".into(),
            arrived_ms: 1_000,
            attempts: 0,
            due_ms: 0,
            call: "c9".into(),
        },
    ))
}

/// A request opened from a web form, the requester's details in the head and in the text;
/// its intake key is a missed call's (`phone:<tenant>:<digits>:<day>`).
fn request_opened() -> navbat::request_model::RequestStep {
    use navbat::request_model::*;
    let digits: String = REQUESTER_PHONE
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    RequestStep {
        head: Head {
            id: "support-261206-0001".into(),
            tenant: "support".into(),
            channel: Channel::Web,
            kind: Kind::Ordinary,
            priority: Priority::Normal,
            status: Status::New,
            category: Some("question".into()),
            topic: None,
            subject: "Kod".into(),
            requester: Requester {
                name: Some(NAME.into()),
                email: Some(EMAIL.into()),
                phone: Some(REQUESTER_PHONE.into()),
                telegram_chat: None,
                organisation: Some(ORGANISATION.into()),
                stir: Some(STIR.into()),
            },
            language: "uz".into(),
            assignee: None,
            intake_key: Some(format!("phone:support:{digits}:261206")),
            registered_at_ms: 1_000,
            first_answer_at_ms: None,
            resolved_at_ms: None,
            closed_at_ms: None,
            submitted_at_ms: None,
            pauses: Vec::new(),
            calls: Vec::new(),
            forwarded_at_ms: None,
            chancellery_ref: None,
            thread_ref: None,
            references: Vec::new(),
            messages: 1,
            breaches: Vec::new(),
            updated_at_ms: 1_000,
            version: 1,
        },
        change: Change::Opened {
            message: Some(Message {
                uid: "support-261206-0001-m1".into(),
                direction: Direction::In,
                channel: Channel::Web,
                author: None,
                body: format!("{NAME}, {ORGANISATION}, STIR {STIR}, {REQUESTER_PHONE}, {EMAIL}"),
                external_id: None,
                attachments: Vec::new(),
                to: Some(EMAIL.into()),
            }),
        },
        actor: "customer".into(),
        at_ms: 1_000,
    }
}

/// An SMS, a callback and a request through the store; on a second store over the same
/// database and key file the SMS and the callback come back pending with their numbers
/// opened, the request's head, thread and intake key read back, and the rows keep the
/// numbers' lookup hashes.
fn outbox_and_request_round_trip(url: DatabaseUrl, dir: &Path, pii: Arc<Pii>) {
    let store = Store::open(settings(url.clone(), dir, pii.clone())).unwrap();
    for record in [
        sms_queued(),
        callback_requested(),
        StoreRecord::Request(Box::new(request_opened())),
    ] {
        store.record(record).expect("journal room");
    }
    flushed(&store);
    drop(store);
    let store = Store::open(settings(url, dir, pii.clone())).unwrap();
    let sms = store_support::wait_for("the pending SMS", Duration::from_secs(30), || {
        let taken = store.take_recovered_sms();
        (!taken.items.is_empty()).then_some(taken.items)
    });
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].0.to, OUTBOX_NUMBER);
    let callbacks = store.take_recovered_callbacks().items;
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0].number, OUTBOX_NUMBER);
    block_on(store.run({
        let store = store.clone();
        async move {
            let db = store.db();
            let pii = db.pii().cloned();
            let pii = pii.as_deref();
            let lookup = pii.unwrap().lookup(OUTBOX_NUMBER);
            let raw = db
                .texts("SELECT to_number || ' ' || to_lookup FROM sms_messages")
                .await
                .unwrap();
            assert!(
                raw[0].starts_with("pii1.") && raw[0].ends_with(&lookup),
                "{raw:?}"
            );
            let raw = db
                .texts("SELECT caller_number || ' ' || caller_lookup FROM callback_requests")
                .await
                .unwrap();
            assert!(
                raw[0].starts_with("pii1.") && raw[0].ends_with(&lookup),
                "{raw:?}"
            );
            let restored = navbat::requests::db::restore(db.pool(), pii, 2_000)
                .await
                .unwrap();
            let head = &restored.heads[0];
            let expected = request_opened();
            assert_eq!(head.requester, expected.head.requester);
            let key = navbat::store::seal::phone_key(
                "support",
                &pii.unwrap().lookup(REQUESTER_PHONE),
                "261206",
            );
            assert_eq!(head.intake_key.as_deref(), Some(key.as_str()));
            assert!(restored.keys.iter().any(|(k, _, _)| *k == key));
            let listed = navbat::requests::db::list(db.pool(), pii, None, &[], 10)
                .await
                .unwrap();
            assert_eq!(listed[0].requester.label(), NAME);
            let thread = navbat::requests::db::thread(db.pool(), pii, &head.id)
                .await
                .unwrap();
            assert_eq!(
                Some(&thread[0].body),
                expected.change.message().map(|m| &m.body)
            );
            assert_eq!(thread[0].to.as_deref(), Some(EMAIL));
            // Without the keys: the named error, never the sealed or the plain text.
            let e = navbat::requests::db::list(db.pool(), None, None, &[], 10)
                .await
                .expect_err("no key, no requester");
            assert!(e.to_string().contains("fix:"), "{e}");
        }
    }))
    .unwrap();
    drop(store);
}

#[test]
fn sqlite_and_journal_hold_no_sms_callback_or_requester_data_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let pii = store_support::pii_keys(keys.path());
    let url = DatabaseUrl::Sqlite(format!(
        "sqlite://{}",
        dir.path().join("navbat.db").display()
    ));
    outbox_and_request_round_trip(url, dir.path(), pii);
    // The database file (and its WAL) and every journal segment: nothing in the clear.
    let hits = clear_hits(dir.path(), &outbox_needles());
    assert!(hits.is_empty(), "{hits:#?}");
    // The search itself finds each value written plain (or it proves nothing).
    for (i, n) in outbox_needles().iter().enumerate() {
        std::fs::write(dir.path().join(format!("probe{i}")), format!("x{n}y")).unwrap();
    }
    assert!(clear_hits(dir.path(), &outbox_needles()).len() >= outbox_needles().len());
}

#[test]
fn postgres_data_dir_holds_no_sms_callback_or_requester_data_in_the_clear() {
    let pg = store_support::Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let pii = store_support::pii_keys(keys.path());
    let url = DatabaseUrl::Postgres(pg.url());
    outbox_and_request_round_trip(url.clone(), dir.path(), pii.clone());
    let store = Store::open(settings(url, dir.path(), pii)).unwrap();
    block_on(store.run({
        let store = store.clone();
        async move {
            // Heap files as well as the WAL.
            sqlx::query("CHECKPOINT")
                .execute(store.db().pool())
                .await
                .unwrap();
        }
    }))
    .unwrap();
    drop(store);
    let hits = clear_hits(pg.data_dir(), &outbox_needles());
    assert!(hits.is_empty(), "{hits:#?}");
    let hits = clear_hits(dir.path(), &outbox_needles());
    assert!(hits.is_empty(), "{hits:#?}");
}

#[test]
fn another_key_file_or_none_cannot_read_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let pii = store_support::pii_keys(keys.path());
    let wrong = store_support::pii_keys(other.path());
    let url = DatabaseUrl::Sqlite(format!(
        "sqlite://{}",
        dir.path().join("navbat.db").display()
    ));
    let first = {
        let store = Store::open(settings(url.clone(), dir.path(), pii)).unwrap();
        let (first, _) = two_calls_and_a_disposition(&store);
        first
    };
    // The store with another key file does not start, and says which file and what to do.
    let e = Store::open(settings(url.clone(), dir.path(), wrong.clone()))
        .expect_err("another key file must not open the store");
    let text = e.to_string();
    assert!(
        matches!(e, StoreError::Pii(PiiError::WrongKey { .. })),
        "{e:?}"
    );
    assert!(
        text.contains(&wrong.path().display().to_string()) && text.contains("fix:"),
        "{text}"
    );
    block_on(async {
        // A tool reading without keys: the named error, not the sealed text, not plain text.
        let db = navbat::store::db::Db::connect_lazy(&url).unwrap();
        let e = db.call(&first).await.expect_err("no key, no number");
        assert!(
            matches!(e, StoreError::Pii(PiiError::NoKey { .. })),
            "{e:?}"
        );
        assert!(e.to_string().contains("fix:"), "{e}");
        // With another key: the value does not open.
        let db = db.with_pii(wrong.clone());
        let e = db.call(&first).await.expect_err("wrong key, no number");
        assert!(
            matches!(e, StoreError::Pii(PiiError::Damaged { .. })),
            "{e:?}"
        );
        let e = navbat::accounts::db::dispositions(
            db.pool(),
            Some(&wrong),
            std::slice::from_ref(&first),
        )
        .await
        .expect_err("wrong key, no caller details");
        assert!(e.to_string().contains("does not open"), "{e}");
        db.close().await;
    });
}

/// Takes schemas 11 and 9 (sealing) and 10 (softphone listeners) off a fresh database,
/// leaving what an older navbat left: no lookup columns, no key check, the number's index on
/// the number.
async fn downgrade_to_schema_8(pool: &sqlx::AnyPool) {
    for sql in [
        "DROP INDEX sms_messages_to_lookup",
        "ALTER TABLE sms_messages DROP COLUMN to_lookup",
        "DROP INDEX callback_requests_caller_lookup",
        "ALTER TABLE callback_requests DROP COLUMN caller_lookup",
        "DELETE FROM navbat_migrations WHERE version = 11",
        "DROP INDEX account_sip_ext",
        "DROP TABLE account_sip",
        "DELETE FROM navbat_migrations WHERE version = 10",
        "DROP INDEX call_records_caller_lookup",
        "ALTER TABLE call_records DROP COLUMN caller_lookup",
        "DROP TABLE pii_keys",
        "CREATE INDEX call_records_caller ON call_records (caller_number, arrived_at_ms)",
        "DELETE FROM navbat_migrations WHERE version = 9",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
}

/// The database as an older navbat wrote it at `url`: plain numbers and caller details in
/// call records, a disposition, an SMS, a callback request, a request and its message.
fn older_database(url: &DatabaseUrl) {
    block_on(async {
        let db = navbat::store::db::Db::connect_lazy(url).unwrap();
        db.migrate().await.unwrap();
        downgrade_to_schema_8(db.pool()).await;
        for (uid, number, at) in [
            ("old:b:c1", NUMBER, 1_000_i64),
            ("old:b:c2", "+998909999999", 2_000),
            ("old:b:c3", NUMBER, 3_000),
        ] {
            sqlx::query(
                "INSERT INTO call_records (call_uid, node, boot, tenant, caller_number, \
                 arrived_at_ms, outcome) VALUES ($1, 'old', 'b', 'dtm', $2, $3, 'answered')",
            )
            .bind(uid)
            .bind(number)
            .bind(at)
            .execute(db.pool())
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO dispositions (disposition_uid, call_uid, tenant, category, outcome, \
             caller_name, organisation, stir, revision, at_ms) VALUES ('old:b:c1', 'old:b:c1', \
             'dtm', 'question', 'resolved', $1, $2, $3, 1, 1)",
        )
        .bind(NAME)
        .bind(ORGANISATION)
        .bind(STIR)
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO sms_messages (id, node, tenant, purpose, to_number, body, queued_at_ms, \
             status, attempts, progress, updated_at_ms) VALUES ('old-sms', 'old', 'dtm', \
             'missed_call', $1, 'salom', 1, 'sent', 1, 6, 2)",
        )
        .bind(OUTBOX_NUMBER)
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO callback_requests (id, node, tenant, queue, caller_number, language, \
             arrived_at_ms, requested_at_ms, status, attempts, progress, updated_at_ms) VALUES \
             ('old-cb', 'old', 'dtm', 'dtm-uz', $1, 'uz', 1, 1, 'connected', 1, 6, 2)",
        )
        .bind(OUTBOX_NUMBER)
        .execute(db.pool())
        .await
        .unwrap();
        let step = request_opened();
        let h = &step.head;
        sqlx::query(
            "INSERT INTO requests (id, tenant, channel, kind, priority, status, subject, \
             intake_key, registered_at_ms, updated_at_ms, version, head) VALUES \
             ($1, $2, 'web', 'ordinary', 'normal', 'new', $3, $4, $5, $5, 1, $6)",
        )
        .bind(h.id.clone())
        .bind(h.tenant.clone())
        .bind(h.subject.clone())
        .bind(h.intake_key.clone())
        .bind(jiff::Timestamp::now().as_millisecond())
        .bind(serde_json::to_string(h).unwrap())
        .execute(db.pool())
        .await
        .unwrap();
        let m = step.change.message().unwrap();
        sqlx::query(
            "INSERT INTO request_messages (message_uid, request_id, at_ms, direction, channel, \
             body, to_addr) VALUES ($1, $2, 1000, 'in', 'web', $3, $4)",
        )
        .bind(m.uid.clone())
        .bind(h.id.clone())
        .bind(m.body.clone())
        .bind(m.to.clone())
        .execute(db.pool())
        .await
        .unwrap();
        db.close().await;
    });
}

/// Every value of the sealed columns, as stored.
fn stored_values(url: &DatabaseUrl) -> Vec<String> {
    block_on(async {
        let db = navbat::store::db::Db::connect_lazy(url).unwrap();
        let mut out = Vec::new();
        for sql in [
            "SELECT caller_number FROM call_records",
            "SELECT caller_name FROM dispositions",
            "SELECT stir FROM dispositions",
            "SELECT organisation FROM dispositions",
            "SELECT to_number FROM sms_messages",
            "SELECT caller_number FROM callback_requests",
            "SELECT head FROM requests",
            "SELECT intake_key FROM requests",
            "SELECT body FROM request_messages",
            "SELECT to_addr FROM request_messages",
        ] {
            out.extend(db.texts(sql).await.unwrap());
        }
        db.close().await;
        out
    })
}

/// The stored values that hold any of `needles` in the clear.
fn plain_values(url: &DatabaseUrl, needles: &[String]) -> Vec<String> {
    stored_values(url)
        .into_iter()
        .filter(|v| needles.iter().any(|n| v.contains(n.as_str())))
        .collect()
}

/// Every needle of the migration tests.
fn all_needles() -> Vec<String> {
    let mut out = needles(NUMBER);
    out.extend(outbox_needles());
    out
}

/// `navbat migrate` in `d` (whose navbat.toml names the database), run twice: the first
/// seals everything and says so, the second seals nothing.
fn migrate_twice(d: &Path, journal_entries: u64) {
    let (ok, out) = migrate(d);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "3 call record(s), 1 disposition(s), 1 SMS, 1 callback request(s), 1 request(s), \
             1 request message(s), {journal_entries} journal entr"
        )),
        "{out}"
    );
    let (ok, out) = migrate(d);
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "0 call record(s), 0 disposition(s), 0 SMS, 0 callback request(s), 0 request(s), \
             0 request message(s), 0 journal entr"
        ),
        "{out}"
    );
}

#[test]
fn navbat_migrate_seals_an_older_database_and_journal_once_and_they_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join(common::NO_PROMPTS_DIR)).unwrap();
    let db_path = d.join("data/navbat.db");
    std::fs::create_dir_all(d.join("data")).unwrap();
    let url = DatabaseUrl::Sqlite(format!("sqlite://{}", db_path.display()));
    older_database(&url);
    // An undrained journal of the older navbat: a call arrival with the number plain, and a
    // queued SMS with its number plain.
    std::fs::create_dir_all(d.join("journal")).unwrap();
    let line = serde_json::json!({
        "uid": "old:b:1", "node": "old", "boot": "b", "seq": 1, "at_ms": 4_000,
        "event": {"kind":"call_arrived","call":"c4","tenant":"dtm","did":"712351914",
                  "caller":"+9989******67","transport":"udp"},
        "caller": NUMBER,
    });
    let sms = serde_json::json!({
        "uid": "old:b:r1", "node": "old", "boot": "b", "seq": 0, "at_ms": 4_001,
        "event": null, "record": sms_queued(),
    });
    std::fs::write(
        d.join("journal/000000000001.jnl"),
        format!("{line}\n{sms}\n"),
    )
    .unwrap();
    let probe = clear_hits(d, &all_needles());
    for n in all_needles() {
        assert!(
            probe.iter().any(|h| h.ends_with(&format!("{n:?}"))),
            "the older data must hold {n}, or this test proves nothing: {probe:#?}"
        );
    }
    let config = common::TestConfig::default()
        .extra_toml(&format!(
            "\n[database]\nurl = \"sqlite://{}\"\njournal_dir = \"journal\"\n",
            db_path.display()
        ))
        .render();
    std::fs::write(d.join("navbat.toml"), config).unwrap();
    // No key file: a clear error naming it and the fix, and nothing touched.
    let (ok, out) = migrate(d);
    assert!(!ok, "{out}");
    assert!(
        out.contains("keys/recordings.key") && out.contains("navbat keygen"),
        "{out}"
    );
    let pii = store_support::pii_keys(d);
    migrate_twice(d, 2);
    let hits = clear_hits(d, &all_needles())
        .into_iter()
        .filter(|h| !h.contains("navbat.toml"))
        .collect::<Vec<_>>();
    assert!(hits.is_empty(), "{hits:#?}");
    // It reads back: the numbers open, the lookup hash finds the caller's calls, the
    // disposition opens, and the journal's sealed arrival reaches the database; the queued
    // SMS comes back with its number opened, the request with its requester.
    let store = Store::open(settings(url, d, pii.clone())).unwrap();
    store_support::wait_for(
        "the older journal replayed",
        Duration::from_secs(30),
        || (store.health().replayed_events >= 2).then_some(()),
    );
    let sms = store.take_recovered_sms().items;
    assert_eq!(
        sms.iter().map(|(m, _)| m.to.as_str()).collect::<Vec<_>>(),
        vec![OUTBOX_NUMBER]
    );
    block_on(store.run({
        let store = store.clone();
        async move {
            let db = store.db();
            let row = db.call("old:b:c3").await.unwrap().expect("c3");
            assert_eq!(row.caller_number.as_deref(), Some(NUMBER));
            let calls = db.calls_from(&pii.lookup(NUMBER), 0, 10_000).await.unwrap();
            let uids: Vec<&str> = calls.iter().map(|c| c.call_uid.as_str()).collect();
            assert_eq!(uids, vec!["old:b:c4", "old:b:c3", "old:b:c1"]);
            assert!(calls
                .iter()
                .all(|c| c.caller_number.as_deref() == Some(NUMBER)));
            let d =
                navbat::accounts::db::dispositions(db.pool(), Some(&pii), &["old:b:c1".to_owned()])
                    .await
                    .unwrap();
            assert_eq!(d[0].stir.as_deref(), Some(STIR));
            assert_eq!(d[0].caller_name.as_deref(), Some(NAME));
            let heads = navbat::requests::db::list(db.pool(), Some(&pii), None, &[], 10)
                .await
                .unwrap();
            assert_eq!(heads[0].requester, request_opened().head.requester);
            let lookup = db
                .texts("SELECT to_lookup FROM sms_messages WHERE id = 'old-sms'")
                .await
                .unwrap();
            assert_eq!(lookup, vec![pii.lookup(OUTBOX_NUMBER)]);
        }
    }))
    .unwrap();
}

#[test]
fn navbat_migrate_seals_an_older_postgres_database_and_the_router_starts_on_it() {
    use common::desk::{login, with_desk};
    let pg = store_support::Postgres::start();
    let url = DatabaseUrl::Postgres(pg.url());
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join(common::NO_PROMPTS_DIR)).unwrap();
    older_database(&url);
    assert!(
        plain_values(&url, &all_needles()).len() >= 9,
        "the older data must be plain, or this test proves nothing"
    );
    let config = common::TestConfig::default()
        .extra_toml(&format!(
            "\n[database]\nurl = {:?}\njournal_dir = \"journal\"\n",
            pg.url()
        ))
        .render();
    std::fs::write(d.join("navbat.toml"), config).unwrap();
    let key = d.join("keys/recordings.key");
    store_support::pii_keys(d);
    migrate_twice(d, 0);
    let plain = plain_values(&url, &all_needles());
    assert!(plain.is_empty(), "{plain:#?}");
    // The router starts on it with the same key file; the inbox shows the request's requester.
    let nav = common::Navbat::start(
        "pii-pg-migrated",
        with_desk(common::TestConfig::default(), "")
            .extra_toml(&format!(
                "\n[database]\nurl = {:?}\njournal_dir = \"{}\"\n",
                pg.url(),
                d.join("journal").display()
            ))
            .key_file(&key),
    );
    let op = login(nav.http, "op1001");
    let inbox = op.get("/requests").body;
    assert!(inbox.contains(NAME), "{inbox}");
}

/// `navbat migrate` in `dir`: whether it succeeded, and what it printed.
fn migrate(dir: &Path) -> (bool, String) {
    let out = std::process::Command::new(common::navbat_bin())
        .args(["migrate", "--config", "navbat.toml"])
        .current_dir(dir)
        .output()
        .expect("run navbat migrate");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The number in the SIPp callers' `From` (tests/sipp/caller_ivr_talk.xml).
const SIPP_CALLER: &str = "998900000001";

#[test]
fn two_sipp_calls_from_one_number_link_and_the_data_dir_holds_no_number() {
    use common::*;
    let navbat = Navbat::start("pii-repeat", TestConfig::default());
    let phone = navbat.operator_phone("1001", "operator_answer.xml", 2, &[]);
    let mut calls = Vec::new();
    for n in 0..2 {
        navbat.wait_operator("1001", "available");
        navbat
            .caller(&format!("caller{n}"), "caller_ivr_talk.xml", DTM_DID, 1_000)
            .wait_success();
        let seen = calls.clone();
        let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
            !seen.contains(&e["call"].as_str().unwrap_or("").to_owned())
        });
        assert_eq!(finished["outcome"], "answered", "{finished}");
        calls.push(finished["call"].as_str().unwrap().to_owned());
    }
    phone.wait_success();
    // Both records in navbat's own database (SQLite in WAL mode, read beside it).
    let url = DatabaseUrl::Sqlite(format!(
        "sqlite://{}",
        navbat.dir.path().join("data/navbat.db").display()
    ));
    let pii = Arc::new(Pii::load(&navbat.dir.path().join("keys/recordings.key")).unwrap());
    let (first, second) = block_on(async {
        let db = navbat::store::db::Db::connect_lazy(&url)
            .unwrap()
            .with_pii(pii.clone());
        let uid_of = |call: String| {
            let db = db.clone();
            async move {
                let sql = format!(
                    "SELECT call_uid FROM call_records WHERE call_ref = '{call}' AND outcome IS NOT NULL"
                );
                for _ in 0..600 {
                    if let Some(uid) = db.texts(&sql).await.unwrap().pop() {
                        return uid;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("call {call} never reached the database");
            }
        };
        let first = uid_of(calls[0].clone()).await;
        let second = uid_of(calls[1].clone()).await;
        let row = db.call(&second).await.unwrap().expect("second call");
        // The second call is a repeat of the first, linked with the number sealed.
        assert_eq!(row.repeat_of.as_deref(), Some(first.as_str()));
        assert_eq!(row.caller_number.as_deref(), Some(SIPP_CALLER));
        let raw = db
            .texts(&format!(
                "SELECT caller_number FROM call_records WHERE call_uid = '{second}'"
            ))
            .await
            .unwrap();
        assert!(raw[0].starts_with("pii1."), "{raw:?}");
        db.close().await;
        (first, second)
    });
    assert_ne!(first, second);
    navbat.terminate();
    let mut navbat = navbat;
    navbat.wait_exit(Duration::from_secs(20));
    // The database, its WAL, the journal and the recordings: no number in the clear.
    let hits = clear_hits(&navbat.dir.path().join("data"), &needles(SIPP_CALLER));
    assert!(hits.is_empty(), "{hits:#?}");
}

/// The web form's requester (a citizen writing in).
const FORM_NAME: &str = "Nodira Usmonova";
const FORM_EMAIL: &str = "nodira.form@example.uz";
const FORM_PHONE: &str = "+998971112233";
const FORM_STIR: &str = "307654321";
const FORM_ORGANISATION: &str = "Yashil Vodiy MChJ";

#[test]
fn a_router_run_with_sms_a_phone_request_and_a_web_form_leaves_no_personal_data_in_the_clear() {
    use common::desk::{self, login, request, with_desk};
    use common::*;
    let gateway = sms_stub::StubGateway::start();
    let config = with_desk(TestConfig::default(), "").tenant_extra(&format!(
        r#"
[sms]
enabled = true
first_backoff_secs = 3600
max_backoff_secs = 3600
max_attempts = 5

[sms.gateway]
url = "http://127.0.0.1:{}/sms"
headers = {{ Authorization = "Bearer test-sms" }}
body = '{{"id":"{{id}}","to":"{{to}}","text":"{{text}}"}}'
timeout_secs = 5

[sms.templates]
missed_call = {{ uz = "Uzr, javob bera olmadik", ru = "Извините, мы не смогли ответить" }}
"#,
        gateway.port
    ));
    let navbat = Navbat::start("pii-router-run", config);
    let a = navbat.http;
    // A dtm call given up in the queue: a missed-call SMS to the caller's number.
    navbat
        .caller("dtm", "caller_abandon.xml", DTM_DID, 500)
        .wait();
    navbat.wait_for_event("sms_status", EVENT_DEADLINE, |e| e["status"] == "queued");
    // The gateway gets the number opened (only what reaches disk is sealed).
    let seen = wait_until("the SMS at the gateway", Duration::from_secs(30), || {
        let seen = gateway.received();
        (!seen.is_empty()).then_some(seen)
    });
    assert!(
        seen[0].body.contains(SIPP_CALLER),
        "{} {}",
        seen[0].status,
        seen[0].body
    );
    // A support call given up: a phone request (call back) with the caller's number.
    navbat
        .caller("support", "caller_abandon.xml", desk::SUPPORT_DID, 500)
        .wait_success();
    // A web form with the citizen's name, e-mail, phone, organisation and STIR.
    let page = request(a, "GET", "/r/support?lang=uz", &[], None);
    let at = page.body.find("name=\"token\" value=\"").expect("token") + 20;
    let token = page.body[at..at + 32].to_owned();
    let text = format!("{FORM_NAME} ({FORM_ORGANISATION}), {FORM_PHONE}");
    let form = desk::form(&[
        ("token", token.as_str()),
        ("lang", "uz"),
        ("name", FORM_NAME),
        ("email", FORM_EMAIL),
        ("phone", FORM_PHONE),
        ("organisation", FORM_ORGANISATION),
        ("stir", FORM_STIR),
        ("category", "question"),
        ("subject", "Savol"),
        ("text", text.as_str()),
    ]);
    let sent = request(
        a,
        "POST",
        "/r/support",
        &[],
        Some(("application/x-www-form-urlencoded", &form)),
    );
    assert_eq!(sent.status, 200, "{sent:?}");
    // Both requests in the inbox, the requester's name opened for it.
    let op = login(a, "op1001");
    let inbox = wait_until("both requests", Duration::from_secs(30), || {
        let inbox = op.get("/requests").body;
        (inbox.matches("class=\"request-row\"").count() == 2).then_some(inbox)
    });
    assert!(inbox.contains(FORM_NAME), "{inbox}");
    navbat.terminate();
    let mut navbat = navbat;
    navbat.wait_exit(Duration::from_secs(20));
    // The database, its WAL and the journal: none of it in the clear.
    let mut secret = needles(SIPP_CALLER);
    secret.truncate(3);
    let form_digits: String = FORM_PHONE.chars().filter(char::is_ascii_digit).collect();
    secret.extend(
        [
            FORM_NAME,
            FORM_EMAIL,
            FORM_PHONE,
            &form_digits,
            &form_digits[3..],
            FORM_STIR,
            FORM_ORGANISATION,
        ]
        .map(str::to_owned),
    );
    let data = navbat.dir.path().join("data");
    let hits = clear_hits(&data, &secret);
    assert!(hits.is_empty(), "{hits:#?}");
    // The search finds each value written plain (or it proves nothing).
    for (i, n) in secret.iter().enumerate() {
        std::fs::write(data.join(format!("probe{i}")), format!("x{n}y")).unwrap();
    }
    assert!(clear_hits(&data, &secret).len() >= secret.len());
}
