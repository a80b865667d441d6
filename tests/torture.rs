//! RFC 4475 torture messages against the real navbat, over UDP and TCP.
//!
//! Every fixture in `tests/fixtures/rfc4475/` is sent unchanged (Request-URI, To and Via as the
//! RFC wrote them) and the answer is recorded. After each one an OPTIONS from a fresh socket
//! must still get 200 and the process must still run: bad input is never a crash (style.md,
//! rule 3).
//!
//! The expected outcome per fixture is the table [`FIXTURES`], citing the RFC section. Over TCP
//! a response comes back on the connection, so the table is checked strictly. Over UDP the
//! RFC's Via values point at documentation addresses (192.0.2.x, example.com), where a
//! conforming server sends its response, so silence on our socket proves nothing: a UDP
//! response is checked only if one arrives.
//!
//! Windows for "nothing came back" are bounded waits, because absence cannot be polled; they
//! only decide what is recorded, never how long something took.

mod common;

use std::fs;
use std::time::Duration;

use common::*;

/// What RFC 4475 says a receiving endpoint may do with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Valid (RFC 4475 3.1.1, 3.3.11-14, 3.4): "must be accepted as well formed", so some final
    /// response other than 400 Bad Request (a 400 says the parser refused a good message);
    /// which one depends on semantics (404 unknown target, 401 from the registrar, ...).
    Valid,
    /// Well formed but semantically unacceptable: a final response of 400 or above.
    Rejected,
    /// An unknown method at an endpoint: 501 Not Implemented (405 if it lists Allow).
    UnknownMethod,
    /// Malformed: a 4xx-6xx, or silence / a closed connection (a counted drop). Never 1xx-3xx.
    RejectOrDrop,
    /// Malformed, but the RFC lets a liberal element accept it: any final response or silence.
    AnyOrDrop,
    /// A stray response (no transaction matches): nothing may be sent back.
    Silence,
}

use Expect::*;

struct Fixture {
    file: &'static str,
    section: &'static str,
    expect: Expect,
    /// Fit to send over TCP: framing is unambiguous on a stream (not `clerr`, whose
    /// Content-Length is never satisfied; not `dblreq`, a UDP-datagram test; not `inv2543`,
    /// which has no Content-Length, mandatory on streams).
    tcp: bool,
}

const fn f(file: &'static str, section: &'static str, expect: Expect, tcp: bool) -> Fixture {
    Fixture {
        file,
        section,
        expect,
        tcp,
    }
}

/// The expected outcome of every RFC 4475 message for an endpoint (navbat is a UAS and
/// registrar, not a proxy).
const FIXTURES: &[Fixture] = &[
    // 3.1.1 Valid messages: "must be accepted as well formed".
    f("wsinv", "3.1.1.1", Valid, true),
    f("intmeth", "3.1.1.2", UnknownMethod, true), // 501 listing Allow
    f("esc01", "3.1.1.3", Valid, true),
    f("escnull", "3.1.1.4", Valid, true),
    f("esc02", "3.1.1.5", UnknownMethod, true), // RE%47IST%45R is not REGISTER
    f("lwsdisp", "3.1.1.6", Valid, true),
    f("longreq", "3.1.1.7", Valid, true),
    f("dblreq", "3.1.1.8", Valid, false), // the REGISTER is handled, the rest ignored
    f("semiuri", "3.1.1.9", Valid, true),
    f("transports", "3.1.1.10", Valid, true),
    f("mpart01", "3.1.1.11", Valid, true),
    f("unreason", "3.1.1.12", Silence, true), // a response: parsed, then discarded
    f("noreason", "3.1.1.13", Silence, true),
    // 3.1.2 Invalid messages.
    f("badinv01", "3.1.2.1", RejectOrDrop, true), // 400
    f("clerr", "3.1.2.2", RejectOrDrop, false),   // UDP: 400
    f("ncl", "3.1.2.3", RejectOrDrop, true),      // error; TCP: close the connection
    f("scalar02", "3.1.2.4", RejectOrDrop, true), // 400 for the CSeq
    f("scalarlg", "3.1.2.5", Silence, true),      // a response: discarded
    f("quotbal", "3.1.2.6", RejectOrDrop, true),  // 400
    f("ltgtruri", "3.1.2.7", AnyOrDrop, true),    // 400, or liberally ignore the <>
    f("lwsruri", "3.1.2.8", AnyOrDrop, true),     // 400, or ignore the LWS
    f("lwsstart", "3.1.2.9", AnyOrDrop, true),    // may reject, or ignore extra SP
    f("trws", "3.1.2.10", AnyOrDrop, true),       // may reject, or ignore trailing SP
    f("escruri", "3.1.2.11", AnyOrDrop, true),    // 400, or ignore the escaped headers
    f("baddate", "3.1.2.12", AnyOrDrop, true),    // reject only if Date mattered
    f("regbadct", "3.1.2.13", AnyOrDrop, true),   // 400, or infer the <>
    f("badaspec", "3.1.2.14", AnyOrDrop, true),   // 400, or ignore the spaces
    f("baddn", "3.1.2.15", AnyOrDrop, true),      // 400, or infer the quotes
    f("badvers", "3.1.2.16", RejectOrDrop, true), // 505 Version Not Supported
    f("mismatch01", "3.1.2.17", RejectOrDrop, true), // 400
    f("mismatch02", "3.1.2.18", RejectOrDrop, true), // 501 (400 acceptable)
    f("bigcode", "3.1.2.19", Silence, true),      // a response: dropped
    // 3.2 Transaction layer semantics.
    f("badbranch", "3.2.1", AnyOrDrop, true), // 400 (statelessly), or RFC 2543 matching
    // 3.3 Application layer semantics.
    f("insuf", "3.3.1", RejectOrDrop, true), // 400: no To, From, Call-ID, Max-Forwards
    f("unkscm", "3.3.2", Rejected, true),    // 416 Unsupported URI Scheme
    f("novelsc", "3.3.3", Rejected, true),   // 416 (or 404): not a SIP target here
    f("unksm2", "3.3.4", Rejected, true),    // a registrar rejects non-SIP AORs (4xx)
    f("bext01", "3.3.5", Rejected, true),    // 420 Bad Extension, listing Unsupported
    f("invut", "3.3.6", Rejected, true),     // 415 Unsupported Media Type (or 404)
    f("regaut01", "3.3.7", Rejected, true),  // 401 challenge (or 403/400)
    f("multi01", "3.3.8", RejectOrDrop, true), // 400
    f("mcl01", "3.3.9", RejectOrDrop, true), // 400 over UDP; a stream cannot be framed
    f("bcast", "3.3.10", Silence, true),     // a response: dropped
    f("zeromf", "3.3.11", Valid, true),      // an endpoint processes it normally
    f("cparam01", "3.3.12", Valid, true),    // registrar: challenge or refuse
    f("cparam02", "3.3.13", Valid, true),
    f("regescrt", "3.3.14", Valid, true),
    f("sdp01", "3.3.15", Rejected, true), // 406 Not Acceptable (or 404)
    // 3.4 Backward compatibility.
    f("inv2543", "3.4.1", Valid, false),
];

/// How long a valid message over TCP may take to be answered.
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// How long we listen for a response that should not (or need not) come.
const QUIET_WINDOW: Duration = Duration::from_millis(1500);
/// How long a UDP response may take to come back to our socket, if it comes at all.
const UDP_WINDOW: Duration = Duration::from_millis(700);

fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture(&format!("rfc4475/{name}.dat"));
    fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `Ok` if `status` (or silence, `None`) is what `expect` allows on a transport where a
/// response would come back to us.
fn judge(expect: Expect, status: Option<u16>) -> Result<(), String> {
    let ok = match (expect, status) {
        (Valid, Some(s)) => s != 400,
        (UnknownMethod, Some(s)) => s == 501 || s == 405,
        (Rejected, Some(s)) => s >= 400,
        (RejectOrDrop, None) => true,
        (RejectOrDrop, Some(s)) => s >= 400,
        (AnyOrDrop, _) => true,
        (Silence, None) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {expect:?}, got {status:?}"))
    }
}

fn assert_still_serving(navbat: &mut Navbat, after: &str) {
    navbat.assert_alive(&format!("after {after}"));
    let probe = SipUdp::new(navbat.sip);
    let resp = probe
        .options(EVENT_DEADLINE)
        .unwrap_or_else(|| panic!("no answer to OPTIONS after {after}: navbat stopped serving"));
    assert_eq!(resp.status, 200, "OPTIONS after {after}:\n{}", resp.raw);
}

/// What one fixture got.
struct Row {
    file: &'static str,
    section: &'static str,
    status: Option<u16>,
    verdict: Result<(), String>,
}

fn report(transport: &str, rows: &[Row]) -> usize {
    let mut failures = 0;
    eprintln!("RFC 4475 over {transport}:");
    for Row {
        file,
        section,
        status,
        verdict,
    } in rows
    {
        let got = status.map_or("no response".to_string(), |s| s.to_string());
        match verdict {
            Ok(()) => eprintln!("  ok    {file:<11} {section:<9} {got}"),
            Err(why) => {
                failures += 1;
                eprintln!("  FAIL  {file:<11} {section:<9} {got}: {why}");
            }
        }
    }
    failures
}

#[test]
fn rfc4475_fixtures_are_all_present() {
    for fx in FIXTURES {
        let bytes = fixture_bytes(fx.file);
        assert!(
            bytes.windows(4).any(|w| w == b"\r\n\r\n"),
            "{} has no CRLF CRLF",
            fx.file
        );
    }
    let on_disk = fs::read_dir(fixture("rfc4475"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "dat"))
        })
        .count();
    assert_eq!(
        on_disk,
        FIXTURES.len(),
        "every .dat file has a row in FIXTURES"
    );
    assert_eq!(FIXTURES.len(), 49, "RFC 4475 has 49 messages");
}

#[test]
fn rfc4475_over_udp_never_breaks_the_server() {
    let mut navbat = Navbat::start("torture-udp", TestConfig::default());
    let mut rows = Vec::new();
    for fx in FIXTURES {
        let sock = SipUdp::new(navbat.sip);
        sock.send(&fixture_bytes(fx.file));
        let status = sock.any_final_response(UDP_WINDOW).map(|r| r.status);
        // Over UDP the response goes where the fixture's Via says, so silence is not judged.
        let verdict = match status {
            None => Ok(()),
            Some(_) => judge(fx.expect, status),
        };
        rows.push(Row {
            file: fx.file,
            section: fx.section,
            status,
            verdict,
        });
        assert_still_serving(
            &mut navbat,
            &format!("{} ({}) over UDP", fx.file, fx.section),
        );
    }
    let failures = report("UDP", &rows);
    assert_eq!(
        failures, 0,
        "RFC 4475 over UDP: {failures} fixture(s) out of line"
    );
}

/// Messages whose request line the SIP stack's TCP framing refuses (a method
/// it does not know, another SIP version): it closes the connection before
/// navbat sees them, so over TCP they get a closed connection instead of the
/// 501/505 they get over UDP, where navbat screens datagrams itself. A known
/// limit of the stack (rsipstack 0.7.14), recorded here so a change shows up.
const TCP_FRAMING_CLOSES: &[&str] = &["intmeth", "esc02", "badvers"];

#[test]
fn rfc4475_over_tcp_gets_the_answers_the_rfc_expects() {
    let mut navbat = Navbat::start("torture-tcp", TestConfig::default());
    let mut rows = Vec::new();
    for fx in FIXTURES.iter().filter(|fx| fx.tcp) {
        let window = match fx.expect {
            Valid | Rejected | UnknownMethod => ANSWER_DEADLINE,
            RejectOrDrop | AnyOrDrop | Silence => QUIET_WINDOW,
        };
        let got = sip_tcp_exchange(navbat.sip, &fixture_bytes(fx.file), window);
        let status = first_final_response(&got).map(|r| r.status);
        let verdict = match (status, TCP_FRAMING_CLOSES.contains(&fx.file)) {
            // Known limit, not a pass of the RFC: see TCP_FRAMING_CLOSES.
            (None, true) => Ok(()),
            _ => judge(fx.expect, status),
        };
        rows.push(Row {
            file: fx.file,
            section: fx.section,
            status,
            verdict,
        });
        assert_still_serving(
            &mut navbat,
            &format!("{} ({}) over TCP", fx.file, fx.section),
        );
    }
    let failures = report("TCP", &rows);
    assert_eq!(
        failures, 0,
        "RFC 4475 over TCP: {failures} fixture(s) out of line"
    );
}
