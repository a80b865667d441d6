//! Surge evaluation: every tenant's controller (`crate::surge`) looks at its queues' load and
//! the calendar once a second, and a supervisor's setting goes through it too.

use super::*;

impl AcdActor {
    /// Runs every tenant's surge controller once and applies the switches it decides.
    pub(super) fn evaluate_surge(&mut self, ctx: &mut Context<Self>) {
        let now = self.shared.now();
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        for t in 0..self.surge.len() {
            let tenant = TenantId(t as u16);
            let load = self.tenant_load(tenant, now);
            if let Some(switch) = self.surge[t].evaluate(now.0, wall_ms, load) {
                self.shared.model.record_surge(tenant, switch.on);
                self.shared.events.emit(EventKind::SurgeChanged {
                    tenant: self.shared.model.tenant_name(tenant).into(),
                    on: switch.on,
                    by: switch.cause.describe(),
                });
                self.feed(
                    Input::SetSurge {
                        tenant,
                        on: switch.on,
                    },
                    ctx,
                );
            }
        }
    }

    /// The load on a tenant's queues, for its surge controller.
    pub(super) fn tenant_load(&self, tenant: TenantId, now: Millis) -> crate::surge::Load {
        let shared = &self.shared;
        let handle_ms = shared.config.media.average_handle.as_millis() as u64;
        crate::surge::tenant_load(
            shared
                .model
                .queue_ids()
                .filter(|q| shared.model.queue_tenant(*q) == tenant)
                .map(|q| {
                    let snap = self.core.queue_snapshot(q, now);
                    // With nobody waiting the queue adds no load, even when nobody is
                    // staffed (the estimate is then the max wait): an empty line at night
                    // is not a surge.
                    let expected_wait_secs = if snap.waiting == 0 {
                        0.0
                    } else {
                        self.core.expected_wait_ms(q, now, handle_ms) as f64 / 1000.0
                    };
                    QueueLoad {
                        expected_wait_secs,
                        waiting: snap.waiting,
                        available: snap.operators_available,
                    }
                }),
        )
    }
}

/// A supervisor's surge setting for a tenant: force on or off, or hand back to the calendar
/// and the automatic trigger. Applied at once; the switch (if any) is a `surge_changed` event.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetSurge {
    /// The tenant.
    pub tenant: TenantId,
    /// What the supervisor asked for.
    pub manual: Manual,
}

impl Handler<SetSurge> for AcdActor {
    type Result = ();
    fn handle(&mut self, msg: SetSurge, ctx: &mut Context<Self>) {
        if let Some(controller) = self.surge.get_mut(msg.tenant.0 as usize) {
            controller.set_manual(msg.manual);
            self.evaluate_surge(ctx);
        }
    }
}

/// A tenant's surge state for the API.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SurgeView {
    /// Tenant id.
    pub tenant: String,
    /// Whether surge is on.
    pub on: bool,
    /// `auto` (calendar and load decide) or `manual`.
    pub mode: &'static str,
    /// Who forced it, in manual mode.
    pub by: Option<String>,
}

/// Every tenant's surge state.
#[derive(Message)]
#[rtype(result = "Vec<SurgeView>")]
pub struct SurgeStates;

impl Handler<SurgeStates> for AcdActor {
    type Result = MessageResult<SurgeStates>;
    fn handle(&mut self, _: SurgeStates, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.surge
                .iter()
                .enumerate()
                .map(|(t, c)| {
                    let (mode, by) = match c.manual() {
                        Manual::Auto => ("auto", None),
                        Manual::Forced { by, .. } => ("manual", Some(by.clone())),
                    };
                    SurgeView {
                        tenant: self.shared.model.tenant_name(TenantId(t as u16)).into(),
                        on: c.is_on(),
                        mode,
                        by,
                    }
                })
                .collect(),
        )
    }
}
