//! Everything that can go wrong in the e-mail channel, each saying which server and what
//! to check. Server replies quoted here have e-mail addresses masked (D18).

/// An error of the e-mail channel.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A setting is unusable.
    #[error("mail settings: {setting} {problem}")]
    Settings {
        /// The setting, as the configuration names it.
        setting: &'static str,
        /// What is wrong and what to give instead.
        problem: String,
    },
    /// The TLS client cannot be set up (the CA file).
    #[error(
        "TLS for {server}: {detail}; check ca_file (a readable PEM file with the CA certificate)"
    )]
    TlsSetup {
        /// `host:port`.
        server: String,
        /// What went wrong.
        detail: String,
    },
    /// No TCP connection to the IMAP server.
    #[error(
        "cannot reach IMAP server {server}: {detail}; check mail.imap host and port, and that \
         the server is up"
    )]
    ImapConnect {
        /// `host:port`.
        server: String,
        /// What went wrong.
        detail: String,
    },
    /// The TLS handshake (or STARTTLS) with the IMAP server failed.
    #[error(
        "TLS with IMAP server {server} failed: {detail}; check mail.imap tls (`tls` on 993, \
         `starttls` on 143) and the server's certificate (ca_file for a private CA)"
    )]
    ImapTls {
        /// `host:port`.
        server: String,
        /// What went wrong.
        detail: String,
    },
    /// The IMAP server refused the login.
    #[error(
        "IMAP server {server} refused the login of {user:?}: {detail}; check mail.imap user \
         and password"
    )]
    ImapLogin {
        /// `host:port`.
        server: String,
        /// Our login name (the support line's account, not a customer's).
        user: String,
        /// The server's answer.
        detail: String,
    },
    /// The folder cannot be selected.
    #[error(
        "IMAP server {server} cannot open folder {mailbox:?}: {detail}; check mail.imap \
         mailbox (INBOX, or a folder this account has)"
    )]
    ImapMailbox {
        /// `host:port`.
        server: String,
        /// The folder.
        mailbox: String,
        /// The server's answer.
        detail: String,
    },
    /// A command failed or the connection broke; the next attempt opens a new connection.
    #[error(
        "IMAP server {server}: {during} failed: {detail}; the connection is opened again on \
         the next attempt"
    )]
    Imap {
        /// `host:port`.
        server: String,
        /// The step (`UID SEARCH`, `UID FETCH`, ...).
        during: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// The IMAP server did not answer in time.
    #[error(
        "IMAP server {server} did not answer {during} within {secs} s; the connection is \
         opened again on the next attempt (raise mail.io_timeout for a slow server)"
    )]
    ImapTimeout {
        /// `host:port`.
        server: String,
        /// The step.
        during: &'static str,
        /// The timeout.
        secs: u64,
    },
    /// The folder was re-created since the UID was read (its UIDVALIDITY changed), so the
    /// UID may name another message now; nothing was changed.
    #[error(
        "IMAP folder {mailbox:?} on {server} was re-created (UIDVALIDITY changed); its \
         messages are fetched again and must be matched by Message-ID"
    )]
    UidValidityChanged {
        /// `host:port`.
        server: String,
        /// The folder.
        mailbox: String,
    },
    /// The bytes are not an e-mail message.
    #[error("not an e-mail message: {reason}")]
    Unparseable {
        /// Why.
        reason: &'static str,
    },
    /// An outgoing message cannot be built from what was given; retrying will not help.
    #[error("outgoing mail: {field} {problem}")]
    InvalidOutgoing {
        /// The field of `Outgoing` (or the setting) at fault.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The SMTP server refused the message for good (a 5xx reply): do not retry it.
    #[error(
        "SMTP server {server} refused the message permanently ({code}): {detail}; it is not \
         retried: check the recipient's address"
    )]
    SmtpPermanent {
        /// `host:port`.
        server: String,
        /// The reply code (5xx).
        code: u16,
        /// The server's reply.
        detail: String,
    },
    /// The SMTP server refused our login; retried, since fixing the account fixes it.
    #[error(
        "SMTP server {server} refused the login ({code}): {detail}; check mail.smtp user and \
         password (the message is kept and retried)"
    )]
    SmtpLogin {
        /// `host:port`.
        server: String,
        /// The reply code.
        code: u16,
        /// The server's reply.
        detail: String,
    },
    /// The message was not sent this time (a 4xx reply, a broken connection, TLS, a
    /// timeout): retry later.
    #[error(
        "SMTP server {server} did not take the message this time: {detail}; retry later (if \
         it lasts, check mail.smtp host, port, tls and ca_file)"
    )]
    SmtpTransient {
        /// `host:port`.
        server: String,
        /// The reply code, when the server replied.
        code: Option<u16>,
        /// What went wrong.
        detail: String,
    },
}

impl MailError {
    /// True when retrying the same thing cannot help: the SMTP server refused the message
    /// for good, the message or the settings are invalid, or the bytes are not mail.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            MailError::SmtpPermanent { .. }
                | MailError::InvalidOutgoing { .. }
                | MailError::Settings { .. }
                | MailError::Unparseable { .. }
                | MailError::TlsSetup { .. }
        )
    }

    /// True when a later attempt may succeed (servers down, 4xx replies, timeouts, a
    /// refused login that an administrator can fix).
    pub fn is_transient(&self) -> bool {
        !self.is_permanent()
    }
}

/// Server text made safe to quote: addresses masked, one line, at most 300 characters.
pub(crate) fn quote_server(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let masked = super::mask_addresses(one_line.trim());
    if masked.chars().count() > 300 {
        let cut: String = masked.chars().take(300).collect();
        format!("{cut}...")
    } else {
        masked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_only_when_retrying_cannot_help() {
        let perm = MailError::SmtpPermanent {
            server: "s:25".into(),
            code: 550,
            detail: "no".into(),
        };
        assert!(perm.is_permanent() && !perm.is_transient());
        let temp = MailError::SmtpTransient {
            server: "s:25".into(),
            code: Some(451),
            detail: "later".into(),
        };
        assert!(temp.is_transient());
        let login = MailError::SmtpLogin {
            server: "s:25".into(),
            code: 535,
            detail: "bad".into(),
        };
        assert!(login.is_transient());
    }

    #[test]
    fn quoted_server_text_is_one_masked_bounded_line() {
        let q = quote_server("550 <ivan@example.com>\r\n no such user");
        assert_eq!(q, "550 <i***@example.com>   no such user");
        assert!(quote_server(&"x".repeat(1000)).len() < 310);
    }
}
