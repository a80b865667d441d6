//! SMS end to end (D12): the real navbat binary, a SIPp caller who gives up while waiting,
//! and a real HTTP server in the test on loopback standing in for the SMS gateway. The
//! gateway answers 500 to the first attempt of every message; navbat is restarted between
//! that attempt and the retry. Each message must be accepted exactly once. The outbox is in
//! the store: the restart test runs on SQLite and on a real Postgres, and reads the
//! `sms_messages` rows back from the database.
//!
//! No timing assertions: every wait is a poll on an event or on the stub's record with a
//! generous bound.

mod common;
mod sms_stub;
mod store_support;

use common::{wait_until, Navbat, TestConfig, DTM_DID};
use sms_stub::StubGateway;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Where a test's store lives across navbat's restarts: a database URL and the journal.
fn store_toml(url: &str, data: &Path) -> String {
    format!(
        "\n[database]\nurl = {url:?}\njournal_dir = {journal:?}\n",
        journal = data.join("journal").display().to_string()
    )
}

fn sqlite_url(data: &Path) -> String {
    format!("sqlite://{}", data.join("navbat.db").display())
}

fn config(gateway: u16, store: &str) -> TestConfig {
    config_with(gateway, store, "", 3600)
}

/// `tenant_toml` goes into the dtm tenant (e.g. `[tenant.surge]`); `backoff` is the first
/// retry pause in seconds; `store` is [`store_toml`].
fn config_with(gateway: u16, store: &str, tenant_toml: &str, backoff: u64) -> TestConfig {
    // `[sms]` is a top-level table; written after the tenant's tables it still is one.
    TestConfig::default()
        .operators(vec![])
        .extra_toml(store)
        .tenant_extra(&format!(
            r#"{tenant_toml}
[sms]
enabled = true
first_backoff_secs = {backoff}
max_backoff_secs = 3600
max_attempts = 5

[sms.gateway]
url = "http://127.0.0.1:{gateway}/sms"
headers = {{ Authorization = "Bearer test-sms" }}
body = '{{"id":"{{id}}","to":"{{to}}","text":"{{text}}"}}'
timeout_secs = 5

[sms.templates]
missed_call = {{ uz = "Uzr, javob bera olmadik", ru = "Извините, мы не смогли ответить" }}
deflection = {{ uz = "{{info}}: dtm.uz", ru = "{{info}}: dtm.uz" }}
"#,
        ))
}

/// `(id, status, attempts, to_number)` of every `sms_messages` row, by id; the number, sealed
/// at rest (D18), opened with the key file `key`.
fn sms_rows(url: &str, key: &Path) -> Vec<(String, String, i64, Option<String>)> {
    let pii = navbat::pii::Pii::load(key).unwrap();
    sealed_sms_rows(url)
        .into_iter()
        .map(|(id, status, attempts, to)| {
            let to = to.map(|t| {
                assert!(t.starts_with("pii1."), "{id}: {t}");
                pii.open(navbat::pii::field::SMS_TO, &t).unwrap()
            });
            (id, status, attempts, to)
        })
        .collect()
}

/// The rows as stored.
fn sealed_sms_rows(url: &str) -> Vec<(String, String, i64, Option<String>)> {
    block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .unwrap();
        let rows =
            sqlx::query_as("SELECT id, status, attempts, to_number FROM sms_messages ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn a_missed_call_sms_arrives_exactly_once_across_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let url = sqlite_url(data.path());
    missed_call_sms_across_a_restart(&url, data.path());
}

#[test]
fn a_missed_call_sms_arrives_exactly_once_across_a_restart_on_postgres() {
    let pg = store_support::Postgres::start();
    let data = tempfile::tempdir().unwrap();
    missed_call_sms_across_a_restart(&pg.url(), data.path());
}

fn missed_call_sms_across_a_restart(url: &str, data: &Path) {
    let gateway = StubGateway::start();
    let store = store_toml(url, data);

    // First run: the caller gives up in the queue (no operator), the SMS is queued and its
    // first attempt gets a 500.
    // Both runs share the database, so they seal callers' numbers with the same keys.
    let key_file = data.join("keys/recordings.key");
    let mut first = Navbat::start(
        "sms_first",
        config(gateway.port, &store).key_file(&key_file),
    );
    let mut caller = first.caller("caller", "caller_abandon.xml", DTM_DID, 1_000);
    caller.wait();
    let queued = first.wait_for_event("sms_status", Duration::from_secs(30), |e| {
        e["status"] == "retrying"
    });
    assert_eq!(queued["purpose"], "missed_call");
    assert_eq!(queued["attempts"], 1);
    // Masked in the event.
    assert!(!queued["to"].as_str().unwrap().contains("998900000001"));
    let id = queued["id"].as_str().unwrap().to_string();
    let seen = gateway.received();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!((seen[0].key.as_str(), seen[0].status), (id.as_str(), 500));

    first.terminate();
    first
        .wait_exit(Duration::from_secs(30))
        .expect("navbat exits");

    // Second run: the outbox comes back from the store and the retry carries the same key.
    let mut second = Navbat::start(
        "sms_second",
        config(gateway.port, &store).key_file(&key_file),
    );
    let sent = second.wait_for_event("sms_status", Duration::from_secs(30), |e| {
        e["status"] == "sent"
    });
    assert_eq!(sent["id"], id.as_str());
    assert_eq!(sent["attempts"], 2);

    // A new call in the second run gets a message of its own (first attempt: 500 again);
    // the first message is not sent again meanwhile.
    let mut caller = second.caller("caller2", "caller_abandon.xml", DTM_DID, 1_000);
    caller.wait();
    wait_until(
        "the second message's first attempt",
        Duration::from_secs(30),
        || (gateway.received().len() >= 3).then_some(()),
    );
    let seen = gateway.received();
    let mut accepted: HashMap<&str, usize> = HashMap::new();
    for r in seen.iter().filter(|r| r.status == 200) {
        *accepted.entry(r.key.as_str()).or_default() += 1;
    }
    assert_eq!(accepted, HashMap::from([(id.as_str(), 1)]), "{seen:?}");
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_ne!(seen[2].key, id, "{seen:?}");
    let body: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(body["to"], "+998900000001");
    assert_eq!(body["id"], id.as_str());
    let text = body["text"].as_str().unwrap();
    assert!(
        text.contains("Uzr, javob bera olmadik") || text.contains("Извините"),
        "{text}"
    );

    // The database has both messages with their delivery status: the first sent on its
    // second attempt, the second waiting for its retry (an hour away).
    let second_id = seen[2].key.clone();
    second.terminate();
    second
        .wait_exit(Duration::from_secs(30))
        .expect("navbat exits");
    let mut expected = vec![
        (
            id.clone(),
            "sent".to_string(),
            2,
            Some("+998900000001".to_string()),
        ),
        (
            second_id,
            "retrying".to_string(),
            1,
            Some("+998900000001".to_string()),
        ),
    ];
    expected.sort();
    assert_eq!(sms_rows(url, &key_file), expected);
    // D18: the number never reaches navbat's log in full.
    for log in [&first.log, &second.log] {
        let text = std::fs::read_to_string(log).unwrap();
        assert!(
            !text.contains("998900000001"),
            "number in {}",
            log.display()
        );
    }
}

#[test]
fn a_self_service_caller_in_surge_is_deflected_and_gets_the_information_by_sms() {
    let gateway = StubGateway::start();
    let data = tempfile::tempdir().unwrap();
    let store = store_toml(&sqlite_url(data.path()), data.path());
    let now = jiff::Timestamp::now();
    let surge = format!(
        r#"
[tenant.surge]
calendar = [{{ start = "{}", end = "{}" }}]
self_service = [{{ digit = "7", prompt = "results-where", label = {{ uz = "Natijalar qayerda", ru = "Где результаты" }} }}]
"#,
        now.checked_sub(jiff::SignedDuration::from_secs(3600))
            .unwrap(),
        now.checked_add(jiff::SignedDuration::from_secs(3600))
            .unwrap(),
    );
    let navbat = Navbat::start("sms_deflect", config_with(gateway.port, &store, &surge, 1));
    navbat.wait_for_event("surge_changed", Duration::from_secs(30), |e| {
        e["on"] == true
    });
    let mut caller = navbat.caller("caller", "caller_self_service.xml", DTM_DID, 0);
    assert!(caller.wait().success(), "{}", caller.report());
    let finished = navbat.wait_for_event("call_finished", Duration::from_secs(30), |_| true);
    assert_eq!(finished["outcome"], "deflected");
    assert_eq!(finished["queue"], serde_json::Value::Null);
    // First attempt 500, the retry (1 s later) accepted.
    let sent = navbat.wait_for_event("sms_status", Duration::from_secs(30), |e| {
        e["status"] == "sent"
    });
    assert_eq!(sent["purpose"], "deflection");
    let seen = gateway.received();
    assert_eq!(
        seen.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 200],
        "{seen:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(body["text"], "Natijalar qayerda: dtm.uz");
}

/// A caller's number comes from the From header, which anyone can forge: however often one
/// number calls and gives up, it gets one missed-call text per window; the others are
/// `limited` (with the reason), and nothing of them reaches the gateway.
#[test]
fn one_number_gets_one_missed_call_text_per_window_however_often_it_calls() {
    let gateway = StubGateway::start();
    let data = tempfile::tempdir().unwrap();
    let store = store_toml(&sqlite_url(data.path()), data.path());
    let navbat = Navbat::start("sms_limits", config(gateway.port, &store));
    for i in 0..3 {
        navbat
            .caller(&format!("caller{i}"), "caller_abandon.xml", DTM_DID, 500)
            .wait();
        wait_until("the call's SMS decision", Duration::from_secs(30), || {
            let decided = navbat
                .events()
                .iter()
                .filter(|e| {
                    e["kind"] == "sms_status"
                        && (e["status"] == "queued" || e["status"] == "limited")
                })
                .count();
            (decided > i).then_some(())
        });
    }
    let events = navbat.events();
    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "sms_status" && e["status"] != "retrying")
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "queued").count(),
        1,
        "{statuses:?}"
    );
    let limited: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "sms_status" && e["status"] == "limited")
        .collect();
    assert_eq!(limited.len(), 2, "{statuses:?}");
    for e in &limited {
        assert_eq!(e["purpose"], "missed_call");
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .contains("missed_call_window_secs"),
            "{e}"
        );
        assert!(
            !e["to"].as_str().unwrap().contains("998900000001"),
            "masked: {e}"
        );
    }
    wait_until(
        "the one text's first attempt",
        Duration::from_secs(30),
        || (!gateway.received().is_empty()).then_some(()),
    );
    let seen = gateway.received();
    let keys: std::collections::HashSet<&str> = seen.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys.len(), 1, "one message at the gateway: {seen:?}");
}
