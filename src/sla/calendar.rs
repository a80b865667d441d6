//! Working time of a tenant: weekly hours, public holidays and moved working days in the
//! tenant's time zone, with the arithmetic the SLA clocks need, exact to the second.
//!
//! Pure: instants come in, instants go out; nothing here reads a clock.
//!
//! # How time is counted
//! * A local day is the span between two local midnights of the tenant's zone. Its working
//!   hours are the windows of its weekday, none on a public holiday, and the windows of
//!   [`BusinessCalendar::working_days_as`] on a moved working day (a date the government
//!   makes a working day although its weekday is normally off). A holiday wins over a moved
//!   working day.
//! * A window `[open, close)` includes its opening second and excludes its closing one, as
//!   `Tenant::is_open` does: at 20:00:00 a line open 08:00-20:00 is closed.
//! * Working seconds are real elapsed seconds inside windows. In a zone with daylight saving a
//!   repeated local hour counts once (its first occurrence) and a skipped local hour not at
//!   all; a window opening inside a skipped hour opens when the clocks jump. Uzbekistan has
//!   no daylight saving, so for the tenants of today every day is 24 hours.
//! * Instants are taken to the whole second (a fraction is dropped, towards the past).
//!
//! # Cost
//! Walks go day by day, never minute by minute, and a day without hours costs one look-up.
//! After the last listed holiday or moved working day, and while the zone's offset does not
//! change, whole weeks are skipped at once, so an absurdly long duration is as cheap as a short
//! one. A round-the-clock calendar without holidays ([`BusinessCalendar::is_always_open`])
//! answers every question with plain arithmetic. Times in a zone whose offset has not changed
//! since its last transition (Asia/Tashkent: since 1992) are converted without the time zone
//! database.

use jiff::civil::{Date, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

use crate::schedule::{ClockTime, Hours};

/// Seconds in a day without a time zone transition.
const DAY: i64 = 86_400;

/// No real zone moves its offset by two days; a local time at least this far after a
/// transition cannot also exist before it.
const MARGIN: i64 = 2 * DAY;

/// Working time of one tenant. Build it once per tenant (e.g. with
/// `config::Tenant::business_calendar`) and share it; every method takes `&self`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessCalendar {
    zone: TimeZone,
    /// Round the clock and no holidays: every question is arithmetic.
    always: bool,
    /// Working spans of each weekday (Monday first), local seconds of the day, sorted,
    /// disjoint and not touching.
    week: [Vec<(i64, i64)>; 7],
    /// The spans of a moved working day.
    moved: Vec<(i64, i64)>,
    working_days_as: Weekday,
    /// Local day numbers (days since 1970-01-01), sorted, unique.
    holidays: Vec<i64>,
    /// Local day numbers of moved working days that are not also holidays; sorted, unique.
    working_days: Vec<i64>,
    /// The last holiday or moved working day; every later day follows the weekly pattern.
    last_special: i64,
    /// Working seconds of a regular week.
    week_secs: i64,
    /// Days with working hours in a regular week.
    week_days: i64,
    /// The span of time, if any, after which the zone's offset never changes again (the whole
    /// time line for a fixed offset).
    stable: Option<Segment>,
}

/// A stretch of time `[from, until)` (Unix seconds) over which the zone's offset is constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    from: i64,
    until: i64,
    offset: i64,
}

impl Segment {
    /// Matches no instant; forces a look-up.
    const NONE: Segment = Segment {
        from: 0,
        until: 0,
        offset: 0,
    };

    fn contains(&self, t: i64) -> bool {
        self.from <= t && t < self.until
    }
}

impl BusinessCalendar {
    /// A calendar with these weekly `hours`, closed on `holidays`, and working on
    /// `working_days` (dates whose weekday is normally off) with the hours of the weekday
    /// `working_days_as` (Monday in the configuration unless it says otherwise). Dates may
    /// come in any order and repeat; a date in both lists is a holiday.
    pub fn new(
        zone: TimeZone,
        hours: &Hours,
        holidays: &[Date],
        working_days: &[Date],
        working_days_as: Weekday,
    ) -> BusinessCalendar {
        let mut week: [Vec<(i64, i64)>; 7] = Default::default();
        match hours {
            Hours::Always => {
                for spans in &mut week {
                    spans.push((0, DAY));
                }
            }
            Hours::Weekly(windows) => {
                for window in windows {
                    let open = i64::from(window.open.minutes()) * 60;
                    let close = i64::from(window.close.minutes()) * 60;
                    if close <= open {
                        continue;
                    }
                    for day in &window.days {
                        week[weekday_index(*day)].push((open, close));
                    }
                }
                for spans in &mut week {
                    merge_spans(spans);
                }
            }
        }
        let moved = week[weekday_index(working_days_as)].clone();
        let mut holidays: Vec<i64> = holidays.iter().map(|d| day_number(*d)).collect();
        holidays.sort_unstable();
        holidays.dedup();
        let mut working_days: Vec<i64> = working_days
            .iter()
            .map(|d| day_number(*d))
            .filter(|d| holidays.binary_search(d).is_err())
            .collect();
        working_days.sort_unstable();
        working_days.dedup();
        let last_special = holidays
            .last()
            .copied()
            .into_iter()
            .chain(working_days.last().copied())
            .max()
            .unwrap_or(i64::MIN);
        let week_secs = week
            .iter()
            .flat_map(|spans| spans.iter().map(|(a, b)| b - a))
            .sum();
        let week_days = week.iter().filter(|spans| !spans.is_empty()).count() as i64;
        let always = holidays.is_empty() && week.iter().all(|spans| spans[..] == [(0, DAY)]);
        let stable = stable_segment(&zone);
        BusinessCalendar {
            zone,
            always,
            week,
            moved,
            working_days_as,
            holidays,
            working_days,
            last_special,
            week_secs,
            week_days,
            stable,
        }
    }

    /// A round-the-clock calendar without holidays.
    pub fn always(zone: TimeZone) -> BusinessCalendar {
        BusinessCalendar::new(zone, &Hours::Always, &[], &[], Weekday::Monday)
    }

    /// The zone local days and hours are in.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// Whether every second is working time (24/7 without holidays); the fast path.
    pub fn is_always_open(&self) -> bool {
        self.always
    }

    /// The weekday whose hours a moved working day works.
    pub fn working_days_as(&self) -> Weekday {
        self.working_days_as
    }

    /// Whether `at` is inside working hours.
    pub fn is_working(&self, at: Timestamp) -> bool {
        self.is_working_at(secs_of(at))
    }

    /// Whether the local `date` has working hours (not a holiday, and a working weekday or a
    /// moved working day).
    pub fn is_working_day(&self, date: Date) -> bool {
        !self.spans(day_number(date)).is_empty()
    }

    /// Working seconds in `[from, to)`; 0 when `to` is not after `from`.
    pub fn working_seconds_between(&self, from: Timestamp, to: Timestamp) -> u64 {
        // Never negative.
        self.between(secs_of(from), secs_of(to)).unsigned_abs()
    }

    /// The earliest instant by which `secs` working seconds have passed since `from`. Adding 0
    /// returns `from` itself, even outside hours; adding more from outside hours starts
    /// counting at the next opening. `None` if the calendar never has that much working time
    /// left (or the answer is beyond the year 9999).
    pub fn add_working_seconds(&self, from: Timestamp, secs: u64) -> Option<Timestamp> {
        let secs = i64::try_from(secs).ok()?;
        self.add(secs_of(from), secs).and_then(timestamp)
    }

    /// `at` if it is working time, else the next instant that is.
    pub fn next_working_instant(&self, at: Timestamp) -> Option<Timestamp> {
        self.next_working(secs_of(at)).and_then(timestamp)
    }

    /// The opening of the next working day at or after `at`: the start of the first window of
    /// the first working day whose first window starts at or after `at`. On a round-the-clock
    /// calendar that is the next local midnight (or `at` if it is one).
    pub fn next_opening(&self, at: Timestamp) -> Option<Timestamp> {
        self.next_day_opening(secs_of(at))
            .map(|(_, open)| open)
            .and_then(timestamp)
    }

    /// Local time `time` of the next working day (C5: "contact by 10:00 of the next working
    /// day"). The next working day is the one of [`BusinessCalendar::next_opening`]: for a
    /// request at 07:59 on a working Monday it is that Monday, at 20:00 the next working day.
    /// Never before that day's opening: on a day that opens after `time`, the opening.
    pub fn next_working_day_at(&self, at: Timestamp, time: ClockTime) -> Option<Timestamp> {
        self.working_day_at(secs_of(at), time).and_then(timestamp)
    }

    /// The deadline `days` working days after `from`: the close of the last window of the
    /// `days`-th working day after the local day of `from`. The day of `from` never counts,
    /// whatever the hour, as the Civil Code counts periods (they begin on the day after the
    /// event): a request on Monday at 15:00 with 2 working days is due by Wednesday's close; on
    /// Saturday, by Tuesday's close. `days = 0` returns `from`.
    pub fn add_working_days(&self, from: Timestamp, days: u32) -> Option<Timestamp> {
        self.add_days(secs_of(from), days).and_then(timestamp)
    }

    /// The end (next local midnight) of the `days`-th calendar day after the local day of
    /// `from`, counted like [`BusinessCalendar::add_working_days`]; `days = 0` returns `from`.
    pub fn add_calendar_days(&self, from: Timestamp, days: u32) -> Option<Timestamp> {
        self.add_calendar(secs_of(from), days).and_then(timestamp)
    }

    // ---- the same in Unix seconds, for the SLA engine ----

    pub(super) fn is_working_at(&self, t: i64) -> bool {
        if self.always {
            return true;
        }
        let mut w = Walker::new(self);
        let day = w.day_of(t);
        self.spans(day).iter().any(|&(a, b)| {
            let start = w.instant_of(day, a);
            start <= t && t < w.instant_of(day, b)
        })
    }

    /// Working seconds in `[from, to)`.
    pub(super) fn between(&self, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        if self.always {
            return to - from;
        }
        let mut w = Walker::new(self);
        let first = w.day_of(from);
        let last = w.day_of(to);
        let mut total = 0;
        let mut day = first;
        while day <= last {
            if day > first && day + 7 <= last {
                let weeks = self.regular_weeks(&mut w, day, (last - day) / 7);
                if weeks > 0 {
                    total += weeks * self.week_secs;
                    day += weeks * 7;
                    continue;
                }
            }
            for &(a, b) in self.spans(day) {
                let start = w.instant_of(day, a).max(from);
                let end = w.instant_of(day, b).min(to);
                if end > start {
                    total += end - start;
                }
            }
            day += 1;
        }
        total
    }

    /// The earliest instant with `n` working seconds in `[from, it)`.
    pub(super) fn add(&self, from: i64, n: i64) -> Option<i64> {
        if n <= 0 {
            return Some(from);
        }
        if self.always {
            return from.checked_add(n).filter(|t| *t <= max_second());
        }
        let mut w = Walker::new(self);
        let first = w.day_of(from);
        let mut day = first;
        let mut left = n;
        loop {
            if day > max_day() || (day > self.last_special && self.week_secs == 0) {
                return None;
            }
            if day > first && self.week_secs > 0 && left > self.week_secs {
                let weeks = self.regular_weeks(&mut w, day, (left - 1) / self.week_secs);
                if weeks > 0 {
                    left -= weeks * self.week_secs;
                    day += weeks * 7;
                    continue;
                }
            }
            for &(a, b) in self.spans(day) {
                let start = w.instant_of(day, a).max(from);
                let end = w.instant_of(day, b);
                if end > start {
                    if end - start >= left {
                        return Some(start + left);
                    }
                    left -= end - start;
                }
            }
            day += 1;
        }
    }

    /// `t` if working, else the start of the next working interval.
    pub(super) fn next_working(&self, t: i64) -> Option<i64> {
        if self.always {
            return Some(t);
        }
        let mut w = Walker::new(self);
        let mut day = w.day_of(t);
        loop {
            if day > max_day() || (day > self.last_special && self.week_secs == 0) {
                return None;
            }
            for &(a, b) in self.spans(day) {
                let end = w.instant_of(day, b);
                if end > t {
                    let start = w.instant_of(day, a);
                    if start < end {
                        return Some(start.max(t));
                    }
                }
            }
            day += 1;
        }
    }

    /// The first working day whose opening is at or after `t`, and that opening.
    fn next_day_opening(&self, t: i64) -> Option<(i64, i64)> {
        let mut w = Walker::new(self);
        let mut day = w.day_of(t);
        loop {
            if day > max_day() || (day > self.last_special && self.week_secs == 0) {
                return None;
            }
            let opening = self
                .spans(day)
                .iter()
                .map(|&(a, b)| (w.instant_of(day, a), w.instant_of(day, b)))
                .find(|(start, end)| start < end)
                .map(|(start, _)| start);
            if let Some(open) = opening.filter(|open| *open >= t) {
                return Some((day, open));
            }
            day += 1;
        }
    }

    pub(super) fn working_day_at(&self, t: i64, time: ClockTime) -> Option<i64> {
        let (day, open) = self.next_day_opening(t)?;
        let mut w = Walker::new(self);
        Some(w.instant_of(day, i64::from(time.minutes()) * 60).max(open))
    }

    pub(super) fn add_days(&self, from: i64, days: u32) -> Option<i64> {
        if days == 0 {
            return Some(from);
        }
        let mut w = Walker::new(self);
        let mut day = w.day_of(from) + 1;
        let mut left = i64::from(days);
        if self.always {
            return (day + left <= max_day()).then(|| w.instant_of(day + left, 0));
        }
        loop {
            if day > max_day() || (day > self.last_special && self.week_days == 0) {
                return None;
            }
            if self.week_days > 0 && left > self.week_days {
                let weeks = self.regular_weeks(&mut w, day, (left - 1) / self.week_days);
                if weeks > 0 {
                    left -= weeks * self.week_days;
                    day += weeks * 7;
                    continue;
                }
            }
            let close = self
                .spans(day)
                .iter()
                .rev()
                .map(|&(a, b)| (w.instant_of(day, a), w.instant_of(day, b)))
                .find(|(start, end)| start < end)
                .map(|(_, end)| end);
            if let Some(close) = close {
                left -= 1;
                if left == 0 {
                    return Some(close);
                }
            }
            day += 1;
        }
    }

    pub(super) fn add_calendar(&self, from: i64, days: u32) -> Option<i64> {
        if days == 0 {
            return Some(from);
        }
        let mut w = Walker::new(self);
        let day = w.day_of(from) + i64::from(days) + 1;
        (day <= max_day()).then(|| w.instant_of(day, 0))
    }

    /// The working spans (local seconds) of a local day.
    fn spans(&self, day: i64) -> &[(i64, i64)] {
        if day <= self.last_special {
            if self.holidays.binary_search(&day).is_ok() {
                return &[];
            }
            if self.working_days.binary_search(&day).is_ok() {
                return &self.moved;
            }
        }
        &self.week[weekday_of(day)]
    }

    /// How many of `wanted` whole weeks from local day `day` on follow the weekly pattern
    /// exactly: after every listed date, and inside one stretch of constant offset (so every
    /// window lasts its nominal length).
    fn regular_weeks(&self, w: &mut Walker<'_>, day: i64, wanted: i64) -> i64 {
        if wanted <= 0 || day <= self.last_special {
            return 0;
        }
        let start = w.instant_of(day, 0);
        let seg = w.seg;
        // The week starts where plain arithmetic puts it, well inside the stretch.
        if start != day * DAY - seg.offset || start < seg.from.saturating_add(MARGIN) {
            return 0;
        }
        // Whole weeks whose end still lies inside the segment.
        let room = if seg.until == i64::MAX {
            wanted
        } else {
            ((seg.until - 1 + seg.offset).div_euclid(DAY) - day) / 7
        };
        wanted.min(room).min((max_day() - day) / 7).max(0)
    }

    /// The stretch of constant offset around `t`, from the time zone database.
    fn segment_at(&self, t: i64) -> Segment {
        let ts = timestamp_clamped(t);
        let offset = i64::from(self.zone.to_offset(ts).seconds());
        let from = self
            .zone
            .preceding(timestamp_clamped(t.saturating_add(1)))
            .next()
            .map_or(i64::MIN, |tr| tr.timestamp().as_second());
        let until = self
            .zone
            .following(ts)
            .next()
            .map_or(i64::MAX, |tr| tr.timestamp().as_second());
        Segment {
            from,
            until,
            offset,
        }
    }

    /// The instant of local second `sec` of local day `day`, from the time zone database:
    /// a repeated time at its first occurrence, a skipped time at the jump.
    fn instant_from_database(&self, day: i64, sec: i64, guess: i64) -> i64 {
        let (y, m, d) = civil_from_days(day);
        let date = match (i16::try_from(y), i8::try_from(m), i8::try_from(d)) {
            (Ok(y), Ok(m), Ok(d)) => Date::new(y, m, d).ok(),
            _ => None,
        };
        let Some(date) = date else {
            return guess;
        };
        // 0 <= sec < DAY here, so each part fits.
        let time = jiff::civil::Time::new(
            (sec / 3600) as i8,
            (sec % 3600 / 60) as i8,
            (sec % 60) as i8,
            0,
        );
        let Ok(time) = time else {
            return guess;
        };
        let local = day * DAY + sec;
        match self
            .zone
            .to_ambiguous_timestamp(date.to_datetime(time))
            .offset()
        {
            AmbiguousOffset::Unambiguous { offset } => local - i64::from(offset.seconds()),
            AmbiguousOffset::Fold { before, .. } => local - i64::from(before.seconds()),
            AmbiguousOffset::Gap { before, after } => {
                let earlier = local - i64::from(after.seconds());
                self.zone
                    .following(timestamp_clamped(earlier))
                    .next()
                    .map_or(local - i64::from(before.seconds()), |tr| {
                        tr.timestamp().as_second()
                    })
            }
        }
    }
}

/// Converts between local days and instants, remembering the last stretch of constant offset
/// so that a walk asks the time zone database only near transitions.
struct Walker<'a> {
    cal: &'a BusinessCalendar,
    seg: Segment,
}

impl<'a> Walker<'a> {
    fn new(cal: &'a BusinessCalendar) -> Walker<'a> {
        Walker {
            cal,
            seg: cal.stable.unwrap_or(Segment::NONE),
        }
    }

    /// The instant of local second `sec` (0..=DAY; DAY is the next midnight) of local `day`.
    fn instant_of(&mut self, day: i64, sec: i64) -> i64 {
        let (day, sec) = if sec >= DAY {
            (day + 1, sec - DAY)
        } else {
            (day, sec)
        };
        let guess = day * DAY + sec - self.seg.offset;
        // Inside the stretch, and far enough from its start that no earlier instant can show
        // the same local time.
        if self.seg.from.saturating_add(MARGIN) <= guess && guess < self.seg.until {
            return guess;
        }
        let t = self.cal.instant_from_database(day, sec, guess);
        if !self.seg.contains(t) {
            self.seg = self.cal.segment_at(t);
        }
        t
    }

    /// The local day holding instant `t`: the day whose midnight is at or before `t` and
    /// whose next midnight is after it.
    fn day_of(&mut self, t: i64) -> i64 {
        if !self.seg.contains(t) {
            self.seg = self.cal.segment_at(t);
        }
        let day = (t + self.seg.offset).div_euclid(DAY);
        if self.seg.from.saturating_add(MARGIN) <= t.saturating_sub(DAY)
            && t.saturating_add(DAY) < self.seg.until
        {
            return day;
        }
        if t < self.instant_of(day, 0) {
            day - 1
        } else if t >= self.instant_of(day + 1, 0) {
            day + 1
        } else {
            day
        }
    }
}

/// The stretch after the zone's last transition, if its rules have one (a fixed offset, or a
/// zone such as Asia/Tashkent that stopped changing).
fn stable_segment(zone: &TimeZone) -> Option<Segment> {
    if let Ok(offset) = zone.to_fixed_offset() {
        return Some(Segment {
            from: i64::MIN,
            until: i64::MAX,
            offset: i64::from(offset.seconds()),
        });
    }
    // With daylight saving rules the last transition is near the year 9999; such a zone
    // gets no stable stretch worth having, and walks ask the database near transitions.
    // Time zone files may end with transitions that change nothing (a 2038 sentinel): the
    // stretch begins at the last transition that changed the offset.
    let mut transitions = zone.preceding(Timestamp::MAX);
    let last = transitions.next()?;
    let offset = last.offset();
    let mut from = last.timestamp().as_second();
    if max_second() - from < 366 * DAY {
        return None;
    }
    for earlier in transitions.take(1000) {
        if earlier.offset() != offset {
            break;
        }
        from = earlier.timestamp().as_second();
    }
    Some(Segment {
        from,
        until: i64::MAX,
        offset: i64::from(offset.seconds()),
    })
}

/// Sorts spans and joins overlapping or touching ones.
fn merge_spans(spans: &mut Vec<(i64, i64)>) {
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for &(a, b) in spans.iter() {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *spans = merged;
}

fn weekday_index(day: Weekday) -> usize {
    // 0..=6 by definition.
    day.to_monday_zero_offset() as usize
}

/// Monday = 0; 1970-01-01 was a Thursday.
fn weekday_of(day: i64) -> usize {
    // rem_euclid(7) is 0..=6.
    (day + 3).rem_euclid(7) as usize
}

/// Days since 1970-01-01 of a civil date.
pub(super) fn day_number(date: Date) -> i64 {
    days_from_civil(
        i64::from(date.year()),
        i64::from(date.month()),
        i64::from(date.day()),
    )
}

/// Days since 1970-01-01 of year `y`, month `m` (1-12), day `d`: the proleptic Gregorian
/// calendar counted in 400-year eras of 146,097 days, with years starting in March so that
/// the leap day is the last day of a year.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (m + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let d = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let m = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let y = year_of_era + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The last local day walks may reach: a little before the end of jiff's time line.
fn max_day() -> i64 {
    days_from_civil(9999, 12, 28)
}

fn max_second() -> i64 {
    Timestamp::MAX.as_second()
}

/// Whole Unix seconds of `ts`, rounded towards the past.
pub(super) fn secs_of(ts: Timestamp) -> i64 {
    let secs = ts.as_second();
    if ts.subsec_nanosecond() < 0 {
        secs - 1
    } else {
        secs
    }
}

/// The instant `secs` Unix seconds, if jiff can represent it.
pub(super) fn timestamp(secs: i64) -> Option<Timestamp> {
    Timestamp::from_second(secs).ok()
}

fn timestamp_clamped(secs: i64) -> Timestamp {
    let min = Timestamp::MIN.as_second();
    Timestamp::from_second(secs.clamp(min, max_second())).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::OpeningWindow;
    use jiff::civil::date;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn tashkent() -> TimeZone {
        crate::schedule::parse_time_zone("Asia/Tashkent").unwrap()
    }

    fn office() -> Hours {
        Hours::Weekly(vec![OpeningWindow {
            days: vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
            open: ClockTime::parse("08:00").unwrap(),
            close: ClockTime::parse("20:00").unwrap(),
        }])
    }

    #[test]
    fn civil_day_numbers_agree_with_jiff() {
        let epoch = date(1970, 1, 1);
        let mut d = date(1899, 12, 25);
        while d < date(2101, 1, 10) {
            let n = day_number(d);
            assert_eq!(n, i64::from(d.since(epoch).unwrap().get_days()), "{d}");
            let (y, m, dd) = civil_from_days(n);
            assert_eq!(
                (y, m, dd),
                (d.year().into(), d.month().into(), d.day().into())
            );
            assert_eq!(weekday_of(n), weekday_index(d.weekday()), "{d}");
            d = d.tomorrow().unwrap();
        }
        assert_eq!(days_from_civil(-9999, 1, 1), day_number(date(-9999, 1, 1)));
        assert_eq!(
            days_from_civil(9999, 12, 31),
            day_number(date(9999, 12, 31))
        );
    }

    #[test]
    fn tashkent_is_stable_since_1992_and_fixed_offsets_always() {
        let cal = BusinessCalendar::always(tashkent());
        let stable = cal.stable.unwrap();
        assert_eq!(stable.offset, 5 * 3600);
        assert!(stable.from < at("1993-01-01T00:00:00Z").as_second());
        let fixed = BusinessCalendar::always(TimeZone::fixed(jiff::tz::offset(5)));
        assert_eq!(fixed.stable.unwrap().from, i64::MIN);
    }

    #[test]
    fn windows_merge_and_always_is_detected() {
        let hours = Hours::Weekly(vec![
            OpeningWindow {
                days: vec![Weekday::Monday],
                open: ClockTime::parse("08:00").unwrap(),
                close: ClockTime::parse("12:00").unwrap(),
            },
            OpeningWindow {
                days: vec![Weekday::Monday],
                open: ClockTime::parse("11:00").unwrap(),
                close: ClockTime::parse("13:00").unwrap(),
            },
            OpeningWindow {
                days: vec![Weekday::Monday],
                open: ClockTime::parse("13:00").unwrap(),
                close: ClockTime::parse("14:00").unwrap(),
            },
        ]);
        let cal = BusinessCalendar::new(tashkent(), &hours, &[], &[], Weekday::Monday);
        assert_eq!(cal.week[0], vec![(8 * 3600, 14 * 3600)]);
        assert_eq!(cal.week_secs, 6 * 3600);
        assert!(!cal.is_always_open());
        assert!(BusinessCalendar::always(tashkent()).is_always_open());
        let with_holiday = BusinessCalendar::new(
            tashkent(),
            &Hours::Always,
            &[date(2026, 1, 1)],
            &[],
            Weekday::Monday,
        );
        assert!(!with_holiday.is_always_open());
        assert!(!with_holiday.is_working(at("2026-01-01T12:00:00+05:00")));
        assert!(with_holiday.is_working(at("2026-01-02T00:00:00+05:00")));
    }

    #[test]
    fn office_hours_basics() {
        let cal = BusinessCalendar::new(
            tashkent(),
            &office(),
            &[date(2026, 3, 9)],
            &[date(2026, 12, 12)],
            Weekday::Monday,
        );
        assert!(!cal.is_working(at("2026-03-10T07:59:59+05:00")));
        assert!(cal.is_working(at("2026-03-10T08:00:00+05:00")));
        assert!(cal.is_working(at("2026-03-10T19:59:59+05:00")));
        assert!(!cal.is_working(at("2026-03-10T20:00:00+05:00")));
        assert!(!cal.is_working(at("2026-03-09T12:00:00+05:00")), "holiday");
        assert!(
            cal.is_working(at("2026-12-12T12:00:00+05:00")),
            "moved Saturday"
        );
        assert!(!cal.is_working(at("2026-12-13T12:00:00+05:00")), "Sunday");
        assert!(cal.is_working_day(date(2026, 12, 12)));
        assert!(!cal.is_working_day(date(2026, 3, 9)));

        // Friday 19:55 + 10 minutes: 5 on Friday, Monday is a holiday, 5 on Tuesday.
        let due = cal
            .add_working_seconds(at("2026-03-06T19:55:00+05:00"), 600)
            .unwrap();
        assert_eq!(due, at("2026-03-10T08:05:00+05:00"));
        assert_eq!(
            cal.working_seconds_between(at("2026-03-06T19:55:00+05:00"), due),
            600
        );
        // Ending exactly at a close gives the close, not the next opening.
        assert_eq!(
            cal.add_working_seconds(at("2026-03-10T19:50:00+05:00"), 600),
            Some(at("2026-03-10T20:00:00+05:00"))
        );
        // Adding nothing at a closed instant stays put.
        let saturday = at("2026-03-07T11:00:00+05:00");
        assert_eq!(cal.add_working_seconds(saturday, 0), Some(saturday));
        assert_eq!(
            cal.next_working_instant(saturday),
            Some(at("2026-03-10T08:00:00+05:00"))
        );
        assert_eq!(
            cal.next_opening(at("2026-03-10T08:00:00+05:00")),
            Some(at("2026-03-10T08:00:00+05:00"))
        );
        assert_eq!(
            cal.next_opening(at("2026-03-10T08:00:01+05:00")),
            Some(at("2026-03-11T08:00:00+05:00"))
        );
        let ten = ClockTime::parse("10:00").unwrap();
        assert_eq!(
            cal.next_working_day_at(at("2026-03-10T07:59:00+05:00"), ten),
            Some(at("2026-03-10T10:00:00+05:00"))
        );
        assert_eq!(
            cal.next_working_day_at(at("2026-03-10T20:00:00+05:00"), ten),
            Some(at("2026-03-11T10:00:00+05:00"))
        );
        assert_eq!(
            cal.next_working_day_at(saturday, ten),
            Some(at("2026-03-10T10:00:00+05:00"))
        );
        // Working days: Friday's two are Tuesday (Monday is off) and Wednesday.
        assert_eq!(
            cal.add_working_days(at("2026-03-06T09:00:00+05:00"), 2),
            Some(at("2026-03-11T20:00:00+05:00"))
        );
        // The moved Saturday counts as a working day.
        assert_eq!(
            cal.add_working_days(at("2026-12-11T12:00:00+05:00"), 1),
            Some(at("2026-12-12T20:00:00+05:00"))
        );
        assert_eq!(
            cal.add_calendar_days(at("2026-03-02T14:00:00+05:00"), 5),
            Some(at("2026-03-08T00:00:00+05:00"))
        );
    }

    #[test]
    fn long_spans_skip_whole_weeks_and_agree_with_walking() {
        let cal = BusinessCalendar::new(tashkent(), &office(), &[], &[], Weekday::Monday);
        let from = at("2028-02-02T13:14:15+05:00");
        // 30,000 working hours: about 48 years of 12-hour weekdays.
        let n = 30_000 * 3600;
        let due = cal.add_working_seconds(from, n).unwrap();
        assert_eq!(cal.working_seconds_between(from, due), n);
        // Day by day for a year, to check the skip against the walk.
        let year_later = at("2029-02-02T13:14:15+05:00");
        let mut walked = 0;
        let mut t = from;
        while t < year_later {
            let next = t.checked_add(jiff::SignedDuration::from_hours(24)).unwrap();
            walked += cal.working_seconds_between(t, next.min(year_later));
            t = next;
        }
        assert_eq!(cal.working_seconds_between(from, year_later), walked);
    }

    #[test]
    fn a_calendar_without_hours_answers_none_instead_of_looping() {
        let cal = BusinessCalendar::new(
            tashkent(),
            &Hours::Weekly(vec![]),
            &[],
            &[date(2026, 5, 2)],
            Weekday::Saturday,
        );
        let t = at("2026-05-01T12:00:00+05:00");
        // The moved day has Saturday's hours, which are none.
        assert_eq!(cal.add_working_seconds(t, 1), None);
        assert_eq!(cal.next_opening(t), None);
        assert_eq!(cal.next_working_instant(t), None);
        assert_eq!(cal.add_working_days(t, 1), None);
        assert_eq!(cal.working_seconds_between(t, Timestamp::MAX), 0);
        assert_eq!(cal.add_working_seconds(t, 0), Some(t));
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let cal = BusinessCalendar::new(tashkent(), &office(), &[], &[], Weekday::Monday);
        let always = BusinessCalendar::always(tashkent());
        for c in [&cal, &always] {
            for t in [Timestamp::MIN, Timestamp::UNIX_EPOCH, Timestamp::MAX] {
                let _ = c.is_working(t);
                let _ = c.add_working_seconds(t, u64::MAX);
                let _ = c.add_working_seconds(t, 1 << 40);
                let _ = c.next_opening(t);
                let _ = c.next_working_instant(t);
                let _ = c.add_working_days(t, u32::MAX);
                let _ = c.add_calendar_days(t, u32::MAX);
                let _ = c.working_seconds_between(Timestamp::MIN, t);
                let _ = c.working_seconds_between(t, Timestamp::MAX);
            }
        }
        assert_eq!(always.add_working_seconds(Timestamp::MAX, 1), None);
    }

    #[test]
    fn daylight_saving_days_count_real_seconds() {
        // Berlin, 2026-03-29: 02:00 jumps to 03:00; 2026-10-25: 03:00 falls back to 02:00.
        let zone = TimeZone::get("Europe/Berlin");
        let Ok(zone) = zone else {
            return; // no time zone database on this machine
        };
        let cal = BusinessCalendar::new(
            zone,
            &Hours::Always,
            &[date(2000, 1, 1)],
            &[],
            Weekday::Monday,
        );
        let spring_day = (
            at("2026-03-29T00:00:00+01:00"),
            at("2026-03-30T00:00:00+02:00"),
        );
        assert_eq!(
            cal.working_seconds_between(spring_day.0, spring_day.1),
            23 * 3600
        );
        let autumn_day = (
            at("2026-10-25T00:00:00+02:00"),
            at("2026-10-26T00:00:00+01:00"),
        );
        assert_eq!(
            cal.working_seconds_between(autumn_day.0, autumn_day.1),
            25 * 3600
        );
        let night = Hours::Weekly(vec![OpeningWindow {
            days: vec![Weekday::Sunday],
            open: ClockTime::parse("01:00").unwrap(),
            close: ClockTime::parse("04:00").unwrap(),
        }]);
        let cal = BusinessCalendar::new(cal.zone().clone(), &night, &[], &[], Weekday::Monday);
        // 01:00-02:00 then the jump to 03:00, then 03:00-04:00: two real hours.
        let day = (
            at("2026-03-29T00:00:00+01:00"),
            at("2026-03-30T00:00:00+02:00"),
        );
        assert_eq!(cal.working_seconds_between(day.0, day.1), 2 * 3600);
        // 01:00-04:00 with 02:00-03:00 twice: four real hours.
        let day = (
            at("2026-10-25T00:00:00+02:00"),
            at("2026-10-26T00:00:00+01:00"),
        );
        assert_eq!(cal.working_seconds_between(day.0, day.1), 4 * 3600);
        let open = at("2026-03-29T01:00:00+01:00");
        assert_eq!(
            cal.add_working_seconds(open, 2 * 3600),
            Some(at("2026-03-29T04:00:00+02:00"))
        );
    }
}
