//! SIP hot paths, one message per iteration: screening (= full parse) at the
//! UDP front door, digest verification for REGISTER, and message building
//! (SDP answer, SIP response serialisation).
//!
//! Run: `cargo bench --bench sip`. Method and figures: `BENCHMARKS.md`.
//! No timing is asserted anywhere; the setup only checks that each input takes
//! the path its name says (e.g. a valid INVITE passes the guard).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use navbat::sip::digest::{self, DigestCredentials, NonceCheck, NonceSigner};
use navbat::sip::guard::{screen, Screen};
use navbat::sip::sdp;
use rsipstack::sip::SipMessage;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

const OFFER: &str = "v=0\r\n\
o=- 3911452283 3911452283 IN IP4 10.20.30.40\r\n\
s=trunk\r\n\
c=IN IP4 10.20.30.40\r\n\
t=0 0\r\n\
m=audio 31456 RTP/AVP 8 0 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// A trunk INVITE as carriers send it: two Vias, Record-Route, P-Asserted-Identity, SDP.
fn invite_with_sdp() -> String {
    format!(
        "INVITE sip:712351914@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.20.30.40:5060;branch=z9hG4bK-524287-1---77ba5d4f6c1a;rport\r\n\
Via: SIP/2.0/UDP 10.20.30.1:5060;received=10.20.30.1;branch=z9hG4bK2f1c.9a3e1b02\r\n\
Record-Route: <sip:10.20.30.40;lr;ftag=as5f9c0a12>\r\n\
Max-Forwards: 69\r\n\
From: \"998901234567\" <sip:998901234567@10.20.30.40>;tag=as5f9c0a12\r\n\
To: <sip:712351914@127.0.0.1>\r\n\
Call-ID: 3c26700f7e1d4d2fa2b1f2c96c3a0b91@10.20.30.40\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:998901234567@10.20.30.40:5060>\r\n\
P-Asserted-Identity: <sip:998901234567@10.20.30.40>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, INFO, UPDATE\r\n\
Supported: replaces, timer\r\n\
Session-Expires: 1800;refresher=uac\r\n\
User-Agent: Trunk-GW 4.2\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{OFFER}",
        OFFER.len()
    )
}

const HA1: &str = "0f3b6d4ed5a1d0d6f1f4b1f5c3a2e1d0";

fn authorization_value(response: &str) -> String {
    format!(
        "Digest username=\"1001\", realm=\"navbat\", nonce=\"68f1a2b3.0123456789abcdef0123\", \
uri=\"sip:127.0.0.1:5060\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, \
cnonce=\"6b8b4567327b23c6\""
    )
}

/// The credentials from [`authorization_value`] with a response that verifies.
fn valid_credentials() -> (String, DigestCredentials) {
    let mut c = digest::parse_authorization(&authorization_value("0")).expect("parses");
    c.response = digest::expected_response(HA1, "REGISTER", &c);
    let value = authorization_value(&c.response);
    (value, c)
}

/// A softphone's second REGISTER, answering the challenge.
fn register_with_authorization() -> String {
    let (auth, _) = valid_credentials();
    format!(
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.23:5070;branch=z9hG4bK.Xy7fQ2pLm;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:1001@127.0.0.1>;tag=8mS3kd9Fz\r\n\
To: <sip:1001@127.0.0.1>\r\n\
Call-ID: 6a1d0bc4-3e2f-4c51-9d7a-0a1b2c3d4e5f\r\n\
CSeq: 21 REGISTER\r\n\
Contact: <sip:1001@192.168.1.23:5070;transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-00a0c91e6bf6>\"\r\n\
Authorization: {auth}\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO, UPDATE\r\n\
User-Agent: Linphone/5.2.0\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// An operator phone's 200 OK to navbat's INVITE, with an SDP answer.
fn ok_200() -> String {
    let body = "v=0\r\no=op 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    format!(
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.navbat.4f1e2d;rport=5060;received=127.0.0.1\r\n\
From: <sip:998901234567@127.0.0.1>;tag=nb-7c1f\r\n\
To: <sip:1001@127.0.0.1:5071>;tag=op-19a2\r\n\
Call-ID: nb-2b7e151628aed2a6abf71588\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:1001@127.0.0.1:5071>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, INFO\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Torture-style (RFC 4475 flavour): compact header names, odd case, extra
/// whitespace, a folded (continued) Subject, and an unknown header.
fn torture_compact_folded() -> String {
    let body = "v=0\r\no=x 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:712351914@127.0.0.1 SIP/2.0\r\n\
v:  SIP/2.0/UDP 192.0.2.5:5060 ;branch=z9hG4bK-tort-1\r\n\
f: \"J Rosenberg \\\\\\\"\"  <sip:jdrosen@192.0.2.5>;tag=98asjd8\r\n\
t:<sip:712351914@127.0.0.1>\r\n\
i: 0ha0isndaksdj@192.0.2.5\r\n\
cSeQ:   8   INVITE\r\n\
m: <sip:jdrosen@192.0.2.5>\r\n\
Max-Forwards: 68\r\n\
s: a subject that goes\r\n \
 on across a folded\r\n\tcontinuation line\r\n\
NewFangledHeader:   newfangled value\r\n \
 continued newfangled value\r\n\
c: application/sdp\r\n\
l: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A request the stack refuses (CSeq for another method): the guard builds a 400.
fn bad_cseq_request() -> String {
    "OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-bad-1\r\n\
From: <sip:scanner@192.0.2.9>;tag=1\r\n\
To: <sip:127.0.0.1>\r\n\
Call-ID: bad-cseq-1@192.0.2.9\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n"
        .to_string()
}

fn verdict(s: &Screen) -> String {
    match s {
        Screen::Pass => "pass".into(),
        Screen::PassRewritten(_) => "pass (normalised)".into(),
        Screen::Answer { status, .. } => format!("answer {status}"),
        Screen::Drop(why) => format!("drop ({why})"),
    }
}

fn bench_screen(c: &mut Criterion) {
    let inputs = [
        ("invite_sdp", invite_with_sdp()),
        ("register_auth", register_with_authorization()),
        ("response_200_sdp", ok_200()),
        ("torture_compact_folded", torture_compact_folded()),
        ("bad_cseq_answer_400", bad_cseq_request()),
    ];
    let mut g = c.benchmark_group("sip/screen");
    g.throughput(Throughput::Elements(1));
    for (name, text) in &inputs {
        let v = verdict(&screen(text.as_bytes()));
        // Which path each input takes, so the figures can be read correctly.
        eprintln!("sip/screen/{name}: {} bytes, verdict {v}", text.len());
        let expect_pass = !name.starts_with("bad_") && !name.starts_with("torture");
        if expect_pass {
            assert_eq!(v, "pass", "{name} should pass the guard");
        }
        g.bench_function(*name, |b| b.iter(|| screen(black_box(text.as_bytes()))));
    }
    g.finish();
}

fn bench_digest(c: &mut Criterion) {
    let (value, creds) = valid_credentials();
    assert!(digest::verify(HA1, "REGISTER", &creds));
    let signer = NonceSigner::new([7; 16], 300);
    let nonce = signer.issue(1_700_000_000, None);
    assert_eq!(signer.check(&nonce, 1_700_000_010, None), NonceCheck::Valid);

    let mut g = c.benchmark_group("sip/digest");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_authorization", |b| {
        b.iter(|| digest::parse_authorization(black_box(&value)))
    });
    g.bench_function("verify", |b| {
        b.iter(|| digest::verify(black_box(HA1), "REGISTER", black_box(&creds)))
    });
    g.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            let c = digest::parse_authorization(black_box(&value)).expect("parses");
            digest::verify(black_box(HA1), "REGISTER", &c)
        })
    });
    g.bench_function("nonce_check", |b| {
        b.iter(|| signer.check(black_box(&nonce), black_box(1_700_000_010), None))
    });
    g.finish();
}

fn bench_build(c: &mut Criterion) {
    let offer = sdp::parse(OFFER).expect("offer parses");
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert!(sdp::answer(&offer, ip, 20000, 1).is_some());
    let ok = ok_200();
    let invite = invite_with_sdp();

    let mut g = c.benchmark_group("sip/build");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sdp_answer", |b| {
        b.iter(|| sdp::answer(black_box(&offer), ip, 20000, black_box(42)))
    });
    g.bench_function("sdp_parse_and_answer", |b| {
        b.iter(|| {
            let o = sdp::parse(black_box(OFFER)).expect("parses");
            sdp::answer(&o, ip, 20000, 42)
        })
    });
    g.bench_function("sdp_offer", |b| {
        b.iter(|| sdp::offer(ip, 20000, black_box(42)))
    });
    // navbat has no public response builder (responses are built inside
    // rsipstack's transactions), so this measures rsipstack's parse + serialise.
    g.bench_function("rsipstack_response_roundtrip", |b| {
        b.iter(|| {
            let m = SipMessage::try_from(black_box(ok.as_str())).expect("parses");
            m.to_string()
        })
    });
    g.bench_function("rsipstack_invite_roundtrip", |b| {
        b.iter(|| {
            let m = SipMessage::try_from(black_box(invite.as_str())).expect("parses");
            m.to_string()
        })
    });
    // Serialisation alone, from an already parsed message.
    let parsed = SipMessage::try_from(ok.as_str()).expect("parses");
    g.bench_function("rsipstack_response_to_string", |b| {
        b.iter_batched_ref(|| parsed.clone(), |m| m.to_string(), BatchSize::SmallInput)
    });
    g.finish();
}

criterion_group!(benches, bench_screen, bench_digest, bench_build);
criterion_main!(benches);
