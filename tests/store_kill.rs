//! `kill -9` of navbat under load, then a restart on the same journal: every call that had
//! ended (and whose events the store had fsynced) before the kill has its record.
//!
//! Load: SIPp callers (`caller_abandon.xml`, 20 calls/s, each hangs up after 100 ms in the
//! queue: whole calls through the real SIP path) against navbat on a real Postgres started by
//! this test. The calls that "ended before the kill" are the `call_finished` events navbat's
//! event feed showed, once `/api/store` reported every accepted event fsynced.

mod common;
mod store_support;

use common::*;
use navbat::config::DatabaseUrl;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn sections(journal: &std::path::Path, pg: &str) -> String {
    format!(
        "\n[node]\nid = \"kill\"\n\n[database]\nurl = \"{pg}\"\njournal_dir = \"{}\"\n",
        journal.display()
    )
}

fn store_status(navbat: &Navbat) -> Value {
    let resp = http_request(navbat.http, "GET", "/api/store", Some(ADMIN_TOKEN), None);
    resp.json()
}

#[test]
fn kill_9_under_load_then_restart_keeps_every_ended_call() {
    let pg = store_support::Postgres::start();
    let shared = tempfile::tempdir().unwrap();
    let journal = shared.path().join("journal");
    let config = TestConfig::default()
        .operators(vec![])
        .extra_toml(&sections(&journal, &pg.url()))
        .key_file(&shared.path().join("keys/recordings.key"));
    let mut first = Navbat::start("kill-first", config.clone());
    let _callers = first.sipp_client(
        "callers",
        "caller_abandon.xml",
        &["-s", DTM_DID, "-d", "100", "-r", "20", "-m", "100000"],
    );
    // Under load: wait until a good number of calls have ended.
    let ended: BTreeSet<String> = wait_until("50 ended calls", Duration::from_secs(60), || {
        let ended: BTreeSet<String> = first
            .events()
            .iter()
            .filter(|e| e["kind"] == "call_finished")
            .filter_map(|e| e["call"].as_str().map(str::to_owned))
            .collect();
        (ended.len() >= 50).then_some(ended)
    });
    // Those events are on disk once everything accepted so far is fsynced.
    let accepted = store_status(&first)["accepted_events"].as_u64().unwrap();
    wait_until("the journal to fsync them", Duration::from_secs(30), || {
        (store_status(&first)["journaled_events"].as_u64().unwrap() >= accepted).then_some(())
    });
    // kill -9 while calls keep arriving.
    first.kill9();
    drop(_callers);

    let second = Navbat::start("kill-second", config);
    wait_until("the replay", Duration::from_secs(60), || {
        let s = store_status(&second);
        (s["depth_events"] == 0 && s["db_up"] == true).then_some(())
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let missing: Vec<String> = rt.block_on(async {
        let db = navbat::store::db::Db::connect_lazy(&DatabaseUrl::Postgres(pg.url())).unwrap();
        let mut missing = Vec::new();
        for call in &ended {
            let sql = format!(
                "SELECT COUNT(*) FROM call_records WHERE node = 'kill' AND call_ref = '{call}' \
                 AND outcome IS NOT NULL AND outcome <> 'failed'"
            );
            if db.scalar(&sql).await.unwrap() != 1 {
                missing.push(call.clone());
            }
        }
        missing
    });
    assert!(
        missing.is_empty(),
        "{} of {} ended calls lack their record: {missing:?}",
        missing.len(),
        ended.len()
    );
}
