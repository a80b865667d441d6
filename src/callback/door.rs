//! The surge offer at the door of the queue, and callbacks that can be kept.
//!
//! On a results day most callers cannot talk to an operator that day: 42 people hold about
//! 10,000 conversations while 150,000 call. What the others get is decided here.
//!
//! - **At queue entry**, when the expected wait (the one estimate of the routing core,
//!   `acd::expected_wait_ms`) is beyond what the tenant allows, the caller is offered at once
//!   a callback (when one can be kept) and the information by SMS, instead of waiting first.
//!   A caller who declines may wait, up to the queue's maximum wait. A caller who was not
//!   offered at the door (the wait looked short) hears the same offer after
//!   `offer_after` in the queue, before any maximum wait: nobody is let go without having
//!   been offered both.
//! - **A callback is offered only when it can be kept**: today, when the operators serving
//!   the queue, at the share callbacks may take (`100 - live_reserve_percent`), can serve
//!   every pending callback and this one before the tenant's closing time; otherwise, when
//!   the tenant has a next-morning window, for that window, within its capacity (the caller
//!   hears it and gets it by SMS); otherwise not at all (the SMS is still offered).
//!
//! Pure: the driver passes the core's figures and `now`.

/// The tenant's door policy (`[tenant.surge.door]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoorPolicy {
    /// Offer at queue entry when the expected wait is above this (milliseconds).
    pub offer_above_ms: u64,
    /// Whether the information SMS can be offered (an SMS gateway is configured).
    pub sms: bool,
    /// Callbacks promised for the next morning's window at most (0: no such window).
    pub next_morning_capacity: u32,
}

/// The figures a callback promise is checked against, from the routing core and the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Operators serving the queue now (available, ringing, on a call, wrap-up).
    pub serving: usize,
    /// Average handle time of a call, talk plus wrap-up (milliseconds).
    pub handle_ms: u64,
    /// Share of the serving operators callbacks may hold (percent).
    pub callback_share_percent: u8,
    /// Time left until the tenant's closing time (milliseconds).
    pub until_close_ms: u64,
    /// Callbacks already promised for today and not yet done, in this queue.
    pub pending_today: usize,
    /// Callbacks already promised for the next morning.
    pub promised_next_morning: u32,
    /// Offers of a callback for today still open (the caller has not keyed, declined or
    /// left yet). Each counts as if taken, so that a caller who keys it never finds the
    /// promise already given to others: the offer takes its place when it is made, not when
    /// the key arrives seconds later.
    pub open_today: usize,
    /// Offers of a callback in the next morning's window still open, counted the same way.
    pub open_next_morning: u32,
}

/// Callbacks a next-morning window can keep: `staff` regular operators at the callback share
/// (percent) of a window of `window_ms`, each callback costing `cost_ms`. The one formula of
/// the router and the simulator.
pub fn window_capacity(
    staff: usize,
    callback_share_percent: u8,
    window_ms: u64,
    cost_ms: u64,
) -> u32 {
    let share = u64::from(callback_share_percent.min(100));
    let can = (staff as u64)
        .saturating_mul(share)
        .saturating_mul(window_ms)
        / (100 * cost_ms.max(1));
    u32::try_from(can).unwrap_or(u32::MAX)
}

impl Capacity {
    /// Callbacks the operators can still take today beyond those pending: each operator's
    /// share of the time to closing, less one call (the last call must be over by closing),
    /// divided by the handle time.
    pub fn room_today(&self) -> u64 {
        if self.handle_ms == 0 {
            return 0;
        }
        let share = u64::from(self.callback_share_percent.min(100));
        let time = self.until_close_ms.saturating_sub(self.handle_ms);
        let can = (self.serving as u64)
            .saturating_mul(share)
            .saturating_mul(time)
            / (100 * self.handle_ms);
        can.saturating_sub(self.pending_today as u64 + self.open_today as u64)
    }
}

/// When a promised callback will come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackWhen {
    /// Before today's closing time.
    Today,
    /// In the next morning's window.
    NextMorning,
}

/// What a caller is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offer {
    /// A callback, and when; `None` when none can be kept.
    pub callback: Option<CallbackWhen>,
    /// The information by SMS.
    pub sms: bool,
}

impl Offer {
    /// Whether anything is offered.
    pub fn is_some(&self) -> bool {
        self.callback.is_some() || self.sms
    }
}

impl DoorPolicy {
    /// What to offer a caller now, callbacks checked against `capacity`.
    pub fn offer(&self, capacity: &Capacity) -> Offer {
        let callback = if capacity.room_today() > 0 {
            Some(CallbackWhen::Today)
        } else if capacity
            .promised_next_morning
            .saturating_add(capacity.open_next_morning)
            < self.next_morning_capacity
        {
            Some(CallbackWhen::NextMorning)
        } else {
            None
        };
        Offer {
            callback,
            sms: self.sms,
        }
    }

    /// What to offer a caller joining the queue with `expected_wait_ms` ahead, in a queue
    /// whose maximum wait is `max_wait_ms`: nothing when the wait is within the tenant's limit
    /// (they wait, and hear [`DoorPolicy::offer`] later if still waiting). The estimate stops
    /// at the maximum wait, so reaching it always means an offer, even when the limit is set
    /// at or above the maximum wait.
    pub fn at_entry(&self, expected_wait_ms: u64, max_wait_ms: u64, capacity: &Capacity) -> Offer {
        if expected_wait_ms <= self.offer_above_ms && expected_wait_ms < max_wait_ms {
            return Offer::default();
        }
        self.offer(capacity)
    }

    /// [`DoorPolicy::at_entry`] for a caller who would otherwise hear the offer after
    /// `offer_after_ms` in the queue: when the queue's maximum wait comes first, the offer
    /// is made at the door whatever the expected wait, so that nobody is let go at the
    /// maximum wait without having been offered.
    pub fn at_queue_entry(
        &self,
        expected_wait_ms: u64,
        max_wait_ms: u64,
        offer_after_ms: u64,
        capacity: &Capacity,
    ) -> Offer {
        if max_wait_ms <= offer_after_ms {
            return self.offer(capacity);
        }
        self.at_entry(expected_wait_ms, max_wait_ms, capacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(pending_today: usize, until_close_ms: u64) -> Capacity {
        Capacity {
            serving: 40,
            handle_ms: 200_000,
            callback_share_percent: 70,
            until_close_ms,
            pending_today,
            promised_next_morning: 0,
            open_today: 0,
            open_next_morning: 0,
        }
    }

    const POLICY: DoorPolicy = DoorPolicy {
        offer_above_ms: 60_000,
        sms: true,
        next_morning_capacity: 2,
    };

    #[test]
    fn room_today_is_the_callback_share_of_the_hours_left() {
        // 40 operators x 70 % x (1 h - 200 s) / 200 s = 476 calls.
        assert_eq!(capacity(0, 3_600_000).room_today(), 476);
        assert_eq!(capacity(470, 3_600_000).room_today(), 6);
        assert_eq!(capacity(600, 3_600_000).room_today(), 0);
        assert_eq!(capacity(0, 200_000).room_today(), 0);
    }

    #[test]
    fn open_offers_hold_their_place_until_keyed_or_closed() {
        // Room for 6 today: 6 open offers fill it, so the seventh caller is offered the
        // morning; once those offers close unkeyed, today is offered again.
        let mut c = capacity(470, 3_600_000);
        assert_eq!(POLICY.offer(&c).callback, Some(CallbackWhen::Today));
        c.open_today = 6;
        assert_eq!(c.room_today(), 0);
        assert_eq!(POLICY.offer(&c).callback, Some(CallbackWhen::NextMorning));
        // The morning window (2 places): one promised and one open fill it.
        c.promised_next_morning = 1;
        c.open_next_morning = 1;
        assert_eq!(POLICY.offer(&c).callback, None);
        c.open_next_morning = 0;
        assert_eq!(POLICY.offer(&c).callback, Some(CallbackWhen::NextMorning));
        c.open_today = 0;
        assert_eq!(POLICY.offer(&c).callback, Some(CallbackWhen::Today));
    }

    #[test]
    fn the_morning_window_holds_the_callback_share_of_its_staff_time() {
        // 40 operators x 70 % x 2 h / 195 s = 1,033 (the demo's results day).
        assert_eq!(window_capacity(40, 70, 7_200_000, 195_000), 1_033);
        assert_eq!(window_capacity(40, 70, 0, 195_000), 0);
        // A zero cost is taken as 1 ms, never a division by zero.
        assert_eq!(window_capacity(40, 70, 7_200_000, 0), 201_600_000);
    }

    #[test]
    fn a_short_wait_is_not_offered_anything_at_the_door() {
        assert!(!POLICY
            .at_entry(60_000, 120_000, &capacity(0, 3_600_000))
            .is_some());
        // A wait at the queue's maximum is always long, whatever the limit says.
        assert!(POLICY
            .at_entry(50_000, 50_000, &capacity(0, 3_600_000))
            .is_some());
        assert_eq!(
            POLICY.at_entry(60_001, 120_000, &capacity(0, 3_600_000)),
            Offer {
                callback: Some(CallbackWhen::Today),
                sms: true
            }
        );
    }

    #[test]
    fn a_maximum_wait_before_the_in_queue_offer_means_an_offer_at_the_door() {
        let cap = capacity(0, 3_600_000);
        // A short wait, and the in-queue offer (30 s) comes before the maximum (120 s).
        assert!(!POLICY
            .at_queue_entry(1_000, 120_000, 30_000, &cap)
            .is_some());
        // The maximum wait (20 s) comes before the in-queue offer: offered at once.
        assert!(POLICY.at_queue_entry(1_000, 20_000, 30_000, &cap).is_some());
    }

    #[test]
    fn a_callback_that_cannot_be_kept_today_is_promised_for_the_morning_or_not_offered() {
        let mut full = capacity(476, 3_600_000);
        assert_eq!(
            POLICY.offer(&full).callback,
            Some(CallbackWhen::NextMorning)
        );
        full.promised_next_morning = 2;
        let offer = POLICY.offer(&full);
        assert_eq!(offer.callback, None);
        assert!(offer.sms, "the SMS is still offered");
        let no_window = DoorPolicy {
            next_morning_capacity: 0,
            ..POLICY
        };
        assert_eq!(no_window.offer(&capacity(476, 3_600_000)).callback, None);
    }
}
