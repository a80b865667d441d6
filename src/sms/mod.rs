//! Sending information to callers by SMS (D12).
//!
//! * [`E164`]: a validated phone number (Uzbekistan, `+998`, unless the number says
//!   otherwise); nothing is queued for a number that does not validate.
//! * [`Template`]: message texts in Uzbek and Russian with `{name}` placeholders.
//! * [`Outbox`]: the pure retry state of every message (`now` passed in): exponential
//!   backoff, a limit of attempts, one idempotency key per message that the gateway sees on
//!   every attempt, so a resend after a restart cannot become a second SMS.
//! * [`SmsRecord`]: each step of a message, kept durably by the store (journal, then the
//!   `sms_messages` table; `store::outbox`), so a restart resumes retries with the same keys.
//! * [`gateway`]: the provider interface and a generic HTTP gateway.
//! * [`actor`]: the actor that drives sends and records delivery status as events.

pub mod actor;
pub mod gateway;
pub mod limits;

use crate::privacy::PhoneNumber;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The default country code for numbers written without one: Uzbekistan.
pub const DEFAULT_COUNTRY_CODE: &str = "998";

/// A phone number in E.164 form (`+` and 8-15 digits), masked in `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct E164(PhoneNumber);

/// Why a number cannot receive an SMS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Characters other than digits, spaces, `-`, `(`, `)` and a leading `+`.
    #[error("the number contains characters other than digits")]
    NotDigits,
    /// Too short or too long for E.164 once the country code is added.
    #[error("the number has {0} digits; E.164 allows 8 to 15 with the country code")]
    Length(usize),
    /// A local Uzbek number must have 9 digits after +998.
    #[error("a number in +{DEFAULT_COUNTRY_CODE} must have 9 digits after the country code")]
    UzbekLength,
}

impl E164 {
    /// Validates `raw` (a caller id from SIP, or a number typed by a person). Numbers without
    /// `+` and a country code are taken as Uzbek: `901234567`, `8 90 123 45 67` (old trunk
    /// prefix) and `998901234567` all become `+998901234567`.
    pub fn parse(raw: &str) -> Result<E164, NumberError> {
        let trimmed = raw.trim();
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(NumberError::NotDigits),
            }
        }
        let full = if plus {
            digits
        } else if digits.len() == 9 {
            format!("{DEFAULT_COUNTRY_CODE}{digits}")
        } else if digits.len() == 10 && digits.starts_with('8') {
            format!("{DEFAULT_COUNTRY_CODE}{}", &digits[1..])
        } else if let Some(international) = digits.strip_prefix("00") {
            international.to_string()
        } else {
            digits
        };
        if !(8..=15).contains(&full.len()) {
            return Err(NumberError::Length(full.len()));
        }
        if full.starts_with(DEFAULT_COUNTRY_CODE) && full.len() != DEFAULT_COUNTRY_CODE.len() + 9 {
            return Err(NumberError::UzbekLength);
        }
        Ok(E164(PhoneNumber::new(format!("+{full}"))))
    }

    /// The full number, for the gateway only; never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "E164({})", self.0.masked())
    }
}

impl std::fmt::Display for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.masked())
    }
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

/// One message in the outbox.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Idempotency key: unique per message, sent to the gateway with every attempt.
    pub id: String,
    /// Full E.164 number (kept for sending; events and logs carry it masked).
    pub to: String,
    /// The text.
    pub text: String,
    /// What it is for.
    pub kind: MessageKind,
    /// The tenant it is sent for.
    pub tenant: String,
}

/// One step of a message, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum SmsRecord {
    /// A new message; durable before its first attempt.
    Queued {
        /// The message.
        message: Message,
    },
    /// An attempt failed and will be retried.
    Attempted {
        /// Message id.
        id: String,
        /// Attempts so far.
        attempts: u32,
        /// Next attempt not before (Unix ms).
        due_ms: i64,
        /// What went wrong.
        detail: String,
    },
    /// The gateway took it.
    Sent {
        /// Message id.
        id: String,
        /// Attempts it took.
        attempts: u32,
    },
    /// Given up.
    Failed {
        /// Message id.
        id: String,
        /// Attempts made.
        attempts: u32,
        /// Why.
        detail: String,
    },
}

impl SmsRecord {
    /// The message id.
    pub fn id(&self) -> &str {
        match self {
            SmsRecord::Queued { message } => &message.id,
            SmsRecord::Attempted { id, .. }
            | SmsRecord::Sent { id, .. }
            | SmsRecord::Failed { id, .. } => id,
        }
    }

    /// The step's name.
    pub fn step(&self) -> &'static str {
        match self {
            SmsRecord::Queued { .. } => "queued",
            SmsRecord::Attempted { .. } => "attempted",
            SmsRecord::Sent { .. } => "sent",
            SmsRecord::Failed { .. } => "failed",
        }
    }
}

/// The number masked (D18): a message printed while debugging does not leak it.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("to", &PhoneNumber::new(self.to.clone()))
            .field("kind", &self.kind)
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
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

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The gateway took the message.
    Accepted,
    /// Worth trying again (5xx, timeout, connection refused).
    Transient(String),
    /// Will never work (4xx other than 408/429).
    Permanent(String),
}

/// A message's state in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    message: Message,
    attempts: u32,
    /// Monotonic ms when the next attempt is due.
    due_ms: u64,
    in_flight: bool,
}

/// What the outbox decided about an attempt: record it and report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent; done.
    Sent {
        /// Attempts it took.
        attempts: u32,
    },
    /// Try again at `due_ms`.
    Retry {
        /// Attempts so far.
        attempts: u32,
        /// When.
        due_ms: u64,
        /// What went wrong.
        detail: String,
    },
    /// Given up.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// Why.
        detail: String,
    },
}

/// The pure retry state of all unsent messages. Bounded: [`Outbox::enqueue`] refuses beyond
/// `capacity`.
#[derive(Debug, Clone)]
pub struct Outbox {
    policy: RetryPolicy,
    capacity: usize,
    pending: BTreeMap<String, Pending>,
}

/// The outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the SMS outbox holds {0} unsent messages already")]
pub struct OutboxFull(pub usize);

impl Outbox {
    /// An empty outbox.
    pub fn new(policy: RetryPolicy, capacity: usize) -> Outbox {
        Outbox {
            policy,
            capacity,
            pending: BTreeMap::new(),
        }
    }

    /// Adds a message due at once, or restores one from the log with its attempt count.
    /// A message already in the outbox is left as it is (same idempotency key).
    pub fn enqueue(
        &mut self,
        now_ms: u64,
        message: Message,
        attempts: u32,
    ) -> Result<(), OutboxFull> {
        if self.pending.contains_key(&message.id) {
            return Ok(());
        }
        if self.pending.len() >= self.capacity {
            return Err(OutboxFull(self.capacity));
        }
        self.pending.insert(
            message.id.clone(),
            Pending {
                message,
                attempts,
                due_ms: now_ms,
                in_flight: false,
            },
        );
        Ok(())
    }

    /// Forgets a message (sent or given up, as found in the log).
    pub fn remove(&mut self, id: &str) {
        self.pending.remove(id);
    }

    /// Messages due at `now_ms` and not in flight; they are marked in flight.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<Message> {
        self.pending
            .values_mut()
            .filter(|p| !p.in_flight && p.due_ms <= now_ms)
            .map(|p| {
                p.in_flight = true;
                p.message.clone()
            })
            .collect()
    }

    /// The result of an attempt on message `id` at `now_ms`.
    pub fn on_result(&mut self, now_ms: u64, id: &str, result: AttemptResult) -> Option<Outcome> {
        let p = self.pending.get_mut(id)?;
        p.in_flight = false;
        p.attempts += 1;
        let attempts = p.attempts;
        let outcome = match result {
            AttemptResult::Accepted => Outcome::Sent { attempts },
            AttemptResult::Permanent(detail) => Outcome::Failed { attempts, detail },
            AttemptResult::Transient(detail) if attempts >= self.policy.max_attempts => {
                Outcome::Failed { attempts, detail }
            }
            AttemptResult::Transient(detail) => {
                p.due_ms = now_ms + self.policy.backoff_ms(attempts);
                return Some(Outcome::Retry {
                    attempts,
                    due_ms: p.due_ms,
                    detail,
                });
            }
        };
        self.pending.remove(id);
        Some(outcome)
    }

    /// An unsent message by id.
    pub fn message(&self, id: &str) -> Option<&Message> {
        self.pending.get(id).map(|p| &p.message)
    }

    /// Unsent messages.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uzbek_numbers_in_every_usual_form() {
        for raw in [
            "+998901234567",
            "998901234567",
            "901234567",
            "8 90 123-45-67",
            "(90) 123 45 67",
            "00998901234567",
        ] {
            assert_eq!(
                E164::parse(raw).map(|n| n.expose().to_string()),
                Ok("+998901234567".to_string()),
                "{raw}"
            );
        }
    }

    #[test]
    fn bad_numbers_are_refused() {
        assert_eq!(E164::parse("anonymous"), Err(NumberError::NotDigits));
        assert_eq!(E164::parse("1001"), Err(NumberError::Length(4)));
        assert_eq!(E164::parse("+99890123456"), Err(NumberError::UzbekLength));
        assert!(E164::parse("+79161234567").is_ok());
    }

    #[test]
    fn numbers_are_masked_in_logs() {
        let n = E164::parse("901234567").unwrap();
        assert!(!format!("{n} {n:?}").contains("901234567"));
    }

    #[test]
    fn templates_render_in_the_callers_language_or_both() {
        let t = Template {
            uz: "Natijalar: {url}".into(),
            ru: "Результаты: {url}".into(),
        };
        let values = BTreeMap::from([("url", "https://dtm.uz".to_string())]);
        assert_eq!(t.render(Some("ru"), &values), "Результаты: https://dtm.uz");
        assert_eq!(
            t.render(None, &values),
            "Natijalar: https://dtm.uz\nРезультаты: https://dtm.uz"
        );
    }

    fn message(id: &str) -> Message {
        Message {
            id: id.into(),
            to: "+998901234567".into(),
            text: "t".into(),
            kind: MessageKind::MissedCall,
            tenant: "dtm".into(),
        }
    }

    #[test]
    fn transient_failures_back_off_then_give_up() {
        let policy = RetryPolicy {
            first_backoff_ms: 1_000,
            max_backoff_ms: 4_000,
            max_attempts: 4,
        };
        let mut o = Outbox::new(policy, 10);
        o.enqueue(0, message("a"), 0).unwrap();
        assert_eq!(o.take_due(0).len(), 1);
        assert!(o.take_due(0).is_empty(), "in flight is not taken twice");
        let mut now = 0;
        for (attempt, wait) in [(1, 1_000), (2, 2_000), (3, 4_000)] {
            let r = o.on_result(now, "a", AttemptResult::Transient("500".into()));
            assert_eq!(
                r,
                Some(Outcome::Retry {
                    attempts: attempt,
                    due_ms: now + wait,
                    detail: "500".into()
                })
            );
            assert!(o.take_due(now + wait - 1).is_empty());
            now += wait;
            assert_eq!(o.take_due(now).len(), 1);
        }
        let r = o.on_result(now, "a", AttemptResult::Transient("500".into()));
        assert!(matches!(r, Some(Outcome::Failed { attempts: 4, .. })));
        assert!(o.is_empty());
    }

    #[test]
    fn accepted_is_done_and_same_key_is_not_queued_twice() {
        let mut o = Outbox::new(RetryPolicy::default(), 10);
        o.enqueue(0, message("a"), 0).unwrap();
        o.enqueue(0, message("a"), 0).unwrap();
        assert_eq!(o.len(), 1);
        o.take_due(0);
        assert_eq!(
            o.on_result(5, "a", AttemptResult::Accepted),
            Some(Outcome::Sent { attempts: 1 })
        );
        assert!(o.is_empty());
    }

    #[test]
    fn a_full_outbox_refuses() {
        let mut o = Outbox::new(RetryPolicy::default(), 1);
        o.enqueue(0, message("a"), 0).unwrap();
        assert_eq!(o.enqueue(0, message("b"), 0), Err(OutboxFull(1)));
    }
}
