//! Requests by e-mail and Telegram against a real navbat: a real Dovecot as the support
//! line's mailbox and a real SMTP server (aiosmtpd) receiving navbat's mail, both started by
//! the tests on free loopback ports; Telegram through the local Bot API stand-in of
//! `common::telegram` (the one stand-in allowed: these machines cannot reach Telegram; it
//! follows the Bot API's documented JSON for getUpdates and sendMessage, with 429
//! `retry_after` and 403 for a blocked bot).
//!
//! * A customer's mail becomes a request (seen in the mailbox only once it is), the
//!   operator's reply arrives by SMTP threaded (In-Reply-To, References, the number in the
//!   subject), the customer's answer lands on the same request; a redelivered mail changes
//!   nothing.
//! * The bot registers a chat's first message, answers with the number in the user's
//!   language, threads the chat's later messages, delivers the operator's replies through a
//!   429, records a blocked user's reply as failed, and a redelivered update changes nothing.
//! * `kill -9` while mail, Telegram messages and forms arrive: afterwards every one of them
//!   is exactly one request (or one message of one), none missing, none doubled.

mod common;

use common::desk::{self, login, request, with_desk};
use common::mail::{Dovecot, SmtpSink};
use common::requests::{channels, header, inbox_ids, mail};
use common::telegram::BotApi;
use common::{wait_until, Navbat, TestConfig};
use mail_parser::MimeHeaders;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
#[test]
fn mail_becomes_a_request_and_the_reply_arrives_threaded() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start();
    let nav = Navbat::start(
        "requests-mail",
        with_desk(TestConfig::default(), "").extra_toml(&channels(
            Some(&dovecot),
            Some(&smtp),
            None,
        )),
    );
    let op = login(nav.http, "op1001");
    dovecot.deliver_to_mailbox(&mail(
        "c1@example.uz",
        "dilnoza@example.uz",
        "Вопрос о кодах маркировки",
        "Здравствуйте! Как получить коды маркировки?",
        None,
    ));
    let id = wait_until("the mail's request", WAIT, || {
        inbox_ids(&op, "?channel=email").pop()
    });
    // Marked seen only now that the request is on disk.
    wait_until("the mail marked seen", WAIT, || {
        (dovecot.seen("c1@example.uz") == Some(true)).then_some(())
    });
    let page = op.get(&format!("/requests/{id}")).body;
    assert!(page.contains("Как получить коды маркировки?"), "{page}");
    assert!(
        !page.contains("dilnoza@example.uz"),
        "the full address is on the page"
    );

    // The operator answers; the mail goes out by SMTP, threaded.
    assert_eq!(
        op.post_form(
            &format!("/requests/{id}/reply"),
            &[("body", "Коды выдаются в личном кабинете.")]
        )
        .status,
        303
    );
    let sent = smtp.wait_for(1, WAIT);
    let raw = String::from_utf8_lossy(&sent[0].raw).into_owned();
    assert_eq!(sent[0].rcpt_to, vec!["dilnoza@example.uz".to_owned()]);
    assert_eq!(header(&raw, "In-Reply-To"), Some("<c1@example.uz>"));
    assert!(
        header(&raw, "References")
            .unwrap_or("")
            .contains("<c1@example.uz>"),
        "{raw}"
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(&sent[0].raw)
        .unwrap();
    assert!(parsed.subject().unwrap().contains(&format!("[{id}]")));
    assert!(parsed.body_text(0).unwrap().contains("личном кабинете"));
    let ours = parsed.message_id().unwrap().to_owned();
    wait_until("the delivery recorded", WAIT, || {
        let p = op.get(&format!("/requests/{id}")).body;
        (p.contains("yuborildi") || p.contains("отправлено")).then_some(())
    });

    // The customer answers our mail: the same request, back in work.
    dovecot.deliver_to_mailbox(&mail(
        "c2@example.uz",
        "dilnoza@example.uz",
        &format!("Re: [{id}] Вопрос о кодах маркировки"),
        "Спасибо, получилось.",
        Some(&ours),
    ));
    wait_until("the answer on the request", WAIT, || {
        op.get(&format!("/requests/{id}"))
            .body
            .contains("Спасибо, получилось.")
            .then_some(())
    });
    // The editor forwards it to the chancellery (D15): the letter from the template, with
    // the thread attached as a text file.
    let editor = login(nav.http, "editor");
    let page = editor.get(&format!("/requests/{id}")).body;
    assert!(
        page.contains(&format!("{id}-sonli murojaatni")) || page.contains(&format!("№ {id}")),
        "{page}"
    );
    assert_eq!(
        editor
            .post_form(
                &format!("/requests/{id}/letter"),
                &[("body", &format!("Направляем обращение № {id}."))]
            )
            .status,
        303
    );
    let sent = smtp.wait_for(2, WAIT);
    assert_eq!(sent[1].rcpt_to, vec![desk::CHANCELLERY.to_owned()]);
    let letter = mail_parser::MessageParser::default()
        .parse(&sent[1].raw)
        .unwrap();
    let thread = letter
        .attachments()
        .find(|a| {
            a.attachment_name()
                .is_some_and(|n| n.ends_with("-thread.txt"))
        })
        .expect("the thread attached");
    assert!(String::from_utf8_lossy(thread.contents()).contains("Как получить коды маркировки?"));
    // Its file is on the request page, for those who see the request, and the download is
    // audited.
    let page = editor.get(&format!("/requests/{id}")).body;
    let at = page
        .find(&format!("/requests/{id}/files/"))
        .expect("file link");
    let link = page[at..].split('"').next().unwrap().to_owned();
    let file = editor.get(&link);
    assert_eq!(file.status, 200);
    assert!(file.body.contains("Как получить коды маркировки?"));
    assert_eq!(login(nav.http, "officer-dtm").get(&link).status, 404);
    assert!(login(nav.http, "admin")
        .get("/audit")
        .body
        .contains("request_attachment_download"));

    // The first mail delivered again (a server's redelivery): nothing new.
    dovecot.deliver_to_mailbox(&mail(
        "c1@example.uz",
        "dilnoza@example.uz",
        "Вопрос о кодах маркировки",
        "Здравствуйте! Как получить коды маркировки?",
        None,
    ));
    wait_until("the copy seen", WAIT, || {
        let both_seen = dovecot.seen("Спасибо, получилось") == Some(true);
        both_seen.then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(inbox_ids(&op, "?channel=email"), vec![id.clone()]);
    let page = op.get(&format!("/requests/{id}")).body;
    assert_eq!(
        page.matches("Как получить коды маркировки?").count(),
        1,
        "{page}"
    );
}

#[test]
fn the_bot_registers_threads_answers_and_survives_429_and_blocks() {
    let bot = BotApi::start();
    let nav = Navbat::start(
        "requests-telegram",
        with_desk(TestConfig::default(), "").extra_toml(&channels(None, None, Some(&bot))),
    );
    let op = login(nav.http, "op1001");
    bot.user_says(5001, "Дилноза", "ru", "/start");
    wait_until("the greeting", WAIT, || {
        bot.sent_to(5001)
            .iter()
            .any(|t| t.contains("Здравствуйте"))
            .then_some(())
    });
    bot.user_says(5001, "Дилноза", "ru", "Где посмотреть коды маркировки?");
    let reply = wait_until("the number", WAIT, || {
        bot.sent_to(5001).into_iter().find(|t| t.contains("Номер:"))
    });
    // Support asks who is writing (C8), in the user's language.
    assert!(reply.contains("ИНН"), "{reply}");
    let id = reply
        .split_whitespace()
        .find(|w| w.starts_with("support-"))
        .unwrap()
        .to_owned();
    assert_eq!(inbox_ids(&op, "?channel=telegram"), vec![id.clone()]);

    // The update given again (its offset never confirmed): nothing new.
    bot.resend_last();
    wait_until("the resent update confirmed", WAIT, || {
        (bot.unconfirmed() == 0).then_some(())
    });

    // The operator answers through one 429.
    bot.throttle(1);
    op.post_form(
        &format!("/requests/{id}/reply"),
        &[("body", "Коды в личном кабинете.")],
    );
    wait_until("the reply in the chat", WAIT, || {
        bot.sent_to(5001)
            .iter()
            .any(|t| t == "Коды в личном кабинете.")
            .then_some(())
    });
    assert_eq!(bot.throttled(), 1);
    // The user writes again: the same request.
    bot.user_says(5001, "Дилноза", "ru", "Спасибо, а где инструкция?");
    wait_until("the second message on the request", WAIT, || {
        op.get(&format!("/requests/{id}"))
            .body
            .contains("а где инструкция?")
            .then_some(())
    });
    let page = op.get(&format!("/requests/{id}")).body;
    let thread = &page[page.find("id=\"thread\"").unwrap()..];
    assert_eq!(thread.matches("Где посмотреть коды маркировки?").count(), 1);

    // A user who blocked the bot: the reply is recorded as not sent, with the reason.
    bot.user_says(5002, "Aziz", "uz", "Salom, savolim bor");
    let other = wait_until("the second chat's number", WAIT, || {
        bot.sent_to(5002)
            .into_iter()
            .find(|t| t.contains("Raqami:"))
    });
    let other = other
        .split_whitespace()
        .find(|w| w.starts_with("support-"))
        .unwrap()
        .to_owned();
    bot.block(5002);
    op.post_form(&format!("/requests/{other}/reply"), &[("body", "Javob")]);
    wait_until("the failed delivery", WAIT, || {
        let p = op.get(&format!("/requests/{other}")).body;
        p.contains("blocked").then_some(())
    });
    let mut ids = inbox_ids(&op, "?channel=telegram");
    ids.sort();
    let mut want = vec![id, other];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn kill_9_while_mail_telegram_and_forms_arrive_keeps_each_once() {
    let shared = tempfile::tempdir().unwrap();
    let db_path = shared.path().join("navbat.db");
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start();
    let bot = BotApi::start();
    let config = with_desk(TestConfig::default(), "").extra_toml(&format!(
        "{}\n[database]\nurl = \"sqlite://{}\"\njournal_dir = \"{}\"\n\n[requests]\nform_per_source_per_hour = 1000\n",
        channels(Some(&dovecot), Some(&smtp), Some(&bot)),
        db_path.display(),
        shared.path().join("journal").display()
    ))
    .key_file(&shared.path().join("keys/recordings.key"));
    let mut first = Navbat::start("requests-channels-kill-first", config.clone());
    const N: usize = 20;
    // Bounded load: N mails, N Telegram chats and N forms, while navbat is killed.
    for i in 0..N {
        dovecot.deliver_to_mailbox(&mail(
            &format!("load{i}@example.uz"),
            &format!("c{i}@example.uz"),
            &format!("Savol {i}"),
            &format!("mail {i}"),
            None,
        ));
        bot.user_says(7000 + i as i64, "User", "uz", &format!("telegram {i}"));
    }
    let addr = first.http;
    let forms = std::thread::spawn(move || {
        let mut numbered = 0;
        for i in 0..N {
            let page = std::panic::catch_unwind(|| request(addr, "GET", "/r/support", &[], None));
            let Ok(page) = page else { break };
            let Some(at) = page.body.find("name=\"token\" value=\"") else {
                break;
            };
            let token = page.body[at + 20..at + 52].to_owned();
            let body = desk::form(&[
                ("token", &token),
                ("email", "f@example.uz"),
                ("stir", "123456789"),
                ("text", &format!("form {i}")),
            ]);
            let sent = std::panic::catch_unwind(|| {
                request(
                    addr,
                    "POST",
                    "/r/support",
                    &[],
                    Some(("application/x-www-form-urlencoded", &body)),
                )
            });
            match sent {
                Ok(r) if r.body.contains("id=\"request-number\"") => numbered += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        numbered
    });
    let op = login(addr, "op1001");
    wait_until("some requests of each channel", WAIT, || {
        let ids = inbox_ids(&op, "");
        (ids.len() >= 10).then_some(())
    });
    first.kill9();
    let numbered = forms.join().unwrap();

    let second = Navbat::start("requests-channels-kill-second", config);
    let op = login(second.http, "op1001");
    // Everything that was waiting is taken in: every mail seen, every update confirmed.
    wait_until("every mail seen and update confirmed", WAIT, || {
        let all_seen = (0..N).all(|i| dovecot.seen(&format!("load{i}@example.uz")) == Some(true));
        (all_seen && bot.unconfirmed() == 0).then_some(())
    });
    // Count in the database: exactly one request per mail and per chat.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _inside = rt.enter();
    let db = navbat::store::db::Db::connect_lazy(&navbat::config::DatabaseUrl::Sqlite(format!(
        "sqlite://{}",
        db_path.display()
    )))
    .unwrap();
    wait_until("the database caught up", WAIT, || {
        let n = rt
            .block_on(
                db.scalar("SELECT COUNT(*) FROM requests WHERE channel IN ('email', 'telegram')"),
            )
            .unwrap();
        (n >= 2 * N as i64).then_some(())
    });
    // Message texts are sealed at rest (D18): opened with the shared key file.
    let pii = navbat::pii::Pii::load(&shared.path().join("keys/recordings.key")).unwrap();
    let telegram_in: Vec<String> = rt
        .block_on(db.texts(
            "SELECT body FROM request_messages WHERE channel = 'telegram' AND direction = 'in'",
        ))
        .unwrap()
        .iter()
        .map(|b| pii.open(navbat::pii::field::MESSAGE_BODY, b).unwrap())
        .collect();
    for i in 0..N {
        let mails = rt
            .block_on(db.scalar(&format!(
                "SELECT COUNT(*) FROM requests WHERE intake_key = 'mail:load{i}@example.uz'"
            )))
            .unwrap();
        assert_eq!(mails, 1, "mail {i}");
        let text = format!("telegram {i}");
        let chats = telegram_in.iter().filter(|b| **b == text).count();
        assert_eq!(chats, 1, "telegram message {i}");
    }
    let telegram_requests = rt
        .block_on(db.scalar("SELECT COUNT(*) FROM requests WHERE channel = 'telegram'"))
        .unwrap();
    assert_eq!(telegram_requests, N as i64);
    let forms_kept = rt
        .block_on(db.scalar("SELECT COUNT(*) FROM requests WHERE channel = 'web'"))
        .unwrap();
    assert!(
        forms_kept >= numbered as i64,
        "{forms_kept} forms kept, {numbered} numbered"
    );
    assert!(inbox_ids(&op, "").len() >= 2 * N);
}
