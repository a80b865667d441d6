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

/// Callers of the window, each with their calls (oldest first).
///
/// Sized for a busy week (a million calls): each call's uid is kept once, shared by both maps,
/// and each caller's key once for all of their calls, about 150 bytes a call. An arrival costs
/// a binary search in the caller's calls, however many that caller made.
#[derive(Debug, Default)]
pub struct RepeatIndex {
    window_ms: u64,
    by_caller: HashMap<Arc<str>, VecDeque<(u64, Arc<str>)>>,
    caller_of: HashMap<Arc<str>, (Arc<str>, u64)>,
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

    /// Records a call that arrived at `at_ms` from `caller` and returns its link to the
    /// caller's earlier calls within the window, if any. Seeing the same call again (a replay)
    /// changes nothing.
    pub fn arrive(&mut self, caller: &str, call_uid: &str, at_ms: u64) -> Option<RepeatLink> {
        if self.caller_of.contains_key(call_uid) {
            return None;
        }
        let since = at_ms.saturating_sub(self.window_ms);
        let (key, calls) = match self.by_caller.get_key_value(caller) {
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
        while calls.front().is_some_and(|(at, _)| *at < since) {
            if let Some((_, uid)) = calls.pop_front() {
                self.caller_of.remove(&uid);
            }
        }
        // The calls are in time order: those up to `at_ms` are the first `pos`.
        let pos = calls.partition_point(|(at, _)| *at <= at_ms);
        let link = pos
            .checked_sub(1)
            .and_then(|last| calls.get(last))
            .map(|(_, previous)| RepeatLink {
                previous: previous.to_string(),
                earlier_calls: u32::try_from(pos).unwrap_or(u32::MAX),
            });
        let uid: Arc<str> = Arc::from(call_uid);
        calls.insert(pos, (at_ms, uid.clone()));
        self.caller_of.insert(uid, (key, at_ms));
        self.inserts += 1;
        if self.inserts.is_multiple_of(65_536) {
            self.prune(at_ms);
        }
        link
    }

    /// The caller and arrival time of a call still in the window.
    pub fn caller_of(&self, call_uid: &str) -> Option<(String, u64)> {
        self.caller_of
            .get(call_uid)
            .map(|(caller, at)| (caller.to_string(), *at))
    }

    /// How many calls the index holds.
    pub fn len(&self) -> usize {
        self.caller_of.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.caller_of.is_empty()
    }

    /// Drops every call older than the window before `now_ms`.
    pub fn prune(&mut self, now_ms: u64) {
        let since = now_ms.saturating_sub(self.window_ms);
        let caller_of = &mut self.caller_of;
        self.by_caller.retain(|_, calls| {
            while calls.front().is_some_and(|(at, _)| *at < since) {
                if let Some((_, uid)) = calls.pop_front() {
                    caller_of.remove(&uid);
                }
            }
            !calls.is_empty()
        });
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
