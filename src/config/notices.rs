//! `[notices]` (the desk's address for links, the digest rate) and `[tenant.notices]` (who is
//! told, and of what: D7).

use super::error::Collector;
use serde::{Deserialize, Serialize};

/// Why a notice was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A call whose disposition is unresolved.
    Unresolved,
    /// A call whose disposition is disputed.
    Disputed,
    /// A call classified as a complaint.
    Complaint,
    /// A request whose SLA clock ran out.
    SlaBreach,
}

impl NoticeKind {
    /// Every kind (the D7 defaults).
    pub const ALL: [NoticeKind; 4] = [
        NoticeKind::Unresolved,
        NoticeKind::Disputed,
        NoticeKind::Complaint,
        NoticeKind::SlaBreach,
    ];

    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Unresolved => "unresolved",
            NoticeKind::Disputed => "disputed",
            NoticeKind::Complaint => "complaint",
            NoticeKind::SlaBreach => "sla_breach",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// `[notices]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotices {
    #[serde(default = "default_desk_url")]
    pub desk_url: String,
    #[serde(default = "default_per_minute")]
    pub digest_above_per_minute: u32,
}

impl Default for RawNotices {
    fn default() -> RawNotices {
        RawNotices {
            desk_url: default_desk_url(),
            digest_above_per_minute: default_per_minute(),
        }
    }
}

fn default_desk_url() -> String {
    "http://127.0.0.1:8080".to_owned()
}

fn default_per_minute() -> u32 {
    10
}

/// `[notices]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticesConfig {
    /// The desk's address as the client's officer reaches it (links in notices).
    pub desk_url: String,
    /// Notices sent alone per tenant, channel and minute; the rest of the minute is one digest.
    pub digest_above_per_minute: u32,
}

/// `[tenant.notices]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantNotices {
    #[serde(default)]
    pub emails: Vec<String>,
    pub telegram_chat: Option<i64>,
    pub on: Option<Vec<String>>,
}

/// `[tenant.notices]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantNotices {
    /// The client's e-mail list (sent through the tenant's `[tenant.requests.mail]` relay).
    pub emails: Vec<String>,
    /// The client's Telegram group (sent by the tenant's `[tenant.requests.telegram]` bot).
    pub telegram_chat: Option<i64>,
    /// What makes a notice (D7 default: all four).
    pub on: Vec<NoticeKind>,
}

impl Default for TenantNotices {
    fn default() -> TenantNotices {
        TenantNotices {
            emails: Vec::new(),
            telegram_chat: None,
            on: NoticeKind::ALL.to_vec(),
        }
    }
}

pub(crate) fn check_notices(raw: &RawNotices, errors: &mut Collector) -> NoticesConfig {
    let url = raw.desk_url.trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        errors.push(
            "notices.desk_url",
            format!("\"{}\" is not an http(s) address", raw.desk_url),
            "write the address the client's officer opens the desk at, e.g. \"https://navbat.example.uz\"",
        );
    }
    if raw.digest_above_per_minute == 0 {
        errors.push(
            "notices.digest_above_per_minute",
            "0 would fold every notice into a digest",
            "use a number such as 10",
        );
    }
    NoticesConfig {
        desk_url: url.to_owned(),
        digest_above_per_minute: raw.digest_above_per_minute.max(1),
    }
}

pub(crate) fn check_tenant_notices(
    raw: Option<&RawTenantNotices>,
    label: &str,
    requests: &super::requests::TenantRequests,
    errors: &mut Collector,
) -> TenantNotices {
    let Some(raw) = raw else {
        return TenantNotices::default();
    };
    for (i, e) in raw.emails.iter().enumerate() {
        if !crate::mail::plausible_email(e) {
            errors.push(
                format!("{label}.notices.emails[{i}]"),
                format!("\"{e}\" is not an e-mail address"),
                "write the officer's address, e.g. \"officer@example.uz\"",
            );
        }
    }
    if !raw.emails.is_empty() && requests.mail.is_none() {
        errors.push(
            format!("{label}.notices.emails"),
            "notices by e-mail need a mail relay",
            format!("add [{label}.requests.mail] (its SMTP part sends the notices)"),
        );
    }
    if raw.telegram_chat.is_some() && requests.telegram.is_none() {
        errors.push(
            format!("{label}.notices.telegram_chat"),
            "notices to a Telegram group need the tenant's bot",
            format!("add [{label}.requests.telegram] and add the bot to the group"),
        );
    }
    let on = match &raw.on {
        None => NoticeKind::ALL.to_vec(),
        Some(names) => names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let k = NoticeKind::parse(n);
                if k.is_none() {
                    errors.push(
                        format!("{label}.notices.on[{i}]"),
                        format!("\"{n}\" is not a notice trigger"),
                        "use unresolved, disputed, complaint or sla_breach",
                    );
                }
                k
            })
            .collect(),
    };
    TenantNotices {
        emails: raw.emails.clone(),
        telegram_chat: raw.telegram_chat,
        on,
    }
}
