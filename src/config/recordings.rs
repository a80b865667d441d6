//! `[recordings]` (where the key file is, how often retention runs, how other nodes reach
//! this one's recordings) and `[tenant.recordings]` (how long a tenant's recordings are kept,
//! whether its operators may hear their own calls).

use super::error::Collector;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[recordings]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecordings {
    #[serde(default = "default_key_file")]
    pub key_file: String,
    #[serde(default = "default_retention_check")]
    pub retention_check_secs: u64,
    pub node_url: Option<String>,
}

impl Default for RawRecordings {
    fn default() -> RawRecordings {
        RawRecordings {
            key_file: default_key_file(),
            retention_check_secs: default_retention_check(),
            node_url: None,
        }
    }
}

fn default_key_file() -> String {
    "keys/recordings.key".to_owned()
}

fn default_retention_check() -> u64 {
    3600
}

/// `[recordings]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingsConfig {
    /// The recording key file (outside the data directory): one key per line, the last one
    /// encrypts new recordings.
    pub key_file: PathBuf,
    /// How often the retention job looks for expired recordings.
    pub retention_check: Duration,
    /// The address other nodes fetch this node's recordings from (`http://host:port`);
    /// `None`: `http://` and `http.listen`.
    pub node_url: Option<String>,
}

/// `[tenant.recordings]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenantRecordings {
    pub retention_months: Option<i64>,
    #[serde(default)]
    pub operators_hear_own: bool,
}

/// `[tenant.recordings]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantRecordings {
    /// Whole months a recording is kept after its call (default 12).
    pub retention_months: u32,
    /// An operator may hear the recordings of their own calls (default no).
    pub operators_hear_own: bool,
}

/// Months a recording is kept when `retention_months` is not set.
pub const DEFAULT_RETENTION_MONTHS: u32 = 12;
/// The longest retention accepted (ten years).
pub const MAX_RETENTION_MONTHS: u32 = 120;

impl Default for TenantRecordings {
    fn default() -> TenantRecordings {
        TenantRecordings {
            retention_months: DEFAULT_RETENTION_MONTHS,
            operators_hear_own: false,
        }
    }
}

/// Checks `[recordings]`; `data_dirs` are the directories of the data the key protects
/// (`media.recordings_dir`, `database.journal_dir`), which the key file must not be in.
pub(crate) fn check_recordings(
    raw: &RawRecordings,
    data_dirs: &[(&str, &str)],
    errors: &mut Collector,
) -> Option<RecordingsConfig> {
    let mut ok = true;
    let key_file = raw.key_file.trim();
    if key_file.is_empty() {
        ok = false;
        errors.push(
            "recordings.key_file",
            "the key file path is empty",
            "give the path of the recording key file, outside the data directory, e.g. \
             /etc/navbat/recordings.key",
        );
    } else if let Some((setting, dir)) = data_dirs.iter().find(|(_, dir)| inside(key_file, dir)) {
        ok = false;
        errors.push(
            "recordings.key_file",
            format!("{key_file} is inside {setting} ({dir})"),
            "keep the key away from the data it protects: put it outside the data \
             directory, e.g. /etc/navbat/recordings.key",
        );
    }
    if raw.retention_check_secs == 0 || raw.retention_check_secs > 7 * 24 * 3600 {
        ok = false;
        errors.push(
            "recordings.retention_check_secs",
            format!("{} is not a usable interval", raw.retention_check_secs),
            "give seconds between 1 and 604800 (default 3600)",
        );
    }
    let node_url = raw.node_url.as_deref().map(|u| u.trim_end_matches('/'));
    if let Some(url) = node_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            ok = false;
            errors.push(
                "recordings.node_url",
                format!("\"{url}\" is not an http(s) address"),
                "write the address other nodes reach this node's HTTP at, e.g. \
                 \"http://10.0.0.11:8080\"",
            );
        }
    }
    ok.then(|| RecordingsConfig {
        key_file: PathBuf::from(key_file),
        retention_check: Duration::from_secs(raw.retention_check_secs),
        node_url: node_url.map(str::to_owned),
    })
}

/// Whether `path` lies inside `dir`, comparing the written paths component by component
/// (both relative to the same working directory, or both absolute).
fn inside(path: &str, dir: &str) -> bool {
    let path = std::path::Path::new(path);
    let dir = std::path::Path::new(dir.trim());
    !dir.as_os_str().is_empty() && path.starts_with(dir)
}

pub(crate) fn check_tenant_recordings(
    raw: Option<&RawTenantRecordings>,
    label: &str,
    errors: &mut Collector,
) -> Option<TenantRecordings> {
    let default = RawTenantRecordings::default();
    let raw = raw.unwrap_or(&default);
    let months = raw
        .retention_months
        .unwrap_or(i64::from(DEFAULT_RETENTION_MONTHS));
    if !(1..=i64::from(MAX_RETENTION_MONTHS)).contains(&months) {
        errors.push(
            format!("{label}.recordings.retention_months"),
            format!("{months} is not a usable retention"),
            format!(
                "give whole months between 1 and {MAX_RETENTION_MONTHS} (default \
                 {DEFAULT_RETENTION_MONTHS})"
            ),
        );
        return None;
    }
    Some(TenantRecordings {
        retention_months: months as u32,
        operators_hear_own: raw.operators_hear_own,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigErrors, EMBEDDED_DEFAULT_TOML};

    fn with(recordings: &str, tenant: &str) -> Result<Config, ConfigErrors> {
        let text = EMBEDDED_DEFAULT_TOML.replace(
            "[recordings]\nkey_file = \"keys/recordings.key\"\nretention_check_secs = 3600\n",
            &format!("[recordings]\n{recordings}\n"),
        );
        assert_ne!(
            text, EMBEDDED_DEFAULT_TOML,
            "the demo's [recordings] section moved"
        );
        Config::from_toml_str(&format!("{text}\n{tenant}"), "test.toml")
    }

    fn error_at(result: Result<Config, ConfigErrors>, field: &str) -> String {
        let errors = result.expect_err("errors expected");
        let e = errors
            .at(field)
            .next()
            .unwrap_or_else(|| panic!("no error at {field}: {errors}"))
            .clone();
        assert!(!e.fix.is_empty());
        format!("{}; {}", e.problem, e.fix)
    }

    #[test]
    fn defaults_and_values() {
        let config = with("", "").unwrap();
        assert_eq!(
            config.recordings.key_file,
            std::path::Path::new("keys/recordings.key")
        );
        assert_eq!(config.recordings.retention_check.as_secs(), 3600);
        assert!(config
            .tenants
            .iter()
            .all(|t| t.recordings.retention_months == 12 && !t.recordings.operators_hear_own));
        let config = with(
            "key_file = \"/etc/navbat/rec.key\"\nnode_url = \"http://10.0.0.2:8080/\"",
            "[tenant.recordings]\nretention_months = 36\noperators_hear_own = true\n",
        )
        .unwrap();
        assert_eq!(
            config.recordings.node_url.as_deref(),
            Some("http://10.0.0.2:8080")
        );
        let last = config.tenants.last().unwrap();
        assert_eq!(last.recordings.retention_months, 36);
        assert!(last.recordings.operators_hear_own);
    }

    #[test]
    fn bad_values_name_the_setting_and_the_fix() {
        for months in ["0", "121", "-3"] {
            let last = with("", "").unwrap().tenants.last().unwrap().id.clone();
            let text = error_at(
                with(
                    "",
                    &format!("[tenant.recordings]\nretention_months = {months}\n"),
                ),
                &format!("tenant.{last}.recordings.retention_months"),
            );
            assert!(text.contains("between 1 and 120"), "{text}");
        }
        let text = error_at(
            with("key_file = \"data/recordings/k.key\"", ""),
            "recordings.key_file",
        );
        assert!(
            text.contains("media.recordings_dir") && text.contains("outside"),
            "{text}"
        );
        let text = error_at(
            with("key_file = \"data/journal/k.key\"", ""),
            "recordings.key_file",
        );
        assert!(text.contains("database.journal_dir"), "{text}");
        error_at(with("key_file = \" \"", ""), "recordings.key_file");
        error_at(
            with("retention_check_secs = 0", ""),
            "recordings.retention_check_secs",
        );
        error_at(
            with("node_url = \"10.0.0.2:8080\"", ""),
            "recordings.node_url",
        );
    }
}
