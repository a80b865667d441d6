//! Opening hours, holidays and time zones of a tenant.
//!
//! Plain values with no dependency on the rest of navbat: the configuration parses them and
//! the pure SLA clock computes with them, so they sit below both (`config` re-exports them).

use jiff::civil::{Date, Weekday};
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// When a tenant's line is staffed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hours {
    /// Round the clock, every day (`hours = "24/7"`).
    Always,
    /// Only inside these windows (`hours = [{ days = [...], open = "08:00", close = "20:00" }]`).
    Weekly(Vec<OpeningWindow>),
}

/// One weekly opening window: on each of `days`, from `open` (inclusive) to `close` (exclusive),
/// in the tenant's local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningWindow {
    /// The days the window applies to.
    pub days: Vec<Weekday>,
    /// Local time the line opens.
    pub open: ClockTime,
    /// Local time the line closes; `24:00` means the end of the day.
    pub close: ClockTime,
}

/// A local wall-clock time with minute precision, `00:00` to `24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    /// The end of the day, `24:00`.
    pub const END_OF_DAY: ClockTime = ClockTime(24 * 60);

    /// Parses `HH:MM` (`24:00` allowed as the end of the day).
    pub fn parse(text: &str) -> Option<ClockTime> {
        let (hours, minutes) = text.split_once(':')?;
        if hours.len() != 2 || minutes.len() != 2 {
            return None;
        }
        let hours: u16 = hours.parse().ok()?;
        let minutes: u16 = minutes.parse().ok()?;
        if minutes >= 60 || hours > 24 || (hours == 24 && minutes != 0) {
            return None;
        }
        Some(ClockTime(hours * 60 + minutes))
    }

    /// Minutes since local midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl std::fmt::Display for ClockTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// The day names accepted in `days = [...]`, in week order.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Parses a day name from [`DAY_NAMES`] (case-insensitive; full English names too).
pub fn parse_weekday(name: &str) -> Option<Weekday> {
    let name = name.to_ascii_lowercase();
    let short = name.get(..3).unwrap_or("");
    let full = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let index = DAY_NAMES.iter().position(|day| *day == short)?;
    if name != short && name != full[index] {
        return None;
    }
    Some(match index {
        0 => Weekday::Monday,
        1 => Weekday::Tuesday,
        2 => Weekday::Wednesday,
        3 => Weekday::Thursday,
        4 => Weekday::Friday,
        5 => Weekday::Saturday,
        _ => Weekday::Sunday,
    })
}

/// Zones whose rules have been a fixed UTC offset for decades, used only when the time zone
/// database of the machine does not know them (a bare container without tzdata). Both of
/// Uzbekistan's zones have been UTC+05:00 without daylight saving since 1992.
const FIXED_FALLBACK: &[(&str, i8)] = &[("Asia/Tashkent", 5), ("Asia/Samarkand", 5)];

/// Resolves a time zone: an IANA name (`Asia/Tashkent`), `UTC`, or a fixed offset such as
/// `+05:00`. Returns a problem description on failure.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    resolve_time_zone(name, TimeZone::get)
}

/// [`parse_time_zone`] with the database lookup passed in, so the fallback can be tested.
fn resolve_time_zone(
    name: &str,
    lookup: impl Fn(&str) -> Result<TimeZone, jiff::Error>,
) -> Result<TimeZone, String> {
    if name == "UTC" || name == "Etc/UTC" {
        return Ok(TimeZone::UTC);
    }
    if let Some(offset) = parse_fixed_offset(name) {
        return Ok(TimeZone::fixed(offset));
    }
    match lookup(name) {
        Ok(zone) => Ok(zone),
        Err(error) => match FIXED_FALLBACK.iter().find(|(known, _)| *known == name) {
            Some((_, hours)) => Ok(TimeZone::fixed(Offset::constant(*hours))),
            None => Err(format!("unknown time zone \"{name}\" ({error})")),
        },
    }
}

/// `+HH:MM` or `-HH:MM`.
fn parse_fixed_offset(text: &str) -> Option<Offset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = text.get(1..)?.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    if hours > 18 || minutes >= 60 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// The dates that change a tenant's weekly hours.
pub(crate) struct Days<'a> {
    /// Closed all day.
    pub holidays: &'a [Date],
    /// Open although their weekday is not, with the hours of `working_days_as`.
    pub working_days: &'a [Date],
    /// The weekday whose hours a moved working day has.
    pub working_days_as: Weekday,
}

/// Whether a line with these hours and days is open at `now`, seen in `zone`.
pub(crate) fn is_open(hours: &Hours, days: &Days<'_>, zone: &TimeZone, now: Timestamp) -> bool {
    let local = zone.to_datetime(now);
    if days.holidays.contains(&local.date()) {
        return false;
    }
    let weekday = if days.working_days.contains(&local.date()) {
        days.working_days_as
    } else {
        local.weekday()
    };
    match hours {
        Hours::Always => true,
        Hours::Weekly(windows) => {
            // Both are small non-negative numbers from a valid civil time.
            let minute = (local.hour() as u16) * 60 + local.minute() as u16;
            windows.iter().any(|window| {
                window.days.contains(&weekday)
                    && window.open.minutes() <= minute
                    && minute < window.close.minutes()
            })
        }
    }
}

/// Milliseconds from `now` until the end of the opening window of `hours` that `now` is in
/// (today, local time in `zone`); local midnight for [`Hours::Always`] or a window reaching
/// `24:00`. The caller checks the line is open.
pub(crate) fn until_close_ms(hours: &Hours, zone: &TimeZone, now: Timestamp) -> u64 {
    let local = zone.to_datetime(now);
    let minute = (local.hour() as u16) * 60 + local.minute() as u16;
    let close = match hours {
        Hours::Always => ClockTime::END_OF_DAY,
        Hours::Weekly(windows) => windows
            .iter()
            .filter(|w| w.open.minutes() <= minute && minute < w.close.minutes())
            .map(|w| w.close)
            .max()
            .unwrap_or(ClockTime::END_OF_DAY),
    };
    let midnight = zone.to_timestamp(local.date().to_datetime(jiff::civil::Time::midnight()));
    match midnight {
        Ok(start) => {
            let close_ms = start.as_millisecond() + i64::from(close.minutes()) * 60_000;
            close_ms.saturating_sub(now.as_millisecond()).max(0) as u64
        }
        Err(_) => 0,
    }
}

/// The next moment after `now` the local clock in `zone` shows `at`, as Unix milliseconds.
pub(crate) fn next_local(zone: &TimeZone, now: Timestamp, at: ClockTime) -> i64 {
    let local = zone.to_datetime(now);
    let today = local.date();
    let on = |date: Date| {
        zone.to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map(|t| t.as_millisecond() + i64::from(at.minutes()) * 60_000)
            .unwrap_or(i64::MAX)
    };
    let t = on(today);
    if t > now.as_millisecond() {
        return t;
    }
    today.tomorrow().map(on).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_database(name: &str) -> Result<TimeZone, jiff::Error> {
        Err(jiff::Error::from_args(format_args!(
            "no time zone database has {name}"
        )))
    }

    #[test]
    fn uzbekistan_zones_work_without_a_time_zone_database() {
        let zone = resolve_time_zone("Asia/Tashkent", no_database).unwrap();
        let noon_utc: Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
        assert_eq!(zone.to_datetime(noon_utc).hour(), 17);
        assert!(resolve_time_zone("Europe/Moscow", no_database).is_err());
        assert!(resolve_time_zone("UTC", no_database).is_ok());
    }

    #[test]
    fn fixed_offsets() {
        assert_eq!(parse_fixed_offset("+05:00"), Some(Offset::constant(5)));
        assert_eq!(
            parse_fixed_offset("-03:30"),
            Some(Offset::from_seconds(-(3 * 3600 + 1800)).unwrap())
        );
        for bad in ["05:00", "+5:00", "+19:00", "+05:60", "+05"] {
            assert_eq!(parse_fixed_offset(bad), None, "{bad}");
        }
    }

    #[test]
    fn system_database_knows_tashkent_or_the_fallback_does() {
        assert!(parse_time_zone("Asia/Tashkent").is_ok());
    }

    #[test]
    fn closing_and_the_next_morning_in_local_time() {
        let zone = TimeZone::fixed(Offset::constant(5));
        // 13:30 local.
        let now: Timestamp = "2026-07-01T08:30:00Z".parse().unwrap();
        let hour = 3_600_000;
        assert_eq!(
            until_close_ms(&Hours::Always, &zone, now),
            10 * hour + hour / 2
        );
        let weekly = Hours::Weekly(vec![OpeningWindow {
            days: vec![Weekday::Wednesday],
            open: ClockTime::parse("08:00").unwrap(),
            close: ClockTime::parse("14:00").unwrap(),
        }]);
        assert_eq!(until_close_ms(&weekly, &zone, now), hour / 2);
        let eight = ClockTime::parse("08:00").unwrap();
        let tomorrow_eight: Timestamp = "2026-07-02T03:00:00Z".parse().unwrap();
        assert_eq!(
            next_local(&zone, now, eight),
            tomorrow_eight.as_millisecond()
        );
        let early: Timestamp = "2026-07-01T20:00:00Z".parse().unwrap(); // 01:00 local
        assert_eq!(
            next_local(&zone, early, eight),
            tomorrow_eight.as_millisecond()
        );
    }

    #[test]
    fn weekday_names() {
        assert_eq!(parse_weekday("mon"), Some(Weekday::Monday));
        assert_eq!(parse_weekday("Sunday"), Some(Weekday::Sunday));
        assert_eq!(parse_weekday("Fri"), Some(Weekday::Friday));
        for bad in ["mo", "monkey", "dushanba", ""] {
            assert_eq!(parse_weekday(bad), None, "{bad}");
        }
    }
}
