//! HTTP byte ranges (RFC 9110 section 14) over a recording of known length, and the WAV
//! header the served recording starts with. Pure: no I/O.

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The whole of it (no header, or one we do not serve by range: 200).
    Whole,
    /// Bytes `start..=end` (206 with `Content-Range`).
    Part {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// Nothing of it can be served (416 with `Content-Range: bytes */len`).
    Unsatisfiable,
}

/// Reads a `Range` header value for a representation of `len` bytes. One range is served;
/// a list of several (rare for audio players) is answered whole, which RFC 9110 allows.
pub fn wanted(header: Option<&str>, len: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (first.is_empty(), last.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parsed(last) {
            Some(0) => return Wanted::Unsatisfiable,
            Some(n) => (len.saturating_sub(n), len.saturating_sub(1)),
            None => return Wanted::Whole,
        },
        (false, true) => match parsed(first) {
            Some(s) => (s, len.saturating_sub(1)),
            None => return Wanted::Whole,
        },
        (false, false) => match (parsed(first), parsed(last)) {
            (Some(s), Some(e)) if s <= e => (s, e.min(len.saturating_sub(1))),
            _ => return Wanted::Whole,
        },
        (true, true) => return Wanted::Whole,
    };
    if len == 0 || start >= len {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part { start, end }
}

/// Bytes of the canonical WAV header [`wav_header`] writes.
pub const WAV_HEADER_BYTES: u64 = 44;

/// The 44-byte header of a PCM WAV file holding `data_len` bytes of 16-bit samples in
/// `channels` channels at `rate` Hz. A recording is served with a header made for the audio
/// there is now, whatever its file holds (a growing file's header lags its data).
pub fn wav_header(data_len: u32, channels: u16, rate: u32) -> [u8; 44] {
    let block_align = channels * 2;
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36u32.saturating_add(data_len)).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use Wanted::*;
        let cases = [
            (None, 100, Whole),
            (Some("bytes=0-"), 100, Part { start: 0, end: 99 }),
            (Some("bytes=10-19"), 100, Part { start: 10, end: 19 }),
            (Some("bytes=90-500"), 100, Part { start: 90, end: 99 }),
            (Some("bytes=-10"), 100, Part { start: 90, end: 99 }),
            (Some("bytes=-500"), 100, Part { start: 0, end: 99 }),
            (Some("bytes=100-"), 100, Unsatisfiable),
            (Some("bytes=-0"), 100, Unsatisfiable),
            (Some("bytes=0-"), 0, Unsatisfiable),
            (Some("bytes=5-2"), 100, Whole),
            (Some("bytes=0-1,5-6"), 100, Whole),
            (Some("items=0-1"), 100, Whole),
            (Some("bytes=x-"), 100, Whole),
        ];
        for (header, len, expected) in cases {
            assert_eq!(wanted(header, len), expected, "{header:?} of {len}");
        }
    }

    #[test]
    fn header_reads_back_with_hound() {
        let mut bytes = wav_header(8, 2, 8000).to_vec();
        bytes.extend_from_slice(&[1, 0, 2, 0, 3, 0, 4, 0]);
        let reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(
            reader.spec(),
            hound::WavSpec {
                channels: 2,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int
            }
        );
        let samples: Vec<i16> = reader.into_samples().map(|s| s.unwrap()).collect();
        assert_eq!(samples, [1, 2, 3, 4]);
    }
}
