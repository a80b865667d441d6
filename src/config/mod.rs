//! Typed configuration of navbat, parsed and checked once at start-up.
//!
//! The TOML file is read into plain serde structs (`raw`), then every value is checked and
//! converted into the types below (`validate`). Checking never stops at the first problem: a
//! [`ConfigErrors`] lists every one, each naming the file, the field path and what to change.
//! Nothing downstream parses configuration again.
//!
//! [`Config::embedded_default`] is the demo (`config/navbat.toml`, compiled in): everything on
//! loopback, two tenants, demo operators with the password `demo<ext>`. Demo credentials are
//! refused as soon as SIP listens on anything but loopback.

pub mod billing;
mod callback;
pub mod desk;
mod door;
mod error;
mod menu;
pub mod notices;
mod parse;
pub mod qa;
mod raw;
pub mod recordings;
pub mod requests;
mod sla;
mod sms;
mod store;
mod surge;
mod validate;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use md5::{Digest, Md5};

pub use crate::schedule::{ClockTime, Hours, OpeningWindow, DAY_NAMES};
pub use callback::{CallbackOffer, CallbacksConfig, TrunkConfig};
pub use door::{DoorConfig, MorningWindow};
pub use error::{ConfigError, ConfigErrors};
pub use menu::{DtmfDigit, IvrMenu, LanguageChoice, NoInputPolicy, TopicChoice};
pub use notices::NoticeKind;
pub use sms::{
    GatewayConfig, MessageKind, RetryPolicy, SmsLimitPolicy, SmsSettings, Template,
    DEFAULT_COUNTRY_CODE,
};
pub use store::{
    redact, DatabaseConfig, DatabaseUrl, HistoryConfig, NodeConfig, PresenceBackend,
    PresenceConfig, DEFAULT_DATABASE_URL,
};
pub use surge::{ExamPeriod, SelfServiceChoice, TenantSurge};

/// The demo configuration, compiled into the binary.
pub const EMBEDDED_DEFAULT_TOML: &str = include_str!("../../config/navbat.toml");

/// Languages every prompt and every text exists in: Uzbek (Latin script) and Russian.
pub const SUPPORTED_LANGUAGES: [&str; 2] = ["uz", "ru"];

/// The admin token of the demo configuration; refused unless HTTP listens on loopback.
pub const DEMO_ADMIN_TOKEN: &str = "demo-admin-token";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// SIP listeners and registrar settings.
    pub sip: SipConfig,
    /// RTP addresses and ports.
    pub media: MediaConfig,
    /// HTTP API listener.
    pub http: HttpConfig,
    /// Global admission limits.
    pub limits: Limits,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Defaults applied to every operator.
    pub operators_defaults: OperatorDefaults,
    /// Client lines, each reached by its DIDs.
    pub tenants: Vec<Tenant>,
    /// Skill queues.
    pub queues: Vec<Queue>,
    /// Operators and reserve staff.
    pub operators: Vec<Operator>,
    /// This node's name.
    pub node: NodeConfig,
    /// Event journal and database.
    pub database: DatabaseConfig,
    /// Operator presence (memory or Redis).
    pub presence: PresenceConfig,
    /// Repeat-call window.
    pub history: HistoryConfig,
    /// SMS to callers (`[sms]`); `None` when disabled.
    pub sms: Option<SmsSettings>,
    /// The outbound trunk for callbacks (`[trunk]`); `None` when not configured.
    pub trunk: Option<TrunkConfig>,
    /// Where pending callbacks are kept (`[callbacks]`).
    pub callbacks: CallbacksConfig,
    /// The web desk and the accounts created at start-up (`[desk]`, `[[account]]`).
    pub desk: desk::DeskConfig,
    /// Requests: attachments and the public form (`[requests]`).
    pub requests: requests::RequestsConfig,
    /// Notices to the client: links, digest rate (`[notices]`).
    pub notices: notices::NoticesConfig,
    /// Recordings: key file, retention job, node address (`[recordings]`).
    pub recordings: recordings::RecordingsConfig,
}

/// `[sip]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP listen address; at least one of `udp` and `tcp` is set.
    pub udp: Option<SocketAddr>,
    /// TCP listen address.
    pub tcp: Option<SocketAddr>,
    /// Digest authentication realm; operators' HA1 values are computed with it.
    pub realm: String,
    /// How long a digest nonce stays valid.
    pub nonce_ttl: Duration,
    /// Shortest registration the registrar accepts (shorter gets 423 Interval Too Brief).
    pub register_min_expires: Duration,
    /// Longest registration granted; longer requests are cut down to it.
    pub register_max_expires: Duration,
    /// Address advertised in Contact and SDP; `None` means the listen IP.
    pub public_ip: Option<IpAddr>,
    /// `User-Agent` / `Server` of navbat's messages; without a version by default, so a
    /// scanner does not learn which release to attack.
    pub user_agent: String,
    /// Worker threads of the SIP runtime (reader, screen, transactions, sender). One by
    /// default: on the 2-core machines navbat is sized for, a second worker competes with
    /// the actor, store and media threads and costs more in wake-ups than it runs
    /// (BENCHMARKS.md, "One SIP thread").
    pub threads: usize,
    /// Limits on failed digest authentications.
    pub auth_guard: AuthGuardConfig,
    /// Per-source admission of new INVITEs (`[sip.door]`).
    pub door: SipDoorConfig,
    /// Caps and deadlines of SIP over TCP (`[sip.tcp_limits]`).
    pub tcp_limits: SipTcpConfig,
}

/// `[sip.tcp_limits]`: how many TCP connections one source (an IPv4 address, an IPv6 /64) and all
/// together may hold open, how long a message may take to arrive and a connection may stay
/// silent, and the largest message (see `src/sip/tcp.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipTcpConfig {
    /// Connections open at once from one source.
    pub per_source: u32,
    /// Connections open at once in all.
    pub total: u32,
    /// A message must be complete this long after its first byte.
    pub header_deadline: Duration,
    /// A connection without a byte this long is closed.
    pub idle: Duration,
    /// The largest message read.
    pub max_message_bytes: usize,
}

/// `[sip.door]`: how many new INVITEs and calls in progress one source address may have
/// (an IPv6 address counts as its /64) before the door refuses it with a stateless 503, and
/// how much waits between the socket and the stack (see `src/sip/door.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipDoorConfig {
    /// New INVITEs a second from a source outside the trunk networks.
    pub source_invites_per_sec: u32,
    /// Its burst.
    pub source_burst: u32,
    /// Its calls in progress at most (0: only the channel limits).
    pub source_calls: u32,
    /// New INVITEs a second from a trunk source.
    pub trunk_invites_per_sec: u32,
    /// Its burst.
    pub trunk_burst: u32,
    /// Its calls in progress at most (0: only the channel limits).
    pub trunk_calls: u32,
    /// Stateless refusals per source a second; past them refused INVITEs are dropped.
    pub answers_per_sec: u32,
    /// Datagrams waiting for the SIP stack above which new INVITEs are refused (at twice,
    /// everything is shed).
    pub queue: usize,
    /// Source addresses tracked at most.
    pub max_sources: usize,
    /// Trunk networks: these plus every tenant's `trunk_sources`. While none is named, every
    /// source gets the trunk caps.
    pub trunk_sources: Vec<Network>,
    /// Whether the door also refuses, statelessly, new INVITEs that the router would refuse
    /// anyway: an unknown DID (404), a source outside the tenant's `trunk_sources` (403), all
    /// of the tenant's (or all) channels in use (503). Off: those go through a transaction and
    /// the router as before (kept for measuring the difference).
    pub screen_calls: bool,
}

/// `[sip.auth_guard]`: how guessing at the registrar and the feature codes is slowed and
/// stopped (see `src/sip/auth.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthGuardConfig {
    /// Failures are counted over this window.
    pub window: Duration,
    /// Failures of one account before its attempts are spaced out (1 s, doubling).
    pub account_throttle_after: u32,
    /// The longest delay between one account's attempts.
    pub account_max_throttle: Duration,
    /// Failures from one source address that ban it.
    pub source_ban_after: u32,
    /// How long a ban lasts.
    pub source_ban: Duration,
}

impl Config {
    /// The trunk networks the SIP door knows: `[sip.door] trunk_sources` and every tenant's
    /// `trunk_sources`.
    pub fn trunk_networks(&self) -> Vec<Network> {
        let mut nets = self.sip.door.trunk_sources.clone();
        for tenant in &self.tenants {
            nets.extend(tenant.trunk_sources.iter().flatten().copied());
        }
        nets
    }
}

impl SipConfig {
    /// The configured listen addresses (UDP first).
    pub fn listen_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.udp.iter().chain(self.tcp.iter()).copied()
    }

    /// Whether every SIP listener is on a loopback address.
    pub fn is_loopback_only(&self) -> bool {
        self.listen_addrs().all(|addr| addr.ip().is_loopback())
    }

    /// The address to advertise in Contact and SDP.
    pub fn advertised_ip(&self) -> IpAddr {
        self.public_ip
            .or_else(|| self.listen_addrs().next().map(|addr| addr.ip()))
            .unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }
}

/// `[media]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Address RTP sockets bind to.
    pub rtp_ip: IpAddr,
    /// Lowest RTP port (inclusive).
    pub rtp_port_min: u16,
    /// Highest RTP port (inclusive); greater than `rtp_port_min`.
    pub rtp_port_max: u16,
    /// Directory of prompt recordings (`<lang>/<name>.wav`, `<tenant>/<lang>/<name>.wav`);
    /// relative paths are taken from the working directory.
    pub prompts_dir: std::path::PathBuf,
    /// Directory call recordings are written to (created when missing).
    pub recordings_dir: std::path::PathBuf,
    /// How often a waiting caller hears the place in the queue and the expected wait;
    /// `None` (0 in the file) turns the announcements off.
    pub announce_every: Option<Duration>,
    /// Average talk plus wrap-up time used to estimate the expected wait.
    pub average_handle: Duration,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Listen address of the API, cabinet and `/metrics`.
    pub listen: SocketAddr,
    /// Bearer token required by the write API; `None` leaves the write API without a token,
    /// which the HTTP layer should treat as "write API disabled".
    pub admin_token: Option<String>,
    /// Bytes the in-memory event feed (`GET /api/events`) may hold (`events_feed_mib`); the
    /// oldest events leave first, counted in `navbat_events_shed_total`.
    pub events_feed_bytes: usize,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Simultaneous calls across all tenants (D6); more get 503.
    pub channels: u32,
    /// `Retry-After` sent with that 503.
    pub retry_after: Duration,
}

/// `[shutdown]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// How long calls in progress may finish after a shutdown signal.
    pub drain: Duration,
}

/// `[operators_defaults]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorDefaults {
    /// Whether an operator becomes available as soon as the softphone registers.
    pub available_on_register: bool,
}

/// A text that exists in Uzbek (Latin) and Russian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bilingual {
    /// Uzbek, Latin script.
    pub uz: String,
    /// Russian.
    pub ru: String,
}

impl Bilingual {
    /// The text in `language` (`"uz"` or `"ru"`).
    pub fn text(&self, language: &str) -> Option<&str> {
        match language {
            "uz" => Some(&self.uz),
            "ru" => Some(&self.ru),
            _ => None,
        }
    }
}

/// A client line (DTM hotline, CRPT support, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Short id used in queues, metrics and records.
    pub id: String,
    /// Display name in both languages.
    pub name: Bilingual,
    /// Dialled numbers that reach this tenant, digits with an optional leading `+`.
    pub dids: Vec<String>,
    /// Simultaneous calls for this tenant; `None` means only the global limit applies.
    pub channels: Option<u32>,
    /// Zone the opening hours and holidays are in.
    pub timezone: jiff::tz::TimeZone,
    /// Opening hours.
    pub hours: Hours,
    /// Whole local days the line is closed.
    pub holidays: Vec<jiff::civil::Date>,
    /// Moved working days: dates whose weekday is normally closed that are working days
    /// (`working_days`, e.g. a Saturday by government decree).
    pub working_days: Vec<jiff::civil::Date>,
    /// The weekday whose hours a moved working day works (`working_days_as`, default Monday).
    pub working_days_as: jiff::civil::Weekday,
    /// Answer-time target for the service level metric.
    pub service_level: Duration,
    /// The voice menu.
    pub ivr: IvrMenu,
    /// Surge mode: exam calendar, automatic trigger, what callers get (`[tenant.surge]`).
    pub surge: TenantSurge,
    /// Where its calls may come from (`trunk_sources`); `None`: anywhere. An INVITE for one of
    /// its DIDs from elsewhere is refused with 403 before anything else happens.
    pub trunk_sources: Option<Vec<Network>>,
    /// After-call work (`[tenant.desk]`).
    pub desk: desk::TenantDesk,
    /// Requests: the web form, the chancellery (`[tenant.requests]`).
    pub requests: requests::TenantRequests,
    /// Notices to the client (D7, `[tenant.notices]`).
    pub notices: notices::TenantNotices,
    /// Service rules C4-C7 (`[tenant.sla]`).
    pub sla: crate::sla::SlaRules,
    /// The price per call (D24, `[tenant.billing]`); `None`: the tenant is not billed here.
    pub billing: Option<billing::TenantBilling>,
    /// Recordings: retention, operators' access (`[tenant.recordings]`).
    pub recordings: recordings::TenantRecordings,
    /// The quality scorecard and weekly sample (`[tenant.qa]`); `None`: no QA for it.
    pub qa: Option<qa::Scorecard>,
}

/// An address or network (`192.0.2.10`, `10.1.0.0/16`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// The network's address.
    pub addr: IpAddr,
    /// Leading bits that must match.
    pub prefix: u8,
}

impl Network {
    /// Parses `a.b.c.d`, `a.b.c.d/n`, `x::y` or `x::y/n`.
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { addr, prefix })
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl Tenant {
    /// Milliseconds from `now` until the line closes today (the end of the opening window
    /// `now` is in; local midnight for a line open round the clock); 0 while it is closed.
    /// The door policy's callbacks for today must be over by then.
    pub fn until_close_ms(&self, now: jiff::Timestamp) -> u64 {
        if !self.is_open(now) {
            return 0;
        }
        crate::schedule::until_close_ms(&self.hours, &self.timezone, now)
    }

    /// The next time after `now` the local clock shows `at` (the next morning window's
    /// start), as Unix milliseconds.
    pub fn next_local(&self, now: jiff::Timestamp, at: ClockTime) -> i64 {
        crate::schedule::next_local(&self.timezone, now, at)
    }

    /// Whether a call for this tenant may come from `source` (`None`: unknown, allowed only
    /// when any source is).
    pub fn accepts_calls_from(&self, source: Option<IpAddr>) -> bool {
        match (&self.trunk_sources, source) {
            (None, _) => true,
            (Some(nets), Some(ip)) => nets.iter().any(|n| n.contains(ip)),
            (Some(_), None) => false,
        }
    }

    /// Whether the line is open at `now`: inside the opening hours (a moved working day's
    /// are those of `working_days_as`) and not on a holiday, all seen in the tenant's time
    /// zone.
    pub fn is_open(&self, now: jiff::Timestamp) -> bool {
        let days = crate::schedule::Days {
            holidays: &self.holidays,
            working_days: &self.working_days,
            working_days_as: self.working_days_as,
        };
        crate::schedule::is_open(&self.hours, &days, &self.timezone, now)
    }

    /// The tenant's working time for the SLA clocks (zone, hours, holidays, moved working
    /// days). Build it once and keep it; it agrees with [`Tenant::is_open`] at every instant.
    pub fn business_calendar(&self) -> crate::sla::BusinessCalendar {
        crate::sla::BusinessCalendar::new(
            self.timezone.clone(),
            &self.hours,
            &self.holidays,
            &self.working_days,
            self.working_days_as,
        )
    }
}

/// How a queue picks the operator for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StrategyName {
    /// The operator idle longest (`longest-idle`).
    LongestIdle,
    /// Operators in turn (`round-robin`).
    RoundRobin,
    /// The operator with the fewest calls today (`fewest-calls`).
    FewestCalls,
    /// Every available operator at once; the first to answer wins (`ring-all`).
    RingAll,
}

impl StrategyName {
    /// Every strategy, in the order of [`StrategyName::NAMES`].
    pub const ALL: [StrategyName; 4] = [
        StrategyName::LongestIdle,
        StrategyName::RoundRobin,
        StrategyName::FewestCalls,
        StrategyName::RingAll,
    ];

    /// The names accepted in `strategy`.
    pub const NAMES: [&'static str; 4] =
        ["longest-idle", "round-robin", "fewest-calls", "ring-all"];

    /// Parses a name from [`StrategyName::NAMES`].
    pub fn parse(name: &str) -> Option<StrategyName> {
        StrategyName::NAMES
            .iter()
            .position(|known| *known == name)
            .map(|index| StrategyName::ALL[index])
    }

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyName::LongestIdle => "longest-idle",
            StrategyName::RoundRobin => "round-robin",
            StrategyName::FewestCalls => "fewest-calls",
            StrategyName::RingAll => "ring-all",
        }
    }
}

/// A skill queue: calls of one tenant in one language (and optionally some topics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// Queue id, referred to by the IVR.
    pub id: String,
    /// Id of the owning tenant.
    pub tenant: String,
    /// Language operators must speak.
    pub language: String,
    /// Topics this queue takes; empty means every topic.
    pub topics: Vec<String>,
    /// Operator selection.
    pub strategy: StrategyName,
    /// Timing in normal operation.
    pub normal: QueueTiming,
    /// Timing while the tenant is in surge mode (normal values where `[queue.surge]` is silent).
    pub surge: QueueTiming,
    /// Callers allowed to wait at once; `None` means unbounded by config.
    pub max_waiting: Option<u32>,
    /// Default priority of callers (higher is served first).
    pub priority: u8,
}

impl Queue {
    /// The timing for the tenant's current mode.
    pub fn timing(&self, surge: bool) -> &QueueTiming {
        if surge {
            &self.surge
        } else {
            &self.normal
        }
    }
}

/// Waits and timeouts of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTiming {
    /// Longest a caller waits before the queue gives up (callback, SMS or goodbye).
    pub max_wait: Duration,
    /// How long an operator's phone rings before the offer counts as missed.
    pub ring_timeout: Duration,
    /// After-call work time before the operator is offered another call.
    pub wrap_up: Duration,
    /// Missed offers in a row after which the operator is paused (at least 1).
    pub max_missed_offers: u32,
    /// Wait after which reserve staff are offered the call too; `None` = never.
    pub reserve_after: Option<Duration>,
}

/// An operator or reserve staff member, identified by the softphone extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// SIP user / extension.
    pub ext: String,
    /// Display name.
    pub name: String,
    /// `md5(ext:realm:password)`, 32 lowercase hex characters; never a plain password.
    pub ha1: String,
    /// `sha256(ext:realm:password)`, 64 lowercase hex characters: with it, SHA-256 digest
    /// (RFC 7616) is offered beside MD5.
    pub ha1_sha256: Option<String>,
    /// Languages spoken; at least one.
    pub languages: Vec<String>,
    /// Topics handled; empty means every topic.
    pub topics: Vec<String>,
    /// Reserve staff (managers, editors: D11) take calls only after a queue's `reserve_after`.
    pub reserve: bool,
    /// May listen to, whisper to or barge into live calls from the softphone by feature
    /// code (D17; `*51`, `*52`, `*53` followed by the operator's extension).
    pub supervisor: bool,
}

/// The SIP digest HA1 of a user: lowercase hex of `md5("{username}:{realm}:{password}")`.
pub fn digest_ha1(username: &str, realm: &str, password: &str) -> String {
    let digest = Md5::digest(format!("{username}:{realm}:{password}").as_bytes());
    hex::encode(digest)
}

/// The SIP digest SHA-256 HA1 of a user (RFC 7616): lowercase hex of
/// `sha256("{username}:{realm}:{password}")`.
pub fn digest_ha1_sha256(username: &str, realm: &str, password: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(
        format!("{username}:{realm}:{password}").as_bytes(),
    ))
}

/// The demo password of an extension: `demo<ext>`.
pub fn demo_password(ext: &str) -> String {
    format!("demo{ext}")
}

impl Config {
    /// Reads, parses and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let config = Config::from_toml_str(&text, &origin)?;
                config.check_prompts_dir(&origin)?;
                Ok(config)
            }
            Err(error) => Err(ConfigErrors(vec![ConfigError {
                file: origin,
                field: "(file)".to_owned(),
                problem: format!("cannot read the file: {error}"),
                fix: "check the path and its permissions, or start without --config to use the \
                      embedded demo configuration"
                    .to_owned(),
            }])),
        }
    }

    /// A configuration file whose prompts directory is not there would run with every caller
    /// hearing silence (and answered at once): refused, saying where it was looked for.
    fn check_prompts_dir(&self, origin: &str) -> Result<(), ConfigErrors> {
        let dir = &self.media.prompts_dir;
        if dir.is_dir() {
            return Ok(());
        }
        let from = if dir.is_relative() {
            let cwd = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "(unknown)".to_owned());
            format!(" (a relative path is taken from the working directory, {cwd})")
        } else {
            String::new()
        };
        Err(ConfigErrors(vec![ConfigError {
            file: origin.to_owned(),
            field: "media.prompts_dir".to_owned(),
            problem: format!("directory {} does not exist{from}", dir.display()),
            fix: "give the prompts directory's absolute path or start navbat in the directory \
                  it is relative to (config/prompts/generate.sh makes a set; without --config \
                  navbat runs the demo with the prompts built into it)"
                .to_owned(),
        }]))
    }

    /// Parses and checks TOML text; `origin` names it in error messages.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        validate::build(text, origin)
    }

    /// The demo configuration compiled into the binary.
    pub fn embedded_default() -> Config {
        match Config::from_toml_str(EMBEDDED_DEFAULT_TOML, "config/navbat.toml (embedded)") {
            Ok(config) => config,
            // A unit test proves the embedded file is valid; reaching this is a build defect.
            Err(errors) => panic!("the embedded default configuration is invalid:\n{errors}"),
        }
    }

    /// The tenant a call to `did` belongs to. A leading `+` is ignored on both sides.
    pub fn tenant_by_did(&self, did: &str) -> Option<&Tenant> {
        let did = did.strip_prefix('+').unwrap_or(did);
        self.tenants.iter().find(|tenant| {
            tenant
                .dids
                .iter()
                .any(|known| known.strip_prefix('+').unwrap_or(known) == did)
        })
    }

    /// The tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|tenant| tenant.id == id)
    }

    /// The queue with this id.
    pub fn queue(&self, id: &str) -> Option<&Queue> {
        self.queues.iter().find(|queue| queue.id == id)
    }

    /// The operator with this extension.
    pub fn operator(&self, ext: &str) -> Option<&Operator> {
        self.operators.iter().find(|operator| operator.ext == ext)
    }

    /// Extensions whose HA1 is that of the demo password `demo<ext>` in the configured realm.
    /// The binary should warn about them; they are refused unless SIP is loopback-only.
    pub fn uses_demo_credentials(&self) -> Vec<String> {
        self.operators
            .iter()
            .filter(|operator| {
                operator.ha1
                    == digest_ha1(
                        &operator.ext,
                        &self.sip.realm,
                        &demo_password(&operator.ext),
                    )
            })
            .map(|operator| operator.ext.clone())
            .collect()
    }
}
