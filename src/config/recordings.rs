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

pub(crate) fn check_recordings(
    raw: &RawRecordings,
    recordings_dir: &str,
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
    } else if inside(key_file, recordings_dir) {
        ok = false;
        errors.push(
            "recordings.key_file",
            format!("{key_file} is inside media.recordings_dir ({recordings_dir})"),
            "keep the key away from the recordings it protects: put it outside the data \
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
