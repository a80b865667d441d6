//! QA in a real browser (Debian's chromium through chromedriver), issue 16 parts 4-6: a
//! supervisor opens the QA queue, draws the week, scores the sampled call beside its
//! recording with a timestamped comment (clicking the time seeks the player); the operator
//! sees the score and the comment on their desk and disputes it; the supervisor answers;
//! then a calibration session where the supervisor and the client's officer score the same
//! call blind (neither sees the spread before giving their own score) and the page shows the
//! spread per criterion.

mod common;

use common::browser::Browser;
use common::qa::{answered_call, with_qa};
use common::{wait_until, Navbat, TestConfig};
use std::time::Duration;

const UI: Duration = Duration::from_secs(20);

/// Fills the marks of the scorecard form inside `scope` (a CSS prefix).
fn mark(b: &Browser, scope: &str, marks: &[(&str, &str)]) {
    for (id, m) in marks {
        b.select(&format!("{scope} select[name=mark_{id}]"), m);
    }
}

/// The spread line of `criterion`: (min, max, mean, std-dev) as shown.
fn spread_line(b: &Browser, criterion: &str) -> (String, String, String, String) {
    let row = format!(".calibration-spread tr[data-criterion={criterion}]");
    (
        b.text(&format!("{row} .min")),
        b.text(&format!("{row} .max")),
        b.text(&format!("{row} .mean")),
        b.text(&format!("{row} .std")),
    )
}

fn s(a: &str, b: &str, c: &str, d: &str) -> (String, String, String, String) {
    (a.into(), b.into(), c.into(), d.into())
}

#[test]
fn supervisor_scores_operator_disputes_and_calibration_shows_the_spread() {
    let nav = Navbat::start("qa-browser", with_qa(TestConfig::default()));
    let call = answered_call(&nav);
    let b = Browser::start(nav.dir.path());

    // The supervisor opens the queue and draws this week's sample: the call is in it.
    b.log_in(nav.http, "sup-dtm");
    b.click("#nav-qa");
    b.wait_for("#qa-not-drawn", UI);
    b.click("#qa-draw-button");
    let row = format!(".qa-row[data-call='{call}']");
    b.wait_for(&row, UI);
    assert!(b.exists("#qa-seed"), "the draw's seed is not shown");
    b.click(&format!("{row} a.qa-evaluate"));

    // The evaluation page: the player, the scorecard, a comment at 0:02.
    b.wait_for("#recording-player", UI);
    assert_eq!(b.text("#call-id"), call);
    mark(
        &b,
        "#qa-form",
        &[("greeting", "4"), ("accuracy", "5"), ("legal", "5")],
    );
    b.fill("input[name=at_1]", "0:02");
    b.fill("input[name=text_1]", "Salomlashishda xizmat nomi aytilmadi");
    b.click("#qa-save");
    // 10*4 + 30*5 + 30*5 = 340 of 350.
    b.wait_text("#qa-evaluations .qa-total", "97.1", UI);
    assert_eq!(b.text(".qa-seek"), "0:02");
    // The comment's time seeks the player there.
    b.wait_for("#recording-player", UI);
    wait_until("the player to load the recording", UI, || {
        let ready = b.execute(
            "return document.getElementById('recording-player').readyState;",
            vec![],
        );
        (ready.as_u64()? >= 1).then_some(())
    });
    b.click(".qa-seek");
    let at = wait_until("the player to seek", UI, || {
        let t = b.execute(
            "return document.getElementById('recording-player').currentTime;",
            vec![],
        );
        t.as_f64().filter(|t| *t > 0.0)
    });
    assert_eq!(
        at, 2.0,
        "the player is at {at} s, not at the comment's 0:02"
    );

    // The operator sees the score and the comment on their desk, and disputes it.
    b.log_out();
    b.log_in(nav.http, "op1001");
    b.click("#nav-my-scores");
    b.wait_text("#qa-mine .qa-total", "97.1", UI);
    assert!(b
        .text("#qa-mine .qa-comment-text")
        .contains("xizmat nomi aytilmadi"));
    assert_eq!(b.text("#qa-mine .qa-evaluator"), "sup-dtm");
    b.fill(
        "#qa-mine textarea[name=reason]",
        "Xizmat nomi aytilgan, 0:01 da",
    );
    b.click("#qa-mine .qa-dispute-send");
    b.wait_text("#qa-mine .qa-dispute-reason", "0:01 da", UI);
    assert!(!b.exists(".qa-dispute-send"), "a second dispute is offered");

    // The supervisor sees the open dispute in the queue and answers it.
    b.log_out();
    b.log_in(nav.http, "sup-dtm");
    b.click("#nav-qa");
    b.wait_text("#qa-disputes .qa-dispute-reason", "0:01 da", UI);
    b.fill(
        "#qa-disputes textarea[name=answer]",
        "Qayta tinglandi: ball qoladi",
    );
    b.click("#qa-disputes .qa-answer-send");
    b.wait_for("#qa-no-disputes", UI);
    assert_eq!(b.text(&format!("{row} .qa-score")), "97.1");

    // Calibration: the supervisor opens a session on the call and scores it first.
    b.fill(
        "#calibration-form input[name=title]",
        "DTM bilan qo'shma ko'rik",
    );
    b.fill("#calibration-form textarea[name=calls]", &call);
    b.click("#calibration-open");
    b.wait_for(".calibration-score", UI);
    assert!(
        !b.exists(".calibration-spread"),
        "the spread is shown before scoring"
    );
    let session = b.current_url();
    mark(
        &b,
        ".calibration-score",
        &[("greeting", "5"), ("accuracy", "3"), ("legal", "5")],
    );
    b.click(".calibration-save");
    b.wait_text(".spread-n", "1", UI);
    assert!(!b.exists(".calibration-score"), "a second score is offered");

    // The client's officer does not see the supervisor's score before giving theirs.
    b.log_out();
    b.log_in(nav.http, "officer-dtm");
    b.goto(&session);
    b.wait_for(".calibration-score", UI);
    assert!(
        !b.exists(".calibration-spread"),
        "the officer saw the others' scores before scoring"
    );
    mark(
        &b,
        ".calibration-score",
        &[("greeting", "3"), ("accuracy", "5"), ("legal", "0")],
    );
    b.click(".calibration-save");
    b.wait_text(".spread-n", "2", UI);
    // Greeting 5 and 3; accuracy 3 and 5; legal 5 and 0 (critical: the officer's total is 0);
    // totals 82.9 (290 of 350) and 0.
    assert_eq!(
        spread_line(&b, "greeting"),
        s("3.00", "5.00", "4.00", "1.00")
    );
    assert_eq!(
        spread_line(&b, "accuracy"),
        s("3.00", "5.00", "4.00", "1.00")
    );
    assert_eq!(spread_line(&b, "legal"), s("0.00", "5.00", "2.50", "2.50"));
    assert_eq!(
        spread_line(&b, "total"),
        s("0.00", "82.90", "41.45", "41.45")
    );

    // The supervisor closes the session; it shows the same spread to everyone.
    b.log_out();
    b.log_in(nav.http, "sup-dtm");
    b.goto(&session);
    b.wait_text(".spread-n", "2", UI);
    b.click("#calibration-close");
    b.wait_text("#session-state", "yopilgan", UI);
    assert!(!b.exists("#calibration-close"));
    assert_eq!(spread_line(&b, "legal"), s("0.00", "5.00", "2.50", "2.50"));
}
