//! The store suite, run the same on SQLite and on a real Postgres this test starts (C2, D20).
//!
//! Events are fed through the store's `EventSink` exactly as the router emits them.

mod store_support;

use navbat::callback::{CallbackOutcome, CallbackRecord, CallbackRequest};
use navbat::config::DatabaseUrl;
use navbat::events::{CallOutcome, EventBus, EventKind, EventSink};
use navbat::privacy::PhoneNumber;
use navbat::sms::{Message, MessageKind, SmsRecord};
use navbat::store::outbox::StoreRecord;
use navbat::store::{Store, StoreSettings};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use store_support::{wait_for, Postgres};

/// Where a test's store keeps its data.
enum Backend {
    Sqlite,
    Postgres(Postgres),
}

impl Backend {
    fn url(&self, dir: &Path) -> DatabaseUrl {
        match self {
            Backend::Sqlite => {
                DatabaseUrl::Sqlite(format!("sqlite://{}", dir.join("navbat.db").display()))
            }
            Backend::Postgres(pg) => DatabaseUrl::Postgres(pg.url()),
        }
    }
}

fn settings(url: DatabaseUrl, dir: &Path) -> StoreSettings {
    StoreSettings {
        url,
        journal_dir: dir.join("journal"),
        buffer_events: 1 << 20,
        journal_batch_events: 1024,
        db_batch_events: 4096,
        journal_segment_bytes: 1 << 20,
        node: "test".into(),
        repeat_window: Duration::from_secs(7 * 86_400),
        time_zones: HashMap::new(),
        pii: store_support::pii_keys(dir),
    }
}

fn flushed(store: &Store) {
    assert!(
        store.flush(Duration::from_secs(60)),
        "store did not catch up: {:?}",
        store.health()
    );
}

fn count(store: &Store, sql: &str) -> i64 {
    let db = store.db().clone();
    let sql = sql.to_owned();
    block_on(store.run(async move { db.scalar(&sql).await }))
        .unwrap()
        .unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Emits one whole answered call.
fn call(bus: &EventBus, call: &str, caller: &str) {
    bus.emit(EventKind::CallArrived {
        call: call.into(),
        tenant: "dtm".into(),
        did: "712351914".into(),
        caller: PhoneNumber::new(caller),
        transport: "udp".into(),
    });
    bus.emit(EventKind::IvrStep {
        call: call.into(),
        level: 1,
        digit: Some('1'),
    });
    bus.emit(EventKind::CallEnqueued {
        call: call.into(),
        tenant: "dtm".into(),
        queue: "dtm-uz".into(),
        language: "uz".into(),
        topic: Some("results".into()),
        priority: 0,
    });
    bus.emit(EventKind::CallOffered {
        call: call.into(),
        queue: "dtm-uz".into(),
        operator: "1001".into(),
    });
    bus.emit(EventKind::CallAnswered {
        call: call.into(),
        queue: "dtm-uz".into(),
        operator: "1001".into(),
        wait_ms: 1500,
    });
    bus.emit(EventKind::CallFinished {
        call: call.into(),
        tenant: "dtm".into(),
        queue: Some("dtm-uz".into()),
        operator: Some("1001".into()),
        outcome: CallOutcome::Answered,
        wait_ms: 1500,
        talk_ms: 60_000,
        ended_by: "caller".into(),
    });
}

fn suite_records_every_call_once_with_its_fields(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(settings(backend.url(dir.path()), dir.path())).unwrap();
    let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
    for i in 0..200 {
        call(&bus, &format!("c{i}"), &format!("+99890{i:07}"));
    }
    bus.emit(EventKind::OperatorState {
        operator: "1001".into(),
        from: "on_call".into(),
        to: "wrap_up".into(),
        reason: "CallEnded".into(),
    });
    flushed(&store);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM call_records"), 200);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM call_events"), 1201);
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM operator_state_changes"),
        1
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM call_records WHERE outcome = 'answered' AND operator = '1001' \
             AND topic = 'results' AND ivr_level1 = '1' AND talk_ms = 60000 AND wait_ms = 1500 \
             AND answered_at_ms IS NOT NULL AND ended_at_ms >= arrived_at_ms AND month IS NOT NULL"
        ),
        200
    );
    // The record keeps the number sealed, found by its lookup hash (D18); the timeline keeps
    // it masked.
    let lookup = store.db().pii().expect("keys").lookup("+998900000007");
    assert_eq!(
        count(
            &store,
            &format!("SELECT COUNT(*) FROM call_records WHERE caller_lookup = '{lookup}'")
        ),
        1
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM call_records WHERE caller_number LIKE '%90000000%' \
             OR caller_number NOT LIKE 'pii1.%'"
        ),
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM call_events WHERE body LIKE '%900000007%'"
        ),
        0
    );
    assert_eq!(store.health().depth_events, 0);
    assert_eq!(store.health().shed_events, 0);
}

fn suite_a_replay_inserts_nothing_twice(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(dir.path());
    {
        let store = Store::open(settings(url.clone(), dir.path())).unwrap();
        let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
        for i in 0..50 {
            call(&bus, &format!("c{i}"), "+998901112233");
        }
        flushed(&store);
    }
    // Forget how far the database got: the next start replays the whole journal.
    let cursor = dir.path().join("journal/cursor");
    std::fs::remove_file(&cursor).unwrap();
    let store = Store::open(settings(url, dir.path())).unwrap();
    wait_for("the replay", Duration::from_secs(60), || {
        (store.health().replayed_events >= 300).then_some(())
    });
    assert_eq!(count(&store, "SELECT COUNT(*) FROM call_records"), 50);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM call_events"), 300);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM call_records WHERE outcome = 'answered'"
        ),
        50
    );
}

/// Calls split across small batches (arrival in one, the rest in later ones), then the whole
/// journal replayed: every record has every field once, whichever way each part went in
/// (first write, merge into an existing row, or a replay of either).
fn suite_split_batches_and_replay_merge_every_field(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(dir.path());
    let small = |url: DatabaseUrl| StoreSettings {
        // 5 events per transaction against 6 per call: every call is split, at every place.
        db_batch_events: 5,
        ..settings(url, dir.path())
    };
    let whole = "SELECT COUNT(*) FROM call_records WHERE outcome = 'answered' AND operator = '1001' \
                 AND topic = 'results' AND ivr_level1 = '1' AND talk_ms = 60000 AND wait_ms = 1500 \
                 AND offered_at_ms IS NOT NULL AND answered_at_ms IS NOT NULL \
                 AND ended_at_ms >= arrived_at_ms AND month IS NOT NULL AND caller_number IS NOT NULL \
                 AND repeat_count IS NOT NULL AND node = 'test'";
    {
        let store = Store::open(small(url.clone())).unwrap();
        let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
        for i in 0..40 {
            call(&bus, &format!("c{i}"), &format!("+99891{i:07}"));
        }
        flushed(&store);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM call_records"), 40);
        assert_eq!(count(&store, whole), 40);
    }
    std::fs::remove_file(dir.path().join("journal/cursor")).unwrap();
    let store = Store::open(small(url)).unwrap();
    wait_for("the replay", Duration::from_secs(60), || {
        (store.health().replayed_events >= 240).then_some(())
    });
    assert_eq!(count(&store, "SELECT COUNT(*) FROM call_records"), 40);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM call_events"), 240);
    assert_eq!(count(&store, whole), 40);
}

fn suite_repeat_calls_are_linked_and_history_is_masked(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(dir.path());
    let first_uid;
    {
        let store = Store::open(settings(url.clone(), dir.path())).unwrap();
        let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
        call(&bus, "c1", "+998907654321");
        call(&bus, "c2", "+998900000001");
        flushed(&store);
        first_uid = store.call_uid("c1");
    }
    // A new run (new boot) sees the earlier call through the database.
    let store = Store::open(settings(url, dir.path())).unwrap();
    let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
    call(&bus, "c1", "+998907654321");
    flushed(&store);
    let uid = store.call_uid("c1");
    assert_ne!(uid, first_uid, "a new boot names its calls anew");
    let sql = format!(
        "SELECT COUNT(*) FROM call_records WHERE call_uid = '{uid}' AND repeat_of = '{first_uid}' AND repeat_count = 1"
    );
    assert_eq!(count(&store, &sql), 1);
    let history = block_on(store.history("c1")).unwrap().expect("history");
    assert_eq!(history.earlier.len(), 1);
    assert_eq!(history.earlier[0].call, first_uid);
    let json = serde_json::to_string(&history).unwrap();
    assert!(!json.contains("907654321"), "{json}");
    assert!(json.contains("+9989******21"), "{json}");
}

fn suite_migrations_are_applied_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(dir.path());
    block_on(async {
        let db = navbat::store::db::Db::connect_lazy(&url).unwrap();
        assert_eq!(
            db.migrate().await.unwrap(),
            navbat::store::db::migration_count()
        );
        assert_eq!(db.migrate().await.unwrap(), 0);
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM navbat_migrations")
                .await
                .unwrap(),
            navbat::store::db::migration_count() as i64
        );
        db.close().await;
    });
}

// ----- the SMS outbox and the callback book ---------------------------------------------

fn message(id: &str) -> Message {
    Message {
        id: id.into(),
        to: "+998901234567".into(),
        text: "Uzr, javob bera olmadik".into(),
        kind: MessageKind::MissedCall,
        tenant: "dtm".into(),
    }
}

fn callback(id: &str, number: &str, arrived_ms: i64) -> CallbackRequest {
    CallbackRequest {
        id: id.into(),
        tenant: "dtm".into(),
        queue: "dtm-uz".into(),
        number: number.into(),
        language: "uz".into(),
        arrived_ms,
        attempts: 0,
        due_ms: 0,
        call: "c7".into(),
    }
}

/// Queues an SMS per id and books callbacks `cb1` (arrived at 1 s) and `cb2` (2 s), each
/// step durable before the next.
fn queue_and_book(store: &Store, messages: &[&str]) {
    for id in messages {
        durable(
            store,
            sms(SmsRecord::Queued {
                message: message(id),
            }),
        );
    }
    for (id, number, arrived) in [
        ("cb1", "+998900000011", 1_000),
        ("cb2", "+998900000012", 2_000),
    ] {
        durable(
            store,
            cb(CallbackRecord::Requested(callback(id, number, arrived))),
        );
    }
}

/// Hands a record to the store and waits until it is fsynced.
fn durable(store: &Store, record: StoreRecord) {
    let ack = store.record(record).expect("the journal takes it");
    block_on(ack).expect("fsynced");
}

fn sms(step: SmsRecord) -> StoreRecord {
    StoreRecord::Sms(step)
}

fn cb(step: CallbackRecord) -> StoreRecord {
    StoreRecord::Callback(step)
}

fn rows(store: &Store, sql: &str) -> Vec<String> {
    let db = store.db().clone();
    let sql = sql.to_owned();
    block_on(store.run(async move { db.texts(&sql).await }))
        .unwrap()
        .unwrap()
}

/// Steps of messages and callbacks reach their tables with their status; a restart hands
/// back exactly the unfinished ones, with their ids and attempts; a replay of the whole
/// journal changes no row.
fn suite_outbox_and_callbacks_are_kept_and_recovered(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(dir.path());
    {
        let store = Store::open(settings(url.clone(), dir.path())).unwrap();
        queue_and_book(&store, &["m1", "m2", "m3"]);
        flushed(&store);
        durable(
            &store,
            sms(SmsRecord::Attempted {
                id: "m1".into(),
                attempts: 1,
                due_ms: 99_000,
                detail: "HTTP 500".into(),
            }),
        );
        durable(
            &store,
            sms(SmsRecord::Sent {
                id: "m2".into(),
                attempts: 1,
            }),
        );
        durable(
            &store,
            cb(CallbackRecord::Retry {
                id: "cb1".into(),
                attempts: 1,
                due_ms: 61_000,
            }),
        );
        durable(
            &store,
            cb(CallbackRecord::Finished {
                id: "cb2".into(),
                outcome: CallbackOutcome::Connected,
                attempts: 1,
            }),
        );
        flushed(&store);
        assert_eq!(store.health().shed_events, 0);
    }
    // The number is sealed at rest (D18): the rows find it by its lookup hash.
    let lookup = store_support::pii_keys(dir.path()).lookup("+998901234567");
    let expected_sms = vec![
        format!("m1 retrying 1 {lookup} pii1."),
        format!("m2 sent 1 {lookup} pii1."),
        format!("m3 queued 0 {lookup} pii1."),
    ];
    let expected_cbs = vec![
        "cb1 retrying 1 61000 test:".to_string(),
        "cb2 connected 1 - test:".to_string(),
    ];
    let sms_sql =
        "SELECT id || ' ' || status || ' ' || CAST(attempts AS TEXT) || ' ' || to_lookup \
         || ' ' || SUBSTR(to_number, 1, 5) FROM sms_messages ORDER BY id";
    let cb_sql = "SELECT id || ' ' || status || ' ' || CAST(attempts AS TEXT) || ' ' || \
                  COALESCE(CAST(due_at_ms AS TEXT), '-') || ' ' || SUBSTR(call_uid, 1, 5) \
                  FROM callback_requests ORDER BY arrived_at_ms";
    for replay in [false, true] {
        if replay {
            // Forget how far the database got: the rest of the journal is written again.
            std::fs::remove_file(dir.path().join("journal/cursor")).unwrap();
        }
        let store = Store::open(settings(url.clone(), dir.path())).unwrap();
        let recovered = store.take_recovered_sms();
        assert!(recovered.complete);
        let mut unsent: Vec<(String, u32)> = recovered
            .items
            .iter()
            .map(|(m, attempts)| (m.id.clone(), *attempts))
            .collect();
        unsent.sort();
        assert_eq!(unsent, vec![("m1".to_string(), 1), ("m3".to_string(), 0)]);
        assert_eq!(
            recovered.items[0].0,
            message(recovered.items[0].0.id.as_str())
        );
        let callbacks = store.take_recovered_callbacks();
        assert!(callbacks.complete);
        let mut expected = callback("cb1", "+998900000011", 1_000);
        expected.attempts = 1;
        expected.due_ms = 61_000;
        assert_eq!(callbacks.items, vec![expected]);
        // A second take has nothing new.
        assert!(store.take_recovered_sms().items.is_empty());
        flushed(&store);
        assert_eq!(rows(&store, sms_sql), expected_sms);
        assert_eq!(rows(&store, cb_sql), expected_cbs);
    }
}

/// The database is down when a message is sent and a callback finished: those steps reach
/// only the journal. The next start (database still down) recovers nothing it would have to
/// undo; once the database is back, its part comes, without what the journal ended.
#[test]
fn postgres_down_across_a_restart_recovers_without_sending_twice() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Postgres(pg.url());
    {
        let store = Store::open(settings(url.clone(), dir.path())).unwrap();
        queue_and_book(&store, &["m1", "m2"]);
        flushed(&store);
        pg.stop();
        durable(
            &store,
            sms(SmsRecord::Sent {
                id: "m1".into(),
                attempts: 1,
            }),
        );
        durable(
            &store,
            cb(CallbackRecord::Finished {
                id: "cb1".into(),
                outcome: CallbackOutcome::GaveUp,
                attempts: 3,
            }),
        );
    }
    let store = Store::open(settings(url, dir.path())).unwrap();
    let early = store.take_recovered_sms();
    assert!(!early.complete, "the database's part is still to come");
    assert!(early.items.is_empty(), "{:?}", early.items);
    assert!(store.take_recovered_callbacks().items.is_empty());
    pg.resume();
    let mut unsent = Vec::new();
    wait_for("the database's part", Duration::from_secs(60), || {
        let r = store.take_recovered_sms();
        unsent.extend(r.items.into_iter().map(|(m, _)| m.id));
        r.complete.then_some(())
    });
    assert_eq!(unsent, vec!["m2".to_string()]);
    let callbacks: Vec<String> = store
        .take_recovered_callbacks()
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(callbacks, vec!["cb2".to_string()]);
    flushed(&store);
    assert_eq!(
        rows(
            &store,
            "SELECT id || ' ' || status FROM sms_messages ORDER BY id"
        ),
        vec!["m1 sent".to_string(), "m2 queued".to_string()]
    );
    assert_eq!(
        rows(
            &store,
            "SELECT id || ' ' || status FROM callback_requests ORDER BY id"
        ),
        vec!["cb1 gave_up".to_string(), "cb2 pending".to_string()]
    );
}

/// The SIP identities of listening accounts (`navbat user sip`): set, replaced, joined with
/// the account's role, tenants and state, its extension owned, removed; the same on both back
/// ends.
fn suite_sip_identities_follow_their_accounts(backend: Backend) {
    use navbat::accounts::{db as adb, Account, Lang, Role, Tenants};
    let dir = tempfile::tempdir().unwrap();
    let url = backend.url(dir.path());
    block_on(async {
        let db = navbat::store::db::Db::connect_lazy(&url).unwrap();
        db.migrate().await.unwrap();
        let pool = db.pool().clone();
        for (user, role, ext) in [
            ("officer-dtm", Role::Officer, None),
            ("op1001", Role::Operator, Some("1001")),
        ] {
            let new = adb::NewAccount {
                account: Account {
                    username: user.into(),
                    display_name: user.into(),
                    role,
                    tenants: Tenants::parse("dtm"),
                    operator_ext: ext.map(str::to_owned),
                    language: Lang::Uz,
                    disabled: false,
                },
                password_hash: "x".into(),
            };
            assert!(adb::add(&pool, &new, 1).await.unwrap());
        }
        assert_eq!(
            adb::ext_owner(&pool, "1001").await.unwrap().as_deref(),
            Some("op1001")
        );
        assert_eq!(adb::ext_owner(&pool, "1950").await.unwrap(), None);
        adb::set_sip(&pool, "officer-dtm", "1949", "navbat", "m0", "s0", 2)
            .await
            .unwrap();
        adb::set_sip(&pool, "officer-dtm", "1950", "navbat", "m1", "s1", 3)
            .await
            .unwrap();
        assert_eq!(
            adb::ext_owner(&pool, "1950").await.unwrap().as_deref(),
            Some("officer-dtm")
        );
        assert_eq!(
            adb::ext_owner(&pool, "1949").await.unwrap(),
            None,
            "replaced"
        );
        let ids = adb::sip_identities(&pool).await.unwrap();
        assert_eq!(ids.len(), 1);
        let id = &ids[0];
        assert_eq!(
            (id.username.as_str(), id.ext.as_str(), id.role, id.disabled),
            ("officer-dtm", "1950", Role::Officer, false)
        );
        assert_eq!((id.ha1_md5.as_str(), id.ha1_sha256.as_str()), ("m1", "s1"));
        assert!(id.tenants.allows("dtm") && !id.tenants.allows("support"));
        // Another account may not take the extension (the unique index).
        assert!(adb::set_sip(&pool, "op1001", "1950", "navbat", "m", "s", 4)
            .await
            .is_err());
        adb::set_disabled(&pool, "officer-dtm", true, 5)
            .await
            .unwrap();
        assert!(adb::sip_identities(&pool).await.unwrap()[0].disabled);
        assert!(adb::remove_sip(&pool, "officer-dtm").await.unwrap());
        assert!(!adb::remove_sip(&pool, "officer-dtm").await.unwrap());
        assert!(adb::sip_identities(&pool).await.unwrap().is_empty());
        db.close().await;
    });
}

/// Recordings are written many to a statement: every row of a batch keeps its own values,
/// takes the operator (and, where the recording did not say, the tenant) from its call's
/// record, and a start and an end of one recording make one row.
fn suite_recordings_of_a_batch_take_their_calls_operator_and_tenant(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(settings(backend.url(dir.path()), dir.path())).unwrap();
    let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
    // More than one statement's worth (128 rows on SQLite).
    let calls = 300;
    for i in 0..calls {
        let id = format!("r{i}");
        call(&bus, &id, &format!("+99891{i:07}"));
        let path = format!("dtm/2026-12/{id}.wav");
        // Every other recording has no start event and names no tenant: its call's does.
        if i % 2 == 0 {
            bus.emit(EventKind::RecordingStarted {
                call: id.clone(),
                tenant: "dtm".into(),
                path: path.clone(),
                node_url: None,
                key_id: None,
            });
        }
        bus.emit(EventKind::Recording {
            call: id.clone(),
            path,
            duration_ms: 60_000,
            bytes: 960_000 + i,
            sha256: format!("{i:064x}"),
            tenant: None,
            node_url: None,
            key_id: None,
        });
    }
    flushed(&store);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM recordings"), 300);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM recordings WHERE operator = '1001' AND tenant = 'dtm' \
             AND duration_ms = 60000 AND location LIKE 'dtm/2026-12/r%.wav'"
        ),
        300
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM recordings WHERE started_at_ms IS NOT NULL"
        ),
        150
    );
    // Each row has its own size and checksum, not a neighbour's.
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(DISTINCT bytes) FROM recordings WHERE bytes BETWEEN 960000 AND 960299"
        ),
        300
    );
    assert_eq!(
        count(&store, "SELECT COUNT(DISTINCT sha256) FROM recordings"),
        300
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::Backend::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(super::Backend::Postgres(super::Postgres::start())) })*
        }
    };
}

on_both_backends!(
    suite_records_every_call_once_with_its_fields,
    suite_a_replay_inserts_nothing_twice,
    suite_split_batches_and_replay_merge_every_field,
    suite_repeat_calls_are_linked_and_history_is_masked,
    suite_migrations_are_applied_once,
    suite_outbox_and_callbacks_are_kept_and_recovered,
    suite_sip_identities_follow_their_accounts,
    suite_recordings_of_a_batch_take_their_calls_operator_and_tenant,
);
