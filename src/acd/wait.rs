//! The one expected-wait estimate: what a waiting caller is told, what the surge trigger
//! and the metrics see, and what the surge policy's offer at the door of the queue compares
//! with the tenant's limit.
//!
//! The callers ahead are served `serving` at a time (operators who could take the queue's
//! calls and are available, ringing, on a call or in wrap-up), each taking the handle time
//! (talk plus wrap-up) on average: the caller at place `p` waits about `p × handle / serving`.
//! Never above the queue's maximum wait, which ends every wait; with nobody serving the wait
//! is that maximum. Erlang C would be more exact, but needs an arrival rate, and this
//! estimate errs on the long side, which is what an announcement, a surge trigger and an
//! offer of a callback want.

use super::types::QueueSnapshot;

/// Expected wait in milliseconds of the caller at 1-based `position`, with `serving`
/// operators serving the queue and `handle_ms` per call; at most `max_wait_ms` when the queue
/// has one. With nobody serving: the maximum wait, or without one, as if one operator served.
pub fn expected_wait_ms(
    position: usize,
    serving: usize,
    handle_ms: u64,
    max_wait_ms: Option<u64>,
) -> u64 {
    let places = position.max(1) as u64;
    let estimate = match (serving, max_wait_ms) {
        (0, Some(max)) => return max,
        (0, None) => places.saturating_mul(handle_ms),
        (n, _) => places.saturating_mul(handle_ms).div_ceil(n as u64),
    };
    match max_wait_ms {
        Some(max) => estimate.min(max),
        None => estimate,
    }
}

impl QueueSnapshot {
    /// Operators serving the queue: available, ringing, on a call or in wrap-up.
    pub fn serving(&self) -> usize {
        self.operators_available
            + self.operators_ringing
            + self.operators_on_call
            + self.operators_wrap_up
    }

    /// Expected wait in milliseconds of a caller who joins the queue now: nothing when nobody
    /// waits and an operator is available, else [`expected_wait_ms`] at the place behind
    /// everyone waiting, pending callbacks included (they keep earlier callers' places).
    pub fn expected_wait_ms(&self, handle_ms: u64, max_wait_ms: u64) -> u64 {
        if self.waiting + self.callbacks_waiting == 0 && self.operators_available > 0 {
            return 0;
        }
        expected_wait_ms(
            self.waiting + self.callbacks_waiting + 1,
            self.serving(),
            handle_ms,
            Some(max_wait_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::QueueId;

    #[test]
    fn places_ahead_share_the_serving_operators() {
        // Third in line, two serving, four minutes each: six minutes.
        assert_eq!(expected_wait_ms(3, 2, 240_000, None), 360_000);
        // Rounded up, never below one call's share.
        assert_eq!(expected_wait_ms(1, 3, 1_000, None), 334);
        assert_eq!(expected_wait_ms(0, 1, 1_000, None), 1_000);
        // The maximum wait ends every wait.
        assert_eq!(expected_wait_ms(30, 2, 240_000, Some(120_000)), 120_000);
        // Nobody serving: the maximum wait, or one operator's pace without one.
        assert_eq!(expected_wait_ms(2, 0, 240_000, Some(120_000)), 120_000);
        assert_eq!(expected_wait_ms(2, 0, 60_000, None), 120_000);
    }

    #[test]
    fn a_free_operator_means_no_wait_for_a_newcomer() {
        let mut snap = QueueSnapshot::empty(QueueId(0));
        snap.operators_available = 1;
        assert_eq!(snap.expected_wait_ms(240_000, 300_000), 0);
        snap.waiting = 3;
        snap.operators_on_call = 1;
        // Fourth place, two serving.
        assert_eq!(snap.expected_wait_ms(240_000, 900_000), 480_000);
        assert_eq!(snap.expected_wait_ms(240_000, 300_000), 300_000);
    }
}
