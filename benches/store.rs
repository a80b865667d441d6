//! Sustained call-record writes to Postgres through the whole store path (target: at least
//! 5,000 calls/s, so a 150,000-call day is written in under 30 s of database time).
//!
//! Method: start a real Postgres (fsync on, as in production) from the installed binaries on
//! a free port, open the store on it, emit `CALLS` whole answered calls (6 events each: arrived,
//! IVR step, enqueued, offered, answered, finished) through the store's `EventSink` as fast as
//! one thread can, and time until the database holds every record (`flush`). Two figures:
//! the end-to-end rate (emit -> journal fsync -> database) and, separately, the database drain
//! alone (events already in the journal while Postgres was stopped, then Postgres started).
//!
//! Run: `cargo bench --bench store` (prints the figures; copy them to BENCHMARKS.md).
//! `NAVBAT_BENCH_DB_BATCH=16384` changes the events per database transaction (default 4096).

#[path = "../tests/store_support/mod.rs"]
mod store_support;

use navbat::config::DatabaseUrl;
use navbat::events::{CallOutcome, EventBus, EventKind, EventSink};
use navbat::privacy::PhoneNumber;
use navbat::store::{Store, StoreSettings};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLS: usize = 150_000;

fn one_call(bus: &EventBus, i: usize) {
    let call = format!("c{i}");
    bus.emit(EventKind::CallArrived {
        call: call.clone(),
        tenant: "dtm".into(),
        did: "712351914".into(),
        caller: PhoneNumber::new(format!("+99890{:07}", i % 50_000)),
        transport: "udp".into(),
    });
    bus.emit(EventKind::IvrStep {
        call: call.clone(),
        level: 1,
        digit: Some('1'),
    });
    bus.emit(EventKind::CallEnqueued {
        call: call.clone(),
        tenant: "dtm".into(),
        queue: "dtm-uz".into(),
        language: "uz".into(),
        topic: Some("results".into()),
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
        wait_ms: 3000,
    });
    bus.emit(EventKind::CallFinished {
        call,
        tenant: "dtm".into(),
        queue: Some("dtm-uz".into()),
        operator: Some("1001".into()),
        outcome: CallOutcome::Answered,
        wait_ms: 3000,
        talk_ms: 90_000,
        ended_by: "caller".into(),
    });
}

fn open(pg: &store_support::Postgres, dir: &std::path::Path) -> Store {
    Store::open(StoreSettings {
        url: DatabaseUrl::Postgres(pg.url()),
        journal_dir: dir.join("journal"),
        buffer_events: 2 * CALLS * 6,
        journal_batch_events: 1024,
        db_batch_events: std::env::var("NAVBAT_BENCH_DB_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4096),
        journal_segment_bytes: 64 << 20,
        node: "bench".into(),
        repeat_window: Duration::from_secs(7 * 86_400),
        time_zones: HashMap::new(),
        pii: store_support::pii_keys(dir),
    })
    .expect("open the store")
}

fn main() {
    let pg = store_support::Postgres::start_with(true);
    let dir = tempfile::tempdir().unwrap();

    // 1. End to end.
    let store = open(&pg, dir.path());
    let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
    let start = Instant::now();
    for i in 0..CALLS {
        one_call(&bus, i);
    }
    let emitted = start.elapsed();
    assert!(
        store.flush(Duration::from_secs(600)),
        "{:?}",
        store.health()
    );
    let total = start.elapsed();
    println!(
        "end to end: {CALLS} calls ({} events) emitted in {:.2} s, all in Postgres after {:.2} s: {:.0} calls/s, {:.0} events/s",
        CALLS * 6,
        emitted.as_secs_f64(),
        total.as_secs_f64(),
        CALLS as f64 / total.as_secs_f64(),
        (CALLS * 6) as f64 / total.as_secs_f64()
    );
    drop(bus);
    drop(store);

    // 2. Database drain alone: the journal is filled while Postgres is down.
    let dir2 = tempfile::tempdir().unwrap();
    pg.stop();
    let store = open(&pg, dir2.path());
    let bus = EventBus::new(vec![Arc::new(store.clone()) as Arc<dyn EventSink>]);
    for i in 0..CALLS {
        one_call(&bus, i);
    }
    while store.health().journaled_events < (CALLS * 6) as u64 {
        std::thread::sleep(Duration::from_millis(10));
    }
    pg.resume();
    // Timed from the first committed batch, so the reconnect backoff is not counted.
    let first = loop {
        let drained = store.health().drained_events;
        if drained > 0 {
            break drained;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let start = Instant::now();
    assert!(
        store.flush(Duration::from_secs(600)),
        "{:?}",
        store.health()
    );
    let drain = start.elapsed();
    let calls = ((CALLS * 6) as u64 - first) as f64 / 6.0;
    println!(
        "drain only: {calls:.0} calls from the journal into Postgres in {:.2} s: {:.0} calls/s",
        drain.as_secs_f64(),
        calls / drain.as_secs_f64()
    );
}
