//! `[desk]` (the web desk: sessions, login limits, break reasons), `[[account]]` (accounts
//! created at start-up when missing, e.g. the demo's) and `[tenant.desk]` (after-call work).

use super::error::Collector;
use super::Bilingual;
use crate::accounts::limiter::LoginPolicy;
use crate::accounts::{Lang, Role, Tenants};
use serde::Deserialize;
use std::time::Duration;

/// `[desk]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDesk {
    #[serde(default = "default_session_hours")]
    pub session_hours: f64,
    #[serde(default)]
    pub secure_cookies: bool,
    #[serde(default)]
    pub full_number_roles: Vec<String>,
    #[serde(default = "default_break_reasons")]
    pub break_reasons: Vec<RawBreakReason>,
    #[serde(default)]
    pub login_limit: RawLoginLimit,
}

impl Default for RawDesk {
    fn default() -> RawDesk {
        RawDesk {
            session_hours: default_session_hours(),
            secure_cookies: false,
            full_number_roles: Vec::new(),
            break_reasons: default_break_reasons(),
            login_limit: RawLoginLimit::default(),
        }
    }
}

fn default_session_hours() -> f64 {
    12.0
}

fn default_break_reasons() -> Vec<RawBreakReason> {
    let r = |code: &str, uz: &str, ru: &str| RawBreakReason {
        code: code.into(),
        label: super::raw::RawBilingual {
            uz: uz.into(),
            ru: ru.into(),
        },
    };
    vec![
        r("lunch", "Tushlik", "Обед"),
        r("training", "O'qish", "Обучение"),
        r("technical", "Texnik nosozlik", "Техническая неполадка"),
        r("other", "Boshqa", "Другое"),
    ]
}

/// One break reason as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreakReason {
    pub code: String,
    pub label: super::raw::RawBilingual,
}

/// `[desk.login_limit]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoginLimit {
    #[serde(default = "d_window")]
    pub window_secs: u64,
    #[serde(default = "d_pair_after")]
    pub account_source_after: u32,
    #[serde(default = "d_max_delay")]
    pub account_source_max_delay_secs: u64,
    #[serde(default = "d_account_after")]
    pub account_after: u32,
    #[serde(default = "d_spacing")]
    pub account_spacing_secs: u64,
    #[serde(default = "d_source_after")]
    pub source_after: u32,
    #[serde(default = "d_source_block")]
    pub source_block_secs: u64,
}

impl Default for RawLoginLimit {
    fn default() -> RawLoginLimit {
        RawLoginLimit {
            window_secs: d_window(),
            account_source_after: d_pair_after(),
            account_source_max_delay_secs: d_max_delay(),
            account_after: d_account_after(),
            account_spacing_secs: d_spacing(),
            source_after: d_source_after(),
            source_block_secs: d_source_block(),
        }
    }
}

fn d_window() -> u64 {
    900
}
fn d_pair_after() -> u32 {
    5
}
fn d_max_delay() -> u64 {
    900
}
fn d_account_after() -> u32 {
    20
}
fn d_spacing() -> u64 {
    10
}
fn d_source_after() -> u32 {
    50
}
fn d_source_block() -> u64 {
    900
}

/// `[[account]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccount {
    pub username: String,
    pub name: String,
    pub role: String,
    pub tenants: Vec<String>,
    pub ext: Option<String>,
    #[serde(default = "default_lang")]
    pub language: String,
    pub password_hash: String,
}

fn default_lang() -> String {
    "uz".into()
}

/// `[tenant.desk]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantDesk {
    pub categories: Option<Vec<String>>,
    pub classifier: Option<Vec<RawClassifierTopic>>,
    #[serde(default)]
    pub require_caller_details: bool,
    pub wrap_up_ends: Option<String>,
}

/// One topic of the operator's classifier as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClassifierTopic {
    pub topic: String,
    pub label: super::raw::RawBilingual,
}

/// A reason for a break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakReason {
    /// Code (events, audit).
    pub code: String,
    /// Label in both languages.
    pub label: Bilingual,
}

/// `[desk]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskConfig {
    /// A session ends this long after login.
    pub session_ttl: Duration,
    /// Mark cookies `Secure` (set it when a TLS proxy serves the desk).
    pub secure_cookies: bool,
    /// Roles that see callers' full numbers (default none: everyone sees them masked).
    pub full_number_roles: Vec<Role>,
    /// Break reasons offered on the desk.
    pub break_reasons: Vec<BreakReason>,
    /// Login attempt limits.
    pub login_limit: LoginPolicy,
    /// Accounts created at start-up when missing.
    pub accounts: Vec<SeedAccount>,
}

impl Default for DeskConfig {
    fn default() -> DeskConfig {
        let mut c = Collector::new("defaults");
        check_desk(&RawDesk::default(), &[], None, &mut c).unwrap_or(DeskConfig {
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            full_number_roles: Vec::new(),
            break_reasons: Vec::new(),
            login_limit: LoginPolicy::default(),
            accounts: Vec::new(),
        })
    }
}

/// An account from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedAccount {
    /// Login.
    pub username: String,
    /// Shown name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Tenants.
    pub tenants: Tenants,
    /// SIP extension.
    pub ext: Option<String>,
    /// Language.
    pub language: Lang,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// What ends an operator's wrap-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapUpEnds {
    /// Saving the after-call form ends it (the queue's wrap-up time still caps it).
    Saved,
    /// The queue's wrap-up time only.
    Timer,
}

/// `[tenant.desk]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantDesk {
    /// Categories offered (D20), a subset of question, complaint, suggestion, application.
    pub categories: Vec<String>,
    /// The operator's topic list (defaults to the IVR topics).
    pub classifier: Vec<(String, Bilingual)>,
    /// Name, organisation and STIR of the caller are required (C8).
    pub require_caller_details: bool,
    /// What ends wrap-up.
    pub wrap_up_ends: WrapUpEnds,
}

/// The categories the store knows.
pub const CATEGORIES: [&str; 4] = ["question", "complaint", "suggestion", "application"];

pub(crate) fn check_desk(
    raw: &RawDesk,
    accounts: &[Option<RawAccount>],
    http_loopback: Option<bool>,
    errors: &mut Collector,
) -> Option<DeskConfig> {
    let mut ok = true;
    if !(raw.session_hours > 0.0 && raw.session_hours <= 24.0 * 30.0) {
        ok = false;
        errors.push(
            "desk.session_hours",
            format!("{} is not a usable session length", raw.session_hours),
            "give hours between 0.01 and 720 (default 12)",
        );
    }
    let mut roles = Vec::new();
    for (i, r) in raw.full_number_roles.iter().enumerate() {
        match Role::parse(r) {
            Some(role) => roles.push(role),
            None => {
                ok = false;
                errors.push(
                    format!("desk.full_number_roles[{i}]"),
                    format!("unknown role {r:?}"),
                    "use operator, supervisor, editor, officer or admin",
                );
            }
        }
    }
    let mut reasons = Vec::new();
    for (i, r) in raw.break_reasons.iter().enumerate() {
        if r.code.trim().is_empty() || reasons.iter().any(|b: &BreakReason| b.code == r.code) {
            ok = false;
            errors.push(
                format!("desk.break_reasons[{i}].code"),
                "empty or repeated code",
                "give each break reason its own code",
            );
        }
        reasons.push(BreakReason {
            code: r.code.clone(),
            label: Bilingual {
                uz: r.label.uz.clone(),
                ru: r.label.ru.clone(),
            },
        });
    }
    let l = &raw.login_limit;
    if l.account_source_after == 0 || l.account_after == 0 || l.source_after == 0 {
        ok = false;
        errors.push(
            "desk.login_limit",
            "a failure count of 0 would refuse every login",
            "give counts of at least 1 (defaults: 5, 20, 50)",
        );
    }
    let policy = LoginPolicy {
        window_ms: l.window_secs.saturating_mul(1000),
        pair_after: l.account_source_after,
        max_delay_ms: l.account_source_max_delay_secs.saturating_mul(1000),
        account_after: l.account_after,
        account_spacing_ms: l.account_spacing_secs.saturating_mul(1000),
        source_after: l.source_after,
        source_block_ms: l.source_block_secs.saturating_mul(1000),
        max_entries: 100_000,
    };
    let mut seeds = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        let Some(a) = a else {
            ok = false;
            continue;
        };
        let at = format!("account[{i}]");
        if let Err(e) = crate::accounts::check_username(&a.username) {
            ok = false;
            errors.push(
                format!("{at}.username"),
                e.to_string(),
                "choose another name",
            );
        }
        if seeds.iter().any(|s: &SeedAccount| s.username == a.username) {
            ok = false;
            errors.push(
                format!("{at}.username"),
                format!("{} is listed twice", a.username),
                "keep one [[account]] per username",
            );
        }
        let role = Role::parse(&a.role);
        if role.is_none() {
            ok = false;
            errors.push(
                format!("{at}.role"),
                format!("unknown role {:?}", a.role),
                "use operator, supervisor, editor, officer or admin",
            );
        }
        let language = Lang::parse(&a.language);
        if language.is_none() {
            ok = false;
            errors.push(format!("{at}.language"), "unknown language", "use uz or ru");
        }
        if argon2::password_hash::phc::PasswordHash::new(&a.password_hash).is_err()
            || !a.password_hash.starts_with("$argon2id$")
        {
            ok = false;
            errors.push(
                format!("{at}.password_hash"),
                "not an argon2id PHC string",
                "create the account with `navbat user add` instead, or paste the hash that \
                 `navbat user hash` prints",
            );
        } else if http_loopback == Some(false)
            && crate::accounts::verify_password(
                &a.password_hash,
                &crate::accounts::demo_password(&a.username),
            )
        {
            ok = false;
            errors.push(
                format!("{at}.password_hash"),
                format!("{} has the demo password", a.username),
                "demo accounts are only allowed while HTTP listens on loopback; set a real \
                 password hash (`navbat user hash`)",
            );
        }
        let tenants = if a.tenants.iter().any(|t| t == "*") {
            Tenants::All
        } else {
            Tenants::Some(a.tenants.clone())
        };
        if let (Some(role), Some(language)) = (role, language) {
            seeds.push(SeedAccount {
                username: a.username.clone(),
                name: a.name.clone(),
                role,
                tenants,
                ext: a.ext.clone(),
                language,
                password_hash: a.password_hash.clone(),
            });
        }
    }
    ok.then_some(DeskConfig {
        session_ttl: Duration::from_secs_f64(raw.session_hours.clamp(0.0001, 720.0) * 3600.0),
        secure_cookies: raw.secure_cookies,
        full_number_roles: roles,
        break_reasons: reasons,
        login_limit: policy,
        accounts: seeds,
    })
}

/// Checks `[tenant.desk]` of the tenant at `label`, with its IVR topics as the default
/// classifier.
pub(crate) fn check_tenant_desk(
    raw: Option<&RawTenantDesk>,
    label: &str,
    ivr_topics: &[(String, Bilingual)],
    errors: &mut Collector,
) -> Option<TenantDesk> {
    let default = RawTenantDesk::default();
    let raw = raw.unwrap_or(&default);
    let mut ok = true;
    let categories = raw
        .categories
        .clone()
        .unwrap_or_else(|| CATEGORIES.iter().map(|c| (*c).to_owned()).collect());
    for (i, c) in categories.iter().enumerate() {
        if !CATEGORIES.contains(&c.as_str()) {
            ok = false;
            errors.push(
                format!("{label}.desk.categories[{i}]"),
                format!("unknown category {c:?}"),
                "use question, complaint, suggestion or application",
            );
        }
    }
    if categories.is_empty() {
        ok = false;
        errors.push(
            format!("{label}.desk.categories"),
            "no category is offered",
            "list at least one of question, complaint, suggestion, application",
        );
    }
    let classifier = match &raw.classifier {
        Some(list) => list
            .iter()
            .map(|t| {
                (
                    t.topic.clone(),
                    Bilingual {
                        uz: t.label.uz.clone(),
                        ru: t.label.ru.clone(),
                    },
                )
            })
            .collect(),
        None => ivr_topics.to_vec(),
    };
    let wrap_up_ends = match raw.wrap_up_ends.as_deref() {
        None | Some("saved") => WrapUpEnds::Saved,
        Some("timer") => WrapUpEnds::Timer,
        Some(other) => {
            ok = false;
            errors.push(
                format!("{label}.desk.wrap_up_ends"),
                format!("unknown value {other:?}"),
                "use \"saved\" (saving the form ends wrap-up) or \"timer\" (the queue's \
                 wrap_up_secs only)",
            );
            WrapUpEnds::Saved
        }
    };
    ok.then_some(TenantDesk {
        categories,
        classifier,
        require_caller_details: raw.require_caller_details,
        wrap_up_ends,
    })
}
