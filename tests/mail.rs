//! The e-mail channel (C1, C2) against real servers: Dovecot for IMAP, aiosmtpd for SMTP,
//! both started by the harness (`tests/common/mail.rs`) on free loopback ports.
//!
//! What is proven here: real-looking mail survives the trip through an IMAP server byte
//! for byte and parses; fetching never marks mail seen, only `mark_seen` does, so a
//! message whose request was not stored comes again; the poller hands every message on
//! (an unparseable one too), retries a failed handler, survives a server restart, and
//! logs no customer address (D18); answers reach an SMTP server threaded and correctly
//! encoded; a 550 is a permanent failure, an unreachable server a transient one.
//!
//! No timing assertions: every wait is a bounded poll on an observable state. Whether a
//! message is seen is read from Dovecot's Maildir file names, not through the code under
//! test.

mod common;

use common::mail::{Dovecot, SmtpSink, TestCa, IMAP_PASSWORD};
use common::{fixture, free_port, TestDir};
use navbat::mail::{
    parse, run_poller, send, EmailAddress, ImapSettings, Inbound, MailError, MailSettings, Mailbox,
    Outgoing, OutgoingAttachment, Secret, SmtpSettings, TlsMode, UNREADABLE_TEXT,
};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Generous bound for anything the servers or the poller do.
const DEADLINE: Duration = Duration::from_secs(30);

/// The fixtures of the parsing unit tests, with their decoded subjects.
const FIXTURES: &[(&str, &str)] = &[
    ("ru-windows-1251.eml", "Не могу войти в личный кабинет"),
    ("ru-koi8-r.eml", "Результаты тестирования"),
    ("uz-utf8-qp.eml", "Roʻyxatdan oʻtishda xatolik"),
    ("pdf-attachment.eml", "Ariza"),
    ("html-only.eml", "Natijalar"),
    ("no-message-id.eml", "No id"),
    ("reply-thread.eml", "Re: [REQ-42] Ne mogu voiti"),
    ("auto-reply.eml", "Avtomatik javob: Natijalar"),
];

fn mail(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("mail/{name}"))).unwrap()
}

/// A small message with a given Message-ID.
fn note(id: &str, from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@navbat.example\r\nSubject: {subject}\r\n\
         Date: Mon, 9 Jun 2025 10:00:00 +0500\r\nMessage-ID: <{id}>\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nSalom, {subject}\r\n"
    )
    .into_bytes()
}

fn settings(imap: ImapSettings, smtp: SmtpSettings) -> MailSettings {
    let mut s = MailSettings::new(imap, smtp);
    s.io_timeout = Duration::from_secs(20);
    s.max_backoff = Duration::from_secs(1);
    s
}

fn imap_settings(dovecot: &Dovecot) -> MailSettings {
    let mut smtp = SmtpSettings::new("127.0.0.1", "support@navbat.example", "Support");
    smtp.tls = TlsMode::None;
    settings(dovecot.imap_settings(), smtp)
}

fn smtp_settings(sink: &SmtpSink) -> MailSettings {
    let mut imap = ImapSettings::new("127.0.0.1", "support", Secret::new("unused"));
    imap.tls = TlsMode::None;
    settings(
        imap,
        sink.smtp_settings("support@navbat.example", "Qoʻllab-quvvatlash xizmati"),
    )
}

/// Polls `probe` on the test's runtime (other tasks keep running) until it gives a value.
async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "gave up after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn message_ids(batch: &[(navbat::mail::Uid, Vec<u8>)]) -> Vec<String> {
    batch
        .iter()
        .map(|(_, raw)| parse(raw).unwrap().message_id)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// IMAP

#[tokio::test]
async fn real_looking_mail_survives_the_imap_round_trip() {
    let dovecot = Dovecot::start();
    for (name, _) in FIXTURES {
        dovecot.deliver_to_mailbox(&mail(name));
    }
    let mut mailbox = Mailbox::connect(&imap_settings(&dovecot)).await.unwrap();
    let batch = mailbox.fetch_unseen(50).await.unwrap();
    assert_eq!(batch.len(), FIXTURES.len(), "{}", dovecot.log());
    let mut uids: Vec<_> = batch.iter().map(|(uid, _)| *uid).collect();
    uids.dedup();
    assert_eq!(uids.len(), FIXTURES.len(), "one UID per message");
    assert!(uids.windows(2).all(|w| w[0] < w[1]), "oldest first");

    for (name, subject) in FIXTURES {
        let original = mail(name);
        let (_, raw) = batch
            .iter()
            .find(|(_, raw)| *raw == original)
            .unwrap_or_else(|| panic!("{name} did not come back byte for byte"));
        let parsed = parse(raw).unwrap();
        assert_eq!(parsed.subject, *subject, "{name}");
    }
    let ru = parse(&mail("ru-windows-1251.eml")).unwrap();
    assert!(ru.text.contains("«неверный ИНН»"));
    mailbox.logout().await;
}

#[tokio::test]
async fn fetched_mail_stays_unseen_until_marked() {
    let dovecot = Dovecot::start();
    let settings = imap_settings(&dovecot);
    dovecot.deliver_to_mailbox(&note("a-1@example.uz", "a@example.uz", "Birinchi"));
    dovecot.deliver_to_mailbox(&note("b-2@example.uz", "b@example.uz", "Ikkinchi"));

    let mut mailbox = Mailbox::connect(&settings).await.unwrap();
    let first = mailbox.fetch_unseen(10).await.unwrap();
    assert_eq!(message_ids(&first), ["a-1@example.uz", "b-2@example.uz"]);
    assert_eq!(dovecot.seen("a-1@example.uz"), Some(false));
    assert_eq!(dovecot.seen("b-2@example.uz"), Some(false));

    // Not marked: fetched again, on the same connection and after a "crash" (a new one).
    let again = mailbox.fetch_unseen(10).await.unwrap();
    assert_eq!(again, first);
    mailbox.logout().await;
    let mut mailbox = Mailbox::connect(&settings).await.unwrap();
    let after_restart = mailbox.fetch_unseen(10).await.unwrap();
    assert_eq!(after_restart, first);
    assert_eq!(dovecot.seen("a-1@example.uz"), Some(false));

    // Marked: seen on the server, and no longer fetched.
    mailbox.mark_seen(first[0].0).await.unwrap();
    eventually("a-1 flagged \\Seen in the Maildir", || {
        (dovecot.seen("a-1@example.uz") == Some(true)).then_some(())
    })
    .await;
    assert_eq!(dovecot.seen("b-2@example.uz"), Some(false));
    let rest = mailbox.fetch_unseen(10).await.unwrap();
    assert_eq!(message_ids(&rest), ["b-2@example.uz"]);
    mailbox.mark_seen(rest[0].0).await.unwrap();
    assert!(mailbox.fetch_unseen(10).await.unwrap().is_empty());

    // The limit bounds a batch; the oldest come first.
    dovecot.deliver_to_mailbox(&note("c-3@example.uz", "c@example.uz", "Uchinchi"));
    dovecot.deliver_to_mailbox(&note("d-4@example.uz", "d@example.uz", "Tortinchi"));
    let one = mailbox.fetch_unseen(1).await.unwrap();
    assert_eq!(message_ids(&one), ["c-3@example.uz"]);
    mailbox.logout().await;
}

#[tokio::test]
async fn append_adds_an_unseen_message() {
    let dovecot = Dovecot::start();
    let mut mailbox = Mailbox::connect(&imap_settings(&dovecot)).await.unwrap();
    let raw = mail("uz-utf8-qp.eml");
    mailbox.append(&raw).await.unwrap();
    assert_eq!(dovecot.seen("uz-qp-1@example.uz"), Some(false));
    let batch = mailbox.fetch_unseen(10).await.unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].1, raw);
    mailbox.logout().await;
}

#[tokio::test]
async fn a_wrong_password_says_what_to_check() {
    let dovecot = Dovecot::start();
    let mut settings = imap_settings(&dovecot);
    settings.imap.password = Secret::new("not-the-password");
    let e = Mailbox::connect(&settings).await.unwrap_err();
    assert!(matches!(e, MailError::ImapLogin { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("check mail.imap user and password"), "{text}");
    assert!(text.contains(&dovecot.port.to_string()), "{text}");
    assert!(!text.contains("not-the-password") && !text.contains(IMAP_PASSWORD));

    let mut settings = imap_settings(&dovecot);
    settings.imap.mailbox = "Nowhere".into();
    let e = Mailbox::connect(&settings).await.unwrap_err();
    assert!(matches!(e, MailError::ImapMailbox { .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// The poller

/// A log sink for the poller's tracing output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// What the test's handler saw: every Inbound handed on, and how often each id came.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<Inbound>>>);

impl Journal {
    fn count(&self, id: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.message_id == id)
            .count()
    }
    fn find(&self, pred: impl Fn(&Inbound) -> bool) -> Option<Inbound> {
        self.0.lock().unwrap().iter().find(|m| pred(m)).cloned()
    }
}

// On the test's own thread (current-thread runtime), so that the log capture, which is
// thread-local, sees the poller's lines.
#[tokio::test(flavor = "current_thread")]
async fn the_poller_hands_everything_on_and_marks_only_what_was_stored() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _log_guard = tracing::subscriber::set_default(subscriber);

    let dovecot = Dovecot::start();
    let ru = mail("ru-windows-1251.eml");
    let ru_id = "0a1b2c3d$4e5f$ru1251@example.ru";
    let junk: &[u8] = b"garbage \xff\xfe without a single header line\r\n";
    dovecot.deliver_to_mailbox(&ru);
    dovecot.deliver_to_mailbox(&mail("uz-utf8-qp.eml"));
    dovecot.deliver_to_mailbox(junk);

    let journal = Journal::default();
    let stop = CancellationToken::new();
    let poller = {
        let settings = imap_settings(&dovecot);
        let journal = journal.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let handler = move |m: Inbound| {
                let journal = journal.clone();
                async move {
                    let id = m.message_id.clone();
                    journal.0.lock().unwrap().push(m);
                    // The store "fails" the first time it sees the Russian mail.
                    if id == "0a1b2c3d$4e5f$ru1251@example.ru" && journal.count(&id) == 1 {
                        return Err("journal disk full (simulated)".to_string());
                    }
                    Ok(())
                }
            };
            run_poller(&settings, stop, handler).await
        })
    };

    // The failed one stays unseen and comes again; then everything is seen.
    eventually("the Russian mail handed on twice", || {
        (journal.count(ru_id) >= 2).then_some(())
    })
    .await;
    eventually("all three messages flagged \\Seen", || {
        let all = [ru_id, "uz-qp-1@example.uz", "without a single header"]
            .iter()
            .all(|needle| dovecot.seen(needle) == Some(true));
        all.then_some(())
    })
    .await;
    assert_eq!(journal.count("uz-qp-1@example.uz"), 1);

    // The unparseable one was handed on, not dropped, with its bytes.
    let unreadable = journal
        .find(|m| m.text == UNREADABLE_TEXT)
        .expect("the unreadable message reached the handler");
    assert!(unreadable.message_id.starts_with("sha256:"));
    assert_eq!(unreadable.attachments[0].bytes, junk);

    // Mail arriving while it runs is picked up too.
    dovecot.deliver_to_mailbox(&note("late-5@example.uz", "late@example.uz", "Kech"));
    eventually("the late mail handed on and seen", || {
        (journal.count("late-5@example.uz") == 1 && dovecot.seen("late-5@example.uz") == Some(true))
            .then_some(())
    })
    .await;

    stop.cancel();
    let stopped = tokio::time::timeout(DEADLINE, poller)
        .await
        .expect("the poller stops when cancelled");
    stopped.unwrap().unwrap();

    // D18: the poller's log names messages by id, never by the customer's address.
    let text = logs.text();
    assert!(text.contains("handler failed"), "{text}");
    assert!(text.contains("journal disk full"), "{text}");
    for personal in ["ivan.petrov@example.ru", "ogabek@example.uz", "Иван"] {
        assert!(!text.contains(personal), "{personal} in the log:\n{text}");
    }
}

#[tokio::test]
async fn the_poller_reconnects_after_the_server_restarts() {
    let mut dovecot = Dovecot::start();
    let journal = Journal::default();
    let stop = CancellationToken::new();
    let poller = {
        let settings = imap_settings(&dovecot);
        let journal = journal.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let handler = move |m: Inbound| {
                let journal = journal.clone();
                async move {
                    journal.0.lock().unwrap().push(m);
                    Ok::<(), String>(())
                }
            };
            run_poller(&settings, stop, handler).await
        })
    };
    dovecot.deliver_to_mailbox(&note("before-1@example.uz", "a@example.uz", "Oldin"));
    eventually("the first mail handed on", || {
        (journal.count("before-1@example.uz") == 1).then_some(())
    })
    .await;

    // An outage: the server goes away, mail keeps arriving, the server comes back.
    // Killing the server breaks the poller's connection whenever it happens; the poller
    // must notice on its next command and reconnect with its backoff.
    dovecot.stop();
    dovecot.deliver_to_mailbox(&note("during-2@example.uz", "b@example.uz", "Davomida"));
    dovecot.restart();
    eventually("the mail of the outage handed on and seen", || {
        (journal.count("during-2@example.uz") == 1
            && dovecot.seen("during-2@example.uz") == Some(true))
        .then_some(())
    })
    .await;
    assert_eq!(journal.count("before-1@example.uz"), 1);

    stop.cancel();
    tokio::time::timeout(DEADLINE, poller)
        .await
        .expect("the poller stops when cancelled")
        .unwrap()
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// SMTP

fn answer(to: &str) -> Outgoing {
    Outgoing {
        to_addr: EmailAddress::new(to),
        to_name: Some("Иван Петров".into()),
        subject: "Re: Не могу войти в личный кабинет — javob".into(),
        text: "Здравствуйте, Иван!\nПароль сброшен, попробуйте ещё раз.\n\
               Roʻyxatdan oʻtish: parol tiklandi.\n"
            .into(),
        message_id: "req-42.answer-1@navbat.example".into(),
        in_reply_to: Some("0a1b2c3d$4e5f$ru1251@example.ru".into()),
        references: vec![
            "first-0@example.ru".into(),
            "0a1b2c3d$4e5f$ru1251@example.ru".into(),
        ],
        attachments: Vec::new(),
        auto_reply: false,
    }
}

/// The header block with folded lines joined.
fn unfolded_head(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.replace("\r\n ", " ").replace("\r\n\t", " ")
}

#[tokio::test]
async fn an_answer_arrives_threaded_and_correctly_encoded() {
    let sink = SmtpSink::start();
    let settings = smtp_settings(&sink);
    let out = answer("ivan.petrov@example.ru");
    send(&settings, &out).await.unwrap();

    let got = sink.wait_for(1, DEADLINE);
    assert_eq!(got.len(), 1);
    let received = &got[0];
    assert_eq!(received.mail_from, "support@navbat.example");
    assert_eq!(received.rcpt_to, ["ivan.petrov@example.ru"]);

    let head = unfolded_head(&received.raw);
    assert!(head.is_ascii(), "headers must be 7-bit:\n{head}");
    let lines: Vec<&str> = head.split("\r\n").collect();
    let has = |line: &str| lines.contains(&line);
    assert!(
        has("Message-ID: <req-42.answer-1@navbat.example>"),
        "{head}"
    );
    assert!(
        has("In-Reply-To: <0a1b2c3d$4e5f$ru1251@example.ru>"),
        "{head}"
    );
    assert!(
        has("References: <first-0@example.ru> <0a1b2c3d$4e5f$ru1251@example.ru>"),
        "{head}"
    );
    assert!(has("Content-Type: text/plain; charset=utf-8"), "{head}");
    let subject_line = lines
        .iter()
        .find(|l| l.starts_with("Subject:"))
        .expect("a Subject header");
    assert!(
        subject_line.contains("=?utf-8?"),
        "RFC 2047: {subject_line}"
    );

    // Read back with mail-parser directly, as a customer's mail client would.
    let parsed = mail_parser::MessageParser::default()
        .parse(&received.raw)
        .expect("the received mail parses");
    assert_eq!(parsed.subject(), Some(out.subject.as_str()));
    assert_eq!(parsed.message_id(), Some("req-42.answer-1@navbat.example"));
    assert_eq!(
        parsed.in_reply_to().as_text(),
        Some("0a1b2c3d$4e5f$ru1251@example.ru")
    );
    // On the wire every line ends in CRLF.
    assert_eq!(
        parsed
            .body_text(0)
            .map(|t| t.replace("\r\n", "\n"))
            .as_deref(),
        Some(out.text.as_str()),
        "the body decodes to what was sent"
    );
    let from = parsed.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.name(), Some("Qoʻllab-quvvatlash xizmati"));
    let to = parsed.to().and_then(|a| a.first()).unwrap();
    assert_eq!(to.name(), Some("Иван Петров"));

    // And by our own parser, as the customer's reply would be threaded.
    let ours = parse(&received.raw).unwrap();
    assert_eq!(
        ours.thread_ids(),
        ["0a1b2c3d$4e5f$ru1251@example.ru", "first-0@example.ru"]
    );
}

#[tokio::test]
async fn an_attachment_arrives_intact() {
    let sink = SmtpSink::start();
    let mut out = answer("aziz@example.uz");
    out.message_id = "req-43.answer-1@navbat.example".into();
    let pdf = mail("ariza.pdf");
    out.attachments.push(OutgoingAttachment {
        file_name: "maʼlumotnoma.pdf".into(),
        media_type: "application/pdf".into(),
        bytes: pdf.clone(),
    });
    send(&smtp_settings(&sink), &out).await.unwrap();
    let got = sink.wait_for(1, DEADLINE);
    let back = parse(&got[0].raw).unwrap();
    assert_eq!(back.attachments.len(), 1);
    assert_eq!(back.attachments[0].file_name, "maʼlumotnoma.pdf");
    assert_eq!(back.attachments[0].media_type, "application/pdf");
    assert_eq!(back.attachments[0].bytes, pdf);
    assert_eq!(back.text, out.text);
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_failure() {
    let sink = SmtpSink::start_refusing(&["nobody@example.uz"]);
    let settings = smtp_settings(&sink);
    let e = send(&settings, &answer("nobody@example.uz"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, MailError::SmtpPermanent { code: 550, .. }),
        "{e:?}"
    );
    assert!(e.is_permanent() && !e.is_transient());
    let text = e.to_string();
    assert!(text.contains("n***@example.uz"), "{text}");
    assert!(!text.contains("nobody@example.uz"), "D18: {text}");
    assert!(sink.received().is_empty());

    // The same server takes mail for anyone else.
    send(&settings, &answer("someone@example.uz"))
        .await
        .unwrap();
    assert_eq!(sink.wait_for(1, DEADLINE).len(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_failure() {
    let mut smtp = SmtpSettings::new("127.0.0.1", "support@navbat.example", "Support");
    smtp.tls = TlsMode::None;
    smtp.port = free_port(); // nothing listens there
    let mut imap = ImapSettings::new("127.0.0.1", "support", Secret::new("unused"));
    imap.tls = TlsMode::None;
    let e = send(&settings(imap, smtp), &answer("ivan@example.uz"))
        .await
        .unwrap_err();
    assert!(matches!(e, MailError::SmtpTransient { .. }), "{e:?}");
    assert!(e.is_transient());
}

// ---------------------------------------------------------------------------------------------
// TLS with a private CA

#[tokio::test]
async fn imap_over_tls_and_starttls_with_a_private_ca() {
    let certs = TestDir::new("mail-ca");
    let ca = TestCa::make(certs.path());
    let dovecot = Dovecot::start_tls(&ca);
    dovecot.deliver_to_mailbox(&note("tls-1@example.uz", "a@example.uz", "Shifrlangan"));

    // TLS from the first byte, trusting the private CA.
    let mut settings = imap_settings(&dovecot);
    settings.imap.tls = TlsMode::Tls;
    settings.imap.port = dovecot.imaps_port.unwrap();
    settings.imap.ca_file = Some(ca.ca_pem.clone());
    let mut mailbox = Mailbox::connect(&settings).await.unwrap();
    assert_eq!(
        message_ids(&mailbox.fetch_unseen(10).await.unwrap()),
        ["tls-1@example.uz"]
    );
    mailbox.logout().await;

    // STARTTLS on the plain port.
    let mut settings = imap_settings(&dovecot);
    settings.imap.tls = TlsMode::StartTls;
    settings.imap.ca_file = Some(ca.ca_pem.clone());
    let mut mailbox = Mailbox::connect(&settings).await.unwrap();
    let batch = mailbox.fetch_unseen(10).await.unwrap();
    mailbox.mark_seen(batch[0].0).await.unwrap();
    mailbox.logout().await;

    // Without the CA the certificate is not trusted: an error, not a plain-text fallback.
    let mut settings = imap_settings(&dovecot);
    settings.imap.tls = TlsMode::Tls;
    settings.imap.port = dovecot.imaps_port.unwrap();
    let e = Mailbox::connect(&settings).await.unwrap_err();
    assert!(matches!(e, MailError::ImapTls { .. }), "{e:?}");
    assert!(e.to_string().contains("ca_file"), "{e}");
}

#[tokio::test]
async fn starttls_is_never_skipped_when_the_server_lacks_it() {
    let dovecot = Dovecot::start(); // ssl = no: no STARTTLS
    let mut settings = imap_settings(&dovecot);
    settings.imap.tls = TlsMode::StartTls;
    let e = Mailbox::connect(&settings).await.unwrap_err();
    assert!(matches!(e, MailError::ImapTls { .. }), "{e:?}");

    let sink = SmtpSink::start(); // plain, no STARTTLS
    let mut settings = smtp_settings(&sink);
    settings.smtp.tls = TlsMode::StartTls;
    let e = send(&settings, &answer("ivan@example.uz"))
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(sink.received().is_empty(), "nothing may go out in clear");
}

#[tokio::test]
async fn smtp_over_starttls_and_tls_with_a_private_ca() {
    let certs = TestDir::new("mail-ca");
    let ca = TestCa::make(certs.path());
    for mode in [TlsMode::StartTls, TlsMode::Tls] {
        let sink = SmtpSink::start_tls(mode, &ca);
        let mut settings = smtp_settings(&sink);
        settings.smtp.tls = mode;
        settings.smtp.ca_file = Some(ca.ca_pem.clone());
        send(&settings, &answer("ivan@example.uz"))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        let got = sink.wait_for(1, DEADLINE);
        assert_eq!(got[0].rcpt_to, ["ivan@example.uz"], "{mode:?}");

        // The same server without trusting its CA: refused before anything is sent.
        settings.smtp.ca_file = None;
        let e = send(&settings, &answer("olga@example.uz"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, MailError::SmtpTransient { code: None, .. }),
            "{mode:?}: {e:?}"
        );
        assert_eq!(sink.received().len(), 1, "{mode:?}");
    }
}
