//! Real softphones for the integration tests: baresip (driven over its `ctrl_tcp` module) and
//! linphonec (driven over its standard input), each in its own directory under the test
//! directory, on loopback ports, with no audio hardware.
//!
//! Each phone's microphone is a WAV file (a pure tone the test generates, see [`write_tone`])
//! and what it hears is written to a WAV file, so a test can tell by frequency whether each
//! side heard the other ([`tone_windows`]). Processes are killed when dropped; their logs (with
//! the SIP trace) stay in the test directory and their tails are printed when a test fails.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{free_port, free_port_pair, tail, wait_until, POLL_EVERY};

/// How long a phone may take to start and open its control port.
pub const PHONE_START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a control command may take to be answered.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(15);
/// Default deadline for a SIP event on a phone (a call set-up or tear-down).
pub const PHONE_EVENT_DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Binaries

fn tool(env: &str, default: &str, probe_arg: &str, package: &str) -> PathBuf {
    let bin = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    let found = Command::new(&bin)
        .arg(probe_arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "{default} not found ({}); install Debian package `{package}` (tests/run-all.sh does) \
         or set {env} to the {default} binary",
        bin.display()
    );
    bin
}

/// The baresip binary (`NAVBAT_BARESIP` overrides the one on PATH). Panics with the fix when
/// it is missing.
pub fn baresip_bin() -> PathBuf {
    tool("NAVBAT_BARESIP", "baresip", "-h", "baresip-core")
}

/// The linphonec binary (`NAVBAT_LINPHONEC` overrides the one on PATH). Panics with the fix
/// when it is missing.
pub fn linphonec_bin() -> PathBuf {
    tool("NAVBAT_LINPHONEC", "linphonec", "-v", "linphone-cli")
}

/// Where baresip's modules are (`NAVBAT_BARESIP_MODULES` overrides Debian's place).
fn baresip_modules() -> PathBuf {
    let dir = std::env::var_os("NAVBAT_BARESIP_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/baresip/modules"));
    assert!(
        dir.join("ctrl_tcp.so").exists() && dir.join("sndfile.so").exists(),
        "baresip modules (ctrl_tcp, sndfile, ...) not found in {}; install Debian package \
         `baresip-core` or set NAVBAT_BARESIP_MODULES",
        dir.display()
    );
    dir
}

/// A block of 100 RTP ports for one phone in 30000..32699: below Linux's ephemeral range
/// (where the harness's free ports come from) and above navbat's RTP blocks (21000..29999).
/// baresip picks a free port in its range and tries again when one is taken.
fn phone_rtp_block() -> (u16, u16) {
    super::port_block(30_000, 27, 100)
}

// ---------------------------------------------------------------------------------------------
// Audio

/// Writes `secs` seconds of a pure `hz` tone (8 kHz mono 16-bit, about -10 dBFS) to `path`.
pub fn write_tone(path: &Path, hz: f64, secs: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create the tone WAV");
    for i in 0..secs * 8000 {
        let t = f64::from(i) / 8000.0;
        let s = (2.0 * std::f64::consts::PI * hz * t).sin() * 10_000.0;
        w.write_sample(s as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// Mono 16-bit PCM read from a WAV file that its writer may not have finalised (baresip's
/// and linphone's recorders): the chunks are walked to `data`, which is read to the end of the
/// file whatever its header says. Returns the sample rate and the samples (first channel).
pub fn read_wav_lenient(path: &Path) -> (u32, Vec<i16>) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE",
        "{} is not a WAV file",
        path.display()
    );
    let mut at = 12;
    let mut rate = 8000;
    let mut channels = 1usize;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = at + 8;
        if id == b"fmt " && body + 16 <= bytes.len() {
            let format = u16::from_le_bytes([bytes[body], bytes[body + 1]]);
            channels = usize::from(u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]));
            rate = u32::from_le_bytes(bytes[body + 4..body + 8].try_into().unwrap());
            let bits = u16::from_le_bytes([bytes[body + 14], bytes[body + 15]]);
            assert!(
                (format == 1 || format == 0xFFFE) && bits == 16 && channels >= 1,
                "{}: not 16-bit PCM (format {format}, {bits} bits, {channels} channels)",
                path.display()
            );
        }
        if id == b"data" {
            let samples: Vec<i16> = bytes[body..]
                .chunks_exact(2 * channels)
                .map(|frame| i16::from_le_bytes([frame[0], frame[1]]))
                .collect();
            return (rate, samples);
        }
        at = body + size + (size & 1);
    }
    panic!("{}: no data chunk", path.display());
}

/// The share (0..1) of a window's energy that is a tone of `hz` (one DFT bin): 1 for that pure
/// tone, about 0.5 for it mixed with another tone as loud, near 0 without it.
pub fn tone_share(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let energy: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    // Below this a window is silence (comfort noise, a decoder's fade-out), not a tone.
    if samples.is_empty() || energy / (samples.len() as f64) < 100.0 * 100.0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let (mut re, mut im) = (0.0, 0.0);
    for (i, s) in samples.iter().enumerate() {
        re += f64::from(*s) * (w * i as f64).cos();
        im -= f64::from(*s) * (w * i as f64).sin();
    }
    2.0 * (re * re + im * im) / (samples.len() as f64 * energy)
}

/// How many 20 ms windows of `samples` are dominated by the tone `hz` (more than half their
/// energy). 50 windows are one second of that tone.
pub fn tone_windows(rate: u32, samples: &[i16], hz: f64) -> usize {
    let window = (rate / 50) as usize;
    samples
        .chunks_exact(window)
        .filter(|w| tone_share(w, rate, hz) > 0.5)
        .count()
}

/// A short description of what a recording holds, for failure messages.
pub fn describe_heard(rate: u32, samples: &[i16], tones: &[f64]) -> String {
    let mut out = format!(
        "{:.1} s at {rate} Hz",
        samples.len() as f64 / f64::from(rate)
    );
    for hz in tones {
        out.push_str(&format!(
            "; {hz} Hz in {} windows of 20 ms",
            tone_windows(rate, samples, *hz)
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// baresip

/// How a baresip phone is set up.
#[derive(Clone, Debug)]
pub struct BaresipSpec {
    /// Names its directory and log in the test directory.
    pub name: String,
    /// The account line (`<sip:...>;params`), e.g. with `;auth_pass=...;answermode=auto`.
    pub account: String,
    /// What its microphone says (an 8 kHz mono 16-bit WAV, longer than the call).
    pub mic: PathBuf,
}

/// One event or response from baresip's control socket, stamped when it arrived.
#[derive(Clone, Debug)]
pub struct CtrlMessage {
    pub at: Instant,
    pub json: Value,
}

/// A running baresip: `baresip -f DIR -s` with ctrl_tcp, aufile (microphone) and sndfile
/// (what it hears, into `DIR/heard/`). Killed when dropped.
pub struct Baresip {
    child: Child,
    pub name: String,
    /// Its SIP port (UDP and TCP; TLS on the next one).
    pub sip_port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
    ctrl: TcpStream,
    messages: Arc<Mutex<Vec<CtrlMessage>>>,
    stop: Arc<AtomicBool>,
    reader: Option<thread::JoinHandle<()>>,
    next_token: u64,
}

impl Baresip {
    /// Starts baresip in `test_dir/<name>/` and connects to its control port.
    pub fn start(test_dir: &Path, spec: BaresipSpec) -> Baresip {
        let bin = baresip_bin();
        let modules = baresip_modules();
        let dir = test_dir.join(&spec.name);
        let heard = dir.join("heard");
        fs::create_dir_all(&heard).expect("create the phone's directory");
        let sip_port = free_port_pair();
        let ctrl_port = free_port();
        let (rtp_min, rtp_max) = phone_rtp_block();
        let config = format!(
            "# Written by tests/common/softphone.rs for one test.\n\
             poll_method\t\tepoll\n\
             sip_listen\t\t127.0.0.1:{sip_port}\n\
             net_interface\t\t127.0.0.1\n\
             audio_player\t\talsa,null\n\
             audio_alert\t\talsa,null\n\
             audio_source\t\taufile,{mic}\n\
             ausrc_srate\t\t8000\n\
             auplay_srate\t\t8000\n\
             ausrc_channels\t\t1\n\
             auplay_channels\t\t1\n\
             audio_level\t\tno\n\
             rtp_ports\t\t{rtp_min}-{rtp_max}\n\
             module_path\t\t{modules}\n\
             module\t\t\tg711.so\n\
             module\t\t\taufile.so\n\
             module\t\t\talsa.so\n\
             module\t\t\tsndfile.so\n\
             module_app\t\taccount.so\n\
             module_app\t\tmenu.so\n\
             module_app\t\tctrl_tcp.so\n\
             ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n\
             snd_path\t\t{heard}\n",
            mic = spec.mic.display(),
            modules = modules.display(),
            heard = heard.display(),
        );
        fs::write(dir.join("config"), config).expect("write baresip config");
        fs::write(dir.join("accounts"), format!("{}\n", spec.account))
            .expect("write baresip accounts");
        let log = test_dir.join(format!("{}.log", spec.name));
        let log_file = File::create(&log).expect("create the phone's log");
        let mut cmd = Command::new(&bin);
        cmd.arg("-f")
            .arg(&dir)
            // -s: the SIP trace goes into the log (the TCP test reads it).
            .arg("-s")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the log handle"))
            .stderr(log_file);
        fs::write(
            test_dir.join(format!("{}.cmd", spec.name)),
            format!("{cmd:?}\n"),
        )
        .ok();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));

        let until = Instant::now() + PHONE_START_DEADLINE;
        let ctrl = loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "baresip `{}` exited ({status}) at start; its log:\n{}",
                    spec.name,
                    tail(&log, 40)
                );
            }
            if let Ok(s) = TcpStream::connect(("127.0.0.1", ctrl_port)) {
                break s;
            }
            if Instant::now() >= until {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "baresip `{}` did not open its control port {ctrl_port} within \
                     {PHONE_START_DEADLINE:?}; its log:\n{}",
                    spec.name,
                    tail(&log, 40)
                );
            }
            thread::sleep(POLL_EVERY);
        };
        ctrl.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let mut stream = ctrl.try_clone().expect("clone the control socket");
            let (messages, stop) = (messages.clone(), stop.clone());
            let transcript = test_dir.join(format!("{}.ctrl.log", spec.name));
            thread::spawn(move || read_netstrings(&mut stream, &messages, &stop, &transcript))
        };
        Baresip {
            child,
            name: spec.name,
            sip_port,
            dir,
            log,
            ctrl,
            messages,
            stop,
            reader: Some(reader),
            next_token: 0,
        }
    }

    /// Sends a command (`dial`, `hangup`, `sndcode`, `accept`, ...) and returns its response
    /// once baresip answered it. Panics if it does not answer in time or answers not ok.
    pub fn command(&mut self, command: &str, params: &str) -> Value {
        self.next_token += 1;
        let token = format!("{}-{}", self.name, self.next_token);
        let body = json!({"command": command, "params": params, "token": token}).to_string();
        let frame = format!("{}:{},", body.len(), body);
        self.ctrl
            .write_all(frame.as_bytes())
            .unwrap_or_else(|e| panic!("baresip `{}`: send {command}: {e}", self.name));
        let what = format!("baresip `{}` to answer `{command} {params}`", self.name);
        let response = {
            let messages = self.messages.clone();
            let until = Instant::now() + COMMAND_DEADLINE;
            loop {
                let found = messages
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|m| m.json["response"] == true && m.json["token"] == token.as_str())
                    .map(|m| m.json.clone());
                if let Some(found) = found {
                    break found;
                }
                if Instant::now() >= until {
                    panic!(
                        "gave up after {COMMAND_DEADLINE:?} waiting for {what}\n{}",
                        self.report()
                    );
                }
                thread::sleep(POLL_EVERY);
            }
        };
        assert!(
            response["ok"] == true,
            "baresip `{}` refused `{command} {params}`: {response}\n{}",
            self.name,
            self.report()
        );
        response
    }

    /// Dials `uri` (`sip:DID@127.0.0.1:PORT`, with `;transport=tcp` for TCP).
    pub fn dial(&mut self, uri: &str) {
        self.command("dial", uri);
    }

    /// Hangs up the current call (CANCEL while it is not answered, BYE once it is).
    pub fn hangup(&mut self) {
        self.command("hangup", "");
    }

    /// Presses one key: an RFC 4733 telephone-event (press and release).
    pub fn press(&mut self, key: char) {
        self.command("sndcode", &key.to_string());
    }

    /// Every call event so far, oldest first.
    pub fn events(&self) -> Vec<CtrlMessage> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.json["event"] == true)
            .cloned()
            .collect()
    }

    /// The first event of `kind` (`CALL_PROGRESS`, `CALL_ESTABLISHED`, `CALL_CLOSED`, ...).
    pub fn event(&self, kind: &str) -> Option<CtrlMessage> {
        self.events().into_iter().find(|m| m.json["type"] == kind)
    }

    /// Waits for the first event of `kind` and returns it, or panics with the phone's
    /// events and log after `deadline`.
    pub fn wait_event(&mut self, kind: &str, deadline: Duration) -> CtrlMessage {
        self.wait_event_because(kind, deadline, "")
    }

    /// [`Baresip::wait_event`] whose failure message says why the event was expected.
    pub fn wait_event_because(
        &mut self,
        kind: &str,
        deadline: Duration,
        because: &str,
    ) -> CtrlMessage {
        let until = Instant::now() + deadline;
        loop {
            if let Some(found) = self.event(kind) {
                return found;
            }
            if Instant::now() >= until {
                panic!(
                    "baresip `{}`: no {kind} within {deadline:?}. {because}\n{}",
                    self.name,
                    self.report()
                );
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "baresip `{}` exited ({status}) while waiting for {kind}\n{}",
                    self.name,
                    self.report()
                );
            }
            thread::sleep(POLL_EVERY);
        }
    }

    /// The kinds of the events so far, for failure messages (RTCP reports left out).
    pub fn event_kinds(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|m| m.json["type"].as_str().unwrap_or("?").to_string())
            .filter(|k| k != "CALL_RTCP")
            .collect()
    }

    /// What the phone heard in its (only) call: the decoded audio sndfile wrote.
    pub fn heard(&self) -> (u32, Vec<i16>) {
        let dir = self.dir.join("heard");
        let path = wait_until(
            &format!("baresip `{}` to record what it heard", self.name),
            Duration::from_secs(10),
            || {
                let mut decoded: Vec<PathBuf> = fs::read_dir(&dir)
                    .ok()?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                    .collect();
                decoded.sort();
                decoded.pop()
            },
        );
        read_wav_lenient(&path)
    }

    /// The SIP messages of the trace (`-s`) as (transport, "from -> to", start line).
    pub fn sip_trace(&self) -> Vec<(String, String, String)> {
        let text = String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some((transport, route)) = line.split_once(' ') else {
                continue;
            };
            if !matches!(transport, "UDP" | "TCP" | "TLS") || !route.contains(" -> ") {
                continue;
            }
            if let Some(start) = lines.get(i + 1) {
                out.push((
                    transport.to_string(),
                    route.trim().to_string(),
                    start.trim().to_string(),
                ));
            }
        }
        out
    }

    /// The lines of the log that start with `prefix` (e.g. `audio tx pipeline:`).
    pub fn log_lines(&self, prefix: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned();
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    /// The phone's events and the tail of its log.
    pub fn report(&self) -> String {
        format!(
            "---- baresip `{}` events: {:?}\n---- {} (last 60 lines) ----\n{}\n---- end ----",
            self.name,
            self.event_kinds(),
            self.log.display(),
            tail(&self.log, 60)
        )
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

/// Reads netstring-framed JSON (`LEN:{...},`) until the socket closes or `stop` is set.
fn read_netstrings(
    stream: &mut TcpStream,
    messages: &Mutex<Vec<CtrlMessage>>,
    stop: &AtomicBool,
    transcript: &Path,
) {
    let mut log = File::create(transcript).ok();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        while let Some(body) = next_netstring(&mut buf) {
            if let Some(log) = log.as_mut() {
                let _ = writeln!(log, "{}", String::from_utf8_lossy(&body));
            }
            if let Ok(json) = serde_json::from_slice::<Value>(&body) {
                messages.lock().unwrap().push(CtrlMessage {
                    at: Instant::now(),
                    json,
                });
            }
        }
    }
}

/// Takes the first complete netstring (`LEN:BODY,`) off `buf` and returns its body.
fn next_netstring(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let colon = buf.iter().position(|b| *b == b':')?;
    let Ok(len) = std::str::from_utf8(&buf[..colon])
        .unwrap_or("")
        .trim()
        .parse::<usize>()
    else {
        // Not a netstring: drop what cannot be parsed rather than loop on it.
        buf.clear();
        return None;
    };
    if buf.len() < colon + 1 + len + 1 {
        return None;
    }
    let body = buf[colon + 1..colon + 1 + len].to_vec();
    buf.drain(..colon + 1 + len + 1);
    Some(body)
}

// ---------------------------------------------------------------------------------------------
// linphonec

/// A running linphonec, driven through its standard input (its console commands), with its
/// sound card replaced by files (`soundcard use files`, `play`, `record`). Killed when
/// dropped; its console output is `<name>.out`, liblinphone's log (with the SIP messages)
/// `<name>.trace.log`.
pub struct Linphonec {
    child: Child,
    stdin: ChildStdin,
    pub name: String,
    pub sip_port: u16,
    pub out: PathBuf,
    pub trace: PathBuf,
    /// What the phone heard.
    pub record: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Linphonec {
    /// Starts linphonec in `test_dir/<name>/` on a free SIP port, talking `mic` and recording
    /// what it hears; `auto_answer` answers incoming calls (`-a`). Only PCMU and PCMA are
    /// offered. Returns once its SIP listener is up.
    pub fn start(test_dir: &Path, name: &str, mic: &Path, auto_answer: bool) -> Linphonec {
        let bin = linphonec_bin();
        let dir = test_dir.join(name);
        // linphonec keeps its database and history under $HOME: without the database
        // directory liblinphone never brings its SIP transports up.
        let home = dir.join("home");
        fs::create_dir_all(home.join(".local/share/linphone")).expect("create linphone home");
        let sip_port = free_port();
        let (rtp_min, rtp_max) = phone_rtp_block();
        let mut rc = format!(
            "[sip]\n\
             sip_port={sip_port}\n\
             sip_tcp_port=0\n\
             sip_tls_port=0\n\
             ipv6_enabled=0\n\
             register_only_when_network_is_up=0\n\
             [rtp]\n\
             audio_rtp_port={rtp_min}-{rtp_max}\n\
             video_rtp_port=0\n\
             bind_address=127.0.0.1\n\
             [video]\n\
             capture=0\n\
             display=0\n\
             automatically_initiate=0\n\
             automatically_accept=0\n\
             [misc]\n\
             enable_video=0\n"
        );
        // G.711 only, PCMU first: liblinphone adds the codecs it knows but that the file does
        // not name, so the others are named and disabled.
        let codecs = [
            ("PCMU", 8000, 1),
            ("PCMA", 8000, 1),
            ("opus", 48000, 0),
            ("speex", 16000, 0),
            ("speex", 8000, 0),
            ("speex", 32000, 0),
            ("GSM", 8000, 0),
            ("G722", 8000, 0),
            ("G729", 8000, 0),
        ];
        for (i, (mime, rate, enabled)) in codecs.iter().enumerate() {
            rc.push_str(&format!(
                "[audio_codec_{i}]\nmime={mime}\nrate={rate}\nchannels=1\nenabled={enabled}\n"
            ));
        }
        let rc_path = dir.join("linphonerc");
        fs::write(&rc_path, rc).expect("write linphonerc");
        let out = test_dir.join(format!("{name}.out"));
        let trace = test_dir.join(format!("{name}.trace.log"));
        let record = dir.join("heard.wav");
        let mut cmd = Command::new(&bin);
        cmd.arg("-c")
            .arg(&rc_path)
            .args(["-d", "6", "-l"])
            .arg(&trace)
            .current_dir(&dir)
            .env("HOME", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if auto_answer {
            cmd.arg("-a");
        }
        fs::write(test_dir.join(format!("{name}.cmd")), format!("{cmd:?}\n")).ok();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdin = child.stdin.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let stdout = child.stdout.take().unwrap();
            let stderr = child.stderr.take().unwrap();
            let lines = lines.clone();
            let out = out.clone();
            thread::spawn(move || {
                let file = Arc::new(Mutex::new(File::create(&out).ok()));
                let err_thread = {
                    let (lines, file) = (lines.clone(), file.clone());
                    thread::spawn(move || collect_lines(stderr, &lines, &file))
                };
                collect_lines(stdout, &lines, &file);
                let _ = err_thread.join();
            })
        };
        let mut phone = Linphonec {
            child,
            stdin,
            name: name.to_string(),
            sip_port,
            out,
            trace,
            record,
            lines,
            reader: Some(reader),
        };
        phone.wait_trace(
            "transport=UDP]",
            "its SIP listener (`Creating listening point ... transport=UDP`)",
        );
        phone.send("soundcard use files");
        phone.wait_output("Using wav files instead of soundcard.");
        phone.send(&format!("play {}", mic.display()));
        let record = phone.record.clone();
        phone.send(&format!("record {}", record.display()));
        phone
    }

    /// Types one console command.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}")
            .and_then(|_| self.stdin.flush())
            .unwrap_or_else(|e| panic!("linphonec `{}`: send `{line}`: {e}", self.name));
    }

    /// Registers `ext` at navbat (`register <identity> <proxy> <password>`).
    pub fn register(&mut self, ext: &str, password: &str, navbat_sip: u16) {
        self.send(&format!(
            "register sip:{ext}@127.0.0.1:{navbat_sip} sip:127.0.0.1:{navbat_sip} {password}"
        ));
    }

    /// Whether some console output line contains `needle`.
    pub fn said(&self, needle: &str) -> bool {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
    }

    /// Waits for a console output line containing `needle`.
    pub fn wait_output(&mut self, needle: &str) {
        self.wait_output_for(needle, PHONE_EVENT_DEADLINE);
    }

    /// Waits up to `deadline` for a console output line containing `needle`.
    pub fn wait_output_for(&mut self, needle: &str, deadline: Duration) {
        let until = Instant::now() + deadline;
        loop {
            if self.said(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "linphonec `{}` exited ({status}) while waiting for `{needle}`\n{}",
                    self.name,
                    self.report()
                );
            }
            if Instant::now() >= until {
                panic!(
                    "linphonec `{}`: no `{needle}` within {deadline:?}\n{}",
                    self.name,
                    self.report()
                );
            }
            thread::sleep(POLL_EVERY);
        }
    }

    fn wait_trace(&mut self, needle: &str, what: &str) {
        let until = Instant::now() + PHONE_START_DEADLINE;
        loop {
            let text =
                String::from_utf8_lossy(&fs::read(&self.trace).unwrap_or_default()).into_owned();
            if text.contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "linphonec `{}` exited ({status}) before {what}\n{}",
                    self.name,
                    self.report()
                );
            }
            if Instant::now() >= until {
                panic!(
                    "linphonec `{}`: no {what} within {PHONE_START_DEADLINE:?}\n{}",
                    self.name,
                    self.report()
                );
            }
            thread::sleep(POLL_EVERY);
        }
    }

    /// What the phone heard (the `record` file).
    pub fn heard(&self) -> (u32, Vec<i16>) {
        read_wav_lenient(&self.record)
    }

    /// Console output and the tail of liblinphone's log.
    pub fn report(&self) -> String {
        format!(
            "---- linphonec `{}` console ({}), last 40 lines ----\n{}\n\
             ---- {} (last 60 lines) ----\n{}\n---- end ----",
            self.name,
            self.out.display(),
            tail(&self.out, 40),
            self.trace.display(),
            tail(&self.trace, 60)
        )
    }
}

impl Drop for Linphonec {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

fn collect_lines(stream: impl Read, lines: &Mutex<Vec<String>>, file: &Mutex<Option<File>>) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else {
            return;
        };
        if let Some(f) = file.lock().unwrap().as_mut() {
            let _ = writeln!(f, "{line}");
        }
        lines.lock().unwrap().push(line);
    }
}
