//! Bad input is never a panic: the SIP front door's screening, the digest
//! parser and the SDP reader take arbitrary bytes, and mutations of valid
//! messages, without panicking, and answer only with well-formed responses.

use navbat::sip::guard::{screen, Screen};
use proptest::prelude::*;

const INVITE: &str = "INVITE sip:712351914@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-0\r\n\
From: <sip:998901234567@127.0.0.1>;tag=1\r\n\
To: <sip:712351914@127.0.0.1>\r\n\
Call-ID: 1-x@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:c@127.0.0.1:5070>\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 79\r\n\r\n\
v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";

fn check_answer(s: Screen) {
    if let Screen::Answer { status, bytes } = s {
        assert!((400..600).contains(&status));
        let text = String::from_utf8(bytes).expect("answers are ASCII");
        assert!(text.starts_with("SIP/2.0 "));
        assert!(text.ends_with("\r\n\r\n"));
        // The answer echoes the request's own Via, From, To and Call-ID
        // (RFC 3261 §8.2.6.2), so the sender can match it.
        for h in ["\r\nVia: ", "\r\nFrom: ", "\r\nTo: ", "\r\nCall-ID: "] {
            assert!(text.contains(h), "{h:?} missing in {text}");
        }
    }
}

#[test]
fn the_reference_invite_passes() {
    assert_eq!(screen(INVITE.as_bytes()), Screen::Pass);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_answer(screen(&bytes));
        let text = String::from_utf8_lossy(&bytes);
        let _ = navbat::sip::digest::parse_authorization(&text);
        let _ = navbat::sip::sdp::parse(&text);
    }

    #[test]
    fn mutated_invites_never_panic(
        cuts in proptest::collection::vec((0usize..INVITE.len(), 0usize..12, any::<u8>()), 1..6)
    ) {
        let mut bytes = INVITE.as_bytes().to_vec();
        for (at, len, fill) in cuts {
            let at = at.min(bytes.len());
            let end = (at + len).min(bytes.len());
            if fill % 3 == 0 {
                bytes.drain(at..end);
            } else {
                for b in &mut bytes[at..end] {
                    *b = fill;
                }
            }
        }
        check_answer(screen(&bytes));
    }
}
