//! Harness for the integration tests: the real `navbat` binary, real SIPp peers, loopback only.
//!
//! Everything a test waits for is polled with a generous deadline (an event in `/api/events`,
//! a line in a log, a process exit); nothing here measures how long something took, because
//! the machines that run these tests are shared and noisy.
//!
//! One test gets one [`TestDir`]: the config, navbat's log, SIPp's traces and injection files
//! all live there. When a test fails the directory is kept and its path printed together with
//! the tail of navbat's log, so the SIP traces can be read afterwards.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub mod browser;
pub mod desk;
pub mod mail;
pub mod qa;
pub mod recordings;
pub mod requests;
pub mod softphone;
pub mod telegram;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use serde_json::Value;

/// How long navbat may take to print `navbat ready` (a debug build on a busy machine).
pub const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Default deadline for an event or state to show up in the HTTP API.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(20);
/// How often the API is polled while waiting.
pub const POLL_EVERY: Duration = Duration::from_millis(50);
/// SIPp's own global timeout (`-timeout`), after which it fails (`-timeout_error`).
pub const SIPP_TIMEOUT_SECS: u64 = 60;
/// How long a test waits for a SIPp process to exit: a little more than its own timeout.
pub const SIPP_DEADLINE: Duration = Duration::from_secs(SIPP_TIMEOUT_SECS + 15);
/// After SIGTERM, how long navbat gets to drain before SIGKILL.
pub const STOP_DEADLINE: Duration = Duration::from_secs(15);

/// The DID of the demo tenant "dtm".
pub const DTM_DID: &str = "712351914";
/// A number no tenant owns.
pub const UNKNOWN_DID: &str = "700000000";
/// The empty prompts directory (relative to the test directory) of a test without prompts.
pub const NO_PROMPTS_DIR: &str = "no-prompts";
/// The admin bearer token written into every test config.
pub const ADMIN_TOKEN: &str = "test-token";
/// The digest realm written into every test config.
pub const REALM: &str = "navbat";

// ---------------------------------------------------------------------------------------------
// Paths and tools

/// The navbat binary Cargo built for this test run.
pub fn navbat_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_navbat"))
}

/// `tests/sipp/<name>`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The SIPp binary (`NAVBAT_SIPP` overrides the `sipp` on PATH). Panics with the fix when it is
/// missing: a skipped integration test would hide a broken call path.
pub fn sipp_bin() -> PathBuf {
    let bin = std::env::var_os("NAVBAT_SIPP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("sipp"));
    let found = Command::new(&bin)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "SIPp not found ({}); install Debian package `sip-tester` (tests/run-all.sh does) \
         or set NAVBAT_SIPP to the sipp binary",
        bin.display()
    );
    bin
}

// ---------------------------------------------------------------------------------------------
// Time

/// Polls `probe` every [`POLL_EVERY`] until it returns `Some`, or panics after `deadline`
/// saying what was awaited.
pub fn wait_until<T>(what: &str, deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + deadline;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        if Instant::now() >= until {
            panic!("gave up after {deadline:?} waiting for {what}");
        }
        thread::sleep(POLL_EVERY);
    }
}

// ---------------------------------------------------------------------------------------------
// Ports

/// Ports handed out by this process, so that two tests in one binary never get the same one
/// between "found free" and "bound by the child".
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

fn claim(port: u16) -> bool {
    handed_out().lock().unwrap().insert(port)
}

/// Claims `port` across every test process on the machine, for ports drawn from a fixed range
/// (SIPp's media and control sockets): nextest runs each test in its own process, and two of
/// them once drew the same control port between check and bind ("Unable to bind remote control
/// socket ... Address already in use"). The claim is a file named after the port holding the
/// claimer's pid, made with `create_new`; a file whose process has ended is taken over.
fn claim_across_processes(port: u16) -> bool {
    let dir = std::env::temp_dir().join(format!("navbat-test-ports-{}", users_uid()));
    if fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let path = dir.join(port.to_string());
    let mine = std::process::id().to_string();
    for _ in 0..2 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => return file.write_all(mine.as_bytes()).is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                let alive = holder.is_empty()
                    || holder == mine
                    || Path::new("/proc").join(holder.trim()).exists();
                if alive {
                    return false;
                }
                let _ = fs::remove_file(&path);
            }
            Err(_) => return false,
        }
    }
    false
}

/// The user's id, so that two users' suites on one machine keep separate claim directories.
fn users_uid() -> String {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "0".to_owned())
}

fn udp_free(ip: &str, port: u16) -> bool {
    UdpSocket::bind((ip, port)).is_ok()
}

fn tcp_free(ip: &str, port: u16) -> bool {
    TcpListener::bind((ip, port)).is_ok()
}

/// A loopback port free on both UDP and TCP (SIP listens on both).
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("bind an ephemeral UDP port")
            .port();
        if tcp_free("127.0.0.1", port) && claim(port) {
            return port;
        }
    }
    panic!("no loopback port free on both UDP and TCP after 200 tries");
}

/// A loopback port `p` free on UDP and TCP with `p + 1` free on TCP too: baresip listens for
/// SIP on `p` (UDP and TCP) and always adds a TLS listener on `p + 1`.
pub fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let port = free_port();
        let Some(next) = port.checked_add(1) else {
            continue;
        };
        if tcp_free("127.0.0.1", next) && udp_free("127.0.0.1", next) && claim(next) {
            return port;
        }
    }
    panic!("no pair of adjacent loopback ports free after 200 tries");
}

/// A loopback UDP port `p` with `p + 2` free too (SIPp binds its audio and video echo ports
/// there) and `0.0.0.0:p+4` for SIPp's control socket. Drawn at random from 10000..19990,
/// below the demo's RTP ports and far from the kernel's ephemeral range (32768 and up), where
/// any process's socket may take a port between our check and SIPp's bind (that race once
/// failed a run with "Unable to bind remote control socket").
pub fn free_sipp_aux_ports() -> (u16, u16) {
    for _ in 0..200 {
        let p = 10_000 + (rand::random::<u16>() % 4_995) * 2;
        let ctl = p + 4;
        // A slot is p, p + 2 and p + 4; slots overlap (one's p + 4 is the next's p), so each
        // port is claimed on its own, across processes, before any is checked.
        if claim(p)
            && claim_across_processes(p)
            && claim_across_processes(p + 2)
            && claim_across_processes(ctl)
            && udp_free("127.0.0.1", p)
            && udp_free("127.0.0.1", p + 2)
            && udp_free("0.0.0.0", ctl)
        {
            claim(p + 2);
            claim(ctl);
            return (p, ctl);
        }
    }
    panic!("no free UDP ports for SIPp's media and control sockets after 200 tries");
}

/// A block of RTP ports for one navbat instance, outside Linux's ephemeral range (32768+) so
/// that it does not collide with the ports the kernel hands out to everything else.
fn rtp_block() -> (u16, u16) {
    // 45 blocks of 200 ports in 21000..30000: above the demo's 20000-20999 (so the suite
    // runs beside `cargo run`), below the softphones' 30000..32699 and the kernel's ephemeral
    // range (32768 and up, where free_port() finds SIP and HTTP ports).
    port_block(21_000, 45, 200)
}

/// The next of `blocks` blocks of `size` ports from `first`, spread by pid so that test
/// binaries running side by side start in different places.
pub fn port_block(first: u16, blocks: u32, size: u16) -> (u16, u16) {
    static NEXT: Mutex<u32> = Mutex::new(0);
    let mut next = NEXT.lock().unwrap();
    *next += 1;
    let block = (std::process::id() + *next * 7) % blocks;
    let min = first + block as u16 * size;
    (min, min + size - 1)
}

// ---------------------------------------------------------------------------------------------
// Digest (RFC 2617 with qop=auth, as navbat's registrar uses)

/// Lower-case hex MD5.
pub fn md5_hex(input: &str) -> String {
    hex::encode(Md5::digest(input.as_bytes()))
}

/// HA1 = MD5(user:realm:password), what the config stores instead of the password.
pub fn ha1(user: &str, realm: &str, password: &str) -> String {
    md5_hex(&format!("{user}:{realm}:{password}"))
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// An operator in the test config.
#[derive(Clone, Debug)]
pub struct OperatorSpec {
    pub ext: String,
    pub password: String,
    pub reserve: bool,
    /// May monitor calls by feature code (`supervisor = true`).
    pub supervisor: bool,
    /// Also has a SHA-256 HA1 (`ha1_sha256`), so navbat offers SHA-256 digest (RFC 7616).
    pub sha256: bool,
}

impl OperatorSpec {
    /// A regular operator whose password is `demo<ext>`, speaking Uzbek and Russian.
    pub fn regular(ext: &str) -> Self {
        OperatorSpec {
            ext: ext.to_string(),
            password: format!("demo{ext}"),
            reserve: false,
            supervisor: false,
            sha256: false,
        }
    }

    /// This operator also has a SHA-256 HA1 (RFC 7616).
    pub fn with_sha256(self) -> Self {
        OperatorSpec {
            sha256: true,
            ..self
        }
    }

    /// This operator may also monitor calls by feature code (D17).
    pub fn supervising(self) -> Self {
        OperatorSpec {
            supervisor: true,
            ..self
        }
    }

    /// A reserve staff member (D11) whose password is `demo<ext>`.
    pub fn reserve(ext: &str) -> Self {
        OperatorSpec {
            reserve: true,
            ..Self::regular(ext)
        }
    }
}

/// The one place that knows navbat's config format. Tests set what they care about; the rest
/// is the demo tenant "dtm" with its two queues on loopback ports.
#[derive(Clone, Debug)]
pub struct TestConfig {
    pub sip_port: u16,
    pub http_port: u16,
    pub rtp_ports: (u16, u16),
    pub channels: u32,
    pub retry_after_secs: u32,
    pub ring_timeout_secs: u32,
    pub reserve_after_secs: u32,
    pub wrap_up_secs: u32,
    pub max_wait_secs: u32,
    pub max_missed_offers: u32,
    pub drain_secs: u32,
    pub operators: Vec<OperatorSpec>,
    /// TOML appended as is (e.g. `[node]`, `[database]`, `[presence]` sections).
    pub extra_toml: String,
    /// `media.prompts_dir`; `None`: an empty `no-prompts` directory in the test directory
    /// (no prompts: calls are answered without waiting for a greeting).
    pub prompts_dir: Option<PathBuf>,
    /// Extra TOML inside the dtm tenant (e.g. `[tenant.surge]`), written after its IVR.
    pub tenant_extra: String,
    /// Extra keys of the dtm tenant's own table (e.g. `trunk_sources = [...]`).
    pub tenant_keys: String,
    /// Extra keys of the `[media]` section (e.g. `announce_every_secs = 1`).
    pub media_extra: String,
    /// Extra keys at the end of the dtm tenant's `[tenant.ivr]` section.
    pub ivr_extra: String,
    /// The dtm tenant's `timezone` and `hours` values as TOML (default `"Asia/Tashkent"`
    /// and `"24/7"`).
    pub schedule: (String, String),
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            sip_port: free_port(),
            http_port: free_port(),
            rtp_ports: rtp_block(),
            channels: 300,
            retry_after_secs: 30,
            ring_timeout_secs: 3,
            reserve_after_secs: 2,
            wrap_up_secs: 1,
            max_wait_secs: 60,
            max_missed_offers: 3,
            drain_secs: 5,
            operators: vec![
                OperatorSpec::regular("1001"),
                OperatorSpec::regular("1002"),
                OperatorSpec::reserve("1901"),
            ],
            extra_toml: String::new(),
            prompts_dir: None,
            tenant_extra: String::new(),
            tenant_keys: String::new(),
            media_extra: String::new(),
            ivr_extra: String::new(),
            schedule: ("\"Asia/Tashkent\"".into(), "\"24/7\"".into()),
        }
    }
}

impl TestConfig {
    pub fn channels(mut self, channels: u32) -> Self {
        self.channels = channels;
        self
    }

    pub fn ring_timeout_secs(mut self, secs: u32) -> Self {
        self.ring_timeout_secs = secs;
        self
    }

    pub fn reserve_after_secs(mut self, secs: u32) -> Self {
        self.reserve_after_secs = secs;
        self
    }

    pub fn max_wait_secs(mut self, secs: u32) -> Self {
        self.max_wait_secs = secs;
        self
    }

    pub fn operators(mut self, operators: Vec<OperatorSpec>) -> Self {
        self.operators = operators;
        self
    }

    /// The key file at `path` for every run of this configuration: runs that share a
    /// database share the keys of its callers' personal data (README, "Callers' personal data
    /// at rest"), so a restart in another directory or a second node must use the same file.
    pub fn key_file(self, path: &Path) -> Self {
        self.extra_toml(&format!(
            "\n[recordings]\nkey_file = {:?}\n",
            path.display().to_string()
        ))
    }

    /// Appends TOML sections to the rendered configuration.
    pub fn extra_toml(mut self, toml: &str) -> Self {
        self.extra_toml.push_str(toml);
        self
    }

    /// Extra keys for the dtm tenant's own table, one `key = value` a line.
    pub fn tenant_keys(mut self, toml: &str) -> Self {
        self.tenant_keys.push_str(toml);
        self.tenant_keys.push('\n');
        self
    }

    /// Extra TOML for the dtm tenant, such as a `[tenant.surge]` section.
    pub fn tenant_extra(mut self, toml: &str) -> Self {
        self.tenant_extra = toml.to_string();
        self
    }

    /// Extra keys for the `[media]` section, one `key = value` a line.
    pub fn media_extra(mut self, toml: &str) -> Self {
        self.media_extra.push_str(toml);
        self.media_extra.push('\n');
        self
    }

    /// Extra keys for the dtm tenant's `[tenant.ivr]` section, one `key = value` a line
    /// (e.g. `greeting_barge_in = false`).
    pub fn ivr_extra(mut self, toml: &str) -> Self {
        self.ivr_extra.push_str(toml);
        self.ivr_extra.push('\n');
        self
    }

    /// The dtm tenant's time zone and opening hours, as TOML values (e.g. `"+05:00"` and
    /// `[{ days = ["mon"], open = "08:00", close = "20:00" }]`).
    pub fn schedule(mut self, timezone: &str, hours: &str) -> Self {
        self.schedule = (timezone.to_string(), hours.to_string());
        self
    }

    pub fn prompts_dir(mut self, dir: &Path) -> Self {
        self.prompts_dir = Some(dir.to_path_buf());
        self
    }

    /// The password of a configured operator.
    pub fn password_of(&self, ext: &str) -> &str {
        &self
            .operators
            .iter()
            .find(|o| o.ext == ext)
            .unwrap_or_else(|| panic!("operator {ext} is not in the test config"))
            .password
    }

    /// The TOML navbat reads.
    pub fn render(&self) -> String {
        let mut toml = String::new();
        let queue = |id: &str, language: &str| {
            format!(
                r#"
[[queue]]
id = "{id}"
tenant = "dtm"
language = "{language}"
topics = []
strategy = "longest-idle"
max_wait_secs = {max_wait}
ring_timeout_secs = {ring}
wrap_up_secs = {wrap}
max_missed_offers = {missed}
reserve_after_secs = {reserve_after}
"#,
                max_wait = self.max_wait_secs,
                ring = self.ring_timeout_secs,
                wrap = self.wrap_up_secs,
                missed = self.max_missed_offers,
                reserve_after = self.reserve_after_secs,
            )
        };
        write!(
            toml,
            r#"# Written by tests/common/mod.rs for one test run.
[sip]
udp = "127.0.0.1:{sip}"
tcp = "127.0.0.1:{sip}"
realm = "{REALM}"
nonce_ttl_secs = 300

[media]
rtp_ip = "127.0.0.1"
rtp_port_min = {rtp_min}
rtp_port_max = {rtp_max}
{prompts}
{media_extra}

[http]
listen = "127.0.0.1:{http}"
admin_token = "{ADMIN_TOKEN}"

[limits]
channels = {channels}
retry_after_secs = {retry_after}

[shutdown]
drain_secs = {drain}

[operators_defaults]
available_on_register = true

[[tenant]]
id = "dtm"
name = {{ uz = "Davlat test markazi", ru = "Государственный центр тестирования" }}
dids = ["{DTM_DID}"]
timezone = {timezone}
hours = {hours}
holidays = []
service_level_secs = 20
{tenant_keys}
[tenant.ivr]
digit_timeout_secs = 6
max_retries = 2
on_no_input = "default"
default_language = "uz"
languages = [ {{ digit = "1", language = "uz", queue = "dtm-uz" }}, {{ digit = "2", language = "ru", queue = "dtm-ru" }} ]
topics = [ {{ digit = "1", topic = "registration", label = {{ uz = "Ro'yxatdan o'tish", ru = "Регистрация" }} }}, {{ digit = "2", topic = "results", label = {{ uz = "Natijalar", ru = "Результаты" }} }}, {{ digit = "0", topic = "other", label = {{ uz = "Boshqa", ru = "Другое" }} }} ]
default_topic = "other"
{ivr_extra}"#,
            sip = self.sip_port,
            http = self.http_port,
            rtp_min = self.rtp_ports.0,
            rtp_max = self.rtp_ports.1,
            prompts = match &self.prompts_dir {
                Some(dir) => format!("prompts_dir = {:?}", dir.display().to_string()),
                None => format!("prompts_dir = {NO_PROMPTS_DIR:?}"),
            },
            media_extra = self.media_extra,
            ivr_extra = self.ivr_extra,
            tenant_keys = self.tenant_keys,
            timezone = self.schedule.0,
            hours = self.schedule.1,
            channels = self.channels,
            retry_after = self.retry_after_secs,
            drain = self.drain_secs,
        )
        .unwrap();
        toml.push_str(&self.tenant_extra);
        toml.push('\n');
        toml.push_str(&queue("dtm-uz", "uz"));
        toml.push_str(&queue("dtm-ru", "ru"));
        for op in &self.operators {
            write!(
                toml,
                r#"
[[operator]]
ext = "{ext}"
name = "Operator {ext}"
ha1 = "{ha1}"
languages = ["uz", "ru"]
topics = []
reserve = {reserve}
supervisor = {supervisor}
{sha256}"#,
                ext = op.ext,
                ha1 = ha1(&op.ext, REALM, &op.password),
                sha256 = if op.sha256 {
                    use sha2::Digest as _;
                    let input = format!("{}:{REALM}:{}", op.ext, op.password);
                    format!(
                        "ha1_sha256 = \"{}\"\n",
                        hex::encode(sha2::Sha256::digest(input.as_bytes()))
                    )
                } else {
                    String::new()
                },
                reserve = op.reserve,
                supervisor = op.supervisor,
            )
            .unwrap();
        }
        toml.push_str(&self.extra_toml);
        toml
    }
}

// ---------------------------------------------------------------------------------------------
// Test directory

/// A temporary directory for one test, kept (and announced) if the test fails.
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestDir {
    pub fn new(test: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("navbat-{test}-"))
            .tempdir()
            .expect("create a temp dir");
        let path = dir.path().to_path_buf();
        TestDir {
            dir: Some(dir),
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("test files kept in {}", kept.display());
            }
        }
    }
}

/// The shared (not tenant-specific) prompts, copied into the test directory: the generic
/// greeting is shorter than the DTM one, which keeps the tests quick.
pub fn shared_prompts(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prompts");
    let dst = dir.join("prompts");
    for lang in ["uz", "ru"] {
        std::fs::create_dir_all(dst.join(lang)).unwrap();
        for entry in std::fs::read_dir(src.join(lang)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dst.join(lang).join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(src.join("hold-music.wav"), dst.join("hold-music.wav")).unwrap();
    dst
}

/// The last `lines` lines of a text file, for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

// ---------------------------------------------------------------------------------------------
// navbat

/// Waits until navbat prints `navbat ready`; panics with its log if it exits first (unless
/// a port it was given was taken) or is not ready in time.
fn wait_ready(child: &mut Child, log: &Path) -> Ready {
    let until = Instant::now() + READY_DEADLINE;
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains("navbat ready") {
            return Ready::Yes;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = fs::read_to_string(log).unwrap_or_default();
            let port_taken = text.lines().any(|l| {
                l.starts_with("navbat: cannot listen for") && l.contains("Address already in use")
            });
            if port_taken {
                return Ready::PortTaken;
            }
            panic!(
                "navbat exited ({status}) before printing `navbat ready`; its log:\n{}",
                tail(log, 60)
            );
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "navbat did not print `navbat ready` within {READY_DEADLINE:?}; its log:\n{}",
                tail(log, 60)
            );
        }
        thread::sleep(POLL_EVERY);
    }
}

/// How a start of navbat ended.
enum Ready {
    /// It printed `navbat ready`.
    Yes,
    /// It exited because a port it was given had been taken meanwhile.
    PortTaken,
}

/// A running `navbat run --config FILE`, stopped with SIGTERM (then SIGKILL) when dropped.
pub struct Navbat {
    child: Child,
    pub config: TestConfig,
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub log: PathBuf,
    /// Dropped last: the directory outlives the process writing into it.
    pub dir: TestDir,
}

impl Navbat {
    /// Writes `config` into a fresh test directory, starts navbat on it and waits until it
    /// prints `navbat ready`. Panics with its log if it exits first or is not ready in time.
    pub fn start(test: &str, mut config: TestConfig) -> Navbat {
        let dir = TestDir::new(test);
        // A port found free can be taken by another process (outgoing connections get ports
        // from the same range) before navbat binds it: navbat then says so and exits, and it
        // is started again on other ports.
        let mut attempt = 1;
        loop {
            let (mut child, log) = Navbat::spawn(&dir, &config);
            match wait_ready(&mut child, &log) {
                Ready::Yes => {
                    return Navbat {
                        child,
                        sip: SocketAddr::from(([127, 0, 0, 1], config.sip_port)),
                        http: SocketAddr::from(([127, 0, 0, 1], config.http_port)),
                        config,
                        log,
                        dir,
                    }
                }
                Ready::PortTaken if attempt < 3 => {
                    eprintln!("a port was taken before navbat bound it; starting it on others");
                    attempt += 1;
                    config.sip_port = free_port();
                    config.http_port = free_port();
                }
                Ready::PortTaken => panic!(
                    "navbat could not bind its ports in {attempt} attempts; its log:\n{}",
                    tail(&log, 60)
                ),
            }
        }
    }

    /// Writes `config` into `dir` and starts navbat on it; returns the child and its log.
    fn spawn(dir: &TestDir, config: &TestConfig) -> (Child, PathBuf) {
        let config_path = dir.path().join("navbat.toml");
        fs::write(&config_path, config.render()).expect("write the test config");
        fs::create_dir_all(dir.path().join(NO_PROMPTS_DIR)).expect("create the empty prompts dir");
        let log = dir.path().join("navbat.log");
        let log_file = File::create(&log).expect("create navbat.log");
        let child = Command::new(navbat_bin())
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,navbat=debug".into()),
            )
            // Plain text: the log is read by people and by `wait_ready`.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", navbat_bin().display()));
        (child, log)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill9(&mut self) {
        signal(self.child.id(), "KILL");
        self.wait_exit(Duration::from_secs(10))
            .expect("navbat did not die of SIGKILL");
    }

    /// Sends SIGTERM (graceful shutdown) without waiting.
    pub fn terminate(&self) {
        signal(self.child.id(), "TERM");
    }

    /// Waits for navbat to exit on its own, up to `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + deadline;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < until => thread::sleep(POLL_EVERY),
                _ => return None,
            }
        }
    }

    /// Panics unless the process is still running (used after torture input).
    pub fn assert_alive(&mut self, context: &str) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "navbat died ({status}) {context}; its log:\n{}",
                tail(&self.log, 80)
            );
        }
    }

    // --- HTTP API -------------------------------------------------------------------------

    pub fn get(&self, path: &str) -> HttpResponse {
        http_request(self.http, "GET", path, Some(ADMIN_TOKEN), None)
    }

    /// A counter or gauge of `/metrics`, by its full name with labels (0 when absent).
    pub fn metric(&self, series: &str) -> u64 {
        self.get("/metrics")
            .body
            .lines()
            .find_map(|line| {
                let value = line.strip_prefix(series)?.trim();
                value.parse::<f64>().ok()
            })
            .map_or(0, |v| v as u64)
    }

    pub fn get_json(&self, path: &str) -> Value {
        let resp = self.get(path);
        assert_eq!(resp.status, 200, "GET {path}: {resp:?}");
        resp.json()
    }

    pub fn post_json(&self, path: &str, body: &Value) -> HttpResponse {
        http_request(self.http, "POST", path, Some(ADMIN_TOKEN), Some(body))
    }

    /// `GET /api/events`: every event navbat keeps in memory.
    pub fn events(&self) -> Vec<Value> {
        match self.get_json("/api/events") {
            Value::Array(events) => events,
            other => panic!("/api/events is not a JSON array: {other}"),
        }
    }

    /// Polls `/api/events` until an event of `kind` matching `pred` exists, and returns it.
    pub fn wait_for_event(
        &self,
        kind: &str,
        deadline: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let until = Instant::now() + deadline;
        loop {
            let events = self.events();
            if let Some(found) = events.iter().find(|e| e["kind"] == kind && pred(e)) {
                return found.clone();
            }
            if Instant::now() >= until {
                panic!(
                    "no `{kind}` event matching the test's predicate within {deadline:?}; \
                     events so far:\n{}\nnavbat log:\n{}",
                    serde_json::to_string_pretty(&events).unwrap_or_default(),
                    tail(&self.log, 60)
                );
            }
            thread::sleep(POLL_EVERY);
        }
    }

    /// `GET /api/operators`, the entry of one extension.
    pub fn operator(&self, ext: &str) -> Option<Value> {
        match self.get_json("/api/operators") {
            Value::Array(ops) => ops.into_iter().find(|o| o["ext"] == ext),
            other => panic!("/api/operators is not a JSON array: {other}"),
        }
    }

    /// Polls `/api/operators` until `ext` is registered and in `state`.
    pub fn wait_operator(&self, ext: &str, state: &str) -> Value {
        wait_until(
            &format!("operator {ext} registered and {state} in /api/operators"),
            EVENT_DEADLINE,
            || {
                self.operator(ext)
                    .filter(|o| o["registered"] == true && o["state"] == state)
            },
        )
    }

    /// `GET /api/queues`, the entry of one queue.
    pub fn queue(&self, id: &str) -> Option<Value> {
        match self.get_json("/api/queues") {
            Value::Array(queues) => queues.into_iter().find(|q| q["id"] == id),
            other => panic!("/api/queues is not a JSON array: {other}"),
        }
    }

    // --- SIPp -----------------------------------------------------------------------------

    /// Starts a SIPp client scenario against navbat's SIP port.
    pub fn sipp_client(&self, name: &str, scenario_file: &str, args: &[&str]) -> Sipp {
        Sipp::start(
            self.dir.path(),
            name,
            scenario_file,
            args,
            Some(self.sip),
            free_port(),
        )
    }

    /// A caller dialling `did`, with `-d pause_ms` for the scenario's `<pause/>`.
    pub fn caller(&self, name: &str, scenario_file: &str, did: &str, pause_ms: u64) -> Sipp {
        let pause = pause_ms.to_string();
        self.sipp_client(name, scenario_file, &["-s", did, "-d", &pause, "-m", "1"])
    }

    /// An operator's softphone: a SIPp server running `answer_scenario` for `calls` calls, and
    /// a registration of `ext` pointing at it. Returns once navbat accepted the REGISTER.
    pub fn operator_phone(
        &self,
        ext: &str,
        answer_scenario: &str,
        calls: u32,
        extra: &[&str],
    ) -> Sipp {
        let port = free_port();
        let calls = calls.to_string();
        let mut args = vec!["-m", calls.as_str()];
        args.extend_from_slice(extra);
        let phone = Sipp::start(
            self.dir.path(),
            &format!("op{ext}-phone"),
            answer_scenario,
            &args,
            None,
            port,
        );
        self.register(ext, self.config.password_of(ext), port)
            .wait_success();
        phone
    }

    /// Runs operator_register.xml for `ext`, with a Contact at `contact_port`.
    pub fn register(&self, ext: &str, password: &str, contact_port: u16) -> Sipp {
        let csv = self.dir.path().join(format!("op{ext}.csv"));
        fs::write(&csv, format!("SEQUENTIAL\n{ext};{contact_port}\n")).expect("write csv");
        let csv = csv.to_string_lossy().into_owned();
        self.sipp_client(
            &format!("op{ext}-register"),
            "operator_register.xml",
            &["-inf", &csv, "-au", ext, "-ap", password, "-m", "1"],
        )
    }
}

impl Drop for Navbat {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
            if self.wait_exit(STOP_DEADLINE).is_none() {
                eprintln!("navbat ignored SIGTERM for {STOP_DEADLINE:?}; killing it");
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if thread::panicking() {
            eprintln!(
                "---- navbat log ({}), last 40 lines ----\n{}\n---- end of navbat log ----",
                self.log.display(),
                tail(&self.log, 40)
            );
        }
    }
}

/// Sends a signal to one of our own children by pid (no libc dependency needed for this).
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// SIPp

/// One SIPp process, killed when dropped. Its traces live in the test directory as
/// `<name>.messages.log`, `<name>.errors.log` and `<name>.out`.
pub struct Sipp {
    child: Child,
    pub name: String,
    pub port: u16,
    dir: PathBuf,
    status: Option<ExitStatus>,
}

impl Sipp {
    /// Starts `sipp` with the harness's fixed options: loopback, one local port, bounded by
    /// `-timeout` with `-timeout_error`, traces into `dir`. `remote` is the peer for client
    /// scenarios; server scenarios pass `None`. The caller's `args` must include `-m`.
    pub fn start(
        dir: &Path,
        name: &str,
        scenario_file: &str,
        args: &[&str],
        remote: Option<SocketAddr>,
        port: u16,
    ) -> Sipp {
        assert!(
            args.contains(&"-m"),
            "every SIPp run must be bounded with -m"
        );
        let (media_port, control_port) = free_sipp_aux_ports();
        let out = File::create(dir.join(format!("{name}.out"))).expect("create sipp .out");
        let mut cmd = Command::new(sipp_bin());
        cmd.current_dir(dir)
            .arg("-sf")
            .arg(scenario(scenario_file))
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media_port.to_string()])
            .args(["-cp", &control_port.to_string()])
            .args([
                "-timeout",
                &format!("{SIPP_TIMEOUT_SECS}s"),
                "-timeout_error",
            ])
            .args(["-nostdin", "-trace_err", "-trace_msg"])
            .arg("-message_file")
            .arg(dir.join(format!("{name}.messages.log")))
            .arg("-error_file")
            .arg(dir.join(format!("{name}.errors.log")))
            .args(args);
        if let Some(remote) = remote {
            cmd.arg(remote.to_string());
        }
        fs::write(dir.join(format!("{name}.cmd")), format!("{cmd:?}\n")).ok();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("clone sipp .out"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn sipp for {name}: {e}"));
        Sipp {
            child,
            name: name.to_string(),
            port,
            dir: dir.to_path_buf(),
            status: None,
        }
    }

    /// Waits for SIPp to exit (it always does: `-m` and `-timeout` bound it).
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let until = Instant::now() + SIPP_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
                return status;
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                let status = self.child.wait().expect("reap sipp");
                self.status = Some(status);
                return status;
            }
            thread::sleep(POLL_EVERY);
        }
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.status.is_none() && matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for SIPp and panics with its traces unless every call succeeded (exit 0).
    pub fn wait_success(mut self) {
        let status = self.wait();
        if !status.success() {
            panic!(
                "SIPp `{}` failed ({status}); SIPp exits 0 only if every call passed.\n{}",
                self.name,
                self.report()
            );
        }
    }

    /// The SIPp error log and the end of its message trace.
    pub fn report(&self) -> String {
        let errors = self.dir.join(format!("{}.errors.log", self.name));
        let messages = self.dir.join(format!("{}.messages.log", self.name));
        let out = self.dir.join(format!("{}.out", self.name));
        format!(
            "---- {} ----\n{}\n---- {} (last 80 lines) ----\n{}\n---- {} (last 15 lines) ----\n{}",
            errors.display(),
            tail(&errors, 40),
            messages.display(),
            tail(&messages, 80),
            out.display(),
            tail(&out, 15)
        )
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client (no extra crate needed)

/// Status, headers and body of one HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection (`Connection: close`), 10 s I/O timeouts.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    json: Option<&Value>,
) -> HttpResponse {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Accept", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let body = json.map(|v| v.to_string());
    http_raw(
        addr,
        method,
        path,
        &headers,
        body.as_deref().map(|b| ("application/json", b)),
    )
}

/// One request with any headers and an optional `(content type, body)`, on a fresh
/// connection (`Connection: close`), 10 s I/O timeouts.
pub fn http_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> HttpResponse {
    http_raw_bytes(
        addr,
        method,
        path,
        headers,
        body.map(|(t, b)| (t, b.as_bytes())),
    )
}

/// [`http_raw`] with a body of any bytes (a file upload).
pub fn http_raw_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> HttpResponse {
    let io = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, io)
        .unwrap_or_else(|e| panic!("connect to navbat's HTTP API at {addr}: {e}"));
    stream.set_read_timeout(Some(io)).unwrap();
    stream.set_write_timeout(Some(io)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        write!(req, "{k}: {v}\r\n").unwrap();
    }
    match body {
        Some((ctype, bytes)) => write!(
            req,
            "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
            bytes.len()
        )
        .unwrap(),
        None if method != "GET" => req.push_str("Content-Length: 0\r\n\r\n"),
        None => req.push_str("\r\n"),
    }
    let mut raw_req = req.into_bytes();
    if let Some((_, bytes)) = body {
        raw_req.extend_from_slice(bytes);
    }
    stream
        .write_all(&raw_req)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: reading the response: {e}"));
    let _ = stream.shutdown(Shutdown::Both);
    parse_http_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: malformed HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn parse_http_response(raw: &[u8]) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Raw SIP over UDP and TCP, for what SIPp cannot express (torture input, challenge shape)

/// A parsed SIP response, as far as the tests need it.
#[derive(Clone, Debug)]
pub struct SipResponse {
    pub status: u16,
    pub raw: String,
}

impl SipResponse {
    /// Parses the start line; `None` if this is not a SIP response.
    pub fn parse(bytes: &[u8]) -> Option<SipResponse> {
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let first = raw.lines().next()?;
        let mut parts = first.split_whitespace();
        if parts.next()? != "SIP/2.0" {
            return None;
        }
        let status = parts.next()?.parse().ok()?;
        Some(SipResponse { status, raw })
    }

    /// The first value of header `name` (long or compact form, case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    /// Every value of header `name`.
    pub fn headers(&self, name: &str) -> Vec<String> {
        let compact = compact_form(name);
        let head = self.raw.split("\r\n\r\n").next().unwrap_or("");
        let mut unfolded: Vec<String> = Vec::new();
        for line in head.split("\r\n").skip(1) {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = unfolded.last_mut() {
                    last.push(' ');
                    last.push_str(line.trim());
                }
            } else {
                unfolded.push(line.to_string());
            }
        }
        unfolded
            .iter()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| {
                let k = k.trim();
                k.eq_ignore_ascii_case(name) || compact.is_some_and(|c| k.eq_ignore_ascii_case(c))
            })
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

fn compact_form(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "call-id" => "i",
        "contact" => "m",
        "content-length" => "l",
        "content-type" => "c",
        "from" => "f",
        "to" => "t",
        "via" => "v",
        "subject" => "s",
        "supported" => "k",
        "content-encoding" => "e",
        _ => return None,
    })
}

/// Parameters of a `Digest` challenge or credentials, lower-cased names, unquoted values.
pub fn digest_params(header: &str) -> Vec<(String, String)> {
    let rest = header
        .trim()
        .strip_prefix("Digest")
        .or_else(|| header.trim().strip_prefix("digest"))
        .unwrap_or(header);
    let mut params = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for ch in rest.chars().chain(std::iter::once(',')) {
        match ch {
            '"' => {
                quoted = !quoted;
                current.push(ch);
            }
            ',' if !quoted => {
                if let Some((k, v)) = current.split_once('=') {
                    params.push((
                        k.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_string(),
                    ));
                }
                current.clear();
            }
            _ => current.push(ch),
        }
    }
    params
}

/// Looks up one digest parameter.
pub fn digest_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A UDP socket on loopback that sends raw SIP to navbat and collects responses.
pub struct SipUdp {
    pub sock: UdpSocket,
    pub target: SocketAddr,
}

impl SipUdp {
    pub fn new(target: SocketAddr) -> Self {
        SipUdp::from_ip("127.0.0.1", target)
    }

    /// A socket on another loopback address (`127.0.0.2`: another source to navbat).
    pub fn from_ip(ip: &str, target: SocketAddr) -> Self {
        let sock = UdpSocket::bind((ip, 0)).expect("bind UDP");
        SipUdp { sock, target }
    }

    pub fn local(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.target).expect("send UDP");
    }

    /// The first final (>= 200) response whose Call-ID is `call_id`, skipping provisional
    /// responses and anything else, or `None` after `deadline`.
    pub fn final_response(&self, call_id: &str, deadline: Duration) -> Option<SipResponse> {
        let until = Instant::now() + deadline;
        let mut buf = vec![0u8; 65_535];
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Some(resp) = SipResponse::parse(&buf[..n]) {
                        if resp.status >= 200 && resp.header("Call-ID").as_deref() == Some(call_id)
                        {
                            return Some(resp);
                        }
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                // ICMP port unreachable from an earlier send shows up here on Linux.
                Err(_) => continue,
            }
        }
    }

    /// The first final response of any Call-ID, or `None` after `deadline` (a fresh socket
    /// per probe makes "any" mean "an answer to what this socket sent").
    pub fn any_final_response(&self, deadline: Duration) -> Option<SipResponse> {
        let until = Instant::now() + deadline;
        let mut buf = vec![0u8; 65_535];
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => match SipResponse::parse(&buf[..n]) {
                    Some(resp) if resp.status >= 200 => return Some(resp),
                    _ => continue,
                },
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                Err(_) => continue,
            }
        }
    }

    /// A request from this socket: `method` to `uri`, with the given extra header lines
    /// (each ending in CRLF). Returns the message and its Call-ID.
    pub fn request(&self, method: &str, uri: &str, extra: &str, call_id: &str) -> Vec<u8> {
        let local = self.local();
        format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};rport;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:probe@{local}>;tag=t{branch}\r\n\
             To: <{uri}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\n\
             {extra}Content-Length: 0\r\n\r\n",
            branch = unique_token(),
        )
        .into_bytes()
    }

    /// A REGISTER for `user` from this socket (its Contact), optionally with an
    /// `Authorization` header.
    pub fn register(&self, user: &str, call_id: &str, cseq: u32, authz: Option<&str>) -> Vec<u8> {
        let local = self.local();
        let registrar = self.target;
        let authz = authz
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:{registrar} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};rport;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{registrar}>;tag=reg{call_id}\r\n\
             To: <sip:{user}@{registrar}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{local}>\r\n\
             Expires: 60\r\n\
             {authz}Content-Length: 0\r\n\r\n",
            branch = unique_token(),
        )
        .into_bytes()
    }

    /// Sends OPTIONS and returns its final response (or `None` after `deadline`).
    pub fn options(&self, deadline: Duration) -> Option<SipResponse> {
        let call_id = format!("options-{}", unique_token());
        let uri = format!("sip:{}", self.target);
        self.send(&self.request("OPTIONS", &uri, "Accept: application/sdp\r\n", &call_id));
        self.final_response(&call_id, deadline)
    }
}

/// A token unique within this process run (branches, tags, Call-IDs).
pub fn unique_token() -> String {
    static NEXT: Mutex<u64> = Mutex::new(0);
    let mut next = NEXT.lock().unwrap();
    *next += 1;
    format!("{}x{}", std::process::id(), *next)
}

/// Sends `bytes` on a fresh TCP connection and returns what came back before the peer closed,
/// `deadline` passed, or a complete response arrived (status line + headers + Content-Length
/// body). Used for the torture fixtures, where responses follow the connection, not the Via.
pub fn sip_tcp_exchange(target: SocketAddr, bytes: &[u8], deadline: Duration) -> Vec<u8> {
    let mut stream = match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => panic!("connect to navbat's SIP TCP port {target}: {e}"),
    };
    let _ = stream.write_all(bytes);
    let until = Instant::now() + deadline;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if first_final_response(&got).is_some() {
                    break;
                }
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    got
}

/// The first final response in a TCP byte stream that may hold several messages.
pub fn first_final_response(stream: &[u8]) -> Option<SipResponse> {
    let mut rest = stream;
    loop {
        let split = rest.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = SipResponse::parse(&rest[..split + 4])?;
        let len: usize = head
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let end = split + 4 + len;
        if rest.len() < end {
            return None;
        }
        if head.status >= 200 {
            return SipResponse::parse(&rest[..end]);
        }
        rest = &rest[end..];
    }
}
