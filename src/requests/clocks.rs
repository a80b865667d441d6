//! The requests' SLA clocks, driven: each request's facts for the pure [`crate::sla`] core,
//! each tenant's rules and calendar, and the watcher that wakes when a clock comes near its
//! deadline or runs out, records a breach once on the request (`Change::Breached`), emits a
//! `request_sla` event and keeps the gauges of open requests current.

use super::{Change, Head, Kind, Requests, Status};
use crate::events::{EventBus, EventKind};
use crate::sla::{
    evaluate, BusinessCalendar, ClockRule, ClockState, Pause, RequestFacts, SlaRules, SlaState,
};
use jiff::Timestamp;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Each tenant's rules and calendar.
pub struct Clocks {
    tenants: HashMap<String, (SlaRules, BusinessCalendar)>,
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The name of a clock's rule (metrics, events, `Head::breaches`).
pub fn rule_name(rule: ClockRule) -> &'static str {
    match rule {
        ClockRule::FirstAnswer => "first_answer",
        ClockRule::OutOfHoursContact => "out_of_hours_contact",
        ClockRule::Resolution => "resolution",
        ClockRule::Moderation => "moderation",
    }
}

/// The clock rules' names.
pub const RULES: [&str; 4] = [
    "first_answer",
    "out_of_hours_contact",
    "resolution",
    "moderation",
];

/// What the clocks know of a request.
pub fn facts(h: &Head) -> RequestFacts {
    let mut f = RequestFacts::new(ts(h.registered_at_ms), h.channel, h.priority, h.kind);
    f.first_answer_at = h.first_answer_at_ms.map(ts);
    f.resolved_at = h.resolved_at_ms.map(ts);
    f.waiting_for_customer = h
        .pauses
        .iter()
        .map(|p| Pause {
            from: ts(p.from_ms),
            until: p.to_ms.map(ts),
        })
        .collect();
    if h.kind == Kind::Moderation {
        f.submissions = h.submitted_at_ms.map(ts).into_iter().collect();
        // A card returned for an error waits for the customer.
        f.returns = h.pauses.iter().map(|p| ts(p.from_ms)).collect();
        f.waiting_for_customer.clear();
    }
    f
}

impl Clocks {
    /// The rules and calendars of `config`'s tenants.
    pub fn new(config: &crate::config::Config) -> Clocks {
        Clocks {
            tenants: config
                .tenants
                .iter()
                .map(|t| (t.id.clone(), (t.sla.clone(), t.business_calendar())))
                .collect(),
        }
    }

    /// The clocks of `head` at `now_ms` (`None` for an unknown tenant).
    pub fn state(&self, head: &Head, now_ms: i64) -> Option<SlaState> {
        let (rules, calendar) = self.tenants.get(&head.tenant)?;
        Some(evaluate(rules, calendar, &facts(head), ts(now_ms)))
    }
}

/// The clock a list shows: a breached one of an open request first, else the running or
/// paused one with the least time left.
pub fn shown(state: &SlaState, status: Status) -> Option<crate::sla::Clock> {
    if !status.is_open() {
        return None;
    }
    let open: Vec<_> = state
        .clocks()
        .filter(|c| c.stopped_at.is_none())
        .copied()
        .collect();
    open.iter()
        .find(|c| c.state == ClockState::Breached)
        .copied()
        .or_else(|| {
            open.iter()
                .filter(|c| matches!(c.state, ClockState::Running | ClockState::Paused))
                .min_by_key(|c| c.left_secs)
                .copied()
        })
}

/// Sets every requests metric to zero for its bounded label values, so dashboards and alert
/// rules see the series before the first request.
fn declare_metrics(tenants: &[String]) {
    for t in tenants {
        for p in crate::sla::Priority::ALL {
            metrics::gauge!("navbat_requests_open", "tenant" => t.clone(), "priority" => p.as_str())
                .set(0.0);
        }
        metrics::gauge!("navbat_requests_near_breach", "tenant" => t.clone()).set(0.0);
        for c in crate::sla::Channel::ALL {
            metrics::counter!("navbat_requests_registered_total", "tenant" => t.clone(), "channel" => c.as_str())
                .increment(0);
        }
        for r in RULES {
            metrics::counter!("navbat_request_sla_breaches_total", "tenant" => t.clone(), "clock" => r)
                .increment(0);
            metrics::counter!("navbat_request_sla_near_breaches_total", "tenant" => t.clone(), "clock" => r)
                .increment(0);
        }
    }
}

/// What one look at the open requests found (pure: heads and `now` in).
#[derive(Debug, Default, PartialEq)]
pub struct Sweep {
    /// Open requests by tenant and priority.
    pub open: HashMap<(String, &'static str), f64>,
    /// Requests near a deadline, by tenant.
    pub near: HashMap<String, f64>,
    /// Clocks newly run out: request, tenant, clock.
    pub breached: Vec<(String, String, &'static str)>,
    /// Clocks newly near their deadline: request, tenant, clock.
    pub newly_near: Vec<(String, String, &'static str)>,
    /// Every clock near its deadline now (the next sweep's `known_near`).
    pub near_now: HashSet<(String, &'static str)>,
    /// When to look again (the next change any clock announces).
    pub next: Option<Timestamp>,
}

/// Looks at `open` at `now_ms`. `known_near` are the clocks already reported near.
pub fn sweep(
    open: &[Head],
    clocks: &Clocks,
    now_ms: i64,
    known_near: &HashSet<(String, &'static str)>,
) -> Sweep {
    let mut out = Sweep::default();
    for h in open {
        *out.open
            .entry((h.tenant.clone(), h.priority.as_str()))
            .or_default() += 1.0;
        let Some(state) = clocks.state(h, now_ms) else {
            continue;
        };
        if let Some(t) = state.next_change(ts(now_ms)) {
            out.next = Some(out.next.map_or(t, |n: Timestamp| n.min(t)));
        }
        for c in state.clocks().filter(|c| c.stopped_at.is_none()) {
            let rule = rule_name(c.rule);
            if c.state == ClockState::Breached {
                if !h.breaches.iter().any(|b| b == rule) {
                    out.breached.push((h.id.clone(), h.tenant.clone(), rule));
                }
            } else if c.near_breach {
                *out.near.entry(h.tenant.clone()).or_default() += 1.0;
                let key = (h.id.clone(), rule);
                if !known_near.contains(&key) {
                    out.newly_near.push((h.id.clone(), h.tenant.clone(), rule));
                }
                out.near_now.insert(key);
            }
        }
    }
    out
}

/// Watches the open requests' clocks until the process ends: wakes at the next change the
/// pure core announces (at most every 30 s, and when a request changes).
pub async fn watch(
    requests: Arc<Requests>,
    clocks: Arc<Clocks>,
    events: EventBus,
    tenants: Vec<String>,
) {
    declare_metrics(&tenants);
    let mut changed = requests.subscribe();
    let mut near: HashSet<(String, &'static str)> = HashSet::new();
    loop {
        let now_ms = Timestamp::now().as_millisecond();
        let found = sweep(&requests.open(|_| true), &clocks, now_ms, &near);
        for t in &tenants {
            for p in crate::sla::Priority::ALL {
                let n = found
                    .open
                    .get(&(t.clone(), p.as_str()))
                    .copied()
                    .unwrap_or(0.0);
                metrics::gauge!("navbat_requests_open", "tenant" => t.clone(), "priority" => p.as_str())
                    .set(n);
            }
            metrics::gauge!("navbat_requests_near_breach", "tenant" => t.clone())
                .set(found.near.get(t).copied().unwrap_or(0.0));
        }
        for (id, tenant, rule) in found.newly_near {
            events.emit(EventKind::RequestSla {
                request: id,
                tenant,
                clock: rule.to_owned(),
                state: "near_breach".to_owned(),
            });
        }
        near = found.near_now;
        for (id, tenant, rule) in found.breached {
            // Recorded once on the request (the book refuses a second record of a clock).
            let kept = requests
                .change(
                    &id,
                    Change::Breached {
                        clock: rule.to_owned(),
                    },
                    "system",
                )
                .await;
            if kept.is_ok() {
                tracing::warn!(request = %id, tenant = %tenant, clock = rule, "request SLA breached");
                events.emit(EventKind::RequestSla {
                    request: id,
                    tenant,
                    clock: rule.to_owned(),
                    state: "breached".to_owned(),
                });
            }
        }
        let wait = found
            .next
            .map(|t| {
                let ms = t.as_millisecond() - Timestamp::now().as_millisecond();
                Duration::from_millis(ms.clamp(10, 30_000) as u64)
            })
            .unwrap_or(Duration::from_secs(30));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed.recv() => {
                // Let a burst of changes settle before looking again.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::{Book, Channel, NewRequest, Priority, Requester};

    /// 2026-12-07 (a Monday) at `hh:mm` in Tashkent, in Unix ms.
    fn monday(hh: i64, mm: i64) -> i64 {
        let midnight_utc: i64 = 1_796_601_600_000; // 2026-12-07T00:00:00Z
        midnight_utc + ((hh - 5) * 60 + mm) * 60_000
    }

    fn web_request(book: &mut Book, key: &str, at: i64) -> Head {
        let new = NewRequest {
            tenant: "support".into(),
            channel: Channel::Web,
            kind: Kind::Ordinary,
            priority: Priority::Normal,
            category: None,
            topic: None,
            subject: "s".into(),
            requester: Requester::default(),
            language: "uz".into(),
            message: None,
            call_uid: None,
            actor: "customer".into(),
            assignee: None,
        };
        let (_, staged) = book.intake(Some(key), new, "261207", at).unwrap();
        staged.unwrap().step.head
    }

    #[test]
    fn a_sweep_reports_each_breach_and_near_breach_once_with_the_next_wake_up() {
        let config = crate::config::Config::embedded_default();
        let clocks = Clocks::new(&config);
        let mut book = Book::new("navbat");
        // Registered Monday 10:00 on the support line (Mon-Fri 08:00-20:00): the first answer
        // is due 10:10 (C4), near breach from 10:08 (20 % of 10 minutes left).
        let h = web_request(&mut book, "a", monday(10, 0));
        let early = sweep(
            std::slice::from_ref(&h),
            &clocks,
            monday(10, 5),
            &HashSet::new(),
        );
        assert!(early.breached.is_empty() && early.newly_near.is_empty());
        assert_eq!(
            early.open.get(&("support".to_owned(), "normal")),
            Some(&1.0)
        );
        assert_eq!(early.next.map(|t| t.as_millisecond()), Some(monday(10, 8)));

        let near = sweep(
            std::slice::from_ref(&h),
            &clocks,
            monday(10, 9),
            &HashSet::new(),
        );
        assert_eq!(
            near.newly_near,
            vec![(h.id.clone(), "support".to_owned(), "first_answer")]
        );
        let again = sweep(
            std::slice::from_ref(&h),
            &clocks,
            monday(10, 9),
            &near.near_now,
        );
        assert!(
            again.newly_near.is_empty(),
            "a near breach is reported once"
        );

        let late = sweep(
            std::slice::from_ref(&h),
            &clocks,
            monday(10, 11),
            &near.near_now,
        );
        assert_eq!(
            late.breached,
            vec![(h.id.clone(), "support".to_owned(), "first_answer")]
        );
        // Once recorded on the request, the breach is not reported again.
        let recorded = book
            .change(
                &h.id,
                Change::Breached {
                    clock: "first_answer".into(),
                },
                "system",
                monday(10, 11),
            )
            .unwrap()
            .step
            .head;
        let after = sweep(
            std::slice::from_ref(&recorded),
            &clocks,
            monday(10, 12),
            &HashSet::new(),
        );
        assert!(after.breached.is_empty());
    }
}
