//! Refusing is nearly free (issue 18, part 3): the router's cheap look at a new INVITE
//! before the SIP stack spends a transaction on it, and blocked calls counted and sampled
//! instead of three events each.
//!
//! [`RouterScreen`] answers the SIP guard (UDP and TCP) from what it can read without waiting: the
//! dialled number's tenant (a map built once from the configuration), the tenant's
//! `trunk_sources`, and the channel counts the [`ChannelGate`] keeps for the call actors (the
//! same atomics, so the guard sees exactly what admission sees). A call refused for full
//! channels, by the screen or by admission (a call the screen passed a moment before another
//! took the last channel, or any call with the screen off), is counted in a
//! [`BlockedTally`]; [`BlockedSummariser`] turns the tally into one `blocked_summary` event
//! per tenant, reason and transport a second (the event ring, the log, the journal and, from
//! there, the monthly report and the metrics).

use super::gate::ChannelGate;
use crate::config::Config;
use crate::events::{BlockReason, EventBus, EventKind};
use crate::privacy::PhoneNumber;
use crate::sip::guard::{CallScreen, CallVerdict};
use actix::prelude::*;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Callers' numbers kept (masked) per tenant, reason and interval for the summary.
pub const SAMPLE: usize = 5;

/// The reasons a screened call is blocked, in tally order.
const REASONS: [BlockReason; 3] = [
    BlockReason::GlobalChannels,
    BlockReason::TenantChannels,
    BlockReason::ShuttingDown,
];

/// The transports a blocked call can come over, in tally order.
const TRANSPORTS: [&str; 2] = ["udp", "tcp"];

/// Blocked calls since the last summary, per tenant (index order), reason and transport.
#[derive(Debug)]
pub struct BlockedTally {
    counts: Vec<[[AtomicU64; 2]; 3]>,
    samples: Vec<Mutex<Vec<String>>>,
}

/// One summary's worth of a tally: blocked calls of one tenant, reason and transport.
#[derive(Debug, PartialEq, Eq)]
pub struct Blocked {
    /// The tenant's index in the configuration.
    pub tenant: usize,
    /// Why they were refused.
    pub reason: BlockReason,
    /// "udp" or "tcp".
    pub transport: &'static str,
    /// How many.
    pub count: u64,
    /// A few of the callers' numbers, masked (the tenant's sample goes with its first entry).
    pub sample: Vec<String>,
}

impl BlockedTally {
    /// A tally for `tenants` tenants.
    pub fn new(tenants: usize) -> BlockedTally {
        BlockedTally {
            counts: (0..tenants).map(|_| Default::default()).collect(),
            samples: (0..tenants).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// Counts one blocked call of tenant `tenant` over `transport` ("tcp", else UDP) from
    /// `caller` (kept masked, a few an interval).
    pub fn count(&self, tenant: usize, reason: BlockReason, transport: &str, caller: &str) {
        let Some(counts) = self.counts.get(tenant) else {
            return;
        };
        let r = REASONS.iter().position(|x| *x == reason).unwrap_or(0);
        let t = usize::from(transport == "tcp");
        let before = counts[r][t].fetch_add(1, Ordering::AcqRel);
        if before < SAMPLE as u64 {
            let mut sample = self.samples[tenant]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if sample.len() < SAMPLE {
                sample.push(PhoneNumber::new(caller).masked());
            }
        }
    }

    /// Takes what was counted, non-zero counts only.
    pub fn drain(&self) -> Vec<Blocked> {
        let mut out = Vec::new();
        for (tenant, counts) in self.counts.iter().enumerate() {
            let mut sample = std::mem::take(
                &mut *self.samples[tenant]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            for (r, by_transport) in counts.iter().enumerate() {
                for (t, count) in by_transport.iter().enumerate() {
                    let count = count.swap(0, Ordering::AcqRel);
                    if count > 0 {
                        out.push(Blocked {
                            tenant,
                            reason: REASONS[r],
                            transport: TRANSPORTS[t],
                            count,
                            sample: std::mem::take(&mut sample),
                        });
                    }
                }
            }
        }
        out
    }
}

/// The router's screen of new INVITEs for the UDP guard.
pub struct RouterScreen {
    config: Arc<Config>,
    dids: HashMap<String, usize>,
    gate: Arc<ChannelGate>,
    tally: Arc<BlockedTally>,
    retry_after_secs: u32,
}

impl RouterScreen {
    /// A screen over `config`'s numbers and tenants and `gate`'s counts, counting blocked
    /// calls into `tally`.
    pub fn new(config: Arc<Config>, gate: Arc<ChannelGate>, tally: Arc<BlockedTally>) -> Self {
        let mut dids = HashMap::new();
        for (i, t) in config.tenants.iter().enumerate() {
            for d in &t.dids {
                // The first tenant with the number wins, as in `Router::admit`.
                dids.entry(d.clone()).or_insert(i);
            }
        }
        RouterScreen {
            retry_after_secs: u32::try_from(config.limits.retry_after.as_secs())
                .unwrap_or(u32::MAX),
            config,
            dids,
            gate,
            tally,
        }
    }
}

impl CallScreen for RouterScreen {
    fn screen_call(
        &self,
        did: &str,
        source: IpAddr,
        caller: &str,
        transport: &'static str,
        first: bool,
    ) -> CallVerdict {
        let Some(&tenant) = self.dids.get(did) else {
            return CallVerdict::UnknownNumber;
        };
        if !self.config.tenants[tenant].accepts_calls_from(Some(source)) {
            return CallVerdict::ForeignTrunk;
        }
        let reason = if self.gate.draining() {
            BlockReason::ShuttingDown
        } else if self.gate.in_use() >= self.gate.limit() {
            BlockReason::GlobalChannels
        } else if self.gate.tenant_in_use(tenant) >= self.gate.tenant_limit(tenant) {
            BlockReason::TenantChannels
        } else {
            return CallVerdict::Pass;
        };
        if first {
            self.tally.count(tenant, reason, transport, caller);
        }
        CallVerdict::Full {
            retry_after_secs: self.retry_after_secs,
        }
    }
}

/// Emits the tally as `blocked_summary` events once a second.
pub struct BlockedSummariser {
    config: Arc<Config>,
    events: EventBus,
    tally: Arc<BlockedTally>,
}

impl BlockedSummariser {
    /// A summariser of `tally` into `events`.
    pub fn new(config: Arc<Config>, events: EventBus, tally: Arc<BlockedTally>) -> Self {
        BlockedSummariser {
            config,
            events,
            tally,
        }
    }

    fn flush(&self) {
        for b in self.tally.drain() {
            self.events.emit(EventKind::BlockedSummary {
                tenant: self.config.tenants[b.tenant].id.clone(),
                reason: b.reason,
                transport: b.transport.into(),
                count: b.count,
                sample: b.sample,
            });
        }
    }
}

impl Actor for BlockedSummariser {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_secs(1), |this, _| this.flush());
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_samples_masked_and_drains_to_zero() {
        let tally = BlockedTally::new(2);
        for k in 0..7 {
            tally.count(
                1,
                BlockReason::TenantChannels,
                "udp",
                &format!("99890123456{k}"),
            );
        }
        tally.count(1, BlockReason::GlobalChannels, "udp", "998901234599");
        tally.count(1, BlockReason::GlobalChannels, "tcp", "998901234598");
        let drained = tally.drain();
        assert_eq!(drained.len(), 3, "{drained:?}");
        let total: u64 = drained.iter().map(|d| d.count).sum();
        assert_eq!(total, 9);
        let tcp: Vec<&Blocked> = drained.iter().filter(|d| d.transport == "tcp").collect();
        assert_eq!(tcp.len(), 1, "{drained:?}");
        assert_eq!(
            (tcp[0].count, tcp[0].reason),
            (1, BlockReason::GlobalChannels)
        );
        let sample: Vec<&String> = drained.iter().flat_map(|d| &d.sample).collect();
        assert_eq!(sample.len(), SAMPLE);
        assert!(sample.iter().all(|n| n.contains('*')), "{sample:?}");
        assert!(tally.drain().is_empty());
    }
}
