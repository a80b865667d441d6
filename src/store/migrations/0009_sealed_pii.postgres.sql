-- navbat schema 9: callers' personal data sealed at rest (issue 16 part 2, D18; src/pii.rs).
-- call_records.caller_number, dispositions.caller_name / organisation / stir and the requests'
-- requester keep AES-256-GCM ciphertext ("pii1.<key id>.<hex>") from now on; equality
-- lookups go through caller_lookup, an HMAC-SHA-256 of the normalised number, which is indexed
-- instead of the number. Existing plain rows are sealed by `navbat migrate` (and by the store
-- at start-up), which needs the key file; this schema step only adds the columns.
-- Independent of 0008 (QA scorecards): the runner applies every version not yet applied, in
-- either order.
ALTER TABLE call_records ADD COLUMN caller_lookup TEXT;
DROP INDEX IF EXISTS call_records_caller;
CREATE INDEX call_records_caller_lookup ON call_records (caller_lookup, arrived_at_ms);
-- Per key id ever used, a known text sealed with it (purpose 'data') and the lookup hash of a
-- known text (purpose 'lookup'): a wrong or missing key stops navbat at start-up.
CREATE TABLE pii_keys (
    key_id          TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    sealed          TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (key_id, purpose)
);
