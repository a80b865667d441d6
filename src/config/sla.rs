//! `[tenant.sla]` (the service rules C4-C7 of a tenant) and the tenant's moved working days
//! (`working_days`, `working_days_as`), checked into [`crate::sla::SlaRules`] and the dates
//! [`crate::sla::BusinessCalendar`] needs.
//!
//! ```toml
//! [[tenant]]
//! # ...
//! holidays = ["2026-12-31"]
//! # Dates whose weekday is normally off but which the decree makes working days; they work
//! # the hours of `working_days_as` (default "mon").
//! working_days = ["2026-12-12"]
//!
//! [tenant.sla]
//! first_answer_working_minutes = 10   # C4: e-mail, Telegram, web form
//! out_of_hours_contact_by = "10:00"   # C5: next working day, replaces C4 out of hours
//! critical_calendar_hours = 4         # C6, round the clock
//! high_working_hours = 8
//! normal_working_hours = 24
//! low_working_days = 2                # due by the close of the 2nd working day after
//! moderation_days = 5                 # C7, fresh for every resubmission
//! moderation_days_kind = "calendar"   # or "working"
//! pause_while_waiting = true          # clocks stop while waiting for the customer
//! near_breach_share = 0.2             # near breach when a fifth of the budget is left
//! ```
//!
//! Every key has the default shown; a tenant without `[tenant.sla]` gets them all.

use jiff::civil::{Date, Weekday};
use serde::Deserialize;

use super::error::Collector;
use crate::schedule::{parse_weekday, ClockTime, Hours, DAY_NAMES};
use crate::sla::{DayKind, Share, SlaRules};

/// `[tenant.sla]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantSla {
    #[serde(default = "default_first_answer")]
    pub first_answer_working_minutes: u64,
    #[serde(default = "default_contact_by")]
    pub out_of_hours_contact_by: String,
    #[serde(default = "default_critical")]
    pub critical_calendar_hours: u64,
    #[serde(default = "default_high")]
    pub high_working_hours: u64,
    #[serde(default = "default_normal")]
    pub normal_working_hours: u64,
    #[serde(default = "default_low")]
    pub low_working_days: u32,
    #[serde(default = "default_moderation")]
    pub moderation_days: u32,
    #[serde(default = "default_moderation_kind")]
    pub moderation_days_kind: String,
    #[serde(default = "yes")]
    pub pause_while_waiting: bool,
    #[serde(default = "default_near_breach")]
    pub near_breach_share: f64,
}

impl Default for RawTenantSla {
    fn default() -> RawTenantSla {
        RawTenantSla {
            first_answer_working_minutes: default_first_answer(),
            out_of_hours_contact_by: default_contact_by(),
            critical_calendar_hours: default_critical(),
            high_working_hours: default_high(),
            normal_working_hours: default_normal(),
            low_working_days: default_low(),
            moderation_days: default_moderation(),
            moderation_days_kind: default_moderation_kind(),
            pause_while_waiting: true,
            near_breach_share: default_near_breach(),
        }
    }
}

fn default_first_answer() -> u64 {
    10
}
fn default_contact_by() -> String {
    "10:00".to_owned()
}
fn default_critical() -> u64 {
    4
}
fn default_high() -> u64 {
    8
}
fn default_normal() -> u64 {
    24
}
fn default_low() -> u32 {
    2
}
fn default_moderation() -> u32 {
    5
}
fn default_moderation_kind() -> String {
    "calendar".to_owned()
}
fn yes() -> bool {
    true
}
fn default_near_breach() -> f64 {
    0.2
}

/// Longest budgets accepted: a year. Anything longer is a typo, and would never breach.
const MAX_MINUTES: u64 = 366 * 24 * 60;
const MAX_HOURS: u64 = 366 * 24;
const MAX_DAYS: u32 = 366;

/// Checks `[tenant.sla]` (absent: the defaults). `label` is `tenant.<id>`; `hours` are the
/// tenant's opening hours when they were valid.
pub(crate) fn check_tenant_sla(
    raw: Option<&RawTenantSla>,
    label: &str,
    hours: Option<&Hours>,
    errors: &mut Collector,
) -> Option<SlaRules> {
    let default = RawTenantSla::default();
    let raw = raw.unwrap_or(&default);
    let before = errors.len();
    let at = |key: &str| format!("{label}.sla.{key}");

    let minutes = raw.first_answer_working_minutes;
    if minutes == 0 || minutes > MAX_MINUTES {
        errors.push(
            at("first_answer_working_minutes"),
            format!("{minutes} working minutes is not a usable first-answer time"),
            format!("give 1 to {MAX_MINUTES} working minutes, e.g. 10 (C4)"),
        );
    }
    for (key, value, example) in [
        ("critical_calendar_hours", raw.critical_calendar_hours, 4),
        ("high_working_hours", raw.high_working_hours, 8),
        ("normal_working_hours", raw.normal_working_hours, 24),
    ] {
        if value == 0 || value > MAX_HOURS {
            errors.push(
                at(key),
                format!("{value} hours is not a usable resolution time"),
                format!("give 1 to {MAX_HOURS} hours, e.g. {example} (C6)"),
            );
        }
    }
    for (key, value, example) in [
        ("low_working_days", raw.low_working_days, "2 (C6)"),
        ("moderation_days", raw.moderation_days, "5 (C7)"),
    ] {
        if value == 0 || value > MAX_DAYS {
            errors.push(
                at(key),
                format!("{value} days is not a usable deadline"),
                format!("give 1 to {MAX_DAYS} days, e.g. {example}"),
            );
        }
    }
    let kind = DayKind::parse(&raw.moderation_days_kind);
    if kind.is_none() {
        errors.push(
            at("moderation_days_kind"),
            format!("\"{}\" is not a kind of day", raw.moderation_days_kind),
            format!(
                "write \"calendar\" (every day counts) or \"working\" (only days with working \
                 hours count); one of {}",
                DayKind::NAMES.join(", ")
            ),
        );
    }
    let share = Share::from_fraction(raw.near_breach_share).filter(|s| *s < Share::ONE);
    if share.is_none() {
        errors.push(
            at("near_breach_share"),
            format!(
                "{} is not a share of the budget below one",
                raw.near_breach_share
            ),
            "write a fraction from 0 up to (not including) 1, e.g. 0.2 to flag a request when a \
             fifth of its time is left",
        );
    }
    let contact_by = ClockTime::parse(&raw.out_of_hours_contact_by);
    match contact_by {
        None => errors.push(
            at("out_of_hours_contact_by"),
            format!("\"{}\" is not a time of day", raw.out_of_hours_contact_by),
            "write \"HH:MM\" in 24-hour local time, e.g. \"10:00\" (C5)",
        ),
        Some(time) => {
            if let Some(Hours::Weekly(windows)) = hours {
                // A working day that opens at or after the contact time would leave no
                // working time at all for a request that came in out of hours.
                let late = windows
                    .iter()
                    .filter(|w| w.open < w.close && w.open >= time)
                    .find(|w| {
                        w.days.iter().any(|day| {
                            !windows.iter().any(|other| {
                                other.days.contains(day)
                                    && other.open < other.close
                                    && other.open < time
                            })
                        })
                    });
                if let Some(window) = late {
                    errors.push(
                        at("out_of_hours_contact_by"),
                        format!(
                            "{time} is not after the opening {} of some working days, so a \
                             request from outside hours would be late the moment the line \
                             opens",
                            window.open
                        ),
                        "choose a time after every working day's first opening, e.g. \"10:00\" \
                         for a line opening at 08:00",
                    );
                }
            }
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(SlaRules {
        first_answer_working_secs: minutes * 60,
        out_of_hours_contact_by: contact_by?,
        critical_calendar_secs: raw.critical_calendar_hours * 3600,
        high_working_secs: raw.high_working_hours * 3600,
        normal_working_secs: raw.normal_working_hours * 3600,
        low_working_days: raw.low_working_days,
        moderation_days: raw.moderation_days,
        moderation_day_kind: kind?,
        pause_while_waiting: raw.pause_while_waiting,
        near_breach_share: share?,
    })
}

/// Checks `working_days` (dates as written) and `working_days_as` against the tenant's
/// `holidays` and `hours` (when those were valid). Returns the dates and the weekday whose
/// hours they work.
pub(crate) fn check_working_days(
    texts: &[String],
    working_days_as: Option<&str>,
    label: &str,
    holidays: &[Date],
    hours: Option<&Hours>,
    errors: &mut Collector,
) -> Option<(Vec<Date>, Weekday)> {
    let before = errors.len();
    let as_day = match working_days_as {
        None => Some(Weekday::Monday),
        Some(name) => {
            let day = parse_weekday(name);
            if day.is_none() {
                errors.push(
                    format!("{label}.working_days_as"),
                    format!("\"{name}\" is not a day of the week"),
                    format!(
                        "name the weekday whose hours a moved working day works, one of {} \
                         (default \"mon\")",
                        DAY_NAMES.join(", ")
                    ),
                );
            }
            day
        }
    };
    let has_hours = |day: Weekday| match hours {
        Some(Hours::Weekly(windows)) => windows
            .iter()
            .any(|w| w.days.contains(&day) && w.open < w.close),
        _ => true,
    };
    let mut dates = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let field = format!("{label}.working_days[{i}]");
        let Some(date) = super::validate::parse_date(text) else {
            errors.push(
                field,
                format!("\"{text}\" is not a calendar date"),
                "write dates as quoted \"YYYY-MM-DD\" strings, e.g. \"2026-12-12\"",
            );
            continue;
        };
        if holidays.contains(&date) {
            errors.push(
                field,
                format!("{date} is also listed in holidays"),
                "a date is either a holiday or a moved working day: remove it from one of the \
                 two lists",
            );
        } else if matches!(hours, Some(Hours::Always)) {
            errors.push(
                field,
                "the line is open round the clock, so every day is already a working day",
                "remove working_days from a tenant with hours = \"24/7\"",
            );
        } else if hours.is_some() && has_hours(date.weekday()) {
            errors.push(
                field,
                format!(
                    "{date} is a {:?}, which already has working hours",
                    date.weekday()
                ),
                "list only dates whose weekday is normally closed (e.g. a Saturday the decree \
                 makes a working day), or correct the date",
            );
        }
        dates.push(date);
    }
    if let Some(day) = as_day {
        if !dates.is_empty() && hours.is_some() && !has_hours(day) {
            errors.push(
                format!("{label}.working_days_as"),
                format!("{day:?} has no working hours, so moved working days would stay closed"),
                "name a weekday with hours, e.g. working_days_as = \"mon\"",
            );
        }
    }
    if errors.len() > before {
        return None;
    }
    Some((dates, as_day?))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError, ConfigErrors};
    use crate::sla::{BusinessCalendar, DayKind, SlaRules};
    use jiff::civil::{date, Weekday};
    use jiff::Timestamp;

    /// A support line open on weekdays, with its queue and operator; tests add keys to it.
    const BASE: &str = r#"
[sip]
udp = "127.0.0.1:5060"

[[tenant]]
id = "support"
name = { uz = "Yordam", ru = "Поддержка" }
dids = ["712038872"]
timezone = "Asia/Tashkent"
hours = [{ days = ["mon", "tue", "wed", "thu", "fri"], open = "08:00", close = "20:00" }]
holidays = ["2026-12-31"]
# extra-tenant-keys

[tenant.ivr]
languages = [{ digit = "1", language = "ru", queue = "support-ru" }]
# sla-table

[[queue]]
id = "support-ru"
tenant = "support"
language = "ru"

[[operator]]
ext = "1001"
name = "Operator 1001"
ha1 = "5917c31d3ac0492b9f830106472ca074"
languages = ["ru"]
"#;

    fn with(tenant_keys: &str, sla_table: &str) -> String {
        BASE.replace("# extra-tenant-keys", tenant_keys)
            .replace("# sla-table", sla_table)
    }

    fn parse(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_toml_str(text, "test.toml")
    }

    fn errors(text: &str) -> ConfigErrors {
        match parse(text) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(errors) => errors,
        }
    }

    /// Asserts an error at exactly `field` with a non-empty problem and fix; returns it.
    #[track_caller]
    fn expect_error(errors: &ConfigErrors, field: &str) -> ConfigError {
        let Some(error) = errors.at(field).next() else {
            panic!("no error at {field}; got:\n{errors}");
        };
        assert!(!error.fix.trim().is_empty(), "empty fix: {error}");
        assert!(!error.problem.trim().is_empty(), "empty problem: {error}");
        assert_eq!(error.file, "test.toml");
        error.clone()
    }

    #[test]
    fn without_sla_table_the_published_rules_apply() {
        let config = parse(BASE).unwrap();
        let support = config.tenant("support").unwrap();
        assert_eq!(support.sla, SlaRules::default());
        assert!(support.working_days.is_empty());
        assert_eq!(support.working_days_as, Weekday::Monday);
        // The embedded demo's tenants too.
        for tenant in &Config::embedded_default().tenants {
            assert_eq!(tenant.sla, SlaRules::default(), "{}", tenant.id);
        }
    }

    #[test]
    fn every_sla_key_is_read() {
        let text = with(
            "working_days = [\"2026-12-12\"]\nworking_days_as = \"fri\"",
            "\n[tenant.sla]\nfirst_answer_working_minutes = 15\nout_of_hours_contact_by = \
             \"11:30\"\ncritical_calendar_hours = 2\nhigh_working_hours = 6\n\
             normal_working_hours = 36\nlow_working_days = 3\nmoderation_days = 7\n\
             moderation_days_kind = \"working\"\npause_while_waiting = false\n\
             near_breach_share = 0.25\n",
        );
        let config = parse(&text).unwrap();
        let support = config.tenant("support").unwrap();
        let sla = &support.sla;
        assert_eq!(sla.first_answer_working_secs, 900);
        assert_eq!(sla.out_of_hours_contact_by.to_string(), "11:30");
        assert_eq!(sla.critical_calendar_secs, 7200);
        assert_eq!(sla.high_working_secs, 6 * 3600);
        assert_eq!(sla.normal_working_secs, 36 * 3600);
        assert_eq!(sla.low_working_days, 3);
        assert_eq!(sla.moderation_days, 7);
        assert_eq!(sla.moderation_day_kind, DayKind::Working);
        assert!(!sla.pause_while_waiting);
        assert_eq!(sla.near_breach_share.per_million(), 250_000);
        assert_eq!(support.working_days, vec![date(2026, 12, 12)]);
        assert_eq!(support.working_days_as, Weekday::Friday);
    }

    #[test]
    fn bad_sla_values_name_the_key_and_the_fix() {
        let text = with(
            "",
            "\n[tenant.sla]\nfirst_answer_working_minutes = 0\nout_of_hours_contact_by = \
             \"10am\"\ncritical_calendar_hours = 0\nhigh_working_hours = 9000\n\
             normal_working_hours = 0\nlow_working_days = 0\nmoderation_days = 400\n\
             moderation_days_kind = \"business\"\nnear_breach_share = 1.0\n",
        );
        let errors = errors(&text);
        for key in [
            "first_answer_working_minutes",
            "out_of_hours_contact_by",
            "critical_calendar_hours",
            "high_working_hours",
            "normal_working_hours",
            "low_working_days",
            "moderation_days",
            "moderation_days_kind",
            "near_breach_share",
        ] {
            expect_error(&errors, &format!("tenant.support.sla.{key}"));
        }
        let kind = expect_error(&errors, "tenant.support.sla.moderation_days_kind");
        assert!(kind.fix.contains("calendar") && kind.fix.contains("working"));
        for share in ["-0.1", "nan"] {
            let text = with(
                "",
                &format!("\n[tenant.sla]\nnear_breach_share = {share}\n"),
            );
            expect_error(&errors_of(&text), "tenant.support.sla.near_breach_share");
        }
    }

    fn errors_of(text: &str) -> ConfigErrors {
        errors(text)
    }

    #[test]
    fn unknown_and_mistyped_sla_keys_are_located() {
        let errors = errors(&with("", "\n[tenant.sla]\nfirst_answer_minutes = 10\n"));
        let error = expect_error(&errors, "tenant[0].sla.first_answer_minutes");
        assert!(error.problem.contains("unknown field"), "{error}");
        let errors = errors_of(&with("", "\n[tenant.sla]\nlow_working_days = -2\n"));
        expect_error(&errors, "tenant[0].sla.low_working_days");
    }

    #[test]
    fn contact_time_must_leave_working_time_after_the_opening() {
        let text = with("", "\n[tenant.sla]\nout_of_hours_contact_by = \"08:00\"\n");
        let error = expect_error(&errors(&text), "tenant.support.sla.out_of_hours_contact_by");
        assert!(error.problem.contains("08:00"), "{error}");
        // A round-the-clock line has no opening to be late for.
        let always = BASE.replace(
            "hours = [{ days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"], open = \"08:00\", \
             close = \"20:00\" }]",
            "hours = \"24/7\"",
        );
        let always = always.replace(
            "# sla-table",
            "\n[tenant.sla]\nout_of_hours_contact_by = \"00:00\"\n",
        );
        assert!(parse(&always).is_ok());
    }

    #[test]
    fn bad_working_days_are_reported() {
        let text = with(
            "working_days = [\"2026-12-12\", \"12 Dec\", \"2026-12-31\", \"2026-12-14\"]",
            "",
        );
        let errors = errors(&text);
        assert!(!errors.has("tenant.support.working_days[0]"));
        expect_error(&errors, "tenant.support.working_days[1]");
        let both = expect_error(&errors, "tenant.support.working_days[2]");
        assert!(both.problem.contains("holidays"), "{both}");
        let monday = expect_error(&errors, "tenant.support.working_days[3]");
        assert!(monday.problem.contains("Monday"), "{monday}");

        let errors = errors_of(&with(
            "working_days = [\"2026-12-12\"]\nworking_days_as = \"sat\"",
            "",
        ));
        expect_error(&errors, "tenant.support.working_days_as");
        let errors = errors_of(&with("working_days_as = \"someday\"", ""));
        expect_error(&errors, "tenant.support.working_days_as");

        let always = BASE.replace(
            "hours = [{ days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"], open = \"08:00\", \
             close = \"20:00\" }]",
            "hours = \"24/7\"",
        );
        let always = always.replace("# extra-tenant-keys", "working_days = [\"2026-12-12\"]");
        expect_error(&errors_of(&always), "tenant.support.working_days[0]");
    }

    #[test]
    fn a_moved_working_day_opens_the_line_with_the_hours_of_its_template() {
        let config = parse(&with(
            "working_days = [\"2026-12-12\"]\nworking_days_as = \"mon\"",
            "",
        ))
        .unwrap();
        let support = config.tenant("support").unwrap();
        let at = |text: &str| -> Timestamp { text.parse().unwrap() };
        // Saturday 12 December 2026, Tashkent time.
        assert!(support.is_open(at("2026-12-12T10:00:00+05:00")));
        assert!(!support.is_open(at("2026-12-12T20:00:00+05:00")));
        assert!(!support.is_open(at("2026-12-19T10:00:00+05:00")));
        assert!(!support.is_open(at("2026-12-31T10:00:00+05:00")));
        let calendar: BusinessCalendar = support.business_calendar();
        assert!(calendar.is_working(at("2026-12-12T10:00:00+05:00")));
        assert!(!calendar.is_working(at("2026-12-31T10:00:00+05:00")));
    }

    #[test]
    fn the_demo_calendars_agree_with_is_open_for_two_years() {
        let config = Config::embedded_default();
        let support = config.tenant("support").unwrap();
        // The decree's moved working Saturday, a Hayit and an extra day off.
        assert_eq!(support.working_days, vec![date(2026, 12, 12)]);
        assert!(support.holidays.contains(&date(2026, 3, 20)));
        assert!(support.holidays.contains(&date(2026, 8, 31)));
        for tenant in &config.tenants {
            let calendar = tenant.business_calendar();
            assert_eq!(calendar.is_always_open(), tenant.id == "dtm");
            let mut t: Timestamp = "2025-12-25T00:00:00Z".parse().unwrap();
            let end: Timestamp = "2028-01-05T00:00:00Z".parse().unwrap();
            // Every 7 minutes: every minute of the day is hit over a week.
            while t < end {
                assert_eq!(
                    calendar.is_working(t),
                    tenant.is_open(t),
                    "{} at {t}",
                    tenant.id
                );
                t = t.checked_add(jiff::SignedDuration::from_mins(7)).unwrap();
            }
        }
    }
}
