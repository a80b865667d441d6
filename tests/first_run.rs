//! What a newcomer meets first: a port already taken, a configuration started from another
//! directory. Each gets one clear error that names the setting and the fix, never a panic.

mod common;

use common::*;
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Output, Stdio};

/// Runs `navbat run --config navbat.toml` in `dir` and waits for it to exit (it must, the
/// configuration cannot run); panics if it is still running after the deadline.
fn run_expecting_exit(dir: &TestDir) -> Output {
    let mut child = Command::new(navbat_bin())
        .arg("run")
        .arg("--config")
        .arg(dir.path().join("navbat.toml"))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn navbat");
    wait_until("navbat to exit", READY_DEADLINE, || {
        child.try_wait().expect("poll navbat").map(|_| ())
    });
    child.wait_with_output().expect("navbat's output")
}

fn write_config(test: &str, config: &TestConfig) -> TestDir {
    let dir = TestDir::new(test);
    std::fs::write(dir.path().join("navbat.toml"), config.render()).unwrap();
    std::fs::create_dir_all(dir.path().join(NO_PROMPTS_DIR)).unwrap();
    dir
}

/// One error line naming `what`, exit status 1, and no panic or backtrace.
fn assert_one_clear_error(out: &Output, what: &str, fix: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
        "a panic instead of an error:\n{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("navbat: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    assert!(errors[0].contains(what), "{:?} lacks {what:?}", errors[0]);
    assert!(errors[0].contains(fix), "{:?} lacks {fix:?}", errors[0]);
    assert_eq!(
        errors[0].matches("Address already in use").count(),
        1,
        "the OS error is printed once: {:?}",
        errors[0]
    );
}

#[test]
fn a_sip_udp_port_in_use_is_one_clear_error() {
    let config = TestConfig::default();
    let _held = UdpSocket::bind(("127.0.0.1", config.sip_port)).unwrap();
    let dir = write_config("first-run-udp", &config);
    let out = run_expecting_exit(&dir);
    assert_one_clear_error(
        &out,
        &format!("cannot listen for SIP on udp 127.0.0.1:{}", config.sip_port),
        "sip.udp",
    );
}

#[test]
fn a_sip_tcp_port_in_use_is_one_clear_error() {
    let config = TestConfig::default();
    let _held = TcpListener::bind(("127.0.0.1", config.sip_port)).unwrap();
    let dir = write_config("first-run-tcp", &config);
    let out = run_expecting_exit(&dir);
    assert_one_clear_error(
        &out,
        &format!("cannot listen for SIP on tcp 127.0.0.1:{}", config.sip_port),
        "sip.tcp",
    );
}

#[test]
fn an_http_port_in_use_is_one_clear_error() {
    let config = TestConfig::default();
    let _held = TcpListener::bind(("127.0.0.1", config.http_port)).unwrap();
    let dir = write_config("first-run-http", &config);
    let out = run_expecting_exit(&dir);
    assert_one_clear_error(
        &out,
        &format!("cannot listen for HTTP on 127.0.0.1:{}", config.http_port),
        "http.listen",
    );
}

/// A configuration whose relative prompts directory is not where navbat was started is
/// refused by `check-config` and `run` alike, saying where it looked (before: "ok", then
/// every caller heard silence).
#[test]
fn a_prompts_directory_that_is_not_there_is_refused_with_where_it_was_looked_for() {
    let config = TestConfig::default();
    let dir = write_config("first-run-prompts", &config);
    let elsewhere = TestDir::new("first-run-elsewhere");
    let check = Command::new(navbat_bin())
        .arg("check-config")
        .arg("--config")
        .arg(dir.path().join("navbat.toml"))
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("media.prompts_dir"), "{stderr}");
    assert!(
        stderr.contains(&format!("directory {NO_PROMPTS_DIR} does not exist")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&elsewhere.path().display().to_string()),
        "names the working directory it was taken from: {stderr}"
    );
    // From its own directory the same file is fine.
    let ok = Command::new(navbat_bin())
        .arg("check-config")
        .arg("--config")
        .arg(dir.path().join("navbat.toml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// `navbat ha1` takes the password from standard input, never from the command line (where
/// `ps` and the shell's history would show it).
#[test]
fn ha1_reads_the_password_from_standard_input_only() {
    use std::io::Write;
    let mut child = Command::new(navbat_bin())
        .args(["ha1", "1001"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"demo1001\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        ha1("1001", REALM, "demo1001")
    );
    let refused = Command::new(navbat_bin())
        .args(["ha1", "1001", "demo1001"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a password on the command line is refused"
    );
}
