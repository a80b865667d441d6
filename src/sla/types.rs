//! The request attributes the SLA clocks depend on: channel, priority and kind.
//!
//! Shared with the request registry: the lower-case names below are the names in
//! configuration, in the store and on the API (serde uses the same ones).

use serde::{Deserialize, Serialize};

/// Where a request came in (C1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A phone call (`phone`).
    Phone,
    /// An e-mail (`email`).
    Email,
    /// A message to the Telegram bot (`telegram`).
    Telegram,
    /// The web request form (`web`).
    Web,
}

impl Channel {
    /// Every channel, in the order of [`Channel::NAMES`].
    pub const ALL: [Channel; 4] = [
        Channel::Phone,
        Channel::Email,
        Channel::Telegram,
        Channel::Web,
    ];

    /// The accepted names.
    pub const NAMES: [&'static str; 4] = ["phone", "email", "telegram", "web"];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Email => "email",
            Channel::Telegram => "telegram",
            Channel::Web => "web",
        }
    }

    /// Parses a name from [`Channel::NAMES`] (exact, lower case).
    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether C4 applies: a written request (e-mail, Telegram, web form) gets its first
    /// answer within working minutes. A call is answered by the queue, not by this clock.
    pub fn is_written(self) -> bool {
        !matches!(self, Channel::Phone)
    }
}

/// How urgent a request is (C6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Critical or emergency: resolved within calendar hours, round the clock (`critical`).
    Critical,
    /// High or urgent (`high`).
    High,
    /// Normal (`normal`).
    Normal,
    /// Low (`low`).
    Low,
}

impl Priority {
    /// Every priority, most urgent first, in the order of [`Priority::NAMES`].
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    /// The accepted names.
    pub const NAMES: [&'static str; 4] = ["critical", "high", "normal", "low"];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// Parses a name from [`Priority::NAMES`] (exact, lower case).
    pub fn parse(name: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// What a request is about, as far as the clocks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// A question, complaint or problem: first-answer and resolution clocks (`ordinary`).
    Ordinary,
    /// A National Catalogue card sent for moderation: the moderation clock only (C7)
    /// (`moderation`).
    Moderation,
}

impl RequestKind {
    /// Every kind, in the order of [`RequestKind::NAMES`].
    pub const ALL: [RequestKind; 2] = [RequestKind::Ordinary, RequestKind::Moderation];

    /// The accepted names.
    pub const NAMES: [&'static str; 2] = ["ordinary", "moderation"];

    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Ordinary => "ordinary",
            RequestKind::Moderation => "moderation",
        }
    }

    /// Parses a name from [`RequestKind::NAMES`] (exact, lower case).
    pub fn parse(name: &str) -> Option<RequestKind> {
        RequestKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(Channel, Priority, RequestKind);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for (c, name) in Channel::ALL.into_iter().zip(Channel::NAMES) {
            assert_eq!(c.as_str(), name);
            assert_eq!(Channel::parse(name), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{name}\""));
            let back: Channel = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(back, c);
        }
        for (p, name) in Priority::ALL.into_iter().zip(Priority::NAMES) {
            assert_eq!(p.as_str(), name);
            assert_eq!(Priority::parse(name), Some(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{name}\""));
        }
        for (k, name) in RequestKind::ALL.into_iter().zip(RequestKind::NAMES) {
            assert_eq!(k.as_str(), name);
            assert_eq!(RequestKind::parse(name), Some(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{name}\""));
            assert_eq!(k.to_string(), name);
        }
    }

    #[test]
    fn unknown_or_differently_cased_names_are_refused() {
        for bad in ["", "Phone", "EMAIL", "sms", "e-mail", "tg"] {
            assert_eq!(Channel::parse(bad), None, "{bad}");
        }
        for bad in ["urgent", "Critical", "medium"] {
            assert_eq!(Priority::parse(bad), None, "{bad}");
        }
        assert_eq!(RequestKind::parse("card"), None);
        assert!(serde_json::from_str::<Priority>("\"urgent\"").is_err());
    }

    #[test]
    fn only_phone_is_not_written() {
        assert!(!Channel::Phone.is_written());
        assert!(Channel::Email.is_written());
        assert!(Channel::Telegram.is_written());
        assert!(Channel::Web.is_written());
    }
}
