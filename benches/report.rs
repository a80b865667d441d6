//! The monthly report of a 150,000-call results-day month, on SQLite and on Postgres
//! (target: under 10 s each, issue 15).
//!
//! Method: generate the month (tests/report_support: 150,000 call records with their
//! recordings, dispositions, callbacks, requests, operator states and timeline events)
//! into a fresh SQLite file and into a real Postgres started from the installed binaries
//! (fsync on, as in production); then time, three times each, reading and counting the
//! report (`report::build`: the SELECTs and the pure count), and once each the outputs
//! (XLSX with the 150,000-row details sheet, CSV directory, HTML page). The median of the
//! three is printed.
//!
//! Run: `cargo bench --bench report` (prints the figures; copy them to BENCHMARKS.md).
//! `cargo bench --bench report -- --example DIR` writes the generated month into
//! `DIR/example.db` (SQLite) and stops: `docs/report/generate.sh` uses it.

#[path = "../tests/report_support/mod.rs"]
mod report_support;
#[path = "../tests/store_support/mod.rs"]
mod store_support;

use navbat::config::{Config, DatabaseUrl};
use navbat::report::{self, Month};
use std::time::{Duration, Instant};

const CALLS: usize = 150_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn measure(label: &str, url: &DatabaseUrl, config: &Config) {
    let spec = report_support::MonthSpec::results_month(CALLS);
    let month = Month::parse(&spec.month).unwrap();
    let t = Instant::now();
    let keys = tempfile::tempdir().unwrap();
    let db = report_support::fill(url, &spec, report_support::pii_in(keys.path())).await;
    println!(
        "{label}: generated and wrote the month in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut runs = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = report::build(db.pool(), db.pii().map(|p| &**p), config, "dtm", month)
            .await
            .expect("report");
        runs.push(t.elapsed());
        last = Some(r);
    }
    let r = last.unwrap();
    assert_eq!(r.summary.offered, CALLS as u64);
    println!(
        "{label}: report of {} calls (read + count) median {:.2} s (runs: {})",
        r.summary.offered,
        median(runs.clone()).as_secs_f64(),
        runs.iter()
            .map(|d| format!("{:.2}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Read only, to split the time.
    let ctx = report::Context::from_config(config, "dtm", month).unwrap();
    let t = Instant::now();
    let data = report::month_data(db.pool(), db.pii().map(|p| &**p), "dtm", month, &ctx.tz)
        .await
        .unwrap();
    let read = t.elapsed();
    let t = Instant::now();
    let _ = report::monthly(&ctx, &data).unwrap();
    let count = t.elapsed();
    println!(
        "{label}:   of which reading {:.2} s, counting {:.2} s",
        read.as_secs_f64(),
        count.as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    report::xlsx::write_file(&r, &dir.path().join("r.xlsx")).unwrap();
    let xlsx = t.elapsed();
    let t = Instant::now();
    report::csv::write_dir(&r, &dir.path().join("csv")).unwrap();
    let csv = t.elapsed();
    let t = Instant::now();
    let html = report::html::document(&r, &report::html::View::default());
    let html_t = t.elapsed();
    let size = std::fs::metadata(dir.path().join("r.xlsx"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "{label}:   outputs: xlsx {:.2} s ({:.1} MB), csv {:.2} s, html {:.3} s ({} KB)",
        xlsx.as_secs_f64(),
        size as f64 / 1e6,
        csv.as_secs_f64(),
        html_t.as_secs_f64(),
        html.len() / 1024
    );
    db.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = Config::embedded_default();
    if let Some(i) = args.iter().position(|a| a == "--example") {
        let dir = std::path::PathBuf::from(args.get(i + 1).expect("--example DIR"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("example.db");
        let _ = std::fs::remove_file(&path);
        let url = DatabaseUrl::Sqlite(format!("sqlite://{}", path.display()));
        rt.block_on(async {
            // Sealed with dir/keys/recordings.key.
            let db = report_support::fill(
                &url,
                &report_support::MonthSpec::results_month(CALLS),
                report_support::pii_in(&dir),
            )
            .await;
            db.close().await;
        });
        println!("wrote {}", path.display());
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    rt.block_on(measure("SQLite", &url, &config));
    let pg = store_support::Postgres::start_with(true);
    let url = DatabaseUrl::Postgres(pg.url());
    rt.block_on(measure("Postgres", &url, &config));
}
