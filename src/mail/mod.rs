//! The e-mail channel (C1): customers write to the support mailbox, operators answer by mail.
//!
//! A narrow library for the request module to build on; it knows nothing of requests.
//!
//! * [`parse`] turns the raw bytes of one message into an [`Inbound`]: normalised
//!   Message-ID (or `sha256:` of the bytes when there is none), threading headers, sender,
//!   subject, the plain text (HTML-only mail is reduced to text), date and attachments.
//!   Russian mail in windows-1251 or koi8-r and Uzbek mail in UTF-8 come out as UTF-8.
//!   Pure: no I/O, no clock.
//! * [`Mailbox`] reads an IMAP folder by UID. [`Mailbox::fetch_unseen`] uses
//!   `BODY.PEEK[]`, so reading does not mark anything seen; the caller calls
//!   [`Mailbox::mark_seen`] only once its request is on disk. A crash in between means the
//!   message is fetched again: delivery to the caller is at least once, and the caller makes
//!   it exactly once by keying its records on [`Inbound::message_id`].
//! * [`run_poller`] drives a [`Mailbox`]: every message goes to an async handler; `Ok`
//!   marks it seen, `Err` leaves it unseen for the next poll. A message that cannot be
//!   parsed at all is not dropped and not moved aside: it is handed on as
//!   [`Inbound::unreadable`] (its raw bytes attached as `message.eml`), so an operator
//!   sees it (C2: no request is lost). Connection failures are retried with a bounded
//!   backoff until the cancellation token fires.
//! * [`send`] sends one [`Outgoing`] answer through SMTP with the headers mail clients
//!   thread on (`Message-ID`, `In-Reply-To`, `References`). Its error says whether the
//!   server refused the message for good ([`MailError::is_permanent`]: do not retry) or
//!   only for now.
//!
//! Customers' addresses are personal data (D18): they are held in [`EmailAddress`], whose
//! `Debug` and `Display` print `i***@example.com`; the `Debug` of [`Inbound`] and
//! [`Outgoing`] never prints a body; server replies quoted in errors have addresses masked.
//!
//! TLS is rustls with the ring provider and the Mozilla roots (plus an optional private CA
//! file), for IMAP (implicit TLS or STARTTLS) and SMTP alike. [`TlsMode::None`] exists for
//! loopback test servers; [`MailSettings::validate`] refuses it with credentials on any other
//! host.

// The other modules' authors build on this one: every public item says what it is for.
#![deny(missing_docs)]

mod address;
mod error;
mod inbound;
mod mailbox;
mod outgoing;
mod poller;
mod settings;
mod tls;

pub use address::{mask_addresses, plausible_email, EmailAddress};
pub use error::MailError;
pub use inbound::{parse, raw_message_id, Inbound, InboundAttachment, UNREADABLE_TEXT};
pub use mailbox::{Mailbox, Uid};
pub use outgoing::{message_id_for, render, send, Outgoing, OutgoingAttachment};
pub use poller::{poll_once, run_poller, Backoff, PollReport};
pub use settings::{ImapSettings, MailSettings, Secret, SmtpSettings, TlsMode};
