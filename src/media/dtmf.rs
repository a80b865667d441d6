//! RFC 4733 telephone-events (DTMF digits carried in RTP). Pure.
//!
//! An event is sent as a series of packets with the same RTP timestamp (the event's start)
//! and a growing duration; the last one has the E bit and is usually sent three times
//! (RFC 4733 2.5.1.4). The detector reports each event once, when its first packet arrives
//! (so the IVR reacts without waiting for the key to be released), and recognises
//! the later packets and the redundant end packets by their timestamp.

/// The fields of one telephone-event payload (RFC 4733 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code: 0-9 digits, 10 `*`, 11 `#`, 12-15 A-D.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

/// Reads a telephone-event payload (at least four bytes; only the first event is used).
pub fn parse_event(payload: &[u8]) -> Option<TelephoneEvent> {
    let b = payload.get(..4)?;
    Some(TelephoneEvent {
        event: b[0],
        end: b[1] & 0x80 != 0,
        volume: b[1] & 0x3F,
        duration: u16::from_be_bytes([b[2], b[3]]),
    })
}

/// Writes a telephone-event payload.
pub fn write_event(e: &TelephoneEvent, out: &mut Vec<u8>) {
    out.push(e.event);
    out.push(if e.end { 0x80 } else { 0 } | (e.volume & 0x3F));
    out.extend_from_slice(&e.duration.to_be_bytes());
}

/// The key of a DTMF event code, if it is one (codes 16 and up are other tones).
pub fn digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Turns a leg's telephone-event packets into key presses, each reported once.
#[derive(Debug, Default, Clone)]
pub struct DtmfDetector {
    /// The (SSRC, timestamp) of the newest event seen.
    last: Option<(u32, u32)>,
    /// Packets that repeated an event already reported.
    pub duplicates: u64,
}

impl DtmfDetector {
    /// One telephone-event packet; returns the key when it starts a new event.
    pub fn on_packet(&mut self, ssrc: u32, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = parse_event(payload)?;
        if self.last == Some((ssrc, timestamp)) {
            self.duplicates += 1;
            return None;
        }
        // An older event arriving late (reordered) must not replay a key.
        if let Some((last_ssrc, last_ts)) = self.last {
            if last_ssrc == ssrc && timestamp.wrapping_sub(last_ts) > 0x8000_0000 {
                self.duplicates += 1;
                return None;
            }
        }
        self.last = Some((ssrc, timestamp));
        digit(event.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> Vec<u8> {
        let mut v = Vec::new();
        write_event(
            &TelephoneEvent {
                event,
                end,
                volume: 10,
                duration,
            },
            &mut v,
        );
        v
    }

    #[test]
    fn one_key_per_event_despite_redundant_end_packets() {
        let mut d = DtmfDetector::default();
        let mut keys = Vec::new();
        for (ts, code) in [(1000u32, 1u8), (5000, 11)] {
            for dur in [160u16, 320, 480] {
                keys.extend(d.on_packet(7, ts, &ev(code, false, dur)));
            }
            for _ in 0..3 {
                keys.extend(d.on_packet(7, ts, &ev(code, true, 640)));
            }
        }
        assert_eq!(keys, vec!['1', '#']);
        assert_eq!(d.duplicates, 10);
    }

    #[test]
    fn same_key_twice_is_two_events_and_late_packets_are_ignored() {
        let mut d = DtmfDetector::default();
        assert_eq!(d.on_packet(1, 100, &ev(5, true, 800)), Some('5'));
        assert_eq!(d.on_packet(1, 2000, &ev(5, false, 160)), Some('5'));
        assert_eq!(d.on_packet(1, 100, &ev(5, true, 800)), None);
        assert_eq!(d.on_packet(1, 3000, &ev(10, false, 160)), Some('*'));
        assert_eq!(d.on_packet(1, 4000, &ev(15, false, 160)), Some('D'));
        assert_eq!(d.on_packet(1, 5000, &ev(40, false, 160)), None);
        assert_eq!(d.on_packet(1, 6000, &[1, 2]), None);
    }
}
