//! Customers' e-mail addresses as personal data (D18).

use serde::{Serialize, Serializer};
use std::fmt;

/// A customer's e-mail address. `Debug`, `Display` and `Serialize` print the masked form
/// (`i***@example.com`: the first character and the domain); the full address is only
/// available through [`EmailAddress::expose`], for storage and for sending.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Wraps an address as written (surrounding blanks removed).
    pub fn new(raw: impl Into<String>) -> EmailAddress {
        let raw: String = raw.into();
        EmailAddress(raw.trim().to_string())
    }

    /// The full address, for storage and sending only; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The part after the last `@`, if any (not personal: it names a mail provider).
    pub fn domain(&self) -> Option<&str> {
        self.0
            .rsplit_once('@')
            .map(|(_, d)| d)
            .filter(|d| !d.is_empty())
    }

    /// The masked form: first character, `***`, then `@domain` when there is one.
    pub fn masked(&self) -> String {
        mask_one(&self.0)
    }
}

fn mask_one(raw: &str) -> String {
    let Some(first) = raw.chars().next() else {
        return String::new();
    };
    match raw.rsplit_once('@') {
        Some((_, domain)) => format!("{first}***@{domain}"),
        None => format!("{first}***"),
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Serialises masked, like [`crate::privacy::PhoneNumber`]: views and events carry the
/// masked form; storage takes [`EmailAddress::expose`].
impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

/// Masks every address-like word (one holding `@`) in free text, such as an SMTP server's
/// reply `550 5.1.1 <ivan@example.com>: no such user`, before it goes into an error or a log.
pub fn mask_addresses(text: &str) -> String {
    let is_break = |c: char| c.is_whitespace() || "<>,;:()[]=\"'".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') {
            out.push_str(&mask_one(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_break(c) {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Whether `text` looks like an e-mail address a reply can go to (one `@`, a dot in the
/// domain, no spaces or angle brackets, at most 254 bytes).
pub fn plausible_email(text: &str) -> bool {
    let t = text.trim();
    if t.len() > 254 || t.chars().any(|c| c.is_whitespace() || "<>,;\"".contains(c)) {
        return false;
    }
    match t.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_first_character_and_domain() {
        let a = EmailAddress::new(" ivan.petrov@example.uz ");
        assert_eq!(a.expose(), "ivan.petrov@example.uz");
        assert_eq!(a.to_string(), "i***@example.uz");
        assert_eq!(format!("{a:?}"), "EmailAddress(i***@example.uz)");
        assert_eq!(a.domain(), Some("example.uz"));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            "\"i***@example.uz\"".to_string()
        );
    }

    #[test]
    fn odd_values_are_masked_too() {
        assert_eq!(EmailAddress::new("").masked(), "");
        assert_eq!(EmailAddress::new("nobody").masked(), "n***");
        assert_eq!(EmailAddress::new("ж@почта.рф").masked(), "ж***@почта.рф");
        assert_eq!(EmailAddress::new("a@b@c").domain(), Some("c"));
    }

    #[test]
    fn addresses_in_server_replies_are_masked() {
        let reply = "550 5.1.1 <ivan@example.com>: Recipient address rejected; to=olga@mail.uz";
        let masked = mask_addresses(reply);
        assert_eq!(
            masked,
            "550 5.1.1 <i***@example.com>: Recipient address rejected; to=o***@mail.uz"
        );
        assert!(!masked.contains("ivan"));
        assert_eq!(mask_addresses("no address here"), "no address here");
    }
}
