//! The SIP door under a flood (`[sip.door]`, `src/sip/door.rs`): the real `navbat` binary, a
//! SIPp flooder on one loopback address and plain callers on others.
//!
//! Nothing here asserts how long anything took: the flood is bounded by SIPp's `-m`, every
//! wait is a poll with a generous deadline, and what is checked is counts and answers.

mod common;

use common::*;

/// A counter or gauge of `/metrics` (0 when absent).
fn metric(navbat: &Navbat, series: &str) -> u64 {
    navbat.metric(series)
}

fn door(navbat: &Navbat, verdict: &str) -> u64 {
    metric(
        navbat,
        &format!("navbat_sip_door_total{{verdict=\"{verdict}\"}}"),
    )
}

fn channels_in_use(navbat: &Navbat) -> u64 {
    navbat.get_json("/api/health")["channels_in_use"]
        .as_u64()
        .unwrap_or(0)
}

/// The door's caps in this file's tests: 20 new INVITEs a second (burst 20) and 5 calls in
/// progress per source; 50 stateless refusals a second per source, the rest dropped.
const DOOR: &str = "
[sip.door]
source_invites_per_sec = 20
source_burst = 20
source_calls = 5
answers_per_sec = 50
trunk_sources = [\"127.0.0.1\"]
";

const FLOOD_CALLS: &str = "800";

/// One source floods (SIPp from 127.0.0.2 at 200 new calls a second, each taken call held
/// 20 s); another source's calls (127.0.0.3) are still answered, the flooder gets stateless
/// 503s and then nothing (its answer budget), and it never holds more than its 5 channels.
#[test]
fn a_flood_from_one_source_leaves_another_sources_calls_answered() {
    let navbat = Navbat::start("door-flood", TestConfig::default().extra_toml(DOOR));
    let mut flooder = navbat.sipp_client(
        "flooder",
        "flood_caller.xml",
        &[
            "-i",
            "127.0.0.2",
            "-s",
            DTM_DID,
            "-d",
            "20000",
            "-r",
            "200",
            "-rp",
            "1000",
            "-l",
            FLOOD_CALLS,
            "-m",
            FLOOD_CALLS,
        ],
    );
    let mut most_in_use = 0;
    wait_until("the flood is being refused", EVENT_DEADLINE, || {
        most_in_use = most_in_use.max(channels_in_use(&navbat));
        (door(&navbat, "answered_rate") >= 50).then_some(())
    });

    let uri = format!("sip:{DTM_DID}@{}", navbat.sip);
    let other = SipUdp::from_ip("127.0.0.3", navbat.sip);
    let mut answered = 0;
    for k in 0..3 {
        let call_id = format!("other-{k}-{}", unique_token());
        other.send(&other.request(
            "INVITE",
            &uri,
            "Contact: <sip:other@127.0.0.3>\r\n",
            &call_id,
        ));
        let resp = other
            .final_response(&call_id, EVENT_DEADLINE)
            .expect("an answer for the other source during the flood");
        assert_eq!(resp.status, 200, "the other source's call: {}", resp.raw);
        answered += 1;
        most_in_use = most_in_use.max(channels_in_use(&navbat));
    }
    // The flooder keeps sending while we look.
    assert!(
        flooder.running(),
        "the flood lasted through the other calls"
    );
    wait_until("refusals past the answer budget", EVENT_DEADLINE, || {
        most_in_use = most_in_use.max(channels_in_use(&navbat));
        (door(&navbat, "dropped_rate") > 0).then_some(())
    });
    wait_until("the ACKs of the 503s absorbed", EVENT_DEADLINE, || {
        (door(&navbat, "acks_absorbed") > 0).then_some(())
    });
    most_in_use = most_in_use.max(channels_in_use(&navbat));
    assert!(
        most_in_use <= 5 + answered,
        "the flooder held more than its 5 channels: {most_in_use} in use"
    );
    // The flooder got its share and the other source its calls (the metrics are read once
    // a second, so this waits for the scrape to catch up).
    let admitted = wait_until("the admitted calls counted", EVENT_DEADLINE, || {
        let admitted = door(&navbat, "admitted");
        (admitted >= 5 + answered).then_some(admitted)
    });
    // Calls refused at the door never became call records: every call record is one the
    // door let through.
    let arrived = navbat
        .events()
        .iter()
        .filter(|e| e["kind"] == "call_arrived")
        .count() as u64;
    assert!(
        arrived <= admitted,
        "{arrived} call records for {admitted} admitted INVITEs"
    );
    drop(flooder);
}

/// A new INVITE refused by the door (its source holds its one call) is answered
/// statelessly: the 503 carries Retry-After and a To tag; a retransmission of the same
/// INVITE gets the same answer; no call record. A retransmission of the admitted call's
/// INVITE reaches its transaction (200), not the door's refusal.
#[test]
fn a_refused_invite_gets_the_same_stateless_503_when_retransmitted() {
    let navbat = Navbat::start(
        "door-retransmit",
        TestConfig::default()
            .extra_toml("[sip.door]\nsource_calls = 1\ntrunk_sources = [\"127.0.0.1\"]\n"),
    );
    let uri = format!("sip:{DTM_DID}@{}", navbat.sip);
    let sip = SipUdp::from_ip("127.0.0.2", navbat.sip);
    let first_id = format!("first-{}", unique_token());
    let first_invite = sip.request("INVITE", &uri, "Contact: <sip:a@127.0.0.2>\r\n", &first_id);
    sip.send(&first_invite);
    let first = sip
        .final_response(&first_id, EVENT_DEADLINE)
        .expect("answer");
    assert_eq!(first.status, 200, "the first call is taken: {}", first.raw);
    // Its retransmission goes on to its transaction, not to the door's refusal.
    sip.send(&first_invite);
    let repeated = sip
        .final_response(&first_id, EVENT_DEADLINE)
        .expect("answer");
    assert_eq!(repeated.status, 200, "{}", repeated.raw);

    let call_id = format!("refused-{}", unique_token());
    let invite = sip.request("INVITE", &uri, "Contact: <sip:a@127.0.0.2>\r\n", &call_id);
    sip.send(&invite);
    let refused = sip.final_response(&call_id, EVENT_DEADLINE).expect("503");
    assert_eq!(refused.status, 503, "{}", refused.raw);
    assert_eq!(refused.header("Retry-After").as_deref(), Some("30"));
    assert!(
        refused
            .header("To")
            .is_some_and(|to| to.contains(";tag=nbs-")),
        "answered at the door, without a transaction: {}",
        refused.raw
    );
    sip.send(&invite);
    let again = sip
        .final_response(&call_id, EVENT_DEADLINE)
        .expect("503 again");
    assert_eq!(again.status, 503);
    assert_eq!(again.header("To"), refused.header("To"), "the same answer");
    let arrived = navbat
        .events()
        .iter()
        .filter(|e| e["kind"] == "call_arrived")
        .count();
    assert_eq!(arrived, 1, "only the admitted call has a record");
    // Four INVITEs judged, read in one scrape: the first and its retransmission admitted,
    // the refused one and its retransmission answered.
    let (admitted, answered) = wait_until("four INVITEs counted", EVENT_DEADLINE, || {
        let (a, r) = (door(&navbat, "admitted"), door(&navbat, "answered_calls"));
        (a + r >= 4).then_some((a, r))
    });
    assert_eq!((admitted, answered), (2, 2));
}

/// Reads `stream` until a final response for `call_id` arrives (or `deadline` passes); every
/// complete message read is kept in `buf`, so later calls see what came before.
fn tcp_final_for(
    stream: &mut std::net::TcpStream,
    buf: &mut Vec<u8>,
    call_id: &str,
    deadline: std::time::Duration,
) -> Option<SipResponse> {
    use std::io::Read;
    let until = std::time::Instant::now() + deadline;
    loop {
        // Every complete message in the buffer, in order.
        let mut rest: &[u8] = buf;
        while let Some(split) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let Some(head) = SipResponse::parse(&rest[..split + 4]) else {
                break;
            };
            let len: usize = head
                .header("Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if rest.len() < split + 4 + len {
                break;
            }
            if head.status >= 200 && head.header("Call-ID").as_deref() == Some(call_id) {
                return Some(head);
            }
            rest = &rest[split + 4 + len..];
        }
        let left = until.checked_duration_since(std::time::Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(std::time::Duration::from_millis(1))))
            .unwrap();
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn tcp_request(local: std::net::SocketAddr, method: &str, uri: &str, call_id: &str) -> Vec<u8> {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=t{branch}\r\n\
         To: <{uri}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:probe@{local};transport=tcp>\r\n\
         Content-Length: 0\r\n\r\n",
        branch = unique_token(),
    )
    .into_bytes()
}

/// Over TCP the door holds too: a source at its one call gets a 503 with Retry-After on its
/// connection, and the connection stays open for what it sends next.
/// The TCP connection `stream` still answers: an OPTIONS on it gets 200.
fn assert_connection_kept(navbat: &Navbat, stream: &mut std::net::TcpStream, buf: &mut Vec<u8>) {
    use std::io::Write;
    let local = stream.local_addr().unwrap();
    let options = format!("tcp-options-{}", unique_token());
    stream
        .write_all(&tcp_request(
            local,
            "OPTIONS",
            &format!("sip:{};transport=tcp", navbat.sip),
            &options,
        ))
        .unwrap();
    let alive =
        tcp_final_for(stream, buf, &options, EVENT_DEADLINE).expect("the connection still answers");
    assert_eq!(alive.status, 200, "{}", alive.raw);
}

#[test]
fn over_tcp_a_source_at_its_cap_gets_503_and_keeps_its_connection() {
    use std::io::Write;
    let navbat = Navbat::start(
        "door-tcp",
        TestConfig::default()
            .extra_toml("[sip.door]\nsource_calls = 1\ntrunk_sources = [\"127.0.0.9\"]\n"),
    );
    let mut stream =
        std::net::TcpStream::connect_timeout(&navbat.sip, std::time::Duration::from_secs(5))
            .expect("connect over TCP");
    let local = stream.local_addr().unwrap();
    let uri = format!("sip:{DTM_DID}@{};transport=tcp", navbat.sip);
    let mut buf = Vec::new();

    let first = format!("tcp-first-{}", unique_token());
    stream
        .write_all(&tcp_request(local, "INVITE", &uri, &first))
        .unwrap();
    let taken = tcp_final_for(&mut stream, &mut buf, &first, EVENT_DEADLINE).expect("answer");
    assert_eq!(taken.status, 200, "the first call is taken: {}", taken.raw);

    let second = format!("tcp-second-{}", unique_token());
    stream
        .write_all(&tcp_request(local, "INVITE", &uri, &second))
        .unwrap();
    let refused = tcp_final_for(&mut stream, &mut buf, &second, EVENT_DEADLINE).expect("503");
    assert_eq!(refused.status, 503, "{}", refused.raw);
    assert_eq!(refused.header("Retry-After").as_deref(), Some("30"));
    assert!(
        refused
            .header("To")
            .is_some_and(|to| to.contains(";tag=nbs-")),
        "answered at the door, without a transaction: {}",
        refused.raw
    );

    assert_connection_kept(&navbat, &mut stream, &mut buf);
}

/// Over TCP too the guard answers an unknown number itself (404, stateless, no call
/// record), and the connection stays open.
#[test]
fn over_tcp_an_unknown_number_gets_a_stateless_404_and_keeps_its_connection() {
    use std::io::Write;
    let navbat = Navbat::start("door-tcp-unknown", TestConfig::default());
    let mut stream =
        std::net::TcpStream::connect_timeout(&navbat.sip, std::time::Duration::from_secs(5))
            .expect("connect over TCP");
    let local = stream.local_addr().unwrap();
    let mut buf = Vec::new();
    let id = format!("tcp-unknown-{}", unique_token());
    let uri = format!("sip:{UNKNOWN_DID}@{};transport=tcp", navbat.sip);
    stream
        .write_all(&tcp_request(local, "INVITE", &uri, &id))
        .unwrap();
    let refused = tcp_final_for(&mut stream, &mut buf, &id, EVENT_DEADLINE).expect("404");
    assert_eq!(refused.status, 404, "{}", refused.raw);
    assert!(
        refused
            .header("To")
            .is_some_and(|to| to.contains(";tag=nbs-")),
        "answered by the guard, without a transaction: {}",
        refused.raw
    );
    assert_connection_kept(&navbat, &mut stream, &mut buf);
    assert_no_call_events_of_refusals(&navbat, 0);
}

// ---------------------------------------------------------------------------------------------
// Refusing is nearly free (issue 18, part 3): what the router would refuse anyway (channels
// full, an unknown number, a foreign trunk) is answered by the guard, statelessly.

/// The blocked calls the `blocked_summary` events of tenant `dtm` count, and their samples.
fn blocked_summaries(navbat: &Navbat) -> (u64, Vec<String>) {
    let mut total = 0;
    let mut sample = Vec::new();
    for e in navbat.events() {
        if e["kind"] == "blocked_summary" && e["tenant"] == "dtm" {
            total += e["count"].as_u64().unwrap_or(0);
            sample.extend(
                e["sample"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned)),
            );
        }
    }
    (total, sample)
}

/// A series of `/metrics` by name and labels in any order (0 when absent).
fn series(navbat: &Navbat, name: &str, labels: &[&str]) -> u64 {
    navbat
        .get("/metrics")
        .body
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// No per-call trace of a call the door refused: the only call record is `arrived` ones.
fn assert_no_call_events_of_refusals(navbat: &Navbat, arrived: usize) {
    let events = navbat.events();
    let per_call: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "call_blocked" || e["outcome"] == "blocked")
        .collect();
    assert!(
        per_call.is_empty(),
        "refused calls have no call events: {per_call:?}"
    );
    let n = events
        .iter()
        .filter(|e| e["kind"] == "call_arrived")
        .count();
    assert_eq!(n, arrived, "call records: only the admitted calls");
}

/// Every channel is in use (one, held by a caller waiting in the queue); SIPp callers on
/// three other addresses, each well under its own caps, get 503 + Retry-After from the guard
/// and ACK it: no call record, no call event; one `blocked_summary` a second counts them
/// (callers masked) and the blocked-calls metric moves by the same count.
#[test]
fn calls_over_full_channels_from_several_sources_are_refused_statelessly_and_counted() {
    let navbat = Navbat::start("refuse-full", TestConfig::default().channels(1));
    let _holder = navbat.caller("holder", "caller_abandon.xml", DTM_DID, 50_000);
    navbat.wait_for_event("call_enqueued", EVENT_DEADLINE, |_| true);

    let sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    let callers: Vec<_> = sources
        .iter()
        .map(|ip| {
            navbat.sipp_client(
                &format!("blocked-{ip}"),
                "caller_blocked.xml",
                &["-i", ip, "-s", DTM_DID, "-r", "5", "-m", "4"],
            )
        })
        .collect();
    // caller_blocked.xml passes only on a 503 with a numeric Retry-After.
    for c in callers {
        c.wait_success();
    }
    let total = wait_until("12 blocked calls summarised", EVENT_DEADLINE, || {
        let (n, _) = blocked_summaries(&navbat);
        (n >= 12).then_some(n)
    });
    assert_eq!(total, 12);
    let (_, sample) = blocked_summaries(&navbat);
    assert!(!sample.is_empty(), "the summary samples its callers");
    assert!(
        sample
            .iter()
            .all(|n| n.contains('*') && !n.contains("998900000001")),
        "callers masked in the summary: {sample:?}"
    );
    assert_no_call_events_of_refusals(&navbat, 1);
    let blocked = wait_until("the blocked calls in /metrics", EVENT_DEADLINE, || {
        let n = series(
            &navbat,
            "navbat_calls_blocked_total",
            &["tenant=\"dtm\"", "reason=\"global_channels\""],
        );
        (n >= 12).then_some(n)
    });
    assert_eq!(blocked, 12);
    let (answered, acks) = wait_until("the refusals and ACKs counted", EVENT_DEADLINE, || {
        let a = door(&navbat, "answered_channels_full");
        let k = door(&navbat, "acks_absorbed");
        (a >= 12 && k >= 12).then_some((a, k))
    });
    assert_eq!((answered, acks), (12, 12));
}

/// What the router refuses anyway, answered by the guard with the same To-tag scheme as the
/// door's 503: an unknown number (404), a source outside the tenant's `trunk_sources` (403),
/// full channels (503 + Retry-After; its retransmission gets the same answer and is counted
/// once; its ACK is absorbed). The admitted call works, and its own retransmission still goes
/// to its transaction; a feature code from outside the trunks is not refused as a call.
#[test]
fn unknown_numbers_foreign_trunks_and_full_channels_get_stateless_answers() {
    let navbat = Navbat::start(
        "refuse-kinds",
        TestConfig::default()
            .channels(1)
            .tenant_keys("trunk_sources = [\"127.0.0.2/32\"]"),
    );
    let uri = format!("sip:{DTM_DID}@{}", navbat.sip);
    let trunk = SipUdp::from_ip("127.0.0.2", navbat.sip);
    let stateless = |r: &SipResponse| r.header("To").is_some_and(|to| to.contains(";tag=nbs-"));

    // The admitted call takes the only channel.
    let first_id = format!("taken-{}", unique_token());
    let first = trunk.request("INVITE", &uri, "Contact: <sip:t@127.0.0.2>\r\n", &first_id);
    trunk.send(&first);
    let taken = trunk
        .final_response(&first_id, EVENT_DEADLINE)
        .expect("200");
    assert_eq!(taken.status, 200, "{}", taken.raw);
    wait_until("the channel in use", EVENT_DEADLINE, || {
        (channels_in_use(&navbat) == 1).then_some(())
    });
    // Its retransmission reaches its transaction, though the channels are now full.
    trunk.send(&first);
    let again = trunk
        .final_response(&first_id, EVENT_DEADLINE)
        .expect("200");
    assert_eq!(again.status, 200, "{}", again.raw);

    let unknown_id = format!("unknown-{}", unique_token());
    trunk.send(&trunk.request(
        "INVITE",
        &format!("sip:{UNKNOWN_DID}@{}", navbat.sip),
        "",
        &unknown_id,
    ));
    let unknown = trunk
        .final_response(&unknown_id, EVENT_DEADLINE)
        .expect("404");
    assert_eq!(unknown.status, 404, "{}", unknown.raw);
    assert!(stateless(&unknown), "{}", unknown.raw);

    let stranger = SipUdp::from_ip("127.0.0.3", navbat.sip);
    let foreign_id = format!("foreign-{}", unique_token());
    stranger.send(&stranger.request("INVITE", &uri, "", &foreign_id));
    let foreign = stranger
        .final_response(&foreign_id, EVENT_DEADLINE)
        .expect("403");
    assert_eq!(foreign.status, 403, "{}", foreign.raw);
    assert!(stateless(&foreign), "{}", foreign.raw);

    // A supervisor's feature code from outside the trunks is challenged, not refused.
    let feature_id = format!("feature-{}", unique_token());
    stranger.send(&stranger.request(
        "INVITE",
        &format!("sip:*511001@{}", navbat.sip),
        "",
        &feature_id,
    ));
    let feature = stranger
        .final_response(&feature_id, EVENT_DEADLINE)
        .expect("a challenge");
    assert_eq!(feature.status, 407, "{}", feature.raw);

    let full_id = format!("full-{}", unique_token());
    let full = trunk.request("INVITE", &uri, "", &full_id);
    trunk.send(&full);
    let refused = trunk.final_response(&full_id, EVENT_DEADLINE).expect("503");
    assert_eq!(refused.status, 503, "{}", refused.raw);
    assert_eq!(refused.header("Retry-After").as_deref(), Some("30"));
    assert!(stateless(&refused), "{}", refused.raw);
    trunk.send(&full);
    let repeated = trunk.final_response(&full_id, EVENT_DEADLINE).expect("503");
    assert_eq!(repeated.status, 503);
    assert_eq!(
        repeated.header("To"),
        refused.header("To"),
        "the same answer"
    );
    let ack = String::from_utf8(full)
        .unwrap()
        .replacen("INVITE sip", "ACK sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
        .replace(
            &format!("To: <{uri}>"),
            &format!("To: {}", refused.header("To").unwrap()),
        );
    trunk.send(ack.as_bytes());

    let counted = wait_until("the answers counted", EVENT_DEADLINE, || {
        let c = [
            door(&navbat, "answered_unknown_number"),
            door(&navbat, "answered_foreign_trunk"),
            door(&navbat, "answered_channels_full"),
            door(&navbat, "acks_absorbed"),
        ];
        // Each read is a scrape of its own: wait for all, then compare.
        (c[0] >= 1 && c[1] >= 1 && c[2] >= 2 && c[3] >= 1).then_some(c)
    });
    assert_eq!(counted, [1, 1, 2, 1]);
    // Another refused call, sent after the retransmission: a summary that counts it counts
    // whatever came before, so the retransmission, had it been counted, would show by then.
    // It has a caller number of its own, to know when a summary has counted it.
    let next_id = format!("next-{}", unique_token());
    let next = String::from_utf8(trunk.request("INVITE", &uri, "", &next_id))
        .unwrap()
        .replace("From: <sip:probe@", "From: <sip:998901112233@");
    trunk.send(next.as_bytes());
    let next = trunk.final_response(&next_id, EVENT_DEADLINE).expect("503");
    assert_eq!(next.status, 503, "{}", next.raw);
    let total = wait_until("the next call summarised", EVENT_DEADLINE, || {
        let (n, sample) = blocked_summaries(&navbat);
        sample.iter().any(|s| s == "99890*****33").then_some(n)
    });
    assert_eq!(total, 2, "a retransmission is not another call");
    assert_no_call_events_of_refusals(&navbat, 1);
}

/// The monthly report counts the calls refused at the door as blocked (from the summaries the
/// journal carried into the database), as it counted their call records before.
#[test]
fn the_monthly_report_counts_calls_refused_at_the_door_as_blocked() {
    let data = tempfile::tempdir().unwrap();
    let mut navbat = Navbat::start(
        "refuse-report",
        TestConfig::default().channels(1).extra_toml(&format!(
            "\n[database]\nurl = \"sqlite://{}\"\njournal_dir = {:?}\n",
            data.path().join("navbat.db").display(),
            data.path().join("journal").display().to_string()
        )),
    );
    let holder = navbat.caller("holder", "caller_abandon.xml", DTM_DID, 50_000);
    navbat.wait_for_event("call_enqueued", EVENT_DEADLINE, |_| true);
    for ip in ["127.0.0.2", "127.0.0.3"] {
        navbat
            .sipp_client(
                &format!("blocked-{ip}"),
                "caller_blocked.xml",
                &["-i", ip, "-s", DTM_DID, "-r", "5", "-m", "3"],
            )
            .wait_success();
    }
    wait_until("6 blocked calls summarised", EVENT_DEADLINE, || {
        (blocked_summaries(&navbat).0 >= 6).then_some(())
    });
    navbat.terminate();
    navbat
        .wait_exit(STOP_DEADLINE)
        .expect("navbat stops on SIGTERM");
    drop(holder);
    let month = jiff::tz::TimeZone::get("Asia/Tashkent")
        .unwrap()
        .to_datetime(jiff::Timestamp::now())
        .strftime("%Y-%m")
        .to_string();
    let out = std::process::Command::new(navbat_bin())
        .args([
            "report",
            "month",
            &month,
            "--tenant",
            "dtm",
            "--config",
            "navbat.toml",
            "--json",
            "r.json",
        ])
        .current_dir(navbat.dir.path())
        .output()
        .expect("run navbat report");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(navbat.dir.path().join("r.json")).unwrap()).unwrap();
    let blocked = report["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "blocked")
        .map(|c| c["count"].as_u64().unwrap());
    assert_eq!(blocked, Some(6), "{}", report["outcomes"]);
}
