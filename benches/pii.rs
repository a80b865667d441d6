//! Sealed callers' numbers (issue 16 part 2, D18): what finding a caller costs now that the
//! number is encrypted and only its keyed hash is indexed. Target: p99 under 50 µs.
//!
//! Method. A key file made for the run; `CALLS` call records written straight into the
//! database as the store writes them (number sealed with AES-256-GCM, `caller_lookup` =
//! HMAC-SHA-256), from `CALLERS` distinct numbers (three calls each), arrivals spread over a
//! week. Then, for `LOOKUPS` numbers drawn from the callers, each measured on its own:
//! * **arrival** (what `Store::emit` does for every `call_arrived`): the lookup hash, the
//!   in-memory repeat index (`RepeatIndex::arrive`, filled with the week's calls as at
//!   start-up), and sealing the number for the journal;
//! * **history** (the operator's screen pop, `Store::history`'s query): the lookup hash, the
//!   indexed query on `call_records (caller_lookup, arrived_at_ms)` and opening the number of
//!   every row found (three per caller), through sqlx as navbat runs it;
//! * the parts alone: HMAC, seal, open.
//!
//! Percentiles from the sorted samples (nearest rank). SQLite (file in a temp dir, WAL) and a
//! real Postgres started from the installed binaries on a free port (fsync on).
//!
//! Run: `cargo bench --bench pii` (prints the figures; copy them to BENCHMARKS.md).

#[path = "../tests/store_support/mod.rs"]
mod store_support;

use navbat::config::DatabaseUrl;
use navbat::pii::{field, Pii};
use navbat::store::db::Db;
use navbat::store::repeat::RepeatIndex;
use std::time::{Duration, Instant};

const CALLS: usize = 150_000;
const CALLERS: usize = CALLS / 3;
const LOOKUPS: usize = 20_000;
const WEEK_MS: i64 = 7 * 86_400_000;
const T0: i64 = 1_793_473_200_000;

fn number(i: usize) -> String {
    format!("+99890{:07}", i % CALLERS)
}

/// A small deterministic generator (xorshift), so every run draws the same callers.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn arrival_of(i: usize) -> i64 {
    T0 + (i as i64 * WEEK_MS) / CALLS as i64
}

/// `p50 / p99 / p99.9 / max` in µs.
fn figures(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1e6
    };
    format!(
        "p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.1} µs ({} samples)",
        at(0.5),
        at(0.99),
        at(0.999),
        samples.last().unwrap().as_secs_f64() * 1e6,
        samples.len()
    )
}

async fn fill(db: &Db, pii: &Pii) {
    let chunk = 500;
    for start in (0..CALLS).step_by(chunk) {
        let end = (start + chunk).min(CALLS);
        let mut sql = String::from(
            "INSERT INTO call_records (call_uid, node, boot, tenant, caller_number, \
             caller_lookup, arrived_at_ms, outcome) VALUES ",
        );
        for (k, _) in (start..end).enumerate() {
            if k > 0 {
                sql.push_str(", ");
            }
            let b = k * 5;
            sql.push_str(&format!(
                "(${}, 'bench', 'b', 'dtm', ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for i in start..end {
            let n = number(i);
            q = q
                .bind(format!("bench:b:c{i}"))
                .bind(pii.seal(field::CALLER_NUMBER, &n))
                .bind(pii.lookup(&n))
                .bind(arrival_of(i))
                .bind("answered");
        }
        q.execute(db.pool()).await.expect("insert");
    }
}

async fn measure(label: &str, url: &DatabaseUrl, pii: &std::sync::Arc<Pii>) {
    let db = Db::connect_lazy(url).unwrap().with_pii(pii.clone());
    db.migrate().await.expect("migrate");
    let t = Instant::now();
    fill(&db, pii).await;
    println!(
        "{label}: wrote {CALLS} sealed call records in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Warm the pool and the statement cache.
    for _ in 0..200 {
        let n = number(rng.below(CALLERS));
        db.calls_from(&pii.lookup(&n), 0, i64::MAX).await.unwrap();
    }
    let end = T0 + WEEK_MS;
    let mut history = Vec::with_capacity(LOOKUPS);
    let mut found = 0;
    for _ in 0..LOOKUPS {
        let n = number(rng.below(CALLERS));
        let t = Instant::now();
        let lookup = pii.lookup(&n);
        let rows = db
            .calls_from(&lookup, end - WEEK_MS, end + 1)
            .await
            .unwrap();
        history.push(t.elapsed());
        found += rows.len();
        assert!(rows
            .iter()
            .all(|r| r.caller_number.as_deref() == Some(n.as_str())));
    }
    assert_eq!(found, LOOKUPS * 3, "three calls per caller");
    println!(
        "{label}: history (HMAC + indexed query + open 3 rows): {}",
        figures(history)
    );
    db.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let pii = store_support::pii_keys(keys.path());

    // The parts alone, and the arrival path (no database: the repeat index is in memory).
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut index = RepeatIndex::new(WEEK_MS as u64);
    for i in 0..CALLS {
        index.arrive(
            &pii.lookup(&number(i)),
            &format!("bench:b:c{i}"),
            arrival_of(i) as u64,
        );
    }
    let (mut hmac, mut seal, mut open, mut arrival) = (vec![], vec![], vec![], vec![]);
    for k in 0..LOOKUPS {
        let n = number(rng.below(CALLERS));
        let t = Instant::now();
        let lookup = pii.lookup(&n);
        hmac.push(t.elapsed());
        let t = Instant::now();
        let sealed = pii.seal(field::CALLER_NUMBER, &n);
        seal.push(t.elapsed());
        let t = Instant::now();
        let opened = pii.open(field::CALLER_NUMBER, &sealed).unwrap();
        open.push(t.elapsed());
        assert_eq!(opened, n);
        let at = (T0 + WEEK_MS) as u64 + k as u64;
        let uid = format!("bench:b:new{k}");
        let t = Instant::now();
        let lookup2 = pii.lookup(&n);
        let link = index.arrive(&lookup2, &uid, at);
        let journal = pii.seal(field::CALLER_NUMBER, &n);
        arrival.push(t.elapsed());
        assert!(link.is_some() && journal.starts_with("pii1.") && lookup == lookup2);
    }
    println!("HMAC-SHA-256 lookup hash: {}", figures(hmac));
    println!("seal (AES-256-GCM): {}", figures(seal));
    println!("open (AES-256-GCM): {}", figures(open));
    println!(
        "arrival (HMAC + repeat index + seal for the journal): {}",
        figures(arrival)
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = DatabaseUrl::Sqlite(format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    rt.block_on(measure("sqlite", &sqlite, &pii));
    let pg = store_support::Postgres::start_with(true);
    rt.block_on(measure("postgres", &DatabaseUrl::Postgres(pg.url()), &pii));
}
