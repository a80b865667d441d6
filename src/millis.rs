//! Time for the pure cores (`acd`, the SIP transaction layer `sip::txn`): a point on the
//! driver's monotonic clock in milliseconds. The cores never read a clock; the driver passes
//! `now` into every call, and tests drive it in virtual time.

/// A point on the driver's monotonic clock, in milliseconds.
///
/// The core never reads a clock: the driver passes `now` into every call. Only differences
/// between two values mean anything; where zero lies is the driver's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// The origin of the driver's clock.
    pub const ZERO: Millis = Millis(0);

    /// `secs` whole seconds after the origin (saturating at the end of time).
    pub const fn from_secs(secs: u64) -> Millis {
        Millis(secs.saturating_mul(1000))
    }

    /// This instant plus `ms` milliseconds (saturating at the end of time).
    pub const fn plus(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`; 0 when `earlier` is in fact later.
    pub const fn saturating_since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
