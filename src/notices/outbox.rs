//! The notices' outbox, pure (no clock, no I/O): which notices go out now, alone or folded
//! into a digest, and which wait for a retry. `now` in, [`Action`]s out, like the ACD core.
//!
//! * Per tenant and channel, at most `per_minute` notices go out alone in a minute (a window
//!   that starts with the first send); above that, everything pending for that tenant and
//!   channel waits for the window's end and goes out as one digest.
//! * A failed send waits 2 s, doubling to 10 min; after `max_attempts` it is given up.
//! * Each delivery (notice x channel) is in exactly one place: pending, in flight or done.

use super::{Channel, Notice};
use std::collections::{BTreeMap, HashMap};

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: u32 = 12;

/// One delivery waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    notice: Notice,
    attempts: u32,
    due_ms: i64,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these notices (one: alone; more: as one digest) to the tenant's channel.
    Send {
        /// Tenant.
        tenant: String,
        /// Channel.
        channel: Channel,
        /// The notices (oldest first).
        notices: Vec<Notice>,
    },
}

#[derive(Debug, Default)]
struct Window {
    start_ms: i64,
    sent: u32,
}

/// The outbox.
#[derive(Debug)]
pub struct Outbox {
    per_minute: u32,
    pending: BTreeMap<(String, Channel), Vec<Pending>>,
    in_flight: HashMap<(String, Channel), Vec<Pending>>,
    windows: HashMap<(String, Channel), Window>,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Delivered.
    Sent,
    /// Failed; try again later.
    Retry,
    /// Failed for good.
    GiveUp,
}

/// A delivery's fate after an attempt, for the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The notice.
    pub id: String,
    /// Attempts so far.
    pub attempts: u32,
    /// `sent`, `retrying` or `failed`.
    pub state: &'static str,
    /// When the next attempt is due (retrying).
    pub due_ms: Option<i64>,
}

const MINUTE_MS: i64 = 60_000;

impl Outbox {
    /// An outbox sending at most `per_minute` notices alone per tenant, channel and minute.
    pub fn new(per_minute: u32) -> Outbox {
        Outbox {
            per_minute: per_minute.max(1),
            pending: BTreeMap::new(),
            in_flight: HashMap::new(),
            windows: HashMap::new(),
        }
    }

    /// Adds a delivery due at `due_ms` (now, or later for one recovered mid-retry), with the
    /// attempts already made.
    pub fn add(&mut self, notice: Notice, channel: Channel, attempts: u32, due_ms: i64) {
        let key = (notice.tenant.clone(), channel);
        let queue = self.pending.entry(key).or_default();
        if queue.iter().any(|p| p.notice.id == notice.id) {
            return;
        }
        queue.push(Pending {
            notice,
            attempts,
            due_ms,
        });
    }

    /// Deliveries waiting or in flight.
    pub fn len(&self) -> usize {
        self.pending.values().map(Vec::len).sum::<usize>()
            + self.in_flight.values().map(Vec::len).sum::<usize>()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What to send at `now_ms`. The notices of an action are in flight until [`Outbox::done`].
    pub fn poll(&mut self, now_ms: i64) -> Vec<Action> {
        let mut actions = Vec::new();
        let keys: Vec<(String, Channel)> = self.pending.keys().cloned().collect();
        for key in keys {
            if self.in_flight.contains_key(&key) {
                continue; // one send per tenant and channel at a time, in order
            }
            let Some(queue) = self.pending.get_mut(&key) else {
                continue;
            };
            let due: Vec<usize> = (0..queue.len())
                .filter(|&i| queue[i].due_ms <= now_ms)
                .collect();
            if due.is_empty() {
                continue;
            }
            let window = self.windows.entry(key.clone()).or_default();
            let take: Vec<usize> = if now_ms - window.start_ms >= MINUTE_MS {
                // A new minute. If the last one was full, what piled up goes as one digest.
                let full = window.sent >= self.per_minute;
                window.start_ms = now_ms;
                window.sent = 0;
                if full && due.len() > 1 {
                    due
                } else {
                    vec![due[0]]
                }
            } else if window.sent < self.per_minute {
                vec![due[0]]
            } else {
                continue; // over the rate: wait for the minute's end, then one digest
            };
            let mut taken = Vec::new();
            for i in take.into_iter().rev() {
                taken.push(queue.remove(i));
            }
            taken.reverse();
            if queue.is_empty() {
                self.pending.remove(&key);
            }
            window.sent += 1;
            actions.push(Action::Send {
                tenant: key.0.clone(),
                channel: key.1,
                notices: taken.iter().map(|p| p.notice.clone()).collect(),
            });
            self.in_flight.insert(key, taken);
        }
        actions
    }

    /// The attempt for `tenant`'s `channel` ended; returns each delivery's new state.
    pub fn done(
        &mut self,
        tenant: &str,
        channel: Channel,
        result: Attempt,
        now_ms: i64,
    ) -> Vec<Outcome> {
        let key = (tenant.to_owned(), channel);
        let Some(batch) = self.in_flight.remove(&key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for mut p in batch {
            p.attempts += 1;
            match result {
                Attempt::Sent => out.push(Outcome {
                    id: p.notice.id.clone(),
                    attempts: p.attempts,
                    state: "sent",
                    due_ms: None,
                }),
                Attempt::Retry if p.attempts < MAX_ATTEMPTS => {
                    let pause = (2_000i64 << (p.attempts - 1).min(9)).min(600_000);
                    p.due_ms = now_ms + pause;
                    out.push(Outcome {
                        id: p.notice.id.clone(),
                        attempts: p.attempts,
                        state: "retrying",
                        due_ms: Some(p.due_ms),
                    });
                    self.pending.entry(key.clone()).or_default().push(p);
                }
                _ => out.push(Outcome {
                    id: p.notice.id.clone(),
                    attempts: p.attempts,
                    state: "failed",
                    due_ms: None,
                }),
            }
        }
        out
    }

    /// When [`Outbox::poll`] next has something to do after `now_ms` (`None`: only a new
    /// notice or a finished attempt changes anything).
    pub fn next_due(&self, now_ms: i64) -> Option<i64> {
        self.pending
            .iter()
            .filter(|(key, _)| !self.in_flight.contains_key(*key))
            .filter_map(|(key, queue)| {
                let earliest = queue.iter().map(|p| p.due_ms).min()?;
                let window = self.windows.get(key);
                let open = match window {
                    Some(w) if w.sent >= self.per_minute && now_ms - w.start_ms < MINUTE_MS => {
                        w.start_ms + MINUTE_MS
                    }
                    _ => i64::MIN,
                };
                Some(earliest.max(open))
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notices::{NoticeKind, Target};

    fn notice(i: usize) -> Notice {
        Notice {
            id: format!("n{i}"),
            tenant: "dtm".into(),
            kinds: vec![NoticeKind::Unresolved],
            target: Target::Call(format!("node:boot:c{i}")),
            created_at_ms: 0,
            text_uz: format!("uz {i}"),
            text_ru: format!("ru {i}"),
            link: String::new(),
        }
    }

    fn sizes(actions: &[Action]) -> Vec<usize> {
        actions
            .iter()
            .map(|Action::Send { notices, .. }| notices.len())
            .collect()
    }

    #[test]
    fn a_burst_goes_out_as_singles_up_to_the_rate_then_one_digest() {
        let mut o = Outbox::new(3);
        for i in 0..500 {
            o.add(notice(i), Channel::Email, 0, 0);
        }
        let mut sent = Vec::new();
        let mut now = 0;
        // Singles, one at a time (each send is in flight until done).
        while now < 59_000 {
            let actions = o.poll(now);
            for a in &actions {
                let Action::Send { notices, .. } = a;
                sent.push(notices.len());
                o.done("dtm", Channel::Email, Attempt::Sent, now);
            }
            now += 1_000;
        }
        assert_eq!(sent, vec![1, 1, 1], "three alone in the first minute");
        assert_eq!(o.next_due(now), Some(60_000));
        // Woken late (a busy machine): still one digest, not singles again.
        let digest = o.poll(60_250);
        assert_eq!(
            sizes(&digest),
            vec![497],
            "the rest in one digest at the minute's end"
        );
        o.done("dtm", Channel::Email, Attempt::Sent, 60_250);
        assert!(o.is_empty());
        // A quiet minute later, a notice goes alone again.
        o.add(notice(900), Channel::Email, 0, 200_000);
        assert_eq!(sizes(&o.poll(200_000)), vec![1]);
    }

    #[test]
    fn channels_and_tenants_have_their_own_windows() {
        let mut o = Outbox::new(1);
        o.add(notice(1), Channel::Email, 0, 0);
        o.add(notice(1), Channel::Telegram, 0, 0);
        o.add(notice(1), Channel::Telegram, 0, 0); // the same delivery twice: once
        assert_eq!(sizes(&o.poll(0)), vec![1, 1]);
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn failures_back_off_then_give_up() {
        let mut o = Outbox::new(10);
        o.add(notice(1), Channel::Email, 0, 0);
        let mut now = 0;
        let mut states = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let actions = o.poll(now);
            assert_eq!(sizes(&actions), vec![1], "at {now}");
            let out = o.done("dtm", Channel::Email, Attempt::Retry, now);
            states.push(out[0].state);
            if let Some(due) = out[0].due_ms {
                assert!(o.poll(due - 1).is_empty(), "not before it is due");
                now = due;
            }
        }
        assert_eq!(states.last(), Some(&"failed"));
        assert_eq!(
            states.iter().filter(|s| **s == "retrying").count(),
            MAX_ATTEMPTS as usize - 1
        );
        assert!(o.is_empty());
    }

    #[test]
    fn a_recovered_delivery_keeps_its_attempts_and_due_time() {
        let mut o = Outbox::new(10);
        o.add(notice(1), Channel::Email, 3, 5_000);
        assert!(o.poll(4_999).is_empty());
        assert_eq!(o.next_due(0), Some(5_000));
        assert_eq!(sizes(&o.poll(5_000)), vec![1]);
        let out = o.done("dtm", Channel::Email, Attempt::Sent, 5_000);
        assert_eq!(out[0].attempts, 4);
        assert_eq!(out[0].state, "sent");
    }
}
