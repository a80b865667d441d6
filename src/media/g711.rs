//! G.711 (ITU-T G.711, 1988): µ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload
//! type 8) at 8 kHz, one byte per sample. Written from the recommendation's segment tables;
//! decoding uses 256-entry tables built at compile time, encoding is a few shifts.
//!
//! A decode followed by an encode in the same law gives back the original byte (every code
//! word maps to a level that encodes to itself, except µ-law's negative zero 0x7F, which
//! becomes positive zero 0xFF), so the bridge can always decode and re-encode without
//! degrading a same-codec call.

/// Bias added before µ-law segment search (G.711 clause 3.2: 0x84 = 132).
const ULAW_BIAS: i32 = 0x84;
/// Largest magnitude µ-law can represent after biasing.
const ULAW_CLIP: i32 = 32635;

/// Encodes one 16-bit linear sample to µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    if pcm > ULAW_CLIP {
        pcm = ULAW_CLIP;
    }
    pcm += ULAW_BIAS;
    // Segment: position of the highest set bit above bit 7.
    let exponent = (31 - (pcm as u32).leading_zeros()).saturating_sub(7).min(7) as i32;
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one µ-law byte to 16-bit linear.
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

const fn ulaw_decode(code: u8) -> i16 {
    let u = !code;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one 16-bit linear sample to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    // A-law works on 13-bit magnitudes.
    let mut pcm = i32::from(sample) >> 3;
    let sign = if pcm >= 0 {
        0x80
    } else {
        pcm = -pcm - 1;
        0x00
    };
    if pcm > 0x0FFF {
        pcm = 0x0FFF;
    }
    let code = if pcm < 32 {
        (pcm >> 1) as u8
    } else {
        // Segment 1..7: highest set bit of the magnitude, from bit 5 up.
        let segment = (31 - (pcm as u32).leading_zeros()) as i32 - 4;
        ((segment << 4) | ((pcm >> segment) & 0x0F)) as u8
    };
    // Even bits are inverted on the line (G.711 table 1a: XOR 0x55).
    (sign | code) ^ 0x55
}

/// Decodes one A-law byte to 16-bit linear.
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

const fn alaw_decode(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

/// The code word of every 16-bit sample (indexed by the sample's bits), built once.
fn encode_table(encode: fn(i16) -> u8) -> Box<[u8; 65536]> {
    let all: Vec<u8> = (0..=u16::MAX).map(|bits| encode(bits as i16)).collect();
    all.into_boxed_slice()
        .try_into()
        .expect("one code word per 16-bit value")
}

static ULAW_ENCODE: std::sync::LazyLock<Box<[u8; 65536]>> =
    std::sync::LazyLock::new(|| encode_table(linear_to_ulaw));
static ALAW_ENCODE: std::sync::LazyLock<Box<[u8; 65536]>> =
    std::sync::LazyLock::new(|| encode_table(linear_to_alaw));

/// A G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU).
    Ulaw,
    /// A-law (PCMA).
    Alaw,
}

impl Law {
    /// Decodes `payload` and appends the linear samples to `out`.
    pub fn decode_into(self, payload: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            Law::Ulaw => &ULAW_TABLE,
            Law::Alaw => &ALAW_TABLE,
        };
        out.extend(payload.iter().map(|b| table[*b as usize]));
    }

    /// Decodes `payload` into `out` (as many samples as fit); returns how many.
    pub fn decode_to(self, payload: &[u8], out: &mut [i16]) -> usize {
        let table = match self {
            Law::Ulaw => &ULAW_TABLE,
            Law::Alaw => &ALAW_TABLE,
        };
        let n = payload.len().min(out.len());
        for (o, b) in out[..n].iter_mut().zip(payload) {
            *o = table[*b as usize];
        }
        n
    }

    /// Encodes `samples` and appends the code words to `out` (one table lookup a sample:
    /// the bridge encodes 8,000 samples a second per leg).
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        let table: &[u8; 65536] = match self {
            Law::Ulaw => &ULAW_ENCODE,
            Law::Alaw => &ALAW_ENCODE,
        };
        out.extend(samples.iter().map(|s| table[*s as u16 as usize]));
    }

    /// The code word of silence (linear 0).
    pub fn silence(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }
}

/// Root mean square of linear samples (0 for none): the tests' "not silence" check.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|s| f64::from(*s).powi(2)).sum();
    (sum / samples.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_encoding_and_decoding_match_the_formulas_for_every_value() {
        let all: Vec<i16> = (0..=u16::MAX).map(|b| b as i16).collect();
        let mut u = Vec::new();
        let mut a = Vec::new();
        Law::Ulaw.encode_into(&all, &mut u);
        Law::Alaw.encode_into(&all, &mut a);
        for (i, s) in all.iter().enumerate() {
            assert_eq!(u[i], linear_to_ulaw(*s), "ulaw {s}");
            assert_eq!(a[i], linear_to_alaw(*s), "alaw {s}");
        }
        let codes: Vec<u8> = (0..=255).collect();
        let mut out = [0i16; 300];
        assert_eq!(Law::Alaw.decode_to(&codes, &mut out), 256);
        assert!(codes.iter().all(|c| out[*c as usize] == alaw_to_linear(*c)));
        assert_eq!(
            Law::Ulaw.decode_to(&codes, &mut out[..100]),
            100,
            "bounded by out"
        );
        assert!(codes[..100]
            .iter()
            .all(|c| out[*c as usize] == ulaw_to_linear(*c)));
    }

    #[test]
    fn known_code_words() {
        // Silence and full scale, from the G.711 tables.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    #[test]
    fn every_code_word_survives_decode_then_encode() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "A-law {code:#x}"
            );
            let back = linear_to_ulaw(ulaw_to_linear(code));
            if code == 0x7F {
                assert_eq!(back, 0xFF); // negative zero
            } else {
                assert_eq!(back, code, "µ-law {code:#x}");
            }
        }
    }

    #[test]
    fn quantisation_error_is_small_across_the_range() {
        for s in (-32000i32..32000).step_by(97) {
            let s = s as i16;
            for (enc, dec) in [
                (
                    linear_to_ulaw as fn(i16) -> u8,
                    ulaw_to_linear as fn(u8) -> i16,
                ),
                (linear_to_alaw, alaw_to_linear),
            ] {
                let back = dec(enc(s));
                let err = (i32::from(back) - i32::from(s)).abs();
                // Half a step of the coarsest segment is 512 (µ-law: 1024 at the top).
                assert!(err <= 1024, "{s} -> {back}");
                assert!(
                    err as f64 <= 8.0 + f64::from(s).abs() / 16.0,
                    "{s} -> {back}"
                );
            }
        }
    }

    #[test]
    fn transcoding_keeps_the_signal() {
        let tone: Vec<i16> = (0..160)
            .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
            .collect();
        let mut u = Vec::new();
        Law::Ulaw.encode_into(&tone, &mut u);
        let mut lin = Vec::new();
        Law::Ulaw.decode_into(&u, &mut lin);
        let mut a = Vec::new();
        Law::Alaw.encode_into(&lin, &mut a);
        let mut back = Vec::new();
        Law::Alaw.decode_into(&a, &mut back);
        assert!((rms(&back) - rms(&tone)).abs() < rms(&tone) * 0.05);
    }
}
