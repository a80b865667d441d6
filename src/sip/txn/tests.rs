//! Unit tests of the transaction state machines, in virtual time.

use super::*;
use std::net::SocketAddr;

const UA: &str = "192.0.2.7:5060";
const T4: u64 = 5_000;
const SIXTY_FOUR_T1: u64 = 32_000;

fn peer() -> SocketAddr {
    "192.0.2.7:5060".parse().unwrap()
}

fn req(method: Method, branch: &str) -> RequestMeta<'_> {
    RequestMeta {
        method,
        branch,
        sent_by: UA,
        cseq_method: method,
        reliable: false,
        peer: peer(),
    }
}

fn tcp(meta: RequestMeta<'_>) -> RequestMeta<'_> {
    RequestMeta {
        reliable: true,
        ..meta
    }
}

fn resp(status: u16, branch: &str, cseq_method: Method) -> ResponseMeta<'_> {
    ResponseMeta {
        status,
        branch,
        cseq_method,
    }
}

fn out(method: Method, branch: &str, reliable: bool) -> OutgoingRequest<'_> {
    OutgoingRequest {
        method,
        branch,
        to: peer(),
        reliable,
    }
}

/// A serialised message of exactly `len` bytes, starting with `first_line`.
fn wire(first_line: &str, len: usize) -> Wire {
    let mut text = format!("{first_line}\r\n").into_bytes();
    text.resize(len.max(text.len()), b'x');
    Wire::from(text)
}

/// Drives a [`TransactionLayer`] in virtual time, the way the SIP reader and TU will.
struct Harness {
    layer: TransactionLayer,
    start: Millis,
    now: Millis,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(Config::default())
    }

    fn with(config: Config) -> Harness {
        let start = Millis::from_secs(1000);
        Harness {
            layer: TransactionLayer::new(config),
            start,
            now: start,
        }
    }

    /// Milliseconds since the harness started.
    fn elapsed(&self) -> u64 {
        self.now.saturating_since(self.start)
    }

    fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.layer.poll_action()).collect()
    }

    /// Moves time to `at` ms after the start, firing each deadline at its own instant; the
    /// actions come with the time they happened at.
    fn run_to(&mut self, at: u64) -> Vec<(u64, Action)> {
        let end = self.start.plus(at);
        let mut seen = Vec::new();
        while let Some(due) = self.layer.poll_timeout().filter(|&t| t <= end) {
            assert!(
                due > self.now,
                "a deadline in the past: {due:?} at {:?}",
                self.now
            );
            self.now = due;
            self.layer.handle_timeout(due);
            let t = self.elapsed();
            seen.extend(self.drain().into_iter().map(|a| (t, a)));
        }
        self.now = end;
        seen
    }

    fn request(&mut self, meta: &RequestMeta<'_>) -> Verdict {
        self.layer.on_request(self.now, meta).unwrap()
    }

    fn new_server(&mut self, meta: &RequestMeta<'_>) -> TxnId {
        match self.request(meta) {
            Verdict::New { txn, .. } => txn,
            other => panic!("expected a new transaction, got {other:?}"),
        }
    }

    fn respond(&mut self, txn: TxnId, status: u16, bytes: &Wire) -> Vec<Action> {
        self.layer
            .respond(self.now, txn, status, bytes.clone())
            .unwrap();
        self.drain()
    }

    fn response(&mut self, meta: &ResponseMeta<'_>) -> ResponseVerdict {
        self.layer.on_response(self.now, meta).unwrap()
    }

    fn send(&mut self, req: &OutgoingRequest<'_>, bytes: &Wire) -> TxnId {
        let id = self
            .layer
            .send_request(self.now, req, bytes.clone())
            .unwrap();
        let first = self.drain();
        assert_eq!(first, vec![send(id, bytes)], "the request goes out at once");
        id
    }
}

fn send(txn: TxnId, bytes: &Wire) -> Action {
    Action::Send {
        txn,
        to: peer(),
        bytes: bytes.clone(),
    }
}

/// The times of the `Send`s among `actions`.
fn send_times(actions: &[(u64, Action)]) -> Vec<u64> {
    actions
        .iter()
        .filter(|(_, a)| matches!(a, Action::Send { .. }))
        .map(|&(t, _)| t)
        .collect()
}

/// The actions other than `Send`, with their times.
fn others(actions: &[(u64, Action)]) -> Vec<(u64, Action)> {
    actions
        .iter()
        .filter(|(_, a)| !matches!(a, Action::Send { .. }))
        .cloned()
        .collect()
}

// ---- server non-INVITE (§17.2.2) ----

#[test]
fn server_non_invite_goes_trying_proceeding_completed_terminated() {
    let mut h = Harness::new();
    let options = req(Method::Options, "z9hG4bKopt1");
    let id = h.new_server(&options);
    assert_eq!(h.layer.state(id), Some(State::Trying));
    assert_eq!(h.layer.kind(id), Some(Kind::ServerNonInvite));
    assert_eq!(h.layer.poll_timeout(), None, "Trying waits for the TU");

    // A retransmission in Trying is absorbed: nothing to send yet.
    assert_eq!(
        h.request(&options),
        Verdict::Retransmission {
            txn: id,
            state: State::Trying,
            resent: false,
            rebuild: None
        }
    );
    assert!(h.drain().is_empty());

    let ringing = wire("SIP/2.0 183 Progress", 300);
    assert_eq!(h.respond(id, 183, &ringing), vec![send(id, &ringing)]);
    assert_eq!(h.layer.state(id), Some(State::Proceeding));
    assert_eq!(
        h.request(&options),
        Verdict::Retransmission {
            txn: id,
            state: State::Proceeding,
            resent: true,
            rebuild: None
        }
    );
    assert_eq!(h.drain(), vec![send(id, &ringing)]);

    h.run_to(1_000);
    let ok = wire("SIP/2.0 200 OK", 450);
    assert_eq!(h.respond(id, 200, &ok), vec![send(id, &ok)]);
    assert_eq!(h.layer.state(id), Some(State::Completed));
    assert_eq!(
        h.layer.poll_timeout(),
        Some(h.now.plus(SIXTY_FOUR_T1)),
        "timer J"
    );
    assert_eq!(
        h.layer.respond(h.now, id, 500, ok.clone()),
        Err(TxnError::WrongState {
            txn: id,
            kind: Kind::ServerNonInvite,
            state: State::Completed,
            what: "send this response"
        })
    );

    // Retransmissions in Completed get the stored final response, nothing is passed up.
    h.run_to(5_000);
    assert_eq!(
        h.request(&options),
        Verdict::Retransmission {
            txn: id,
            state: State::Completed,
            resent: true,
            rebuild: None
        }
    );
    assert_eq!(h.drain(), vec![send(id, &ok)]);

    let ended = h.run_to(40_000);
    assert_eq!(ended, vec![(33_000, Action::Terminated { txn: id })]);
    assert!(h.layer.is_empty());
    // A retransmission after timer J is a new transaction for the TU.
    assert!(matches!(h.request(&options), Verdict::New { txn, .. } if txn != id));
}

#[test]
fn server_non_invite_over_tcp_ends_with_its_final_response() {
    let mut h = Harness::new();
    let id = h.new_server(&tcp(req(Method::Register, "z9hG4bKreg")));
    let ok = wire("SIP/2.0 200 OK", 400);
    assert_eq!(
        h.respond(id, 200, &ok),
        vec![send(id, &ok), Action::Terminated { txn: id }],
        "timer J is zero on a reliable transport"
    );
    assert!(h.layer.is_empty());
    assert_eq!(h.layer.poll_timeout(), None);
}

// ---- server INVITE (§17.2.1, RFC 6026 §7.1) ----

#[test]
fn server_invite_sends_trying_only_on_the_tus_word_and_resends_the_last_provisional() {
    let mut h = Harness::new();
    let invite = req(Method::Invite, "z9hG4bKinv1");
    let Verdict::New {
        txn: id,
        send_trying,
        cancels,
    } = h.request(&invite)
    else {
        panic!("a new INVITE")
    };
    assert!(send_trying);
    assert_eq!(cancels, None);
    assert!(h.drain().is_empty(), "the layer sends no 100 of its own");
    assert!(h.layer.trying_needed(id));
    assert_eq!(h.layer.state(id), Some(State::Proceeding));

    // Before any response a retransmitted INVITE has nothing to get back.
    assert_eq!(
        h.request(&invite),
        Verdict::Retransmission {
            txn: id,
            state: State::Proceeding,
            resent: false,
            rebuild: None
        }
    );
    let trying = wire("SIP/2.0 100 Trying", 250);
    h.respond(id, 100, &trying);
    assert!(!h.layer.trying_needed(id));
    let ringing = wire("SIP/2.0 180 Ringing", 300);
    assert_eq!(h.respond(id, 180, &ringing), vec![send(id, &ringing)]);
    assert!(matches!(
        h.request(&invite),
        Verdict::Retransmission { resent: true, .. }
    ));
    assert_eq!(
        h.drain(),
        vec![send(id, &ringing)],
        "the most recent provisional"
    );
    assert_eq!(h.layer.poll_timeout(), None, "Proceeding has no timer");
}

#[test]
fn server_invite_retransmits_its_error_on_timer_g_capped_at_t2_until_timer_h() {
    let mut h = Harness::new();
    let id = h.new_server(&req(Method::Invite, "z9hG4bKbusy"));
    let busy = wire("SIP/2.0 486 Busy Here", 450);
    assert_eq!(h.respond(id, 486, &busy), vec![send(id, &busy)]);
    assert_eq!(h.layer.state(id), Some(State::Completed));

    let seen = h.run_to(60_000);
    assert_eq!(
        send_times(&seen),
        vec![500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(
        others(&seen),
        vec![
            (32_000, Action::AckTimeout { txn: id }),
            (32_000, Action::Terminated { txn: id })
        ]
    );
    assert!(h.layer.is_empty());
}

#[test]
fn server_invite_ack_for_its_error_confirms_it_until_timer_i() {
    let mut h = Harness::new();
    let invite = req(Method::Invite, "z9hG4bKbusy2");
    let id = h.new_server(&invite);
    let busy = wire("SIP/2.0 486 Busy Here", 450);
    h.respond(id, 486, &busy);
    assert_eq!(send_times(&h.run_to(2_000)), vec![500, 1_500]);

    // A retransmitted INVITE in Completed gets the error again.
    assert!(matches!(
        h.request(&invite),
        Verdict::Retransmission {
            state: State::Completed,
            resent: true,
            ..
        }
    ));
    assert_eq!(h.drain(), vec![send(id, &busy)]);

    let ack = req(Method::Ack, "z9hG4bKbusy2");
    assert_eq!(h.request(&ack), Verdict::AckAbsorbed { txn: id });
    assert_eq!(h.layer.state(id), Some(State::Confirmed));
    // Confirmed absorbs both ACK and INVITE retransmissions and sends nothing more.
    assert_eq!(h.request(&ack), Verdict::AckAbsorbed { txn: id });
    assert_eq!(
        h.request(&invite),
        Verdict::Retransmission {
            txn: id,
            state: State::Confirmed,
            resent: false,
            rebuild: None
        }
    );
    assert!(h.drain().is_empty());
    assert_eq!(
        h.run_to(60_000),
        vec![(2_000 + T4, Action::Terminated { txn: id })],
        "timer I is T4; timers G and H are gone"
    );
}

#[test]
fn server_invite_over_tcp_does_not_retransmit_and_ends_at_the_ack() {
    let mut h = Harness::new();
    let invite = tcp(req(Method::Invite, "z9hG4bKtcp"));
    let id = h.new_server(&invite);
    let busy = wire("SIP/2.0 486 Busy Here", 450);
    h.respond(id, 486, &busy);
    assert_eq!(
        h.layer.poll_timeout(),
        Some(h.now.plus(SIXTY_FOUR_T1)),
        "timer H only"
    );
    assert!(h.run_to(10_000).is_empty());
    assert_eq!(
        h.request(&tcp(req(Method::Ack, "z9hG4bKtcp"))),
        Verdict::AckAbsorbed { txn: id }
    );
    assert_eq!(
        h.drain(),
        vec![Action::Terminated { txn: id }],
        "timer I is zero"
    );
    assert_eq!(h.layer.poll_timeout(), None);
}

#[test]
fn server_invite_2xx_is_accepted_and_the_tus_until_timer_l() {
    let mut h = Harness::new();
    let invite = req(Method::Invite, "z9hG4bKok");
    let id = h.new_server(&invite);
    let ok = wire("SIP/2.0 200 OK", 700);
    assert_eq!(h.respond(id, 200, &ok), vec![send(id, &ok)]);
    assert_eq!(h.layer.state(id), Some(State::Accepted));

    // Retransmitted INVITEs are absorbed and reported; the layer re-sends nothing.
    assert_eq!(
        h.request(&invite),
        Verdict::Retransmission {
            txn: id,
            state: State::Accepted,
            resent: false,
            rebuild: None
        }
    );
    assert!(h.drain().is_empty());
    // The TU's own 2xx retransmission goes out as is.
    assert_eq!(h.respond(id, 200, &ok), vec![send(id, &ok)]);
    assert!(h.layer.respond(h.now, id, 486, ok.clone()).is_err());
    // The ACK for a 2xx belongs to the dialog layer, whichever branch it has.
    assert_eq!(
        h.request(&req(Method::Ack, "z9hG4bKok")),
        Verdict::AckFor2xx { txn: Some(id) }
    );
    assert_eq!(
        h.request(&req(Method::Ack, "z9hG4bKnewbranch")),
        Verdict::AckFor2xx { txn: None }
    );
    assert_eq!(
        h.run_to(60_000),
        vec![(SIXTY_FOUR_T1, Action::Terminated { txn: id })],
        "timer L, and no AckTimeout: the TU keeps the 2xx"
    );
}

#[test]
fn server_invite_2xx_service_retransmits_until_the_ack() {
    let mut h = Harness::new();
    let id = h.new_server(&req(Method::Invite, "z9hG4bKsvc"));
    let ok = wire("SIP/2.0 200 OK", 700);
    h.layer
        .respond_2xx_retransmitting(h.now, id, 200, ok.clone())
        .unwrap();
    assert_eq!(h.drain(), vec![send(id, &ok)]);
    assert_eq!(send_times(&h.run_to(8_000)), vec![500, 1_500, 3_500, 7_500]);
    h.layer.ack_received(h.now, id).unwrap();
    assert_eq!(
        h.run_to(60_000),
        vec![(SIXTY_FOUR_T1, Action::Terminated { txn: id })]
    );
}

#[test]
fn server_invite_2xx_service_gives_up_after_64_t1_even_over_tcp() {
    let mut h = Harness::new();
    let id = h.new_server(&tcp(req(Method::Invite, "z9hG4bKsvc2")));
    let ok = wire("SIP/2.0 200 OK", 700);
    h.layer
        .respond_2xx_retransmitting(h.now, id, 200, ok.clone())
        .unwrap();
    h.drain();
    let seen = h.run_to(60_000);
    assert_eq!(
        send_times(&seen),
        vec![500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500],
        "T1 doubling, capped at T2"
    );
    assert_eq!(
        others(&seen),
        vec![
            (SIXTY_FOUR_T1, Action::AckTimeout { txn: id }),
            (SIXTY_FOUR_T1, Action::Terminated { txn: id })
        ]
    );
}

#[test]
fn the_2xx_service_is_only_for_a_2xx_to_an_invite() {
    let mut h = Harness::new();
    let id = h.new_server(&req(Method::Invite, "z9hG4bKsvc3"));
    assert!(matches!(
        h.layer
            .respond_2xx_retransmitting(h.now, id, 486, wire("SIP/2.0 486 Busy", 100)),
        Err(TxnError::WrongState { .. })
    ));
    let bye = h.new_server(&req(Method::Bye, "z9hG4bKsvc4"));
    assert!(h
        .layer
        .respond_2xx_retransmitting(h.now, bye, 200, wire("SIP/2.0 200 OK", 100))
        .is_err());
    assert!(matches!(
        h.layer.ack_received(h.now, id),
        Err(TxnError::WrongState { .. })
    ));
}

// ---- client INVITE (§17.1.1, RFC 6026 §7.2) ----

#[test]
fn client_invite_retransmits_on_timer_a_doubling_until_timer_b() {
    let mut h = Harness::new();
    let invite = wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900);
    let id = h.send(&out(Method::Invite, "z9hG4bKa", false), &invite);
    assert_eq!(h.layer.state(id), Some(State::Calling));
    let seen = h.run_to(60_000);
    assert_eq!(
        send_times(&seen),
        vec![500, 1_500, 3_500, 7_500, 15_500, 31_500],
        "timer A doubles without a cap"
    );
    assert!(seen
        .iter()
        .all(|(_, a)| !matches!(a, Action::Send { bytes, .. } if *bytes != invite)));
    assert_eq!(
        others(&seen),
        vec![
            (SIXTY_FOUR_T1, Action::Timeout { txn: id }),
            (SIXTY_FOUR_T1, Action::Terminated { txn: id })
        ]
    );
}

#[test]
fn client_invite_provisional_stops_a_and_b_and_every_2xx_is_delivered() {
    let mut h = Harness::new();
    let invite = wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900);
    let id = h.send(&out(Method::Invite, "z9hG4bKb", false), &invite);
    assert_eq!(send_times(&h.run_to(700)), vec![500]);
    let ringing = resp(180, "z9hG4bKb", Method::Invite);
    assert_eq!(h.response(&ringing), ResponseVerdict::Deliver { txn: id });
    assert_eq!(h.layer.state(id), Some(State::Proceeding));
    assert_eq!(h.layer.poll_timeout(), None, "timers A and B are stopped");
    assert_eq!(h.response(&ringing), ResponseVerdict::Deliver { txn: id });

    h.run_to(10_000);
    let ok = resp(200, "z9hG4bKb", Method::Invite);
    assert_eq!(h.response(&ok), ResponseVerdict::Deliver { txn: id });
    assert_eq!(h.layer.state(id), Some(State::Accepted));
    // Retransmitted 2xx (or one from another fork) reach the TU, so it ACKs each.
    h.run_to(11_000);
    assert_eq!(h.response(&ok), ResponseVerdict::Deliver { txn: id });
    assert_eq!(
        h.response(&ringing),
        ResponseVerdict::Absorbed {
            txn: id,
            ack_resent: false
        }
    );
    assert_eq!(
        h.run_to(60_000),
        vec![(10_000 + SIXTY_FOUR_T1, Action::Terminated { txn: id })],
        "timer M"
    );
}

#[test]
fn client_invite_error_needs_an_ack_that_answers_every_retransmitted_error() {
    let mut h = Harness::new();
    let id = h.send(
        &out(Method::Invite, "z9hG4bKc", false),
        &wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900),
    );
    h.run_to(300);
    let busy = resp(486, "z9hG4bKc", Method::Invite);
    assert_eq!(h.response(&busy), ResponseVerdict::AckNeeded { txn: id });
    assert_eq!(h.layer.state(id), Some(State::Completed));
    let ack = wire("ACK sip:op@192.0.2.7 SIP/2.0", 350);
    h.layer.send_ack(h.now, id, ack.clone()).unwrap();
    assert_eq!(h.drain(), vec![send(id, &ack)]);
    assert!(matches!(
        h.layer.send_ack(h.now, id, ack.clone()),
        Err(TxnError::WrongState { .. })
    ));

    h.run_to(2_000);
    assert_eq!(
        h.response(&busy),
        ResponseVerdict::Absorbed {
            txn: id,
            ack_resent: true
        }
    );
    assert_eq!(h.drain(), vec![send(id, &ack)], "the very same ACK");
    assert_eq!(
        h.run_to(60_000),
        vec![(300 + 32_000, Action::Terminated { txn: id })],
        "timer D, no retransmission of the INVITE after the error"
    );
}

#[test]
fn client_invite_over_tcp_neither_retransmits_nor_waits_after_its_ack() {
    let mut h = Harness::new();
    let id = h.send(
        &out(Method::Invite, "z9hG4bKd", true),
        &wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900),
    );
    assert_eq!(
        h.layer.poll_timeout(),
        Some(h.now.plus(SIXTY_FOUR_T1)),
        "timer B only"
    );
    assert!(h.run_to(5_000).is_empty());
    assert_eq!(
        h.response(&resp(603, "z9hG4bKd", Method::Invite)),
        ResponseVerdict::AckNeeded { txn: id }
    );
    let ack = wire("ACK sip:op@192.0.2.7 SIP/2.0", 350);
    h.layer.send_ack(h.now, id, ack.clone()).unwrap();
    assert_eq!(
        h.drain(),
        vec![send(id, &ack), Action::Terminated { txn: id }],
        "timer D is zero"
    );
}

#[test]
fn client_invite_over_tcp_without_an_ack_ends_after_64_t1() {
    let mut h = Harness::new();
    let id = h.send(
        &out(Method::Invite, "z9hG4bKd2", true),
        &wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900),
    );
    let _ = h.response(&resp(603, "z9hG4bKd2", Method::Invite));
    assert_eq!(
        h.run_to(60_000),
        vec![(SIXTY_FOUR_T1, Action::Terminated { txn: id })]
    );
}

#[test]
fn client_invite_cancelled_in_proceeding_times_out_after_64_t1() {
    let mut h = Harness::new();
    let id = h.send(
        &out(Method::Invite, "z9hG4bKe", false),
        &wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900),
    );
    let _ = h.response(&resp(180, "z9hG4bKe", Method::Invite));
    h.run_to(20_000);
    h.layer.cancelling(h.now, id).unwrap();
    assert_eq!(
        h.run_to(100_000),
        vec![
            (20_000 + SIXTY_FOUR_T1, Action::Timeout { txn: id }),
            (20_000 + SIXTY_FOUR_T1, Action::Terminated { txn: id })
        ]
    );
}

#[test]
fn client_invite_cancelled_while_calling_waits_64_t1_from_its_provisional() {
    let mut h = Harness::new();
    let id = h.send(
        &out(Method::Invite, "z9hG4bKe2", true),
        &wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900),
    );
    h.layer.cancelling(h.now, id).unwrap();
    h.run_to(10_000);
    let _ = h.response(&resp(183, "z9hG4bKe2", Method::Invite));
    assert_eq!(
        others(&h.run_to(100_000)),
        vec![
            (10_000 + SIXTY_FOUR_T1, Action::Timeout { txn: id }),
            (10_000 + SIXTY_FOUR_T1, Action::Terminated { txn: id })
        ]
    );
}

// ---- client non-INVITE (§17.1.2) ----

#[test]
fn client_non_invite_retransmits_on_timer_e_capped_at_t2_until_timer_f() {
    let mut h = Harness::new();
    let id = h.send(
        &out(Method::Bye, "z9hG4bKf", false),
        &wire("BYE sip:op@192.0.2.7 SIP/2.0", 400),
    );
    assert_eq!(h.layer.state(id), Some(State::Trying));
    let seen = h.run_to(60_000);
    assert_eq!(
        send_times(&seen),
        vec![500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500]
    );
    assert_eq!(
        others(&seen),
        vec![
            (SIXTY_FOUR_T1, Action::Timeout { txn: id }),
            (SIXTY_FOUR_T1, Action::Terminated { txn: id })
        ]
    );
}

#[test]
fn client_non_invite_provisional_keeps_e_at_t2_and_final_completes_until_timer_k() {
    let mut h = Harness::new();
    let bye = wire("BYE sip:op@192.0.2.7 SIP/2.0", 400);
    let id = h.send(&out(Method::Bye, "z9hG4bKg", false), &bye);
    h.run_to(600);
    let trying = resp(100, "z9hG4bKg", Method::Bye);
    assert_eq!(h.response(&trying), ResponseVerdict::Deliver { txn: id });
    assert_eq!(h.layer.state(id), Some(State::Proceeding));
    assert_eq!(
        send_times(&h.run_to(10_000)),
        vec![1_500, 5_500, 9_500],
        "E fires at its set time, then every T2"
    );
    let ok = resp(200, "z9hG4bKg", Method::Bye);
    assert_eq!(h.response(&ok), ResponseVerdict::Deliver { txn: id });
    assert_eq!(h.layer.state(id), Some(State::Completed));
    assert_eq!(
        h.response(&ok),
        ResponseVerdict::Absorbed {
            txn: id,
            ack_resent: false
        }
    );
    assert_eq!(
        h.run_to(60_000),
        vec![(10_000 + T4, Action::Terminated { txn: id })],
        "timer K is T4, no retransmission after the final"
    );
}

#[test]
fn client_non_invite_over_tcp_ends_at_its_final_response() {
    let mut h = Harness::new();
    let id = h.send(
        &out(Method::Options, "z9hG4bKh", true),
        &wire("OPTIONS sip:op@192.0.2.7 SIP/2.0", 400),
    );
    assert!(h.run_to(5_000).is_empty(), "no timer E over TCP");
    assert_eq!(
        h.response(&resp(200, "z9hG4bKh", Method::Options)),
        ResponseVerdict::Deliver { txn: id }
    );
    assert_eq!(
        h.drain(),
        vec![Action::Terminated { txn: id }],
        "timer K is zero"
    );
    assert_eq!(h.layer.poll_timeout(), None);
}

// ---- two layers talking ----

/// A UAC layer and a UAS layer over a UDP link that loses the first `INVITE`s, `486`s and
/// `ACK`s it is given; returns what each side's TU saw.
fn lossy_invite_rejected(lose_invites: u32, lose_errors: u32, lose_acks: u32) -> Vec<&'static str> {
    let mut uac = TransactionLayer::new(Config::default());
    let mut uas = TransactionLayer::new(Config::default());
    let mut now = Millis::from_secs(10);
    let branch = "z9hG4bKlossy";
    let (invite, busy, ack) = (
        Wire::from("INVITE sip:op@192.0.2.7 SIP/2.0"),
        Wire::from("SIP/2.0 486 Busy Here"),
        Wire::from("ACK sip:op@192.0.2.7 SIP/2.0"),
    );
    let mut lose = [lose_invites, lose_errors, lose_acks];
    let mut tu = Vec::new();
    let c = uac
        .send_request(now, &out(Method::Invite, branch, false), invite.clone())
        .unwrap();
    loop {
        let mut moved = false;
        while let Some(action) = uac.poll_action() {
            moved = true;
            match action {
                Action::Send { bytes, .. } => {
                    let (method, slot) = if bytes == invite {
                        (Method::Invite, 0)
                    } else {
                        (Method::Ack, 2)
                    };
                    if lose[slot] > 0 {
                        lose[slot] -= 1;
                        continue;
                    }
                    // Anything else is absorbed by the layer (repeated ACKs too).
                    if let Verdict::New { txn, .. } =
                        uas.on_request(now, &req(method, branch)).unwrap()
                    {
                        tu.push("uas: INVITE");
                        uas.respond(now, txn, 486, busy.clone()).unwrap();
                    }
                }
                Action::Timeout { .. } => tu.push("uac: timeout"),
                _ => {}
            }
        }
        while let Some(action) = uas.poll_action() {
            moved = true;
            match action {
                Action::Send { .. } if lose[1] > 0 => lose[1] -= 1,
                Action::Send { .. } => {
                    let meta = resp(486, branch, Method::Invite);
                    if let ResponseVerdict::AckNeeded { txn } = uac.on_response(now, &meta).unwrap()
                    {
                        tu.push("uac: 486");
                        uac.send_ack(now, txn, ack.clone()).unwrap();
                    }
                }
                Action::AckTimeout { .. } => tu.push("uas: no ACK"),
                _ => {}
            }
        }
        if moved {
            continue;
        }
        let next = [uac.poll_timeout(), uas.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else { break };
        now = next;
        uac.handle_timeout(now);
        uas.handle_timeout(now);
    }
    assert!(uac.is_empty() && uas.is_empty());
    assert_eq!(uac.state(c), None);
    tu
}

#[test]
fn two_layers_over_a_lossy_link_recover_every_lost_message() {
    // Each TU sees its message once, and no ACK times out.
    let clean = vec!["uas: INVITE", "uac: 486"];
    assert_eq!(lossy_invite_rejected(0, 0, 0), clean);
    assert_eq!(lossy_invite_rejected(2, 0, 0), clean, "timer A");
    assert_eq!(lossy_invite_rejected(0, 3, 0), clean, "timer G and A");
    assert_eq!(
        lossy_invite_rejected(1, 1, 2),
        clean,
        "G answered by the kept ACK"
    );
    // Every INVITE lost: the UAC gives up on timer B.
    assert_eq!(lossy_invite_rejected(100, 0, 0), vec!["uac: timeout"]);
    // Every ACK lost: the UAS gives up on timer H; the UAC's TU saw its 486 once.
    assert_eq!(
        lossy_invite_rejected(0, 0, 100),
        vec!["uas: INVITE", "uac: 486", "uas: no ACK"]
    );
}

// ---- matching (§17.1.3, §17.2.3) ----

#[test]
fn server_matching_takes_branch_sent_by_and_method() {
    let mut h = Harness::new();
    let invite = h.new_server(&req(Method::Invite, "z9hG4bKm1"));
    // Same branch, another method: another transaction.
    let info = h.new_server(&req(Method::Info, "z9hG4bKm1"));
    assert_ne!(invite, info);
    // Same branch and method from another sent-by: another transaction.
    let other_ua = RequestMeta {
        sent_by: "198.51.100.1:5060",
        ..req(Method::Invite, "z9hG4bKm1")
    };
    assert!(matches!(h.request(&other_ua), Verdict::New { txn, .. } if txn != invite));
    // Hosts compare case-insensitively; branches do not.
    let upper = RequestMeta {
        sent_by: "PBX.Example.COM:5060",
        ..req(Method::Bye, "z9hG4bKm2")
    };
    let lower = RequestMeta {
        sent_by: "pbx.example.com:5060",
        ..upper
    };
    let bye = h.new_server(&upper);
    assert!(matches!(h.request(&lower), Verdict::Retransmission { txn, .. } if txn == bye));
    assert!(matches!(
        h.request(&req(Method::Bye, "z9hG4bKM2")),
        Verdict::New { .. }
    ));
}

#[test]
fn cancel_is_its_own_transaction_and_names_the_invite_it_cancels() {
    let mut h = Harness::new();
    let invite = h.new_server(&req(Method::Invite, "z9hG4bKc1"));
    let Verdict::New {
        txn: cancel,
        send_trying,
        cancels,
    } = h.request(&req(Method::Cancel, "z9hG4bKc1"))
    else {
        panic!("a new CANCEL")
    };
    assert_ne!(cancel, invite);
    assert!(!send_trying);
    assert_eq!(cancels, Some(invite));
    assert_eq!(h.layer.kind(cancel), Some(Kind::ServerNonInvite));
    // The CANCEL's 200 and the INVITE's 487 each go on their own transaction.
    h.respond(cancel, 200, &wire("SIP/2.0 200 OK", 300));
    h.respond(invite, 487, &wire("SIP/2.0 487 Request Terminated", 300));
    assert_eq!(h.layer.state(cancel), Some(State::Completed));
    assert_eq!(h.layer.state(invite), Some(State::Completed));
    // A CANCEL for nothing still is a transaction (the TU answers 481).
    assert!(matches!(
        h.request(&req(Method::Cancel, "z9hG4bKc2")),
        Verdict::New { cancels: None, .. }
    ));
}

#[test]
fn ack_for_an_error_matches_the_invite_and_ack_for_a_2xx_does_not() {
    let mut h = Harness::new();
    let busy = h.new_server(&req(Method::Invite, "z9hG4bKa1"));
    h.respond(busy, 486, &wire("SIP/2.0 486 Busy Here", 300));
    let ok = h.new_server(&req(Method::Invite, "z9hG4bKa2"));
    h.respond(ok, 200, &wire("SIP/2.0 200 OK", 300));
    assert_eq!(
        h.request(&req(Method::Ack, "z9hG4bKa1")),
        Verdict::AckAbsorbed { txn: busy }
    );
    assert_eq!(
        h.request(&req(Method::Ack, "z9hG4bKa3")),
        Verdict::AckFor2xx { txn: None }
    );
    assert_eq!(
        h.request(&req(Method::Ack, "z9hG4bKa2")),
        Verdict::AckFor2xx { txn: Some(ok) }
    );
    // An ACK from another sent-by does not acknowledge the error.
    let elsewhere = RequestMeta {
        sent_by: "198.51.100.1:5060",
        ..req(Method::Ack, "z9hG4bKa1")
    };
    assert_eq!(h.request(&elsewhere), Verdict::AckFor2xx { txn: None });
    assert_eq!(h.layer.len(), 2, "an ACK never makes a transaction");
}

#[test]
fn client_matching_takes_branch_and_cseq_method() {
    let mut h = Harness::new();
    let invite = h.send(
        &out(Method::Invite, "z9hG4bKk1", false),
        &wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900),
    );
    let _ = h.response(&resp(180, "z9hG4bKk1", Method::Invite));
    // The CANCEL has the INVITE's branch (§9.1) and is a transaction of its own.
    let cancel = h.send(
        &out(Method::Cancel, "z9hG4bKk1", false),
        &wire("CANCEL sip:op@192.0.2.7 SIP/2.0", 300),
    );
    assert_ne!(invite, cancel);
    assert_eq!(
        h.response(&resp(200, "z9hG4bKk1", Method::Cancel)),
        ResponseVerdict::Deliver { txn: cancel }
    );
    assert_eq!(h.layer.state(invite), Some(State::Proceeding));
    assert_eq!(
        h.response(&resp(487, "z9hG4bKk1", Method::Invite)),
        ResponseVerdict::AckNeeded { txn: invite }
    );
    assert_eq!(
        h.response(&resp(200, "z9hG4bKk1", Method::Bye)),
        ResponseVerdict::Unmatched
    );
    assert_eq!(
        h.response(&resp(200, "z9hG4bKk9", Method::Invite)),
        ResponseVerdict::Unmatched
    );
    assert_eq!(h.layer.counters().unmatched_responses, 2);
    assert_eq!(
        h.layer.send_request(
            h.now,
            &out(Method::Cancel, "z9hG4bKk1", false),
            wire("CANCEL", 10)
        ),
        Err(TxnError::DuplicateBranch)
    );
}

#[test]
fn requests_without_the_magic_cookie_are_unmatchable() {
    let mut h = Harness::new();
    assert_eq!(
        h.request(&req(Method::Invite, "1234abcd")),
        Verdict::Unmatchable
    );
    assert_eq!(h.request(&req(Method::Ack, "")), Verdict::Unmatchable);
    assert_eq!(h.layer.counters().unmatchable, 2);
    assert!(h.layer.is_empty());
}

#[test]
fn a_cseq_method_other_than_the_request_method_is_refused() {
    let mut h = Harness::new();
    let odd = RequestMeta {
        cseq_method: Method::Bye,
        ..req(Method::Invite, "z9hG4bKodd")
    };
    assert_eq!(
        h.layer.on_request(h.now, &odd),
        Err(Refused::CseqMethodMismatch)
    );
}

// ---- limits and errors ----

#[test]
fn the_live_cap_refuses_new_transactions_with_a_typed_error() {
    let mut h = Harness::with(Config {
        max_live: 2,
        ..Config::default()
    });
    let a = h.new_server(&tcp(req(Method::Options, "z9hG4bKcap1")));
    let _b = h.new_server(&req(Method::Options, "z9hG4bKcap2"));
    assert_eq!(
        h.layer
            .on_request(h.now, &req(Method::Options, "z9hG4bKcap3")),
        Err(Refused::Full { limit: 2 })
    );
    assert_eq!(
        h.layer.send_request(
            h.now,
            &out(Method::Bye, "z9hG4bKcap4", false),
            wire("BYE", 10)
        ),
        Err(TxnError::Refused(Refused::Full { limit: 2 }))
    );
    // Retransmissions and ACKs of live transactions still match.
    assert!(matches!(
        h.request(&req(Method::Options, "z9hG4bKcap2")),
        Verdict::Retransmission { .. }
    ));
    assert_eq!(h.layer.counters().refused_full, 2);
    // Room again once one has ended.
    h.respond(a, 200, &wire("SIP/2.0 200 OK", 100));
    assert!(matches!(
        h.request(&req(Method::Options, "z9hG4bKcap3")),
        Verdict::New { .. }
    ));
}

#[test]
fn bad_calls_are_typed_errors() {
    let mut h = Harness::new();
    let gone = TxnId(9_999);
    assert_eq!(
        h.layer.respond(h.now, gone, 200, wire("x", 1)),
        Err(TxnError::Unknown(gone))
    );
    let client = h.send(&out(Method::Bye, "z9hG4bKerr", false), &wire("BYE", 10));
    assert!(matches!(
        h.layer.respond(h.now, client, 200, wire("x", 1)),
        Err(TxnError::WrongState { .. })
    ));
    assert!(matches!(
        h.layer.send_ack(h.now, client, wire("x", 1)),
        Err(TxnError::WrongState { .. })
    ));
    assert!(matches!(
        h.layer.cancelling(h.now, client),
        Err(TxnError::WrongState { .. })
    ));
    let server = h.new_server(&req(Method::Bye, "z9hG4bKerr"));
    assert_eq!(
        h.layer.respond(h.now, server, 99, wire("x", 1)),
        Err(TxnError::InvalidStatus(99))
    );
    assert_eq!(
        h.layer.respond(h.now, server, 700, wire("x", 1)),
        Err(TxnError::InvalidStatus(700))
    );
    assert_eq!(
        h.layer
            .on_response(h.now, &resp(0, "z9hG4bKerr", Method::Bye)),
        Err(TxnError::InvalidStatus(0))
    );
    assert_eq!(
        h.layer.send_request(
            h.now,
            &out(Method::Ack, "z9hG4bKack", false),
            wire("ACK", 3)
        ),
        Err(TxnError::AckIsNotATransaction)
    );
    assert_eq!(
        h.layer
            .send_request(h.now, &out(Method::Invite, "nocookie", false), wire("I", 1)),
        Err(TxnError::BranchWithoutCookie)
    );
    // Every error says what to change.
    let said = TxnError::Refused(Refused::Full { limit: 5 }).to_string();
    assert!(said.contains("raise the live-transaction cap"), "{said}");
}

#[test]
fn a_message_never_shows_its_text_in_debug() {
    let w = Wire::from("INVITE sip:+998901234567@trunk SIP/2.0");
    assert_eq!(format!("{w:?}"), "Wire(38 bytes)");
    let a = Action::Send {
        txn: TxnId(1),
        to: peer(),
        bytes: w,
    };
    assert!(!format!("{a:?}").contains("998901234567"));
}

#[test]
fn time_going_back_is_taken_as_the_latest_time() {
    let mut h = Harness::new();
    let id = h.send(&out(Method::Bye, "z9hG4bKback", false), &wire("BYE", 10));
    h.layer.handle_timeout(h.now.plus(600));
    assert_eq!(h.drain(), vec![send(id, &wire("BYE", 10))]);
    // A stale `now` neither re-fires nor schedules in the past.
    let stale = h.now;
    let _ = h
        .layer
        .on_response(stale, &resp(100, "z9hG4bKback", Method::Bye));
    assert!(h.layer.poll_timeout().unwrap() > stale.plus(600));
}

#[test]
fn a_late_driver_gets_one_retransmission_not_a_burst() {
    let mut h = Harness::new();
    let id = h.send(&out(Method::Bye, "z9hG4bKlate", false), &wire("BYE", 10));
    h.layer.handle_timeout(h.now.plus(10_000));
    assert_eq!(h.drain(), vec![send(id, &wire("BYE", 10))]);
    assert!(h.layer.poll_timeout().unwrap() > h.now.plus(10_000));
}

#[test]
fn timers_are_configurable() {
    let mut h = Harness::with(Config {
        timers: Timers {
            t1_ms: 100,
            t2_ms: 300,
            t4_ms: 1_000,
            d_ms: 2_000,
        },
        ..Config::default()
    });
    let id = h.send(&out(Method::Bye, "z9hG4bKcfg", false), &wire("BYE", 10));
    let seen = h.run_to(10_000);
    assert_eq!(&send_times(&seen)[..5], &[100, 300, 600, 900, 1_200]);
    assert_eq!(
        others(&seen),
        vec![
            (6_400, Action::Timeout { txn: id }),
            (6_400, Action::Terminated { txn: id })
        ]
    );
    // Nonsense is made safe: T1 0 is 1 ms, T2 below T1 is T1.
    let mut z = Harness::with(Config {
        timers: Timers {
            t1_ms: 0,
            t2_ms: 0,
            t4_ms: 0,
            d_ms: 0,
        },
        ..Config::default()
    });
    let id = z.send(&out(Method::Bye, "z9hG4bKzero", false), &wire("BYE", 10));
    let seen = z.run_to(1_000);
    assert_eq!(
        send_times(&seen).len(),
        63,
        "every 1 ms until timer F at 64 ms"
    );
    assert!(z.layer.state(id).is_none());
}

// ---- footprint (issue 18 part 4: a finished transaction costs under 1 KB) ----

/// A realistic 450-byte 200 OK without a body.
fn ok_450() -> Wire {
    wire("SIP/2.0 200 OK", 450)
}

/// A realistic 40-character branch, as most user agents make.
const LONG_BRANCH: &str = "z9hG4bK-524287-1---a5a8ef4c9c6d2b3f0e1d";

#[test]
fn each_finished_transaction_costs_under_1_kb() {
    let mut figures = Vec::new();
    let mut h = Harness::new();

    let a = h.new_server(&req(Method::Options, LONG_BRANCH));
    h.respond(a, 200, &ok_450());
    figures.push(("server non-INVITE Completed (450-byte 200 kept)", a));

    let b = h.new_server(&req(Method::Invite, LONG_BRANCH));
    h.respond(b, 486, &wire("SIP/2.0 486 Busy Here", 450));
    figures.push(("server INVITE Completed (450-byte 486 kept)", b));

    let branch_c = format!("{LONG_BRANCH}c");
    let c = h.new_server(&req(Method::Invite, &branch_c));
    h.respond(c, 486, &wire("SIP/2.0 486 Busy Here", 450));
    let _ = h.request(&req(Method::Ack, &branch_c));
    figures.push(("server INVITE Confirmed", c));

    let branch_d = format!("{LONG_BRANCH}d");
    let d = h.new_server(&req(Method::Invite, &branch_d));
    h.respond(d, 200, &ok_450());
    figures.push(("server INVITE Accepted", d));

    let branch_e = format!("{LONG_BRANCH}e");
    let e = h.new_server(&req(Method::Invite, &branch_e));
    h.layer
        .respond_2xx_retransmitting(h.now, e, 200, ok_450())
        .unwrap();
    h.drain();
    figures.push(("server INVITE Accepted, 2xx service (450-byte 200 kept)", e));

    let f = h.send(
        &out(Method::Invite, LONG_BRANCH, false),
        &wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900),
    );
    let _ = h.response(&resp(486, LONG_BRANCH, Method::Invite));
    h.layer
        .send_ack(h.now, f, wire("ACK sip:op@192.0.2.7 SIP/2.0", 450))
        .unwrap();
    h.drain();
    figures.push(("client INVITE Completed (450-byte ACK kept)", f));

    let branch_g = format!("{LONG_BRANCH}g");
    let g = h.send(
        &out(Method::Invite, &branch_g, false),
        &wire("INVITE sip:op@192.0.2.7 SIP/2.0", 900),
    );
    let _ = h.response(&resp(200, &branch_g, Method::Invite));
    figures.push(("client INVITE Accepted", g));

    let k = h.send(
        &out(Method::Bye, LONG_BRANCH, false),
        &wire("BYE sip:op@192.0.2.7 SIP/2.0", 450),
    );
    let _ = h.response(&resp(200, LONG_BRANCH, Method::Bye));
    figures.push(("client non-INVITE Completed", k));

    for (what, id) in figures {
        let bytes = h.layer.footprint(id).unwrap();
        eprintln!("footprint {what}: {bytes} bytes");
        assert!(bytes < 1_024, "{what}: {bytes} bytes");
    }
}

#[test]
fn a_hundred_thousand_finished_transactions_fit_in_100_mb() {
    let mut h = Harness::new();
    let mut sum = 0;
    for i in 0..100_000u32 {
        let branch = format!("z9hG4bK-524287-1---{i:020x}");
        let id = h.new_server(&req(Method::Options, &branch));
        // Each its own 200 OK, as on the wire.
        h.layer.respond(h.now, id, 200, ok_450()).unwrap();
        sum += h.layer.footprint(id).unwrap();
        while h.layer.poll_action().is_some() {}
    }
    let total = h.layer.footprint_total();
    eprintln!(
        "100,000 Completed server non-INVITEs: {sum} bytes per-transaction sum, {total} bytes with the tables ({} per transaction)",
        total / 100_000
    );
    assert_eq!(h.layer.len(), 100_000);
    assert!(total < 100 * 1024 * 1024, "{total} bytes");
}

// ---- properties ----

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const BRANCHES: [&str; 4] = ["z9hG4bKp0", "z9hG4bKp1", "z9hG4bKp2", "nocookie"];
    const METHODS: [Method; 5] = [
        Method::Invite,
        Method::Ack,
        Method::Cancel,
        Method::Bye,
        Method::Options,
    ];
    const STATUSES: [u16; 6] = [100, 180, 200, 486, 603, 99];

    #[derive(Clone, Debug)]
    enum Op {
        Request {
            branch: usize,
            method: usize,
            reliable: bool,
        },
        Respond {
            pick: usize,
            status: usize,
        },
        Respond2xxRetransmitting {
            pick: usize,
        },
        AckReceived {
            pick: usize,
        },
        SendRequest {
            branch: usize,
            method: usize,
            reliable: bool,
        },
        Response {
            branch: usize,
            method: usize,
            status: usize,
        },
        SendAck {
            pick: usize,
        },
        Cancelling {
            pick: usize,
        },
        Advance {
            ms: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let b = 0..BRANCHES.len();
        let m = 0..METHODS.len();
        let s = 0..STATUSES.len();
        prop_oneof![
            (b.clone(), m.clone(), any::<bool>()).prop_map(|(branch, method, reliable)| {
                Op::Request {
                    branch,
                    method,
                    reliable,
                }
            }),
            (any::<usize>(), s.clone()).prop_map(|(pick, status)| Op::Respond { pick, status }),
            any::<usize>().prop_map(|pick| Op::Respond2xxRetransmitting { pick }),
            any::<usize>().prop_map(|pick| Op::AckReceived { pick }),
            (b.clone(), m.clone(), any::<bool>()).prop_map(|(branch, method, reliable)| {
                Op::SendRequest {
                    branch,
                    method,
                    reliable,
                }
            }),
            (b, m, s).prop_map(|(branch, method, status)| Op::Response {
                branch,
                method,
                status
            }),
            any::<usize>().prop_map(|pick| Op::SendAck { pick }),
            any::<usize>().prop_map(|pick| Op::Cancelling { pick }),
            (0u64..40_000).prop_map(|ms| Op::Advance { ms }),
        ]
    }

    /// The model's view: every transaction made, and those that ended.
    #[derive(Default)]
    struct Seen {
        made: Vec<TxnId>,
        ended: BTreeSet<TxnId>,
    }

    impl Seen {
        fn pick(&self, i: usize) -> TxnId {
            self.made
                .get(i % self.made.len().max(1))
                .copied()
                .unwrap_or(TxnId(0))
        }

        fn take(&mut self, actions: Vec<Action>) {
            for a in actions {
                if let Action::Terminated { txn } = a {
                    assert!(self.made.contains(&txn), "{txn:?} ended without being made");
                    assert!(self.ended.insert(txn), "{txn:?} ended twice");
                }
            }
        }
    }

    fn check_deadline(layer: &TransactionLayer, now: Millis) {
        if let Some(due) = layer.poll_timeout() {
            assert!(due > now, "deadline {due:?} is not after now {now:?}");
        }
    }

    fn apply(layer: &mut TransactionLayer, seen: &mut Seen, now: &mut Millis, op: &Op) {
        let w = || wire("SIP/2.0 message", 200);
        match *op {
            Op::Request {
                branch,
                method,
                reliable,
            } => {
                let meta = RequestMeta {
                    reliable,
                    ..req(METHODS[method], BRANCHES[branch])
                };
                if let Ok(Verdict::New { txn, .. }) = layer.on_request(*now, &meta) {
                    seen.made.push(txn);
                }
            }
            Op::Respond { pick, status } => {
                let _ = layer.respond(*now, seen.pick(pick), STATUSES[status], w());
            }
            Op::Respond2xxRetransmitting { pick } => {
                let _ = layer.respond_2xx_retransmitting(*now, seen.pick(pick), 200, w());
            }
            Op::AckReceived { pick } => {
                let _ = layer.ack_received(*now, seen.pick(pick));
            }
            Op::SendRequest {
                branch,
                method,
                reliable,
            } => {
                let req = out(METHODS[method], BRANCHES[branch], reliable);
                if let Ok(txn) = layer.send_request(*now, &req, w()) {
                    seen.made.push(txn);
                }
            }
            Op::Response {
                branch,
                method,
                status,
            } => {
                let meta = resp(STATUSES[status], BRANCHES[branch], METHODS[method]);
                let _ = layer.on_response(*now, &meta);
            }
            Op::SendAck { pick } => {
                let _ = layer.send_ack(*now, seen.pick(pick), w());
            }
            Op::Cancelling { pick } => {
                let _ = layer.cancelling(*now, seen.pick(pick));
            }
            Op::Advance { ms } => {
                *now = now.plus(ms);
                // Like a driver: fire at each deadline up to now, in order.
                while let Some(due) = layer.poll_timeout().filter(|&d| d <= *now) {
                    layer.handle_timeout(due);
                    let actions = std::iter::from_fn(|| layer.poll_action()).collect();
                    seen.take(actions);
                }
            }
        }
        let actions = std::iter::from_fn(|| layer.poll_action()).collect();
        seen.take(actions);
        check_deadline(layer, *now);
    }

    /// Gives every transaction the final answer the TU or the peer owes it.
    fn finish(layer: &mut TransactionLayer, made: &[TxnId], now: Millis) {
        for &id in made {
            let (Some(kind), Some(state)) = (layer.kind(id), layer.state(id)) else {
                continue;
            };
            match (kind, state) {
                (Kind::ServerNonInvite, State::Trying | State::Proceeding) => {
                    layer
                        .respond(now, id, 200, wire("SIP/2.0 200 OK", 10))
                        .unwrap();
                }
                (Kind::ServerInvite, State::Proceeding) => {
                    layer
                        .respond(now, id, 486, wire("SIP/2.0 486 Busy", 10))
                        .unwrap();
                }
                (Kind::ClientInvite, State::Calling | State::Proceeding) => {
                    layer.cancelling(now, id).unwrap();
                }
                (Kind::ClientInvite, State::Completed) => {
                    let _ = layer.send_ack(now, id, wire("ACK", 10));
                }
                _ => {}
            }
        }
    }

    proptest! {
        #[test]
        fn every_transaction_ends_and_no_deadline_is_ever_past(
            ops in proptest::collection::vec(op(), 1..80)
        ) {
            let mut layer = TransactionLayer::new(Config::default());
            let mut seen = Seen::default();
            let mut now = Millis::from_secs(1);
            for op in &ops {
                apply(&mut layer, &mut seen, &mut now, op);
            }
            finish(&mut layer, &seen.made, now);
            let actions = std::iter::from_fn(|| layer.poll_action()).collect();
            seen.take(actions);
            check_deadline(&layer, now);
            // With no input after its last, each ends within 64*T1 (B, F, H, L, M, D, the
            // wait after CANCEL) or T4 (I, K) and the 1 ms slack of the driver.
            let horizon = SIXTY_FOUR_T1 + T4 + 1_000;
            apply(&mut layer, &mut seen, &mut now, &Op::Advance { ms: horizon });
            prop_assert!(layer.is_empty(), "{} transactions left", layer.len());
            prop_assert_eq!(layer.poll_timeout(), None);
            prop_assert_eq!(seen.ended.len(), seen.made.len());
        }
    }
}

#[test]
fn a_rebuildable_final_response_keeps_its_status_not_its_bytes() {
    let mut h = Harness::new();
    let bye = req(Method::Bye, "z9hG4bKbye-rebuild");
    let id = h.new_server(&bye);
    let before = h.layer.footprint(id).unwrap();
    let ok = wire("SIP/2.0 200 OK", 400);
    h.layer
        .respond_rebuildable(h.now, id, 200, ok.clone())
        .unwrap();
    assert_eq!(h.drain(), vec![send(id, &ok)], "sent once, now");
    assert_eq!(h.layer.state(id), Some(State::Completed));
    // Its timer J entry only; the 400 bytes are not kept.
    assert!(h.layer.footprint(id).unwrap() < before + 64);

    // A retransmitted BYE asks the TU to build the 200 again; the layer queues nothing.
    h.run_to(2_000);
    assert_eq!(
        h.request(&bye),
        Verdict::Retransmission {
            txn: id,
            state: State::Completed,
            resent: false,
            rebuild: Some(200)
        }
    );
    assert!(h.drain().is_empty());
    let again = wire("SIP/2.0 200 OK", 400);
    assert!(h.layer.send_again(id, again.clone()));
    assert_eq!(h.drain(), vec![send(id, &again)]);

    // Timer J still ends it; then there is nobody to send for.
    let ended = h.run_to(40_000);
    assert_eq!(ended, vec![(32_000, Action::Terminated { txn: id })]);
    assert!(!h.layer.send_again(id, again));

    // Only a final answer on a non-INVITE server transaction may be forgotten.
    let invite = req(Method::Invite, "z9hG4bKinv-rebuild");
    let inv = h.new_server(&invite);
    assert!(h
        .layer
        .respond_rebuildable(h.now, inv, 486, ok.clone())
        .is_err());
    let info = req(Method::Info, "z9hG4bKinfo-rebuild");
    let info = h.new_server(&info);
    assert!(h.layer.respond_rebuildable(h.now, info, 180, ok).is_err());
}
