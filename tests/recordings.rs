//! Recordings (issue 16): the index, playback with ranges from any node, access by role.
//!
//! Two real navbat nodes share one real Postgres. A call answered on node A is recorded on
//! A's disk; node B finds it in the shared index and relays range requests to A while the
//! call goes on (the length grows between two reads) and after it ended. After A restarts,
//! the old recording is still found and served.

mod common;
mod store_support;

use common::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// The caller stays this long after the IVR: time to read the recording while it grows.
const TALK_MS: u64 = 8_000;

/// A raw GET: status, headers (lowercase names) and the body as bytes.
pub fn fetch(
    addr: SocketAddr,
    path: &str,
    token: &str,
    range: Option<&str>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to navbat");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n{range}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = all[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16).unwrap();
        rest = &rest[end + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    body
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `(start, end, total)` of a `Content-Range: bytes start-end/total`.
fn content_range(headers: &[(String, String)]) -> (u64, u64, u64) {
    let v = header(headers, "content-range").expect("a Content-Range");
    let (span, total) = v
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
        .expect("bytes a-b/n");
    let (a, b) = span.split_once('-').unwrap();
    (
        a.parse().unwrap(),
        b.parse().unwrap(),
        total.parse().unwrap(),
    )
}

fn node_toml(node: &str, pg: &str) -> String {
    format!("\n[node]\nid = \"{node}\"\n\n[database]\nurl = \"{pg}\"\n")
}

#[test]
fn a_recording_made_on_node_a_plays_on_node_b_while_it_grows_and_after_a_restart() {
    let pg = store_support::Postgres::start();
    let shared = TestDir::new("recordings-disk-a");
    let disk_a = shared.path().join("recordings");
    // Node A's disk and key file outlive its runs (the restart below).
    let key_a = shared.path().join("keys/recordings.key");
    let config_a = || {
        TestConfig::default()
            .media_extra(&format!(
                "recordings_dir = {:?}",
                disk_a.display().to_string()
            ))
            .extra_toml(&node_toml("node-a", &pg.url()))
            .extra_toml(&format!(
                "\n[recordings]\nkey_file = {:?}\n",
                key_a.display().to_string()
            ))
    };
    let mut a = Navbat::start("recordings-a", config_a());
    // Nodes that share a database share the key file of its callers' personal data.
    let b = Navbat::start(
        "recordings-b",
        TestConfig::default()
            .extra_toml(&node_toml("node-b", &pg.url()))
            .key_file(&key_a),
    );

    let phone = a.operator_phone("1001", "operator_answer.xml", 1, &[]);
    a.wait_operator("1001", "available");
    let caller = a.caller("caller", "caller_ivr_talk.xml", DTM_DID, TALK_MS);
    let started = a.wait_for_event("recording_started", Duration::from_secs(40), |_| true);
    let call = started["call"].as_str().unwrap().to_owned();
    // The store name every node knows the call by (node:boot:call), from the shared index
    // (written when recording started).
    let uid = wait_until("the live recording in the index", EVENT_DEADLINE, || {
        let listed = b.get_json("/api/recordings?tenant=dtm");
        listed.as_array()?.iter().find_map(|r| {
            let uid = r["call_uid"].as_str()?;
            (uid.ends_with(&format!(":{call}")) && r["node"] == "node-a").then(|| uid.to_owned())
        })
    });
    let path = format!("/api/recordings/{uid}");

    // While the call goes on, node B serves the first bytes, relayed from A, and the total
    // it reports grows.
    let first_total = wait_until("node B to serve the live recording", EVENT_DEADLINE, || {
        let (status, headers, body) = fetch(b.http, &path, ADMIN_TOKEN, Some("bytes=0-99"));
        (status == 206 && body.len() == 100).then(|| {
            assert_eq!(&body[..4], b"RIFF");
            assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
            let (s, e, total) = content_range(&headers);
            assert_eq!((s, e), (0, 99));
            total
        })
    });
    let grown = wait_until("the live recording to grow", EVENT_DEADLINE, || {
        let (status, headers, _) = fetch(b.http, &path, ADMIN_TOKEN, Some("bytes=0-0"));
        assert_eq!(status, 206);
        let (_, _, total) = content_range(&headers);
        (total > first_total).then_some(total)
    });
    assert!(grown > first_total);

    caller.wait_success();
    drop(phone);
    let done = a.wait_for_event("recording", EVENT_DEADLINE, |e| e["call"] == call.as_str());
    let duration = done["duration_ms"].as_u64().unwrap();
    assert!(duration > 0);
    // The index row, complete, in the shared database: node B answers with the whole file.
    let whole = wait_until(
        "node B to serve the finished recording",
        EVENT_DEADLINE,
        || {
            let (status, headers, body) = fetch(b.http, &path, ADMIN_TOKEN, None);
            let len: u64 = header(&headers, "content-length")?.parse().ok()?;
            (status == 200 && len == 44 + duration * 32).then_some(body)
        },
    );
    let reader = hound::WavReader::new(std::io::Cursor::new(&whole)).unwrap();
    assert_eq!(
        (reader.spec().channels, reader.spec().sample_rate),
        (2, 8000)
    );
    assert_eq!(u64::from(reader.duration()), duration * 8);
    // A range from the middle matches the same bytes of the whole, on both nodes.
    for node in [a.http, b.http] {
        let (status, headers, body) = fetch(node, &path, ADMIN_TOKEN, Some("bytes=1000-1999"));
        assert_eq!(status, 206);
        assert_eq!(content_range(&headers), (1000, 1999, whole.len() as u64));
        assert_eq!(body, whole[1000..2000]);
    }
    let (status, headers, _) = fetch(
        b.http,
        &path,
        ADMIN_TOKEN,
        Some(&format!("bytes={}-", whole.len())),
    );
    assert_eq!(status, 416);
    assert_eq!(
        header(&headers, "content-range"),
        Some(format!("bytes */{}", whole.len()).as_str())
    );
    // The index export lists it with its node and, once the end is written, its length.
    let row = wait_until(
        "the finished recording in the index",
        EVENT_DEADLINE,
        || {
            let listed = b.get_json("/api/recordings?tenant=dtm");
            listed
                .as_array()?
                .iter()
                .find(|r| r["call_uid"] == uid.as_str() && !r["duration_ms"].is_null())
                .cloned()
        },
    );
    assert_eq!(row["node"], "node-a");
    assert_eq!(row["duration_ms"], duration);
    assert_eq!(row["operator"], "1001");
    assert_eq!(row["tenant"], "dtm");
    // Encrypted at rest, with the key its row names.
    assert!(
        row["key_id"].as_str().is_some_and(|k| !k.is_empty()),
        "{row}"
    );

    // Node A restarts (new boot, same disk and database): the recording is still found.
    a.terminate();
    a.wait_exit(STOP_DEADLINE).expect("node A stops");
    let a2 = Navbat::start("recordings-a2", config_a());
    let (status, _, body) = fetch(a2.http, &path, ADMIN_TOKEN, None);
    assert_eq!(status, 200);
    assert_eq!(body, whole);
}

/// A personal token for `user`, made through their desk session (`POST /api/tokens`).
fn token_of(nav: &Navbat, user: &str) -> String {
    let s = common::desk::login(nav.http, user);
    let body = serde_json::json!({"label": format!("{user} recordings")}).to_string();
    let resp = common::desk::request(
        nav.http,
        "POST",
        "/api/tokens",
        &[("Cookie", &s.cookie_header()), ("X-CSRF-Token", &s.csrf)],
        Some(("application/json", &body)),
    );
    assert_eq!(resp.status, 201, "token for {user}: {resp:?}");
    resp.json()["token"].as_str().unwrap().to_owned()
}

/// Each role against each recording route, on a call of dtm (whose operators may hear their
/// own calls) answered by 1001: allowed or refused (another tenant's 404, a role that may
/// not 403), and every allowed access in the audit log with who, what and from where.
#[test]
fn each_role_against_each_recording_route_and_every_allowed_access_audited() {
    let nav = Navbat::start(
        "recordings-roles",
        common::desk::with_desk(
            TestConfig::default().tenant_extra(
                "\n[tenant.recordings]\noperators_hear_own = true\nretention_months = 24\n",
            ),
            "",
        ),
    );
    let phone = nav.operator_phone("1001", "operator_answer.xml", 1, &[]);
    nav.wait_operator("1001", "available");
    nav.caller("caller", "caller_ivr_talk.xml", DTM_DID, 2_000)
        .wait_success();
    drop(phone);
    let done = nav.wait_for_event("recording", EVENT_DEADLINE, |_| true);
    let call = done["call"].as_str().unwrap().to_owned();
    let uid = wait_until("the recording in the index", EVENT_DEADLINE, || {
        let listed = nav.get_json("/api/recordings?tenant=dtm");
        listed.as_array()?.iter().find_map(|r| {
            let uid = r["call_uid"].as_str()?;
            (uid.ends_with(&format!(":{call}")) && !r["duration_ms"].is_null())
                .then(|| uid.to_owned())
        })
    });

    let users = [
        "admin",
        "supervisor",
        "sup-dtm",
        "editor",
        "op1001",
        "op1002",
        "officer-dtm",
        "officer-support",
    ];
    let mut tokens: std::collections::HashMap<&str, String> =
        users.iter().map(|u| (*u, token_of(&nav, u))).collect();
    tokens.insert("none", "nothing".into());
    let listen = format!("/api/recordings/{uid}");
    let download = format!("/api/recordings/{uid}/download");
    let export = "/api/recordings?tenant=dtm".to_owned();
    // (route, audit action, [(who, status)])
    let table = [
        (&listen, "recording_play"),
        (&download, "recording_download"),
    ]
    .map(|(path, action)| {
        (
            path.clone(),
            action,
            vec![
                ("none", 401),
                ("editor", 403),
                ("op1001", 200),
                ("op1002", 404),
                ("officer-support", 404),
                ("officer-dtm", 200),
                ("sup-dtm", 200),
                ("supervisor", 200),
                ("admin", 200),
            ],
        )
    })
    .into_iter()
    .chain([(
        export.clone(),
        "recording_export",
        vec![
            ("none", 401),
            ("editor", 403),
            ("op1001", 403),
            ("officer-support", 404),
            ("officer-dtm", 200),
            ("sup-dtm", 200),
            ("supervisor", 200),
            ("admin", 200),
        ],
    )])
    .collect::<Vec<_>>();
    let mut failures = Vec::new();
    let mut allowed = Vec::new();
    for (path, action, expect) in &table {
        for (who, status) in expect {
            let (got, headers, body) = fetch(nav.http, path, &tokens[who], None);
            if got != *status {
                failures.push(format!(
                    "GET {path} as {who}: expected {status}, got {got} ({})",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(160)
                        .collect::<String>()
                ));
                continue;
            }
            if got == 200 {
                allowed.push((*who, *action));
                if *action != "recording_export" {
                    assert_eq!(header(&headers, "content-type"), Some("audio/wav"));
                    assert_eq!(
                        body.len() as u64,
                        44 + done["duration_ms"].as_u64().unwrap() * 32
                    );
                }
                if *action == "recording_download" {
                    assert!(header(&headers, "content-disposition")
                        .is_some_and(|v| v.starts_with("attachment")));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every allowed access is in the audit log, with the account, role, target and source;
    // refused ones are not.
    let audit = wait_until("the accesses in the audit log", EVENT_DEADLINE, || {
        let log = nav.get_json("/api/audit?limit=1000");
        let lines: Vec<serde_json::Value> = log
            .as_array()?
            .iter()
            .filter(|l| {
                l["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("recording_"))
            })
            // The test's own lookups of the index, with the bootstrap token.
            .filter(|l| l["actor"] != "bootstrap-token")
            .cloned()
            .collect();
        (lines.len() >= allowed.len()).then_some(lines)
    });
    for (who, action) in &allowed {
        let target = if *action == "recording_export" {
            "dtm"
        } else {
            uid.as_str()
        };
        let found = audit.iter().any(|l| {
            l["actor"] == *who
                && l["action"] == *action
                && l["target"] == target
                && l["tenant"] == "dtm"
                && l["source"] == "127.0.0.1"
                && !l["role"].is_null()
        });
        assert!(
            found,
            "no audit line for {who} {action} of {target}: {audit:#?}"
        );
    }
    assert_eq!(
        audit.len(),
        allowed.len(),
        "one line per allowed access: {audit:#?}"
    );
    for refused in ["op1002", "officer-support", "editor"] {
        assert!(
            !audit.iter().any(|l| l["actor"] == refused),
            "{refused} was refused, yet audited"
        );
    }
}

/// Runs `navbat run` on the configuration in `dir` and waits for it to exit (it must).
fn run_expecting_exit(dir: &std::path::Path) -> std::process::Output {
    let mut child = std::process::Command::new(navbat_bin())
        .arg("run")
        .arg("--config")
        .arg(dir.join("navbat.toml"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn navbat");
    wait_until("navbat to exit", READY_DEADLINE, || {
        child.try_wait().expect("poll navbat").map(|_| ())
    });
    child.wait_with_output().expect("navbat's output")
}

/// A key file that is not the one the recordings were made with stops navbat at start, with
/// one error naming the key file, the key and the fix; so does a key file that lost a key,
/// or one that is not a key file. Nothing is recorded in the clear instead.
#[test]
fn a_wrong_or_incomplete_key_file_stops_navbat_naming_the_file() {
    let mut nav = Navbat::start("recordings-keys", TestConfig::default());
    // The demo run made its key file outside data/ and recorded the key's check.
    let key_file = nav.dir.path().join("keys/recordings.key");
    let text = std::fs::read_to_string(&key_file).expect("the demo key file");
    let line = text
        .lines()
        .find(|l| !l.starts_with('#'))
        .expect("a key line");
    let id = line.split_whitespace().next().unwrap().to_owned();
    nav.terminate();
    nav.wait_exit(STOP_DEADLINE).expect("navbat stops");

    let cases = [
        (
            format!("{id} {}\n", "5a".repeat(32)),
            format!("key {id} is not the key"),
        ),
        (
            format!("other {}\n", "5a".repeat(32)),
            format!("has no key {id}"),
        ),
        ("k1 not-hex\n".to_owned(), "line 1".to_owned()),
    ];
    for (content, what) in cases {
        std::fs::write(&key_file, content).unwrap();
        let out = run_expecting_exit(nav.dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let error = stderr
            .lines()
            .find(|l| l.contains("recording key file"))
            .unwrap_or_else(|| panic!("no key error in:\n{stderr}"));
        assert!(error.contains(&what), "{error:?} lacks {what:?}");
        assert!(error.contains("keys/recordings.key"), "{error:?}");
        assert!(error.contains("fix:"), "{error:?}");
        assert!(!stderr.contains("navbat ready"), "{stderr}");
    }
}
