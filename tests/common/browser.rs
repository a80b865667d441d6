//! A small blocking W3C WebDriver client for the integration tests: Debian's headless Chromium
//! driven through `/usr/bin/chromedriver`, std only (plus `serde_json`, `tempfile`, `base64`).
//!
//! One [`Browser`] is one chromedriver process on a free loopback port, one session and one fresh
//! Chromium profile. Every method panics with a readable message on failure: these are test
//! helpers. Waiting methods poll every 100 ms and re-find their element on each poll, so pages
//! that replace nodes (stale element references) are handled. When a wait times out, the panic
//! message carries the current URL and the start of the page's text, and a screenshot is saved
//! to the artifacts directory given to [`Browser::start`], next to chromedriver's log.
//!
//! Only loopback is used: the driver is reached on 127.0.0.1 and Chromium runs with background
//! networking, component updates, sync and QUIC off.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C key under which element references travel.
/// (Not to be confused with the shadow-root key, "shadow-6066-11e4-a52e-4f735466cecf".)
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long chromedriver may take to answer `GET /status` with `ready`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How many ports to try when chromedriver fails to bind the one picked for it.
const BIND_ATTEMPTS: usize = 5;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read/write timeout of one WebDriver request: longer than the session's page-load and script
/// timeouts below, so the driver reports those itself, but a hung driver still cannot hang a test.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
const PAGE_LOAD_TIMEOUT_MS: u64 = 30_000;
const SCRIPT_TIMEOUT_MS: u64 = 30_000;
/// Default timeout of the methods that wait for an element (`find`, `text`, `click`, ...).
const FIND_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);
/// How much of the page's text a failure message shows.
const PAGE_TEXT_CHARS: usize = 2_000;

/// Makes log and screenshot names unique within this test process.
static NEXT_NAME: AtomicUsize = AtomicUsize::new(0);

fn unique_name(prefix: &str, ext: &str) -> String {
    let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}.{ext}", std::process::id())
}

/// An error answered by the driver (`value.error` and `value.message`), or a transport failure
/// (error `transport`).
#[derive(Debug)]
struct WdError {
    error: String,
    message: String,
}

impl WdError {
    fn transport(message: String) -> WdError {
        WdError {
            error: "transport".to_owned(),
            message,
        }
    }

    /// Errors a wait loop retries until its deadline: the page may still be changing. A node
    /// the page replaced between the find and the action is usually "stale element
    /// reference", but some chromedriver commands report it as an "unknown error" from the
    /// inspector ("Node with given id does not belong to the document"): the same race.
    fn is_retryable(&self) -> bool {
        matches!(
            self.error.as_str(),
            "stale element reference"
                | "no such element"
                | "element not interactable"
                | "element click intercepted"
                | "invalid element state"
        ) || (self.error == "unknown error"
            && self.message.contains("does not belong to the document"))
    }
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// The chromedriver process and the Chromium profile; dropping it kills both.
struct Processes {
    driver: Child,
    profile: tempfile::TempDir,
}

impl Drop for Processes {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // chromedriver kills its browser when the session is deleted, but not when it is killed
        // itself: kill whatever still runs with this (unique) profile.
        kill_processes_using(self.profile.path());
    }
}

/// Kills (SIGKILL) every process whose command line mentions `dir`.
fn kill_processes_using(dir: &Path) {
    let Some(dir) = dir.to_str() else { return };
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id().to_string();
    let pids: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && *pid != me)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|cmd| String::from_utf8_lossy(&cmd).contains(dir))
                .unwrap_or(false)
        })
        .collect();
    if !pids.is_empty() {
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A headless Chromium session driven through chromedriver.
pub struct Browser {
    port: u16,
    session: String,
    artifacts_dir: PathBuf,
    driver_log: PathBuf,
    // Dropped after `Drop::drop` has deleted the session.
    processes: Processes,
}

impl Browser {
    /// Logs in on the desk at `http` as `user` (a test account, password `demo-<user>`).
    pub fn log_in(&self, http: SocketAddr, user: &str) {
        let ui = Duration::from_secs(20);
        self.goto(&format!("http://{http}/login"));
        self.fill("#username", user);
        self.fill("#password", &super::desk::password(user));
        self.click("#login-submit");
        self.wait_for("#me", ui);
    }

    /// Logs out of the desk.
    pub fn log_out(&self) {
        self.click("#logout");
        self.wait_for("#login-form", Duration::from_secs(20));
    }

    /// Spawns chromedriver on a free loopback port, waits for it to be ready and opens a session
    /// with a fresh profile. chromedriver's output goes to a log file in `artifacts_dir` (created if
    /// needed), and so do the screenshots taken when a wait times out.
    pub fn start(artifacts_dir: &Path) -> Browser {
        fs::create_dir_all(artifacts_dir).unwrap_or_else(|e| {
            panic!(
                "cannot create the artifacts dir {}: {e}",
                artifacts_dir.display()
            )
        });
        let driver_log = artifacts_dir.join(unique_name("chromedriver", "log"));
        let profile = tempfile::Builder::new()
            .prefix("navbat-chromium-")
            .tempdir()
            .expect("cannot create a temporary Chromium profile dir");
        let (driver, port) = spawn_driver(&driver_log, profile.path());
        let processes = Processes { driver, profile };

        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1280,1000".to_owned(),
            format!("--user-data-dir={}", processes.profile.path().display()),
            "--lang=en".to_owned(),
            // Even with the flags above Chromium looks up clients2.google.com,
            // accounts.google.com and www.google.com: make every host but loopback "not found"
            // without asking DNS (the rules apply to IP literals too).
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.*, EXCLUDE [::1]"
                .to_owned(),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": {
                        "implicit": 0,
                        "pageLoad": PAGE_LOAD_TIMEOUT_MS,
                        "script": SCRIPT_TIMEOUT_MS,
                    },
                    "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
                }
            }
        });
        let created = request(port, "POST", "/session", Some(&capabilities), IO_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start Chromium ({e}); see {}",
                    driver_log.display()
                )
            });
        let session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session answer without a sessionId: {created}"))
            .to_owned();
        Browser {
            port,
            session,
            artifacts_dir: artifacts_dir.to_owned(),
            driver_log,
            processes,
        }
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    pub fn current_url(&self) -> String {
        string(self.cmd("GET", "/url", Value::Null))
    }

    pub fn title(&self) -> String {
        string(self.cmd("GET", "/title", Value::Null))
    }

    /// Waits (polling every 100 ms, up to `timeout`) for the first element matching `css`.
    /// On timeout panics with the selector, the current URL and the start of the page's text,
    /// and saves a screenshot to the artifacts dir.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Element<'_> {
        match self.poll_element(css, timeout, |id| Ok(Some(id.to_owned()))) {
            Ok(id) => self.element(css, id),
            Err(_) => self.fail(&format!(
                "no element matches `{css}` after waiting {timeout:?}"
            )),
        }
    }

    /// [`Browser::wait_for`] with a 10 s timeout.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.wait_for(css, FIND_TIMEOUT)
    }

    /// Every element matching `css` now (no waiting).
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        self.find_ids(css)
            .into_iter()
            .map(|id| self.element(css, id))
            .collect()
    }

    /// Whether an element matches `css` now (no waiting).
    pub fn exists(&self, css: &str) -> bool {
        !self.find_ids(css).is_empty()
    }

    /// Waits until the visible text of the first element matching `css` contains `needle`,
    /// re-finding the element on each poll; returns that text.
    pub fn wait_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let mut last = None;
        let found = self.poll_element(css, timeout, |id| {
            let text = string(self.call("GET", &format!("/element/{id}/text"), Value::Null)?);
            if text.contains(needle) {
                Ok(Some(text))
            } else {
                last = Some(text);
                Ok(None)
            }
        });
        match found {
            Ok(text) => text,
            Err(error) => {
                let last = match (last, error) {
                    (Some(text), _) => format!("its last text was {text:?}"),
                    (None, Some(e)) => format!("last error: {e}"),
                    (None, None) => "no element matched".to_owned(),
                };
                self.fail(&format!(
                    "`{css}` did not contain {needle:?} after waiting {timeout:?}; {last}"
                ))
            }
        }
    }

    /// The visible text of the first element matching `css` (waiting up to 10 s for it).
    pub fn text(&self, css: &str) -> String {
        self.act(css, "read the text of", |id| {
            self.call("GET", &format!("/element/{id}/text"), Value::Null)
                .map(string)
        })
    }

    /// Clears the first element matching `css` (waiting up to 10 s for it), then types `value`.
    pub fn fill(&self, css: &str, value: &str) {
        self.act(css, "fill", |id| {
            self.call("POST", &format!("/element/{id}/clear"), json!({}))?;
            self.call(
                "POST",
                &format!("/element/{id}/value"),
                json!({ "text": value }),
            )
        });
    }

    /// Clicks the first element matching `css` (waiting up to 10 s for it to be clickable).
    pub fn click(&self, css: &str) {
        self.act(css, "click", |id| {
            self.call("POST", &format!("/element/{id}/click"), json!({}))
        });
    }

    /// Chooses the `<option>` whose value is `value` in the `<select>` matching `css`, and fires
    /// `input` and `change` on it. Waits up to 10 s for the select and the option to exist.
    pub fn select(&self, css: &str, value: &str) {
        const SCRIPT: &str = "const [s, v] = arguments;
            if (!s.options) { return { error: 'not a <select>: <' + s.tagName.toLowerCase() + '>' }; }
            const options = Array.from(s.options).map(o => o.value);
            if (!options.includes(v)) { return { options }; }
            s.value = v;
            s.dispatchEvent(new Event('input', { bubbles: true }));
            s.dispatchEvent(new Event('change', { bubbles: true }));
            return { ok: true };";
        let mut last = Value::Null;
        let done = self.poll_element(css, FIND_TIMEOUT, |id| {
            let answer = self.call(
                "POST",
                "/execute/sync",
                json!({ "script": SCRIPT, "args": [{ ELEMENT_KEY: id }, value] }),
            )?;
            if let Some(error) = answer["error"].as_str() {
                panic!("cannot select {value:?} in `{css}`: {error}");
            }
            let ok = answer["ok"] == json!(true);
            last = answer;
            Ok(ok.then_some(()))
        });
        if done.is_err() {
            let options = &last["options"];
            self.fail(&format!(
                "cannot select {value:?} in `{css}` after waiting {FIND_TIMEOUT:?}: {}",
                if options.is_null() {
                    "no element matched".to_owned()
                } else {
                    format!("no such option (options: {options})")
                }
            ));
        }
    }

    /// Runs `script` as the body of a function (`arguments` holds `args`) and returns its result.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
    }

    /// `document.body.innerText`.
    pub fn page_text(&self) -> String {
        string(self.execute(PAGE_TEXT_SCRIPT, vec![]))
    }

    /// The cookies visible to the current page, as WebDriver cookie objects
    /// (`name`, `value`, `path`, `domain`, `httpOnly`, ...).
    pub fn cookies(&self) -> Vec<Value> {
        match self.cmd("GET", "/cookie", Value::Null) {
            Value::Array(cookies) => cookies,
            other => panic!("GET /cookie answered {other}, not an array"),
        }
    }

    /// Deletes the cookies visible to the current page.
    pub fn delete_cookies(&self) {
        self.cmd("DELETE", "/cookie", Value::Null);
    }

    /// Writes a PNG screenshot of the viewport to `path` (creating its directory).
    pub fn screenshot(&self, path: &Path) {
        let png = self.screenshot_png().unwrap_or_else(|e| panic!("{e}"));
        write_file(path, &png).unwrap_or_else(|e| panic!("{e}"));
    }

    fn screenshot_png(&self) -> Result<Vec<u8>, String> {
        let encoded = self
            .call("GET", "/screenshot", Value::Null)
            .map_err(|e| format!("cannot take a screenshot: {e}"))?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .map_err(|e| format!("screenshot is not base64: {e}"))
    }

    fn element(&self, css: &str, id: String) -> Element<'_> {
        Element {
            browser: self,
            css: css.to_owned(),
            id,
        }
    }

    /// The ids of the elements matching `css` now.
    fn find_ids(&self, css: &str) -> Vec<String> {
        self.try_find_ids(css)
            .unwrap_or_else(|e| self.panic_with(css, &e))
    }

    fn try_find_ids(&self, css: &str) -> Result<Vec<String>, WdError> {
        let found = self.call(
            "POST",
            "/elements",
            json!({ "using": "css selector", "value": css }),
        )?;
        Ok(found
            .as_array()
            .map(|all| all.iter().filter_map(element_id).collect())
            .unwrap_or_default())
    }

    /// Polls until `f`, given the id of the first element matching `css`, answers `Some`. Finding
    /// nothing, `None` and retryable errors (stale element, not interactable, ...) poll again;
    /// other errors panic. On timeout returns the last retryable error, if any.
    fn poll_element<T>(
        &self,
        css: &str,
        timeout: Duration,
        mut f: impl FnMut(&str) -> Result<Option<T>, WdError>,
    ) -> Result<T, Option<WdError>> {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            let attempt = self.try_find_ids(css).and_then(|ids| match ids.first() {
                Some(id) => f(id),
                None => Ok(None),
            });
            match attempt {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(e) if e.is_retryable() => last_error = Some(e),
                Err(e) => self.panic_with(css, &e),
            }
            if Instant::now() >= deadline {
                return Err(last_error);
            }
            thread::sleep(POLL);
        }
    }

    /// Does `f` to the first element matching `css`, retrying for up to 10 s while there is none
    /// or it fails with a retryable error.
    fn act<T>(&self, css: &str, what: &str, f: impl Fn(&str) -> Result<T, WdError>) -> T {
        match self.poll_element(css, FIND_TIMEOUT, |id| f(id).map(Some)) {
            Ok(value) => value,
            Err(Some(e)) => self.fail(&format!(
                "cannot {what} `{css}` after trying for {FIND_TIMEOUT:?}: {e}"
            )),
            Err(None) => self.fail(&format!(
                "cannot {what} `{css}`: no element matches after waiting {FIND_TIMEOUT:?}"
            )),
        }
    }

    /// Panics with `what`, the current URL, the start of the page's text and the path of a
    /// screenshot saved to the artifacts dir.
    fn fail(&self, what: &str) -> ! {
        let url = match self.call("GET", "/url", Value::Null) {
            Ok(url) => string(url),
            Err(e) => format!("(unknown: {e})"),
        };
        let text = match self.call(
            "POST",
            "/execute/sync",
            json!({ "script": PAGE_TEXT_SCRIPT, "args": [] }),
        ) {
            Ok(text) => {
                let text = string(text);
                match text.char_indices().nth(PAGE_TEXT_CHARS) {
                    Some((cut, _)) => {
                        format!("{}\n[... cut at {PAGE_TEXT_CHARS} chars]", &text[..cut])
                    }
                    None => text,
                }
            }
            Err(e) => format!("(unknown: {e})"),
        };
        let path = self.artifacts_dir.join(unique_name("failure", "png"));
        let screenshot = match self
            .screenshot_png()
            .and_then(|png| write_file(&path, &png))
        {
            Ok(()) => path.display().to_string(),
            Err(e) => format!("(none: {e})"),
        };
        panic!(
            "{what}\n  url: {url}\n  screenshot: {screenshot}\n  chromedriver log: {}\n  page text:\n{text}",
            self.driver_log.display()
        );
    }

    fn panic_with(&self, css: &str, e: &WdError) -> ! {
        panic!(
            "WebDriver request about `{css}` failed: {e} (chromedriver log: {})",
            self.driver_log.display()
        )
    }

    /// A session command (`path` relative to `/session/{id}`); panics on error.
    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        self.call(method, path, body).unwrap_or_else(|e| {
            panic!(
                "WebDriver {method} {path} failed: {e} (chromedriver log: {})",
                self.driver_log.display()
            )
        })
    }

    /// A session command (`path` relative to `/session/{id}`); `body` `Null` sends none.
    fn call(&self, method: &str, path: &str, body: Value) -> Result<Value, WdError> {
        let path = format!("/session/{}{path}", self.session);
        let body = (!body.is_null()).then_some(&body);
        request(self.port, method, &path, body, IO_TIMEOUT)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Deleting the session makes chromedriver close Chromium; `Processes` then kills the
        // driver and anything left over.
        let path = format!("/session/{}", self.session);
        let _ = request(self.port, "DELETE", &path, None, Duration::from_secs(20));
    }
}

const PAGE_TEXT_SCRIPT: &str = "return document.body ? document.body.innerText : '';";

/// An element found by a [`Browser`]. Its methods do not retry: a page that replaces the node
/// makes them panic with a stale element reference; the `Browser` methods taking a selector
/// re-find the element instead.
pub struct Element<'a> {
    browser: &'a Browser,
    css: String,
    id: String,
}

impl Element<'_> {
    /// The element's visible text.
    pub fn text(&self) -> String {
        string(self.cmd("GET", "text", Value::Null))
    }

    pub fn click(&self) {
        self.cmd("POST", "click", json!({}));
    }

    /// The attribute `name`, or `None` when the element has no such attribute.
    pub fn attr(&self, name: &str) -> Option<String> {
        match self.cmd(
            "GET",
            &format!("attribute/{}", percent_encode(name)),
            Value::Null,
        ) {
            Value::Null => None,
            Value::String(value) => Some(value),
            other => Some(other.to_string()),
        }
    }

    /// Types `s` into the element (WebDriver key codes such as `\u{E007}`, Enter, work).
    pub fn send_keys(&self, s: &str) {
        self.cmd("POST", "value", json!({ "text": s }));
    }

    pub fn clear(&self) {
        self.cmd("POST", "clear", json!({}));
    }

    pub fn is_displayed(&self) -> bool {
        self.cmd("GET", "displayed", Value::Null) == json!(true)
    }

    fn cmd(&self, method: &str, command: &str, body: Value) -> Value {
        let path = format!("/element/{}/{command}", self.id);
        self.browser.call(method, &path, body).unwrap_or_else(|e| {
            panic!(
                "WebDriver {method} {command} on element `{}` failed: {e}",
                self.css
            )
        })
    }
}

/// Spawns chromedriver on a free loopback port and waits until it is ready; retries with
/// another port when it exits early (another process took the port in the meantime).
///
/// Chromium inherits chromedriver's environment: `XDG_CONFIG_HOME` inside `profile` keeps its
/// crash-report database (which ignores `--user-data-dir`) out of `~/.config`, and puts `profile`
/// on the command line of its crashpad handlers, so that [`kill_processes_using`] finds them too.
fn spawn_driver(log_path: &Path, profile: &Path) -> (Child, u16) {
    for attempt in 1..=BIND_ATTEMPTS {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("cannot bind 127.0.0.1:0 to pick a port for chromedriver")
            .port();
        let log = OpenOptions::new()
            .create(true)
            .append(attempt > 1)
            .write(true)
            .truncate(attempt == 1)
            .open(log_path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
        let log_err = log.try_clone().expect("cannot clone the log file handle");
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("XDG_CONFIG_HOME", profile.join("xdg-config"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot spawn {CHROMEDRIVER} (Debian package chromium-driver): {e}")
            });
        match wait_ready(&mut child, port, log_path) {
            Ok(()) => return (child, port),
            Err(NotReady::Exited) => continue,
            Err(NotReady::TimedOut) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromedriver on port {port} not ready after {STARTUP_TIMEOUT:?}; log {}:\n{}",
                    log_path.display(),
                    fs::read_to_string(log_path).unwrap_or_default()
                );
            }
        }
    }
    panic!(
        "chromedriver exited early {BIND_ATTEMPTS} times; log {}:\n{}",
        log_path.display(),
        fs::read_to_string(log_path).unwrap_or_default()
    );
}

enum NotReady {
    Exited,
    TimedOut,
}

fn wait_ready(child: &mut Child, port: u16, log_path: &Path) -> Result<(), NotReady> {
    let spawned = Instant::now();
    let started_line = format!("started successfully on port {port}");
    loop {
        // The answer must come from our chromedriver, not from whoever else took the port: it
        // says so in its log (or, should that line ever change, it is still alive a second on,
        // well after a failed bind would have made it exit).
        let ready = request(port, "GET", "/status", None, Duration::from_secs(5))
            .is_ok_and(|status| status["ready"] == json!(true));
        if let Ok(Some(_)) = child.try_wait() {
            return Err(NotReady::Exited);
        }
        if ready
            && (spawned.elapsed() > Duration::from_secs(1)
                || fs::read_to_string(log_path).is_ok_and(|log| log.contains(&started_line)))
        {
            return Ok(());
        }
        if spawned.elapsed() > STARTUP_TIMEOUT {
            return Err(NotReady::TimedOut);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// One WebDriver request on its own connection to 127.0.0.1:`port`; returns the JSON `value`,
/// or the error it reports.
fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<Value, WdError> {
    let (status, raw) = http(port, method, path, body, timeout)
        .map_err(|e| WdError::transport(format!("{method} {path} to chromedriver: {e}")))?;
    let json: Value = serde_json::from_slice(&raw).map_err(|e| {
        WdError::transport(format!(
            "{method} {path}: HTTP {status} with a body that is not JSON ({e}): {}",
            String::from_utf8_lossy(&raw)
        ))
    })?;
    let value = match json {
        Value::Object(mut map) => map.remove("value").unwrap_or(Value::Null),
        other => other,
    };
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(WdError {
            error: error.to_owned(),
            message: value["message"].as_str().unwrap_or_default().to_owned(),
        });
    }
    if !(200..300).contains(&status) {
        return Err(WdError::transport(format!(
            "{method} {path}: HTTP {status}: {value}"
        )));
    }
    Ok(value)
}

/// A minimal HTTP/1.1 exchange: `Connection: close`, read until the body is complete or EOF.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> io::Result<(u16, Vec<u8>)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let body = match body {
        Some(body) => body.to_string(),
        None if method == "POST" => "{}".to_owned(),
        None => String::new(),
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut head_end = None;
    let mut content_length = None;
    loop {
        if let (Some(end), Some(len)) = (head_end, content_length) {
            if buf.len() >= end + len {
                buf.truncate(end + len);
                break;
            }
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if head_end.is_none() {
            if let Some(pos) = find(&buf, b"\r\n\r\n") {
                head_end = Some(pos + 4);
                content_length =
                    header(&buf[..pos], "content-length").and_then(|v| v.parse::<usize>().ok());
            }
        }
    }
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let end = head_end.ok_or_else(|| invalid("response ended before its headers did"))?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid("response without a status line"))?;
    let mut body = buf.split_off(end);
    if let Some(len) = content_length {
        if body.len() < len {
            return Err(invalid("response body shorter than its Content-Length"));
        }
    } else if header(head.as_bytes(), "transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body).ok_or_else(|| invalid("malformed chunked body"))?;
    }
    Ok((status, body))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (lower case) in a response head.
fn header(head: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(head)
        .lines()
        .skip(1)
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size..)?;
        data = data.strip_prefix(b"\r\n").unwrap_or(data);
    }
}

fn element_id(reference: &Value) -> Option<String> {
    reference[ELEMENT_KEY].as_str().map(str::to_owned)
}

fn string(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    File::create(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
