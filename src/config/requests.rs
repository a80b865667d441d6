//! `[requests]` (where attachments live, how much the public form takes) and
//! `[tenant.requests]` (the web form, the chancellery's address for the editor's letters).

use super::error::Collector;
use serde::Deserialize;
use std::path::PathBuf;

/// `[requests]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequests {
    #[serde(default = "default_attachments_dir")]
    pub attachments_dir: String,
    #[serde(default = "default_attachment_max_kib")]
    pub attachment_max_kib: u64,
    #[serde(default = "default_form_per_hour")]
    pub form_per_source_per_hour: u32,
}

impl Default for RawRequests {
    fn default() -> RawRequests {
        RawRequests {
            attachments_dir: default_attachments_dir(),
            attachment_max_kib: default_attachment_max_kib(),
            form_per_source_per_hour: default_form_per_hour(),
        }
    }
}

fn default_attachments_dir() -> String {
    "data/attachments".to_owned()
}

fn default_attachment_max_kib() -> u64 {
    10 * 1024
}

fn default_form_per_hour() -> u32 {
    20
}

/// `[requests]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestsConfig {
    /// Where attachment contents are kept (named by their SHA-256).
    pub attachments_dir: PathBuf,
    /// The largest attachment taken, in bytes.
    pub attachment_max_bytes: u64,
    /// Web-form requests one source address (an IPv6 /64) may send per hour.
    pub form_per_source_per_hour: u32,
}

impl Default for RequestsConfig {
    fn default() -> RequestsConfig {
        RequestsConfig {
            attachments_dir: PathBuf::from(default_attachments_dir()),
            attachment_max_bytes: default_attachment_max_kib() * 1024,
            form_per_source_per_hour: default_form_per_hour(),
        }
    }
}

/// `[tenant.requests]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantRequests {
    pub web_form: Option<bool>,
    pub chancellery: Option<String>,
    pub from_calls: Option<Vec<String>>,
}

/// `[tenant.requests]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRequests {
    /// The public form `/r/<tenant>` takes requests (D9).
    pub web_form: bool,
    /// The client's chancellery: where the editor's formal letters go (D15).
    pub chancellery: Option<String>,
    /// Calls that end so become a phone request, a call back to make (C2, C5): one per
    /// number and local day. Default: calls that reached a closed line.
    pub from_calls: Vec<crate::events::CallOutcome>,
}

impl Default for TenantRequests {
    fn default() -> TenantRequests {
        TenantRequests {
            web_form: true,
            chancellery: None,
            from_calls: vec![crate::events::CallOutcome::Closed],
        }
    }
}

/// The outcomes `from_calls` may name.
const CALL_OUTCOMES: [(&str, crate::events::CallOutcome); 5] = [
    ("closed", crate::events::CallOutcome::Closed),
    ("abandoned", crate::events::CallOutcome::Abandoned),
    ("timed_out", crate::events::CallOutcome::TimedOut),
    ("ivr_hangup", crate::events::CallOutcome::IvrHangup),
    ("blocked", crate::events::CallOutcome::Blocked),
];

pub(crate) fn check_requests(raw: &RawRequests, errors: &mut Collector) -> RequestsConfig {
    if raw.attachments_dir.trim().is_empty() {
        errors.push(
            "requests.attachments_dir",
            "is empty",
            "name a writable directory, e.g. \"data/attachments\"",
        );
    }
    if raw.attachment_max_kib == 0 || raw.attachment_max_kib > 100 * 1024 {
        errors.push(
            "requests.attachment_max_kib",
            format!("{} is outside 1..=102400", raw.attachment_max_kib),
            "use a size in KiB such as 10240 (10 MiB)",
        );
    }
    if raw.form_per_source_per_hour == 0 {
        errors.push(
            "requests.form_per_source_per_hour",
            "0 would refuse every web-form request",
            "use a number such as 20",
        );
    }
    RequestsConfig {
        attachments_dir: PathBuf::from(&raw.attachments_dir),
        attachment_max_bytes: raw.attachment_max_kib.clamp(1, 100 * 1024) * 1024,
        form_per_source_per_hour: raw.form_per_source_per_hour.max(1),
    }
}

pub(crate) fn check_tenant_requests(
    raw: Option<&RawTenantRequests>,
    label: &str,
    errors: &mut Collector,
) -> TenantRequests {
    let Some(raw) = raw else {
        return TenantRequests::default();
    };
    if let Some(addr) = &raw.chancellery {
        if !crate::requests::types::plausible_email(addr) {
            errors.push(
                format!("{label}.requests.chancellery"),
                format!("\"{addr}\" is not an e-mail address"),
                "write the chancellery's address, e.g. \"devonxona@example.uz\"",
            );
        }
    }
    let from_calls = match &raw.from_calls {
        None => TenantRequests::default().from_calls,
        Some(names) => names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let found = CALL_OUTCOMES
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, o)| *o);
                if found.is_none() {
                    errors.push(
                        format!("{label}.requests.from_calls[{i}]"),
                        format!("\"{name}\" is not a call outcome a request can follow"),
                        "use closed, abandoned, timed_out, ivr_hangup or blocked",
                    );
                }
                found
            })
            .collect(),
    };
    TenantRequests {
        web_form: raw.web_form.unwrap_or(true),
        chancellery: raw.chancellery.clone(),
        from_calls,
    }
}
