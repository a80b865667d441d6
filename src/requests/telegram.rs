//! The Telegram channel (C1): a bot per tenant over the Bot API, long-polling `getUpdates`,
//! types from `frankenstein`, requests over navbat's own HTTP client (`awc`).
//!
//! * A private chat's first message registers a request; its later messages land on the same
//!   request (reopening it when it was solved), like an e-mail reply.
//! * Every message's key is `msg:tg:<chat>:<message>`: a redelivered update changes nothing.
//!   The update offset moves past an update (Telegram then forgets it) only after its request
//!   step is on disk; an update that could not be kept is fetched again.
//! * The bot answers with the request number and, where the tenant asks who is writing (C8),
//!   asks for the name and STIR, in the user's language (Russian when Telegram says the user's
//!   language is Russian, Uzbek otherwise).
//! * `429` waits `retry_after`; `403` (the user blocked the bot) is a permanent failure of that
//!   message, recorded on it.

use super::{Change, Channel, Direction, Message, NewRequest, Requester, Requests};
use frankenstein::response::{ErrorResponse, MethodResponse};
use frankenstein::updates::{Update, UpdateContent};
use std::sync::Arc;
use std::time::Duration;

/// A tenant's bot.
#[derive(Clone)]
pub struct TelegramSettings {
    /// Tenant.
    pub tenant: String,
    /// API base (`https://api.telegram.org`).
    pub api: String,
    /// The bot's token.
    pub token: String,
    /// Long-poll timeout.
    pub poll_timeout_secs: u32,
    /// Ask for the name and STIR (the tenant requires caller details).
    pub ask_details: bool,
}

impl std::fmt::Debug for TelegramSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TelegramSettings({} {})", self.tenant, self.api)
    }
}

/// What a Bot API call can end in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelegramError {
    /// 429: wait this many seconds.
    #[error("Telegram asks to wait {0} s (429)")]
    RetryAfter(u64),
    /// 403: the user blocked the bot (or the bot was removed from the chat).
    #[error("the user blocked the bot: {0}")]
    Blocked(String),
    /// Another 4xx: the request itself is wrong; retrying will not help.
    #[error("Telegram refused: {0}")]
    Refused(String),
    /// Connection failed, timed out, or 5xx.
    #[error("Telegram did not answer: {0}; check the API address and the network")]
    Transient(String),
}

impl TelegramError {
    /// Whether trying again later can help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TelegramError::RetryAfter(_) | TelegramError::Transient(_)
        )
    }
}

/// A Bot API client (create it on an actix thread).
pub struct Bot {
    client: awc::Client,
    base: String,
}

impl Bot {
    /// A client for the settings' bot.
    pub fn new(settings: &TelegramSettings, timeout: Duration) -> Bot {
        let tls = crate::tls::tls_config(None).ok();
        let mut connector = awc::Connector::new();
        if let Some(tls) = tls {
            connector = connector.rustls_0_23(tls);
        }
        Bot {
            client: awc::Client::builder()
                .connector(connector)
                .timeout(timeout)
                .finish(),
            base: format!(
                "{}/bot{}",
                settings.api.trim_end_matches('/'),
                settings.token
            ),
        }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        body: &serde_json::Value,
    ) -> Result<T, TelegramError> {
        let mut resp = self
            .client
            .post(format!("{}/{method}", self.base))
            .send_json(body)
            .await
            .map_err(|e| TelegramError::Transient(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .map_err(|e| TelegramError::Transient(e.to_string()))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice::<MethodResponse<T>>(&bytes)
                .map(|r| r.result)
                .map_err(|e| TelegramError::Transient(format!("unreadable answer: {e}")));
        }
        let error = serde_json::from_slice::<ErrorResponse>(&bytes).ok();
        let description = error
            .as_ref()
            .map(|e| e.description.clone())
            .unwrap_or_else(|| format!("HTTP {status}"));
        match status {
            429 => Err(TelegramError::RetryAfter(
                error
                    .and_then(|e| e.parameters)
                    .and_then(|p| p.retry_after)
                    .map(u64::from)
                    .unwrap_or(5),
            )),
            403 => Err(TelegramError::Blocked(description)),
            400..=499 => Err(TelegramError::Refused(description)),
            _ => Err(TelegramError::Transient(description)),
        }
    }

    /// `getUpdates` from `offset`, waiting up to `timeout` seconds for one.
    pub async fn get_updates(
        &self,
        offset: i64,
        timeout: u32,
    ) -> Result<Vec<Update>, TelegramError> {
        self.call(
            "getUpdates",
            &serde_json::json!({
                "offset": offset,
                "timeout": timeout,
                "limit": 100,
                "allowed_updates": ["message"],
            }),
        )
        .await
    }

    /// `sendMessage` to a chat; returns the sent message's id.
    pub async fn send_message(&self, chat: i64, text: &str) -> Result<i32, TelegramError> {
        let sent: frankenstein::types::Message = self
            .call(
                "sendMessage",
                &serde_json::json!({ "chat_id": chat, "text": text }),
            )
            .await?;
        Ok(sent.message_id)
    }
}

fn texts(ru: bool) -> (&'static str, &'static str, &'static str, &'static str) {
    if ru {
        (
            "Здравствуйте! Напишите ваш вопрос одним сообщением: он будет зарегистрирован как обращение.",
            "Ваше обращение зарегистрировано. Номер:",
            "Сообщение добавлено к обращению",
            "Пожалуйста, напишите ваше имя, организацию и ИНН (СТИР, 9 цифр).",
        )
    } else {
        (
            "Assalomu alaykum! Savolingizni bitta xabarda yozing: u murojaat sifatida ro'yxatga olinadi.",
            "Murojaatingiz ro'yxatga olindi. Raqami:",
            "Xabar murojaatga qo'shildi",
            "Iltimos, ismingiz, tashkilotingiz va STIR (9 raqam)ni yozing.",
        )
    }
}

/// Handles one update; `Err` when it could not be kept (the offset must not move past it).
async fn handle(
    bot: &Bot,
    requests: &Requests,
    settings: &TelegramSettings,
    update: Update,
) -> Result<(), super::RequestError> {
    let UpdateContent::Message(m) = update.content else {
        return Ok(());
    };
    // Private chats only: a group's messages are not one person's request.
    if !matches!(m.chat.type_field, frankenstein::types::ChatType::Private) {
        return Ok(());
    }
    let chat = m.chat.id;
    let Some(text) = m.text.clone().or_else(|| m.caption.clone()) else {
        return Ok(());
    };
    let ru = m
        .from
        .as_ref()
        .and_then(|u| u.language_code.as_deref())
        .is_some_and(|l| l.starts_with("ru"));
    let (hello, registered, added, ask) = texts(ru);
    if text.trim() == "/start" {
        let _ = bot.send_message(chat, hello).await;
        return Ok(());
    }
    let external = format!("tg:{chat}:{}", m.message_id);
    if requests.by_key(&format!("msg:{external}")).is_some() {
        return Ok(());
    }
    let message = Message {
        uid: String::new(),
        direction: Direction::In,
        channel: Channel::Telegram,
        author: None,
        body: text.chars().take(10_000).collect(),
        external_id: Some(external.clone()),
        attachments: Vec::new(),
        to: None,
    };
    let chat_key = format!("tgchat:{}:{chat}", settings.tenant);
    if let Some(id) = requests.by_external(&chat_key) {
        if requests.head(&id).is_some() {
            requests
                .inbound(&format!("msg:{external}"), &id, Change::Message { message })
                .await?;
            let _ = bot.send_message(chat, &format!("{added} {id}")).await;
            return Ok(());
        }
    }
    let name = m.from.as_ref().map(|u| match &u.last_name {
        Some(last) => format!("{} {last}", u.first_name),
        None => u.first_name.clone(),
    });
    let subject: String = text.lines().next().unwrap_or("").chars().take(80).collect();
    let new = NewRequest::from_customer(
        &settings.tenant,
        Channel::Telegram,
        subject,
        Requester {
            name,
            telegram_chat: Some(chat),
            ..Requester::default()
        },
        if ru { "ru" } else { "uz" },
        message,
    );
    let (id, fresh) = requests
        .intake(Some(&chat_key_intake(&chat_key, &external)), new)
        .await?;
    if fresh {
        let mut reply = format!("{registered} {id}");
        if settings.ask_details {
            reply.push('\n');
            reply.push_str(ask);
        }
        let _ = bot.send_message(chat, &reply).await;
    }
    Ok(())
}

/// The intake key of a chat's first message (the chat key is taught to the book as an
/// external id of the request, so later messages find it).
fn chat_key_intake(chat_key: &str, external: &str) -> String {
    format!("{chat_key}:{external}")
}

/// Polls the bot's updates until the process ends.
pub async fn run(requests: Arc<Requests>, settings: TelegramSettings) {
    let timeout = settings.poll_timeout_secs;
    let bot = Bot::new(&settings, Duration::from_secs(u64::from(timeout) + 10));
    let mut offset: i64 = 0;
    let mut backoff = Duration::from_secs(1);
    tracing::info!(tenant = %settings.tenant, "telegram bot polling");
    loop {
        match bot.get_updates(offset, timeout).await {
            Ok(updates) => {
                backoff = Duration::from_secs(1);
                for u in updates {
                    let id = i64::from(u.update_id);
                    match handle(&bot, &requests, &settings, u).await {
                        Ok(()) => offset = offset.max(id + 1),
                        Err(e) => {
                            tracing::warn!(error = %e, tenant = %settings.tenant, "telegram message not kept; fetched again");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            break;
                        }
                    }
                }
            }
            Err(TelegramError::RetryAfter(secs)) => {
                tokio::time::sleep(Duration::from_secs(secs.min(300))).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, tenant = %settings.tenant, "telegram getUpdates failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}
