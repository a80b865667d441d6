//! The IVR: a pure state machine for a tenant's two-level voice menu (D5).
//!
//! Level 1 chooses the language, and with it the queue; level 2 chooses the topic. A menu
//! without topics skips level 2, a menu with one language skips level 1. The session never
//! reads a clock and never touches media: the call actor feeds it keys and timer expiries
//! with the current time, drains [`IvrSession::poll_action`] after every input, plays what it
//! is told, and arms a timer for [`IvrSession::deadline`].
//!
//! Rules:
//! - a key that is not in the level's menu plays `invalid-choice`, then the level's prompt
//!   again, and counts as a retry; so does a digit timeout (prompt replayed, no
//!   `invalid-choice`);
//! - `*`, unless the menu assigns it, replays the level's prompt without counting a retry;
//! - after [`IvrMenu::max_retries`] retries the next failure applies
//!   [`IvrMenu::on_no_input`]: take the default language / topic, or say goodbye and hang up;
//! - the caller may press keys while a prompt plays (barge-in); keys after the menu ended are
//!   ignored.
//!
//! In surge mode ([`IvrSession::start_in_surge`]) the greeting is followed by the surge
//! announcement, or both are replaced by the short surge greeting when the tenant has one
//! (`[tenant.surge] greeting`), and both levels also accept the tenant's self-service keys
//! (at the language level those no language uses): the caller hears that branch's
//! information (in both languages before a language is chosen) and the call ends as
//! deflected ([`HangupReason::SelfService`]). So on a results day the information most
//! callers want is one key after a greeting of a few seconds.

use std::collections::VecDeque;

pub use crate::config::IvrMenu;
use crate::config::NoInputPolicy;

/// Milliseconds on the caller's monotonic clock; only differences matter.
pub type Now = u64;

/// Key that replays the current level's prompt unless the menu assigns it to a choice.
pub const REPEAT_KEY: char = '*';

/// One prompt to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Which recording.
    pub name: PromptName,
    /// The language to play it in; `None` before the caller chose one: play the bilingual
    /// recording (Uzbek, then Russian).
    pub language: Option<String>,
}

/// The recordings the IVR asks for; the media layer maps them to files per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptName {
    /// Welcome and useful information, played instead of ringback.
    Greeting,
    /// "For Uzbek press 1, для русского языка нажмите 2".
    ChooseLanguage,
    /// The topic menu, read from the tenant's topic labels.
    ChooseTopic,
    /// "That key is not in the menu."
    InvalidChoice,
    /// Said before the IVR hangs up.
    Goodbye,
    /// Surge mode: "exam period, many calls; press ... for ..." (after the greeting).
    SurgeAnnouncement,
    /// Surge mode: the short greeting played instead of the greeting and the announcement.
    SurgeGreeting,
    /// Surge mode: the information of self-service branch `n` (index into
    /// [`SurgeMenu::self_service`]); its file is [`IvrSession::prompt_stem`].
    SelfService(u8),
}

impl PromptName {
    /// The file name stem of the recording, e.g. `choose-language`.
    pub fn file_stem(self) -> &'static str {
        match self {
            PromptName::Greeting => "greeting",
            PromptName::ChooseLanguage => "choose-language",
            PromptName::ChooseTopic => "choose-topic",
            PromptName::InvalidChoice => "invalid-choice",
            PromptName::Goodbye => "goodbye",
            PromptName::SurgeAnnouncement => "surge-announcement",
            PromptName::SurgeGreeting => "surge-greeting",
            // The configured name comes from the session (IvrSession::prompt_stem).
            PromptName::SelfService(_) => "self-service",
        }
    }
}

/// Why the IVR ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HangupReason {
    /// The caller pressed nothing in time on the last attempt (`on_no_input = "hangup"`).
    NoInput,
    /// The caller's last attempt was a key not in the menu (`on_no_input = "hangup"`).
    InvalidInput,
    /// The menu has no default to fall back to (only with a hand-built, unchecked menu).
    NoDefault,
    /// Surge mode: the caller took a self-service branch and heard its information; the
    /// call counts as deflected.
    SelfService {
        /// Index into [`SurgeMenu::self_service`].
        branch: u8,
    },
}

/// What surge mode adds to a tenant's menu.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SurgeMenu {
    /// Play [`PromptName::SurgeAnnouncement`] after the greeting.
    pub announcement: bool,
    /// Play [`PromptName::SurgeGreeting`] instead of the greeting and the announcement.
    pub greeting: bool,
    /// Self-service keys at the topic level and their prompt names, in config order.
    pub self_service: Vec<(char, String)>,
}

impl SurgeMenu {
    /// The surge additions of a tenant's `[tenant.surge]`.
    pub fn from_config(surge: &crate::config::TenantSurge) -> SurgeMenu {
        SurgeMenu {
            announcement: surge.announcement,
            greeting: surge.greeting,
            self_service: surge
                .self_service
                .iter()
                .map(|c| (c.digit.as_char(), c.prompt.clone()))
                .collect(),
        }
    }
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrAction {
    /// Play this prompt (queued after any prompt still playing).
    Play(Prompt),
    /// The menu is done: enqueue the call here.
    Route {
        /// The chosen (or default) language.
        language: String,
        /// The chosen (or default) topic; `None` when the menu has no topic level.
        topic: Option<String>,
        /// The queue of the chosen language.
        queue: String,
    },
    /// The menu is done: end the call (after the goodbye prompt already queued).
    Hangup {
        /// Why.
        reason: HangupReason,
    },
    /// For the event log: the caller completed menu `level` (1 = language, 2 = topic) with
    /// `digit`, or `None` when the default was taken after the retries ran out. Skipped
    /// levels produce no step.
    Step {
        /// 1 or 2.
        level: u8,
        /// The key pressed, or `None` for the default.
        digit: Option<char>,
    },
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Language,
    Topic,
    Finished,
}

impl Level {
    fn number(self) -> u8 {
        match self {
            Level::Language => 1,
            Level::Topic | Level::Finished => 2,
        }
    }
}

/// One caller's walk through a tenant's menu.
#[derive(Debug, Clone)]
pub struct IvrSession {
    menu: IvrMenu,
    level: Level,
    /// Timeouts and wrong keys on the current level.
    failures: u32,
    deadline: Option<Now>,
    /// The chosen level-1 entry (index into `menu.languages`).
    language: Option<usize>,
    topic: Option<String>,
    actions: VecDeque<IvrAction>,
    /// Surge additions; `None` outside surge mode.
    surge: Option<SurgeMenu>,
}

impl IvrSession {
    /// Starts the menu at `now_ms`: the first actions are the greeting and the language
    /// prompt (or, with a single language, the topic prompt or the route).
    pub fn start(menu: &IvrMenu, now_ms: Now) -> IvrSession {
        IvrSession::start_in_surge(menu, None, now_ms)
    }

    /// Starts the menu, with the surge additions when `surge` is given.
    pub fn start_in_surge(menu: &IvrMenu, surge: Option<SurgeMenu>, now_ms: Now) -> IvrSession {
        let mut session = IvrSession {
            menu: menu.clone(),
            level: Level::Language,
            failures: 0,
            deadline: None,
            language: None,
            topic: None,
            actions: VecDeque::new(),
            surge,
        };
        match &session.surge {
            Some(surge) if surge.greeting => session.play(PromptName::SurgeGreeting),
            Some(surge) if surge.announcement => {
                session.play(PromptName::Greeting);
                session.play(PromptName::SurgeAnnouncement);
            }
            _ => session.play(PromptName::Greeting),
        }
        if session.menu.languages.len() == 1 {
            session.choose_language(0, now_ms);
        } else {
            session.enter_level(Level::Language, now_ms);
        }
        session
    }

    /// The caller pressed `digit` at `now_ms`.
    pub fn on_digit(&mut self, now_ms: Now, digit: char) {
        match self.level {
            Level::Finished => {}
            Level::Language => match self
                .menu
                .languages
                .iter()
                .position(|choice| choice.digit.as_char() == digit)
            {
                Some(index) => {
                    self.step(Some(digit));
                    self.choose_language(index, now_ms);
                }
                None => self.on_other_digit(now_ms, digit),
            },
            Level::Topic => match self.menu.topic_for_digit(digit) {
                Some(choice) => {
                    let topic = choice.topic.clone();
                    self.step(Some(digit));
                    self.route(Some(topic));
                }
                None => self.on_other_digit(now_ms, digit),
            },
        }
    }

    /// A key that is not a choice of the level: a self-service branch in surge, the repeat
    /// key, or a wrong key.
    fn on_other_digit(&mut self, now_ms: Now, digit: char) {
        match self.self_service_branch(digit) {
            Some(branch) => {
                self.step(Some(digit));
                self.play(PromptName::SelfService(branch));
                self.actions.push_back(IvrAction::Hangup {
                    reason: HangupReason::SelfService { branch },
                });
                self.finish();
            }
            None if digit == REPEAT_KEY => self.replay(now_ms),
            None => self.fail(now_ms, true),
        }
    }

    fn self_service_branch(&self, digit: char) -> Option<u8> {
        let surge = self.surge.as_ref()?;
        let index = surge.self_service.iter().position(|(d, _)| *d == digit)?;
        u8::try_from(index).ok()
    }

    /// The file name stem of `name` for this session: the configured prompt of a
    /// self-service branch, otherwise [`PromptName::file_stem`].
    pub fn prompt_stem(&self, name: PromptName) -> &str {
        match name {
            PromptName::SelfService(i) => self
                .surge
                .as_ref()
                .and_then(|s| s.self_service.get(usize::from(i)))
                .map(|(_, prompt)| prompt.as_str())
                .unwrap_or("self-service"),
            other => other.file_stem(),
        }
    }

    /// The digit timer fired at `now_ms`. Early or stale timers (before [`Self::deadline`],
    /// or after the menu ended) are ignored, so the driver need not cancel them.
    pub fn on_timeout(&mut self, now_ms: Now) {
        match self.deadline {
            Some(deadline) if now_ms >= deadline => self.fail(now_ms, false),
            _ => {}
        }
    }

    /// The prompts queued so far finished playing at `now_ms`: the caller's time to answer
    /// starts now. Optional; without it the timer runs from when the prompt was asked for.
    pub fn on_playback_finished(&mut self, now_ms: Now) {
        if self.deadline.is_some() {
            self.deadline = Some(now_ms + self.timeout_ms());
        }
    }

    /// The next thing to do, in order; `None` when there is nothing more until the next input.
    pub fn poll_action(&mut self) -> Option<IvrAction> {
        self.actions.pop_front()
    }

    /// When [`Self::on_timeout`] should be called; `None` once the menu has ended.
    pub fn deadline(&self) -> Option<Now> {
        self.deadline
    }

    /// The chosen language, once level 1 is done.
    pub fn language(&self) -> Option<&str> {
        self.language
            .map(|index| self.menu.languages[index].language.as_str())
    }

    /// The chosen topic, once level 2 is done.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    /// Whether the menu has ended (routed or hung up).
    pub fn is_finished(&self) -> bool {
        self.level == Level::Finished
    }

    fn timeout_ms(&self) -> Now {
        u64::try_from(self.menu.digit_timeout.as_millis()).unwrap_or(u64::MAX)
    }

    fn play(&mut self, name: PromptName) {
        let language = self.language().map(str::to_owned);
        self.actions
            .push_back(IvrAction::Play(Prompt { name, language }));
    }

    fn step(&mut self, digit: Option<char>) {
        let level = self.level.number();
        self.actions.push_back(IvrAction::Step { level, digit });
    }

    fn level_prompt(&self) -> PromptName {
        match self.level {
            Level::Topic => PromptName::ChooseTopic,
            Level::Language | Level::Finished => PromptName::ChooseLanguage,
        }
    }

    fn enter_level(&mut self, level: Level, now_ms: Now) {
        self.level = level;
        self.failures = 0;
        self.play(self.level_prompt());
        self.deadline = Some(now_ms + self.timeout_ms());
    }

    fn replay(&mut self, now_ms: Now) {
        self.play(self.level_prompt());
        self.deadline = Some(now_ms + self.timeout_ms());
    }

    fn choose_language(&mut self, index: usize, now_ms: Now) {
        self.language = Some(index);
        if self.menu.topics.is_empty() {
            self.route(None);
        } else {
            self.enter_level(Level::Topic, now_ms);
        }
    }

    fn route(&mut self, topic: Option<String>) {
        let Some(index) = self.language else {
            return self.hang_up(HangupReason::NoDefault);
        };
        let choice = &self.menu.languages[index];
        self.actions.push_back(IvrAction::Route {
            language: choice.language.clone(),
            topic: topic.clone(),
            queue: choice.queue.clone(),
        });
        self.topic = topic;
        self.finish();
    }

    fn hang_up(&mut self, reason: HangupReason) {
        self.play(PromptName::Goodbye);
        self.actions.push_back(IvrAction::Hangup { reason });
        self.finish();
    }

    fn finish(&mut self) {
        self.level = Level::Finished;
        self.deadline = None;
    }

    /// A timeout (`invalid == false`) or a key not in the menu.
    fn fail(&mut self, now_ms: Now, invalid: bool) {
        self.failures += 1;
        if self.failures <= self.menu.max_retries {
            if invalid {
                self.play(PromptName::InvalidChoice);
            }
            self.replay(now_ms);
            return;
        }
        let reason = if invalid {
            HangupReason::InvalidInput
        } else {
            HangupReason::NoInput
        };
        if self.menu.on_no_input == NoInputPolicy::Hangup {
            if invalid {
                self.play(PromptName::InvalidChoice);
            }
            return self.hang_up(reason);
        }
        match self.level {
            Level::Finished => {}
            Level::Language => {
                let default = self.menu.default_language.as_deref().and_then(|language| {
                    self.menu
                        .languages
                        .iter()
                        .position(|choice| choice.language == language)
                });
                match default {
                    Some(index) => {
                        self.step(None);
                        self.choose_language(index, now_ms);
                    }
                    None => self.hang_up(HangupReason::NoDefault),
                }
            }
            Level::Topic => {
                self.step(None);
                let topic = self.menu.default_topic.clone();
                self.route(topic);
            }
        }
    }
}

#[cfg(test)]
mod tests;
