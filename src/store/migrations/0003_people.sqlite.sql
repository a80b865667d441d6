-- navbat schema 3 (SQLite): the people who work the line (accounts, web sessions, personal API
-- tokens), the append-only audit log, the operators' after-call work (dispositions) and the
-- knowledge base. Times are Unix ms (UTC).
-- Secrets are never stored: passwords as argon2id PHC strings, session cookies and API tokens
-- as their SHA-256. Personal data (D18): dispositions.caller_name, organisation and stir.

CREATE TABLE accounts (
    username        TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('operator', 'supervisor', 'editor', 'officer', 'admin')),
    tenants         TEXT NOT NULL,          -- tenant ids separated by commas; '*' = every tenant
    operator_ext    TEXT,                   -- the SIP extension of an operator or supervisor
    language        TEXT NOT NULL DEFAULT 'uz',
    password_hash   TEXT NOT NULL,          -- argon2id, PHC string
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_operator_ext ON accounts (operator_ext);

CREATE TABLE web_sessions (
    id_hash         TEXT PRIMARY KEY,       -- SHA-256 of the cookie's value
    username        TEXT NOT NULL,
    csrf            TEXT NOT NULL,          -- the session's form token
    source          TEXT,
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL
);
CREATE INDEX web_sessions_username ON web_sessions (username);

CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY,       -- public id, shown in lists ("t_3f9a...")
    token_hash      TEXT NOT NULL UNIQUE,   -- SHA-256 of the token
    username        TEXT NOT NULL,
    label           TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    revoked_at_ms   BIGINT
);
CREATE INDEX api_tokens_username ON api_tokens (username);

-- Who did what, when and from where. Rows arrive through the journal (like every record) or,
-- for changes made from the shell, straight from `navbat user`. Nothing updates or deletes.
CREATE TABLE audit_log (
    audit_uid       TEXT PRIMARY KEY,
    at_ms           BIGINT NOT NULL,
    actor           TEXT NOT NULL,          -- username, 'bootstrap-token' or 'shell'
    role            TEXT,
    tenant          TEXT,                   -- the tenant the action concerns, if one
    action          TEXT NOT NULL,
    target          TEXT,
    source          TEXT,                   -- the client address
    detail          TEXT
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant, at_ms);
CREATE INDEX audit_log_at ON audit_log (at_ms);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- One disposition per call (disposition_uid = call_uid); an edit replaces it, raises
-- `revision` and is audited.
ALTER TABLE dispositions ADD COLUMN tenant TEXT;
ALTER TABLE dispositions ADD COLUMN outcome TEXT;
ALTER TABLE dispositions ADD COLUMN caller_name TEXT;
ALTER TABLE dispositions ADD COLUMN organisation TEXT;
ALTER TABLE dispositions ADD COLUMN stir TEXT;
ALTER TABLE dispositions ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
ALTER TABLE dispositions ADD COLUMN saved_by TEXT;
CREATE INDEX dispositions_tenant_at ON dispositions (tenant, at_ms);
CREATE INDEX dispositions_operator_at ON dispositions (operator, at_ms);
-- The desk's figures of today for one operator.
CREATE INDEX call_records_operator_arrived ON call_records (operator, arrived_at_ms);

CREATE TABLE kb_articles (
    id              TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    topic           TEXT,                   -- the IVR topic it answers; NULL = any
    kind            TEXT NOT NULL CHECK (kind IN ('faq', 'script')),
    title_uz        TEXT NOT NULL,
    title_ru        TEXT NOT NULL,
    body_uz         TEXT NOT NULL,
    body_ru         TEXT NOT NULL,
    revision        BIGINT NOT NULL,
    updated_by      TEXT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
CREATE INDEX kb_articles_tenant_topic ON kb_articles (tenant, topic);

CREATE TABLE kb_revisions (
    article_id      TEXT NOT NULL,
    revision        BIGINT NOT NULL,
    topic           TEXT,
    kind            TEXT NOT NULL,
    title_uz        TEXT NOT NULL,
    title_ru        TEXT NOT NULL,
    body_uz         TEXT NOT NULL,
    body_ru         TEXT NOT NULL,
    updated_by      TEXT NOT NULL,
    updated_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (article_id, revision)
);

-- Full-text search over both languages; kept in step by the code that saves an article.
CREATE VIRTUAL TABLE kb_search USING fts5(article_id UNINDEXED, tenant UNINDEXED, body, tokenize = 'unicode61 remove_diacritics 2');
