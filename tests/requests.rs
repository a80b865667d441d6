//! Requests (issue 14) against a real navbat with its SQLite store: the public web form (one
//! request per form however often it is sent, the honeypot, the per-source budget, the
//! checks), the inbox and the request page by role and tenant, every action of the request
//! page, and `kill -9` while forms arrive: afterwards every form that got a number is exactly
//! one request, the same number when sent again, and numbering goes on after the highest.

mod common;
mod store_support;

use common::desk::{self, login, request, with_desk};
use common::{wait_until, Navbat, TestConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// The one-time token of a fresh form.
fn form_token(addr: SocketAddr, tenant: &str, lang: &str) -> String {
    let page = request(addr, "GET", &format!("/r/{tenant}?lang={lang}"), &[], None);
    assert_eq!(page.status, 200, "{page:?}");
    let at = page
        .body
        .find("name=\"token\" value=\"")
        .expect("token field")
        + 20;
    page.body[at..at + 32].to_owned()
}

fn post_form(addr: SocketAddr, tenant: &str, fields: &[(&str, &str)]) -> common::HttpResponse {
    request(
        addr,
        "POST",
        &format!("/r/{tenant}"),
        &[],
        Some(("application/x-www-form-urlencoded", &desk::form(fields))),
    )
}

/// The number on the answer page, if any.
fn number_in(body: &str) -> Option<String> {
    let at = body.find("id=\"request-number\">")? + 20;
    Some(body[at..].split('<').next()?.to_owned())
}

fn citizen(token: &str, text: &str) -> Vec<(&'static str, String)> {
    vec![
        ("token", token.to_owned()),
        ("lang", "ru".to_owned()),
        ("name", "Дилноза Рахимова".to_owned()),
        ("email", "dilnoza@example.uz".to_owned()),
        ("stir", "123456789".to_owned()),
        ("category", "question".to_owned()),
        ("subject", "Код маркировки".to_owned()),
        ("text", text.to_owned()),
    ]
}

fn fields<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, x)| (*k, x.as_str())).collect()
}

#[test]
fn the_web_form_registers_each_form_once_and_refuses_bots_and_floods() {
    let nav = Navbat::start(
        "requests-form",
        with_desk(TestConfig::default(), "")
            .extra_toml("\n[requests]\nform_per_source_per_hour = 4\n"),
    );
    let a = nav.http;
    // The page in both languages; an unknown tenant has no form.
    let uz = request(a, "GET", "/r/support", &[], None);
    assert!(uz.body.contains("Murojaat yuborish"), "{}", uz.body);
    let ru = request(a, "GET", "/r/support?lang=ru", &[], None);
    assert!(ru.body.contains("Отправить обращение"), "{}", ru.body);
    assert_eq!(request(a, "GET", "/r/nope", &[], None).status, 404);

    // A good form: a number; the same form again (refresh, double click): the same number.
    let token = form_token(a, "support", "ru");
    let f = citizen(&token, "Где посмотреть коды?");
    let first = post_form(a, "support", &fields(&f));
    assert_eq!(first.status, 200, "{first:?}");
    let number = number_in(&first.body).expect("a request number");
    assert!(number.starts_with("support-"), "{number}");
    assert!(first
        .body
        .contains("Ответ придёт на вашу электронную почту"));
    let again = post_form(a, "support", &fields(&f));
    assert_eq!(number_in(&again.body).as_deref(), Some(number.as_str()));

    // Checks: the support line asks for the STIR; text and a contact are needed.
    let mut bad = citizen(&form_token(a, "support", "ru"), "");
    bad[4].1 = "12345".into();
    let resp = post_form(a, "support", &fields(&bad));
    assert_eq!(resp.status, 422, "{resp:?}");
    assert!(resp.body.contains("Напишите текст обращения"));
    assert!(resp.body.contains("ИНН (СТИР) состоит из 9 цифр"));

    // A bot fills the hidden field: an answer without a number, nothing registered.
    let mut bot = citizen(&form_token(a, "support", "ru"), "spam");
    bot.push(("website", "http://spam.example".into()));
    let resp = post_form(a, "support", &fields(&bot));
    assert_eq!(resp.status, 200);
    assert_eq!(number_in(&resp.body), None);

    // The inbox: the operator sees the one request (not the bot's), with the masked name
    // shown as given and the subject.
    let op = login(a, "op1001");
    let inbox = op.get("/requests");
    assert_eq!(inbox.status, 200);
    assert_eq!(
        inbox.body.matches("class=\"request-row\"").count(),
        1,
        "{}",
        inbox.body
    );
    assert!(inbox.body.contains(&number) && inbox.body.contains("Код маркировки"));
    // The API has it too, the contact masked, with its clock.
    let api = common::http_request(
        a,
        "GET",
        &format!("/api/requests/{number}"),
        Some(common::ADMIN_TOKEN),
        None,
    );
    assert_eq!(api.status, 200, "{api:?}");
    let j = api.json();
    assert_eq!(j["request"]["status"], "new");
    assert_eq!(j["request"]["sla"]["clock"], "first_answer");
    assert!(
        !api.body.contains("dilnoza@example.uz") && !api.body.contains("123456789"),
        "{}",
        api.body
    );
    // Its SLA clock runs (support is 24/7 here: the first answer within 10 minutes, C4).
    assert!(
        inbox
            .body
            .contains("class=\"sla-running\">Birinchi javob: "),
        "{}",
        inbox.body
    );

    // The budget: 4 forms per source per hour; 3 were counted above (the bot's too), so one
    // more is taken and the next is refused with a clear answer.
    let ok = post_form(
        a,
        "support",
        &fields(&citizen(&form_token(a, "support", "ru"), "ещё")),
    );
    assert!(number_in(&ok.body).is_some(), "{ok:?}");
    let flood = post_form(
        a,
        "support",
        &fields(&citizen(&form_token(a, "support", "ru"), "x")),
    );
    assert_eq!(flood.status, 429);
    assert!(
        flood.body.contains("слишком много обращений"),
        "{}",
        flood.body
    );
}

#[test]
fn the_request_page_works_by_role_and_keeps_every_change() {
    let nav = Navbat::start("requests-page", with_desk(TestConfig::default(), ""));
    let a = nav.http;
    let token = form_token(a, "support", "ru");
    let number = number_in(&post_form(a, "support", &fields(&citizen(&token, "Вопрос"))).body)
        .expect("number");
    let path = format!("/requests/{number}");

    // Another tenant's officer: not there. The support officer reads but cannot act.
    assert_eq!(login(a, "officer-dtm").get(&path).status, 404);
    let officer = login(a, "officer-support");
    assert_eq!(officer.get(&path).status, 200);
    assert!(!officer.get(&path).body.contains("id=\"reply-form\""));
    assert_eq!(
        officer
            .post_form(&format!("{path}/reply"), &[("body", "x")])
            .status,
        403
    );
    // Without the CSRF token nothing happens.
    let op = login(a, "op1001");
    let forged = request(
        a,
        "POST",
        &format!("{path}/note"),
        &[("Cookie", &op.cookie_header())],
        Some(("application/x-www-form-urlencoded", "body=forged")),
    );
    assert_eq!(forged.status, 403, "{forged:?}");

    // The operator takes it, replies (first answer: status answered), adds a note, waits for
    // the customer, reclassifies.
    assert_eq!(
        op.post_form(&format!("{path}/assign"), &[("to", "me")])
            .status,
        303
    );
    assert_eq!(
        op.post_form(&format!("{path}/reply"), &[("body", "Коды здесь: ...")])
            .status,
        303
    );
    assert_eq!(
        op.post_form(&format!("{path}/note"), &[("body", "позвонить завтра")])
            .status,
        303
    );
    assert_eq!(
        op.post_form(&format!("{path}/status"), &[("to", "waiting")])
            .status,
        303
    );
    assert_eq!(
        op.post_form(
            &format!("{path}/classify"),
            &[("priority", "high"), ("category", "complaint")]
        )
        .status,
        303
    );
    // A move the status table does not allow is refused with the reason on the page.
    let refused = op.post_form(&format!("{path}/status"), &[("to", "new")]);
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains("id=\"request-problem\""),
        "{}",
        refused.body
    );

    // The operator cannot write to the chancellery; the editor can, and records its answer.
    assert_eq!(
        op.post_form(&format!("{path}/letter"), &[("body", "x")])
            .status,
        403
    );
    let editor = login(a, "editor");
    assert_eq!(
        editor
            .post_form(&format!("{path}/letter"), &[("body", "Просим разъяснить")])
            .status,
        303
    );
    assert_eq!(
        editor
            .post_form(
                &format!("{path}/answer"),
                &[("reference", "01-12/345"), ("body", "Разъяснение получено")]
            )
            .status,
        303
    );

    let page = op.get(&path);
    assert_eq!(page.status, 200);
    let b = &page.body;
    assert!(b.contains("Коды здесь: ..."), "{b}");
    assert!(b.contains("позвонить завтра"));
    assert!(b.contains("Просим разъяснить") && b.contains(desk::CHANCELLERY));
    assert!(b.contains("id=\"request-reference\">01-12/345"));
    assert!(b.contains("id=\"request-assignee\">op1001"));
    // After the chancellery's answer it is back in work; high priority, a complaint.
    assert!(
        b.contains("id=\"request-status\">В работе")
            || b.contains("id=\"request-status\">Ishlanmoqda"),
        "{b}"
    );
    assert!(b.contains("Yuqori") || b.contains("Высокий"));
    // Every change is in the history.
    let history = &b[b.find("id=\"history\"").unwrap()..];
    for kind in [
        "opened",
        "assigned",
        "message_out",
        "note",
        "status",
        "classified",
        "letter",
        "chancellery_answer",
    ] {
        assert!(history.contains(kind), "{kind} missing in {history}");
    }
    // The audit log names who did it.
    let audit = login(a, "admin").get("/audit");
    assert!(audit.body.contains("request_message_out") && audit.body.contains("request_letter"));
}

#[test]
fn missed_calls_become_one_call_back_request_per_number_and_day() {
    let nav = Navbat::start("requests-missed", with_desk(TestConfig::default(), ""));
    // Two calls from the same number give up in the support queue (support lists
    // "abandoned" in from_calls); a dtm call that gives up makes nothing (dtm lists only
    // "closed", the default).
    for i in 0..2 {
        nav.caller(
            &format!("support-{i}"),
            "caller_abandon.xml",
            desk::SUPPORT_DID,
            500,
        )
        .wait_success();
    }
    nav.caller("dtm", "caller_abandon.xml", common::DTM_DID, 500)
        .wait_success();
    let op = login(nav.http, "op1001");
    let id = wait_until("the call-back request", Duration::from_secs(30), || {
        let inbox = op.get("/requests?channel=phone").body;
        let at = inbox.find("data-id=\"")? + 9;
        Some(inbox[at..].split('"').next()?.to_owned())
    });
    assert!(id.starts_with("support-"), "{id}");
    let page = wait_until("both calls linked", Duration::from_secs(30), || {
        let page = op.get(&format!("/requests/{id}")).body;
        (page.matches("href=\"/calls/").count() == 2).then_some(page)
    });
    assert!(page.contains("Telefon") || page.contains("Телефон"));
    let inbox = op.get("/requests").body;
    assert_eq!(inbox.matches("class=\"request-row\"").count(), 1, "{inbox}");
}

#[test]
fn kill_9_while_forms_arrive_loses_none_and_doubles_none() {
    let shared = tempfile::tempdir().unwrap();
    let db = shared.path().join("navbat.db");
    let journal = shared.path().join("journal");
    let config = with_desk(TestConfig::default(), "").extra_toml(&format!(
        "\n[database]\nurl = \"sqlite://{}\"\njournal_dir = \"{}\"\n\n[requests]\nform_per_source_per_hour = 1000\n",
        db.display(),
        journal.display()
    )).key_file(&shared.path().join("keys/recordings.key"));
    let mut first = Navbat::start("requests-kill-first", config.clone());
    // Forms arrive from a thread while navbat is killed: bounded (200 forms, 60 s).
    let addr = first.http;
    let numbered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = numbered.clone();
    let sender = std::thread::spawn(move || {
        let mut got: BTreeMap<String, String> = BTreeMap::new();
        let until = std::time::Instant::now() + Duration::from_secs(60);
        for i in 0..200 {
            if std::time::Instant::now() > until {
                break;
            }
            let page = std::panic::catch_unwind(|| form_token(addr, "support", "uz"));
            let Ok(token) = page else { break };
            let f = citizen(&token, &format!("form {i}"));
            let resp = std::panic::catch_unwind(|| post_form(addr, "support", &fields(&f)));
            match resp {
                Ok(r) => {
                    if let Some(n) = number_in(&r.body) {
                        got.insert(token, n);
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Err(_) => break,
            }
        }
        got
    });
    // Killed once ten senders have their numbers (the inbox may already show a form whose
    // answer the sender has not read yet: that one's answer dies with the process).
    wait_until("ten forms answered", Duration::from_secs(60), || {
        (numbered.load(std::sync::atomic::Ordering::Relaxed) >= 10).then_some(())
    });
    first.kill9();
    let answered = sender.join().unwrap();
    assert!(
        answered.len() >= 10,
        "only {} forms answered",
        answered.len()
    );

    let second = Navbat::start("requests-kill-second", config);
    let b = second.http;
    // Every form that got a number gets the same number when sent again, and no other.
    for (token, number) in &answered {
        let resp = post_form(b, "support", &fields(&citizen(token, "again")));
        assert_eq!(
            number_in(&resp.body).as_deref(),
            Some(number.as_str()),
            "{token}"
        );
    }
    // The inbox holds each once.
    let op = login(b, "op1001");
    let inbox = op.get("/requests").body;
    for number in answered.values() {
        assert_eq!(
            inbox.matches(&format!("data-id=\"{number}\"")).count(),
            1,
            "{number} in the inbox"
        );
    }
    // Numbering goes on after the highest number given before the kill.
    let highest = answered
        .values()
        .filter_map(|n| n.rsplit('-').next()?.parse::<u32>().ok())
        .max()
        .unwrap();
    let fresh = number_in(
        &post_form(
            b,
            "support",
            &fields(&citizen(&form_token(b, "support", "uz"), "new")),
        )
        .body,
    )
    .expect("a number after the restart");
    let n: u32 = fresh.rsplit('-').next().unwrap().parse().unwrap();
    assert!(n > highest, "{fresh} after {highest}");
}

#[test]
fn requests_on_postgres_survive_a_restart_with_their_thread() {
    let pg = store_support::Postgres::start();
    let shared = tempfile::tempdir().unwrap();
    let config = with_desk(TestConfig::default(), "")
        .extra_toml(&format!(
            "\n[database]\nurl = {:?}\njournal_dir = \"{}\"\n",
            pg.url(),
            shared.path().join("journal").display()
        ))
        .key_file(&shared.path().join("keys/recordings.key"));
    let first = Navbat::start("requests-pg-first", config.clone());
    let a = first.http;
    let number = number_in(
        &post_form(
            a,
            "support",
            &fields(&citizen(&form_token(a, "support", "ru"), "Вопрос")),
        )
        .body,
    )
    .expect("number");
    let op = login(a, "op1001");
    let path = format!("/requests/{number}");
    assert_eq!(
        op.post_form(&format!("{path}/reply"), &[("body", "Ответ оператора")])
            .status,
        303
    );
    assert_eq!(
        op.post_form(&format!("{path}/status"), &[("to", "resolved")])
            .status,
        303
    );
    drop(first);

    let second = Navbat::start("requests-pg-second", config);
    let b = second.http;
    let op = login(b, "op1001");
    let page = op.get(&path).body;
    assert!(
        page.contains("Ответ оператора") && page.contains("Вопрос"),
        "{page}"
    );
    assert!(
        page.contains("id=\"request-status\">Hal qilingan"),
        "{page}"
    );
    // Resolved: not in the open inbox, in the resolved one.
    assert!(!op.get("/requests").body.contains(&number));
    assert!(op.get("/requests?status=resolved").body.contains(&number));
    // A new form: the next number.
    let next = number_in(
        &post_form(
            b,
            "support",
            &fields(&citizen(&form_token(b, "support", "ru"), "Ещё")),
        )
        .body,
    )
    .expect("number");
    let n = |id: &str| id.rsplit('-').next().unwrap().parse::<u32>().unwrap();
    assert_eq!(n(&next), n(&number) + 1, "{next} after {number}");
}

/// A `multipart/form-data` body with `fields` and one file; returns (content type, body).
fn multipart(fields: &[(&str, &str)], file: (&str, &[u8])) -> (String, Vec<u8>) {
    let boundary = "navbatTestBoundary7d1f";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n",
            file.0
        )
        .as_bytes(),
    );
    body.extend_from_slice(file.1);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn the_web_form_takes_a_checked_file() {
    let nav = Navbat::start(
        "requests-file",
        with_desk(TestConfig::default(), "").extra_toml("\n[requests]\nattachment_max_kib = 4\n"),
    );
    let a = nav.http;
    let post = |name: &str, bytes: &[u8]| {
        let token = form_token(a, "support", "ru");
        let f = citizen(&token, "Скан во вложении");
        let (ct, body) = multipart(&fields(&f), (name, bytes));
        common::http_raw_bytes(a, "POST", "/r/support", &[], Some((&ct, &body)))
    };
    let pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
    let ok = post("skan.pdf", pdf);
    let number = number_in(&ok.body).unwrap_or_else(|| panic!("{ok:?}"));
    // An executable named .pdf is refused by its bytes; a file over the limit by its size.
    let exe = post("invoice.pdf", b"MZ\x90\x00\x03\x00\x00\x00");
    assert_eq!(exe.status, 422);
    assert!(
        exe.body.contains("Файлы такого типа не принимаются"),
        "{}",
        exe.body
    );
    let big = post("big.txt", &[b'a'; 5000]);
    assert_eq!(big.status, 413);
    assert!(big.body.contains("Файл слишком большой"));
    // The file is on the request, and downloads as sent.
    let op = login(a, "op1001");
    let page = op.get(&format!("/requests/{number}")).body;
    assert!(page.contains("skan.pdf"), "{page}");
    let at = page.find(&format!("/requests/{number}/files/")).unwrap();
    let link = page[at..].split('"').next().unwrap().to_owned();
    let file = op.get(&link);
    assert_eq!(file.status, 200);
    assert_eq!(file.body.as_bytes(), pdf);
}
