//! The after-call form, checked (pure): what the operator typed in, the tenant's rules, and
//! either a clean disposition or every problem at once, each with its field.

use crate::config::desk::TenantDesk;
use serde::Deserialize;

/// The form as posted.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Form {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: String,
    /// Category code.
    #[serde(default)]
    pub category: String,
    /// Topic code (may be empty).
    #[serde(default)]
    pub topic: String,
    /// `resolved`, `unresolved`, `disputed`.
    #[serde(default)]
    pub outcome: String,
    /// Notes.
    #[serde(default)]
    pub notes: String,
    /// Caller's name.
    #[serde(default)]
    pub caller_name: String,
    /// Organisation.
    #[serde(default)]
    pub organisation: String,
    /// STIR.
    #[serde(default)]
    pub stir: String,
    /// "1": open a request for the call (a call back or an answer is owed).
    #[serde(default)]
    pub open_request: String,
}

/// A field's problem, named by the text key the page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Category missing or not the tenant's.
    Category,
    /// Topic not in the classifier.
    Topic,
    /// Outcome missing or unknown.
    Outcome,
    /// Notes too long.
    NotesTooLong,
    /// Name required and missing.
    NameRequired,
    /// Organisation required and missing.
    OrganisationRequired,
    /// STIR not 9 digits (C8).
    Stir,
}

impl Problem {
    /// The field it concerns (the form's input name).
    pub fn field(self) -> &'static str {
        match self {
            Problem::Category => "category",
            Problem::Topic => "topic",
            Problem::Outcome => "outcome",
            Problem::NotesTooLong => "notes",
            Problem::NameRequired => "caller_name",
            Problem::OrganisationRequired => "organisation",
            Problem::Stir => "stir",
        }
    }

    /// The message in `t`'s language.
    pub fn message(self, t: &super::i18n::T) -> &'static str {
        match self {
            Problem::Category => t.err_category,
            Problem::Topic => t.err_topic,
            Problem::Outcome => t.err_outcome,
            Problem::NotesTooLong => t.err_notes_long,
            Problem::NameRequired => t.err_name_required,
            Problem::OrganisationRequired => t.err_org_required,
            Problem::Stir => t.err_stir,
        }
    }
}

/// The outcomes an operator can give.
pub const OUTCOMES: [&str; 3] = ["resolved", "unresolved", "disputed"];
/// Longest notes.
pub const NOTES_MAX: usize = 4000;

/// A checked form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Category.
    pub category: String,
    /// Topic, if one.
    pub topic: Option<String>,
    /// Outcome.
    pub outcome: String,
    /// Notes, trimmed.
    pub notes: String,
    /// Name (when given or required).
    pub caller_name: Option<String>,
    /// Organisation.
    pub organisation: Option<String>,
    /// STIR (9 digits).
    pub stir: Option<String>,
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.chars().take(200).collect())
}

/// Checks `form` against the tenant's rules.
pub fn check(form: &Form, rules: &TenantDesk) -> Result<Checked, Vec<Problem>> {
    let mut problems = Vec::new();
    if !rules.categories.iter().any(|c| c == &form.category) {
        problems.push(Problem::Category);
    }
    let topic = opt(&form.topic);
    if let Some(t) = &topic {
        if !rules.classifier.iter().any(|(code, _)| code == t) {
            problems.push(Problem::Topic);
        }
    }
    if !OUTCOMES.contains(&form.outcome.as_str()) {
        problems.push(Problem::Outcome);
    }
    let notes = form.notes.trim().to_owned();
    if notes.chars().count() > NOTES_MAX {
        problems.push(Problem::NotesTooLong);
    }
    let caller_name = opt(&form.caller_name);
    let organisation = opt(&form.organisation);
    let stir = opt(&form.stir);
    if rules.require_caller_details {
        if caller_name.is_none() {
            problems.push(Problem::NameRequired);
        }
        if organisation.is_none() {
            problems.push(Problem::OrganisationRequired);
        }
    }
    match &stir {
        Some(s) if s.len() != 9 || !s.bytes().all(|b| b.is_ascii_digit()) => {
            problems.push(Problem::Stir)
        }
        None if rules.require_caller_details => problems.push(Problem::Stir),
        _ => {}
    }
    if problems.is_empty() {
        Ok(Checked {
            category: form.category.clone(),
            topic,
            outcome: form.outcome.clone(),
            notes,
            caller_name,
            organisation,
            stir,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::desk::WrapUpEnds;
    use crate::config::Bilingual;

    fn rules(require: bool) -> TenantDesk {
        TenantDesk {
            categories: vec!["question".into(), "complaint".into()],
            classifier: vec![(
                "results".into(),
                Bilingual {
                    uz: "Natijalar".into(),
                    ru: "Результаты".into(),
                },
            )],
            require_caller_details: require,
            wrap_up_ends: WrapUpEnds::Saved,
        }
    }

    fn form() -> Form {
        Form {
            category: "question".into(),
            topic: "results".into(),
            outcome: "resolved".into(),
            notes: "  explained where results are published  ".into(),
            ..Form::default()
        }
    }

    #[test]
    fn a_plain_form_passes_and_is_trimmed() {
        let c = check(&form(), &rules(false)).unwrap();
        assert_eq!(c.notes, "explained where results are published");
        assert_eq!(c.topic.as_deref(), Some("results"));
        assert_eq!(c.stir, None);
    }

    #[test]
    fn stir_must_be_nine_digits_and_details_are_required_where_the_tenant_says() {
        let mut f = form();
        assert_eq!(
            check(&f, &rules(true)),
            Err(vec![
                Problem::NameRequired,
                Problem::OrganisationRequired,
                Problem::Stir
            ])
        );
        f.caller_name = "Aziz Karimov".into();
        f.organisation = "Turon LLC".into();
        f.stir = "12345678".into();
        assert_eq!(check(&f, &rules(true)), Err(vec![Problem::Stir]));
        f.stir = "12345678a".into();
        assert_eq!(check(&f, &rules(true)), Err(vec![Problem::Stir]));
        f.stir = "123456789".into();
        assert_eq!(
            check(&f, &rules(true)).unwrap().stir.as_deref(),
            Some("123456789")
        );
        // A STIR given where not required is still checked.
        f.stir = "1234".into();
        assert_eq!(check(&f, &rules(false)), Err(vec![Problem::Stir]));
    }

    #[test]
    fn unknown_codes_are_refused() {
        let f = Form {
            category: "suggestion".into(),
            topic: "weather".into(),
            outcome: "maybe".into(),
            notes: "x".repeat(NOTES_MAX + 1),
            ..Form::default()
        };
        assert_eq!(
            check(&f, &rules(false)),
            Err(vec![
                Problem::Category,
                Problem::Topic,
                Problem::Outcome,
                Problem::NotesTooLong
            ])
        );
    }
}
