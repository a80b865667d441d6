//! Callers' personal data sealed at rest (issue 16 part 2, D18): the raw bytes of the SQLite
//! file, of a Postgres data directory and of the journal hold no caller number, name,
//! organisation or STIR in the clear; repeat calls still link; a database read without the
//! key, or with another key, fails with the named error; `navbat migrate` seals what an older
//! navbat left plain, idempotently, and the data reads back.

mod common;
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

/// Takes schema 9 (sealing) off a fresh SQLite database, leaving what an older navbat left: no
/// lookup column, no key check, the number's index on the number.
async fn downgrade_to_schema_7(pool: &sqlx::AnyPool) {
    for sql in [
        "DROP INDEX call_records_caller_lookup",
        "ALTER TABLE call_records DROP COLUMN caller_lookup",
        "DROP TABLE pii_keys",
        "CREATE INDEX call_records_caller ON call_records (caller_number, arrived_at_ms)",
        "DELETE FROM navbat_migrations WHERE version = 9",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
}

#[test]
fn navbat_migrate_seals_an_older_database_and_journal_once_and_they_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join(common::NO_PROMPTS_DIR)).unwrap();
    let db_path = d.join("data/navbat.db");
    std::fs::create_dir_all(d.join("data")).unwrap();
    let url = DatabaseUrl::Sqlite(format!("sqlite://{}", db_path.display()));
    // The database as an older navbat wrote it: plain numbers and caller details.
    block_on(async {
        let db = navbat::store::db::Db::connect_lazy(&url).unwrap();
        db.migrate().await.unwrap();
        downgrade_to_schema_7(db.pool()).await;
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
        db.close().await;
    });
    // An undrained journal of the older navbat: a call arrival with the number plain.
    std::fs::create_dir_all(d.join("journal")).unwrap();
    let line = serde_json::json!({
        "uid": "old:b:1", "node": "old", "boot": "b", "seq": 1, "at_ms": 4_000,
        "event": {"kind":"call_arrived","call":"c4","tenant":"dtm","did":"712351914",
                  "caller":"+9989******67","transport":"udp"},
        "caller": NUMBER,
    });
    std::fs::write(d.join("journal/000000000001.jnl"), format!("{line}\n")).unwrap();
    assert!(
        !clear_hits(d, &needles(NUMBER)).is_empty(),
        "the older data must hold the number, or this test proves nothing"
    );
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
    let (ok, out) = migrate(d);
    assert!(ok, "{out}");
    assert!(
        out.contains("3 call record(s), 1 disposition(s), 1 journal entr"),
        "{out}"
    );
    let hits = clear_hits(d, &needles(NUMBER))
        .into_iter()
        .filter(|h| !h.contains("navbat.toml"))
        .collect::<Vec<_>>();
    assert!(hits.is_empty(), "{hits:#?}");
    // Again: nothing left to seal.
    let (ok, out) = migrate(d);
    assert!(ok, "{out}");
    assert!(
        out.contains("0 call record(s), 0 disposition(s), 0 journal entr"),
        "{out}"
    );
    // It reads back: the numbers open, the lookup hash finds the caller's calls, the
    // disposition opens, and the journal's sealed arrival reaches the database.
    let store = Store::open(settings(url, d, pii.clone())).unwrap();
    store_support::wait_for(
        "the older journal replayed",
        Duration::from_secs(30),
        || (store.health().replayed_events >= 1).then_some(()),
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
        }
    }))
    .unwrap();
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
