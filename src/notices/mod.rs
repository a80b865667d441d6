//! Notices to the client (D7): every call whose disposition is unresolved or disputed, every
//! complaint, and every SLA breach of a request goes, within seconds, to the tenant's e-mail
//! list and Telegram group, in Uzbek and Russian, personal data masked (D18), with a link to
//! the call or request in the desk.
//!
//! ```text
//! disposition_saved / request_sla --> NoticeTriggers (sink) --> [bounded queue] --> Notifier
//!                                                                                   |
//!   journal: Queued (fsync before any send) -> Sent / Retrying / Failed per channel  |
//!                                                     Outbox (pure: rate, digests, backoff)
//! ```
//!
//! * A notice's id comes from what triggered it (`call:<uid>:unresolved`), so a disposition
//!   saved twice, or a trigger replayed, is one notice.
//! * Durable like the SMS outbox: the notice is in the journal before the first attempt;
//!   after a restart, deliveries not yet sent are taken up again with their attempts and due
//!   time, and a delivery recorded as sent is never sent again.
//! * Above `[tenant.notices] digest_above_per_minute` per channel, the rest of the minute is
//!   folded into one digest.
//!
//! This module is the notices' model and pure outbox; the notifier that journals and sends
//! them (it holds a store handle, and the store keeps these steps) is `actors::notices`.

pub mod outbox;

use serde::{Deserialize, Serialize};

// Declared in `config` (which parses `[tenant.notices] on`); the words are the notices'.
pub use crate::config::NoticeKind;

impl NoticeKind {
    fn words(self) -> (&'static str, &'static str) {
        match self {
            NoticeKind::Unresolved => ("hal qilinmagan", "не решён"),
            NoticeKind::Disputed => ("bahsli", "спорный"),
            NoticeKind::Complaint => ("shikoyat", "жалоба"),
            NoticeKind::SlaBreach => ("muddat o'tdi", "срок нарушен"),
        }
    }
}

/// A notice's delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The tenant's e-mail list.
    Email,
    /// The tenant's Telegram group.
    Telegram,
}

impl Channel {
    /// The name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Telegram => "telegram",
        }
    }

    /// The channel named `name`.
    pub fn parse(name: &str) -> Option<Channel> {
        match name {
            "email" => Some(Channel::Email),
            "telegram" => Some(Channel::Telegram),
            _ => None,
        }
    }
}

/// What a notice is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Target {
    /// A call (`node:boot:call`).
    Call(String),
    /// A request.
    Request(String),
}

impl Target {
    /// `call` or `request`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Call(_) => "call",
            Target::Request(_) => "request",
        }
    }

    /// The id.
    pub fn id(&self) -> &str {
        match self {
            Target::Call(id) | Target::Request(id) => id,
        }
    }
}

/// One notice. Its texts carry no personal data in full.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// From its trigger: `call:<uid>:unresolved+complaint`, `request:<id>:resolution`.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Why.
    pub kinds: Vec<NoticeKind>,
    /// About what.
    pub target: Target,
    /// When it was made (Unix ms).
    pub created_at_ms: i64,
    /// The text in Uzbek.
    pub text_uz: String,
    /// The text in Russian.
    pub text_ru: String,
    /// The desk's page of the call or request.
    pub link: String,
}

impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notice({} {})", self.id, self.tenant)
    }
}

impl Notice {
    /// The words of the kinds, `"uz / ru"`.
    pub fn headline(&self) -> (String, String) {
        let uz: Vec<&str> = self.kinds.iter().map(|k| k.words().0).collect();
        let ru: Vec<&str> = self.kinds.iter().map(|k| k.words().1).collect();
        (uz.join(", "), ru.join(", "))
    }

    /// The message for one notice, both languages.
    pub fn message(&self) -> (String, String) {
        let (uz, ru) = self.headline();
        let subject = format!("navbat [{}]: {uz} / {ru}", self.tenant);
        let body = format!("{}\n\n{}\n\n{}\n", self.text_uz, self.text_ru, self.link);
        (subject, body)
    }
}

/// The message folding several notices into one digest, both languages.
pub fn digest(tenant: &str, notices: &[Notice]) -> (String, String) {
    let subject = format!(
        "navbat [{tenant}]: {} ta xabarnoma / уведомлений: {}",
        notices.len(),
        notices.len()
    );
    let mut body = format!(
        "Bir daqiqada {n} ta xabarnoma / {n} уведомлений за минуту:\n\n",
        n = notices.len()
    );
    for n in notices.iter().take(200) {
        let (uz, ru) = n.headline();
        body.push_str(&format!("- {uz} / {ru}: {} {}\n", n.target.id(), n.link));
    }
    if notices.len() > 200 {
        body.push_str(&format!(
            "... +{} (ro'yxatda / в списке: /requests, /supervisor)\n",
            notices.len() - 200
        ));
    }
    (subject, body)
}

/// A step of a notice as the journal carries it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum NoticeStep {
    /// Made, to go out by these channels (fsynced before the first attempt).
    Queued {
        /// The notice.
        notice: Notice,
        /// Its channels.
        channels: Vec<Channel>,
    },
    /// An attempt by one channel ended.
    Delivery {
        /// The notice.
        id: String,
        /// The channel.
        channel: Channel,
        /// `sent`, `retrying`, `failed`.
        state: String,
        /// Attempts so far.
        attempts: u32,
        /// Next attempt (retrying).
        #[serde(default)]
        due_ms: Option<i64>,
        /// The server's answer when it failed.
        #[serde(default)]
        detail: Option<String>,
        /// Sent within a digest of this many.
        #[serde(default)]
        digest_of: Option<u32>,
    },
}

impl std::fmt::Debug for NoticeStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoticeStep::Queued { notice, .. } => write!(f, "NoticeQueued({})", notice.id),
            NoticeStep::Delivery {
                id, channel, state, ..
            } => write!(f, "NoticeDelivery({id} {} {state})", channel.as_str()),
        }
    }
}
