//! The SIP parser's warnings, rate-limited per source (issue 18, part 6).
//!
//! rsipstack's parser writes a WARN line for every continuation line of a folded header value
//! past 4 KiB: one 20 KB deep-folded request wrote thousands, and fifty of them megabytes of
//! log. The guard parses each message inside [`from_source`], which names the source for this
//! thread; the [`ParserWarnings`] layer (installed with the log) lets through a small burst
//! per source ([`Buckets`], a token bucket) and counts the rest, and one summary line per
//! source and minute tells how many were held back. Parses outside a scope (the stack's own,
//! of UDP datagrams the guard passed) share one bucket.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The target prefix of the warnings held back.
const PARSER_TARGET: &str = "rsipstack::sip::parser";

/// Warnings let through per source at once.
pub const BURST: u32 = 5;
/// Refill: one warning per this many milliseconds.
const REFILL_MS: u64 = 10_000;
/// One summary line per source at most this often.
const SUMMARY_MS: u64 = 60_000;
/// Sources tracked at most (then the table is cleared: at worst a fresh burst each).
const MAX_SOURCES: usize = 4_096;

/// The key for parses without a source.
const NO_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u32,
    refilled_ms: u64,
    held: u64,
    summary_ms: Option<u64>,
}

/// Token buckets of warnings per source. Pure: the time is given.
#[derive(Debug, Default)]
pub struct Buckets {
    by_source: HashMap<IpAddr, Bucket>,
}

impl Buckets {
    /// Whether one more warning from `source` may be written at `now_ms`; when not, it is
    /// counted for the summary.
    pub fn allow(&mut self, now_ms: u64, source: IpAddr) -> bool {
        if self.by_source.len() >= MAX_SOURCES && !self.by_source.contains_key(&source) {
            self.by_source.clear();
        }
        let b = self.by_source.entry(source).or_insert(Bucket {
            tokens: BURST,
            refilled_ms: now_ms,
            held: 0,
            summary_ms: None,
        });
        let earned = now_ms.saturating_sub(b.refilled_ms) / REFILL_MS;
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            b.tokens = b.tokens.saturating_add(earned).min(BURST);
            b.refilled_ms = now_ms;
        }
        if b.tokens > 0 {
            b.tokens -= 1;
            true
        } else {
            b.held += 1;
            false
        }
    }

    /// The warnings held back from `source` since its last summary, when one is due at
    /// `now_ms` (at most one a minute, and the first as soon as any was held).
    pub fn summary(&mut self, now_ms: u64, source: IpAddr) -> Option<u64> {
        let b = self.by_source.get_mut(&source)?;
        let waiting = b
            .summary_ms
            .is_some_and(|t| now_ms.saturating_sub(t) < SUMMARY_MS);
        if b.held == 0 || waiting {
            return None;
        }
        b.summary_ms = Some(now_ms);
        Some(std::mem::take(&mut b.held))
    }
}

struct Limiter {
    buckets: Mutex<Buckets>,
    epoch: Instant,
    held_total: AtomicU64,
}

fn limiter() -> &'static Limiter {
    static LIMITER: OnceLock<Limiter> = OnceLock::new();
    LIMITER.get_or_init(|| Limiter {
        buckets: Mutex::new(Buckets::default()),
        epoch: Instant::now(),
        held_total: AtomicU64::new(0),
    })
}

impl Limiter {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

thread_local! {
    static SOURCE: Cell<Option<IpAddr>> = const { Cell::new(None) };
}

/// Parser warnings held back so far (all sources).
pub fn held_total() -> u64 {
    limiter().held_total.load(Ordering::Relaxed)
}

/// Runs `parse` (synchronous) with its parser warnings counted against `source`; writes the
/// source's summary line when one is due.
pub fn from_source<T>(source: IpAddr, parse: impl FnOnce() -> T) -> T {
    let before = SOURCE.with(|s| s.replace(Some(source)));
    let out = parse();
    SOURCE.with(|s| s.set(before));
    let l = limiter();
    let due = {
        let now = l.now_ms();
        l.buckets().summary(now, source)
    };
    if let Some(held) = due {
        tracing::warn!(
            %source,
            held,
            "SIP parser warnings from this source held back (a burst of {BURST} is written, \
             then one every {} s)",
            REFILL_MS / 1000
        );
    }
    out
}

/// The log layer that holds back parser warnings past each source's burst. Install it with
/// the subscriber (`main.rs`).
#[derive(Debug, Default, Clone, Copy)]
pub struct ParserWarnings;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ParserWarnings {
    fn event_enabled(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        let meta = event.metadata();
        if *meta.level() != tracing::Level::WARN || !meta.target().starts_with(PARSER_TARGET) {
            return true;
        }
        let source = SOURCE.with(Cell::get).unwrap_or(NO_SOURCE);
        let l = limiter();
        let now = l.now_ms();
        let allowed = l.buckets().allow(now, source);
        if !allowed {
            l.held_total.fetch_add(1, Ordering::Relaxed);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_source_then_one_per_refill_and_a_summary() {
        let mut b = Buckets::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let allowed = (0..1000).filter(|_| b.allow(1, a)).count();
        assert_eq!(allowed, BURST as usize);
        assert_eq!(b.summary(1, a), Some(1000 - u64::from(BURST)));
        // Nothing more held: no summary.
        assert_eq!(b.summary(2, a), None);
        // Another source has its own burst.
        assert!(b.allow(1, other));
        // A refill later, one more.
        assert!(b.allow(1 + REFILL_MS, a));
        assert!(!b.allow(1 + REFILL_MS, a));
        // The next summary waits a minute.
        assert_eq!(b.summary(2 + REFILL_MS, a), None);
        assert_eq!(b.summary(2 + SUMMARY_MS, a), Some(1));
    }
}
