-- navbat schema 2 (Postgres): the SMS outbox (D12) and the surge callback book, moved here from their
-- JSON-line files. One row per message / request; each step of it (from the journal) moves
-- the row forward, never back (`progress` = attempts * 4 + stage). Times are Unix ms (UTC).
-- Personal data (D18): to_number and caller_number hold full numbers; views mask them.

CREATE TABLE sms_messages (
    id                  TEXT PRIMARY KEY,   -- the message id, its idempotency key at the gateway
    node                TEXT,               -- the node that queued (and sends) it
    tenant              TEXT,
    purpose             TEXT,               -- deflection, callback_confirmation, missed_call
    to_number           TEXT,
    body                TEXT,
    queued_at_ms        BIGINT,
    status              TEXT NOT NULL,      -- queued, retrying, sent, failed
    attempts            BIGINT NOT NULL,
    progress            BIGINT NOT NULL,
    last_attempt_at_ms  BIGINT,
    next_attempt_at_ms  BIGINT,             -- while retrying
    finished_at_ms      BIGINT,             -- sent or given up
    detail              TEXT,               -- the gateway's last error
    updated_at_ms       BIGINT NOT NULL
);
CREATE INDEX sms_messages_node_status ON sms_messages (node, status);
CREATE INDEX sms_messages_tenant_queued ON sms_messages (tenant, queued_at_ms);

CREATE TABLE callback_requests (
    id                  TEXT PRIMARY KEY,
    node                TEXT,               -- the node that booked (and dials) it
    tenant              TEXT,
    queue               TEXT,
    call_uid            TEXT,               -- the call that asked for it (call_records.call_uid)
    caller_number       TEXT,
    language            TEXT,
    arrived_at_ms       BIGINT,             -- the original call's arrival: its place in the queue
    requested_at_ms     BIGINT,
    status              TEXT NOT NULL,      -- pending, retrying, connected, gave_up, superseded
    attempts            BIGINT NOT NULL,
    progress            BIGINT NOT NULL,
    due_at_ms           BIGINT,             -- not dialled before
    last_attempt_at_ms  BIGINT,
    finished_at_ms      BIGINT,
    updated_at_ms       BIGINT NOT NULL
);
CREATE INDEX callback_requests_node_status ON callback_requests (node, status);
CREATE INDEX callback_requests_tenant_arrived ON callback_requests (tenant, arrived_at_ms);
