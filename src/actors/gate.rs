//! Channel admission (D6): a global limit and a limit per tenant, plus the
//! drain switch for graceful shutdown. Lock-free; a ticket releases its
//! channel when dropped, so a crashed call cannot leak one.

use crate::events::BlockReason;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// Counts calls in progress against the limits.
#[derive(Debug)]
pub struct ChannelGate {
    global_limit: u32,
    global: AtomicU32,
    tenants: Vec<(u32, AtomicU32)>,
    draining: AtomicBool,
}

/// One channel held by a call.
#[derive(Debug)]
pub struct ChannelTicket {
    gate: Arc<ChannelGate>,
    tenant: usize,
}

impl Drop for ChannelTicket {
    fn drop(&mut self) {
        self.gate.global.fetch_sub(1, Ordering::AcqRel);
        self.gate.tenants[self.tenant]
            .1
            .fetch_sub(1, Ordering::AcqRel);
    }
}

impl ChannelGate {
    /// A gate with a global limit and one limit per tenant (index order).
    pub fn new(global_limit: u32, tenant_limits: Vec<u32>) -> Arc<ChannelGate> {
        Arc::new(ChannelGate {
            global_limit,
            global: AtomicU32::new(0),
            tenants: tenant_limits
                .into_iter()
                .map(|l| (l, AtomicU32::new(0)))
                .collect(),
            draining: AtomicBool::new(false),
        })
    }

    /// Takes a channel for a call of tenant `tenant`, or says why not.
    pub fn try_acquire(self: &Arc<Self>, tenant: usize) -> Result<ChannelTicket, BlockReason> {
        if self.draining.load(Ordering::Acquire) {
            return Err(BlockReason::ShuttingDown);
        }
        let (limit, used) = &self.tenants[tenant];
        if self
            .global
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.global_limit).then_some(n + 1)
            })
            .is_err()
        {
            return Err(BlockReason::GlobalChannels);
        }
        if used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < *limit).then_some(n + 1)
            })
            .is_err()
        {
            self.global.fetch_sub(1, Ordering::AcqRel);
            return Err(BlockReason::TenantChannels);
        }
        Ok(ChannelTicket {
            gate: self.clone(),
            tenant,
        })
    }

    /// Calls in progress.
    pub fn in_use(&self) -> u32 {
        self.global.load(Ordering::Acquire)
    }

    /// The global limit.
    pub fn limit(&self) -> u32 {
        self.global_limit
    }

    /// Calls in progress of tenant `tenant` (index order; 0 for an unknown index).
    pub fn tenant_in_use(&self, tenant: usize) -> u32 {
        self.tenants
            .get(tenant)
            .map_or(0, |(_, used)| used.load(Ordering::Acquire))
    }

    /// The channel limit of tenant `tenant` (index order; 0 for an unknown index).
    pub fn tenant_limit(&self, tenant: usize) -> u32 {
        self.tenants.get(tenant).map_or(0, |(limit, _)| *limit)
    }

    /// Refuse new calls from now on (shutdown).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the gate is draining.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// The gate's free channels, for the readmission of callbacks that found none.
impl crate::callback::FreeChannels for ChannelGate {
    fn global_free(&self) -> u32 {
        self.limit().saturating_sub(self.in_use())
    }
    fn tenant_free(&self, tenant: usize) -> u32 {
        self.tenant_limit(tenant)
            .saturating_sub(self.tenant_in_use(tenant))
    }
    fn draining(&self) -> bool {
        ChannelGate::draining(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_and_tickets_release() {
        let g = ChannelGate::new(2, vec![1, 5]);
        let a = g.try_acquire(0).unwrap();
        assert_eq!(g.try_acquire(0).unwrap_err(), BlockReason::TenantChannels);
        let b = g.try_acquire(1).unwrap();
        assert_eq!(g.try_acquire(1).unwrap_err(), BlockReason::GlobalChannels);
        assert_eq!(g.in_use(), 2);
        drop(a);
        let _c = g.try_acquire(1).unwrap();
        drop(b);
        g.start_draining();
        assert_eq!(g.try_acquire(1).unwrap_err(), BlockReason::ShuttingDown);
        assert_eq!(g.in_use(), 1);
    }
}
