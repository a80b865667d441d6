//! Surge callbacks end to end (issue 7): the real navbat binary, SIPp callers, a SIPp
//! operator, a SIPp UAS standing in for the trunk (the callers' phones behind it), and a real
//! HTTP server on loopback standing in for the SMS gateway (500 to the first attempt of
//! every message, as in tests/sms.rs).
//!
//! Calls arrive while no operator is on: A (live), B and C (accept the callback offer), D
//! (live), E (the same number as B: a second callback for it is refused, so E waits live).
//! Then the operator logs on and takes them one at a time. The callbacks keep their
//! callers' places: A, B, C, D, E, with navbat ringing the operator first and then dialling
//! B's and C's numbers through the trunk. Each confirmation SMS is accepted exactly once,
//! and every call ends in exactly one outcome.
//!
//! The callback book and the SMS outbox are in navbat's store: the tests read the
//! `callback_requests` and `sms_messages` rows back from the database, and the restart test
//! runs on SQLite and on a real Postgres.
//!
//! No timing assertions: every wait is a poll on an event with a generous bound.

mod common;
mod sms_stub;
mod store_support;

use common::{Navbat, Sipp, TestConfig, DTM_DID};
use serde_json::Value;
use sms_stub::StubGateway;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// `(id, call_uid, caller_number, status, attempts)` of a `callback_requests` row.
type CallbackRow = (String, Option<String>, Option<String>, String, i64);

fn sqlite_url(data: &Path) -> String {
    format!("sqlite://{}", data.join("navbat.db").display())
}

fn config(gateway: u16, trunk: u16, data: &Path) -> TestConfig {
    config_with(gateway, trunk, data, &sqlite_url(data), 2, 1)
}

/// `attempts` and `retry_after` (seconds) of the callback offer; the store on `url` with
/// its journal under `data` (both outlive a restart).
fn config_with(
    gateway: u16,
    trunk: u16,
    data: &Path,
    url: &str,
    attempts: u32,
    retry_after: u64,
) -> TestConfig {
    let now = jiff::Timestamp::now();
    let surge = format!(
        r#"
[tenant.surge]
calendar = [{{ start = "{start}", end = "{end}" }}]

[tenant.surge.callback]
offer_after_secs = 1
digit = "1"
max_attempts = {attempts}
retry_after_secs = {retry_after}
"#,
        start = now
            .checked_sub(jiff::SignedDuration::from_secs(3600))
            .unwrap(),
        end = now
            .checked_add(jiff::SignedDuration::from_secs(3600))
            .unwrap(),
    );
    TestConfig::default()
        .operators(vec![common::OperatorSpec::regular("1001")])
        .max_wait_secs(600)
        .ring_timeout_secs(10)
        .tenant_extra(&surge)
        .extra_toml(&format!(
            r#"
[trunk]
outbound = "127.0.0.1:{trunk}"
number_format = "{{digits}}"
ring_timeout_secs = 20

[database]
url = {url:?}
journal_dir = {journal:?}

[sms]
enabled = true
first_backoff_secs = 1
max_backoff_secs = 5
max_attempts = 5

[sms.gateway]
url = "http://127.0.0.1:{gateway}/sms"
body = '{{"id":"{{id}}","to":"{{to}}","text":"{{text}}"}}'
timeout_secs = 5

[sms.templates]
callback_confirmation = {{ uz = "Sizga qayta qo'ng'iroq qilamiz", ru = "Мы вам перезвоним" }}
"#,
            journal = data.join("journal").display().to_string(),
        ))
}

/// Rows of one query on the store's database (SQLite or Postgres), read after navbat exits.
fn query<T>(url: &str, sql: &'static str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let url = url.to_string();
    block_on(async move {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let rows = sqlx::query_as(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows
    })
}

/// Starts a caller and waits until navbat has put it in a queue; returns the SIPp run and
/// the call's id.
fn enqueue(navbat: &Navbat, name: &str, scenario: &str, args: &[&str]) -> (Sipp, String) {
    let before: Vec<String> = navbat
        .events()
        .iter()
        .filter(|e| e["kind"] == "call_enqueued")
        .map(|e| e["call"].as_str().unwrap_or_default().to_string())
        .collect();
    let mut all = vec!["-s", DTM_DID, "-m", "1"];
    all.extend_from_slice(args);
    let sipp = navbat.sipp_client(name, scenario, &all);
    let event = navbat.wait_for_event("call_enqueued", WAIT, |e| {
        !before.iter().any(|c| e["call"] == c.as_str())
    });
    (sipp, event["call"].as_str().unwrap().to_string())
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

#[test]
fn callbacks_keep_their_place_and_are_dialled_operator_first() {
    let gateway = StubGateway::start();
    let data = tempfile::tempdir().unwrap();
    let trunk_port = common::free_port();
    let navbat = Navbat::start(
        "surge_callbacks",
        config(gateway.port, trunk_port, data.path()),
    );
    navbat.wait_for_event("surge_changed", WAIT, |e| e["on"] == true);

    // Nobody is logged on: everyone waits. The pause before the key (3 s) is longer than
    // the offer (1 s), so the offer has been made when the key arrives.
    let (mut a, call_a) = enqueue(&navbat, "caller-a", "caller_ivr_wait_bye.xml", &[]);
    let cb_args = |n: &'static str| ["-d", "3000", "-key", "number", n];
    let (mut b, call_b) = enqueue(
        &navbat,
        "caller-b",
        "caller_callback.xml",
        &cb_args("998900000011"),
    );
    let (mut c, call_c) = enqueue(
        &navbat,
        "caller-c",
        "caller_callback.xml",
        &cb_args("998900000012"),
    );
    for call in [&call_b, &call_c] {
        navbat.wait_for_event("call_finished", WAIT, |e| {
            e["call"] == call.as_str() && e["outcome"] == "callback_requested"
        });
    }
    assert!(b.wait().success(), "{}", b.report());
    assert!(c.wait().success(), "{}", c.report());
    let (mut d, call_d) = enqueue(&navbat, "caller-d", "caller_ivr_wait_bye.xml", &[]);
    // E has B's number: B's callback is pending, so E's request is refused and E waits.
    let (mut e, call_e) = enqueue(
        &navbat,
        "caller-e",
        "caller_callback.xml",
        &cb_args("998900000011"),
    );
    let refused =
        navbat.wait_for_event("callback_refused", WAIT, |ev| ev["call"] == call_e.as_str());
    assert_eq!(refused["reason"], "already_pending");

    let requested = of_kind(&navbat.events(), "callback_requested")
        .into_iter()
        .map(|e| {
            (
                e["call"].as_str().unwrap().to_string(),
                e["callback"].as_str().unwrap().to_string(),
            )
        })
        .collect::<Vec<_>>();
    assert_eq!(requested.len(), 2, "{requested:?}");
    let cb_b = requested
        .iter()
        .find(|(c, _)| *c == call_b)
        .unwrap()
        .1
        .clone();
    let cb_c = requested
        .iter()
        .find(|(c, _)| *c == call_c)
        .unwrap()
        .1
        .clone();
    // Masked in events.
    for ev in of_kind(&navbat.events(), "callback_requested") {
        assert!(
            !ev["number"].as_str().unwrap().contains("998900000011"),
            "{ev}"
        );
    }

    // The trunk (the callers' phones) answers and waits for navbat's BYE; the operator
    // answers each offer, talks 1 s and hangs up.
    let mut trunk = Sipp::start(
        navbat.dir.path(),
        "trunk",
        "operator_answer.xml",
        &["-m", "2"],
        None,
        trunk_port,
    );
    let mut operator =
        navbat.operator_phone("1001", "operator_answer_hangup.xml", 5, &["-d", "1000"]);

    for call in [&call_a, &call_d, &call_e] {
        navbat.wait_for_event("call_finished", WAIT, |ev| ev["call"] == call.as_str());
    }
    for cb in [&cb_b, &cb_c] {
        navbat.wait_for_event("callback_finished", WAIT, |ev| {
            ev["callback"] == cb.as_str()
        });
    }
    for sipp in [&mut a, &mut d, &mut e, &mut trunk, &mut operator] {
        assert!(sipp.wait().success(), "{}", sipp.report());
    }

    let events = navbat.events();
    // The operator was offered them in arrival order: the callbacks kept their places.
    let offered: Vec<String> = of_kind(&events, "call_offered")
        .iter()
        .map(|e| e["call"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        offered,
        vec![
            call_a.clone(),
            cb_b.clone(),
            cb_c.clone(),
            call_d.clone(),
            call_e.clone()
        ],
        "{events:#?}"
    );
    // Each callback: one attempt, connected, with the operator; then finished connected.
    for (cb, call) in [(&cb_b, &call_b), (&cb_c, &call_c)] {
        let attempts: Vec<&Value> = of_kind(&events, "callback_attempt")
            .into_iter()
            .filter(|e| e["callback"] == cb.as_str())
            .collect();
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0]["result"], "connected");
        assert_eq!(attempts[0]["operator"], "1001");
        assert_eq!(attempts[0]["call"], call.as_str());
        let finished: Vec<&Value> = of_kind(&events, "callback_finished")
            .into_iter()
            .filter(|e| e["callback"] == cb.as_str())
            .collect();
        assert_eq!(finished.len(), 1);
        assert_eq!(finished[0]["outcome"], "connected");
    }
    // Operator first, then the caller: the trunk saw B's then C's number, each INVITE after
    // the operator's answer (the attempt order above), and the operator's phone showed the
    // callers' numbers.
    let trunk_log = std::fs::read_to_string(navbat.dir.path().join("trunk.messages.log")).unwrap();
    let dialled: Vec<&str> = trunk_log
        .lines()
        .filter_map(|l| l.strip_prefix("INVITE sip:"))
        .filter_map(|l| l.split('@').next())
        .collect();
    assert_eq!(dialled, vec!["998900000011", "998900000012"], "{trunk_log}");
    let op_log =
        std::fs::read_to_string(navbat.dir.path().join("op1001-phone.messages.log")).unwrap();
    assert!(op_log.contains("sip:+998900000011@"), "{op_log}");

    // Every call ends in exactly one outcome.
    let arrived: Vec<&str> = of_kind(&events, "call_arrived")
        .iter()
        .map(|e| e["call"].as_str().unwrap())
        .collect();
    assert_eq!(arrived.len(), 5);
    let mut outcomes: HashMap<&str, Vec<&str>> = HashMap::new();
    for e in of_kind(&events, "call_finished") {
        outcomes
            .entry(e["call"].as_str().unwrap())
            .or_default()
            .push(e["outcome"].as_str().unwrap());
    }
    for call in &arrived {
        assert_eq!(
            outcomes.get(call).map(Vec::len),
            Some(1),
            "{call}: {outcomes:?}"
        );
    }
    assert_eq!(outcomes[call_a.as_str()], vec!["answered"]);
    assert_eq!(outcomes[call_b.as_str()], vec!["callback_requested"]);
    assert_eq!(outcomes[call_c.as_str()], vec!["callback_requested"]);
    assert_eq!(outcomes[call_d.as_str()], vec!["answered"]);
    assert_eq!(outcomes[call_e.as_str()], vec!["answered"]);

    // Each confirmation SMS accepted exactly once (after a 500 each).
    let sent = |n: usize| {
        common::wait_until("confirmation SMS sent", WAIT, || {
            let events = navbat.events();
            let sent = of_kind(&events, "sms_status")
                .into_iter()
                .filter(|e| e["status"] == "sent")
                .count();
            (sent >= n).then_some(())
        })
    };
    sent(2);
    let seen = gateway.received();
    let mut accepted: HashMap<&str, usize> = HashMap::new();
    for r in seen.iter().filter(|r| r.status == 200) {
        *accepted.entry(r.key.as_str()).or_default() += 1;
    }
    assert_eq!(accepted.len(), 2, "{seen:?}");
    assert!(accepted.values().all(|n| *n == 1), "{seen:?}");
    let mut to: Vec<String> = seen
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["text"], "Sizga qayta qo'ng'iroq qilamiz");
            body["to"].as_str().unwrap().to_string()
        })
        .collect();
    to.sort();
    assert_eq!(to, vec!["+998900000011", "+998900000012"]);

    // Metrics: the tenant's surge flag and the new outcome.
    let metrics = navbat.get("/metrics").body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("navbat_tenant_surge{")
                && l.contains("dtm")
                && l.ends_with(" 1")),
        "{metrics}"
    );
    let requested_total: f64 = metrics
        .lines()
        .filter(|l| {
            l.starts_with("navbat_calls_finished_total{")
                && l.contains("outcome=\"callback_requested\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(requested_total, 2.0, "{metrics}");

    // Call records (SQLite, written by navbat's store): surge set at arrival on every call,
    // one outcome each.
    let mut navbat = navbat;
    navbat.terminate();
    navbat
        .wait_exit(Duration::from_secs(30))
        .expect("navbat exits");
    // D18: the callers' numbers never reach navbat's log in full.
    let log = std::fs::read_to_string(&navbat.log).unwrap();
    for number in ["998900000011", "998900000012"] {
        assert!(!log.contains(number), "{number} in navbat.log");
    }
    let url = sqlite_url(data.path());
    let db = data.path().join("navbat.db");
    // (The native driver: `Any` cannot decode SQLite's BOOLEAN.)
    let rows: Vec<(Option<String>, Option<bool>, Option<String>)> = block_on(async move {
        let url = format!("sqlite://{}?mode=ro", db.display());
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect(&url)
            .await
            .unwrap();
        sqlx::query_as("SELECT call_ref, surge, outcome FROM call_records WHERE arrived_at_ms IS NOT NULL ORDER BY arrived_at_ms")
            .fetch_all(&pool)
            .await
            .unwrap()
    });
    let expected: Vec<(Option<String>, Option<bool>, Option<String>)> = [
        (&call_a, "answered"),
        (&call_b, "callback_requested"),
        (&call_c, "callback_requested"),
        (&call_d, "answered"),
        (&call_e, "answered"),
    ]
    .iter()
    .map(|(c, o)| (Some(c.to_string()), Some(true), Some(o.to_string())))
    .collect();
    assert_eq!(rows, expected);

    // The callback book in the database: both requests connected on the first attempt,
    // linked to the calls that booked them, with their callers' places.
    let callbacks: Vec<CallbackRow> = query(
        &url,
        "SELECT id, call_uid, caller_number, status, attempts FROM callback_requests \
         ORDER BY arrived_at_ms",
    );
    assert_eq!(callbacks.len(), 2, "{callbacks:?}");
    for (row, (cb, call, number)) in callbacks.iter().zip([
        (&cb_b, &call_b, "+998900000011"),
        (&cb_c, &call_c, "+998900000012"),
    ]) {
        assert_eq!(&row.0, cb);
        assert!(
            row.1
                .as_deref()
                .is_some_and(|u| u.ends_with(&format!(":{call}"))),
            "{row:?}"
        );
        // Sealed at rest (D18), opened with navbat's key file.
        let sealed = row.2.as_deref().unwrap_or_default();
        assert!(sealed.starts_with("pii1."), "{row:?}");
        let pii = navbat::pii::Pii::load(&navbat.dir.path().join("keys/recordings.key")).unwrap();
        assert_eq!(
            pii.open(navbat::pii::field::CALLBACK_NUMBER, sealed)
                .unwrap(),
            number
        );
        assert_eq!((row.3.as_str(), row.4), ("connected", 1));
    }
    // The outbox: two confirmations, each sent on its second attempt (500 first).
    let sms: Vec<(String, String, i64)> = query(
        &url,
        "SELECT purpose, status, attempts FROM sms_messages ORDER BY id",
    );
    assert_eq!(
        sms,
        vec![("callback_confirmation".to_string(), "sent".to_string(), 2); 2]
    );
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn pending_callbacks_resume_after_a_restart_and_busy_callers_are_retried() {
    let data = tempfile::tempdir().unwrap();
    let url = sqlite_url(data.path());
    callbacks_across_a_restart(&url, data.path(), None);
}

/// On Postgres, and with the database down for the whole first run: the bookings reach
/// only the journal, and the second run recovers them from there.
#[test]
fn pending_callbacks_resume_after_a_restart_on_postgres_that_was_down_when_they_were_booked() {
    let pg = store_support::Postgres::start();
    let data = tempfile::tempdir().unwrap();
    callbacks_across_a_restart(&pg.url(), data.path(), Some(&pg));
}

/// B and C book callbacks in a first run (with `down` stopped meanwhile, if given); a
/// second run on the same store dials them (busy first, then answered), in their order.
fn callbacks_across_a_restart(url: &str, data: &Path, down: Option<&store_support::Postgres>) {
    let gateway = StubGateway::start();
    let trunk_port = common::free_port();
    if let Some(pg) = down {
        pg.stop();
    }
    // Both runs share the store, so they seal callers' numbers with the same keys.
    let key_file = data.join("keys/recordings.key");
    // First run: B and C book callbacks; nobody is logged on; navbat stops.
    let first = Navbat::start(
        "surge_callbacks_first",
        config_with(gateway.port, trunk_port, data, url, 3, 8).key_file(&key_file),
    );
    first.wait_for_event("surge_changed", WAIT, |e| e["on"] == true);
    let cb_args = |n: &'static str| ["-d", "3000", "-key", "number", n];
    let mut booked = Vec::new();
    for (name, number) in [("caller-b", "998900000011"), ("caller-c", "998900000012")] {
        let (mut sipp, call) = enqueue(&first, name, "caller_callback.xml", &cb_args(number));
        let ev = first.wait_for_event("callback_requested", WAIT, |e| e["call"] == call.as_str());
        assert!(sipp.wait().success(), "{}", sipp.report());
        booked.push(ev["callback"].as_str().unwrap().to_string());
    }
    first.terminate();
    let mut first = first;
    first
        .wait_exit(Duration::from_secs(30))
        .expect("navbat exits");
    if let Some(pg) = down {
        pg.resume();
    }

    // Second run on the same store: both are back in the queue. The callers are busy the
    // first time (486), then answer; the order is kept on the retry.
    let mut second = Navbat::start(
        "surge_callbacks_second",
        config_with(gateway.port, trunk_port, data, url, 3, 8).key_file(&key_file),
    );
    let mut busy = Sipp::start(
        second.dir.path(),
        "trunk-busy",
        "callee_busy.xml",
        &["-m", "2"],
        None,
        trunk_port,
    );
    let operator = second.operator_phone("1001", "operator_answer_hangup.xml", 4, &["-d", "1000"]);
    for cb in &booked {
        second.wait_for_event("callback_attempt", WAIT, |e| {
            e["callback"] == cb.as_str() && e["result"] == "busy"
        });
    }
    assert!(busy.wait().success(), "{}", busy.report());
    // The retry is 8 s after each busy attempt: the answering trunk is up long before.
    let mut trunk = Sipp::start(
        second.dir.path(),
        "trunk",
        "operator_answer.xml",
        &["-m", "2"],
        None,
        trunk_port,
    );
    for cb in &booked {
        let done =
            second.wait_for_event("callback_finished", WAIT, |e| e["callback"] == cb.as_str());
        assert_eq!(done["outcome"], "connected", "{done}");
        assert_eq!(done["attempts"], 2, "{done}");
    }
    assert!(trunk.wait().success(), "{}", trunk.report());
    // (The operator's phone is not checked for success: after each busy attempt navbat
    // hangs up the operator's leg, a BYE that operator_answer_hangup.xml does not expect.)
    drop(operator);
    let events = second.events();
    let attempts: Vec<(String, String)> = of_kind(&events, "callback_attempt")
        .iter()
        .map(|e| {
            (
                e["callback"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let (b, c) = (booked[0].clone(), booked[1].clone());
    assert_eq!(
        attempts,
        vec![
            (b.clone(), "busy".to_string()),
            (c.clone(), "busy".to_string()),
            (b, "connected".to_string()),
            (c, "connected".to_string()),
        ]
    );
    // The booking calls' confirmations went once each, in the first run.
    let accepted = gateway
        .received()
        .iter()
        .filter(|r| r.status == 200)
        .count();
    assert_eq!(accepted, 2, "{:?}", gateway.received());

    // The database: both requests connected on their second attempt, in booking order.
    second.terminate();
    second
        .wait_exit(Duration::from_secs(30))
        .expect("navbat exits");
    let rows: Vec<(String, String, i64)> = query(
        url,
        "SELECT id, status, attempts FROM callback_requests ORDER BY arrived_at_ms",
    );
    assert_eq!(
        rows,
        booked
            .iter()
            .map(|id| (id.clone(), "connected".to_string(), 2))
            .collect::<Vec<_>>()
    );
    let sms: Vec<(String, i64)> = query(url, "SELECT status, attempts FROM sms_messages");
    assert_eq!(sms, vec![("sent".to_string(), 2); 2]);
}

/// D6: a callback's dial-out through the trunk holds a channel like an inbound call. With
/// one channel, B's callback (booked first, so ahead in the queue) cannot be dialled while
/// live caller A holds the channel: the operator takes A first, and B is offered and
/// dialled only once A's call has ended and freed the channel. Without the channel check
/// navbat would ring the operator for B first and dial B through the trunk while A still
/// held the only channel.
#[test]
fn callback_dial_outs_wait_for_a_free_channel() {
    let gateway = StubGateway::start();
    let data = tempfile::tempdir().unwrap();
    let trunk_port = common::free_port();
    let navbat = Navbat::start(
        "surge_callbacks_channels",
        config(gateway.port, trunk_port, data.path()).channels(1),
    );
    navbat.wait_for_event("surge_changed", WAIT, |e| e["on"] == true);

    let (mut b, call_b) = enqueue(
        &navbat,
        "caller-b",
        "caller_callback.xml",
        &["-d", "3000", "-key", "number", "998900000011"],
    );
    let requested =
        navbat.wait_for_event("callback_requested", WAIT, |e| e["call"] == call_b.as_str());
    let cb_b = requested["callback"].as_str().unwrap().to_string();
    assert!(b.wait().success(), "{}", b.report());
    // B's call has ended and given its channel back before A arrives.
    common::wait_until("B's channel is free", WAIT, || {
        (navbat.get_json("/api/health")["channels_in_use"] == 0).then_some(())
    });
    let (mut a, call_a) = enqueue(&navbat, "caller-a", "caller_ivr_wait_bye.xml", &[]);

    let mut trunk = Sipp::start(
        navbat.dir.path(),
        "trunk",
        "operator_answer.xml",
        &["-m", "1"],
        None,
        trunk_port,
    );
    let mut operator =
        navbat.operator_phone("1001", "operator_answer_hangup.xml", 2, &["-d", "1000"]);
    navbat.wait_for_event("call_finished", WAIT, |e| e["call"] == call_a.as_str());
    let done = navbat.wait_for_event("callback_finished", WAIT, |e| {
        e["callback"] == cb_b.as_str()
    });
    assert_eq!(done["outcome"], "connected", "{done}");
    for sipp in [&mut a, &mut trunk, &mut operator] {
        assert!(sipp.wait().success(), "{}", sipp.report());
    }

    let events = navbat.events();
    let position = |pred: &dyn Fn(&Value) -> bool| {
        events
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("event missing: {events:#?}"))
    };
    let a_finished = position(&|e| e["kind"] == "call_finished" && e["call"] == call_a.as_str());
    let b_offered = position(&|e| e["kind"] == "call_offered" && e["call"] == cb_b.as_str());
    let b_attempt =
        position(&|e| e["kind"] == "callback_attempt" && e["callback"] == cb_b.as_str());
    assert!(b_offered > a_finished, "{events:#?}");
    assert!(b_attempt > a_finished, "{events:#?}");
    let offered: Vec<String> = of_kind(&events, "call_offered")
        .iter()
        .map(|e| e["call"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(offered, vec![call_a.clone(), cb_b.clone()], "{events:#?}");
    // Waiting for a channel is not an attempt: B was dialled once and connected.
    let attempts = of_kind(&events, "callback_attempt");
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0]["result"], "connected");
    // Nobody was refused a channel: A's call was admitted and B's dial-out waited.
    assert!(of_kind(&events, "call_blocked").is_empty(), "{events:#?}");
    assert!(
        of_kind(&events, "blocked_summary").is_empty(),
        "{events:#?}"
    );
}

/// Two nodes share Redis and Postgres. Callbacks booked on node A are node A's: after both
/// nodes restart, node A alone resumes and dials them (node B recovers none). The operator's
/// phone is registered on node B, where a live caller waits too: node A claims the operator
/// in Redis before ringing it for a callback, so the operator is never rung by both nodes
/// at once. Each callback reaches the trunk once.
#[test]
fn callbacks_booked_on_one_node_are_dialled_by_that_node_only() {
    let redis = store_support::Redis::start();
    let pg = store_support::Postgres::start();
    let gateway = StubGateway::start();
    let trunk_port = common::free_port();
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The nodes share the database, so they seal callers' numbers with the same keys.
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("recordings.key");
    let node = |name: &str, data: &Path| {
        config_with(gateway.port, trunk_port, data, &pg.url(), 3, 8)
            .key_file(&key_file)
            .extra_toml(&format!(
                r#"
[node]
id = "{name}"

[presence]
backend = "redis"
redis_url = "{redis}"
heartbeat_secs = 1
expiry_secs = 5
"#,
                redis = redis.url()
            ))
    };

    // First run: B and C book callbacks on node A; nobody is logged on anywhere.
    let mut a = Navbat::start("cb-nodes-a1", node("node-a", data_a.path()));
    let mut b = Navbat::start("cb-nodes-b1", node("node-b", data_b.path()));
    a.wait_for_event("surge_changed", WAIT, |e| e["on"] == true);
    let cb_args = |n: &'static str| ["-d", "3000", "-key", "number", n];
    let mut booked = Vec::new();
    for (name, number) in [("caller-b", "998900000011"), ("caller-c", "998900000012")] {
        let (mut sipp, call) = enqueue(&a, name, "caller_callback.xml", &cb_args(number));
        let ev = a.wait_for_event("callback_requested", WAIT, |e| e["call"] == call.as_str());
        assert!(sipp.wait().success(), "{}", sipp.report());
        booked.push(ev["callback"].as_str().unwrap().to_string());
    }
    for n in [&mut a, &mut b] {
        n.terminate();
        n.wait_exit(Duration::from_secs(30)).expect("navbat exits");
    }

    // Second run of both nodes; the operator's phone registers on node B.
    let mut a = Navbat::start("cb-nodes-a2", node("node-a", data_a.path()));
    let b = Navbat::start("cb-nodes-b2", node("node-b", data_b.path()));
    let mut trunk = Sipp::start(
        a.dir.path(),
        "trunk",
        "operator_answer.xml",
        &["-m", "2"],
        None,
        trunk_port,
    );
    let (mut live, live_call) = enqueue(&b, "caller-live", "caller_ivr_wait_bye.xml", &[]);
    let operator = b.operator_phone("1001", "operator_answer_hangup.xml", 3, &["-d", "1000"]);
    for cb in &booked {
        let done = a.wait_for_event("callback_finished", WAIT, |e| e["callback"] == cb.as_str());
        assert_eq!(done["outcome"], "connected", "{done}");
        assert_eq!(done["attempts"], 1, "{done}");
    }
    let live_done = b.wait_for_event("call_finished", WAIT, |e| e["call"] == live_call.as_str());
    assert_eq!(live_done["outcome"], "answered", "{live_done}");
    for sipp in [&mut trunk, &mut live] {
        assert!(sipp.wait().success(), "{}", sipp.report());
    }
    drop(operator);
    // The operator was rung by one node at a time: each session (offer to end) starts after
    // the one before it ended, whichever node it was on.
    let (events_a, events_b) = (a.events(), b.events());
    let at = |e: &Value| e["at_ms"].as_u64().unwrap();
    let first = |events: &[Value], kind: &str, key: &str, id: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind && e[key] == id)
            .map(at)
            .unwrap_or_else(|| panic!("no {kind} for {id}"))
    };
    let mut sessions: Vec<(u64, u64, String)> = booked
        .iter()
        .map(|cb| {
            (
                first(&events_a, "call_offered", "call", cb),
                first(&events_a, "callback_attempt", "callback", cb),
                cb.clone(),
            )
        })
        .collect();
    sessions.push((
        first(&events_b, "call_offered", "call", &live_call),
        first(&events_b, "call_finished", "call", &live_call),
        live_call.clone(),
    ));
    sessions.sort();
    for w in sessions.windows(2) {
        assert!(
            w[1].0 >= w[0].1,
            "the operator was rung twice at once: {sessions:?}"
        );
    }
    // Node A offered them, in booking order, to the operator it claimed on node B.
    let offered: Vec<(String, String)> = of_kind(&events_a, "call_offered")
        .iter()
        .map(|e| {
            (
                e["call"].as_str().unwrap().to_string(),
                e["operator"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        offered,
        booked
            .iter()
            .map(|cb| (cb.clone(), "1001".to_string()))
            .collect::<Vec<_>>()
    );
    // Node B touched none of them: its one offer is its live caller's.
    let offered_b: Vec<&str> = of_kind(&events_b, "call_offered")
        .iter()
        .map(|e| e["call"].as_str().unwrap())
        .collect();
    assert_eq!(offered_b, vec![live_call.as_str()]);
    for kind in ["callback_attempt", "callback_finished"] {
        assert!(of_kind(&events_b, kind).is_empty(), "{kind} on node B");
    }
    // The trunk was dialled once per callback.
    let trunk_log = std::fs::read_to_string(a.dir.path().join("trunk.messages.log")).unwrap();
    let invites = trunk_log
        .lines()
        .filter(|l| l.starts_with("INVITE sip:"))
        .count();
    assert_eq!(invites, 2, "{trunk_log}");
    // The operator's phone, registered on node B, was rung by node A, once per callback.
    let op_log = std::fs::read_to_string(b.dir.path().join("op1001-phone.messages.log")).unwrap();
    let rung = op_log
        .lines()
        .filter(|l| l.starts_with("INVITE sip:"))
        .count();
    assert_eq!(rung, 3, "{op_log}");
    // The shared table (read once node A has stopped and written everything): both
    // requests node A's, connected once.
    a.terminate();
    a.wait_exit(Duration::from_secs(30)).expect("navbat exits");
    let rows: Vec<(String, Option<String>, String, i64)> = query(
        &pg.url(),
        "SELECT id, node, status, attempts FROM callback_requests ORDER BY arrived_at_ms",
    );
    assert_eq!(
        rows,
        booked
            .iter()
            .map(|id| (
                id.clone(),
                Some("node-a".to_string()),
                "connected".to_string(),
                1
            ))
            .collect::<Vec<_>>()
    );
}
