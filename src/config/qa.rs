//! `[tenant.qa]`: the tenant's quality scorecard (D17, C9) and how many calls per operator
//! the weekly sample takes.
//!
//! ```toml
//! [tenant.qa]
//! sample_per_operator_week = 3
//! criteria = [
//!     { id = "greeting", weight = 10, title = { uz = "...", ru = "..." },
//!       description = { uz = "...", ru = "..." } },
//!     { id = "legal", weight = 30, critical = true, title = ..., description = ... },
//! ]
//! ```
//!
//! A criterion marked `critical` zeroes the whole score when it is failed (marked 0).

use super::error::Collector;
use super::raw::RawBilingual;
use super::validate::bilingual;
use super::Bilingual;
use serde::Deserialize;

/// `[tenant.qa]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantQa {
    #[serde(default = "default_sample")]
    pub sample_per_operator_week: i64,
    #[serde(default)]
    pub criteria: Vec<RawCriterion>,
}

/// One criterion as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCriterion {
    pub id: String,
    pub weight: i64,
    pub title: RawBilingual,
    pub description: RawBilingual,
    #[serde(default)]
    pub critical: bool,
}

fn default_sample() -> i64 {
    DEFAULT_SAMPLE_PER_OPERATOR_WEEK.into()
}

/// Calls per operator and week when `sample_per_operator_week` is not set.
pub const DEFAULT_SAMPLE_PER_OPERATOR_WEEK: u32 = 3;
/// The largest weekly sample per operator accepted.
pub const MAX_SAMPLE_PER_OPERATOR_WEEK: u32 = 100;
/// The largest weight of one criterion.
pub const MAX_WEIGHT: u32 = 100;

/// One line of a scorecard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Criterion {
    /// Short id (`greeting`), stable across edits of the texts: evaluations keep it.
    pub id: String,
    /// Its share of the total, relative to the other criteria's weights.
    pub weight: u32,
    /// What it is called, in both languages.
    pub title: Bilingual,
    /// What the evaluator listens for, in both languages.
    pub description: Bilingual,
    /// Failing it (mark 0) zeroes the whole score.
    pub critical: bool,
}

/// A tenant's scorecard and sampling size (`[tenant.qa]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scorecard {
    /// The criteria, in the order the form shows them.
    pub criteria: Vec<Criterion>,
    /// Calls drawn at random per operator and week (beside every complaint, unresolved and
    /// disputed call, which always join the queue).
    pub sample_per_operator_week: u32,
}

impl Scorecard {
    /// The criterion `id`.
    pub fn criterion(&self, id: &str) -> Option<&Criterion> {
        self.criteria.iter().find(|c| c.id == id)
    }
}

/// Checks `[tenant.qa]` of the tenant labelled `label` (`tenant.dtm`); `None` when it is
/// absent or wrong (each problem is in `errors`).
pub(crate) fn check_tenant_qa(
    raw: Option<&RawTenantQa>,
    label: &str,
    errors: &mut Collector,
) -> Option<Scorecard> {
    let raw = raw?;
    let before = errors.len();
    let field = format!("{label}.qa");
    if raw.sample_per_operator_week < 0
        || raw.sample_per_operator_week > i64::from(MAX_SAMPLE_PER_OPERATOR_WEEK)
    {
        errors.push(
            format!("{field}.sample_per_operator_week"),
            format!(
                "{} is not a usable sample size",
                raw.sample_per_operator_week
            ),
            format!(
                "give the calls drawn per operator and week, 0 to {MAX_SAMPLE_PER_OPERATOR_WEEK} \
                 (default {DEFAULT_SAMPLE_PER_OPERATOR_WEEK})"
            ),
        );
    }
    if raw.criteria.is_empty() {
        errors.push(
            format!("{field}.criteria"),
            "the scorecard has no criteria",
            "list the criteria, e.g. { id = \"greeting\", weight = 10, title = { uz = \"...\", \
             ru = \"...\" }, description = { uz = \"...\", ru = \"...\" } }",
        );
    }
    let mut criteria = Vec::with_capacity(raw.criteria.len());
    for (k, c) in raw.criteria.iter().enumerate() {
        let at = format!("{field}.criteria[{k}]");
        let id_ok = !c.id.is_empty()
            && c.id.len() <= 32
            && c.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !id_ok {
            errors.push(
                format!("{at}.id"),
                format!("\"{}\" is not a usable criterion id", c.id),
                "use 1 to 32 lowercase letters, digits, '-' or '_', e.g. \"greeting\"",
            );
        } else if raw.criteria[..k].iter().any(|o| o.id == c.id) {
            errors.push(
                format!("{at}.id"),
                format!("the id \"{}\" is used twice", c.id),
                "give every criterion its own id",
            );
        }
        if c.weight < 1 || c.weight > i64::from(MAX_WEIGHT) {
            errors.push(
                format!("{at}.weight"),
                format!("{} is not a usable weight", c.weight),
                format!("give a whole number from 1 to {MAX_WEIGHT}"),
            );
        }
        let title = bilingual(&format!("{at}.title"), &c.title, errors);
        let description = bilingual(&format!("{at}.description"), &c.description, errors);
        if let (Some(title), Some(description)) = (title, description) {
            criteria.push(Criterion {
                id: c.id.clone(),
                weight: c.weight.clamp(1, i64::from(MAX_WEIGHT)) as u32,
                title,
                description,
                critical: c.critical,
            });
        }
    }
    (errors.len() == before).then_some(Scorecard {
        criteria,
        sample_per_operator_week: raw.sample_per_operator_week as u32,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigErrors, EMBEDDED_DEFAULT_TOML};

    fn with_support_qa(qa: &str) -> Result<Config, ConfigErrors> {
        // The demo's support tenant is the second; append a scorecard to the last tenant by
        // replacing the demo's own (kept in the demo file).
        let at = EMBEDDED_DEFAULT_TOML
            .find("[tenant.qa]\n# support")
            .expect("the demo's support scorecard moved");
        let end = EMBEDDED_DEFAULT_TOML[at..]
            .find("\n\n")
            .map(|e| at + e)
            .unwrap();
        let text = format!(
            "{}{}{}",
            &EMBEDDED_DEFAULT_TOML[..at],
            qa,
            &EMBEDDED_DEFAULT_TOML[end..]
        );
        Config::from_toml_str(&text, "test.toml")
    }

    fn problem_at(result: Result<Config, ConfigErrors>, field: &str) -> String {
        let errors = result.expect_err("errors expected");
        let e = errors
            .at(field)
            .next()
            .unwrap_or_else(|| panic!("no error at {field}: {errors}"))
            .clone();
        assert_eq!(e.file, "test.toml");
        assert!(!e.fix.is_empty());
        format!("{}; {}", e.problem, e.fix)
    }

    #[test]
    fn the_demo_has_scorecards_for_both_tenants() {
        let config = Config::embedded_default();
        for id in ["dtm", "support"] {
            let card = config.tenant(id).unwrap().qa.as_ref().expect(id);
            let ids: Vec<&str> = card.criteria.iter().map(|c| c.id.as_str()).collect();
            for want in [
                "greeting",
                "identification",
                "accuracy",
                "courtesy",
                "legal",
                "closing",
            ] {
                assert!(ids.contains(&want), "{id} lacks {want}: {ids:?}");
            }
            assert!(card.criterion("legal").unwrap().critical);
            assert!(!card.criterion("greeting").unwrap().critical);
            assert!(card.sample_per_operator_week > 0);
        }
    }

    #[test]
    fn bad_scorecards_name_the_field_and_the_fix() {
        let crit = |id: &str, weight: &str| {
            format!(
                "{{ id = \"{id}\", weight = {weight}, title = {{ uz = \"a\", ru = \"б\" }}, \
                 description = {{ uz = \"a\", ru = \"б\" }} }}"
            )
        };
        let text = problem_at(
            with_support_qa(&format!(
                "[tenant.qa]\ncriteria = [{}, {}]",
                crit("a", "1"),
                crit("a", "2")
            )),
            "tenant.support.qa.criteria[1].id",
        );
        assert!(text.contains("twice"), "{text}");
        let text = problem_at(
            with_support_qa(&format!("[tenant.qa]\ncriteria = [{}]", crit("a", "0"))),
            "tenant.support.qa.criteria[0].weight",
        );
        assert!(text.contains("1 to 100"), "{text}");
        problem_at(
            with_support_qa(&format!(
                "[tenant.qa]\ncriteria = [{}]",
                crit("Big Id", "5")
            )),
            "tenant.support.qa.criteria[0].id",
        );
        problem_at(
            with_support_qa("[tenant.qa]\ncriteria = []"),
            "tenant.support.qa.criteria",
        );
        problem_at(
            with_support_qa(&format!(
                "[tenant.qa]\nsample_per_operator_week = -1\ncriteria = [{}]",
                crit("a", "5")
            )),
            "tenant.support.qa.sample_per_operator_week",
        );
        problem_at(
            with_support_qa(
                "[tenant.qa]\ncriteria = [{ id = \"a\", weight = 5, title = { uz = \"\", ru = \
                 \"б\" }, description = { uz = \"a\", ru = \"б\" } }]",
            ),
            "tenant.support.qa.criteria[0].title.uz",
        );
        let ok = with_support_qa(&format!(
            "[tenant.qa]\nsample_per_operator_week = 0\ncriteria = [{}]",
            crit("only", "5")
        ))
        .unwrap();
        let card = ok.tenant("support").unwrap().qa.clone().unwrap();
        assert_eq!(card.sample_per_operator_week, 0);
        assert_eq!(card.criteria.len(), 1);
    }
}
