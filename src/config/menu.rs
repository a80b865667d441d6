//! The IVR menu of a tenant, as configured (the running state machine is [`crate::ivr`]).

use std::time::Duration;

use super::Bilingual;

/// A tenant's two-level voice menu (D5): level 1 picks the language (and with it the queue),
/// level 2 picks the topic. A menu without topics skips level 2; a menu with a single
/// language skips level 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvrMenu {
    /// How long the caller has to press a key after a prompt.
    pub digit_timeout: Duration,
    /// How many times a level's prompt is replayed after a timeout or a wrong key before
    /// [`IvrMenu::on_no_input`] applies.
    pub max_retries: u32,
    /// What happens when the caller never makes a valid choice.
    pub on_no_input: NoInputPolicy,
    /// The language taken by [`NoInputPolicy::Default`]; always one of `languages`.
    pub default_language: Option<String>,
    /// Level 1 choices.
    pub languages: Vec<LanguageChoice>,
    /// Level 2 choices; empty means no topic level.
    pub topics: Vec<TopicChoice>,
    /// The topic taken by [`NoInputPolicy::Default`]; one of `topics` when there are topics.
    pub default_topic: Option<String>,
    /// A key pressed while the greeting still plays as early media cuts it and the call is
    /// answered at once (`true`, the default); `false` plays the greeting to its end (the key
    /// still counts). Either way the caller is answered no later than an operator answers.
    pub greeting_barge_in: bool,
}

impl IvrMenu {
    /// The level-1 entry for `language`.
    pub fn language_choice(&self, language: &str) -> Option<&LanguageChoice> {
        self.languages
            .iter()
            .find(|choice| choice.language == language)
    }

    /// The level-1 entry selected by `digit`.
    pub fn language_for_digit(&self, digit: char) -> Option<&LanguageChoice> {
        self.languages
            .iter()
            .find(|choice| choice.digit.as_char() == digit)
    }

    /// The level-2 entry selected by `digit`.
    pub fn topic_for_digit(&self, digit: char) -> Option<&TopicChoice> {
        self.topics
            .iter()
            .find(|choice| choice.digit.as_char() == digit)
    }

    /// Whether `topic` is one of the level-2 choices.
    pub fn has_topic(&self, topic: &str) -> bool {
        self.topics.iter().any(|choice| choice.topic == topic)
    }
}

/// What the IVR does when the caller has not chosen after all retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoInputPolicy {
    /// Take the menu's default language / topic and carry on (`on_no_input = "default"`).
    Default,
    /// Say goodbye and hang up (`on_no_input = "hangup"`).
    Hangup,
}

impl NoInputPolicy {
    /// The names accepted in `on_no_input`.
    pub const NAMES: [&'static str; 2] = ["default", "hangup"];

    /// Parses a name from [`NoInputPolicy::NAMES`].
    pub fn parse(name: &str) -> Option<NoInputPolicy> {
        match name {
            "default" => Some(NoInputPolicy::Default),
            "hangup" => Some(NoInputPolicy::Hangup),
            _ => None,
        }
    }
}

/// One level-1 entry: press `digit` for `language`, served by `queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanguageChoice {
    /// The key to press.
    pub digit: DtmfDigit,
    /// Language code, one of [`super::SUPPORTED_LANGUAGES`].
    pub language: String,
    /// Id of the queue calls in this language join.
    pub queue: String,
}

/// One level-2 entry: press `digit` for `topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicChoice {
    /// The key to press.
    pub digit: DtmfDigit,
    /// Topic name, as used in queue and operator skills and in statistics.
    pub topic: String,
    /// What the prompt calls it, in both languages.
    pub label: Bilingual,
}

/// A DTMF key a caller can press: `0`-`9`, `*` or `#`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfDigit(char);

impl DtmfDigit {
    /// The keys accepted in menus.
    pub const KEYS: &'static str = "0123456789*#";

    /// Accepts a key from [`DtmfDigit::KEYS`].
    pub fn new(key: char) -> Option<DtmfDigit> {
        DtmfDigit::KEYS.contains(key).then_some(DtmfDigit(key))
    }

    /// Parses a one-key string such as `"1"`.
    pub fn parse(text: &str) -> Option<DtmfDigit> {
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(key), None) => DtmfDigit::new(key),
            _ => None,
        }
    }

    /// The key as a character.
    pub fn as_char(self) -> char {
        self.0
    }
}
