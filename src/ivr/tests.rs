//! IVR paths, in virtual time.

use super::*;
use crate::config::{Config, NoInputPolicy};

const TIMEOUT: Now = 6_000;

fn dtm_menu() -> IvrMenu {
    Config::embedded_default()
        .tenant("dtm")
        .unwrap()
        .ivr
        .clone()
}

fn support_menu() -> IvrMenu {
    Config::embedded_default()
        .tenant("support")
        .unwrap()
        .ivr
        .clone()
}

fn drain(session: &mut IvrSession) -> Vec<IvrAction> {
    std::iter::from_fn(|| session.poll_action()).collect()
}

fn play(name: PromptName, language: Option<&str>) -> IvrAction {
    IvrAction::Play(Prompt {
        name,
        language: language.map(str::to_owned),
    })
}

fn route(language: &str, topic: Option<&str>, queue: &str) -> IvrAction {
    IvrAction::Route {
        language: language.to_owned(),
        topic: topic.map(str::to_owned),
        queue: queue.to_owned(),
    }
}

fn step(level: u8, digit: Option<char>) -> IvrAction {
    IvrAction::Step { level, digit }
}

#[test]
fn start_plays_greeting_then_bilingual_language_prompt() {
    let mut session = IvrSession::start(&dtm_menu(), 1_000);
    assert_eq!(
        drain(&mut session),
        [
            play(PromptName::Greeting, None),
            play(PromptName::ChooseLanguage, None)
        ]
    );
    assert_eq!(session.deadline(), Some(1_000 + TIMEOUT));
    assert_eq!(session.language(), None);
    assert!(!session.is_finished());
}

#[test]
fn language_then_topic_routes_to_the_language_queue() {
    let mut session = IvrSession::start(&dtm_menu(), 0);
    drain(&mut session);
    session.on_digit(2_000, '2');
    assert_eq!(
        drain(&mut session),
        [
            step(1, Some('2')),
            play(PromptName::ChooseTopic, Some("ru"))
        ]
    );
    assert_eq!(session.language(), Some("ru"));
    assert_eq!(session.deadline(), Some(2_000 + TIMEOUT));
    session.on_digit(3_000, '3');
    assert_eq!(
        drain(&mut session),
        [
            step(2, Some('3')),
            route("ru", Some("complaints"), "dtm-ru")
        ]
    );
    assert!(session.is_finished());
    assert_eq!(session.deadline(), None);
    assert_eq!(session.topic(), Some("complaints"));
}

#[test]
fn menu_without_topics_skips_level_two() {
    let mut session = IvrSession::start(&support_menu(), 0);
    drain(&mut session);
    session.on_digit(500, '1');
    assert_eq!(
        drain(&mut session),
        [step(1, Some('1')), route("uz", None, "support-uz")]
    );
    assert!(session.is_finished());
}

#[test]
fn single_language_menu_skips_level_one() {
    let mut menu = dtm_menu();
    menu.languages.truncate(1);
    let mut session = IvrSession::start(&menu, 0);
    assert_eq!(
        drain(&mut session),
        [
            play(PromptName::Greeting, None),
            play(PromptName::ChooseTopic, Some("uz"))
        ]
    );
    assert_eq!(session.language(), Some("uz"));

    menu.topics.clear();
    let mut session = IvrSession::start(&menu, 0);
    assert_eq!(
        drain(&mut session),
        [
            play(PromptName::Greeting, None),
            route("uz", None, "dtm-uz")
        ]
    );
}

#[test]
fn invalid_digit_plays_invalid_choice_and_replays_the_level() {
    let mut session = IvrSession::start(&dtm_menu(), 0);
    drain(&mut session);
    session.on_digit(1_000, '9');
    assert_eq!(
        drain(&mut session),
        [
            play(PromptName::InvalidChoice, None),
            play(PromptName::ChooseLanguage, None)
        ]
    );
    assert_eq!(session.deadline(), Some(1_000 + TIMEOUT));
    session.on_digit(2_000, '1');
    session.on_digit(3_000, '5');
    assert_eq!(
        drain(&mut session),
        [
            step(1, Some('1')),
            play(PromptName::ChooseTopic, Some("uz")),
            play(PromptName::InvalidChoice, Some("uz")),
            play(PromptName::ChooseTopic, Some("uz")),
        ]
    );
}

#[test]
fn timeout_replays_the_prompt_without_invalid_choice() {
    let mut session = IvrSession::start(&dtm_menu(), 0);
    drain(&mut session);
    session.on_timeout(TIMEOUT);
    assert_eq!(
        drain(&mut session),
        [play(PromptName::ChooseLanguage, None)]
    );
    assert_eq!(session.deadline(), Some(2 * TIMEOUT));
}

#[test]
fn early_or_stale_timeouts_are_ignored() {
    let mut session = IvrSession::start(&dtm_menu(), 0);
    drain(&mut session);
    session.on_timeout(TIMEOUT - 1);
    assert!(drain(&mut session).is_empty());
    session.on_digit(100, '1');
    drain(&mut session);
    // The first level's timer fires late: the topic level's deadline is later still.
    session.on_timeout(TIMEOUT);
    assert!(drain(&mut session).is_empty());
    session.on_digit(200, '1');
    drain(&mut session);
    session.on_timeout(1_000_000);
    session.on_digit(1_000_001, '2');
    assert!(drain(&mut session).is_empty());
}

#[test]
fn no_input_takes_defaults_after_retries() {
    let mut session = IvrSession::start(&dtm_menu(), 0);
    drain(&mut session);
    // max_retries = 2: two replays, the third timeout takes the default.
    let mut now = 0;
    for _ in 0..2 {
        now = session.deadline().unwrap();
        session.on_timeout(now);
        assert_eq!(
            drain(&mut session),
            [play(PromptName::ChooseLanguage, None)]
        );
    }
    now = session.deadline().unwrap().max(now);
    session.on_timeout(now);
    assert_eq!(
        drain(&mut session),
        [step(1, None), play(PromptName::ChooseTopic, Some("uz"))]
    );
    // The topic level has its own retries.
    for _ in 0..2 {
        let now = session.deadline().unwrap();
        session.on_timeout(now);
        assert_eq!(
            drain(&mut session),
            [play(PromptName::ChooseTopic, Some("uz"))]
        );
    }
    session.on_timeout(session.deadline().unwrap());
    assert_eq!(
        drain(&mut session),
        [step(2, None), route("uz", Some("other"), "dtm-uz")]
    );
}

#[test]
fn invalid_digits_count_as_retries() {
    let mut session = IvrSession::start(&dtm_menu(), 0);
    drain(&mut session);
    session.on_digit(1, '7');
    session.on_timeout(1 + TIMEOUT);
    drain(&mut session);
    session.on_digit(TIMEOUT + 2, '8');
    assert_eq!(
        drain(&mut session),
        [step(1, None), play(PromptName::ChooseTopic, Some("uz"))]
    );
}

#[test]
fn hangup_policy_says_goodbye_and_hangs_up() {
    let mut menu = dtm_menu();
    menu.on_no_input = NoInputPolicy::Hangup;
    menu.max_retries = 1;
    let mut session = IvrSession::start(&menu, 0);
    drain(&mut session);
    session.on_timeout(TIMEOUT);
    drain(&mut session);
    session.on_timeout(2 * TIMEOUT);
    assert_eq!(
        drain(&mut session),
        [
            play(PromptName::Goodbye, None),
            IvrAction::Hangup {
                reason: HangupReason::NoInput
            }
        ]
    );
    assert!(session.is_finished());
    assert_eq!(session.deadline(), None);

    let mut session = IvrSession::start(&menu, 0);
    drain(&mut session);
    session.on_digit(1, '2');
    drain(&mut session);
    session.on_digit(2, '9');
    drain(&mut session);
    session.on_digit(3, '9');
    assert_eq!(
        drain(&mut session),
        [
            play(PromptName::InvalidChoice, Some("ru")),
            play(PromptName::Goodbye, Some("ru")),
            IvrAction::Hangup {
                reason: HangupReason::InvalidInput
            }
        ]
    );
}

#[test]
fn zero_retries_apply_the_policy_on_the_first_failure() {
    let mut menu = support_menu();
    menu.max_retries = 0;
    let mut session = IvrSession::start(&menu, 0);
    drain(&mut session);
    session.on_timeout(TIMEOUT);
    assert_eq!(
        drain(&mut session),
        [step(1, None), route("uz", None, "support-uz")]
    );
}

#[test]
fn star_repeats_the_menu_without_counting_a_retry() {
    let mut menu = dtm_menu();
    menu.max_retries = 0;
    let mut session = IvrSession::start(&menu, 0);
    drain(&mut session);
    session.on_digit(4_000, '*');
    assert_eq!(
        drain(&mut session),
        [play(PromptName::ChooseLanguage, None)]
    );
    assert_eq!(session.deadline(), Some(4_000 + TIMEOUT));
    session.on_digit(5_000, '1');
    session.on_digit(6_000, '*');
    assert_eq!(
        drain(&mut session),
        [
            step(1, Some('1')),
            play(PromptName::ChooseTopic, Some("uz")),
            play(PromptName::ChooseTopic, Some("uz"))
        ]
    );
    assert!(!session.is_finished());
}

#[test]
fn star_assigned_in_the_menu_is_a_choice() {
    let mut menu = dtm_menu();
    menu.topics[3].digit = crate::config::DtmfDigit::new('*').unwrap();
    let mut session = IvrSession::start(&menu, 0);
    session.on_digit(1, '1');
    session.on_digit(2, '*');
    let actions = drain(&mut session);
    assert_eq!(actions.last(), Some(&route("uz", Some("other"), "dtm-uz")));
}

#[test]
fn playback_finished_restarts_the_digit_timer() {
    let mut session = IvrSession::start(&dtm_menu(), 0);
    drain(&mut session);
    session.on_playback_finished(9_000);
    assert_eq!(session.deadline(), Some(9_000 + TIMEOUT));
    session.on_timeout(TIMEOUT);
    assert!(
        drain(&mut session).is_empty(),
        "the old deadline no longer applies"
    );
    session.on_digit(9_500, '2');
    session.on_digit(9_600, '0');
    drain(&mut session);
    session.on_playback_finished(20_000);
    assert_eq!(session.deadline(), None, "no timer after the menu ended");
}

#[test]
fn missing_default_language_hangs_up_instead_of_guessing() {
    let mut menu = dtm_menu();
    menu.default_language = None;
    menu.max_retries = 0;
    let mut session = IvrSession::start(&menu, 0);
    drain(&mut session);
    session.on_timeout(TIMEOUT);
    assert_eq!(
        drain(&mut session),
        [
            play(PromptName::Goodbye, None),
            IvrAction::Hangup {
                reason: HangupReason::NoDefault
            }
        ]
    );
}

#[test]
fn prompt_file_stems() {
    let stems: Vec<&str> = [
        PromptName::Greeting,
        PromptName::ChooseLanguage,
        PromptName::ChooseTopic,
        PromptName::InvalidChoice,
        PromptName::Goodbye,
    ]
    .into_iter()
    .map(PromptName::file_stem)
    .collect();
    assert_eq!(
        stems,
        [
            "greeting",
            "choose-language",
            "choose-topic",
            "invalid-choice",
            "goodbye"
        ]
    );
}

// --- surge mode ------------------------------------------------------------------------

fn surge_menu() -> SurgeMenu {
    SurgeMenu::from_config(
        &Config::embedded_default()
            .tenant("dtm")
            .unwrap()
            .surge
            .clone(),
    )
}

#[test]
fn surge_plays_the_announcement_after_the_greeting() {
    let long = SurgeMenu {
        greeting: false,
        ..surge_menu()
    };
    let mut s = IvrSession::start_in_surge(&dtm_menu(), Some(long), 0);
    let actions = drain(&mut s);
    assert_eq!(
        actions[..3],
        [
            play(PromptName::Greeting, None),
            play(PromptName::SurgeAnnouncement, None),
            play(PromptName::ChooseLanguage, None),
        ]
    );
}

#[test]
fn self_service_key_deflects_with_the_configured_prompt() {
    let mut s = IvrSession::start_in_surge(&dtm_menu(), Some(surge_menu()), 0);
    drain(&mut s);
    s.on_digit(100, '1');
    drain(&mut s);
    s.on_digit(200, '7');
    let actions = drain(&mut s);
    assert_eq!(
        actions,
        vec![
            IvrAction::Step {
                level: 2,
                digit: Some('7')
            },
            play(PromptName::SelfService(0), Some("uz")),
            IvrAction::Hangup {
                reason: HangupReason::SelfService { branch: 0 }
            },
        ]
    );
    assert_eq!(s.prompt_stem(PromptName::SelfService(0)), "results-where");
    assert!(s.is_finished());
    assert_eq!(s.deadline(), None);
}

#[test]
fn the_short_surge_greeting_replaces_the_greeting_and_the_announcement() {
    let mut s = IvrSession::start_in_surge(&dtm_menu(), Some(surge_menu()), 0);
    assert!(
        surge_menu().greeting,
        "the demo tenant has a surge greeting"
    );
    assert_eq!(
        drain(&mut s),
        [
            play(PromptName::SurgeGreeting, None),
            play(PromptName::ChooseLanguage, None),
        ]
    );
    assert_eq!(s.prompt_stem(PromptName::SurgeGreeting), "surge-greeting");
}

/// The information most callers want is one key after the greeting: a self-service key at
/// the language level plays the branch in both languages and deflects the call.
#[test]
fn a_self_service_key_works_at_the_language_level_in_surge() {
    let mut s = IvrSession::start_in_surge(&dtm_menu(), Some(surge_menu()), 0);
    drain(&mut s);
    s.on_digit(100, '7');
    assert_eq!(
        drain(&mut s),
        vec![
            IvrAction::Step {
                level: 1,
                digit: Some('7')
            },
            play(PromptName::SelfService(0), None),
            IvrAction::Hangup {
                reason: HangupReason::SelfService { branch: 0 }
            },
        ]
    );
    assert!(s.is_finished());
    // Outside surge the same key is a wrong choice.
    let mut s = IvrSession::start(&dtm_menu(), 0);
    drain(&mut s);
    s.on_digit(100, '7');
    assert_eq!(drain(&mut s)[0], play(PromptName::InvalidChoice, None));
}

#[test]
fn self_service_key_is_invalid_outside_surge() {
    let mut s = IvrSession::start(&dtm_menu(), 0);
    drain(&mut s);
    s.on_digit(100, '1');
    drain(&mut s);
    s.on_digit(200, '7');
    let actions = drain(&mut s);
    assert_eq!(actions[0], play(PromptName::InvalidChoice, Some("uz")));
    assert!(!s.is_finished());
}
