//! Recording encryption benchmark (issue 16): what encrypting recordings at rest costs the
//! recording writer for N concurrent recorded calls, against the same calls written as plain
//! WAV.
//!
//! Method: the real `Recorder` (its `navbat-recorder` writer thread, its queue and files) takes
//! N recordings fed in real time: every 20 ms one stereo frame per call, handed over in
//! half-second batches as the media engine does. One run writes plain WAV (no keys), one
//! writes encrypted files (AES-256-GCM chunks, `navbat::recordings::seal`). The CPU of the
//! writer thread (utime + stime from /proc/self/task/*/stat, clock ticks) over the run is
//! given in % of one core; the feeding thread is not counted. A micro-measurement times
//! sealing one 16,000-byte chunk alone, from which the pure cipher cost of N calls (2 chunks
//! per call and second) follows.
//!
//! Run: `cargo bench --bench recordings` (env NAVBAT_BENCH_CALLS=300, NAVBAT_BENCH_SECS=30,
//! NAVBAT_BENCH_RECORDINGS=<directory for the files>, default the system temp dir).

use navbat::media::recorder::{Recorder, FRAME};
use navbat::recordings::seal::{Keys, Sealed, CHUNK};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (utime + stime) in clock ticks of the threads named `name`.
fn thread_ticks(name: &str) -> u64 {
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
        if &stat[open + 1..close] != name {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // After the name: state is field 0; utime and stime are fields 11 and 12.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += ticks(11) + ticks(12);
    }
    total
}

fn ticks_per_second() -> f64 {
    // The kernel's USER_HZ; 100 on every Linux this runs on (getconf CLK_TCK).
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Runs `calls` recordings for `secs` seconds of real time; returns the writer's CPU in % of
/// one core, the bytes written, and the recorder (kept by the caller, so that its idle thread
/// stays in /proc while the next run is measured by thread name).
fn run(
    dir: &std::path::Path,
    keys: Option<Arc<Keys>>,
    calls: usize,
    secs: u64,
) -> (f64, u64, Recorder) {
    let mut recorder = Recorder::start(dir, calls * 50 * 4).expect("start the recorder");
    if let Some(k) = keys {
        recorder = recorder.with_keys(k);
    }
    // A voice-like signal (two tones), different per call, so nothing compresses trivially.
    let mut recordings: Vec<_> = (0..calls)
        .map(|i| recorder.open_for(&format!("c{i}"), "dtm"))
        .collect();
    let frame = |call: usize, n: u64| -> ([i16; FRAME], [i16; FRAME]) {
        let mut l = [0i16; FRAME];
        let mut r = [0i16; FRAME];
        for k in 0..FRAME {
            let t = (n as usize * FRAME + k) as f64 / 8000.0;
            let f = 300.0 + call as f64;
            l[k] = (8000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16;
            r[k] = (6000.0 * (2.0 * std::f64::consts::PI * (f * 1.5) * t).sin()) as i16;
        }
        (l, r)
    };
    let frames: Vec<_> = (0..calls).map(|c| frame(c, 0)).collect();
    let start_ticks = thread_ticks("navbat-recorder");
    let start = Instant::now();
    let total_frames = secs * 50;
    for n in 0..total_frames {
        for (i, r) in recordings.iter_mut().enumerate() {
            r.push(&frames[i].0, &frames[i].1);
        }
        // Real time: frame n+1 is due 20 ms after frame n.
        let due = start + Duration::from_millis((n + 1) * 20);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(recordings); // closed: the writer finishes each file
                      // The writer finishes the files within a moment; count its CPU for that too.
    let closing = Instant::now();
    while recorder
        .counters
        .open
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
        && closing.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let ticks = thread_ticks("navbat-recorder") - start_ticks;
    let bytes = recorder
        .counters
        .bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    let shed = recorder
        .counters
        .shed
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(shed, 0, "the writer shed frames: the figure would be wrong");
    (
        ticks as f64 / ticks_per_second() / elapsed * 100.0,
        bytes,
        recorder,
    )
}

fn main() {
    let calls = env_or("NAVBAT_BENCH_CALLS", 300) as usize;
    let secs = env_or("NAVBAT_BENCH_SECS", 30);
    let base = std::env::var("NAVBAT_BENCH_RECORDINGS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::Builder::new()
        .prefix("navbat-bench-recordings-")
        .tempdir_in(&base)
        .expect("a directory for the recordings");
    let key_file = dir.path().join("keys/recordings.key");
    Keys::generate(&key_file, 0).expect("a key file");
    let keys = Arc::new(Keys::load(&key_file).expect("the key file"));

    // The cipher alone: sealing one chunk, many times.
    let sealed = Sealed::new(&keys);
    let chunk = vec![0x5au8; CHUNK];
    let rounds = 20_000u64;
    let t = Instant::now();
    let mut sink = 0usize;
    for i in 0..rounds {
        sink += sealed.seal(i, &chunk).len();
    }
    let per_chunk = t.elapsed().as_secs_f64() / rounds as f64;
    assert!(sink > 0);
    let cipher_share = per_chunk * 2.0 * calls as f64 * 100.0;

    println!(
        "recordings: {calls} calls, {secs} s of real time each run, files in {}",
        base.display()
    );
    println!(
        "seal one {CHUNK}-byte chunk: {:.1} us ({:.0} MB/s); {calls} calls x 2 chunks/s = {cipher_share:.2} % of one core",
        per_chunk * 1e6,
        CHUNK as f64 / per_chunk / 1e6
    );
    let (plain, plain_bytes, _plain_recorder) = run(&dir.path().join("plain"), None, calls, secs);
    println!(
        "writer, plain WAV:  {plain:.2} % of one core ({} MB written)",
        plain_bytes / 1_000_000
    );
    let (sealed_cpu, sealed_bytes, _sealed_recorder) =
        run(&dir.path().join("sealed"), Some(keys), calls, secs);
    println!(
        "writer, encrypted:  {sealed_cpu:.2} % of one core ({} MB written)",
        sealed_bytes / 1_000_000
    );
    println!(
        "cost of encryption: {:+.2} % of one core (target < 5 %)",
        sealed_cpu - plain
    );
}
