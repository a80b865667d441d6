//! The recording player on a call's page, in a real browser (Debian's chromium through
//! chromedriver): a supervisor of the call's tenant gets the player, which loads the
//! recording by range requests (its length read from the served WAV) and is audited; the
//! operator who had the call sees the page but no player, because the tenant does not let
//! operators hear their calls; an officer of another tenant gets the 404 page.

mod common;

use common::browser::Browser;
use common::desk::with_desk;
use common::{wait_until, Navbat, TestConfig, DTM_DID, EVENT_DEADLINE};
use std::time::Duration;

const UI: Duration = Duration::from_secs(20);

#[test]
fn supervisors_play_a_recording_on_the_call_page_and_the_operator_does_not_see_it() {
    let nav = Navbat::start("recordings-browser", with_desk(TestConfig::default(), ""));
    let phone = nav.operator_phone("1001", "operator_answer.xml", 1, &[]);
    nav.wait_operator("1001", "available");
    nav.caller("caller", "caller_ivr_talk.xml", DTM_DID, 3_000)
        .wait_success();
    drop(phone);
    let done = nav.wait_for_event("recording", EVENT_DEADLINE, |_| true);
    let call = done["call"].as_str().unwrap().to_owned();
    let seconds = done["duration_ms"].as_f64().unwrap() / 1000.0;
    let uid = wait_until("the recording in the index", EVENT_DEADLINE, || {
        let listed = nav.get_json("/api/recordings?tenant=dtm");
        listed.as_array()?.iter().find_map(|r| {
            let uid = r["call_uid"].as_str()?;
            (uid.ends_with(&format!(":{call}")) && !r["duration_ms"].is_null())
                .then(|| uid.to_owned())
        })
    });
    let page = format!("http://{}/calls/{}", nav.http, uid);

    let b = Browser::start(nav.dir.path());
    b.log_in(nav.http, "sup-dtm");
    b.goto(&page);
    let player = b.wait_for("#recording-player", UI);
    assert_eq!(
        player.attr("src").as_deref(),
        Some(format!("/api/recordings/{uid}").as_str())
    );
    assert!(b.exists("#recording-download"));
    // The browser reads the WAV's header (a range request) and knows its length.
    let played = wait_until("the player to load the recording", UI, || {
        let d = b.execute(
            "const p = document.getElementById('recording-player'); \
             return p.readyState >= 1 ? p.duration : null;",
            vec![],
        );
        d.as_f64()
    });
    assert!(
        (played - seconds).abs() < 0.05,
        "the player says {played} s, the recording is {seconds} s"
    );
    let audited = wait_until("the play in the audit log", EVENT_DEADLINE, || {
        let log = nav.get_json("/api/audit?limit=1000");
        log.as_array()?
            .iter()
            .find(|l| {
                l["actor"] == "sup-dtm"
                    && l["action"] == "recording_play"
                    && l["target"] == uid.as_str()
            })
            .cloned()
    });
    assert_eq!(audited["source"], "127.0.0.1");

    // The operator who took the call sees its page, without the player (dtm keeps
    // recordings from operators).
    b.log_out();
    b.log_in(nav.http, "op1001");
    b.goto(&page);
    b.wait_for("#call-id", UI);
    assert!(
        !b.exists("#recording-player"),
        "the operator got the player"
    );
    assert!(!b.exists("#recording-download"));

    // Another tenant's officer does not learn the call exists.
    b.log_out();
    b.log_in(nav.http, "officer-support");
    b.goto(&page);
    b.wait_for("#not-found", UI);
    assert!(!b.exists("#recording-player"));
}
