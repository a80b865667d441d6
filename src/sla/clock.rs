//! Evaluating a request's clocks at an instant: [`evaluate`] and [`next_change`].

use jiff::Timestamp;

use super::calendar::{secs_of, timestamp, BusinessCalendar};
use super::rules::{Budget, SlaRules};
use super::types::{Channel, Priority, RequestKind};

/// A stretch of time the request waited for the customer: from the moment it was put in
/// that state until the customer answered (`None`: still waiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// When the request started waiting for the customer.
    pub from: Timestamp,
    /// When the customer answered; `None` while still waiting.
    pub until: Option<Timestamp>,
}

/// What the clocks need to know about one request. Plain data: the request registry fills
/// it, [`evaluate`] reads it. Facts dated after the `now` given to [`evaluate`] are taken as
/// not having happened yet, so a past state can be recomputed with an earlier `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    /// When the request was registered (C2); every clock of an ordinary request starts here.
    pub registered_at: Timestamp,
    /// Where it came in.
    pub channel: Channel,
    /// Its priority (the current one: a change of priority re-times the resolution clock
    /// from registration).
    pub priority: Priority,
    /// Ordinary request or catalogue-card moderation.
    pub kind: RequestKind,
    /// The first answer to the customer (a reply, or the call-back of C5).
    pub first_answer_at: Option<Timestamp>,
    /// When it was resolved (for a card: accepted).
    pub resolved_at: Option<Timestamp>,
    /// Times it waited for the customer, in any order; overlaps are merged.
    pub waiting_for_customer: Vec<Pause>,
    /// Moderation: the card's submission and each resubmission after a return, in any order.
    /// Empty means submitted at registration.
    pub submissions: Vec<Timestamp>,
    /// Moderation: each time the card was returned to the customer for an error.
    pub returns: Vec<Timestamp>,
}

impl RequestFacts {
    /// A new request: no answer, no pause, no moderation history.
    pub fn new(
        registered_at: Timestamp,
        channel: Channel,
        priority: Priority,
        kind: RequestKind,
    ) -> RequestFacts {
        RequestFacts {
            registered_at,
            channel,
            priority,
            kind,
            first_answer_at: None,
            resolved_at: None,
            waiting_for_customer: Vec::new(),
            submissions: Vec::new(),
            returns: Vec::new(),
        }
    }
}

/// Which published rule a clock follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockRule {
    /// C4: first answer within working minutes.
    FirstAnswer,
    /// C5: arrived outside working hours, first contact by a local time of the next working
    /// day.
    OutOfHoursContact,
    /// C6: resolution by priority.
    Resolution,
    /// C7: card moderation, per (re)submission.
    Moderation,
}

/// How a clock counts its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counting {
    /// Only working time counts.
    Working,
    /// Every second counts.
    Calendar,
}

/// Where a clock stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockState {
    /// Counting, not yet over budget.
    Running,
    /// Stopped while the request waits for the customer, not yet over budget.
    Paused,
    /// Stopped by its event (answer, resolution, moderation decision) within budget.
    Met,
    /// Over budget: the event came late, or has not come and the budget is spent.
    Breached,
}

/// One clock of a request at the evaluated instant.
///
/// Time left is counted the way the rule counts ([`Clock::counting`]): working seconds for
/// working-time rules, plain seconds otherwise. A clock is breached once more than its budget
/// has been counted, so a clock that runs out exactly at a close (say Friday 20:00) is still
/// met by an answer at the next opening, before any working second is lost; it is breached
/// from the first working second after that ([`Clock::breach_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// The rule it follows.
    pub rule: ClockRule,
    /// Working or calendar time.
    pub counting: Counting,
    /// When it started (registration, or the card's latest submission).
    pub started_at: Timestamp,
    /// Its budget in counted seconds (for day and time-of-day rules, the counted time from
    /// the start to that deadline).
    pub budget_secs: u64,
    /// When the budget is used up (time left reaches 0), pauses included. While paused: where
    /// it would be if the customer answered now. `Timestamp::MAX` if never.
    pub deadline: Timestamp,
    /// The first instant at which the clock counts as breached (more than the budget
    /// counted). The driver wakes up for it.
    pub breach_at: Timestamp,
    /// The instant from which it is near breach (at most the near-breach share of the budget
    /// left).
    pub near_breach_at: Timestamp,
    /// Where it stands.
    pub state: ClockState,
    /// Budget minus counted time at the evaluated instant (or at the stopping event):
    /// negative when over budget.
    pub left_secs: i64,
    /// Running or paused with at most the near-breach share of the budget left.
    pub near_breach: bool,
    /// The event that stopped it, if any.
    pub stopped_at: Option<Timestamp>,
}

impl Clock {
    /// The next instant after `now` at which this clock changes by itself (becomes near
    /// breach, or breached); `None` for clocks waiting on an event (paused, met, breached).
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        if self.state != ClockState::Running {
            return None;
        }
        [self.near_breach_at, self.breach_at]
            .into_iter()
            .find(|t| *t > now && *t != Timestamp::MAX)
    }
}

/// All clocks of one request at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlaState {
    /// C4 or C5. `None` for a phone request that came in during working hours (answered by
    /// the queue, measured by its service level), for a card, and if the calendar has no
    /// working day ahead.
    pub first_answer: Option<Clock>,
    /// C6, for ordinary requests.
    pub resolution: Option<Clock>,
    /// C7, for cards: the clock of the latest (re)submission.
    pub moderation: Option<Clock>,
    /// Which submission the moderation clock is for: 1 for the first, 2 after the first
    /// resubmission, ...; 0 when there is no moderation clock.
    pub moderation_round: u32,
}

impl SlaState {
    /// The clocks present.
    pub fn clocks(&self) -> impl Iterator<Item = &Clock> {
        [&self.first_answer, &self.resolution, &self.moderation]
            .into_iter()
            .flatten()
    }

    /// Whether any clock is breached.
    pub fn any_breached(&self) -> bool {
        self.clocks().any(|c| c.state == ClockState::Breached)
    }

    /// Whether any clock is near breach.
    pub fn any_near_breach(&self) -> bool {
        self.clocks().any(|c| c.near_breach)
    }

    /// The next instant after `now` at which any of its clocks changes by itself.
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        self.clocks().filter_map(|c| c.next_change(now)).min()
    }
}

/// The next instant after `now` at which any of these requests' clocks changes by itself
/// (becomes near breach or breached), so a driver can sleep until then, as with
/// `Acd::poll_timeout`. Paused clocks change only when the customer answers, which is an
/// input; `None` when nothing will change on its own.
pub fn next_change<'a>(
    states: impl IntoIterator<Item = &'a SlaState>,
    now: Timestamp,
) -> Option<Timestamp> {
    states
        .into_iter()
        .filter_map(|state| state.next_change(now))
        .min()
}

/// The clocks of `facts` at `now`, by `rules` and `calendar`. Pure: the same arguments give
/// the same answer.
///
/// * First answer: a request registered outside working hours follows C5 whatever its
///   channel (a phone request then is a call-back to make); inside working hours a written
///   one follows C4 and a phone call has no clock. It stops at the first answer or, if that
///   never came, at the resolution.
/// * Resolution (ordinary requests): C6 by priority, from registration, stopped by
///   `resolved_at`.
/// * Moderation (cards): C7 from the latest (re)submission, stopped by the first return or
///   acceptance after it; a resubmission starts a fresh clock.
/// * While the rules pause clocks, time waiting for the customer does not count, so a
///   deadline moves by exactly the paused counted time (working time for working-time rules).
/// * A request registered after `now` has no clocks yet.
pub fn evaluate(
    rules: &SlaRules,
    calendar: &BusinessCalendar,
    facts: &RequestFacts,
    now: Timestamp,
) -> SlaState {
    let now = secs_of(now);
    let registered = secs_of(facts.registered_at);
    if registered > now {
        return SlaState::default();
    }
    let happened = |t: Option<Timestamp>| t.map(secs_of).filter(|t| *t <= now);
    let pauses = if rules.pause_while_waiting {
        Pauses::new(&facts.waiting_for_customer, now)
    } else {
        Pauses::default()
    };
    let engine = Engine {
        calendar,
        pauses: &pauses,
        now,
        rules,
    };
    let resolved = happened(facts.resolved_at);

    match facts.kind {
        RequestKind::Ordinary => {
            let first_answer = {
                let budget = if !calendar.is_working_at(registered) {
                    Some((
                        ClockRule::OutOfHoursContact,
                        Budget::NextWorkingDayAt(rules.out_of_hours_contact_by),
                    ))
                } else if facts.channel.is_written() {
                    Some((
                        ClockRule::FirstAnswer,
                        Budget::WorkingSeconds(rules.first_answer_working_secs),
                    ))
                } else {
                    None
                };
                let stop = [happened(facts.first_answer_at), resolved]
                    .into_iter()
                    .flatten()
                    .min();
                budget.and_then(|(rule, budget)| engine.clock(rule, budget, registered, stop))
            };
            let resolution = engine.clock(
                ClockRule::Resolution,
                rules.resolution_budget(facts.priority),
                registered,
                resolved,
            );
            SlaState {
                first_answer,
                resolution,
                moderation: None,
                moderation_round: 0,
            }
        }
        RequestKind::Moderation => {
            let submitted: Vec<i64> = facts
                .submissions
                .iter()
                .map(|t| secs_of(*t))
                .filter(|t| *t <= now)
                .collect();
            let (start, round) = match submitted.iter().max() {
                Some(latest) => (*latest, submitted.len()),
                None => (registered, 1),
            };
            let decided = facts
                .returns
                .iter()
                .map(|t| secs_of(*t))
                .chain(resolved)
                .filter(|t| *t >= start && *t <= now)
                .min();
            let moderation = engine.clock(
                ClockRule::Moderation,
                rules.moderation_budget(),
                start,
                decided,
            );
            SlaState {
                first_answer: None,
                resolution: None,
                moderation_round: if moderation.is_some() {
                    u32::try_from(round).unwrap_or(u32::MAX)
                } else {
                    0
                },
                moderation,
            }
        }
    }
}

/// Waiting-for-customer spans as Unix seconds up to `now`: sorted, merged, non-empty.
#[derive(Debug, Default)]
struct Pauses {
    spans: Vec<(i64, i64)>,
    /// The request is waiting for the customer at `now`; its span is cut at `now`, so
    /// deadlines read as if the customer answered now.
    open_now: bool,
}

impl Pauses {
    fn new(raw: &[Pause], now: i64) -> Pauses {
        let mut open_now = false;
        let mut spans: Vec<(i64, i64)> = raw
            .iter()
            .filter_map(|p| {
                let from = secs_of(p.from);
                let until = p.until.map_or(i64::MAX, secs_of);
                if from > now || until <= from {
                    return None;
                }
                if until > now {
                    open_now = true;
                }
                (from < now).then_some((from, until.min(now)))
            })
            .collect();
        if !spans.windows(2).all(|w| w[0].1 < w[1].0) {
            spans.sort_unstable();
            let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
            for (a, b) in spans {
                match merged.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            spans = merged;
        }
        Pauses { spans, open_now }
    }

    /// The pause holding instant `t`, if any.
    fn covering(&self, t: i64) -> Option<(i64, i64)> {
        self.spans.iter().copied().find(|&(a, b)| a <= t && t < b)
    }
}

/// What a clock counts: working time of the calendar, or every second.
#[derive(Clone, Copy)]
enum Measure<'a> {
    Working(&'a BusinessCalendar),
    Calendar,
}

impl Measure<'_> {
    fn between(self, from: i64, to: i64) -> i64 {
        match self {
            Measure::Working(calendar) => calendar.between(from, to),
            Measure::Calendar => (to - from).max(0),
        }
    }

    fn add(self, from: i64, n: i64) -> Option<i64> {
        match self {
            Measure::Working(calendar) => calendar.add(from, n),
            Measure::Calendar => from.checked_add(n.max(0)),
        }
    }

    fn next_counting(self, t: i64) -> Option<i64> {
        match self {
            Measure::Working(calendar) => calendar.next_working(t),
            Measure::Calendar => Some(t),
        }
    }

    fn counting(self) -> Counting {
        match self {
            Measure::Working(_) => Counting::Working,
            Measure::Calendar => Counting::Calendar,
        }
    }
}

struct Engine<'a> {
    calendar: &'a BusinessCalendar,
    pauses: &'a Pauses,
    now: i64,
    rules: &'a SlaRules,
}

impl Engine<'_> {
    /// One clock from `start` with `budget`, stopped by `stop` (already at or before now).
    fn clock(
        &self,
        rule: ClockRule,
        budget: Budget,
        start: i64,
        stop: Option<i64>,
    ) -> Option<Clock> {
        let calendar = self.calendar;
        let working = Measure::Working(calendar);
        // The measure, the budget in counted seconds, and the nominal deadline for rules set
        // as a point in time (days, time of day).
        let (measure, budget_secs, nominal) = match budget {
            Budget::CalendarSeconds(secs) => (Measure::Calendar, i64::try_from(secs).ok()?, None),
            Budget::WorkingSeconds(secs) => (working, i64::try_from(secs).ok()?, None),
            Budget::WorkingDays(days) => {
                let due = calendar.add_days(start, days)?;
                (working, calendar.between(start, due), Some(due))
            }
            Budget::CalendarDays(days) => {
                let due = calendar.add_calendar(start, days)?;
                (Measure::Calendar, due - start, Some(due))
            }
            Budget::NextWorkingDayAt(time) => {
                let due = calendar.working_day_at(start, time)?;
                (working, calendar.between(start, due), Some(due))
            }
        };
        let near_share = i64::try_from(self.rules.near_breach_share.of(budget_secs.unsigned_abs()))
            .unwrap_or(budget_secs);

        let deadline = self
            .reach(measure, start, budget_secs)
            .map(|t| nominal.map_or(t, |due| t.max(due)));
        let near_breach_at = self
            .reach(measure, start, budget_secs - near_share)
            .map(|t| deadline.map_or(t, |d| t.min(d)));
        let breach_at = deadline
            .and_then(|d| self.next_counting(measure, d))
            .and_then(|t| t.checked_add(1));

        let until = stop.map_or(self.now, |s| s.max(start));
        let counted = self.counted(measure, start, until);
        let left = budget_secs - counted;
        let state = match stop {
            Some(_) if left >= 0 => ClockState::Met,
            Some(_) => ClockState::Breached,
            None if left < 0 => ClockState::Breached,
            None if self.pauses.open_now => ClockState::Paused,
            None => ClockState::Running,
        };
        let near_breach =
            matches!(state, ClockState::Running | ClockState::Paused) && left <= near_share;
        let never = |t: Option<i64>| t.and_then(timestamp).unwrap_or(Timestamp::MAX);
        Some(Clock {
            rule,
            counting: measure.counting(),
            started_at: timestamp(start)?,
            budget_secs: budget_secs.unsigned_abs(),
            deadline: never(deadline),
            breach_at: never(breach_at),
            near_breach_at: never(near_breach_at),
            state,
            left_secs: left,
            near_breach,
            stopped_at: stop.and_then(timestamp),
        })
    }

    /// The earliest instant at which `amount` seconds have been counted since `start`,
    /// skipping pauses (an open pause as if it ended now).
    fn reach(&self, measure: Measure<'_>, start: i64, amount: i64) -> Option<i64> {
        let mut cursor = start;
        let mut left = amount.max(0);
        for &(a, b) in &self.pauses.spans {
            if b <= cursor {
                continue;
            }
            let available = measure.between(cursor, a.max(cursor));
            if available >= left {
                return measure.add(cursor, left);
            }
            left -= available;
            cursor = b;
        }
        measure.add(cursor, left)
    }

    /// The first instant at or after `t` at which counting goes on (working, not paused).
    fn next_counting(&self, measure: Measure<'_>, mut t: i64) -> Option<i64> {
        // Each round leaves one pause behind, so this ends.
        for _ in 0..=self.pauses.spans.len() {
            t = measure.next_counting(t)?;
            match self.pauses.covering(t) {
                Some((_, end)) => t = end,
                None => return Some(t),
            }
        }
        measure.next_counting(t)
    }

    /// Counted seconds in `[start, until)`.
    fn counted(&self, measure: Measure<'_>, start: i64, until: i64) -> i64 {
        let mut total = measure.between(start, until);
        for &(a, b) in &self.pauses.spans {
            let (a, b) = (a.max(start), b.min(until));
            if b > a {
                total -= measure.between(a, b);
            }
        }
        total
    }
}
