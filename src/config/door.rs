//! `[tenant.surge.door]`: the results-day offer at the door of the queue (issue 19).
//!
//! ```toml
//! [tenant.surge.door]
//! offer_above_secs = 60     # offer at queue entry when the expected wait is above this
//! sms_digit = "2"           # the key that takes the information by SMS
//! choice_secs = 6           # after the offer has played, how long a key still takes it (1-60)
//! # Callbacks that cannot be kept before today's closing time (from the tenant's hours; a
//! # line open round the clock closes at local midnight) are promised for this window of the
//! # next morning, in the tenant's time zone, as many as its staff can serve in it. Optional:
//! # without it such callers are offered the SMS only.
//! next_morning = { start = "08:00", end = "10:00" }
//! ```
//!
//! It needs `[tenant.surge.callback]` (its `digit` and `offer_after_secs` are the callback's
//! key and the in-queue offer's time). Without `[tenant.surge.door]` surge behaves as before.

use serde::Deserialize;
use std::time::Duration;

use super::error::Collector;
use super::menu::DtmfDigit;
use crate::schedule::ClockTime;

/// A tenant's door policy as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorConfig {
    /// Offer at queue entry when the expected wait is above this.
    pub offer_above: Duration,
    /// The key that takes the information by SMS.
    pub sms_digit: DtmfDigit,
    /// After the offer's prompt has played, how long a key still takes it; then the offer
    /// counts as declined and the caller waits on.
    pub choice_window: Duration,
    /// The next morning's callback window, local time; `None`: no such window.
    pub next_morning: Option<MorningWindow>,
}

/// The next morning's callback window, `start` before `end`, in the tenant's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MorningWindow {
    /// Local time the window opens.
    pub start: ClockTime,
    /// Local time it ends.
    pub end: ClockTime,
}

impl MorningWindow {
    /// The window's length.
    pub fn length(&self) -> Duration {
        Duration::from_secs(u64::from(self.end.minutes() - self.start.minutes()) * 60)
    }
}

/// `[tenant.surge.door]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDoor {
    #[serde(default = "default_offer_above")]
    pub offer_above_secs: u64,
    #[serde(default = "default_sms_digit")]
    pub sms_digit: String,
    #[serde(default = "default_choice_secs")]
    pub choice_secs: u64,
    pub next_morning: Option<RawWindow>,
}

/// `next_morning = { start, end }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindow {
    pub start: String,
    pub end: String,
}

/// From `loadgen sim --surge` (BENCHMARKS.md, "Results-day policy").
fn default_offer_above() -> u64 {
    60
}
fn default_sms_digit() -> String {
    "2".into()
}
/// As long as a menu waits for a key.
fn default_choice_secs() -> u64 {
    6
}
/// The longest choice window: a caller who has not keyed within a minute of the offer has
/// let it pass, and the channel is held meanwhile.
const MAX_CHOICE_SECS: u64 = 60;

/// Checks `[tenant.surge.door]` at `field` (`tenant.<id>.surge.door`): `callback_digit` is
/// the callback offer's key (`None`: no `[tenant.surge.callback]`), `self_service` the
/// surge self-service keys.
pub(crate) fn check_door(
    field: &str,
    raw: &RawDoor,
    callback_digit: Option<char>,
    self_service: &[char],
    errors: &mut Collector,
) -> Option<DoorConfig> {
    let before = errors.len();
    let Some(callback_digit) = callback_digit else {
        errors.push(
            field,
            "the door offer needs the callback offer (its key and offer_after_secs)",
            "add [tenant.surge.callback] with digit and offer_after_secs, or remove [tenant.surge.door]",
        );
        return None;
    };
    let sms_digit = DtmfDigit::parse(&raw.sms_digit);
    match sms_digit {
        None => errors.push(
            format!("{field}.sms_digit"),
            format!("\"{}\" is not a key", raw.sms_digit),
            format!("use one of {}", DtmfDigit::KEYS),
        ),
        Some(d) if d.as_char() == callback_digit => errors.push(
            format!("{field}.sms_digit"),
            format!("key {} is already the callback key", d.as_char()),
            "pick a key the callback offer and the self-service branches do not use, e.g. \"2\"",
        ),
        Some(d) if self_service.contains(&d.as_char()) => errors.push(
            format!("{field}.sms_digit"),
            format!("key {} is already a self-service key", d.as_char()),
            "pick a key the callback offer and the self-service branches do not use, e.g. \"2\"",
        ),
        Some(_) => {}
    }
    if raw.choice_secs == 0 || raw.choice_secs > MAX_CHOICE_SECS {
        errors.push(
            format!("{field}.choice_secs"),
            format!("{} s is outside 1 to {MAX_CHOICE_SECS} s", raw.choice_secs),
            "give the seconds a caller has to press a key after the offer has played, e.g. 6",
        );
    }
    let next_morning = raw.next_morning.as_ref().and_then(|w| {
        let at = format!("{field}.next_morning");
        let time = |key: &str, text: &str, errors: &mut Collector| {
            let t = ClockTime::parse(text);
            if t.is_none() {
                errors.push(
                    format!("{at}.{key}"),
                    format!("\"{text}\" is not a time of day"),
                    "write HH:MM in the tenant's time zone, e.g. \"08:00\"",
                );
            }
            t
        };
        let start = time("start", &w.start, errors);
        let end = time("end", &w.end, errors);
        let (start, end) = (start?, end?);
        if end <= start {
            errors.push(
                format!("{at}.end"),
                format!("the window ends ({}) before it starts ({})", w.end, w.start),
                "set end later than start on the same morning, e.g. start = \"08:00\", end = \"10:00\"",
            );
            return None;
        }
        Some(MorningWindow { start, end })
    });
    (errors.len() == before).then(|| DoorConfig {
        offer_above: Duration::from_secs(raw.offer_above_secs),
        sms_digit: sms_digit.expect("checked"),
        choice_window: Duration::from_secs(raw.choice_secs),
        next_morning,
    })
}
