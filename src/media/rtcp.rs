//! Minimal RTCP (RFC 3550 §6): each leg's RTCP socket (RTP port + 1) is read, so a peer's
//! reports are absorbed and counted rather than left to fill the socket buffer or answered
//! with ICMP port unreachable, and every leg sends a compound report about every 5 s: a
//! sender report (SR) once we have sent RTP, else a receiver report (RR), with one report
//! block about the peer's RTP stream when it has sent any, then SDES with our CNAME.
//!
//! Reports go where the peer's RTCP comes from (symmetric, like RTP), else to its RTP
//! address with port + 1 (RFC 3550 §11). The codec parts ([`parse`], [`write_report`]) are
//! pure; [`RtcpLeg`] is the per-leg part the media driver reads and ticks at its clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Sender report.
pub const PT_SR: u8 = 200;
/// Receiver report.
pub const PT_RR: u8 = 201;
/// Source description.
pub const PT_SDES: u8 = 202;
/// Goodbye.
pub const PT_BYE: u8 = 203;
/// Application-defined.
pub const PT_APP: u8 = 204;

/// The nominal report interval (RFC 3550 §6.2 asks for at least 5 s at low bandwidth).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Why a datagram is not a valid RTCP compound packet (RFC 3550 A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Shorter than a header, or a length field past the end.
    #[error("truncated RTCP packet")]
    Truncated,
    /// Version is not 2.
    #[error("RTCP version is not 2")]
    Version,
    /// The first packet is not SR or RR, or a payload type is not RTCP's.
    #[error("not an RTCP compound packet")]
    NotRtcp,
}

/// What a valid compound packet said that we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// The sender's SSRC (first packet).
    pub ssrc: u32,
    /// For an SR: the middle 32 bits of its NTP timestamp (our next LSR, §6.4.1).
    pub sr_ntp_middle: Option<u32>,
    /// Packets (SR, RR, SDES, ...) in the compound.
    pub packets: usize,
}

/// Parses and validates a compound RTCP packet.
pub fn parse(data: &[u8]) -> Result<Received, RtcpError> {
    let mut rest = data;
    let mut out = Received::default();
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RtcpError::Truncated);
        }
        if rest[0] >> 6 != 2 {
            return Err(RtcpError::Version);
        }
        let pt = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            return Err(RtcpError::Truncated);
        }
        if !(PT_SR..=PT_APP).contains(&pt) && !(205..=207).contains(&pt) {
            return Err(RtcpError::NotRtcp);
        }
        if out.packets == 0 {
            if pt != PT_SR && pt != PT_RR {
                return Err(RtcpError::NotRtcp);
            }
            if len < 8 {
                return Err(RtcpError::Truncated);
            }
            out.ssrc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
            if pt == PT_SR {
                if len < 28 {
                    return Err(RtcpError::Truncated);
                }
                out.sr_ntp_middle =
                    Some(u32::from_be_bytes([rest[10], rest[11], rest[12], rest[13]]));
            }
        }
        out.packets += 1;
        rest = &rest[len..];
    }
    if out.packets == 0 {
        return Err(RtcpError::Truncated);
    }
    Ok(out)
}

/// Sender information of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP timestamp (seconds since 1900 in the high word, fraction in the low one).
    pub ntp: u64,
    /// The RTP timestamp matching `ntp`.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

/// One report block about a source we receive (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Lost since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Lost since the start (24 bits, clamped).
    pub cumulative_lost: u32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp from that source (0: none).
    pub lsr: u32,
    /// Delay since that SR, 1/65536 s (0: none).
    pub dlsr: u32,
}

/// Appends a compound report: SR (with `sender`) or RR, with `block` if any, then SDES CNAME.
pub fn write_report(
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &str,
    out: &mut Vec<u8>,
) {
    let rc = u8::from(block.is_some());
    let words = 1 + if sender.is_some() { 5 } else { 0 } + 6 * usize::from(rc);
    out.push(0x80 | rc);
    out.push(if sender.is_some() { PT_SR } else { PT_RR });
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = b.cumulative_lost.min(0x7F_FFFF);
        out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.lsr.to_be_bytes());
        out.extend_from_slice(&b.dlsr.to_be_bytes());
    }
    // SDES: one chunk (our SSRC, CNAME, END), padded to a 32-bit boundary.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + name.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    out.push(0x81);
    out.push(PT_SDES);
    out.extend_from_slice(&((padded / 4) as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.resize(out.len() + (padded - chunk) + 1, 0);
}

/// Appends a BYE for `ssrc` (RFC 3550 §6.6; no reason text), to end a compound packet.
pub fn write_bye(ssrc: u32, out: &mut Vec<u8>) {
    out.push(0x81); // V=2, P=0, SC=1
    out.push(PT_BYE);
    out.extend_from_slice(&1u16.to_be_bytes()); // two 32-bit words, minus one
    out.extend_from_slice(&ssrc.to_be_bytes());
}

/// The NTP timestamp of a wall-clock time (RFC 3550 §4).
pub fn ntp(wall: SystemTime) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let d = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    ((d.as_secs() + UNIX_TO_NTP) << 32) | frac
}

/// What the session knows about one leg when a report is due.
#[derive(Debug, Clone, Copy)]
pub struct LegView {
    /// Our SSRC on this leg.
    pub ssrc: u32,
    /// RTP packets we sent.
    pub sent_packets: u64,
    /// Payload octets we sent.
    pub sent_octets: u64,
    /// The RTP timestamp of our next packet.
    pub rtp_timestamp: u32,
    /// The peer's RTP source: (SSRC, extended highest sequence number), once it sent any.
    pub source: Option<(u32, u32)>,
    /// RTP packets received.
    pub received: u64,
    /// RTP packets lost.
    pub lost: u64,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
    /// Where the peer's RTP comes from (or its SDP says).
    pub rtp_remote: Option<SocketAddr>,
}

/// One leg's RTCP: its socket, where reports go, and what was received.
///
/// The socket is a plain non-blocking one, not registered with the reactor: the media
/// driver reads it at its tick ([`RtcpLeg::drain`]) when its poller says it is readable.
#[derive(Debug)]
pub struct RtcpLeg {
    sock: std::net::UdpSocket,
    peer: Option<SocketAddr>,
    /// Valid compound packets received.
    pub received: u64,
    /// Reports sent.
    pub sent: u64,
    last_sr: Option<(u32, Instant)>,
    next_report: Instant,
    prev_received: u64,
    prev_lost: u64,
    cname: String,
    buf: Vec<u8>,
}

/// What one [`RtcpLeg::drain`] read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drained {
    /// Valid compound packets.
    pub valid: u64,
    /// Datagrams that were not valid RTCP.
    pub malformed: u64,
}

/// What one [`RtcpLeg::tick`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// No report due, or nowhere to send it yet.
    Nothing,
    /// A report went out.
    Report,
    /// A report was due but the send failed (full buffer, ICMP error): not retried.
    Failed,
}

/// Datagrams one [`RtcpLeg::drain`] reads at most (a peer flooding the port cannot hold
/// the driver; the rest waits for the next tick).
const MAX_DRAIN: usize = 32;

impl RtcpLeg {
    /// Takes over a leg's bound RTCP socket; the first report is due in about a second.
    pub fn new(sock: std::net::UdpSocket, now: Instant) -> std::io::Result<RtcpLeg> {
        sock.set_nonblocking(true)?;
        let cname = format!("navbat@{}", sock.local_addr()?.ip());
        Ok(RtcpLeg {
            sock,
            peer: None,
            received: 0,
            sent: 0,
            last_sr: None,
            next_report: now + Duration::from_millis(500 + u64::from(rand::random::<u16>() % 1000)),
            prev_received: 0,
            prev_lost: 0,
            cname,
            buf: Vec::with_capacity(128),
        })
    }

    /// The socket (for the driver's readiness poller).
    pub fn socket(&self) -> &std::net::UdpSocket {
        &self.sock
    }

    /// The socket back, when the leg ends (to be handed to another call).
    pub fn into_socket(self) -> std::net::UdpSocket {
        self.sock
    }

    /// Reads what waits on the socket without blocking (up to a bound), validating each
    /// datagram; malformed ones are counted and dropped, never a panic.
    pub fn drain(&mut self, buf: &mut [u8], now: Instant) -> Drained {
        let mut d = Drained::default();
        for _ in 0..MAX_DRAIN {
            match self.sock.recv_from(buf) {
                Ok((n, from)) => {
                    if self.on_datagram(&buf[..n], from, now) {
                        d.valid += 1;
                    } else {
                        d.malformed += 1;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // WouldBlock: drained. Anything else (an ICMP error queued on the socket)
                // is not fatal; the next readiness reads again.
                Err(_) => break,
            }
        }
        d
    }

    /// Takes one datagram from the RTCP socket; `false` when it is not valid RTCP.
    pub fn on_datagram(&mut self, data: &[u8], from: SocketAddr, now: Instant) -> bool {
        match parse(data) {
            Ok(r) => {
                self.received += 1;
                self.peer = Some(from);
                if let Some(middle) = r.sr_ntp_middle {
                    self.last_sr = Some((middle, now));
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Sends a report when one is due (every [`REPORT_INTERVAL`], randomised by ±50% as
    /// RFC 3550 §6.3.1 asks, so legs do not report in step).
    pub fn tick(&mut self, now: Instant, wall: SystemTime, leg: &LegView) -> Sent {
        if now < self.next_report {
            return Sent::Nothing;
        }
        let jitter_ms = rand::random::<u16>() % 5000;
        self.next_report = now + REPORT_INTERVAL / 2 + Duration::from_millis(u64::from(jitter_ms));
        self.send_report(now, wall, leg, false)
    }

    /// The leg is ending: sends a last report with a BYE (RFC 3550 §6.6), so the peer
    /// learns at once that this source has left instead of timing it out. Nothing is sent
    /// for a leg that never sent RTP or RTCP (§6.3.7), or that has nowhere to send it.
    pub fn bye(&mut self, now: Instant, wall: SystemTime, leg: &LegView) -> Sent {
        if leg.sent_packets == 0 && self.sent == 0 {
            return Sent::Nothing;
        }
        self.send_report(now, wall, leg, true)
    }

    fn send_report(&mut self, now: Instant, wall: SystemTime, leg: &LegView, bye: bool) -> Sent {
        let Some(to) = self.peer.or_else(|| {
            leg.rtp_remote.map(|mut a| {
                a.set_port(a.port().wrapping_add(1));
                a
            })
        }) else {
            return Sent::Nothing;
        };
        let sender = (leg.sent_packets > 0).then(|| SenderInfo {
            ntp: ntp(wall),
            rtp_timestamp: leg.rtp_timestamp,
            packets: leg.sent_packets as u32,
            octets: leg.sent_octets as u32,
        });
        let block = leg.source.map(|(ssrc, highest_seq)| {
            let got = leg.received.saturating_sub(self.prev_received);
            let lost = leg.lost.saturating_sub(self.prev_lost);
            let expected = got + lost;
            let fraction_lost = (lost * 256)
                .checked_div(expected)
                .map_or(0, |f| f.min(255) as u8);
            let (lsr, dlsr) = match self.last_sr {
                Some((middle, at)) => {
                    let d = now.saturating_duration_since(at);
                    (middle, (d.as_secs_f64() * 65536.0) as u32)
                }
                None => (0, 0),
            };
            ReportBlock {
                ssrc,
                fraction_lost,
                cumulative_lost: leg.lost.min(u64::from(u32::MAX)) as u32,
                highest_seq,
                jitter: leg.jitter,
                lsr,
                dlsr,
            }
        });
        self.prev_received = leg.received;
        self.prev_lost = leg.lost;
        self.buf.clear();
        write_report(leg.ssrc, sender, block, &self.cname, &mut self.buf);
        if bye {
            write_bye(leg.ssrc, &mut self.buf);
        }
        match self.sock.send_to(&self.buf, to) {
            Ok(_) => {
                self.sent += 1;
                Sent::Report
            }
            Err(_) => Sent::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sr_with_block_and_sdes_round_trips() {
        let mut out = Vec::new();
        let sender = SenderInfo {
            ntp: 0x0102_0304_0506_0708,
            rtp_timestamp: 160,
            packets: 10,
            octets: 1600,
        };
        let block = ReportBlock {
            ssrc: 0x5eed,
            fraction_lost: 3,
            cumulative_lost: 7,
            highest_seq: 70_000,
            jitter: 12,
            lsr: 0xaabb_ccdd,
            dlsr: 65536,
        };
        write_report(
            0xdead_beef,
            Some(sender),
            Some(block),
            "navbat@127.0.0.1",
            &mut out,
        );
        assert_eq!(out.len() % 4, 0);
        let r = parse(&out).unwrap();
        assert_eq!(r.ssrc, 0xdead_beef);
        assert_eq!(r.sr_ntp_middle, Some(0x0304_0506));
        assert_eq!(r.packets, 2);
        // SR: 7 words + 6 for the block; length field is words - 1.
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 12);
        assert_eq!(out[0], 0x81);
        assert_eq!(&out[28..32], &0x5eed_u32.to_be_bytes());
        assert_eq!(&out[32..36], &((3u32 << 24) | 7).to_be_bytes());
    }

    #[test]
    fn a_report_ending_in_bye_is_a_valid_compound() {
        let mut out = Vec::new();
        write_report(0x1234_5678, None, None, "navbat@127.0.0.1", &mut out);
        let report_len = out.len();
        write_bye(0x1234_5678, &mut out);
        assert_eq!(out.len(), report_len + 8);
        assert_eq!(&out[report_len..report_len + 4], &[0x81, PT_BYE, 0, 1]);
        let got = parse(&out).expect("valid compound");
        assert_eq!(got.ssrc, 0x1234_5678);
        assert_eq!(got.packets, 3, "RR, SDES, BYE");
    }

    #[test]
    fn bye_goes_to_the_peer_only_from_a_leg_that_sent_something() {
        let now = Instant::now();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut leg = RtcpLeg::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap(), now).unwrap();
        let mut rtp_remote = peer.local_addr().unwrap();
        rtp_remote.set_port(rtp_remote.port() - 1); // reports go to RTP port + 1
        let mut view = LegView {
            ssrc: 7,
            sent_packets: 0,
            sent_octets: 0,
            rtp_timestamp: 0,
            source: None,
            received: 0,
            lost: 0,
            jitter: 0,
            rtp_remote: Some(rtp_remote),
        };
        assert_eq!(leg.bye(now, SystemTime::now(), &view), Sent::Nothing);
        view.sent_packets = 50;
        view.sent_octets = 8000;
        assert_eq!(leg.bye(now, SystemTime::now(), &view), Sent::Report);
        let mut buf = [0u8; 256];
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(buf[1], PT_SR, "a leg that sent RTP reports as a sender");
        assert_eq!(parse(&buf[..n]).unwrap().packets, 3, "SR, SDES, BYE");
        assert_eq!(&buf[n - 8..n - 4], &[0x81, PT_BYE, 0, 1]);
    }

    #[test]
    fn rr_without_blocks() {
        let mut out = Vec::new();
        write_report(1, None, None, "x", &mut out);
        assert_eq!(&out[..2], &[0x80, PT_RR]);
        let r = parse(&out).unwrap();
        assert_eq!((r.ssrc, r.sr_ntp_middle, r.packets), (1, None, 2));
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let mut good = Vec::new();
        write_report(1, None, None, "x", &mut good);
        assert_eq!(parse(&[]), Err(RtcpError::Truncated));
        assert_eq!(parse(&good[..3]), Err(RtcpError::Truncated));
        let mut v1 = good.clone();
        v1[0] = 0x40;
        assert_eq!(parse(&v1), Err(RtcpError::Version));
        let mut rtp_like = good.clone();
        rtp_like[1] = 0;
        assert_eq!(parse(&rtp_like), Err(RtcpError::NotRtcp));
        let mut long = good.clone();
        long[3] = 200;
        assert_eq!(parse(&long), Err(RtcpError::Truncated));
        let sdes_first = &good[8..];
        assert_eq!(parse(sdes_first), Err(RtcpError::NotRtcp));
        // Every prefix and every single-byte corruption is handled.
        for n in 0..good.len() {
            let _ = parse(&good[..n]);
            for b in [0u8, 0xff, 0x80] {
                let mut bad = good.clone();
                bad[n] = b;
                let _ = parse(&bad);
            }
        }
    }

    #[test]
    fn ntp_of_the_unix_epoch() {
        assert_eq!(ntp(UNIX_EPOCH) >> 32, 2_208_988_800);
        let half = UNIX_EPOCH + Duration::from_millis(500);
        assert_eq!(ntp(half) & 0xffff_ffff, 1 << 31);
    }
}
