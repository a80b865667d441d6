-- navbat schema 4: requests from every channel (C1-C7, D9, D15). Times are Unix ms (UTC).
-- A request's changes arrive through the journal as steps carrying the whole new head; the
-- row keeps the newest (`version`), so a replayed batch changes nothing. Personal data (D18):
-- requests.head (the requester), request_messages.body and to_addr.

CREATE TABLE requests (
    id                  TEXT PRIMARY KEY,       -- support-261206-0007
    tenant              TEXT NOT NULL,
    channel             TEXT NOT NULL,          -- phone, email, telegram, web
    kind                TEXT NOT NULL,          -- ordinary, moderation
    priority            TEXT NOT NULL,          -- critical, high, normal, low
    status              TEXT NOT NULL,
    assignee            TEXT,
    subject             TEXT NOT NULL,
    intake_key          TEXT,
    registered_at_ms    BIGINT NOT NULL,
    first_answer_at_ms  BIGINT,
    resolved_at_ms      BIGINT,
    closed_at_ms        BIGINT,
    updated_at_ms       BIGINT NOT NULL,
    version             BIGINT NOT NULL,
    head                TEXT NOT NULL           -- the whole head as JSON (what the book restores)
);
CREATE INDEX requests_tenant_status ON requests (tenant, status, registered_at_ms);
CREATE INDEX requests_open ON requests (status, updated_at_ms);
CREATE INDEX requests_intake_key ON requests (intake_key, registered_at_ms);
CREATE INDEX requests_registered ON requests (registered_at_ms);

-- Every change, kept (append-only in use; keyed by the journal entry's uid).
CREATE TABLE request_steps (
    step_uid        TEXT PRIMARY KEY,
    request_id      TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    kind            TEXT NOT NULL,              -- opened, status, assigned, message_in, ...
    version         BIGINT NOT NULL,
    detail          TEXT                        -- the change as JSON (messages: their uid)
);
CREATE INDEX request_steps_request ON request_steps (request_id, version);

CREATE TABLE request_messages (
    message_uid     TEXT PRIMARY KEY,           -- <request>-m<n>
    request_id      TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    direction       TEXT NOT NULL,              -- in, out, note, letter
    channel         TEXT NOT NULL,
    author          TEXT,
    body            TEXT NOT NULL,
    external_id     TEXT,                       -- e-mail Message-ID, tg:<chat>:<message>
    to_addr         TEXT,
    attachments     TEXT NOT NULL DEFAULT '[]', -- JSON: name, type, bytes, sha256
    delivery        TEXT,                       -- queued, sent, failed (outbound)
    delivery_detail TEXT
);
CREATE INDEX request_messages_request ON request_messages (request_id, at_ms);
CREATE INDEX request_messages_external ON request_messages (external_id);

CREATE TABLE request_calls (
    request_id      TEXT NOT NULL,
    call_uid        TEXT NOT NULL,
    PRIMARY KEY (request_id, call_uid)
);
CREATE INDEX request_calls_call ON request_calls (call_uid);
