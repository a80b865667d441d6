//! One received message, parsed: what the request module needs and nothing else.
//!
//! Parsing is pure (bytes in, value out) and never panics on bad input: `mail-parser` is
//! lenient and fuzzed upstream, and the property test below feeds it mangled mail. All text
//! comes out as UTF-8 whatever the charset (windows-1251, koi8-r, UTF-8, ...), with control
//! characters removed (Postgres refuses NUL in text) and line ends as `\n`.

use super::{EmailAddress, MailError};
use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};
use std::fmt;

/// The text of a message that could not be parsed at all (see [`Inbound::unreadable`]).
pub const UNREADABLE_TEXT: &str = "(unreadable message)";

/// Longest subject kept (in characters); longer ones are cut.
const SUBJECT_MAX_CHARS: usize = 998;

/// A file attached to a received message.
#[derive(Clone, PartialEq, Eq)]
pub struct InboundAttachment {
    /// The file name the sender gave (decoded), or `attachment-N` when none.
    pub file_name: String,
    /// `type/subtype`, lower case; `application/octet-stream` when none was given.
    pub media_type: String,
    /// The decoded content.
    pub bytes: Vec<u8>,
}

/// Prints the type and size only: a file name can name a person.
impl fmt::Debug for InboundAttachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Attachment({}, {} bytes)",
            self.media_type,
            self.bytes.len()
        )
    }
}

/// A received message, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The Message-ID without angle brackets, or `sha256:<hex>` of the raw bytes when the
    /// message has none: stable for the same bytes, so a refetched message is recognised.
    pub message_id: String,
    /// The first id of `In-Reply-To`, without angle brackets.
    pub in_reply_to: Option<String>,
    /// The ids of `References`, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// The sender's address (`From`); `None` when the message has no usable one.
    pub from_addr: Option<EmailAddress>,
    /// The sender's display name, when given.
    pub from_name: Option<String>,
    /// `Reply-To`, when it differs from `From` (web forms and lists set it).
    pub reply_to: Option<EmailAddress>,
    /// The subject, one line; empty when there is none.
    pub subject: String,
    /// The plain text: every text/plain body part, or the HTML converted to text when the
    /// message has HTML only.
    pub text: String,
    /// `Date`, in milliseconds since the Unix epoch, when present and valid.
    pub date_ms: Option<i64>,
    /// Attached files (and inline images), in message order.
    pub attachments: Vec<InboundAttachment>,
    /// Written by a program, not a person: a bounce, an out-of-office reply, a list
    /// (`Auto-Submitted`, `Precedence: bulk|junk|list`, a delivery report, a mailer-daemon
    /// sender). Never answer these automatically (RFC 3834), or two robots answer each
    /// other forever.
    pub auto_submitted: bool,
}

impl Inbound {
    /// The address an answer goes to: `Reply-To` when given, else `From`.
    pub fn answer_to(&self) -> Option<&EmailAddress> {
        self.reply_to.as_ref().or(self.from_addr.as_ref())
    }

    /// The ids this message answers, nearest first (`In-Reply-To`, then `References`
    /// newest to oldest), without repeats: what a request is looked up by.
    pub fn thread_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        let candidates = self.in_reply_to.iter().chain(self.references.iter().rev());
        for id in candidates {
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
        ids
    }

    /// A message that could not be parsed, kept rather than dropped (C2): its id is the
    /// SHA-256 of the bytes, its subject the raw `Subject:` line if one can be found, its
    /// text [`UNREADABLE_TEXT`], and the raw bytes are attached as `message.eml` so that
    /// an operator can still open it.
    pub fn unreadable(raw: &[u8]) -> Inbound {
        Inbound {
            message_id: raw_message_id(raw),
            in_reply_to: None,
            references: Vec::new(),
            from_addr: None,
            from_name: None,
            reply_to: None,
            subject: raw_subject(raw).unwrap_or_default(),
            text: UNREADABLE_TEXT.to_string(),
            date_ms: None,
            attachments: vec![InboundAttachment {
                file_name: "message.eml".to_string(),
                media_type: "message/rfc822".to_string(),
                bytes: raw.to_vec(),
            }],
            auto_submitted: false,
        }
    }

    /// [`parse`], or [`Inbound::unreadable`] when the bytes are not mail.
    pub fn parse_or_unreadable(raw: &[u8]) -> Inbound {
        parse(raw).unwrap_or_else(|_| Inbound::unreadable(raw))
    }
}

/// Masks the sender and never prints the text, the subject or file names (D18): only
/// their sizes.
impl fmt::Debug for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbound")
            .field("message_id", &self.message_id)
            .field("in_reply_to", &self.in_reply_to)
            .field("references", &self.references)
            .field("from_addr", &self.from_addr)
            .field("from_name", &self.from_name.as_deref().map(mask_name))
            .field("reply_to", &self.reply_to)
            .field("subject_chars", &self.subject.chars().count())
            .field("text_chars", &self.text.chars().count())
            .field("date_ms", &self.date_ms)
            .field("attachments", &self.attachments)
            .field("auto_submitted", &self.auto_submitted)
            .finish()
    }
}

fn mask_name(name: &str) -> String {
    match name.chars().next() {
        Some(first) => format!("{first}***"),
        None => String::new(),
    }
}

/// `sha256:<hex>` of the raw bytes: the id of a message without a Message-ID.
pub fn raw_message_id(raw: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(raw)))
}

/// Parses one message (the bytes an IMAP `BODY[]` fetch returns).
///
/// Fails only when the bytes are not mail at all: empty, or without any of `From`,
/// `Subject`, `Date` and `Message-ID`. Anything else parses, however odd.
pub fn parse(raw: &[u8]) -> Result<Inbound, MailError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(MailError::Unparseable { reason: "empty" });
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(MailError::Unparseable {
            reason: "neither headers nor a body",
        })?;
    if message.from().is_none()
        && message.subject().is_none()
        && message.date().is_none()
        && message.message_id().is_none()
    {
        return Err(MailError::Unparseable {
            reason: "none of From, Subject, Date and Message-ID",
        });
    }

    let message_id = message
        .message_id()
        .map(normalise_id)
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| raw_message_id(raw));
    let in_reply_to = ids(message.in_reply_to()).into_iter().next();
    let references = ids(message.references());

    let from = message.from().and_then(|a| a.first());
    let from_addr = from
        .and_then(|a| a.address())
        .map(one_line)
        .filter(|a| !a.is_empty())
        .map(EmailAddress::new);
    let from_name = from
        .and_then(|a| a.name())
        .map(one_line)
        .filter(|n| !n.is_empty());
    let reply_to = message
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(one_line)
        .filter(|a| !a.is_empty())
        .map(EmailAddress::new)
        .filter(|r| Some(r) != from_addr.as_ref());

    let subject: String = one_line(message.subject().unwrap_or(""))
        .chars()
        .take(SUBJECT_MAX_CHARS)
        .collect();
    let date_ms = message
        .date()
        .filter(|d| d.is_valid())
        .and_then(|d| d.to_timestamp().checked_mul(1000));
    let auto_submitted = is_automatic(&message, from_addr.as_ref());

    Ok(Inbound {
        message_id,
        in_reply_to,
        references,
        from_addr,
        from_name,
        reply_to,
        subject,
        text: body_text(&message),
        date_ms,
        attachments: attachments(&message),
        auto_submitted,
    })
}

/// All text bodies joined (HTML-only bodies come back from `body_text` converted to
/// text: tags, scripts and styles dropped, entities decoded).
fn body_text(message: &Message<'_>) -> String {
    let parts: Vec<String> = (0..message.text_body_count())
        .filter_map(|i| message.body_text(i))
        .map(|t| clean_text(&t))
        .filter(|t| !t.trim().is_empty())
        .collect();
    parts.join("\n\n")
}

fn attachments(message: &Message<'_>) -> Vec<InboundAttachment> {
    message
        .attachments()
        .enumerate()
        .map(|(i, part)| {
            let media_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .map(|t| one_line(&t).to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "application/octet-stream".to_string());
            let file_name = part
                .attachment_name()
                .map(file_name_only)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("attachment-{}", i + 1));
            InboundAttachment {
                file_name,
                media_type,
                bytes: part.contents().to_vec(),
            }
        })
        .collect()
}

/// RFC 3834 and common practice: is this mail from a program?
fn is_automatic(message: &Message<'_>, from: Option<&EmailAddress>) -> bool {
    let raw = |name: &str| {
        message
            .header_raw(name)
            .map(|v| v.trim().to_ascii_lowercase())
    };
    let auto_submitted = raw("Auto-Submitted").is_some_and(|v| !v.starts_with("no"));
    let bulk = raw("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list"));
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    let daemon = from.is_some_and(|a| {
        let local = a
            .expose()
            .split('@')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        matches!(local.as_str(), "mailer-daemon" | "postmaster")
    });
    auto_submitted || bulk || report || daemon
}

/// The ids of an id-list header, normalised, empty ones dropped.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<String> = match value {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    raw.iter()
        .map(|id| normalise_id(id))
        .filter(|id| !id.is_empty())
        .collect()
}

/// An id without angle brackets, blanks or control characters, so that it can go back
/// into an `In-Reply-To` header as is.
fn normalise_id(id: &str) -> String {
    id.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control() && *c != '<' && *c != '>')
        .collect()
}

/// One line: control characters and line breaks become spaces, runs of blanks one space.
fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text with `\n` line ends and no control characters other than tab and newline.
fn clean_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// A file name without any directory part (`../../etc/passwd` is `passwd`).
fn file_name_only(name: &str) -> String {
    let name = one_line(name);
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    match base {
        "." | ".." => String::new(),
        other => other.to_string(),
    }
}

/// The raw `Subject:` line of the header block, for a message that did not parse.
fn raw_subject(raw: &[u8]) -> Option<String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..head_end]);
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("subject")
                .then(|| one_line(value))
        })
        .map(|s| s.chars().take(SUBJECT_MAX_CHARS).collect())
        .filter(|s: &String| !s.is_empty())
}

#[cfg(test)]
mod tests;
