//! Named-date tests of C3-C7, in virtual time: every instant is written out.
//!
//! The calendar is the support line's (C3): Monday to Friday 08:00-20:00 Asia/Tashkent, with
//! the 2026 holidays and moved days of the government's decree (see `config/navbat.toml`).
//! Weekdays used below: 2026-03-06 Fri, 03-09 Mon (holiday, moved 8 March), 03-10 Tue,
//! 03-13 Fri, 03-14 Sat, 03-16 Mon, 03-19 Thu, 03-20 Fri (Ramazon hayit), 03-23 Mon (moved
//! Navruz), 12-11 Fri, 12-12 Sat (moved working day), 12-31 Thu (day off).

use jiff::civil::{date, Date, Weekday};
use jiff::Timestamp;

use super::*;
use crate::schedule::{ClockTime, Hours, OpeningWindow};

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Local Tashkent time.
fn t(local: &str) -> Timestamp {
    at(&format!("{local}+05:00"))
}

fn weekdays_8_to_20() -> Hours {
    Hours::Weekly(vec![OpeningWindow {
        days: vec![
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ],
        open: ClockTime::parse("08:00").unwrap(),
        close: ClockTime::parse("20:00").unwrap(),
    }])
}

fn calendar(holidays: &[Date], working_days: &[Date]) -> BusinessCalendar {
    BusinessCalendar::new(
        crate::schedule::parse_time_zone("Asia/Tashkent").unwrap(),
        &weekdays_8_to_20(),
        holidays,
        working_days,
        Weekday::Monday,
    )
}

/// The support line's 2026 calendar and 1 January 2027.
fn support() -> BusinessCalendar {
    let holidays = [
        date(2026, 1, 1),
        date(2026, 1, 2),
        date(2026, 3, 8),
        date(2026, 3, 9),
        date(2026, 3, 20),
        date(2026, 3, 21),
        date(2026, 3, 23),
        date(2026, 5, 9),
        date(2026, 5, 11),
        date(2026, 5, 27),
        date(2026, 5, 28),
        date(2026, 5, 29),
        date(2026, 8, 31),
        date(2026, 9, 1),
        date(2026, 10, 1),
        date(2026, 12, 8),
        date(2026, 12, 31),
        date(2027, 1, 1),
    ];
    calendar(&holidays, &[date(2026, 12, 12)])
}

fn request(registered: &str, channel: Channel, priority: Priority) -> RequestFacts {
    RequestFacts::new(t(registered), channel, priority, RequestKind::Ordinary)
}

fn eval(facts: &RequestFacts, now: &str) -> SlaState {
    evaluate(&SlaRules::default(), &support(), facts, t(now))
}

fn first(state: &SlaState) -> Clock {
    state.first_answer.expect("a first-answer clock")
}

fn resolution(state: &SlaState) -> Clock {
    state.resolution.expect("a resolution clock")
}

#[test]
fn c4_web_request_on_friday_1955_before_a_monday_holiday() {
    let mut facts = request("2026-03-06T19:55:00", Channel::Web, Priority::Normal);
    let state = eval(&facts, "2026-03-06T19:55:00");
    let clock = first(&state);
    assert_eq!(clock.rule, ClockRule::FirstAnswer);
    assert_eq!(clock.counting, Counting::Working);
    assert_eq!(clock.budget_secs, 600);
    // Five minutes on Friday; Monday 9 March is a holiday; five more on Tuesday.
    assert_eq!(clock.deadline, t("2026-03-10T08:05:00"));
    assert_eq!(clock.near_breach_at, t("2026-03-10T08:03:00"));
    assert_eq!(clock.breach_at, t("2026-03-10T08:05:01"));
    assert_eq!(clock.state, ClockState::Running);
    assert_eq!(clock.left_secs, 600);

    // Over the long weekend nothing is counted after Friday 20:00.
    let clock = first(&eval(&facts, "2026-03-09T12:00:00"));
    assert_eq!((clock.state, clock.left_secs), (ClockState::Running, 300));
    assert!(!clock.near_breach);
    let clock = first(&eval(&facts, "2026-03-10T08:04:00"));
    assert_eq!(clock.left_secs, 60);
    assert!(clock.near_breach);

    facts.first_answer_at = Some(t("2026-03-10T08:04:30"));
    let clock = first(&eval(&facts, "2026-03-10T09:00:00"));
    assert_eq!((clock.state, clock.left_secs), (ClockState::Met, 30));
    assert!(!clock.near_breach);

    facts.first_answer_at = Some(t("2026-03-10T08:06:00"));
    let clock = first(&eval(&facts, "2026-03-10T09:00:00"));
    assert_eq!((clock.state, clock.left_secs), (ClockState::Breached, -60));
}

#[test]
fn c4_budget_running_out_at_the_close_is_breached_only_when_work_resumes() {
    let facts = request("2026-03-10T19:50:00", Channel::Email, Priority::Normal);
    let clock = first(&eval(&facts, "2026-03-10T23:00:00"));
    assert_eq!(clock.deadline, t("2026-03-10T20:00:00"));
    assert_eq!(clock.breach_at, t("2026-03-11T08:00:01"));
    assert_eq!((clock.state, clock.left_secs), (ClockState::Running, 0));
    assert!(clock.near_breach);
    assert_eq!(
        clock.next_change(t("2026-03-10T23:00:00")),
        Some(t("2026-03-11T08:00:01"))
    );
    let clock = first(&eval(&facts, "2026-03-11T08:00:01"));
    assert_eq!((clock.state, clock.left_secs), (ClockState::Breached, -1));

    let mut answered = facts.clone();
    answered.first_answer_at = Some(t("2026-03-11T08:00:00"));
    assert_eq!(
        first(&eval(&answered, "2026-03-11T09:00:00")).state,
        ClockState::Met
    );
}

#[test]
fn c5_request_on_saturday_is_contacted_by_10_on_monday() {
    let facts = request("2026-03-14T14:00:00", Channel::Telegram, Priority::Normal);
    let clock = first(&eval(&facts, "2026-03-14T14:00:00"));
    assert_eq!(clock.rule, ClockRule::OutOfHoursContact);
    assert_eq!(clock.deadline, t("2026-03-16T10:00:00"));
    // Two working hours (08:00-10:00) of budget; near breach at 20 % of them left.
    assert_eq!(clock.budget_secs, 7200);
    assert_eq!(clock.near_breach_at, t("2026-03-16T09:36:00"));
    assert_eq!(clock.breach_at, t("2026-03-16T10:00:01"));
}

#[test]
fn c5_after_a_friday_evening_before_a_holiday_waits_for_tuesday() {
    let facts = request("2026-03-06T20:30:00", Channel::Email, Priority::Normal);
    let clock = first(&eval(&facts, "2026-03-06T20:30:00"));
    assert_eq!(clock.rule, ClockRule::OutOfHoursContact);
    assert_eq!(clock.deadline, t("2026-03-10T10:00:00"));
}

#[test]
fn the_edges_of_working_hours_0759_0800_1959_and_2000() {
    let deadline = |registered: &str| {
        let clock = first(&eval(
            &request(registered, Channel::Email, Priority::Normal),
            registered,
        ));
        (clock.rule, clock.deadline)
    };
    // 07:59 is outside: C5, contact by 10:00 the same day.
    assert_eq!(
        deadline("2026-03-10T07:59:00"),
        (ClockRule::OutOfHoursContact, t("2026-03-10T10:00:00"))
    );
    // 08:00 is inside: C4.
    assert_eq!(
        deadline("2026-03-10T08:00:00"),
        (ClockRule::FirstAnswer, t("2026-03-10T08:10:00"))
    );
    // One second before the close: one second today, the rest tomorrow.
    assert_eq!(
        deadline("2026-03-10T19:59:59"),
        (ClockRule::FirstAnswer, t("2026-03-11T08:09:59"))
    );
    // 20:00 exactly is outside: C5, 10:00 of the next working day.
    assert_eq!(
        deadline("2026-03-10T20:00:00"),
        (ClockRule::OutOfHoursContact, t("2026-03-11T10:00:00"))
    );
}

#[test]
fn phone_calls_in_hours_have_no_first_answer_clock_out_of_hours_a_callback() {
    let state = eval(
        &request("2026-03-10T10:00:00", Channel::Phone, Priority::Normal),
        "2026-03-10T10:00:00",
    );
    assert!(state.first_answer.is_none());
    assert!(state.resolution.is_some());
    let state = eval(
        &request("2026-03-14T11:00:00", Channel::Phone, Priority::Normal),
        "2026-03-14T11:00:00",
    );
    let clock = first(&state);
    assert_eq!(clock.rule, ClockRule::OutOfHoursContact);
    assert_eq!(clock.deadline, t("2026-03-16T10:00:00"));
}

#[test]
fn c6_critical_counts_calendar_hours_over_the_weekend() {
    let facts = request("2026-03-13T18:00:00", Channel::Phone, Priority::Critical);
    let clock = resolution(&eval(&facts, "2026-03-13T18:00:00"));
    assert_eq!(clock.counting, Counting::Calendar);
    assert_eq!(clock.deadline, t("2026-03-13T22:00:00"));
    assert_eq!(clock.breach_at, t("2026-03-13T22:00:01"));
    assert_eq!(clock.near_breach_at, t("2026-03-13T21:12:00"));
    let clock = resolution(&eval(&facts, "2026-03-14T09:00:00"));
    assert_eq!(
        (clock.state, clock.left_secs),
        (ClockState::Breached, -11 * 3600)
    );
    // The same request at high priority: 2 working hours on Friday, 6 on Monday.
    let facts = request("2026-03-13T18:00:00", Channel::Phone, Priority::High);
    let clock = resolution(&eval(&facts, "2026-03-14T09:00:00"));
    assert_eq!(clock.deadline, t("2026-03-16T14:00:00"));
    assert_eq!(
        (clock.state, clock.left_secs),
        (ClockState::Running, 6 * 3600)
    );
}

#[test]
fn c6_normal_is_24_working_hours() {
    let facts = request("2026-03-10T10:00:00", Channel::Email, Priority::Normal);
    // Tuesday 10 h, Wednesday 12 h, Thursday 2 h.
    let clock = resolution(&eval(&facts, "2026-03-10T10:00:00"));
    assert_eq!(clock.deadline, t("2026-03-12T10:00:00"));
    assert_eq!(clock.budget_secs, 24 * 3600);
}

#[test]
fn c6_low_is_two_working_days_counted_over_holidays() {
    // Friday: Monday 9 March is a holiday, so the two days are Tuesday and Wednesday.
    let facts = request("2026-03-06T15:00:00", Channel::Email, Priority::Low);
    let clock = resolution(&eval(&facts, "2026-03-06T15:00:00"));
    assert_eq!(clock.deadline, t("2026-03-11T20:00:00"));
    assert_eq!(clock.counting, Counting::Working);
    // Friday 5 h + Tuesday 12 h + Wednesday 12 h.
    assert_eq!(clock.budget_secs, 29 * 3600);
    // Thursday before Ramazon hayit (Fri), the weekend and the moved Navruz (Mon).
    let facts = request("2026-03-19T09:00:00", Channel::Email, Priority::Low);
    let clock = resolution(&eval(&facts, "2026-03-19T09:00:00"));
    assert_eq!(clock.deadline, t("2026-03-25T20:00:00"));
    // Registered on a Saturday: Monday and Tuesday.
    let facts = request("2026-03-14T09:00:00", Channel::Web, Priority::Low);
    let clock = resolution(&eval(&facts, "2026-03-14T09:00:00"));
    assert_eq!(clock.deadline, t("2026-03-17T20:00:00"));
}

#[test]
fn c7_moderation_returned_and_resubmitted_gets_a_fresh_five_days() {
    let mut card = RequestFacts::new(
        t("2026-03-02T10:00:00"),
        Channel::Web,
        Priority::Normal,
        RequestKind::Moderation,
    );
    card.submissions = vec![t("2026-03-02T10:00:00")];
    let state = eval(&card, "2026-03-02T10:00:00");
    assert!(state.first_answer.is_none() && state.resolution.is_none());
    assert_eq!(state.moderation_round, 1);
    let clock = state.moderation.unwrap();
    assert_eq!(clock.rule, ClockRule::Moderation);
    assert_eq!(clock.counting, Counting::Calendar);
    // Five calendar days after Monday 2 March: the end of Saturday 7 March.
    assert_eq!(clock.deadline, t("2026-03-08T00:00:00"));

    // Returned for an error on Wednesday: round 1 met.
    card.returns = vec![t("2026-03-04T12:00:00")];
    let state = eval(&card, "2026-03-09T12:00:00");
    assert_eq!(state.moderation.unwrap().state, ClockState::Met);
    assert_eq!(state.moderation_round, 1);

    // Resubmitted on Tuesday 10 March: five fresh days, to the end of Sunday 15 March.
    card.submissions.push(t("2026-03-10T09:00:00"));
    let state = eval(&card, "2026-03-10T09:00:00");
    assert_eq!(state.moderation_round, 2);
    let clock = state.moderation.unwrap();
    assert_eq!(clock.started_at, t("2026-03-10T09:00:00"));
    assert_eq!(clock.deadline, t("2026-03-16T00:00:00"));
    assert_eq!(clock.state, ClockState::Running);
    let clock = eval(&card, "2026-03-16T00:00:01").moderation.unwrap();
    assert_eq!(clock.state, ClockState::Breached);
    // Accepted in time.
    card.resolved_at = Some(t("2026-03-13T16:00:00"));
    let clock = eval(&card, "2026-03-20T00:00:00").moderation.unwrap();
    assert_eq!(clock.state, ClockState::Met);

    // The same with working days: Wed, Thu, Fri, Mon, Tue.
    let rules = SlaRules {
        moderation_day_kind: DayKind::Working,
        ..SlaRules::default()
    };
    card.resolved_at = None;
    let clock = evaluate(&rules, &support(), &card, t("2026-03-10T09:00:00"))
        .moderation
        .unwrap();
    assert_eq!(clock.counting, Counting::Working);
    assert_eq!(clock.deadline, t("2026-03-17T20:00:00"));
}

#[test]
fn pause_while_waiting_for_the_customer_extends_by_the_paused_working_time() {
    let mut facts = request("2026-03-10T10:00:00", Channel::Email, Priority::Normal);
    facts.first_answer_at = Some(t("2026-03-10T10:05:00"));
    // Waiting from Tuesday 12:00 (8 working hours left that day) until Wednesday 09:00 (1).
    facts.waiting_for_customer = vec![Pause {
        from: t("2026-03-10T12:00:00"),
        until: None,
    }];
    let state = eval(&facts, "2026-03-10T15:00:00");
    let clock = resolution(&state);
    assert_eq!(clock.state, ClockState::Paused);
    assert_eq!(clock.left_secs, 22 * 3600);
    // As if the customer answered now: 5 h today, 12 h Wednesday, 5 h Thursday.
    assert_eq!(clock.deadline, t("2026-03-12T13:00:00"));
    assert_eq!(state.next_change(t("2026-03-10T15:00:00")), None);
    assert_eq!(first(&state).state, ClockState::Met);

    facts.waiting_for_customer[0].until = Some(t("2026-03-11T09:00:00"));
    let clock = resolution(&eval(&facts, "2026-03-11T10:00:00"));
    assert_eq!(clock.state, ClockState::Running);
    // Thursday 10:00 plus the 9 paused working hours.
    assert_eq!(clock.deadline, t("2026-03-12T19:00:00"));
    assert_eq!(clock.left_secs, (24 - 2 - 1) * 3600);

    // A tenant whose rule does not pause keeps the original deadline.
    let rules = SlaRules {
        pause_while_waiting: false,
        ..SlaRules::default()
    };
    let clock = resolution(&evaluate(
        &rules,
        &support(),
        &facts,
        t("2026-03-11T10:00:00"),
    ));
    assert_eq!(clock.deadline, t("2026-03-12T10:00:00"));

    // Waiting only over a weekend moves a working-time deadline by nothing: 4 working hours
    // on Friday, 4 on Monday...
    let mut facts = request("2026-03-13T16:00:00", Channel::Email, Priority::High);
    facts.waiting_for_customer = vec![Pause {
        from: t("2026-03-13T20:00:00"),
        until: Some(t("2026-03-16T08:00:00")),
    }];
    let clock = resolution(&eval(&facts, "2026-03-16T09:00:00"));
    assert_eq!(clock.deadline, t("2026-03-16T12:00:00"));
    assert_eq!(
        (clock.state, clock.left_secs),
        (ClockState::Running, 3 * 3600)
    );
    // ...and a round-the-clock deadline by the whole calendar time.
    let mut facts = request("2026-03-13T10:00:00", Channel::Email, Priority::Critical);
    facts.waiting_for_customer = vec![Pause {
        from: t("2026-03-13T11:00:00"),
        until: Some(t("2026-03-13T12:30:00")),
    }];
    let clock = resolution(&eval(&facts, "2026-03-13T13:00:00"));
    assert_eq!(clock.deadline, t("2026-03-13T15:30:00"));
}

#[test]
fn the_year_boundary_december_31_to_january_2() {
    // A calendar where only 1 January is a holiday: Wednesday 31 Dec 2025, Friday 2 Jan.
    let cal = calendar(&[date(2026, 1, 1)], &[]);
    let rules = SlaRules::default();
    let facts = request("2025-12-31T19:55:00", Channel::Email, Priority::Normal);
    let state = evaluate(&rules, &cal, &facts, t("2025-12-31T19:55:00"));
    assert_eq!(first(&state).deadline, t("2026-01-02T08:05:00"));
    let facts = request("2025-12-31T10:00:00", Channel::Email, Priority::Normal);
    let state = evaluate(&rules, &cal, &facts, t("2025-12-31T10:00:00"));
    // 10 h on 31 Dec, 12 h on 2 Jan, 2 h on Monday 5 Jan.
    assert_eq!(resolution(&state).deadline, t("2026-01-05T10:00:00"));
    let facts = request("2025-12-31T10:00:00", Channel::Email, Priority::Low);
    let state = evaluate(&rules, &cal, &facts, t("2025-12-31T10:00:00"));
    assert_eq!(resolution(&state).deadline, t("2026-01-05T20:00:00"));

    // The support line at the end of 2026: 31 Dec is a day off (moved from 12 Dec) and
    // 1 January 2027 a Friday, so the next working minutes are on Monday 4 January.
    let facts = request("2026-12-30T19:55:00", Channel::Web, Priority::Normal);
    assert_eq!(
        first(&eval(&facts, "2026-12-30T19:55:00")).deadline,
        t("2027-01-04T08:05:00")
    );
}

#[test]
fn a_moved_working_saturday_counts() {
    let facts = request("2026-12-11T19:55:00", Channel::Email, Priority::Normal);
    assert_eq!(
        first(&eval(&facts, "2026-12-11T19:55:00")).deadline,
        t("2026-12-12T08:05:00")
    );
    // On the moved Saturday itself the request is inside hours.
    let facts = request("2026-12-12T09:00:00", Channel::Email, Priority::Normal);
    assert_eq!(
        first(&eval(&facts, "2026-12-12T09:00:00")).rule,
        ClockRule::FirstAnswer
    );
}

#[test]
fn the_first_answer_clock_stops_at_resolution_without_an_answer() {
    let mut facts = request("2026-03-10T10:00:00", Channel::Email, Priority::Normal);
    facts.resolved_at = Some(t("2026-03-10T10:03:00"));
    let state = eval(&facts, "2026-03-10T12:00:00");
    assert_eq!(first(&state).state, ClockState::Met);
    assert_eq!(first(&state).stopped_at, Some(t("2026-03-10T10:03:00")));
    assert_eq!(resolution(&state).state, ClockState::Met);
}

#[test]
fn facts_after_now_have_not_happened_yet() {
    let mut facts = request("2026-03-10T10:00:00", Channel::Email, Priority::Normal);
    facts.first_answer_at = Some(t("2026-03-10T10:30:00"));
    let clock = first(&eval(&facts, "2026-03-10T10:05:00"));
    assert_eq!((clock.state, clock.left_secs), (ClockState::Running, 300));
    assert_eq!(eval(&facts, "2026-03-10T09:00:00"), SlaState::default());
}

#[test]
fn next_change_is_the_earliest_near_breach_or_breach_of_running_clocks() {
    let now = t("2026-03-10T10:00:00");
    let web = request("2026-03-10T09:58:00", Channel::Web, Priority::Normal);
    let critical = request("2026-03-10T08:00:00", Channel::Phone, Priority::Critical);
    let mut paused = request("2026-03-10T09:59:00", Channel::Email, Priority::Normal);
    paused.waiting_for_customer = vec![Pause {
        from: t("2026-03-10T09:59:30"),
        until: None,
    }];
    let states: Vec<SlaState> = [&web, &critical, &paused]
        .iter()
        .map(|f| eval(f, "2026-03-10T10:00:00"))
        .collect();
    // The web request's first answer is near breach at 10:06 (2 of its 10 minutes left).
    assert_eq!(next_change(&states, now), Some(t("2026-03-10T10:06:00")));
    // Critical: near breach at 11:12, breached from 12:00:01.
    assert_eq!(states[1].next_change(now), Some(t("2026-03-10T11:12:00")));
    assert_eq!(
        states[1].next_change(t("2026-03-10T11:12:00")),
        Some(t("2026-03-10T12:00:01"))
    );
    // The paused request waits for an input.
    assert_eq!(states[2].next_change(now), None);
    assert!(states[2].clocks().all(|c| c.state == ClockState::Paused));
    assert_eq!(next_change(&[] as &[SlaState], now), None);
}

#[test]
fn messy_facts_never_panic() {
    let mut facts = request("2026-03-10T10:00:00", Channel::Email, Priority::Low);
    facts.first_answer_at = Some(t("2026-03-01T00:00:00"));
    facts.waiting_for_customer = vec![
        Pause {
            from: t("2026-03-11T10:00:00"),
            until: Some(t("2026-03-10T10:00:00")),
        },
        Pause {
            from: t("2026-03-10T11:00:00"),
            until: Some(t("2026-03-10T13:00:00")),
        },
        Pause {
            from: t("2026-03-10T10:30:00"),
            until: Some(t("2026-03-10T12:00:00")),
        },
        Pause {
            from: t("2026-03-09T10:30:00"),
            until: None,
        },
        Pause {
            from: Timestamp::MAX,
            until: None,
        },
    ];
    facts.submissions = vec![Timestamp::MIN, Timestamp::MAX];
    facts.returns = vec![Timestamp::MAX];
    for now in [
        Timestamp::MIN,
        t("2026-03-10T10:00:00"),
        t("2026-03-12T10:00:00"),
        Timestamp::MAX,
    ] {
        for kind in RequestKind::ALL {
            for priority in Priority::ALL {
                let facts = RequestFacts {
                    kind,
                    priority,
                    ..facts.clone()
                };
                let state = evaluate(&SlaRules::default(), &support(), &facts, now);
                let _ = next_change([&state], now);
            }
        }
    }
    // An answer before registration counts as at registration: met with the whole budget.
    let state = eval(&facts, "2026-03-10T10:00:00");
    assert_eq!(first(&state).state, ClockState::Met);
    assert_eq!(first(&state).left_secs, 600);
    // Rules at their extremes.
    let extreme = SlaRules {
        first_answer_working_secs: u64::MAX,
        critical_calendar_secs: u64::MAX,
        high_working_secs: 0,
        normal_working_secs: u64::MAX,
        low_working_days: u32::MAX,
        moderation_days: u32::MAX,
        near_breach_share: Share::ONE,
        ..SlaRules::default()
    };
    for priority in Priority::ALL {
        let facts = request("2026-03-10T10:00:00", Channel::Web, priority);
        let _ = evaluate(&extreme, &support(), &facts, t("2026-03-11T10:00:00"));
    }
}

#[test]
fn a_round_the_clock_tenant_counts_every_second() {
    let cal = BusinessCalendar::always(crate::schedule::parse_time_zone("Asia/Tashkent").unwrap());
    assert!(cal.is_always_open());
    let facts = request("2026-03-14T23:55:00", Channel::Web, Priority::Normal);
    let state = evaluate(&SlaRules::default(), &cal, &facts, t("2026-03-14T23:55:00"));
    assert_eq!(first(&state).rule, ClockRule::FirstAnswer);
    assert_eq!(first(&state).deadline, t("2026-03-15T00:05:00"));
    assert_eq!(resolution(&state).deadline, t("2026-03-15T23:55:00"));
    let low = request("2026-03-14T23:55:00", Channel::Web, Priority::Low);
    let state = evaluate(&SlaRules::default(), &cal, &low, t("2026-03-14T23:55:00"));
    // The end of the second day after Saturday.
    assert_eq!(resolution(&state).deadline, t("2026-03-17T00:00:00"));
}
