//! QA (issue 16 parts 4-6) against a real navbat with its SQLite store: every QA route
//! walked with no credentials, the wrong role, another tenant's account and the right one,
//! from one table; CSRF on its forms; `navbat qa sample` drawing a week through the running
//! router with a recorded seed that re-derives; the audit lines.

mod common;

use common::desk::{self, login, request, Session};
use common::qa::{answered_call, evaluation_ids, location, with_qa};
use common::{http_request, Navbat, TestConfig, ADMIN_TOKEN, EVENT_DEADLINE};
use serde_json::json;
use std::process::Command;

/// The marks of a full evaluation form.
const MARKS: &[(&str, &str)] = &[
    ("mark_greeting", "4"),
    ("mark_accuracy", "5"),
    ("mark_legal", "5"),
];

fn marks_and(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut all = MARKS.to_vec();
    all.extend_from_slice(extra);
    all
}

/// A page request with no session at all.
fn anonymous(nav: &Navbat, method: &str, path: &str) -> u16 {
    let body = desk::form(&marks_and(&[("tenant", "dtm")]));
    let r = request(
        nav.http,
        method,
        path,
        &[],
        (method == "POST").then_some(("application/x-www-form-urlencoded", body.as_str())),
    );
    if r.status == 303 {
        assert!(location(&r).starts_with("/login"), "{path}: {r:?}");
    }
    r.status
}

fn post(s: &Session, path: &str, fields: &[(&str, &str)]) -> u16 {
    s.post_form(path, fields).status
}

fn supervisors_call(nav: &Navbat, call: &str) -> String {
    let page = login(nav.http, "supervisor").get(&format!("/qa/calls/{call}"));
    assert_eq!(page.status, 200, "{page:?}");
    evaluation_ids(&page.body)
        .into_iter()
        .next()
        .expect("an evaluation")
}

#[test]
fn every_qa_route_answers_by_role_and_tenant() {
    let nav = Navbat::start("qa-routes", with_qa(TestConfig::default()));
    let d = answered_call(&nav);
    nav.caller(
        "support-caller",
        "caller_abandon.xml",
        desk::SUPPORT_DID,
        500,
    )
    .wait_success();
    let ev = nav.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["tenant"] == "support"
    });
    let sc = ev["call"].as_str().unwrap().to_owned();
    let s = common::wait_until("the support call in the store", EVENT_DEADLINE, || {
        let r = nav.get(&format!("/api/calls/{sc}/history"));
        (r.status == 200).then(|| r.json()["call"].as_str().unwrap().to_owned())
    });

    let op = login(nav.http, "op1001");
    let op2 = login(nav.http, "op1002");
    let editor = login(nav.http, "editor");
    let sup = login(nav.http, "sup-dtm");
    let both = login(nav.http, "supervisor");
    let officer = login(nav.http, "officer-dtm");
    let officer_s = login(nav.http, "officer-support");

    // GET /qa: the queue.
    assert_eq!(anonymous(&nav, "GET", "/qa?tenant=dtm"), 303);
    assert_eq!(op.get("/qa?tenant=dtm").status, 403);
    assert_eq!(editor.get("/qa?tenant=dtm").status, 403);
    assert_eq!(officer_s.get("/qa?tenant=dtm").status, 404);
    assert_eq!(officer.get("/qa?tenant=dtm").status, 200);
    assert_eq!(sup.get("/qa?tenant=dtm").status, 200);

    // POST /qa/sample: the draw from the page.
    let week: &[(&str, &str)] = &[("tenant", "dtm")];
    assert_eq!(anonymous(&nav, "POST", "/qa/sample"), 303);
    assert_eq!(post(&op, "/qa/sample", week), 403);
    assert_eq!(post(&officer, "/qa/sample", week), 403);
    assert_eq!(post(&sup, "/qa/sample", &[("tenant", "support")]), 404);
    assert_eq!(post(&sup, "/qa/sample", week), 303);
    let queue = sup.get("/qa?tenant=dtm");
    assert!(
        queue.body.contains(&format!("data-call=\"{d}\"")),
        "the answered call is not in the drawn queue: {}",
        queue.body
    );
    assert!(queue.body.contains("id=\"qa-seed\""));

    // POST /api/qa/sample: the same for the shell and scripts.
    let body = json!({"tenant": "dtm"});
    let api = |token: Option<&str>, b: &serde_json::Value| {
        http_request(nav.http, "POST", "/api/qa/sample", token, Some(b)).status
    };
    assert_eq!(api(None, &body), 401);
    let tok = |s: &Session| {
        let r = request(
            nav.http,
            "POST",
            "/api/tokens",
            &[("Cookie", &s.cookie_header()), ("X-CSRF-Token", &s.csrf)],
            Some(("application/json", "{\"label\":\"qa\"}")),
        );
        assert_eq!(r.status, 201, "{r:?}");
        r.json()["token"].as_str().unwrap().to_owned()
    };
    let (op_t, off_t, sup_t) = (tok(&op), tok(&officer), tok(&sup));
    assert_eq!(api(Some(&op_t), &body), 403);
    assert_eq!(api(Some(&off_t), &body), 403);
    assert_eq!(api(Some(&sup_t), &json!({"tenant": "support"})), 404);
    assert_eq!(
        api(Some(&sup_t), &json!({"tenant": "dtm", "week": "2026-49"})),
        400
    );
    assert_eq!(api(Some(&sup_t), &body), 200);

    // GET and POST /qa/calls/{call}: evaluating.
    let dp = format!("/qa/calls/{d}");
    let sp = format!("/qa/calls/{s}");
    assert_eq!(anonymous(&nav, "GET", &dp), 303);
    assert_eq!(op.get(&dp).status, 403);
    assert_eq!(officer.get(&dp).status, 403);
    assert_eq!(sup.get(&sp).status, 404);
    assert_eq!(sup.get(&dp).status, 200);
    assert_eq!(anonymous(&nav, "POST", &dp), 303);
    assert_eq!(post(&op, &dp, MARKS), 403);
    assert_eq!(post(&officer, &dp, MARKS), 403);
    assert_eq!(post(&sup, &sp, MARKS), 404);
    // CSRF: the form without its token is refused.
    let no_csrf = request(
        nav.http,
        "POST",
        &dp,
        &[("Cookie", &sup.cookie_header())],
        Some(("application/x-www-form-urlencoded", &desk::form(MARKS))),
    );
    assert_eq!(no_csrf.status, 403, "{no_csrf:?}");
    // A bad mark or a comment without its time is refused with the form's reason.
    let bad = sup.post_form(&dp, &[("mark_greeting", "9")]);
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("Salomlashish") && bad.body.contains("0 = bajarilmagan"),
        "the refusal does not name the criterion in the account's language: {}",
        bad.body
    );
    let bad = sup.post_form(&dp, &marks_and(&[("text_1", "x")]));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Vaqt (daq:son)"), "{}", bad.body);
    assert_eq!(
        post(
            &sup,
            &dp,
            &marks_and(&[("at_1", "0:02"), ("text_1", "Yaxshi")])
        ),
        303
    );
    assert_eq!(post(&both, &sp, MARKS), 303);
    let dtm_eval = supervisors_call(&nav, &d);
    let support_eval = supervisors_call(&nav, &s);

    // GET /desk/qa: the operator's own scores.
    assert_eq!(anonymous(&nav, "GET", "/desk/qa"), 303);
    assert_eq!(sup.get("/desk/qa").status, 403);
    let mine = op.get("/desk/qa");
    assert_eq!(mine.status, 200);
    assert_eq!(evaluation_ids(&mine.body), vec![dtm_eval.clone()]);
    assert!(mine.body.contains("97.1"), "{}", mine.body);
    assert!(evaluation_ids(&op2.get("/desk/qa").body).is_empty());

    // POST /desk/qa/{id}/dispute.
    let dispute = format!("/desk/qa/{dtm_eval}/dispute");
    let reason: &[(&str, &str)] = &[("reason", "Salomlashish to'liq edi")];
    assert_eq!(anonymous(&nav, "POST", &dispute), 303);
    assert_eq!(post(&sup, &dispute, reason), 403);
    assert_eq!(post(&op2, &dispute, reason), 404);
    assert_eq!(post(&op, &dispute, &[("reason", " ")]), 400);
    assert_eq!(post(&op, &dispute, reason), 303);
    assert_eq!(post(&op, &dispute, reason), 409);

    // POST /qa/evaluations/{id}/answer.
    let ans = format!("/qa/evaluations/{dtm_eval}/answer");
    let answer: &[(&str, &str)] = &[("answer", "Tekshirildi")];
    assert_eq!(anonymous(&nav, "POST", &ans), 303);
    assert_eq!(post(&op, &ans, answer), 403);
    assert_eq!(post(&officer, &ans, answer), 403);
    assert_eq!(
        post(
            &sup,
            &format!("/qa/evaluations/{support_eval}/answer"),
            answer
        ),
        404
    );
    assert!(sup.get("/qa?tenant=dtm").body.contains(&dtm_eval));
    assert_eq!(post(&sup, &ans, answer), 303);
    assert!(
        !sup.get("/qa?tenant=dtm").body.contains(&dtm_eval),
        "an answered dispute is still open"
    );
    assert!(op.get("/desk/qa").body.contains("Tekshirildi"));

    // POST /qa/calibrations: opening a session.
    let open_d: &[(&str, &str)] = &[("tenant", "dtm"), ("title", "DTM"), ("calls", &d)];
    assert_eq!(anonymous(&nav, "POST", "/qa/calibrations"), 303);
    assert_eq!(post(&op, "/qa/calibrations", open_d), 403);
    assert_eq!(post(&officer, "/qa/calibrations", open_d), 403);
    assert_eq!(
        post(
            &sup,
            "/qa/calibrations",
            &[("tenant", "support"), ("calls", &s)]
        ),
        404
    );
    // A call of another tenant in a dtm session is not there.
    assert_eq!(
        post(
            &both,
            "/qa/calibrations",
            &[("tenant", "dtm"), ("calls", &s)]
        ),
        404
    );
    let opened = sup.post_form("/qa/calibrations", open_d);
    assert_eq!(opened.status, 303, "{opened:?}");
    let session = location(&opened);
    let opened_s = both.post_form("/qa/calibrations", &[("tenant", "support"), ("calls", &s)]);
    assert_eq!(opened_s.status, 303);
    let session_s = location(&opened_s);

    // GET /qa/calibrations/{id}.
    assert_eq!(anonymous(&nav, "GET", &session), 303);
    assert_eq!(op.get(&session).status, 403);
    assert_eq!(editor.get(&session).status, 403);
    assert_eq!(officer_s.get(&session).status, 404);
    assert_eq!(officer.get(&session).status, 200);
    assert_eq!(sup.get(&session).status, 200);

    // POST /qa/calibrations/{id}/calls/{call}: scoring in a session.
    let score = format!("{session}/calls/{d}");
    assert_eq!(anonymous(&nav, "POST", &score), 303);
    assert_eq!(post(&op, &score, MARKS), 403);
    assert_eq!(post(&officer_s, &score, MARKS), 404);
    assert_eq!(post(&officer, &format!("{session}/calls/{s}"), MARKS), 404);
    assert_eq!(post(&officer, &score, MARKS), 303);
    assert_eq!(post(&officer, &score, MARKS), 409);

    // POST /qa/calibrations/{id}/close.
    let close = format!("{session}/close");
    assert_eq!(anonymous(&nav, "POST", &close), 303);
    assert_eq!(post(&op, &close, &[]), 403);
    assert_eq!(post(&officer, &close, &[]), 403);
    assert_eq!(post(&sup, &format!("{session_s}/close"), &[]), 404);
    assert_eq!(post(&sup, &close, &[]), 303);
    // Closed: nobody scores any more.
    assert_eq!(post(&sup, &score, MARKS), 409);
    // A calibration score is not the operator's evaluation.
    assert_eq!(
        evaluation_ids(&op.get("/desk/qa").body),
        vec![dtm_eval.clone()]
    );

    // Every change is in the audit log.
    let log = nav.get_json("/api/audit?limit=1000");
    for action in [
        "qa_sampled",
        "qa_evaluation_saved",
        "qa_dispute",
        "qa_dispute_answered",
        "qa_calibration_opened",
        "qa_calibration_scored",
        "qa_calibration_closed",
    ] {
        assert!(
            log.as_array()
                .unwrap()
                .iter()
                .any(|l| l["action"] == action && l["tenant"] == "dtm"),
            "no {action} in the audit log"
        );
    }
}

#[test]
fn navbat_qa_sample_draws_a_week_with_a_recorded_seed_that_re_derives() {
    let nav = Navbat::start("qa-cli", with_qa(TestConfig::default()));
    let d = answered_call(&nav);
    let week = {
        let tz = jiff::tz::TimeZone::get("Asia/Tashkent").unwrap();
        navbat::qa::sample::Week::containing(jiff::Timestamp::now(), &tz).to_string()
    };
    let config = nav.dir.path().join("navbat.toml");
    let run = |args: &[&str]| {
        Command::new(common::navbat_bin())
            .arg("--config")
            .arg(&config)
            .arg("qa")
            .arg("sample")
            .args(args)
            .current_dir(nav.dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["--week", "2026-49"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-Www"));
    let out = run(&["--week", &week, "--tenant", "dtm", "--seed", "42"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first["seed"], "42");
    assert_eq!(first["candidates"], 1);
    assert_eq!(first["added"][0]["call_uid"], d.as_str());
    assert_eq!(first["added"][0]["reason"], "random");
    assert_eq!(first["added"][0]["operator"], "1001");
    // The draw of a week stands: asked again (another seed), it keeps seed 42, adds
    // nothing, and re-deriving the draw from the calls gives the recorded sample.
    let again = http_request(
        nav.http,
        "POST",
        "/api/qa/sample",
        Some(ADMIN_TOKEN),
        Some(&json!({"tenant": "dtm", "week": week, "seed": 7})),
    );
    assert_eq!(again.status, 200, "{again:?}");
    let again = again.json();
    assert_eq!(again["seed"], "42");
    assert_eq!(again["added"].as_array().unwrap().len(), 0);
    assert_eq!(again["rederived"], true);
    assert_eq!(again["digest"], first["digest"]);
    // The support tenant's week has no calls: drawn, empty.
    let out = run(&["--week", &week, "--tenant", "support"]);
    assert!(out.status.success());
    let support: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(support["candidates"], 0);
}
