//! Accounts, roles and the API's authorisation, against a real navbat with its SQLite store:
//! every route walked with no credentials, each role's personal token, another tenant's
//! token and the right one, from one table; CSRF, session expiry, the login limit, the audit
//! log and `navbat user` each checked so that removing the protection fails the test.

mod common;

use common::desk::{self, login, request, try_login, with_desk, Session};
use common::{http_request, Navbat, TestConfig, ADMIN_TOKEN, DTM_DID, EVENT_DEADLINE};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A personal token for `user`, made through their session (`POST /api/tokens`).
fn token_of(nav: &Navbat, user: &str) -> String {
    let s = login(nav.http, user);
    let body = json!({"label": format!("{user} test")}).to_string();
    let resp = request(
        nav.http,
        "POST",
        "/api/tokens",
        &[("Cookie", &s.cookie_header()), ("X-CSRF-Token", &s.csrf)],
        Some(("application/json", &body)),
    );
    assert_eq!(resp.status, 201, "token for {user}: {resp:?}");
    resp.json()["token"].as_str().unwrap().to_owned()
}

/// Waits for a call of `tenant` to have ended and be in the store; returns its store name.
fn finished_call(nav: &Navbat, tenant: &str) -> String {
    let ev = nav.wait_for_event("call_finished", EVENT_DEADLINE, |e| e["tenant"] == tenant);
    let call = ev["call"].as_str().unwrap().to_owned();
    // The store name, once the record is in the database (the history route answers).
    common::wait_until("the call record in the store", EVENT_DEADLINE, || {
        let r = nav.get(&format!("/api/calls/{call}/history"));
        (r.status == 200).then(|| r.json()["call"].as_str().unwrap().to_owned())
    })
}

#[test]
fn every_route_answers_by_role_and_tenant() {
    let nav = Navbat::start("desk-routes", with_desk(TestConfig::default(), ""));
    // One call of each tenant, ended (nobody answers: the caller gives up).
    nav.caller("dtm-caller", "caller_abandon.xml", DTM_DID, 500)
        .wait_success();
    nav.caller(
        "support-caller",
        "caller_abandon.xml",
        desk::SUPPORT_DID,
        500,
    )
    .wait_success();
    let dtm_call = finished_call(&nav, "dtm");
    let support_call = finished_call(&nav, "support");

    // A request of the support line, from its public form.
    let form = request(nav.http, "GET", "/r/support", &[], None);
    let at = form
        .body
        .find("name=\"token\" value=\"")
        .expect("form token")
        + 20;
    let body = desk::form(&[
        ("token", &form.body[at..at + 32]),
        ("phone", "+998901112233"),
        ("stir", "123456789"),
        ("text", "Savol"),
    ]);
    let answer = request(
        nav.http,
        "POST",
        "/r/support",
        &[],
        Some(("application/x-www-form-urlencoded", &body)),
    );
    let at = answer
        .body
        .find("id=\"request-number\">")
        .expect("request number")
        + 20;
    let support_request = answer.body[at..].split('<').next().unwrap().to_owned();
    let rq = support_request.as_str();

    let mut tokens: HashMap<&str, Option<String>> = HashMap::new();
    tokens.insert("none", None);
    tokens.insert("bootstrap", Some(ADMIN_TOKEN.to_owned()));
    for (user, ..) in desk::ACCOUNTS {
        tokens.insert(user, Some(token_of(&nav, user)));
    }

    // (method, path, body, [(who, status, error code or "")]); who is not listed: not asked.
    let d = dtm_call.as_str();
    let s = support_call.as_str();
    let state = json!({"state": "break"});
    let own_state = json!({"state": "available"});
    let surge = json!({"mode": "auto"});
    let monitor = json!({"supervisor": "1901", "mode": "listen"});
    type Row<'a> = (
        &'a str,
        String,
        Option<&'a Value>,
        Vec<(&'a str, u16, &'a str)>,
    );
    let everyone_ok = |status: u16| -> Vec<(&str, u16, &str)> {
        vec![
            ("none", 401, "unauthorised"),
            ("op1001", status, ""),
            ("editor", status, ""),
            ("officer-dtm", status, ""),
            ("supervisor", status, ""),
            ("admin", status, ""),
            ("bootstrap", status, ""),
        ]
    };
    let table: Vec<Row> = vec![
        (
            "GET",
            "/api/health".into(),
            None,
            vec![("none", 200, ""), ("op1001", 200, "")],
        ),
        ("GET", "/api/me".into(), None, everyone_ok(200)),
        ("GET", "/api/tokens".into(), None, everyone_ok(200)),
        ("GET", "/api/requests".into(), None, everyone_ok(200)),
        (
            "GET",
            format!("/api/requests/{rq}"),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 200, ""),
                ("editor", 200, ""),
                ("officer-dtm", 404, "unknown_request"),
                ("sup-dtm", 404, "unknown_request"),
                ("officer-support", 200, ""),
                ("admin", 200, ""),
            ],
        ),
        (
            "GET",
            "/api/queues".into(),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 200, ""),
                ("editor", 403, "forbidden"),
                ("officer-dtm", 200, ""),
                ("supervisor", 200, ""),
                ("admin", 200, ""),
            ],
        ),
        (
            "GET",
            "/api/operators".into(),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 403, "forbidden"),
                ("editor", 403, "forbidden"),
                ("officer-dtm", 200, ""),
                ("supervisor", 200, ""),
                ("bootstrap", 200, ""),
            ],
        ),
        (
            "POST",
            "/api/operators/1002/state".into(),
            Some(&state),
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 404, "unknown_operator"),
                ("editor", 403, "forbidden"),
                ("officer-dtm", 403, "forbidden"),
                ("supervisor", 202, ""),
                ("admin", 202, ""),
            ],
        ),
        (
            "POST",
            "/api/operators/1001/state".into(),
            Some(&own_state),
            vec![("op1001", 202, ""), ("op1002", 404, "unknown_operator")],
        ),
        (
            "GET",
            "/api/events".into(),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 403, "forbidden"),
                ("officer-dtm", 403, "forbidden"),
                ("supervisor", 403, "forbidden"),
                ("admin", 200, ""),
                ("bootstrap", 200, ""),
            ],
        ),
        (
            "GET",
            "/api/store".into(),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("supervisor", 403, "forbidden"),
                ("admin", 200, ""),
            ],
        ),
        (
            "GET",
            format!("/api/calls/{d}/history"),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 404, "unknown_call"),
                ("editor", 403, "forbidden"),
                ("officer-dtm", 200, ""),
                ("officer-support", 404, "unknown_call"),
                ("sup-dtm", 200, ""),
                ("supervisor", 200, ""),
                ("admin", 200, ""),
            ],
        ),
        (
            "GET",
            format!("/api/calls/{s}/history"),
            None,
            vec![
                ("officer-dtm", 404, "unknown_call"),
                ("sup-dtm", 404, "unknown_call"),
                ("officer-support", 200, ""),
            ],
        ),
        (
            "GET",
            format!("/api/calls/{s}/disposition"),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("editor", 403, "forbidden"),
                ("officer-dtm", 404, "unknown_call"),
                ("officer-support", 404, "no_disposition"),
            ],
        ),
        (
            "GET",
            format!("/api/recordings/{d}"),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 403, "forbidden"),
                ("editor", 403, "forbidden"),
                ("officer-support", 404, "unknown_call"),
                ("officer-dtm", 404, "no_recording"),
            ],
        ),
        (
            "POST",
            format!("/api/calls/{d}/monitor"),
            Some(&monitor),
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 403, "forbidden"),
                ("editor", 403, "forbidden"),
                ("officer-dtm", 403, "forbidden"),
            ],
        ),
        (
            "GET",
            "/api/surge".into(),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("editor", 403, "forbidden"),
                ("officer-dtm", 200, ""),
                ("supervisor", 200, ""),
            ],
        ),
        (
            "POST",
            "/api/tenants/support/surge".into(),
            Some(&surge),
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 403, "forbidden"),
                ("officer-support", 403, "forbidden"),
                ("sup-dtm", 404, "unknown_tenant"),
                ("supervisor", 202, ""),
                ("bootstrap", 202, ""),
            ],
        ),
        (
            "GET",
            "/api/audit".into(),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("op1001", 403, "forbidden"),
                ("supervisor", 403, "forbidden"),
                ("editor", 403, "forbidden"),
                ("officer-dtm", 200, ""),
                ("admin", 200, ""),
            ],
        ),
        (
            "GET",
            "/api/kb?tenant=support".into(),
            None,
            vec![
                ("none", 401, "unauthorised"),
                ("officer-dtm", 404, "unknown_tenant"),
                ("officer-support", 200, ""),
                ("editor", 200, ""),
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, expect) in &table {
        for (who, status, code) in expect {
            let token = tokens[who].as_deref();
            let resp = http_request(nav.http, method, path, token, *body);
            let got_code = serde_json::from_str::<Value>(&resp.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            if resp.status != *status || (!code.is_empty() && got_code != *code) {
                failures.push(format!(
                    "{method} {path} as {who}: expected {status} {code}, got {} {got_code} ({})",
                    resp.status,
                    resp.body.chars().take(160).collect::<String>()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Views are cut to the tenant: officer-dtm's queues and surge states are dtm's only.
    let queues = http_request(
        nav.http,
        "GET",
        "/api/queues",
        tokens["officer-dtm"].as_deref(),
        None,
    )
    .json();
    let tenants: Vec<&str> = queues
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["tenant"].as_str().unwrap())
        .collect();
    assert!(
        !tenants.is_empty() && tenants.iter().all(|t| *t == "dtm"),
        "{tenants:?}"
    );
    // Officers do not see where phones are registered.
    let ops = http_request(
        nav.http,
        "GET",
        "/api/operators",
        tokens["officer-dtm"].as_deref(),
        None,
    )
    .json();
    assert!(
        ops.as_array()
            .unwrap()
            .iter()
            .all(|o| o["contact"].is_null()),
        "{ops}"
    );
    // A revoked token stops working at once on this node.
    let editor = tokens["editor"].clone().unwrap();
    let list = http_request(nav.http, "GET", "/api/tokens", Some(&editor), None).json();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.get("token").is_none() && t.get("token_hash").is_none()));
    let r = http_request(
        nav.http,
        "DELETE",
        &format!("/api/tokens/{id}"),
        Some(&editor),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        http_request(nav.http, "GET", "/api/me", Some(&editor), None).status,
        401
    );
}

#[test]
fn session_writes_need_the_csrf_token() {
    let nav = Navbat::start("desk-csrf", with_desk(TestConfig::default(), ""));
    let sup = login(nav.http, "supervisor");
    let body = json!({"mode": "auto"}).to_string();
    // The session cookie alone (what another site's form would carry) is refused.
    let forged = request(
        nav.http,
        "POST",
        "/api/tenants/dtm/surge",
        &[("Cookie", &sup.cookie_header())],
        Some(("application/json", &body)),
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(forged.json()["error"], "csrf");
    let ok = request(
        nav.http,
        "POST",
        "/api/tenants/dtm/surge",
        &[
            ("Cookie", &sup.cookie_header()),
            ("X-CSRF-Token", &sup.csrf),
        ],
        Some(("application/json", &body)),
    );
    assert_eq!(ok.status, 202, "{ok:?}");
    // Forms too: the desk's state form without its token is refused, with it accepted.
    let op = login(nav.http, "op1001");
    let no_token = request(
        nav.http,
        "POST",
        "/desk/state",
        &[("Cookie", &op.cookie_header())],
        Some((
            "application/x-www-form-urlencoded",
            "state=break&reason=lunch",
        )),
    );
    assert_eq!(no_token.status, 403, "{no_token:?}");
    let with_token = op.post_form("/desk/state", &[("state", "break"), ("reason", "lunch")]);
    assert_eq!(with_token.status, 303, "{with_token:?}");
    nav.wait_for_event("operator_state", EVENT_DEADLINE, |e| {
        e["operator"] == "1001" && e["to"] == "break"
    });
    // The login form needs its own token (login CSRF): a post without the cookie is refused.
    let blind = request(
        nav.http,
        "POST",
        "/login",
        &[],
        Some((
            "application/x-www-form-urlencoded",
            &desk::form(&[
                ("csrf", "x"),
                ("username", "admin"),
                ("password", "demo-admin"),
            ]),
        )),
    );
    assert_eq!(blind.status, 403, "{blind:?}");
    assert!(desk::set_cookie(&blind, "navbat_session").is_none());
    // Cookies are HttpOnly and SameSite=Strict.
    let page = request(nav.http, "GET", "/login", &[], None);
    let set = page
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("navbat_login_csrf="))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
}

#[test]
fn sessions_expire_and_logout_ends_them() {
    // Sessions of 2.5 s.
    let nav = Navbat::start(
        "desk-expiry",
        with_desk(
            TestConfig::default(),
            "session_hours = 0.0007\nlogin_limit = { account_source_after = 3, account_source_max_delay_secs = 60 }",
        ),
    );
    let op = login(nav.http, "op1001");
    assert_eq!(op.get("/desk").status, 200);
    std::thread::sleep(Duration::from_millis(3_000));
    let after = op.get("/desk");
    assert_eq!(
        after.status, 303,
        "an expired session still opened the desk: {after:?}"
    );
    assert!(after
        .headers
        .iter()
        .any(|(k, v)| k == "location" && v.starts_with("/login")));

    let op = login(nav.http, "op1002");
    assert_eq!(op.get("/desk").status, 200);
    let out = op.post_form("/logout", &[]);
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(
        op.get("/desk").status,
        303,
        "the session works after logout"
    );

    // The login limit: three wrong passwords, then even the right one waits, with a clear
    // message and Retry-After; another account from the same address is not affected.
    for _ in 0..3 {
        let r = try_login(nav.http, "editor", "wrong password")
            .err()
            .unwrap();
        assert_eq!(r.status, 401, "{r:?}");
        assert!(r.body.contains("id=\"login-error\""));
    }
    let limited = try_login(nav.http, "editor", &desk::password("editor"))
        .err()
        .expect("the right password got through the limit");
    assert_eq!(limited.status, 429, "{limited:?}");
    assert!(limited.headers.iter().any(|(k, _)| k == "retry-after"));
    assert!(limited.body.contains("Urinishlar juda ko") || limited.body.contains("Слишком много"));
    login(nav.http, "officer-dtm");
}

#[test]
fn the_audit_log_keeps_who_did_what_and_cannot_be_changed() {
    let nav = Navbat::start("desk-audit", with_desk(TestConfig::default(), ""));
    let _ = try_login(nav.http, "supervisor", "not the password");
    let sup: Session = login(nav.http, "supervisor");
    let r = request(
        nav.http,
        "POST",
        "/api/tenants/dtm/surge",
        &[
            ("Cookie", &sup.cookie_header()),
            ("X-CSRF-Token", &sup.csrf),
        ],
        Some(("application/json", &json!({"on": true}).to_string())),
    );
    assert_eq!(r.status, 202);
    let r = request(
        nav.http,
        "POST",
        "/api/tenants/support/surge",
        &[
            ("Cookie", &sup.cookie_header()),
            ("X-CSRF-Token", &sup.csrf),
        ],
        Some(("application/json", &json!({"on": false}).to_string())),
    );
    assert_eq!(r.status, 202);
    let rows = common::wait_until("the audit rows in the database", EVENT_DEADLINE, || {
        let rows = nav.get("/api/audit").json();
        let actions: Vec<String> = rows
            .as_array()?
            .iter()
            .map(|r| r["action"].as_str().unwrap_or("").to_owned())
            .collect();
        (actions.iter().filter(|a| *a == "surge_switch").count() == 2
            && actions.contains(&"login".to_owned())
            && actions.contains(&"login_failed".to_owned()))
        .then_some(rows)
    });
    let failed = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "login_failed")
        .unwrap();
    assert_eq!(failed["actor"], "supervisor");
    assert_eq!(failed["source"], "127.0.0.1");
    // The officer of dtm reads dtm's part only.
    let officer = login(nav.http, "officer-dtm");
    let theirs = request(
        nav.http,
        "GET",
        "/api/audit",
        &[("Cookie", &officer.cookie_header())],
        None,
    )
    .json();
    let tenants: Vec<&str> = theirs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant"].as_str().unwrap_or(""))
        .collect();
    assert!(
        !tenants.is_empty() && tenants.iter().all(|t| *t == "dtm"),
        "{tenants:?}"
    );
    // Append-only in the database itself.
    let db = nav.dir.path().join("data/navbat.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url =
            navbat::config::DatabaseUrl::parse(&format!("sqlite://{}", db.display())).unwrap();
        let db = navbat::store::db::Db::connect_lazy(&url).unwrap();
        let n = db.scalar("SELECT COUNT(*) FROM audit_log").await.unwrap();
        assert!(n >= 4, "{n}");
        let update = sqlx::query("UPDATE audit_log SET actor = 'nobody'")
            .execute(db.pool())
            .await;
        assert!(update.is_err(), "the audit log took an UPDATE");
        let delete = sqlx::query("DELETE FROM audit_log")
            .execute(db.pool())
            .await;
        assert!(delete.is_err(), "the audit log took a DELETE");
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM audit_log").await.unwrap(),
            n
        );
    });
}

#[test]
fn navbat_user_manages_accounts_from_the_shell() {
    let nav = Navbat::start("desk-user-cli", with_desk(TestConfig::default(), ""));
    let config = nav.dir.path().join("navbat.toml");
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(common::navbat_bin())
            .arg("--config")
            .arg(&config)
            .arg("user")
            .args(args)
            .current_dir(nav.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(
        &["add", "op1002b", "--role", "operator", "--tenants", "dtm"],
        "short\n",
    );
    assert!(!out.status.success(), "a short password was taken");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shorter than"));
    let out = run(
        &[
            "add",
            "newop",
            "--role",
            "operator",
            "--tenants",
            "dtm",
            "--name",
            "Yangi",
        ],
        "a long enough secret\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = try_login(nav.http, "newop", "a long enough secret").expect("the new account logs in");
    assert_eq!(s.get("/desk").status, 200);
    let list = run(&["list"], "");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("newop\toperator\tdtm"), "{text}");
    assert!(!text.contains("argon2"), "hashes listed: {text}");
    let out = run(&["disable", "newop"], "");
    assert!(out.status.success());
    let refused = try_login(nav.http, "newop", "a long enough secret")
        .err()
        .expect("a disabled account logged in");
    assert_eq!(refused.status, 401);
    // The password never comes from the command line: there is no such option.
    let out = run(&["passwd", "newop", "--password", "x"], "");
    assert!(!out.status.success());
    let audit = nav.get("/api/audit").json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["actor"] == "shell")
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"account_added") && actions.contains(&"account_disabled"),
        "{actions:?}"
    );
}
