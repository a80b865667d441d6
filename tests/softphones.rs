//! Real softphones against the real navbat binary: baresip (and linphonec) as the caller and
//! as operator 1001, on loopback, with the shared prompts so the greeting plays as early
//! media. Each phone talks a pure tone (caller 700 Hz, operator 1300 Hz) and records what it
//! hears, so every test checks three things: the SIP outcome as the phones saw it, what each
//! party heard (the other side's tone, by frequency), and navbat's call record.
//!
//! Nothing here measures how long something took: the tests wait for events with generous
//! deadlines and let each call talk for a few seconds.

mod common;

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use common::softphone::*;
use common::*;
use serde_json::Value;

/// The caller's tone and the operator's: far apart, and whole periods in a 20 ms window.
const CALLER_HZ: f64 = 700.0;
const OPERATOR_HZ: f64 = 1300.0;
/// How long the parties talk once connected.
const TALK: Duration = Duration::from_secs(4);
/// The other side's tone must dominate at least this many 20 ms windows (1.5 s of the talk).
const MIN_TONE_WINDOWS: usize = 75;
/// Greeting, IVR and answer on a slow machine.
const CALL_DEADLINE: Duration = Duration::from_secs(60);
/// How long a phone may wait for what navbat owes it after the other side acted (the 200 OK
/// once the operator answered, a BYE once the operator hung up).
const PROMPT_DEADLINE: Duration = Duration::from_secs(15);

/// navbat with the shared prompts, and the two tones in its test directory.
struct Rig {
    navbat: Navbat,
    /// Dropped after navbat, which reads the prompts.
    _prompts: TestDir,
    caller_mic: PathBuf,
    operator_mic: PathBuf,
}

impl Rig {
    fn start(test: &str, config: TestConfig) -> Rig {
        let prompts_dir = TestDir::new(&format!("{test}-prompts"));
        let prompts = shared_prompts(prompts_dir.path());
        let navbat = Navbat::start(
            test,
            config
                .prompts_dir(&prompts)
                .ring_timeout_secs(20)
                .reserve_after_secs(600),
        );
        let caller_mic = navbat.dir.path().join("caller-mic.wav");
        let operator_mic = navbat.dir.path().join("operator-mic.wav");
        // Longer than any call here: baresip ends a call when its microphone file ends.
        write_tone(&caller_mic, CALLER_HZ, 120);
        write_tone(&operator_mic, OPERATOR_HZ, 120);
        Rig {
            navbat,
            _prompts: prompts_dir,
            caller_mic,
            operator_mic,
        }
    }

    /// The DID at navbat. A caller whose account says `;transport=tcp` adds that itself.
    fn did_uri(&self) -> String {
        format!("sip:{DTM_DID}@{}", self.navbat.sip)
    }

    /// Operator 1001 on baresip, answering automatically; returns once navbat has it
    /// registered and available. `params` are extra account parameters.
    fn baresip_operator(&self, params: &str) -> Baresip {
        let account = format!(
            "<sip:1001@{sip}>;auth_pass={pw};answermode=auto;regint=600{params}",
            sip = self.navbat.sip,
            pw = self.navbat.config.password_of("1001"),
        );
        let phone = Baresip::start(
            self.navbat.dir.path(),
            BaresipSpec {
                name: "op1001".into(),
                account,
                mic: self.operator_mic.clone(),
            },
        );
        self.navbat.wait_operator("1001", "available");
        phone
    }

    /// A caller on baresip that does not register; `uri_params` go into its address (e.g.
    /// `;transport=tcp`), `params` are extra account parameters.
    fn baresip_caller(&self, uri_params: &str, params: &str) -> Baresip {
        Baresip::start(
            self.navbat.dir.path(),
            BaresipSpec {
                name: "caller".into(),
                account: format!("<sip:caller@127.0.0.1{uri_params}>;regint=0{params}"),
                mic: self.caller_mic.clone(),
            },
        )
    }

    /// Waits for navbat to take `digit` at IVR `level`.
    fn wait_ivr_step(&self, level: u64, digit: &str) {
        self.navbat.wait_for_event("ivr_step", EVENT_DEADLINE, |e| {
            e["level"] == level && e["digit"] == digit
        });
    }

    /// The call's `call_finished` record.
    fn finished(&self) -> Value {
        self.navbat
            .wait_for_event("call_finished", EVENT_DEADLINE, |_| true)
    }

    /// The call's recording holds the caller's tone on the left and the operator's on the
    /// right.
    fn check_recording(&self, call: &str) {
        let recording = self
            .navbat
            .wait_for_event("recording", EVENT_DEADLINE, |e| e["call"] == call);
        let path = PathBuf::from(recording["path"].as_str().unwrap());
        let path = if path.is_absolute() {
            path
        } else {
            self.navbat.dir.path().join(path)
        };
        let wav =
            common::recordings::recording_wav(self.navbat.dir.path(), &path.display().to_string());
        let mut reader = hound::WavReader::new(std::io::Cursor::new(wav))
            .unwrap_or_else(|e| panic!("read the recording {}: {e}", path.display()));
        let spec = reader.spec();
        assert_eq!((spec.channels, spec.sample_rate), (2, 8000), "{recording}");
        let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        assert!(
            tone_windows(8000, &left, CALLER_HZ) >= MIN_TONE_WINDOWS,
            "the recording's caller channel lacks the caller's tone: {}",
            describe_heard(8000, &left, &[CALLER_HZ, OPERATOR_HZ])
        );
        assert!(
            tone_windows(8000, &right, OPERATOR_HZ) >= MIN_TONE_WINDOWS,
            "the recording's operator channel lacks the operator's tone: {}",
            describe_heard(8000, &right, &[CALLER_HZ, OPERATOR_HZ])
        );
    }
}

/// `who` heard the tone `hz` of the other side in a clear number of windows.
fn assert_heard(who: &str, heard: (u32, Vec<i16>), hz: f64) {
    let (rate, samples) = heard;
    let windows = tone_windows(rate, &samples, hz);
    assert!(
        windows >= MIN_TONE_WINDOWS,
        "{who} did not hear the other side's {hz} Hz tone (needed {MIN_TONE_WINDOWS} windows \
         of 20 ms): {}",
        describe_heard(rate, &samples, &[CALLER_HZ, OPERATOR_HZ])
    );
}

/// Both parties heard each other, and the recording has both.
fn assert_conversation(rig: &Rig, caller: &Baresip, operator: &Baresip, finished: &Value) {
    assert_heard("the caller", caller.heard(), OPERATOR_HZ);
    assert_heard("the operator", operator.heard(), CALLER_HZ);
    rig.check_recording(finished["call"].as_str().unwrap());
}

fn assert_record(finished: &Value, outcome: &str, ended_by: &str) {
    assert_eq!(finished["outcome"], outcome, "call record: {finished}");
    assert_eq!(finished["ended_by"], ended_by, "call record: {finished}");
    if outcome == "answered" {
        assert!(
            finished["talk_ms"].as_u64().unwrap_or(0) > 0,
            "an answered call talked: {finished}"
        );
    }
}

/// The caller presses 1 (Uzbek) and 2 (results), each once navbat took the one before.
fn choose_uzbek_results(rig: &Rig, caller: &mut Baresip) {
    caller.press('1');
    rig.wait_ivr_step(1, "1");
    caller.press('2');
    rig.wait_ivr_step(2, "2");
}

/// The caller is still in early media (the greeting) and presses its keys.
fn key_ahead(rig: &Rig, caller: &mut Baresip) {
    caller.wait_event("CALL_PROGRESS", PHONE_EVENT_DEADLINE);
    // The greeting's RTP reached the caller.
    caller.wait_event("CALL_RTPESTAB", PHONE_EVENT_DEADLINE);
    assert!(
        caller.event("CALL_ESTABLISHED").is_none(),
        "the caller was answered before it could press a key during the greeting \
         ({:?}): this test needs the greeting still playing",
        caller.event_kinds()
    );
    choose_uzbek_results(rig, caller);
}

/// The requests this phone sent to navbat, as (transport, start line).
fn sent_to_navbat(phone: &Baresip, navbat: &Navbat) -> Vec<(String, String)> {
    let to = format!("-> {}", navbat.sip);
    phone
        .sip_trace()
        .into_iter()
        .filter(|(_, route, _)| route.ends_with(&to))
        .map(|(transport, _, start)| (transport, start))
        .collect()
}

fn received_from_navbat(phone: &Baresip, navbat: &Navbat) -> Vec<(String, String)> {
    let from = format!("{} ->", navbat.sip);
    phone
        .sip_trace()
        .into_iter()
        .filter(|(_, route, _)| route.starts_with(&from))
        .map(|(transport, _, start)| (transport, start))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. The normal call

#[test]
fn normal_call_over_udp_both_hear_each_other_and_caller_hangs_up() {
    let rig = Rig::start("phones-normal", TestConfig::default());
    let mut operator = rig.baresip_operator("");
    let mut caller = rig.baresip_caller("", "");
    connect_after_greeting(&rig, &mut caller, &mut operator);
    talk_and_caller_hangs_up(&rig, &mut caller, &mut operator);
}

/// Dials the DID, waits out the greeting (early media; navbat answers when it has played),
/// chooses Uzbek and results, and waits for the operator to answer.
fn connect_after_greeting(rig: &Rig, caller: &mut Baresip, operator: &mut Baresip) {
    caller.dial(&rig.did_uri());
    caller.wait_event("CALL_PROGRESS", PHONE_EVENT_DEADLINE);
    caller.wait_event("CALL_ESTABLISHED", CALL_DEADLINE);
    choose_uzbek_results(rig, caller);
    operator.wait_event("CALL_ESTABLISHED", CALL_DEADLINE);
}

// ---------------------------------------------------------------------------------------------
// 2. Keys pressed during the greeting (key-ahead)

/// Key-ahead, greeting cut (the default `greeting_barge_in = true`): the first key answers
/// the call at once, before any operator is involved.
#[test]
fn keys_during_the_greeting_cut_it_and_answer_the_caller_at_once() {
    let rig = Rig::start("phones-key-ahead", TestConfig::default());
    let mut operator = rig.baresip_operator("");
    let mut caller = rig.baresip_caller("", "");

    caller.dial(&rig.did_uri());
    caller.wait_event("CALL_PROGRESS", PHONE_EVENT_DEADLINE);
    caller.wait_event("CALL_RTPESTAB", PHONE_EVENT_DEADLINE);
    assert!(
        caller.event("CALL_ESTABLISHED").is_none(),
        "the caller was answered before it could press a key during the greeting \
         ({:?}): this test needs the greeting still playing",
        caller.event_kinds()
    );
    caller.press('1');
    rig.wait_ivr_step(1, "1");
    caller.wait_event_because(
        "CALL_ESTABLISHED",
        PROMPT_DEADLINE,
        "a key during the greeting cuts it and navbat answers the caller (200 OK) at once",
    );
    assert!(
        !rig.navbat
            .events()
            .iter()
            .any(|e| e["kind"] == "call_offered"),
        "the caller must be answered before any operator is rung"
    );
    caller.press('2');
    rig.wait_ivr_step(2, "2");
    operator.wait_event("CALL_ESTABLISHED", CALL_DEADLINE);
    talk_and_caller_hangs_up(&rig, &mut caller, &mut operator);
}

/// Key-ahead with `greeting_barge_in = false` and a greeting far longer than the test waits
/// (2 x 20 s): the keys count, the greeting plays on, an operator answers while it plays, and
/// the caller must be answered then, not when the greeting would have ended.
#[test]
fn keys_during_an_unbargeable_greeting_answer_the_caller_when_the_operator_answers() {
    let config = TestConfig::default().ivr_extra("greeting_barge_in = false");
    let rig = Rig::start("phones-key-ahead-no-barge", config);
    let prompts = PathBuf::from(
        rig.navbat
            .config
            .prompts_dir
            .as_ref()
            .expect("the rig sets the prompts"),
    );
    // The tenant's own greeting (looked up first), 20 s a language, at 400 Hz: neither
    // party's tone.
    for language in ["uz", "ru"] {
        let dir = prompts.join("dtm").join(language);
        std::fs::create_dir_all(&dir).unwrap();
        write_tone(&dir.join("greeting.wav"), 400.0, 20);
    }
    let mut operator = rig.baresip_operator("");
    let mut caller = rig.baresip_caller("", "");

    caller.dial(&rig.did_uri());
    key_ahead(&rig, &mut caller);
    operator.wait_event("CALL_ESTABLISHED", CALL_DEADLINE);
    caller.wait_event_because(
        "CALL_ESTABLISHED",
        PROMPT_DEADLINE,
        "The operator answered while the greeting still played, so navbat must have answered \
         the caller (200 OK) by now; without it the whole conversation runs as early media on \
         a call the caller's side still sees as unanswered",
    );
    talk_and_caller_hangs_up(&rig, &mut caller, &mut operator);
}

/// A caller who keyed ahead into a queue nobody answers, while a long greeting (2 x 40 s)
/// still plays (`greeting_barge_in = false`): when navbat lets the call go, the unanswered caller gets a
/// final response (480), not silence until it gives up.
#[test]
fn an_unanswered_caller_let_go_by_navbat_gets_a_final_response() {
    let config = TestConfig::default()
        .ivr_extra("greeting_barge_in = false")
        // The rig rings for 20 s at most, and the wait may not be shorter.
        .max_wait_secs(20);
    let rig = Rig::start("phones-let-go-unanswered", config);
    let prompts = PathBuf::from(rig.navbat.config.prompts_dir.as_ref().unwrap());
    for language in ["uz", "ru"] {
        let dir = prompts.join("dtm").join(language);
        std::fs::create_dir_all(&dir).unwrap();
        write_tone(&dir.join("greeting.wav"), 400.0, 40);
    }
    let mut caller = rig.baresip_caller("", "");
    caller.dial(&rig.did_uri());
    key_ahead(&rig, &mut caller);
    caller.wait_event_because(
        "CALL_CLOSED",
        CALL_DEADLINE,
        "navbat let the call go (nobody answered within max_wait_secs), so it owes the \
         unanswered caller a final response",
    );
    assert!(
        caller.event("CALL_ESTABLISHED").is_none(),
        "the caller was never answered: {:?}",
        caller.event_kinds()
    );
    wait_until("the caller to receive 480", PROMPT_DEADLINE, || {
        received_from_navbat(&caller, &rig.navbat)
            .iter()
            .any(|(_, start)| start.starts_with("SIP/2.0 480"))
            .then_some(())
    });
    let finished = rig.finished();
    assert_eq!(finished["outcome"], "timed_out", "{finished}");
    assert_eq!(finished["talk_ms"], 0, "{finished}");
}

/// The parties talk; the caller hangs up with BYE; the call is answered, both heard each
/// other and the recording has both.
fn talk_and_caller_hangs_up(rig: &Rig, caller: &mut Baresip, operator: &mut Baresip) {
    talk_and_hang_up(rig, caller, operator, "caller");
}

/// The parties talk, then `by` ("caller" or "operator") hangs up. Checked: the other side's
/// call ends too, the caller (answered before its call ended) sent or received a BYE, the
/// call is recorded answered and ended by `by`, and both heard each other.
fn talk_and_hang_up(rig: &Rig, caller: &mut Baresip, operator: &mut Baresip, by: &str) {
    thread::sleep(TALK);
    let (leaver, stayer, why) = if by == "caller" {
        (
            &mut *caller,
            &mut *operator,
            "navbat must BYE the operator when the caller hangs up",
        )
    } else {
        (
            &mut *operator,
            &mut *caller,
            "the operator hung up, so navbat must end the caller's call too (BYE)",
        )
    };
    leaver.hangup();
    leaver.wait_event("CALL_CLOSED", PHONE_EVENT_DEADLINE);
    stayer.wait_event_because("CALL_CLOSED", PROMPT_DEADLINE, why);
    let kinds = caller.event_kinds();
    let established = kinds.iter().position(|k| k == "CALL_ESTABLISHED");
    let closed = kinds.iter().position(|k| k == "CALL_CLOSED");
    assert!(
        matches!((established, closed), (Some(e), Some(c)) if e < c),
        "the caller must have been answered (200 OK) before its call ended: {kinds:?}"
    );
    let byes = if by == "caller" {
        sent_to_navbat(caller, &rig.navbat)
    } else {
        received_from_navbat(caller, &rig.navbat)
    };
    let starts: Vec<String> = byes.into_iter().map(|(_, start)| start).collect();
    assert!(
        starts.iter().any(|s| s.starts_with("BYE ")),
        "the answered caller's call ends with a BYE ({by} hung up); its trace: {starts:?}"
    );

    let finished = rig.finished();
    assert_record(&finished, "answered", by);
    assert_conversation(rig, caller, operator, &finished);
}

// ---------------------------------------------------------------------------------------------
// 3. The operator hangs up first

#[test]
fn operator_hangs_up_first_and_the_caller_gets_bye() {
    let rig = Rig::start("phones-operator-hangs-up", TestConfig::default());
    let mut operator = rig.baresip_operator("");
    let mut caller = rig.baresip_caller("", "");
    connect_after_greeting(&rig, &mut caller, &mut operator);
    talk_and_operator_hangs_up(&rig, &mut caller, &mut operator);
}

#[test]
fn operator_hangs_up_first_after_key_ahead_and_the_caller_is_hung_up() {
    let rig = Rig::start("phones-key-ahead-operator-hangs-up", TestConfig::default());
    let mut operator = rig.baresip_operator("");
    let mut caller = rig.baresip_caller("", "");

    caller.dial(&rig.did_uri());
    key_ahead(&rig, &mut caller);
    operator.wait_event("CALL_ESTABLISHED", CALL_DEADLINE);
    // Whatever state the caller's call is in, navbat must end it when the operator leaves.
    talk_and_operator_hangs_up(&rig, &mut caller, &mut operator);
}

/// The parties talk; the operator hangs up; the caller, answered before, gets a BYE.
fn talk_and_operator_hangs_up(rig: &Rig, caller: &mut Baresip, operator: &mut Baresip) {
    talk_and_hang_up(rig, caller, operator, "operator");
}

// ---------------------------------------------------------------------------------------------
// 4. The caller hangs up during the greeting

#[test]
fn caller_hanging_up_during_the_greeting_cancels_and_is_abandoned() {
    let rig = Rig::start("phones-cancel", TestConfig::default());
    let operator = rig.baresip_operator("");
    let mut caller = rig.baresip_caller("", "");

    caller.dial(&rig.did_uri());
    caller.wait_event("CALL_PROGRESS", PHONE_EVENT_DEADLINE);
    caller.wait_event("CALL_RTPESTAB", PHONE_EVENT_DEADLINE);
    assert!(
        caller.event("CALL_ESTABLISHED").is_none(),
        "the greeting must still be playing: {:?}",
        caller.event_kinds()
    );
    caller.hangup();
    caller.wait_event("CALL_CLOSED", PHONE_EVENT_DEADLINE);
    wait_until(
        "the caller to receive 487 Request Terminated for its INVITE",
        PROMPT_DEADLINE,
        || {
            received_from_navbat(&caller, &rig.navbat)
                .iter()
                .any(|(_, start)| start.starts_with("SIP/2.0 487"))
                .then_some(())
        },
    );
    let sent: Vec<String> = sent_to_navbat(&caller, &rig.navbat)
        .into_iter()
        .map(|(_, start)| start)
        .collect();
    assert!(
        sent.iter().any(|s| s.starts_with("CANCEL ")),
        "an unanswered caller hangs up with CANCEL; it sent {sent:?}"
    );
    assert!(
        !sent.iter().any(|s| s.starts_with("BYE ")),
        "the caller was never answered, so it has nothing to BYE; it sent {sent:?}"
    );

    let finished = rig.finished();
    assert_eq!(finished["outcome"], "abandoned", "call record: {finished}");
    let offered: Vec<Value> = rig
        .navbat
        .events()
        .into_iter()
        .filter(|e| e["kind"] == "call_offered")
        .collect();
    assert!(
        offered.is_empty(),
        "no operator was to be rung: {offered:?}"
    );
    assert!(
        operator
            .events()
            .iter()
            .all(|m| m.json["class"] != "call" || m.json["type"] == "CALL_RTCP"),
        "the operator's phone saw a call: {:?}",
        operator.event_kinds()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A caller on TCP

#[test]
fn tcp_caller_gets_its_ack_and_bye_over_tcp() {
    let rig = Rig::start("phones-tcp", TestConfig::default());
    let mut operator = rig.baresip_operator("");
    let mut caller = rig.baresip_caller(";transport=tcp", "");
    connect_after_greeting(&rig, &mut caller, &mut operator);
    talk_and_caller_hangs_up(&rig, &mut caller, &mut operator);

    let arrived = rig
        .navbat
        .wait_for_event("call_arrived", EVENT_DEADLINE, |_| true);
    assert_eq!(arrived["transport"], "tcp", "{arrived}");
    // What the caller sent, and how (its SIP trace, `baresip -s`): navbat's Contact must
    // bring the in-dialog requests back on TCP.
    let sent = sent_to_navbat(&caller, &rig.navbat);
    for method in ["INVITE ", "ACK ", "BYE "] {
        let of: Vec<&(String, String)> =
            sent.iter().filter(|(_, s)| s.starts_with(method)).collect();
        assert!(!of.is_empty(), "the caller sent no {method}: {sent:?}");
        assert!(
            of.iter().all(|(transport, _)| transport == "TCP"),
            "the caller's {}went over {:?}, not only TCP: navbat's 183/200 Contact must \
             carry ;transport=tcp. Everything it sent: {sent:?}",
            method,
            of.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>()
        );
    }
    let udp: Vec<&(String, String)> = sent.iter().filter(|(t, _)| t != "TCP").collect();
    assert!(
        udp.is_empty(),
        "nothing from the TCP caller may reach navbat over UDP: {udp:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. PCMA against PCMU

#[test]
fn pcma_caller_and_pcmu_operator_hear_each_other_through_transcoding() {
    let rig = Rig::start("phones-transcode", TestConfig::default());
    let mut operator = rig.baresip_operator(";audio_codecs=PCMU");
    let mut caller = rig.baresip_caller("", ";audio_codecs=PCMA");
    connect_after_greeting(&rig, &mut caller, &mut operator);
    talk_and_caller_hangs_up(&rig, &mut caller, &mut operator);

    // baresip prints its pipeline each time audio starts: `aufile ---> sndfile ---> PCMA`.
    for (phone, codec) in [(&caller, "PCMA"), (&operator, "PCMU")] {
        let pipelines = phone.log_lines("audio tx pipeline:");
        assert!(
            !pipelines.is_empty() && pipelines.iter().all(|l| l.ends_with(codec)),
            "`{}` must send {codec} only: {pipelines:?}",
            phone.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Another phone: linphonec

#[test]
fn linphonec_caller_reaches_a_baresip_operator() {
    let rig = Rig::start("phones-linphonec-caller", TestConfig::default());
    let mut operator = rig.baresip_operator("");
    let mut caller = Linphonec::start(rig.navbat.dir.path(), "lincaller", &rig.caller_mic, false);

    caller.send(&format!("call {}", rig.did_uri()));
    caller.wait_output("early media");
    // navbat answers when the greeting has played.
    caller.wait_output_for("connected.", CALL_DEADLINE);
    // linphonec sends a line of digits as DTMF (RFC 4733 by default).
    caller.send("1");
    rig.wait_ivr_step(1, "1");
    caller.send("2");
    rig.wait_ivr_step(2, "2");
    operator.wait_event("CALL_ESTABLISHED", CALL_DEADLINE);
    thread::sleep(TALK);
    caller.send("terminate");
    caller.wait_output("ended");
    operator.wait_event_because(
        "CALL_CLOSED",
        PROMPT_DEADLINE,
        "navbat must BYE the operator when the caller hangs up",
    );

    let finished = rig.finished();
    assert_record(&finished, "answered", "caller");
    for digit in ["1", "2"] {
        rig.navbat
            .wait_for_event("dtmf_received", EVENT_DEADLINE, |e| e["digit"] == digit);
    }
    assert_heard("the linphonec caller", caller.heard(), OPERATOR_HZ);
    assert_heard("the operator", operator.heard(), CALLER_HZ);
    rig.check_recording(finished["call"].as_str().unwrap());
}

#[test]
fn baresip_caller_reaches_a_linphonec_operator() {
    let rig = Rig::start("phones-linphonec-operator", TestConfig::default());
    let mut operator =
        Linphonec::start(rig.navbat.dir.path(), "linop1001", &rig.operator_mic, true);
    operator.register(
        "1001",
        rig.navbat.config.password_of("1001"),
        rig.navbat.config.sip_port,
    );
    rig.navbat.wait_operator("1001", "available");
    let mut caller = rig.baresip_caller("", "");

    caller.dial(&rig.did_uri());
    caller.wait_event("CALL_ESTABLISHED", CALL_DEADLINE);
    choose_uzbek_results(&rig, &mut caller);
    operator.wait_output_for("connected.", CALL_DEADLINE);
    caller.wait_event("CALL_ESTABLISHED", PHONE_EVENT_DEADLINE);
    thread::sleep(TALK);
    caller.hangup();
    caller.wait_event("CALL_CLOSED", PHONE_EVENT_DEADLINE);
    operator.wait_output_for("ended", PROMPT_DEADLINE);

    let finished = rig.finished();
    assert_record(&finished, "answered", "caller");
    assert_heard("the caller", caller.heard(), OPERATOR_HZ);
    assert_heard("the linphonec operator", operator.heard(), CALLER_HZ);
    rig.check_recording(finished["call"].as_str().unwrap());
}

// ---------------------------------------------------------------------------------------------
// 8. SHA-256 digest (RFC 7616, issue 18)

/// The operators have SHA-256 HA1s (all or none), so navbat's 401 offers SHA-256 first,
/// beside MD5. linphonec (belle-sip) answers with SHA-256: the registration succeeds,
/// counted under `algorithm="sha256"`, and the REGISTER it sent names the algorithm.
#[test]
fn linphonec_registers_with_sha256_digest() {
    let config = TestConfig::default().operators(vec![
        OperatorSpec::regular("1001").with_sha256(),
        OperatorSpec::regular("1002").with_sha256(),
    ]);
    let rig = Rig::start("phones-sha256", config);
    let mut operator =
        Linphonec::start(rig.navbat.dir.path(), "linsha1001", &rig.operator_mic, true);
    operator.register(
        "1001",
        rig.navbat.config.password_of("1001"),
        rig.navbat.config.sip_port,
    );
    rig.navbat.wait_operator("1001", "available");
    let sha256 = || {
        rig.navbat
            .get("/metrics")
            .body
            .lines()
            .find_map(|l| l.strip_prefix("navbat_sip_auth_total{algorithm=\"sha256\"}"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    wait_until(
        "a SHA-256 authentication counted",
        Duration::from_secs(30),
        || (sha256() >= 1.0).then_some(()),
    );
    let trace = std::fs::read_to_string(&operator.trace).unwrap_or_default();
    assert!(
        trace
            .lines()
            .any(|l| l.starts_with("Authorization:") && l.contains("algorithm=SHA-256")),
        "linphonec's REGISTER did not answer with SHA-256"
    );
}
