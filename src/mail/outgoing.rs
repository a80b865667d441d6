//! Answers by e-mail: one [`Outgoing`] becomes one MIME message sent through SMTP.
//!
//! The caller chooses the Message-ID, so it is known (and stored with the request) before
//! the first attempt and is the same on every retry: the customer's reply carries it in
//! `In-Reply-To`, and a retry after a lost `250` can be recognised by the receiver. Bodies
//! are UTF-8 `text/plain`; lettre picks quoted-printable or base64 for non-ASCII text and
//! encodes Cyrillic or Uzbek subjects and names as RFC 2047 words, file names per RFC 2231.

use super::error::quote_server;
use super::{EmailAddress, MailError, MailSettings, SmtpSettings, TlsMode};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox as LettreMailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;

/// A file attached to an answer.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingAttachment {
    /// The file name shown to the customer.
    pub file_name: String,
    /// `type/subtype`, e.g. `application/pdf`.
    pub media_type: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// Prints the type and size only.
impl fmt::Debug for OutgoingAttachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Attachment({}, {} bytes)",
            self.media_type,
            self.bytes.len()
        )
    }
}

/// One answer to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The customer's address.
    pub to_addr: EmailAddress,
    /// The customer's name, when known.
    pub to_name: Option<String>,
    /// The subject (any script; encoded as needed).
    pub subject: String,
    /// The text, UTF-8.
    pub text: String,
    /// Our Message-ID without angle brackets, e.g. from [`message_id_for`]; the same on
    /// every attempt.
    pub message_id: String,
    /// The Message-ID answered (the customer's), without angle brackets.
    pub in_reply_to: Option<String>,
    /// The thread so far, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// Files to attach.
    pub attachments: Vec<OutgoingAttachment>,
    /// Sent by a program (an automatic acknowledgement), not written by an operator: adds
    /// `Auto-Submitted: auto-replied` (RFC 3834) so that the customer's auto-responder
    /// stays quiet.
    pub auto_reply: bool,
}

/// Masks the recipient and never prints the subject or the text (D18).
impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("to_addr", &self.to_addr)
            .field("message_id", &self.message_id)
            .field("in_reply_to", &self.in_reply_to)
            .field("references", &self.references)
            .field("subject_chars", &self.subject.chars().count())
            .field("text_chars", &self.text.chars().count())
            .field("attachments", &self.attachments)
            .field("auto_reply", &self.auto_reply)
            .finish()
    }
}

/// A Message-ID for our own mail: `unique@domain-of-from_addr` (no angle brackets), where
/// `unique` is something the caller already has and keeps, such as
/// `req-42.answer-3`. Characters not allowed in an id are replaced by `-`.
pub fn message_id_for(unique: &str, from_addr: &str) -> String {
    let domain = from_addr
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
        .unwrap_or("navbat.invalid");
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_graphic() && !"<>@()[]\\,;:\"".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("{}@{}", clean(unique), clean(domain))
}

/// The message as it goes on the wire (CRLF line ends), for archiving it with the
/// request. The `Date` header is the time of the call.
pub fn render(smtp: &SmtpSettings, out: &Outgoing) -> Result<Vec<u8>, MailError> {
    Ok(build(smtp, out)?.formatted())
}

/// Sends one answer. A [`MailError::SmtpPermanent`] (a 5xx reply, e.g. an unknown
/// recipient) must not be retried; everything else may be, with the same `out`.
pub async fn send(settings: &MailSettings, out: &Outgoing) -> Result<(), MailError> {
    let smtp = &settings.smtp;
    let message = build(smtp, out)?;
    let transport = transport(settings)?;
    match transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) => Err(classify(&smtp.server(), &e)),
    }
}

/// A 5xx is permanent, except a refused login (530, 534, 535, 538): that is our account's
/// problem, fixed by an administrator, and the message should go out afterwards.
fn classify(server: &str, e: &lettre::transport::smtp::Error) -> MailError {
    let detail = quote_server(&e.to_string());
    let server = server.to_string();
    let code = e.status().map(u16::from);
    match code {
        Some(code @ (530 | 534 | 535 | 538)) => MailError::SmtpLogin {
            server,
            code,
            detail,
        },
        Some(code) if e.is_permanent() => MailError::SmtpPermanent {
            server,
            code,
            detail,
        },
        code => MailError::SmtpTransient {
            server,
            code,
            detail,
        },
    }
}

fn transport(settings: &MailSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
    let smtp = &settings.smtp;
    let server = smtp.server();
    let tls = match smtp.tls {
        TlsMode::None => Tls::None,
        TlsMode::StartTls => Tls::Required(tls_parameters(smtp, &server)?),
        TlsMode::Tls => Tls::Wrapper(tls_parameters(smtp, &server)?),
    };
    let helo = smtp
        .helo_name
        .clone()
        .or_else(|| {
            smtp.from_addr
                .rsplit_once('@')
                .map(|(_, domain)| domain.to_string())
        })
        .unwrap_or_else(|| "localhost".to_string());
    // builder_dangerous: no TLS preset; `tls` above sets exactly what was configured.
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(settings.io_timeout))
        .hello_name(ClientId::Domain(helo));
    if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}

fn tls_parameters(smtp: &SmtpSettings, server: &str) -> Result<TlsParameters, MailError> {
    let setup = |e: lettre::transport::smtp::Error| MailError::TlsSetup {
        server: server.to_string(),
        detail: e.to_string(),
    };
    let mut params =
        TlsParameters::builder(smtp.host.clone()).certificate_store(CertificateStore::WebpkiRoots);
    if let Some(path) = &smtp.ca_file {
        let pem = super::tls::read_ca_file(server, path)?;
        params = params.add_root_certificate(Certificate::from_pem(&pem).map_err(setup)?);
    }
    params.build_rustls().map_err(setup)
}

/// The lettre message for `out`, From the support line.
fn build(smtp: &SmtpSettings, out: &Outgoing) -> Result<Message, MailError> {
    let invalid =
        |field: &'static str, problem: String| MailError::InvalidOutgoing { field, problem };
    let from_addr: Address = smtp.from_addr.parse().map_err(|_| {
        invalid(
            "mail.smtp.from_addr",
            "is not an e-mail address (like support@example.uz)".into(),
        )
    })?;
    let to_addr: Address = out.to_addr.expose().trim().parse().map_err(|_| {
        invalid(
            "to_addr",
            format!("{} is not an e-mail address", out.to_addr.masked()),
        )
    })?;
    let from = LettreMailbox::new(
        Some(one_line(&smtp.from_name)).filter(|n| !n.is_empty()),
        from_addr,
    );
    let to = LettreMailbox::new(
        out.to_name
            .as_deref()
            .map(one_line)
            .filter(|n| !n.is_empty()),
        to_addr,
    );

    let message_id = checked_id("message_id", &out.message_id)?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(one_line(&out.subject))
        .message_id(Some(format!("<{message_id}>")));
    if let Some(parent) = &out.in_reply_to {
        let parent = checked_id("in_reply_to", parent)?;
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !out.references.is_empty() {
        let refs: Vec<String> = out
            .references
            .iter()
            .map(|r| checked_id("references", r).map(|r| format!("<{r}>")))
            .collect::<Result<_, _>>()?;
        builder = builder.references(refs.join(" "));
    }
    if out.auto_reply {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-replied".to_string(),
        ));
    }

    let text = out.text.replace("\r\n", "\n");
    let built = if out.attachments.is_empty() {
        builder.header(ContentType::TEXT_PLAIN).body(text)
    } else {
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(text));
        for a in &out.attachments {
            let media_type = ContentType::parse(&a.media_type).map_err(|_| {
                invalid(
                    "attachments",
                    format!("media type {:?} is not type/subtype", a.media_type),
                )
            })?;
            parts = parts.singlepart(
                Attachment::new(one_line(&a.file_name)).body(a.bytes.clone(), media_type),
            );
        }
        builder.multipart(parts)
    };
    built.map_err(|e| invalid("message", e.to_string()))
}

/// A Message-ID as given (angle brackets allowed around it), checked so that it cannot
/// break the header it goes into.
fn checked_id(field: &'static str, id: &str) -> Result<String, MailError> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let fine = !id.is_empty()
        && id.len() <= 250
        && id
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '<' && c != '>');
    if fine {
        Ok(id.to_string())
    } else {
        Err(MailError::InvalidOutgoing {
            field,
            problem: format!(
                "{id:?} is not a Message-ID (printable ASCII, no blanks or angle brackets)"
            ),
        })
    }
}

/// Header text on one line: a line break in a subject or name must not start a header.
fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse;

    fn smtp() -> SmtpSettings {
        SmtpSettings::new("127.0.0.1", "support@navbat.example", "Qo'llab-quvvatlash")
    }

    fn answer() -> Outgoing {
        Outgoing {
            to_addr: EmailAddress::new("ivan.petrov@example.ru"),
            to_name: Some("Иван Петров".into()),
            subject: "Re: Не могу войти в личный кабинет".into(),
            text: "Здравствуйте, Иван!\nПопробуйте ещё раз.\nRoʻyxatdan oʻting.\n".into(),
            message_id: "req-42.answer-1@navbat.example".into(),
            in_reply_to: Some("0a1b2c3d$4e5f$ru1251@example.ru".into()),
            references: vec![
                "first@example.ru".into(),
                "0a1b2c3d$4e5f$ru1251@example.ru".into(),
            ],
            attachments: Vec::new(),
            auto_reply: false,
        }
    }

    #[test]
    fn rendered_answer_threads_and_round_trips() {
        let raw = render(&smtp(), &answer()).unwrap();
        let head = String::from_utf8_lossy(&raw);
        let head = head.split("\r\n\r\n").next().unwrap();
        assert!(head.is_ascii(), "headers must be 7-bit: {head}");
        assert!(
            head.contains("Message-ID: <req-42.answer-1@navbat.example>"),
            "{head}"
        );
        assert!(
            head.contains("In-Reply-To: <0a1b2c3d$4e5f$ru1251@example.ru>"),
            "{head}"
        );
        assert!(
            head.contains("Content-Type: text/plain; charset=utf-8"),
            "{head}"
        );

        let back = parse(&raw).unwrap();
        assert_eq!(back.message_id, "req-42.answer-1@navbat.example");
        assert_eq!(
            back.in_reply_to.as_deref(),
            Some("0a1b2c3d$4e5f$ru1251@example.ru")
        );
        assert_eq!(
            back.references,
            vec!["first@example.ru", "0a1b2c3d$4e5f$ru1251@example.ru"]
        );
        assert_eq!(back.subject, "Re: Не могу войти в личный кабинет");
        assert_eq!(
            back.text,
            "Здравствуйте, Иван!\nПопробуйте ещё раз.\nRoʻyxatdan oʻting.\n"
        );
        assert_eq!(back.from_addr.unwrap().expose(), "support@navbat.example");
        assert_eq!(back.from_name.as_deref(), Some("Qo'llab-quvvatlash"));
        assert!(!back.auto_submitted);
    }

    #[test]
    fn attachments_and_the_auto_reply_mark() {
        let mut out = answer();
        out.auto_reply = true;
        out.attachments.push(OutgoingAttachment {
            file_name: "javob.pdf".into(),
            media_type: "application/pdf".into(),
            bytes: b"%PDF-1.4 test".to_vec(),
        });
        let back = parse(&render(&smtp(), &out).unwrap()).unwrap();
        assert!(back.auto_submitted);
        assert_eq!(back.attachments.len(), 1);
        assert_eq!(back.attachments[0].file_name, "javob.pdf");
        assert_eq!(back.attachments[0].media_type, "application/pdf");
        assert_eq!(back.attachments[0].bytes, b"%PDF-1.4 test");
        assert!(back.text.starts_with("Здравствуйте"));
    }

    #[test]
    fn header_injection_is_impossible() {
        let mut out = answer();
        out.subject = "Hi\r\nBcc: victim@example.com".into();
        let raw = render(&smtp(), &out).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("\r\nBcc:"), "{text}");

        let mut out = answer();
        out.in_reply_to = Some("a@b>\r\nBcc: x@y".into());
        let e = render(&smtp(), &out).unwrap_err();
        assert!(e.is_permanent());
        assert!(e.to_string().contains("in_reply_to"), "{e}");
    }

    #[test]
    fn a_bad_recipient_is_permanent_and_masked() {
        let mut out = answer();
        out.to_addr = EmailAddress::new("ivan.petrov at example.ru");
        let e = render(&smtp(), &out).unwrap_err();
        assert!(e.is_permanent());
        assert!(!e.to_string().contains("petrov"), "{e}");
        let shown = format!("{out:?}");
        assert!(
            !shown.contains("petrov") && !shown.contains("Здравствуйте"),
            "{shown}"
        );
    }

    #[test]
    fn message_ids_for_our_mail() {
        assert_eq!(
            message_id_for("req-42.answer-1", "support@navbat.example"),
            "req-42.answer-1@navbat.example"
        );
        assert_eq!(message_id_for("a b<c>", "nobody"), "a-b-c-@navbat.invalid");
    }
}
