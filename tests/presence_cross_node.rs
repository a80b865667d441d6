//! A call on one node reaches an operator registered on the other, end to end.
//!
//! Two real navbat nodes on loopback share a real Redis and a real Postgres (both started by
//! the test). The operator's phone (a SIPp UAS) registers on node A only. A SIPp caller dials
//! node B's DID, goes through the IVR and is connected to that operator: node B claims the
//! operator in Redis and sends the INVITE straight to the contact node A registered. While the
//! operator talks, a second caller on node A waits: node A does not offer the operator that
//! node B holds (it could not win the claim), and offers it only once node B's call has ended
//! and the claim is released. Each call record lands once in the shared Postgres, with the
//! operator.

mod common;
mod store_support;

use common::*;
use navbat::config::DatabaseUrl;
use serde_json::Value;
use std::time::Duration;

/// How long the first caller stays on the line after the IVR (the operator is busy with it
/// meanwhile). Long, so that the second caller surely queues on node A while it lasts.
const FIRST_CALLER_PAUSE_MS: u64 = 15_000;
/// The second caller stays long enough to wait for the operator and then talk with it.
const SECOND_CALLER_PAUSE_MS: u64 = 40_000;

fn of_call<'a>(events: &'a [Value], kind: &str, call: &Value) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind && &e["call"] == call)
        .collect()
}

fn at_ms(e: &Value) -> u64 {
    e["at_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no at_ms: {e}"))
}

fn pg_count(pg: &store_support::Postgres, sql: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = navbat::store::db::Db::connect_lazy(&DatabaseUrl::Postgres(pg.url())).unwrap();
        let n = db.scalar(sql).await.unwrap_or(-1);
        db.close().await;
        n
    })
}

#[test]
fn a_call_on_node_b_reaches_an_operator_registered_on_node_a_and_only_there() {
    let redis = store_support::Redis::start();
    let pg = store_support::Postgres::start();
    // Both nodes seal callers' data with the same keys.
    let keys = tempfile::tempdir().unwrap();
    let a = Navbat::start(
        "cross-a",
        TestConfig::default().extra_toml(&store_support::shared_sections(
            "node-a",
            &redis.url(),
            &pg.url(),
            &keys.path().join("recordings.key"),
        )),
    );
    let b = Navbat::start(
        "cross-b",
        TestConfig::default().extra_toml(&store_support::shared_sections(
            "node-b",
            &redis.url(),
            &pg.url(),
            &keys.path().join("recordings.key"),
        )),
    );

    // The phone registers on node A only and answers two calls (one through each node).
    let phone = a.operator_phone("1001", "operator_answer.xml", 2, &[]);
    a.wait_operator("1001", "available");
    wait_until(
        "node-b to see 1001 available",
        Duration::from_secs(30),
        || b.operator("1001").filter(|o| o["state"] == "available"),
    );

    // 1. A caller on node B: IVR, queue, offered to 1001 (registered on A), answered.
    let mut first = b.caller(
        "caller-b",
        "caller_ivr_talk.xml",
        DTM_DID,
        FIRST_CALLER_PAUSE_MS,
    );
    let answered = b.wait_for_event("call_answered", Duration::from_secs(30), |e| {
        e["operator"] == "1001"
    });
    let first_call = answered["call"].clone();

    // 2. While 1001 talks to node B's caller, a caller on node A queues for the same queue.
    let mut second = a.caller(
        "caller-a",
        "caller_ivr_talk.xml",
        DTM_DID,
        SECOND_CALLER_PAUSE_MS,
    );
    let enqueued = a.wait_for_event("call_enqueued", Duration::from_secs(30), |_| true);
    let second_call = enqueued["call"].clone();

    // 3. The first call ends (the caller hangs up); then node A may offer 1001.
    let status = first.wait();
    assert!(
        status.success(),
        "caller on node B failed:\n{}",
        first.report()
    );
    let finished_b = b.wait_for_event("call_finished", EVENT_DEADLINE, |e| e["call"] == first_call);
    assert_eq!(finished_b["outcome"], "answered", "{finished_b}");
    assert_eq!(finished_b["operator"], "1001", "{finished_b}");
    let answered_a = a.wait_for_event("call_answered", Duration::from_secs(40), |e| {
        e["call"] == second_call
    });
    assert_eq!(answered_a["operator"], "1001", "{answered_a}");
    let status = second.wait();
    assert!(
        status.success(),
        "caller on node A failed:\n{}",
        second.report()
    );
    // The phone passes only if both calls were offered, answered and hung up (BYE relayed).
    phone.wait_success();

    // The second caller was waiting on node A while the operator talked to node B's caller;
    // otherwise this test would show nothing about double offers.
    assert!(
        at_ms(&enqueued) < at_ms(&finished_b),
        "node A's caller queued only after node B's call ended: {enqueued} / {finished_b}"
    );
    // Node A never offered 1001 while node B held it: every offer of 1001 on node A comes
    // after node B's call ended (node B's answer is the claim's start).
    let events_a = a.events();
    let offers_a: Vec<&Value> = events_a
        .iter()
        .filter(|e| e["kind"] == "call_offered" && e["operator"] == "1001")
        .collect();
    assert!(!offers_a.is_empty(), "node A never offered 1001");
    for offer in &offers_a {
        assert!(
            at_ms(offer) >= at_ms(&finished_b) || at_ms(offer) < at_ms(&answered),
            "node A offered 1001 while node B's caller talked to it: {offer} (B answered at \
             {}, ended at {})",
            at_ms(&answered),
            at_ms(&finished_b)
        );
    }
    // Node B offered its call once, to 1001, and node A's call was offered once too: a lost
    // claim is not an offer the phone ever saw.
    let events_b = b.events();
    let offers_b = of_call(&events_b, "call_offered", &first_call);
    assert_eq!(offers_b.len(), 1, "{offers_b:?}");
    assert_eq!(offers_b[0]["operator"], "1001");
    assert_eq!(
        of_call(&events_a, "call_offered", &second_call).len(),
        1,
        "{:?}",
        of_call(&events_a, "call_offered", &second_call)
    );
    // The operator was never parked for "missing" offers it never received.
    let missed: Vec<&Value> = events_a
        .iter()
        .chain(events_b.iter())
        .filter(|e| e["kind"] == "operator_state" && e["reason"] == "MissedOffers")
        .collect();
    assert!(missed.is_empty(), "{missed:?}");

    // Each call record lands once in the shared Postgres, with the operator.
    let first_ref = first_call.as_str().unwrap().to_owned();
    let second_ref = second_call.as_str().unwrap().to_owned();
    for (node, call) in [("node-b", &first_ref), ("node-a", &second_ref)] {
        let sql = format!(
            "SELECT COUNT(*) FROM call_records WHERE node = '{node}' AND call_ref = '{call}' \
             AND outcome = 'answered' AND operator = '1001' AND answered_at_ms IS NOT NULL"
        );
        wait_until(
            &format!("{node}'s record of {call} in Postgres"),
            Duration::from_secs(30),
            || (pg_count(&pg, &sql) == 1).then_some(()),
        );
        let all = format!(
            "SELECT COUNT(*) FROM call_records WHERE node = '{node}' AND call_ref = '{call}'"
        );
        assert_eq!(pg_count(&pg, &all), 1, "{node} {call}");
        let finished = format!(
            "SELECT COUNT(*) FROM call_events WHERE node = '{node}' AND kind = 'call_finished' \
             AND call_uid LIKE '{node}:%:{call}'"
        );
        assert_eq!(pg_count(&pg, &finished), 1, "{node} {call}");
    }
    // Each node recorded exactly one call.
    for node in ["node-a", "node-b"] {
        let sql = format!("SELECT COUNT(*) FROM call_records WHERE node = '{node}'");
        assert_eq!(pg_count(&pg, &sql), 1, "{node}");
    }
}
