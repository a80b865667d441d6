//! SIP over TCP with caps and deadlines (issue 18, part 6; `src/sip/tcp.rs`) and the SIP
//! parser's warnings held to a burst per source (`src/sip/warn_limit.rs`): the real `navbat`
//! binary and plain TCP clients on loopback.
//!
//! Nothing here asserts how long anything took: deadlines are shown by what happens (a
//! connection closed, a counter), every wait is a poll with a generous bound.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A counter or gauge of `/metrics` (0 when absent).
fn metric(navbat: &Navbat, series: &str) -> u64 {
    navbat.metric(series)
}

fn refused(navbat: &Navbat, reason: &str) -> u64 {
    metric(
        navbat,
        &format!("navbat_sip_tcp_refused_total{{reason=\"{reason}\"}}"),
    )
}

/// A request over TCP from `local` (its Via names it); `first` is the request line's method,
/// URI and version.
fn request(method: &str, version: &str, to: SocketAddr, local: SocketAddr, extra: &str) -> String {
    let token = unique_token();
    format!(
        "{method} sip:{to} {version}\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK{token};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=t{token}\r\n\
         To: <sip:{to}>\r\n\
         Call-ID: tcp-{token}\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// Connects to `to` from the loopback address `from`.
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from((from, 0)).into())
        .expect("bind the client's loopback address");
    socket
        .connect_timeout(&to.into(), Duration::from_secs(5))
        .expect("connect to navbat's SIP TCP port");
    socket.into()
}

/// What a read on a connection found.
#[derive(Debug)]
enum Read1 {
    /// A final response.
    Response(SipResponse),
    /// The peer closed (end of stream or reset).
    Closed,
    /// Nothing within the bound.
    Nothing,
}

/// Reads until a final response, a close, or `bound`.
fn read_response(stream: &mut TcpStream, bound: Duration) -> Read1 {
    let until = Instant::now() + bound;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Read1::Closed,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                // A keep-alive's pong (CRLF) may come before the response.
                let start = got
                    .iter()
                    .position(|b| !b"\r\n".contains(b))
                    .unwrap_or(got.len());
                if let Some(r) = first_final_response(&got[start..]) {
                    return Read1::Response(r);
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Read1::Closed,
        }
    }
    Read1::Nothing
}

fn status_of(stream: &mut TcpStream, what: &str) -> u16 {
    match read_response(stream, Duration::from_secs(20)) {
        Read1::Response(r) => r.status,
        other => panic!("{what}: no response on the connection ({other:?})"),
    }
}

const DEADLINE: &str = "
[sip.tcp_limits]
header_deadline_secs = 2
per_source = 4
";

/// A slowloris: a header one byte a second that never ends. The server closes it at the
/// header deadline (2 s here; the client would go on for 40) and counts it.
#[test]
fn a_slowloris_is_closed_at_the_header_deadline() {
    let navbat = Navbat::start("tcp-slowloris", TestConfig::default().extra_toml(DEADLINE));
    let mut stream = connect_from([127, 0, 0, 1], navbat.sip);
    let head = b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nX-Slow: ";
    stream.write_all(head).unwrap();
    let mut closed = false;
    for _ in 0..40 {
        if stream.write_all(b"a").is_err() {
            closed = true;
            break;
        }
        if let Read1::Closed = read_response(&mut stream, Duration::from_secs(1)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "a header sent for 40 s was never cut off");
    wait_until(
        "the close counted as header_deadline",
        Duration::from_secs(30),
        || (refused(&navbat, "header_deadline") >= 1).then_some(()),
    );
    // The listener still serves a well-behaved client.
    let mut good = connect_from([127, 0, 0, 1], navbat.sip);
    let local = good.local_addr().unwrap();
    good.write_all(request("OPTIONS", "SIP/2.0", navbat.sip, local, "").as_bytes())
        .unwrap();
    assert_eq!(status_of(&mut good, "OPTIONS after the slowloris"), 200);
}

/// Nine connections from one source with a cap of four: four are served, five are closed at
/// once (counted), and another source still connects and gets its OPTIONS answered.
#[test]
fn the_per_source_connection_cap_holds_and_other_sources_still_connect() {
    let navbat = Navbat::start("tcp-cap", TestConfig::default().extra_toml(DEADLINE));
    let mut conns: Vec<TcpStream> = (0..9)
        .map(|_| connect_from([127, 0, 0, 1], navbat.sip))
        .collect();
    // Every connection is accepted (the kernel's queue) before navbat looks at it; wait until
    // navbat has judged all nine, so the ones it served are the first four.
    wait_until(
        "five connections refused over the source cap",
        Duration::from_secs(30),
        || (refused(&navbat, "source_cap") >= 5).then_some(()),
    );
    let mut served = 0;
    let mut closed = 0;
    for conn in &mut conns {
        let local = conn.local_addr().unwrap();
        let sent = conn.write_all(request("OPTIONS", "SIP/2.0", navbat.sip, local, "").as_bytes());
        match (sent, read_response(conn, Duration::from_secs(20))) {
            (Ok(()), Read1::Response(r)) if r.status == 200 => served += 1,
            (_, Read1::Closed) | (Err(_), _) => closed += 1,
            (_, other) => panic!("neither served nor closed: {other:?}"),
        }
    }
    assert_eq!(
        (served, closed),
        (4, 5),
        "served and closed of 9 with a cap of 4"
    );
    assert_eq!(refused(&navbat, "source_cap"), 5);
    // Another source is not held by the first one's cap.
    let mut other = connect_from([127, 0, 0, 2], navbat.sip);
    let local = other.local_addr().unwrap();
    other
        .write_all(request("OPTIONS", "SIP/2.0", navbat.sip, local, "").as_bytes())
        .unwrap();
    assert_eq!(status_of(&mut other, "OPTIONS from 127.0.0.2"), 200);
    assert!(metric(&navbat, "navbat_sip_tcp_connections") >= 1);
}

/// SIP/3.0 gets 505 and an unknown method 501, each on the same connection, which stays open
/// and serves the next proper request.
#[test]
fn another_version_and_an_unknown_method_are_answered_and_the_connection_kept() {
    let navbat = Navbat::start("tcp-505", TestConfig::default());
    let mut stream = connect_from([127, 0, 0, 1], navbat.sip);
    let local = stream.local_addr().unwrap();
    let send = |s: &mut TcpStream, m: &str, v: &str| {
        s.write_all(request(m, v, navbat.sip, local, "").as_bytes())
            .unwrap()
    };
    send(&mut stream, "OPTIONS", "SIP/3.0");
    assert_eq!(status_of(&mut stream, "OPTIONS in SIP/3.0"), 505);
    send(&mut stream, "OPTIONS", "SIP/2.0");
    assert_eq!(status_of(&mut stream, "OPTIONS after the 505"), 200);
    send(&mut stream, "FOO", "SIP/2.0");
    assert_eq!(status_of(&mut stream, "FOO"), 501);
    // A keep-alive ping gets its pong, and the connection still serves.
    stream.write_all(b"\r\n\r\n").unwrap();
    let mut pong = [0u8; 2];
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .read_exact(&mut pong)
        .expect("the pong of a CRLFCRLF ping");
    assert_eq!(&pong, b"\r\n");
    send(&mut stream, "OPTIONS", "SIP/2.0");
    assert_eq!(status_of(&mut stream, "OPTIONS after the 501"), 200);
}

/// A supervisor's feature code over TCP (rsipstack's transactions) is decided as over UDP:
/// challenged with 407 and both digests (SHA-256 and MD5) until its credentials are right.
#[test]
fn a_feature_code_over_tcp_is_challenged_like_over_udp() {
    let navbat = Navbat::start(
        "tcp-feature",
        TestConfig::default().operators(vec![
            OperatorSpec::regular("1001").with_sha256(),
            OperatorSpec::reserve("1901").supervising().with_sha256(),
        ]),
    );
    let mut stream = connect_from([127, 0, 0, 1], navbat.sip);
    let local = stream.local_addr().unwrap();
    let invite = request("INVITE", "SIP/2.0", navbat.sip, local, "").replacen(
        &format!("INVITE sip:{}", navbat.sip),
        &format!("INVITE sip:*511001@{}", navbat.sip),
        1,
    );
    stream.write_all(invite.as_bytes()).unwrap();
    let Read1::Response(challenge) = read_response(&mut stream, Duration::from_secs(20)) else {
        panic!("no answer to the feature code over TCP");
    };
    assert_eq!(challenge.status, 407, "{}", challenge.raw);
    let offers: Vec<&str> = challenge
        .raw
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("proxy-authenticate:"))
        .collect();
    assert!(
        offers.iter().any(|o| o.contains("SHA-256")) && offers.iter().any(|o| o.contains("MD5")),
        "{}",
        challenge.raw
    );
}

/// A 20 KB request whose one header is folded over thousands of lines: rsipstack's parser
/// warns for every line past 4 KiB. Fifty of them from one source write a handful of WARN
/// lines, not tens of thousands.
#[test]
fn deep_folded_requests_write_a_bounded_number_of_warnings() {
    let navbat = Navbat::start("tcp-folded", TestConfig::default());
    let warnings = |log: &str| log.lines().filter(|l| l.contains(" WARN ")).count();
    let before = warnings(&std::fs::read_to_string(&navbat.log).unwrap());
    let fold = format!("X-Folded: a\r\n{}", " bbbbbb\r\n".repeat(2_300));
    let mut stream = connect_from([127, 0, 0, 1], navbat.sip);
    let local = stream.local_addr().unwrap();
    for _ in 0..50 {
        let req = request("OPTIONS", "SIP/2.0", navbat.sip, local, &fold);
        assert!(req.len() > 20_000);
        stream.write_all(req.as_bytes()).unwrap();
    }
    // The connection is read in order: the answer to a last plain OPTIONS means all fifty
    // were parsed (whatever each was answered).
    let last = request("OPTIONS", "SIP/2.0", navbat.sip, local, "").replacen(
        "Call-ID: tcp-",
        "Call-ID: last-",
        1,
    );
    stream.write_all(last.as_bytes()).unwrap();
    let until = Instant::now() + Duration::from_secs(90);
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while !String::from_utf8_lossy(&got).contains("Call-ID: last-") {
        assert!(
            Instant::now() < until,
            "the last OPTIONS was never answered"
        );
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => panic!("navbat closed the connection"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let log = std::fs::read_to_string(&navbat.log).unwrap();
    let parser = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("folded header"))
        .count();
    assert!(
        parser >= 1,
        "the parser's warning never showed (test not exercising it)"
    );
    let added = warnings(&log) - before;
    assert!(
        added <= 20,
        "{added} WARN lines for 50 deep-folded requests; the last ones:\n{}",
        tail(&navbat.log, 20)
    );
}
