//! Media benchmark (issue 3): N concurrent bridged and recorded calls through navbat's media
//! engine, in one process, on loopback.
//!
//! Each call is a media session exactly as the call actor starts it (caller leg PCMA with
//! telephone-event, operator leg PCMU, so every frame is transcoded both ways, and a stereo
//! recording). Simulated phones on their own runtime send one 20 ms packet per leg every
//! 20 ms and count what comes back (one plain thread, `sim`, excluded from the CPU figure). Measured over the steady-state window:
//! - CPU of navbat's media threads (`navbat-media` runtime worker, `navbat-recorder` writer),
//!   from /proc/self/task/*/stat, in % of one core; the simulator's threads are excluded;
//! - memory per call: growth of the process RSS from before the calls to steady state,
//!   divided by N; and RSS at the start and end of the window (growth);
//! - packets relayed per second (frames bridged x 2 directions) and received/sent rates;
//! - loss: packets the phones sent that navbat did not receive, and packets navbat sent
//!   that the phones did not receive, plus RTP sequence gaps navbat saw.
//!
//! Run: `cargo bench --bench media` (env NAVBAT_BENCH_CALLS=300, NAVBAT_BENCH_SECS=60,
//! NAVBAT_BENCH_RECORDINGS=<directory for the recordings>, default the system temp dir).

use navbat::media::{
    recorder::FRAME, Codec, LegSpec, MediaCommand, MediaEngine, MediaMsg, MediaSettings, PortPool,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Sink;
impl actix::Actor for Sink {
    type Context = actix::Context<Self>;
}
impl actix::Handler<MediaMsg> for Sink {
    type Result = ();
    fn handle(&mut self, _: MediaMsg, _: &mut actix::Context<Self>) {}
}

#[derive(Default)]
struct SimCounters {
    sent: AtomicU64,
    received: AtomicU64,
    quit: AtomicBool,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (utime + stime) in clock ticks of the threads whose name starts with one of `prefixes`.
fn thread_ticks(prefixes: &[&str]) -> u64 {
    let mut total = 0;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        total += utime + stime;
    }
    total
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One simulated phone: its socket, where it sends, what it sends.
struct Phone {
    sock: std::net::UdpSocket,
    to: SocketAddr,
    packet: Vec<u8>,
    seq: u16,
    ts: u32,
}

/// All phones on one plain thread (`sim`) with one absolute 20 ms schedule: each tick every
/// phone sends one packet and reads what navbat sent it. Cheap on purpose, so that the
/// simulator takes as little of the machine from navbat as it can.
fn phones(mut phones: Vec<Phone>, counters: Arc<SimCounters>, stop: Arc<AtomicBool>) {
    let start = Instant::now();
    let mut ticks: u64 = 0;
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        let due = (now - start).as_millis() as u64 / 20 + 1;
        let sending = !stop.load(Ordering::Relaxed);
        while ticks < due {
            ticks += 1;
            if !sending {
                continue;
            }
            for p in &mut phones {
                p.packet[2..4].copy_from_slice(&p.seq.to_be_bytes());
                p.packet[4..8].copy_from_slice(&p.ts.to_be_bytes());
                if p.sock.send_to(&p.packet, p.to).is_ok() {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                p.seq = p.seq.wrapping_add(1);
                p.ts = p.ts.wrapping_add(FRAME as u32);
            }
        }
        let mut received = 0;
        for p in &phones {
            while p.sock.recv_from(&mut buf).is_ok() {
                received += 1;
            }
        }
        counters.received.fetch_add(received, Ordering::Relaxed);
        if counters.quit.load(Ordering::Relaxed) {
            return;
        }
        let next = start + Duration::from_millis(20 * ticks);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

fn phone(sock: std::net::UdpSocket, to: SocketAddr, codec: Codec) -> Phone {
    sock.set_nonblocking(true).unwrap();
    let tone: Vec<i16> = (0..FRAME)
        .map(|i| ((i as f64 * 0.35).sin() * 5000.0) as i16)
        .collect();
    let mut packet = Vec::with_capacity(12 + FRAME);
    navbat::media::rtp::write_header(
        &navbat::media::rtp::RtpHeader {
            marker: false,
            payload_type: codec.payload_type(),
            seq: 0,
            timestamp: 0,
            ssrc: rand::random(),
        },
        &mut packet,
    );
    codec.law().encode_into(&tone, &mut packet);
    Phone {
        sock,
        to,
        packet,
        seq: rand::random(),
        ts: rand::random(),
    }
}

/// The 1-minute load average.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Kernel-wide UDP drop counters: (receive-buffer errors, send-buffer errors) from
/// /proc/net/snmp, and packets the per-CPU backlog dropped (/proc/net/softnet_stat). They
/// cover the whole machine, so other programs' traffic shows in them too.
fn kernel_drops() -> (u64, u64, u64) {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let field = |name: &str| -> u64 {
        let (Some(head), Some(vals)) = (udp.first(), udp.get(1)) else {
            return 0;
        };
        let i = head.split_whitespace().position(|h| h == name);
        i.and_then(|i| vals.split_whitespace().nth(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let softnet: u64 = std::fs::read_to_string("/proc/net/softnet_stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|v| u64::from_str_radix(v, 16).ok())
        .sum();
    (field("RcvbufErrors"), field("SndbufErrors"), softnet)
}

fn main() {
    let calls = env_or("NAVBAT_BENCH_CALLS", 300) as usize;
    let secs = env_or("NAVBAT_BENCH_SECS", 60);
    let media_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("navbat-media")
        .enable_all()
        .build()
        .unwrap();
    // Recordings grow by 32 KB/s per call (about 5.8 GB in a 10-minute run at 300 calls):
    // NAVBAT_BENCH_RECORDINGS can put them on a RAM disk (e.g. /dev/shm) rather than a
    // small root disk. The directory made in it is removed at the end.
    let dir = match std::env::var_os("NAVBAT_BENCH_RECORDINGS") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let engine = MediaEngine::new(
        media_rt.handle().clone(),
        &MediaSettings {
            prompts_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/config/prompts").into(),
            embedded_prompts: false,
            recordings_dir: dir.path().to_path_buf(),
            recorder_queue: 16_384,
        },
    )
    .unwrap();
    let pool = PortPool::new("127.0.0.1".parse().unwrap(), 24000, 27999);
    let sim = Arc::new(SimCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let c = engine.counters.clone();
    let rec = engine.recorder.counters.clone();
    let system = actix::System::new();
    system.block_on(async move {
        let sink = actix::Actor::start(Sink);
        let rss_before = rss_kib();
        let mut handles = Vec::new();
        let mut sim_phones = Vec::new();
        for i in 0..calls {
            let caller_port = pool.allocate().unwrap();
            let op_port = pool.allocate().unwrap();
            let caller_sim = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let op_sim = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let (caller_addr, op_addr) = (caller_port.addr(), op_port.addr());
            let h = engine.start_session(
                LegSpec {
                    port: caller_port,
                    remote: Some(caller_sim.local_addr().unwrap()),
                    codec: Codec::Pcma,
                    telephone_event: Some(101),
                },
                actix::Actor::start(Sink).recipient(),
            );
            h.send(MediaCommand::Bridge {
                operator: LegSpec {
                    port: op_port,
                    remote: Some(op_sim.local_addr().unwrap()),
                    codec: Codec::Pcmu,
                    telephone_event: None,
                },
                recording: Some(engine.recorder.open(&format!("bench{i}"))),
            });
            handles.push(h);
            sim_phones.push(phone(caller_sim, caller_addr, Codec::Pcma));
            sim_phones.push(phone(op_sim, op_addr, Codec::Pcmu));
        }
        let (sim2, stop2) = (sim.clone(), stop.clone());
        let sim_thread = std::thread::Builder::new()
            .name("sim".into())
            .spawn(move || phones(sim_phones, sim2, stop2))
            .unwrap();
        drop(sink);
        // Warm up, then measure the steady state.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let media_threads = ["navbat-media", "navbat-recorde"];
        let t0 = Instant::now();
        let ticks0 = thread_ticks(&media_threads);
        let (sim_sent0, sim_recv0) = (
            sim.sent.load(Ordering::Relaxed),
            sim.received.load(Ordering::Relaxed),
        );
        let (in0, out0, frames0) = (
            c.packets_in.load(Ordering::Relaxed),
            c.packets_out.load(Ordering::Relaxed),
            c.frames_bridged.load(Ordering::Relaxed),
        );
        let rss_start = rss_kib();
        let load_start = load_average();
        let drops0 = kernel_drops();
        let mut rss_samples = vec![rss_start];
        let mut left = secs;
        while left > 0 {
            let step = left.min(10);
            tokio::time::sleep(Duration::from_secs(step)).await;
            left -= step;
            rss_samples.push(rss_kib());
        }
        let elapsed = t0.elapsed().as_secs_f64();
        let ticks = thread_ticks(&media_threads) - ticks0;
        let (in1, out1, frames1) = (
            c.packets_in.load(Ordering::Relaxed),
            c.packets_out.load(Ordering::Relaxed),
            c.frames_bridged.load(Ordering::Relaxed),
        );
        let rss_end = rss_kib();
        let load_end = load_average();
        let drops1 = kernel_drops();
        let (sim_sent1, sim_recv1) = (
            sim.sent.load(Ordering::Relaxed),
            sim.received.load(Ordering::Relaxed),
        );
        // Stop the phones, let their last packets land, end the calls (navbat stops
        // sending), let the simulator read what is left (it reads once per 20 ms), then
        // compare totals.
        stop.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(handles);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let sim_sent = sim.sent.load(Ordering::Relaxed);
        let nav_in = c.packets_in.load(Ordering::Relaxed);
        let nav_out = c.packets_out.load(Ordering::Relaxed);
        let sim_recv = sim.received.load(Ordering::Relaxed);
        sim.quit.store(true, Ordering::Relaxed);
        let _ = sim_thread.join();
        let clk = 100.0; // USER_HZ on Linux
        let relayed = (frames1 - frames0) as f64 * 2.0;
        println!("media benchmark: {calls} bridged+recorded calls, {elapsed:.1} s measured");
        println!("  load average (1 min): {load_start} at the start of the window, {load_end} at the end");
        println!(
            "  CPU (media runtime + recorder threads): {:.1} % of one core; {:.3} ms of CPU per 1,000 relayed packets",
            ticks as f64 / clk / elapsed * 100.0,
            ticks as f64 / clk * 1000.0 / relayed.max(1.0) * 1000.0
        );
        println!(
            "  memory: RSS {} MiB before calls, {} MiB at start of window, {} MiB at end; {:.1} KiB per call",
            rss_before / 1024,
            rss_start / 1024,
            rss_end / 1024,
            (rss_start.saturating_sub(rss_before)) as f64 / calls as f64
        );
        println!("  RSS samples every 10 s (KiB): {rss_samples:?}");
        println!(
            "  packets: {:.0}/s received, {:.0}/s sent, {:.0}/s relayed between legs",
            (in1 - in0) as f64 / elapsed,
            (out1 - out0) as f64 / elapsed,
            (frames1 - frames0) as f64 * 2.0 / elapsed
        );
        println!(
            "  loss in the window: phones->navbat {} of {}, navbat->phones {} of {} (boundary packets in flight count either way)",
            (sim_sent1 - sim_sent0) as i64 - (in1 - in0) as i64,
            sim_sent1 - sim_sent0,
            (out1 - out0) as i64 - (sim_recv1 - sim_recv0) as i64,
            out1 - out0
        );
        println!(
            "  loss over the whole run: phones->navbat {} of {} ({:.4} %), navbat->phones {} of {} ({:.4} %), RTP gaps seen {}",
            sim_sent.saturating_sub(nav_in),
            sim_sent,
            sim_sent.saturating_sub(nav_in) as f64 * 100.0 / sim_sent.max(1) as f64,
            nav_out.saturating_sub(sim_recv),
            nav_out,
            nav_out.saturating_sub(sim_recv) as f64 * 100.0 / nav_out.max(1) as f64,
            c.packets_lost.load(Ordering::Relaxed)
        );
        println!(
            "  kernel drops in the window (whole machine): UDP receive buffer {}, send buffer {}, backlog {}",
            drops1.0 - drops0.0,
            drops1.1 - drops0.1,
            drops1.2 - drops0.2
        );
        println!(
            "  shed: send buffer {}, inbound samples {}, commands {}, recorder frames {}; recordings written {} frames, failures {}",
            c.send_dropped.load(Ordering::Relaxed),
            c.samples_dropped.load(Ordering::Relaxed),
            c.commands_shed.load(Ordering::Relaxed),
            rec.shed.load(Ordering::Relaxed),
            rec.frames.load(Ordering::Relaxed),
            rec.failures.load(Ordering::Relaxed),
        );
    });
    media_rt.shutdown_timeout(Duration::from_secs(2));
}
