-- navbat schema 5: notices to the client (D7). A notice arrives through the journal before its
-- first attempt; each delivery (notice x channel) keeps its state, and `progress`
-- (attempts * 4 + stage) only grows, so a replayed batch changes nothing.

CREATE TABLE notices (
    id              TEXT PRIMARY KEY,       -- from its trigger: call:<uid>:unresolved, request:<id>:resolution
    tenant          TEXT NOT NULL,
    kinds           TEXT NOT NULL,          -- unresolved, disputed, complaint, sla_breach (comma-separated)
    target_kind     TEXT NOT NULL,          -- call, request
    target_id       TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    body            TEXT NOT NULL           -- the notice as JSON (texts masked, D18)
);
CREATE INDEX notices_target ON notices (target_id);
CREATE INDEX notices_tenant_created ON notices (tenant, created_at_ms);

CREATE TABLE notice_deliveries (
    notice_id       TEXT NOT NULL,
    channel         TEXT NOT NULL,          -- email, telegram
    state           TEXT NOT NULL,          -- queued, retrying, sent, failed
    attempts        BIGINT NOT NULL,
    due_ms          BIGINT,
    detail          TEXT,
    digest_of       BIGINT,                 -- sent within a digest of this many
    progress        BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (notice_id, channel)
);
CREATE INDEX notice_deliveries_state ON notice_deliveries (state);
