//! Personal data wrappers (D18).
//!
//! A caller's phone number is personal data: we keep it where the work needs
//! it (call records, callbacks) but it must never reach a log in full. The
//! wrapper's `Debug` and `Display` print a masked form (`+99890*****67`);
//! the full value is only available through [`PhoneNumber::expose`], whose
//! name makes every use easy to find in review.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A phone number (or any caller identity taken from SIP `From`).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Wraps a raw caller identity.
    pub fn new(raw: impl Into<String>) -> PhoneNumber {
        PhoneNumber(raw.into())
    }

    /// The full number, for storage and dialling only; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked form: keeps a leading `+`, the first five and the last two
    /// characters when the number is long enough to hide something, and
    /// replaces the rest with `*`. Short identities are fully masked.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

fn mask(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let n = chars.len();
    if n <= 4 {
        return "*".repeat(n);
    }
    let (head, tail) = if n >= 9 { (5, 2) } else { (2, 1) };
    let mut out = String::with_capacity(n);
    for (i, c) in chars.iter().enumerate() {
        if i < head || i >= n - tail {
            out.push(*c);
        } else {
            out.push('*');
        }
    }
    out
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Serialises masked: events and API views carry the masked form; the store
/// (a later issue) takes the full number through [`PhoneNumber::expose`].
impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

/// Reads back whatever was written: from an event journal that is the masked form (masking
/// it again changes nothing), so a number read this way is no more exposed than it was.
impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PhoneNumber, D::Error> {
        String::deserialize(d).map(PhoneNumber)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_numbers_keep_prefix_and_last_two() {
        let p = PhoneNumber::new("+998901234567");
        assert_eq!(p.to_string(), "+9989******67");
        assert_eq!(format!("{p:?}"), "PhoneNumber(+9989******67)");
        assert!(!format!("{p} {p:?}").contains("1234"));
        assert_eq!(p.expose(), "+998901234567");
    }

    #[test]
    fn short_identities_are_masked_entirely_or_mostly() {
        assert_eq!(PhoneNumber::new("1001").to_string(), "****");
        assert_eq!(PhoneNumber::new("712351").to_string(), "71***1");
    }

    #[test]
    fn serialises_masked() {
        let p = PhoneNumber::new("998901234567");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"99890*****67\"");
    }
}
