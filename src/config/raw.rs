//! The TOML document as written, before any checking.
//!
//! Values that need checking (addresses, names, dates, times) stay strings here so that a bad
//! one becomes a [`super::ConfigError`] naming the field and the fix, not a bare serde message.
//! Every table denies unknown keys: a typo must never silently fall back to a default.

use serde::Deserialize;

/// `[sip]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSip {
    pub udp: Option<String>,
    pub tcp: Option<String>,
    #[serde(default = "default_realm")]
    pub realm: String,
    #[serde(default = "default_nonce_ttl")]
    pub nonce_ttl_secs: u64,
    #[serde(default = "default_register_min")]
    pub register_min_expires_secs: u64,
    #[serde(default = "default_register_max")]
    pub register_max_expires_secs: u64,
    pub public_ip: Option<String>,
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    #[serde(default = "default_sip_threads")]
    pub threads: u64,
    #[serde(default)]
    pub auth_guard: RawAuthGuard,
    #[serde(default)]
    pub door: RawDoor,
    #[serde(default)]
    pub tcp_limits: RawSipTcp,
}

/// `[sip.tcp_limits]`: caps and deadlines of SIP over TCP (see `src/sip/tcp.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSipTcp {
    pub per_source: u32,
    pub total: u32,
    pub header_deadline_secs: u64,
    pub idle_secs: u64,
    pub max_message_bytes: usize,
}

impl Default for RawSipTcp {
    fn default() -> RawSipTcp {
        RawSipTcp {
            per_source: 16,
            total: 1_024,
            header_deadline_secs: 5,
            idle_secs: 900,
            max_message_bytes: 65_535,
        }
    }
}

/// `[sip.door]`: per-source admission of new INVITEs (see `src/sip/door.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDoor {
    pub source_invites_per_sec: u32,
    pub source_burst: u32,
    pub source_calls: u32,
    pub trunk_invites_per_sec: u32,
    pub trunk_burst: u32,
    pub trunk_calls: u32,
    pub answers_per_sec: u32,
    pub queue: usize,
    pub max_sources: usize,
    pub trunk_sources: Vec<String>,
    pub screen_calls: bool,
}

impl Default for RawDoor {
    fn default() -> RawDoor {
        RawDoor {
            source_invites_per_sec: 20,
            source_burst: 40,
            source_calls: 30,
            trunk_invites_per_sec: 2_000,
            trunk_burst: 4_000,
            trunk_calls: 0,
            answers_per_sec: 100,
            queue: 4_096,
            max_sources: 65_536,
            trunk_sources: Vec::new(),
            screen_calls: true,
        }
    }
}

fn default_user_agent() -> String {
    "navbat".to_owned()
}

fn default_sip_threads() -> u64 {
    1
}

/// `[sip.auth_guard]`: limits on failed digest authentications.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthGuard {
    #[serde(default = "default_auth_window")]
    pub window_secs: u64,
    #[serde(default = "default_account_throttle_after")]
    pub account_throttle_after: u32,
    #[serde(default = "default_account_max_throttle")]
    pub account_max_throttle_secs: u64,
    #[serde(default = "default_source_ban_after")]
    pub source_ban_after: u32,
    #[serde(default = "default_source_ban")]
    pub source_ban_secs: u64,
}

impl Default for RawAuthGuard {
    fn default() -> RawAuthGuard {
        RawAuthGuard {
            window_secs: default_auth_window(),
            account_throttle_after: default_account_throttle_after(),
            account_max_throttle_secs: default_account_max_throttle(),
            source_ban_after: default_source_ban_after(),
            source_ban_secs: default_source_ban(),
        }
    }
}

fn default_auth_window() -> u64 {
    600
}
fn default_account_throttle_after() -> u32 {
    5
}
fn default_account_max_throttle() -> u64 {
    60
}
fn default_source_ban_after() -> u32 {
    20
}
fn default_source_ban() -> u64 {
    900
}

impl Default for RawSip {
    fn default() -> RawSip {
        RawSip {
            udp: Some("127.0.0.1:5060".to_owned()),
            tcp: Some("127.0.0.1:5060".to_owned()),
            realm: default_realm(),
            nonce_ttl_secs: default_nonce_ttl(),
            register_min_expires_secs: default_register_min(),
            register_max_expires_secs: default_register_max(),
            public_ip: None,
            user_agent: default_user_agent(),
            threads: default_sip_threads(),
            auth_guard: RawAuthGuard::default(),
            door: RawDoor::default(),
            tcp_limits: RawSipTcp::default(),
        }
    }
}

fn default_realm() -> String {
    "navbat".to_owned()
}
fn default_nonce_ttl() -> u64 {
    300
}
fn default_register_min() -> u64 {
    60
}
fn default_register_max() -> u64 {
    3600
}

/// `[media]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMedia {
    #[serde(default = "default_rtp_ip")]
    pub rtp_ip: String,
    #[serde(default = "default_rtp_min")]
    pub rtp_port_min: u16,
    #[serde(default = "default_rtp_max")]
    pub rtp_port_max: u16,
    #[serde(default = "default_prompts_dir")]
    pub prompts_dir: String,
    #[serde(default = "default_recordings_dir")]
    pub recordings_dir: String,
    #[serde(default = "default_announce_every")]
    pub announce_every_secs: u64,
    #[serde(default = "default_average_handle")]
    pub average_handle_secs: u64,
}

impl Default for RawMedia {
    fn default() -> RawMedia {
        RawMedia {
            rtp_ip: default_rtp_ip(),
            rtp_port_min: default_rtp_min(),
            rtp_port_max: default_rtp_max(),
            prompts_dir: default_prompts_dir(),
            recordings_dir: default_recordings_dir(),
            announce_every_secs: default_announce_every(),
            average_handle_secs: default_average_handle(),
        }
    }
}

fn default_rtp_ip() -> String {
    "127.0.0.1".to_owned()
}
fn default_rtp_min() -> u16 {
    20000
}
fn default_rtp_max() -> u16 {
    20999
}
fn default_prompts_dir() -> String {
    "config/prompts".to_owned()
}
fn default_recordings_dir() -> String {
    "data/recordings".to_owned()
}
fn default_announce_every() -> u64 {
    30
}
fn default_average_handle() -> u64 {
    180
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    #[serde(default = "default_http_listen")]
    pub listen: String,
    pub admin_token: Option<String>,
    #[serde(default = "default_events_feed_mib")]
    pub events_feed_mib: u64,
}

impl Default for RawHttp {
    fn default() -> RawHttp {
        RawHttp {
            listen: default_http_listen(),
            admin_token: None,
            events_feed_mib: default_events_feed_mib(),
        }
    }
}

/// 16 MiB hold about 50,000 events: a day of a 300-channel centre at its usual pace, or the
/// last few seconds of a 1,000 calls/s flood. Every event is in the database too.
fn default_events_feed_mib() -> u64 {
    16
}

fn default_http_listen() -> String {
    "127.0.0.1:8080".to_owned()
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(default = "default_channels")]
    pub channels: u32,
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
}

impl Default for RawLimits {
    fn default() -> RawLimits {
        RawLimits {
            channels: default_channels(),
            retry_after_secs: default_retry_after(),
        }
    }
}

fn default_channels() -> u32 {
    300
}
fn default_retry_after() -> u64 {
    30
}

/// `[shutdown]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShutdown {
    #[serde(default = "default_drain")]
    pub drain_secs: u64,
}

impl Default for RawShutdown {
    fn default() -> RawShutdown {
        RawShutdown {
            drain_secs: default_drain(),
        }
    }
}

fn default_drain() -> u64 {
    30
}

/// `[operators_defaults]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOperatorDefaults {
    #[serde(default = "yes")]
    pub available_on_register: bool,
}

impl Default for RawOperatorDefaults {
    fn default() -> RawOperatorDefaults {
        RawOperatorDefaults {
            available_on_register: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// `{ uz = "...", ru = "..." }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBilingual {
    pub uz: String,
    pub ru: String,
}

/// One `[[tenant]]`. `hours` is either the string `"24/7"` or a list of windows, so it is read
/// as a plain TOML value and interpreted by the checker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTenant {
    pub id: String,
    pub name: RawBilingual,
    pub dids: Vec<String>,
    pub channels: Option<u32>,
    pub timezone: String,
    pub hours: toml::Value,
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Moved working days (dates whose weekday is normally closed) and the weekday whose
    /// hours they work; see `config/sla.rs`.
    #[serde(default)]
    pub working_days: Vec<String>,
    pub working_days_as: Option<String>,
    #[serde(default = "default_service_level")]
    pub service_level_secs: u64,
    pub ivr: RawIvr,
    pub surge: Option<super::surge::RawTenantSurge>,
    /// Addresses or networks (`"192.0.2.10"`, `"10.1.0.0/16"`) the tenant's calls may come
    /// from; absent: any.
    pub trunk_sources: Option<Vec<String>>,
    pub desk: Option<super::desk::RawTenantDesk>,
    pub requests: Option<super::requests::RawTenantRequests>,
    pub notices: Option<super::notices::RawTenantNotices>,
    pub sla: Option<super::sla::RawTenantSla>,
    pub billing: Option<super::billing::RawTenantBilling>,
    pub recordings: Option<super::recordings::RawTenantRecordings>,
    pub qa: Option<super::qa::RawTenantQa>,
}

fn default_service_level() -> u64 {
    20
}

/// One opening window inside `hours = [...]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWindow {
    pub days: Vec<String>,
    pub open: String,
    pub close: String,
}

/// `[tenant.ivr]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIvr {
    #[serde(default = "default_digit_timeout")]
    pub digit_timeout_secs: u64,
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    #[serde(default = "default_on_no_input")]
    pub on_no_input: String,
    pub default_language: Option<String>,
    pub languages: Vec<RawLanguageChoice>,
    #[serde(default)]
    pub topics: Vec<RawTopicChoice>,
    pub default_topic: Option<String>,
    #[serde(default = "default_greeting_barge_in")]
    pub greeting_barge_in: bool,
}

fn default_greeting_barge_in() -> bool {
    true
}
fn default_digit_timeout() -> u64 {
    6
}
fn default_max_retries() -> u32 {
    2
}
fn default_on_no_input() -> String {
    "default".to_owned()
}

/// One entry of `ivr.languages`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLanguageChoice {
    pub digit: String,
    pub language: String,
    pub queue: String,
}

/// One entry of `ivr.topics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTopicChoice {
    pub digit: String,
    pub topic: String,
    pub label: RawBilingual,
}

/// One `[[queue]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    pub id: String,
    pub tenant: String,
    pub language: String,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default = "default_strategy")]
    pub strategy: String,
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u64,
    #[serde(default = "default_wrap_up")]
    pub wrap_up_secs: u64,
    #[serde(default = "default_max_missed")]
    pub max_missed_offers: u32,
    pub reserve_after_secs: Option<u64>,
    pub max_waiting: Option<u32>,
    #[serde(default)]
    pub priority: u8,
    pub surge: Option<RawSurge>,
}

fn default_strategy() -> String {
    "longest-idle".to_owned()
}
fn default_max_wait() -> u64 {
    900
}
fn default_ring_timeout() -> u64 {
    20
}
fn default_wrap_up() -> u64 {
    15
}
fn default_max_missed() -> u32 {
    3
}

/// `[queue.surge]`: each key present overrides the normal value while the tenant is in surge.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSurge {
    pub max_wait_secs: Option<u64>,
    pub ring_timeout_secs: Option<u64>,
    pub wrap_up_secs: Option<u64>,
    pub max_missed_offers: Option<u32>,
    pub reserve_after_secs: Option<u64>,
}

/// One `[[operator]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOperator {
    pub ext: String,
    pub name: String,
    pub ha1: String,
    #[serde(default)]
    pub ha1_sha256: Option<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub topics: Vec<String>,
    #[serde(default)]
    pub reserve: bool,
    #[serde(default)]
    pub supervisor: bool,
}

/// `[node]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    pub id: Option<String>,
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabase {
    pub url: Option<String>,
    #[serde(default = "default_journal_dir")]
    pub journal_dir: String,
    #[serde(default = "default_buffer_events")]
    pub buffer_events: u64,
    #[serde(default = "default_journal_batch")]
    pub journal_batch_events: u64,
    #[serde(default = "default_db_batch")]
    pub db_batch_events: u64,
    #[serde(default = "default_segment_mib")]
    pub journal_segment_mib: u64,
}

impl Default for RawDatabase {
    fn default() -> RawDatabase {
        RawDatabase {
            url: None,
            journal_dir: default_journal_dir(),
            buffer_events: default_buffer_events(),
            journal_batch_events: default_journal_batch(),
            db_batch_events: default_db_batch(),
            journal_segment_mib: default_segment_mib(),
        }
    }
}

fn default_journal_dir() -> String {
    "data/journal".to_owned()
}
fn default_buffer_events() -> u64 {
    262_144
}
fn default_journal_batch() -> u64 {
    1024
}
fn default_db_batch() -> u64 {
    4096
}
fn default_segment_mib() -> u64 {
    64
}

/// `[presence]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPresence {
    #[serde(default = "default_presence_backend")]
    pub backend: String,
    pub redis_url: Option<String>,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
    #[serde(default = "default_expiry")]
    pub expiry_secs: u64,
}

impl Default for RawPresence {
    fn default() -> RawPresence {
        RawPresence {
            backend: default_presence_backend(),
            redis_url: None,
            heartbeat_secs: default_heartbeat(),
            expiry_secs: default_expiry(),
        }
    }
}

fn default_presence_backend() -> String {
    "memory".to_owned()
}
fn default_heartbeat() -> u64 {
    2
}
fn default_expiry() -> u64 {
    10
}

/// `[history]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHistory {
    #[serde(default = "default_repeat_window")]
    pub repeat_window_days: u64,
}

impl Default for RawHistory {
    fn default() -> RawHistory {
        RawHistory {
            repeat_window_days: default_repeat_window(),
        }
    }
}

fn default_repeat_window() -> u64 {
    7
}

/// The whole document after each part has been read on its own.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawConfig {
    pub node: RawNode,
    pub database: RawDatabase,
    pub presence: RawPresence,
    pub history: RawHistory,
    pub sip: RawSip,
    pub media: RawMedia,
    pub http: RawHttp,
    pub limits: RawLimits,
    pub shutdown: RawShutdown,
    pub operators_defaults: RawOperatorDefaults,
    /// `None` marks an entry that failed to read; its error is already recorded and the
    /// index is kept so later paths (`queue[3]`) still match the file.
    pub tenants: Vec<Option<RawTenant>>,
    pub queues: Vec<Option<RawQueue>>,
    pub operators: Vec<Option<RawOperator>>,
    /// `[sms]`, when present.
    pub sms: Option<super::sms::RawSms>,
    /// `[trunk]`, when present.
    pub trunk: Option<super::callback::RawTrunk>,
    /// `[callbacks]`.
    pub callbacks: super::callback::RawCallbacks,
    /// `[desk]`.
    pub desk: super::desk::RawDesk,
    /// `[[account]]` entries (`None`: failed to read).
    pub accounts: Vec<Option<super::desk::RawAccount>>,
    /// `[requests]`.
    pub requests: super::requests::RawRequests,
    /// `[notices]`.
    pub notices: super::notices::RawNotices,
    /// `[recordings]`.
    pub recordings: super::recordings::RawRecordings,
}
