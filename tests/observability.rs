//! Observability end to end: the real navbat binary, a real Prometheus scraping it,
//! SIPp placing calls; then every PromQL expression of every Grafana panel and every
//! alert rule is evaluated through Prometheus's HTTP API and must be valid and return
//! at least one series. Also `promtool check config` / `check rules` on the deploy
//! files, and a walk over the dashboards checking each panel's data source, query and
//! unit.
//!
//! Needs `/usr/bin/prometheus`, `/usr/bin/promtool` (Debian package `prometheus`) and
//! `/usr/bin/sipp` (package `sip-tester`). No timing assertions: every wait is a poll
//! with a generous bound, and only its outcome is asserted.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";
const SIPP: &str = "/usr/bin/sipp";

/// The tenant and queue the calls go to (DID 712351914, IVR digit 1), used for `$tenant`
/// and `$queue` in the dashboards.
const TENANT: &str = "dtm";
const QUEUE: &str = "dtm-uz";

/// Dashboard variables replaced by concrete values, longest name first.
const SUBSTITUTIONS: [(&str, &str); 6] = [
    ("$__rate_interval", "10s"),
    ("$__interval", "2s"),
    ("$__range", "15m"),
    ("${tenant}", TENANT),
    ("$tenant", TENANT),
    ("$queue", QUEUE),
];

/// Units a panel may declare (Grafana unit ids).
const UNITS: [&str; 8] = [
    "none",
    "short",
    "s",
    "percentunit",
    "reqps",
    "pps",
    "ops",
    "Bps",
];

/// The alerts the issue asks for.
const REQUIRED_ALERTS: [&str; 6] = [
    "NavbatServiceLevelLow",
    "NavbatLongestWaitHigh",
    "NavbatChannelsNearLimit",
    "NavbatJournalLag",
    "NavbatDown",
    "NavbatAllOperatorsOnBreak",
];

/// Generous bound for anything we wait on; the test never asserts how long it took.
const PATIENCE: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A child process killed (and reaped) when dropped.
struct Running {
    name: &'static str,
    child: std::process::Child,
}

impl Running {
    fn spawn(name: &'static str, cmd: &mut Command) -> Running {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Running { name, child }
    }

    /// Waits for the process to exit on its own (bounded) and returns its status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not finish within {PATIENCE:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free for TCP (and, with `udp_too`, for UDP as well).
fn free_port(udp_too: bool) -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        if !udp_too || UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .expect("bind udp")
        .local_addr()
        .expect("addr")
        .port()
}

/// Replaces exactly one line starting with `prefix` (after trimming) by `line`.
fn replace_line(text: &str, prefix: &str, line: &str) -> String {
    let mut hits = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with(prefix) {
                hits += 1;
                line.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(hits, 1, "expected one line starting with {prefix:?}");
    out.join("\n") + "\n"
}

// -------------------------------------------------------------------------------------
// A minimal HTTP/1.0 client (GET only): enough for navbat's and Prometheus's APIs.
// -------------------------------------------------------------------------------------

fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\
         Authorization: Bearer demo-admin-token\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((status, body.to_string()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `probe` until it returns `Some`, for at most [`PATIENCE`].
fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The result of one instant query.
enum Answer {
    /// The query failed (invalid PromQL, unknown function, ...).
    Invalid(String),
    /// Valid; this many series.
    Series(Vec<Value>),
}

struct Prometheus {
    addr: SocketAddr,
}

impl Prometheus {
    fn query(&self, promql: &str) -> Answer {
        let path = format!("/api/v1/query?query={}", urlencode(promql));
        let (status, body) = match http_get(self.addr, &path) {
            Ok(r) => r,
            Err(e) => return Answer::Invalid(format!("HTTP error: {e}")),
        };
        let json: Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(e) => return Answer::Invalid(format!("HTTP {status}, not JSON ({e}): {body}")),
        };
        if json["status"] != "success" {
            return Answer::Invalid(format!(
                "{}: {}",
                json["errorType"].as_str().unwrap_or("?"),
                json["error"].as_str().unwrap_or("?")
            ));
        }
        let data = &json["data"];
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Answer::Series(data["result"].as_array().cloned().unwrap_or_default())
            }
            // A scalar or string is one value.
            _ => Answer::Series(vec![data["result"].clone()]),
        }
    }

    /// The summed value of an instant query (0 if it has no series).
    fn value(&self, promql: &str) -> f64 {
        match self.query(promql) {
            Answer::Series(s) => s
                .iter()
                .filter_map(|v| v["value"][1].as_str().and_then(|x| x.parse::<f64>().ok()))
                .sum(),
            Answer::Invalid(e) => panic!("{promql}: {e}"),
        }
    }

    fn rules(&self) -> Vec<Value> {
        let (_, body) = http_get(self.addr, "/api/v1/rules").expect("rules API");
        let json: Value = serde_json::from_str(&body).expect("rules JSON");
        json["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

// -------------------------------------------------------------------------------------
// Dashboards
// -------------------------------------------------------------------------------------

/// One query of one panel.
struct PanelQuery {
    dashboard: String,
    panel: String,
    expr: String,
}

/// Every panel (rows' nested panels included), except rows themselves.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

fn substitute(expr: &str) -> String {
    SUBSTITUTIONS
        .iter()
        .fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
}

/// Checks the dashboard's structure; returns its queries and variable queries.
fn check_dashboard(name: &str, d: &Value, problems: &mut Vec<String>) -> Vec<PanelQuery> {
    let title = d["title"].as_str().unwrap_or("");
    if !title.contains(" / ") {
        problems.push(format!("{name}: title {title:?} is not Uzbek / Russian"));
    }
    let vars = d["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let var = |n: &str| vars.iter().find(|v| v["name"] == n).cloned();
    match var("datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => problems.push(format!("{name}: no Prometheus datasource variable")),
    }
    let mut queries = Vec::new();
    for n in ["tenant", "queue"] {
        let Some(v) = var(n) else {
            problems.push(format!("{name}: no variable {n}"));
            continue;
        };
        // label_values(<selector>, <label>): the selector must return series.
        let def = v["definition"].as_str().unwrap_or("");
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|s| s.rsplit_once(','));
        match inner {
            Some((selector, label)) if label.trim() == n => queries.push(PanelQuery {
                dashboard: name.into(),
                panel: format!("variable {n}"),
                expr: selector.trim().to_string(),
            }),
            _ => problems.push(format!(
                "{name}: variable {n} is not label_values(..., {n})"
            )),
        }
    }
    let expected_ds = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let all = panels(d);
    if all.is_empty() {
        problems.push(format!("{name}: no panels"));
    }
    for p in all {
        let ptitle = p["title"].as_str().unwrap_or("").to_string();
        let at = format!("{name}: panel {ptitle:?}");
        if !ptitle.contains(" / ") {
            problems.push(format!("{at}: title is not Uzbek / Russian"));
        }
        if p["datasource"] != expected_ds {
            problems.push(format!(
                "{at}: datasource {} is not ${{datasource}}",
                p["datasource"]
            ));
        }
        match p["fieldConfig"]["defaults"]["unit"].as_str() {
            Some(u) if UNITS.contains(&u) => {}
            other => problems.push(format!("{at}: unit {other:?} not one of {UNITS:?}")),
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{at}: no query"));
        }
        for t in targets {
            if t["datasource"] != expected_ds {
                problems.push(format!("{at}: target datasource is not ${{datasource}}"));
            }
            match t["expr"].as_str() {
                Some(e) if !e.trim().is_empty() => queries.push(PanelQuery {
                    dashboard: name.into(),
                    panel: ptitle.clone(),
                    expr: e.to_string(),
                }),
                _ => problems.push(format!("{at}: target without expr")),
            }
        }
    }
    queries
}

/// Rewrites every comparison outside label matchers and strings into its `bool` form, so
/// that an alert expression returns its signal (0/1 per series) instead of only the
/// series that fire.
fn with_bool_comparisons(expr: &str) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        let next = chars.get(i + 1).copied();
        let op_len = match (c, next) {
            _ if depth > 0 => 0,
            ('=', Some('=')) | ('!', Some('=')) | ('>', Some('=')) | ('<', Some('=')) => 2,
            ('>', _) | ('<', _) => 1,
            _ => 0,
        };
        if op_len == 0 {
            out.push(c);
            i += 1;
            continue;
        }
        out.extend(&chars[i..i + op_len]);
        i += op_len;
        let rest: String = chars[i..].iter().collect();
        if !rest.trim_start().starts_with("bool") {
            out.push_str(" bool");
        }
    }
    out
}

fn promtool(args: &[&str]) {
    let out = Command::new(PROMTOOL)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e}"));
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sipp(dir: &Path, scenario: &str, port: u16) -> Command {
    let mut cmd = Command::new(SIPP);
    cmd.current_dir(dir)
        .arg("-sf")
        .arg(repo().join("tests/sipp").join(scenario))
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-mp", &free_udp_port().to_string()])
        .args(["-nostdin", "-timeout", "60s", "-timeout_error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn bool_rewrite_leaves_matchers_alone() {
    assert_eq!(
        with_bool_comparisons(r#"up{job="navbat",x!="a>b"} == 0 and on (i) a >= bool 1"#),
        r#"up{job="navbat",x!="a>b"} == bool 0 and on (i) a >= bool 1"#
    );
    assert_eq!(with_bool_comparisons("a / b < 0.8"), "a / b < bool 0.8");
}

#[test]
fn every_dashboard_query_and_alert_rule_returns_series_from_a_real_prometheus() {
    for tool in [PROMETHEUS, PROMTOOL, SIPP] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing: apt-get install prometheus sip-tester"
        );
    }
    let deploy = repo().join("deploy/prometheus");
    promtool(&[
        "check",
        "config",
        deploy.join("prometheus.yml").to_str().unwrap(),
    ]);
    promtool(&[
        "check",
        "rules",
        deploy.join("alerts.yml").to_str().unwrap(),
    ]);

    // Dashboards: structure first (no processes needed).
    let mut problems = Vec::new();
    let mut queries = Vec::new();
    for name in ["wallboard", "operations", "month"] {
        let path = repo().join(format!("grafana/dashboards/{name}.json"));
        let text = std::fs::read_to_string(&path).expect("dashboard file");
        let json: Value = serde_json::from_str(&text).expect("dashboard is JSON");
        queries.extend(check_dashboard(name, &json, &mut problems));
    }
    assert!(
        problems.is_empty(),
        "dashboard problems:\n{}",
        problems.join("\n")
    );

    // navbat on free ports.
    let tmp = tempfile::tempdir().expect("temp dir");
    let sip_port = free_port(true);
    let http_addr: SocketAddr = format!("127.0.0.1:{}", free_port(false)).parse().unwrap();
    let rtp_min = free_udp_port() & !1;
    let rtp_max = rtp_min.saturating_add(199);
    let mut config = std::fs::read_to_string(repo().join("config/navbat.toml")).unwrap();
    // SIPp registers 1001 below and knows only MD5 digest: it reads the two challenges of an
    // account with a SHA-256 HA1 as one and gives up on `algorithm=SHA-256`. The demo's
    // operators keep MD5 alone here.
    config = config
        .lines()
        .filter(|l| !l.starts_with("ha1_sha256 ="))
        .map(|l| format!("{l}\n"))
        .collect();
    config = replace_line(&config, "udp =", &format!("udp = \"127.0.0.1:{sip_port}\""));
    config = replace_line(&config, "tcp =", &format!("tcp = \"127.0.0.1:{sip_port}\""));
    config = replace_line(&config, "listen =", &format!("listen = \"{http_addr}\""));
    config = replace_line(
        &config,
        "rtp_port_min =",
        &format!("rtp_port_min = {rtp_min}"),
    );
    config = replace_line(
        &config,
        "rtp_port_max =",
        &format!("rtp_port_max = {rtp_max}"),
    );
    // Everything navbat writes (data/: database, journal, recordings) stays in the temporary
    // directory, never the checkout's (where a demo may be running); the prompts are the
    // checkout's.
    config = replace_line(
        &config,
        "prompts_dir =",
        &format!(
            "prompts_dir = {:?}",
            repo().join("config/prompts").display().to_string()
        ),
    );
    let config_path = tmp.path().join("navbat.toml");
    std::fs::write(&config_path, config).unwrap();
    let navbat_log = std::fs::File::create(tmp.path().join("navbat.log")).unwrap();
    let _navbat = Running::spawn(
        "navbat",
        Command::new(env!("CARGO_BIN_EXE_navbat"))
            .current_dir(tmp.path())
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(navbat_log),
    );
    wait_for("navbat's HTTP API", || {
        http_get(http_addr, "/api/health")
            .ok()
            .filter(|(s, _)| *s == 200)
    });

    // Prometheus scraping it every second, with the deploy rules.
    let prom_addr: SocketAddr = format!("127.0.0.1:{}", free_port(false)).parse().unwrap();
    let prom_config = std::fs::read_to_string(deploy.join("prometheus.yml"))
        .unwrap()
        .replace("127.0.0.1:8080", &http_addr.to_string())
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
        .replace("scrape_timeout: 5s", "scrape_timeout: 1s")
        .replace(
            "  - alerts.yml",
            &format!("  - {}", deploy.join("alerts.yml").display()),
        );
    let prom_config_path = tmp.path().join("prometheus.yml");
    std::fs::write(&prom_config_path, prom_config).unwrap();
    promtool(&["check", "config", prom_config_path.to_str().unwrap()]);
    let prom_log = std::fs::File::create(tmp.path().join("prometheus.log")).unwrap();
    let _prometheus = Running::spawn(
        "prometheus",
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", prom_config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .stdout(Stdio::null())
            .stderr(prom_log),
    );
    let prom = Prometheus { addr: prom_addr };
    wait_for("Prometheus ready", || {
        http_get(prom_addr, "/-/ready")
            .ok()
            .filter(|(s, _)| *s == 200)
    });
    wait_for("a first scrape of navbat", || {
        (prom.value(r#"up{job="navbat"}"#) == 1.0).then_some(())
    });

    // Calls: operator 1001's phone (UAS + REGISTER), then two trunk calls through the IVR
    // into dtm-uz: the first is answered, the second waits while 1001 talks.
    let uas_port = free_port(true);
    let mut uas = Running::spawn(
        "sipp operator UAS",
        sipp(tmp.path(), "obs_uas.xml", uas_port).args(["-m", "1"]),
    );
    let sip_target = format!("127.0.0.1:{sip_port}");
    let mut reg = Running::spawn(
        "sipp REGISTER",
        sipp(tmp.path(), "obs_reg.xml", free_port(true))
            .arg(&sip_target)
            .args(["-key", "uas_port", &uas_port.to_string(), "-m", "1"]),
    );
    assert!(reg.wait_exit().success(), "REGISTER 1001 failed");
    wait_for("operator 1001 available", || {
        let (_, body) = http_get(http_addr, "/api/operators").ok()?;
        let ops: Value = serde_json::from_str(&body).ok()?;
        ops.as_array()?
            .iter()
            .any(|o| o["ext"] == "1001" && o["state"] == "available")
            .then_some(())
    });
    let mut caller = Running::spawn(
        "sipp caller",
        sipp(tmp.path(), "obs_caller.xml", free_port(true))
            .arg(&sip_target)
            .args(["-m", "2", "-r", "1"]),
    );
    assert!(caller.wait_exit().success(), "SIPp calls failed");
    assert!(uas.wait_exit().success(), "operator UAS failed");

    // The calls reached Prometheus through /metrics.
    let finished =
        format!(r#"sum(navbat_calls_finished_total{{tenant="{TENANT}",queue="{QUEUE}"}})"#);
    wait_for("both calls in Prometheus", || {
        (prom.value(&finished) >= 2.0).then_some(())
    });
    assert!(
        prom.value(r#"sum(navbat_calls_answered_total{queue="dtm-uz",topic="results"})"#) >= 1.0
    );
    assert!(prom.value(r#"sum(navbat_sip_requests_total{direction="in",method="INVITE"})"#) >= 2.0);
    assert!(
        prom.value(r#"sum(navbat_sip_invite_first_response_seconds_count{role="uac"})"#) >= 1.0
    );
    assert!(prom.value("sum(navbat_sip_registrations_total)") >= 1.0);
    // The calls carried audio both ways (SIPp played g711a.pcap on the caller and the
    // operator leg), was recorded, and the media engine's counters reached Prometheus.
    for (what, promql) in [
        (
            "RTP received",
            r#"sum(navbat_rtp_packets_total{direction="in",codec="pcma"})"#,
        ),
        (
            "RTP sent",
            r#"sum(navbat_rtp_packets_total{direction="out"})"#,
        ),
        ("jitter samples", "sum(navbat_rtp_jitter_seconds_count)"),
    ] {
        wait_for(what, || (prom.value(promql) > 0.0).then_some(()));
    }
    // More than a WAV header: the bridged call's audio was written under its tenant.
    wait_for("recording bytes of tenant dtm", || {
        (prom.value(r#"sum(navbat_recording_bytes_total{tenant="dtm"})"#) > 44.0).then_some(())
    });

    // /metrics itself: every live metric of the catalogue, nothing personal.
    let (status, text) = http_get(http_addr, "/metrics").expect("/metrics");
    assert_eq!(status, 200);
    for spec in navbat::metrics::CATALOGUE {
        if spec.availability == navbat::metrics::Availability::Live {
            assert!(
                text.contains(&format!("# TYPE {} ", spec.name)),
                "/metrics lacks {}",
                spec.name
            );
        }
    }
    assert!(
        !text.contains("998901234567"),
        "a caller's number in /metrics"
    );
    assert!(!text.contains("call=\""), "a call label in /metrics");

    // Every dashboard query: valid and with series. Rates need two scrapes inside their
    // window, so keep asking (bounded) until each has answered with series once.
    let mut pending: Vec<(PanelQuery, String)> = queries
        .into_iter()
        .map(|q| {
            let expr = substitute(&q.expr);
            assert!(
                !expr.contains('$'),
                "{}: {:?}: unreplaced variable in {expr}",
                q.dashboard,
                q.panel
            );
            (q, expr)
        })
        .collect();
    let total = pending.len();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut still = Vec::new();
        for (q, expr) in pending {
            match prom.query(&expr) {
                Answer::Invalid(e) => {
                    panic!("{}: {:?}: invalid PromQL {expr}: {e}", q.dashboard, q.panel)
                }
                Answer::Series(s) if s.is_empty() => still.push((q, expr)),
                Answer::Series(_) => {}
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let list: Vec<String> = pending
                .iter()
                .map(|(q, e)| format!("{}: {:?}: {e}", q.dashboard, q.panel))
                .collect();
            panic!("queries without series:\n{}", list.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(total >= 40, "only {total} dashboard queries found");

    // Every alert rule as Prometheus loaded it from deploy/prometheus/alerts.yml: evaluated
    // without error, its expression valid, and its signal (comparisons as `bool`) present.
    let rules = wait_for("every rule evaluated", || {
        let rules = prom.rules();
        let done = !rules.is_empty()
            && rules.iter().all(|r| {
                r["health"] == "ok"
                    && r["lastEvaluation"]
                        .as_str()
                        .is_some_and(|t| !t.starts_with("0001"))
            });
        done.then_some(rules)
    });
    for name in REQUIRED_ALERTS {
        assert!(
            rules
                .iter()
                .any(|r| r["name"] == name && r["type"] == "alerting"),
            "alert {name} missing"
        );
    }
    eprintln!(
        "observability: {total} dashboard queries and {} rules evaluated with series",
        rules.len()
    );
    for rule in &rules {
        let name = rule["name"].as_str().unwrap_or("?");
        let expr = rule["query"].as_str().expect("rule query");
        assert_eq!(rule["lastError"].as_str().unwrap_or(""), "", "rule {name}");
        if let Answer::Invalid(e) = prom.query(expr) {
            panic!("rule {name}: invalid {expr}: {e}");
        }
        let signal = with_bool_comparisons(expr);
        let series = wait_for(&format!("series for rule {name}: {signal}"), || match prom
            .query(&signal)
        {
            Answer::Invalid(e) => panic!("rule {name}: invalid {signal}: {e}"),
            Answer::Series(s) => (!s.is_empty()).then_some(s),
        });
        assert!(!series.is_empty());
    }
}
