//! When the caller's leg is answered: one decision, kept in one place.
//!
//! The greeting plays as early media (183 with SDP, D5): the caller hears it instead of
//! ringback and is not charged for it. The 200 OK follows when it has played. A caller who
//! keys ahead changes that: the greeting is cut and the call answered at once (the tenant's
//! `greeting_barge_in`, default), or the greeting plays on and the key still counts. Whatever
//! happens, the caller is answered **no later than an operator answers**: a conversation never
//! runs as early media, which carriers cut after a few minutes and never bill as answered.
//!
//! Pure: the call core reports what happened and does what the answer says.

/// The caller leg's answer state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerAnswer {
    state: State,
    barge_in: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Early media; `greeting`: the Play whose end answers the call, once queued.
    Early { greeting: Option<u64> },
    /// The 200 OK went out.
    Answered,
}

/// What the call actor does about the caller's leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerStep {
    /// Nothing changes.
    Wait,
    /// Send the 200 OK now.
    Answer,
    /// Stop the prompts playing, then send the 200 OK.
    CutGreetingAndAnswer,
}

impl CallerAnswer {
    /// A leg in early media; `barge_in` is the tenant's `greeting_barge_in`.
    pub fn early(barge_in: bool) -> CallerAnswer {
        CallerAnswer {
            state: State::Early { greeting: None },
            barge_in,
        }
    }

    /// Whether the 200 OK went out.
    pub fn answered(&self) -> bool {
        self.state == State::Answered
    }

    /// The 200 OK went out (whatever the reason: no media, no SDP offer, or a step above).
    pub fn mark_answered(&mut self) {
        self.state = State::Answered;
    }

    /// The greeting was queued as Play `id`: its end answers the call.
    pub fn greeting_queued(&mut self, id: u64) {
        if let State::Early { greeting: None } = self.state {
            self.state = State::Early { greeting: Some(id) };
        }
    }

    /// Play `id` has finished.
    pub fn on_played(&mut self, id: u64) -> AnswerStep {
        match self.state {
            State::Early { greeting: Some(g) } if g == id => AnswerStep::Answer,
            _ => AnswerStep::Wait,
        }
    }

    /// The caller pressed a key in the IVR.
    pub fn on_key(&mut self) -> AnswerStep {
        match self.state {
            State::Early { .. } if self.barge_in => AnswerStep::CutGreetingAndAnswer,
            _ => AnswerStep::Wait,
        }
    }

    /// An operator answered: the caller must be answered before the bridge.
    pub fn on_operator_answered(&mut self) -> AnswerStep {
        match self.state {
            State::Early { .. } => AnswerStep::Answer,
            State::Answered => AnswerStep::Wait,
        }
    }
}

/// How a call that reached an operator ends, from what the caller's leg saw. `answered`: the
/// 200 went out; `confirmed`: the caller's ACK came back; `caller_cause`: why the caller's leg
/// ended, when the caller ended it (`None`: the operator or navbat ended the call).
///
/// The call counts as answered only when the caller got the 200: confirmed, or ended by the
/// other side while the ACK was on its way. A CANCEL that crossed our 200 is an abandoned
/// call, and a 200 never acknowledged (the leg timed out) a failed one.
pub fn talking_outcome(
    answered: bool,
    confirmed: bool,
    caller_cause: Option<&str>,
) -> crate::events::CallOutcome {
    use crate::events::CallOutcome;
    match (answered, confirmed, caller_cause) {
        (true, true, _) => CallOutcome::Answered,
        (_, _, Some("cancel")) => CallOutcome::Abandoned,
        (true, false, None) => CallOutcome::Answered,
        (true, false, Some("bye")) => CallOutcome::Answered,
        _ => CallOutcome::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::CallOutcome;

    #[test]
    fn the_greeting_end_answers() {
        let mut a = CallerAnswer::early(true);
        a.greeting_queued(3);
        assert_eq!(a.on_played(2), AnswerStep::Wait);
        assert_eq!(a.on_played(3), AnswerStep::Answer);
        a.mark_answered();
        assert!(a.answered());
        assert_eq!(a.on_played(3), AnswerStep::Wait);
    }

    #[test]
    fn a_key_during_the_greeting_cuts_it_by_default() {
        let mut a = CallerAnswer::early(true);
        a.greeting_queued(1);
        assert_eq!(a.on_key(), AnswerStep::CutGreetingAndAnswer);
        a.mark_answered();
        assert_eq!(a.on_key(), AnswerStep::Wait);
    }

    #[test]
    fn without_barge_in_the_greeting_plays_on_but_the_operator_answer_answers() {
        let mut a = CallerAnswer::early(false);
        a.greeting_queued(1);
        assert_eq!(a.on_key(), AnswerStep::Wait);
        assert_eq!(a.on_operator_answered(), AnswerStep::Answer);
        a.mark_answered();
        assert_eq!(a.on_operator_answered(), AnswerStep::Wait);
        // The greeting's end (never sent once the bridge cleared it) changes nothing.
        assert_eq!(a.on_played(1), AnswerStep::Wait);
    }

    #[test]
    fn only_the_first_greeting_counts() {
        let mut a = CallerAnswer::early(false);
        a.greeting_queued(1);
        a.greeting_queued(5);
        assert_eq!(a.on_played(5), AnswerStep::Wait);
        assert_eq!(a.on_played(1), AnswerStep::Answer);
    }

    #[test]
    fn the_outcome_follows_the_callers_leg() {
        assert_eq!(
            talking_outcome(true, true, Some("bye")),
            CallOutcome::Answered
        );
        assert_eq!(talking_outcome(true, true, None), CallOutcome::Answered);
        // The operator hung up while the caller's ACK was on its way.
        assert_eq!(talking_outcome(true, false, None), CallOutcome::Answered);
        assert_eq!(
            talking_outcome(true, false, Some("cancel")),
            CallOutcome::Abandoned
        );
        assert_eq!(
            talking_outcome(false, false, Some("cancel")),
            CallOutcome::Abandoned
        );
        assert_eq!(
            talking_outcome(true, false, Some("timeout")),
            CallOutcome::Failed
        );
        assert_eq!(talking_outcome(false, false, None), CallOutcome::Failed);
    }
}
