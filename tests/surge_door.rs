//! The results-day door policy end to end (issue 19, the router side): the real navbat
//! binary in surge with `[tenant.surge.door]`, SIPp callers, a SIPp operator, and a real HTTP
//! server on loopback standing in for the SMS gateway (500 to the first attempt of every
//! message, as in tests/sms.rs).
//!
//! - A caller who finds the operator free is offered to them, with no `door_offer`; one who
//!   joins while the only operator talks (a long expected wait) is offered at once a callback
//!   for today and the SMS; the SMS key ends the call `deflected` and the gateway gets the
//!   information.
//! - A caller who lets the offer pass (declined) stays in the queue and is answered when the
//!   operator is free again.
//! - When today's closing time is too near for a callback, the offer carries the next
//!   morning's window (and the booked request is due at its start), or, without a window, no
//!   callback at all.
//!
//! The tenant's clock is set (a fixed offset) so that it is about noon there whenever the
//! test runs. No timing assertions: every wait is a poll on an event with a generous bound.

mod common;
mod sms_stub;

use common::{Navbat, Sipp, TestConfig, DTM_DID};
use serde_json::Value;
use sms_stub::StubGateway;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// The UTC offset (hours) at which it is about noon now, and the minutes since local
/// midnight there now.
fn noon_offset() -> (i8, i64) {
    let utc = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC);
    let hours = 12 - utc.hour();
    (hours, 12 * 60 + i64::from(utc.minute()))
}

/// `HH:MM` of `minutes` since midnight.
fn clock(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Surge on, callbacks after 30 s in the queue, the door policy (SMS on 2) with `door_extra`
/// (e.g. `next_morning`), the dtm tenant closing `close_in` minutes from now (`None`: round
/// the clock, so it closes at local midnight, about 12 hours away).
fn config(
    gateway: u16,
    data: &Path,
    operators: &[&str],
    door_extra: &str,
    close_in: Option<i64>,
) -> TestConfig {
    let now = jiff::Timestamp::now();
    let (offset, minutes) = noon_offset();
    let sign = if offset < 0 { '-' } else { '+' };
    let zone = format!("\"{sign}{:02}:00\"", offset.abs());
    let hours = match close_in {
        // Rounded up to the next minute: the line closes `close_in` to `close_in + 1` from now.
        Some(m) => format!(
            "[{{ days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"], open = \"00:00\", close = \"{}\" }}]",
            clock(minutes + m + 1)
        ),
        None => "\"24/7\"".into(),
    };
    let surge = format!(
        r#"
[tenant.surge]
calendar = [{{ start = "{start}", end = "{end}" }}]
self_service = [
    {{ digit = "7", prompt = "results-where", label = {{ uz = "Natijalar saytda", ru = "Результаты на сайте" }} }},
]

[tenant.surge.callback]
offer_after_secs = 30
digit = "1"

[tenant.surge.door]
offer_above_secs = 60
sms_digit = "2"
{door_extra}
"#,
        start = now
            .checked_sub(jiff::SignedDuration::from_secs(3600))
            .unwrap(),
        end = now
            .checked_add(jiff::SignedDuration::from_secs(3600))
            .unwrap(),
    );
    TestConfig::default()
        .operators(
            operators
                .iter()
                .map(|e| common::OperatorSpec::regular(e))
                .collect(),
        )
        .schedule(&zone, &hours)
        .max_wait_secs(600)
        .ring_timeout_secs(10)
        .tenant_extra(&surge)
        .extra_toml(&format!(
            r#"
[trunk]
outbound = "127.0.0.1:{trunk}"
number_format = "{{digits}}"

[database]
url = "sqlite://{db}"
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
deflection = {{ uz = "Ma'lumot: {{info}}", ru = "Справка: {{info}}" }}
callback_confirmation = {{ uz = "Sizga qayta qo'ng'iroq qilamiz", ru = "Мы вам перезвоним" }}
callback_next_morning = {{ uz = "Ertaga ertalab {{window}}", ru = "Завтра утром {{window}}" }}
"#,
            trunk = common::free_port(),
            db = data.join("navbat.db").display(),
            journal = data.join("journal").display().to_string(),
        ))
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

/// Caller B (`number`), who hears the door offer 3 s after joining and presses `key`.
fn door_caller(navbat: &Navbat, key: &str, number: &str) -> (Sipp, String) {
    enqueue(
        navbat,
        "caller-b",
        "caller_door_key.xml",
        &["-d", "3000", "-key", "press", key, "-key", "number", number],
    )
}

/// Operator 1001 logs on and answers caller A, talking `talk_ms` (then hangs up): while they
/// talk, the only operator is on duty and busy. Returns the operator's phone, A and A's call.
fn busy_operator(navbat: &Navbat, talk_ms: &str, calls: u32) -> (Sipp, Sipp, String) {
    let operator = navbat.operator_phone(
        "1001",
        "operator_answer_hangup.xml",
        calls,
        &["-d", talk_ms],
    );
    navbat.wait_operator("1001", "available");
    let (a, call_a) = enqueue(navbat, "caller-a", "caller_ivr_wait_bye.xml", &[]);
    navbat.wait_for_event("call_answered", WAIT, |e| e["call"] == call_a.as_str());
    (operator, a, call_a)
}

fn door_offers(navbat: &Navbat, call: &str) -> Vec<Value> {
    navbat
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "door_offer" && e["call"] == call)
        .collect()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// `due_at_ms` of the callback booked by `call`, read after navbat exits.
fn due_at_ms(data: &Path, call: &str) -> i64 {
    let url = format!("sqlite://{}", data.join("navbat.db").display());
    let rows: Vec<(Option<String>, i64)> = block_on(async move {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let rows = sqlx::query_as("SELECT call_uid, due_at_ms FROM callback_requests")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    });
    rows.iter()
        .find(|(uid, _)| {
            uid.as_deref()
                .is_some_and(|u| u.ends_with(&format!(":{call}")))
        })
        .unwrap_or_else(|| panic!("no callback for {call}: {rows:?}"))
        .1
}

#[test]
fn the_offer_comes_at_the_door_when_the_wait_is_long_and_the_sms_key_deflects() {
    let gateway = StubGateway::start();
    let data = tempfile::tempdir().unwrap();
    let navbat = Navbat::start(
        "surge_door_offer",
        config(gateway.port, data.path(), &["1001"], "", None),
    );
    navbat.wait_for_event("surge_changed", WAIT, |e| e["on"] == true);
    // A: the operator is free, so the call is offered to them: no door offer. They talk
    // long enough for the second caller to make a choice.
    let (mut operator, mut a, call_a) = busy_operator(&navbat, "20000", 1);
    assert!(door_offers(&navbat, &call_a).is_empty());

    // B: the only operator talks, the wait is long: the offer at once, a callback for
    // today (the line is open for hours) and the SMS. B takes the SMS.
    let (mut b, call_b) = door_caller(&navbat, "2", "998900000021");
    let offer = navbat.wait_for_event("door_offer", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(offer["at_door"], true, "{offer}");
    assert_eq!(offer["callback"], "today", "{offer}");
    assert_eq!(offer["sms"], true, "{offer}");
    assert_eq!(offer["tenant"], "dtm");
    assert_eq!(offer["queue"], "dtm-uz");
    let choice = navbat.wait_for_event("door_choice", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(choice["choice"], "sms");
    let finished = navbat.wait_for_event("call_finished", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(finished["outcome"], "deflected");
    assert!(b.wait().success(), "{}", b.report());

    // The information reaches the gateway (after its 500 to the first attempt).
    let sent = navbat.wait_for_event("sms_status", WAIT, |e| e["status"] == "sent");
    assert_eq!(sent["purpose"], "deflection");
    let seen = gateway.received();
    assert_eq!(seen.last().unwrap().status, 200, "{seen:?}");
    let body: Value = serde_json::from_str(&seen.last().unwrap().body).unwrap();
    assert_eq!(body["to"], "+998900000021");
    assert_eq!(body["text"], "Ma'lumot: Natijalar saytda");

    navbat.wait_for_event("call_finished", WAIT, |e| e["call"] == call_a.as_str());
    for sipp in [&mut a, &mut operator] {
        assert!(sipp.wait().success(), "{}", sipp.report());
    }
    assert_eq!(door_offers(&navbat, &call_b).len(), 1, "one offer per call");
}

#[test]
fn a_declined_offer_leaves_the_caller_waiting_until_an_operator_is_free() {
    let gateway = StubGateway::start();
    let data = tempfile::tempdir().unwrap();
    let navbat = Navbat::start(
        "surge_door_declined",
        config(gateway.port, data.path(), &["1001"], "", None),
    );
    navbat.wait_for_event("surge_changed", WAIT, |e| e["on"] == true);
    // A talks longer than B's choice window lasts, so B declines while the operator is busy.
    let (mut operator, mut a, _) = busy_operator(&navbat, "15000", 2);

    // B hears the offer and presses nothing: declined, B waits on and is answered next.
    let (mut b, call_b) = enqueue(&navbat, "caller-b", "caller_ivr_wait_bye.xml", &[]);
    let offer = navbat.wait_for_event("door_offer", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(offer["at_door"], true, "{offer}");
    let choice = navbat.wait_for_event("door_choice", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(choice["choice"], "declined");
    let answered = navbat.wait_for_event("call_answered", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(answered["operator"], "1001");
    assert!(
        choice["seq"].as_u64() < answered["seq"].as_u64(),
        "declined before the answer: {choice} {answered}"
    );
    let finished = navbat.wait_for_event("call_finished", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(finished["outcome"], "answered");
    for sipp in [&mut a, &mut b, &mut operator] {
        assert!(sipp.wait().success(), "{}", sipp.report());
    }
}

#[test]
fn a_callback_that_cannot_be_kept_today_is_promised_for_the_morning_window() {
    let gateway = StubGateway::start();
    let data = tempfile::tempdir().unwrap();
    // Closing in two to three minutes: less than one call's handle time (180 s + wrap-up), so
    // no callback can be kept today although the operator is on duty (busy with A: the wait
    // is long).
    let mut navbat = Navbat::start(
        "surge_door_morning",
        config(
            gateway.port,
            data.path(),
            &["1001"],
            "next_morning = { start = \"08:00\", end = \"10:00\" }",
            Some(2),
        ),
    );
    navbat.wait_for_event("surge_changed", WAIT, |e| e["on"] == true);
    let (mut operator, mut a, _) = busy_operator(&navbat, "10000", 1);
    let (mut b, call_b) = door_caller(&navbat, "1", "998900000031");
    let offer = navbat.wait_for_event("door_offer", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(offer["at_door"], true, "{offer}");
    assert_eq!(offer["callback"], "next_morning", "{offer}");
    let finished = navbat.wait_for_event("call_finished", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(finished["outcome"], "callback_requested");
    assert!(b.wait().success(), "{}", b.report());
    navbat.wait_for_event("callback_requested", WAIT, |e| e["call"] == call_b.as_str());
    // The confirmation SMS names the window (after the gateway's 500 to the first attempt).
    let sent = navbat.wait_for_event("sms_status", WAIT, |e| e["status"] == "sent");
    assert_eq!(sent["purpose"], "callback_next_morning");
    let seen = gateway.received();
    assert_eq!(seen.last().unwrap().status, 200, "{seen:?}");
    let body: Value = serde_json::from_str(&seen.last().unwrap().body).unwrap();
    assert_eq!(body["to"], "+998900000031");
    assert_eq!(body["text"], "Ertaga ertalab 08:00-10:00");
    for sipp in [&mut a, &mut operator] {
        assert!(sipp.wait().success(), "{}", sipp.report());
    }
    navbat.terminate();
    navbat.wait_exit(WAIT).expect("navbat exits");

    // Due at 08:00 tomorrow, tenant time (it is about noon there now).
    let due = due_at_ms(data.path(), &call_b);
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::Offset::constant(noon_offset().0));
    let due = jiff::Timestamp::from_millisecond(due)
        .unwrap()
        .to_zoned_datetime(zone.clone());
    let tomorrow = jiff::Timestamp::now()
        .to_zoned_datetime(zone)
        .date()
        .tomorrow()
        .unwrap();
    assert_eq!(
        (due.date(), due.hour(), due.minute()),
        (tomorrow, 8, 0),
        "{due}"
    );
}

#[test]
fn without_a_morning_window_a_callback_that_cannot_be_kept_is_not_offered() {
    let gateway = StubGateway::start();
    let data = tempfile::tempdir().unwrap();
    let navbat = Navbat::start(
        "surge_door_no_callback",
        config(gateway.port, data.path(), &["1001"], "", Some(2)),
    );
    navbat.wait_for_event("surge_changed", WAIT, |e| e["on"] == true);
    let (mut operator, mut a, _) = busy_operator(&navbat, "8000", 1);
    // No callback can be kept today and there is no morning window: the SMS alone.
    let (mut b, call_b) = door_caller(&navbat, "2", "998900000041");
    let offer = navbat.wait_for_event("door_offer", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(offer["callback"], "none", "{offer}");
    assert_eq!(offer["sms"], true, "{offer}");
    let finished = navbat.wait_for_event("call_finished", WAIT, |e| e["call"] == call_b.as_str());
    assert_eq!(finished["outcome"], "deflected");
    for sipp in [&mut b, &mut a, &mut operator] {
        assert!(sipp.wait().success(), "{}", sipp.report());
    }
    assert!(navbat
        .events()
        .iter()
        .all(|e| e["kind"] != "callback_requested"));
}

#[test]
fn an_open_offer_holds_its_callback_place_until_the_caller_answers_it() {
    let gateway = StubGateway::start();
    let data = tempfile::tempdir().unwrap();
    // Closing in 9 to 10 minutes with one operator on duty, a handle time of 181 s (180 s
    // and 1 s of wrap-up) and 30 % kept for live callers: 0.7 x (540..600 s - 181 s) / 181 s
    // leaves room for one callback today, and still does ~1 minute later (from 440 s on).
    let navbat = Navbat::start(
        "surge_door_open_offer",
        config(
            gateway.port,
            data.path(),
            &["1001"],
            "next_morning = { start = \"08:00\", end = \"10:00\" }",
            Some(9),
        ),
    );
    navbat.wait_for_event("surge_changed", WAIT, |e| e["on"] == true);
    // A keeps the only operator busy for the whole test: every later wait is long.
    let (_operator, _a, _) = busy_operator(&navbat, "120000", 1);

    // B and C join together and key nothing: while B's offer of today's one place is open,
    // C cannot be offered the same place, so one of them hears "today", the other "the
    // morning" (whoever comes first).
    let before = navbat.events().len();
    let _b = navbat.sipp_client(
        "caller-b",
        "caller_ivr_wait_bye.xml",
        &["-s", DTM_DID, "-m", "1"],
    );
    let _c = navbat.sipp_client(
        "caller-c",
        "caller_ivr_wait_bye.xml",
        &["-s", DTM_DID, "-m", "1"],
    );
    let offers = |navbat: &Navbat| -> Vec<Value> {
        navbat.events()[before..]
            .iter()
            .filter(|e| e["kind"] == "door_offer")
            .cloned()
            .collect()
    };
    navbat.wait_for_event("door_offer", WAIT, |_| offers(&navbat).len() >= 2);
    let two = offers(&navbat);
    let mut kinds: Vec<&str> = two
        .iter()
        .map(|o| o["callback"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["next_morning", "today"], "{two:?}");

    // Both decline (the choice window ends); the place is free again: D is offered today.
    for offer in &two {
        let call = offer["call"].as_str().unwrap();
        let choice = navbat.wait_for_event("door_choice", WAIT, |e| e["call"] == call);
        assert_eq!(choice["choice"], "declined", "{choice}");
    }
    let (_d, call_d) = enqueue(&navbat, "caller-d", "caller_ivr_wait_bye.xml", &[]);
    let offer = navbat.wait_for_event("door_offer", WAIT, |e| e["call"] == call_d.as_str());
    assert_eq!(offer["callback"], "today", "{offer}");
}
