//! The reports page in a real browser (chromium over WebDriver): the client's officer of
//! `dtm` opens the month's report from the menu, sees the figures, the charts, masked
//! numbers and a listen link per recorded call, only their own tenant to choose, and gets
//! the not-found page for `support`'s report; their downloads work (workbook, CSV) and
//! another tenant's do not; an operator may not open reports; a supervisor of both tenants
//! chooses between them; every view and download is in the audit log.

mod common;
mod report_support;

use common::browser::Browser;
use common::desk::{self, with_desk};
use common::{Navbat, TestConfig, EVENT_DEADLINE};
use navbat::config::DatabaseUrl;
use std::time::Duration;

const UI: Duration = Duration::from_secs(20);

#[test]
fn the_officer_reads_their_tenants_month_and_nothing_else() {
    let nav = Navbat::start("report-browser", with_desk(TestConfig::default(), ""));
    // A known November in navbat's own store (written beside it: SQLite in WAL mode).
    let db_path = nav.dir.path().join("data/navbat.db");
    let spec = report_support::MonthSpec::small(600, 5);
    let full_numbers: Vec<String> = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let url = DatabaseUrl::Sqlite(format!("sqlite://{}", db_path.display()));
            // Sealed with navbat's own key file, as `navbat migrate` would.
            let db =
                report_support::fill(&url, &spec, report_support::pii_in(nav.dir.path())).await;
            db.close().await;
            report_support::numbers(&spec)
        });
    let b = Browser::start(nav.dir.path());

    b.log_in(nav.http, "officer-dtm");
    b.click("#nav-reports");
    b.wait_for("#report-pick", UI);
    b.goto(&format!(
        "http://{}/reports?tenant=dtm&month=2026-11",
        nav.http
    ));
    b.wait_for("#report-summary", UI);
    // Uzbek (the account's language): the title and the figures.
    assert!(
        b.text("#report h1").contains("Oylik statistika"),
        "{}",
        b.text("#report h1")
    );
    let offered = b.text("#report-summary tbody tr:nth-child(4) td:nth-child(2)");
    assert_eq!(offered, "600");
    assert_eq!(b.find_all("#report svg").len(), 4, "four charts");
    // Only their tenant to choose.
    assert_eq!(b.find_all("#report-tenant option").len(), 1);
    // The first 500 calls, masked, each linked to its page; recorded ones to the recording.
    let rows = b.find_all("tr.report-call");
    assert_eq!(rows.len(), 500);
    assert!(!b.find_all("tr.report-call a.listen").is_empty());
    let page = b.page_text();
    assert!(page.contains("+9989******"), "masked numbers shown");
    for n in full_numbers.iter().take(200) {
        assert!(
            !page.contains(n.as_str()),
            "a full number is on the reports page"
        );
    }
    let listen = b.find("tr.report-call a.listen").attr("href").unwrap();
    assert!(listen.contains("/api/recordings/n1:b1:c"), "{listen}");
    b.screenshot(&nav.dir.path().join("reports-officer.png"));

    // Another tenant's report is not there for them.
    b.goto(&format!(
        "http://{}/reports?tenant=support&month=2026-11",
        nav.http
    ));
    b.wait_for("#not-found", UI);
    assert!(!b.exists("#report"));

    // Their downloads, over HTTP with their session.
    let officer = desk::login(nav.http, "officer-dtm");
    let xlsx = officer.get("/reports/download?tenant=dtm&month=2026-11&format=xlsx");
    assert_eq!(xlsx.status, 200);
    assert!(xlsx.body.starts_with("PK"), "a zip (xlsx) file");
    let csv = officer.get("/reports/download?tenant=dtm&month=2026-11&format=csv&table=calls");
    assert_eq!(csv.status, 200);
    assert_eq!(csv.body.lines().count(), 601, "heading and 600 calls");
    let other = officer.get("/reports/download?tenant=support&month=2026-11&format=xlsx");
    assert_eq!(other.status, 404);

    // An operator may not open reports; a supervisor of both tenants chooses.
    b.log_out();
    b.log_in(nav.http, "op1001");
    b.goto(&format!("http://{}/reports", nav.http));
    b.wait_for("#forbidden", UI);
    assert!(!b.exists("#nav-reports"));
    b.log_out();
    b.log_in(nav.http, "supervisor");
    b.goto(&format!(
        "http://{}/reports?tenant=dtm&month=2026-11",
        nav.http
    ));
    b.wait_for("#report-summary", UI);
    assert_eq!(b.find_all("#report-tenant option").len(), 2);

    // Every view and download is audited.
    let rows = common::wait_until("the report views in the audit log", EVENT_DEADLINE, || {
        let rows = nav.get("/api/audit?limit=1000").json();
        let list = rows.as_array()?.clone();
        let has = |action: &str, actor: &str, detail: Option<&str>| {
            list.iter().any(|r| {
                r["action"] == action
                    && r["actor"] == actor
                    && r["tenant"] == "dtm"
                    && detail.is_none_or(|d| r["detail"] == d)
            })
        };
        (has("report_viewed", "officer-dtm", None)
            && has("report_viewed", "supervisor", None)
            && has("report_downloaded", "officer-dtm", Some("xlsx"))
            && has("report_downloaded", "officer-dtm", Some("csv:calls")))
        .then_some(list)
    });
    assert!(!rows
        .iter()
        .any(|r| r["action"] == "report_downloaded" && r["tenant"] == "support"));
}
