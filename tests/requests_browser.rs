//! Requests in a real browser (Debian's chromium through chromedriver): a citizen fills the
//! support line's web form in Russian and gets the request number on screen (and by e-mail);
//! an operator finds it in the inbox, answers it from the request page, and the citizen's
//! answer arrives by e-mail at a real SMTP server, threaded under the request's number.

mod common;

use common::browser::Browser;
use common::desk::{self, with_desk};
use common::mail::{Dovecot, SmtpSink};
use common::requests::channels;
use common::{wait_until, Navbat, TestConfig};
use std::time::Duration;

const UI: Duration = Duration::from_secs(20);

#[test]
fn a_citizen_writes_in_russian_and_gets_the_operators_answer_by_mail() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start();
    let nav = Navbat::start(
        "requests-browser",
        with_desk(TestConfig::default(), "").extra_toml(&channels(
            Some(&dovecot),
            Some(&smtp),
            None,
        )),
    );
    let b = Browser::start(nav.dir.path());

    // The citizen: the form in Uzbek, switched to Russian.
    b.goto(&format!("http://{}/r/support", nav.http));
    b.wait_text("h1", "Murojaat yuborish", UI);
    b.click("#form-lang");
    b.wait_text("h1", "Отправить обращение", UI);
    // A form without text is refused with the reason, in Russian.
    b.fill("#f-email", "dilnoza@example.uz");
    b.click("#f-submit");
    b.wait_text("#form-problems", "Напишите текст обращения", UI);
    b.fill("#f-name", "Дилноза Рахимова");
    b.fill("#f-stir", "123456789");
    b.select("#f-category", "question");
    b.fill("#f-subject", "Коды маркировки");
    b.fill(
        "#f-text",
        "Подскажите, где получить коды маркировки для обуви?",
    );
    b.click("#f-submit");
    b.wait_text("#thanks-title", "Ваше обращение принято", UI);
    let number = b.text("#request-number");
    assert!(number.starts_with("support-"), "{number}");
    b.screenshot(&nav.dir.path().join("request-form-thanks.png"));
    // The number by e-mail too.
    let ack = smtp.wait_for(1, UI);
    let ack = mail_parser::MessageParser::default()
        .parse(&ack[0].raw)
        .unwrap();
    assert!(ack.subject().unwrap().contains(&number));

    // The operator: the inbox, the request, the answer.
    b.log_in(nav.http, "op1001");
    b.click("#nav-requests");
    b.wait_for(&format!("tr[data-id=\"{number}\"]"), UI);
    // A request arriving while the inbox is open shows up without a reload.
    let form = common::desk::request(nav.http, "GET", "/r/support", &[], None);
    let at = form.body.find("name=\"token\" value=\"").unwrap() + 20;
    let body = desk::form(&[
        ("token", &form.body[at..at + 32]),
        ("phone", "+998901112233"),
        ("stir", "123456789"),
        ("text", "Yana bir savol"),
    ]);
    let second = common::desk::request(
        nav.http,
        "POST",
        "/r/support",
        &[],
        Some(("application/x-www-form-urlencoded", &body)),
    );
    let at = second.body.find("id=\"request-number\">").unwrap() + 20;
    let second = second.body[at..].split('<').next().unwrap().to_owned();
    b.wait_for(
        &format!("tr[data-id=\"{second}\"]"),
        Duration::from_secs(40),
    );
    b.click(&format!("tr[data-id=\"{number}\"] a"));
    b.wait_text("#request-id", &number, UI);
    assert!(b.text("#thread").contains("для обуви"));
    assert_eq!(b.text("#request-status"), "Yangi");
    b.click("#assign-me");
    b.wait_text("#request-assignee", "op1001", UI);
    b.fill(
        "#reply-body",
        "Здравствуйте! Коды выдаются в личном кабинете системы «Асл белгиси».",
    );
    b.click("#reply-send");
    b.wait_text("#request-status", "Javob berilgan", UI);
    b.screenshot(&nav.dir.path().join("request-page.png"));
    if let Ok(dir) = std::env::var("NAVBAT_SCREENSHOTS") {
        b.screenshot(&std::path::Path::new(&dir).join("request-page.png"));
    }

    // The citizen's answer, by e-mail, under the number.
    let mails = smtp.wait_for(2, UI);
    let answer = mail_parser::MessageParser::default()
        .parse(&mails[1].raw)
        .unwrap();
    assert_eq!(mails[1].rcpt_to, vec!["dilnoza@example.uz".to_owned()]);
    assert!(answer.subject().unwrap().contains(&format!("[{number}]")));
    assert!(answer.body_text(0).unwrap().contains("личном кабинете"));
    wait_until("the delivery shown", UI, || {
        b.goto(&format!("http://{}/requests/{number}", nav.http));
        b.text("#thread").contains("yuborildi").then_some(())
    });
}
