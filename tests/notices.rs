//! Notices to the client (D7) against a real navbat: the support line's officer list gets an
//! e-mail at a real SMTP server (aiosmtpd; the relay settings come with a real Dovecot
//! mailbox) and its Telegram group a message through the Bot API stand-in of
//! `common::telegram` (the one stand-in allowed: these machines cannot reach Telegram).
//!
//! * An unresolved complaint call: one notice, both channels, number masked, a link to the
//!   call; the delivery is on the call's page; saving the form again sends nothing new.
//! * The relay is down: the notice waits, navbat is killed mid-retry and started again, the
//!   relay comes up, and the notice arrives exactly once.
//! * A web request nobody answers: its first-answer clock (1 working minute here, 24/7) runs
//!   out, the breach is recorded once on the request and the officer is told.
//! * 500 unresolved calls in a minute: `digest_above_per_minute` alone, the rest folded into
//!   one digest per channel.

mod common;

use common::desk::{self, login, with_desk, Session};
use common::mail::{Dovecot, SmtpSink, IMAP_PASSWORD, IMAP_USER};
use common::requests::channels;
use common::telegram::BotApi;
use common::{free_port, wait_until, Navbat, TestConfig, EVENT_DEADLINE};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);
const OFFICER: &str = "officer@support.example.uz";
const GROUP: i64 = -1_001_234_567;
/// caller_abandon.xml's number and its masked form.
const CALLER: &str = "998900000001";
const CALLER_MASKED: &str = "99890*****01";

fn notices_toml(per_minute: u32) -> String {
    format!(
        "\n[tenant.notices]\nemails = [\"{OFFICER}\"]\ntelegram_chat = {GROUP}\n\n[notices]\ndigest_above_per_minute = {per_minute}\n"
    )
}

/// `n` support calls that give up in the queue; their names (`c17`) in the order they ended.
fn ended_calls(nav: &Navbat, n: usize) -> Vec<String> {
    let sipp = nav.sipp_client(
        "callers",
        "caller_abandon.xml",
        &[
            "-s",
            desk::SUPPORT_DID,
            "-d",
            "100",
            "-r",
            "50",
            "-m",
            &n.to_string(),
        ],
    );
    let calls = wait_until("the calls ended", Duration::from_secs(120), || {
        let ended: Vec<String> = nav
            .events()
            .iter()
            .filter(|e| e["kind"] == "call_finished" && e["tenant"] == "support")
            .filter_map(|e| e["call"].as_str().map(str::to_owned))
            .collect();
        (ended.len() >= n).then_some(ended)
    });
    drop(sipp);
    calls
}

/// The supervisor saves the after-call form of `call` as an unresolved complaint.
fn unresolved(s: &Session, call: &str) -> u16 {
    s.post_form(
        &format!("/desk/calls/{call}/disposition"),
        &[
            ("category", "complaint"),
            ("outcome", "unresolved"),
            ("notes", "Aziz Karimov, 123456789: kod kelmadi"),
            ("caller_name", "Aziz Karimov"),
            ("organisation", "Turon MChJ"),
            ("stir", "123456789"),
        ],
    )
    .status
}

fn store_name(nav: &Navbat, call: &str) -> String {
    wait_until("the call record in the store", EVENT_DEADLINE, || {
        let r = nav.get(&format!("/api/calls/{call}/history"));
        (r.status == 200).then(|| r.json()["call"].as_str().unwrap().to_owned())
    })
}

#[test]
fn an_unresolved_complaint_reaches_mail_and_the_group_once_and_shows_on_the_call() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start();
    let bot = BotApi::start();
    let nav = Navbat::start(
        "notices",
        with_desk(TestConfig::default(), "").extra_toml(&format!(
            "{}{}",
            channels(Some(&dovecot), Some(&smtp), Some(&bot)),
            notices_toml(10)
        )),
    );
    let call = ended_calls(&nav, 1).remove(0);
    let uid = store_name(&nav, &call);
    let sup = login(nav.http, "supervisor");
    assert_eq!(unresolved(&sup, &call), 200);

    let mail = smtp.wait_for(1, WAIT);
    assert_eq!(mail[0].rcpt_to, vec![OFFICER.to_owned()]);
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail[0].raw)
        .unwrap();
    let subject = parsed.subject().unwrap().to_owned();
    assert!(
        subject.contains("hal qilinmagan") && subject.contains("не решён"),
        "{subject}"
    );
    assert!(
        subject.contains("shikoyat") && subject.contains("жалоба"),
        "{subject}"
    );
    let body = parsed.body_text(0).unwrap().into_owned();
    assert!(body.contains(CALLER_MASKED), "{body}");
    assert!(body.contains(&format!("/calls/{uid}")), "{body}");
    // Personal data stays out (D18): no full number, no name, no STIR, no notes.
    let raw = String::from_utf8_lossy(&mail[0].raw).into_owned();
    for secret in [CALLER, "Aziz", "123456789"] {
        assert!(!raw.contains(secret), "{secret} in the notice mail");
    }
    let group = wait_until("the group message", WAIT, || {
        bot.sent_to(GROUP).into_iter().next()
    });
    assert!(
        group.contains("не решён") && group.contains(CALLER_MASKED),
        "{group}"
    );
    assert!(!group.contains(CALLER));

    // On the call's page: both deliveries sent.
    wait_until("the deliveries on the call page", WAIT, || {
        let page = sup.get(&format!("/calls/{uid}")).body;
        (page.matches("data-state=\"sent\"").count() == 2).then_some(())
    });
    // Saved again (revision 2), the same reasons: no second notice.
    assert_eq!(unresolved(&sup, &call), 200);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.received().len(), 1);
    assert_eq!(bot.sent_to(GROUP).len(), 1);
}

#[test]
fn a_notice_waits_out_a_dead_relay_across_a_kill_and_arrives_once() {
    let dovecot = Dovecot::start();
    let port = free_port();
    let shared = tempfile::tempdir().unwrap();
    // The relay's port has nobody listening yet.
    let relay = format!(
        "\n[tenant.requests.mail]\nimap_host = \"127.0.0.1\"\nimap_port = {}\nimap_tls = \"none\"\n\
         imap_user = \"{IMAP_USER}\"\nimap_password = \"{IMAP_PASSWORD}\"\npoll_secs = 1\n\
         smtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_tls = \"none\"\n\
         from = \"support@navbat.example.uz\"\n",
        dovecot.port
    );
    let config = with_desk(TestConfig::default(), "").extra_toml(&format!(
        "{relay}\n[tenant.notices]\nemails = [\"{OFFICER}\"]\n\n[database]\nurl = \"sqlite://{}\"\njournal_dir = \"{}\"\n",
        shared.path().join("navbat.db").display(),
        shared.path().join("journal").display()
    ))
    .key_file(&shared.path().join("keys/recordings.key"));
    let mut first = Navbat::start("notices-kill-first", config.clone());
    let call = ended_calls(&first, 1).remove(0);
    let uid = store_name(&first, &call);
    let sup = login(first.http, "supervisor");
    assert_eq!(unresolved(&sup, &call), 200);
    wait_until("the notice retrying", WAIT, || {
        let page = sup.get(&format!("/calls/{uid}")).body;
        page.contains("data-state=\"retrying\"").then_some(())
    });
    first.kill9();

    let smtp = SmtpSink::start_on(port);
    let second = Navbat::start("notices-kill-second", config);
    let mail = smtp.wait_for(1, WAIT);
    assert_eq!(mail[0].rcpt_to, vec![OFFICER.to_owned()]);
    let sup = login(second.http, "supervisor");
    wait_until("the delivery sent", WAIT, || {
        let page = sup.get(&format!("/calls/{uid}")).body;
        page.contains("data-state=\"sent\"").then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(smtp.received().len(), 1, "sent exactly once");
}

#[test]
fn five_hundred_unresolved_calls_in_a_minute_arrive_as_digests() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start();
    let bot = BotApi::start();
    let nav = Navbat::start(
        "notices-burst",
        with_desk(TestConfig::default(), "").extra_toml(&format!(
            "{}{}",
            channels(Some(&dovecot), Some(&smtp), Some(&bot)),
            notices_toml(5)
        )),
    );
    const N: usize = 500;
    let calls = ended_calls(&nav, N);
    // Every call's record must be in the store before its form is saved.
    store_name(&nav, calls.last().unwrap());
    // Eight supervisors' desks save the forms at once, so the burst fits in about a minute.
    let http = nav.http;
    let workers: Vec<_> = calls
        .chunks(N / 8)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            std::thread::spawn(move || {
                let sup = login(http, "supervisor");
                for call in &chunk {
                    assert_eq!(unresolved(&sup, call), 200, "{call}");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    // 5 alone, then everything else of the minute in one digest (per channel).
    let mails = wait_until("every notice mailed", Duration::from_secs(240), || {
        let got = smtp.received();
        let covered: usize = got
            .iter()
            .map(|m| {
                let p = mail_parser::MessageParser::default().parse(&m.raw).unwrap();
                let s = p.subject().unwrap_or("").to_owned();
                // "N ta xabarnoma" in a digest's subject, else one.
                s.split(" ta xabarnoma")
                    .next()
                    .and_then(|head| head.rsplit(' ').next())
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(1)
            })
            .sum();
        (covered >= N).then_some(got)
    });
    // Five alone per minute, then one digest per minute: far fewer mails than notices.
    assert!(mails.len() <= 30, "{} mails for {N} notices", mails.len());
    assert!(
        mails.len() >= 6,
        "some alone, then digests: {}",
        mails.len()
    );
    let messages = wait_until("the group's digests", Duration::from_secs(240), || {
        let got = bot.sent_to(GROUP);
        let covered: usize = got
            .iter()
            .map(|t| {
                t.split(" ta xabarnoma")
                    .next()
                    .and_then(|head| head.rsplit(' ').next())
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(1)
            })
            .sum();
        (covered >= N).then_some(got)
    });
    assert!(messages.len() <= 30, "{} group messages", messages.len());
}

#[test]
fn an_unanswered_request_breaches_its_clock_and_the_officer_is_told() {
    let dovecot = Dovecot::start();
    let smtp = SmtpSink::start();
    let nav = Navbat::start(
        "notices-sla",
        with_desk(TestConfig::default(), "").extra_toml(&format!(
            "{}\n[tenant.sla]\nfirst_answer_working_minutes = 1\n\n[tenant.notices]\nemails = [\"{OFFICER}\"]\n",
            channels(Some(&dovecot), Some(&smtp), None)
        )),
    );
    // A form with a phone number only: no acknowledgement mail, so the first mail is the notice.
    let page = common::desk::request(nav.http, "GET", "/r/support", &[], None);
    let at = page.body.find("name=\"token\" value=\"").unwrap() + 20;
    let token = page.body[at..at + 32].to_owned();
    let body = desk::form(&[
        ("token", &token),
        ("phone", "+998901112233"),
        ("stir", "123456789"),
        ("text", "Kod kelmadi"),
    ]);
    let answer = common::desk::request(
        nav.http,
        "POST",
        "/r/support",
        &[],
        Some(("application/x-www-form-urlencoded", &body)),
    );
    let at = answer.body.find("id=\"request-number\">").expect("number") + 20;
    let number = answer.body[at..].split('<').next().unwrap().to_owned();
    // A minute of working time later the clock has run out.
    let mail = smtp.wait_for(1, Duration::from_secs(150));
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail[0].raw)
        .unwrap();
    assert!(parsed.subject().unwrap().contains("muddat o'tdi"));
    let text = parsed.body_text(0).unwrap().into_owned();
    assert!(
        text.contains(&number) && text.contains(&format!("/requests/{number}")),
        "{text}"
    );
    assert!(!text.contains("998901112233"));
    let op = login(nav.http, "op1001");
    let page = op.get(&format!("/requests/{number}")).body;
    assert!(
        page.contains("breached"),
        "the breach in the history: {page}"
    );
    assert!(
        page.contains("data-state=\"sent\""),
        "the notice on the request page"
    );
    assert!(page.contains("sla-breached"));
}
