//! Repeat calls (D20): the callers of the last window, in memory, so that a call is linked to
//! the same caller's earlier calls at arrival without waiting on the database.
//!
//! The index is filled from the database at start-up (every node's calls in the window), from
//! the journal replay, and from this node's arrivals. Calls that arrive on another node while
//! this one runs are seen in the history view (a database query), but not in the link made at
//! arrival until this node restarts: the link is a hint for the operator, the monthly report
//! counts repeats from the database.

use super::record::RepeatLink;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// How many of the newest calls can be asked for their caller ([`RepeatIndex::caller_of`]):
/// the history view asks the index only for a call the database does not have yet, which is a
/// call of the last seconds (the journal's lag).
const RECENT_CALLS: usize = 65_536;

/// A call's uid in 16 bytes: the uid's text up to its last `:c` (`node:boot`, the same for
/// every call of a process) interned, and the number after it. A uid of another shape is
/// interned whole, with `n = u64::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct CallKey {
    prefix: u32,
    n: u64,
}

/// Callers of the window, each with their calls (oldest first).
///
/// Sized for a busy week at a national hotline (a million calls and more): a call costs 24
/// bytes in its caller's list (its time and [`CallKey`]); each caller's key is kept once for
/// all of their calls, and each `node:boot` once for all of its calls. An arrival costs a
/// binary search in the caller's calls, however many that caller made.
#[derive(Debug, Default)]
pub struct RepeatIndex {
    window_ms: u64,
    by_caller: HashMap<Arc<str>, VecDeque<(u64, CallKey)>>,
    /// Interned uid prefixes, and their numbers.
    prefixes: Vec<Box<str>>,
    prefix_ids: HashMap<Box<str>, u32>,
    /// The newest calls' callers and arrival times, at most [`RECENT_CALLS`], oldest first in
    /// `recent_order`.
    recent: HashMap<CallKey, (Arc<str>, u64)>,
    recent_order: VecDeque<CallKey>,
    calls: usize,
    inserts: u64,
}

impl RepeatIndex {
    /// An empty index over a window.
    pub fn new(window_ms: u64) -> RepeatIndex {
        RepeatIndex {
            window_ms,
            ..RepeatIndex::default()
        }
    }

    /// `uid` split into the prefix to intern and the number after it.
    fn split(uid: &str) -> (&str, u64) {
        if let Some(at) = uid.rfind(":c") {
            let digits = &uid[at + 2..];
            // Only a number that prints back the same ("c17", not "c017" or "c+1").
            if let Ok(n) = digits.parse::<u64>() {
                if n != u64::MAX && n.to_string() == digits {
                    return (&uid[..at], n);
                }
            }
        }
        (uid, u64::MAX)
    }

    /// The key of `uid`, if its prefix is known.
    fn key(&self, uid: &str) -> Option<CallKey> {
        let (prefix, n) = Self::split(uid);
        let prefix = *self.prefix_ids.get(prefix)?;
        Some(CallKey { prefix, n })
    }

    /// The key of `uid`, interning its prefix if it is new.
    fn intern(&mut self, uid: &str) -> Option<CallKey> {
        if let Some(key) = self.key(uid) {
            return Some(key);
        }
        let (prefix, n) = Self::split(uid);
        let id = u32::try_from(self.prefixes.len()).ok()?;
        self.prefixes.push(prefix.into());
        self.prefix_ids.insert(prefix.into(), id);
        Some(CallKey { prefix: id, n })
    }

    /// The uid a key stands for.
    fn uid(&self, key: CallKey) -> String {
        let prefix = self.prefixes.get(key.prefix as usize).map_or("", |p| &**p);
        if key.n == u64::MAX {
            prefix.to_owned()
        } else {
            format!("{prefix}:c{}", key.n)
        }
    }

    /// Records a call that arrived at `at_ms` from `caller` and returns its link to the
    /// caller's earlier calls within the window, if any. Seeing the same call again (a replay)
    /// changes nothing.
    pub fn arrive(&mut self, caller: &str, call_uid: &str, at_ms: u64) -> Option<RepeatLink> {
        let uid = self.intern(call_uid)?;
        let since = at_ms.saturating_sub(self.window_ms);
        let (caller_key, calls) = match self.by_caller.get_key_value(caller) {
            Some((key, _)) => {
                let key = key.clone();
                let calls = self.by_caller.get_mut(caller)?;
                (key, calls)
            }
            None => {
                let key: Arc<str> = Arc::from(caller);
                (key.clone(), self.by_caller.entry(key).or_default())
            }
        };
        let before = calls.len();
        while calls.front().is_some_and(|(at, _)| *at < since) {
            calls.pop_front();
        }
        self.calls -= before - calls.len();
        // The calls are in time order: those before `at_ms` are the first `lower`, those up
        // to it the first `pos`. A replay is the same uid at the same time.
        let lower = calls.partition_point(|(at, _)| *at < at_ms);
        let pos = calls.partition_point(|(at, _)| *at <= at_ms);
        if calls.range(lower..pos).any(|(_, key)| *key == uid) {
            return None;
        }
        let previous = pos
            .checked_sub(1)
            .and_then(|last| calls.get(last))
            .map(|(_, k)| *k);
        calls.insert(pos, (at_ms, uid));
        self.calls += 1;
        let link = previous.map(|previous| RepeatLink {
            previous: self.uid(previous),
            earlier_calls: u32::try_from(pos).unwrap_or(u32::MAX),
        });
        if self.recent.insert(uid, (caller_key, at_ms)).is_none() {
            self.recent_order.push_back(uid);
            if self.recent_order.len() > RECENT_CALLS {
                if let Some(old) = self.recent_order.pop_front() {
                    self.recent.remove(&old);
                }
            }
        }
        self.inserts += 1;
        if self.inserts.is_multiple_of(65_536) {
            self.prune(at_ms);
        }
        link
    }

    /// The caller and arrival time of one of the newest calls (the last [`RECENT_CALLS`]).
    pub fn caller_of(&self, call_uid: &str) -> Option<(String, u64)> {
        let key = self.key(call_uid)?;
        self.recent
            .get(&key)
            .map(|(caller, at)| (caller.to_string(), *at))
    }

    /// How many calls the index holds.
    pub fn len(&self) -> usize {
        self.calls
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.calls == 0
    }

    /// Drops every call older than the window before `now_ms`, and the callers left with none.
    pub fn prune(&mut self, now_ms: u64) {
        let since = now_ms.saturating_sub(self.window_ms);
        let mut dropped = 0;
        self.by_caller.retain(|_, calls| {
            while calls.front().is_some_and(|(at, _)| *at < since) {
                calls.pop_front();
                dropped += 1;
            }
            if calls.capacity() > 2 * calls.len() + 16 {
                calls.shrink_to_fit();
            }
            !calls.is_empty()
        });
        self.calls -= dropped;
        while let Some(old) = self.recent_order.front() {
            match self.recent.get(old) {
                Some((_, at)) if *at >= since => break,
                _ => {
                    self.recent.remove(old);
                    self.recent_order.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    #[test]
    fn links_to_the_latest_earlier_call_in_the_window() {
        let mut idx = RepeatIndex::new(7 * DAY);
        assert_eq!(idx.arrive("+998901", "a", 0), None);
        assert_eq!(idx.arrive("+998902", "x", DAY), None);
        let link = idx.arrive("+998901", "b", 2 * DAY).unwrap();
        assert_eq!(link.previous, "a");
        assert_eq!(link.earlier_calls, 1);
        let link = idx.arrive("+998901", "c", 8 * DAY).unwrap();
        assert_eq!(link.previous, "b", "a is outside the window now");
        assert_eq!(link.earlier_calls, 1);
        assert_eq!(idx.arrive("+998901", "d", 20 * DAY), None);
    }

    #[test]
    fn a_replayed_arrival_changes_nothing() {
        let mut idx = RepeatIndex::new(7 * DAY);
        idx.arrive("+1", "a", 0);
        idx.arrive("+1", "b", 10);
        assert_eq!(idx.arrive("+1", "b", 10), None);
        assert_eq!(idx.len(), 2);
        idx.prune(30 * DAY);
        assert!(idx.is_empty());
    }

    #[test]
    fn uids_of_every_shape_come_back_as_they_went_in() {
        let mut idx = RepeatIndex::new(7 * DAY);
        let uids = [
            "n1:b1:c1",
            "n1:b1:c2",
            "n1:b1:c017",
            "n1:b1:c+5",
            "n2:b9:c1",
            "plain",
            "n1:b1:c18446744073709551615",
            "n1:b1:c",
        ];
        for (i, uid) in uids.iter().enumerate() {
            let link = idx.arrive("+1", uid, i as u64);
            if i > 0 {
                assert_eq!(link.unwrap().previous, uids[i - 1]);
            }
            assert_eq!(idx.caller_of(uid), Some(("+1".to_string(), i as u64)));
        }
        assert_eq!(idx.len(), uids.len());
        assert_eq!(idx.caller_of("n1:b1:c3"), None);
        assert_eq!(idx.caller_of("n3:b1:c1"), None);
        // "n1:b1" was interned once for c1 and c2.
        assert_eq!(idx.prefixes.iter().filter(|p| &***p == "n1:b1").count(), 1);
    }

    #[test]
    fn only_the_newest_calls_are_asked_for_their_caller_and_the_window_still_links() {
        let mut idx = RepeatIndex::new(7 * DAY);
        let total = RECENT_CALLS as u64 + 10;
        for n in 0..total {
            idx.arrive(&format!("+{}", n % 7), &format!("n:b:c{n}"), n);
        }
        assert_eq!(idx.caller_of("n:b:c0"), None, "older than the newest calls");
        assert_eq!(
            idx.caller_of(&format!("n:b:c{}", total - 1)).unwrap().1,
            total - 1
        );
        assert!(idx.recent.len() <= RECENT_CALLS);
        // Linking does not depend on it: c0's caller still sees all its calls.
        let link = idx.arrive("+0", "n:b:late", total).unwrap();
        assert_eq!(link.earlier_calls as u64, total.div_ceil(7));
        assert_eq!(idx.len() as u64, total + 1);
    }

    #[test]
    fn one_caller_s_many_calls_are_counted_and_linked_in_time_order() {
        let mut idx = RepeatIndex::new(7 * DAY);
        for n in 0..10_000u64 {
            let link = idx.arrive("+1", &format!("c{n}"), n * 10);
            match n {
                0 => assert_eq!(link, None),
                _ => {
                    let link = link.unwrap();
                    assert_eq!(link.previous, format!("c{}", n - 1));
                    assert_eq!(link.earlier_calls, n as u32);
                }
            }
        }
        // A late arrival (replayed from the journal) links to the call just before it.
        let link = idx.arrive("+1", "late", 55).unwrap();
        assert_eq!(link.previous, "c5");
        assert_eq!(link.earlier_calls, 6);
        assert_eq!(idx.caller_of("late"), Some(("+1".to_string(), 55)));
        assert_eq!(idx.len(), 10_001);
    }
}
