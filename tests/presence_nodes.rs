//! Two navbat nodes on loopback sharing a real Redis and a real Postgres (both started by the
//! test): an operator whose phone registers on node A is seen as available by node B, whose
//! ACD core takes it as a candidate (claimed in Redis before any offer).

mod common;
mod store_support;

use common::*;
use std::time::Duration;

#[test]
fn an_operator_registered_on_one_node_is_available_on_the_other() {
    let redis = store_support::Redis::start();
    let pg = store_support::Postgres::start();
    // Both nodes seal callers' data with the same keys.
    let keys = tempfile::tempdir().unwrap();
    let a = Navbat::start(
        "node-a",
        TestConfig::default().extra_toml(&store_support::shared_sections(
            "node-a",
            &redis.url(),
            &pg.url(),
            &keys.path().join("recordings.key"),
        )),
    );
    let b = Navbat::start(
        "node-b",
        TestConfig::default().extra_toml(&store_support::shared_sections(
            "node-b",
            &redis.url(),
            &pg.url(),
            &keys.path().join("recordings.key"),
        )),
    );

    let contact_port = free_port();
    a.register("1001", a.config.password_of("1001"), contact_port)
        .wait_success();
    a.wait_operator("1001", "available");

    // Node B never saw a REGISTER from 1001, yet offers it calls: available, with A's contact.
    let seen = wait_until(
        "node-b to see 1001 available",
        Duration::from_secs(30),
        || b.operator("1001").filter(|o| o["state"] == "available"),
    );
    let contact = seen["contact"].as_str().unwrap_or_default().to_owned();
    assert!(
        contact.contains(&contact_port.to_string()),
        "node-b knows where the phone is: {seen}"
    );
    // An operator registered nowhere stays logged out on both nodes.
    assert_eq!(b.operator("1002").unwrap()["state"], "logged_out");
    assert_eq!(a.operator("1002").unwrap()["state"], "logged_out");
}
