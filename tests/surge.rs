//! Surge mode switching end to end: the real navbat binary with an exam calendar in its
//! configuration, read back through `/api/queues`, `/api/surge` and the event feed.
//!
//! No timing assertions: every wait is a poll on an event or an API value with a generous
//! bound, and only its outcome is asserted.

mod common;

use common::{Navbat, TestConfig, EVENT_DEADLINE};
use serde_json::{json, Value};

/// `[tenant.surge]` with one exam period from `now + from_secs` to `now + to_secs`.
fn calendar(from_secs: i64, to_secs: i64) -> String {
    let now = jiff::Timestamp::now();
    let at = |secs: i64| {
        now.checked_add(jiff::SignedDuration::from_secs(secs))
            .expect("a time near now")
            .to_string()
    };
    format!(
        "[tenant.surge]\ncalendar = [{{ start = \"{}\", end = \"{}\" }}]\n",
        at(from_secs),
        at(to_secs)
    )
}

fn queue_surge(navbat: &Navbat, queue: &str) -> bool {
    navbat.queue(queue).expect("queue in /api/queues")["surge"] == true
}

fn tenant_surge(navbat: &Navbat) -> Value {
    match navbat.get_json("/api/surge") {
        Value::Array(all) => all
            .into_iter()
            .find(|t| t["tenant"] == "dtm")
            .expect("dtm in /api/surge"),
        other => panic!("/api/surge is not an array: {other}"),
    }
}

fn surge_events(navbat: &Navbat) -> Vec<Value> {
    navbat
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "surge_changed")
        .collect()
}

#[test]
fn a_period_in_progress_switches_surge_on_at_start() {
    let navbat = Navbat::start(
        "surge_now",
        TestConfig::default().tenant_extra(&calendar(-3600, 3600)),
    );
    let event = navbat.wait_for_event("surge_changed", EVENT_DEADLINE, |e| {
        e["tenant"] == "dtm" && e["on"] == true
    });
    assert_eq!(event["by"], "calendar");
    assert!(queue_surge(&navbat, "dtm-uz"));
    assert!(queue_surge(&navbat, "dtm-ru"));
    assert_eq!(tenant_surge(&navbat)["mode"], "auto");
}

#[test]
fn a_past_period_leaves_surge_off() {
    let navbat = Navbat::start(
        "surge_past",
        TestConfig::default().tenant_extra(&calendar(-7200, -3600)),
    );
    // The first evaluation runs when the ACD host starts, before the API answers.
    assert_eq!(tenant_surge(&navbat)["on"], false);
    assert!(!queue_surge(&navbat, "dtm-uz"));
    assert!(surge_events(&navbat).is_empty());
}

#[test]
fn a_future_period_switches_on_then_off() {
    let navbat = Navbat::start(
        "surge_future",
        TestConfig::default().tenant_extra(&calendar(6, 10)),
    );
    navbat.wait_for_event("surge_changed", EVENT_DEADLINE, |e| e["on"] == true);
    navbat.wait_for_event("surge_changed", EVENT_DEADLINE, |e| e["on"] == false);
    let events = surge_events(&navbat);
    let seen: Vec<(bool, &str)> = events
        .iter()
        .map(|e| (e["on"] == true, e["by"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(seen, vec![(true, "calendar"), (false, "calendar")]);
    assert!(!queue_surge(&navbat, "dtm-uz"));
}

#[test]
fn a_supervisor_overrides_the_calendar_and_hands_back() {
    let navbat = Navbat::start(
        "surge_manual",
        TestConfig::default().tenant_extra(&calendar(-3600, 3600)),
    );
    navbat.wait_for_event("surge_changed", EVENT_DEADLINE, |e| e["on"] == true);

    let r = navbat.post_json("/api/tenants/dtm/surge", &json!({"on": false, "by": "sv1"}));
    assert_eq!(r.status, 202, "{}", r.body);
    let off = navbat.wait_for_event("surge_changed", EVENT_DEADLINE, |e| e["on"] == false);
    assert_eq!(off["by"], "manual:sv1");
    assert!(!queue_surge(&navbat, "dtm-uz"));
    assert_eq!(tenant_surge(&navbat)["mode"], "manual");

    let r = navbat.post_json("/api/tenants/dtm/surge", &json!({"mode": "auto"}));
    assert_eq!(r.status, 202, "{}", r.body);
    let events = surge_events(&navbat);
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(
        (events[2]["on"].clone(), events[2]["by"].clone()),
        (json!(true), json!("calendar"))
    );
    assert!(queue_surge(&navbat, "dtm-uz"));

    let r = navbat.post_json("/api/tenants/dtm/surge", &json!({"mode": "sideways"}));
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn the_load_switches_surge_on_and_off_automatically() {
    // No operators: a waiting caller's expected wait is the max wait (60 s), over the
    // 30 s threshold; when the caller leaves nothing waits and surge goes off again.
    let auto = "[tenant.surge.auto]\nenter_expected_wait_secs = 30\nexit_expected_wait_secs = 10\n\
                enter_waiting_per_available = 5\nexit_waiting_per_available = 1\n\
                hold_secs = 0\nmin_dwell_secs = 0\n";
    let navbat = Navbat::start(
        "surge_auto",
        TestConfig::default().operators(vec![]).tenant_extra(auto),
    );
    let mut caller = navbat.caller("caller", "caller_abandon.xml", common::DTM_DID, 8_000);
    let on = navbat.wait_for_event("surge_changed", EVENT_DEADLINE, |e| e["on"] == true);
    assert_eq!(on["by"], "auto:expected_wait=60.0");
    caller.wait();
    let off = navbat.wait_for_event("surge_changed", EVENT_DEADLINE, |e| e["on"] == false);
    assert!(
        off["by"].as_str().unwrap().starts_with("auto:load_low"),
        "{off}"
    );
    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, |_| true);
    assert_eq!(finished["outcome"], "abandoned");
}
