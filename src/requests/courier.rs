//! The courier: sends the outbound messages of requests (replies to the customer, letters to
//! the chancellery) by their channel, and records on each message whether it went
//! (`Change::Delivery`). A message is on disk, marked `queued`, before the courier sees it;
//! a failure that may pass (connection, 4xx of SMTP, 429 or 5xx of Telegram) is retried with
//! a growing pause (1 s doubling to 5 min, 12 attempts), a refusal is recorded at once. After
//! a restart, queued messages are handed to the courier again ([`Requests::restore`]); a
//! message carries its own Message-ID, so a mail sent twice across a crash threads as one.

use super::telegram::{Bot, TelegramError, TelegramSettings};
use super::{Change, Channel, Direction, Head, Requests};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Messages waiting for the courier at most (more stay queued on disk until a restart).
pub const QUEUE: usize = 1024;
const MAX_ATTEMPTS: u32 = 12;

/// One outbound message to send.
#[derive(Clone)]
pub struct Job {
    /// The request.
    pub request: String,
    /// Tenant.
    pub tenant: String,
    /// The message.
    pub message_uid: String,
    /// How it goes.
    pub channel: Channel,
    /// A reply or a letter.
    pub direction: Direction,
    /// E-mail address.
    pub to_email: Option<String>,
    /// Telegram chat.
    pub to_chat: Option<i64>,
    /// Subject line of a mail.
    pub subject: String,
    /// The text.
    pub body: String,
    /// Its Message-ID (a mail).
    pub message_id: Option<String>,
    /// The customer's last message (a mail's In-Reply-To).
    pub in_reply_to: Option<String>,
    /// The thread's ids (a mail's References).
    pub references: Vec<String>,
    /// Files to attach (kept under the attachments directory).
    pub attachments: Vec<super::attach::Attachment>,
    /// Attempts so far.
    pub attempts: u32,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Job({} {} {} attempt {})",
            self.request, self.message_uid, self.channel, self.attempts
        )
    }
}

impl Job {
    /// The job for an outbound message of `head` (none for a phone "reply", which records a
    /// call back, or a note).
    pub fn of(head: &Head, message: &super::Message) -> Option<Job> {
        if !matches!(message.direction, Direction::Out | Direction::Letter)
            || !matches!(message.channel, Channel::Email | Channel::Telegram)
        {
            return None;
        }
        let letter = message.direction == Direction::Letter;
        Some(Job {
            request: head.id.clone(),
            tenant: head.tenant.clone(),
            message_uid: message.uid.clone(),
            channel: message.channel,
            direction: message.direction,
            to_email: if letter {
                message.to.clone()
            } else {
                head.requester.email.clone()
            },
            to_chat: head.requester.telegram_chat,
            subject: if letter {
                format!("Murojaat / Обращение {}: {}", head.id, head.subject)
            } else {
                format!("Re: [{}] {}", head.id, head.subject)
            },
            body: message.body.clone(),
            message_id: message.external_id.clone(),
            in_reply_to: if letter {
                None
            } else {
                head.thread_ref.clone()
            },
            references: if letter {
                Vec::new()
            } else {
                head.references
                    .iter()
                    .filter(|r| r.contains('@') && !r.starts_with("tgchat:"))
                    .cloned()
                    .collect()
            },
            attachments: message.attachments.clone(),
            attempts: 0,
        })
    }
}

/// How the courier reaches each tenant's customers.
#[derive(Default)]
pub struct Transports {
    /// Telegram bots by tenant.
    pub telegram: HashMap<String, TelegramSettings>,
    /// Mail servers by tenant.
    pub mail: HashMap<String, crate::mail::MailSettings>,
    /// Where attachment contents are kept.
    pub attachments_dir: std::path::PathBuf,
}

enum Outcome {
    Sent,
    Retry(Duration, String),
    Failed(String),
}

async fn send_once(job: &Job, bots: &HashMap<String, Bot>, transports: &Transports) -> Outcome {
    match job.channel {
        Channel::Telegram => {
            let (Some(bot), Some(chat)) = (bots.get(&job.tenant), job.to_chat) else {
                return Outcome::Failed("no Telegram bot or chat for this request".to_owned());
            };
            match bot.send_message(chat, &job.body).await {
                Ok(_) => Outcome::Sent,
                Err(TelegramError::RetryAfter(s)) => Outcome::Retry(
                    Duration::from_secs(s.max(1)),
                    format!("429, retry after {s} s"),
                ),
                Err(e) if e.is_transient() => Outcome::Retry(Duration::ZERO, e.to_string()),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
        Channel::Email => {
            let (Some(settings), Some(to)) = (transports.mail.get(&job.tenant), &job.to_email)
            else {
                return Outcome::Failed("no mail server or address for this request".to_owned());
            };
            let out = crate::mail::Outgoing {
                to_addr: crate::mail::EmailAddress::new(to.clone()),
                to_name: None,
                subject: job.subject.clone(),
                text: job.body.clone(),
                message_id: job
                    .message_id
                    .clone()
                    .unwrap_or_else(|| format!("{}.{}@navbat", job.request, job.message_uid)),
                in_reply_to: job.in_reply_to.clone(),
                references: job.references.clone(),
                attachments: job
                    .attachments
                    .iter()
                    .filter_map(|a| {
                        let path = super::attach::path_of(&transports.attachments_dir, &a.sha256)?;
                        Some(crate::mail::OutgoingAttachment {
                            file_name: a.file_name.clone(),
                            media_type: a.media_type.clone(),
                            bytes: std::fs::read(path).ok()?,
                        })
                    })
                    .collect(),
                auto_reply: false,
            };
            match crate::mail::send(settings, &out).await {
                Ok(()) => Outcome::Sent,
                Err(e) if e.is_permanent() => Outcome::Failed(e.to_string()),
                Err(e) => Outcome::Retry(Duration::ZERO, e.to_string()),
            }
        }
        _ => Outcome::Sent,
    }
}

/// Sends jobs until the process ends. Runs on an actix thread (the HTTP client lives there).
pub async fn run(
    requests: Arc<Requests>,
    transports: Transports,
    tx: tokio::sync::mpsc::Sender<Job>,
    mut rx: tokio::sync::mpsc::Receiver<Job>,
) {
    let bots: HashMap<String, Bot> = transports
        .telegram
        .iter()
        .map(|(t, s)| (t.clone(), Bot::new(s, Duration::from_secs(30))))
        .collect();
    while let Some(mut job) = rx.recv().await {
        job.attempts += 1;
        let outcome = send_once(&job, &bots, &transports).await;
        let (state, detail) = match outcome {
            Outcome::Sent => ("sent", None),
            Outcome::Retry(wait, why) if job.attempts < MAX_ATTEMPTS => {
                let pause = wait
                    .max(Duration::from_secs(1 << (job.attempts - 1).min(8)))
                    .min(Duration::from_secs(300));
                tracing::warn!(request = %job.request, message = %job.message_uid, attempt = job.attempts, error = %why, "request message not sent; retrying");
                let again = tx.clone();
                actix::spawn(async move {
                    tokio::time::sleep(pause).await;
                    let _ = again.send(job).await;
                });
                continue;
            }
            Outcome::Retry(_, why) | Outcome::Failed(why) => ("failed", Some(why)),
        };
        metrics::counter!("navbat_request_messages_sent_total", "channel" => job.channel.as_str(), "state" => state)
            .increment(1);
        if let Some(why) = &detail {
            tracing::warn!(request = %job.request, message = %job.message_uid, error = %why, "request message given up");
        }
        let change = Change::Delivery {
            message_uid: job.message_uid.clone(),
            state: state.to_owned(),
            detail,
        };
        if let Err(e) = requests.change(&job.request, change, "system").await {
            tracing::warn!(error = %e, request = %job.request, "delivery not recorded");
        }
    }
}
