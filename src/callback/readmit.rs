//! Readmission of callbacks that found no free trunk channel.
//!
//! A callback's dial-out goes out through the trunk, so it holds a channel like an inbound
//! call (D6). The driver takes the channel before it rings the operator, so an operator never
//! answers a callback that then cannot be dialled. With none free the callback leaves the
//! routing core (its operator stays free for the live callers, who already hold channels) and
//! is parked here; that is not an attempt. Every [`NO_CHANNEL_RETRY_MS`] as many parked
//! callbacks as there are free channels (globally and for their tenant) go back to the core at
//! their original places, oldest arrival first. While every channel is busy none come back,
//! so a full trunk does not make the core cycle through the pending callbacks; while the
//! router drains for shutdown none come back either (they stay pending in the store).
//!
//! The router (`actors::acd_host`) and the simulator (`loadgen sim`) both drive this one
//! [`Readmission`]: `park` when an offer finds no channel, `poll_timeout` for the next check,
//! `handle_timeout` with the channels free at that moment. Generic over the key the driver
//! names a callback by (a request id in the router, an index in the simulator).

use crate::acd::Millis;

/// How often parked callbacks are offered the free channels (milliseconds).
pub const NO_CHANNEL_RETRY_MS: u64 = 1000;

/// The trunk channels free at one moment, as the driver's channel gate counts them.
pub trait FreeChannels {
    /// Channels free under the global limit.
    fn global_free(&self) -> u32;
    /// Channels free under the limit of tenant `tenant` (the driver's tenant index).
    fn tenant_free(&self, tenant: usize) -> u32;
    /// Whether the driver is draining for shutdown: nothing is readmitted.
    fn draining(&self) -> bool {
        false
    }
}

/// A callback out of the core for want of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parked<K> {
    key: K,
    tenant: usize,
    arrived_ms: i64,
}

/// Callbacks parked for want of a channel, and when they are next looked at.
#[derive(Debug, Clone)]
pub struct Readmission<K> {
    parked: Vec<Parked<K>>,
    due: Option<Millis>,
}

impl<K> Default for Readmission<K> {
    fn default() -> Self {
        Readmission {
            parked: Vec::new(),
            due: None,
        }
    }
}

impl<K: Clone + Ord> Readmission<K> {
    /// Nothing parked.
    pub fn new() -> Readmission<K> {
        Readmission::default()
    }

    /// The callback `key` of tenant `tenant`, whose caller originally arrived at `arrived_ms`
    /// (its place in the queue), found no channel at `now`. Returns `true` when this parking
    /// scheduled the next check (none was due), so a driver with an event queue knows to
    /// schedule it at [`Readmission::poll_timeout`].
    pub fn park(&mut self, now: Millis, key: K, tenant: usize, arrived_ms: i64) -> bool {
        if !self.parked.iter().any(|p| p.key == key) {
            self.parked.push(Parked {
                key,
                tenant,
                arrived_ms,
            });
        }
        if self.due.is_none() {
            self.due = Some(now.plus(NO_CHANNEL_RETRY_MS));
            return true;
        }
        false
    }

    /// When the parked callbacks are next looked at; `None` when none is parked.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.due
    }

    /// The check at `now` (at or after [`Readmission::poll_timeout`]): the parked callbacks
    /// that `channels` has room for, oldest arrival first, to go back into the core now.
    /// Those `keep` refuses (finished meanwhile) are forgotten. The rest stay parked, and the
    /// next check is due [`NO_CHANNEL_RETRY_MS`] later; while draining nothing comes back and
    /// no check is scheduled.
    pub fn handle_timeout(
        &mut self,
        now: Millis,
        channels: &impl FreeChannels,
        keep: impl Fn(&K) -> bool,
    ) -> Vec<K> {
        if self.due.is_none_or(|due| due > now) {
            return Vec::new();
        }
        self.due = None;
        if channels.draining() {
            return Vec::new();
        }
        let mut waiting = std::mem::take(&mut self.parked);
        waiting.retain(|p| keep(&p.key));
        waiting.sort_by(|a, b| (a.arrived_ms, &a.key).cmp(&(b.arrived_ms, &b.key)));
        let mut global_free = channels.global_free();
        let mut tenant_free: Vec<(usize, u32)> = Vec::new();
        let mut back = Vec::new();
        for p in waiting {
            let free = match tenant_free.iter().position(|(t, _)| *t == p.tenant) {
                Some(i) => &mut tenant_free[i].1,
                None => {
                    tenant_free.push((p.tenant, channels.tenant_free(p.tenant)));
                    &mut tenant_free.last_mut().expect("just pushed").1
                }
            };
            if global_free > 0 && *free > 0 {
                global_free -= 1;
                *free -= 1;
                back.push(p.key);
            } else {
                self.parked.push(p);
            }
        }
        if !self.parked.is_empty() {
            self.due = Some(now.plus(NO_CHANNEL_RETRY_MS));
        }
        back
    }

    /// Forgets a parked callback (finished or withdrawn elsewhere).
    pub fn remove(&mut self, key: &K) {
        self.parked.retain(|p| &p.key != key);
        if self.parked.is_empty() {
            self.due = None;
        }
    }

    /// Callbacks parked.
    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// Whether none is parked.
    pub fn is_empty(&self) -> bool {
        self.parked.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Free {
        global: u32,
        tenants: Vec<u32>,
        draining: bool,
    }

    impl FreeChannels for Free {
        fn global_free(&self) -> u32 {
            self.global
        }
        fn tenant_free(&self, tenant: usize) -> u32 {
            self.tenants.get(tenant).copied().unwrap_or(0)
        }
        fn draining(&self) -> bool {
            self.draining
        }
    }

    fn free(global: u32, tenants: &[u32]) -> Free {
        Free {
            global,
            tenants: tenants.to_vec(),
            draining: false,
        }
    }

    #[test]
    fn free_channels_take_back_the_oldest_first_per_tenant() {
        let mut r: Readmission<&str> = Readmission::new();
        assert!(r.park(Millis(100), "late", 0, 3_000));
        assert!(!r.park(Millis(200), "early", 0, 1_000));
        assert!(!r.park(Millis(300), "other", 1, 2_000));
        assert_eq!(r.poll_timeout(), Some(Millis(1_100)));
        // Not due yet.
        assert!(r
            .handle_timeout(Millis(1_099), &free(9, &[9, 9]), |_| true)
            .is_empty());
        // A full trunk: none back, looked at again a second later.
        assert!(r
            .handle_timeout(Millis(1_100), &free(0, &[9, 9]), |_| true)
            .is_empty());
        assert_eq!(r.poll_timeout(), Some(Millis(2_100)));
        // Two free globally, one for tenant 0: the oldest of tenant 0, then tenant 1's.
        assert_eq!(
            r.handle_timeout(Millis(2_100), &free(2, &[1, 5]), |_| true),
            vec!["early", "other"]
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r.poll_timeout(), Some(Millis(3_100)));
        // Finished meanwhile: forgotten, and no further check.
        assert!(r
            .handle_timeout(Millis(3_100), &free(5, &[5, 5]), |k| *k != "late")
            .is_empty());
        assert!(r.is_empty());
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn draining_readmits_nothing_and_schedules_nothing() {
        let mut r: Readmission<u32> = Readmission::new();
        r.park(Millis(0), 7, 0, 0);
        let draining = Free {
            draining: true,
            ..free(9, &[9])
        };
        assert!(r
            .handle_timeout(Millis(1_000), &draining, |_| true)
            .is_empty());
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn a_key_is_parked_once() {
        let mut r: Readmission<u32> = Readmission::new();
        r.park(Millis(0), 7, 0, 0);
        r.park(Millis(10), 7, 0, 0);
        assert_eq!(r.len(), 1);
        r.remove(&7);
        assert_eq!(r.poll_timeout(), None);
    }
}
