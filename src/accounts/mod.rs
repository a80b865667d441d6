//! People who work the line: accounts, roles, tenants, passwords, sessions and API tokens.
//!
//! ```text
//!  browser --cookie--> session (SHA-256 in web_sessions) --\
//!  script  --Bearer--> personal token (SHA-256 in api_tokens) --> Principal {account, role, tenants}
//!  automation --Bearer--> bootstrap token (http.admin_token) --/
//! ```
//!
//! * Roles are fixed ([`Role`]); every account is scoped to tenants ([`Tenants`]); each route
//!   says which roles it allows ([`Principal::require`]) and checks the tenant of what it
//!   touches ([`Principal::sees`]): wrong role is 403, wrong tenant 404 (the thing is not
//!   there for them).
//! * Web passwords are argon2id hashes ([`hash_password`]), separate from the SIP HA1.
//! * Session cookies and API tokens are 256-bit random secrets; the store keeps only their
//!   SHA-256, so a copy of the database opens no session.
//! * Login attempts go through the pure [`limiter::LoginLimiter`] before the password is
//!   checked.
//!
//! The queries live in [`db`]; nothing here reads a clock.

pub mod db;
pub mod limiter;
pub mod people;
pub mod roles;

use serde::Serialize;
use sha2::Digest;
use std::fmt;

/// What a person may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes calls: the desk, their own state and figures, after-call work, the knowledge base.
    Operator,
    /// Runs the floor of their tenants: queues, operators, live calls, surge, dispositions.
    Supervisor,
    /// Writes the knowledge base of their tenants.
    Editor,
    /// The client's responsible officer: reads their own tenant's figures, calls and audit log.
    Officer,
    /// Everything, every tenant; manages accounts.
    Admin,
}

impl Role {
    /// Every role, in the order pages list them.
    pub const ALL: [Role; 5] = [
        Role::Operator,
        Role::Supervisor,
        Role::Editor,
        Role::Officer,
        Role::Admin,
    ];

    /// The name used in the store, the config and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Editor => "editor",
            Role::Officer => "officer",
            Role::Admin => "admin",
        }
    }

    /// Parses [`Role::as_str`]'s names.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tenants an account works for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Tenants {
    /// Every tenant (`*`; admins).
    All,
    /// These tenants.
    Some(Vec<String>),
}

impl Tenants {
    /// Parses the stored form: `*` or ids separated by commas.
    pub fn parse(s: &str) -> Tenants {
        if s.trim() == "*" {
            return Tenants::All;
        }
        Tenants::Some(
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        match self {
            Tenants::All => "*".into(),
            Tenants::Some(ids) => ids.join(","),
        }
    }

    /// Whether `tenant` is one of them.
    pub fn allows(&self, tenant: &str) -> bool {
        match self {
            Tenants::All => true,
            Tenants::Some(ids) => ids.iter().any(|t| t == tenant),
        }
    }

    /// The ids, or `None` for every tenant.
    pub fn ids(&self) -> Option<&[String]> {
        match self {
            Tenants::All => None,
            Tenants::Some(ids) => Some(ids),
        }
    }
}

/// The language a person reads navbat in (D: Uzbek Latin and Russian everywhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// O'zbek (lotin).
    #[default]
    Uz,
    /// Русский.
    Ru,
}

impl Lang {
    /// `uz` or `ru`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Uz => "uz",
            Lang::Ru => "ru",
        }
    }

    /// Parses `uz` / `ru`.
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "uz" => Some(Lang::Uz),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }
}

/// An account as the store keeps it (the password hash stays inside [`db`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Login name.
    pub username: String,
    /// The name pages show.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Tenants.
    pub tenants: Tenants,
    /// The SIP extension of an operator or supervisor.
    pub operator_ext: Option<String>,
    /// Language of the pages.
    pub language: Lang,
    /// A disabled account cannot log in and its sessions and tokens stop working.
    pub disabled: bool,
}

/// How a request proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// A browser session; forms must carry this CSRF token.
    Session {
        /// The session's CSRF token.
        csrf: String,
        /// SHA-256 of the cookie (to log out).
        id_hash: String,
    },
    /// A personal API token (its public id).
    Token(String),
    /// The bootstrap admin token from the configuration (automation).
    Bootstrap,
}

/// Who is asking: the account behind a session or token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The account.
    pub account: Account,
    /// How they proved it.
    pub via: Via,
}

/// Why a request may not do what it asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The role may not (403).
    Role,
    /// The thing belongs to a tenant they do not see (404).
    Tenant,
}

impl Principal {
    /// The bootstrap principal (config `http.admin_token`): an admin of every tenant.
    pub fn bootstrap() -> Principal {
        Principal {
            account: Account {
                username: "bootstrap-token".into(),
                display_name: "bootstrap token".into(),
                role: Role::Admin,
                tenants: Tenants::All,
                operator_ext: None,
                language: Lang::Uz,
                disabled: false,
            },
            via: Via::Bootstrap,
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.account.role
    }

    /// Login name.
    pub fn username(&self) -> &str {
        &self.account.username
    }

    /// `Ok` when the role is one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Denied> {
        if roles.contains(&self.account.role) {
            Ok(())
        } else {
            Err(Denied::Role)
        }
    }

    /// `Ok` when the account works for `tenant`.
    pub fn sees(&self, tenant: &str) -> Result<(), Denied> {
        if self.account.tenants.allows(tenant) {
            Ok(())
        } else {
            Err(Denied::Tenant)
        }
    }

    /// Whether the principal is the operator on extension `ext`.
    pub fn is_operator(&self, ext: &str) -> bool {
        self.account.operator_ext.as_deref() == Some(ext)
    }

    /// The session's CSRF token, if this is a browser session.
    pub fn csrf(&self) -> Option<&str> {
        match &self.via {
            Via::Session { csrf, .. } => Some(csrf),
            _ => None,
        }
    }
}

/// Argon2id with the library's defaults (19 MiB, 2 passes, 1 lane: OWASP's first
/// recommendation), as a PHC string with its own salt.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(hash) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash that no password matches, verified when the account does not exist so that an
/// unknown user costs the same time as a wrong password (no enumeration by timing).
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&new_secret()))
}

/// Why a new username or password is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Bad username.
    #[error("username {0:?}: use 2-32 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")]
    Username(String),
    /// Password too short.
    #[error("the password is shorter than {MIN_PASSWORD} characters")]
    ShortPassword,
    /// Unknown role.
    #[error("role {0:?}: use operator, supervisor, editor, officer or admin")]
    Role(String),
    /// Tenant list.
    #[error("tenants {0:?}: give tenant ids separated by commas (or * for an admin)")]
    Tenants(String),
}

/// The demo password of a demo account: `demo-<username>` (README; refused off loopback).
pub fn demo_password(username: &str) -> String {
    format!("demo-{username}")
}

/// Shortest web password accepted.
pub const MIN_PASSWORD: usize = 10;

/// Checks a new username.
pub fn check_username(name: &str) -> Result<(), AccountError> {
    let ok = (2..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(AccountError::Username(name.to_owned()))
    }
}

/// Checks a new password.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < MIN_PASSWORD {
        Err(AccountError::ShortPassword)
    } else {
        Ok(())
    }
}

/// A fresh 256-bit secret as 64 hex digits (session cookies, API tokens, CSRF tokens).
pub fn new_secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// SHA-256 of a secret, as stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// Compares two strings in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse battery"));
        assert!(!verify_password(&h, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
        assert!(!verify_password(dummy_hash(), ""));
    }

    #[test]
    fn roles_and_tenants_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        assert_eq!(Tenants::parse("*"), Tenants::All);
        let t = Tenants::parse("dtm, support");
        assert!(t.allows("dtm") && t.allows("support") && !t.allows("x"));
        assert_eq!(t.to_stored(), "dtm,support");
    }

    #[test]
    fn principal_checks_role_then_tenant() {
        let mut p = Principal::bootstrap();
        p.account.role = Role::Officer;
        p.account.tenants = Tenants::parse("dtm");
        assert_eq!(
            p.require(&[Role::Supervisor, Role::Admin]),
            Err(Denied::Role)
        );
        assert_eq!(p.require(&[Role::Officer]), Ok(()));
        assert_eq!(p.sees("support"), Err(Denied::Tenant));
        assert_eq!(p.sees("dtm"), Ok(()));
    }

    #[test]
    fn usernames_and_passwords_are_checked() {
        assert!(check_username("op1001").is_ok());
        assert!(check_username("officer-dtm").is_ok());
        assert!(check_username("Op").is_err());
        assert!(check_username("-x").is_err());
        assert!(check_username("a").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough pw").is_ok());
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = new_secret();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_secret());
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), a);
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &new_secret()));
    }
}
