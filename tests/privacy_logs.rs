//! D18: a caller's number never reaches a log in full, even with every log
//! level switched on. A call goes the whole way (IVR, queue, operator, both
//! hang-ups) with `RUST_LOG=trace`, then the log is searched for the number.

mod common;

use common::*;
use std::time::Duration;

/// The caller number in `caller_ivr_talk.xml`'s From.
const CALLER: &str = "998900000001";

#[test]
fn full_caller_number_never_reaches_the_log() {
    // This file is its own test binary, so the variable only reaches this navbat.
    std::env::set_var("RUST_LOG", "trace");
    let navbat = Navbat::start("privacy", TestConfig::default());
    let phone = navbat.operator_phone("1001", "operator_answer.xml", 1, &[]);
    navbat.wait_operator("1001", "available");
    navbat
        .caller("caller", "caller_ivr_talk.xml", "712351914", 1500)
        .wait_success();
    phone.wait_success();
    let finished = navbat.wait_for_event("call_finished", Duration::from_secs(20), |_| true);
    assert_eq!(finished["outcome"], "answered", "{finished}");

    let log = std::fs::read_to_string(&navbat.log).expect("navbat log");
    assert!(
        log.contains("call_arrived"),
        "the log must carry the call's events, or this test proves nothing"
    );
    // The masked form is there; neither the number nor its subscriber part is.
    assert!(log.contains("99890*****01"), "masked number missing");
    for needle in [CALLER, &CALLER[3..]] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(needle)).take(3).collect();
        assert!(
            hits.is_empty(),
            "{needle} found in the log:\n{}",
            hits.join("\n")
        );
    }
}
