//! The desk's store paths on a real Postgres (the other desk tests run on SQLite): accounts
//! created from `[[account]]` and logged into, knowledge-base articles saved with their
//! revisions and found by full-text search in both languages, dispositions and audit rows
//! written through the journal, and the audit log refusing UPDATE and DELETE.

mod common;
mod store_support;

use common::desk::{login, with_desk};
use common::{http_request, Navbat, TestConfig, ADMIN_TOKEN, DTM_DID, EVENT_DEADLINE};
use store_support::Postgres;

#[test]
fn accounts_knowledge_base_dispositions_and_audit_on_postgres() {
    let pg = Postgres::start();
    let url = pg.url();
    let nav = Navbat::start(
        "desk-postgres",
        with_desk(TestConfig::default(), "").extra_toml(&format!(
            "\n[database]\nurl = {url:?}\njournal_dir = \"data/journal\"\n"
        )),
    );
    let editor = login(nav.http, "editor");
    let saved = editor.post_form(
        "/kb/save",
        &[
            ("id", "kb-pg-1"),
            ("revision", "0"),
            ("tenant", "dtm"),
            ("topic", "results"),
            ("kind", "faq"),
            ("title_uz", "Natijalar qachon e'lon qilinadi"),
            ("title_ru", "Когда публикуются результаты"),
            ("body_uz", "Natijalar uch kun ichida saytda e'lon qilinadi."),
            (
                "body_ru",
                "Результаты публикуются на сайте в течение трёх дней.",
            ),
        ],
    );
    assert_eq!(saved.status, 303, "{saved:?}");
    let edited = editor.post_form(
        "/kb/save",
        &[
            ("id", "kb-pg-1"),
            ("revision", "1"),
            ("tenant", "dtm"),
            ("topic", "results"),
            ("kind", "faq"),
            ("title_uz", "Natijalar qachon e'lon qilinadi"),
            ("title_ru", "Когда публикуются результаты"),
            (
                "body_uz",
                "Natijalar uch kun ichida rasmiy saytda e'lon qilinadi.",
            ),
            (
                "body_ru",
                "Результаты публикуются на официальном сайте в течение трёх дней.",
            ),
        ],
    );
    assert_eq!(edited.status, 303, "{edited:?}");
    // A stale revision is refused, not saved over the newer one.
    let stale = editor.post_form(
        "/kb/save",
        &[
            ("id", "kb-pg-1"),
            ("revision", "1"),
            ("tenant", "dtm"),
            ("kind", "faq"),
            ("title_uz", "x"),
            ("title_ru", "x"),
            ("body_uz", "x"),
            ("body_ru", "x"),
        ],
    );
    assert_eq!(stale.status, 409, "{stale:?}");
    for q in ["rasmiy", "официальном", "natija"] {
        let found = http_request(
            nav.http,
            "GET",
            &format!("/api/kb?tenant=dtm&q={}", common::desk::urlencode(q)),
            Some(ADMIN_TOKEN),
            None,
        );
        assert_eq!(found.status, 200, "{found:?}");
        let list = found.json();
        assert_eq!(list.as_array().map(Vec::len), Some(1), "search {q}: {list}");
        assert_eq!(list[0]["revision"], 2);
    }
    let none = http_request(
        nav.http,
        "GET",
        "/api/kb?tenant=dtm&q=weather",
        Some(ADMIN_TOKEN),
        None,
    )
    .json();
    assert_eq!(none.as_array().map(Vec::len), Some(0), "{none}");

    // A call nobody answers; the supervisor writes its disposition, then edits it.
    nav.caller("caller", "caller_abandon.xml", DTM_DID, 500)
        .wait_success();
    let ev = nav.wait_for_event("call_finished", EVENT_DEADLINE, |e| e["tenant"] == "dtm");
    let call = ev["call"].as_str().unwrap().to_owned();
    let sup = login(nav.http, "supervisor");
    for (rev, notes) in [(1, "qayta qo'ng'iroq qiladi"), (2, "SMS yuborildi")] {
        let r = sup.post_form(
            &format!("/desk/calls/{call}/disposition"),
            &[
                ("category", "question"),
                ("topic", "results"),
                ("outcome", "unresolved"),
                ("notes", notes),
            ],
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            r.body.contains("acw-saved") && r.body.contains(&rev.to_string()),
            "{}",
            r.body
        );
    }
    let disp = common::wait_until("the disposition in Postgres", EVENT_DEADLINE, || {
        let r = nav.get(&format!("/api/calls/{call}/disposition"));
        (r.status == 200 && r.json()["revision"] == 2).then(|| r.json())
    });
    assert_eq!(disp["notes"], "SMS yuborildi");
    assert_eq!(disp["saved_by"], "supervisor");

    // The audit rows arrive through the journal; Postgres refuses to change them.
    common::wait_until("the audit rows in Postgres", EVENT_DEADLINE, || {
        let rows = nav.get("/api/audit").json();
        let actions: Vec<String> = rows
            .as_array()?
            .iter()
            .map(|r| r["action"].as_str().unwrap_or("").to_owned())
            .collect();
        (actions.contains(&"kb_saved".to_owned())
            && actions.contains(&"disposition_edited".to_owned())
            && actions.contains(&"login".to_owned()))
        .then_some(())
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = navbat::config::DatabaseUrl::parse(&url).unwrap();
        let db = navbat::store::db::Db::connect_lazy(&url).unwrap();
        assert!(sqlx::query("UPDATE audit_log SET actor = 'nobody'")
            .execute(db.pool())
            .await
            .is_err());
        assert!(sqlx::query("DELETE FROM audit_log")
            .execute(db.pool())
            .await
            .is_err());
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM kb_revisions WHERE article_id = 'kb-pg-1'")
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM accounts").await.unwrap(),
            common::desk::ACCOUNTS.len() as i64
        );
        db.close().await;
    });
}
