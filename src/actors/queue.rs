//! QueueActor: one per queue. Keeps the queue's running tallies (offered,
//! answered, abandoned, timed out, blocked) for the API and wallboards; the
//! live figures (waiting, longest wait, operators by state) come from the
//! ACD core's snapshot. It routes nothing and announces nothing: the ACD core
//! (`acd`, hosted by `acd_host::AcdActor`) routes, and each call's own core
//! (`call`) times its place and expected-wait announcements, asking the host for
//! its place (`acd_host::WaitingPosition`) and using the core's one estimate
//! (`acd::expected_wait_ms`).

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
