//! The rules of digest authentication beyond the arithmetic (the arithmetic is in
//! [`super::digest`]): a response must carry `qop=auth`, name the Request-URI it was computed
//! for, and never repeat a nonce count (RFC 7616 §3.4, §5.11); guessing is slowed per account
//! and stopped per source.
//!
//! Pure: time comes in as milliseconds; no clock, socket or lock. The registrar and the
//! feature-code door hold one [`AuthGuard`] behind a mutex and ask it before and after each
//! check.
//!
//! * **Per account and source** (every user name, known or not, so the answers do not tell a
//!   scanner which extensions exist): after `account_throttle_after` failures of one account
//!   from one address within `window`, that address's further attempts for the account must
//!   wait a delay that doubles from one second up to `account_max_throttle`; an attempt inside
//!   the delay is refused without being checked. The real phone, elsewhere, is not slowed:
//!   a delay shared by every address would let anyone keep an operator unregistered on exam
//!   day with one wrong guess a minute.
//! * **Per source address** (an IPv6 address counts as its /64): `source_ban_after` failures
//!   (checked or refused) within `window` ban the address for `source_ban`; everything it
//!   sends to the registrar is refused. An address that has authenticated within the window
//!   (an office behind NAT with one misconfigured phone) is banned only after ten times as
//!   many.
//! * **Nonce counts**: the highest `nc` accepted for each nonce is kept for the nonce's life;
//!   a response with a count not above it is a replay.
//!
//! Every map is bounded ([`MAX_TRACKED`]): expired entries go first, then arbitrary ones, so a
//! spray of user names or addresses costs bounded memory.

use std::collections::HashMap;
use std::net::IpAddr;

/// Entries kept per map at most.
pub const MAX_TRACKED: usize = 65_536;

/// User names are tracked by their first this-many bytes.
const ACCOUNT_KEY_MAX: usize = 64;

/// The limits, from `[sip.auth_guard]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthPolicy {
    /// Failures are counted over this window (ms).
    pub window_ms: u64,
    /// Failures of one account before its attempts are spaced out.
    pub account_throttle_after: u32,
    /// The longest delay between an account's attempts (ms).
    pub account_max_throttle_ms: u64,
    /// Failures from one source address that ban it.
    pub source_ban_after: u32,
    /// How long a ban lasts (ms).
    pub source_ban_ms: u64,
}

impl Default for AuthPolicy {
    fn default() -> AuthPolicy {
        AuthPolicy {
            window_ms: 600_000,
            account_throttle_after: 5,
            account_max_throttle_ms: 60_000,
            source_ban_after: 20,
            source_ban_ms: 900_000,
        }
    }
}

/// Whether an attempt may be checked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Check it.
    Check,
    /// The source is banned until this time (ms).
    SourceBanned {
        /// When the ban ends.
        until_ms: u64,
    },
    /// The account's next attempt is allowed from this time (ms).
    AccountThrottled {
        /// When it may try again.
        until_ms: u64,
        /// This refusal was the source's last allowed failure: banned until then.
        source_banned_until_ms: Option<u64>,
    },
}

/// What a failure changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FailureEffect {
    /// The source has just been banned (until this time).
    pub source_banned_until_ms: Option<u64>,
    /// The account is now spaced out: its next attempt from this time.
    pub account_throttled_until_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Budget {
    failures: u32,
    window_start_ms: u64,
    /// Refused until then (ban or throttle); 0: not blocked.
    blocked_until_ms: u64,
    /// A source that authenticated: trusted (a higher ban threshold) until then.
    trusted_until_ms: u64,
}

impl Budget {
    fn new(now_ms: u64) -> Budget {
        Budget {
            failures: 0,
            window_start_ms: now_ms,
            blocked_until_ms: 0,
            trusted_until_ms: 0,
        }
    }

    /// Counts a failure at `now_ms` and returns the failures in the current window.
    fn fail(&mut self, now_ms: u64, window_ms: u64) -> u32 {
        if now_ms.saturating_sub(self.window_start_ms) >= window_ms {
            self.failures = 0;
            self.window_start_ms = now_ms;
        }
        self.failures = self.failures.saturating_add(1);
        self.failures
    }

    fn expired(&self, now_ms: u64, window_ms: u64) -> bool {
        now_ms >= self.blocked_until_ms
            && now_ms >= self.trusted_until_ms
            && now_ms.saturating_sub(self.window_start_ms) >= window_ms
    }
}

/// The state behind the rules above.
#[derive(Debug)]
pub struct AuthGuard {
    policy: AuthPolicy,
    /// By (account, source group).
    accounts: HashMap<(String, IpAddr), Budget>,
    sources: HashMap<IpAddr, Budget>,
    /// Nonce -> (highest nc accepted, when the nonce stops being valid).
    counts: HashMap<String, (u32, u64)>,
}

impl AuthGuard {
    /// A guard with these limits.
    pub fn new(policy: AuthPolicy) -> AuthGuard {
        AuthGuard {
            policy,
            accounts: HashMap::new(),
            sources: HashMap::new(),
            counts: HashMap::new(),
        }
    }

    /// The limits.
    pub fn policy(&self) -> AuthPolicy {
        self.policy
    }

    /// Whether an attempt for `account` from `source` may be checked at `now_ms`. A refused
    /// attempt counts against the source (an attacker ignoring the delay is still guessing).
    pub fn admit(&mut self, now_ms: u64, source: IpAddr, account: &str) -> Admit {
        let source = group(source);
        if let Some(b) = self.sources.get(&source) {
            if now_ms < b.blocked_until_ms {
                return Admit::SourceBanned {
                    until_ms: b.blocked_until_ms,
                };
            }
        }
        let throttled = self
            .accounts
            .get(&(account_key(account).to_owned(), source))
            .map(|b| b.blocked_until_ms)
            .filter(|until| now_ms < *until);
        match throttled {
            Some(until_ms) => Admit::AccountThrottled {
                until_ms,
                source_banned_until_ms: self.fail_source(now_ms, source),
            },
            None => Admit::Check,
        }
    }

    /// Whether `source` is banned at `now_ms` (for requests that name no account yet).
    pub fn banned(&self, now_ms: u64, source: IpAddr) -> Option<u64> {
        self.sources
            .get(&group(source))
            .map(|b| b.blocked_until_ms)
            .filter(|until| now_ms < *until)
    }

    /// A checked attempt failed (wrong password, unknown account, replay, no `qop`, wrong
    /// `uri`).
    pub fn failed(&mut self, now_ms: u64, source: IpAddr, account: &str) -> FailureEffect {
        let source = group(source);
        let mut effect = FailureEffect {
            source_banned_until_ms: self.fail_source(now_ms, source),
            ..FailureEffect::default()
        };
        let policy = self.policy;
        let key = (account_key(account).to_owned(), source);
        let budget = budget_of(&mut self.accounts, now_ms, policy.window_ms, key);
        let failures = budget.fail(now_ms, policy.window_ms);
        if failures >= policy.account_throttle_after {
            let doublings = (failures - policy.account_throttle_after).min(20);
            let delay = (1_000u64 << doublings).min(policy.account_max_throttle_ms);
            budget.blocked_until_ms = now_ms + delay;
            effect.account_throttled_until_ms = Some(budget.blocked_until_ms);
        }
        effect
    }

    /// A checked attempt succeeded: the account's failures from that address are forgotten,
    /// and the address is trusted for a window (its failures are not forgotten: one good
    /// password does not excuse a run of guesses from the same address).
    pub fn succeeded(&mut self, now_ms: u64, source: IpAddr, account: &str) {
        let source = group(source);
        self.accounts
            .remove(&(account_key(account).to_owned(), source));
        let window_ms = self.policy.window_ms;
        budget_of(&mut self.sources, now_ms, window_ms, source).trusted_until_ms =
            now_ms + window_ms;
    }

    /// Accepts nonce count `nc` for `nonce` (valid until `nonce_expires_ms`) if it is above
    /// every count accepted before for that nonce; `false` is a replay.
    pub fn accept_count(
        &mut self,
        now_ms: u64,
        nonce: &str,
        nc: u32,
        nonce_expires_ms: u64,
    ) -> bool {
        if let Some((highest, _)) = self.counts.get(nonce) {
            if nc <= *highest {
                return false;
            }
        }
        if self.counts.len() >= MAX_TRACKED && !self.counts.contains_key(nonce) {
            self.counts.retain(|_, (_, expires)| *expires > now_ms);
            cut_to_target(&mut self.counts);
        }
        self.counts.insert(nonce.to_owned(), (nc, nonce_expires_ms));
        true
    }

    fn fail_source(&mut self, now_ms: u64, source: IpAddr) -> Option<u64> {
        let policy = self.policy;
        let budget = budget_of(&mut self.sources, now_ms, policy.window_ms, source);
        let failures = budget.fail(now_ms, policy.window_ms);
        let threshold = if now_ms < budget.trusted_until_ms {
            policy.source_ban_after.saturating_mul(10)
        } else {
            policy.source_ban_after
        };
        if failures >= threshold && now_ms >= budget.blocked_until_ms {
            budget.blocked_until_ms = now_ms + policy.source_ban_ms;
            // The ban is the consequence of this window; a new one starts after it.
            budget.failures = 0;
            budget.window_start_ms = budget.blocked_until_ms;
            return Some(budget.blocked_until_ms);
        }
        None
    }
}

/// The address a budget is kept for: IPv4 as it is (also when mapped into IPv6), IPv6 by its
/// /64, which one subscriber usually holds whole.
pub(crate) fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

fn account_key(account: &str) -> &str {
    if account.len() <= ACCOUNT_KEY_MAX {
        return account;
    }
    let mut end = ACCOUNT_KEY_MAX;
    while !account.is_char_boundary(end) {
        end -= 1;
    }
    &account[..end]
}

/// The budget of `key`, made when new. Keeps `map` under [`MAX_TRACKED`]: when full it is cut to 90 %
/// in one pass (so a spray pays for a scan once per tenth of the table, not per entry):
/// expired budgets first, then those not blocking anything, then arbitrary ones; a ban or a
/// delay in force goes last.
fn budget_of<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Budget>,
    now_ms: u64,
    window_ms: u64,
    key: K,
) -> &mut Budget {
    if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
        map.retain(|_, b| !b.expired(now_ms, window_ms));
        if map.len() > CUT_TO {
            map.retain(|_, b| now_ms < b.blocked_until_ms);
        }
        cut_to_target(map);
    }
    map.entry(key).or_insert_with(|| Budget::new(now_ms))
}

/// What a full map is cut down to in one pass.
const CUT_TO: usize = MAX_TRACKED / 10 * 9;

/// Removes arbitrary entries until `map` holds at most [`CUT_TO`].
fn cut_to_target<K: std::hash::Hash + Eq + Clone, V>(map: &mut HashMap<K, V>) {
    if map.len() > CUT_TO {
        let victims: Vec<K> = map.keys().take(map.len() - CUT_TO).cloned().collect();
        for victim in victims {
            map.remove(&victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    fn small() -> AuthPolicy {
        AuthPolicy {
            window_ms: 60_000,
            account_throttle_after: 3,
            account_max_throttle_ms: 8_000,
            source_ban_after: 10,
            source_ban_ms: 30_000,
        }
    }

    #[test]
    fn an_accounts_attempts_are_spaced_out_by_a_doubling_delay_up_to_the_cap() {
        let mut g = AuthGuard::new(AuthPolicy {
            source_ban_after: 100,
            ..small()
        });
        for _ in 0..2 {
            assert_eq!(g.admit(0, ip(1), "1001"), Admit::Check);
            assert_eq!(g.failed(0, ip(1), "1001").account_throttled_until_ms, None);
        }
        assert_eq!(
            g.failed(0, ip(1), "1001").account_throttled_until_ms,
            Some(1_000)
        );
        assert_eq!(
            g.admit(500, ip(1), "1001"),
            Admit::AccountThrottled {
                until_ms: 1_000,
                source_banned_until_ms: None
            }
        );
        assert_eq!(
            g.admit(500, ip(2), "1001"),
            Admit::Check,
            "the real phone elsewhere is not slowed by someone else's guesses"
        );
        assert_eq!(
            g.admit(500, ip(1), "1002"),
            Admit::Check,
            "other accounts go on"
        );
        let mut delays = Vec::new();
        let mut now = 1_000;
        for _ in 0..6 {
            assert_eq!(g.admit(now, ip(1), "1001"), Admit::Check);
            let until = g
                .failed(now, ip(1), "1001")
                .account_throttled_until_ms
                .unwrap();
            delays.push(until - now);
            now = until;
        }
        assert_eq!(delays, [2_000, 4_000, 8_000, 8_000, 8_000, 8_000]);
        g.succeeded(now, ip(1), "1001");
        assert_eq!(g.admit(now, ip(1), "1001"), Admit::Check);
    }

    #[test]
    fn an_address_that_authenticated_is_banned_only_after_ten_times_as_many_failures() {
        let mut g = AuthGuard::new(small());
        g.succeeded(0, ip(7), "1001");
        for i in 0..99u64 {
            let effect = g.failed(i, ip(7), &format!("x{i}"));
            assert_eq!(effect.source_banned_until_ms, None, "failure {i}");
        }
        assert!(g.failed(99, ip(7), "x99").source_banned_until_ms.is_some());
    }

    #[test]
    fn an_ipv6_source_is_its_slash_64() {
        let mut g = AuthGuard::new(small());
        for i in 0..10u16 {
            let addr: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            g.failed(0, addr, &format!("x{i}"));
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(g.banned(1, same_64).is_some());
        assert!(g.banned(1, other_64).is_none());
    }

    #[test]
    fn a_source_that_keeps_failing_is_banned_for_the_ban_time_whatever_the_account() {
        let mut g = AuthGuard::new(small());
        let mut banned_at = None;
        for i in 0..10u32 {
            let account = format!("10{i:02}");
            assert_eq!(g.admit(u64::from(i), ip(9), &account), Admit::Check);
            if let Some(until) = g
                .failed(u64::from(i), ip(9), &account)
                .source_banned_until_ms
            {
                banned_at = Some((i, until));
            }
        }
        assert_eq!(banned_at, Some((9, 9 + 30_000)));
        assert_eq!(
            g.admit(100, ip(9), "2000"),
            Admit::SourceBanned { until_ms: 30_009 }
        );
        assert_eq!(g.banned(100, ip(9)), Some(30_009));
        assert_eq!(
            g.admit(100, ip(8), "2000"),
            Admit::Check,
            "other addresses go on"
        );
        assert_eq!(g.admit(30_009, ip(9), "2000"), Admit::Check, "the ban ends");
        assert_eq!(g.banned(30_009, ip(9)), None);
    }

    #[test]
    fn attempts_refused_during_a_throttle_count_against_the_source() {
        let mut g = AuthGuard::new(small());
        for _ in 0..3 {
            g.failed(0, ip(4), "1001");
        }
        for t in 1..=6 {
            assert!(matches!(
                g.admit(t, ip(4), "1001"),
                Admit::AccountThrottled { .. }
            ));
        }
        // 3 checked + 6 refused = 9; the 10th failure bans.
        assert_eq!(
            g.admit(10, ip(4), "1001"),
            Admit::AccountThrottled {
                until_ms: 1_000,
                source_banned_until_ms: Some(10 + 30_000)
            }
        );
        assert!(matches!(
            g.admit(11, ip(4), "1001"),
            Admit::SourceBanned { .. }
        ));
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let mut g = AuthGuard::new(small());
        g.failed(0, ip(5), "1001");
        g.failed(1, ip(5), "1001");
        assert_eq!(
            g.failed(60_001, ip(5), "1001").account_throttled_until_ms,
            None,
            "a new window: one failure"
        );
    }

    #[test]
    fn a_nonce_count_is_accepted_once_and_only_upwards() {
        let mut g = AuthGuard::new(small());
        assert!(g.accept_count(0, "n1", 1, 300_000));
        assert!(
            !g.accept_count(1, "n1", 1, 300_000),
            "the same count again: a replay"
        );
        assert!(g.accept_count(2, "n1", 2, 300_000));
        assert!(
            !g.accept_count(3, "n1", 1, 300_000),
            "an older count: a replay"
        );
        assert!(
            g.accept_count(3, "n2", 1, 300_000),
            "another nonce has its own counts"
        );
    }

    #[test]
    fn the_maps_stay_bounded_under_a_spray() {
        let mut g = AuthGuard::new(AuthPolicy {
            source_ban_after: u32::MAX,
            ..small()
        });
        for i in 0..(MAX_TRACKED as u32 + 100) {
            let source = IpAddr::from(i.to_be_bytes());
            g.failed(0, source, &format!("guess-{i}"));
            g.accept_count(0, &format!("nonce-{i}"), 1, 300_000);
        }
        assert!(g.accounts.len() <= MAX_TRACKED);
        assert!(g.sources.len() <= MAX_TRACKED);
        assert!(g.counts.len() <= MAX_TRACKED);
        let long = "9".repeat(1_000);
        g.failed(0, ip(1), &long);
        assert!(g.accounts.keys().all(|k| k.0.len() <= ACCOUNT_KEY_MAX));
    }
}
