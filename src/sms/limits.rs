//! How many texts one number may receive: navbat must not become a way to send SMS to any
//! number at the client's cost. A caller's number comes from the INVITE's From, which anyone
//! can forge, so each number gets at most one missed-call text per window and at most a few
//! texts of any kind per day (Asia/Tashkent or the tenant's day, as the caller counts it).
//!
//! Pure: the time and the day come in; the map is bounded ([`MAX_NUMBERS`]), forgetting the
//! oldest days first. The counts live in memory: a restart forgets them (the worst case is one
//! more day's cap per restart).

pub use crate::config::SmsLimitPolicy;
use std::collections::HashMap;

/// Numbers tracked at most.
pub const MAX_NUMBERS: usize = 200_000;

/// Whether a text may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsVerdict {
    /// Send it.
    Send,
    /// A missed-call text went to this number less than the window ago.
    MissedCallTooSoon,
    /// The number had its texts for today.
    DailyCapReached,
}

impl SmsVerdict {
    /// Why the text may not go, in words for its status event; `None` for [`SmsVerdict::Send`].
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            SmsVerdict::Send => None,
            SmsVerdict::MissedCallTooSoon => {
                Some("a missed-call text went to this number within sms.missed_call_window_secs")
            }
            SmsVerdict::DailyCapReached => {
                Some("this number had its sms.daily_cap_per_number texts today")
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct NumberLog {
    day: i64,
    sent_today: u32,
    last_missed_call_ms: Option<u64>,
}

/// The per-number counts.
#[derive(Debug)]
pub struct SmsLimiter {
    policy: SmsLimitPolicy,
    numbers: HashMap<String, NumberLog>,
}

impl SmsLimiter {
    /// A limiter with these limits.
    pub fn new(policy: SmsLimitPolicy) -> SmsLimiter {
        SmsLimiter {
            policy,
            numbers: HashMap::new(),
        }
    }

    /// Decides on a text to `number` at `now_ms` on day `day` (days since the epoch in the
    /// tenant's zone); `missed_call`: it is a missed-call text. A `Send` is counted.
    pub fn decide(&mut self, now_ms: u64, day: i64, number: &str, missed_call: bool) -> SmsVerdict {
        let policy = self.policy;
        if !self.numbers.contains_key(number) && self.numbers.len() >= MAX_NUMBERS {
            self.numbers.retain(|_, log| log.day >= day);
            while self.numbers.len() >= MAX_NUMBERS {
                let Some(victim) = self.numbers.keys().next().cloned() else {
                    break;
                };
                self.numbers.remove(&victim);
            }
        }
        let log = self.numbers.entry(number.to_owned()).or_insert(NumberLog {
            day,
            sent_today: 0,
            last_missed_call_ms: None,
        });
        if log.day != day {
            log.day = day;
            log.sent_today = 0;
        }
        if missed_call {
            if let Some(last) = log.last_missed_call_ms {
                if now_ms.saturating_sub(last) < policy.missed_call_window_ms {
                    return SmsVerdict::MissedCallTooSoon;
                }
            }
        }
        if log.sent_today >= policy.daily_cap_per_number {
            return SmsVerdict::DailyCapReached;
        }
        log.sent_today += 1;
        if missed_call {
            log.last_missed_call_ms = Some(now_ms);
        }
        SmsVerdict::Send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    fn limiter() -> SmsLimiter {
        SmsLimiter::new(SmsLimitPolicy {
            missed_call_window_ms: HOUR,
            daily_cap_per_number: 3,
        })
    }

    #[test]
    fn one_missed_call_text_per_number_per_window() {
        let mut l = limiter();
        assert_eq!(l.decide(0, 0, "998901234567", true), SmsVerdict::Send);
        for t in [1, 1_000, HOUR - 1] {
            assert_eq!(
                l.decide(t, 0, "998901234567", true),
                SmsVerdict::MissedCallTooSoon
            );
        }
        assert_eq!(
            l.decide(5, 0, "998907654321", true),
            SmsVerdict::Send,
            "another number"
        );
        assert_eq!(l.decide(HOUR, 0, "998901234567", true), SmsVerdict::Send);
    }

    #[test]
    fn a_daily_cap_over_every_kind_that_resets_with_the_day() {
        let mut l = limiter();
        assert_eq!(l.decide(0, 10, "n", false), SmsVerdict::Send);
        assert_eq!(l.decide(1, 10, "n", false), SmsVerdict::Send);
        assert_eq!(l.decide(2, 10, "n", true), SmsVerdict::Send);
        assert_eq!(l.decide(3, 10, "n", false), SmsVerdict::DailyCapReached);
        assert_eq!(
            l.decide(2 * HOUR, 10, "n", true),
            SmsVerdict::DailyCapReached,
            "the window passed, the cap holds"
        );
        assert_eq!(
            l.decide(3 * HOUR, 11, "n", false),
            SmsVerdict::Send,
            "a new day"
        );
    }

    #[test]
    fn the_map_stays_bounded() {
        let mut l = limiter();
        for i in 0..(MAX_NUMBERS + 10) {
            l.decide(0, 0, &format!("n{i}"), true);
        }
        assert!(l.numbers.len() <= MAX_NUMBERS);
    }
}
