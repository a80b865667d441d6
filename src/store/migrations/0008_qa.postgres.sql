-- navbat schema 8: quality assurance (issue 16, D17, C9). The weekly draw per tenant (its seed,
-- how many candidate calls it saw and their digest, so it can be re-derived), the calls in each
-- week's QA queue and why, the evaluations (marks and timestamped comments as JSON, the total in
-- tenths of a per cent, the operator's dispute and the supervisor's answer), and the calibration
-- sessions whose evaluations carry their session_id. Only new tables: nothing here depends on
-- the migrations after it.
CREATE TABLE qa_samples (
    tenant        TEXT NOT NULL,
    week          TEXT NOT NULL,             -- ISO week in the tenant's zone, 2026-W49
    seed          TEXT NOT NULL,             -- decimal u64
    candidates    BIGINT NOT NULL,
    digest        TEXT NOT NULL,             -- SHA-256 of the candidates' call_uids
    per_operator  BIGINT NOT NULL,
    at_ms         BIGINT NOT NULL,
    PRIMARY KEY (tenant, week)
);
CREATE TABLE qa_queue (
    tenant        TEXT NOT NULL,
    week          TEXT NOT NULL,
    call_uid      TEXT NOT NULL,
    operator      TEXT,
    reason        TEXT NOT NULL,             -- random, complaint, unresolved, disputed
    at_ms         BIGINT NOT NULL,
    PRIMARY KEY (tenant, week, call_uid)
);
CREATE TABLE qa_evaluations (
    evaluation_id   TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    call_uid        TEXT NOT NULL,
    operator        TEXT,
    evaluator       TEXT NOT NULL,
    evaluator_role  TEXT,
    session_id      TEXT,                    -- a calibration session, or NULL
    marks           TEXT NOT NULL,           -- JSON [["greeting", 5], ...]
    comments        TEXT NOT NULL,           -- JSON [{"at_secs": 12, "text": "..."}]
    total_tenths    BIGINT NOT NULL,
    at_ms           BIGINT NOT NULL,
    dispute_reason  TEXT,
    disputed_by     TEXT,
    disputed_at_ms  BIGINT,
    answer          TEXT,
    answered_by     TEXT,
    answered_at_ms  BIGINT
);
CREATE INDEX qa_evaluations_call ON qa_evaluations (call_uid);
CREATE INDEX qa_evaluations_operator ON qa_evaluations (operator, at_ms);
CREATE INDEX qa_evaluations_tenant_at ON qa_evaluations (tenant, at_ms);
CREATE INDEX qa_evaluations_session ON qa_evaluations (session_id);
CREATE TABLE qa_sessions (
    session_id    TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    title         TEXT,
    calls         TEXT NOT NULL,             -- call_uids, space-separated
    opened_by     TEXT NOT NULL,
    opened_at_ms  BIGINT NOT NULL,
    closed_by     TEXT,
    closed_at_ms  BIGINT
);
CREATE INDEX qa_sessions_tenant ON qa_sessions (tenant, opened_at_ms);
