//! The published service rules (C4-C7) as data: one [`SlaRules`] per tenant.

use crate::schedule::ClockTime;

use super::types::Priority;

/// Whether a number of days counts calendar days or working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayKind {
    /// Every day counts, working or not (`calendar`).
    Calendar,
    /// Only days with working hours count (`working`).
    Working,
}

impl DayKind {
    /// The accepted names.
    pub const NAMES: [&'static str; 2] = ["calendar", "working"];

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Calendar => "calendar",
            DayKind::Working => "working",
        }
    }

    /// Parses a name from [`DayKind::NAMES`].
    pub fn parse(name: &str) -> Option<DayKind> {
        match name {
            "calendar" => Some(DayKind::Calendar),
            "working" => Some(DayKind::Working),
            _ => None,
        }
    }
}

/// An exact share of a budget, in parts per million (so rules compare and hash exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Share(u32);

impl Share {
    /// One whole.
    pub const ONE: Share = Share(1_000_000);

    /// A share of `ppm` parts per million; `None` above one whole.
    pub fn from_per_million(ppm: u32) -> Option<Share> {
        (ppm <= Share::ONE.0).then_some(Share(ppm))
    }

    /// A share given as a fraction, `0.0..=1.0`, rounded to the nearest part per million;
    /// `None` for anything else (NaN included).
    pub fn from_fraction(fraction: f64) -> Option<Share> {
        if !(0.0..=1.0).contains(&fraction) {
            return None;
        }
        // In 0..=1_000_000 after the check above.
        Share::from_per_million((fraction * 1_000_000.0).round() as u32)
    }

    /// Parts per million.
    pub fn per_million(self) -> u32 {
        self.0
    }

    /// The share as a fraction.
    pub fn as_fraction(self) -> f64 {
        f64::from(self.0) / 1_000_000.0
    }

    /// This share of `amount`, rounded down.
    pub fn of(self, amount: u64) -> u64 {
        // At most `amount`, so it fits.
        (u128::from(amount) * u128::from(self.0) / 1_000_000) as u64
    }
}

/// How a clock's deadline is set, before pauses extend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// This many seconds, round the clock (C6 critical).
    CalendarSeconds(u64),
    /// This many working seconds (C4, C6 high and normal).
    WorkingSeconds(u64),
    /// Until the close of the N-th working day after the start day
    /// ([`super::BusinessCalendar::add_working_days`]; C6 low, C7 in working days).
    WorkingDays(u32),
    /// Until the end of the N-th calendar day after the start day
    /// ([`super::BusinessCalendar::add_calendar_days`]; C7 in calendar days).
    CalendarDays(u32),
    /// Until this local time of the next working day (C5).
    NextWorkingDayAt(ClockTime),
}

/// A tenant's service rules. The default is the CRPT-Turon support line's (C4-C7).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SlaRules {
    /// C4: first answer to an e-mail, Telegram or web request within this many working
    /// seconds (600: 10 working minutes).
    pub first_answer_working_secs: u64,
    /// C5: a request that arrives outside working hours is contacted by this local time of the
    /// next working day (10:00). Replaces C4 for that request.
    pub out_of_hours_contact_by: ClockTime,
    /// C6 critical: resolved within this many seconds, round the clock (4 hours).
    pub critical_calendar_secs: u64,
    /// C6 high: resolved within this many working seconds (8 working hours).
    pub high_working_secs: u64,
    /// C6 normal: resolved within this many working seconds (24 working hours).
    pub normal_working_secs: u64,
    /// C6 low: resolved within this many working days (2).
    pub low_working_days: u32,
    /// C7: a catalogue card is moderated within this many days of its (re)submission (5).
    pub moderation_days: u32,
    /// C7: whether those are calendar or working days (calendar).
    pub moderation_day_kind: DayKind,
    /// Whether clocks stop while the request waits for the customer (yes).
    pub pause_while_waiting: bool,
    /// A running clock is near breach once at most this share of its budget is left (0.2).
    pub near_breach_share: Share,
}

impl Default for SlaRules {
    fn default() -> SlaRules {
        SlaRules {
            first_answer_working_secs: 10 * 60,
            out_of_hours_contact_by: ClockTime::parse("10:00").unwrap_or(ClockTime::END_OF_DAY),
            critical_calendar_secs: 4 * 3600,
            high_working_secs: 8 * 3600,
            normal_working_secs: 24 * 3600,
            low_working_days: 2,
            moderation_days: 5,
            moderation_day_kind: DayKind::Calendar,
            pause_while_waiting: true,
            near_breach_share: Share(200_000),
        }
    }
}

impl SlaRules {
    /// The resolution budget of a priority (C6).
    pub fn resolution_budget(&self, priority: Priority) -> Budget {
        match priority {
            Priority::Critical => Budget::CalendarSeconds(self.critical_calendar_secs),
            Priority::High => Budget::WorkingSeconds(self.high_working_secs),
            Priority::Normal => Budget::WorkingSeconds(self.normal_working_secs),
            Priority::Low => Budget::WorkingDays(self.low_working_days),
        }
    }

    /// The moderation budget (C7).
    pub fn moderation_budget(&self) -> Budget {
        match self.moderation_day_kind {
            DayKind::Calendar => Budget::CalendarDays(self.moderation_days),
            DayKind::Working => Budget::WorkingDays(self.moderation_days),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_published_rules() {
        let rules = SlaRules::default();
        assert_eq!(rules.first_answer_working_secs, 600);
        assert_eq!(rules.out_of_hours_contact_by.to_string(), "10:00");
        assert_eq!(
            rules.resolution_budget(Priority::Critical),
            Budget::CalendarSeconds(14_400)
        );
        assert_eq!(
            rules.resolution_budget(Priority::High),
            Budget::WorkingSeconds(28_800)
        );
        assert_eq!(
            rules.resolution_budget(Priority::Normal),
            Budget::WorkingSeconds(86_400)
        );
        assert_eq!(
            rules.resolution_budget(Priority::Low),
            Budget::WorkingDays(2)
        );
        assert_eq!(rules.moderation_budget(), Budget::CalendarDays(5));
        assert!(rules.pause_while_waiting);
        assert_eq!(rules.near_breach_share.as_fraction(), 0.2);
    }

    #[test]
    fn shares_are_exact_and_bounded() {
        let fifth = Share::from_fraction(0.2).unwrap();
        assert_eq!(fifth.per_million(), 200_000);
        assert_eq!(fifth.of(600), 120);
        assert_eq!(fifth.of(7), 1);
        assert_eq!(Share::ONE.of(u64::MAX), u64::MAX);
        for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert_eq!(Share::from_fraction(bad), None, "{bad}");
        }
        assert_eq!(Share::from_per_million(1_000_001), None);
    }

    #[test]
    fn day_kind_names() {
        for name in DayKind::NAMES {
            assert_eq!(DayKind::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(DayKind::parse("business"), None);
    }
}
