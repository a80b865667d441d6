//! Requests from every channel (C1-C7, D9, D15): phone, e-mail, Telegram and the web form.
//!
//! ```text
//! web form / mailbox / bot / after-call form / missed call
//!        |  (intake key: form token, Message-ID, update id, number+day)
//!        v
//!   Requests::submit --> Book (pure: numbering, dedupe, status table) --> RequestStep
//!        |                                                                   |
//!        '-- awaits the journal's fsync <-- Store::record(StoreRecord::Request)
//!                                                    |
//!                         requests / request_steps / request_messages (DB writer)
//! ```
//!
//! * A request lives in the [`Book`] while open (and a while after), in memory, like the
//!   ACD's state: every change is a [`RequestStep`] that carries the request's whole new
//!   [`Head`] and what changed. The step is journaled (fsynced) before anyone is told it
//!   happened, so a mail is marked seen, a Telegram offset committed and a form answered only
//!   once the request is on disk; after a crash the book is rebuilt from the database and the
//!   undrained journal ([`Book::restore`]).
//! * Every intake carries a key (the form's one-time token, the mail's Message-ID, the update
//!   id, `phone:<tenant>:<number's lookup hash>:<day>`); a key seen before gives the same
//!   request back, so a retried intake never makes a second one.
//! * Numbers are `<tenant>-<yymmdd>-<n>` (with the node's id after the date when it is not
//!   the default), counted per tenant and local day, so an operator can read one out.
//! * Heads carry a version that grows with every step: the database keeps the newest, a
//!   replayed batch changes nothing.

pub mod book;
pub mod calls;
pub mod clocks;
pub mod courier;
pub mod db;
pub mod email;
pub mod limit;
pub mod service;
pub mod telegram;

pub use book::{Book, Intake, NewRequest, RequestError, Staged, KEY_MEMORY_MS};
pub use service::Requests;
// The data model sits below the store (which journals and writes it); named here too.
pub use crate::request_model::{attach, types};
pub use crate::request_model::{
    Change, Channel, Direction, Head, Kind, Message, Pause, Priority, RequestStep, Requester,
    Status, MAX_REFERENCES,
};

/// Starts the channels of `config`'s tenants on the current actix thread: the courier of
/// outbound messages, each tenant's Telegram bot and mailbox reader.
pub fn start_channels(config: &crate::config::Config, requests: &std::sync::Arc<Requests>) {
    let mut transports = courier::Transports {
        attachments_dir: config.requests.attachments_dir.clone(),
        ..courier::Transports::default()
    };
    for t in &config.tenants {
        if let Some(tg) = &t.requests.telegram {
            let settings = telegram::TelegramSettings {
                tenant: t.id.clone(),
                api: tg.api.clone(),
                token: tg.token.clone(),
                poll_timeout_secs: tg.poll_timeout_secs,
                ask_details: t.desk.require_caller_details,
            };
            transports.telegram.insert(t.id.clone(), settings.clone());
            actix::spawn(telegram::run(requests.clone(), settings));
        }
        if let Some(mail) = &t.requests.mail {
            transports.mail.insert(t.id.clone(), mail.clone());
            let setup = email::MailIntake {
                tenant: t.id.clone(),
                attachments_dir: config.requests.attachments_dir.clone(),
                attachment_max_bytes: config.requests.attachment_max_bytes,
            };
            let (requests, mail) = (requests.clone(), mail.clone());
            actix::spawn(async move {
                let handler = |m: crate::mail::Inbound| {
                    let (requests, setup) = (requests.clone(), setup.clone());
                    async move { email::intake(&requests, &setup, m).await }
                };
                let stop = tokio_util::sync::CancellationToken::new();
                if let Err(e) = crate::mail::run_poller(&mail, stop, handler).await {
                    tracing::error!(error = %e, "the mailbox reader stopped");
                }
            });
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel(courier::QUEUE);
    requests.set_courier(tx.clone());
    actix::spawn(courier::run(requests.clone(), transports, tx, rx));
}
