//! The media engine end to end (issue 3: D5, D17, D19, C9), with the real binary and real
//! SIPp peers. SIPp does the signalling and plays sip-tester's audio and RFC 4733 pcaps;
//! the phones' media ends are UDP sockets owned by the test ([`Phone`]), so the test can
//! decode what each party actually hears.
//!
//! Nothing here asserts how long something took. Where ordering matters (early media
//! before the 200 OK) it compares the clock stamps of packets with SIPp's message trace.

mod common;

use common::*;
use navbat::media::{g711, rtp, Codec};
use serde_json::json;
use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

/// One RTP packet a phone received.
#[derive(Clone, Debug)]
struct Received {
    at: SystemTime,
    /// Where it came from (navbat's RTP port for the leg).
    from: SocketAddr,
    header: rtp::RtpHeader,
    samples: Vec<i16>,
}

/// The media end of a test phone: receives and decodes RTP, and optionally talks (a tone)
/// back to where navbat's packets come from.
struct Phone {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Phone {
    /// A phone that listens and, with `talk`, says a 440 Hz tone.
    fn start(talk: Option<Codec>) -> Phone {
        Phone::start_tone(talk.map(|c| (c, 440.0)))
    }

    /// A phone that listens and, with `talk`, says a tone of that frequency (Hz). A multiple
    /// of 50 Hz fills every 20 ms frame with whole periods, so [`tone_share`] tells tones apart.
    fn start_tone(talk: Option<(Codec, f64)>) -> Phone {
        Phone::start_tone_quiet(talk, Vec::new())
    }

    /// [`Phone::start_tone`], sending nothing during the `quiet` spans (times since it
    /// first heard something).
    fn start_tone_quiet(talk: Option<(Codec, f64)>, quiet: Vec<Range<Duration>>) -> Phone {
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").expect("bind phone"));
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let remote: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let mut threads = Vec::new();
        {
            let (sock, received, stop, remote) =
                (sock.clone(), received.clone(), stop.clone(), remote.clone());
            threads.push(thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    *remote.lock().unwrap() = Some(from);
                    let Ok((header, payload)) = rtp::parse(&buf[..n]) else {
                        continue;
                    };
                    let mut samples = Vec::new();
                    if let Some(codec) = Codec::from_payload_type(header.payload_type) {
                        codec.law().decode_into(payload, &mut samples);
                    }
                    received.lock().unwrap().push(Received {
                        at: SystemTime::now(),
                        from,
                        header,
                        samples,
                    });
                }
            }));
        }
        if let Some((codec, hz)) = talk {
            let (sock, stop) = (sock.clone(), stop.clone());
            threads.push(thread::spawn(move || {
                let mut seq = 1u16;
                let mut ts = 0u32;
                let mut phase = 0f64;
                let mut first_heard: Option<std::time::Instant> = None;
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(20));
                    let Some(to) = *remote.lock().unwrap() else {
                        continue;
                    };
                    let since = first_heard
                        .get_or_insert_with(std::time::Instant::now)
                        .elapsed();
                    if quiet.iter().any(|span| span.contains(&since)) {
                        continue;
                    }
                    let tone: Vec<i16> = (0..160)
                        .map(|_| {
                            phase += 2.0 * std::f64::consts::PI * hz / 8000.0;
                            (phase.sin() * 6000.0) as i16
                        })
                        .collect();
                    let mut pkt = Vec::new();
                    rtp::write_header(
                        &rtp::RtpHeader {
                            marker: seq == 1,
                            payload_type: codec.payload_type(),
                            seq,
                            timestamp: ts,
                            ssrc: 0x5eed,
                        },
                        &mut pkt,
                    );
                    codec.law().encode_into(&tone, &mut pkt);
                    let _ = sock.send_to(&pkt, to);
                    seq = seq.wrapping_add(1);
                    ts = ts.wrapping_add(160);
                }
            }));
        }
        Phone {
            addr,
            received,
            stop,
            threads,
        }
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn wav_samples(path: &Path) -> usize {
    hound::WavReader::open(path).unwrap().len() as usize
}

/// When SIPp received the first `SIP/2.0 <status>` (from its `-trace_msg` log).
fn sipp_received_at(log: &Path, status: &str) -> SystemTime {
    let text = std::fs::read_to_string(log).unwrap();
    let mut stamp = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("----------------------------------------------- ") {
            stamp = Some(rest.trim().to_string());
        }
        if line.starts_with(&format!("SIP/2.0 {status}")) {
            let s = stamp.expect("a stamp before the message");
            let civil: jiff::civil::DateTime = s.replace(' ', "T").parse().unwrap();
            let ts = jiff::tz::TimeZone::system().to_timestamp(civil).unwrap();
            return SystemTime::UNIX_EPOCH + Duration::from_micros(ts.as_microsecond() as u64);
        }
    }
    panic!("SIPp never received {status}; trace:\n{text}");
}

/// One SIPp call of `scenario` to `did` with its RTP on `phone`; `pause_ms` is the
/// scenario's `-d` (how long it talks or stays), when it has one.
fn dial(
    navbat: &Navbat,
    name: &str,
    scenario: &str,
    did: &str,
    phone: &Phone,
    pause_ms: Option<u64>,
) -> Sipp {
    let port = phone.port();
    let pause = pause_ms.map(|ms| ms.to_string());
    let mut args = vec!["-s", did, "-m", "1", "-key", "rtp_port", &port];
    if let Some(pause) = &pause {
        args.extend(["-d", pause]);
    }
    navbat.sipp_client(name, scenario, &args)
}

fn caller(navbat: &Navbat, name: &str, phone: &Phone, talk_ms: u64) -> Sipp {
    dial(
        navbat,
        name,
        "media_caller.xml",
        DTM_DID,
        phone,
        Some(talk_ms),
    )
}

fn answering_phone(navbat: &Navbat, ext: &str, phone: &Phone) -> Sipp {
    let port = free_port();
    let sipp = Sipp::start(
        navbat.dir.path(),
        &format!("phone{ext}"),
        "media_answer.xml",
        &["-m", "1", "-key", "rtp_port", &phone.port()],
        None,
        port,
    );
    navbat
        .register(ext, navbat.config.password_of(ext), port)
        .wait_success();
    sipp
}

fn rms_of(packets: &[Received]) -> f64 {
    let all: Vec<i16> = packets.iter().flat_map(|p| p.samples.clone()).collect();
    g711::rms(&all)
}

#[test]
fn greeting_is_early_media_before_200_and_rfc4733_keys_drive_the_ivr() {
    let dir = TestDir::new("media-greeting-prompts");
    let prompts = shared_prompts(dir.path());
    let greeting = wav_samples(&prompts.join("uz/greeting.wav"))
        + wav_samples(&prompts.join("ru/greeting.wav"));
    let navbat = Navbat::start(
        "media-greeting",
        TestConfig::default().prompts_dir(&prompts),
    );
    let phone = Phone::start(None);
    let sipp = caller(&navbat, "caller", &phone, 500);
    sipp.wait_success();

    // The IVR went by RFC 4733 keys: 1 (Uzbek), then 2 (results).
    for digit in ["1", "2"] {
        navbat.wait_for_event("dtmf_received", EVENT_DEADLINE, |e| {
            e["digit"] == digit && e["via"] == "rfc4733"
        });
    }
    navbat.wait_for_event("ivr_step", EVENT_DEADLINE, |e| {
        e["level"] == 1 && e["digit"] == "1"
    });
    navbat.wait_for_event("ivr_step", EVENT_DEADLINE, |e| {
        e["level"] == 2 && e["digit"] == "2"
    });
    navbat.wait_for_event("call_enqueued", EVENT_DEADLINE, |e| {
        e["language"] == "uz" && e["topic"] == "results"
    });
    // One key per event: the pcaps' three redundant end packets are not extra keys.
    let keys = navbat
        .events()
        .iter()
        .filter(|e| e["kind"] == "dtmf_received")
        .count();
    assert_eq!(keys, 2, "each RFC 4733 event counts once");

    // Early media: before the 200 OK the caller received (nearly) the whole greeting, not
    // silence, as one continuous stream.
    let ok_at = sipp_received_at(&navbat.dir.path().join("caller.messages.log"), "200 OK");
    let received = phone.received();
    let early: Vec<Received> = received.iter().filter(|p| p.at < ok_at).cloned().collect();
    let expected = greeting.div_ceil(160);
    assert!(
        early.len() * 10 >= expected * 9,
        "{} early packets before the 200 OK, the greeting is {expected}",
        early.len()
    );
    assert!(rms_of(&early) > 300.0, "the early media is silence");
    assert!(
        early[0].header.marker,
        "the first packet starts a talk spurt"
    );
    assert!(
        early.iter().all(|p| p.header.payload_type == 8),
        "PCMA, as offered first"
    );
    for w in early.windows(2) {
        assert_eq!(w[1].header.ssrc, w[0].header.ssrc);
        assert_eq!(w[1].header.seq, w[0].header.seq.wrapping_add(1));
        assert_eq!(
            w[1].header.timestamp,
            w[0].header.timestamp.wrapping_add(160)
        );
    }
}

#[test]
fn bridged_call_is_transcoded_recorded_fetchable_and_listened_in() {
    let dir = TestDir::new("media-bridge-prompts");
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start(
        "media-bridge",
        TestConfig::default()
            .prompts_dir(&prompts)
            .reserve_after_secs(600),
    );
    // The operator's phone answers PCMU and talks; the caller offered PCMA first.
    let op_media = Phone::start(Some(Codec::Pcmu));
    let mut op_sipp = answering_phone(&navbat, "1001", &op_media);
    let sup_media = Phone::start(None);
    let mut sup_sipp = answering_phone(&navbat, "1901", &sup_media);
    navbat.wait_operator("1001", "available");

    let caller_media = Phone::start(None);
    let sipp = caller(&navbat, "caller", &caller_media, 6000);
    let answered = navbat.wait_for_event("call_answered", Duration::from_secs(40), |_| true);
    let call = answered["call"].as_str().unwrap().to_string();

    // A supervisor listens in (D17).
    let resp = navbat.post_json(
        &format!("/api/calls/{call}/monitor"),
        &json!({"supervisor": "1901", "mode": "listen"}),
    );
    assert_eq!(resp.status, 202, "{resp:?}");
    navbat.wait_for_event("monitor_started", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str() && e["mode"] == "listen"
    });

    // The recording can be fetched while the call goes on (D19).
    let wav = wait_until("a recording in progress with audio", EVENT_DEADLINE, || {
        let bytes = http_get_bytes(navbat.http, &format!("/api/recordings/{call}"))?;
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).ok()?;
        (reader.len() >= 8000).then_some(reader.spec())
    });
    assert_eq!((wav.channels, wav.sample_rate), (2, 8000));
    let unauthorised = http_request(
        navbat.http,
        "GET",
        &format!("/api/recordings/{call}"),
        None,
        None,
    );
    assert_eq!(unauthorised.status, 401, "a recording needs the token");

    sipp.wait_success();
    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str()
    });
    let recording =
        navbat.wait_for_event("recording", EVENT_DEADLINE, |e| e["call"] == call.as_str());
    op_sipp.wait();
    sup_sipp.wait();

    // The recording: stereo, both sides non-silent, as long as the bridged time.
    let path = PathBuf::from(recording["path"].as_str().unwrap());
    let path = if path.is_absolute() {
        path
    } else {
        navbat.dir.path().join(path)
    };
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, recording["bytes"].as_u64().unwrap());
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        recording["sha256"].as_str().unwrap()
    );
    // Encrypted at rest: no audio in the clear, read back with the run's key file.
    assert!(
        !bytes.starts_with(b"RIFF"),
        "a recording stored in the clear"
    );
    let wav =
        common::recordings::recording_wav(navbat.dir.path(), recording["path"].as_str().unwrap());
    let mut reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert!(g711::rms(&left) > 200.0, "caller channel silent");
    assert!(g711::rms(&right) > 200.0, "operator channel silent");
    let duration = recording["duration_ms"].as_u64().unwrap();
    let talk = finished["talk_ms"].as_u64().unwrap();
    assert!(
        duration.abs_diff(talk) <= 100,
        "recording {duration} ms, bridged {talk} ms"
    );
    assert_eq!(duration, left.len() as u64 / 8);

    // The operator heard the caller, transcoded to PCMU, as one continuous stream.
    let heard = op_media.received();
    assert!(!heard.is_empty(), "the operator heard nothing");
    assert!(heard.iter().all(|p| p.header.payload_type == 0), "not PCMU");
    assert!(rms_of(&heard) > 200.0, "the operator heard silence");
    for w in heard.windows(2) {
        assert_eq!(w[1].header.ssrc, w[0].header.ssrc);
        assert_eq!(w[1].header.seq, w[0].header.seq.wrapping_add(1));
    }
    // The supervisor heard the call.
    let listened = sup_media.received();
    assert!(
        listened.len() > 25,
        "the supervisor heard {} packets",
        listened.len()
    );
    assert!(rms_of(&listened) > 200.0, "the supervisor heard silence");
}

/// GET with the admin token, body as bytes (the harness's client keeps text).
fn http_get_bytes(addr: SocketAddr, path: &str) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).ok()?;
    let split = all.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&all[..split]);
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    Some(all[split + 4..].to_vec())
}

// ---------------------------------------------------------------------------------------------
// What each party hears, measured on the audio itself.

/// The share (0..1) of a frame's energy that is a tone of `hz` (one DFT bin, Goertzel-style):
/// 1 for that pure tone, about 0.5 for it mixed with another tone as loud, near 0 without it.
fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let energy: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    if samples.is_empty() || energy == 0.0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / 8000.0;
    let (mut re, mut im) = (0.0, 0.0);
    for (i, s) in samples.iter().enumerate() {
        re += f64::from(*s) * (w * i as f64).cos();
        im -= f64::from(*s) * (w * i as f64).sin();
    }
    2.0 * (re * re + im * im) / (samples.len() as f64 * energy)
}

/// How many of `packets` carry the tone `hz` (a clear share of their energy).
fn packets_with_tone(packets: &[Received], hz: f64) -> usize {
    packets
        .iter()
        .filter(|p| p.samples.len() == 160 && tone_share(&p.samples, hz) > 0.2)
        .count()
}

/// The 20 ms frames a phone decodes when navbat plays `samples` in `codec` (the last frame
/// padded with silence, as navbat's player does at the end of a Play).
fn as_heard(samples: &[i16], codec: Codec) -> Vec<Vec<i16>> {
    samples
        .chunks(160)
        .map(|chunk| {
            let mut frame = chunk.to_vec();
            frame.resize(160, 0);
            let (mut encoded, mut decoded) = (Vec::new(), Vec::new());
            codec.law().encode_into(&frame, &mut encoded);
            codec.law().decode_into(&encoded, &mut decoded);
            decoded
        })
        .collect()
}

/// How many times the prompt audio `expected` (frames, from [`as_heard`]) was heard in
/// order: a run of packets counts when at least 90% of its frames are the prompt's, sample
/// for sample (hold music or silence never are).
fn occurrences(heard: &[Received], expected: &[Vec<i16>]) -> usize {
    let n = expected.len();
    let (mut count, mut i) = (0, 0);
    while n > 0 && i + n <= heard.len() {
        let same = (0..n)
            .filter(|k| heard[i + k].samples == expected[*k])
            .count();
        if same * 10 >= n * 9 {
            count += 1;
            i += n;
        } else {
            i += 1;
        }
    }
    count
}

/// The prompts `names` (tenant `tenant`, language `language`) one after the other, as
/// navbat's prompt store loads them.
fn prompt_audio(prompts: &Path, tenant: &str, language: &str, names: &[&str]) -> Vec<i16> {
    let store = navbat::media::prompts::PromptStore::new(prompts);
    names
        .iter()
        .flat_map(|name| {
            store
                .clip(tenant, language, name)
                .unwrap_or_else(|e| panic!("{e}"))
                .to_vec()
        })
        .collect()
}

fn caller_by_info(navbat: &Navbat, name: &str, phone: &Phone, stay_ms: u64) -> Sipp {
    dial(
        navbat,
        name,
        "media_caller_info.xml",
        DTM_DID,
        phone,
        Some(stay_ms),
    )
}

const CALLER_HZ: f64 = 600.0;
const OPERATOR_HZ: f64 = 400.0;
const SUPERVISOR_HZ: f64 = 1000.0;
/// Packets of a tone that show a party clearly hears it (half a second).
const HEARD: usize = 25;

#[test]
fn whisper_reaches_only_the_operator_and_barge_reaches_both() {
    let dir = TestDir::new("media-whisper-prompts");
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start(
        "media-whisper-barge",
        TestConfig::default()
            .prompts_dir(&prompts)
            .reserve_after_secs(600),
    );
    // Each party says its own tone, so what each hears can be told apart.
    let op_media = Phone::start_tone(Some((Codec::Pcmu, OPERATOR_HZ)));
    let mut op_sipp = answering_phone(&navbat, "1001", &op_media);
    let sup_media = Phone::start_tone(Some((Codec::Pcmu, SUPERVISOR_HZ)));
    let mut sup_sipp = answering_phone(&navbat, "1901", &sup_media);
    navbat.wait_operator("1001", "available");

    let caller_media = Phone::start_tone(Some((Codec::Pcma, CALLER_HZ)));
    let sipp = caller_by_info(&navbat, "caller", &caller_media, 20_000);
    let answered = navbat.wait_for_event("call_answered", Duration::from_secs(40), |_| true);
    let call = answered["call"].as_str().unwrap().to_string();
    assert_eq!(answered["operator"], "1001");

    // Whisper (D17): the operator hears the caller and the supervisor; the caller does not
    // hear the supervisor.
    let resp = navbat.post_json(
        &format!("/api/calls/{call}/monitor"),
        &json!({"supervisor": "1901", "mode": "whisper"}),
    );
    assert_eq!(resp.status, 202, "{resp:?}");
    navbat.wait_for_event("monitor_started", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str() && e["mode"] == "whisper" && e["supervisor"] == "1901"
    });
    // From here on the caller hears only the bridge (before it, spoken prompts that may
    // well contain 1 kHz).
    let whisper_from = SystemTime::now();
    wait_until(
        "the operator hears the whispering supervisor",
        EVENT_DEADLINE,
        || (packets_with_tone(&op_media.received(), SUPERVISOR_HZ) >= HEARD).then_some(()),
    );
    wait_until("the caller hears the operator", EVENT_DEADLINE, || {
        (packets_with_tone(&caller_media.received(), OPERATOR_HZ) >= HEARD).then_some(())
    });
    let switched_at = SystemTime::now();
    let caller_during_whisper: Vec<Received> = caller_media
        .received()
        .into_iter()
        .filter(|p| p.at > whisper_from)
        .collect();
    assert!(
        packets_with_tone(&caller_during_whisper, OPERATOR_HZ) >= HEARD,
        "the caller does not hear the operator while the supervisor whispers"
    );
    assert_eq!(
        packets_with_tone(&caller_during_whisper, SUPERVISOR_HZ),
        0,
        "the caller heard the whispering supervisor"
    );
    assert!(
        packets_with_tone(&op_media.received(), CALLER_HZ) >= HEARD,
        "the operator does not hear the caller while the supervisor whispers"
    );

    // Barge: the same supervisor switches mode; now the caller hears them too (three-way).
    let resp = navbat.post_json(
        &format!("/api/calls/{call}/monitor"),
        &json!({"supervisor": "1901", "mode": "barge"}),
    );
    assert_eq!(resp.status, 202, "{resp:?}");
    wait_until(
        "the caller hears the barging supervisor",
        EVENT_DEADLINE,
        || {
            let after: Vec<Received> = caller_media
                .received()
                .into_iter()
                .filter(|p| p.at > switched_at)
                .collect();
            (packets_with_tone(&after, SUPERVISOR_HZ) >= HEARD).then_some(())
        },
    );
    let caller_after: Vec<Received> = caller_media
        .received()
        .into_iter()
        .filter(|p| p.at > switched_at)
        .collect();
    assert!(
        packets_with_tone(&caller_after, OPERATOR_HZ) >= HEARD,
        "barging silenced the operator for the caller"
    );
    // The supervisor hears both sides all along, never themselves.
    let heard = sup_media.received();
    assert!(packets_with_tone(&heard, CALLER_HZ) >= HEARD, "supervisor");
    assert!(
        packets_with_tone(&heard, OPERATOR_HZ) >= HEARD,
        "supervisor"
    );
    assert_eq!(packets_with_tone(&heard, SUPERVISOR_HZ), 0, "own voice");

    sipp.wait_success();
    navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str() && e["outcome"] == "answered"
    });
    op_sipp.wait();
    sup_sipp.wait();
}

/// The tone of RTP sprayed at a call's port by someone who is not in the call.
const STRANGER_HZ: f64 = 800.0;

/// RTP sprayed at a call's port from another address, with another stream's SSRC (an
/// attacker guessing the port range, or an RTP-bleed probe) is neither heard nor answered:
/// the stranger gets none of the call's audio, the operator hears none of the stranger's,
/// the caller and the operator go on hearing each other, and the packets are counted
/// (`navbat_media_drops_total{reason="foreign_source"}`). Fails when a leg latches to any
/// source (the stranger got the operator's voice and the operator heard the stranger).
#[test]
fn rtp_sprayed_at_a_call_s_port_is_neither_heard_nor_answered() {
    let dir = TestDir::new("media-spray-prompts");
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start(
        "media-spray",
        TestConfig::default()
            .prompts_dir(&prompts)
            .reserve_after_secs(600),
    );
    let op_media = Phone::start_tone(Some((Codec::Pcmu, OPERATOR_HZ)));
    let mut op_sipp = answering_phone(&navbat, "1001", &op_media);
    navbat.wait_operator("1001", "available");
    let caller_media = Phone::start_tone(Some((Codec::Pcma, CALLER_HZ)));
    let sipp = caller_by_info(&navbat, "caller", &caller_media, 8_000);
    navbat.wait_for_event("call_answered", Duration::from_secs(40), |_| true);
    wait_until("the caller hears the operator", EVENT_DEADLINE, || {
        (packets_with_tone(&caller_media.received(), OPERATOR_HZ) >= HEARD).then_some(())
    });
    // The caller leg's port on navbat: where the caller's phone hears the operator from.
    let port = caller_media
        .received()
        .iter()
        .rev()
        .find(|p| p.header.payload_type == Codec::Pcma.payload_type())
        .expect("the operator's voice")
        .from;

    let stranger = UdpSocket::bind("127.0.0.7:0").expect("bind the stranger");
    stranger
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let sprayed_from = SystemTime::now();
    let mut answered = 0;
    let mut buf = [0u8; 2048];
    let mut phase = 0f64;
    for n in 0..100u16 {
        let tone: Vec<i16> = (0..160)
            .map(|_| {
                phase += 2.0 * std::f64::consts::PI * STRANGER_HZ / 8000.0;
                (phase.sin() * 6000.0) as i16
            })
            .collect();
        let mut pkt = Vec::new();
        rtp::write_header(
            &rtp::RtpHeader {
                marker: n == 0,
                payload_type: Codec::Pcma.payload_type(),
                seq: 7000 + n,
                timestamp: 160 * u32::from(n),
                ssrc: 0xBAD0_0BAD,
            },
            &mut pkt,
        );
        Codec::Pcma.law().encode_into(&tone, &mut pkt);
        stranger.send_to(&pkt, port).unwrap();
        let until = std::time::Instant::now() + Duration::from_millis(20);
        while std::time::Instant::now() < until {
            if stranger.recv_from(&mut buf).is_ok() {
                answered += 1;
            }
        }
    }
    assert_eq!(
        answered, 0,
        "the stranger got {answered} packets of the call"
    );
    let op_heard: Vec<Received> = op_media
        .received()
        .into_iter()
        .filter(|p| p.at > sprayed_from)
        .collect();
    assert_eq!(
        packets_with_tone(&op_heard, STRANGER_HZ),
        0,
        "the operator heard the stranger"
    );
    assert!(
        packets_with_tone(&op_heard, CALLER_HZ) >= HEARD,
        "the operator stopped hearing the caller"
    );
    let caller_heard: Vec<Received> = caller_media
        .received()
        .into_iter()
        .filter(|p| p.at > sprayed_from)
        .collect();
    assert!(
        packets_with_tone(&caller_heard, OPERATOR_HZ) >= HEARD,
        "the caller stopped hearing the operator"
    );
    let dropped = wait_until("the stranger's packets counted", EVENT_DEADLINE, || {
        let n = navbat.metric("navbat_media_drops_total{reason=\"foreign_source\"}");
        (n >= 100).then_some(n)
    });
    assert_eq!(dropped, 100);
    sipp.wait_success();
    op_sipp.wait();
}

/// How long the operator's phone of the next test keeps quiet after it first hears the caller.
const OPERATOR_QUIET: Duration = Duration::from_secs(3);
/// When it pauses again after talking for a second, and for how long.
const OPERATOR_PAUSE: Range<Duration> = Duration::from_secs(4)..Duration::from_secs(5);

#[test]
fn a_bridge_relays_what_a_phone_sends_and_makes_up_nothing_for_a_quiet_one() {
    let dir = TestDir::new("media-quiet-prompts");
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start(
        "media-quiet-phone",
        TestConfig::default()
            .prompts_dir(&prompts)
            .reserve_after_secs(600),
    );
    // The operator's phone sends nothing at first (a phone with its microphone muted by
    // DTX, or whose RTP is lost on the way), then talks, pauses for a second and talks on.
    let op_media = Phone::start_tone_quiet(
        Some((Codec::Pcmu, OPERATOR_HZ)),
        vec![Duration::ZERO..OPERATOR_QUIET, OPERATOR_PAUSE],
    );
    let mut op_sipp = answering_phone(&navbat, "1001", &op_media);
    navbat.wait_operator("1001", "available");
    let caller_media = Phone::start_tone(Some((Codec::Pcma, CALLER_HZ)));
    let sipp = caller_by_info(&navbat, "caller", &caller_media, 10_000);
    let answered = navbat.wait_for_event("call_answered", Duration::from_secs(40), |_| true);
    let call = answered["call"].as_str().unwrap().to_string();

    // The operator hears the caller from the bridge on.
    wait_until("the operator hears the caller", EVENT_DEADLINE, || {
        (packets_with_tone(&op_media.received(), CALLER_HZ) >= HEARD).then_some(())
    });
    let bridged_at = op_media.received()[0].at;
    // The operator's voice reaches the caller after the pause too (its socket, read at
    // every tick while it talked, went back to the poller while it was quiet).
    let resumed = bridged_at + OPERATOR_PAUSE.end + Duration::from_millis(200);
    wait_until(
        "the caller hears the operator after the pause",
        Duration::from_secs(30),
        || {
            let after: Vec<Received> = caller_media
                .received()
                .into_iter()
                .filter(|p| p.at > resumed)
                .collect();
            (packets_with_tone(&after, OPERATOR_HZ) >= HEARD).then_some(())
        },
    );
    sipp.wait_success();
    navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str() && e["outcome"] == "answered"
    });
    op_sipp.wait();

    // While the operator's phone was quiet the caller got no packets at all (before the
    // bridge it heard prompts; half a second of margin on each side of the quiet time).
    let margin = Duration::from_millis(500);
    let (quiet_from, quiet_to) = (bridged_at + margin, bridged_at + OPERATOR_QUIET - margin);
    let heard = caller_media.received();
    let made_up = heard
        .iter()
        .filter(|p| p.at > quiet_from && p.at < quiet_to)
        .count();
    assert_eq!(
        made_up, 0,
        "the caller got {made_up} packets while the operator's phone sent nothing"
    );
    // Then the operator's voice, starting a new talk spurt on the caller's one stream.
    let after: Vec<&Received> = heard.iter().filter(|p| p.at > quiet_from).collect();
    assert!(
        after[0].header.marker,
        "the operator's first packet is not marked"
    );
    assert!(
        after.iter().all(|p| p.header.ssrc == heard[0].header.ssrc),
        "the caller's stream changed its SSRC"
    );
}

/// A finished call's RTP sockets go to the next call instead of being closed and bound
/// afresh (`navbat_rtp_ports_reused_total`), and that call's parties hear each other on
/// them. A pair whose old phone streams on into it after the call is not handed out: that
/// phone hears nothing of the next call.
#[test]
fn a_finished_call_s_sockets_serve_the_next_call_but_not_while_its_phone_streams_on() {
    const CALLER2_HZ: f64 = 800.0;
    const OPERATOR2_HZ: f64 = 300.0;
    let dir = TestDir::new("media-reuse-prompts");
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start(
        "media-reuse",
        TestConfig::default()
            .prompts_dir(&prompts)
            .reserve_after_secs(600),
    );
    // The first call. Its caller's phone goes on sending to navbat after the call ends.
    let op1 = Phone::start_tone(Some((Codec::Pcmu, OPERATOR_HZ)));
    let mut op1_sipp = answering_phone(&navbat, "1001", &op1);
    navbat.wait_operator("1001", "available");
    let stray = Phone::start_tone(Some((Codec::Pcma, CALLER_HZ)));
    let sipp1 = caller_by_info(&navbat, "caller1", &stray, 2_000);
    let first = navbat.wait_for_event("call_answered", Duration::from_secs(40), |_| true);
    let first = first["call"].as_str().unwrap().to_string();
    wait_until("the first call is bridged", EVENT_DEADLINE, || {
        (packets_with_tone(&op1.received(), CALLER_HZ) >= HEARD).then_some(())
    });
    sipp1.wait_success();
    navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == first.as_str()
    });
    op1_sipp.wait();
    // The operator's phone stops with its call; the pairs wait out their 0.5 s.
    drop(op1);
    let reused_before = metric(&navbat, "navbat_rtp_ports_reused_total").unwrap_or(0.0);
    thread::sleep(Duration::from_secs(1));

    // The second call, on the first call's sockets.
    let op2 = Phone::start_tone(Some((Codec::Pcmu, OPERATOR2_HZ)));
    let mut op2_sipp = answering_phone(&navbat, "1001", &op2);
    navbat.wait_operator("1001", "available");
    let second_from = SystemTime::now();
    let caller2 = Phone::start_tone(Some((Codec::Pcma, CALLER2_HZ)));
    let sipp2 = caller_by_info(&navbat, "caller2", &caller2, 4_000);
    let second = navbat.wait_for_event("call_answered", Duration::from_secs(40), |e| {
        e["call"] != first.as_str()
    });
    let second = second["call"].as_str().unwrap().to_string();
    wait_until(
        "the second call's parties hear each other",
        EVENT_DEADLINE,
        || {
            (packets_with_tone(&op2.received(), CALLER2_HZ) >= HEARD
                && packets_with_tone(&caller2.received(), OPERATOR2_HZ) >= HEARD)
                .then_some(())
        },
    );
    wait_until(
        "a pair of the first call was handed out again",
        EVENT_DEADLINE,
        || (metric(&navbat, "navbat_rtp_ports_reused_total")? > reused_before).then_some(()),
    );
    sipp2.wait_success();
    navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == second.as_str()
    });
    op2_sipp.wait();

    // The phone that streamed on heard nothing of the second call.
    let leaked = stray
        .received()
        .iter()
        .filter(|p| p.at > second_from)
        .count();
    assert_eq!(
        leaked, 0,
        "the first call's phone, still streaming, got {leaked} packets of the second call"
    );
    // Nor did the second call's operator hear that phone.
    assert_eq!(
        packets_with_tone(&op2.received(), CALLER_HZ),
        0,
        "the second call's operator heard the first call's caller"
    );
}

#[test]
fn waiting_caller_hears_place_and_expected_wait_periodically() {
    let dir = TestDir::new("media-announce-prompts");
    let prompts = shared_prompts(dir.path());
    // Nobody is registered: the caller waits, first in line, and the estimate assumes one
    // operator: 120 s average handling -> "2 minutes".
    let navbat = Navbat::start(
        "media-announce",
        TestConfig::default()
            .prompts_dir(&prompts)
            .media_extra("announce_every_secs = 1\naverage_handle_secs = 120"),
    );
    let caller_media = Phone::start(None);
    let sipp = caller_by_info(&navbat, "caller", &caller_media, 25_000);
    let enqueued = navbat.wait_for_event("call_enqueued", Duration::from_secs(40), |e| {
        e["language"] == "uz"
    });
    let call = enqueued["call"].as_str().unwrap().to_string();
    sipp.wait_success();
    navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str() && e["outcome"] == "abandoned"
    });

    let heard = caller_media.received();
    let codec = Codec::from_payload_type(heard.last().unwrap().header.payload_type).unwrap();
    let announcement = as_heard(
        &prompt_audio(
            &prompts,
            "dtm",
            "uz",
            &[
                "place-in-queue",
                "number-1",
                "expected-wait-minutes",
                "number-2",
            ],
        ),
        codec,
    );
    let times = occurrences(&heard, &announcement);
    assert!(
        times >= 2,
        "the place/expected-wait announcement was heard {times} times in {} packets",
        heard.len()
    );
    // Between announcements the caller hears hold music, not silence.
    let music = heard
        .iter()
        .filter(|p| g711::rms(&p.samples) > 100.0)
        .count();
    assert!(
        music * 10 >= heard.len() * 7,
        "{music} of {} packets non-silent",
        heard.len()
    );
    // One continuous stream across prompts, music and announcements.
    for w in heard.windows(2) {
        assert_eq!(w[1].header.ssrc, w[0].header.ssrc);
        assert_eq!(w[1].header.seq, w[0].header.seq.wrapping_add(1));
    }
}

/// Surge callback offer (issue 7): with the tenant's key set to 3 the waiting caller hears the
/// offer ending "press three" in their language, once, and never "press one".
#[test]
fn the_callback_offer_names_the_tenants_key() {
    let dir = TestDir::new("media-callback-offer-prompts");
    let prompts = shared_prompts(dir.path());
    let now = jiff::Timestamp::now();
    let hour = jiff::SignedDuration::from_secs(3600);
    let navbat = Navbat::start(
        "media-callback-offer",
        TestConfig::default()
            .operators(vec![])
            .prompts_dir(&prompts)
            .tenant_extra(&format!(
                r#"
[tenant.surge]
calendar = [{{ start = "{}", end = "{}" }}]

[tenant.surge.callback]
offer_after_secs = 1
digit = "3"
"#,
                now.checked_sub(hour).unwrap(),
                now.checked_add(hour).unwrap(),
            ))
            .extra_toml(&format!(
                "\n[trunk]\noutbound = \"127.0.0.1:{}\"\n",
                free_port()
            )),
    );
    navbat.wait_for_event("surge_changed", EVENT_DEADLINE, |e| e["on"] == true);
    let caller_media = Phone::start(None);
    let sipp = caller_by_info(&navbat, "caller", &caller_media, 25_000);
    let enqueued = navbat.wait_for_event("call_enqueued", Duration::from_secs(40), |e| {
        e["language"] == "uz"
    });
    let call = enqueued["call"].as_str().unwrap().to_string();
    sipp.wait_success();
    navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str() && e["outcome"] == "abandoned"
    });

    let heard = caller_media.received();
    let codec = Codec::from_payload_type(heard.last().unwrap().header.payload_type).unwrap();
    let said = |language: &str, names: &[&str]| {
        heard_anywhere(
            &heard,
            &prompt_audio(&prompts, "dtm", language, names),
            codec,
        )
    };
    assert_eq!(
        said("uz", &["callback-offer-intro", "press-3"]),
        1,
        "the offer with its key, in {} packets",
        heard.len()
    );
    assert_eq!(said("uz", &["press-1"]), 0, "\"press one\"");
    // Not the Russian offer either: the caller chose Uzbek.
    assert_eq!(said("ru", &["callback-offer-intro"]), 0);
}

/// How many times `samples` (prompts as navbat plays them) were heard whole, at any offset
/// in the 20 ms frames: prompts queued behind one another follow on without a frame
/// boundary. G.711 codes each sample on its own, so the offset does not change the samples.
fn heard_anywhere(heard: &[Received], samples: &[i16], codec: Codec) -> usize {
    let stream: Vec<i16> = heard
        .iter()
        .flat_map(|p| p.samples.iter().copied())
        .collect();
    let mut expected = as_heard(samples, codec).concat();
    expected.truncate(samples.len());
    if expected.is_empty() {
        return 0;
    }
    stream
        .windows(expected.len())
        .filter(|w| *w == expected.as_slice())
        .count()
}

#[test]
fn closed_line_plays_the_hours_announcement_then_480() {
    let dir = TestDir::new("media-closed-prompts");
    let prompts = shared_prompts(dir.path());
    // A support line open Mon-Fri 08:00-20:00 whose holidays are yesterday, today and
    // tomorrow in its time zone: closed now whatever the wall clock says.
    let today = jiff::Timestamp::now()
        .in_tz("Asia/Tashkent")
        .unwrap()
        .date();
    let holidays: Vec<String> = [-1i64, 0, 1]
        .iter()
        .map(|d| {
            format!(
                "\"{}\"",
                today.checked_add(jiff::Span::new().days(*d)).unwrap()
            )
        })
        .collect();
    let support_did = "712038872";
    let navbat = Navbat::start(
        "media-closed",
        TestConfig::default()
            .prompts_dir(&prompts)
            .extra_toml(&format!(
                r#"
[[tenant]]
id = "support"
name = {{ uz = "Qo'llab-quvvatlash", ru = "Поддержка" }}
dids = ["{support_did}"]
timezone = "Asia/Tashkent"
hours = [ {{ days = ["mon", "tue", "wed", "thu", "fri"], open = "08:00", close = "20:00" }} ]
holidays = [{holidays}]
service_level_secs = 20

[tenant.ivr]
digit_timeout_secs = 6
max_retries = 2
on_no_input = "default"
default_language = "uz"
languages = [ {{ digit = "1", language = "uz", queue = "support-uz" }} ]

[[queue]]
id = "support-uz"
tenant = "support"
language = "uz"
strategy = "longest-idle"
max_wait_secs = 60
ring_timeout_secs = 3
wrap_up_secs = 1
max_missed_offers = 3
"#,
                holidays = holidays.join(", ")
            )),
    );
    let phone = Phone::start(None);
    let sipp = dial(
        &navbat,
        "caller",
        "media_caller_closed.xml",
        support_did,
        &phone,
        None,
    );
    sipp.wait_success();
    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["tenant"] == "support"
    });
    assert_eq!(finished["outcome"], "closed");
    assert_eq!(finished["talk_ms"], 0);
    assert!(
        !navbat.events().iter().any(|e| e["kind"] == "call_enqueued"),
        "a closed line queued the call"
    );

    // Before the 480 the caller heard the hours announcement, Uzbek then Russian, as early
    // media.
    let rejected_at = sipp_received_at(&navbat.dir.path().join("caller.messages.log"), "480");
    let early: Vec<Received> = phone
        .received()
        .into_iter()
        .filter(|p| p.at < rejected_at)
        .collect();
    assert!(!early.is_empty(), "no early media before the 480");
    let codec = Codec::from_payload_type(early[0].header.payload_type).unwrap();
    let mut closed = prompt_audio(&prompts, "support", "uz", &["closed"]);
    closed.extend(prompt_audio(&prompts, "support", "ru", &["closed"]));
    let expected = as_heard(&closed, codec);
    assert_eq!(
        occurrences(&early, &expected),
        1,
        "{} early packets, the announcement is {} frames",
        early.len(),
        expected.len()
    );
}

/// A supervisor's softphone dialling `number` (a feature code) as `ext`.
fn supervisor_dial(
    navbat: &Navbat,
    name: &str,
    scenario_file: &str,
    ext: &str,
    number: &str,
    phone: &Phone,
    stay_ms: u64,
) -> Sipp {
    let password = navbat.config.password_of(ext).to_string();
    softphone_dial(
        navbat,
        name,
        scenario_file,
        (ext, &password),
        number,
        phone,
        stay_ms,
    )
}

/// A softphone dialling `number` (a feature code) as `(user, password)`.
fn softphone_dial(
    navbat: &Navbat,
    name: &str,
    scenario_file: &str,
    (ext, password): (&str, &str),
    number: &str,
    phone: &Phone,
    stay_ms: u64,
) -> Sipp {
    let stay = stay_ms.to_string();
    navbat.sipp_client(
        name,
        scenario_file,
        &[
            "-s",
            number,
            "-m",
            "1",
            "-key",
            "ext",
            ext,
            "-au",
            ext,
            "-ap",
            password,
            "-key",
            "rtp_port",
            &phone.port(),
            "-d",
            &stay,
        ],
    )
}

/// Which final status (>= 300, after the 407 challenge) SIPp received, from its trace.
fn refusal_status(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("SIP/2.0 "))
        .map(|rest| rest.split(' ').next().unwrap_or("").to_string())
        .rfind(|code| code.as_str() >= "300" && code != "407")
        .unwrap_or_else(|| panic!("no final refusal in the trace:\n{text}"))
}

#[test]
fn supervisor_softphone_whispers_by_feature_code() {
    let dir = TestDir::new("media-feature-prompts");
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start(
        "media-feature-code",
        TestConfig::default()
            .prompts_dir(&prompts)
            .reserve_after_secs(600)
            .operators(vec![
                OperatorSpec::regular("1001"),
                OperatorSpec::regular("1002"),
                OperatorSpec::reserve("1901").supervising(),
            ]),
    );
    let op_media = Phone::start_tone(Some((Codec::Pcmu, OPERATOR_HZ)));
    let mut op_sipp = answering_phone(&navbat, "1001", &op_media);
    navbat.wait_operator("1001", "available");

    // Before any call: the operator is not on a call -> 480.
    let idle = Phone::start(None);
    let mut early = supervisor_dial(
        &navbat,
        "sup-early",
        "supervisor_dial_refused.xml",
        "1901",
        "*511001",
        &idle,
        0,
    );
    early.wait();
    assert_eq!(
        refusal_status(&navbat.dir.path().join("sup-early.messages.log")),
        "480"
    );

    let caller_media = Phone::start_tone(Some((Codec::Pcma, CALLER_HZ)));
    let sipp = caller_by_info(&navbat, "caller", &caller_media, 20_000);
    let answered = navbat.wait_for_event("call_answered", Duration::from_secs(40), |_| true);
    let call = answered["call"].as_str().unwrap().to_string();

    // Refusals after authentication: not a supervisor (403), no such extension (404).
    for (name, ext, number, status) in [
        ("not-supervisor", "1002", "*511001", "403"),
        ("unknown-ext", "1901", "*519999", "404"),
    ] {
        let mut s = supervisor_dial(
            &navbat,
            name,
            "supervisor_dial_refused.xml",
            ext,
            number,
            &idle,
            0,
        );
        s.wait();
        assert_eq!(
            refusal_status(&navbat.dir.path().join(format!("{name}.messages.log"))),
            status,
            "{name}"
        );
    }

    // The supervisor dials *52 + the operator's extension: whisper.
    let sup_media = Phone::start_tone(Some((Codec::Pcmu, SUPERVISOR_HZ)));
    let sup = supervisor_dial(
        &navbat,
        "supervisor",
        "supervisor_dial.xml",
        "1901",
        "*521001",
        &sup_media,
        6_000,
    );
    navbat.wait_for_event("monitor_started", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str() && e["mode"] == "whisper" && e["supervisor"] == "1901"
    });
    let whisper_from = SystemTime::now();
    wait_until("the supervisor hears both sides", EVENT_DEADLINE, || {
        let heard = sup_media.received();
        (packets_with_tone(&heard, CALLER_HZ) >= HEARD
            && packets_with_tone(&heard, OPERATOR_HZ) >= HEARD)
            .then_some(())
    });
    wait_until("the operator hears the supervisor", EVENT_DEADLINE, || {
        (packets_with_tone(&op_media.received(), SUPERVISOR_HZ) >= HEARD).then_some(())
    });
    // The supervisor's call is a leg on navbat's own transactions, like the caller's and the
    // operator's (issue 18 part 4).
    wait_until(
        "three legs on navbat's own transactions",
        EVENT_DEADLINE,
        || (navbat.metric("navbat_sip_own_call_legs") == 3).then_some(()),
    );
    sup.wait_success();
    let caller_heard: Vec<Received> = caller_media
        .received()
        .into_iter()
        .filter(|p| p.at > whisper_from)
        .collect();
    assert!(packets_with_tone(&caller_heard, OPERATOR_HZ) >= HEARD);
    assert_eq!(
        packets_with_tone(&caller_heard, SUPERVISOR_HZ),
        0,
        "the caller heard the whispering supervisor"
    );
    assert!(
        rms_of(&sup_media.received()) > 200.0,
        "the supervisor heard silence"
    );

    // The supervisor hung up; the call goes on and ends normally.
    sipp.wait_success();
    navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str() && e["outcome"] == "answered"
    });
    op_sipp.wait();
    let monitors = navbat
        .events()
        .iter()
        .filter(|e| e["kind"] == "monitor_started")
        .count();
    assert_eq!(monitors, 1, "only the whisper joined");
}

/// `navbat user sip LOGIN --ext EXT` against the running router's database, the SIP password
/// on standard input.
fn set_sip_identity(navbat: &Navbat, login: &str, ext: &str, password: &str) -> Output {
    let mut child = Command::new(navbat_bin())
        .arg("--config")
        .arg(navbat.dir.path().join("navbat.toml"))
        .args(["user", "sip", login, "--ext", ext])
        .current_dir(navbat.dir.path())
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
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The value of an unlabelled metric in `/metrics`.
fn metric(navbat: &Navbat, name: &str) -> Option<f64> {
    navbat
        .get("/metrics")
        .body
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
}

/// Issue 16 part 3, D19: the client's officer listens to their tenant's live calls from a
/// softphone by feature code, under the recordings' rule (their tenants only; listen, not
/// whisper or barge), each listen in the audit log with who, when, what and from where.
#[test]
fn officer_softphone_listens_to_its_tenants_calls_only() {
    let dir = TestDir::new("media-officer-prompts");
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start(
        "media-officer",
        common::desk::with_desk(
            TestConfig::default()
                .prompts_dir(&prompts)
                .reserve_after_secs(600)
                .operators(vec![
                    OperatorSpec::regular("1001"),
                    OperatorSpec::regular("1002"),
                    OperatorSpec::reserve("1901").supervising(),
                ]),
            "",
        ),
    );
    const OFFICER: (&str, &str) = ("1950", "officer sip secret");
    const OTHER_OFFICER: (&str, &str) = ("1960", "other officer secret");

    // The CLI: an operator's extension, another account's and a web-only role are refused.
    for (login, ext, why) in [
        ("officer-dtm", "1001", "configured operator"),
        ("editor", "1970", "only officer and supervisor"),
    ] {
        let out = set_sip_identity(&navbat, login, ext, OFFICER.1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(why),
            "{login} {ext}: {err}"
        );
    }
    for (login, (ext, password)) in [("officer-dtm", OFFICER), ("officer-support", OTHER_OFFICER)] {
        let out = set_sip_identity(&navbat, login, ext, password);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = set_sip_identity(&navbat, "sup-dtm", OFFICER.0, "taken extension pw");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("belongs to account officer-dtm"),
        "{err}"
    );
    // The router reads the identities from its database.
    wait_until("the SIP identities in the router", EVENT_DEADLINE, || {
        (metric(&navbat, "navbat_sip_listener_identities") == Some(2.0)).then_some(())
    });
    // Only its HA1s are stored: the password is in no file of the database.
    let data = navbat.dir.path().join("data");
    let files: Vec<_> = std::fs::read_dir(&data).unwrap().flatten().collect();
    assert!(
        files.iter().any(|f| f.file_name() == "navbat.db"),
        "{data:?}"
    );
    for f in files {
        let bytes = std::fs::read(f.path()).unwrap_or_default();
        assert!(
            !bytes
                .windows(OFFICER.1.len())
                .any(|w| w == OFFICER.1.as_bytes()),
            "the SIP password is in {:?}",
            f.path()
        );
    }

    let op_media = Phone::start_tone(Some((Codec::Pcmu, OPERATOR_HZ)));
    let mut op_sipp = answering_phone(&navbat, "1001", &op_media);
    navbat.wait_operator("1001", "available");
    let idle = Phone::start(None);
    let refused = |name: &str, who: (&str, &str), number: &str| {
        let mut s = softphone_dial(
            &navbat,
            name,
            "supervisor_dial_refused.xml",
            who,
            number,
            &idle,
            0,
        );
        s.wait();
        refusal_status(&navbat.dir.path().join(format!("{name}.messages.log")))
    };
    // Before any call: the answers an officer of another tenant will get below.
    let not_on_call = refused("officer-idle", OFFICER, "*511001");
    assert_eq!(not_on_call, "480");
    let unknown = refused("officer-unknown", OFFICER, "*519999");
    assert_eq!(unknown, "404");

    // A wrong password is refused as for supervisors (challenged again) and counted by the
    // guessing guard.
    let failures_before = metric(&navbat, "navbat_sip_auth_failures_total").unwrap_or(0.0);
    softphone_dial(
        &navbat,
        "officer-wrong",
        "supervisor_dial_wrong_password.xml",
        (OFFICER.0, "not the password"),
        "*511001",
        &idle,
        0,
    )
    .wait_success();
    navbat.wait_for_event("auth_failed", EVENT_DEADLINE, |e| {
        e["account"] == OFFICER.0 && e["reason"] == "wrong password" && e["known"] == true
    });
    wait_until("the guard counted the failure", EVENT_DEADLINE, || {
        (metric(&navbat, "navbat_sip_auth_failures_total")? > failures_before).then_some(())
    });

    let caller_media = Phone::start_tone(Some((Codec::Pcma, CALLER_HZ)));
    let sipp = caller_by_info(&navbat, "caller", &caller_media, 30_000);
    let answered = navbat.wait_for_event("call_answered", Duration::from_secs(40), |_| true);
    let call = answered["call"].as_str().unwrap().to_string();

    // The officer of another tenant is answered as if the operator were not on a call.
    assert_eq!(
        refused("other-tenant", OTHER_OFFICER, "*511001"),
        not_on_call,
        "an officer of another tenant learnt of the call"
    );
    // Whisper and barge are not for officers.
    assert_eq!(refused("officer-whisper", OFFICER, "*521001"), "403");
    assert_eq!(refused("officer-barge", OFFICER, "*531001"), "403");
    assert_eq!(
        navbat
            .events()
            .iter()
            .filter(|e| e["kind"] == "monitor_started")
            .count(),
        0,
        "a refused feature code joined the call"
    );

    // The officer of the call's tenant listens: hears both sides, nobody hears them.
    let officer_media = Phone::start_tone(Some((Codec::Pcmu, SUPERVISOR_HZ)));
    let listen_from = SystemTime::now();
    let officer = softphone_dial(
        &navbat,
        "officer",
        "supervisor_dial.xml",
        OFFICER,
        "*511001",
        &officer_media,
        5_000,
    );
    navbat.wait_for_event("monitor_started", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str() && e["mode"] == "listen" && e["supervisor"] == OFFICER.0
    });
    wait_until("the officer hears both sides", EVENT_DEADLINE, || {
        let heard = officer_media.received();
        (packets_with_tone(&heard, CALLER_HZ) >= HEARD
            && packets_with_tone(&heard, OPERATOR_HZ) >= HEARD)
            .then_some(())
    });
    officer.wait_success();
    for (who, phone) in [("operator", &op_media), ("caller", &caller_media)] {
        let heard: Vec<Received> = phone
            .received()
            .into_iter()
            .filter(|p| p.at > listen_from)
            .collect();
        assert_eq!(
            packets_with_tone(&heard, SUPERVISOR_HZ),
            0,
            "the {who} heard the listening officer"
        );
    }

    // The audit log: who, what, of which tenant, from where; and the end.
    let audit = wait_until("the listen in the audit log", EVENT_DEADLINE, || {
        let log = navbat.get_json("/api/audit?limit=1000");
        let lines: Vec<serde_json::Value> = log
            .as_array()?
            .iter()
            .filter(|l| {
                l["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("live_listen"))
            })
            .cloned()
            .collect();
        (lines.len() >= 2).then_some(lines)
    });
    for action in ["live_listen", "live_listen_end"] {
        let line = audit
            .iter()
            .find(|l| l["action"] == action)
            .unwrap_or_else(|| panic!("no {action} line: {audit:#?}"));
        assert_eq!(line["actor"], "officer-dtm", "{line}");
        assert_eq!(line["role"], "officer", "{line}");
        assert_eq!(line["tenant"], "dtm", "{line}");
        assert_eq!(line["source"], "127.0.0.1", "{line}");
        assert!(
            line["target"]
                .as_str()
                .is_some_and(|t| t.ends_with(&format!(":{call}"))),
            "{line}"
        );
        assert!(
            line["detail"].as_str().unwrap_or("").contains("1001"),
            "{line}"
        );
    }
    assert_eq!(audit.len(), 2, "only the one listen: {audit:#?}");

    sipp.wait_success();
    op_sipp.wait();
}

#[test]
fn rtcp_is_read_and_each_leg_reports() {
    use navbat::media::rtcp;
    let dir = TestDir::new("media-rtcp-prompts");
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start("media-rtcp", TestConfig::default().prompts_dir(&prompts));
    // A talking phone whose RTCP socket is its RTP port + 1 (RFC 3550 section 11).
    let (phone, rtcp_sock) = loop {
        let phone = Phone::start_tone(Some((Codec::Pcma, CALLER_HZ)));
        if let Ok(s) = UdpSocket::bind(("127.0.0.1", phone.addr.port() + 1)) {
            break (phone, s);
        }
    };
    rtcp_sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let sipp = caller_by_info(&navbat, "caller", &phone, 15_000);
    let navbat_rtp = wait_until("media from navbat", EVENT_DEADLINE, || {
        phone.received().first().map(|p| p.from)
    });
    // Connected: an RTCP port navbat left closed would come back as ICMP port unreachable,
    // which Linux reports on this socket as ConnectionRefused.
    rtcp_sock
        .connect(("127.0.0.1", navbat_rtp.port() + 1))
        .unwrap();
    // Our sender report about the phone's stream (SSRC 0x5eed): navbat's next report block
    // about that stream must echo the middle of its NTP timestamp as LSR.
    let mut our_sr = Vec::new();
    rtcp::write_report(
        0x5eed,
        Some(rtcp::SenderInfo {
            ntp: 0x1111_2222_3333_4444,
            rtp_timestamp: 0,
            packets: 1,
            octets: 160,
        }),
        None,
        "phone@127.0.0.1",
        &mut our_sr,
    );
    let mut reports: Vec<Vec<u8>> = Vec::new();
    let mut buf = [0u8; 1500];
    wait_until(
        "two RTCP reports from navbat, one echoing our SR",
        Duration::from_secs(40),
        || {
            match rtcp_sock.send(&our_sr) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    panic!("navbat's RTCP port answered with ICMP port unreachable")
                }
                _ => {}
            }
            match rtcp_sock.recv(&mut buf) {
                Ok(n) => reports.push(buf[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    panic!("navbat's RTCP port answered with ICMP port unreachable")
                }
                Err(_) => {}
            }
            let echoed = reports.iter().any(|r| {
                r.len() >= 52 && r[1] == rtcp::PT_SR && r[44..48] == [0x22, 0x22, 0x33, 0x33]
            });
            (echoed && reports.len() >= 2).then_some(())
        },
    );
    let rtp_ssrc = phone.received().last().unwrap().header.ssrc;
    for r in &reports {
        let parsed = rtcp::parse(r).expect("navbat sends valid compound RTCP");
        assert_eq!(
            parsed.ssrc, rtp_ssrc,
            "the report's SSRC is the leg's RTP SSRC"
        );
        assert_eq!(
            r[1],
            rtcp::PT_SR,
            "navbat sends RTP on this leg: a sender report"
        );
        assert!(parsed.packets >= 2, "SR then SDES");
        let sent = u32::from_be_bytes([r[20], r[21], r[22], r[23]]);
        assert!(sent > 0, "sender packet count");
        if r[0] & 0x1f == 1 {
            assert_eq!(
                &r[28..32],
                &0x5eed_u32.to_be_bytes(),
                "block about our stream"
            );
        }
    }
    sipp.wait_success();
}

/// A call bridged to operator 1001, whose softphone runs `scenario` (it answers with PCMU
/// on `op_media`, a phone saying OPERATOR_HZ, and does what the scenario says after talking
/// 3 s), from a caller saying CALLER_HZ in PCMA who stays 10-12 s. Everything the tests
/// below look at afterwards.
struct OperatorScenarioCall {
    navbat: Navbat,
    prompts: PathBuf,
    op_media: Phone,
    caller_media: Phone,
    op_sipp: Sipp,
    call: String,
    bridged_from: SystemTime,
    finished: serde_json::Value,
    _dir: TestDir,
}

fn call_with_operator_scenario(name: &str, scenario: &str, stay_ms: u64) -> OperatorScenarioCall {
    let dir = TestDir::new(&format!("{name}-prompts"));
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start(
        name,
        TestConfig::default()
            .prompts_dir(&prompts)
            .reserve_after_secs(600),
    );
    let op_media = Phone::start_tone(Some((Codec::Pcmu, OPERATOR_HZ)));
    let port = free_port();
    let op_sipp = Sipp::start(
        navbat.dir.path(),
        &format!("op1001-{name}"),
        scenario,
        &[
            "-m",
            "1",
            "-key",
            "rtp_port",
            &op_media.port(),
            "-d",
            "3000",
        ],
        None,
        port,
    );
    navbat
        .register("1001", navbat.config.password_of("1001"), port)
        .wait_success();
    navbat.wait_operator("1001", "available");

    let caller_media = Phone::start_tone(Some((Codec::Pcma, CALLER_HZ)));
    let sipp = caller_by_info(&navbat, "caller", &caller_media, stay_ms);
    let answered = navbat.wait_for_event("call_answered", Duration::from_secs(40), |_| true);
    let bridged_from = SystemTime::now();
    let call = answered["call"].as_str().unwrap().to_string();
    sipp.wait_success();
    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str()
    });
    OperatorScenarioCall {
        navbat,
        prompts,
        op_media,
        caller_media,
        op_sipp,
        call,
        bridged_from,
        finished,
        _dir: dir,
    }
}

#[test]
fn operator_hold_plays_music_to_the_caller_and_resume_restores_the_bridge() {
    // The operator talks, holds after 3 s with a=sendonly for 3 s, then resumes.
    let mut t = call_with_operator_scenario("media-hold", "operator_hold.xml", 12_000);
    assert_eq!(
        t.finished["outcome"], "answered",
        "the hold dropped the call"
    );
    assert_eq!(t.finished["ended_by"], "caller");
    let recording = t.navbat.wait_for_event("recording", EVENT_DEADLINE, |e| {
        e["call"] == t.call.as_str()
    });
    // SIPp checked navbat's answers: recvonly to the hold, sendrecv to the resume.
    let status = t.op_sipp.wait();
    assert!(status.success(), "operator SIPp: {}", t.op_sipp.report());
    // The hold and the resume are in the timeline, for the monthly report's hold time.
    for held in [true, false] {
        t.navbat.wait_for_event("call_hold", EVENT_DEADLINE, |e| {
            e["call"] == t.call.as_str() && e["by"] == "operator" && e["held"] == held
        });
    }

    // The caller heard the operator, then the hold music from its start, then the operator.
    held_party_heard_music_between(&t.caller_media, t.bridged_from, &t.prompts, OPERATOR_HZ);
    // The recording went on through the hold: as long as the conversation.
    let duration = recording["duration_ms"].as_u64().unwrap();
    let talk = t.finished["talk_ms"].as_u64().unwrap();
    assert!(
        duration.abs_diff(talk) <= 100,
        "recording {duration} ms, bridged {talk} ms"
    );
}

#[test]
fn operator_codec_change_mid_call_switches_what_navbat_sends() {
    // The operator answers with PCMU, talks 3 s, then re-offers PCMA only.
    let mut t = call_with_operator_scenario("media-recodec", "operator_recodec.xml", 10_000);
    assert_eq!(
        t.finished["outcome"], "answered",
        "the codec change dropped the call"
    );
    // SIPp checked that navbat answered the re-offer with PCMA.
    let status = t.op_sipp.wait();
    assert!(status.success(), "operator SIPp: {}", t.op_sipp.report());

    // What the operator's phone got: the caller in PCMU, then (from one packet on, with the
    // marker bit of a new talk spurt) the caller in PCMA, in one continuous stream.
    let heard: Vec<Received> = t
        .op_media
        .received()
        .into_iter()
        .filter(|p| p.at > t.bridged_from)
        .collect();
    let switch = heard
        .iter()
        .position(|p| p.header.payload_type == Codec::Pcma.payload_type())
        .unwrap_or_else(|| panic!("navbat never sent PCMA ({} packets)", heard.len()));
    let (before, after) = heard.split_at(switch);
    assert!(
        before
            .iter()
            .all(|p| p.header.payload_type == Codec::Pcmu.payload_type()),
        "PCMU until the change"
    );
    assert!(
        after
            .iter()
            .all(|p| p.header.payload_type == Codec::Pcma.payload_type()),
        "PCMA after it, never back"
    );
    assert!(after[0].header.marker, "a new talk spurt is marked");
    assert_eq!(
        after[0].header.ssrc,
        before.last().unwrap().header.ssrc,
        "one stream"
    );
    assert!(
        packets_with_tone(before, CALLER_HZ) >= HEARD,
        "caller heard in PCMU"
    );
    assert!(
        packets_with_tone(after, CALLER_HZ) >= HEARD,
        "caller heard in PCMA"
    );
    // And the caller still heard the operator after the change.
    let caller_heard: Vec<Received> = t
        .caller_media
        .received()
        .into_iter()
        .filter(|p| p.at > after[0].at)
        .collect();
    assert!(
        packets_with_tone(&caller_heard, OPERATOR_HZ) >= HEARD,
        "the operator after the change"
    );
}

/// What a held party (`phone`) heard after `from`: the other side's `tone`, then the hold
/// music sample for sample from its start (its first second; holds last three), then the
/// other side's tone again.
fn held_party_heard_music_between(phone: &Phone, from: SystemTime, prompts: &Path, tone: f64) {
    let heard: Vec<Received> = phone
        .received()
        .into_iter()
        .filter(|p| p.at > from)
        .collect();
    assert!(!heard.is_empty(), "the held party heard nothing");
    let store = navbat::media::prompts::PromptStore::new(prompts);
    let music = store.music().unwrap();
    let codec = Codec::from_payload_type(heard[0].header.payload_type).unwrap();
    let expected: Vec<Vec<i16>> = as_heard(&music, codec).into_iter().take(50).collect();
    let start = (0..heard.len().saturating_sub(expected.len()))
        .find(|i| occurrences(&heard[*i..*i + expected.len()], &expected) == 1)
        .unwrap_or_else(|| panic!("the hold music was never heard ({} packets)", heard.len()));
    assert!(
        packets_with_tone(&heard[..start], tone) >= HEARD,
        "the other side before the hold"
    );
    assert!(
        packets_with_tone(&heard[start + expected.len()..], tone) >= HEARD,
        "the bridge did not resume after the hold"
    );
}

#[test]
fn caller_hold_plays_music_to_the_operator_and_resume_restores_the_bridge() {
    let dir = TestDir::new("media-caller-hold-prompts");
    let prompts = shared_prompts(dir.path());
    let navbat = Navbat::start(
        "media-caller-hold",
        TestConfig::default()
            .prompts_dir(&prompts)
            .reserve_after_secs(600),
    );
    let op_media = Phone::start_tone(Some((Codec::Pcmu, OPERATOR_HZ)));
    let mut op_sipp = answering_phone(&navbat, "1001", &op_media);
    navbat.wait_operator("1001", "available");
    // The caller talks 3 s, holds 3 s (a=sendonly), resumes and talks 3 s more.
    let caller_media = Phone::start_tone(Some((Codec::Pcma, CALLER_HZ)));
    let sipp = dial(
        &navbat,
        "caller",
        "media_caller_hold.xml",
        DTM_DID,
        &caller_media,
        Some(3000),
    );
    let answered = navbat.wait_for_event("call_answered", Duration::from_secs(40), |_| true);
    let bridged_from = SystemTime::now();
    let call = answered["call"].as_str().unwrap().to_string();
    // SIPp checks navbat's answers: recvonly to the hold, sendrecv to the resume.
    sipp.wait_success();
    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, |e| {
        e["call"] == call.as_str()
    });
    assert_eq!(finished["outcome"], "answered", "the hold dropped the call");
    assert_eq!(finished["ended_by"], "caller");
    op_sipp.wait();
    held_party_heard_music_between(&op_media, bridged_from, &prompts, CALLER_HZ);
}
