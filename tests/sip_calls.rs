//! End-to-end calls: the real `navbat` binary, real SIPp callers and operators, loopback only.
//!
//! Each test starts its own navbat on free ports with a config from `common::TestConfig`,
//! drives SIPp scenarios from `tests/sipp/`, and checks outcomes in `/api/events` and
//! `/api/operators`. Nothing here asserts how long anything took; waits are polls with
//! generous deadlines, so a slow shared machine makes the tests slower, not red.
//!
//! `sipp_scenarios_pass_against_each_other` needs only SIPp: it keeps the scenario files
//! known-good independently of navbat.

mod common;

use common::*;
use serde_json::Value;

/// How long a caller in caller_ivr_talk.xml stays connected before hanging up. It only has
/// to cover IVR, enqueue, one offer and an immediate answer; a slow machine needs more.
const TALK_PAUSE_MS: u64 = 5_000;

/// How long a caller in caller_abandon.xml waits in the queue before giving up.
const ABANDON_PAUSE_MS: u64 = 1_500;

/// How long an operator in operator_answer_hangup.xml talks before hanging up.
const OPERATOR_TALK_MS: &str = "1000";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Every event of one call, in the order navbat recorded them.
fn call_events(events: &[Value], call: &Value) -> Vec<Value> {
    events
        .iter()
        .filter(|e| &e["call"] == call)
        .cloned()
        .collect()
}

/// Position of the first event of `kind` (matching `pred`) in `events`.
fn position(events: &[Value], kind: &str, pred: impl Fn(&Value) -> bool) -> Option<usize> {
    events.iter().position(|e| e["kind"] == kind && pred(e))
}

fn any(_: &Value) -> bool {
    true
}

fn kinds(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?").to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// An event kind and a predicate its event must satisfy.
type Step<'a> = (&'a str, &'a dyn Fn(&Value) -> bool);

/// Asserts that for one call, the events of `order` occur in that order.
fn assert_order(timeline: &[Value], order: &[Step]) {
    let mut last = None;
    for (kind, pred) in order {
        let at = position(timeline, kind, pred).unwrap_or_else(|| {
            panic!(
                "no `{kind}` event for this call; its timeline: {}\n{}",
                kinds(timeline),
                serde_json::to_string_pretty(timeline).unwrap_or_default()
            )
        });
        if let Some((prev_kind, prev_at)) = last {
            assert!(
                at > prev_at,
                "`{kind}` (#{at}) should come after `{prev_kind}` (#{prev_at}); timeline: {}",
                kinds(timeline)
            );
        }
        last = Some((*kind, at));
    }
}

fn operator_is(ext: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["operator"] == ext
}

// ---------------------------------------------------------------------------------------------
// (0) The scenarios against each other, no navbat involved

/// Runs a server scenario and a client scenario against it; both must exit 0.
fn pair(dir: &TestDir, name: &str, server: (&str, &[&str]), client: (&str, &[&str])) {
    let server_port = free_port();
    let mut srv = Sipp::start(
        dir.path(),
        &format!("{name}-server"),
        server.0,
        server.1,
        None,
        server_port,
    );
    // A server scenario only has to be bound before the client's first retransmission
    // window ends; SIPp's retrans="500" covers a late start, so no wait is needed here.
    let cli = Sipp::start(
        dir.path(),
        &format!("{name}-client"),
        client.0,
        client.1,
        Some(([127, 0, 0, 1], server_port).into()),
        free_port(),
    );
    cli.wait_success();
    let status = srv.wait();
    assert!(
        status.success(),
        "self-test `{name}`: server scenario {} failed ({status})\n{}",
        server.0,
        srv.report()
    );
}

#[test]
fn sipp_scenarios_pass_against_each_other() {
    sipp_bin();
    let dir = TestDir::new("selftest");
    let csv = dir.path().join("op.csv");
    std::fs::write(&csv, "SEQUENTIAL\n1001;5999\n").unwrap();
    let csv = csv.to_string_lossy().into_owned();
    let m1: &[&str] = &["-m", "1"];

    pair(
        &dir,
        "register",
        (
            "selftest_registrar.xml",
            &[
                "-key", "user", "1001", "-key", "password", "demo1001", "-m", "1",
            ],
        ),
        (
            "operator_register.xml",
            &["-inf", &csv, "-au", "1001", "-ap", "demo1001", "-m", "1"],
        ),
    );
    pair(
        &dir,
        "answer",
        ("operator_answer.xml", m1),
        (
            "selftest_offer.xml",
            &["-key", "mode", "caller_hangs_up", "-d", "200", "-m", "1"],
        ),
    );
    pair(
        &dir,
        "answer-hangup",
        ("operator_answer_hangup.xml", &["-d", "200", "-m", "1"]),
        (
            "selftest_offer.xml",
            &["-key", "mode", "operator_hangs_up", "-m", "1"],
        ),
    );
    pair(
        &dir,
        "no-answer",
        ("operator_no_answer.xml", m1),
        (
            "selftest_offer.xml",
            &["-key", "mode", "ring_timeout", "-d", "200", "-m", "1"],
        ),
    );
    let trunk: &[&str] = &["-key", "hangup", "no", "-m", "1"];
    let dial: &[&str] = &["-s", DTM_DID, "-d", "200", "-m", "1"];
    pair(
        &dir,
        "talk",
        ("selftest_trunk.xml", trunk),
        ("caller_ivr_talk.xml", dial),
    );
    pair(
        &dir,
        "abandon",
        ("selftest_trunk.xml", trunk),
        ("caller_abandon.xml", dial),
    );
    pair(
        &dir,
        "wait-bye",
        (
            "selftest_trunk.xml",
            &["-key", "hangup", "yes", "-d", "200", "-m", "1"],
        ),
        ("caller_ivr_wait_bye.xml", &["-s", DTM_DID, "-m", "1"]),
    );
    pair(
        &dir,
        "unknown-did",
        ("selftest_reject.xml", &["-key", "code", "404", "-m", "1"]),
        ("caller_unknown_did.xml", &["-s", UNKNOWN_DID, "-m", "1"]),
    );
    pair(
        &dir,
        "blocked",
        ("selftest_reject.xml", &["-key", "code", "503", "-m", "1"]),
        ("caller_blocked.xml", &["-s", DTM_DID, "-m", "1"]),
    );
    pair(
        &dir,
        "options",
        ("selftest_options_peer.xml", m1),
        ("options.xml", m1),
    );
}

// ---------------------------------------------------------------------------------------------
// (1) A caller goes through the IVR, reaches the operator, and hangs up

#[test]
fn caller_reaches_operator_through_ivr_and_hangs_up() {
    let navbat = Navbat::start("talk", TestConfig::default());
    let phone = navbat.operator_phone("1001", "operator_answer.xml", 1, &[]);
    let op = navbat.wait_operator("1001", "available");
    assert_eq!(op["registered"], true, "{op}");

    navbat
        .caller("caller", "caller_ivr_talk.xml", DTM_DID, TALK_PAUSE_MS)
        .wait_success();
    // The operator's SIPp passes only if navbat relayed the caller's BYE to it.
    phone.wait_success();

    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, any);
    assert_eq!(finished["outcome"], "answered", "{finished}");
    assert_eq!(finished["queue"], "dtm-uz", "{finished}");
    assert_eq!(finished["tenant"], "dtm", "{finished}");
    assert_eq!(finished["operator"], "1001", "{finished}");
    assert_eq!(finished["ended_by"], "caller", "{finished}");
    let timeline = call_events(&navbat.events(), &finished["call"]);
    assert_order(
        &timeline,
        &[
            ("call_arrived", &any),
            ("call_enqueued", &|e: &Value| {
                e["queue"] == "dtm-uz" && e["language"] == "uz" && e["topic"] == "results"
            }),
            ("call_offered", &operator_is("1001")),
            ("call_answered", &operator_is("1001")),
            ("call_finished", &any),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// (2) A caller gives up while queued

#[test]
fn caller_abandons_while_queued() {
    let navbat = Navbat::start("abandon", TestConfig::default());
    navbat
        .caller("caller", "caller_abandon.xml", DTM_DID, ABANDON_PAUSE_MS)
        .wait_success();

    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, any);
    assert_eq!(finished["outcome"], "abandoned", "{finished}");
    assert_eq!(finished["queue"], "dtm-uz", "{finished}");
    assert_eq!(finished["ended_by"], "caller", "{finished}");
    let timeline = call_events(&navbat.events(), &finished["call"]);
    assert_order(
        &timeline,
        &[
            ("call_arrived", &any),
            ("call_enqueued", &any),
            ("call_finished", &any),
        ],
    );
    assert!(
        position(&timeline, "call_offered", any).is_none(),
        "nobody was registered, yet the call was offered: {}",
        kinds(&timeline)
    );
}

// ---------------------------------------------------------------------------------------------
// (3) The first operator does not answer: CANCEL, re-queue, the second answers

#[test]
fn unanswered_offer_is_cancelled_and_requeued_to_next_operator() {
    let navbat = Navbat::start("ring-timeout", TestConfig::default().ring_timeout_secs(3));
    // Longest idle first: 1001 registers (and becomes available) before 1002.
    let silent = navbat.operator_phone("1001", "operator_no_answer.xml", 1, &[]);
    navbat.wait_operator("1001", "available");
    let answering = navbat.operator_phone(
        "1002",
        "operator_answer_hangup.xml",
        1,
        &["-d", OPERATOR_TALK_MS],
    );
    navbat.wait_operator("1002", "available");

    // The caller stays until navbat relays the operator's BYE: no guess at routing time.
    navbat
        .caller("caller", "caller_ivr_wait_bye.xml", DTM_DID, 0)
        .wait_success();
    // 1001's SIPp passes only if it got CANCEL (answered 200 + 487) and the ACK for the 487.
    silent.wait_success();
    answering.wait_success();

    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, any);
    assert_eq!(finished["outcome"], "answered", "{finished}");
    assert_eq!(finished["operator"], "1002", "{finished}");
    assert_eq!(finished["ended_by"], "operator", "{finished}");
    let timeline = call_events(&navbat.events(), &finished["call"]);
    assert_order(
        &timeline,
        &[
            ("call_enqueued", &any),
            ("call_offered", &operator_is("1001")),
            ("call_requeued", &operator_is("1001")),
            ("call_offered", &operator_is("1002")),
            ("call_answered", &operator_is("1002")),
            ("call_finished", &any),
        ],
    );
    assert!(
        position(&timeline, "call_answered", operator_is("1001")).is_none(),
        "1001 never answered: {}",
        kinds(&timeline)
    );
}

// ---------------------------------------------------------------------------------------------
// (4) Overflow to reserve staff (D11)

#[test]
fn waiting_call_overflows_to_reserve_staff() {
    let navbat = Navbat::start("reserve", TestConfig::default().reserve_after_secs(2));
    let reserve = navbat.operator_phone(
        "1901",
        "operator_answer_hangup.xml",
        1,
        &["-d", OPERATOR_TALK_MS],
    );
    navbat.wait_operator("1901", "available");

    navbat
        .caller("caller", "caller_ivr_wait_bye.xml", DTM_DID, 0)
        .wait_success();
    reserve.wait_success();

    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, any);
    assert_eq!(finished["outcome"], "answered", "{finished}");
    let timeline = call_events(&navbat.events(), &finished["call"]);
    // The reserve is reached only through the overflow step: the call was queued first, and
    // the only offer it ever got went to 1901.
    assert_order(
        &timeline,
        &[
            ("call_enqueued", &any),
            ("call_offered", &operator_is("1901")),
            ("call_answered", &operator_is("1901")),
            ("call_finished", &any),
        ],
    );
    let offers: Vec<&Value> = timeline
        .iter()
        .filter(|e| e["kind"] == "call_offered")
        .collect();
    assert_eq!(offers.len(), 1, "exactly one offer: {offers:?}");
    // Not before the overflow step, read from navbat's own event stamps (`at_ms`), not from a
    // clock in the test: a slow machine can only make the gap longer, never shorter, so this
    // cannot flake. Measured from arrival, it holds whether the step counts from arrival or
    // from enqueue.
    let arrived = &timeline[position(&timeline, "call_arrived", any).expect("call_arrived")];
    let offered = offers[0];
    let gap = offered["at_ms"].as_u64().expect("at_ms") - arrived["at_ms"].as_u64().expect("at_ms");
    assert!(
        gap >= 2_000,
        "reserve staff were offered the call {gap} ms after arrival, before reserve_after_secs = 2"
    );
}

// ---------------------------------------------------------------------------------------------
// (5) Channel limit (D6): the call over the limit gets 503 + Retry-After and is counted

/// With `screen`, the call over the limit is refused at the SIP door from the channel counts
/// (issue 18); without (`[sip.door] screen_calls = false`), it goes through the stack to
/// admission, which finds no channel (the path a call takes when another took the last
/// channel after the screen passed it). Either way: 503 with Retry-After, no call record and
/// no `call_*` event, one `blocked_summary` counting it and `navbat_calls_blocked_total`.
fn one_call_over_the_limit_is_summarised(name: &str, screen: bool) -> Navbat {
    let config = TestConfig::default().channels(1);
    let config = if screen {
        config
    } else {
        config.extra_toml("[sip.door]\nscreen_calls = false\n")
    };
    let navbat = Navbat::start(name, config);
    // The first caller holds the only channel while it waits in the queue (nobody is
    // registered); it is killed when the test ends.
    let holder = navbat.caller("holder", "caller_abandon.xml", DTM_DID, 50_000);
    navbat.wait_for_event("call_enqueued", EVENT_DEADLINE, any);

    // caller_blocked.xml fails unless the 503 carries a numeric Retry-After.
    navbat
        .caller("blocked", "caller_blocked.xml", DTM_DID, 0)
        .wait_success();

    let summary =
        navbat.wait_for_event("blocked_summary", EVENT_DEADLINE, |e| e["tenant"] == "dtm");
    assert_eq!(summary["count"], 1, "{summary}");
    assert_eq!(summary["reason"], "global_channels", "{summary}");
    assert_eq!(summary["transport"], "udp", "{summary}");
    let events = navbat.events();
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "call_blocked" || e["outcome"] == "blocked"),
        "a refused call has no call events: {events:?}"
    );
    let arrived = events
        .iter()
        .filter(|e| e["kind"] == "call_arrived")
        .count();
    assert_eq!(arrived, 1, "only the holder has a call record");
    let blocked = wait_until("the blocked call in /metrics", EVENT_DEADLINE, || {
        let n =
            navbat.metric("navbat_calls_blocked_total{tenant=\"dtm\",reason=\"global_channels\"}");
        (n >= 1).then_some(n)
    });
    assert_eq!(blocked, 1);
    drop(holder);
    navbat
}

#[test]
fn call_over_channel_limit_is_blocked_with_retry_after() {
    let navbat = one_call_over_the_limit_is_summarised("blocked", true);
    assert_eq!(
        navbat.metric("navbat_sip_door_total{verdict=\"answered_channels_full\"}"),
        1,
        "the door answered it"
    );
}

#[test]
fn call_refused_at_admission_is_summarised_not_recorded() {
    let navbat = one_call_over_the_limit_is_summarised("blocked-admission", false);
    assert_eq!(
        navbat.metric("navbat_sip_door_total{verdict=\"answered_channels_full\"}"),
        0,
        "the screen is off: the refusal came from admission, not the door"
    );
}

// ---------------------------------------------------------------------------------------------
// (6) Unknown DID

#[test]
fn unknown_did_gets_404() {
    let navbat = Navbat::start("unknown-did", TestConfig::default());
    navbat
        .caller("caller", "caller_unknown_did.xml", UNKNOWN_DID, 0)
        .wait_success();
}

// ---------------------------------------------------------------------------------------------
// (7) OPTIONS, unsupported methods, digest challenges

#[test]
fn options_gets_200() {
    let navbat = Navbat::start("options", TestConfig::default());
    navbat
        .sipp_client("options", "options.xml", &["-m", "1"])
        .wait_success();
    // Its User-Agent names the product, not the release a scanner could look up.
    let resp = SipUdp::new(navbat.sip)
        .options(EVENT_DEADLINE)
        .expect("an answer to OPTIONS");
    assert_eq!(
        resp.header("User-Agent").as_deref(),
        Some("navbat"),
        "{}",
        resp.raw
    );
}

#[test]
fn unsupported_methods_get_405_or_501_with_allow() {
    let navbat = Navbat::start("unsupported", TestConfig::default());
    let sip = SipUdp::new(navbat.sip);
    for method in ["SUBSCRIBE", "PUBLISH"] {
        let call_id = format!("{method}-{}", unique_token());
        let uri = format!("sip:{DTM_DID}@{}", navbat.sip);
        let extra = "Event: presence\r\nExpires: 60\r\n";
        sip.send(&sip.request(method, &uri, extra, &call_id));
        let resp = sip
            .final_response(&call_id, EVENT_DEADLINE)
            .unwrap_or_else(|| panic!("no final response to {method}"));
        assert!(
            resp.status == 405 || resp.status == 501,
            "{method}: expected 405 or 501, got:\n{}",
            resp.raw
        );
        let allow = resp
            .header("Allow")
            .unwrap_or_else(|| panic!("{method}: {} without Allow:\n{}", resp.status, resp.raw));
        assert!(
            allow.to_ascii_uppercase().contains("INVITE"),
            "{method}: Allow should list INVITE: {allow}"
        );
    }
}

/// The digest challenge navbat sends for a first REGISTER of `user`.
fn challenge(sip: &SipUdp, user: &str) -> (String, Vec<(String, String)>) {
    let call_id = format!("reg-{user}-{}", unique_token());
    sip.send(&sip.register(user, &call_id, 1, None));
    let resp = sip
        .final_response(&call_id, EVENT_DEADLINE)
        .unwrap_or_else(|| panic!("no response to REGISTER for {user}"));
    assert_eq!(resp.status, 401, "REGISTER for {user}:\n{}", resp.raw);
    let header = resp
        .header("WWW-Authenticate")
        .unwrap_or_else(|| panic!("401 without WWW-Authenticate:\n{}", resp.raw));
    assert!(
        header
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("digest"),
        "{header}"
    );
    (call_id, digest_params(&header))
}

#[test]
fn register_with_wrong_password_is_refused() {
    let navbat = Navbat::start("bad-password", TestConfig::default());
    let sip = SipUdp::new(navbat.sip);
    let (call_id, params) = challenge(&sip, "1001");
    let nonce = digest_param(&params, "nonce").expect("nonce in challenge");
    let realm = digest_param(&params, "realm").expect("realm in challenge");
    let uri = format!("sip:{}", navbat.sip);
    let (nc, cnonce) = ("00000001", "0a4f113b");
    let ha1 = ha1("1001", realm, "not-the-password");
    let ha2 = md5_hex(&format!("REGISTER:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    let mut authz = format!(
        "Digest username=\"1001\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    );
    if let Some(opaque) = digest_param(&params, "opaque") {
        authz.push_str(&format!(", opaque=\"{opaque}\""));
    }
    sip.send(&sip.register("1001", &call_id, 2, Some(&authz)));
    let resp = sip
        .final_response(&call_id, EVENT_DEADLINE)
        .expect("a final response to the authenticated REGISTER");
    assert!(
        resp.status == 401 || resp.status == 403,
        "wrong password must be refused with 401 or 403:\n{}",
        resp.raw
    );
    let op = navbat.operator("1001").expect("1001 in /api/operators");
    assert_eq!(op["registered"], false, "{op}");

    // Which account failed, from which address, and why: in the event feed and in the log
    // (what an administrator or fail2ban looks for), not only in a counter.
    let source = format!("udp {}", sip.local());
    let failed = navbat.wait_for_event("auth_failed", EVENT_DEADLINE, |e| e["account"] == "1001");
    assert_eq!(failed["reason"], "wrong password", "{failed}");
    assert_eq!(failed["known"], true, "{failed}");
    assert_eq!(failed["source"], source.as_str(), "{failed}");
    let log = std::fs::read_to_string(&navbat.log).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("REGISTER authentication failed"))
        .unwrap_or_else(|| {
            panic!(
                "no log line for the failed REGISTER:\n{}",
                tail(&navbat.log, 30)
            )
        });
    for part in [
        "account=1001",
        &format!("source={source}"),
        "wrong password",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line:?}");
    }

    // An account that does not exist is reported masked (a guess may be a phone number).
    let guess = "998901234567";
    let (call_id, params) = challenge(&sip, guess);
    let nonce = digest_param(&params, "nonce").expect("nonce in challenge");
    let guess_ha1 = common::ha1(guess, realm, "x");
    let response = md5_hex(&format!("{guess_ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    let authz = format!(
        "Digest username=\"{guess}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    );
    sip.send(&sip.register(guess, &call_id, 2, Some(&authz)));
    let failed = navbat.wait_for_event("auth_failed", EVENT_DEADLINE, |e| e["known"] == false);
    assert_eq!(failed["reason"], "unknown account", "{failed}");
    let account = failed["account"].as_str().unwrap();
    assert!(
        !account.contains(guess) && account.contains('*'),
        "{failed}"
    );
    let log = std::fs::read_to_string(&navbat.log).unwrap();
    assert!(
        !log.contains(guess),
        "the guessed number reached the log in full"
    );
}

#[test]
fn unknown_user_gets_the_same_challenge_as_a_known_one() {
    let navbat = Navbat::start("challenge-shape", TestConfig::default());
    let sip = SipUdp::new(navbat.sip);
    let (_, known) = challenge(&sip, "1001");
    let (_, unknown) = challenge(&sip, "9999");
    // Same realm, algorithm and qop, and the same set of parameters: the challenge must not
    // tell an attacker which extensions exist.
    for name in ["realm", "algorithm", "qop"] {
        assert_eq!(
            digest_param(&known, name),
            digest_param(&unknown, name),
            "`{name}` differs between known and unknown users: {known:?} vs {unknown:?}"
        );
    }
    assert_eq!(digest_param(&known, "realm"), Some(REALM));
    let names = |p: &[(String, String)]| {
        let mut n: Vec<String> = p.iter().map(|(k, _)| k.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(&known),
        names(&unknown),
        "challenge parameter sets differ"
    );
    assert!(digest_param(&known, "nonce").is_some_and(|n| !n.is_empty()));
}

/// A tenant that names its trunk (`trunk_sources`) takes calls for its DIDs from there only:
/// an INVITE from elsewhere gets 403 before any call record, event or channel.
#[test]
fn a_did_takes_calls_only_from_its_trunk_sources() {
    let navbat = Navbat::start(
        "trunk-sources",
        TestConfig::default().tenant_keys("trunk_sources = [\"127.0.0.2/32\"]"),
    );
    let uri = format!("sip:{DTM_DID}@{}", navbat.sip);
    let stranger = SipUdp::new(navbat.sip);
    let call_id = format!("stranger-{}", unique_token());
    stranger.send(&stranger.request(
        "INVITE",
        &uri,
        "Contact: <sip:probe@127.0.0.1>\r\n",
        &call_id,
    ));
    let refused = stranger
        .final_response(&call_id, EVENT_DEADLINE)
        .expect("an answer for the stranger");
    assert_eq!(refused.status, 403, "{}", refused.raw);

    let trunk = SipUdp::from_ip("127.0.0.2", navbat.sip);
    let call_id = format!("trunk-{}", unique_token());
    trunk.send(&trunk.request(
        "INVITE",
        &uri,
        "Contact: <sip:trunk@127.0.0.2>\r\n",
        &call_id,
    ));
    let taken = trunk
        .final_response(&call_id, EVENT_DEADLINE)
        .expect("an answer for the trunk");
    assert_eq!(
        taken.status, 200,
        "the trunk's call is taken: {}",
        taken.raw
    );
    let arrived = navbat.wait_for_event("call_arrived", EVENT_DEADLINE, |_| true);
    assert_eq!(
        navbat
            .events()
            .iter()
            .filter(|e| e["kind"] == "call_arrived")
            .count(),
        1,
        "only the trunk's call has a record: {arrived}"
    );
}

/// An INVITE for the DTM number from `sip` whose SDP (PCMU, PCMA, telephone-event) is padded
/// with attributes to at least `body_bytes`.
fn padded_invite(
    sip: &SipUdp,
    server: std::net::SocketAddr,
    call_id: &str,
    body_bytes: usize,
) -> Vec<u8> {
    let uri = format!("sip:{DTM_DID}@{server}");
    let mut body = String::from("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n");
    while body.len() < body_bytes {
        body.push_str("a=x-padding:0123456789012345678901234567890123456789\r\n");
    }
    let head = String::from_utf8(sip.request(
        "INVITE",
        &uri,
        "Contact: <sip:big@127.0.0.1>\r\nContent-Type: application/sdp\r\n",
        call_id,
    ))
    .unwrap();
    let head = head.replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Content-Length: {}\r\n\r\n", body.len()),
    );
    format!("{head}{body}").into_bytes()
}

/// A datagram larger than navbat reads over UDP is answered 513 Message Too Large (send it
/// over TCP), not cut and read as something else; the call never starts.
#[test]
fn a_10_kb_udp_invite_gets_513() {
    let navbat = Navbat::start("udp-513", TestConfig::default());
    let sip = SipUdp::new(navbat.sip);
    let call_id = format!("big-{}", unique_token());
    sip.send(&padded_invite(&sip, navbat.sip, &call_id, 10_240));
    let resp = sip
        .final_response(&call_id, EVENT_DEADLINE)
        .expect("an answer to the 10 KB INVITE");
    assert_eq!(resp.status, 513, "{}", resp.raw);
    assert!(
        !navbat.events().iter().any(|e| e["kind"] == "call_arrived"),
        "no call may start from a cut message"
    );
    wait_until("rejected_513 counted", EVENT_DEADLINE, || {
        navbat
            .get("/metrics")
            .body
            .lines()
            .any(|l| l.contains("rejected_513") && l.ends_with(" 1"))
            .then_some(())
    });
}

/// An INVITE of 6 KB over UDP (an SDP offering many codecs; under the 8 KB navbat reads) is a
/// call like any other, on navbat's own transactions: the caller's leg shows in
/// `navbat_sip_own_call_legs` and the call arrives. Fails when INVITEs over 4 KB are left to
/// rsipstack (the gauge stays at zero).
#[test]
fn a_6_kb_udp_invite_is_a_call_on_navbats_own_transactions() {
    let navbat = Navbat::start("udp-6kb", TestConfig::default());
    let sip = SipUdp::new(navbat.sip);
    let call_id = format!("big6-{}", unique_token());
    let invite = padded_invite(&sip, navbat.sip, &call_id, 6_000);
    assert!(
        invite.len() > 6_000 && invite.len() < 8_192,
        "{}",
        invite.len()
    );
    sip.send(&invite);
    wait_until(
        "the caller's leg on navbat's own transactions",
        EVENT_DEADLINE,
        || (navbat.metric("navbat_sip_own_call_legs") == 1).then_some(()),
    );
    let arrived = navbat.wait_for_event("call_arrived", EVENT_DEADLINE, any);
    assert_eq!(arrived["transport"], "udp", "{arrived}");
}

/// Out-of-dialog OPTIONS and REGISTER over UDP are answered on navbat's own transaction
/// layer (`src/sip/own.rs`, issue 18 part 4): a retransmitted request gets the stored
/// response again, byte for byte, without reaching the registrar a second time, and each
/// finished transaction waiting out Timer J costs under 1 KB. Fails with the requests left to
/// rsipstack (the layer's gauges stay at zero).
#[test]
fn out_of_dialog_register_and_options_live_on_navbats_own_transactions() {
    let navbat = Navbat::start("own-txn", TestConfig::default());
    let sip = SipUdp::new(navbat.sip);
    let uri = format!("sip:{}", navbat.sip);
    let options_id = format!("own-options-{}", unique_token());
    let options = sip.request("OPTIONS", &uri, "Accept: application/sdp\r\n", &options_id);
    sip.send(&options);
    let first = sip
        .final_response(&options_id, EVENT_DEADLINE)
        .expect("an answer to OPTIONS");
    assert_eq!(first.status, 200, "{}", first.raw);
    assert!(
        first.header("Allow").is_some_and(|a| a.contains("INVITE")),
        "{}",
        first.raw
    );
    // The retransmission (the same datagram) is answered from the transaction's stored
    // response: the same To tag, the same bytes.
    sip.send(&options);
    let again = sip
        .final_response(&options_id, EVENT_DEADLINE)
        .expect("the stored answer to the retransmitted OPTIONS");
    assert_eq!(
        again.raw, first.raw,
        "a retransmission gets the very same response"
    );

    let failures_before = navbat.metric("navbat_sip_auth_failures_total");
    let registers = 40;
    for n in 0..registers {
        let call_id = format!("own-reg-{n}-{}", unique_token());
        let register = sip.register("1001", &call_id, 1, None);
        sip.send(&register);
        let resp = sip
            .final_response(&call_id, EVENT_DEADLINE)
            .expect("a challenge");
        assert_eq!(resp.status, 401, "{}", resp.raw);
        // Retransmitted: answered from the layer, not challenged anew.
        sip.send(&register);
        let again = sip
            .final_response(&call_id, EVENT_DEADLINE)
            .expect("the stored challenge");
        assert_eq!(again.raw, resp.raw, "the same challenge, nonce and all");
    }
    assert_eq!(
        navbat.metric("navbat_sip_auth_failures_total"),
        failures_before,
        "a REGISTER without credentials is challenged, not counted as a failed guess"
    );
    let (live, bytes) = wait_until("the own layer's gauges", EVENT_DEADLINE, || {
        let live = navbat.metric("navbat_sip_own_transactions");
        let bytes = navbat.metric("navbat_sip_own_transaction_bytes");
        (live > registers).then_some((live, bytes))
    });
    assert!(
        bytes / live < 1024,
        "{bytes} bytes for {live} finished transactions: over 1 KB each"
    );
    let registered =
        navbat.metric("navbat_sip_requests_total{direction=\"in\",method=\"REGISTER\"}");
    assert_eq!(
        registered, registers,
        "each REGISTER is counted once: its retransmission is absorbed by its transaction"
    );
}

/// A request from an RFC 2543 peer over UDP (a Via without a branch, RFC 4475 §3.4.1).
fn rfc2543_request(
    sip: &SipUdp,
    method: &str,
    uri: &str,
    to: &str,
    call_id: &str,
    cseq: &str,
    body: &str,
) -> String {
    let local = sip.local();
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:998901234567@{local}>;tag=old1\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq}\r\n\
         Contact: <sip:998901234567@{local}>\r\n\
         {content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Requests from an RFC 2543 peer (no branch in the Via) run on navbat's own transactions
/// too, matched by what RFC 3261 §17.2.3 matches them by: a retransmitted OPTIONS gets the
/// same stored 200; an INVITE becomes a caller's leg on the own layer, answered; its
/// retransmission makes no second call; its ACK and BYE (no branch either) end the call.
/// Fails when such requests are left to rsipstack (the own layer's gauges stay at zero).
#[test]
fn an_rfc_2543_peer_s_requests_run_on_navbats_own_transactions() {
    let navbat = Navbat::start("own-2543", TestConfig::default());
    let sip = SipUdp::new(navbat.sip);
    let server = format!("sip:{}", navbat.sip);
    let options_id = format!("old-options-{}", unique_token());
    let options = rfc2543_request(
        &sip,
        "OPTIONS",
        &server,
        &format!("<{server}>"),
        &options_id,
        "1 OPTIONS",
        "",
    );
    sip.send(options.as_bytes());
    let first = sip
        .final_response(&options_id, EVENT_DEADLINE)
        .expect("an answer to the OPTIONS");
    assert_eq!(first.status, 200, "{}", first.raw);
    sip.send(options.as_bytes());
    let again = sip
        .final_response(&options_id, EVENT_DEADLINE)
        .expect("an answer to the retransmitted OPTIONS");
    assert_eq!(
        again.raw, first.raw,
        "the stored answer, our To tag and all"
    );
    wait_until("the OPTIONS on the own layer", EVENT_DEADLINE, || {
        (navbat.metric("navbat_sip_own_transactions") >= 1).then_some(())
    });

    let uri = format!("sip:{DTM_DID}@{}", navbat.sip);
    let call_id = format!("old-invite-{}", unique_token());
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let invite = rfc2543_request(
        &sip,
        "INVITE",
        &uri,
        &format!("<{uri}>"),
        &call_id,
        "56 INVITE",
        sdp,
    );
    sip.send(invite.as_bytes());
    wait_until(
        "the caller's leg on navbat's own transactions",
        EVENT_DEADLINE,
        || (navbat.metric("navbat_sip_own_call_legs") == 1).then_some(()),
    );
    navbat.wait_for_event("call_arrived", EVENT_DEADLINE, any);
    let answer = sip
        .final_response(&call_id, EVENT_DEADLINE)
        .expect("the answer to the INVITE");
    assert_eq!(answer.status, 200, "{}", answer.raw);
    // Retransmitted before its ACK: absorbed by the INVITE's transaction, no second call.
    sip.send(invite.as_bytes());
    let to = answer.header("To").expect("To in the 200");
    assert!(to.contains("tag="), "{to}");
    let ack = rfc2543_request(&sip, "ACK", &uri, &to, &call_id, "56 ACK", "");
    sip.send(ack.as_bytes());
    let bye = rfc2543_request(&sip, "BYE", &uri, &to, &call_id, "57 BYE", "");
    sip.send(bye.as_bytes());
    let answers: Vec<(u16, String)> = std::iter::from_fn(|| {
        sip.final_response(&call_id, std::time::Duration::from_secs(3))
            .map(|r| (r.status, r.header("CSeq").unwrap_or_default()))
    })
    .take(8)
    .collect();
    assert!(answers.contains(&(200, "57 BYE".into())), "{answers:?}");
    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, any);
    assert_eq!(finished["ended_by"], "caller", "{finished}");
    wait_until("the leg's end", EVENT_DEADLINE, || {
        (navbat.metric("navbat_sip_own_call_legs") == 0).then_some(())
    });
    let arrived = navbat
        .events()
        .iter()
        .filter(|e| e["kind"] == "call_arrived")
        .count();
    assert_eq!(arrived, 1, "the retransmitted INVITE made no second call");
}

/// One source cannot take the room of navbat's own transaction layer: past its share
/// (10,000 live REGISTER and OPTIONS transactions, a tenth of the layer) its REGISTERs get a
/// stateless 503 with Retry-After, while a phone at another address is still challenged.
/// Fails without the per-source share (the flood's next REGISTER is challenged too).
#[test]
fn a_source_past_its_share_of_own_transactions_gets_503_and_others_still_register() {
    let navbat = Navbat::start("own-share", TestConfig::default());
    let flood = SipUdp::new(navbat.sip);
    let share = 10_000u64;
    // Batches of 100, each read back before the next, so nothing is lost to a full socket
    // buffer: every REGISTER is challenged until the source holds its share.
    let (mut sent, mut challenged, mut refused) = (0u64, 0u64, None);
    while refused.is_none() && sent < share + 1_000 {
        for _ in 0..100 {
            let call_id = format!("share-{sent}-{}", unique_token());
            flood.send(&flood.register("1001", &call_id, 1, None));
            sent += 1;
        }
        for _ in 0..100 {
            match flood.any_final_response(EVENT_DEADLINE) {
                Some(resp) if resp.status == 401 => challenged += 1,
                Some(resp) if resp.status == 503 => {
                    refused = Some(resp);
                    break;
                }
                Some(resp) => panic!("unexpected answer: {}", resp.raw),
                None => panic!("no answer to the flood's REGISTER {challenged}"),
            }
        }
    }
    let refused = refused.expect("a 503 once the source holds its share");
    assert!(
        challenged >= share,
        "{challenged} challenged before the share ran out"
    );
    assert!(refused.header("Retry-After").is_some(), "{}", refused.raw);
    assert!(navbat.metric("navbat_sip_own_transactions") <= share + 100);

    let phone = SipUdp::from_ip("127.0.0.2", navbat.sip);
    let call_id = format!("share-phone-{}", unique_token());
    phone.send(&phone.register("1002", &call_id, 1, None));
    let challenged = phone
        .final_response(&call_id, EVENT_DEADLINE)
        .expect("the other source's answer");
    assert_eq!(challenged.status, 401, "{}", challenged.raw);
}

/// Both legs of a call over UDP run on navbat's own transactions (`src/sip/own/uas.rs` and
/// `uac.rs`, issue 18 part 4): while the operator talks, the caller's and the operator's leg
/// show in `navbat_sip_own_call_legs`; a 200 the operator's phone sends again (its ACK was
/// lost) is acknowledged again; the operator's BYE ends the call for the caller (navbat's
/// BYE), and both legs are gone. Fails with either leg left to rsipstack (the gauge stays
/// under two).
#[test]
fn both_legs_over_udp_run_on_navbats_own_transactions_and_every_2xx_is_acked() {
    let navbat = Navbat::start("own-uac", TestConfig::default());
    let phone = navbat.operator_phone("1001", "operator_retransmitted_200.xml", 1, &["-d", "3000"]);
    navbat.wait_operator("1001", "available");
    let caller = navbat.caller("caller", "caller_ivr_wait_bye.xml", DTM_DID, 0);
    wait_until(
        "both legs on navbat's own transactions",
        EVENT_DEADLINE,
        || (navbat.metric("navbat_sip_own_call_legs") == 2).then_some(()),
    );
    caller.wait_success();
    // The phone's SIPp passes only if both of its 200s were acknowledged and its BYE answered.
    phone.wait_success();
    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, any);
    assert_eq!(finished["outcome"], "answered", "{finished}");
    assert_eq!(finished["operator"], "1001", "{finished}");
    assert_eq!(finished["ended_by"], "operator", "{finished}");
    wait_until("the legs' end", EVENT_DEADLINE, || {
        (navbat.metric("navbat_sip_own_call_legs") == 0).then_some(())
    });
}

/// A leg that has ended still answers the retransmission of the request that ended it: the
/// operator's phone sends its BYE again (its 200 was lost) and gets the same 200 from the
/// BYE's transaction, while a new request in the ended dialog gets 481. Fails when an ended
/// leg's requests are handed on without the transaction layer seeing them (the retransmitted
/// BYE got 481, and at 2,000 calls/s on the ladder 2 % of calls failed so).
#[test]
fn a_retransmitted_bye_after_the_leg_ended_gets_its_200_again() {
    let navbat = Navbat::start("own-bye", TestConfig::default());
    let phone = navbat.operator_phone("1001", "operator_bye_retransmitted.xml", 1, &["-d", "1000"]);
    navbat.wait_operator("1001", "available");
    let caller = navbat.caller("caller", "caller_ivr_wait_bye.xml", DTM_DID, 0);
    caller.wait_success();
    // The phone's SIPp passes only if its BYE got 200 twice and the OPTIONS between got 481.
    phone.wait_success();
    let finished = navbat.wait_for_event("call_finished", EVENT_DEADLINE, any);
    assert_eq!(finished["ended_by"], "operator", "{finished}");
}
