//! The one timer an actor keeps for its pure core's next deadline.
//!
//! Each pure core (the ACD core, a call's core, the callback readmission) tells its driver
//! when it next needs attention (its `poll_timeout`). The driver keeps one actix timer for
//! that moment: armed for the core's next deadline after every input, left alone when the
//! deadline has not moved, cancelled and re-armed when it has.

use crate::acd::Millis;
use actix::prelude::*;
use std::time::Duration;

/// The armed timer, if any, and the deadline it is for.
#[derive(Default)]
pub struct DeadlineTimer {
    armed: Option<(Millis, SpawnHandle)>,
}

impl DeadlineTimer {
    /// Arms the timer for `next` (the core's next deadline; `None`: none) when it is not
    /// already armed for that moment, cancelling a timer for another one. `fire` runs at the
    /// deadline and must call [`DeadlineTimer::fired`] on this timer first.
    pub fn rearm<A>(
        &mut self,
        next: Option<Millis>,
        now: Millis,
        ctx: &mut Context<A>,
        fire: impl FnOnce(&mut A, &mut Context<A>) + 'static,
    ) where
        A: Actor<Context = Context<A>>,
    {
        if let Some((at, handle)) = self.armed {
            if Some(at) == next {
                return;
            }
            ctx.cancel_future(handle);
            self.armed = None;
        }
        if let Some(at) = next {
            let delay = at.0.saturating_sub(now.0);
            let handle = ctx.run_later(Duration::from_millis(delay), fire);
            self.armed = Some((at, handle));
        }
    }

    /// Cancels the armed timer, if any (the core has ended).
    pub fn cancel<A>(&mut self, ctx: &mut Context<A>)
    where
        A: Actor<Context = Context<A>>,
    {
        if let Some((_, handle)) = self.armed.take() {
            ctx.cancel_future(handle);
        }
    }

    /// The timer fired: nothing is armed any more.
    pub fn fired(&mut self) {
        self.armed = None;
    }
}
