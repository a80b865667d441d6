//! QA's store paths on a real Postgres (the other QA tests run on SQLite): a week's draw with
//! its seed, an evaluation with its timestamped comment, the operator's dispute and the
//! supervisor's answer, a calibration session scored by two evaluators and closed, all
//! written through the journal into the `qa_*` tables of schema 8 and read back; and the
//! monthly report's per-operator QA column (mean and count) from them.

mod common;
mod store_support;

use common::desk::login;
use common::qa::{answered_call, evaluation_ids, location, with_qa};
use common::{http_request, Navbat, TestConfig, ADMIN_TOKEN, EVENT_DEADLINE};
use navbat::store::qa::{self as rows, Which};
use serde_json::json;
use store_support::Postgres;

#[test]
fn samples_evaluations_disputes_and_calibration_on_postgres() {
    let pg = Postgres::start();
    let url = pg.url();
    let nav = Navbat::start(
        "qa-postgres",
        with_qa(TestConfig::default()).extra_toml(&format!(
            "\n[database]\nurl = {url:?}\njournal_dir = \"data/journal\"\n"
        )),
    );
    let call = answered_call(&nav);
    let drawn = http_request(
        nav.http,
        "POST",
        "/api/qa/sample",
        Some(ADMIN_TOKEN),
        Some(&json!({"tenant": "dtm", "seed": 5})),
    );
    assert_eq!(drawn.status, 200, "{drawn:?}");
    let drawn = drawn.json();
    assert_eq!(drawn["seed"], "5");
    let week = drawn["week"].as_str().unwrap().to_owned();

    let sup = login(nav.http, "sup-dtm");
    let saved = sup.post_form(
        &format!("/qa/calls/{call}"),
        &[
            ("mark_greeting", "4"),
            ("mark_accuracy", "5"),
            ("mark_legal", "5"),
            ("at_1", "0:02"),
            ("text_1", "Xizmat nomi aytilmadi"),
        ],
    );
    assert_eq!(saved.status, 303, "{saved:?}");
    let id = evaluation_ids(&sup.get(&format!("/qa/calls/{call}")).body)[0].clone();
    let op = login(nav.http, "op1001");
    let disputed = op.post_form(
        &format!("/desk/qa/{id}/dispute"),
        &[("reason", "Aytilgan edi")],
    );
    assert_eq!(disputed.status, 303, "{disputed:?}");
    let answered = sup.post_form(
        &format!("/qa/evaluations/{id}/answer"),
        &[("answer", "Qayta tinglandi")],
    );
    assert_eq!(answered.status, 303, "{answered:?}");
    let opened = sup.post_form(
        "/qa/calibrations",
        &[("tenant", "dtm"), ("title", "DTM"), ("calls", &call)],
    );
    assert_eq!(opened.status, 303, "{opened:?}");
    let session_path = location(&opened);
    let session = session_path.rsplit('/').next().unwrap().to_owned();
    let officer = login(nav.http, "officer-dtm");
    for (who, legal) in [(&sup, "5"), (&officer, "0")] {
        let r = who.post_form(
            &format!("{session_path}/calls/{call}"),
            &[
                ("mark_greeting", "5"),
                ("mark_accuracy", "3"),
                ("mark_legal", legal),
            ],
        );
        assert_eq!(r.status, 303, "{r:?}");
    }
    assert_eq!(
        sup.post_form(&format!("{session_path}/close"), &[]).status,
        303
    );

    // Read back from Postgres itself.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = navbat::config::DatabaseUrl::parse(&url).unwrap();
        let db = navbat::store::db::Db::connect_lazy(&url).unwrap();
        let pool = db.pool();
        let sample = rows::sample(pool, "dtm", &week).await.unwrap().unwrap();
        assert_eq!(sample.seed, "5");
        assert_eq!(sample.candidates, 1);
        assert_eq!(sample.per_operator, 3);
        let queue = rows::queue(pool, "dtm", &week).await.unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0].call_uid, call);
        assert_eq!(queue[0].reason, "random");
        let evals = rows::evaluations(pool, Which::Call(&call)).await.unwrap();
        assert_eq!(
            evals.len(),
            1,
            "calibration scores are not the call's evaluations"
        );
        let e = &evals[0];
        assert_eq!(e.evaluation.id, id);
        assert_eq!(e.evaluation.total_tenths, 971);
        assert_eq!(e.evaluation.operator.as_deref(), Some("1001"));
        assert_eq!(e.evaluation.comments[0].at_secs, 2);
        assert_eq!(e.evaluation.comments[0].text, "Xizmat nomi aytilmadi");
        assert_eq!(e.dispute_reason.as_deref(), Some("Aytilgan edi"));
        assert_eq!(e.disputed_by.as_deref(), Some("op1001"));
        assert_eq!(e.answer.as_deref(), Some("Qayta tinglandi"));
        assert_eq!(e.answered_by.as_deref(), Some("sup-dtm"));
        let s = rows::sessions(pool, "dtm", None).await.unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].session, session);
        assert_eq!(s[0].calls, vec![call.clone()]);
        assert!(s[0].closed_at_ms.is_some());
        let scored = rows::evaluations(pool, Which::Session(&session))
            .await
            .unwrap();
        let mut totals: Vec<u32> = scored.iter().map(|e| e.evaluation.total_tenths).collect();
        totals.sort();
        assert_eq!(totals, vec![0, 829]);
        let means = rows::operator_means(pool, "dtm", 0, i64::MAX)
            .await
            .unwrap();
        assert_eq!(means, vec![("1001".to_owned(), 1, 971.0)]);
        db.close().await;
    });

    // The monthly report's per-operator table: the QA mean and count of the month.
    let report = common::wait_until("the month's report", EVENT_DEADLINE, || {
        let r = sup.get("/reports/download?tenant=dtm&format=json");
        (r.status == 200).then(|| r.json())
    });
    let row = report["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["ext"] == "1001")
        .cloned()
        .expect("operator 1001 in the report");
    assert_eq!(row["qa_score"], 97.1);
    assert_eq!(row["qa_count"], 1);
}
