//! The SIP message inspector: every message the stack sends or receives passes
//! through [`MetricsInspector`], which counts requests and responses by method and
//! code, measures INVITE-to-first-response latency, and counts client transactions
//! that time out. Names and label sets live in [`crate::metrics`].
//!
//! What rsipstack shows an inspector (0.7.14):
//! * `after_received(msg, Some(from))` for every message read off a transport;
//! * `after_received(response, None)` when a client transaction hands a response to
//!   its user: the wire response seen again, or a 408 the stack made itself when Timer
//!   B/F (or C) fired. A 408 for a transaction that never saw a final response on the
//!   wire is therefore a timeout;
//! * `before_send(msg, dest)` for every message sent, retransmissions included.
//!
//! Transactions are matched by (top Via branch, CSeq method, role). The table is
//! bounded ([`MAX_TRACKED`]); what does not fit is counted, not tracked. Entries are
//! kept for [`KEEP`] after they start (so a retransmitted INVITE after our final answer
//! is not measured twice) and swept lazily, at most once a second, from the message path.

use crate::metrics::{
    sip_code_label, sip_method_label, SIP_INVITE_LATENCY, SIP_REQUESTS, SIP_RESPONSES,
    SIP_TIMEOUTS, SIP_UNTRACKED,
};
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::SipMessage;
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most transactions followed at once.
pub const MAX_TRACKED: usize = 100_000;

/// How long a transaction stays in the table: past 64 × T1 (32 s), the longest a
/// transaction waits for its final response.
pub const KEEP: Duration = Duration::from_secs(40);

/// Which side of the transaction navbat is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    /// We received the request and answer it.
    Uas,
    /// We sent the request.
    Uac,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Uas => "uas",
            Role::Uac => "uac",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TxKey {
    branch: String,
    method: &'static str,
    role: Role,
}

#[derive(Debug)]
struct Open {
    since: Instant,
    answered: bool,
    finished: bool,
}

#[derive(Debug)]
struct Table {
    open: HashMap<TxKey, Open>,
    last_sweep: Instant,
}

/// Counts and times SIP traffic for `/metrics`.
#[derive(Debug)]
pub struct MetricsInspector {
    table: Mutex<Table>,
}

impl Default for MetricsInspector {
    fn default() -> Self {
        MetricsInspector::new()
    }
}

impl MetricsInspector {
    /// An inspector with an empty transaction table.
    pub fn new() -> MetricsInspector {
        MetricsInspector {
            table: Mutex::new(Table {
                open: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    fn with_table(&self, f: impl FnOnce(&mut Table, Instant)) {
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(table.last_sweep) >= Duration::from_secs(1) {
            table
                .open
                .retain(|_, open| now.duration_since(open.since) < KEEP);
            table.last_sweep = now;
        }
        f(&mut table, now);
    }

    /// A request starts a transaction (first sighting only: retransmissions keep the
    /// original start time). ACK has no transaction of its own.
    fn request_seen(&self, msg: &SipMessage, method: &'static str, role: Role) {
        if method == "ACK" {
            return;
        }
        let Some(branch) = top_branch(msg) else {
            return;
        };
        self.with_table(|table, now| {
            let key = TxKey {
                branch,
                method,
                role,
            };
            if table.open.contains_key(&key) {
                return;
            }
            if table.open.len() >= MAX_TRACKED {
                metrics::counter!(SIP_UNTRACKED).increment(1);
                return;
            }
            table.open.insert(
                key,
                Open {
                    since: now,
                    answered: false,
                    finished: false,
                },
            );
        });
    }

    /// A response on the wire: the first one of an INVITE gives the latency.
    fn response_seen(&self, msg: &SipMessage, method: &'static str, code: u16, role: Role) {
        let Some(branch) = top_branch(msg) else {
            return;
        };
        self.with_table(|table, now| {
            let key = TxKey {
                branch,
                method,
                role,
            };
            if let Some(open) = table.open.get_mut(&key) {
                if !open.answered && method == "INVITE" {
                    let secs = now.duration_since(open.since).as_secs_f64();
                    metrics::histogram!(SIP_INVITE_LATENCY, "role" => role.label()).record(secs);
                }
                open.answered = true;
                if code >= 200 {
                    open.finished = true;
                }
            }
        });
    }

    /// A response handed to a client transaction's user: a 408 for a transaction that
    /// never saw a final response on the wire was made by the stack's timer. Returns
    /// whether it counted as a timeout.
    fn response_to_user(&self, msg: &SipMessage, method: &'static str, code: u16) -> bool {
        if code != 408 {
            return false;
        }
        let Some(branch) = top_branch(msg) else {
            return false;
        };
        let mut timed_out = false;
        self.with_table(|table, _| {
            let key = TxKey {
                branch,
                method,
                role: Role::Uac,
            };
            if let Some(open) = table.open.get_mut(&key) {
                if !open.finished {
                    open.finished = true;
                    timed_out = true;
                    metrics::counter!(SIP_TIMEOUTS, "method" => timeout_method(method))
                        .increment(1);
                }
            }
        });
        timed_out
    }
}

impl MessageInspector for MetricsInspector {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        match &msg {
            SipMessage::Request(req) => {
                let method = sip_method_label(&req.method.to_string());
                metrics::counter!(SIP_REQUESTS, "direction" => "out", "method" => method)
                    .increment(1);
                self.request_seen(&msg, method, Role::Uac);
            }
            SipMessage::Response(resp) => {
                let method = cseq_method(&msg);
                let code = resp.status_code.code();
                metrics::counter!(SIP_RESPONSES, "direction" => "out", "method" => method,
                    "code" => sip_code_label(code))
                .increment(1);
                self.response_seen(&msg, method, code, Role::Uas);
            }
        }
        msg
    }

    fn after_received(&self, msg: SipMessage, from: Option<&SipAddr>) -> SipMessage {
        match (&msg, from) {
            (SipMessage::Request(req), Some(_)) => {
                let method = sip_method_label(&req.method.to_string());
                metrics::counter!(SIP_REQUESTS, "direction" => "in", "method" => method)
                    .increment(1);
                self.request_seen(&msg, method, Role::Uas);
            }
            (SipMessage::Response(resp), Some(_)) => {
                let method = cseq_method(&msg);
                let code = resp.status_code.code();
                metrics::counter!(SIP_RESPONSES, "direction" => "in", "method" => method,
                    "code" => sip_code_label(code))
                .increment(1);
                self.response_seen(&msg, method, code, Role::Uac);
            }
            (SipMessage::Response(resp), None) => {
                let method = cseq_method(&msg);
                self.response_to_user(&msg, method, resp.status_code.code());
            }
            (SipMessage::Request(_), None) => {}
        }
        msg
    }
}

/// The bounded `method` label of a timeout (the set pre-registered in `metrics`).
fn timeout_method(method: &'static str) -> &'static str {
    match method {
        "INVITE" | "BYE" | "CANCEL" | "OPTIONS" | "INFO" => method,
        _ => "other",
    }
}

/// The CSeq method as a bounded label.
fn cseq_method(msg: &SipMessage) -> &'static str {
    let cseq = match msg {
        SipMessage::Request(r) => r.cseq_header().ok().and_then(|c| c.method().ok()),
        SipMessage::Response(r) => r.cseq_header().ok().and_then(|c| c.method().ok()),
    };
    cseq.map(|m| sip_method_label(&m.to_string()))
        .unwrap_or("other")
}

/// The branch parameter of the top Via, at most 128 bytes (a key, never a label).
fn top_branch(msg: &SipMessage) -> Option<String> {
    let via = match msg {
        SipMessage::Request(r) => r.via_header().ok()?.first_value().ok()?,
        SipMessage::Response(r) => r.via_header().ok()?.first_value().ok()?,
    };
    branch_param(via.value()).map(str::to_string)
}

/// Finds `branch=...` among a Via value's parameters (at most 128 bytes).
pub(super) fn branch_param(via: &str) -> Option<&str> {
    via.split(';').skip(1).find_map(|p| {
        let (name, value) = p.split_once('=')?;
        (name.trim().eq_ignore_ascii_case("branch"))
            .then(|| value.trim())
            .filter(|v| !v.is_empty() && v.len() <= 128)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_is_found_case_insensitively_and_bounded() {
        assert_eq!(
            branch_param("SIP/2.0/UDP 10.0.0.1:5060;rport;Branch=z9hG4bK-1;received=1.2.3.4"),
            Some("z9hG4bK-1")
        );
        assert_eq!(branch_param("SIP/2.0/UDP 10.0.0.1:5060"), None);
        let long = format!("SIP/2.0/UDP h;branch={}", "x".repeat(200));
        assert_eq!(branch_param(&long), None);
    }

    fn parse(text: &str) -> SipMessage {
        SipMessage::try_from(text.replace('\n', "\r\n").as_str()).expect("test message parses")
    }

    const INVITE: &str = "INVITE sip:1001@127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtimeout1\nFrom: <sip:navbat@127.0.0.1>;tag=a\nTo: <sip:1001@127.0.0.1>\nCall-ID: inspect-1\nCSeq: 1 INVITE\nContent-Length: 0\n\n";
    const TIMEOUT_408: &str = "SIP/2.0 408 Request Timeout\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtimeout1\nFrom: <sip:navbat@127.0.0.1>;tag=a\nTo: <sip:1001@127.0.0.1>\nCall-ID: inspect-1\nCSeq: 1 INVITE\nContent-Length: 0\n\n";

    #[test]
    fn a_stack_made_408_counts_as_a_timeout_but_a_wire_408_does_not() {
        let wire_addr = SipAddr::from("127.0.0.1:5070".parse::<std::net::SocketAddr>().unwrap());
        // Sent twice (Timer A retransmission), then the stack's own 408 reaches the user.
        let timed_out = MetricsInspector::new();
        timed_out.before_send(parse(INVITE), None);
        timed_out.before_send(parse(INVITE), None);
        assert!(timed_out.response_to_user(&parse(TIMEOUT_408), "INVITE", 408));
        // Counted once only.
        assert!(!timed_out.response_to_user(&parse(TIMEOUT_408), "INVITE", 408));

        // A 408 from the phone is seen on the wire first: the transaction is finished.
        let answered = MetricsInspector::new();
        answered.before_send(parse(INVITE), None);
        answered.after_received(parse(TIMEOUT_408), Some(&wire_addr));
        assert!(!answered.response_to_user(&parse(TIMEOUT_408), "INVITE", 408));

        // A 408 for a transaction we never saw is not ours to count.
        assert!(!MetricsInspector::new().response_to_user(&parse(TIMEOUT_408), "INVITE", 408));
    }
}
