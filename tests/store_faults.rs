//! Fault tests of the store against a real Postgres this test starts (C2).
//!
//! The load is fed through the store's `EventSink` directly (10,000 whole calls, six events
//! each, exactly as the router emits them), so the test exercises the journal and the database
//! writer, not SIP.

mod store_support;

use navbat::config::DatabaseUrl;
use navbat::events::{CallOutcome, EventBus, EventKind, EventSink};
use navbat::privacy::PhoneNumber;
use navbat::store::{Store, StoreSettings};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store_support::{wait_for, Postgres};

const CALLS: usize = 10_000;

fn one_call(bus: &EventBus, i: usize) {
    let call = format!("c{i}");
    bus.emit(EventKind::CallArrived {
        call: call.clone(),
        tenant: "dtm".into(),
        did: "712351914".into(),
        caller: PhoneNumber::new(format!("+99890{:07}", i % 3000)),
        transport: "udp".into(),
    });
    bus.emit(EventKind::CallEnqueued {
        call: call.clone(),
        tenant: "dtm".into(),
        queue: "dtm-uz".into(),
        language: "uz".into(),
        topic: None,
        priority: 0,
    });
    bus.emit(EventKind::CallOffered {
        call: call.clone(),
        queue: "dtm-uz".into(),
        operator: "1001".into(),
    });
    bus.emit(EventKind::CallAnswered {
        call: call.clone(),
        queue: "dtm-uz".into(),
        operator: "1001".into(),
        wait_ms: 10,
    });
    bus.emit(EventKind::CallFinished {
        call,
        tenant: "dtm".into(),
        queue: Some("dtm-uz".into()),
        operator: Some("1001".into()),
        outcome: CallOutcome::Answered,
        wait_ms: 10,
        talk_ms: 1000,
        ended_by: "caller".into(),
    });
}

fn count(store: &Store, sql: &str) -> i64 {
    let db = store.db().clone();
    let sql = sql.to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(store.run(async move { db.scalar(&sql).await }))
        .unwrap()
        .unwrap()
}

#[test]
fn postgres_stopped_mid_load_and_restarted_gets_every_call_exactly_once() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreSettings {
        url: DatabaseUrl::Postgres(pg.url()),
        journal_dir: dir.path().join("journal"),
        buffer_events: 1 << 20,
        journal_batch_events: 1024,
        // Small batches so that the outage falls between many of them.
        db_batch_events: 500,
        journal_segment_bytes: 256 * 1024,
        node: "fault".into(),
        repeat_window: Duration::from_secs(86_400),
        time_zones: HashMap::new(),
        pii: store_support::pii_keys(dir.path()),
    })
    .unwrap();
    let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);

    for i in 0..CALLS / 3 {
        one_call(&bus, i);
    }
    // Some calls are in, some are not, when the database goes away.
    wait_for("the first records", Duration::from_secs(60), || {
        (store.health().drained_events > 0).then_some(())
    });
    pg.stop();
    for i in CALLS / 3..CALLS {
        one_call(&bus, i);
    }
    let down = wait_for("the store to notice", Duration::from_secs(60), || {
        let h = store.health();
        (!h.db_up).then_some(h)
    });
    assert!(
        down.depth_events > 0,
        "events wait in the journal: {down:?}"
    );
    // Calls went on: every event was accepted and fsynced while the database was down.
    wait_for(
        "the journal to take everything",
        Duration::from_secs(60),
        || {
            let h = store.health();
            (h.journaled_events == (CALLS * 5) as u64).then_some(())
        },
    );
    assert_eq!(store.health().shed_events, 0);

    pg.resume();
    assert!(
        store.flush(Duration::from_secs(120)),
        "the journal drained after the restart: {:?}",
        store.health()
    );
    let h = store.health();
    assert!(h.db_up && h.db_failures > 0, "{h:?}");
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM call_records"),
        CALLS as i64
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM call_records WHERE outcome = 'answered' AND talk_ms = 1000"
        ),
        CALLS as i64
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM call_events"),
        (CALLS * 5) as i64
    );
    assert_eq!(
        count(&store, "SELECT COUNT(DISTINCT call_uid) FROM call_events"),
        CALLS as i64
    );
}

/// A journal that cannot keep up makes `emit` wait instead of dropping events (issue 17): a
/// buffer of 8 in front of a writer that fsyncs every 4 events is overrun by a tight loop of
/// 2,000 calls, yet every event is journaled and every call reaches its record.
#[test]
fn a_full_journal_buffer_makes_emit_wait_and_loses_nothing() {
    const CALLS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreSettings {
        url: DatabaseUrl::Sqlite(format!(
            "sqlite://{}",
            dir.path().join("navbat.db").display()
        )),
        journal_dir: dir.path().join("journal"),
        buffer_events: 8,
        journal_batch_events: 4,
        db_batch_events: 500,
        journal_segment_bytes: 256 * 1024,
        node: "pressure".into(),
        repeat_window: Duration::from_secs(86_400),
        time_zones: HashMap::new(),
        pii: store_support::pii_keys(dir.path()),
    })
    .unwrap();
    let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
    for i in 0..CALLS {
        one_call(&bus, i);
    }
    let h = store.health();
    assert_eq!(h.shed_events, 0, "{h:?}");
    assert_eq!(h.accepted_events, (CALLS * 5) as u64, "{h:?}");
    // The loop outran the writer (an fsync per 4 events), so emit had to wait.
    assert!(h.waited_events > 0, "{h:?}");
    assert!(
        store.flush(Duration::from_secs(120)),
        "the database caught up: {:?}",
        store.health()
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM call_records"),
        CALLS as i64
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM call_events"),
        (CALLS * 5) as i64
    );
}
