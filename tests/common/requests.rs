//! Requests in tests: the support line's channels as config, customers' mails, reading the
//! inbox.

use super::desk::Session;
use super::mail::{Dovecot, SmtpSink, IMAP_PASSWORD, IMAP_USER};
use super::telegram::{BotApi, TOKEN};

/// The support line's address.
pub const SUPPORT_FROM: &str = "support@navbat.example.uz";

/// The support tenant's channels as TOML: its mailbox, its relay and its bot.
pub fn channels(
    dovecot: Option<&Dovecot>,
    smtp: Option<&SmtpSink>,
    bot: Option<&BotApi>,
) -> String {
    let mut toml = String::new();
    if let Some(b) = bot {
        toml.push_str(&format!(
            "\n[tenant.requests.telegram]\napi = \"{}\"\ntoken = \"{TOKEN}\"\npoll_timeout_secs = 1\n",
            b.url()
        ));
    }
    if let (Some(d), Some(s)) = (dovecot, smtp) {
        toml.push_str(&format!(
            "\n[tenant.requests.mail]\nimap_host = \"127.0.0.1\"\nimap_port = {}\nimap_tls = \"none\"\n\
             imap_user = \"{IMAP_USER}\"\nimap_password = \"{IMAP_PASSWORD}\"\npoll_secs = 1\n\
             smtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_tls = \"none\"\n\
             from = \"{SUPPORT_FROM}\"\nfrom_name = \"Qo'llab-quvvatlash\"\n",
            d.port, s.port
        ));
    }
    toml
}

/// A plain UTF-8 mail from a customer to the support line.
pub fn mail(id: &str, from: &str, subject: &str, body: &str, reply_to: Option<&str>) -> Vec<u8> {
    let mut m = format!(
        "From: Dilnoza <{from}>\r\nTo: {SUPPORT_FROM}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\n\
         Date: Sun, 06 Dec 2026 09:00:00 +0500\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    );
    if let Some(r) = reply_to {
        m.push_str(&format!("In-Reply-To: <{r}>\r\nReferences: <{r}>\r\n"));
    }
    m.push_str("\r\n");
    m.push_str(body);
    m.push_str("\r\n");
    m.into_bytes()
}

/// The ids of the requests in an inbox page.
pub fn inbox_ids(s: &Session, query: &str) -> Vec<String> {
    let body = s.get(&format!("/requests{query}")).body;
    body.match_indices("data-id=\"")
        .map(|(i, _)| body[i + 9..].split('"').next().unwrap().to_owned())
        .collect()
}

/// A header's value in a raw mail.
pub fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .map(|l| l[name.len() + 1..].trim())
}
