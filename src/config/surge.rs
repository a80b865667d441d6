//! `[tenant.surge]`: when a tenant goes into surge mode and what surge changes for its callers.
//!
//! ```toml
//! [tenant.surge]
//! # Exam periods (RFC 3339 timestamps with offset): surge is on from start until end.
//! calendar = [
//!     { start = "2026-07-20T06:00:00+05:00", end = "2026-07-21T00:00:00+05:00" },
//! ]
//!
//! [tenant.surge.auto]
//! enabled = true
//! enter_expected_wait_secs = 120      # on when the expected wait reaches this...
//! enter_waiting_per_available = 10    # ...or calls waiting per available operator reach this
//! exit_expected_wait_secs = 30        # off only when both are below these
//! exit_waiting_per_available = 2
//! hold_secs = 30                      # a condition must hold this long
//! min_dwell_secs = 300                # least time between two automatic switches
//! ```
//!
//! Checked here into [`TenantSurge`]; [`TenantSurge::policy`] hands the pure
//! [`crate::surge::SurgeController`] what it needs.

use serde::Deserialize;

use super::error::Collector;
use super::menu::DtmfDigit;
use super::raw::RawBilingual;
use super::Bilingual;
use crate::surge::{AutoTrigger, Period, SurgePolicy};

/// A tenant's surge settings; the default is "never by calendar or load, only by a supervisor".
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantSurge {
    /// Exam periods, in the order written.
    pub calendar: Vec<ExamPeriod>,
    /// The automatic trigger; `None` when disabled.
    pub auto: Option<AutoTrigger>,
    /// Whether callers hear the surge announcement (prompt `surge_announcement`) after the
    /// greeting while surge is on.
    pub announcement: bool,
    /// Whether, while surge is on, callers hear the short surge greeting (prompt
    /// `surge-greeting`) instead of the greeting and the announcement: on a results day each
    /// second of greeting is a second of a channel held by every caller.
    pub greeting: bool,
    /// Self-service branches offered at the topic level while surge is on.
    pub self_service: Vec<SelfServiceChoice>,
    /// The in-queue callback offer; `None`: no callbacks for this tenant.
    pub callback: Option<super::CallbackOffer>,
    /// The results-day offer at the door of the queue (`[tenant.surge.door]`); `None`: the
    /// callback offer alone, after `offer_after_secs`.
    pub door: Option<super::DoorConfig>,
}

// Validation rejects NaN and infinities in `auto`, so equality is total.
impl Eq for TenantSurge {}

impl TenantSurge {
    /// The switching policy for [`crate::surge::SurgeController`].
    pub fn policy(&self) -> SurgePolicy {
        SurgePolicy {
            calendar: self
                .calendar
                .iter()
                .map(|p| Period {
                    start_ms: p.start.as_millisecond(),
                    end_ms: p.end.as_millisecond(),
                })
                .collect(),
            auto: self.auto,
        }
    }

    /// The self-service branch selected by `digit`.
    pub fn self_service_for_digit(&self, digit: char) -> Option<&SelfServiceChoice> {
        self.self_service
            .iter()
            .find(|c| c.digit.as_char() == digit)
    }
}

/// One exam period: surge from `start` (inclusive) until `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExamPeriod {
    /// Start.
    pub start: jiff::Timestamp,
    /// End, after start.
    pub end: jiff::Timestamp,
}

/// A self-service branch: press `digit` to hear `prompt` (information such as where results
/// are published); the call then ends as deflected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfServiceChoice {
    /// The key; never one of the topic keys.
    pub digit: DtmfDigit,
    /// Prompt name under the prompts directory (`<lang>/<prompt>.wav`).
    pub prompt: String,
    /// What it is about, in both languages (for logs, the API and an SMS).
    pub label: Bilingual,
}

/// `[tenant.surge]` as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantSurge {
    #[serde(default)]
    pub calendar: Vec<RawPeriod>,
    pub auto: Option<RawAuto>,
    #[serde(default = "yes")]
    pub announcement: bool,
    #[serde(default)]
    pub greeting: bool,
    #[serde(default)]
    pub self_service: Vec<RawSelfService>,
    pub callback: Option<super::callback::RawCallbackOffer>,
    pub door: Option<super::door::RawDoor>,
}

fn yes() -> bool {
    true
}

/// One `calendar` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPeriod {
    pub start: String,
    pub end: String,
}

/// `[tenant.surge.auto]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuto {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_enter_wait")]
    pub enter_expected_wait_secs: f64,
    #[serde(default = "default_enter_ratio")]
    pub enter_waiting_per_available: f64,
    #[serde(default = "default_exit_wait")]
    pub exit_expected_wait_secs: f64,
    #[serde(default = "default_exit_ratio")]
    pub exit_waiting_per_available: f64,
    #[serde(default = "default_hold")]
    pub hold_secs: u64,
    #[serde(default = "default_dwell")]
    pub min_dwell_secs: u64,
}

fn default_enter_wait() -> f64 {
    120.0
}
fn default_enter_ratio() -> f64 {
    10.0
}
fn default_exit_wait() -> f64 {
    30.0
}
fn default_exit_ratio() -> f64 {
    2.0
}
fn default_hold() -> u64 {
    30
}
fn default_dwell() -> u64 {
    300
}

/// One `self_service` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSelfService {
    pub digit: String,
    pub prompt: String,
    pub label: RawBilingual,
}

fn timestamp(field: &str, text: &str, errors: &mut Collector) -> Option<jiff::Timestamp> {
    match text.parse::<jiff::Timestamp>() {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(
                field,
                format!("\"{text}\" is not an RFC 3339 timestamp ({e})"),
                "write the moment with its offset, e.g. \"2026-07-20T06:00:00+05:00\"",
            );
            None
        }
    }
}

/// Checks `[tenant.surge]` of the tenant labelled `label` whose topic keys are `topic_digits`.
pub(crate) fn check_surge(
    label: &str,
    raw: Option<&RawTenantSurge>,
    topic_digits: &[char],
    errors: &mut Collector,
) -> Option<TenantSurge> {
    let Some(raw) = raw else {
        return Some(TenantSurge::default());
    };
    let field = format!("{label}.surge");
    let before = errors.len();
    let mut calendar = Vec::new();
    for (i, p) in raw.calendar.iter().enumerate() {
        let at = format!("{field}.calendar[{i}]");
        let start = timestamp(&format!("{at}.start"), &p.start, errors);
        let end = timestamp(&format!("{at}.end"), &p.end, errors);
        if let (Some(start), Some(end)) = (start, end) {
            if end <= start {
                errors.push(
                    format!("{at}.end"),
                    format!("the period ends ({}) before it starts ({})", p.end, p.start),
                    "set end later than start",
                );
            } else {
                calendar.push(ExamPeriod { start, end });
            }
        }
    }
    let auto = raw.auto.as_ref().and_then(|a| {
        let at = format!("{field}.auto");
        let values = [
            ("enter_expected_wait_secs", a.enter_expected_wait_secs),
            ("enter_waiting_per_available", a.enter_waiting_per_available),
            ("exit_expected_wait_secs", a.exit_expected_wait_secs),
            ("exit_waiting_per_available", a.exit_waiting_per_available),
        ];
        for (key, v) in values {
            if !v.is_finite() || v < 0.0 {
                errors.push(
                    format!("{at}.{key}"),
                    format!("{v} is not a threshold"),
                    "write a number of 0 or more",
                );
            }
        }
        if a.exit_expected_wait_secs >= a.enter_expected_wait_secs {
            errors.push(
                format!("{at}.exit_expected_wait_secs"),
                "the exit threshold is not below the enter threshold, so surge would flap",
                "set exit_expected_wait_secs below enter_expected_wait_secs, e.g. 30 and 120",
            );
        }
        if a.exit_waiting_per_available >= a.enter_waiting_per_available {
            errors.push(
                format!("{at}.exit_waiting_per_available"),
                "the exit threshold is not below the enter threshold, so surge would flap",
                "set exit_waiting_per_available below enter_waiting_per_available, e.g. 2 and 10",
            );
        }
        a.enabled.then_some(AutoTrigger {
            enter_expected_wait_secs: a.enter_expected_wait_secs,
            enter_waiting_per_available: a.enter_waiting_per_available,
            exit_expected_wait_secs: a.exit_expected_wait_secs,
            exit_waiting_per_available: a.exit_waiting_per_available,
            hold_ms: a.hold_secs.saturating_mul(1000),
            min_dwell_ms: a.min_dwell_secs.saturating_mul(1000),
        })
    });
    let mut self_service = Vec::new();
    let mut seen: Vec<char> = Vec::new();
    for (i, s) in raw.self_service.iter().enumerate() {
        let at = format!("{field}.self_service[{i}]");
        let Some(digit) = DtmfDigit::parse(&s.digit) else {
            errors.push(
                format!("{at}.digit"),
                format!("\"{}\" is not a key", s.digit),
                format!("use one of {}", DtmfDigit::KEYS),
            );
            continue;
        };
        if topic_digits.contains(&digit.as_char()) || seen.contains(&digit.as_char()) {
            errors.push(
                format!("{at}.digit"),
                format!("key {} is already used in the topic menu", digit.as_char()),
                "pick a key no topic and no other self-service branch uses, e.g. \"7\"",
            );
            continue;
        }
        seen.push(digit.as_char());
        let prompt_ok = !s.prompt.is_empty()
            && s.prompt
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !prompt_ok {
            errors.push(
                format!("{at}.prompt"),
                format!("\"{}\" is not a prompt name", s.prompt),
                "use letters, digits, '_' or '-' naming <lang>/<prompt>.wav, e.g. \"results_where\"",
            );
            continue;
        }
        self_service.push(SelfServiceChoice {
            digit,
            prompt: s.prompt.clone(),
            label: Bilingual {
                uz: s.label.uz.clone(),
                ru: s.label.ru.clone(),
            },
        });
    }
    let callback = raw.callback.as_ref().and_then(|c| {
        let offer = super::callback::check_offer(&format!("{field}.callback"), c, errors)?;
        if seen.contains(&offer.digit.as_char()) {
            errors.push(
                format!("{field}.callback.digit"),
                format!(
                    "key {} is already a self-service key",
                    offer.digit.as_char()
                ),
                "pick a key no self-service branch uses",
            );
        }
        Some(offer)
    });
    let door = raw.door.as_ref().and_then(|d| {
        super::door::check_door(
            &format!("{field}.door"),
            d,
            callback.map(|c| c.digit.as_char()),
            &seen,
            errors,
        )
    });
    (errors.len() == before).then_some(TenantSurge {
        calendar,
        auto,
        announcement: raw.announcement,
        greeting: raw.greeting,
        self_service,
        callback,
        door,
    })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn with_surge(section: &str) -> String {
        let base = super::super::EMBEDDED_DEFAULT_TOML;
        // Insert after the first tenant's IVR block (the dtm tenant).
        let at = base
            .find("default_topic = \"other\"\n")
            .expect("demo config has dtm's default_topic")
            + "default_topic = \"other\"\n".len();
        let mut text = base.to_string();
        // The demo may already carry a [tenant.surge] for dtm: drop it for these tests.
        if let Some(start) = text.find("[tenant.surge]") {
            let end = text[start..]
                .find("\n# ----")
                .map(|e| start + e)
                .unwrap_or(text.len());
            text.replace_range(start..end, "");
        }
        text.insert_str(at, &format!("\n{section}\n"));
        text
    }

    fn parse(text: &str) -> Result<Config, super::super::ConfigErrors> {
        Config::from_toml_str(text, "test.toml")
    }

    #[test]
    fn calendar_and_auto_are_parsed() {
        let config = parse(&with_surge(
            r#"[tenant.surge]
calendar = [{ start = "2026-07-20T06:00:00+05:00", end = "2026-07-21T00:00:00+05:00" }]
[tenant.surge.auto]
enter_expected_wait_secs = 90
hold_secs = 5
"#,
        ))
        .unwrap();
        let surge = &config.tenants[0].surge;
        assert_eq!(surge.calendar.len(), 1);
        assert_eq!(
            surge.calendar[0].start.as_millisecond(),
            "2026-07-20T01:00:00Z"
                .parse::<jiff::Timestamp>()
                .unwrap()
                .as_millisecond()
        );
        let auto = surge.auto.unwrap();
        assert_eq!(auto.enter_expected_wait_secs, 90.0);
        assert_eq!(auto.hold_ms, 5_000);
        assert_eq!(auto.min_dwell_ms, 300_000);
        assert_eq!(surge.policy().calendar.len(), 1);
    }

    #[test]
    fn no_section_means_manual_only() {
        let config = parse(&with_surge("")).unwrap();
        assert_eq!(config.tenants[1].surge, TenantSurge::default());
    }

    #[test]
    fn disabled_auto_is_none() {
        let config = parse(&with_surge("[tenant.surge.auto]\nenabled = false\n")).unwrap();
        assert_eq!(config.tenants[0].surge.auto, None);
    }

    #[test]
    fn bad_timestamp_names_field_and_fix() {
        let errors = parse(&with_surge(
            "[tenant.surge]\ncalendar = [{ start = \"2026-07-20 06:00\", end = \"2026-07-21T00:00:00+05:00\" }]\n",
        ))
        .unwrap_err();
        let e = errors
            .at("tenant.dtm.surge.calendar[0].start")
            .next()
            .unwrap_or_else(|| panic!("{errors}"));
        assert_eq!(e.file, "test.toml");
        assert!(e.fix.contains("2026-07-20T06:00:00+05:00"), "{e}");
    }

    #[test]
    fn period_ending_before_start_is_reported() {
        let errors = parse(&with_surge(
            "[tenant.surge]\ncalendar = [{ start = \"2026-07-21T00:00:00+05:00\", end = \"2026-07-20T00:00:00+05:00\" }]\n",
        ))
        .unwrap_err();
        assert!(errors.has("tenant.dtm.surge.calendar[0].end"), "{errors}");
    }

    #[test]
    fn exit_threshold_must_be_below_enter() {
        let errors = parse(&with_surge(
            "[tenant.surge.auto]\nenter_expected_wait_secs = 60\nexit_expected_wait_secs = 60\n",
        ))
        .unwrap_err();
        let e = errors
            .at("tenant.dtm.surge.auto.exit_expected_wait_secs")
            .next()
            .unwrap_or_else(|| panic!("{errors}"));
        assert!(e.fix.contains("below"), "{e}");
    }

    #[test]
    fn self_service_key_must_not_clash_with_topics() {
        let errors = parse(&with_surge(
            "[tenant.surge]\nself_service = [{ digit = \"1\", prompt = \"results_where\", label = { uz = \"a\", ru = \"b\" } }]\n",
        ))
        .unwrap_err();
        assert!(
            errors.has("tenant.dtm.surge.self_service[0].digit"),
            "{errors}"
        );
    }

    const CALLBACK: &str = "[tenant.surge.callback]\ndigit = \"1\"\n";

    #[test]
    fn the_door_is_parsed_with_its_defaults() {
        let config = parse(&with_surge(&format!(
            "{CALLBACK}[tenant.surge.door]\nnext_morning = {{ start = \"08:00\", end = \"10:00\" }}\n"
        )))
        .unwrap();
        let door = config.tenants[0].surge.door.expect("door");
        assert_eq!(door.offer_above.as_secs(), 60);
        assert_eq!(door.sms_digit.as_char(), '2');
        assert_eq!(door.choice_window.as_secs(), 6);
        let window = door.next_morning.expect("window");
        assert_eq!(window.length().as_secs(), 7200);
        let none = parse(&with_surge(CALLBACK)).unwrap();
        assert_eq!(none.tenants[0].surge.door, None);
    }

    #[test]
    fn a_bad_door_is_named_with_its_fix() {
        let errors = parse(&with_surge(&format!(
            "{CALLBACK}[tenant.surge.door]\nsms_digit = \"1\"\nnext_morning = {{ start = \"10:00\", end = \"8:00\" }}\n"
        )))
        .unwrap_err();
        let e = errors
            .at("tenant.dtm.surge.door.sms_digit")
            .next()
            .unwrap_or_else(|| panic!("{errors}"));
        assert!(e.problem.contains("callback key"), "{e}");
        assert!(
            errors.has("tenant.dtm.surge.door.next_morning.end"),
            "{errors}"
        );
        for secs in [0, 61] {
            let errors = parse(&with_surge(&format!(
                "{CALLBACK}[tenant.surge.door]\nchoice_secs = {secs}\n"
            )))
            .unwrap_err();
            let e = errors
                .at("tenant.dtm.surge.door.choice_secs")
                .next()
                .unwrap_or_else(|| panic!("{errors}"));
            assert!(e.problem.contains("outside 1 to 60"), "{e}");
            assert!(e.fix.contains("e.g. 6"), "{e}");
        }
        let door = parse(&with_surge(&format!(
            "{CALLBACK}[tenant.surge.door]\nchoice_secs = 12\n"
        )))
        .unwrap();
        let door = door.tenants[0].surge.door.expect("door");
        assert_eq!(door.choice_window.as_secs(), 12);
        let errors = parse(&with_surge("[tenant.surge.door]\n")).unwrap_err();
        let e = errors
            .at("tenant.dtm.surge.door")
            .next()
            .unwrap_or_else(|| panic!("{errors}"));
        assert!(e.fix.contains("[tenant.surge.callback]"), "{e}");
    }

    #[test]
    fn unknown_key_is_reported() {
        let errors = parse(&with_surge("[tenant.surge]\ncalender = []\n")).unwrap_err();
        assert!(errors.to_string().contains("calender"), "{errors}");
    }
}
