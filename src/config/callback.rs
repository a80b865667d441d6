//! `[trunk]` (where navbat dials out) and `[callbacks]` (where pending callbacks are kept),
//! and the per-tenant callback offer `[tenant.surge.callback]`.
//!
//! ```toml
//! [trunk]
//! outbound = "127.0.0.1:5090"     # the trunk's SIP address (host:port)
//! transport = "udp"               # or "tcp"
//! number_format = "{digits}"      # {e164} = +998901234567, {digits} = 998901234567,
//!                                 # {national} = 901234567 (numbers in +998 only)
//! ring_timeout_secs = 30          # an unanswered callback is cancelled after this
//!
//! [callbacks]
//! capacity = 100000              # most pending callbacks (kept in the database's
//!                                # callback_requests table, through the journal)
//!
//! [tenant.surge.callback]
//! offer_after_secs = 30          # a caller waiting this long in surge hears the offer
//! digit = "1"                    # ...and accepts with this key
//! max_attempts = 3               # dial attempts before giving up
//! retry_after_secs = 120         # pause after an unanswered attempt
//! live_reserve_percent = 30      # while live callers wait, callbacks hold at most 70 % of
//!                                # the queue's operators (0: arrival order alone decides)
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

use super::error::Collector;
use super::menu::DtmfDigit;

/// `[trunk]`: the outbound target for callbacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkConfig {
    /// The trunk's SIP address.
    pub outbound: SocketAddr,
    /// `udp` or `tcp`.
    pub transport: String,
    /// How the dialled number is written in the Request-URI (see [`TrunkConfig::format`]).
    pub number_format: String,
    /// How long a callback rings the caller before it counts as unanswered.
    pub ring_timeout: Duration,
}

impl TrunkConfig {
    /// The user part for `e164` (`+` and digits): `{e164}`, `{digits}` and `{national}` are
    /// replaced (`{national}` is the number without `+998`, or the digits for another
    /// country).
    pub fn format(&self, e164: &str) -> String {
        let digits = e164.trim_start_matches('+');
        let national = digits
            .strip_prefix(super::DEFAULT_COUNTRY_CODE)
            .unwrap_or(digits);
        self.number_format
            .replace("{e164}", e164)
            .replace("{digits}", digits)
            .replace("{national}", national)
    }

    /// The Request-URI and the stored binding of a number on the trunk.
    pub fn binding(&self, user: &str) -> crate::binding::StoredBinding {
        let host = self.outbound.ip().to_string();
        let hostport = match self.outbound {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        crate::binding::StoredBinding {
            uri: format!("sip:{user}@{hostport}"),
            transport: Some(self.transport.clone()),
            host,
            port: Some(self.outbound.port()),
        }
    }
}

/// `[callbacks]`: the callback book's bound (the book itself is kept by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbacksConfig {
    /// Most pending callbacks.
    pub capacity: usize,
}

impl Default for CallbacksConfig {
    fn default() -> CallbacksConfig {
        CallbacksConfig {
            capacity: default_capacity(),
        }
    }
}

/// `[tenant.surge.callback]`: the in-queue callback offer in surge mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallbackOffer {
    /// A caller waiting this long (in surge) hears the offer.
    pub offer_after: Duration,
    /// The key that accepts it.
    pub digit: DtmfDigit,
    /// Dial attempts before giving up.
    pub max_attempts: u32,
    /// Pause after an unanswered attempt.
    pub retry_after: Duration,
    /// Share of the queue's operators (percent) kept for live callers while live callers
    /// wait (`acd::QueueParams::live_reserve_percent`).
    pub live_reserve_percent: u8,
}

/// `[trunk]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrunk {
    pub outbound: String,
    #[serde(default = "default_transport")]
    pub transport: String,
    #[serde(default = "default_format")]
    pub number_format: String,
    #[serde(default = "default_ring")]
    pub ring_timeout_secs: u64,
}

/// `[callbacks]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCallbacks {
    /// No longer used (the store keeps the book); named in an error if present.
    pub log_path: Option<String>,
    #[serde(default = "default_capacity")]
    pub capacity: usize,
}

impl Default for RawCallbacks {
    fn default() -> RawCallbacks {
        RawCallbacks {
            log_path: None,
            capacity: default_capacity(),
        }
    }
}

/// `[tenant.surge.callback]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCallbackOffer {
    #[serde(default = "default_offer_after")]
    pub offer_after_secs: u64,
    #[serde(default = "default_digit")]
    pub digit: String,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_retry_after")]
    pub retry_after_secs: u64,
    #[serde(default = "default_live_reserve")]
    pub live_reserve_percent: u32,
}

fn default_transport() -> String {
    "udp".into()
}
fn default_format() -> String {
    "{digits}".into()
}
fn default_ring() -> u64 {
    30
}
fn default_capacity() -> usize {
    100_000
}
fn default_offer_after() -> u64 {
    30
}
fn default_digit() -> String {
    "1".into()
}
fn default_attempts() -> u32 {
    3
}
fn default_retry_after() -> u64 {
    120
}
/// From `loadgen sim --surge` on the results day (BENCHMARKS.md, "Results-day policy"): the
/// least reserve under which live callers get at least a quarter of the conversations while
/// they wait.
pub(crate) fn default_live_reserve() -> u32 {
    30
}

/// Checks `[trunk]`.
pub(crate) fn check_trunk(
    raw: Option<&RawTrunk>,
    errors: &mut Collector,
) -> Option<Option<TrunkConfig>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let before = errors.len();
    let outbound = match raw.outbound.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(
                "trunk.outbound",
                format!("\"{}\" is not an IP:port", raw.outbound),
                "write the trunk's address as IP:port, e.g. \"127.0.0.1:5090\"",
            );
            None
        }
    };
    if !["udp", "tcp"].contains(&raw.transport.as_str()) {
        errors.push(
            "trunk.transport",
            format!("\"{}\" is not a transport", raw.transport),
            "use \"udp\" or \"tcp\"",
        );
    }
    let format_ok = ["{e164}", "{digits}", "{national}"]
        .iter()
        .any(|p| raw.number_format.contains(p))
        && raw
            .number_format
            .replace("{e164}", "")
            .replace("{digits}", "")
            .replace("{national}", "")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+*#-_.".contains(c));
    if !format_ok {
        errors.push(
            "trunk.number_format",
            format!("\"{}\" cannot make a SIP user part", raw.number_format),
            "use one of {e164}, {digits} or {national}, optionally with a prefix such as \"8{national}\"",
        );
    }
    (errors.len() == before).then(|| {
        Some(TrunkConfig {
            outbound: outbound.expect("checked"),
            transport: raw.transport.clone(),
            number_format: raw.number_format.clone(),
            ring_timeout: Duration::from_secs(raw.ring_timeout_secs.max(1)),
        })
    })
}

/// Checks `[callbacks]`.
pub(crate) fn check_callbacks(
    raw: &RawCallbacks,
    errors: &mut Collector,
) -> Option<CallbacksConfig> {
    if raw.log_path.is_some() {
        errors.push(
            "callbacks.log_path",
            "this setting is no longer used: pending callbacks are kept in the database \
             (table callback_requests, through the journal in database.journal_dir) and \
             resume from there after a restart",
            "remove log_path from [callbacks] (requests still in the old file are not imported)",
        );
        return None;
    }
    if raw.capacity == 0 {
        errors.push(
            "callbacks.capacity",
            "a capacity of 0 refuses every callback",
            "set a positive number, e.g. 100000",
        );
        return None;
    }
    Some(CallbacksConfig {
        capacity: raw.capacity,
    })
}

/// Checks `[tenant.surge.callback]` at `field`.
pub(crate) fn check_offer(
    field: &str,
    raw: &RawCallbackOffer,
    errors: &mut Collector,
) -> Option<CallbackOffer> {
    let Some(digit) = DtmfDigit::parse(&raw.digit) else {
        errors.push(
            format!("{field}.digit"),
            format!("\"{}\" is not a key", raw.digit),
            format!("use one of {}", DtmfDigit::KEYS),
        );
        return None;
    };
    if raw.max_attempts == 0 {
        errors.push(
            format!("{field}.max_attempts"),
            "0 attempts would never call anyone back",
            "set 1 or more, e.g. 3",
        );
        return None;
    }
    if raw.live_reserve_percent > 100 {
        errors.push(
            format!("{field}.live_reserve_percent"),
            format!("{} is more than 100 percent", raw.live_reserve_percent),
            "set a share from 0 to 100, e.g. 30",
        );
        return None;
    }
    Some(CallbackOffer {
        offer_after: Duration::from_secs(raw.offer_after_secs),
        digit,
        max_attempts: raw.max_attempts,
        retry_after: Duration::from_secs(raw.retry_after_secs),
        live_reserve_percent: raw.live_reserve_percent as u8,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Config, EMBEDDED_DEFAULT_TOML};
    use super::*;

    fn parse(text: &str) -> Result<Config, super::super::ConfigErrors> {
        Config::from_toml_str(text, "test.toml")
    }

    /// The demo with its `[trunk]` section replaced by `trunk`.
    fn with_trunk(trunk: &str) -> String {
        let at = EMBEDDED_DEFAULT_TOML
            .find("[trunk]")
            .expect("the demo has a [trunk]");
        let end = EMBEDDED_DEFAULT_TOML[at..]
            .find("\n[callbacks]")
            .map(|e| at + e)
            .expect("[callbacks] follows [trunk]");
        format!(
            "{}{}{}",
            &EMBEDDED_DEFAULT_TOML[..at],
            trunk,
            &EMBEDDED_DEFAULT_TOML[end..]
        )
    }

    #[test]
    fn the_demo_dials_callbacks_through_a_loopback_trunk() {
        let config = parse(EMBEDDED_DEFAULT_TOML).unwrap();
        let trunk = config.trunk.expect("demo trunk");
        assert_eq!(trunk.outbound, "127.0.0.1:5090".parse().unwrap());
        assert_eq!(trunk.ring_timeout, Duration::from_secs(30));
        let offer = config.tenants[0]
            .surge
            .callback
            .expect("dtm offers callbacks");
        assert_eq!(offer.digit.as_char(), '1');
        assert_eq!(offer.max_attempts, 3);
        assert_eq!(config.callbacks.capacity, 100_000);
    }

    #[test]
    fn numbers_are_written_for_the_trunk() {
        let mut trunk = TrunkConfig {
            outbound: "127.0.0.1:5090".parse().unwrap(),
            transport: "udp".into(),
            number_format: "{digits}".into(),
            ring_timeout: Duration::from_secs(30),
        };
        assert_eq!(trunk.format("+998901234567"), "998901234567");
        trunk.number_format = "8{national}".into();
        assert_eq!(trunk.format("+998901234567"), "8901234567");
        trunk.number_format = "{e164}".into();
        assert_eq!(trunk.format("+998901234567"), "+998901234567");
        let b = trunk.binding("998901234567");
        assert_eq!(b.uri, "sip:998901234567@127.0.0.1:5090");
        assert_eq!(b.port, Some(5090));
    }

    #[test]
    fn callbacks_without_a_trunk_are_refused() {
        let errors = parse(&with_trunk("")).unwrap_err();
        let e = errors
            .at("tenant.dtm.surge.callback")
            .next()
            .unwrap_or_else(|| panic!("{errors}"));
        assert!(e.fix.contains("[trunk]"), "{e}");
    }

    #[test]
    fn a_bad_trunk_is_named_with_its_fix() {
        let errors = parse(&with_trunk(
            "[trunk]\noutbound = \"trunk.example\"\nnumber_format = \"{digits}@x\"\n",
        ))
        .unwrap_err();
        assert!(errors.has("trunk.outbound"), "{errors}");
        assert!(errors.has("trunk.number_format"), "{errors}");
    }

    #[test]
    fn the_old_file_settings_are_named_as_no_longer_used() {
        let text = EMBEDDED_DEFAULT_TOML
            .replace(
                "[callbacks]\n",
                "[callbacks]\nlog_path = \"data/callbacks.jsonl\"\n",
            )
            .replace(
                "[sms]\nenabled = false\n",
                "[sms]\nenabled = false\noutbox_path = \"data/sms-outbox.jsonl\"\n",
            );
        let errors = parse(&text).unwrap_err();
        for (field, what) in [
            ("callbacks.log_path", "log_path"),
            ("sms.outbox_path", "outbox_path"),
        ] {
            let e = errors
                .at(field)
                .next()
                .unwrap_or_else(|| panic!("{field}: {errors}"));
            assert!(e.problem.contains("no longer used"), "{e}");
            assert!(e.fix.starts_with(&format!("remove {what}")), "{e}");
        }
    }
}
