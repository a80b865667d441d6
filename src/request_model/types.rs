//! The words of a request: channel, priority, kind, status, and who asked.

use serde::{Deserialize, Serialize};

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lower-case name used in config, URLs, the database and metrics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value named `text` (as [`Self::as_str`] writes it).
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// Channel, priority and kind are the SLA clocks' words too: one definition, in `sla`.
pub use crate::sla::{Channel, Priority, RequestKind as Kind};

named_enum! {
    /// Where a request is in its life. Every change is kept (`request_steps`).
    Status {
        /// Registered, nobody has answered yet.
        New => "new",
        /// The customer has had a first answer.
        Answered => "answered",
        /// Someone is working on it.
        InProgress => "in_progress",
        /// Waiting for the customer (the SLA clocks may pause).
        Waiting => "waiting",
        /// Forwarded to the client's chancellery (D15).
        Forwarded => "forwarded",
        /// Solved; the customer may still write back (it reopens).
        Resolved => "resolved",
        /// Finished.
        Closed => "closed",
    }
}

impl Status {
    /// Whether a person may move a request from `self` to `to`. Automatic moves (first reply,
    /// the customer's answer) follow the same table.
    pub fn can_move_to(self, to: Status) -> bool {
        use Status::*;
        if self == to {
            return false;
        }
        match self {
            New => to != New,
            Answered | InProgress | Waiting | Forwarded => !matches!(to, New),
            // Reopened when the customer writes back or a supervisor says so.
            Resolved => matches!(to, Closed | InProgress),
            Closed => matches!(to, InProgress),
        }
    }

    /// Still on someone's list.
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Resolved | Status::Closed)
    }
}

named_enum! {
    /// Which way a message went.
    Direction {
        /// From the customer.
        In => "in",
        /// To the customer.
        Out => "out",
        /// An internal note, never sent.
        Note => "note",
        /// A formal letter to the client's chancellery (D15).
        Letter => "letter",
    }
}

/// Who asked. Every field is personal data (D18): `Debug` shows none of it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    /// Name as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number (E.164 or national digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Telegram chat id (the bot answers there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_chat: Option<i64>,
    /// Organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// Taxpayer number (STIR), 9 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stir: Option<String>,
}

impl std::fmt::Debug for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Requester(name: {}, email: {}, phone: {}, telegram: {}, stir: {})",
            self.name.is_some(),
            self.email.as_deref().map(mask_email).unwrap_or_default(),
            self.phone
                .as_deref()
                .map(|p| crate::privacy::PhoneNumber::new(p).masked())
                .unwrap_or_default(),
            self.telegram_chat.is_some(),
            self.stir.is_some(),
        )
    }
}

impl Requester {
    /// How the requester is shown on lists: the name's first word and initial, or the masked
    /// contact.
    pub fn label(&self) -> String {
        if let Some(name) = self.name.as_deref().filter(|n| !n.trim().is_empty()) {
            return name.to_owned();
        }
        if let Some(email) = &self.email {
            return mask_email(email);
        }
        if let Some(phone) = &self.phone {
            return crate::privacy::PhoneNumber::new(phone.as_str()).masked();
        }
        if self.telegram_chat.is_some() {
            return "Telegram".to_owned();
        }
        "—".to_owned()
    }
}

/// `a***@example.uz`: the first character and the domain.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

// With the other e-mail address code in `mail` (so `config` can check addresses without
// reaching `requests`); named here too for the request code.
pub use crate::mail::plausible_email;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(*s));
        }
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert_eq!(Priority::parse("urgent"), None);
    }

    #[test]
    fn the_status_table() {
        assert!(Status::New.can_move_to(Status::Answered));
        assert!(Status::Waiting.can_move_to(Status::InProgress));
        assert!(!Status::Answered.can_move_to(Status::New));
        assert!(Status::Resolved.can_move_to(Status::InProgress));
        assert!(!Status::Closed.can_move_to(Status::Resolved));
        assert!(!Status::New.can_move_to(Status::New));
    }

    #[test]
    fn debug_shows_no_personal_data() {
        let r = Requester {
            name: Some("Dilnoza Rahimova".into()),
            email: Some("dilnoza@example.uz".into()),
            phone: Some("+998901234567".into()),
            telegram_chat: Some(5551234),
            organisation: Some("Oila MChJ".into()),
            stir: Some("123456789".into()),
        };
        let text = format!("{r:?}");
        for secret in [
            "Dilnoza",
            "dilnoza@",
            "901234",
            "5551234",
            "123456789",
            "Oila",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn email_checks() {
        assert!(plausible_email("a.b@example.uz"));
        assert!(!plausible_email("a b@example.uz"));
        assert!(!plausible_email("ab@example"));
        assert!(!plausible_email("<ab@example.uz>"));
        assert_eq!(mask_email("dilnoza@example.uz"), "d***@example.uz");
    }
}
