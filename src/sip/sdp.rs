//! SDP offer/answer (RFC 3264) for one audio stream: PCMU, PCMA and telephone-event
//! (RFC 4733). Parsing and writing go through the `sdp` crate; the choices are ours:
//! we answer with the first G.711 codec in the offerer's order (RFC 3264 6.1) and keep
//! telephone-event at the offerer's payload type.

use crate::media::Codec;
use sdp::description::common::{Address, Attribute, ConnectionInformation};
use sdp::description::media::{MediaName, RangedPort};
use sdp::description::session::{Origin, TimeDescription, Timing};
use sdp::{MediaDescription, SessionDescription};
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

/// What the remote side offered or answered for its first audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Connection address (`c=` of the stream, else of the session), if any.
    pub ip: Option<IpAddr>,
    /// Audio port (0: the stream is refused).
    pub port: u16,
    /// Payload types in preference order.
    pub payloads: Vec<u8>,
    /// The telephone-event payload type, if offered.
    pub telephone_event: Option<u8>,
}

impl RemoteMedia {
    /// Where to send RTP, when the SDP names a usable address.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self.ip {
            Some(ip) if !ip.is_unspecified() && self.port != 0 => {
                Some(SocketAddr::new(ip, self.port))
            }
            _ => None,
        }
    }

    /// The first G.711 codec in the remote's order: in an answer, the one it chose.
    pub fn codec(&self) -> Option<Codec> {
        self.payloads
            .iter()
            .find_map(|pt| Codec::from_payload_type(*pt))
    }
}

fn connection_ip(c: &Option<ConnectionInformation>) -> Option<IpAddr> {
    c.as_ref()?
        .address
        .as_ref()?
        .address
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// Reads the first audio stream of an SDP body; `None` when the body is not SDP or has no
/// audio stream.
pub fn parse(body: &str) -> Option<RemoteMedia> {
    let sd = SessionDescription::unmarshal(&mut Cursor::new(body.as_bytes())).ok()?;
    let audio = sd
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media == "audio")?;
    let port = u16::try_from(audio.media_name.port.value).ok()?;
    let payloads: Vec<u8> = audio
        .media_name
        .formats
        .iter()
        .filter_map(|f| f.parse().ok())
        .collect();
    let telephone_event = audio.attributes.iter().find_map(|a| {
        if a.key != "rtpmap" {
            return None;
        }
        let value = a.value.as_deref()?;
        let (pt, enc) = value.split_once(' ')?;
        enc.trim()
            .to_ascii_lowercase()
            .starts_with("telephone-event/8000")
            .then(|| pt.trim().parse().ok())
            .flatten()
    });
    Some(RemoteMedia {
        ip: connection_ip(&audio.connection_information)
            .or_else(|| connection_ip(&sd.connection_information)),
        port,
        payloads,
        telephone_event,
    })
}

fn describe(ip: IpAddr, port: u16, session_id: u64, codecs: &[Codec], te: Option<u8>) -> String {
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let mut formats: Vec<String> = codecs
        .iter()
        .map(|c| c.payload_type().to_string())
        .collect();
    let mut attributes: Vec<Attribute> = codecs
        .iter()
        .map(|c| {
            Attribute::new(
                "rtpmap".into(),
                Some(format!("{} {}/8000", c.payload_type(), c.name())),
            )
        })
        .collect();
    if let Some(te) = te {
        formats.push(te.to_string());
        attributes.push(Attribute::new(
            "rtpmap".into(),
            Some(format!("{te} telephone-event/8000")),
        ));
        attributes.push(Attribute::new("fmtp".into(), Some(format!("{te} 0-15"))));
    }
    attributes.push(Attribute::new("ptime".into(), Some("20".into())));
    attributes.push(Attribute::new("sendrecv".into(), None));
    let connection = ConnectionInformation {
        network_type: "IN".into(),
        address_type: family.into(),
        address: Some(Address {
            address: ip.to_string(),
            ttl: None,
            range: None,
        }),
    };
    let sd = SessionDescription {
        version: 0,
        origin: Origin {
            username: "navbat".into(),
            session_id,
            session_version: session_id,
            network_type: "IN".into(),
            address_type: family.into(),
            unicast_address: ip.to_string(),
        },
        session_name: "navbat".into(),
        connection_information: Some(connection),
        time_descriptions: vec![TimeDescription {
            timing: Timing {
                start_time: 0,
                stop_time: 0,
            },
            repeat_times: vec![],
        }],
        media_descriptions: vec![MediaDescription {
            media_name: MediaName {
                media: "audio".into(),
                port: RangedPort {
                    value: port as isize,
                    range: None,
                },
                protos: vec!["RTP".into(), "AVP".into()],
                formats,
            },
            attributes,
            ..Default::default()
        }],
        ..Default::default()
    };
    sd.marshal()
}

/// Our answer to `offer` and the codec chosen, or `None` when no codec is common (then: 488).
pub fn answer(
    offer: &RemoteMedia,
    ip: IpAddr,
    port: u16,
    session_id: u64,
) -> Option<(String, Codec)> {
    let codec = offer.codec()?;
    Some((
        describe(ip, port, session_id, &[codec], offer.telephone_event),
        codec,
    ))
}

/// The direction of a stream (RFC 3264 §5.1, §8.4: hold is a re-offer with `sendonly` or
/// `inactive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// The offerer only sends: it put us on hold.
    SendOnly,
    /// The offerer only receives.
    RecvOnly,
    /// Neither way: on hold.
    Inactive,
}

impl Direction {
    /// The direction of the answer to an offer in this direction (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// An offer in this direction puts the answerer on hold.
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }

    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// The direction an SDP body asks for: its direction attribute (the stream's overrides the
/// session's, so the last one wins), `sendonly` for the old `c=0.0.0.0` hold (RFC 2543),
/// else `sendrecv`.
pub fn direction(body: &str) -> Direction {
    let mut dir = Direction::SendRecv;
    for line in body.lines().map(str::trim) {
        dir = match line {
            "a=sendrecv" => Direction::SendRecv,
            "a=sendonly" => Direction::SendOnly,
            "a=recvonly" => Direction::RecvOnly,
            "a=inactive" => Direction::Inactive,
            "c=IN IP4 0.0.0.0" => Direction::SendOnly,
            _ => continue,
        };
    }
    dir
}

/// Our answer to a re-offer (RFC 3264 §8) on a leg whose current local SDP is `local`: the
/// same address and port, the first common codec, and the answering direction; with the
/// direction the re-offer asked for. `None` when either body is unusable (then: 488, and the
/// session stays as it was).
pub fn answer_reoffer(local: &str, reoffer: &str, version: u64) -> Option<Reanswer> {
    let ours = parse(local)?;
    let at = ours.addr()?;
    let mut offer = parse(reoffer)?;
    let asked = direction(reoffer);
    // Keep the codec in use when the new offer still lists it (no needless switch, RFC 3264
    // §8.3.2 allows either); otherwise the first common one in the offerer's order.
    if let Some(current) = ours.codec() {
        if offer.payloads.contains(&current.payload_type()) {
            offer.payloads.retain(|pt| {
                Codec::from_payload_type(*pt).is_none() || *pt == current.payload_type()
            });
        }
    }
    let (body, codec) = answer(&offer, at.ip(), at.port(), version)?;
    let body = body.replace("a=sendrecv", &format!("a={}", asked.answer().attribute()));
    Some(Reanswer {
        body,
        asked,
        media: Negotiated {
            codec,
            telephone_event: offer.telephone_event,
            remote: offer.addr(),
        },
    })
}

/// Our side of a session after our `offer` was answered with `their_answer`: the same
/// address, only the codec they chose (and telephone-event if they kept it). A later
/// re-offer is answered from this, so it keeps that codec when it can.
pub fn settled(offer: &str, their_answer: &str, version: u64) -> Option<String> {
    let ours = parse(offer)?.addr()?;
    let theirs = parse(their_answer)?;
    let te = theirs.telephone_event.map(|_| OFFER_TELEPHONE_EVENT);
    Some(describe(
        ours.ip(),
        ours.port(),
        version,
        &[theirs.codec()?],
        te,
    ))
}

/// Our answer to an in-dialog re-offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reanswer {
    /// The SDP answer.
    pub body: String,
    /// The direction the offer asked for (hold or not).
    pub asked: Direction,
    /// What the leg's media uses from now on.
    pub media: Negotiated,
}

/// A leg's media parameters after an offer/answer exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec both sides now use.
    pub codec: Codec,
    /// The peer's telephone-event payload type, if it offered one.
    pub telephone_event: Option<u8>,
    /// Where the peer now wants RTP (`None`: no usable address, e.g. hold with 0.0.0.0).
    pub remote: Option<SocketAddr>,
}

/// The telephone-event payload type of our offers.
pub const OFFER_TELEPHONE_EVENT: u8 = 101;

/// Our offer: PCMU, PCMA and telephone-event 101.
pub fn offer(ip: IpAddr, port: u16, session_id: u64) -> String {
    describe(
        ip,
        port,
        session_id,
        &[Codec::Pcmu, Codec::Pcma],
        Some(OFFER_TELEPHONE_EVENT),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_reoffers_are_answered_per_rfc3264() {
        let local = offer("127.0.0.1".parse().unwrap(), 20000, 7);
        let hold = format!("{SIPP_OFFER}a=sendonly\r\n");
        let Reanswer { body, asked, .. } = answer_reoffer(&local, &hold, 8).unwrap();
        assert_eq!(asked, Direction::SendOnly);
        assert!(asked.is_hold());
        assert_eq!(direction(&body), Direction::RecvOnly);
        assert_eq!(parse(&body).unwrap().port, 20000);
        let inactive = format!("{SIPP_OFFER}a=inactive\r\n");
        let body = answer_reoffer(&local, &inactive, 9).unwrap().body;
        assert_eq!(direction(&body), Direction::Inactive);
        let Reanswer { body, asked, .. } = answer_reoffer(&local, SIPP_OFFER, 10).unwrap();
        assert_eq!(
            (asked, direction(&body)),
            (Direction::SendRecv, Direction::SendRecv)
        );
        let old_style = SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert!(direction(&old_style).is_hold());
        assert!(answer_reoffer(&local, "garbage", 11).is_none());
    }

    #[test]
    fn a_reoffer_keeps_the_codec_in_use_if_it_can_and_switches_if_it_must() {
        // Our current answer uses PCMU.
        let local = describe(
            "127.0.0.1".parse().unwrap(),
            20000,
            7,
            &[Codec::Pcmu],
            Some(101),
        );
        let both = SIPP_OFFER
            .replace("RTP/AVP 8 101", "RTP/AVP 8 0 101")
            .replace("m=audio 6000", "m=audio 6010");
        let kept = answer_reoffer(&local, &both, 8).unwrap();
        assert_eq!(kept.media.codec, Codec::Pcmu, "PCMU is still offered: kept");
        assert!(
            kept.body.contains("m=audio 20000 RTP/AVP 0 101"),
            "{}",
            kept.body
        );
        assert_eq!(kept.media.remote, Some("127.0.0.1:6010".parse().unwrap()));
        let switched = answer_reoffer(&local, SIPP_OFFER, 9).unwrap();
        assert_eq!(
            switched.media.codec,
            Codec::Pcma,
            "only PCMA offered: switch"
        );
        assert!(switched.body.contains("RTP/AVP 8 101"), "{}", switched.body);
        assert_eq!(switched.media.telephone_event, Some(101));
    }

    #[test]
    fn our_offer_settles_on_the_answered_codec() {
        let ours = offer("127.0.0.1".parse().unwrap(), 20000, 7);
        let settled = settled(&ours, SIPP_OFFER, 8).unwrap();
        let back = parse(&settled).unwrap();
        assert_eq!(back.payloads, vec![8, OFFER_TELEPHONE_EVENT]);
        assert_eq!(back.port, 20000);
        // A hold re-offer listing both codecs keeps PCMA.
        let hold = SIPP_OFFER.replace("RTP/AVP 8 101", "RTP/AVP 0 8 101") + "a=sendonly\r\n";
        assert_eq!(
            answer_reoffer(&settled, &hold, 9).unwrap().media.codec,
            Codec::Pcma
        );
    }

    const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn answers_with_first_common_codec_and_dtmf() {
        let o = parse(SIPP_OFFER).unwrap();
        assert_eq!(o.port, 6000);
        assert_eq!(o.telephone_event, Some(101));
        assert_eq!(o.addr(), Some("127.0.0.1:6000".parse().unwrap()));
        let (a, c) = answer(&o, "127.0.0.1".parse().unwrap(), 20000, 7).unwrap();
        assert_eq!(c, Codec::Pcma);
        assert!(a.contains("m=audio 20000 RTP/AVP 8 101"), "{a}");
        let back = parse(&a).unwrap();
        assert_eq!(back.payloads, vec![8, 101]);
        assert_eq!(back.telephone_event, Some(101));
        assert_eq!(back.codec(), Some(Codec::Pcma));
    }

    #[test]
    fn offer_round_trips_with_high_ports_and_ipv6() {
        let o = offer("::1".parse().unwrap(), 40002, 9);
        assert!(o.contains("c=IN IP6 ::1"), "{o}");
        let back = parse(&o).unwrap();
        assert_eq!(back.port, 40002);
        assert_eq!(back.payloads, vec![0, 8, 101]);
        assert_eq!(back.codec(), Some(Codec::Pcmu));
        assert_eq!(back.addr(), Some("[::1]:40002".parse().unwrap()));
    }

    #[test]
    fn media_level_connection_and_dynamic_event_type() {
        let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 7000 RTP/AVP 18 0 96\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:96 telephone-event/8000\r\n";
        let o = parse(body).unwrap();
        assert_eq!(o.ip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(o.telephone_event, Some(96));
        assert_eq!(o.codec(), Some(Codec::Pcmu));
        let (a, _) = answer(&o, "127.0.0.1".parse().unwrap(), 1, 1).unwrap();
        assert!(a.contains("RTP/AVP 0 96"), "{a}");
    }

    #[test]
    fn no_common_codec_or_no_audio_is_none() {
        let o = parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5 RTP/AVP 18\r\n").unwrap();
        assert!(answer(&o, "127.0.0.1".parse().unwrap(), 1, 1).is_none());
        assert!(parse("v=0\r\n").is_none());
        assert!(parse("not sdp at all").is_none());
        let held = parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\n").unwrap();
        assert_eq!(held.addr(), None);
    }
}
