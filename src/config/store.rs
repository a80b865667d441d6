//! `[node]`, `[database]`, `[presence]` and `[history]`: where events are kept and how several
//! router nodes share operator presence.
//!
//! The defaults work on a bare machine: SQLite under `data/`, the journal under `data/journal`,
//! presence in memory, repeat calls looked up over 7 days.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{Collector, ConfigError};
use super::raw::{RawDatabase, RawHistory, RawNode, RawPresence};

/// The SQLite database used when neither `database.url` nor `DATABASE_URL` names one.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/navbat.db";

/// `[node]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// This router's name among several sharing Redis and the database; unique per node.
    pub id: String,
}

/// A database location, checked for its scheme.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://path` (relative paths are relative to the working directory).
    Sqlite(String),
    /// `postgres://user:password@host:port/db` (or `postgresql://`).
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses a URL by its scheme; the error text says which schemes are known.
    pub fn parse(text: &str) -> Result<DatabaseUrl, String> {
        if text.starts_with("sqlite:") {
            Ok(DatabaseUrl::Sqlite(text.to_owned()))
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(text.to_owned()))
        } else {
            Err(format!(
                "\"{}\" is neither a sqlite: nor a postgres:// URL",
                redact(text)
            ))
        }
    }

    /// The URL itself, with its password: for connecting only, never for a log.
    pub fn expose(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(url) | DatabaseUrl::Postgres(url) => url,
        }
    }

    /// `"sqlite"` or `"postgres"` (the metrics label).
    pub fn backend(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite(_) => "sqlite",
            DatabaseUrl::Postgres(_) => "postgres",
        }
    }
}

/// Shows the URL with any password replaced by `***`.
impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(self.expose()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `scheme://user:secret@host` -> `scheme://user:***@host`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// `[database]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// `database.url`; `None` means `DATABASE_URL`, else [`DEFAULT_DATABASE_URL`]
    /// (see [`DatabaseConfig::resolve_url`]).
    pub url: Option<DatabaseUrl>,
    /// Directory of the append-only event journal; one navbat process per directory.
    pub journal_dir: PathBuf,
    /// Events the in-process buffer in front of the journal holds; beyond it events are shed
    /// (and counted), so it is sized for minutes of the peak rate.
    pub buffer_events: usize,
    /// Most events written to the journal per fsync.
    pub journal_batch_events: usize,
    /// Most events written to the database per transaction.
    pub db_batch_events: usize,
    /// Size after which the journal starts a new segment file.
    pub journal_segment_bytes: u64,
}

impl DatabaseConfig {
    /// The database to use: `database.url` if set, else `DATABASE_URL` (`env`), else SQLite
    /// under `data/`. A bad `DATABASE_URL` is an error naming the variable.
    pub fn resolve_url(&self, env: Option<&str>) -> Result<DatabaseUrl, ConfigError> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        match env.filter(|text| !text.is_empty()) {
            Some(text) => DatabaseUrl::parse(text).map_err(|problem| ConfigError {
                file: "environment".to_owned(),
                field: "DATABASE_URL".to_owned(),
                problem,
                fix: "set DATABASE_URL to postgres://user:password@host:5432/navbat or \
                      sqlite://data/navbat.db, or unset it"
                    .to_owned(),
            }),
            None => Ok(DatabaseUrl::Sqlite(DEFAULT_DATABASE_URL.to_owned())),
        }
    }
}

/// Where presence lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceBackend {
    /// This process only (one node).
    Memory,
    /// A Redis server shared by every node.
    Redis {
        /// `redis://host:port/db`.
        url: String,
    },
}

/// `[presence]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceConfig {
    /// Memory or Redis.
    pub backend: PresenceBackend,
    /// How often this node refreshes its operators in Redis and reads the others'.
    pub heartbeat: Duration,
    /// How long an operator entry lives without a heartbeat (a dead node's operators are
    /// released after it); several heartbeats long.
    pub expiry: Duration,
}

/// `[history]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Earlier calls from the same number within this window make a call a repeat call (D20).
    pub repeat_window: Duration,
}

const DAY: u64 = 86_400;

pub(crate) fn check_node(
    raw: &RawNode,
    presence: &RawPresence,
    errors: &mut Collector,
) -> NodeConfig {
    let id = raw.id.clone().unwrap_or_else(|| "navbat".to_owned());
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        errors.push(
            "node.id",
            format!("\"{id}\" is empty, longer than 64 or has characters other than letters, digits, - _ ."),
            "use a short name such as \"node-a\"",
        );
    }
    if presence.backend == "redis" && raw.id.is_none() {
        errors.push(
            "node.id",
            "several nodes share Redis presence, so each needs its own name",
            "add [node] id = \"node-a\" (a different id on every node)",
        );
    }
    NodeConfig { id }
}

pub(crate) fn check_database(raw: &RawDatabase, errors: &mut Collector) -> Option<DatabaseConfig> {
    let before = errors.len();
    let url = match raw.url.as_deref() {
        None => None,
        Some(text) => match DatabaseUrl::parse(text) {
            Ok(url) => Some(url),
            Err(problem) => {
                errors.push(
                    "database.url",
                    problem,
                    "write postgres://user:password@host:5432/navbat or sqlite://data/navbat.db, \
                     or remove the key to use DATABASE_URL or the embedded SQLite default",
                );
                None
            }
        },
    };
    if raw.journal_dir.trim().is_empty() {
        errors.push(
            "database.journal_dir",
            "the journal directory is empty",
            "set a directory on a local disk, e.g. \"data/journal\"",
        );
    }
    let mut positive = |field: &str, value: u64, fix: &str| {
        if value == 0 {
            errors.push(field, "must be greater than 0", fix);
        }
    };
    positive(
        "database.buffer_events",
        raw.buffer_events,
        "leave it out (default 262144) or give a number of events",
    );
    positive(
        "database.journal_batch_events",
        raw.journal_batch_events,
        "leave it out (default 1024)",
    );
    positive(
        "database.db_batch_events",
        raw.db_batch_events,
        "leave it out (default 4096)",
    );
    positive(
        "database.journal_segment_mib",
        raw.journal_segment_mib,
        "leave it out (default 64)",
    );
    if raw.buffer_events > 0 && raw.buffer_events < 1024 {
        errors.push(
            "database.buffer_events",
            format!(
                "{} events is less than one second of a surge; events beyond the buffer are lost",
                raw.buffer_events
            ),
            "set at least 1024 (the default 262144 is minutes of the peak)",
        );
    }
    if errors.len() > before {
        return None;
    }
    Some(DatabaseConfig {
        url,
        journal_dir: PathBuf::from(&raw.journal_dir),
        buffer_events: raw.buffer_events as usize,
        journal_batch_events: raw.journal_batch_events as usize,
        db_batch_events: raw.db_batch_events as usize,
        journal_segment_bytes: raw.journal_segment_mib.saturating_mul(1024 * 1024),
    })
}

pub(crate) fn check_presence(raw: &RawPresence, errors: &mut Collector) -> Option<PresenceConfig> {
    let before = errors.len();
    let backend = match (raw.backend.as_str(), raw.redis_url.as_deref()) {
        ("memory", None) => Some(PresenceBackend::Memory),
        ("memory", Some(_)) => {
            errors.push(
                "presence.redis_url",
                "a Redis URL is set but presence.backend is \"memory\", so it would be ignored",
                "set backend = \"redis\" to share presence, or remove redis_url",
            );
            None
        }
        ("redis", Some(url)) if url.starts_with("redis://") || url.starts_with("rediss://") => {
            Some(PresenceBackend::Redis {
                url: url.to_owned(),
            })
        }
        ("redis", Some(url)) => {
            errors.push(
                "presence.redis_url",
                format!("\"{}\" is not a redis:// URL", redact(url)),
                "write redis://host:6379 (or redis://host:6379/2 for database 2)",
            );
            None
        }
        ("redis", None) => {
            errors.push(
                "presence.redis_url",
                "backend \"redis\" needs the server's URL",
                "add redis_url = \"redis://127.0.0.1:6379\"",
            );
            None
        }
        (other, _) => {
            errors.push(
                "presence.backend",
                format!("unknown backend \"{other}\""),
                "write \"memory\" (one node) or \"redis\" (several nodes)",
            );
            None
        }
    };
    if raw.heartbeat_secs == 0 {
        errors.push(
            "presence.heartbeat_secs",
            "a heartbeat of 0 seconds would spin",
            "set 1 to 5 (default 2)",
        );
    }
    if raw.expiry_secs < raw.heartbeat_secs.saturating_mul(3) {
        errors.push(
            "presence.expiry_secs",
            format!(
                "expiry {} s is less than three heartbeats ({} s each): one late heartbeat would \
                 release a live node's operators",
                raw.expiry_secs, raw.heartbeat_secs
            ),
            "make expiry_secs at least 3 x heartbeat_secs (defaults 10 and 2)",
        );
    }
    if errors.len() > before {
        return None;
    }
    Some(PresenceConfig {
        backend: backend?,
        heartbeat: Duration::from_secs(raw.heartbeat_secs),
        expiry: Duration::from_secs(raw.expiry_secs),
    })
}

pub(crate) fn check_history(raw: &RawHistory, errors: &mut Collector) -> Option<HistoryConfig> {
    if raw.repeat_window_days == 0 || raw.repeat_window_days > 366 {
        errors.push(
            "history.repeat_window_days",
            format!("{} days is outside 1..=366", raw.repeat_window_days),
            "set the window in days, e.g. 7",
        );
        return None;
    }
    Some(HistoryConfig {
        repeat_window: Duration::from_secs(raw.repeat_window_days * DAY),
    })
}
