//! The metrics poller: reads the router's state that is not an event (queues, operators,
//! channels, registrations, the SIP layer's counters) into the gauges [`crate::metrics`]
//! catalogues. It lives with the actors because it asks them (the ACD host's snapshots,
//! [`Shared`]); `metrics` itself stays a sink and a catalogue that imports no actor.

use super::acd_host::{AcdActor, OperatorStateCounts, Snapshots};
use super::Shared;
use crate::acd::QueueSnapshot;
use crate::metrics::{
    export_media, install, MetricsSink, CHANNELS_IN_USE, CHANNELS_LIMIT, DB_UP, DOOR_VERDICTS,
    EVENTS_SHED, JOURNAL_DEPTH, JOURNAL_LAG, JOURNAL_SHED, JOURNAL_WAITS, OPERATORS,
    OPERATORS_REGISTERED, QUEUE_EXPECTED_WAIT, QUEUE_LONGEST_WAIT, QUEUE_OPERATORS, QUEUE_RINGING,
    QUEUE_WAITING, REDIS_UP, SIP_AUTH_BANS, SIP_AUTH_FAILURES, SIP_AUTH_REFUSED, SIP_AUTH_REPLAYS,
    SIP_DOOR, SIP_DOOR_QUEUE, SIP_GUARD, SIP_INVITES_REJECTED, SIP_REGISTRATIONS,
    SIP_TCP_CONNECTIONS, SIP_TCP_REFUSED, TENANT_CHANNELS_IN_USE, TENANT_CHANNELS_LIMIT,
    TENANT_SURGE,
};
use actix::Addr;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often the poller reads the state gauges.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Reads state that is not an event (queues, operators, channels, registrations, SIP
/// counters) into gauges once per [`POLL_INTERVAL`], and runs the exporter's upkeep.
pub struct MetricsPoller {
    shared: Arc<Shared>,
    acd: Addr<AcdActor>,
    sink: Arc<MetricsSink>,
}

impl MetricsPoller {
    /// A poller over the router's shared state and ACD host.
    pub fn new(shared: Arc<Shared>, acd: Addr<AcdActor>, sink: Arc<MetricsSink>) -> MetricsPoller {
        MetricsPoller { shared, acd, sink }
    }

    /// Starts polling on the current actix arbiter; it stops with the actix system.
    pub fn start(self) {
        actix::spawn(async move {
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.poll_once().await;
            }
        });
    }

    /// One round of reading; public so tests can drive it without a clock.
    pub async fn poll_once(&self) {
        let model = &self.shared.model;
        if let Ok(snaps) = self.acd.send(Snapshots).await {
            let mut surge_by_tenant: HashMap<String, bool> = HashMap::new();
            for s in &snaps {
                let queue = model.queue_name(s.queue).to_string();
                let tenant = model.tenant_name(model.queue_tenant(s.queue)).to_string();
                *surge_by_tenant.entry(tenant.clone()).or_default() |= s.surge;
                let labels = [("tenant", tenant.clone()), ("queue", queue.clone())];
                metrics::gauge!(QUEUE_WAITING, &labels).set(s.waiting as f64);
                metrics::gauge!(QUEUE_RINGING, &labels).set(s.ringing as f64);
                metrics::gauge!(QUEUE_LONGEST_WAIT, &labels).set(s.longest_wait_ms as f64 / 1000.0);
                let ewt = expected_wait_secs(
                    s,
                    self.sink.handle_secs(&queue, s.surge),
                    self.sink.max_wait_secs(&queue, s.surge),
                );
                metrics::gauge!(QUEUE_EXPECTED_WAIT, &labels).set(ewt);
                let by_state = [
                    ("available", s.operators_available),
                    ("ringing", s.operators_ringing),
                    ("on_call", s.operators_on_call),
                    ("wrap_up", s.operators_wrap_up),
                    ("break", s.operators_on_break),
                    ("logged_out", s.operators_logged_out),
                ];
                for (state, n) in by_state {
                    metrics::gauge!(QUEUE_OPERATORS, "tenant" => tenant.clone(), "queue" => queue.clone(), "state" => state)
                        .set(n as f64);
                }
            }
            for (tenant, on) in surge_by_tenant {
                metrics::gauge!(TENANT_SURGE, "tenant" => tenant).set(if on { 1.0 } else { 0.0 });
            }
        }
        if let Ok(counts) = self.acd.send(OperatorStateCounts).await {
            for (state, n) in counts {
                metrics::gauge!(OPERATORS, "state" => state).set(n as f64);
            }
        }
        let gate = &self.shared.gate;
        metrics::gauge!(CHANNELS_IN_USE).set(f64::from(gate.in_use()));
        metrics::gauge!(CHANNELS_LIMIT).set(f64::from(gate.limit()));
        for (i, t) in self.shared.config.tenants.iter().enumerate() {
            metrics::gauge!(TENANT_CHANNELS_IN_USE, "tenant" => t.id.clone())
                .set(f64::from(gate.tenant_in_use(i)));
            metrics::gauge!(TENANT_CHANNELS_LIMIT, "tenant" => t.id.clone())
                .set(f64::from(gate.tenant_limit(i)));
        }
        metrics::gauge!(OPERATORS_REGISTERED).set(self.shared.presence.registered() as f64);
        // Memory presence has no Redis to lose: reported up, so one alert rule fits both.
        let redis_up = self.shared.presence.shared().is_none_or(|s| s.is_up());
        metrics::gauge!(REDIS_UP).set(if redis_up { 1.0 } else { 0.0 });
        if let Some(store) = &self.shared.store {
            let h = store.health();
            metrics::gauge!(JOURNAL_LAG).set(h.lag_seconds);
            metrics::gauge!(JOURNAL_DEPTH).set(h.depth_events as f64);
            metrics::counter!(JOURNAL_SHED).absolute(h.shed_events);
            metrics::counter!(JOURNAL_WAITS).absolute(h.waited_events);
            metrics::gauge!(DB_UP, "backend" => h.backend).set(if h.db_up { 1.0 } else { 0.0 });
            metrics::gauge!(crate::metrics::REPEAT_INDEX_CALLS).set(h.repeat_calls as f64);
        }
        metrics::counter!(EVENTS_SHED).absolute(self.shared.memory.shed());
        metrics::gauge!(crate::metrics::EVENTS_MEMORY_BYTES).set(self.shared.memory.bytes() as f64);
        if let Some(media) = self.shared.media.get() {
            export_media(media);
        }
        self.shared.ports.close_idle();
        crate::metrics::export_ports(&self.shared.ports);
        if let Some(sip) = self.shared.sip.get() {
            use std::sync::atomic::Ordering::Relaxed;
            let c = sip.counters();
            let g = &c.guard;
            let verdicts = [
                ("passed", g.passed.load(Relaxed)),
                ("rejected_400", g.rejected_400.load(Relaxed)),
                ("rejected_501", g.rejected_501.load(Relaxed)),
                ("rejected_505", g.rejected_505.load(Relaxed)),
                ("rejected_513", g.rejected_513.load(Relaxed)),
                ("dropped", g.dropped.load(Relaxed)),
            ];
            for (verdict, n) in verdicts {
                metrics::counter!(SIP_GUARD, "verdict" => verdict).absolute(n);
            }
            let door = [
                g.door_admitted.load(Relaxed),
                g.door_answered[0].load(Relaxed),
                g.door_answered[1].load(Relaxed),
                g.door_answered[2].load(Relaxed),
                g.door_dropped[0].load(Relaxed),
                g.door_dropped[1].load(Relaxed),
                g.door_dropped[2].load(Relaxed),
                g.door_shed.load(Relaxed),
                g.acks_absorbed.load(Relaxed),
                g.calls_answered[0].load(Relaxed),
                g.calls_answered[1].load(Relaxed),
                g.calls_answered[2].load(Relaxed),
                g.calls_dropped.load(Relaxed),
            ];
            for (verdict, n) in DOOR_VERDICTS.into_iter().zip(door) {
                metrics::counter!(SIP_DOOR, "verdict" => verdict).absolute(n);
            }
            metrics::gauge!(SIP_DOOR_QUEUE).set(g.queued() as f64);
            metrics::gauge!(SIP_TCP_CONNECTIONS).set(c.tcp.open.load(Relaxed) as f64);
            metrics::gauge!(crate::metrics::SIP_OWN_TRANSACTIONS)
                .set(c.own_transactions.load(Relaxed) as f64);
            metrics::gauge!(crate::metrics::SIP_OWN_TRANSACTION_BYTES)
                .set(c.own_transaction_bytes.load(Relaxed) as f64);
            metrics::gauge!(crate::metrics::SIP_OWN_CALL_LEGS)
                .set(c.own_call_legs.load(Relaxed) as f64);
            for (algorithm, n) in crate::metrics::AUTH_ALGORITHMS
                .into_iter()
                .zip(&c.auth_succeeded)
            {
                metrics::counter!(crate::metrics::SIP_AUTH, "algorithm" => algorithm)
                    .absolute(n.load(Relaxed));
            }
            for (reason, n) in crate::metrics::TCP_REASONS.into_iter().zip(&c.tcp.refused) {
                metrics::counter!(SIP_TCP_REFUSED, "reason" => reason).absolute(n.load(Relaxed));
            }
            metrics::counter!(SIP_INVITES_REJECTED).absolute(c.invites_rejected.load(Relaxed));
            metrics::counter!(SIP_REGISTRATIONS).absolute(c.registrations.load(Relaxed));
            metrics::counter!(SIP_AUTH_FAILURES).absolute(c.auth_failures.load(Relaxed));
            metrics::counter!(SIP_AUTH_REFUSED).absolute(c.auth_refused.load(Relaxed));
            metrics::counter!(SIP_AUTH_BANS).absolute(c.auth_bans.load(Relaxed));
            metrics::counter!(SIP_AUTH_REPLAYS).absolute(c.auth_replays.load(Relaxed));
        }
        install().run_upkeep();
    }
}

/// Expected wait, in seconds, of a caller who joins the queue now: the routing core's one
/// estimate ([`QueueSnapshot::expected_wait_ms`], the formula the announcements and the surge
/// trigger use), fed here with `handle_secs`, the average talk time of the queue's answered
/// calls so far plus the configured wrap-up.
pub fn expected_wait_secs(snap: &QueueSnapshot, handle_secs: f64, max_wait_secs: f64) -> f64 {
    let ms = |secs: f64| (secs.max(0.0) * 1000.0).round() as u64;
    snap.expected_wait_ms(ms(handle_secs), ms(max_wait_secs)) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::QueueId;

    fn snap(waiting: usize, available: usize, on_call: usize, on_break: usize) -> QueueSnapshot {
        let mut s = QueueSnapshot::empty(QueueId(0));
        s.waiting = waiting;
        s.operators_available = available;
        s.operators_on_call = on_call;
        s.operators_on_break = on_break;
        s
    }

    #[test]
    fn expected_wait_is_zero_with_a_free_operator_and_nobody_waiting() {
        assert_eq!(expected_wait_secs(&snap(0, 1, 3, 0), 150.0, 900.0), 0.0);
    }

    #[test]
    fn expected_wait_scales_with_waiting_over_staffed() {
        // 3 waiting + the new caller, 4 busy operators, 150 s handle time: 150 s.
        assert_eq!(expected_wait_secs(&snap(3, 0, 4, 0), 150.0, 900.0), 150.0);
        // Capped at the max wait.
        assert_eq!(expected_wait_secs(&snap(99, 0, 1, 0), 150.0, 900.0), 900.0);
    }

    #[test]
    fn expected_wait_without_staff_is_the_max_wait() {
        assert_eq!(expected_wait_secs(&snap(2, 0, 0, 5), 150.0, 300.0), 300.0);
    }
}
