//! Property tests of [`BusinessCalendar`] against a plain minute-by-minute reference.
//!
//! The reference asks, for every minute from December 2025 to February 2028, "is the line
//! open?" the simplest way there is (local time of the minute, holiday list, moved-day list,
//! windows), then answers every question by counting minutes. All windows start and end on
//! whole minutes, so minute counts times 60 must equal the calendar's second counts.

use std::sync::OnceLock;

use jiff::civil::{date, Date, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use proptest::prelude::*;

use super::BusinessCalendar;
use crate::schedule::{ClockTime, Hours, OpeningWindow};

/// First minute of the reference range (UTC), and its length in minutes.
const RANGE_START: &str = "2025-12-01T00:00:00Z";
const RANGE_MINUTES: usize = 820 * 1440;
/// Longest duration tried, in minutes (45 days).
const MAX_SPAN: usize = 45 * 1440;

/// One test calendar: how it is configured, and the reference built from that.
struct Case {
    zone: TimeZone,
    hours: Hours,
    holidays: Vec<Date>,
    working_days: Vec<Date>,
    working_days_as: Weekday,
    calendar: BusinessCalendar,
    /// `open[i]`: the minute starting at `RANGE_START + i` minutes is working time.
    open: Vec<bool>,
    /// `prefix[i]`: working minutes before minute `i`.
    prefix: Vec<u32>,
    /// `dates[i]`: the local date of minute `i`.
    dates: Vec<Date>,
    /// `opens_day[i]`: minute `i` is the first working minute of its local date.
    opens_day: Vec<bool>,
}

impl Case {
    fn new(
        zone: TimeZone,
        hours: Hours,
        holidays: Vec<Date>,
        working_days: Vec<Date>,
        working_days_as: Weekday,
    ) -> Case {
        let calendar = BusinessCalendar::new(
            zone.clone(),
            &hours,
            &holidays,
            &working_days,
            working_days_as,
        );
        let mut case = Case {
            zone,
            hours,
            holidays,
            working_days,
            working_days_as,
            calendar,
            open: Vec::with_capacity(RANGE_MINUTES),
            prefix: Vec::with_capacity(RANGE_MINUTES + 1),
            dates: Vec::with_capacity(RANGE_MINUTES),
            opens_day: Vec::with_capacity(RANGE_MINUTES),
        };
        case.prefix.push(0);
        let mut count = 0;
        let mut day_seen_open: Option<Date> = None;
        for i in 0..RANGE_MINUTES {
            let t = minute(i);
            let open = case.open_by_the_book(t);
            let day = case.zone.to_datetime(t).date();
            count += u32::from(open);
            case.open.push(open);
            case.prefix.push(count);
            case.dates.push(day);
            case.opens_day.push(open && day_seen_open != Some(day));
            if open {
                day_seen_open = Some(day);
            }
        }
        case
    }

    /// Is the line open at `t`? Written the plain way, like `Tenant::is_open`.
    fn open_by_the_book(&self, t: Timestamp) -> bool {
        let local = self.zone.to_datetime(t);
        let day = local.date();
        if self.holidays.contains(&day) {
            return false;
        }
        let weekday = if self.working_days.contains(&day) {
            self.working_days_as
        } else {
            day.weekday()
        };
        let minute_of_day = local.hour() as u16 * 60 + local.minute() as u16;
        match &self.hours {
            Hours::Always => true,
            Hours::Weekly(windows) => windows.iter().any(|w| {
                w.days.contains(&weekday)
                    && w.open.minutes() <= minute_of_day
                    && minute_of_day < w.close.minutes()
            }),
        }
    }

    /// Working minutes in `[from, to)` (minute indexes).
    fn working_minutes(&self, from: usize, to: usize) -> u64 {
        u64::from(self.prefix[to] - self.prefix[from])
    }

    /// The first minute index `m >= from` with `k` working minutes in `[from, m)`.
    fn after_working_minutes(&self, from: usize, k: u32) -> Option<usize> {
        let target = self.prefix[from] + k;
        let m = self.prefix.partition_point(|&p| p < target);
        (m < self.prefix.len()).then_some(m.max(from))
    }

    /// The local date of minute index `i`.
    fn local_date(&self, i: usize) -> Date {
        self.dates[i]
    }
}

fn minute(i: usize) -> Timestamp {
    let start: Timestamp = RANGE_START.parse().unwrap();
    start
        .checked_add(jiff::SignedDuration::from_mins(i as i64))
        .unwrap()
}

fn tashkent() -> TimeZone {
    crate::schedule::parse_time_zone("Asia/Tashkent").unwrap()
}

fn window(days: &[Weekday], open: &str, close: &str) -> OpeningWindow {
    OpeningWindow {
        days: days.to_vec(),
        open: ClockTime::parse(open).unwrap(),
        close: ClockTime::parse(close).unwrap(),
    }
}

use Weekday::{Friday, Monday, Saturday, Sunday, Thursday, Tuesday, Wednesday};
const WEEKDAYS: [Weekday; 5] = [Monday, Tuesday, Wednesday, Thursday, Friday];

/// Dates the strategies aim at: holidays, moved days and the year boundaries.
const SPECIAL: [(i16, i8, i8); 12] = [
    (2025, 12, 31),
    (2026, 1, 1),
    (2026, 3, 9),
    (2026, 3, 20),
    (2026, 5, 27),
    (2026, 8, 31),
    (2026, 12, 12),
    (2026, 12, 31),
    (2027, 1, 1),
    (2027, 3, 22),
    (2027, 6, 6),
    (2027, 12, 31),
];

fn cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        vec![
            // The support line: weekdays 08:00-20:00 Tashkent, the decree's days, a moved
            // Saturday and a moved Sunday, and the New Year both years.
            Case::new(
                tashkent(),
                Hours::Weekly(vec![window(&WEEKDAYS, "08:00", "20:00")]),
                vec![
                    date(2026, 1, 1),
                    date(2026, 1, 2),
                    date(2026, 3, 9),
                    date(2026, 3, 20),
                    date(2026, 3, 23),
                    date(2026, 5, 11),
                    date(2026, 5, 27),
                    date(2026, 5, 28),
                    date(2026, 5, 29),
                    date(2026, 8, 31),
                    date(2026, 9, 1),
                    date(2026, 10, 1),
                    date(2026, 12, 8),
                    date(2026, 12, 31),
                    date(2027, 1, 1),
                    date(2027, 3, 8),
                    date(2027, 3, 22),
                    date(2027, 12, 31),
                ],
                vec![date(2026, 12, 12), date(2027, 6, 6)],
                Monday,
            ),
            // Split shifts and a Saturday morning, overlapping windows, a fixed offset; moved
            // days work as a Thursday; one date is both a holiday and a moved day.
            Case::new(
                TimeZone::fixed(jiff::tz::offset(5)),
                Hours::Weekly(vec![
                    window(&WEEKDAYS, "09:00", "13:00"),
                    window(&WEEKDAYS, "14:00", "18:00"),
                    window(&[Friday], "12:30", "14:30"),
                    window(&[Saturday], "10:00", "14:00"),
                ]),
                vec![
                    date(2026, 1, 1),
                    date(2026, 3, 21),
                    date(2026, 12, 31),
                    date(2027, 1, 1),
                    date(2027, 2, 7),
                ],
                vec![date(2026, 4, 5), date(2027, 2, 7), date(2027, 12, 26)],
                Thursday,
            ),
            // Night shifts across midnight in a zone west of UTC with a half-hour offset.
            Case::new(
                TimeZone::fixed(jiff::tz::Offset::from_seconds(-(3 * 3600 + 1800)).unwrap()),
                Hours::Weekly(vec![
                    window(&[Monday, Tuesday, Wednesday, Thursday], "22:00", "24:00"),
                    window(&[Tuesday, Wednesday, Thursday, Friday], "00:00", "06:00"),
                    window(&[Sunday], "00:00", "24:00"),
                ]),
                vec![date(2026, 1, 1), date(2027, 1, 3)],
                vec![date(2026, 7, 4)],
                Sunday,
            ),
            // Round the clock except holidays (not the fast path).
            Case::new(
                tashkent(),
                Hours::Always,
                vec![date(2026, 1, 1), date(2026, 3, 21), date(2027, 12, 31)],
                vec![],
                Monday,
            ),
            // Round the clock (the fast path).
            Case::new(tashkent(), Hours::Always, vec![], vec![], Monday),
        ]
    })
}

/// A start minute: anywhere in the range, or within three days of a special date.
fn start_minute() -> impl Strategy<Value = usize> {
    let anywhere = 0..RANGE_MINUTES - MAX_SPAN - 1;
    let near_special = (0..SPECIAL.len(), 0..6 * 1440usize).prop_map(|(k, offset)| {
        let (y, m, d) = SPECIAL[k];
        let start: Timestamp = RANGE_START.parse().unwrap();
        let day = TimeZone::UTC
            .to_timestamp(date(y, m, d).at(0, 0, 0, 0))
            .unwrap();
        let minutes = (day.as_second() - start.as_second()) / 60;
        (minutes as usize + offset).saturating_sub(3 * 1440)
    });
    prop_oneof![anywhere, near_special]
}

fn case_index() -> impl Strategy<Value = usize> {
    0..5usize
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn working_minutes_between_agree_with_the_reference(
        c in case_index(), from in start_minute(), span in 0..MAX_SPAN,
    ) {
        let case = &cases()[c];
        let to = from + span;
        prop_assert_eq!(
            case.calendar.working_seconds_between(minute(from), minute(to)),
            60 * case.working_minutes(from, to)
        );
    }

    #[test]
    fn adding_working_minutes_agrees_with_the_reference(
        c in case_index(), from in start_minute(), span in 0..MAX_SPAN,
    ) {
        let case = &cases()[c];
        // As many working minutes as the reference has in the span.
        let k = case.prefix[from + span] - case.prefix[from];
        let expected = case.after_working_minutes(from, k).map(minute);
        prop_assert_eq!(
            case.calendar.add_working_seconds(minute(from), 60 * u64::from(k)),
            expected
        );
    }

    #[test]
    fn is_working_agrees_with_the_reference_at_any_second(
        c in case_index(), at in start_minute(), second in 0..60i64,
    ) {
        let case = &cases()[c];
        let t = minute(at).checked_add(jiff::SignedDuration::from_secs(second)).unwrap();
        prop_assert_eq!(case.calendar.is_working(t), case.open[at]);
    }

    #[test]
    fn next_working_instant_and_next_opening_agree_with_the_reference(
        c in case_index(), from in start_minute(),
    ) {
        let case = &cases()[c];
        let next = (from..RANGE_MINUTES).find(|&i| case.open[i]).map(minute);
        prop_assert_eq!(case.calendar.next_working_instant(minute(from)), next);
        // The first minute at or after `from` that opens a working day (the first working
        // minute of its local date).
        let opening = (from..RANGE_MINUTES).find(|&i| case.opens_day[i]);
        prop_assert_eq!(case.calendar.next_opening(minute(from)), opening.map(minute));
    }

    #[test]
    fn adding_working_days_agrees_with_the_reference(
        c in case_index(), from in start_minute(), days in 1..8u32,
    ) {
        let case = &cases()[c];
        // Count the working days after the local date of `from`, minute by minute; the
        // deadline is the end of the last working minute of the days-th one.
        let start_date = case.local_date(from);
        let mut counted = 0;
        let mut current: Option<Date> = None;
        let mut close = None;
        for i in from..RANGE_MINUTES {
            let d = case.local_date(i);
            if d <= start_date {
                continue;
            }
            if current != Some(d) {
                if counted == days {
                    break;
                }
                current = Some(d);
                if (i..RANGE_MINUTES)
                    .take_while(|&j| case.local_date(j) == d)
                    .any(|j| case.open[j])
                {
                    counted += 1;
                }
            }
            if counted == days && case.open[i] {
                close = Some(minute(i + 1));
            }
        }
        prop_assert_eq!(case.calendar.add_working_days(minute(from), days), close);
    }

    #[test]
    fn add_and_between_are_inverse_to_the_second(
        c in case_index(),
        from in start_minute(),
        from_second in 0..60i64,
        amount in 0..(20 * 86_400u64),
        other in 0..(MAX_SPAN as i64 * 60),
    ) {
        let calendar = &cases()[c].calendar;
        let start = minute(from).checked_add(jiff::SignedDuration::from_secs(from_second)).unwrap();
        let due = calendar.add_working_seconds(start, amount).unwrap();
        prop_assert_eq!(calendar.working_seconds_between(start, due), amount);
        // The earliest such instant: one second less is not enough.
        if amount > 0 {
            let before = due.checked_sub(jiff::SignedDuration::from_secs(1)).unwrap();
            prop_assert_eq!(calendar.working_seconds_between(start, before), amount - 1);
        }
        let end = start.checked_add(jiff::SignedDuration::from_secs(other)).unwrap();
        let worked = calendar.working_seconds_between(start, end);
        let back = calendar.add_working_seconds(start, worked).unwrap();
        prop_assert!(back <= end);
        prop_assert_eq!(calendar.working_seconds_between(back, end), 0);
        // Between splits at any point.
        let mid = start.checked_add(jiff::SignedDuration::from_secs(other / 3)).unwrap();
        prop_assert_eq!(
            calendar.working_seconds_between(start, mid) + calendar.working_seconds_between(mid, end),
            worked
        );
    }
}

#[test]
fn the_reference_covers_what_the_properties_claim() {
    let support = &cases()[0];
    // Two years of the support line: about 250 working days a year, 12 hours each.
    let hours_2026 = {
        let start: Timestamp = "2026-01-01T00:00:00+05:00".parse().unwrap();
        let end: Timestamp = "2027-01-01T00:00:00+05:00".parse().unwrap();
        support.calendar.working_seconds_between(start, end) / 3600
    };
    // 261 weekdays in 2026, minus the 14 weekday holidays listed, plus the moved Saturday.
    assert_eq!(hours_2026, (261 - 14 + 1) * 12);
    assert!(cases()[4].calendar.is_always_open());
    assert!(!cases()[3].calendar.is_always_open());
}
