//! The e-mail channel (C1, C2): each tenant's mailbox is read over IMAP ([`crate::mail`]);
//! a message becomes a request, or lands on the request it answers (found by `In-Reply-To`
//! and `References`, which navbat's replies carry, or by the request number in the
//! subject). The mailbox marks a message seen only after this returns `Ok`, which is after
//! the request step is on disk; a message fetched again (a crash in between) is known by its
//! Message-ID and changes nothing.

use super::attach;
use super::{Change, Channel, Direction, Message, NewRequest, Requester, Requests};
use crate::mail::Inbound;
use std::path::Path;

/// Where the files of a tenant's mail go and how large they may be.
#[derive(Debug, Clone)]
pub struct MailIntake {
    /// Tenant.
    pub tenant: String,
    /// Attachments directory.
    pub attachments_dir: std::path::PathBuf,
    /// Largest attachment taken.
    pub attachment_max_bytes: u64,
}

/// The request number in a subject (`Re: [support-261206-0007] ...`).
pub fn number_in_subject(subject: &str, tenant: &str) -> Option<String> {
    let start = subject.find(&format!("[{tenant}-"))? + 1;
    let rest = &subject[start..];
    let end = rest.find(']')?;
    let id = &rest[..end];
    id.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        .then(|| id.to_owned())
}

/// Keeps the attachments that pass the checks; the refused ones are named in the text.
fn attachments(m: &Inbound, dir: &Path, limit: u64) -> (Vec<attach::Attachment>, Vec<String>) {
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for a in &m.attachments {
        let name = a.file_name.clone();
        match attach::check(&a.bytes, &name, limit) {
            Ok(checked) => match attach::keep(dir, &checked, &a.bytes) {
                Ok(()) => kept.push(checked),
                Err(e) => refused.push(format!("{}: {e}", attach::clean_name(&name))),
            },
            Err(e) => refused.push(format!("{}: {e}", attach::clean_name(&name))),
        }
    }
    (kept, refused)
}

/// Registers one received mail. `Err` leaves it unseen in the mailbox for the next poll.
pub async fn intake(
    requests: &Requests,
    setup: &MailIntake,
    m: Inbound,
) -> Result<(), super::RequestError> {
    let external = m.message_id.clone();
    let key = format!("msg:{external}");
    if requests.by_key(&key).is_some() {
        return Ok(());
    }
    let mut thread: Vec<&str> = m.references.iter().map(String::as_str).collect();
    if let Some(r) = &m.in_reply_to {
        thread.push(r);
    }
    let found = thread
        .iter()
        .rev()
        .find_map(|x| requests.by_external(x))
        // The number in the subject (the tenant's own prefix): also a request that left
        // memory long ago, which `inbound` loads from the database.
        .or_else(|| number_in_subject(&m.subject, &setup.tenant));
    if m.auto_submitted && found.is_none() {
        // A bounce or an out-of-office reply that answers nothing of ours: not a request.
        metrics::counter!("navbat_requests_refused_total", "channel" => "email", "reason" => "auto_submitted")
            .increment(1);
        return Ok(());
    }
    let (files, refused) = attachments(&m, &setup.attachments_dir, setup.attachment_max_bytes);
    let mut body: String = m.text.chars().take(100_000).collect();
    for r in &refused {
        body.push_str(&format!("\n[fayl olinmadi / файл не принят: {r}]"));
    }
    let message = Message {
        uid: String::new(),
        direction: Direction::In,
        channel: Channel::Email,
        author: None,
        body,
        external_id: Some(external.clone()),
        attachments: files,
        to: None,
    };
    if let Some(id) = found {
        let change = Change::Message {
            message: message.clone(),
        };
        match requests.inbound(&key, &id, change).await {
            Ok(_) => return Ok(()),
            // A number that names no request: the mail starts a new one.
            Err(super::RequestError::Unknown(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let address = m.answer_to().map(|a| a.expose().to_owned());
    let cyrillic = m
        .text
        .chars()
        .chain(m.subject.chars())
        .any(|c| ('\u{0400}'..='\u{04FF}').contains(&c));
    let subject = if m.subject.trim().is_empty() {
        m.text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect()
    } else {
        m.subject.chars().take(200).collect()
    };
    let new = NewRequest::from_customer(
        &setup.tenant,
        Channel::Email,
        subject,
        Requester {
            name: m.from_name.clone(),
            email: address,
            ..Requester::default()
        },
        if cyrillic { "ru" } else { "uz" },
        message,
    );
    let (id, fresh) = requests
        .intake(Some(&format!("mail:{external}")), new)
        .await?;
    if fresh {
        tracing::info!(request = %id, tenant = %setup.tenant, "e-mail request registered");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_in_subjects() {
        assert_eq!(
            number_in_subject("Re: [support-261206-0007] Kodlar", "support").as_deref(),
            Some("support-261206-0007")
        );
        assert_eq!(
            number_in_subject("Re: [dtm-261206-0007] x", "support"),
            None
        );
        assert_eq!(number_in_subject("[support-1 <script>] x", "support"), None);
    }
}
