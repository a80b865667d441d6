//! Shared presence against a real Redis this test starts: two nodes in one process, each with
//! its own `SharedPresence` (own runtime, own connection), as two navbat processes would have.

mod store_support;

use navbat::presence::shared::{Claim, OperatorEntry, SharedPresence};
use navbat::sip::StoredBinding;
use std::time::Duration;
use store_support::{wait_for, Redis};

const HEARTBEAT: Duration = Duration::from_millis(100);
const EXPIRY: Duration = Duration::from_secs(2);
const DEADLINE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(30);

fn entry(state: &str) -> OperatorEntry {
    OperatorEntry {
        state: state.into(),
        contact: Some(StoredBinding {
            uri: "sip:1001@127.0.0.1:5070".into(),
            transport: Some("udp".into()),
            host: "127.0.0.1".into(),
            port: Some(5070),
        }),
        idle_since_ms: 1,
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Waits until `node` has completed two more heartbeat rounds (so it saw the latest state).
fn settle(node: &SharedPresence) {
    let target = node.rounds() + 2;
    node.poke();
    wait_for("two heartbeats", DEADLINE, || {
        (node.rounds() >= target).then_some(())
    });
}

#[test]
fn an_operator_registered_on_one_node_is_available_on_the_other_and_claimed_once() {
    let redis = Redis::start();
    let a = SharedPresence::start(&redis.url(), "node-a", HEARTBEAT, EXPIRY).unwrap();
    let b = SharedPresence::start(&redis.url(), "node-b", HEARTBEAT, EXPIRY).unwrap();
    a.publish("1001", entry("available"));
    let seen = wait_for("node-b to see 1001", DEADLINE, || {
        b.view().get("1001").cloned().filter(|o| o.is_free())
    });
    assert_eq!(seen.node, "node-a");
    assert_eq!(seen.contact.unwrap().port, Some(5070));

    // Both nodes try to offer a call to 1001 at once: exactly one claim wins.
    let (ra, rb) = block_on(async {
        tokio::join!(
            a.claim("1001", "call-a", TTL),
            b.claim("1001", "call-b", TTL)
        )
    });
    let wins = [&ra, &rb].iter().filter(|r| ***r == Claim::Won).count();
    assert_eq!(wins, 1, "a: {ra:?}, b: {rb:?}");
    let (winner, loser) = if ra == Claim::Won { (&a, &b) } else { (&b, &a) };
    settle(loser);
    assert!(!loser.view()["1001"].is_free(), "the loser sees the claim");
    // Released after the call: free again everywhere.
    block_on(winner.release("1001"));
    settle(loser);
    assert!(loser.view()["1001"].is_free());
}

#[test]
fn redis_killed_and_restarted_converges_without_double_booking() {
    let mut redis = Redis::start();
    let a = SharedPresence::start(&redis.url(), "node-a", HEARTBEAT, EXPIRY).unwrap();
    let b = SharedPresence::start(&redis.url(), "node-b", HEARTBEAT, EXPIRY).unwrap();
    a.publish("1001", entry("available"));
    b.publish("2001", entry("available"));
    wait_for("both operators on both nodes", DEADLINE, || {
        (a.view().len() == 2 && b.view().len() == 2).then_some(())
    });
    // Node A's call holds 1001 when Redis dies.
    assert_eq!(block_on(a.claim("1001", "call-1", TTL)), Claim::Won);

    redis.kill();
    wait_for("both nodes to notice", DEADLINE, || {
        (!a.is_up() && !b.is_up()).then_some(())
    });
    // While Redis is down nobody can claim: each node routes its own operators only.
    assert_eq!(block_on(b.claim("1001", "call-2", TTL)), Claim::Unavailable);
    // Local changes go on and are published later.
    b.publish("2001", entry("on_call"));

    redis.resume(); // empty: no persistence
    wait_for("both nodes back", DEADLINE, || {
        (a.is_up() && b.is_up()).then_some(())
    });
    settle(&a);
    settle(&b);
    // Converged: both nodes see both operators with the latest states ...
    for node in [&a, &b] {
        let view = node.view();
        assert_eq!(view.len(), 2, "{view:?}");
        assert_eq!(view["2001"].state, "on_call");
        assert_eq!(view["1001"].node, "node-a");
        // ... and node A's claim was re-asserted, so 1001 is not free for node B.
        assert_eq!(view["1001"].claimed_by.as_deref(), Some("node-a/call-1"));
    }
    assert!(matches!(
        block_on(b.claim("1001", "call-2", TTL)),
        Claim::Lost(by) if by == "node-a/call-1"
    ));
}

#[test]
fn a_dead_nodes_operators_are_released_after_the_expiry() {
    let redis = Redis::start();
    let b = SharedPresence::start(&redis.url(), "node-b", HEARTBEAT, EXPIRY).unwrap();
    {
        let a = SharedPresence::start(&redis.url(), "node-a", HEARTBEAT, EXPIRY).unwrap();
        a.publish("1001", entry("available"));
        wait_for("node-b to see 1001", DEADLINE, || {
            b.view().contains_key("1001").then_some(())
        });
    } // node A dies: no more heartbeats
    wait_for("1001 to expire", DEADLINE, || {
        (!b.view().contains_key("1001")).then_some(())
    });
}
