//! RTP (RFC 3550) as navbat needs it: the fixed header, receive statistics (loss and
//! interarrival jitter, RFC 3550 A.3 and A.8) and an outgoing stream whose sequence numbers
//! and timestamps stay continuous across prompts, silence and the switch to the bridge.
//! Pure: no sockets, no clock reads.

/// Length of the fixed RTP header (no CSRCs, no extension).
pub const HEADER_LEN: usize = 12;

/// The fields of an RTP header navbat reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit: first packet of a talk spurt (RFC 3551 4.1), or the start of a
    /// telephone event (RFC 4733 2.5.1.1).
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp in samples (8 kHz for G.711 and telephone-event).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than its headers say.
    #[error("RTP packet too short")]
    TooShort,
    /// Version field is not 2.
    #[error("RTP version is not 2")]
    BadVersion,
}

/// Splits a datagram into its header and payload (CSRCs, extension and padding skipped).
pub fn parse(packet: &[u8]) -> Result<(RtpHeader, &[u8]), RtpError> {
    if packet.len() < HEADER_LEN {
        return Err(RtpError::TooShort);
    }
    if packet[0] >> 6 != 2 {
        return Err(RtpError::BadVersion);
    }
    let padding = packet[0] & 0x20 != 0;
    let extension = packet[0] & 0x10 != 0;
    let csrc_count = usize::from(packet[0] & 0x0F);
    let mut start = HEADER_LEN + 4 * csrc_count;
    if extension {
        let ext = packet.get(start..start + 4).ok_or(RtpError::TooShort)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        start += 4 + 4 * words;
    }
    let mut end = packet.len();
    if padding {
        let pad = usize::from(*packet.last().ok_or(RtpError::TooShort)?);
        end = end.checked_sub(pad).ok_or(RtpError::TooShort)?;
    }
    if start > end {
        return Err(RtpError::TooShort);
    }
    let header = RtpHeader {
        marker: packet[1] & 0x80 != 0,
        payload_type: packet[1] & 0x7F,
        seq: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
    };
    Ok((header, &packet[start..end]))
}

/// Appends the 12-byte header to `out`.
pub fn write_header(h: &RtpHeader, out: &mut Vec<u8>) {
    out.push(0x80);
    out.push(if h.marker { 0x80 } else { 0 } | (h.payload_type & 0x7F));
    out.extend_from_slice(&h.seq.to_be_bytes());
    out.extend_from_slice(&h.timestamp.to_be_bytes());
    out.extend_from_slice(&h.ssrc.to_be_bytes());
}

/// Receive-side counters of one leg (RFC 3550 A.3 loss, A.8 jitter), per SSRC run.
#[derive(Debug, Clone, Default)]
pub struct RecvStats {
    /// Packets received (all payload types).
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Datagrams that were not usable RTP.
    pub malformed: u64,
    /// Packets expected but never seen, summed over every SSRC the leg used.
    lost_before: u64,
    ssrc: Option<u32>,
    base_seq: u32,
    /// Extended highest sequence number seen.
    max_seq: u32,
    received_run: u64,
    /// Jitter in timestamp units, scaled by 16 (RFC 3550 A.8).
    jitter_q4: u64,
    last_transit: Option<i64>,
}

impl RecvStats {
    /// Accounts one packet that arrived at `arrival` (in 8 kHz sample units of any epoch).
    pub fn on_packet(&mut self, h: &RtpHeader, payload_len: usize, arrival: u32) {
        self.packets += 1;
        self.bytes += payload_len as u64;
        if self.ssrc != Some(h.ssrc) {
            self.lost_before += self.lost_in_run();
            self.ssrc = Some(h.ssrc);
            self.base_seq = u32::from(h.seq);
            self.max_seq = u32::from(h.seq);
            self.received_run = 1;
            self.last_transit = None;
        } else {
            self.received_run += 1;
            let cycles = self.max_seq & 0xFFFF_0000;
            let low = self.max_seq as u16;
            let delta = h.seq.wrapping_sub(low);
            if delta != 0 && delta < 0x8000 {
                // In order (possibly after a gap); a wrap bumps the cycle count.
                let cycles = if h.seq < low {
                    cycles.wrapping_add(0x1_0000)
                } else {
                    cycles
                };
                self.max_seq = cycles | u32::from(h.seq);
            }
        }
        let transit = i64::from(arrival) - i64::from(h.timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// A datagram that did not parse.
    pub fn on_malformed(&mut self) {
        self.malformed += 1;
    }

    fn lost_in_run(&self) -> u64 {
        if self.ssrc.is_none() {
            return 0;
        }
        let expected = u64::from(self.max_seq.wrapping_sub(self.base_seq)) + 1;
        expected.saturating_sub(self.received_run)
    }

    /// Packets lost so far (never negative: duplicates do not hide losses of other runs).
    pub fn lost(&self) -> u64 {
        self.lost_before + self.lost_in_run()
    }

    /// Interarrival jitter in milliseconds (8 kHz clock).
    pub fn jitter_ms(&self) -> f64 {
        (self.jitter_q4 >> 4) as f64 / 8.0
    }

    /// Interarrival jitter in timestamp units (for RTCP report blocks).
    pub fn jitter_units(&self) -> u32 {
        (self.jitter_q4 >> 4).min(u64::from(u32::MAX)) as u32
    }

    /// The current source: its SSRC and the extended highest sequence number received.
    pub fn source(&self) -> Option<(u32, u32)> {
        self.ssrc.map(|s| (s, self.max_seq))
    }
}

/// Our outgoing stream to one leg: one SSRC, continuous sequence numbers, and a timestamp
/// that follows the wall clock at 8 kHz whether or not a packet is sent in a tick.
#[derive(Debug, Clone)]
pub struct OutStream {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    /// The previous tick sent nothing: the next packet starts a talk spurt.
    idle: bool,
    /// Packets sent.
    pub packets: u64,
}

impl OutStream {
    /// A stream with these random starting values (RFC 3550 5.1 asks for random ones).
    pub fn new(ssrc: u32, seq: u16, timestamp: u32) -> OutStream {
        OutStream {
            ssrc,
            seq,
            timestamp,
            idle: true,
            packets: 0,
        }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The timestamp the next packet will carry.
    pub fn timestamp(&self) -> u32 {
        self.timestamp
    }

    /// The header for a packet of `samples` samples sent in this tick, then advances.
    pub fn next(&mut self, payload_type: u8, samples: u32) -> RtpHeader {
        let h = RtpHeader {
            marker: self.idle,
            payload_type,
            seq: self.seq,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
        };
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.idle = false;
        self.packets += 1;
        h
    }

    /// A tick of `samples` passed without a packet: time moves on, the sequence does not.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.idle = true;
    }

    /// Starts a new talk spurt with the next packet (a source change, e.g. prompt to bridge).
    pub fn mark(&mut self) {
        self.idle = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut v = Vec::new();
        write_header(
            &RtpHeader {
                marker: false,
                payload_type: 8,
                seq,
                timestamp: ts,
                ssrc,
            },
            &mut v,
        );
        v.extend_from_slice(&[0xD5; 160]);
        v
    }

    #[test]
    fn header_round_trip_and_bad_input() {
        let p = pkt(7, 1600, 42);
        let (h, payload) = parse(&p).unwrap();
        assert_eq!(
            (h.seq, h.timestamp, h.ssrc, h.payload_type),
            (7, 1600, 42, 8)
        );
        assert_eq!(payload.len(), 160);
        assert_eq!(parse(&p[..5]), Err(RtpError::TooShort));
        let mut bad = p.clone();
        bad[0] = 0x40;
        assert_eq!(parse(&bad), Err(RtpError::BadVersion));
        // Padding longer than the packet.
        let mut pad = p;
        pad[0] |= 0x20;
        *pad.last_mut().unwrap() = 255;
        assert_eq!(parse(&pad), Err(RtpError::TooShort));
        // CSRC count pointing past the end.
        let mut csrc = pkt(1, 1, 1)[..12].to_vec();
        csrc[0] |= 0x0F;
        assert_eq!(parse(&csrc), Err(RtpError::TooShort));
    }

    #[test]
    fn loss_counts_gaps_across_wrap_and_ssrc_change() {
        let mut s = RecvStats::default();
        for seq in [65533u16, 65534, 65535, 1, 2] {
            let buf = pkt(seq, u32::from(seq) * 160, 9);
            let (h, p) = parse(&buf).unwrap();
            s.on_packet(&h, p.len(), u32::from(seq) * 160);
        }
        assert_eq!(s.lost(), 1); // seq 0
        let buf = pkt(100, 0, 10);
        let (h, p) = parse(&buf).unwrap();
        s.on_packet(&h, p.len(), 0);
        assert_eq!(s.lost(), 1);
        assert_eq!(s.packets, 6);
        assert_eq!(s.jitter_ms(), 0.0);
    }

    #[test]
    fn jitter_grows_with_irregular_arrival() {
        let mut s = RecvStats::default();
        for i in 0..50u32 {
            let buf = pkt(i as u16, i * 160, 1);
            let (h, p) = parse(&buf).unwrap();
            let arrival = i * 160 + if i % 2 == 0 { 0 } else { 80 };
            s.on_packet(&h, p.len(), arrival);
        }
        assert!(s.jitter_ms() > 5.0, "{}", s.jitter_ms());
    }

    #[test]
    fn out_stream_is_continuous_and_marks_talk_spurts() {
        let mut o = OutStream::new(5, 65535, u32::MAX - 100);
        let a = o.next(0, 160);
        assert!(a.marker);
        let b = o.next(0, 160);
        assert!(!b.marker);
        assert_eq!(b.seq, 0);
        assert_eq!(b.timestamp, a.timestamp.wrapping_add(160));
        o.skip(160);
        let c = o.next(8, 160);
        assert!(c.marker);
        assert_eq!(c.seq, 1);
        assert_eq!(c.timestamp, b.timestamp.wrapping_add(320));
    }
}
