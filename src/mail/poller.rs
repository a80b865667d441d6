//! The driver: poll the folder, hand every message to the caller, mark it seen only when
//! the caller says it is stored.
//!
//! Delivery to the handler is at least once. A message is marked seen after its handler
//! returned `Ok`; if the process dies (or the connection breaks) between the two, the
//! message comes again on the next poll, so the handler must treat a `message_id` it has
//! already stored as done. A handler `Err` leaves the message unseen; it is offered again
//! on the next poll (after `poll_interval`, so a failing store is not hammered).
//!
//! A message that cannot be parsed is handed on as [`Inbound::unreadable`] rather than
//! dropped or moved to another folder: moving would hide it from the request journal
//! (C2 wants every request registered), while an unreadable request still reaches an
//! operator, who has the raw message as `message.eml`.

use super::{parse, Inbound, MailError, MailSettings, Mailbox};
use std::fmt;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Bounded exponential backoff between reconnection attempts: `first`, then doubling up to
/// `max`; [`Backoff::reset`] after a success. Pure: the caller does the waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `first`, never exceeds `max` (nor goes below `first`).
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let max = max.max(first);
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The wait before the next attempt; the one after it is twice as long, up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Back to `first`, after an attempt succeeded.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Messages fetched.
    pub fetched: usize,
    /// Handled (`Ok`) and marked seen.
    pub marked_seen: usize,
    /// The handler failed: left unseen for the next poll.
    pub left_unseen: usize,
    /// Of those handed on, how many could not be parsed (handed on as unreadable).
    pub unreadable: usize,
}

/// One poll: fetch up to `limit` unseen messages and hand each to `handler`, marking it
/// seen when the handler returns `Ok`. Stops handing on (the rest stay unseen) once `stop`
/// is cancelled; a handler already running is never interrupted.
pub async fn poll_once<F, Fut, E>(
    mailbox: &mut Mailbox,
    limit: usize,
    stop: &CancellationToken,
    handler: &F,
) -> Result<PollReport, MailError>
where
    F: Fn(Inbound) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    let batch = tokio::select! {
        _ = stop.cancelled() => return Ok(PollReport::default()),
        batch = mailbox.fetch_unseen(limit) => batch?,
    };
    let mut report = PollReport {
        fetched: batch.len(),
        ..PollReport::default()
    };
    // Parsed in order, handed on all at once: the handler's slow part is waiting for the
    // store's fsync, and concurrent handlers share one (a batch of 20 costs one wait, not
    // 20). Each is marked seen only after its own handler said it is stored.
    let mut parsed = Vec::with_capacity(batch.len());
    for (uid, raw) in batch {
        if stop.is_cancelled() {
            break;
        }
        let inbound = match parse(&raw) {
            Ok(inbound) => inbound,
            Err(e) => {
                report.unreadable += 1;
                let kept = Inbound::unreadable(&raw);
                tracing::warn!(
                    %uid, message_id = %kept.message_id, error = %e,
                    "mail: message cannot be parsed; handed on as unreadable with its raw bytes"
                );
                kept
            }
        };
        parsed.push((uid, inbound));
    }
    // A message answering another of the same batch waits for it (its thread must exist).
    let ids: std::collections::HashSet<String> =
        parsed.iter().map(|(_, m)| m.message_id.clone()).collect();
    let (after, first): (Vec<_>, Vec<_>) = parsed
        .into_iter()
        .partition(|(_, m)| m.thread_ids().iter().any(|t| ids.contains(*t)));
    let mut results = futures_util::future::join_all(first.into_iter().map(|(uid, inbound)| {
        let message_id = inbound.message_id.clone();
        let handled = handler(inbound);
        async move { (uid, message_id, handled.await) }
    }))
    .await;
    for (uid, inbound) in after {
        let message_id = inbound.message_id.clone();
        results.push((uid, message_id, handler(inbound).await));
    }
    for (uid, message_id, result) in results {
        match result {
            Ok(()) => {
                mailbox.mark_seen(uid).await?;
                report.marked_seen += 1;
                tracing::debug!(%uid, %message_id, "mail: message stored and marked seen");
            }
            Err(e) => {
                report.left_unseen += 1;
                tracing::warn!(
                    %uid, %message_id, error = %e,
                    "mail: the handler failed; the message stays unseen and comes again on \
                     the next poll"
                );
            }
        }
    }
    Ok(report)
}

/// Polls the folder until `stop` is cancelled, handing every message to `handler` (see
/// the module documentation for the guarantees). Connection failures are logged and
/// retried with a backoff from 1 s up to `max_backoff`; the poller only returns early,
/// with an error, when the settings are invalid.
pub async fn run_poller<F, Fut, E>(
    settings: &MailSettings,
    stop: CancellationToken,
    handler: F,
) -> Result<(), MailError>
where
    F: Fn(Inbound) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    settings.validate()?;
    let limit = settings.imap.fetch_limit;
    let server = settings.imap.server();
    let mut backoff = Backoff::new(Duration::from_secs(1), settings.max_backoff);
    let mut mailbox: Option<Mailbox> = None;
    loop {
        if stop.is_cancelled() {
            break;
        }
        let open = match mailbox.as_mut() {
            Some(open) => open,
            None => {
                let connected = tokio::select! {
                    _ = stop.cancelled() => break,
                    connected = Mailbox::connect(settings) => connected,
                };
                match connected {
                    Ok(open) => {
                        tracing::info!(%server, folder = %settings.imap.mailbox, "mail: mailbox open");
                        mailbox.insert(open)
                    }
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(
                            error = %e, retry_in_secs = delay.as_secs(),
                            "mail: cannot open the mailbox"
                        );
                        if pause(&stop, delay).await {
                            break;
                        }
                        continue;
                    }
                }
            }
        };
        match poll_once(open, limit, &stop, &handler).await {
            Ok(report) => {
                backoff.reset();
                if report.fetched > 0 {
                    tracing::info!(?report, "mail: poll done");
                }
                // A full batch handled cleanly: more may be waiting, go on at once.
                let more_waiting = report.fetched == limit && report.left_unseen == 0;
                if !more_waiting && pause(&stop, settings.imap.poll_interval).await {
                    break;
                }
            }
            Err(e) => {
                mailbox = None;
                let delay = backoff.next_delay();
                tracing::warn!(
                    error = %e, retry_in_secs = delay.as_secs(),
                    "mail: poll failed; reconnecting"
                );
                if pause(&stop, delay).await {
                    break;
                }
            }
        }
    }
    if let Some(open) = mailbox {
        open.logout().await;
    }
    tracing::info!(%server, "mail: poller stopped");
    Ok(())
}

/// Waits `delay`; true when `stop` was cancelled meanwhile.
async fn pause(stop: &CancellationToken, delay: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling_and_resets() {
        let s = Duration::from_secs;
        let mut b = Backoff::new(s(1), s(10));
        let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(delays, vec![s(1), s(2), s(4), s(8), s(10), s(10)]);
        b.reset();
        assert_eq!(b.next_delay(), s(1));
        let mut tiny = Backoff::new(s(5), s(1));
        assert_eq!((tiny.next_delay(), tiny.next_delay()), (s(5), s(5)));
    }

    #[tokio::test]
    async fn pause_ends_early_when_stopped() {
        let stop = CancellationToken::new();
        assert!(!pause(&stop, Duration::from_millis(1)).await);
        let canceller = stop.clone();
        tokio::spawn(async move { canceller.cancel() });
        // An hour's pause returns as soon as the token is cancelled.
        assert!(pause(&stop, Duration::from_secs(3600)).await);
    }

    #[tokio::test]
    async fn invalid_settings_stop_the_poller_at_once() {
        let imap = super::super::ImapSettings::new("", "u", super::super::Secret::new("p"));
        let smtp = super::super::SmtpSettings::new("h", "a@example.uz", "A");
        let settings = MailSettings::new(imap, smtp);
        let handler = |_m: Inbound| async { Ok::<(), String>(()) };
        let e = run_poller(&settings, CancellationToken::new(), handler)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("mail.imap.host"), "{e}");
    }
}
