//! The store suite, run the same on SQLite and on a real Postgres this test starts (C2, D20).
//!
//! Events are fed through the store's `EventSink` exactly as the router emits them.

mod store_support;

use navbat::config::DatabaseUrl;
use navbat::events::{CallOutcome, EventBus, EventKind, EventSink};
use navbat::privacy::PhoneNumber;
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
    // The full number is in the record (the work needs it); the timeline keeps it masked.
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM call_records WHERE caller_number = '+998900000007'"
        ),
        1
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
        assert_eq!(db.migrate().await.unwrap(), 1);
        assert_eq!(db.migrate().await.unwrap(), 0);
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM navbat_migrations")
                .await
                .unwrap(),
            navbat::store::db::schema_version()
        );
        db.close().await;
    });
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
);
