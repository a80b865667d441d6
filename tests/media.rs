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
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

/// One RTP packet a phone received.
#[derive(Clone, Debug)]
struct Received {
    at: SystemTime,
    header: rtp::RtpHeader,
    samples: Vec<i16>,
}

/// The media end of a test phone: receives and decodes RTP, and optionally talks (a 440 Hz
/// tone) back to where navbat's packets come from.
struct Phone {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Phone {
    fn start(talk: Option<Codec>) -> Phone {
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
                        header,
                        samples,
                    });
                }
            }));
        }
        if let Some(codec) = talk {
            let (sock, stop) = (sock.clone(), stop.clone());
            threads.push(thread::spawn(move || {
                let mut seq = 1u16;
                let mut ts = 0u32;
                let mut phase = 0f64;
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(20));
                    let Some(to) = *remote.lock().unwrap() else {
                        continue;
                    };
                    let tone: Vec<i16> = (0..160)
                        .map(|_| {
                            phase += 2.0 * std::f64::consts::PI * 440.0 / 8000.0;
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

/// The shared (not tenant-specific) prompts, copied into the test directory: the generic
/// greeting is shorter than the DTM one, which keeps the tests quick.
fn shared_prompts(dir: &Path) -> PathBuf {
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

fn caller(navbat: &Navbat, name: &str, phone: &Phone, talk_ms: u64) -> Sipp {
    let talk = talk_ms.to_string();
    navbat.sipp_client(
        name,
        "media_caller.xml",
        &[
            "-s",
            DTM_DID,
            "-m",
            "1",
            "-key",
            "rtp_port",
            &phone.port(),
            "-d",
            &talk,
        ],
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
    let mut reader = hound::WavReader::open(&path).unwrap();
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
