//! QueueActor: one per queue. Keeps the queue's running tallies (offered,
//! answered, abandoned, timed out, blocked) for the API and wallboards; the
//! live figures (waiting, longest wait, operators by state) come from the
//! ACD core's snapshot. Position and expected-wait announcements (media
//! issue) are driven from here.

use crate::acd::Outcome;
use actix::prelude::*;
use serde::Serialize;

/// Running totals since start.
#[derive(Debug, Default, Clone, Serialize)]
pub struct QueueTotals {
    /// Calls that entered the queue.
    pub entered: u64,
    /// Answered by an operator.
    pub answered: u64,
    /// Caller hung up while queued.
    pub abandoned: u64,
    /// Left at the maximum wait.
    pub timed_out: u64,
    /// Refused because the queue was full.
    pub blocked: u64,
}

/// One queue.
#[derive(Default)]
pub struct QueueActor {
    totals: QueueTotals,
}

impl Actor for QueueActor {
    type Context = Context<Self>;
}

/// A call left the queue with this outcome.
#[derive(Message)]
#[rtype(result = "()")]
pub struct QueueTally(pub Outcome);

impl Handler<QueueTally> for QueueActor {
    type Result = ();
    fn handle(&mut self, msg: QueueTally, _: &mut Context<Self>) {
        self.totals.entered += 1;
        match msg.0 {
            Outcome::Answered => self.totals.answered += 1,
            Outcome::Abandoned => self.totals.abandoned += 1,
            Outcome::TimedOut => self.totals.timed_out += 1,
            Outcome::Blocked => self.totals.blocked += 1,
        }
    }
}

/// Ask for the totals.
#[derive(Message)]
#[rtype(result = "QueueTotals")]
pub struct Totals;

impl Handler<Totals> for QueueActor {
    type Result = MessageResult<Totals>;
    fn handle(&mut self, _: Totals, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.totals.clone())
    }
}
