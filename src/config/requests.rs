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
    pub telegram: Option<RawTelegram>,
    pub mail: Option<RawMail>,
    pub letter_uz: Option<String>,
    pub letter_ru: Option<String>,
}

/// `[tenant.requests.mail]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMail {
    pub imap_host: String,
    pub imap_port: Option<u16>,
    #[serde(default = "default_tls")]
    pub imap_tls: String,
    pub imap_user: String,
    pub imap_password: Option<String>,
    pub imap_password_file: Option<String>,
    #[serde(default = "default_mailbox")]
    pub mailbox: String,
    #[serde(default = "default_poll_secs")]
    pub poll_secs: u64,
    pub smtp_host: String,
    pub smtp_port: Option<u16>,
    #[serde(default = "default_tls")]
    pub smtp_tls: String,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<String>,
    pub smtp_password_file: Option<String>,
    pub from: String,
    #[serde(default)]
    pub from_name: String,
}

fn default_tls() -> String {
    "tls".to_owned()
}

fn default_mailbox() -> String {
    "INBOX".to_owned()
}

fn default_poll_secs() -> u64 {
    30
}

/// `[tenant.requests.telegram]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelegram {
    pub token: Option<String>,
    pub token_file: Option<String>,
    #[serde(default = "default_telegram_api")]
    pub api: String,
    #[serde(default = "default_poll_timeout")]
    pub poll_timeout_secs: u32,
}

fn default_telegram_api() -> String {
    "https://api.telegram.org".to_owned()
}

fn default_poll_timeout() -> u32 {
    25
}

/// A tenant's Telegram bot (`[tenant.requests.telegram]`).
#[derive(Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    /// The Bot API's address.
    pub api: String,
    /// The bot's token (from `token` or the file `token_file`).
    pub token: String,
    /// Long-poll timeout of `getUpdates`.
    pub poll_timeout_secs: u32,
}

impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TelegramConfig({}, token hidden)", self.api)
    }
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
    /// The tenant's Telegram bot.
    pub telegram: Option<TelegramConfig>,
    /// The tenant's mailbox (IMAP) and mail relay (SMTP).
    pub mail: Option<crate::mail::MailSettings>,
    /// The editor's letter to the chancellery, in Uzbek and in Russian, with `{number}`,
    /// `{date}`, `{channel}`, `{subject}`, `{requester}` filled in; `None`: the built-in one.
    pub letter_uz: Option<String>,
    /// The same in Russian.
    pub letter_ru: Option<String>,
}

impl Default for TenantRequests {
    fn default() -> TenantRequests {
        TenantRequests {
            web_form: true,
            chancellery: None,
            from_calls: vec![crate::events::CallOutcome::Closed],
            telegram: None,
            mail: None,
            letter_uz: None,
            letter_ru: None,
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
        if !crate::mail::plausible_email(addr) {
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
    let telegram = raw.telegram.as_ref().and_then(|t| {
        let field = format!("{label}.requests.telegram");
        let token = match (&t.token, &t.token_file) {
            (Some(token), None) => Some(token.trim().to_owned()),
            (None, Some(file)) => match std::fs::read_to_string(file) {
                Ok(text) => Some(text.trim().to_owned()),
                Err(e) => {
                    errors.push(
                        format!("{field}.token_file"),
                        format!("cannot read {file}: {e}"),
                        "give the path of a file holding the bot's token (from @BotFather)",
                    );
                    None
                }
            },
            _ => {
                errors.push(
                    field.clone(),
                    "needs exactly one of token and token_file",
                    "write token_file = \"/etc/navbat/telegram.token\" (or token = \"...\")",
                );
                None
            }
        }?;
        let valid = token.split_once(':').is_some_and(|(id, secret)| {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && secret.len() >= 20
        });
        if !valid {
            errors.push(
                format!("{field}.token"),
                "is not a bot token (digits, a colon, then the secret)",
                "copy the token @BotFather gave, e.g. 123456789:AA...",
            );
            return None;
        }
        if !(t.api.starts_with("https://") || t.api.starts_with("http://127.") || t.api.starts_with("http://[::1]")) {
            errors.push(
                format!("{field}.api"),
                format!("\"{}\" is neither https nor a loopback address", t.api),
                "leave api out (https://api.telegram.org) or use a local Bot API server on loopback",
            );
            return None;
        }
        Some(TelegramConfig {
            api: t.api.clone(),
            token,
            poll_timeout_secs: t.poll_timeout_secs.clamp(1, 50),
        })
    });
    let mail = raw
        .mail
        .as_ref()
        .and_then(|m| check_mail(m, &format!("{label}.requests.mail"), errors));
    TenantRequests {
        web_form: raw.web_form.unwrap_or(true),
        chancellery: raw.chancellery.clone(),
        from_calls,
        telegram,
        mail,
        letter_uz: raw.letter_uz.clone(),
        letter_ru: raw.letter_ru.clone(),
    }
}

/// A secret given inline or in a file (one of the two).
fn secret(
    inline: &Option<String>,
    file: &Option<String>,
    field: &str,
    required: bool,
    errors: &mut Collector,
) -> Option<Option<String>> {
    match (inline, file) {
        (Some(v), None) => Some(Some(v.clone())),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => Some(Some(text.trim_end_matches(['\r', '\n']).to_owned())),
            Err(e) => {
                errors.push(
                    format!("{field}_file"),
                    format!("cannot read {path}: {e}"),
                    "give the path of a file that holds the password (readable by navbat only)",
                );
                None
            }
        },
        (None, None) if !required => Some(None),
        (None, None) => {
            errors.push(
                field.to_owned(),
                "is missing",
                format!("add {field}_file = \"/etc/navbat/...\" (or {field} = \"...\")"),
            );
            None
        }
        (Some(_), Some(_)) => {
            errors.push(
                field.to_owned(),
                "is given twice (inline and as a file)",
                format!("keep only {field}_file"),
            );
            None
        }
    }
}

fn check_mail(
    raw: &RawMail,
    field: &str,
    errors: &mut Collector,
) -> Option<crate::mail::MailSettings> {
    use crate::mail::{ImapSettings, MailSettings, Secret, SmtpSettings, TlsMode};
    let tls = |value: &str, name: &str, errors: &mut Collector| {
        let mode = TlsMode::parse(value);
        if mode.is_none() {
            errors.push(
                format!("{field}.{name}"),
                format!("\"{value}\" is not tls, starttls or none"),
                "use tls (993/465), starttls (143/587) or, on loopback only, none",
            );
        }
        mode
    };
    let imap_tls = tls(&raw.imap_tls, "imap_tls", errors);
    let smtp_tls = tls(&raw.smtp_tls, "smtp_tls", errors);
    let imap_password = secret(
        &raw.imap_password,
        &raw.imap_password_file,
        &format!("{field}.imap_password"),
        true,
        errors,
    );
    let smtp_password = secret(
        &raw.smtp_password,
        &raw.smtp_password_file,
        &format!("{field}.smtp_password"),
        false,
        errors,
    );
    let (imap_tls, smtp_tls, Some(Some(imap_password)), Some(smtp_password)) =
        (imap_tls?, smtp_tls?, imap_password, smtp_password)
    else {
        return None;
    };
    let mut imap = ImapSettings::new(&raw.imap_host, &raw.imap_user, Secret::new(imap_password));
    imap.tls = imap_tls;
    imap.port = raw.imap_port.unwrap_or(imap_tls.imap_port());
    imap.mailbox = raw.mailbox.clone();
    imap.poll_interval = std::time::Duration::from_secs(raw.poll_secs.max(1));
    let mut smtp = SmtpSettings::new(&raw.smtp_host, &raw.from, &raw.from_name);
    smtp.tls = smtp_tls;
    smtp.port = raw.smtp_port.unwrap_or(smtp_tls.smtp_port());
    smtp.user = raw.smtp_user.clone();
    smtp.password = smtp_password.map(Secret::new);
    let settings = MailSettings::new(imap, smtp);
    if let Err(e) = settings.validate() {
        errors.push(
            field.to_owned(),
            e.to_string(),
            "see the mail settings in config/navbat.toml's comments",
        );
        return None;
    }
    Some(settings)
}
