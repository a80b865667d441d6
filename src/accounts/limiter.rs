//! Web login attempts, limited per account and per source (pure: `now` in, verdicts out).
//!
//! Three counters, each over a sliding window of failures:
//! * **account + source**: after `pair_after` failures the pair waits, the wait doubling
//!   with each further failure up to `max_delay_ms`. The owner typing a wrong password a few
//!   times from the office is not affected by a guesser elsewhere.
//! * **account** (any source): after `account_after` failures the account takes one
//!   attempt per `account_spacing_ms`: distributed guessing is slowed to a trickle while the
//!   owner can still log in (a lockout would let anyone keep them out).
//! * **source** (any account, IPv6 by /64): after `source_after` failures the source is
//!   refused for `source_block_ms`: one address spraying many accounts.
//!
//! A success clears the pair's counter. Maps are bounded: when one reaches `max_entries`
//! the oldest entries are dropped in one pass.

use std::collections::HashMap;
use std::net::IpAddr;

/// The limits (config `[desk.login_limit]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Failures are counted over this window.
    pub window_ms: u64,
    /// Failures of one account from one source before it waits.
    pub pair_after: u32,
    /// Longest wait for one account and source.
    pub max_delay_ms: u64,
    /// Failures of one account from anywhere before it is spaced.
    pub account_after: u32,
    /// Spacing of attempts at a spaced account.
    pub account_spacing_ms: u64,
    /// Failures from one source (any account) before it is blocked.
    pub source_after: u32,
    /// How long a source stays blocked.
    pub source_block_ms: u64,
    /// Entries per map at most.
    pub max_entries: usize,
}

impl Default for LoginPolicy {
    fn default() -> LoginPolicy {
        LoginPolicy {
            window_ms: 15 * 60_000,
            pair_after: 5,
            max_delay_ms: 15 * 60_000,
            account_after: 20,
            account_spacing_ms: 10_000,
            source_after: 50,
            source_block_ms: 15 * 60_000,
            max_entries: 100_000,
        }
    }
}

/// What the limiter says about an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password.
    Allow,
    /// Refused without checking; try again after this many ms.
    Wait {
        /// Milliseconds until an attempt is taken.
        retry_after_ms: u64,
        /// Which limit refused it.
        scope: Scope,
    },
}

/// Which limit refused an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// This account from this source.
    AccountAndSource,
    /// This account from anywhere.
    Account,
    /// This source, any account.
    Source,
}

#[derive(Clone, Copy, Debug, Default)]
struct Count {
    failures: u32,
    first_ms: u64,
    /// Not before this time.
    until_ms: u64,
    last_ms: u64,
}

impl Count {
    fn fresh(&mut self, now: u64, window: u64) {
        if self.failures > 0 && now.saturating_sub(self.first_ms) > window && now >= self.until_ms {
            *self = Count::default();
        }
    }

    fn fail(&mut self, now: u64, window: u64) {
        self.fresh(now, window);
        if self.failures == 0 {
            self.first_ms = now;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_ms = now;
    }
}

/// The limiter. One per process; the web layer holds it behind a mutex.
#[derive(Debug)]
pub struct LoginLimiter {
    policy: LoginPolicy,
    pairs: HashMap<(String, IpAddr), Count>,
    accounts: HashMap<String, Count>,
    sources: HashMap<IpAddr, Count>,
}

/// IPv6 sources count by /64 (one host usually has a whole /64).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn cut<K: Clone + Eq + std::hash::Hash>(map: &mut HashMap<K, Count>, max: usize) {
    if map.len() < max {
        return;
    }
    let mut ages: Vec<(u64, K)> = map.iter().map(|(k, c)| (c.last_ms, k.clone())).collect();
    ages.sort_unstable_by_key(|(t, _)| *t);
    let drop = map.len() - max * 9 / 10;
    for (_, k) in ages.into_iter().take(drop) {
        map.remove(&k);
    }
}

impl LoginLimiter {
    /// A limiter with `policy`.
    pub fn new(policy: LoginPolicy) -> LoginLimiter {
        LoginLimiter {
            policy,
            pairs: HashMap::new(),
            accounts: HashMap::new(),
            sources: HashMap::new(),
        }
    }

    /// Whether an attempt for `account` from `source` is taken now.
    pub fn check(&mut self, now: u64, account: &str, source: IpAddr) -> Verdict {
        let p = self.policy;
        let source = source_key(source);
        if let Some(c) = self.sources.get_mut(&source) {
            c.fresh(now, p.window_ms);
            if c.until_ms > now {
                return Verdict::Wait {
                    retry_after_ms: c.until_ms - now,
                    scope: Scope::Source,
                };
            }
        }
        if let Some(c) = self.pairs.get_mut(&(account.to_owned(), source)) {
            c.fresh(now, p.window_ms);
            if c.until_ms > now {
                return Verdict::Wait {
                    retry_after_ms: c.until_ms - now,
                    scope: Scope::AccountAndSource,
                };
            }
        }
        if let Some(c) = self.accounts.get_mut(account) {
            c.fresh(now, p.window_ms);
            if c.until_ms > now {
                return Verdict::Wait {
                    retry_after_ms: c.until_ms - now,
                    scope: Scope::Account,
                };
            }
        }
        Verdict::Allow
    }

    /// Records a failed attempt (wrong password, unknown or disabled account).
    pub fn failed(&mut self, now: u64, account: &str, source: IpAddr) {
        let p = self.policy;
        let source = source_key(source);
        cut(&mut self.pairs, p.max_entries);
        cut(&mut self.accounts, p.max_entries);
        cut(&mut self.sources, p.max_entries);

        let pair = self.pairs.entry((account.to_owned(), source)).or_default();
        pair.fail(now, p.window_ms);
        if pair.failures >= p.pair_after {
            let doublings = (pair.failures - p.pair_after).min(20);
            let delay = (1_000u64 << doublings).min(p.max_delay_ms);
            pair.until_ms = now + delay;
        }
        let acc = self.accounts.entry(account.to_owned()).or_default();
        acc.fail(now, p.window_ms);
        if acc.failures >= p.account_after {
            acc.until_ms = now + p.account_spacing_ms;
        }
        let src = self.sources.entry(source).or_default();
        src.fail(now, p.window_ms);
        if src.failures >= p.source_after {
            src.until_ms = now + p.source_block_ms;
        }
    }

    /// Records a successful login: the pair starts afresh.
    pub fn succeeded(&mut self, account: &str, source: IpAddr) {
        self.pairs.remove(&(account.to_owned(), source_key(source)));
    }

    /// Entries held (tests, metrics).
    pub fn entries(&self) -> usize {
        self.pairs.len() + self.accounts.len() + self.sources.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_pair_waits_after_its_failures_and_the_wait_doubles() {
        let mut l = LoginLimiter::new(LoginPolicy::default());
        let a = ip("10.0.0.1");
        for i in 0..5 {
            assert_eq!(l.check(i, "op1001", a), Verdict::Allow);
            l.failed(i, "op1001", a);
        }
        let Verdict::Wait {
            retry_after_ms,
            scope,
        } = l.check(5, "op1001", a)
        else {
            panic!("not limited")
        };
        assert_eq!(scope, Scope::AccountAndSource);
        assert!(retry_after_ms > 0 && retry_after_ms <= 1_000);
        // Another source is not affected; neither is another account from the same source.
        assert_eq!(l.check(5, "op1001", ip("10.0.0.2")), Verdict::Allow);
        assert_eq!(l.check(5, "op1002", a), Verdict::Allow);
        // After the wait, one more failure doubles it.
        l.failed(2_000, "op1001", a);
        let Verdict::Wait { retry_after_ms, .. } = l.check(2_001, "op1001", a) else {
            panic!("not limited")
        };
        assert!(retry_after_ms > 1_000 && retry_after_ms <= 2_000);
        // A success clears the pair.
        l.succeeded("op1001", a);
        assert_eq!(l.check(10_000, "op1001", a), Verdict::Allow);
    }

    #[test]
    fn many_sources_on_one_account_are_spaced_not_locked_out() {
        let mut l = LoginLimiter::new(LoginPolicy::default());
        for i in 0..20u64 {
            let src = ip(&format!("10.0.1.{i}"));
            l.failed(i, "admin", src);
        }
        let v = l.check(30, "admin", ip("10.9.9.9"));
        assert_eq!(
            v,
            Verdict::Wait {
                retry_after_ms: 10_000 - 11,
                scope: Scope::Account
            }
        );
        assert_eq!(l.check(10_020, "admin", ip("10.9.9.9")), Verdict::Allow);
    }

    #[test]
    fn one_source_spraying_accounts_is_blocked() {
        let mut l = LoginLimiter::new(LoginPolicy::default());
        let a = ip("2001:db8::1");
        for i in 0..50u64 {
            l.failed(i, &format!("user{i}"), a);
        }
        // The same /64 counts as the same source.
        let v = l.check(60, "someone", ip("2001:db8::ffff"));
        assert!(matches!(
            v,
            Verdict::Wait {
                scope: Scope::Source,
                ..
            }
        ));
        assert_eq!(l.check(60 + 15 * 60_000, "someone", a), Verdict::Allow);
    }

    #[test]
    fn old_failures_leave_the_window() {
        let mut l = LoginLimiter::new(LoginPolicy::default());
        let a = ip("10.0.0.1");
        for i in 0..4 {
            l.failed(i, "op", a);
        }
        // 16 minutes later the four are forgotten: four more do not reach the limit.
        let later = 16 * 60_000;
        for i in 0..4 {
            l.failed(later + i, "op", a);
        }
        assert_eq!(l.check(later + 10, "op", a), Verdict::Allow);
    }

    #[test]
    fn maps_stay_bounded() {
        let mut l = LoginLimiter::new(LoginPolicy {
            max_entries: 100,
            ..LoginPolicy::default()
        });
        for i in 0..10_000u64 {
            l.failed(
                i,
                &format!("u{i}"),
                ip(&format!("10.{}.{}.1", i / 256, i % 256)),
            );
        }
        assert!(l.entries() <= 300, "{}", l.entries());
    }
}
