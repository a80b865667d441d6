//! Checking the raw document and converting it into [`Config`].
//!
//! Every check records its problem and carries on, so one run reports everything. Checks
//! that compare entries (a queue's tenant, an IVR entry's queue) are skipped when the entries
//! they compare against failed to read, to avoid reporting echoes of one typo.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Deserialize;

use super::error::Collector;
use super::parse;
use super::raw::{
    RawBilingual, RawConfig, RawHttp, RawIvr, RawLimits, RawMedia, RawOperator, RawQueue, RawSip,
    RawTenant, RawWindow,
};
use super::{
    demo_password, digest_ha1, digest_ha1_sha256, Bilingual, Config, ConfigErrors, DtmfDigit,
    HttpConfig, IvrMenu, LanguageChoice, Limits, MediaConfig, NoInputPolicy, Operator,
    OperatorDefaults, Queue, QueueTiming, ShutdownConfig, SipConfig, StrategyName, Tenant,
    TopicChoice, DEMO_ADMIN_TOKEN, SUPPORTED_LANGUAGES,
};
use crate::schedule::{parse_time_zone, parse_weekday, ClockTime, Hours, OpeningWindow, DAY_NAMES};

/// Parses and checks `text`.
pub(crate) fn build(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Collector::new(origin);
    let Some(raw) = parse::read(text, &mut errors) else {
        return Err(errors.into_errors());
    };
    let config = check(&raw, &mut errors);
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(errors.into_errors()),
    }
}

fn check(raw: &RawConfig, errors: &mut Collector) -> Option<Config> {
    let sip = check_sip(&raw.sip, errors);
    let media = check_media(&raw.media, errors);
    let http = check_http(&raw.http, errors);
    let limits = check_limits(&raw.limits, errors);
    let shutdown = ShutdownConfig {
        drain: secs(raw.shutdown.drain_secs),
    };
    let operators_defaults = OperatorDefaults {
        available_on_register: raw.operators_defaults.available_on_register,
    };

    let tenants_complete = raw.tenants.iter().all(Option::is_some);
    let queues_complete = raw.queues.iter().all(Option::is_some);
    if raw.tenants.is_empty() {
        errors.push(
            "tenant",
            "no tenant is configured, so no call can be routed",
            "add at least one [[tenant]] with its id, name, dids, timezone, hours and ivr",
        );
    }

    let labels = tenant_labels(&raw.tenants, errors);
    let queues = check_queues(raw, tenants_complete, errors);
    let tenants = check_tenants(
        raw,
        &labels,
        limits.as_ref().map(|limits| limits.channels),
        queues_complete,
        errors,
    );
    let operators = check_operators(raw, sip.as_ref(), queues_complete, tenants_complete, errors);
    let node = super::store::check_node(&raw.node, &raw.presence, errors);
    let database = super::store::check_database(&raw.database, errors);
    let presence = super::store::check_presence(&raw.presence, errors);
    let history = super::store::check_history(&raw.history, errors);
    let sms = super::sms::check_sms(raw.sms.as_ref(), errors);
    let trunk = super::callback::check_trunk(raw.trunk.as_ref(), errors);
    let callbacks = super::callback::check_callbacks(&raw.callbacks, errors);
    let requests = super::requests::check_requests(&raw.requests, errors);
    let notices = super::notices::check_notices(&raw.notices, errors);
    let recordings = super::recordings::check_recordings(
        &raw.recordings,
        &[
            ("media.recordings_dir", &raw.media.recordings_dir),
            ("database.journal_dir", &raw.database.journal_dir),
        ],
        errors,
    );
    let desk = super::desk::check_desk(
        &raw.desk,
        &raw.accounts,
        http.as_ref().map(|h| h.listen.ip().is_loopback()),
        errors,
    );
    if raw.trunk.is_none() {
        if let Some(tenants) = &tenants {
            for t in tenants.iter().filter(|t| t.surge.callback.is_some()) {
                errors.push(
                    format!("tenant.{}.surge.callback", t.id),
                    "callbacks are offered but no trunk is configured to dial them",
                    "add [trunk] with outbound = \"IP:port\", or remove [tenant.surge.callback]",
                );
            }
        }
    }

    Some(Config {
        sip: sip?,
        media: media?,
        http: http?,
        limits: limits?,
        shutdown,
        operators_defaults,
        tenants: tenants?,
        queues: queues?,
        operators: operators?,
        node,
        database: database?,
        presence: presence?,
        history: history?,
        sms: sms?,
        trunk: trunk?,
        callbacks: callbacks?,
        desk: desk?,
        requests,
        notices,
        recordings: recordings?,
    })
}

fn secs(value: u64) -> Duration {
    Duration::from_secs(value)
}

const SOCKET_FIX: &str = "write IP:port, e.g. \"127.0.0.1:5060\" or \"[::1]:5060\"";

fn socket(field: &str, text: &str, errors: &mut Collector) -> Option<SocketAddr> {
    match text.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errors.push(
                field,
                format!("\"{text}\" is not a socket address"),
                SOCKET_FIX,
            );
            None
        }
    }
}

fn ip(field: &str, text: &str, errors: &mut Collector) -> Option<IpAddr> {
    match text.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errors.push(
                field,
                format!("\"{text}\" is not an IP address"),
                "write a bare IPv4 or IPv6 address without a port, e.g. \"192.0.2.10\"",
            );
            None
        }
    }
}

fn check_sip(raw: &RawSip, errors: &mut Collector) -> Option<SipConfig> {
    let before = errors.len();
    let udp = raw
        .udp
        .as_deref()
        .and_then(|text| socket("sip.udp", text, errors));
    let tcp = raw
        .tcp
        .as_deref()
        .and_then(|text| socket("sip.tcp", text, errors));
    if raw.udp.is_none() && raw.tcp.is_none() {
        errors.push(
            "sip",
            "no SIP listener is configured",
            "set sip.udp and/or sip.tcp, e.g. udp = \"127.0.0.1:5060\"",
        );
    }
    if raw.realm.is_empty()
        || raw
            .realm
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '"' || c == '\\')
    {
        errors.push(
            "sip.realm",
            format!(
                "realm \"{}\" is empty or has spaces, quotes or backslashes",
                raw.realm
            ),
            "use a plain word such as \"navbat\", then recompute every operator's ha1 with it",
        );
    }
    if raw.nonce_ttl_secs == 0 {
        errors.push(
            "sip.nonce_ttl_secs",
            "a nonce that expires at once makes every authentication fail",
            "set it to a few minutes, e.g. 300",
        );
    }
    if raw.register_min_expires_secs == 0 {
        errors.push(
            "sip.register_min_expires_secs",
            "a minimum registration of 0 seconds lets softphones re-register in a busy loop",
            "set it to at least 60",
        );
    }
    if raw.register_min_expires_secs > raw.register_max_expires_secs {
        errors.push(
            "sip.register_max_expires_secs",
            format!(
                "maximum {} is below the minimum {}",
                raw.register_max_expires_secs, raw.register_min_expires_secs
            ),
            "make register_max_expires_secs at least register_min_expires_secs (e.g. 60 and 3600)",
        );
    }
    let public_ip = raw
        .public_ip
        .as_deref()
        .and_then(|text| ip("sip.public_ip", text, errors));
    if public_ip.is_some_and(|addr| addr.is_unspecified()) {
        errors.push(
            "sip.public_ip",
            "an unspecified address (0.0.0.0 or ::) cannot be advertised to peers",
            "set the address trunks and softphones reach this server at",
        );
    }
    let listens_unspecified = [udp, tcp]
        .iter()
        .flatten()
        .any(|addr| addr.ip().is_unspecified());
    if raw.public_ip.is_none() && listens_unspecified {
        errors.push(
            "sip.public_ip",
            "SIP listens on an unspecified address (0.0.0.0 or ::), which cannot be advertised in \
             Contact and SDP",
            "set sip.public_ip to the address trunks and softphones reach this server at",
        );
    }
    if raw.user_agent.is_empty() || raw.user_agent.chars().any(|c| c.is_control()) {
        errors.push(
            "sip.user_agent",
            "empty or has control characters",
            "leave it out (\"navbat\") or write a plain product name",
        );
    }
    if !(1..=64).contains(&raw.threads) {
        errors.push(
            "sip.threads",
            format!("{} worker threads for SIP", raw.threads),
            "leave it out for 1 (right for 2 to 4 cores), or give 1 to 64; more than 1 pays \
             only on a machine with cores to spare beside the actors, store and media",
        );
    }
    let guard = &raw.auth_guard;
    for (field, value) in [
        ("sip.auth_guard.window_secs", guard.window_secs),
        (
            "sip.auth_guard.account_throttle_after",
            u64::from(guard.account_throttle_after),
        ),
        (
            "sip.auth_guard.account_max_throttle_secs",
            guard.account_max_throttle_secs,
        ),
        (
            "sip.auth_guard.source_ban_after",
            u64::from(guard.source_ban_after),
        ),
        ("sip.auth_guard.source_ban_secs", guard.source_ban_secs),
    ] {
        if value == 0 {
            errors.push(
                field,
                "0 turns the protection against password guessing off or makes it refuse everyone",
                "leave it out for the default (window 600 s, delay after 5 failures up to 60 s, \
                 ban after 20 failures for 900 s) or give a positive number",
            );
        }
    }
    let door = check_door(&raw.door, errors);
    let tcp_limits = check_sip_tcp(&raw.tcp_limits, errors);
    if errors.len() > before {
        return None;
    }
    Some(SipConfig {
        udp,
        tcp,
        realm: raw.realm.clone(),
        nonce_ttl: secs(raw.nonce_ttl_secs),
        register_min_expires: secs(raw.register_min_expires_secs),
        register_max_expires: secs(raw.register_max_expires_secs),
        public_ip,
        user_agent: raw.user_agent.clone(),
        threads: raw.threads as usize,
        auth_guard: super::AuthGuardConfig {
            window: secs(guard.window_secs),
            account_throttle_after: guard.account_throttle_after,
            account_max_throttle: secs(guard.account_max_throttle_secs),
            source_ban_after: guard.source_ban_after,
            source_ban: secs(guard.source_ban_secs),
        },
        door: door?,
        tcp_limits: tcp_limits?,
    })
}

fn check_sip_tcp(
    raw: &super::raw::RawSipTcp,
    errors: &mut Collector,
) -> Option<super::SipTcpConfig> {
    let before = errors.len();
    if raw.per_source == 0 || raw.total == 0 {
        let field = if raw.per_source == 0 {
            "sip.tcp_limits.per_source"
        } else {
            "sip.tcp_limits.total"
        };
        errors.push(
            field,
            "0 refuses every TCP connection",
            "leave it out for the default (16 from a source, 1024 in all) or give a positive \
             number; to turn SIP over TCP off, leave sip.tcp (the address) out instead",
        );
    } else if raw.per_source > raw.total {
        errors.push(
            "sip.tcp_limits.per_source",
            format!(
                "{} per source is more than the {} allowed in all",
                raw.per_source, raw.total
            ),
            "give per_source at most total",
        );
    }
    if !(1..=60).contains(&raw.header_deadline_secs) {
        errors.push(
            "sip.tcp_limits.header_deadline_secs",
            format!(
                "{} s: 0 closes every connection, and more than 60 lets a slow sender hold one",
                raw.header_deadline_secs
            ),
            "leave it out for the default (5) or give 1 to 60",
        );
    }
    if raw.idle_secs < raw.header_deadline_secs.max(1) {
        errors.push(
            "sip.tcp_limits.idle_secs",
            format!("{} s is shorter than the header deadline", raw.idle_secs),
            "leave it out for the default (900, longer than a phone's keep-alive interval) or \
             give at least header_deadline_secs",
        );
    }
    if !(1_500..=1_048_576).contains(&raw.max_message_bytes) {
        errors.push(
            "sip.tcp_limits.max_message_bytes",
            format!(
                "{} bytes: below 1500 a plain INVITE does not fit, above 1 MiB one \
                 connection holds too much memory",
                raw.max_message_bytes
            ),
            "leave it out for the default (65535) or give 1500 to 1048576",
        );
    }
    (errors.len() == before).then(|| super::SipTcpConfig {
        per_source: raw.per_source,
        total: raw.total,
        header_deadline: secs(raw.header_deadline_secs),
        idle: secs(raw.idle_secs),
        max_message_bytes: raw.max_message_bytes,
    })
}

fn check_door(raw: &super::raw::RawDoor, errors: &mut Collector) -> Option<super::SipDoorConfig> {
    let before = errors.len();
    for (field, value) in [
        (
            "sip.door.source_invites_per_sec",
            raw.source_invites_per_sec,
        ),
        ("sip.door.source_burst", raw.source_burst),
        ("sip.door.trunk_invites_per_sec", raw.trunk_invites_per_sec),
        ("sip.door.trunk_burst", raw.trunk_burst),
    ] {
        if value == 0 {
            errors.push(
                field,
                "0 refuses every call from such a source",
                "leave it out for the default (20 a second, burst 40 from a source; 2,000 and \
                 4,000 from a trunk) or give a positive number",
            );
        }
    }
    if raw.queue < 64 {
        errors.push(
            "sip.door.queue",
            format!(
                "{} datagrams is too short a queue for a burst of one trunk",
                raw.queue
            ),
            "leave it out for the default (4096) or give at least 64",
        );
    }
    if raw.max_sources < 1024 {
        errors.push(
            "sip.door.max_sources",
            format!(
                "{} sources is too few: callers would share one allowance",
                raw.max_sources
            ),
            "leave it out for the default (65536) or give at least 1024",
        );
    }
    let trunk_sources: Vec<super::Network> = raw
        .trunk_sources
        .iter()
        .enumerate()
        .filter_map(|(k, text)| {
            let net = super::Network::parse(text);
            if net.is_none() {
                errors.push(
                    format!("sip.door.trunk_sources[{k}]"),
                    format!("\"{text}\" is not an address or network"),
                    "write \"192.0.2.10\", \"10.1.0.0/16\" or \"2001:db8::/32\"",
                );
            }
            net
        })
        .collect();
    if errors.len() > before {
        return None;
    }
    Some(super::SipDoorConfig {
        source_invites_per_sec: raw.source_invites_per_sec,
        source_burst: raw.source_burst,
        source_calls: raw.source_calls,
        trunk_invites_per_sec: raw.trunk_invites_per_sec,
        trunk_burst: raw.trunk_burst,
        trunk_calls: raw.trunk_calls,
        answers_per_sec: raw.answers_per_sec,
        queue: raw.queue,
        max_sources: raw.max_sources,
        trunk_sources,
        screen_calls: raw.screen_calls,
    })
}

fn check_media(raw: &RawMedia, errors: &mut Collector) -> Option<MediaConfig> {
    let rtp_ip = ip("media.rtp_ip", &raw.rtp_ip, errors);
    let mut ok = rtp_ip.is_some();
    if raw.rtp_port_min == 0 {
        ok = false;
        errors.push(
            "media.rtp_port_min",
            "port 0 cannot start an RTP port range",
            "use a range of unprivileged ports, e.g. rtp_port_min = 20000",
        );
    }
    if raw.rtp_port_min >= raw.rtp_port_max {
        ok = false;
        errors.push(
            "media.rtp_port_max",
            format!(
                "RTP port range {}..={} is empty or inverted",
                raw.rtp_port_min, raw.rtp_port_max
            ),
            "make rtp_port_max greater than rtp_port_min, about four ports per call, e.g. 20000 \
             and 21199 for 300 calls",
        );
    }
    for (field, value) in [
        ("media.prompts_dir", &raw.prompts_dir),
        ("media.recordings_dir", &raw.recordings_dir),
    ] {
        if value.trim().is_empty() {
            ok = false;
            errors.push(
                field,
                "the directory is empty",
                "give a directory path, e.g. config/prompts or data/recordings",
            );
        }
    }
    if raw.average_handle_secs == 0 {
        ok = false;
        errors.push(
            "media.average_handle_secs",
            "an average handling time of 0 s makes every expected wait zero",
            "set the average talk plus wrap-up time in seconds, e.g. 180",
        );
    }
    if !ok {
        return None;
    }
    Some(MediaConfig {
        rtp_ip: rtp_ip?,
        rtp_port_min: raw.rtp_port_min,
        rtp_port_max: raw.rtp_port_max,
        prompts_dir: raw.prompts_dir.clone().into(),
        recordings_dir: raw.recordings_dir.clone().into(),
        announce_every: (raw.announce_every_secs > 0).then(|| secs(raw.announce_every_secs)),
        average_handle: secs(raw.average_handle_secs),
    })
}

fn check_http(raw: &RawHttp, errors: &mut Collector) -> Option<HttpConfig> {
    let listen = socket("http.listen", &raw.listen, errors);
    let mut ok = listen.is_some();
    if let Some(token) = &raw.admin_token {
        if token.trim().is_empty() {
            ok = false;
            errors.push(
                "http.admin_token",
                "the admin token is empty",
                "set a long random token (e.g. from `openssl rand -hex 32`), or remove the key \
                 to disable the write API",
            );
        } else if token == DEMO_ADMIN_TOKEN && listen.is_some_and(|addr| !addr.ip().is_loopback()) {
            ok = false;
            errors.push(
                "http.admin_token",
                "the demo admin token is only allowed while HTTP listens on loopback",
                "set a long random token (e.g. from `openssl rand -hex 32`)",
            );
        }
    }
    if !(1..=1024).contains(&raw.events_feed_mib) {
        ok = false;
        errors.push(
            "http.events_feed_mib",
            "the in-memory event feed must hold between 1 and 1024 MiB",
            "leave it at 16 (the default), or raise it for a client that reads `/api/events` \
             seldom at a high call rate",
        );
    }
    if !ok {
        return None;
    }
    Some(HttpConfig {
        listen: listen?,
        admin_token: raw.admin_token.clone(),
        events_feed_bytes: usize::try_from(raw.events_feed_mib << 20).unwrap_or(usize::MAX),
    })
}

fn check_limits(raw: &RawLimits, errors: &mut Collector) -> Option<Limits> {
    let mut ok = true;
    if raw.channels == 0 {
        ok = false;
        errors.push(
            "limits.channels",
            "0 channels would refuse every call",
            "set the number of simultaneous calls the trunk carries, e.g. 300",
        );
    }
    if raw.retry_after_secs == 0 {
        ok = false;
        errors.push(
            "limits.retry_after_secs",
            "Retry-After: 0 invites trunks to retry at once, in a storm",
            "set a pause of some seconds, e.g. 30",
        );
    }
    ok.then(|| Limits {
        channels: raw.channels,
        retry_after: secs(raw.retry_after_secs),
    })
}

/// A short, safe id: lowercase letters, digits, `-` and `_`.
fn is_slug(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

const SLUG_FIX: &str = "use 1-64 lowercase letters, digits, '-' or '_', e.g. \"dtm\"";

fn language_ok(field: &str, language: &str, errors: &mut Collector) -> bool {
    if SUPPORTED_LANGUAGES.contains(&language) {
        return true;
    }
    errors.push(
        field,
        format!("language \"{language}\" has no prompts"),
        format!("use one of {}", SUPPORTED_LANGUAGES.join(", ")),
    );
    false
}

/// Path prefix per tenant: `tenant.<id>` when the id is usable and unique, else `tenant[i]`.
/// Also reports bad and duplicate ids.
fn tenant_labels(tenants: &[Option<RawTenant>], errors: &mut Collector) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for tenant in tenants.iter().flatten() {
        *counts.entry(tenant.id.as_str()).or_default() += 1;
    }
    tenants
        .iter()
        .enumerate()
        .map(|(index, tenant)| {
            let Some(tenant) = tenant else {
                return format!("tenant[{index}]");
            };
            let id = tenant.id.as_str();
            if !is_slug(id) {
                errors.push(
                    format!("tenant[{index}].id"),
                    format!("tenant id \"{id}\" is not a short id"),
                    SLUG_FIX,
                );
                return format!("tenant[{index}]");
            }
            if let Some(first) = seen.get(id) {
                errors.push(
                    format!("tenant[{index}].id"),
                    format!("tenant id \"{id}\" is already used by tenant[{first}]"),
                    "give every tenant its own id",
                );
            } else {
                seen.insert(id, index);
            }
            if counts.get(id).copied().unwrap_or(0) > 1 {
                format!("tenant[{index}]")
            } else {
                format!("tenant.{id}")
            }
        })
        .collect()
}

/// Both languages of a text a person reads, each not empty; `field` names it in errors.
pub(super) fn bilingual(
    field: &str,
    raw: &RawBilingual,
    errors: &mut Collector,
) -> Option<Bilingual> {
    let mut ok = true;
    for (language, text) in [("uz", &raw.uz), ("ru", &raw.ru)] {
        if text.trim().is_empty() {
            ok = false;
            errors.push(
                format!("{field}.{language}"),
                "the text is empty",
                "write it in both languages: Uzbek (Latin) in uz, Russian in ru",
            );
        }
    }
    ok.then(|| Bilingual {
        uz: raw.uz.clone(),
        ru: raw.ru.clone(),
    })
}

fn check_tenants(
    raw: &RawConfig,
    labels: &[String],
    global_channels: Option<u32>,
    queues_complete: bool,
    errors: &mut Collector,
) -> Option<Vec<Tenant>> {
    let mut tenants = Vec::new();
    let mut ok = true;
    let mut did_owner: HashMap<String, String> = HashMap::new();
    for (index, tenant) in raw.tenants.iter().enumerate() {
        let Some(tenant) = tenant else {
            ok = false;
            continue;
        };
        let label = &labels[index];
        let before = errors.len();

        let name = bilingual(&format!("{label}.name"), &tenant.name, errors);
        if tenant.dids.is_empty() {
            errors.push(
                format!("{label}.dids"),
                "the tenant has no DID, so no call can reach it",
                "list the dialled numbers of this line, e.g. dids = [\"712351914\"]",
            );
        }
        for (d, did) in tenant.dids.iter().enumerate() {
            let field = format!("{label}.dids[{d}]");
            let digits = did.strip_prefix('+').unwrap_or(did);
            if digits.is_empty() || digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit())
            {
                errors.push(
                    field,
                    format!("DID \"{did}\" is not a phone number"),
                    "write 1-15 digits with an optional leading '+', no spaces or dashes, e.g. \
                     \"712351914\"",
                );
                continue;
            }
            match did_owner.get(digits) {
                Some(owner) => errors.push(
                    field,
                    format!("DID \"{did}\" is already assigned to {owner}"),
                    "route each DID to exactly one tenant; remove it from one of them",
                ),
                None => {
                    did_owner.insert(digits.to_owned(), label.clone());
                }
            }
        }
        match (tenant.channels, global_channels) {
            (Some(0), _) => errors.push(
                format!("{label}.channels"),
                "0 channels would refuse every call of this tenant",
                "set the tenant's share of channels, or remove the key to use the global limit",
            ),
            (Some(own), Some(global)) if own > global => errors.push(
                format!("{label}.channels"),
                format!("{own} channels exceed the global limit of {global}"),
                format!("set at most {global}, or raise limits.channels"),
            ),
            _ => {}
        }
        let timezone = match parse_time_zone(&tenant.timezone) {
            Ok(zone) => Some(zone),
            Err(problem) => {
                errors.push(
                    format!("{label}.timezone"),
                    problem,
                    "use an IANA name such as \"Asia/Tashkent\" or a fixed offset such as \
                     \"+05:00\"; if the name is right, install the system time zone database \
                     (package tzdata)",
                );
                None
            }
        };
        let hours = check_hours(&format!("{label}.hours"), &tenant.hours, errors);
        let mut holidays = Vec::new();
        for (h, text) in tenant.holidays.iter().enumerate() {
            match parse_date(text) {
                Some(date) => holidays.push(date),
                None => errors.push(
                    format!("{label}.holidays[{h}]"),
                    format!("\"{text}\" is not a calendar date"),
                    "write dates as quoted \"YYYY-MM-DD\" strings, e.g. \"2026-03-21\"",
                ),
            }
        }
        let moved = super::sla::check_working_days(
            &tenant.working_days,
            tenant.working_days_as.as_deref(),
            label,
            &holidays,
            hours.as_ref(),
            errors,
        );
        let sla = super::sla::check_tenant_sla(tenant.sla.as_ref(), label, hours.as_ref(), errors);
        if tenant.service_level_secs == 0 {
            errors.push(
                format!("{label}.service_level_secs"),
                "a service level target of 0 seconds can never be met",
                "set the answer-time target, e.g. 20",
            );
        }
        let ivr = check_ivr(
            &format!("{label}.ivr"),
            &tenant.id,
            &tenant.ivr,
            raw,
            queues_complete,
            errors,
        );
        let topic_digits: Vec<char> = tenant
            .ivr
            .topics
            .iter()
            .filter_map(|t| DtmfDigit::parse(&t.digit).map(DtmfDigit::as_char))
            .collect();
        let surge = super::surge::check_surge(label, tenant.surge.as_ref(), &topic_digits, errors);
        let desk = ivr.as_ref().and_then(|ivr| {
            let topics: Vec<(String, Bilingual)> = ivr
                .topics
                .iter()
                .map(|t| (t.topic.clone(), t.label.clone()))
                .collect();
            super::desk::check_tenant_desk(tenant.desk.as_ref(), label, &topics, errors)
        });
        let requests =
            super::requests::check_tenant_requests(tenant.requests.as_ref(), label, errors);
        let notices =
            super::notices::check_tenant_notices(tenant.notices.as_ref(), label, &requests, errors);
        let billing = super::billing::check_tenant_billing(tenant.billing.as_ref(), label, errors);
        let recordings =
            super::recordings::check_tenant_recordings(tenant.recordings.as_ref(), label, errors);
        let qa = super::qa::check_tenant_qa(tenant.qa.as_ref(), label, errors);
        let trunk_sources = tenant.trunk_sources.as_ref().map(|list| {
            if list.is_empty() {
                errors.push(
                    format!("{label}.trunk_sources"),
                    "an empty list refuses every call",
                    "list the trunk's addresses or networks, or leave trunk_sources out to take \
                     calls from anywhere",
                );
            }
            list.iter()
                .enumerate()
                .filter_map(|(k, text)| {
                    let net = super::Network::parse(text);
                    if net.is_none() {
                        errors.push(
                            format!("{label}.trunk_sources[{k}]"),
                            format!("\"{text}\" is not an address or network"),
                            "write \"192.0.2.10\", \"10.1.0.0/16\" or \"2001:db8::/32\"",
                        );
                    }
                    net
                })
                .collect::<Vec<_>>()
        });

        if errors.len() > before {
            ok = false;
            continue;
        }
        let (Some((working_days, working_days_as)), Some(sla)) = (moved, sla) else {
            ok = false;
            continue;
        };
        match (name, timezone, hours, ivr, surge, desk) {
            (Some(name), Some(timezone), Some(hours), Some(ivr), Some(surge), Some(desk)) => {
                tenants.push(Tenant {
                    id: tenant.id.clone(),
                    name,
                    dids: tenant.dids.clone(),
                    channels: tenant.channels,
                    timezone,
                    hours,
                    holidays,
                    working_days,
                    working_days_as,
                    service_level: secs(tenant.service_level_secs),
                    ivr,
                    surge,
                    trunk_sources,
                    desk,
                    requests,
                    notices,
                    sla,
                    billing,
                    // A bad value was reported above, and the tenant skipped.
                    recordings: recordings.unwrap_or_default(),
                    qa,
                })
            }
            _ => ok = false,
        }
    }
    ok.then_some(tenants)
}

pub(super) fn parse_date(text: &str) -> Option<jiff::civil::Date> {
    // jiff accepts more forms than the one documented; keep the file format strict.
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    text.parse().ok()
}

fn check_hours(field: &str, value: &toml::Value, errors: &mut Collector) -> Option<Hours> {
    const FIX: &str = "write hours = \"24/7\" or a list such as hours = [{ days = [\"mon\", \
                       \"tue\", \"wed\", \"thu\", \"fri\"], open = \"08:00\", close = \"20:00\" }]";
    match value {
        toml::Value::String(text) if text == "24/7" => Some(Hours::Always),
        toml::Value::Array(items) => {
            if items.is_empty() {
                errors.push(
                    field,
                    "an empty list of opening windows means never open",
                    FIX,
                );
                return None;
            }
            let mut windows = Vec::new();
            let mut ok = true;
            for (w, item) in items.iter().enumerate() {
                match check_window(&format!("{field}[{w}]"), item, errors) {
                    Some(window) => windows.push(window),
                    None => ok = false,
                }
            }
            ok.then_some(Hours::Weekly(windows))
        }
        other => {
            errors.push(field, format!("{other} is not a schedule"), FIX);
            None
        }
    }
}

fn check_window(field: &str, value: &toml::Value, errors: &mut Collector) -> Option<OpeningWindow> {
    let raw = match RawWindow::deserialize(value.clone()) {
        Ok(raw) => raw,
        Err(error) => {
            errors.push(
                field,
                error
                    .message()
                    .lines()
                    .next()
                    .unwrap_or("not an opening window")
                    .to_owned(),
                "write { days = [\"mon\", ...], open = \"HH:MM\", close = \"HH:MM\" } with no \
                 other keys",
            );
            return None;
        }
    };
    let mut ok = true;
    let mut days = Vec::new();
    if raw.days.is_empty() {
        ok = false;
        errors.push(
            format!("{field}.days"),
            "the window applies to no day",
            format!("list some of {}", DAY_NAMES.join(", ")),
        );
    }
    for (d, name) in raw.days.iter().enumerate() {
        match parse_weekday(name) {
            Some(day) => days.push(day),
            None => {
                ok = false;
                errors.push(
                    format!("{field}.days[{d}]"),
                    format!("\"{name}\" is not a day of the week"),
                    format!("use one of {}", DAY_NAMES.join(", ")),
                );
            }
        }
    }
    let mut time = |key: &str, text: &str| {
        let parsed = ClockTime::parse(text);
        if parsed.is_none() {
            errors.push(
                format!("{field}.{key}"),
                format!("\"{text}\" is not a time of day"),
                "write \"HH:MM\" in 24-hour local time, e.g. \"08:00\" (close may be \"24:00\")",
            );
        }
        parsed
    };
    let open = time("open", &raw.open);
    let close = time("close", &raw.close);
    if let (Some(open), Some(close)) = (open, close) {
        if open >= close {
            ok = false;
            errors.push(
                format!("{field}.close"),
                format!("closing time {close} is not after opening time {open}"),
                "make close later than open on the same day; for a night shift write two \
                 windows, e.g. 20:00-24:00 and 00:00-08:00",
            );
        }
    }
    if !ok {
        return None;
    }
    Some(OpeningWindow {
        days,
        open: open?,
        close: close?,
    })
}

fn digit(field: &str, text: &str, errors: &mut Collector) -> Option<DtmfDigit> {
    let parsed = DtmfDigit::parse(text);
    if parsed.is_none() {
        errors.push(
            field,
            format!("\"{text}\" is not a phone key"),
            "use one quoted key: \"0\" to \"9\", \"*\" or \"#\"",
        );
    }
    parsed
}

fn check_ivr(
    field: &str,
    tenant_id: &str,
    raw: &RawIvr,
    config: &RawConfig,
    queues_complete: bool,
    errors: &mut Collector,
) -> Option<IvrMenu> {
    let before = errors.len();
    if raw.digit_timeout_secs == 0 {
        errors.push(
            format!("{field}.digit_timeout_secs"),
            "a digit timeout of 0 gives the caller no time to press a key",
            "set a few seconds, e.g. 6",
        );
    }
    let on_no_input = NoInputPolicy::parse(&raw.on_no_input);
    if on_no_input.is_none() {
        errors.push(
            format!("{field}.on_no_input"),
            format!("\"{}\" is not a no-input policy", raw.on_no_input),
            format!("use one of {}", NoInputPolicy::NAMES.join(", ")),
        );
    }

    if raw.languages.is_empty() {
        errors.push(
            format!("{field}.languages"),
            "the menu has no language entry, so no call can reach a queue",
            "add entries such as { digit = \"1\", language = \"uz\", queue = \"dtm-uz\" }",
        );
    }
    let mut languages = Vec::new();
    let mut digits_seen: HashSet<char> = HashSet::new();
    let mut languages_seen: HashSet<&str> = HashSet::new();
    for (l, entry) in raw.languages.iter().enumerate() {
        let at = format!("{field}.languages[{l}]");
        let key = digit(&format!("{at}.digit"), &entry.digit, errors);
        if let Some(key) = key {
            if !digits_seen.insert(key.as_char()) {
                errors.push(
                    format!("{at}.digit"),
                    format!(
                        "key \"{}\" is used twice in the language menu",
                        key.as_char()
                    ),
                    "give each language its own key",
                );
            }
        }
        if language_ok(&format!("{at}.language"), &entry.language, errors)
            && !languages_seen.insert(entry.language.as_str())
        {
            errors.push(
                format!("{at}.language"),
                format!("language \"{}\" appears twice in the menu", entry.language),
                "list each language once",
            );
        }
        match config
            .queues
            .iter()
            .flatten()
            .find(|queue| queue.id == entry.queue)
        {
            Some(queue) if queue.tenant != tenant_id => errors.push(
                format!("{at}.queue"),
                format!(
                    "queue \"{}\" belongs to tenant \"{}\", not \"{tenant_id}\"",
                    entry.queue, queue.tenant
                ),
                format!("route to a queue whose tenant is \"{tenant_id}\", or add one"),
            ),
            Some(queue) if queue.language != entry.language => errors.push(
                format!("{at}.queue"),
                format!(
                    "queue \"{}\" serves language \"{}\", but this entry is \"{}\"",
                    entry.queue, queue.language, entry.language
                ),
                "route to a queue of the same language",
            ),
            Some(_) => {}
            None if queues_complete => errors.push(
                format!("{at}.queue"),
                format!("there is no queue \"{}\"", entry.queue),
                format!(
                    "add a [[queue]] with id = \"{}\" and tenant = \"{tenant_id}\", or name an \
                     existing one",
                    entry.queue
                ),
            ),
            None => {}
        }
        if let Some(key) = key {
            languages.push(LanguageChoice {
                digit: key,
                language: entry.language.clone(),
                queue: entry.queue.clone(),
            });
        }
    }

    let mut topics = Vec::new();
    let mut digits_seen: HashSet<char> = HashSet::new();
    let mut topics_seen: HashSet<&str> = HashSet::new();
    for (t, entry) in raw.topics.iter().enumerate() {
        let at = format!("{field}.topics[{t}]");
        let key = digit(&format!("{at}.digit"), &entry.digit, errors);
        if let Some(key) = key {
            if !digits_seen.insert(key.as_char()) {
                errors.push(
                    format!("{at}.digit"),
                    format!("key \"{}\" is used twice in the topic menu", key.as_char()),
                    "give each topic its own key",
                );
            }
        }
        if !is_slug(&entry.topic) {
            errors.push(
                format!("{at}.topic"),
                format!("topic \"{}\" is not a short name", entry.topic),
                "use 1-64 lowercase letters, digits, '-' or '_', e.g. \"results\"",
            );
        } else if !topics_seen.insert(entry.topic.as_str()) {
            errors.push(
                format!("{at}.topic"),
                format!("topic \"{}\" appears twice in the menu", entry.topic),
                "list each topic once",
            );
        }
        let label = bilingual(&format!("{at}.label"), &entry.label, errors);
        if let (Some(key), Some(label)) = (key, label) {
            topics.push(TopicChoice {
                digit: key,
                topic: entry.topic.clone(),
                label,
            });
        }
    }

    let wants_default = on_no_input == Some(NoInputPolicy::Default);
    let default_language = match &raw.default_language {
        Some(language) => {
            if !raw
                .languages
                .iter()
                .any(|entry| &entry.language == language)
            {
                errors.push(
                    format!("{field}.default_language"),
                    format!("default language \"{language}\" is not in the menu"),
                    format!(
                        "use one of the menu's languages: {}",
                        menu_list(raw.languages.iter().map(|entry| entry.language.as_str()))
                    ),
                );
            }
            Some(language.clone())
        }
        // A one-language menu defaults to its only language.
        None if raw.languages.len() == 1 => Some(raw.languages[0].language.clone()),
        None if wants_default => {
            errors.push(
                format!("{field}.default_language"),
                "on_no_input = \"default\" needs a default language",
                "set default_language to one of the menu's languages, or on_no_input = \"hangup\"",
            );
            None
        }
        None => None,
    };
    let default_topic = match &raw.default_topic {
        Some(topic) => {
            if !raw.topics.iter().any(|entry| &entry.topic == topic) {
                errors.push(
                    format!("{field}.default_topic"),
                    format!("default topic \"{topic}\" is not in the menu"),
                    if raw.topics.is_empty() {
                        "remove default_topic: this menu has no topic level".to_owned()
                    } else {
                        format!(
                            "use one of the menu's topics: {}",
                            menu_list(raw.topics.iter().map(|entry| entry.topic.as_str()))
                        )
                    },
                );
            }
            Some(topic.clone())
        }
        None if wants_default && !raw.topics.is_empty() => {
            errors.push(
                format!("{field}.default_topic"),
                "on_no_input = \"default\" needs a default topic",
                "set default_topic to one of the menu's topics, or on_no_input = \"hangup\"",
            );
            None
        }
        None => None,
    };

    if errors.len() > before {
        return None;
    }
    Some(IvrMenu {
        digit_timeout: secs(raw.digit_timeout_secs),
        max_retries: raw.max_retries,
        on_no_input: on_no_input?,
        default_language,
        languages,
        topics,
        default_topic,
        greeting_barge_in: raw.greeting_barge_in,
    })
}

fn menu_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "(none yet)".to_owned()
    } else {
        names.join(", ")
    }
}

fn check_queues(
    raw: &RawConfig,
    tenants_complete: bool,
    errors: &mut Collector,
) -> Option<Vec<Queue>> {
    let mut queues = Vec::new();
    let mut ok = true;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, queue) in raw.queues.iter().enumerate() {
        let Some(queue) = queue else {
            ok = false;
            continue;
        };
        let before = errors.len();
        let at = format!("queue[{index}]");
        if !is_slug(&queue.id) {
            errors.push(
                format!("{at}.id"),
                format!("queue id \"{}\" is not a short id", queue.id),
                "use 1-64 lowercase letters, digits, '-' or '_', e.g. \"dtm-uz\"",
            );
        } else if let Some(first) = seen.get(queue.id.as_str()) {
            errors.push(
                format!("{at}.id"),
                format!(
                    "queue id \"{}\" is already used by queue[{first}]",
                    queue.id
                ),
                "give every queue its own id",
            );
        } else {
            seen.insert(&queue.id, index);
        }
        let tenant = raw
            .tenants
            .iter()
            .flatten()
            .find(|tenant| tenant.id == queue.tenant);
        if tenant.is_none() && tenants_complete {
            errors.push(
                format!("{at}.tenant"),
                format!(
                    "queue \"{}\" refers to unknown tenant \"{}\"",
                    queue.id, queue.tenant
                ),
                format!(
                    "use one of the tenant ids: {}",
                    menu_list(
                        raw.tenants
                            .iter()
                            .flatten()
                            .map(|tenant| tenant.id.as_str())
                    )
                ),
            );
        }
        language_ok(&format!("{at}.language"), &queue.language, errors);
        if let Some(tenant) = tenant {
            check_queue_topics(&at, queue, tenant, errors);
        }
        let strategy = StrategyName::parse(&queue.strategy);
        if strategy.is_none() {
            errors.push(
                format!("{at}.strategy"),
                format!("\"{}\" is not a routing strategy", queue.strategy),
                format!("use one of {}", StrategyName::NAMES.join(", ")),
            );
        }
        if queue.max_waiting == Some(0) {
            errors.push(
                format!("{at}.max_waiting"),
                "max_waiting = 0 would turn every caller away",
                "set how many callers may wait at once, or remove the key for no limit",
            );
        }
        let normal = QueueTiming {
            max_wait: secs(queue.max_wait_secs),
            ring_timeout: secs(queue.ring_timeout_secs),
            wrap_up: secs(queue.wrap_up_secs),
            max_missed_offers: queue.max_missed_offers,
            reserve_after: queue.reserve_after_secs.map(secs),
        };
        check_timing(&at, &normal, errors);
        let surge = match &queue.surge {
            Some(overrides) => {
                let surge = QueueTiming {
                    max_wait: overrides.max_wait_secs.map_or(normal.max_wait, secs),
                    ring_timeout: overrides
                        .ring_timeout_secs
                        .map_or(normal.ring_timeout, secs),
                    wrap_up: overrides.wrap_up_secs.map_or(normal.wrap_up, secs),
                    max_missed_offers: overrides
                        .max_missed_offers
                        .unwrap_or(normal.max_missed_offers),
                    reserve_after: overrides
                        .reserve_after_secs
                        .map(secs)
                        .or(normal.reserve_after),
                };
                check_timing(&format!("{at}.surge"), &surge, errors);
                surge
            }
            None => normal.clone(),
        };
        if errors.len() > before {
            ok = false;
            continue;
        }
        if let Some(strategy) = strategy {
            queues.push(Queue {
                id: queue.id.clone(),
                tenant: queue.tenant.clone(),
                language: queue.language.clone(),
                topics: queue.topics.clone(),
                strategy,
                normal,
                surge,
                max_waiting: queue.max_waiting,
                priority: queue.priority,
            });
        }
    }
    ok.then_some(queues)
}

fn check_queue_topics(at: &str, queue: &RawQueue, tenant: &RawTenant, errors: &mut Collector) {
    for (t, topic) in queue.topics.iter().enumerate() {
        if !tenant.ivr.topics.iter().any(|entry| &entry.topic == topic) {
            errors.push(
                format!("{at}.topics[{t}]"),
                format!(
                    "topic \"{topic}\" is not in tenant \"{}\"'s IVR menu",
                    tenant.id
                ),
                if tenant.ivr.topics.is_empty() {
                    "remove the topics: this tenant's menu has no topic level (empty = all calls)"
                        .to_owned()
                } else {
                    format!(
                        "use topics of the menu ({}), or leave the list empty for all topics",
                        menu_list(tenant.ivr.topics.iter().map(|entry| entry.topic.as_str()))
                    )
                },
            );
        }
    }
}

/// Checks one set of queue timings; `at` is `queue[i]` or `queue[i].surge`.
fn check_timing(at: &str, timing: &QueueTiming, errors: &mut Collector) {
    if timing.ring_timeout.is_zero() {
        errors.push(
            format!("{at}.ring_timeout_secs"),
            "a ring timeout of 0 gives operators no time to answer",
            "set how long an operator's phone rings, e.g. 20",
        );
    } else if timing.max_wait < timing.ring_timeout {
        errors.push(
            format!("{at}.max_wait_secs"),
            format!(
                "max wait {}s is shorter than the ring timeout {}s, so no offer could complete",
                timing.max_wait.as_secs(),
                timing.ring_timeout.as_secs()
            ),
            "make max_wait_secs at least ring_timeout_secs (typically many times it)",
        );
    }
    if timing.max_missed_offers == 0 {
        errors.push(
            format!("{at}.max_missed_offers"),
            "0 would pause an operator before any call is offered",
            "set how many missed offers in a row pause an operator, e.g. 3",
        );
    }
}

fn check_operators(
    raw: &RawConfig,
    sip: Option<&SipConfig>,
    queues_complete: bool,
    tenants_complete: bool,
    errors: &mut Collector,
) -> Option<Vec<Operator>> {
    let realm = raw.sip.realm.as_str();
    let sip_not_loopback = sip.is_some_and(|sip| !sip.is_loopback_only());
    let mut operators = Vec::new();
    let mut ok = true;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    // SHA-256 is offered to every user alike (the offer must not tell a scanner which
    // extensions exist), so either every operator has its HA1 or none has.
    let with_sha256 = raw
        .operators
        .iter()
        .flatten()
        .filter(|o| o.ha1_sha256.is_some())
        .count();
    if with_sha256 > 0 {
        if let Some((index, operator)) = raw.operators.iter().enumerate().find_map(|(i, o)| {
            o.as_ref()
                .filter(|o| o.ha1_sha256.is_none())
                .map(|o| (i, o))
        }) {
            errors.push(
                format!("operator[{index}].ha1_sha256"),
                format!(
                    "{with_sha256} operators have a SHA-256 HA1 and {} has none: SHA-256 is \
                     offered to every user alike, so it would not authenticate",
                    operator.ext
                ),
                format!(
                    "add it: `printf '{}:{realm}:PASSWORD' | sha256sum`, or remove ha1_sha256 \
                     from every operator to offer MD5 only",
                    operator.ext
                ),
            );
        }
    }
    for (index, operator) in raw.operators.iter().enumerate() {
        let Some(operator) = operator else {
            ok = false;
            continue;
        };
        let before = errors.len();
        let at = format!("operator[{index}]");
        let ext = operator.ext.as_str();
        if ext.is_empty() || ext.len() > 32 || !ext.chars().all(|c| c.is_ascii_alphanumeric()) {
            errors.push(
                format!("{at}.ext"),
                format!("extension \"{ext}\" is not a SIP user name"),
                "use digits or ASCII letters only, e.g. \"1001\"",
            );
        } else if let Some(first) = seen.get(ext) {
            errors.push(
                format!("{at}.ext"),
                format!("extension \"{ext}\" is already used by operator[{first}]"),
                "give every operator their own extension",
            );
        } else {
            seen.insert(ext, index);
        }
        if operator.name.trim().is_empty() {
            errors.push(
                format!("{at}.name"),
                "the name is empty",
                "write the name supervisors see, e.g. \"Operator 1001\"",
            );
        }
        let ha1 = operator.ha1.to_ascii_lowercase();
        if ha1.len() != 32 || !ha1.chars().all(|c| c.is_ascii_hexdigit()) {
            errors.push(
                format!("{at}.ha1"),
                "ha1 is not 32 hexadecimal characters (an MD5 digest)",
                format!(
                    "compute it with `printf '{ext}:{realm}:PASSWORD' | md5sum` and paste the \
                     32 hex characters; never store the password itself"
                ),
            );
        } else if sip_not_loopback && ha1 == digest_ha1(ext, realm, &demo_password(ext)) {
            errors.push(
                format!("{at}.ha1"),
                format!(
                    "operator {ext} uses the demo password; demo credentials are only allowed \
                     while SIP listens on loopback"
                ),
                format!(
                    "set a real HA1: `printf '{ext}:{realm}:SECRET' | md5sum` with a strong \
                     SECRET, or keep SIP on 127.0.0.1"
                ),
            );
        }
        let ha1_sha256 = operator.ha1_sha256.as_deref().map(str::to_ascii_lowercase);
        if let Some(h) = &ha1_sha256 {
            if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                errors.push(
                    format!("{at}.ha1_sha256"),
                    "ha1_sha256 is not 64 hexadecimal characters (a SHA-256 digest)",
                    format!(
                        "compute it with `printf '{ext}:{realm}:PASSWORD' | sha256sum` and paste \
                         the 64 hex characters, or leave it out to offer MD5 only"
                    ),
                );
            } else if sip_not_loopback
                && *h == digest_ha1_sha256(ext, realm, &demo_password(ext))
                // The same demo password in ha1 is reported there, once.
                && ha1 != digest_ha1(ext, realm, &demo_password(ext))
            {
                errors.push(
                    format!("{at}.ha1_sha256"),
                    format!(
                        "operator {ext} uses the demo password; demo credentials are only \
                         allowed while SIP listens on loopback"
                    ),
                    format!(
                        "set a real one: `printf '{ext}:{realm}:SECRET' | sha256sum` with the \
                         SECRET of ha1, or keep SIP on 127.0.0.1"
                    ),
                );
            }
        }
        if operator.languages.is_empty() {
            errors.push(
                format!("{at}.languages"),
                "the operator speaks no language, so no queue can offer them a call",
                format!(
                    "list the languages they speak, from {}",
                    SUPPORTED_LANGUAGES.join(", ")
                ),
            );
        }
        for (l, language) in operator.languages.iter().enumerate() {
            let field = format!("{at}.languages[{l}]");
            if language_ok(&field, language, errors)
                && queues_complete
                && !raw
                    .queues
                    .iter()
                    .flatten()
                    .any(|queue| &queue.language == language)
            {
                errors.push(
                    field,
                    format!("no queue serves language \"{language}\""),
                    format!(
                        "remove \"{language}\" from this operator, or add a [[queue]] with \
                         language = \"{language}\""
                    ),
                );
            }
        }
        for (t, topic) in operator.topics.iter().enumerate() {
            let known = raw
                .tenants
                .iter()
                .flatten()
                .any(|tenant| tenant.ivr.topics.iter().any(|entry| &entry.topic == topic));
            if !known && tenants_complete {
                errors.push(
                    format!("{at}.topics[{t}]"),
                    format!("no tenant's IVR menu has topic \"{topic}\""),
                    "use a topic from some tenant's ivr.topics, or leave the list empty for \
                     every topic",
                );
            }
        }
        if errors.len() > before {
            ok = false;
            continue;
        }
        operators.push(to_operator(operator, ha1, ha1_sha256));
    }
    ok.then_some(operators)
}

fn to_operator(raw: &RawOperator, ha1: String, ha1_sha256: Option<String>) -> Operator {
    Operator {
        ext: raw.ext.clone(),
        name: raw.name.clone(),
        ha1,
        ha1_sha256,
        languages: raw.languages.clone(),
        topics: raw.topics.clone(),
        reserve: raw.reserve,
        supervisor: raw.supervisor,
    }
}
