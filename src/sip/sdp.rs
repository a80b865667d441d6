//! Minimal SDP offer/answer (RFC 3264) for one audio stream: PCMU, PCMA and
//! telephone-event. The media engine will take this over with the `sdp` crate.

use std::net::IpAddr;

/// What the remote side offered or answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Connection address (`c=`), if any.
    pub ip: Option<IpAddr>,
    /// Audio port.
    pub port: u16,
    /// Payload types in preference order.
    pub payloads: Vec<u8>,
    /// The telephone-event payload type, if offered.
    pub telephone_event: Option<u8>,
}

/// Reads the first audio stream of an SDP body.
pub fn parse(body: &str) -> Option<RemoteMedia> {
    let mut session_ip = None;
    let mut media_ip = None;
    let mut in_audio = false;
    let mut port = None;
    let mut payloads = Vec::new();
    let mut te = None;
    for line in body.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("m=") {
            if port.is_some() {
                break; // only the first audio stream
            }
            let mut parts = rest.split_whitespace();
            in_audio = parts.next() == Some("audio");
            if in_audio {
                port = parts.next().and_then(|p| p.split('/').next()?.parse().ok());
                let _proto = parts.next();
                payloads = parts.filter_map(|p| p.parse().ok()).collect();
            }
        } else if let Some(rest) = line.strip_prefix("c=") {
            let ip = rest
                .split_whitespace()
                .nth(2)
                .and_then(|a| a.split('/').next()?.parse().ok());
            if in_audio {
                media_ip = ip;
            } else if port.is_none() {
                session_ip = ip;
            }
        } else if in_audio {
            if let Some(rest) = line.strip_prefix("a=rtpmap:") {
                let mut it = rest.split_whitespace();
                let pt: Option<u8> = it.next().and_then(|p| p.parse().ok());
                let enc = it.next().unwrap_or_default().to_ascii_lowercase();
                if enc.starts_with("telephone-event/") {
                    te = pt;
                }
            }
        }
    }
    Some(RemoteMedia {
        ip: media_ip.or(session_ip),
        port: port?,
        payloads,
        telephone_event: te,
    })
}

/// The codec chosen for a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 µ-law, payload type 0.
    Pcmu,
    /// G.711 A-law, payload type 8.
    Pcma,
}

impl Codec {
    fn pt(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
}

fn session_header(ip: IpAddr, session_id: u64) -> String {
    let fam = if ip.is_ipv6() { "IP6" } else { "IP4" };
    format!("v=0\r\no=navbat {session_id} {session_id} IN {fam} {ip}\r\ns=navbat\r\nc=IN {fam} {ip}\r\nt=0 0\r\n")
}

/// Our answer to `offer`, or `None` when no codec is common (then: 488).
pub fn answer(
    offer: &RemoteMedia,
    ip: IpAddr,
    port: u16,
    session_id: u64,
) -> Option<(String, Codec)> {
    let codec = offer.payloads.iter().find_map(|pt| match pt {
        0 => Some(Codec::Pcmu),
        8 => Some(Codec::Pcma),
        _ => None,
    })?;
    let mut s = session_header(ip, session_id);
    match offer.telephone_event {
        Some(te) => {
            s.push_str(&format!("m=audio {port} RTP/AVP {} {te}\r\n", codec.pt()));
            s.push_str(&format!(
                "a=rtpmap:{} {}/8000\r\n",
                codec.pt(),
                codec.name()
            ));
            s.push_str(&format!(
                "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\n"
            ));
        }
        None => {
            s.push_str(&format!("m=audio {port} RTP/AVP {}\r\n", codec.pt()));
            s.push_str(&format!(
                "a=rtpmap:{} {}/8000\r\n",
                codec.pt(),
                codec.name()
            ));
        }
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    Some((s, codec))
}

/// Our offer: PCMU, PCMA and telephone-event 101.
pub fn offer(ip: IpAddr, port: u16, session_id: u64) -> String {
    let mut s = session_header(ip, session_id);
    s.push_str(&format!("m=audio {port} RTP/AVP 0 8 101\r\n"));
    s.push_str("a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n");
    s.push_str(
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn answers_with_first_common_codec_and_dtmf() {
        let o = parse(SIPP_OFFER).unwrap();
        assert_eq!(o.port, 6000);
        assert_eq!(o.telephone_event, Some(101));
        let (a, c) = answer(&o, "127.0.0.1".parse().unwrap(), 20000, 7).unwrap();
        assert_eq!(c, Codec::Pcma);
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101"));
        let back = parse(&a).unwrap();
        assert_eq!(back.payloads, vec![8, 101]);
    }

    #[test]
    fn no_common_codec_is_none() {
        let o = parse("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 18\r\n").unwrap();
        assert!(answer(&o, "127.0.0.1".parse().unwrap(), 1, 1).is_none());
        assert!(parse("v=0\r\n").is_none());
    }
}
