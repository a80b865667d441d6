//! Admission at the SIP door: how many new INVITEs one source may send, and how many calls it
//! may hold, before the stack spends a transaction on it.
//!
//! Pure: time comes in as milliseconds; no clock, socket or lock. The UDP guard
//! ([`super::guard`]) asks [`Door::screen_invite`] for every new INVITE (no To tag) before the
//! stack sees it, and answers a refusal itself with a stateless `503` + `Retry-After`, or drops
//! it when the source has used its answer budget; the SIP layer asks
//! [`Door::start_call`] again when the call is about to be taken (the exact count: several
//! INVITEs can be between the socket and the stack at once) and tells [`Door::end_call`] when
//! the call's dialog ends.
//!
//! * **Rate** per source: a token bucket of `invites_per_sec` refilled continuously, holding at
//!   most `burst`. Every new INVITE takes a token, refused or not, so a flooder cannot keep its
//!   bucket full by being refused.
//! * **Calls in progress** per source: at most `calls` (0: no cap of the door's own; the
//!   global and tenant channel limits still hold).
//! * **Answer budget** per source: at most `answers_per_sec` stateless refusals a second;
//!   past it a refused INVITE is dropped and counted, so a flood does not turn navbat into a
//!   reflector at the flood's own rate.
//! * **Queue**: when `queue` datagrams already wait between the socket and the stack, new
//!   INVITEs are refused (they are the cheapest thing to lose: the caller's phone retries) and
//!   at twice that everything else is shed too.
//!
//! A source is an IPv4 address, or an IPv6 address's /64. Sources in the trunk networks
//! (every tenant's `trunk_sources` and `[sip.door] trunk_sources`) have their own, higher
//! caps; while no trunk network is named at all every source is treated as a possible trunk,
//! so a deployment that has not said where its trunk is never has its trunk cut.
//!
//! A retransmission of an INVITE the door admitted (the same Call-ID and top Via branch,
//! `key`) is passed on without a token: the stack answers it from its transaction, and a
//! stateless 503 to it would contradict the call in progress. These keys are kept for
//! [`RETRANSMISSION_MS`], at most `max_sources` of them (the oldest go first).
//!
//! The table of sources is bounded (`max_sources`): idle entries (no call in progress, full
//! buckets) are swept when it is full, at most once a second; sources that still find no room
//! share one overflow entry per class, so a spray of forged addresses costs bounded memory and
//! gets no more than one source's allowance.

use crate::config::Network;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// How long an admitted INVITE's retransmissions are recognised: 64*T1, the longest an
/// INVITE server transaction lives over UDP (RFC 3261 §17.2.1).
pub const RETRANSMISSION_MS: u64 = 32_000;

/// The limits for one class of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// New INVITEs a second, sustained.
    pub invites_per_sec: u32,
    /// New INVITEs at once after a quiet spell.
    pub burst: u32,
    /// Calls in progress at once; 0: no cap of the door's own.
    pub calls: u32,
}

/// The door's limits (`[sip.door]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorPolicy {
    /// Sources outside the trunk networks.
    pub source: Caps,
    /// Sources inside them.
    pub trunk: Caps,
    /// Stateless refusals per source a second; beyond them refused INVITEs are dropped.
    pub answers_per_sec: u32,
    /// Datagrams waiting for the stack above which new INVITEs are refused.
    pub queue: usize,
    /// Sources tracked at most.
    pub max_sources: usize,
    /// The `Retry-After` of a refusal, seconds.
    pub retry_after_secs: u32,
}

impl Default for DoorPolicy {
    fn default() -> DoorPolicy {
        DoorPolicy {
            source: Caps {
                invites_per_sec: 20,
                burst: 40,
                calls: 30,
            },
            trunk: Caps {
                invites_per_sec: 2_000,
                burst: 4_000,
                calls: 0,
            },
            answers_per_sec: 100,
            queue: 4_096,
            max_sources: 65_536,
            retry_after_secs: 5,
        }
    }
}

/// Why the door refused an INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source sent new INVITEs faster than its rate.
    Rate,
    /// The source holds as many calls as it may.
    Calls,
    /// The queue to the stack is full.
    Queue,
}

impl Refusal {
    /// The metric label and `Warning` text.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Rate => "rate",
            Refusal::Calls => "calls",
            Refusal::Queue => "queue",
        }
    }
}

/// The door's verdict on a new INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it to the stack.
    Admit,
    /// Answer it with a stateless 503 (within the source's answer budget).
    Answer(Refusal),
    /// Drop it unanswered (the source's answer budget is spent).
    Drop(Refusal),
}

/// Whether a source is a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Source,
    Trunk,
}

/// A token bucket in thousandths of a token, refilled continuously from `at_ms`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli: u64,
    at_ms: u64,
}

impl Bucket {
    fn full(now_ms: u64, burst: u32) -> Bucket {
        Bucket {
            milli: u64::from(burst) * 1000,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64, per_sec: u32, burst: u32) {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        // per_sec tokens a second = per_sec thousandths a millisecond.
        self.milli =
            (self.milli + elapsed.saturating_mul(u64::from(per_sec))).min(u64::from(burst) * 1000);
        self.at_ms = self.at_ms.max(now_ms);
    }

    fn take(&mut self, now_ms: u64, per_sec: u32, burst: u32) -> bool {
        self.refill(now_ms, per_sec, burst);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }

    fn is_full(mut self, now_ms: u64, per_sec: u32, burst: u32) -> bool {
        self.refill(now_ms, per_sec, burst);
        self.milli >= u64::from(burst) * 1000
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    invites: Bucket,
    answers: Bucket,
    calls: u32,
}

impl Entry {
    fn new(now_ms: u64, caps: Caps, answers_per_sec: u32) -> Entry {
        Entry {
            invites: Bucket::full(now_ms, caps.burst),
            answers: Bucket::full(now_ms, answers_per_sec),
            calls: 0,
        }
    }
}

/// Where an entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Own(IpAddr),
    Overflow(Class),
}

/// The door's state: one entry per source seen recently.
#[derive(Debug)]
pub struct Door {
    policy: DoorPolicy,
    trunks: Vec<Network>,
    entries: HashMap<Slot, Entry>,
    next_sweep_ms: u64,
    /// Admitted INVITEs by key, with when they were admitted; `admitted_order` in that order.
    admitted: HashMap<u64, u64>,
    admitted_order: VecDeque<(u64, u64)>,
    /// Admitted INVITEs refused after all ([`Door::spend_answer`]), by key, with when they
    /// were admitted (they expire with their entry in `admitted_order`).
    refused: HashMap<u64, u64>,
}

impl Door {
    /// A door with `policy`; `trunks` are the networks whose sources get the trunk caps
    /// (empty: every source may be the trunk).
    pub fn new(policy: DoorPolicy, trunks: Vec<Network>) -> Door {
        Door {
            policy,
            trunks,
            entries: HashMap::new(),
            next_sweep_ms: 0,
            admitted: HashMap::new(),
            admitted_order: VecDeque::new(),
            refused: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn policy(&self) -> DoorPolicy {
        self.policy
    }

    /// Sources tracked now (for tests and the memory bound).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    fn class(&self, ip: IpAddr) -> Class {
        if self.trunks.is_empty() || self.trunks.iter().any(|n| n.contains(ip)) {
            Class::Trunk
        } else {
            Class::Source
        }
    }

    fn caps(&self, class: Class) -> Caps {
        match class {
            Class::Source => self.policy.source,
            Class::Trunk => self.policy.trunk,
        }
    }

    /// The slot of `ip`, made when new (or the overflow slot of its class when the table is
    /// full and a sweep cannot make room).
    fn slot(&mut self, now_ms: u64, ip: IpAddr) -> (Slot, Class) {
        let class = self.class(ip);
        let own = Slot::Own(super::auth::group(ip));
        if self.entries.contains_key(&own) {
            return (own, class);
        }
        if self.entries.len() >= self.policy.max_sources {
            self.sweep(now_ms);
        }
        let slot = if self.entries.len() < self.policy.max_sources {
            own
        } else {
            Slot::Overflow(class)
        };
        let (caps, answers) = (self.caps(class), self.policy.answers_per_sec);
        self.entries
            .entry(slot)
            .or_insert_with(|| Entry::new(now_ms, caps, answers));
        (slot, class)
    }

    /// Forgets idle sources (no call, both buckets full), at most once a second, so a table
    /// full of busy sources is not scanned on every datagram.
    fn sweep(&mut self, now_ms: u64) {
        if now_ms < self.next_sweep_ms {
            return;
        }
        self.next_sweep_ms = now_ms + 1000;
        let policy = self.policy;
        let trunks = std::mem::take(&mut self.trunks);
        self.entries.retain(|slot, e| {
            let caps = match slot {
                Slot::Overflow(_) => return true,
                Slot::Own(ip) => {
                    if trunks.is_empty() || trunks.iter().any(|n| n.contains(*ip)) {
                        policy.trunk
                    } else {
                        policy.source
                    }
                }
            };
            e.calls > 0
                || !e.invites.is_full(now_ms, caps.invites_per_sec, caps.burst)
                || !e
                    .answers
                    .is_full(now_ms, policy.answers_per_sec, policy.answers_per_sec)
        });
        self.trunks = trunks;
    }

    /// The verdict on a new INVITE from `ip` at `now_ms`, with `queued` datagrams waiting for
    /// the stack; `key` identifies the INVITE (Call-ID and top Via branch) so that its
    /// retransmissions are recognised. Takes a rate token whatever the verdict, except for a
    /// retransmission of an admitted INVITE; does not count a call (that is
    /// [`Door::start_call`]).
    pub fn screen_invite(&mut self, now_ms: u64, ip: IpAddr, queued: usize, key: u64) -> Verdict {
        self.forget_admitted(now_ms);
        if self.admitted.contains_key(&key) {
            return Verdict::Admit;
        }
        let verdict = self.judge_invite(now_ms, ip, queued);
        if verdict == Verdict::Admit {
            if self.admitted_order.len() >= self.policy.max_sources {
                if let Some((old, at)) = self.admitted_order.pop_front() {
                    if self.admitted.get(&old) == Some(&at) {
                        self.admitted.remove(&old);
                    }
                    if self.refused.get(&old) == Some(&at) {
                        self.refused.remove(&old);
                    }
                }
            }
            self.admitted.insert(key, now_ms);
            self.admitted_order.push_back((key, now_ms));
        }
        verdict
    }

    fn forget_admitted(&mut self, now_ms: u64) {
        while let Some(&(key, at)) = self.admitted_order.front() {
            if now_ms < at + RETRANSMISSION_MS {
                break;
            }
            self.admitted_order.pop_front();
            if self.admitted.get(&key) == Some(&at) {
                self.admitted.remove(&key);
            }
            if self.refused.get(&key) == Some(&at) {
                self.refused.remove(&key);
            }
        }
    }

    fn judge_invite(&mut self, now_ms: u64, ip: IpAddr, queued: usize) -> Verdict {
        let (slot, class) = self.slot(now_ms, ip);
        let caps = self.caps(class);
        let answers_per_sec = self.policy.answers_per_sec;
        let queue = self.policy.queue;
        let Some(entry) = self.entries.get_mut(&slot) else {
            return Verdict::Drop(Refusal::Queue); // unreachable: slot() made it
        };
        let within_rate = entry.invites.take(now_ms, caps.invites_per_sec, caps.burst);
        let refusal = if queued >= queue {
            Refusal::Queue
        } else if !within_rate {
            Refusal::Rate
        } else if caps.calls > 0 && entry.calls >= caps.calls {
            Refusal::Calls
        } else {
            return Verdict::Admit;
        };
        if entry.answers.take(now_ms, answers_per_sec, answers_per_sec) {
            Verdict::Answer(refusal)
        } else {
            Verdict::Drop(refusal)
        }
    }

    /// Whether the INVITE `key` was admitted and passed on within [`RETRANSMISSION_MS`]: this
    /// one is its retransmission, for the transaction it has.
    pub fn passed_before(&self, key: u64) -> bool {
        self.admitted.contains_key(&key)
    }

    /// Whether the INVITE `key` was admitted by the door and then refused
    /// ([`Door::spend_answer`]) within [`RETRANSMISSION_MS`]: this one is its retransmission.
    pub fn refused_before(&self, key: u64) -> bool {
        self.refused.contains_key(&key)
    }

    /// Takes one of `ip`'s stateless answers for a refusal decided after the door admitted
    /// the INVITE (an unknown number, a foreign trunk, full channels); `false` when the
    /// source's answer budget is spent (drop the INVITE, counted). The INVITE's key is
    /// noted as refused ([`Door::refused_before`]), so its retransmissions are judged again
    /// rather than passed on, and not counted twice.
    pub fn spend_answer(&mut self, now_ms: u64, ip: IpAddr, key: u64) -> bool {
        if let Some(at) = self.admitted.remove(&key) {
            // Same expiry as it had: its entry in `admitted_order` forgets it.
            self.refused.insert(key, at);
        }
        let answers_per_sec = self.policy.answers_per_sec;
        let (slot, _) = self.slot(now_ms, ip);
        self.entries
            .get_mut(&slot)
            .is_some_and(|e| e.answers.take(now_ms, answers_per_sec, answers_per_sec))
    }

    /// Whether a datagram other than a new INVITE may go on to the stack with `queued`
    /// waiting: in-dialog requests and responses finish calls already taken, so they are shed
    /// only at twice the queue.
    pub fn admits_other(&self, queued: usize) -> bool {
        admits_other(self.policy.queue, queued)
    }

    /// Counts a call from `ip` about to be taken, or refuses it when the source holds its
    /// cap already. Every `Ok` must be matched by one [`Door::end_call`].
    pub fn start_call(&mut self, now_ms: u64, ip: IpAddr) -> Result<(), Refusal> {
        let (slot, class) = self.slot(now_ms, ip);
        let cap = self.caps(class).calls;
        let Some(entry) = self.entries.get_mut(&slot) else {
            return Err(Refusal::Calls);
        };
        if cap > 0 && entry.calls >= cap {
            return Err(Refusal::Calls);
        }
        entry.calls += 1;
        Ok(())
    }

    /// A call counted by [`Door::start_call`] for `ip` ended.
    pub fn end_call(&mut self, ip: IpAddr) {
        let class = self.class(ip);
        let own = Slot::Own(super::auth::group(ip));
        let slot = if self.entries.contains_key(&own) {
            own
        } else {
            Slot::Overflow(class)
        };
        if let Some(entry) = self.entries.get_mut(&slot) {
            entry.calls = entry.calls.saturating_sub(1);
        }
    }

    /// Calls in progress counted for `ip`'s source.
    pub fn calls_of(&self, ip: IpAddr) -> u32 {
        self.entries
            .get(&Slot::Own(super::auth::group(ip)))
            .map_or(0, |e| e.calls)
    }
}

/// [`Door::admits_other`] for a queue bound of `queue`, for drivers that keep the bound
/// outside the door's lock.
pub fn admits_other(queue: usize, queued: usize) -> bool {
    queued < queue.saturating_mul(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy() -> DoorPolicy {
        DoorPolicy {
            source: Caps {
                invites_per_sec: 10,
                burst: 5,
                calls: 3,
            },
            trunk: Caps {
                invites_per_sec: 100,
                burst: 50,
                calls: 0,
            },
            answers_per_sec: 4,
            queue: 100,
            max_sources: 8,
            retry_after_secs: 5,
        }
    }

    fn door() -> Door {
        Door::new(policy(), vec![Network::parse("10.0.0.0/8").unwrap()])
    }

    impl Door {
        /// A new INVITE with a key of its own.
        fn si(&mut self, now_ms: u64, ip: IpAddr, queued: usize) -> Verdict {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(1);
            self.screen_invite(now_ms, ip, queued, NEXT.fetch_add(1, Ordering::Relaxed))
        }
    }

    #[test]
    fn a_retransmission_of_an_admitted_invite_passes_without_a_token() {
        let mut d = door();
        let a = ip("192.0.2.1");
        for key in 1..=5 {
            assert_eq!(d.screen_invite(0, a, 0, key), Verdict::Admit);
        }
        // The bucket is empty, yet a retransmission of the first goes on to its transaction.
        assert_eq!(d.screen_invite(50, a, 0, 1), Verdict::Admit);
        assert_eq!(
            d.screen_invite(50, a, 0, 99),
            Verdict::Answer(Refusal::Rate)
        );
        // Even when the source's calls are at their cap (the call is its own).
        for _ in 0..3 {
            d.start_call(400, a).unwrap();
        }
        assert_eq!(d.screen_invite(500, a, 0, 2), Verdict::Admit);
        // After 64*T1 it is a new INVITE again.
        assert_eq!(
            d.screen_invite(RETRANSMISSION_MS + 1, a, 0, 1),
            Verdict::Answer(Refusal::Calls)
        );
    }

    #[test]
    fn an_invite_refused_after_admission_is_known_as_such_and_spends_an_answer() {
        let mut d = door();
        let a = ip("192.0.2.1");
        assert_eq!(d.screen_invite(0, a, 0, 7), Verdict::Admit);
        assert!(d.passed_before(7) && !d.refused_before(7));
        // The router refused it: one of the source's 4 answers a second.
        assert!(d.spend_answer(0, a, 7));
        assert!(!d.passed_before(7) && d.refused_before(7));
        // Its retransmission is judged again (a token), not passed on to a transaction.
        assert_eq!(d.screen_invite(10, a, 0, 7), Verdict::Admit);
        for _ in 0..3 {
            assert!(d.spend_answer(10, a, 7));
        }
        assert!(!d.spend_answer(10, a, 7), "the answer budget is spent");
        // Forgotten with its admission after 64*T1.
        d.screen_invite(RETRANSMISSION_MS + 20, a, 0, 8);
        assert!(!d.refused_before(7));
    }

    #[test]
    fn remembered_invites_are_bounded() {
        let mut d = Door::new(policy(), Vec::new());
        for key in 0..100 {
            d.screen_invite(0, ip("192.0.2.1"), 0, key);
        }
        assert!(d.admitted.len() <= 8 && d.admitted_order.len() <= 8);
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let mut d = door();
        let a = ip("192.0.2.1");
        for _ in 0..5 {
            assert_eq!(d.si(0, a, 0), Verdict::Admit);
        }
        assert_eq!(d.si(0, a, 0), Verdict::Answer(Refusal::Rate));
        // 10 a second: one token every 100 ms.
        assert_eq!(d.si(99, a, 0), Verdict::Answer(Refusal::Rate));
        assert_eq!(d.si(200, a, 0), Verdict::Admit);
    }

    #[test]
    fn one_source_flooding_leaves_another_alone() {
        let mut d = door();
        let (flooder, other) = (ip("192.0.2.1"), ip("198.51.100.7"));
        for t in 0..1000 {
            d.si(t, flooder, 0);
        }
        assert_eq!(d.si(1000, other, 0), Verdict::Admit);
        assert_eq!(d.start_call(1000, other), Ok(()));
    }

    #[test]
    fn refusals_past_the_answer_budget_are_dropped() {
        let mut d = door();
        let a = ip("192.0.2.1");
        let verdicts: Vec<Verdict> = (0..20).map(|_| d.si(0, a, 0)).collect();
        let answered = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Answer(_)))
            .count();
        let dropped = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Drop(_)))
            .count();
        assert_eq!((answered, dropped), (4, 11));
        // The budget refills: a second later a refusal is answered again.
        for _ in 0..5 {
            assert_eq!(d.si(1000, a, 0), Verdict::Admit);
        }
        assert_eq!(d.si(1000, a, 0), Verdict::Answer(Refusal::Rate));
    }

    #[test]
    fn calls_in_progress_are_capped_per_source_and_released() {
        let mut d = door();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(d.si(0, a, 0), Verdict::Admit);
            assert_eq!(d.start_call(0, a), Ok(()));
        }
        assert_eq!(d.si(0, a, 0), Verdict::Answer(Refusal::Calls));
        assert_eq!(d.start_call(0, a), Err(Refusal::Calls));
        d.end_call(a);
        assert_eq!(d.calls_of(a), 2);
        assert_eq!(d.si(1000, a, 0), Verdict::Admit);
        assert_eq!(d.start_call(1000, a), Ok(()));
    }

    #[test]
    fn a_trunk_has_its_own_caps() {
        let mut d = door();
        let trunk = ip("10.1.2.3");
        for _ in 0..50 {
            assert_eq!(d.si(0, trunk, 0), Verdict::Admit);
            assert_eq!(d.start_call(0, trunk), Ok(()));
        }
        assert_eq!(d.calls_of(trunk), 50);
    }

    #[test]
    fn without_named_trunks_every_source_gets_the_trunk_caps() {
        let mut d = Door::new(policy(), Vec::new());
        let a = ip("192.0.2.1");
        for _ in 0..50 {
            assert_eq!(d.si(0, a, 0), Verdict::Admit);
            assert_eq!(d.start_call(0, a), Ok(()));
        }
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let mut d = door();
        for host in 1..=5 {
            let a = ip(&format!("2001:db8:1:2::{host}"));
            assert_eq!(d.si(0, a, 0), Verdict::Admit);
        }
        assert_eq!(
            d.si(0, ip("2001:db8:1:2:ffff::1"), 0),
            Verdict::Answer(Refusal::Rate)
        );
        assert_eq!(d.si(0, ip("2001:db8:1:3::1"), 0), Verdict::Admit);
    }

    #[test]
    fn a_full_queue_refuses_invites_first_and_sheds_the_rest_at_twice() {
        let mut d = door();
        let a = ip("192.0.2.1");
        assert_eq!(d.si(0, a, 100), Verdict::Answer(Refusal::Queue));
        assert!(d.admits_other(199));
        assert!(!d.admits_other(200));
    }

    #[test]
    fn the_table_is_bounded_and_busy_sources_keep_their_counts() {
        let mut d = door();
        let busy = ip("192.0.2.1");
        assert_eq!(d.start_call(0, busy), Ok(()));
        // A spray of 1,000 addresses, each sending once.
        for n in 0..1000u32 {
            let spoofed = IpAddr::from(std::net::Ipv4Addr::from(0xC633_0000 + n));
            d.si(u64::from(n), spoofed, 0);
            assert!(d.tracked() <= 8 + 2, "{}", d.tracked());
        }
        assert_eq!(d.calls_of(busy), 1);
        // Sources without room share one allowance: the spray is refused long before 1,000.
        let spoofed = IpAddr::from(std::net::Ipv4Addr::from(0xC633_1000));
        assert!(matches!(
            d.si(1000, spoofed, 0),
            Verdict::Answer(Refusal::Rate) | Verdict::Drop(Refusal::Rate)
        ));
    }

    #[test]
    fn idle_sources_are_forgotten_when_room_is_needed() {
        let mut d = door();
        for n in 0..8u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0xC000_0200 + n));
            d.si(0, a, 0);
        }
        assert_eq!(d.tracked(), 8);
        // A second later every bucket is full again: the next newcomer finds room of its own.
        let newcomer = ip("203.0.113.9");
        d.si(2000, newcomer, 0);
        assert_eq!(d.tracked(), 1);
    }

    #[test]
    fn end_call_never_underflows() {
        let mut d = door();
        let a = ip("192.0.2.1");
        d.end_call(a);
        d.si(0, a, 0);
        d.end_call(a);
        assert_eq!(d.calls_of(a), 0);
    }
}
