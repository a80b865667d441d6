-- navbat schema 1 (Postgres): call records, event timeline, operator state changes,
-- recordings and dispositions. Times are milliseconds since the Unix epoch (UTC); `month` is
-- the call's month in its tenant's time zone ("2026-05"), the key of the monthly report (D20).

CREATE TABLE call_records (
    call_uid        TEXT PRIMARY KEY,      -- node:boot:call, unique across restarts and nodes
    node            TEXT,
    boot            TEXT,
    call_ref        TEXT,                  -- the call's name inside its boot ("c17")
    tenant          TEXT,
    did             TEXT,
    caller_number   TEXT,                  -- personal data (D18): full number, masked in views
    month           TEXT,
    arrived_at_ms   BIGINT,
    enqueued_at_ms  BIGINT,
    offered_at_ms   BIGINT,
    answered_at_ms  BIGINT,
    ended_at_ms     BIGINT,
    ivr_level1      TEXT,                  -- digit chosen at the first menu level (language)
    ivr_level2      TEXT,                  -- digit chosen at the second level (topic)
    language        TEXT,
    topic           TEXT,
    queue           TEXT,
    priority        BIGINT,
    operator        TEXT,
    outcome         TEXT,                  -- answered, abandoned, timed_out, blocked, closed, ivr_hangup, failed
    ended_by        TEXT,
    blocked_reason  TEXT,
    wait_ms         BIGINT,
    talk_ms         BIGINT,
    surge           BOOLEAN,
    repeat_of       TEXT,                  -- call_uid of the caller's previous call in the window
    repeat_count    BIGINT,                -- earlier calls from the same number in the window
    recording_ref   TEXT
);
CREATE INDEX call_records_tenant_month ON call_records (tenant, month);
CREATE INDEX call_records_tenant_month_topic ON call_records (tenant, month, topic);
CREATE INDEX call_records_tenant_month_outcome ON call_records (tenant, month, outcome);
CREATE INDEX call_records_operator_month ON call_records (operator, month);
CREATE INDEX call_records_caller ON call_records (caller_number, arrived_at_ms);

CREATE TABLE call_events (
    event_uid   TEXT PRIMARY KEY,          -- node:boot:seq
    call_uid    TEXT,                      -- NULL for events of no call
    node        TEXT NOT NULL,
    boot        TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    at_ms       BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL              -- the event as JSON, personal data masked
);
CREATE INDEX call_events_call ON call_events (call_uid, seq);
CREATE INDEX call_events_at ON call_events (at_ms);

CREATE TABLE operator_state_changes (
    event_uid   TEXT PRIMARY KEY,
    node        TEXT NOT NULL,
    operator    TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);
CREATE INDEX operator_state_changes_operator ON operator_state_changes (operator, at_ms);

CREATE TABLE recordings (
    recording_uid TEXT PRIMARY KEY,        -- the event_uid of the recording event
    call_uid      TEXT NOT NULL,
    location      TEXT NOT NULL,           -- file path of the WAV
    duration_ms   BIGINT,
    bytes         BIGINT,
    sha256        TEXT,
    at_ms         BIGINT NOT NULL
);
CREATE INDEX recordings_call ON recordings (call_uid);

-- Filled by a later issue (operator's after-call work).
CREATE TABLE dispositions (
    disposition_uid TEXT PRIMARY KEY,
    call_uid        TEXT NOT NULL,
    operator        TEXT,
    topic_code      TEXT,
    category        TEXT NOT NULL CHECK (category IN ('question', 'complaint', 'suggestion', 'application')),
    resolved        BOOLEAN NOT NULL DEFAULT FALSE,
    disputed        BOOLEAN NOT NULL DEFAULT FALSE,
    notes           TEXT,
    at_ms           BIGINT NOT NULL
);
CREATE INDEX dispositions_call ON dispositions (call_uid);
CREATE INDEX dispositions_category ON dispositions (category, at_ms);
