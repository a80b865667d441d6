//! Surge mode switching for one tenant: a pure decision (D21).
//!
//! Three sources can put a tenant into surge mode, in this order of
//! authority: a supervisor (`POST /api/tenants/{id}/surge`, which holds until
//! the supervisor hands control back), the exam calendar (periods with start
//! and end), and the automatic trigger on load. The automatic trigger uses
//! hysteresis: it switches on when expected wait *or* calls waiting per
//! available operator pass the `enter` thresholds, and off only when both are
//! below the lower `exit` thresholds, and in either direction only after the
//! condition has held for `hold` time and at least `min_dwell` after the last
//! switch, so a wallboard does not flap.
//!
//! The controller takes `now` and the load figures as arguments and returns
//! the switch to make, if any, with what caused it; it never reads a clock.

/// When a tenant is in surge by calendar: `[start, end)` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Start, inclusive.
    pub start_ms: i64,
    /// End, exclusive.
    pub end_ms: i64,
}

/// The automatic trigger's thresholds. Enter values must exceed exit values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoTrigger {
    /// Switch on when the expected wait reaches this (seconds)...
    pub enter_expected_wait_secs: f64,
    /// ...or calls waiting per available operator reach this.
    pub enter_waiting_per_available: f64,
    /// Switch off only when the expected wait is below this...
    pub exit_expected_wait_secs: f64,
    /// ...and calls waiting per available operator are below this.
    pub exit_waiting_per_available: f64,
    /// How long a condition must hold before it switches (ms).
    pub hold_ms: u64,
    /// Least time between two automatic switches (ms).
    pub min_dwell_ms: u64,
}

/// A tenant's surge policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SurgePolicy {
    /// Exam periods.
    pub calendar: Vec<Period>,
    /// The automatic trigger, if enabled.
    pub auto: Option<AutoTrigger>,
}

/// What a supervisor asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manual {
    /// No manual setting: calendar and automatic trigger decide.
    Auto,
    /// Forced on or off by this person until handed back.
    Forced {
        /// On or off.
        on: bool,
        /// Who (user name or "api").
        by: String,
    },
}

/// The load on a tenant's queues, as the router measures it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Load {
    /// Expected wait for a new caller, seconds (the worst of the tenant's queues).
    pub expected_wait_secs: f64,
    /// Calls waiting across the tenant's queues.
    pub waiting: u32,
    /// Operators available for them.
    pub available: u32,
}

impl Load {
    /// Waiting calls per available operator; with none available, the
    /// number waiting (so a queue with callers and no free operator counts as loaded).
    pub fn waiting_per_available(&self) -> f64 {
        if self.available == 0 {
            f64::from(self.waiting)
        } else {
            f64::from(self.waiting) / f64::from(self.available)
        }
    }
}

/// One queue's contribution to its tenant's [`Load`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QueueLoad {
    /// Expected wait of a caller joining now (see `metrics::expected_wait_secs`).
    pub expected_wait_secs: f64,
    /// Calls waiting.
    pub waiting: usize,
    /// Operators available for the queue.
    pub available: usize,
}

/// A tenant's load from its queues: the worst expected wait, and the sums of waiting
/// calls and available operators. An operator who serves two queues of the tenant is counted
/// in both, so the ratio errs low; the expected wait is the sharper trigger.
pub fn tenant_load(queues: impl IntoIterator<Item = QueueLoad>) -> Load {
    queues.into_iter().fold(Load::default(), |acc, q| Load {
        expected_wait_secs: acc.expected_wait_secs.max(q.expected_wait_secs),
        waiting: acc
            .waiting
            .saturating_add(u32::try_from(q.waiting).unwrap_or(u32::MAX)),
        available: acc
            .available
            .saturating_add(u32::try_from(q.available).unwrap_or(u32::MAX)),
    })
}

/// What caused a switch; carried in the `surge_changed` event.
#[derive(Debug, Clone, PartialEq)]
pub enum Cause {
    /// A supervisor.
    Manual(String),
    /// An exam period started or ended.
    Calendar,
    /// The load passed a threshold: which one, and its value.
    Auto {
        /// "expected_wait" or "waiting_per_available" (or "load_low" when switching off).
        metric: &'static str,
        /// The value that decided it.
        value: f64,
    },
}

impl Cause {
    /// A short text for the event log.
    pub fn describe(&self) -> String {
        match self {
            Cause::Manual(by) => format!("manual:{by}"),
            Cause::Calendar => "calendar".into(),
            Cause::Auto { metric, value } => format!("auto:{metric}={value:.1}"),
        }
    }
}

/// One switch to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    /// The new state.
    pub on: bool,
    /// Why.
    pub cause: Cause,
}

/// The controller for one tenant.
#[derive(Debug, Clone)]
pub struct SurgeController {
    policy: SurgePolicy,
    manual: Manual,
    on: bool,
    /// When the automatic condition pointing away from the current state began.
    pending_since: Option<u64>,
    last_switch_ms: Option<u64>,
    auto_on: bool,
    /// What switched surge on, while it is on.
    on_cause: Option<Cause>,
}

impl SurgeController {
    /// A controller starting off.
    pub fn new(policy: SurgePolicy) -> SurgeController {
        SurgeController {
            policy,
            manual: Manual::Auto,
            on: false,
            pending_since: None,
            last_switch_ms: None,
            auto_on: false,
            on_cause: None,
        }
    }

    /// Whether the tenant is in surge now.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// The supervisor's current setting.
    pub fn manual(&self) -> &Manual {
        &self.manual
    }

    /// A supervisor's setting; takes effect at the next [`SurgeController::evaluate`].
    pub fn set_manual(&mut self, manual: Manual) {
        self.manual = manual;
    }

    fn in_calendar(&self, wall_ms: i64) -> bool {
        self.policy
            .calendar
            .iter()
            .any(|p| p.start_ms <= wall_ms && wall_ms < p.end_ms)
    }

    /// Re-evaluates at monotonic `now_ms` (wall clock `wall_ms` for the
    /// calendar) with the current load; returns the switch to make, if any.
    pub fn evaluate(&mut self, now_ms: u64, wall_ms: i64, load: Load) -> Option<Switch> {
        self.update_auto(now_ms, load);
        let (want, cause) = match &self.manual {
            Manual::Forced { on, by } => (*on, Cause::Manual(by.clone())),
            Manual::Auto if self.in_calendar(wall_ms) => (true, Cause::Calendar),
            Manual::Auto if self.auto_on => (true, self.auto_cause(load, true)),
            // Off: whatever held it on has let go; name that.
            Manual::Auto => match &self.on_cause {
                Some(Cause::Auto { .. }) => (false, self.auto_cause(load, false)),
                Some(other) => (false, other.clone()),
                None => (false, Cause::Calendar),
            },
        };
        if want == self.on {
            return None;
        }
        self.on = want;
        self.on_cause = want.then(|| cause.clone());
        self.last_switch_ms = Some(now_ms);
        Some(Switch { on: want, cause })
    }

    fn auto_cause(&self, load: Load, on: bool) -> Cause {
        let Some(t) = self.policy.auto else {
            return Cause::Calendar;
        };
        if on {
            if load.expected_wait_secs >= t.enter_expected_wait_secs {
                Cause::Auto {
                    metric: "expected_wait",
                    value: load.expected_wait_secs,
                }
            } else {
                Cause::Auto {
                    metric: "waiting_per_available",
                    value: load.waiting_per_available(),
                }
            }
        } else {
            Cause::Auto {
                metric: "load_low",
                value: load.expected_wait_secs,
            }
        }
    }

    fn update_auto(&mut self, now_ms: u64, load: Load) {
        let Some(t) = self.policy.auto else {
            self.auto_on = false;
            return;
        };
        let over = load.expected_wait_secs >= t.enter_expected_wait_secs
            || load.waiting_per_available() >= t.enter_waiting_per_available;
        let under = load.expected_wait_secs < t.exit_expected_wait_secs
            && load.waiting_per_available() < t.exit_waiting_per_available;
        let pointing_away = if self.auto_on { under } else { over };
        if !pointing_away {
            self.pending_since = None;
            return;
        }
        let since = *self.pending_since.get_or_insert(now_ms);
        let held = now_ms.saturating_sub(since) >= t.hold_ms;
        let dwelt = self
            .last_switch_ms
            .is_none_or(|last| now_ms.saturating_sub(last) >= t.min_dwell_ms);
        if held && dwelt {
            self.auto_on = !self.auto_on;
            self.pending_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger() -> AutoTrigger {
        AutoTrigger {
            enter_expected_wait_secs: 120.0,
            enter_waiting_per_available: 10.0,
            exit_expected_wait_secs: 30.0,
            exit_waiting_per_available: 2.0,
            hold_ms: 10_000,
            min_dwell_ms: 60_000,
        }
    }

    fn load(wait: f64, waiting: u32, available: u32) -> Load {
        Load {
            expected_wait_secs: wait,
            waiting,
            available,
        }
    }

    #[test]
    fn calendar_switches_on_and_off() {
        let mut c = SurgeController::new(SurgePolicy {
            calendar: vec![Period {
                start_ms: 1_000,
                end_ms: 2_000,
            }],
            auto: None,
        });
        assert_eq!(c.evaluate(0, 500, Load::default()), None);
        let s = c.evaluate(1, 1_000, Load::default()).unwrap();
        assert!(s.on);
        assert_eq!(s.cause, Cause::Calendar);
        assert_eq!(c.evaluate(2, 1_999, Load::default()), None);
        let s = c.evaluate(3, 2_000, Load::default()).unwrap();
        assert!(!s.on);
        assert_eq!(s.cause, Cause::Calendar);
    }

    #[test]
    fn manual_overrides_and_hands_back() {
        let mut c = SurgeController::new(SurgePolicy::default());
        c.set_manual(Manual::Forced {
            on: true,
            by: "sv1".into(),
        });
        let s = c.evaluate(0, 0, Load::default()).unwrap();
        assert_eq!((s.on, s.cause.describe()), (true, "manual:sv1".to_string()));
        c.set_manual(Manual::Auto);
        let s = c.evaluate(1, 0, Load::default()).unwrap();
        assert_eq!(
            (s.on, s.cause.describe()),
            (false, "manual:sv1".to_string())
        );
    }

    #[test]
    fn auto_needs_the_condition_to_hold() {
        let mut c = SurgeController::new(SurgePolicy {
            calendar: vec![],
            auto: Some(trigger()),
        });
        assert_eq!(c.evaluate(0, 0, load(200.0, 50, 5)), None);
        assert_eq!(c.evaluate(9_999, 0, load(200.0, 50, 5)), None);
        let s = c.evaluate(10_000, 0, load(200.0, 50, 5)).unwrap();
        assert!(s.on);
        assert!(s.cause.describe().starts_with("auto:expected_wait"));
    }

    #[test]
    fn a_dip_resets_the_hold() {
        let mut c = SurgeController::new(SurgePolicy {
            calendar: vec![],
            auto: Some(trigger()),
        });
        c.evaluate(0, 0, load(200.0, 0, 5));
        c.evaluate(5_000, 0, load(50.0, 0, 5)); // below enter: resets
        assert_eq!(c.evaluate(12_000, 0, load(200.0, 0, 5)), None);
        assert!(c.evaluate(22_000, 0, load(200.0, 0, 5)).is_some());
    }

    #[test]
    fn hysteresis_band_does_not_flap() {
        let mut c = SurgeController::new(SurgePolicy {
            calendar: vec![],
            auto: Some(trigger()),
        });
        c.evaluate(0, 0, load(0.0, 100, 5));
        assert!(c.evaluate(10_000, 0, load(0.0, 100, 5)).unwrap().on);
        // Between exit and enter: stays on, however long.
        for t in (20_000..400_000).step_by(10_000) {
            assert_eq!(c.evaluate(t, 0, load(60.0, 20, 5)), None);
        }
        // Below both exit thresholds, held, after the dwell: off.
        c.evaluate(400_000, 0, load(10.0, 2, 5));
        let s = c.evaluate(410_000, 0, load(10.0, 2, 5)).unwrap();
        assert!(!s.on);
    }

    #[test]
    fn dwell_limits_how_soon_auto_switches_back() {
        let mut t = trigger();
        t.hold_ms = 0;
        let mut c = SurgeController::new(SurgePolicy {
            calendar: vec![],
            auto: Some(t),
        });
        assert!(c.evaluate(0, 0, load(500.0, 0, 1)).unwrap().on);
        assert_eq!(c.evaluate(1_000, 0, load(0.0, 0, 10)), None);
        assert!(!c.evaluate(60_000, 0, load(0.0, 0, 10)).unwrap().on);
    }

    #[test]
    fn tenant_load_takes_the_worst_wait_and_sums_the_rest() {
        let l = tenant_load([
            QueueLoad {
                expected_wait_secs: 30.0,
                waiting: 4,
                available: 1,
            },
            QueueLoad {
                expected_wait_secs: 90.0,
                waiting: 6,
                available: 0,
            },
        ]);
        assert_eq!(l, load(90.0, 10, 1));
        assert_eq!(tenant_load([]), Load::default());
    }

    #[test]
    fn no_free_operator_counts_waiting_calls() {
        assert_eq!(load(0.0, 7, 0).waiting_per_available(), 7.0);
        assert_eq!(load(0.0, 8, 4).waiting_per_available(), 2.0);
    }
}
