//! `[sms]`: the SMS gateway, the durable outbox and the message templates (D12).
//!
//! ```toml
//! [sms]
//! enabled = true
//! # The outbox is kept by the store ([database]: table sms_messages, via the journal).
//! first_backoff_secs = 2                  # doubles after each failure...
//! max_backoff_secs = 300                  # ...up to this
//! max_attempts = 8
//!
//! [sms.gateway]
//! url = "http://127.0.0.1:9090/sms"
//! method = "POST"
//! content_type = "application/json"
//! headers = { Authorization = "Bearer <token>" }
//! body = '{"id":"{id}","to":"{to}","text":"{text}"}'
//! timeout_secs = 10
//! # https:// gateways are checked against the Mozilla roots; add a private CA with
//! # ca_file = "/etc/navbat/sms-ca.pem"
//!
//! # A kind of message is sent only when it has a template.
//! [sms.templates]
//! deflection = { uz = "...{info}...", ru = "...{info}..." }
//! missed_call = { uz = "...", ru = "..." }
//! # after which outcomes the missed-call message goes (default: abandoned); never "blocked"
//! # missed_call_after = ["abandoned", "timed_out"]
//! # per number: one missed-call text an hour, three texts of any kind a day
//! # missed_call_window_secs = 3600
//! # daily_cap_per_number = 3
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use super::error::Collector;
use super::raw::RawBilingual;
use crate::events::CallOutcome;
use serde::Serialize;

// ---------------------------------------------------------------------------------------
// The typed settings (the SMS actor reads them; `sms` re-exports them under its own paths)
// ---------------------------------------------------------------------------------------

/// The default country code for numbers written without one: Uzbekistan.
pub const DEFAULT_COUNTRY_CODE: &str = "998";

/// The typed `[sms]` settings the actor and the sink need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsSettings {
    /// The gateway.
    pub gateway: GatewayConfig,
    /// Retries.
    pub retry: RetryPolicy,
    /// Which kinds are sent, with their templates.
    pub templates: BTreeMap<MessageKind, Template>,
    /// Call outcomes that get the missed-call message (abandoned by default; never a call
    /// refused at the door, whose From nobody checked).
    pub missed_call_after: Vec<CallOutcome>,
    /// How many texts one number may receive.
    pub limits: SmsLimitPolicy,
}

/// What a message is for; each kind has its own template and can be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// The caller took a self-service branch: the information as a text.
    Deflection,
    /// A callback was booked.
    CallbackConfirmation,
    /// A callback was booked for the next morning's window (`[tenant.surge.door]`); its
    /// template's `{window}` is the window, e.g. `08:00-10:00`.
    CallbackNextMorning,
    /// The caller hung up while waiting, or was refused at the door.
    MissedCall,
}

impl MessageKind {
    /// The name used in config, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Deflection => "deflection",
            MessageKind::CallbackConfirmation => "callback_confirmation",
            MessageKind::CallbackNextMorning => "callback_next_morning",
            MessageKind::MissedCall => "missed_call",
        }
    }
}

/// A message text in Uzbek and Russian, with `{name}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Uzbek (Latin).
    pub uz: String,
    /// Russian.
    pub ru: String,
}

impl Template {
    /// The text in `language`, or both (Uzbek first) when the caller's language is not known.
    /// Unknown placeholders stay as written, so a typo is visible in the message, not lost.
    pub fn render(&self, language: Option<&str>, values: &BTreeMap<&str, String>) -> String {
        let fill = |text: &str| {
            let mut out = text.to_string();
            for (k, v) in values {
                out = out.replace(&format!("{{{k}}}"), v);
            }
            out
        };
        match language {
            Some("ru") => fill(&self.ru),
            Some("uz") => fill(&self.uz),
            _ => format!("{}\n{}", fill(&self.uz), fill(&self.ru)),
        }
    }
}

/// Backoff and attempt limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure (ms); doubles after each further failure.
    pub first_backoff_ms: u64,
    /// Longest wait between attempts (ms).
    pub max_backoff_ms: u64,
    /// Attempts before a message is given up.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_backoff_ms: 2_000,
            max_backoff_ms: 300_000,
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (1 or more).
    pub fn backoff_ms(&self, failures: u32) -> u64 {
        let shift = failures.saturating_sub(1).min(30);
        self.first_backoff_ms
            .saturating_mul(1u64 << shift)
            .min(self.max_backoff_ms)
    }
}

/// How a `sms::gateway::HttpGateway` talks to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Where to send, `http://host[:port]/path`.
    pub url: String,
    /// `POST`, `PUT` or `GET`.
    pub method: String,
    /// Extra headers, e.g. `("Authorization", "Bearer ...")`.
    pub headers: Vec<(String, String)>,
    /// `Content-Type` of the body.
    pub content_type: String,
    /// Body with `{id}`, `{to}`, `{text}` and `{tenant}`; values are escaped for the content
    /// type (JSON string content, or form-encoded).
    pub body: String,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM) for an `https://` gateway.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The limits, from `[sms]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsLimitPolicy {
    /// At most one missed-call text per number within this many ms.
    pub missed_call_window_ms: u64,
    /// At most this many texts of any kind per number per day.
    pub daily_cap_per_number: u32,
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// `[sms]` as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSms {
    #[serde(default)]
    pub enabled: bool,
    /// No longer used (the store keeps the outbox); named in an error if present.
    pub outbox_path: Option<String>,
    #[serde(default = "default_first_backoff")]
    pub first_backoff_secs: u64,
    #[serde(default = "default_max_backoff")]
    pub max_backoff_secs: u64,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    pub gateway: Option<RawGateway>,
    #[serde(default)]
    pub templates: BTreeMap<String, RawBilingual>,
    #[serde(default = "default_missed_after")]
    pub missed_call_after: Vec<String>,
    #[serde(default = "default_missed_call_window")]
    pub missed_call_window_secs: u64,
    #[serde(default = "default_daily_cap")]
    pub daily_cap_per_number: u32,
}

fn default_missed_after() -> Vec<String> {
    vec!["abandoned".into()]
}
fn default_missed_call_window() -> u64 {
    3600
}
fn default_daily_cap() -> u32 {
    3
}

const MISSED_OUTCOMES: [(&str, CallOutcome); 2] = [
    ("abandoned", CallOutcome::Abandoned),
    ("timed_out", CallOutcome::TimedOut),
];

fn default_first_backoff() -> u64 {
    2
}
fn default_max_backoff() -> u64 {
    300
}
fn default_attempts() -> u32 {
    8
}

/// `[sms.gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    pub url: String,
    /// Extra trusted CA certificates (PEM) for an https:// gateway.
    pub ca_file: Option<String>,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_content_type")]
    pub content_type: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_method() -> String {
    "POST".into()
}
fn default_content_type() -> String {
    "application/json".into()
}
fn default_timeout() -> u64 {
    10
}

const KINDS: [(&str, MessageKind); 4] = [
    ("deflection", MessageKind::Deflection),
    ("callback_confirmation", MessageKind::CallbackConfirmation),
    ("callback_next_morning", MessageKind::CallbackNextMorning),
    ("missed_call", MessageKind::MissedCall),
];

/// Checks `[sms]`; `None` inside `Some` means "SMS disabled".
pub(crate) fn check_sms(
    raw: Option<&RawSms>,
    errors: &mut Collector,
) -> Option<Option<SmsSettings>> {
    let before = errors.len();
    if raw.is_some_and(|r| r.outbox_path.is_some()) {
        errors.push(
            "sms.outbox_path",
            "this setting is no longer used: the SMS outbox is kept in the database \
             (table sms_messages, through the journal in database.journal_dir), and unsent \
             messages resume from there after a restart",
            "remove outbox_path from [sms] (messages still in the old file are not imported)",
        );
    }
    let Some(raw) = raw.filter(|r| r.enabled) else {
        return (errors.len() == before).then_some(None);
    };
    let gateway = match &raw.gateway {
        None => {
            errors.push(
                "sms.gateway",
                "SMS is enabled but no gateway is configured",
                "add [sms.gateway] with url and body, or set sms.enabled = false",
            );
            None
        }
        Some(g) => {
            if !g.url.starts_with("http://") && !g.url.starts_with("https://") {
                errors.push(
                    "sms.gateway.url",
                    format!("\"{}\" is not an http:// or https:// URL", g.url),
                    "write the gateway's address, e.g. \"https://sms.example.uz/send\"",
                );
            }
            if let Some(ca) = &g.ca_file {
                if let Err(e) = crate::tls::tls_config(Some(std::path::Path::new(ca))) {
                    errors.push(
                        "sms.gateway.ca_file",
                        e.to_string(),
                        "give a readable PEM file with the gateway's CA certificate",
                    );
                }
            }
            if !["POST", "PUT", "GET"].contains(&g.method.as_str()) {
                errors.push(
                    "sms.gateway.method",
                    format!("\"{}\" is not a supported method", g.method),
                    "use POST, PUT or GET",
                );
            }
            if !g.body.contains("{to}") || !g.body.contains("{text}") {
                errors.push(
                    "sms.gateway.body",
                    "the body template lacks {to} or {text}, so the gateway cannot know what to send where",
                    "include both, e.g. '{\"id\":\"{id}\",\"to\":\"{to}\",\"text\":\"{text}\"}'",
                );
            }
            if g.timeout_secs == 0 {
                errors.push(
                    "sms.gateway.timeout_secs",
                    "a timeout of 0 fails every attempt",
                    "set a few seconds, e.g. 10",
                );
            }
            Some(GatewayConfig {
                url: g.url.clone(),
                method: g.method.clone(),
                headers: g
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                content_type: g.content_type.clone(),
                body: g.body.clone(),
                timeout: Duration::from_secs(g.timeout_secs),
                ca_file: g.ca_file.as_ref().map(std::path::PathBuf::from),
            })
        }
    };
    if raw.max_attempts == 0 {
        errors.push(
            "sms.max_attempts",
            "0 attempts would never send anything",
            "set at least 1, e.g. 8",
        );
    }
    if raw.first_backoff_secs == 0 || raw.max_backoff_secs < raw.first_backoff_secs {
        errors.push(
            "sms.first_backoff_secs",
            "the backoff must be at least 1 second and not above max_backoff_secs",
            "e.g. first_backoff_secs = 2, max_backoff_secs = 300",
        );
    }
    let mut templates = BTreeMap::new();
    for (name, text) in &raw.templates {
        match KINDS.iter().find(|(k, _)| k == name) {
            Some((_, kind)) => {
                templates.insert(
                    *kind,
                    Template {
                        uz: text.uz.clone(),
                        ru: text.ru.clone(),
                    },
                );
            }
            None => errors.push(
                format!("sms.templates.{name}"),
                format!("\"{name}\" is not a kind of message"),
                format!(
                    "use one of {}",
                    KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ),
            ),
        }
    }
    let mut missed_call_after = Vec::new();
    for (i, name) in raw.missed_call_after.iter().enumerate() {
        match MISSED_OUTCOMES.iter().find(|(n, _)| n == name) {
            Some((_, o)) => missed_call_after.push(*o),
            None if name == "blocked" => errors.push(
                format!("sms.missed_call_after[{i}]"),
                "a blocked call was refused at the door before anything about it was checked: \
                 its From can be forged, so anyone could make navbat text any number",
                "remove \"blocked\" (abandoned and timed_out calls still get the message)",
            ),
            None => errors.push(
                format!("sms.missed_call_after[{i}]"),
                format!("\"{name}\" is not an outcome a missed-call message can follow"),
                "use abandoned or timed_out",
            ),
        }
    }
    if raw.missed_call_window_secs == 0 || raw.daily_cap_per_number == 0 {
        errors.push(
            "sms.daily_cap_per_number",
            "missed_call_window_secs and daily_cap_per_number must be above 0 (0 would turn the \
             per-number limit off or refuse every text)",
            "leave them out for the defaults (3600 s, 3 a day) or give positive numbers",
        );
    }
    if errors.len() > before {
        return None;
    }
    Some(Some(SmsSettings {
        gateway: gateway?,
        retry: RetryPolicy {
            first_backoff_ms: raw.first_backoff_secs.saturating_mul(1000),
            max_backoff_ms: raw.max_backoff_secs.saturating_mul(1000),
            max_attempts: raw.max_attempts,
        },
        templates,
        missed_call_after,
        limits: SmsLimitPolicy {
            missed_call_window_ms: raw.missed_call_window_secs.saturating_mul(1000),
            daily_cap_per_number: raw.daily_cap_per_number,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, EMBEDDED_DEFAULT_TOML};
    use crate::events::CallOutcome;

    fn with(section: &str) -> Result<Config, super::super::ConfigErrors> {
        let base = EMBEDDED_DEFAULT_TOML;
        let text = match base.find("[sms]") {
            Some(at) => {
                let end = base[at..]
                    .find("\n# ----")
                    .map(|e| at + e)
                    .unwrap_or(base.len());
                format!("{}{}{}", &base[..at], section, &base[end..])
            }
            None => format!("{base}\n{section}"),
        };
        Config::from_toml_str(&text, "test.toml")
    }

    const GATEWAY: &str = "[sms.gateway]\nurl = \"http://127.0.0.1:9/sms\"\nbody = '{\"to\":\"{to}\",\"text\":\"{text}\"}'\n";

    #[test]
    fn demo_has_sms_disabled() {
        assert_eq!(Config::embedded_default().sms, None);
    }

    #[test]
    fn enabled_sms_is_parsed() {
        let c = with(&format!(
            "[sms]\nenabled = true\nmax_attempts = 3\n{GATEWAY}[sms.templates]\nmissed_call = {{ uz = \"a\", ru = \"b\" }}\n"
        ))
        .unwrap();
        let sms = c.sms.unwrap();
        assert_eq!(sms.retry.max_attempts, 3);
        assert_eq!(sms.gateway.method, "POST");
        assert_eq!(sms.templates.len(), 1);
        assert_eq!(sms.missed_call_after, vec![CallOutcome::Abandoned]);
        assert_eq!(sms.limits.missed_call_window_ms, 3_600_000);
        assert_eq!(sms.limits.daily_cap_per_number, 3);
        let errors = with(&format!(
            "[sms]\nenabled = true\nmissed_call_after = [\"answered\"]\n{GATEWAY}"
        ))
        .unwrap_err();
        assert!(errors.has("sms.missed_call_after[0]"), "{errors}");
        // A call refused at the door had its From checked by nobody: no text for it.
        let errors = with(&format!(
            "[sms]\nenabled = true\nmissed_call_after = [\"abandoned\", \"blocked\"]\n{GATEWAY}"
        ))
        .unwrap_err();
        assert!(errors.has("sms.missed_call_after[1]"), "{errors}");
        assert!(errors.to_string().contains("forged"), "{errors}");
    }

    #[test]
    fn missing_gateway_and_bad_template_are_named() {
        let errors =
            with("[sms]\nenabled = true\n[sms.templates]\nhello = { uz = \"a\", ru = \"b\" }\n")
                .unwrap_err();
        assert!(errors.has("sms.gateway"), "{errors}");
        assert!(errors.has("sms.templates.hello"), "{errors}");
    }

    #[test]
    fn body_without_placeholders_is_refused() {
        let errors = with(
            "[sms]\nenabled = true\n[sms.gateway]\nurl = \"http://127.0.0.1:9/\"\nbody = \"{}\"\n",
        )
        .unwrap_err();
        let e = errors.at("sms.gateway.body").next().expect("error at body");
        assert_eq!(e.file, "test.toml");
    }
}
