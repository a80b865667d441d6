//! What the e-mail channel needs to know: the IMAP folder requests arrive in and the SMTP
//! relay answers leave through. Plain typed values; reading them from the configuration
//! file is the caller's business.

use super::MailError;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How a connection to a mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS on 993, SMTP submission on 465): the default, as
    /// RFC 8314 recommends.
    #[default]
    Tls,
    /// Plain TCP upgraded with STARTTLS before any credential is sent (IMAP on 143,
    /// submission on 587). A server that does not offer STARTTLS is an error, never a
    /// silent fall-back to plain text.
    StartTls,
    /// No TLS: passwords and mail cross the network in clear. Meant for loopback test
    /// servers; [`MailSettings::validate`] refuses it with credentials on other hosts.
    None,
}

impl TlsMode {
    /// Parses the configuration spelling: `tls`, `starttls` or `none`.
    pub fn parse(text: &str) -> Option<TlsMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "tls" => Some(TlsMode::Tls),
            "starttls" => Some(TlsMode::StartTls),
            "none" => Some(TlsMode::None),
            _ => None,
        }
    }

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Tls => "tls",
            TlsMode::StartTls => "starttls",
            TlsMode::None => "none",
        }
    }

    /// The usual IMAP port for this mode (993 with TLS, 143 otherwise).
    pub fn imap_port(self) -> u16 {
        match self {
            TlsMode::Tls => 993,
            TlsMode::StartTls | TlsMode::None => 143,
        }
    }

    /// The usual SMTP port for this mode (465, 587, 25).
    pub fn smtp_port(self) -> u16 {
        match self {
            TlsMode::Tls => 465,
            TlsMode::StartTls => 587,
            TlsMode::None => 25,
        }
    }
}

/// A password. `Debug` and `Display` print `***`; [`Secret::expose`] gives the value to the
/// one place that sends it to a server.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The password itself, for logging in only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The IMAP folder customers' mail arrives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapSettings {
    /// Server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// How the connection is protected.
    pub tls: TlsMode,
    /// Login name.
    pub user: String,
    /// Login password.
    pub password: Secret,
    /// The folder read, `INBOX` by default.
    pub mailbox: String,
    /// Pause between two polls when the folder had nothing more to give.
    pub poll_interval: Duration,
    /// At most this many messages are fetched per poll (bounds memory per poll).
    pub fetch_limit: usize,
    /// Extra trusted CA certificates (PEM), for a server with a private CA.
    pub ca_file: Option<PathBuf>,
}

impl ImapSettings {
    /// IMAPS on port 993, folder `INBOX`, a poll every 30 s, 20 messages per poll.
    pub fn new(host: impl Into<String>, user: impl Into<String>, password: Secret) -> Self {
        ImapSettings {
            host: host.into(),
            port: TlsMode::Tls.imap_port(),
            tls: TlsMode::Tls,
            user: user.into(),
            password,
            mailbox: "INBOX".to_string(),
            poll_interval: Duration::from_secs(30),
            fetch_limit: 20,
            ca_file: None,
        }
    }

    /// `host:port`, as errors and logs name the server.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The SMTP relay answers are sent through, and who they are from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Server host name (also the name its TLS certificate must carry).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// How the connection is protected.
    pub tls: TlsMode,
    /// Login name, when the relay wants one.
    pub user: Option<String>,
    /// Login password, with `user`.
    pub password: Option<Secret>,
    /// The support line's address, put in `From`.
    pub from_addr: String,
    /// The display name in `From` (e.g. `Qo'llab-quvvatlash xizmati`).
    pub from_name: String,
    /// The name given in `EHLO`; `None`: the domain of `from_addr`.
    pub helo_name: Option<String>,
    /// Extra trusted CA certificates (PEM), for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
}

impl SmtpSettings {
    /// Submission with implicit TLS on port 465, no login.
    pub fn new(
        host: impl Into<String>,
        from_addr: impl Into<String>,
        from_name: impl Into<String>,
    ) -> Self {
        SmtpSettings {
            host: host.into(),
            port: TlsMode::Tls.smtp_port(),
            tls: TlsMode::Tls,
            user: None,
            password: None,
            from_addr: from_addr.into(),
            from_name: from_name.into(),
            helo_name: None,
            ca_file: None,
        }
    }

    /// `host:port`, as errors and logs name the server.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Everything the e-mail channel needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// Where requests are read.
    pub imap: ImapSettings,
    /// Where answers are sent.
    pub smtp: SmtpSettings,
    /// Longest wait for any one network step (connect, greeting, a command, a send).
    pub io_timeout: Duration,
    /// Ceiling of the backoff between reconnection attempts (it starts at 1 s and doubles).
    pub max_backoff: Duration,
}

impl MailSettings {
    /// Both halves, 60 s per network step, reconnection backoff up to 60 s.
    pub fn new(imap: ImapSettings, smtp: SmtpSettings) -> Self {
        MailSettings {
            imap,
            smtp,
            io_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(60),
        }
    }

    /// Checks what can be checked without a network: hosts, ports, names, limits, the
    /// `From` address, and that no password would cross a network in clear.
    pub fn validate(&self) -> Result<(), MailError> {
        let bad = |setting: &'static str, problem: &str| MailError::Settings {
            setting,
            problem: problem.to_string(),
        };
        let imap = &self.imap;
        if imap.host.trim().is_empty() {
            return Err(bad(
                "mail.imap.host",
                "is empty; give the IMAP server's name",
            ));
        }
        if imap.port == 0 {
            return Err(bad(
                "mail.imap.port",
                "is 0; give the IMAP port (993 or 143)",
            ));
        }
        if imap.user.is_empty() {
            return Err(bad("mail.imap.user", "is empty; give the mailbox login"));
        }
        if imap.mailbox.trim().is_empty() || imap.mailbox.contains(['\r', '\n']) {
            return Err(bad(
                "mail.imap.mailbox",
                "must be a folder name such as INBOX",
            ));
        }
        if imap.poll_interval.is_zero() {
            return Err(bad("mail.imap.poll_interval", "must be more than 0"));
        }
        if imap.fetch_limit == 0 {
            return Err(bad("mail.imap.fetch_limit", "must be at least 1"));
        }
        if imap.tls == TlsMode::None && !is_loopback(&imap.host) {
            return Err(bad(
                "mail.imap.tls",
                "is `none` for a server that is not on this machine: the password would \
                 cross the network in clear; use `tls` (port 993) or `starttls` (port 143)",
            ));
        }
        let smtp = &self.smtp;
        if smtp.host.trim().is_empty() {
            return Err(bad(
                "mail.smtp.host",
                "is empty; give the SMTP relay's name",
            ));
        }
        if smtp.port == 0 {
            return Err(bad(
                "mail.smtp.port",
                "is 0; give the SMTP port (465, 587 or 25)",
            ));
        }
        if smtp.user.is_some() != smtp.password.is_some() {
            return Err(bad(
                "mail.smtp.user",
                "and mail.smtp.password go together: give both or neither",
            ));
        }
        if smtp.tls == TlsMode::None && smtp.user.is_some() && !is_loopback(&smtp.host) {
            return Err(bad(
                "mail.smtp.tls",
                "is `none` with a login for a relay that is not on this machine: the \
                 password would cross the network in clear; use `tls` (465) or `starttls` (587)",
            ));
        }
        if smtp.from_addr.parse::<lettre::Address>().is_err() {
            return Err(bad(
                "mail.smtp.from_addr",
                "is not an e-mail address (like support@example.uz)",
            ));
        }
        if smtp.from_name.contains(['\r', '\n']) {
            return Err(bad("mail.smtp.from_name", "must be one line"));
        }
        if self.io_timeout.is_zero() {
            return Err(bad("mail.io_timeout", "must be more than 0"));
        }
        if self.max_backoff < Duration::from_secs(1) {
            return Err(bad("mail.max_backoff", "must be at least 1 s"));
        }
        Ok(())
    }
}

/// `localhost` or a loopback IP literal.
fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> MailSettings {
        let mut imap = ImapSettings::new("127.0.0.1", "support", Secret::new("pw"));
        imap.tls = TlsMode::None;
        imap.port = 1143;
        let mut smtp = SmtpSettings::new("localhost", "support@example.uz", "Support");
        smtp.tls = TlsMode::None;
        MailSettings::new(imap, smtp)
    }

    #[test]
    fn passwords_do_not_print() {
        let s = loopback();
        let shown = format!("{s:?} {}", s.imap.password);
        assert!(!shown.contains("pw\""), "{shown}");
        assert!(shown.contains("Secret(***)"));
        assert_eq!(s.imap.password.expose(), "pw");
    }

    #[test]
    fn defaults_are_tls_inbox_and_usual_ports() {
        let imap = ImapSettings::new("imap.example.uz", "u", Secret::new("p"));
        assert_eq!((imap.tls, imap.port), (TlsMode::Tls, 993));
        assert_eq!(imap.mailbox, "INBOX");
        let smtp = SmtpSettings::new("smtp.example.uz", "a@example.uz", "A");
        assert_eq!((smtp.tls, smtp.port), (TlsMode::Tls, 465));
        assert_eq!(TlsMode::StartTls.smtp_port(), 587);
        assert_eq!(TlsMode::parse(" STARTTLS "), Some(TlsMode::StartTls));
        assert_eq!(TlsMode::parse("ssl"), None);
    }

    #[test]
    fn loopback_plain_text_is_accepted() {
        loopback().validate().unwrap();
    }

    #[test]
    fn plain_text_login_across_a_network_is_refused() {
        let mut s = loopback();
        s.imap.host = "imap.example.uz".into();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("mail.imap.tls"), "{e}");

        let mut s = loopback();
        s.smtp.host = "smtp.example.uz".into();
        s.validate().unwrap(); // no login: an internal relay on port 25 is fine
        s.smtp.user = Some("u".into());
        s.smtp.password = Some(Secret::new("p"));
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("mail.smtp.tls"), "{e}");
    }

    #[test]
    fn errors_name_the_setting() {
        let mut s = loopback();
        s.smtp.from_addr = "support".into();
        assert!(s.validate().unwrap_err().to_string().contains("from_addr"));
        let mut s = loopback();
        s.imap.fetch_limit = 0;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("fetch_limit"));
        let mut s = loopback();
        s.smtp.user = Some("u".into());
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("go together"));
    }
}
