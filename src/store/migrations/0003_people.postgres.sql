-- navbat schema 3 (Postgres): the people who work the line (accounts, web sessions, personal API
-- tokens), the append-only audit log, the operators' after-call work (dispositions) and the
-- knowledge base. Times are Unix ms (UTC).
-- Secrets are never stored: passwords as argon2id PHC strings, session cookies and API tokens
-- as their SHA-256. Personal data (D18): dispositions.caller_name, organisation and stir.

CREATE TABLE accounts (
    username        TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('operator', 'supervisor', 'editor', 'officer', 'admin')),
    tenants         TEXT NOT NULL,
    operator_ext    TEXT,
    language        TEXT NOT NULL DEFAULT 'uz',
    password_hash   TEXT NOT NULL,
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_operator_ext ON accounts (operator_ext);

CREATE TABLE web_sessions (
    id_hash         TEXT PRIMARY KEY,
    username        TEXT NOT NULL,
    csrf            TEXT NOT NULL,
    source          TEXT,
    created_at_ms   BIGINT NOT NULL,
    expires_at_ms   BIGINT NOT NULL
);
CREATE INDEX web_sessions_username ON web_sessions (username);

CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY,
    token_hash      TEXT NOT NULL UNIQUE,
    username        TEXT NOT NULL,
    label           TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    revoked_at_ms   BIGINT
);
CREATE INDEX api_tokens_username ON api_tokens (username);

CREATE TABLE audit_log (
    audit_uid       TEXT PRIMARY KEY,
    at_ms           BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    role            TEXT,
    tenant          TEXT,
    action          TEXT NOT NULL,
    target          TEXT,
    source          TEXT,
    detail          TEXT
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant, at_ms);
CREATE INDEX audit_log_at ON audit_log (at_ms);
CREATE FUNCTION navbat_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION navbat_audit_log_append_only();

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
    topic           TEXT,
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
-- 'simple': no stemming, the same for Uzbek (which Postgres has no dictionary for) and Russian.
CREATE INDEX kb_articles_search ON kb_articles USING GIN (
    to_tsvector('simple', title_uz || ' ' || title_ru || ' ' || body_uz || ' ' || body_ru));

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
