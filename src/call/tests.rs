//! Unit tests of the call core, in virtual time, against a simulated driver.

use super::*;
use crate::acd::{Millis, OperatorId, Outcome, QueueId};
use crate::config::Config;
use crate::events::{CallOutcome, EventKind};
use crate::ivr::{IvrMenu, IvrSession};
use crate::media::{HoldBy, MonitorMode};
use crate::sip::sdp::Negotiated;

const ANNOUNCE_EVERY: u64 = 45_000;
const CALLBACK_AFTER: u64 = 30_000;

fn dtm_menu() -> IvrMenu {
    Config::embedded_default()
        .tenant("dtm")
        .expect("the demo has tenant dtm")
        .ivr
        .clone()
}

fn setup() -> CallSetup {
    CallSetup {
        call_ref: "c7".into(),
        tenant: "dtm".into(),
        greeting_barge_in: true,
        announce_every_ms: Some(ANNOUNCE_EVERY),
        callback_offer: Some(CallbackOfferSpec {
            after_ms: CALLBACK_AFTER,
            digit: '1',
        }),
        door: None,
    }
}

const CHOICE_WINDOW: u64 = 6_000;

/// The dtm setup with the door policy (`[tenant.surge.door]`, SMS on key 2).
fn door_setup() -> CallSetup {
    CallSetup {
        door: Some(DoorSpec {
            sms_digit: '2',
            choice_window_ms: CHOICE_WINDOW,
        }),
        ..setup()
    }
}

fn media() -> Negotiated {
    Negotiated {
        codec: crate::media::Codec::Pcmu,
        telephone_event: Some(101),
        remote: None,
    }
}

/// Drives a [`CallCore`] the way `CallActor` does: answers the actions that ask for an
/// answer at once, and records the rest.
struct Driver {
    call: CallCore,
    now: Millis,
    surge: bool,
    /// Whether the 200 to the caller goes out.
    answer_ok: bool,
    /// Ringing fails with this status.
    ring_fails: Option<u16>,
    /// The last Play reported played.
    reported: PlayId,
    /// The Russian queue exists (else routing there fails).
    knows_ru: bool,
    log: Vec<Action>,
}

impl Driver {
    fn new(setup: CallSetup) -> Driver {
        Driver {
            call: CallCore::new(setup),
            now: Millis::from_secs(1000),
            surge: false,
            answer_ok: true,
            ring_fails: None,
            reported: PlayId(0),
            knows_ru: false,
            log: Vec::new(),
        }
    }

    /// An open line, early media, a media session and the dtm menu.
    fn arrived() -> Driver {
        let mut d = Driver::new(setup());
        d.arrive(true, Some(CallerMedia::Early), true);
        d
    }

    fn arrive(&mut self, open: bool, media: Option<CallerMedia>, session: bool) -> Vec<Action> {
        let ivr = open.then(|| Box::new(IvrSession::start_in_surge(&dtm_menu(), None, self.now.0)));
        self.input(Input::Arrived(Arrival {
            open,
            media,
            session,
            ivr,
        }))
    }

    fn drain(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(action) = self.call.poll_action() {
            let answer = match &action {
                Action::AnswerCaller => Some(Input::CallerAnswered { ok: self.answer_ok }),
                Action::Route { queue } => Some(match queue.as_str() {
                    "dtm-uz" => Input::Enqueued {
                        queue: QueueId(0),
                        name: queue.clone(),
                        priority: 0,
                    },
                    "dtm-ru" if self.knows_ru => Input::Enqueued {
                        queue: QueueId(1),
                        name: queue.clone(),
                        priority: 0,
                    },
                    _ => Input::RouteFailed,
                }),
                Action::Ring { attempt, .. } => self.ring_fails.map(|status| Input::RingFailed {
                    attempt: *attempt,
                    status,
                }),
                _ => None,
            };
            out.push(action);
            if let Some(input) = answer {
                self.call.handle_input(self.now, input);
            }
        }
        self.log.extend(out.iter().cloned());
        out
    }

    fn input(&mut self, input: Input) -> Vec<Action> {
        if let Input::Played { id, .. } = input {
            self.reported = self.reported.max(id);
        }
        self.call.handle_input(self.now, input);
        self.drain()
    }

    /// Moves time on by `ms`, firing each deadline at its own instant.
    fn advance(&mut self, ms: u64) -> Vec<Action> {
        let end = self.now.plus(ms);
        let mut out = Vec::new();
        while let Some(due) = self.call.poll_timeout().filter(|&t| t <= end) {
            self.now = self.now.max(due);
            self.call.handle_timeout(self.now, self.surge);
            out.extend(self.drain());
        }
        self.now = end;
        out
    }

    /// The media session reports each queued prompt played, in order.
    fn played_all(&mut self) -> Vec<Action> {
        let last = self
            .log
            .iter()
            .filter_map(|a| match a {
                Action::Play { id, .. } => Some(id.0),
                _ => None,
            })
            .max()
            .expect("something was played");
        let mut out = Vec::new();
        for id in self.reported.0 + 1..=last {
            out.extend(self.input(Input::Played {
                id: PlayId(id),
                idle: id == last,
            }));
        }
        out
    }

    fn key(&mut self, digit: char) -> Vec<Action> {
        self.input(Input::Digit {
            digit,
            via: "rfc4733",
        })
    }

    /// Greeting, Uzbek, results: the call is queued in dtm-uz.
    fn queued() -> Driver {
        let mut d = Driver::arrived();
        d.played_all();
        d.key('1');
        d.played_all();
        d.key('2');
        assert_eq!(d.call.phase(), CallPhase::Queued);
        d
    }

    fn offer(&mut self, operator: u32) -> Vec<Action> {
        self.input(Input::Offered {
            operator: OperatorId(operator),
            ext: format!("100{}", operator + 1),
        })
    }

    fn withdraw(&mut self, operator: u32) -> Vec<Action> {
        self.input(Input::Withdrawn {
            operator: OperatorId(operator),
            ext: format!("100{}", operator + 1),
        })
    }

    fn answered_by(&mut self, attempt: u64) -> Vec<Action> {
        self.input(Input::PhoneAnswered {
            attempt: Attempt(attempt),
            sdp: None,
        })
    }

    /// Queued, offered to operator 0 (1001) who answers, the caller's ACK in.
    fn talking() -> Driver {
        let mut d = Driver::queued();
        d.offer(0);
        d.answered_by(1);
        d.input(Input::CallerConfirmed);
        assert_eq!(d.call.phase(), CallPhase::Bridged);
        d
    }

    fn events(&self) -> Vec<&EventKind> {
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::Emit(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.events().iter().map(|e| e.name()).collect()
    }

    /// The kinds of the events after the first `call_enqueued` (the offer timeline).
    fn timeline(&self) -> Vec<&'static str> {
        let kinds = self.kinds();
        let from = kinds
            .iter()
            .position(|k| *k == "call_enqueued")
            .unwrap_or(0);
        kinds[from..]
            .iter()
            .copied()
            .filter(|k| *k != "dtmf_received")
            .collect()
    }

    fn acd(&self) -> Vec<AcdRequest> {
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::Acd(r) => Some(*r),
                _ => None,
            })
            .collect()
    }

    fn finished(&self) -> (CallOutcome, String, Option<String>, u64, u64) {
        let mut found = self.events().into_iter().filter_map(|e| match e {
            EventKind::CallFinished {
                outcome,
                ended_by,
                operator,
                wait_ms,
                talk_ms,
                ..
            } => Some((
                *outcome,
                ended_by.clone(),
                operator.clone(),
                *wait_ms,
                *talk_ms,
            )),
            _ => None,
        });
        let first = found.next().expect("call_finished");
        assert!(
            found.next().is_none(),
            "two call_finished: {:?}",
            self.kinds()
        );
        first
    }

    /// Ended with `outcome` by `by`, with no timer left and nothing after `Finished`.
    fn assert_ended(&self, outcome: CallOutcome, by: &str) {
        assert_eq!(self.call.ending().map(|e| e.outcome), Some(outcome));
        let (o, ended_by, ..) = self.finished();
        assert_eq!((o, ended_by.as_str()), (outcome, by), "{:?}", self.kinds());
        assert_eq!(self.call.ending().map(|e| e.by), Some(by));
        assert_eq!(self.call.phase(), CallPhase::Ended);
        assert_eq!(self.call.poll_timeout(), None, "a timer outlived the call");
        assert!(
            matches!(self.log.last(), Some(Action::Finished)),
            "Finished is not the last action: {:?}",
            self.log.last()
        );
        assert_eq!(
            self.log
                .iter()
                .filter(|a| matches!(a, Action::Finished))
                .count(),
            1
        );
    }
}

fn has(actions: &[Action], pred: impl Fn(&Action) -> bool) -> bool {
    actions.iter().any(pred)
}

// ----- the IVR and the caller's answer --------------------------------------------------

#[test]
fn greeting_plays_as_early_media_and_its_end_answers_the_caller() {
    let mut d = Driver::new(setup());
    let actions = d.arrive(true, Some(CallerMedia::Early), true);
    assert!(matches!(
        &actions[0],
        Action::Play { id: PlayId(1), prompt: Prompt::Ivr { stem, language: None } } if stem == "greeting"
    ));
    assert!(!has(&actions, |a| matches!(a, Action::AnswerCaller)));
    assert_eq!(d.call.phase(), CallPhase::Ivr);
    // The digit timer waits for the prompts.
    assert_eq!(d.call.poll_timeout(), None);
    let actions = d.input(Input::Played {
        id: PlayId(1),
        idle: false,
    });
    assert!(matches!(actions[..], [Action::AnswerCaller]));
    d.played_all();
    assert_eq!(d.call.poll_timeout(), Some(d.now.plus(6_000)));
}

/// The short surge greeting (`[tenant.surge] greeting = true`) answers the caller when it
/// has played, as the greeting does; before, its caller stayed in early media until an
/// operator answered.
#[test]
fn the_surge_greeting_end_answers_the_caller() {
    let mut d = Driver::new(setup());
    let surge = crate::ivr::SurgeMenu {
        greeting: true,
        ..Default::default()
    };
    let ivr = Box::new(IvrSession::start_in_surge(
        &dtm_menu(),
        Some(surge),
        d.now.0,
    ));
    let actions = d.input(Input::Arrived(Arrival {
        open: true,
        media: Some(CallerMedia::Early),
        session: true,
        ivr: Some(ivr),
    }));
    assert!(matches!(
        &actions[0],
        Action::Play { id: PlayId(1), prompt: Prompt::Ivr { stem, language: None } } if stem == "surge-greeting"
    ));
    assert!(!has(&actions, |a| matches!(a, Action::AnswerCaller)));
    let actions = d.input(Input::Played {
        id: PlayId(1),
        idle: false,
    });
    assert!(matches!(actions[..], [Action::AnswerCaller]));
}

#[test]
fn a_key_during_the_greeting_cuts_it_and_answers_before_the_menu_goes_on() {
    let mut d = Driver::arrived();
    let actions = d.key('1');
    let cut = actions
        .iter()
        .position(|a| matches!(a, Action::StopPrompts))
        .expect("prompts stopped");
    let answer = actions
        .iter()
        .position(|a| matches!(a, Action::AnswerCaller))
        .expect("answered");
    let topic = actions
        .iter()
        .position(|a| matches!(a, Action::Play { prompt: Prompt::Ivr { stem, .. }, .. } if stem == "choose-topic"))
        .expect("the topic menu follows");
    assert!(cut < answer && answer < topic, "{actions:?}");
    assert_eq!(d.kinds(), ["dtmf_received", "ivr_step"]);
}

#[test]
fn a_200_that_cannot_be_sent_fails_the_call() {
    let mut d = Driver::arrived();
    d.answer_ok = false;
    d.played_all();
    d.assert_ended(CallOutcome::Failed, "router");
}

#[test]
fn caller_abandons_in_the_ivr() {
    let mut d = Driver::arrived();
    d.played_all();
    d.input(Input::CallerGone { cause: "bye" });
    d.assert_ended(CallOutcome::Abandoned, "caller");
    assert!(d.acd().is_empty(), "the ACD never knew the call");
    // Late inputs change nothing.
    assert!(d.key('1').is_empty());
    assert!(d.advance(60_000).is_empty());
}

#[test]
fn no_input_takes_the_defaults_after_the_retries_and_queues() {
    let mut d = Driver::arrived();
    for _ in 0..10 {
        d.played_all();
        d.advance(6_000);
        if d.call.phase() == CallPhase::Queued {
            break;
        }
    }
    assert_eq!(d.call.phase(), CallPhase::Queued, "{:?}", d.kinds());
    assert!(d.events().iter().any(|e| matches!(
        e,
        EventKind::CallEnqueued { language, topic, .. } if language == "uz" && topic.as_deref() == Some("other")
    )));
}

#[test]
fn an_unknown_queue_fails_the_call() {
    let mut d = Driver::arrived();
    d.played_all();
    d.key('2'); // Russian: the simulated driver knows only dtm-uz
    d.played_all();
    d.key('2');
    assert!(has(&d.log, |a| matches!(a, Action::HangUpCaller)));
    d.assert_ended(CallOutcome::Failed, "router");
}

#[test]
fn a_closed_line_plays_the_hours_as_early_media_then_refuses_480() {
    let mut d = Driver::new(setup());
    let actions = d.arrive(false, Some(CallerMedia::Early), true);
    assert!(matches!(
        actions[..],
        [Action::Play {
            prompt: Prompt::Closed,
            ..
        }]
    ));
    assert_eq!(d.call.phase(), CallPhase::Leaving);
    // Keys change nothing while it plays.
    d.key('1');
    assert!(!has(&d.log, |a| matches!(a, Action::AnswerCaller)));
    let actions = d.played_all();
    assert!(matches!(actions[0], Action::RejectCaller { status: 480 }));
    d.assert_ended(CallOutcome::Closed, "router");
}

#[test]
fn a_closed_line_without_early_media_is_refused_at_once() {
    let mut d = Driver::new(setup());
    d.arrive(false, None, false);
    assert!(matches!(d.log[0], Action::RejectCaller { status: 480 }));
    d.assert_ended(CallOutcome::Closed, "router");
}

// ----- the queue and the offers -----------------------------------------------------------

#[test]
fn answered_call_bridges_records_and_ends_when_the_caller_hangs_up() {
    let mut d = Driver::queued();
    assert!(has(&d.log, |a| matches!(
        a,
        Action::Play {
            prompt: Prompt::PleaseWait { .. },
            ..
        }
    )));
    assert!(has(&d.log, |a| matches!(a, Action::Music(true))));
    assert!(has(&d.log, |a| matches!(
        a,
        Action::Enqueue { queue: QueueId(0), topic: Some(t), .. } if t == "results"
    )));
    let actions = d.offer(0);
    assert!(has(&actions, |a| matches!(
        a,
        Action::Ring {
            operator: OperatorId(0),
            attempt: Attempt(1)
        }
    )));
    assert_eq!(d.call.phase(), CallPhase::Offering);
    d.advance(5_000);
    let actions = d.answered_by(1);
    assert!(has(&actions, |a| matches!(
        a,
        Action::Bridge {
            attempt: Attempt(1),
            ..
        }
    )));
    d.input(Input::CallerConfirmed);
    assert_eq!(d.call.talking_with(), Some("1001"));
    d.advance(60_000);
    let actions = d.input(Input::CallerGone { cause: "bye" });
    assert!(has(&actions, |a| matches!(
        a,
        Action::HangUpPhone {
            attempt: Attempt(1)
        }
    )));
    assert_eq!(
        d.acd(),
        [
            AcdRequest::Answered {
                operator: OperatorId(0)
            },
            AcdRequest::CallEnded
        ]
    );
    assert_eq!(
        d.timeline(),
        [
            "call_enqueued",
            "call_offered",
            "call_answered",
            "call_finished"
        ]
    );
    d.assert_ended(CallOutcome::Answered, "caller");
    let (_, _, operator, wait_ms, talk_ms) = d.finished();
    assert_eq!(operator.as_deref(), Some("1001"));
    assert_eq!((wait_ms, talk_ms), (5_000, 60_000));
}

#[test]
fn caller_abandons_in_the_queue_while_a_phone_rings() {
    let mut d = Driver::queued();
    d.offer(0);
    d.advance(3_000);
    let actions = d.input(Input::CallerGone { cause: "bye" });
    assert!(has(&actions, |a| matches!(
        a,
        Action::HangUpPhone {
            attempt: Attempt(1)
        }
    )));
    assert_eq!(d.acd(), [AcdRequest::CallerLeft]);
    // As the ACD reported it: the withdrawal after the end.
    assert_eq!(
        d.timeline(),
        [
            "call_enqueued",
            "call_offered",
            "call_finished",
            "offer_withdrawn"
        ]
    );
    d.assert_ended(CallOutcome::Abandoned, "caller");
    assert_eq!(d.finished().3, 3_000);
}

#[test]
fn max_wait_times_the_call_out() {
    let mut d = Driver::queued();
    d.advance(10_000);
    let actions = d.input(Input::AcdFinished(Outcome::TimedOut));
    assert!(has(&actions, |a| matches!(a, Action::HangUpCaller)));
    d.assert_ended(CallOutcome::TimedOut, "router");
    assert!(d.acd().is_empty(), "the ACD let the call go itself");
}

#[test]
fn ring_timeout_requeues_and_the_next_operator_answers() {
    let mut d = Driver::queued();
    d.offer(0);
    d.advance(20_000);
    let actions = d.withdraw(0);
    assert!(has(&actions, |a| matches!(
        a,
        Action::HangUpPhone {
            attempt: Attempt(1)
        }
    )));
    d.input(Input::Requeued {
        operator: OperatorId(0),
        ext: "1001".into(),
    });
    d.offer(1);
    // The first phone's 487 after our CANCEL is not a decline.
    assert!(d
        .input(Input::PhoneFailed {
            attempt: Attempt(1),
            status: 487
        })
        .is_empty());
    d.answered_by(2);
    d.input(Input::PhoneGone {
        attempt: Attempt(2),
        cause: "bye",
    });
    assert_eq!(
        d.timeline(),
        [
            "call_enqueued",
            "call_offered",
            "offer_withdrawn",
            "call_requeued",
            "call_offered",
            "call_answered",
            "call_finished"
        ]
    );
    assert_eq!(d.finished().2.as_deref(), Some("1002"));
}

#[test]
fn a_declined_or_unreachable_offer_goes_back_to_the_acd() {
    let mut d = Driver::queued();
    d.offer(0);
    d.input(Input::PhoneFailed {
        attempt: Attempt(1),
        status: 486,
    });
    d.ring_fails = Some(480);
    d.offer(1);
    assert_eq!(
        d.acd(),
        [
            AcdRequest::Declined {
                operator: OperatorId(0)
            },
            AcdRequest::Declined {
                operator: OperatorId(1)
            }
        ]
    );
    assert_eq!(
        d.timeline(),
        [
            "call_enqueued",
            "call_offered",
            "offer_declined",
            "call_offered",
            "offer_declined"
        ]
    );
    assert_eq!(d.call.phase(), CallPhase::Queued);
}

#[test]
fn operator_hangs_up_first() {
    let mut d = Driver::talking();
    let actions = d.input(Input::PhoneGone {
        attempt: Attempt(1),
        cause: "bye",
    });
    assert!(has(&actions, |a| matches!(a, Action::HangUpCaller)));
    assert_eq!(d.acd().last(), Some(&AcdRequest::CallEnded));
    d.assert_ended(CallOutcome::Answered, "operator");
}

#[test]
fn an_operator_answer_in_early_media_answers_the_caller_before_the_bridge() {
    let mut d = Driver::new(CallSetup {
        greeting_barge_in: false,
        ..setup()
    });
    d.arrive(true, Some(CallerMedia::Early), true);
    // Keys during the greeting count but do not answer (barge-in off).
    d.key('1');
    d.key('2');
    assert!(!has(&d.log, |a| matches!(a, Action::AnswerCaller)));
    assert_eq!(d.call.phase(), CallPhase::Queued);
    d.offer(0);
    let actions = d.answered_by(1);
    let answer = actions
        .iter()
        .position(|a| matches!(a, Action::AnswerCaller))
        .expect("answered");
    let bridge = actions
        .iter()
        .position(|a| matches!(a, Action::Bridge { .. }))
        .expect("bridged");
    assert!(answer < bridge, "{actions:?}");
}

#[test]
fn a_200_that_fails_at_the_operators_answer_frees_the_operator() {
    let mut d = Driver::new(CallSetup {
        greeting_barge_in: false,
        ..setup()
    });
    d.arrive(true, Some(CallerMedia::Early), true);
    d.key('1');
    d.key('2');
    d.offer(0);
    d.answer_ok = false;
    d.answered_by(1);
    assert!(!has(&d.log, |a| matches!(a, Action::Bridge { .. })));
    assert_eq!(d.acd(), [AcdRequest::CallerLeft]);
    d.assert_ended(CallOutcome::Failed, "router");
}

#[test]
fn an_answer_the_acd_refused_puts_the_caller_back_to_waiting() {
    let mut d = Driver::talking();
    let actions = d.input(Input::AnswerRefused {
        operator: OperatorId(0),
    });
    assert!(has(&actions, |a| matches!(a, Action::Unbridge)));
    assert!(has(&actions, |a| matches!(
        a,
        Action::HangUpPhone {
            attempt: Attempt(1)
        }
    )));
    assert!(has(&actions, |a| matches!(a, Action::Music(true))));
    assert_eq!(d.call.phase(), CallPhase::Queued);
    assert_eq!(d.call.talking_with(), None);
}

#[test]
fn ring_all_withdraws_the_other_phones_after_an_answer() {
    let mut d = Driver::queued();
    d.offer(0);
    d.offer(1);
    d.answered_by(2);
    let actions = d.withdraw(0);
    assert!(has(&actions, |a| matches!(
        a,
        Action::HangUpPhone {
            attempt: Attempt(1)
        }
    )));
    // A phone answering after the call ended is hung up, not left up.
    let mut d = Driver::queued();
    d.offer(0);
    d.offer(1);
    d.answered_by(2);
    d.input(Input::CallerGone { cause: "bye" });
    let actions = d.answered_by(1);
    assert!(matches!(
        actions[..],
        [Action::HangUpPhone {
            attempt: Attempt(1)
        }]
    ));
}

#[test]
fn waiting_callers_hear_their_place_every_announce_period() {
    let mut d = Driver::queued();
    d.played_all();
    let actions = d.advance(ANNOUNCE_EVERY);
    assert!(matches!(actions[..], [Action::AskPosition]));
    let actions = d.input(Input::Position {
        position: 3,
        serving: 2,
    });
    assert!(matches!(
        &actions[..],
        [Action::Play { prompt: Prompt::Announcement { position: 3, serving: 2, language }, .. }]
            if language.as_deref() == Some("uz")
    ));
    // Not over a prompt still playing.
    let actions = d.advance(ANNOUNCE_EVERY);
    assert!(actions.is_empty(), "{actions:?}");
    // No announcements once bridged.
    d.offer(0);
    d.answered_by(1);
    d.played_all();
    assert!(d.advance(10 * ANNOUNCE_EVERY).is_empty());
}

// ----- hold and listen-in -----------------------------------------------------------------

#[test]
fn hold_and_resume_by_either_side() {
    let mut d = Driver::talking();
    let actions = d.input(Input::CallerReoffer {
        held: true,
        media: media(),
    });
    assert!(matches!(
        actions[..],
        [
            Action::Renegotiate {
                side: HoldBy::Caller,
                ..
            },
            Action::Emit(EventKind::CallHold { held: true, .. }),
            Action::Hold {
                by: HoldBy::Caller,
                held: true
            }
        ]
    ));
    assert_eq!(d.call.phase(), CallPhase::Held);
    d.input(Input::CallerReoffer {
        held: false,
        media: media(),
    });
    assert_eq!(d.call.phase(), CallPhase::Bridged);
    // A re-offer from a phone that is not in the conversation is not ours to follow.
    assert!(d
        .input(Input::PhoneReoffer {
            attempt: Attempt(9),
            held: true,
            media: media()
        })
        .is_empty());
    d.input(Input::PhoneReoffer {
        attempt: Attempt(1),
        held: true,
        media: media(),
    });
    assert_eq!(d.call.phase(), CallPhase::Held);
    d.input(Input::CallerGone { cause: "bye" });
    d.assert_ended(CallOutcome::Answered, "caller");
}

#[test]
fn a_hold_outside_a_conversation_only_follows_the_media() {
    let mut d = Driver::queued();
    let actions = d.input(Input::CallerReoffer {
        held: true,
        media: media(),
    });
    assert!(matches!(actions[..], [Action::Renegotiate { .. }]));
}

#[test]
fn a_supervisor_is_rung_joins_changes_mode_and_leaves() {
    let mut d = Driver::queued();
    assert_eq!(
        d.call.plan_monitor("1005", MonitorMode::Listen),
        Err(MonitorError::NotTalking)
    );
    let mut d = Driver::talking();
    assert_eq!(
        d.call.plan_monitor("1005", MonitorMode::Listen),
        Ok(MonitorPlan::Ring)
    );
    let attempt = d.call.take_monitor_attempt();
    assert_eq!(attempt, Attempt(2));
    d.call
        .monitor_ringing(attempt, "1005".into(), MonitorMode::Listen);
    assert_eq!(
        d.call.phase(),
        CallPhase::Bridged,
        "not in before answering"
    );
    let actions = d.answered_by(2);
    assert!(matches!(
        actions[..],
        [
            Action::MonitorAnswered {
                mode: MonitorMode::Listen,
                ..
            },
            Action::Emit(EventKind::MonitorStarted { .. })
        ]
    ));
    assert_eq!(d.call.phase(), CallPhase::Monitored);
    assert_eq!(
        d.call.plan_monitor("1005", MonitorMode::Barge),
        Ok(MonitorPlan::ModeChanged)
    );
    assert!(matches!(
        d.drain()[..],
        [Action::SetMonitorMode(MonitorMode::Barge)]
    ));
    assert_eq!(
        d.call.plan_monitor("1006", MonitorMode::Listen),
        Err(MonitorError::Busy)
    );
    let actions = d.input(Input::PhoneGone {
        attempt: Attempt(2),
        cause: "bye",
    });
    assert!(matches!(actions[..], [Action::EndMonitor]));
    assert_eq!(d.call.phase(), CallPhase::Bridged, "the call goes on");
}

#[test]
fn a_supervisor_who_dialled_in_leaves_or_is_hung_up_at_the_end() {
    let mut d = Driver::talking();
    assert_eq!(d.call.check_dialled_monitor(), Ok(()));
    d.call.monitor_joined("1005".into(), MonitorMode::Whisper);
    assert!(matches!(
        d.drain()[..],
        [Action::Emit(EventKind::MonitorStarted {
            mode: MonitorMode::Whisper,
            ..
        })]
    ));
    assert_eq!(d.call.check_dialled_monitor(), Err(MonitorError::Busy));
    // Somebody else's leg ending is not theirs.
    assert!(d
        .input(Input::DialledMonitorGone {
            supervisor: "1006".into()
        })
        .is_empty());
    let actions = d.input(Input::DialledMonitorGone {
        supervisor: "1005".into(),
    });
    assert!(matches!(actions[..], [Action::EndMonitor]));
    d.call.monitor_joined("1005".into(), MonitorMode::Barge);
    let actions = d.input(Input::PhoneGone {
        attempt: Attempt(1),
        cause: "bye",
    });
    assert!(has(&actions, |a| matches!(a, Action::HangUpMonitor)));
    d.assert_ended(CallOutcome::Answered, "operator");
}

// ----- the callback offer -----------------------------------------------------------------

#[test]
fn callback_is_offered_in_surge_and_taken() {
    let mut d = Driver::queued();
    d.surge = true;
    d.played_all();
    let actions = d.advance(CALLBACK_AFTER);
    assert!(has(&actions, |a| matches!(
        a,
        Action::Play { prompt: Prompt::CallbackOffer { digit: '1', language }, .. }
            if language.as_deref() == Some("uz")
    )));
    // Another key is not the acceptance.
    assert!(!has(&d.key('5'), |a| matches!(
        a,
        Action::RequestCallback { .. }
    )));
    let actions = d.key('1');
    assert!(has(&actions, |a| matches!(
        a,
        Action::RequestCallback { queue: QueueId(0), language, .. } if language == "uz"
    )));
    let actions = d.input(Input::CallbackBooked { audible: true });
    assert!(has(&actions, |a| matches!(a, Action::Music(false))));
    assert!(has(&actions, |a| matches!(
        a,
        Action::Play {
            prompt: Prompt::CallbackBooked { .. },
            ..
        }
    )));
    assert_eq!(d.call.phase(), CallPhase::Leaving);
    let actions = d.played_all();
    assert!(matches!(actions[0], Action::HangUpCaller));
    d.assert_ended(CallOutcome::CallbackRequested, "caller");
}

#[test]
fn callback_is_not_offered_outside_surge_and_a_refusal_keeps_the_caller_waiting() {
    let mut d = Driver::queued();
    d.played_all();
    let actions = d.advance(CALLBACK_AFTER);
    assert!(!has(&actions, |a| matches!(
        a,
        Action::Play {
            prompt: Prompt::CallbackOffer { .. },
            ..
        }
    )));
    assert!(!has(&d.key('1'), |a| matches!(
        a,
        Action::RequestCallback { .. }
    )));

    let mut d = Driver::queued();
    d.surge = true;
    d.advance(CALLBACK_AFTER);
    d.key('1');
    d.input(Input::CallbackRefused);
    assert_eq!(d.call.phase(), CallPhase::Queued);
    // One try per call.
    assert!(!has(&d.key('1'), |a| matches!(
        a,
        Action::RequestCallback { .. }
    )));
}

#[test]
fn hanging_up_during_the_callback_confirmation_keeps_the_callback() {
    let mut d = Driver::queued();
    d.surge = true;
    d.advance(CALLBACK_AFTER);
    d.key('1');
    d.input(Input::CallbackBooked { audible: true });
    d.input(Input::CallerGone { cause: "bye" });
    d.assert_ended(CallOutcome::CallbackRequested, "caller");
}

// ----- the door offer (`[tenant.surge.door]`) ----------------------------------------------

use crate::callback::door::{CallbackWhen, Offer as DoorOffer};

/// Queued in dtm-uz with the door policy, in surge.
fn door_queued() -> Driver {
    let mut d = Driver::new(door_setup());
    d.surge = true;
    d.arrive(true, Some(CallerMedia::Early), true);
    d.played_all();
    d.key('1');
    d.played_all();
    d.key('2');
    assert_eq!(d.call.phase(), CallPhase::Queued);
    d.played_all();
    d
}

fn door_offer(callback: Option<CallbackWhen>, sms: bool, at_door: bool) -> Input {
    Input::DoorOffer {
        offer: DoorOffer { callback, sms },
        at_door,
    }
}

fn door_choices(d: &Driver) -> Vec<String> {
    d.events()
        .into_iter()
        .filter_map(|e| match e {
            EventKind::DoorChoice { choice, .. } => Some(choice.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_door_offer_names_the_callback_and_the_sms_key_and_the_callback_key_books() {
    let mut d = door_queued();
    let actions = d.input(door_offer(Some(CallbackWhen::Today), true, true));
    assert!(has(&actions, |a| matches!(
        a,
        Action::Play {
            prompt: Prompt::DoorOffer {
                callback: Some((CallbackWhen::Today, '1')),
                sms_digit: Some('2'),
                language,
            },
            ..
        } if language.as_deref() == Some("uz")
    )));
    // Made at the door, it is not made again at offer_after.
    let later = d.advance(CALLBACK_AFTER);
    assert!(!has(&later, |a| matches!(a, Action::AskDoorOffer { .. })));
    let actions = d.key('1');
    assert!(has(&actions, |a| matches!(
        a,
        Action::RequestCallback {
            queue: QueueId(0),
            next_morning: false,
            ..
        }
    )));
    assert_eq!(door_choices(&d), ["callback"]);
    d.input(Input::CallbackBooked { audible: true });
    d.played_all();
    d.assert_ended(CallOutcome::CallbackRequested, "caller");
}

#[test]
fn the_morning_window_is_booked_as_such() {
    let mut d = door_queued();
    let actions = d.input(door_offer(Some(CallbackWhen::NextMorning), true, true));
    assert!(has(&actions, |a| matches!(
        a,
        Action::Play {
            prompt: Prompt::DoorOffer {
                callback: Some((CallbackWhen::NextMorning, '1')),
                ..
            },
            ..
        }
    )));
    assert!(has(&d.key('1'), |a| matches!(
        a,
        Action::RequestCallback {
            next_morning: true,
            ..
        }
    )));
}

#[test]
fn the_sms_key_leaves_the_queue_deflected_after_the_sent_prompt() {
    let mut d = door_queued();
    d.input(door_offer(None, true, true));
    // No callback offered: its key does nothing.
    assert!(!has(&d.key('1'), |a| matches!(
        a,
        Action::RequestCallback { .. }
    )));
    let actions = d.key('2');
    assert!(has(&actions, |a| matches!(
        a,
        Action::Acd(AcdRequest::LeftForSms)
    )));
    assert!(has(&actions, |a| matches!(
        a,
        Action::Play {
            prompt: Prompt::SmsSent { .. },
            ..
        }
    )));
    assert_eq!(door_choices(&d), ["sms"]);
    assert_eq!(d.call.phase(), CallPhase::Leaving);
    let actions = d.played_all();
    assert!(matches!(actions[0], Action::HangUpCaller));
    d.assert_ended(CallOutcome::Deflected, "caller");
}

#[test]
fn no_key_declines_and_the_caller_waits_on() {
    let mut d = door_queued();
    d.input(door_offer(Some(CallbackWhen::Today), true, true));
    // The window starts when the offer has played.
    d.advance(CHOICE_WINDOW * 2);
    assert!(door_choices(&d).is_empty());
    d.played_all();
    d.advance(CHOICE_WINDOW);
    assert_eq!(door_choices(&d), ["declined"]);
    assert_eq!(d.call.phase(), CallPhase::Queued);
    // Declined: the keys no longer take it.
    assert!(!has(&d.key('1'), |a| matches!(
        a,
        Action::RequestCallback { .. }
    )));
    assert!(!has(&d.key('2'), |a| matches!(
        a,
        Action::Acd(AcdRequest::LeftForSms)
    )));
    // Later answered by an operator.
    d.offer(0);
    d.answered_by(1);
    assert_eq!(d.call.phase(), CallPhase::Bridged);
    assert_eq!(door_choices(&d), ["declined"]);
}

#[test]
fn without_an_offer_at_the_door_the_host_is_asked_at_offer_after() {
    let mut d = door_queued();
    let actions = d.advance(CALLBACK_AFTER);
    assert!(has(&actions, |a| matches!(
        a,
        Action::AskDoorOffer { queue: QueueId(0) }
    )));
    // Not the old fixed offer.
    assert!(!has(&actions, |a| matches!(
        a,
        Action::Play {
            prompt: Prompt::CallbackOffer { .. },
            ..
        }
    )));
    let actions = d.input(door_offer(None, true, false));
    assert!(has(&actions, |a| matches!(
        a,
        Action::Play {
            prompt: Prompt::DoorOffer {
                callback: None,
                sms_digit: Some('2'),
                ..
            },
            ..
        }
    )));
    // Answered while the offer is open: declined, once.
    d.offer(0);
    d.answered_by(1);
    d.input(Input::CallerGone { cause: "bye" });
    assert_eq!(door_choices(&d), ["declined"]);
}

#[test]
fn the_door_is_asked_only_in_surge_and_an_empty_answer_offers_nothing() {
    let mut d = door_queued();
    d.surge = false;
    assert!(!has(&d.advance(CALLBACK_AFTER), |a| matches!(
        a,
        Action::AskDoorOffer { .. }
    )));
    let mut d = door_queued();
    d.advance(CALLBACK_AFTER);
    let actions = d.input(door_offer(None, false, false));
    assert!(!has(&actions, |a| matches!(a, Action::Play { .. })));
    d.advance(CHOICE_WINDOW * 2);
    assert!(door_choices(&d).is_empty());
}

// ----- shutdown ---------------------------------------------------------------------------

#[test]
fn shutdown_ends_every_phase_with_its_outcome() {
    let mut d = Driver::arrived();
    d.input(Input::Shutdown);
    d.assert_ended(CallOutcome::Abandoned, "shutdown");

    let mut d = Driver::queued();
    d.offer(0);
    let actions = d.input(Input::Shutdown);
    assert!(has(&actions, |a| matches!(a, Action::HangUpCaller)));
    assert!(has(&actions, |a| matches!(a, Action::HangUpPhone { .. })));
    assert_eq!(d.acd(), [AcdRequest::CallerLeft]);
    d.assert_ended(CallOutcome::Abandoned, "shutdown");

    let mut d = Driver::talking();
    let actions = d.input(Input::Shutdown);
    assert!(has(&actions, |a| matches!(a, Action::HangUpCaller)));
    assert!(has(&actions, |a| matches!(
        a,
        Action::HangUpPhone {
            attempt: Attempt(1)
        }
    )));
    assert_eq!(d.acd().last(), Some(&AcdRequest::CallEnded));
    d.assert_ended(CallOutcome::Answered, "shutdown");

    let mut d = Driver::queued();
    d.surge = true;
    d.advance(CALLBACK_AFTER);
    d.key('1');
    d.input(Input::CallbackBooked { audible: true });
    d.input(Input::Shutdown);
    d.assert_ended(CallOutcome::CallbackRequested, "shutdown");
}

// ----- every call ends once, with no timer left -------------------------------------------

mod property {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Key(char),
        PlayedAll,
        Advance(u64),
        Offer(u32),
        Withdraw(u32),
        Requeue(u32),
        Answered(u64),
        Failed(u64),
        Gone(u64),
        CallerConfirmed,
        CallerGone,
        TimedOut,
        Refused(u32),
        Hold(bool),
        Position,
        Booked(bool),
        Monitor,
        Shutdown,
    }

    fn step() -> impl Strategy<Value = Step> {
        // Weighted so that most calls get through the menu to an operator before
        // something ends them.
        prop_oneof![
            24 => prop::sample::select(vec!['1', '1', '2', '0', '7', '*', '5']).prop_map(Step::Key),
            12 => Just(Step::PlayedAll),
            4 => (0u64..70_000).prop_map(Step::Advance),
            12 => (0u32..3).prop_map(Step::Offer),
            2 => (0u32..3).prop_map(Step::Withdraw),
            2 => (0u32..3).prop_map(Step::Requeue),
            12 => (1u64..4).prop_map(Step::Answered),
            2 => (1u64..4).prop_map(Step::Failed),
            2 => (1u64..4).prop_map(Step::Gone),
            6 => Just(Step::CallerConfirmed),
            1 => Just(Step::CallerGone),
            1 => Just(Step::TimedOut),
            2 => (0u32..3).prop_map(Step::Refused),
            6 => any::<bool>().prop_map(Step::Hold),
            2 => Just(Step::Position),
            1 => any::<bool>().prop_map(Step::Booked),
            6 => Just(Step::Monitor),
            1 => Just(Step::Shutdown),
        ]
    }

    fn run(d: &mut Driver, step: Step) {
        let ext = |o: u32| format!("100{}", o + 1);
        match step {
            Step::Key(k) => {
                d.key(k);
            }
            Step::PlayedAll => {
                if d.log.iter().any(|a| matches!(a, Action::Play { .. })) {
                    d.played_all();
                }
            }
            Step::Advance(ms) => {
                d.advance(ms);
            }
            Step::Offer(o) => {
                d.offer(o);
            }
            Step::Withdraw(o) => {
                d.input(Input::Withdrawn {
                    operator: OperatorId(o),
                    ext: ext(o),
                });
            }
            Step::Requeue(o) => {
                d.input(Input::Requeued {
                    operator: OperatorId(o),
                    ext: ext(o),
                });
            }
            Step::Answered(a) => {
                d.answered_by(a);
            }
            Step::Failed(a) => {
                d.input(Input::PhoneFailed {
                    attempt: Attempt(a),
                    status: 486,
                });
            }
            Step::Gone(a) => {
                d.input(Input::PhoneGone {
                    attempt: Attempt(a),
                    cause: "bye",
                });
            }
            Step::CallerConfirmed => {
                d.input(Input::CallerConfirmed);
            }
            Step::CallerGone => {
                d.input(Input::CallerGone { cause: "bye" });
            }
            Step::TimedOut => {
                d.input(Input::AcdFinished(Outcome::TimedOut));
            }
            Step::Refused(o) => {
                d.input(Input::AnswerRefused {
                    operator: OperatorId(o),
                });
            }
            Step::Hold(held) => {
                d.input(Input::CallerReoffer {
                    held,
                    media: media(),
                });
            }
            Step::Position => {
                d.input(Input::Position {
                    position: 1,
                    serving: 1,
                });
            }
            Step::Booked(audible) => {
                d.input(Input::CallbackBooked { audible });
            }
            Step::Monitor => {
                if d.call.plan_monitor("1005", MonitorMode::Listen) == Ok(MonitorPlan::Ring) {
                    let attempt = d.call.take_monitor_attempt();
                    d.call
                        .monitor_ringing(attempt, "1005".into(), MonitorMode::Listen);
                }
                d.drain();
            }
            Step::Shutdown => {
                d.input(Input::Shutdown);
            }
        }
    }

    proptest! {
        #[test]
        fn every_call_ends_with_exactly_one_outcome_and_no_timer(
            open in prop::bool::weighted(0.9),
            early in any::<bool>(),
            session in any::<bool>(),
            barge_in in any::<bool>(),
            answer_ok in prop::sample::select(vec![true, true, true, false]),
            surge in any::<bool>(),
            steps in prop::collection::vec(step(), 0..60),
        ) {
            let mut d = Driver::new(CallSetup { greeting_barge_in: barge_in, ..setup() });
            d.surge = surge;
            d.answer_ok = answer_ok;
            d.knows_ru = true;
            let media = Some(if early && session { CallerMedia::Early } else { CallerMedia::Answered });
            d.arrive(open, media, session);
            for s in steps {
                run(&mut d, s);
            }
            // However far it got, the router's shutdown ends it.
            d.input(Input::Shutdown);
            let finished = d.kinds().iter().filter(|k| **k == "call_finished").count();
            prop_assert_eq!(finished, 1, "{:?}", d.kinds());
            prop_assert!(d.call.ending().is_some());
            prop_assert_eq!(d.call.phase(), CallPhase::Ended);
            prop_assert_eq!(d.call.poll_timeout(), None);
            prop_assert_eq!(d.log.iter().filter(|a| matches!(a, Action::Finished)).count(), 1);
            // After the end only a phone that answers late is hung up.
            let end = d.log.iter().position(|a| matches!(a, Action::Finished)).unwrap_or(0);
            prop_assert!(
                d.log[end + 1..].iter().all(|a| matches!(a, Action::HangUpPhone { .. })),
                "{:?}",
                &d.log[end..]
            );
            // Nothing fires afterwards.
            prop_assert!(d.advance(24 * 3_600_000).is_empty());
            // The ACD hears of the call's end at most once.
            let ends = d.acd().iter().filter(|r| matches!(r, AcdRequest::CallerLeft | AcdRequest::CallEnded)).count();
            prop_assert!(ends <= 1, "{:?}", d.acd());
        }
    }
}
