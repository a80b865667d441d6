//! The monthly report (D20) and the invoice (D24) from a known month: every figure checked
//! against an independent count (tests/report_check.py: Python's sqlite3 and SQL of its own
//! over the same rows), the workbook read back by another reader (Debian's python3-openpyxl)
//! and the CSV files, no full number in any output (D18), the invoice printed by
//! `navbat report billing`, and SQLite and Postgres giving the same report for the same rows.

mod common;
mod report_support;
mod store_support;

use common::TestConfig;
use navbat::config::{Config, DatabaseUrl};
use navbat::report::{self, Month};
use report_support::MonthSpec;
use std::path::Path;
use std::process::Command;

/// Debian's python3, which sees python3-openpyxl (a pyenv or venv python3 on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

const BILLING: &str = r#"
[tenant.billing]
currency = "UZS"
pricing = "volume"
tiers = [{ up_to = 1000, price = "1500.00" }, { up_to = 2000, price = "1350.50" }, { price = "1200.00" }]
"#;

fn config_text(db: &Path) -> String {
    TestConfig::default()
        .tenant_extra(BILLING)
        .extra_toml(&format!(
            "\n[database]\nurl = \"sqlite://{}\"\njournal_dir = \"journal\"\n",
            db.display()
        ))
        .render()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn navbat(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(common::navbat_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run navbat");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "navbat {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn every_figure_matches_an_independent_count_and_the_files_agree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join(common::NO_PROMPTS_DIR)).unwrap();
    let db_path = d.join("navbat.db");
    let spec = MonthSpec::small(2_400, 7);
    block_on(async {
        // Sealed with the key file `navbat report` reads (the default keys/recordings.key).
        let db = report_support::fill(
            &DatabaseUrl::Sqlite(format!("sqlite://{}", db_path.display())),
            &spec,
            report_support::pii_in(d),
        )
        .await;
        // A call of the next month and one of another tenant: in neither this report.
        db.close().await;
    });
    std::fs::write(d.join("navbat.toml"), config_text(&db_path)).unwrap();
    // The plain numbers as the generator wrote them, for the independent count.
    let numbers: serde_json::Map<String, serde_json::Value> =
        report_support::numbers_by_call(&spec)
            .into_iter()
            .map(|(uid, n)| (uid, serde_json::Value::String(n)))
            .collect();
    std::fs::write(
        d.join("numbers.json"),
        serde_json::to_string(&numbers).unwrap(),
    )
    .unwrap();
    let out = navbat(
        d,
        &[
            "report",
            "month",
            "2026-11",
            "--tenant",
            "dtm",
            "--config",
            "navbat.toml",
            "--xlsx",
            "r.xlsx",
            "--html",
            "r.html",
            "--csv",
            "csv",
            "--json",
            "r.json",
        ],
    );
    assert!(out.contains("offered 2400"), "{out}");
    let check = Command::new(PYTHON)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/report_check.py"))
        .args([
            db_path.to_str().unwrap(),
            "r.json",
            "r.xlsx",
            "csv",
            "dtm",
            "2026-11",
            "Asia/Tashkent",
            "20",
            "1000:150000,2000:135050,:120000",
            "answered,deflected",
            "volume",
            "numbers.json",
        ])
        .current_dir(d)
        .output()
        .expect("run /usr/bin/python3 (Debian's python3 with python3-openpyxl)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        check.status.success(),
        "independent count disagrees:\n{said}"
    );
    assert!(said.contains("every figure matches"), "{said}");
    eprintln!("{said}");

    // The HTML page: the figures, the charts, the masked numbers; never a full one.
    let html = std::fs::read_to_string(d.join("r.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Отвечено") && html.contains("Javob berilgan"));
    assert!(html.contains("/calls/n1:b1:c0"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.json")).unwrap()).unwrap();
    let first_number = json["details"][0]["number"].as_str().unwrap().to_owned();
    assert!(first_number.contains("******"), "{first_number}");
    assert!(
        !regex_like_full_number(&html),
        "a full number is in the HTML page"
    );

    // The invoice as `navbat report billing` prints it: the JSON's figures.
    let bill = navbat(
        d,
        &[
            "report",
            "billing",
            "2026-11",
            "--tenant",
            "dtm",
            "--config",
            "navbat.toml",
        ],
    );
    let inv = &json["invoice"];
    assert!(
        bill.contains(&format!("{} UZS", inv["total"].as_str().unwrap())),
        "{bill}"
    );
    assert!(bill.contains(&inv["volume"].to_string()), "{bill}");
    assert!(bill.contains("Hisob / Счёт"), "{bill}");
    // 2,400 calls, about 60 % billable: the second tier at 1350.50.
    assert_eq!(inv["tier"], 2, "{inv}");

    // A tenant that is not configured, a month that is not one: errors that say what to do.
    let bad = Command::new(common::navbat_bin())
        .args([
            "report",
            "month",
            "2026-13",
            "--tenant",
            "dtm",
            "--config",
            "navbat.toml",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM"));
    let bad = Command::new(common::navbat_bin())
        .args([
            "report",
            "billing",
            "2026-11",
            "--tenant",
            "nope",
            "--config",
            "navbat.toml",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("use one of dtm"));
}

/// `+99890` followed by seven digits: a full number as the fixture writes them.
fn regex_like_full_number(text: &str) -> bool {
    text.match_indices("+99890").any(|(i, _)| {
        let rest = &text[i + 6..];
        rest.len() >= 7 && rest.as_bytes()[..7].iter().all(u8::is_ascii_digit)
    })
}

#[test]
fn sqlite_and_postgres_give_the_same_report_for_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(&config_text(&dir.path().join("unused.db")), "test")
        .expect("test config");
    let spec = MonthSpec::small(1_500, 11);
    let month = Month::parse("2026-11").unwrap();
    let sqlite = DatabaseUrl::Sqlite(format!("sqlite://{}", dir.path().join("a.db").display()));
    let pg = store_support::Postgres::start();
    let postgres = DatabaseUrl::Postgres(pg.url());
    let pii = report_support::pii_in(dir.path());
    let reports: Vec<serde_json::Value> = [sqlite, postgres]
        .iter()
        .map(|url| {
            block_on(async {
                let db = report_support::fill(url, &spec, pii.clone()).await;
                let r = report::build(db.pool(), db.pii().map(|p| &**p), &config, "dtm", month)
                    .await
                    .expect("report");
                db.close().await;
                serde_json::to_value(&r).unwrap()
            })
        })
        .collect();
    assert_eq!(reports[0]["summary"]["offered"], 1_500);
    assert!(reports[0]["summary"]["hold_total_ms"].as_u64().unwrap() > 0);
    assert!(reports[0]["summary"]["wrap_total_ms"].as_u64().unwrap() > 0);
    assert!(!reports[0]["surge"].as_array().unwrap().is_empty());
    assert!(reports[0]["requests"]["total"].as_u64().unwrap() > 0);
    for key in [
        "summary",
        "outcomes",
        "days",
        "topics",
        "categories",
        "operators",
        "repeat",
        "requests",
        "surge",
        "invoice",
        "details",
    ] {
        assert_eq!(
            reports[0][key], reports[1][key],
            "{key} differs between SQLite and Postgres"
        );
    }
    assert_eq!(reports[0], reports[1]);
    // The workbooks are the same bytes but for the time stamp inside; their sizes agree.
}

/// Prometheus keeps the month the `month` board shows (at least 35 days) wherever it is
/// started from this repository, and the board says it is the live view, the report the
/// record, in both languages.
#[test]
fn prometheus_keeps_a_month_and_the_month_board_defers_to_the_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let days = |text: &str| -> Vec<u64> {
        text.match_indices("--storage.tsdb.retention.time=")
            .map(|(i, m)| {
                let rest = &text[i + m.len()..];
                let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
                assert!(
                    rest[n.len()..].starts_with('d'),
                    "retention not in days: {rest}"
                );
                n.parse().unwrap()
            })
            .collect()
    };
    for file in [
        "deploy/prometheus/prometheus.default",
        "deploy/prometheus/prometheus.yml",
        "docs/metrics.md",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let found = days(&text);
        assert!(!found.is_empty(), "{file} does not set the retention");
        assert!(found.iter().all(|d| *d >= 35), "{file}: {found:?}");
    }
    let board: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("grafana/dashboards/month.json")).unwrap(),
    )
    .unwrap();
    let description = board["description"].as_str().unwrap();
    assert!(description.contains("Jonli ko'rinish; oylik hisobot esa rasmiy hujjat"));
    assert!(description.contains("Живой обзор; официальный документ — ежемесячный отчёт"));
}
