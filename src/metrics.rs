//! Every metric navbat exports: names, labels, units and help texts in one place.
//!
//! Three sources feed the Prometheus registry served at `GET /metrics`:
//! * [`MetricsSink`], an [`EventSink`]: counters and histograms derived from the typed
//!   events (arrivals, queue entries, answers, outcomes, operator states, surge);
//! * the poller (`actors::poll`, beside the actors it reads): gauges that are state rather
//!   than events (waiting calls, longest wait, operators by state, channels,
//!   registrations, the SIP layer's counters), read once a second;
//! * the SIP message inspector (`sip::inspect`): requests and responses by method and
//!   code, INVITE-to-first-response latency and transaction timeouts.
//!
//! Label values are bounded sets taken from the configuration (tenants, queues, topics)
//! or from closed lists in this module (outcomes, states, methods, codes). No call id,
//! phone number or extension ever becomes a label value. Every series of a bounded label
//! set is created at start with value zero, so dashboards and alerts see a series (and
//! `increase()` sees the first call) before anything has happened.
//!
//! [`CATALOGUE`] lists every metric, including those declared now for later issues;
//! `docs/metrics.md` is the human-readable copy and a unit test keeps the two in step.

use crate::config::Config;
use crate::events::{CallOutcome, Event, EventKind, EventSink};
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

/// Calls that arrived for a known DID, by tenant and transport.
pub const CALLS_ARRIVED: &str = "navbat_calls_arrived_total";
/// Calls refused at the door, by tenant and reason.
pub const CALLS_BLOCKED: &str = "navbat_calls_blocked_total";
/// Calls offered to a queue (joined it), by tenant, queue and topic.
pub const CALLS_OFFERED: &str = "navbat_calls_offered_total";
/// Calls answered by an operator, by tenant, queue and topic.
pub const CALLS_ANSWERED: &str = "navbat_calls_answered_total";
/// Calls answered within the tenant's service-level threshold.
pub const CALLS_ANSWERED_WITHIN_SL: &str = "navbat_calls_answered_within_sl_total";
/// Calls ended, by tenant, queue, topic and outcome.
pub const CALLS_FINISHED: &str = "navbat_calls_finished_total";
/// Calls put back at the head of their queue after a missed offer.
pub const CALLS_REQUEUED: &str = "navbat_calls_requeued_total";
/// Operator phones rung for a call.
pub const OPERATOR_OFFERS: &str = "navbat_operator_offers_total";
/// Wait in queue of answered calls.
pub const CALL_WAIT: &str = "navbat_call_wait_seconds";
/// Talk time of answered calls.
pub const CALL_TALK: &str = "navbat_call_talk_seconds";
/// Operators' wrap-up (after-call work) time.
pub const WRAP_UP: &str = "navbat_operator_wrap_up_seconds";
/// Operator state changes, by the state entered.
pub const OPERATOR_TRANSITIONS: &str = "navbat_operator_transitions_total";
/// Surge switches, by tenant and new state.
pub const SURGE_CHANGES: &str = "navbat_surge_changes_total";
/// Events emitted, by kind.
pub const EVENTS: &str = "navbat_events_total";
/// Events the in-memory ring shed.
pub const EVENTS_SHED: &str = "navbat_events_shed_total";
/// Bytes the in-memory event ring (the API feed) holds now: its events' JSON.
pub const EVENTS_MEMORY_BYTES: &str = "navbat_events_memory_bytes";
/// Calls the repeat-call index holds in memory (the window's calls).
pub const REPEAT_INDEX_CALLS: &str = "navbat_repeat_index_calls";
/// Call records the metrics sink could not track (its table was full).
pub const METRICS_UNTRACKED: &str = "navbat_metrics_untracked_calls_total";

/// Calls waiting in a queue (not being offered).
pub const QUEUE_WAITING: &str = "navbat_queue_waiting_calls";
/// Calls whose offer is ringing.
pub const QUEUE_RINGING: &str = "navbat_queue_ringing_calls";
/// Wait of the longest-waiting call.
pub const QUEUE_LONGEST_WAIT: &str = "navbat_queue_longest_wait_seconds";
/// Expected wait of a caller joining now (see `actors::poll::expected_wait_secs`).
pub const QUEUE_EXPECTED_WAIT: &str = "navbat_queue_expected_wait_seconds";
/// Operators who can serve the queue, by state.
pub const QUEUE_OPERATORS: &str = "navbat_queue_operators";
/// Operators by state, each counted once.
pub const OPERATORS: &str = "navbat_operators";
/// Operators with a registered softphone.
pub const OPERATORS_REGISTERED: &str = "navbat_operators_registered";
/// Surge mode per tenant (1 on, 0 off).
pub const TENANT_SURGE: &str = "navbat_tenant_surge";
/// The tenant's service-level threshold.
pub const TENANT_SL_THRESHOLD: &str = "navbat_tenant_service_level_threshold_seconds";
/// Channels (calls in progress) in use, all tenants.
pub const CHANNELS_IN_USE: &str = "navbat_channels_in_use";
/// The global channel limit.
pub const CHANNELS_LIMIT: &str = "navbat_channels_limit";
/// Channels in use per tenant.
pub const TENANT_CHANNELS_IN_USE: &str = "navbat_tenant_channels_in_use";
/// Channel limit per tenant.
pub const TENANT_CHANNELS_LIMIT: &str = "navbat_tenant_channels_limit";
/// Build information (always 1).
pub const BUILD_INFO: &str = "navbat_build_info";

/// SIP requests received or sent, by method (retransmissions included).
pub const SIP_REQUESTS: &str = "navbat_sip_requests_total";
/// SIP responses received or sent, by method and code.
pub const SIP_RESPONSES: &str = "navbat_sip_responses_total";
/// INVITE to first response.
pub const SIP_INVITE_LATENCY: &str = "navbat_sip_invite_first_response_seconds";
/// Client transactions that timed out (Timer B/F).
pub const SIP_TIMEOUTS: &str = "navbat_sip_transaction_timeouts_total";
/// Transactions the inspector could not track (its table was full).
pub const SIP_UNTRACKED: &str = "navbat_sip_untracked_transactions_total";
/// UDP datagrams screened by the front door, by verdict.
pub const SIP_GUARD: &str = "navbat_sip_guard_datagrams_total";
/// Successful SIP digest authentications, by algorithm.
pub const SIP_AUTH: &str = "navbat_sip_auth_total";
/// SIP over TCP connections open now.
pub const SIP_TCP_CONNECTIONS: &str = "navbat_sip_tcp_connections";
/// Transactions alive now on navbat's own transaction layer.
pub const SIP_OWN_TRANSACTIONS: &str = "navbat_sip_own_transactions";
/// Bytes navbat's own transaction layer holds now.
pub const SIP_OWN_TRANSACTION_BYTES: &str = "navbat_sip_own_transaction_bytes";
/// Gauge: call legs (callers' and operators') alive on navbat's own transactions.
pub const SIP_OWN_CALL_LEGS: &str = "navbat_sip_own_call_legs";
/// SIP over TCP connections refused at accept or closed by navbat, by reason.
pub const SIP_TCP_REFUSED: &str = "navbat_sip_tcp_refused_total";
/// New INVITEs judged by the per-source door (`[sip.door]`), by verdict.
pub const SIP_DOOR: &str = "navbat_sip_door_total";
/// UDP messages waiting between the socket and the SIP stack's transaction layer.
pub const SIP_DOOR_QUEUE: &str = "navbat_sip_door_queue_depth";
/// INVITEs refused at the door (404, 503, 480).
pub const SIP_INVITES_REJECTED: &str = "navbat_sip_invites_rejected_total";
/// Successful registrations.
pub const SIP_REGISTRATIONS: &str = "navbat_sip_registrations_total";
/// Failed digest authentications.
pub const SIP_AUTH_FAILURES: &str = "navbat_sip_auth_failures_total";
/// Authentication attempts refused unchecked (banned source, throttled account).
pub const SIP_AUTH_REFUSED: &str = "navbat_sip_auth_refused_total";
/// Source addresses banned after repeated authentication failures.
pub const SIP_AUTH_BANS: &str = "navbat_sip_auth_bans_total";
/// Digest responses that repeated a nonce count (replays).
pub const SIP_AUTH_REPLAYS: &str = "navbat_sip_auth_replays_total";
/// Authenticated feature-code INVITEs (D17, D19) by who dialled and what became of them.
pub const FEATURE_CODES: &str = "navbat_feature_code_admissions_total";
/// SIP identities of accounts that may listen by feature code, usable now.
pub const SIP_LISTENER_IDENTITIES: &str = "navbat_sip_listener_identities";
/// Who dialled a feature code: a configured supervisor, a supervisor account or an
/// officer account (anyone else is `other`).
pub const FEATURE_CODE_ROLES: &[&str] = &["config_supervisor", "supervisor", "officer", "other"];
/// What became of a feature code: joined the call; refused by role or mode (403); not a
/// call the user may know of, or no such call (404/480); the call could not take them.
pub const FEATURE_CODE_RESULTS: &[&str] = &["joined", "wrong_role", "not_found", "refused"];

/// Age of the oldest event not yet in the database (0 when the store is caught up).
pub const JOURNAL_LAG: &str = "navbat_journal_lag_seconds";
/// Events accepted by the store and not yet in the database (buffer + journal).
pub const JOURNAL_DEPTH: &str = "navbat_journal_depth_events";
/// Events the store lost because its journal writer had stopped (a full buffer makes the
/// event wait instead, counted in [`JOURNAL_WAITS`]).
pub const JOURNAL_SHED: &str = "navbat_journal_shed_events_total";
/// Times an event had to wait for room in the store's full buffer (back-pressure, not loss).
pub const JOURNAL_WAITS: &str = "navbat_journal_waits_total";
/// Messages a bounded mailbox refused, by mailbox: between the event bus and a sink, or
/// between the SIP legs and a call ([`MAILBOX_CALL_LEG`]).
pub const MAILBOX_SHED: &str = "navbat_mailbox_shed_total";
/// Database reachable (issue 4).
pub const DB_UP: &str = "navbat_db_up";
/// Redis reachable (issue 4).
pub const REDIS_UP: &str = "navbat_redis_up";
/// RTP packets received and sent, by direction and codec.
pub const RTP_PACKETS: &str = "navbat_rtp_packets_total";
/// RTP packets lost on the way in, by the leg's codec.
pub const RTP_LOST: &str = "navbat_rtp_packets_lost_total";
/// RTP interarrival jitter of each leg, sampled once a second.
pub const RTP_JITTER: &str = "navbat_rtp_jitter_seconds";
/// Media sessions (calls with audio) running.
pub const MEDIA_SESSIONS: &str = "navbat_media_sessions";
/// RTCP compound packets in and out.
pub const RTCP_PACKETS: &str = "navbat_rtcp_packets_total";
/// RFC 4733 key presses detected.
pub const RTP_DTMF_DIGITS: &str = "navbat_rtp_dtmf_digits_total";
/// Media work shed or failed, by reason.
pub const MEDIA_DROPS: &str = "navbat_media_drops_total";
/// Bytes of call recordings written, by tenant.
pub const RECORDING_BYTES: &str = "navbat_recording_bytes_total";
/// Recordings in progress.
pub const RECORDINGS_OPEN: &str = "navbat_recordings_open";
/// RTP/RTCP port pairs handed to a call again after an earlier call ended.
pub const RTP_PORTS_REUSED: &str = "navbat_rtp_ports_reused_total";
/// RTP/RTCP port pairs of ended calls waiting to be handed out again.
pub const RTP_PORTS_SPARE: &str = "navbat_rtp_ports_spare";
/// Spare RTP/RTCP port pairs closed because RTP kept arriving after their call ended.
pub const RTP_PORTS_STREAMED_ON: &str = "navbat_rtp_ports_streamed_on_total";
/// The mean QA score of the last 30 days, per cent, by tenant (refreshed by the QA job).
pub const QA_SCORE_MEAN: &str = "navbat_qa_score_mean_percent";
/// QA evaluations of the last 30 days, by tenant.
pub const QA_EVALUATIONS_30D: &str = "navbat_qa_evaluations_30d";
/// The [`MAILBOX_SHED`] `mailbox` of the call actors, for the SIP legs' events.
pub const MAILBOX_CALL_LEG: &str = "call_leg";

// ---------------------------------------------------------------------------------------
// The catalogue
// ---------------------------------------------------------------------------------------

/// The Prometheus type of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (resets on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

/// Whether a metric is exported yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Exported now.
    Live,
    /// Name reserved; the issue with this number exports it.
    FromIssue(u8),
}

/// One metric's name, type, unit, labels and help text.
#[derive(Clone, Copy, Debug)]
pub struct MetricSpec {
    /// Full Prometheus name.
    pub name: &'static str,
    /// Type.
    pub kind: MetricKind,
    /// Unit (also the name's suffix).
    pub unit: Unit,
    /// Label names, in a fixed order.
    pub labels: &'static [&'static str],
    /// The `# HELP` text.
    pub help: &'static str,
    /// Exported now or later.
    pub availability: Availability,
}

const fn live(
    name: &'static str,
    kind: MetricKind,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricSpec {
    MetricSpec {
        name,
        kind,
        unit,
        labels,
        help,
        availability: Availability::Live,
    }
}

use MetricKind::{Counter, Gauge, Histogram};

/// Every metric navbat exports or will export.
pub const CATALOGUE: &[MetricSpec] = &[
    live(CALLS_ARRIVED, Counter, Unit::Count, &["tenant", "transport"], "Calls that arrived for a known DID."),
    live(CALLS_BLOCKED, Counter, Unit::Count, &["tenant", "reason"], "Calls refused at the door (503): channel limit, queue full or shutting down."),
    live(CALLS_OFFERED, Counter, Unit::Count, &["tenant", "queue", "topic"], "Calls offered to a queue (the caller finished the IVR and joined the queue)."),
    live(CALLS_ANSWERED, Counter, Unit::Count, &["tenant", "queue", "topic"], "Calls answered by an operator."),
    live(CALLS_ANSWERED_WITHIN_SL, Counter, Unit::Count, &["tenant", "queue", "topic"], "Calls answered within the tenant's service-level threshold (service_level_secs, default 20 s)."),
    live(CALLS_FINISHED, Counter, Unit::Count, &["tenant", "queue", "topic", "outcome"], "Calls ended, by outcome; queue and topic are \"none\" for calls that never reached a queue."),
    live(CALLS_REQUEUED, Counter, Unit::Count, &["tenant", "queue"], "Calls put back at the head of their queue after an operator missed the offer."),
    live(OPERATOR_OFFERS, Counter, Unit::Count, &["tenant", "queue"], "Operator phones rung for a queued call."),
    live(CALL_WAIT, Histogram, Unit::Seconds, &["tenant", "queue"], "Time answered calls waited in the queue (queue entry to operator answer)."),
    live(CALL_TALK, Histogram, Unit::Seconds, &["tenant", "queue", "topic"], "Talk time of answered calls (operator answer to hang-up)."),
    live(WRAP_UP, Histogram, Unit::Seconds, &["tenant", "queue"], "Operators' wrap-up time after a call, by the queue of that call."),
    live(OPERATOR_TRANSITIONS, Counter, Unit::Count, &["state"], "Operator state changes, by the state entered."),
    live(SURGE_CHANGES, Counter, Unit::Count, &["tenant", "surge"], "Surge mode switches, by the new state (on, off)."),
    live(EVENTS, Counter, Unit::Count, &["kind"], "Events emitted on the event bus, by kind."),
    live(EVENTS_SHED, Counter, Unit::Count, &[], "Events dropped by the bounded in-memory event ring (the API feed)."),
    live(EVENTS_MEMORY_BYTES, Gauge, Unit::Bytes, &[], "Bytes the in-memory event ring (the API feed, `GET /api/events`) holds now: its events' JSON; bounded by `[http] events_feed_mib`."),
    live(REPEAT_INDEX_CALLS, Gauge, Unit::Count, &[], "Calls of the repeat window that the repeat-call index holds in memory (D20)."),
    live(METRICS_UNTRACKED, Counter, Unit::Count, &[], "Calls the metrics sink could not follow because its call table was full."),
    live(QUEUE_WAITING, Gauge, Unit::Count, &["tenant", "queue"], "Calls waiting in the queue (not being offered right now)."),
    live(QUEUE_RINGING, Gauge, Unit::Count, &["tenant", "queue"], "Calls of the queue whose offer is ringing an operator."),
    live(QUEUE_LONGEST_WAIT, Gauge, Unit::Seconds, &["tenant", "queue"], "How long the longest-waiting call of the queue has waited (0 if none)."),
    live(QUEUE_EXPECTED_WAIT, Gauge, Unit::Seconds, &["tenant", "queue"], "Expected wait of a caller joining now: (waiting + 1) x average handle time / staffed operators, capped at the queue's max wait."),
    live(QUEUE_OPERATORS, Gauge, Unit::Count, &["tenant", "queue", "state"], "Operators who can serve the queue, by state (an operator counts in every queue they serve)."),
    live(OPERATORS, Gauge, Unit::Count, &["state"], "Operators by state, each counted once."),
    live(OPERATORS_REGISTERED, Gauge, Unit::Count, &[], "Operators with a registered softphone."),
    live(TENANT_SURGE, Gauge, Unit::Count, &["tenant"], "Surge mode of the tenant: 1 on, 0 off."),
    live(TENANT_SL_THRESHOLD, Gauge, Unit::Seconds, &["tenant"], "The tenant's service-level threshold (answered within this wait counts as in service level)."),
    live(CHANNELS_IN_USE, Gauge, Unit::Count, &[], "Channels (calls in progress) in use across all tenants."),
    live(CHANNELS_LIMIT, Gauge, Unit::Count, &[], "The global channel limit (limits.channels)."),
    live(TENANT_CHANNELS_IN_USE, Gauge, Unit::Count, &["tenant"], "Channels in use by the tenant."),
    live(TENANT_CHANNELS_LIMIT, Gauge, Unit::Count, &["tenant"], "The tenant's channel limit."),
    live(BUILD_INFO, Gauge, Unit::Count, &["version"], "Always 1; the label carries navbat's version."),
    live(SIP_REQUESTS, Counter, Unit::Count, &["direction", "method"], "SIP requests received (in) or sent (out), retransmissions included."),
    live(SIP_RESPONSES, Counter, Unit::Count, &["direction", "method", "code"], "SIP responses received (in) or sent (out), by the CSeq method and status code; unlisted codes count under their class (4xx)."),
    live(SIP_INVITE_LATENCY, Histogram, Unit::Seconds, &["role"], "INVITE to its first response: role uas = an INVITE we received (from the trunk) until our first answer; uac = an INVITE we sent (to an operator) until their first answer."),
    live(SIP_TIMEOUTS, Counter, Unit::Count, &["method"], "Client transactions that got no final response in time (Timer B / Timer F, 32 s)."),
    live(SIP_UNTRACKED, Counter, Unit::Count, &[], "Transactions the SIP inspector could not follow for latency and timeouts because its table was full."),
    live(SIP_AUTH, Counter, Unit::Count, &["algorithm"], "Successful SIP digest authentications (REGISTER, feature codes), by algorithm: md5, sha256 (RFC 7616)."),
    live(SIP_TCP_CONNECTIONS, Gauge, Unit::Count, &[], "SIP over TCP connections open now."),
    live(SIP_OWN_TRANSACTIONS, Gauge, Unit::Count, &[], "SIP transactions alive now on navbat's own transaction layer (out-of-dialog REGISTER and OPTIONS over UDP, and the operator legs' INVITE, ACK, CANCEL and BYE), most waiting out their 32 s timers to answer or absorb retransmissions."),
    live(SIP_OWN_TRANSACTION_BYTES, Gauge, Unit::Bytes, &[], "Bytes navbat's own transaction layer holds now: its tables and every live transaction with the response it keeps for retransmissions."),
    live(SIP_OWN_CALL_LEGS, Gauge, Unit::Count, &[], "Call legs over UDP alive now on navbat's own transactions: callers' (from the trunk) and operators' (navbat rings their phones), ringing or answered."),
    live(SIP_TCP_REFUSED, Counter, Unit::Count, &["reason"], "SIP over TCP connections refused at accept or closed by navbat: source_cap, total_cap, header_deadline, idle, too_large, bad_framing."),
    live(SIP_GUARD, Counter, Unit::Count, &["verdict"], "UDP datagrams screened by the front door: passed, rejected_400, rejected_501, rejected_505, rejected_513, dropped."),
    live(SIP_DOOR, Counter, Unit::Count, &["verdict"], "New INVITEs and datagrams judged by the per-source door ([sip.door]): admitted; answered_rate, answered_calls, answered_queue (a stateless 503 with Retry-After); dropped_rate, dropped_calls, dropped_queue (past the source's answer budget); shed (other datagrams, queue to the stack at twice its bound); acks_absorbed (ACKs of the guard's own stateless answers); answered_unknown_number (404), answered_foreign_trunk (403), answered_channels_full (503) and dropped_screened: INVITEs the door admitted that the router's screen refused statelessly ([sip.door] screen_calls)."),
    live(SIP_DOOR_QUEUE, Gauge, Unit::Count, &[], "UDP messages waiting between the socket and the SIP stack's transaction layer; new INVITEs are refused above [sip.door] queue."),
    live(SIP_INVITES_REJECTED, Counter, Unit::Count, &[], "INVITEs refused at the door (unknown DID, channel limit, closed)."),
    live(SIP_REGISTRATIONS, Counter, Unit::Count, &[], "Successful REGISTERs (new bindings and refreshes)."),
    live(SIP_AUTH_FAILURES, Counter, Unit::Count, &[], "Digest authentications that failed."),
    live(
        SIP_AUTH_REFUSED,
        Counter,
        Unit::Count,
        &[],
        "Authentication attempts refused unchecked: a banned source, or an account inside its delay.",
    ),
    live(
        SIP_AUTH_BANS,
        Counter,
        Unit::Count,
        &[],
        "Source addresses banned after repeated authentication failures.",
    ),
    live(
        FEATURE_CODES,
        Counter,
        Unit::Count,
        &["role", "result"],
        "Authenticated feature-code INVITEs (listen, whisper, barge) by who dialled (config_supervisor, supervisor, officer, other) and result (joined, wrong_role, not_found, refused).",
    ),
    live(
        SIP_LISTENER_IDENTITIES,
        Gauge,
        Unit::Count,
        &[],
        "SIP identities of officer and supervisor accounts (navbat user sip) usable for feature codes now.",
    ),
    live(
        SIP_AUTH_REPLAYS,
        Counter,
        Unit::Count,
        &[],
        "Digest responses that repeated a nonce count (replayed credentials).",
    ),
    live(JOURNAL_LAG, Gauge, Unit::Seconds, &[], "Age of the oldest event accepted by the store and not yet written to the database (0 when caught up); grows while the database is down, the journal keeps the events."),
    live(JOURNAL_DEPTH, Gauge, Unit::Count, &[], "Events accepted by the store and not yet in the database (in-process buffer plus journal)."),
    live(JOURNAL_SHED, Counter, Unit::Count, &[], "Events lost because the store's journal writer had stopped (a full buffer makes events wait instead: navbat_journal_waits_total). Must stay 0 (C2)."),
    live(JOURNAL_WAITS, Counter, Unit::Count, &[], "Times an event waited for room in the store's full buffer in front of the journal: the router slows to the journal's pace rather than lose an event (C2). Should stay 0; a rise means the journal disk is not keeping up."),
    live(MAILBOX_SHED, Counter, Unit::Count, &["mailbox"], "Messages refused by a full bounded mailbox between the event bus and a sink, by mailbox: sms (SMS requests to the SMS actor), notices (notice triggers), call_requests (missed calls becoming requests), desk_live (live-call notices a slow desk page missed), call_leg (SIP legs' lossy events into a call: INFO keys, re-offers, ringing; a leg's answer and end are never shed). The journal never sheds (it waits). Should stay 0."),
    live(DB_UP, Gauge, Unit::Count, &["backend"], "1 if the database took the last write or answered the last check (backend sqlite or postgres)."),
    live(REDIS_UP, Gauge, Unit::Count, &[], "1 if the last presence heartbeat reached Redis; always 1 with presence.backend = memory (no Redis to lose)."),
    live(RTP_PACKETS, Counter, Unit::Count, &["direction", "codec"], "RTP packets received (in) or sent (out), all calls; codec pcmu, pcma, telephone_event (RFC 4733, in only) or other (in only: comfort noise, unknown payload types)."),
    live(RTP_LOST, Counter, Unit::Count, &["codec"], "RTP packets lost on the way in (sequence gaps, RFC 3550 A.3), by the codec of the leg that lost them; counted as the gaps are seen."),
    live(RTP_JITTER, Histogram, Unit::Seconds, &["codec"], "RTP interarrival jitter (RFC 3550 A.8, from kernel arrival timestamps) of every leg that received audio, sampled once a second per leg, by the leg's codec."),
    live(MEDIA_SESSIONS, Gauge, Unit::Count, &[], "Media sessions (calls whose audio navbat anchors) running."),
    live(RTCP_PACKETS, Counter, Unit::Count, &["direction"], "RTCP compound packets received (in: valid ones; invalid ones count as media drops, reason rtcp_malformed) or sent (out: sender/receiver reports, about one per leg every 5 s, and a BYE when a leg ends)."),
    live(RTP_DTMF_DIGITS, Counter, Unit::Count, &[], "Key presses detected in RFC 4733 telephone-events (each press once, however many packets carried it)."),
    live(MEDIA_DROPS, Counter, Unit::Count, &["reason"], "Media work shed or failed: send_buffer_full, send_error, malformed (datagrams that are not RTP), foreign_source (RTP from an address that is not the leg's phone, with another stream's SSRC: someone else's packets, dropped), rtcp_malformed (datagrams on RTCP ports that are not RTCP), playout_overflow (20 ms frames of inbound audio dropped because a leg's 200 ms buffer was full), command_shed, recording_shed (20 ms recording frames the writer could not take), recording_failed (recordings that could not be written). Should stay 0."),
    live(RECORDING_BYTES, Counter, Unit::Bytes, &["tenant"], "Bytes of call recordings written (WAV headers included), by tenant."),
    live(RECORDINGS_OPEN, Gauge, Unit::Count, &[], "Call recordings in progress."),
    live(RTP_PORTS_REUSED, Counter, Unit::Count, &[], "RTP/RTCP socket pairs handed to a new call after an earlier call ended (read empty after a 0.5 s wait), instead of being closed and bound afresh."),
    live(RTP_PORTS_SPARE, Gauge, Unit::Count, &[], "RTP/RTCP socket pairs of ended calls waiting to be handed out again (at most half the port range; unused ones are closed after a minute)."),
    live(RTP_PORTS_STREAMED_ON, Counter, Unit::Count, &[], "Spare RTP/RTCP socket pairs closed instead of handed out because RTP kept arriving through two 0.5 s waits after their call ended (a phone streaming on, or RTP sprayed at the port range). Should stay near 0."),
    live(QA_SCORE_MEAN, Gauge, Unit::Percent, &["tenant"], "The mean QA score (D17) of the tenant's evaluations of the last 30 days, 0 to 100; refreshed hourly by the QA job and after each evaluation."),
    live(QA_EVALUATIONS_30D, Gauge, Unit::Count, &["tenant"], "QA evaluations (not calibration) of the tenant saved in the last 30 days."),
    live("navbat_requests_registered_total", Counter, Unit::Count, &["tenant", "channel"], "Requests registered (C2), by channel: phone, email, telegram, web."),
    live("navbat_requests_open", Gauge, Unit::Count, &["tenant", "priority"], "Requests not yet resolved or closed, by priority."),
    live("navbat_requests_near_breach", Gauge, Unit::Count, &["tenant"], "Open requests with an SLA clock near its deadline (at most [tenant.sla] near_breach_share of its budget left)."),
    live("navbat_request_sla_breaches_total", Counter, Unit::Count, &["tenant", "clock"], "SLA clocks that ran out (C4-C7), once per request and clock: first_answer, out_of_hours_contact, resolution, moderation."),
    live("navbat_request_sla_near_breaches_total", Counter, Unit::Count, &["tenant", "clock"], "SLA clocks that came near their deadline, once per request and clock."),
    live("navbat_notices_total", Counter, Unit::Count, &["tenant"], "Notices to the client made (D7): unresolved or disputed calls, complaints, SLA breaches."),
    live("navbat_notice_deliveries_total", Counter, Unit::Count, &["channel", "state"], "Notice delivery attempts by channel (email, telegram) and result (sent, retrying, failed); a digest counts once per notice in it."),
    live("navbat_notices_shed_total", Counter, Unit::Count, &[], "Notice triggers dropped because the notifier's queue was full. Must stay 0."),
];

/// Values of the [`MAILBOX_SHED`] `mailbox` label: the sinks and actors that sit behind a
/// bounded mailbox and shed, counted, when it is full.
pub const MAILBOXES: [&str; 5] = [
    "sms",
    "notices",
    "call_requests",
    "desk_live",
    MAILBOX_CALL_LEG,
];

/// Counts one message (or `n`) a full mailbox refused.
pub fn mailbox_shed(mailbox: &'static str, n: u64) {
    debug_assert!(
        MAILBOXES.contains(&mailbox),
        "{mailbox} is not in MAILBOXES"
    );
    metrics::counter!(MAILBOX_SHED, "mailbox" => mailbox).increment(n);
}

/// The `transport` label of a call's transport as an event gives it ("tcp", else UDP).
fn transport_label(transport: &str) -> &'static str {
    if transport == "tcp" {
        "tcp"
    } else {
        "udp"
    }
}

/// Values of the [`MEDIA_DROPS`] `reason` label.
pub const MEDIA_DROP_REASONS: [&str; 9] = [
    "send_buffer_full",
    "send_error",
    "malformed",
    "foreign_source",
    "rtcp_malformed",
    "playout_overflow",
    "command_shed",
    "recording_shed",
    "recording_failed",
];

// ---------------------------------------------------------------------------------------
// Bounded label values
// ---------------------------------------------------------------------------------------

/// `queue` / `topic` value for calls that never reached a queue or have no topic.
pub const NONE: &str = "none";

/// Every value of the `outcome` label. `deflected` (surge self-service, issue 7) is
/// declared now so dashboards and rules have it.
pub const OUTCOMES: [&str; 9] = [
    "answered",
    "abandoned",
    "timed_out",
    "blocked",
    "closed",
    "ivr_hangup",
    "failed",
    "deflected",
    "callback_requested",
];

/// Outcomes that count as missed in the monthly statistics (D20).
pub const MISSED_OUTCOMES: [&str; 3] = ["abandoned", "timed_out", "blocked"];

/// Every value of the operator `state` label.
pub const OPERATOR_STATES: [&str; 6] = [
    "available",
    "ringing",
    "on_call",
    "wrap_up",
    "break",
    "logged_out",
];

/// Every value of the blocked `reason` label.
pub const BLOCK_REASONS: [&str; 4] = [
    "global_channels",
    "tenant_channels",
    "queue_full",
    "shutting_down",
];

/// Values of the SIP `method` label; anything else is `other`.
pub const SIP_METHODS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "INFO",
    "UPDATE",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "MESSAGE",
    "REFER",
    "other",
];

/// Status codes that get their own `code` label value; others count as their class.
pub const SIP_CODES: [u16; 34] = [
    100, 180, 181, 182, 183, 200, 202, 301, 302, 400, 401, 403, 404, 405, 407, 408, 415, 420, 423,
    480, 481, 482, 483, 486, 487, 488, 491, 500, 501, 503, 504, 505, 600, 603,
];

/// The `outcome` label of a call outcome.
pub fn outcome_label(outcome: CallOutcome) -> &'static str {
    match outcome {
        CallOutcome::Answered => "answered",
        CallOutcome::Abandoned => "abandoned",
        CallOutcome::TimedOut => "timed_out",
        CallOutcome::Blocked => "blocked",
        CallOutcome::Closed => "closed",
        CallOutcome::IvrHangup => "ivr_hangup",
        CallOutcome::Failed => "failed",
        CallOutcome::Deflected => "deflected",
        CallOutcome::CallbackRequested => "callback_requested",
    }
}

/// The `method` label of a SIP method name (bounded: unknown methods are `other`).
pub fn sip_method_label(method: &str) -> &'static str {
    SIP_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// The `code` label of a SIP status code (bounded: unlisted codes become `1xx`..`6xx`,
/// anything outside 100..=699 `other`).
pub fn sip_code_label(code: u16) -> &'static str {
    const CODE_NAMES: [&str; 34] = [
        "100", "180", "181", "182", "183", "200", "202", "301", "302", "400", "401", "403", "404",
        "405", "407", "408", "415", "420", "423", "480", "481", "482", "483", "486", "487", "488",
        "491", "500", "501", "503", "504", "505", "600", "603",
    ];
    if let Some(i) = SIP_CODES.iter().position(|c| *c == code) {
        return CODE_NAMES[i];
    }
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        6 => "6xx",
        _ => "other",
    }
}

// ---------------------------------------------------------------------------------------
// Installing the recorder and rendering
// ---------------------------------------------------------------------------------------

/// Histogram buckets for queue waits: the service-level thresholds people use (10-30 s)
/// need fine buckets; long exam-day waits still fall in a bucket.
pub const WAIT_BUCKETS: [f64; 14] = [
    1.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0,
];
/// Buckets for talk time.
pub const TALK_BUCKETS: [f64; 12] = [
    10.0, 30.0, 60.0, 90.0, 120.0, 180.0, 240.0, 300.0, 420.0, 600.0, 900.0, 1800.0,
];
/// Buckets for wrap-up time.
pub const WRAP_UP_BUCKETS: [f64; 10] = [1.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0];
/// Buckets for SIP response latency (seconds): a local answer takes microseconds to
/// milliseconds, a phone on a slow network hundreds of milliseconds.
pub const SIP_LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 4.0,
];
/// Buckets for RTP jitter (issue 3).
pub const JITTER_BUCKETS: [f64; 8] = [0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs navbat's Prometheus recorder as the process-wide `metrics` recorder (once;
/// later calls return the same handle) and describes every metric of [`CATALOGUE`].
///
/// If another recorder was installed first (an embedding program's), navbat's handle
/// still renders, but only what was recorded through it: nothing. That is reported once.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics will be empty");
            }
            describe_all();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            metrics::gauge!(JOURNAL_LAG).set(0.0);
            handle
        })
        .clone()
}

fn builder() -> PrometheusBuilder {
    let buckets: [(&str, &[f64]); 5] = [
        (CALL_WAIT, &WAIT_BUCKETS),
        (CALL_TALK, &TALK_BUCKETS),
        (WRAP_UP, &WRAP_UP_BUCKETS),
        (SIP_INVITE_LATENCY, &SIP_LATENCY_BUCKETS),
        (RTP_JITTER, &JITTER_BUCKETS),
    ];
    buckets
        .into_iter()
        .fold(PrometheusBuilder::new(), |b, (name, values)| {
            // Only fails for an empty bucket list, and none of ours is empty.
            b.set_buckets_for_metric(Matcher::Full(name.into()), values)
                .expect("non-empty buckets")
        })
}

fn describe_all() {
    for spec in CATALOGUE {
        match spec.kind {
            Counter => metrics::describe_counter!(spec.name, spec.unit, spec.help),
            Gauge => metrics::describe_gauge!(spec.name, spec.unit, spec.help),
            Histogram => metrics::describe_histogram!(spec.name, spec.unit, spec.help),
        }
    }
}

/// The Prometheus text exposition of every metric (installs the recorder if needed).
pub fn render() -> String {
    install().render()
}

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

// ---------------------------------------------------------------------------------------
// Label space from the configuration
// ---------------------------------------------------------------------------------------

/// The bounded label values the configuration allows, and per-tenant settings the
/// metrics need.
#[derive(Debug, Clone)]
pub struct LabelSpace {
    tenants: Vec<TenantLabels>,
    queues: Vec<QueueLabels>,
    /// Configured operator extensions (never labels; they bound the sink's maps). A set:
    /// every operator state event asks, and a list of 600 cost a scan each time.
    operators: HashSet<String>,
}

#[derive(Debug, Clone)]
struct TenantLabels {
    id: String,
    service_level_ms: u64,
    /// Configured topics plus `none`.
    topics: Vec<String>,
}

#[derive(Debug, Clone)]
struct QueueLabels {
    id: String,
    tenant: usize,
    /// `[normal, surge]`.
    wrap_up_secs: [f64; 2],
    max_wait_secs: [f64; 2],
}

impl LabelSpace {
    /// The label values of this configuration.
    pub fn new(config: &Config) -> LabelSpace {
        let tenants = config
            .tenants
            .iter()
            .map(|t| TenantLabels {
                id: t.id.clone(),
                service_level_ms: t.service_level.as_millis() as u64,
                topics: t
                    .ivr
                    .topics
                    .iter()
                    .map(|c| c.topic.clone())
                    .chain(std::iter::once(NONE.to_string()))
                    .collect(),
            })
            .collect::<Vec<_>>();
        let queues = config
            .queues
            .iter()
            .map(|q| QueueLabels {
                id: q.id.clone(),
                tenant: tenants.iter().position(|t| t.id == q.tenant).unwrap_or(0),
                wrap_up_secs: [
                    q.normal.wrap_up.as_secs_f64(),
                    q.surge.wrap_up.as_secs_f64(),
                ],
                max_wait_secs: [
                    q.normal.max_wait.as_secs_f64(),
                    q.surge.max_wait.as_secs_f64(),
                ],
            })
            .collect();
        LabelSpace {
            tenants,
            queues,
            operators: config.operators.iter().map(|o| o.ext.clone()).collect(),
        }
    }

    fn tenant(&self, id: &str) -> Option<usize> {
        self.tenants.iter().position(|t| t.id == id)
    }

    fn queue(&self, id: &str) -> Option<usize> {
        self.queues.iter().position(|q| q.id == id)
    }

    /// The `topic` label of a call's topic in a tenant: the configured topic, `none`
    /// without one, `other` for a name the configuration does not know (cannot happen
    /// with topics from the IVR; keeps the set bounded anyway).
    fn topic_label(&self, tenant: Option<usize>, topic: Option<&str>) -> String {
        match (tenant, topic) {
            (_, None) => NONE.into(),
            (Some(t), Some(name)) if self.tenants[t].topics.iter().any(|x| x == name) => {
                name.into()
            }
            _ => "other".into(),
        }
    }

    /// Creates every series with a bounded label set at zero, so that dashboards and
    /// alert rules see them before the first call.
    pub fn register_series(&self) {
        for t in &self.tenants {
            let tenant = t.id.clone();
            metrics::gauge!(TENANT_SL_THRESHOLD, "tenant" => tenant.clone())
                .set(t.service_level_ms as f64 / 1000.0);
            metrics::gauge!(TENANT_SURGE, "tenant" => tenant.clone()).set(0.0);
            metrics::counter!(RECORDING_BYTES, "tenant" => tenant.clone()).absolute(0);
            for transport in ["udp", "tcp"] {
                metrics::counter!(CALLS_ARRIVED, "tenant" => tenant.clone(), "transport" => transport)
                    .absolute(0);
            }
            for reason in BLOCK_REASONS {
                metrics::counter!(CALLS_BLOCKED, "tenant" => tenant.clone(), "reason" => reason)
                    .absolute(0);
            }
            for surge in ["on", "off"] {
                metrics::counter!(SURGE_CHANGES, "tenant" => tenant.clone(), "surge" => surge)
                    .absolute(0);
            }
            // Calls that end before any queue (blocked, closed, IVR hang-up).
            for outcome in OUTCOMES {
                metrics::counter!(CALLS_FINISHED, "tenant" => tenant.clone(), "queue" => NONE,
                    "topic" => NONE, "outcome" => outcome)
                .absolute(0);
            }
        }
        for q in &self.queues {
            let t = &self.tenants[q.tenant];
            let (tenant, queue) = (t.id.clone(), q.id.clone());
            for topic in &t.topics {
                let labels = [
                    ("tenant", tenant.clone()),
                    ("queue", queue.clone()),
                    ("topic", topic.clone()),
                ];
                metrics::counter!(CALLS_OFFERED, &labels).absolute(0);
                metrics::counter!(CALLS_ANSWERED, &labels).absolute(0);
                metrics::counter!(CALLS_ANSWERED_WITHIN_SL, &labels).absolute(0);
                let _registered = metrics::histogram!(CALL_TALK, &labels);
                for outcome in OUTCOMES {
                    metrics::counter!(CALLS_FINISHED, "tenant" => tenant.clone(), "queue" => queue.clone(),
                        "topic" => topic.clone(), "outcome" => outcome)
                    .absolute(0);
                }
            }
            let labels = [("tenant", tenant.clone()), ("queue", queue.clone())];
            metrics::counter!(CALLS_REQUEUED, &labels).absolute(0);
            metrics::counter!(OPERATOR_OFFERS, &labels).absolute(0);
            let _registered = metrics::histogram!(CALL_WAIT, &labels);
            let _registered = metrics::histogram!(WRAP_UP, &labels);
            for state in OPERATOR_STATES {
                metrics::gauge!(QUEUE_OPERATORS, "tenant" => tenant.clone(), "queue" => queue.clone(), "state" => state)
                    .set(0.0);
            }
            for name in [
                QUEUE_WAITING,
                QUEUE_RINGING,
                QUEUE_LONGEST_WAIT,
                QUEUE_EXPECTED_WAIT,
            ] {
                metrics::gauge!(name, &labels).set(0.0);
            }
        }
        for state in OPERATOR_STATES {
            metrics::gauge!(OPERATORS, "state" => state).set(0.0);
            metrics::counter!(OPERATOR_TRANSITIONS, "state" => state).absolute(0);
        }
        for verdict in GUARD_VERDICTS {
            metrics::counter!(SIP_GUARD, "verdict" => verdict).absolute(0);
        }
        metrics::gauge!(SIP_TCP_CONNECTIONS).set(0.0);
        metrics::gauge!(SIP_OWN_TRANSACTIONS).set(0.0);
        metrics::gauge!(SIP_OWN_TRANSACTION_BYTES).set(0.0);
        metrics::gauge!(SIP_OWN_CALL_LEGS).set(0.0);
        for algorithm in AUTH_ALGORITHMS {
            metrics::counter!(SIP_AUTH, "algorithm" => algorithm).absolute(0);
        }
        for reason in TCP_REASONS {
            metrics::counter!(SIP_TCP_REFUSED, "reason" => reason).absolute(0);
        }
        for verdict in DOOR_VERDICTS {
            metrics::counter!(SIP_DOOR, "verdict" => verdict).absolute(0);
        }
        metrics::gauge!(SIP_DOOR_QUEUE).set(0.0);
        metrics::gauge!(SIP_LISTENER_IDENTITIES).set(0.0);
        for role in FEATURE_CODE_ROLES {
            for result in FEATURE_CODE_RESULTS {
                metrics::counter!(FEATURE_CODES, "role" => *role, "result" => *result).increment(0);
            }
        }
        for role in ["uas", "uac"] {
            let _registered = metrics::histogram!(SIP_INVITE_LATENCY, "role" => role);
        }
        for name in crate::media::PAYLOAD_NAMES {
            metrics::counter!(RTP_PACKETS, "direction" => "in", "codec" => name).absolute(0);
        }
        for codec in crate::media::Codec::ALL {
            metrics::counter!(RTP_PACKETS, "direction" => "out", "codec" => codec.label())
                .absolute(0);
            metrics::counter!(RTP_LOST, "codec" => codec.label()).absolute(0);
            let _registered = metrics::histogram!(RTP_JITTER, "codec" => codec.label());
        }
        for reason in MEDIA_DROP_REASONS {
            metrics::counter!(MEDIA_DROPS, "reason" => reason).absolute(0);
        }
        // increment(0), not absolute(0): a sink may have shed before this runs.
        for mailbox in MAILBOXES {
            metrics::counter!(MAILBOX_SHED, "mailbox" => mailbox).increment(0);
        }
        metrics::counter!(JOURNAL_WAITS).increment(0);
        for name in [MEDIA_SESSIONS, RECORDINGS_OPEN, RTP_PORTS_SPARE] {
            metrics::gauge!(name).set(0.0);
        }
        metrics::counter!(RTP_PORTS_REUSED).increment(0);
        metrics::counter!(RTP_PORTS_STREAMED_ON).increment(0);
        for method in ["INVITE", "BYE", "CANCEL", "OPTIONS", "INFO", "other"] {
            metrics::counter!(SIP_TIMEOUTS, "method" => method).absolute(0);
        }
        for name in [
            EVENTS_SHED,
            METRICS_UNTRACKED,
            SIP_UNTRACKED,
            SIP_INVITES_REJECTED,
            SIP_REGISTRATIONS,
            SIP_AUTH_FAILURES,
            SIP_AUTH_REFUSED,
            SIP_AUTH_BANS,
            SIP_AUTH_REPLAYS,
        ] {
            metrics::counter!(name).absolute(0);
        }
        for name in [CHANNELS_IN_USE, OPERATORS_REGISTERED] {
            metrics::gauge!(name).set(0.0);
        }
    }
}

/// The `reason` label of [`CALLS_BLOCKED`].
fn block_reason_label(reason: crate::events::BlockReason) -> &'static str {
    match reason {
        crate::events::BlockReason::GlobalChannels => "global_channels",
        crate::events::BlockReason::TenantChannels => "tenant_channels",
        crate::events::BlockReason::QueueFull => "queue_full",
        crate::events::BlockReason::ShuttingDown => "shutting_down",
    }
}

/// Values of the `verdict` label of [`SIP_DOOR`].
pub const DOOR_VERDICTS: [&str; 13] = [
    "admitted",
    "answered_rate",
    "answered_calls",
    "answered_queue",
    "dropped_rate",
    "dropped_calls",
    "dropped_queue",
    "shed",
    "acks_absorbed",
    "answered_unknown_number",
    "answered_foreign_trunk",
    "answered_channels_full",
    "dropped_screened",
];

/// Values of the `algorithm` label of [`SIP_AUTH`] (in the order of `SipCounters::auth_succeeded`).
pub const AUTH_ALGORITHMS: [&str; 2] = ["md5", "sha256"];

/// Values of the `reason` label of [`SIP_TCP_REFUSED`] (in the order of `sip::tcp::Closing`).
pub const TCP_REASONS: [&str; 6] = [
    "source_cap",
    "total_cap",
    "header_deadline",
    "idle",
    "too_large",
    "bad_framing",
];

/// Values of the `verdict` label of [`SIP_GUARD`].
pub const GUARD_VERDICTS: [&str; 6] = [
    "passed",
    "rejected_400",
    "rejected_501",
    "rejected_505",
    "rejected_513",
    "dropped",
];

// ---------------------------------------------------------------------------------------
// Expected wait
// ---------------------------------------------------------------------------------------

/// Average handle time assumed for a queue before its first answered call ends: a
/// typical hotline conversation, two minutes (wrap-up is added from the configuration).
pub const PRIOR_TALK_SECS: f64 = 120.0;

// ---------------------------------------------------------------------------------------
// The event sink
// ---------------------------------------------------------------------------------------

/// Most calls a sink follows at once (calls in progress; far above any channel limit).
pub const MAX_TRACKED_CALLS: usize = 100_000;

/// Counters and histograms from events. Cheap and non-blocking: one short mutex
/// section per event, no I/O.
pub struct MetricsSink {
    labels: LabelSpace,
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    /// Calls in a queue: call ref -> where it is, so `call_answered`/`call_finished` know
    /// tenant and topic. Removed when the call finishes.
    calls: HashMap<String, CallLabels>,
    /// Operators in wrap-up: ext -> (entered at ms, tenant, queue). Bounded by the
    /// configured operators.
    wrap_up: HashMap<String, (u64, String, String)>,
    /// Operator ext -> (tenant, queue) of their last answered call.
    last_queue: HashMap<String, (String, String)>,
    /// Per queue index: talk seconds sum and count of answered calls (for handle time).
    talk: HashMap<usize, (f64, u64)>,
}

#[derive(Clone)]
struct CallLabels {
    tenant: String,
    queue: String,
    topic: String,
}

impl MetricsSink {
    /// A sink for this configuration; installs the recorder and creates every series.
    pub fn new(config: &Config) -> MetricsSink {
        install();
        let labels = LabelSpace::new(config);
        labels.register_series();
        MetricsSink {
            labels,
            state: Mutex::new(SinkState::default()),
        }
    }

    /// Average handle time (talk so far + configured wrap-up) of a queue, in seconds.
    pub fn handle_secs(&self, queue: &str, surge: bool) -> f64 {
        let Some(q) = self.labels.queue(queue) else {
            return PRIOR_TALK_SECS;
        };
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let talk = match state.talk.get(&q) {
            Some((sum, n)) if *n > 0 => sum / *n as f64,
            _ => PRIOR_TALK_SECS,
        };
        talk + self.labels.queues[q].wrap_up_secs[usize::from(surge)]
    }

    /// The queue's max wait, in seconds (for the expected-wait cap).
    pub fn max_wait_secs(&self, queue: &str, surge: bool) -> f64 {
        self.labels
            .queue(queue)
            .map(|q| self.labels.queues[q].max_wait_secs[usize::from(surge)])
            .unwrap_or(0.0)
    }

    fn tenant_of_queue(&self, queue: &str) -> String {
        self.labels
            .queue(queue)
            .map(|q| self.labels.tenants[self.labels.queues[q].tenant].id.clone())
            .unwrap_or_else(|| "unknown".into())
    }

    fn on_event(&self, event: &Event, state: &mut SinkState) {
        match &event.kind {
            EventKind::CallArrived {
                tenant, transport, ..
            } => {
                metrics::counter!(CALLS_ARRIVED, "tenant" => tenant.clone(), "transport" => transport_label(transport))
                    .increment(1);
            }
            EventKind::CallBlocked { tenant, reason, .. } => {
                metrics::counter!(CALLS_BLOCKED, "tenant" => tenant.clone(), "reason" => block_reason_label(*reason))
                    .increment(1);
            }
            // Calls refused for full channels, counted instead of recorded: the
            // series a recorded blocked call moves (arrived, blocked, finished) move by the count.
            EventKind::BlockedSummary {
                tenant,
                reason,
                transport,
                count,
                ..
            } => {
                metrics::counter!(CALLS_ARRIVED, "tenant" => tenant.clone(), "transport" => transport_label(transport))
                    .increment(*count);
                metrics::counter!(CALLS_BLOCKED, "tenant" => tenant.clone(), "reason" => block_reason_label(*reason))
                    .increment(*count);
                metrics::counter!(CALLS_FINISHED, "tenant" => tenant.clone(), "queue" => NONE,
                    "topic" => NONE, "outcome" => "blocked")
                .increment(*count);
            }
            EventKind::CallEnqueued {
                call,
                tenant,
                queue,
                topic,
                ..
            } => {
                let t = self.labels.tenant(tenant);
                let labels = CallLabels {
                    tenant: tenant.clone(),
                    queue: queue.clone(),
                    topic: self.labels.topic_label(t, topic.as_deref()),
                };
                metrics::counter!(CALLS_OFFERED, "tenant" => labels.tenant.clone(),
                    "queue" => labels.queue.clone(), "topic" => labels.topic.clone())
                .increment(1);
                if state.calls.len() < MAX_TRACKED_CALLS || state.calls.contains_key(call) {
                    state.calls.insert(call.clone(), labels);
                } else {
                    metrics::counter!(METRICS_UNTRACKED).increment(1);
                }
            }
            EventKind::CallOffered { queue, .. } => {
                metrics::counter!(OPERATOR_OFFERS, "tenant" => self.tenant_of_queue(queue),
                    "queue" => queue.clone())
                .increment(1);
            }
            EventKind::CallRequeued { queue, .. } => {
                metrics::counter!(CALLS_REQUEUED, "tenant" => self.tenant_of_queue(queue),
                    "queue" => queue.clone())
                .increment(1);
            }
            EventKind::CallAnswered {
                call,
                queue,
                operator,
                wait_ms,
            } => {
                let labels = state
                    .calls
                    .get(call)
                    .cloned()
                    .unwrap_or_else(|| CallLabels {
                        tenant: self.tenant_of_queue(queue),
                        queue: queue.clone(),
                        topic: NONE.into(),
                    });
                let sl_ms = self
                    .labels
                    .tenant(&labels.tenant)
                    .map(|t| self.labels.tenants[t].service_level_ms)
                    .unwrap_or(20_000);
                let keys = [
                    ("tenant", labels.tenant.clone()),
                    ("queue", labels.queue.clone()),
                    ("topic", labels.topic.clone()),
                ];
                metrics::counter!(CALLS_ANSWERED, &keys).increment(1);
                if *wait_ms <= sl_ms {
                    metrics::counter!(CALLS_ANSWERED_WITHIN_SL, &keys).increment(1);
                }
                metrics::histogram!(CALL_WAIT, "tenant" => labels.tenant.clone(), "queue" => labels.queue.clone())
                    .record(*wait_ms as f64 / 1000.0);
                if self.is_operator(operator) {
                    state
                        .last_queue
                        .insert(operator.clone(), (labels.tenant, labels.queue));
                }
            }
            EventKind::CallFinished {
                call,
                tenant,
                queue,
                outcome,
                talk_ms,
                ..
            } => {
                let tracked = state.calls.remove(call);
                let queue = queue.clone().unwrap_or_else(|| NONE.into());
                let topic = tracked.map(|c| c.topic).unwrap_or_else(|| NONE.into());
                metrics::counter!(CALLS_FINISHED, "tenant" => tenant.clone(), "queue" => queue.clone(),
                    "topic" => topic.clone(), "outcome" => outcome_label(*outcome))
                .increment(1);
                if *outcome == CallOutcome::Answered {
                    let talk = *talk_ms as f64 / 1000.0;
                    metrics::histogram!(CALL_TALK, "tenant" => tenant.clone(), "queue" => queue.clone(),
                        "topic" => topic)
                    .record(talk);
                    if let Some(q) = self.labels.queue(&queue) {
                        let entry = state.talk.entry(q).or_insert((0.0, 0));
                        entry.0 += talk;
                        entry.1 += 1;
                    }
                }
            }
            EventKind::OperatorState {
                operator, from, to, ..
            } => {
                if let Some(state_label) = OPERATOR_STATES.iter().find(|s| **s == to) {
                    metrics::counter!(OPERATOR_TRANSITIONS, "state" => *state_label).increment(1);
                }
                if !self.is_operator(operator) {
                    return;
                }
                if from == "wrap_up" {
                    if let Some((since, tenant, queue)) = state.wrap_up.remove(operator) {
                        let secs = event.at_ms.saturating_sub(since) as f64 / 1000.0;
                        metrics::histogram!(WRAP_UP, "tenant" => tenant, "queue" => queue)
                            .record(secs);
                    }
                }
                if to == "wrap_up" {
                    if let Some((tenant, queue)) = state.last_queue.get(operator).cloned() {
                        state
                            .wrap_up
                            .insert(operator.clone(), (event.at_ms, tenant, queue));
                    }
                }
            }
            EventKind::SurgeChanged { tenant, on, .. } => {
                let surge = if *on { "on" } else { "off" };
                metrics::counter!(SURGE_CHANGES, "tenant" => tenant.clone(), "surge" => surge)
                    .increment(1);
            }
            EventKind::IvrStep { .. }
            | EventKind::SmsStatus { .. }
            | EventKind::CallbackRequested { .. }
            | EventKind::CallbackRefused { .. }
            | EventKind::CallbackAttempt { .. }
            | EventKind::CallbackFinished { .. }
            | EventKind::DoorOffer { .. }
            | EventKind::DoorChoice { .. }
            | EventKind::DtmfReceived { .. }
            | EventKind::OfferWithdrawn { .. }
            | EventKind::OfferDeclined { .. }
            | EventKind::OperatorRegistered { .. }
            | EventKind::OperatorUnregistered { .. }
            | EventKind::AuthFailed { .. }
            | EventKind::Recording { .. }
            | EventKind::RecordingStarted { .. }
            | EventKind::MonitorStarted { .. }
            | EventKind::CallHold { .. }
            | EventKind::DispositionSaved { .. } => {}
            EventKind::RequestSla {
                tenant,
                clock,
                state,
                ..
            } => {
                let name = if state == "breached" {
                    "navbat_request_sla_breaches_total"
                } else {
                    "navbat_request_sla_near_breaches_total"
                };
                metrics::counter!(name, "tenant" => tenant.clone(), "clock" => clock.clone())
                    .increment(1);
            }
        }
    }

    /// Extensions key the sink's maps only when configured, so the maps stay bounded.
    fn is_operator(&self, ext: &str) -> bool {
        self.labels.operators.contains(ext)
    }
}

impl EventSink for MetricsSink {
    fn emit(&self, event: &Event) {
        metrics::counter!(EVENTS, "kind" => event.kind.name()).increment(1);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.on_event(event, &mut state);
    }
}

/// Media counters into the registry: the media drivers sum them per 20 ms tick, so this
/// is the only place media touches the `metrics` facade (once a second, not per packet).
pub fn export_media(media: &crate::media::MediaEngine) {
    use crate::media::{Codec, PAYLOAD_NAMES};
    use std::sync::atomic::Ordering::Relaxed;
    let c = &media.counters;
    for (name, n) in PAYLOAD_NAMES.iter().zip(&c.received_by_payload) {
        metrics::counter!(RTP_PACKETS, "direction" => "in", "codec" => *name)
            .absolute(n.load(Relaxed));
    }
    for codec in Codec::ALL {
        let i = codec.index();
        metrics::counter!(RTP_PACKETS, "direction" => "out", "codec" => codec.label())
            .absolute(c.sent_by_codec[i].load(Relaxed));
        metrics::counter!(RTP_LOST, "codec" => codec.label())
            .absolute(c.lost_by_codec[i].load(Relaxed));
    }
    for (codec, jitter) in c.take_jitter_samples() {
        metrics::histogram!(RTP_JITTER, "codec" => codec.label()).record(jitter);
    }
    metrics::gauge!(MEDIA_SESSIONS).set(c.sessions.load(Relaxed) as f64);
    metrics::counter!(RTCP_PACKETS, "direction" => "in").absolute(c.rtcp_in.load(Relaxed));
    metrics::counter!(RTCP_PACKETS, "direction" => "out").absolute(c.rtcp_out.load(Relaxed));
    metrics::counter!(RTP_DTMF_DIGITS).absolute(c.dtmf_events.load(Relaxed));
    let r = &media.recorder.counters;
    let drops = [
        c.send_dropped.load(Relaxed),
        c.send_errors.load(Relaxed),
        c.malformed.load(Relaxed),
        c.foreign.load(Relaxed),
        c.rtcp_malformed.load(Relaxed),
        c.samples_dropped.load(Relaxed) / crate::media::recorder::FRAME as u64,
        c.commands_shed.load(Relaxed),
        r.shed.load(Relaxed),
        r.failures.load(Relaxed),
    ];
    for (reason, n) in MEDIA_DROP_REASONS.iter().zip(drops) {
        metrics::counter!(MEDIA_DROPS, "reason" => *reason).absolute(n);
    }
    for (tenant, bytes) in r.bytes_by_tenant() {
        metrics::counter!(RECORDING_BYTES, "tenant" => tenant).absolute(bytes);
    }
    metrics::gauge!(RECORDINGS_OPEN).set(r.open.load(Relaxed) as f64);
}

/// The RTP port pool's reuse counter and spare pairs, once a second.
pub fn export_ports(ports: &crate::media::PortPool) {
    use std::sync::atomic::Ordering::Relaxed;
    metrics::counter!(RTP_PORTS_REUSED).absolute(ports.reused.load(Relaxed));
    metrics::gauge!(RTP_PORTS_SPARE).set(ports.spare_count() as f64);
    metrics::counter!(RTP_PORTS_STREAMED_ON).absolute(ports.streamed_on.load(Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn labels_are_bounded() {
        assert_eq!(sip_method_label("INVITE"), "INVITE");
        assert_eq!(sip_method_label("XYZZY"), "other");
        assert_eq!(sip_code_label(183), "183");
        assert_eq!(sip_code_label(499), "4xx");
        assert_eq!(sip_code_label(42), "other");
        assert_eq!(sip_code_label(9999), "other");
        for c in SIP_CODES {
            assert_eq!(sip_code_label(c), c.to_string());
        }
    }

    #[test]
    fn catalogue_names_are_unique_prometheus_names_with_unit_suffixes() {
        let mut seen = std::collections::HashSet::new();
        for spec in CATALOGUE {
            assert!(seen.insert(spec.name), "{} twice", spec.name);
            assert!(spec.name.starts_with("navbat_"));
            assert!(spec
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            match (spec.kind, spec.unit) {
                (MetricKind::Counter, _) => assert!(spec.name.ends_with("_total"), "{}", spec.name),
                (_, Unit::Seconds) => assert!(spec.name.ends_with("_seconds"), "{}", spec.name),
                _ => {}
            }
            for label in spec.labels {
                assert!(!["call", "caller", "did", "operator", "ext"].contains(label));
            }
        }
    }

    #[test]
    fn docs_list_every_metric() {
        let docs = include_str!("../docs/metrics.md");
        for spec in CATALOGUE {
            assert!(
                docs.contains(spec.name),
                "docs/metrics.md lacks {}",
                spec.name
            );
        }
    }

    #[test]
    fn sink_counts_a_call_through_its_outcome_and_renders_bounded_labels() {
        let config = Config::embedded_default();
        let sink = MetricsSink::new(&config);
        let mut seq = 0;
        let mut emit = |kind: EventKind| {
            seq += 1;
            sink.emit(&Event {
                seq,
                at_ms: 1_000 * seq,
                kind,
            });
        };
        emit(EventKind::CallEnqueued {
            call: "c9001".into(),
            tenant: "dtm".into(),
            queue: "dtm-ru".into(),
            language: "ru".into(),
            topic: Some("complaints".into()),
            priority: 0,
        });
        emit(EventKind::CallAnswered {
            call: "c9001".into(),
            queue: "dtm-ru".into(),
            operator: "1008".into(),
            wait_ms: 25_000,
        });
        emit(EventKind::CallFinished {
            call: "c9001".into(),
            tenant: "dtm".into(),
            queue: Some("dtm-ru".into()),
            operator: Some("1008".into()),
            outcome: CallOutcome::Answered,
            wait_ms: 25_000,
            talk_ms: 60_000,
            ended_by: "caller".into(),
        });
        emit(EventKind::OperatorState {
            operator: "1008".into(),
            from: "on_call".into(),
            to: "wrap_up".into(),
            reason: "CallEnded".into(),
        });
        emit(EventKind::OperatorState {
            operator: "1008".into(),
            from: "wrap_up".into(),
            to: "available".into(),
            reason: "WrapUpDone".into(),
        });
        let text = render();
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no line {prefix}"))
                .to_string()
        };
        assert!(line(
            r#"navbat_calls_answered_total{tenant="dtm",queue="dtm-ru",topic="complaints"}"#
        )
        .ends_with(" 1"));
        // Waited 25 s against a 20 s threshold: answered, not within service level.
        assert!(line(
            r#"navbat_calls_answered_within_sl_total{tenant="dtm",queue="dtm-ru",topic="complaints"}"#
        )
        .ends_with(" 0"));
        assert!(line(r#"navbat_calls_finished_total{tenant="dtm",queue="dtm-ru",topic="complaints",outcome="answered"}"#)
            .ends_with(" 1"));
        // Wrap-up ran from event 4 to event 5: one second, under the call's queue.
        assert!(
            line(r#"navbat_operator_wrap_up_seconds_sum{tenant="dtm",queue="dtm-ru"}"#)
                .ends_with(" 1")
        );
        assert!(text.contains(r#"outcome="deflected""#));
        assert!(!text.contains("c9001"));
        assert!(!text.contains("1008"));
        assert!(sink.handle_secs("dtm-ru", false) == 60.0 + 15.0);
    }
}
