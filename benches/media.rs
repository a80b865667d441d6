//! Media benchmark (issue 3): N concurrent bridged and recorded calls through navbat's media
//! engine, in one process, on loopback.
//!
//! Each call is a media session exactly as the call actor starts it (caller leg PCMA with
//! telephone-event, operator leg PCMU, so every frame is transcoded both ways, and a stereo
//! recording). Simulated phones on their own runtime send one 20 ms packet per leg every
//! 20 ms and count what comes back. Measured over the steady-state window:
//! - CPU of navbat's media threads (`navbat-media` runtime worker, `navbat-recorder` writer),
//!   from /proc/self/task/*/stat, in % of one core; the simulator's threads are excluded;
//! - memory per call: growth of the process RSS from before the calls to steady state,
//!   divided by N; and RSS at the start and end of the window (growth);
//! - packets relayed per second (frames bridged x 2 directions) and received/sent rates;
//! - loss: packets the phones sent that navbat did not receive, and packets navbat sent
//!   that the phones did not receive, plus RTP sequence gaps navbat saw.
//!
//! Run: `cargo bench --bench media` (env NAVBAT_BENCH_CALLS=300, NAVBAT_BENCH_SECS=60).

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

async fn phone(
    sock: std::net::UdpSocket,
    to: SocketAddr,
    codec: Codec,
    counters: Arc<SimCounters>,
    stop: Arc<AtomicBool>,
) {
    sock.set_nonblocking(true).unwrap();
    let sock = tokio::net::UdpSocket::from_std(sock).unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let tone: Vec<i16> = (0..FRAME)
        .map(|i| ((i as f64 * 0.35).sin() * 5000.0) as i16)
        .collect();
    let mut payload = Vec::new();
    codec.law().encode_into(&tone, &mut payload);
    let mut buf = [0u8; 2048];
    let (mut seq, mut ts) = (0u16, 0u32);
    let ssrc: u32 = rand::random();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if stop.load(Ordering::Relaxed) {
                    continue;
                }
                let mut pkt = Vec::with_capacity(12 + payload.len());
                navbat::media::rtp::write_header(
                    &navbat::media::rtp::RtpHeader {
                        marker: false,
                        payload_type: codec.payload_type(),
                        seq,
                        timestamp: ts,
                        ssrc,
                    },
                    &mut pkt,
                );
                pkt.extend_from_slice(&payload);
                if sock.send_to(&pkt, to).await.is_ok() {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(FRAME as u32);
            }
            r = sock.recv_from(&mut buf) => {
                if r.is_ok() {
                    counters.received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
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
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sim")
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let engine = MediaEngine::new(
        media_rt.handle().clone(),
        &MediaSettings {
            prompts_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/config/prompts").into(),
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
    let sim_handle = sim_rt.handle().clone();
    let system = actix::System::new();
    system.block_on(async move {
        let sink = actix::Actor::start(Sink);
        let rss_before = rss_kib();
        let mut handles = Vec::new();
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
            sim_handle.spawn(phone(caller_sim, caller_addr, Codec::Pcma, sim.clone(), stop.clone()));
            sim_handle.spawn(phone(op_sim, op_addr, Codec::Pcmu, sim.clone(), stop.clone()));
        }
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
        let (sim_sent1, sim_recv1) = (
            sim.sent.load(Ordering::Relaxed),
            sim.received.load(Ordering::Relaxed),
        );
        // Stop the phones, let the last packets land, then compare totals.
        stop.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sim_sent = sim.sent.load(Ordering::Relaxed);
        let nav_in = c.packets_in.load(Ordering::Relaxed);
        let nav_out = c.packets_out.load(Ordering::Relaxed);
        let sim_recv = sim.received.load(Ordering::Relaxed);
        drop(handles);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let clk = 100.0; // USER_HZ on Linux
        println!("media benchmark: {calls} bridged+recorded calls, {elapsed:.1} s measured");
        println!(
            "  CPU (media runtime + recorder threads): {:.1} % of one core",
            ticks as f64 / clk / elapsed * 100.0
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
            "  shed: send buffer {}, inbound samples {}, commands {}, recorder frames {}; recordings written {} frames, failures {}",
            c.send_dropped.load(Ordering::Relaxed),
            c.samples_dropped.load(Ordering::Relaxed),
            c.commands_shed.load(Ordering::Relaxed),
            rec.shed.load(Ordering::Relaxed),
            rec.frames.load(Ordering::Relaxed),
            rec.failures.load(Ordering::Relaxed),
        );
    });
    sim_rt.shutdown_background();
    media_rt.shutdown_timeout(Duration::from_secs(2));
}
