//! The desk in a real browser (Debian's chromium through chromedriver): an operator logs in,
//! a SIPp caller reaches their SIPp softphone, the screen pop shows the masked number and the
//! topic, the after-call form refuses an 8-digit STIR with its reason and takes 9 digits,
//! the dispositions reach the database, a second call from the same number shows the first
//! call's notes; an operator gets 403 on the supervisor's page; the officer of `dtm` cannot
//! see `support`'s calls.

mod common;

use common::browser::Browser;
use common::desk::{self, with_desk};
use common::{Navbat, TestConfig, DTM_DID, EVENT_DEADLINE};
use std::time::Duration;

const UI: Duration = Duration::from_secs(20);
/// The number caller_ivr_talk.xml calls from, and its masked form (D18).
const CALLER: &str = "998900000001";
const CALLER_MASKED: &str = "99890*****01";

/// The store name of the newest call of `tenant` to have ended.
fn ended_call(nav: &Navbat, tenant: &str, not: &[String]) -> String {
    let ev = nav.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["tenant"] == tenant && !not.iter().any(|c| e["call"] == c.as_str())
    });
    ev["call"].as_str().unwrap().to_owned()
}

#[test]
fn operator_desk_screen_pop_after_call_work_and_tenant_walls() {
    let nav = Navbat::start("desk-browser", with_desk(TestConfig::default(), ""));
    let b = Browser::start(nav.dir.path());

    // An operator's page is not the supervisor's.
    b.log_in(nav.http, "op1001");
    b.goto(&format!("http://{}/supervisor", nav.http));
    b.wait_text("#forbidden", "Ruxsat yo'q", UI);
    b.goto(&format!("http://{}/desk", nav.http));
    b.wait_for("#no-call", UI);

    // Operator 1001's softphone (SIPp) answers two calls; only 1001 is registered.
    let phone = nav.operator_phone("1001", "operator_answer.xml", 2, &[]);

    // Call 1: dtm, language 1, topic 2 (results). The pop arrives by SSE.
    let caller = nav.caller("caller-1", "caller_ivr_talk.xml", DTM_DID, 8_000);
    b.wait_for("#pop[data-phase]", UI);
    assert_eq!(b.text("#pop-caller"), CALLER_MASKED);
    assert!(
        !b.page_text().contains(CALLER),
        "the full number is on the desk"
    );
    assert_eq!(
        b.find("#pop-topic").attr("data-topic").as_deref(),
        Some("results")
    );
    assert_eq!(b.text("#pop-topic"), "Natijalar");
    assert_eq!(
        b.find("#pop-tenant").attr("data-tenant").as_deref(),
        Some("dtm")
    );
    b.wait_for("#pop-no-history", UI);
    b.wait_text("#pop-phase", "Suhbat davom etmoqda", UI);
    b.screenshot(&nav.dir.path().join("desk-during-call.png"));
    // dtm does not ask for caller details.
    assert!(!b.exists("#acw-stir"));
    b.select("#acw-category", "complaint");
    b.select("#acw-outcome", "unresolved");
    b.fill(
        "#acw-notes",
        "Natija sanasini so'radi; appellyatsiya tartibi tushuntirildi",
    );
    // A call back is owed: the form opens a phone request about the call, assigned to them.
    b.click("#acw-open-request");
    b.click("#acw-save");
    b.wait_text("#acw-saved", "Saqlandi", UI);
    b.wait_text("#acw-request", "Murojaat ochildi", UI);
    let request_link = b.find("#acw-request a").attr("href").expect("request link");
    caller.wait_success();
    let first = ended_call(&nav, "dtm", &[]);
    b.goto(&format!("http://{}{request_link}", nav.http));
    b.wait_text("#request-channel", "Telefon", UI);
    assert_eq!(b.text("#request-assignee"), "op1001");
    assert_eq!(b.text("#request-priority"), "Yuqori");
    assert!(b.text("#thread").contains("appellyatsiya tartibi"));
    assert_eq!(b.text("#request-requester"), CALLER_MASKED);
    assert!(
        !b.page_text().contains(CALLER),
        "the full number is on the request page"
    );
    b.goto(&format!("http://{}/desk", nav.http));
    b.wait_for("#state-panel", UI);
    // In the database, through the journal.
    let disp = common::wait_until("the first disposition in the store", EVENT_DEADLINE, || {
        let r = nav.get(&format!("/api/calls/{first}/disposition"));
        (r.status == 200).then(|| r.json())
    });
    assert_eq!(disp["category"], "complaint");
    assert_eq!(disp["outcome"], "unresolved");
    assert_eq!(disp["operator"], "1001");
    assert_eq!(disp["saved_by"], "op1001");
    assert_eq!(disp["topic"], "results");

    // Call 2: the same number on the support line. The pop shows call 1 and its notes.
    // 1001 is in wrap-up until the form was saved (support: "saved"), then available.
    nav.wait_operator("1001", "available");
    let caller = nav.caller("caller-2", "caller_ivr_talk.xml", desk::SUPPORT_DID, 8_000);
    b.wait_for("#pop-tenant[data-tenant=\"support\"]", UI);
    b.wait_text("#pop-history", "appellyatsiya tartibi", UI);
    assert!(b.text("#pop-history").contains("Hal qilinmadi"));
    // Support asks who called (C8): an 8-digit STIR is refused with the reason.
    b.fill("#acw-name", "Aziz Karimov");
    b.fill("#acw-org", "Turon Savdo MChJ");
    b.fill("#acw-stir", "12345678");
    b.select("#acw-category", "question");
    b.select("#acw-topic", "marking-codes");
    b.select("#acw-outcome", "resolved");
    b.fill("#acw-notes", "Kod qanday olinishi tushuntirildi");
    b.click("#acw-save");
    b.wait_text("#acw-error", "STIR aynan 9 ta raqam", UI);
    assert!(!b.exists("#acw-saved"));
    b.fill("#acw-stir", "123456789");
    b.click("#acw-save");
    b.wait_text("#acw-saved", "Saqlandi", UI);
    caller.wait_success();
    let second = ended_call(&nav, "support", std::slice::from_ref(&first));
    let disp = common::wait_until(
        "the second disposition in the store",
        EVENT_DEADLINE,
        || {
            let r = nav.get(&format!("/api/calls/{second}/disposition"));
            (r.status == 200).then(|| r.json())
        },
    );
    assert_eq!(disp["category"], "question");
    assert_eq!(disp["topic"], "marking-codes");
    // The bootstrap token is an admin: personal data stays masked unless configured.
    assert_ne!(disp["stir"], "123456789");
    assert!(disp["stir"].as_str().unwrap().contains('*'));
    phone.wait_success();

    // The officer of dtm sees dtm's call and its disposition, not support's call.
    b.log_out();
    b.log_in(nav.http, "officer-dtm");
    b.goto(&format!(
        "http://{}/calls/{}",
        nav.http,
        nav_uid(&nav, &first)
    ));
    b.wait_text("#disp-notes", "appellyatsiya tartibi", UI);
    assert_eq!(b.text("#call-caller"), CALLER_MASKED);
    b.goto(&format!(
        "http://{}/calls/{}",
        nav.http,
        nav_uid(&nav, &second)
    ));
    b.wait_for("#not-found", UI);
    assert!(
        !b.page_text().contains("Turon"),
        "support's data shown to dtm's officer"
    );
    b.goto(&format!("http://{}/supervisor", nav.http));
    b.wait_for("#read-only", UI);
    assert!(!b.exists("button.listen"));
    // Switch the page language to Russian.
    b.click("#lang-switch");
    b.wait_text("#read-only", "Только просмотр", UI);
}

/// The supervisor's floor follows the line without a reload: a caller's row appears while
/// they wait and goes when they hang up, and an operator's state changed elsewhere (the API)
/// shows. Made to fail by a floor that is rendered once (no stream): the row never appears.
#[test]
fn the_supervisor_floor_follows_calls_and_operators_live() {
    let nav = Navbat::start("desk-floor", with_desk(TestConfig::default(), ""));
    let b = Browser::start(nav.dir.path());
    b.log_in(nav.http, "supervisor");
    b.goto(&format!("http://{}/supervisor", nav.http));
    b.wait_for("#no-live-calls", UI);
    // A mark on this page: gone if the page is ever loaded again.
    b.execute("window.floorMark = 'kept'; return null;", vec![]);

    // Nobody is registered: the caller waits, then gives up (CANCEL after 8 s).
    let caller = nav.caller("floor-caller", "caller_abandon.xml", DTM_DID, 8_000);
    let row = b.wait_for("#live-calls tr.call", UI);
    let call = row.attr("data-call").expect("the row names its call");
    assert!(
        !b.page_text().contains(CALLER),
        "the full number is on the floor"
    );
    assert!(b
        .text(&format!("tr.call[data-call='{call}']"))
        .contains(CALLER_MASKED));
    caller.wait_success();
    b.wait_for("#no-live-calls", UI);

    // 1002's state changed through the API reaches the floor.
    let r = nav.post_json(
        "/api/operators/1002/state",
        &serde_json::json!({"state": "break"}),
    );
    assert_eq!(r.status, 202, "{r:?}");
    b.wait_text("tr.operator[data-ext='1002'] .op-state", "Tanaffusda", UI);
    assert_eq!(
        b.execute("return window.floorMark || null;", vec![]),
        serde_json::json!("kept"),
        "the floor page was loaded again instead of updated"
    );
}

/// The store name (`node:boot:c1`) of a call of this run.
fn nav_uid(nav: &Navbat, call: &str) -> String {
    let r = nav.get(&format!("/api/calls/{call}/history"));
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["call"].as_str().unwrap().to_owned()
}

#[test]
fn editors_write_the_knowledge_base_and_operators_find_it() {
    let nav = Navbat::start("desk-kb", with_desk(TestConfig::default(), ""));
    let b = Browser::start(nav.dir.path());
    b.log_in(nav.http, "editor");
    b.goto(&format!("http://{}/kb/new?tenant=dtm", nav.http));
    b.select("#kb-topic", "results");
    b.fill("#kb-title-uz", "Natijalar qachon e'lon qilinadi");
    b.fill("#kb-title-ru", "Когда публикуются результаты");
    b.fill(
        "#kb-body-uz",
        "Natijalar test kunidan keyin uch kun ichida e'lon qilinadi.",
    );
    b.fill(
        "#kb-body-ru",
        "Результаты публикуются в течение трёх дней после теста.",
    );
    b.click("#kb-save");
    b.wait_for("#kb-article", UI);
    b.click("#kb-edit");
    b.fill(
        "#kb-body-uz",
        "Natijalar test kunidan keyin uch kun ichida saytda e'lon qilinadi.",
    );
    b.click("#kb-save");
    b.wait_text("#kb-body", "saytda", UI);
    assert_eq!(
        b.find("#kb-article").attr("data-revision").as_deref(),
        Some("2")
    );
    assert_eq!(b.find_all("#kb-revisions li").len(), 2);
    b.log_out();

    // An operator finds it by a word of either language; cannot edit.
    b.log_in(nav.http, "op1001");
    b.goto(&format!("http://{}/kb?tenant=dtm&q=natija", nav.http));
    b.wait_text("#kb-results", "Natijalar qachon", UI);
    b.goto(&format!("http://{}/kb?tenant=dtm&q=публикуются", nav.http));
    b.wait_text("#kb-results", "Natijalar qachon", UI);
    assert!(!b.exists("#kb-new"));
    b.goto(&format!("http://{}/kb/new?tenant=dtm", nav.http));
    b.wait_for("#forbidden", UI);
}
