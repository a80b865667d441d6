//! `loadgen run`: real SIP over UDP against navbat - an embedded one started as a child
//! process with the scenario's configuration, or a `--target` already running.
//!
//! One task owns both UDP sockets and drives [`Phones`]; side tasks poll navbat's event feed
//! (its own count of every outcome), post wrap-up ends to the API, and sample the router's
//! CPU and memory from `/proc`. Every loop is bounded in time.

use crate::phones::{Output, Phones, Setup, Sock};
use crate::report::Outcome;
use crate::scenario::{Ports, RosterEntry, Scenario, TenantClock, DTM_DID};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Mutex};

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Scenario seconds per wall second.
    pub compression: f64,
    /// An already running navbat (SIP UDP address); `None` starts one.
    pub target: Option<SocketAddr>,
    /// Its HTTP API address.
    pub http: Option<SocketAddr>,
    /// Admin token of its API.
    pub token: String,
    /// The navbat binary for the embedded router.
    pub navbat: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Hard bound on the calls phase, wall seconds.
    pub max_wall_secs: f64,
    /// Show a progress bar.
    pub progress: bool,
}

/// A run could not be set up or carried out.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Local I/O (sockets, files, the child process).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The router did not come up.
    #[error("navbat did not answer on {0} within 30 s; see navbat.log in the output directory")]
    NotReady(SocketAddr),
    /// navbat refused the generated configuration.
    #[error("navbat check-config refused the generated configuration {path}: {detail}")]
    Config {
        /// The configuration file.
        path: String,
        /// What navbat said.
        detail: String,
    },
    /// Operators could not register.
    #[error("only {registered} of {total} operators registered within 15 s; check the router's operators and passwords")]
    Registration {
        /// How many did.
        registered: usize,
        /// How many tried.
        total: usize,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// The demo configuration's operators, for a `--target` running the demo config.
pub fn demo_roster() -> Vec<RosterEntry> {
    let mut v: Vec<RosterEntry> = (1001..=1010)
        .map(|e| RosterEntry {
            ext: e.to_string(),
            password: format!("demo{e}"),
            languages: vec![],
            reserve: false,
        })
        .collect();
    for e in [1901, 1902] {
        v.push(RosterEntry {
            ext: e.to_string(),
            password: format!("demo{e}"),
            languages: vec![],
            reserve: true,
        });
    }
    v
}

fn free_ports() -> Result<Ports, RunError> {
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
        let sip = udp.local_addr().map_err(io("finding a free port"))?.port();
        let Ok(tcp) = std::net::TcpListener::bind(("127.0.0.1", sip)) else {
            continue;
        };
        let http_l =
            std::net::TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
        let http = http_l
            .local_addr()
            .map_err(io("finding a free port"))?
            .port();
        drop((udp, tcp, http_l));
        let base = 30000 + (sip % 16) * 2000;
        return Ok(Ports {
            sip,
            http,
            rtp_min: base,
            rtp_max: base + 1999,
            sms_gateway: None,
            trunk: None,
            tenant_clock: None,
            data_dir: None,
        });
    }
    Err(RunError::Io {
        what: "finding free ports".into(),
        source: std::io::Error::other("no free SIP port pair"),
    })
}

/// A minimal HTTP/1.1 exchange over a fresh connection: (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timeout"))??;
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("read timeout"))??;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let mut payload = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    Ok((status, payload))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

/// navbat's own view: every `call_finished` outcome from its event feed.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RouterTally {
    /// call_finished events by outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// Events seen.
    pub events: u64,
    /// Every event up to this sequence number has been seen.
    pub contiguous: u64,
    /// Sequence numbers never seen (left the feed's ring before we read them, or still
    /// missing at the end).
    pub missed: u64,
    /// Polls made.
    pub polls: u64,
    /// Seen sequence numbers above `contiguous`: events are numbered before several
    /// threads append them to the feed, so a later number can appear first.
    #[serde(skip)]
    above: std::collections::BTreeSet<u64>,
}

impl RouterTally {
    /// Takes an event; false when it was seen before.
    fn take(&mut self, e: &serde_json::Value) -> bool {
        let seq = e["seq"].as_u64().unwrap_or(0);
        if seq <= self.contiguous || !self.above.insert(seq) {
            return false;
        }
        self.events += 1;
        if e["kind"] == "call_finished" {
            let o = e["outcome"].as_str().unwrap_or("?").to_string();
            *self.outcomes.entry(o).or_default() += 1;
        }
        while self.above.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
        // A gap far behind the newest event will not be filled any more: count it lost.
        while self.above.len() > 100_000 {
            let first = *self.above.iter().next().expect("non-empty");
            self.missed += first - self.contiguous - 1;
            self.contiguous = first;
            self.above.remove(&first);
            while self.above.remove(&(self.contiguous + 1)) {
                self.contiguous += 1;
            }
        }
        true
    }

    /// Gaps still open at the end count as missed.
    fn close(&mut self) {
        let mut last = self.contiguous;
        for &s in &self.above {
            self.missed += s - last - 1;
            last = s;
        }
        self.contiguous = last;
        self.above.clear();
    }
}

/// The events the callers act on (surge policy): passed to [`Phones::router_event`].
const CALLER_EVENTS: [&str; 2] = ["call_arrived", "door_offer"];

async fn poll_events(
    addr: SocketAddr,
    token: String,
    tally: Arc<Mutex<RouterTally>>,
    to_phones: mpsc::Sender<serde_json::Value>,
    shed: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let after = tally.lock().await.contiguous;
        let path = format!("/api/events?after={after}");
        if let Ok((200, body)) = http(addr, "GET", &path, &token, None).await {
            if let Ok(serde_json::Value::Array(events)) =
                serde_json::from_slice::<serde_json::Value>(&body)
            {
                let mut t = tally.lock().await;
                t.polls += 1;
                for e in &events {
                    let fresh = t.take(e);
                    if fresh && CALLER_EVENTS.contains(&e["kind"].as_str().unwrap_or("")) {
                        // Bounded: a full channel sheds the event, counted.
                        if to_phones.try_send(e.clone()).is_err() {
                            shed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        if *stop.borrow() {
            tally.lock().await.close();
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// CPU seconds (user + system) and resident memory (current, peak) of a process.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct ProcStats {
    /// CPU seconds used so far.
    pub cpu_secs: f64,
    /// Resident set, MiB.
    pub rss_mib: f64,
    /// Peak resident set, MiB.
    pub peak_rss_mib: f64,
}

fn proc_stats(pid: &str) -> Option<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some(ProcStats {
        cpu_secs: ticks / 100.0,
        rss_mib: kib("VmRSS:") / 1024.0,
        peak_rss_mib: kib("VmHWM:") / 1024.0,
    })
}

/// One wall-clock second of the run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Second {
    /// Seconds since calls started.
    pub t: u64,
    /// Calls placed so far.
    pub placed: u64,
    /// Calls ended so far.
    pub ended: u64,
    /// Callers waiting.
    pub waiting: u64,
    /// Router CPU use in this second (1.0 = one core).
    pub router_cpu: f64,
    /// Router resident memory, MiB.
    pub router_rss_mib: f64,
    /// loadgen's own CPU use in this second.
    pub loadgen_cpu: f64,
    /// INVITE to final response latency of calls placed this second: p50, p99, max (ms).
    pub invite_p50_ms: f64,
    /// ... p99.
    pub invite_p99_ms: f64,
    /// ... max.
    pub invite_max_ms: f64,
}

/// What a run produced.
pub struct RunOutput {
    /// loadgen's measurements.
    pub phones: Phones,
    /// navbat's own outcome counts.
    pub router: RouterTally,
    /// navbat's per-queue totals at the end (GET /api/queues).
    pub queues: serde_json::Value,
    /// Router process stats at the end (embedded router only).
    pub router_proc: Option<ProcStats>,
    /// loadgen's own process stats at the end.
    pub loadgen_proc: Option<ProcStats>,
    /// Per-second samples.
    pub seconds: Vec<Second>,
    /// Wall seconds of the calls phase.
    pub wall_secs: f64,
    /// Whether the calls phase hit its time bound before every call ended.
    pub bounded_out: bool,
    /// The navbat configuration used (embedded router).
    pub config_path: Option<PathBuf>,
    /// Requests loadgen's SMS gateway sink accepted (surge policy, embedded router).
    pub sms_received: u64,
    /// Router events for the callers shed because their channel was full.
    pub caller_events_shed: u64,
    /// Scenario seconds from the first call to the tenant's closing time, when the run
    /// set the tenant's clock (the simulator's "until closing" is the profile's end).
    pub close_after_secs: Option<f64>,
}

/// loadgen's stand-in for the SMS gateway: a real HTTP listener on loopback that answers
/// every request 200 and counts it. Each connection is bounded in time and size.
async fn sms_sink(listener: tokio::net::TcpListener, count: Arc<AtomicU64>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let count = count.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let read = async {
                loop {
                    let n = s.read(&mut chunk).await.ok()?;
                    if n == 0 || buf.len() > 65_536 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            return Some(());
                        }
                    }
                }
            };
            if let Ok(Some(())) = tokio::time::timeout(Duration::from_secs(5), read).await {
                count.fetch_add(1, Ordering::Relaxed);
                let body = "{\"ok\":true}";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
    }
}

/// A fixed UTC offset at which it is about noon now, and the tenant's closing time
/// `close_in_secs` from now rounded up to a whole minute: (clock, seconds until closing).
fn tenant_clock(close_in_secs: f64) -> (TenantClock, f64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let utc_hour = ((now / 3600.0).floor() as i64).rem_euclid(24);
    let offset = 12 - utc_hour;
    let close = ((now + close_in_secs) / 60.0).ceil() * 60.0;
    let local = ((close as i64 + offset * 3600).rem_euclid(86_400)) / 60;
    let sign = if offset < 0 { '-' } else { '+' };
    (
        TenantClock {
            zone: format!("{sign}{:02}:00", offset.abs()),
            close: format!("{:02}:{:02}", local / 60, local % 60),
        },
        close - now,
    )
}

/// Runs the scenario over SIP.
pub async fn run(
    sc: &Scenario,
    opts: &RunOptions,
    arrivals_ms: Vec<u64>,
) -> Result<RunOutput, RunError> {
    std::fs::create_dir_all(&opts.out).map_err(io(format!("creating {}", opts.out.display())))?;
    let mut child = None;
    let mut config_path = None;
    let csock = bind_udp().await?;
    let osock = bind_udp().await?;
    let callers_addr = csock.local_addr().map_err(io("callers socket"))?;
    let sms_count = Arc::new(AtomicU64::new(0));
    let policy = sc.surge && sc.surge_policy.is_some();
    // Wall time from here to the tenant's closing time, when the run sets the clock.
    let mut close_at: Option<Instant> = None;
    let (router, http_addr, roster) = match opts.target {
        Some(t) => (
            t,
            opts.http
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            demo_roster(),
        ),
        None => {
            let mut ports = free_ports()?;
            // The router's files stay in the output directory, never the checkout's data/.
            let data = std::path::absolute(opts.out.join("navbat-data"))
                .map_err(io("resolving the data directory"))?;
            std::fs::create_dir_all(&data).map_err(io(format!("creating {}", data.display())))?;
            ports.data_dir = Some(data);
            if policy {
                // The policy's SMS choice needs a gateway; callbacks are dialled to our
                // callers; the tenant closes when the profile ends (set up within 60 s).
                let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(io("binding the SMS gateway sink"))?;
                ports.sms_gateway = Some(l.local_addr().map_err(io("SMS gateway sink"))?);
                tokio::spawn(sms_sink(l, sms_count.clone()));
                ports.trunk = Some(callers_addr);
                let scenario_secs = sc.profile.duration_secs() / opts.compression;
                let (clock, in_secs) = tenant_clock(60.0 + scenario_secs);
                close_at = Some(Instant::now() + Duration::from_secs_f64(in_secs));
                ports.tenant_clock = Some(clock);
            }
            let toml = sc.navbat_toml(opts.compression, &ports);
            let path = opts.out.join("navbat.toml");
            std::fs::write(&path, toml).map_err(io(format!("writing {}", path.display())))?;
            let check = tokio::process::Command::new(&opts.navbat)
                .arg("check-config")
                .arg("--config")
                .arg(&path)
                .output()
                .await
                .map_err(io(format!(
                    "running {} check-config",
                    opts.navbat.display()
                )))?;
            if !check.status.success() {
                return Err(RunError::Config {
                    path: path.display().to_string(),
                    detail: String::from_utf8_lossy(&check.stderr).trim().to_string(),
                });
            }
            let log = std::fs::File::create(opts.out.join("navbat.log"))
                .map_err(io("creating navbat.log"))?;
            let c = tokio::process::Command::new(&opts.navbat)
                .arg("run")
                .arg("--config")
                .arg(&path)
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .map_err(io(format!("starting {}", opts.navbat.display())))?;
            child = Some(c);
            config_path = Some(path);
            (
                SocketAddr::from(([127, 0, 0, 1], ports.sip)),
                SocketAddr::from(([127, 0, 0, 1], ports.http)),
                sc.operator_roster(),
            )
        }
    };
    let router_pid = child.as_ref().and_then(|c| c.id()).map(|p| p.to_string());
    // Wait for the API to answer (bounded).
    let ready_by = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = http(http_addr, "GET", "/api/health", &opts.token, None).await {
            break;
        }
        if Instant::now() > ready_by {
            return Err(RunError::NotReady(http_addr));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if sc.surge {
        let _ = http(
            http_addr,
            "POST",
            "/api/tenants/dtm/surge",
            &opts.token,
            Some("{\"on\":true}"),
        )
        .await;
    }
    let setup = Setup {
        router,
        callers: callers_addr,
        operators: osock.local_addr().map_err(io("operators socket"))?,
        compression: opts.compression,
        did: DTM_DID.into(),
        language_digits: vec!['1', '2'],
        topic_digits: vec!['1', '2', '3', '0'],
        queue_wrap_up_secs: sc.wrap_up_secs as f64,
    };
    let mut phones = Phones::new(setup, sc.clone(), arrivals_ms, roster, opts.compression);
    let t0 = Instant::now();
    let now = || t0.elapsed().as_micros() as u64;
    // API side tasks: wrap-up posts and the event feed.
    let (avail_tx, mut avail_rx) = mpsc::channel::<String>(10_000);
    let token = opts.token.clone();
    let poster = tokio::spawn(async move {
        while let Some(ext) = avail_rx.recv().await {
            let _ = http(
                http_addr,
                "POST",
                &format!("/api/operators/{ext}/state"),
                &token,
                Some("{\"state\":\"available\"}"),
            )
            .await;
        }
    });
    let tally = Arc::new(Mutex::new(RouterTally::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (events_tx, mut events_rx) = mpsc::channel::<serde_json::Value>(50_000);
    let shed = Arc::new(AtomicU64::new(0));
    let poller = tokio::spawn(poll_events(
        http_addr,
        opts.token.clone(),
        tally.clone(),
        events_tx,
        shed.clone(),
        stop_rx,
    ));

    let mut buf = vec![0u8; 65_536];
    let mut buf2 = vec![0u8; 65_536];
    // Registration, bounded.
    phones.register_all(now());
    let reg_by = Instant::now() + Duration::from_secs(15);
    while phones.registered() < phones.operator_count() && Instant::now() < reg_by {
        step(
            &mut phones,
            &csock,
            &osock,
            &avail_tx,
            &mut buf,
            &mut buf2,
            &now,
            Duration::from_millis(50),
        )
        .await;
    }
    if phones.registered() < phones.operator_count() {
        let _ = stop_tx.send(true);
        return Err(RunError::Registration {
            registered: phones.registered(),
            total: phones.operator_count(),
        });
    }
    // Let the router settle the operators' presence before the first call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // With the tenant's clock set, the calls start so that it closes when the profile
    // ends (the simulator's closing time), to the millisecond; the wait is bounded (180 s).
    let mut close_after_secs = None;
    if let Some(close) = close_at {
        let profile = Duration::from_secs_f64(sc.profile.duration_secs() / opts.compression);
        if let Some(start) = close.checked_sub(profile) {
            let wait = start.saturating_duration_since(Instant::now());
            tokio::time::sleep(wait.min(Duration::from_secs(180))).await;
        }
        close_after_secs = Some(
            close
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                * opts.compression,
        );
    }
    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(phones.calls_planned());
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} ended  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let start = Instant::now();
    phones.start_calls(now());
    let bound = Duration::from_secs_f64(opts.max_wall_secs);
    let mut next_tick = start + Duration::from_secs(1);
    let mut seconds = Vec::new();
    let mut last_router = router_pid.as_deref().and_then(proc_stats);
    let mut last_self = proc_stats("self");
    let mut last_invite_count = 0u64;
    let mut bounded_out = false;
    while !phones.done() {
        if start.elapsed() > bound {
            bounded_out = true;
            break;
        }
        while let Ok(e) = events_rx.try_recv() {
            phones.router_event(now(), &e);
        }
        step(
            &mut phones,
            &csock,
            &osock,
            &avail_tx,
            &mut buf,
            &mut buf2,
            &now,
            Duration::from_millis(100),
        )
        .await;
        if Instant::now() >= next_tick {
            next_tick += Duration::from_secs(1);
            let r = router_pid.as_deref().and_then(proc_stats);
            let me = proc_stats("self");
            let lat = phones.recorder.latencies_us.get("invite_to_200");
            let _ = last_invite_count;
            last_invite_count = lat.map_or(0, |h| h.len());
            let mut s = Second {
                t: start.elapsed().as_secs(),
                placed: phones.calls_placed(),
                ended: phones.calls_ended(),
                waiting: phones.waiting(),
                router_cpu: match (r, last_router) {
                    (Some(a), Some(b)) => a.cpu_secs - b.cpu_secs,
                    _ => 0.0,
                },
                router_rss_mib: r.map_or(0.0, |r| r.rss_mib),
                loadgen_cpu: match (me, last_self) {
                    (Some(a), Some(b)) => a.cpu_secs - b.cpu_secs,
                    _ => 0.0,
                },
                ..Default::default()
            };
            if let Some(w) = phones.window.take() {
                s.invite_p50_ms = w.value_at_quantile(0.5) as f64 / 1000.0;
                s.invite_p99_ms = w.value_at_quantile(0.99) as f64 / 1000.0;
                s.invite_max_ms = w.max() as f64 / 1000.0;
            }
            seconds.push(s);
            last_router = r;
            last_self = me;
            if let Some(b) = &bar {
                b.set_position(phones.calls_ended());
                b.set_message(format!(
                    "placed {} waiting {} router cpu {:.0}%",
                    phones.calls_placed(),
                    phones.waiting(),
                    seconds.last().map_or(0.0, |s| s.router_cpu * 100.0)
                ));
            }
        }
    }
    let wall_secs = start.elapsed().as_secs_f64();
    if let Some(b) = &bar {
        b.set_position(phones.calls_ended());
        b.finish();
    }
    // Let in-flight BYEs and the feed settle, bounded.
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        step(
            &mut phones,
            &csock,
            &osock,
            &avail_tx,
            &mut buf,
            &mut buf2,
            &now,
            Duration::from_millis(50),
        )
        .await;
        let t = tally.lock().await;
        let finished: u64 = t.outcomes.values().sum();
        if finished >= phones.calls_placed() {
            break;
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), poller).await;
    drop(avail_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), poster).await;
    let queues = match http(http_addr, "GET", "/api/queues", &opts.token, None).await {
        Ok((200, body)) => serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    };
    let router_proc = router_pid.as_deref().and_then(proc_stats);
    let loadgen_proc = proc_stats("self");
    if let Some(mut c) = child {
        let _ = c.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
    }
    let router = tally.lock().await.clone();
    phones.close_policy();
    Ok(RunOutput {
        phones,
        router,
        queues,
        router_proc,
        loadgen_proc,
        seconds,
        wall_secs,
        bounded_out,
        config_path,
        sms_received: sms_count.load(Ordering::Relaxed),
        caller_events_shed: shed.load(Ordering::Relaxed),
        close_after_secs,
    })
}

async fn bind_udp() -> Result<UdpSocket, RunError> {
    let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").map_err(io("binding a UDP socket"))?;
    std_sock
        .set_nonblocking(true)
        .map_err(io("configuring a UDP socket"))?;
    UdpSocket::from_std(std_sock).map_err(io("registering a UDP socket"))
}

/// One turn of the I/O loop: flush outputs, wait for a datagram or the next timer (at most
/// `max_wait`), feed it in.
#[allow(clippy::too_many_arguments)]
async fn step(
    phones: &mut Phones,
    csock: &UdpSocket,
    osock: &UdpSocket,
    avail: &mpsc::Sender<String>,
    buf: &mut [u8],
    buf2: &mut [u8],
    now: &impl Fn() -> u64,
    max_wait: Duration,
) {
    let router_of = |p: &Phones| p.router();
    while let Some(o) = phones.poll_output() {
        match o {
            Output::Send { sock, bytes } => {
                let s = match sock {
                    Sock::Callers => csock,
                    Sock::Operators => osock,
                };
                let to = router_of(phones);
                if s.try_send_to(&bytes, to).is_err() {
                    let _ = s.send_to(&bytes, to).await;
                }
            }
            Output::SetAvailable(ext) => {
                let _ = avail.try_send(ext);
            }
        }
    }
    let wait = match phones.next_deadline() {
        Some(d) => Duration::from_micros(d.saturating_sub(now())).min(max_wait),
        None => max_wait,
    };
    tokio::select! {
        r = csock.recv_from(buf) => {
            if let Ok((n, _)) = r {
                phones.datagram(now(), Sock::Callers, &buf[..n]);
                let mut more = 0;
                while more < 256 {
                    match csock.try_recv_from(buf) {
                        Ok((n, _)) => phones.datagram(now(), Sock::Callers, &buf[..n]),
                        Err(_) => break,
                    }
                    more += 1;
                }
            }
        }
        r = osock.recv_from(buf2) => {
            if let Ok((n, _)) = r {
                phones.datagram(now(), Sock::Operators, &buf2[..n]);
            }
        }
        _ = tokio::time::sleep(wait) => {}
    }
    phones.timeout(now());
}

/// The outcome totals of both sides, for the summary and the report.
pub fn comparison(out: &RunOutput) -> Vec<(String, u64, u64)> {
    Outcome::ALL
        .iter()
        .map(|o| {
            (
                o.name().to_string(),
                out.phones.recorder.totals.get(o).copied().unwrap_or(0),
                out.router.outcomes.get(o.name()).copied().unwrap_or(0),
            )
        })
        .collect()
}

/// Where the navbat binary is by default: next to loadgen's own executable.
pub fn default_navbat() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join("navbat")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, outcome: Option<&str>) -> serde_json::Value {
        match outcome {
            Some(o) => serde_json::json!({"seq": seq, "kind": "call_finished", "outcome": o}),
            None => serde_json::json!({"seq": seq, "kind": "call_arrived"}),
        }
    }

    #[test]
    fn tally_takes_out_of_order_events_once_and_counts_gaps() {
        let mut t = RouterTally::default();
        t.take(&ev(2, Some("answered")));
        t.take(&ev(1, None));
        t.take(&ev(2, Some("answered")));
        t.take(&ev(4, Some("blocked")));
        assert_eq!(t.contiguous, 2);
        t.take(&ev(3, Some("abandoned")));
        assert_eq!(t.contiguous, 4);
        t.take(&ev(6, None));
        t.close();
        assert_eq!(t.missed, 1);
        assert_eq!(t.outcomes["answered"], 1);
        assert_eq!(t.outcomes.values().sum::<u64>(), 3);
    }
}
