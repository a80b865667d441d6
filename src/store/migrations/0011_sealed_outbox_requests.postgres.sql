-- navbat schema 11: the rest of the callers' personal data sealed at rest (issue 16 part 2,
-- D18; src/pii.rs, src/store/seal.rs). sms_messages.to_number, callback_requests.caller_number,
-- the requester inside requests.head, request_messages.body and to_addr keep AES-256-GCM
-- ciphertext ("pii1.<key id>.<hex>") from now on; a missed call's intake key keeps the
-- number's lookup hash instead of its digits. The numbers of SMS and callbacks are found by
-- their lookup hash (HMAC-SHA-256 of the normalised number), indexed here instead of the
-- number. Existing plain rows are sealed by `navbat migrate` (and by the store at start-up),
-- which needs the key file; this schema step only adds the columns.
-- Independent of other branches' migrations: the runner applies every version not yet
-- applied, in either order.
ALTER TABLE sms_messages ADD COLUMN to_lookup TEXT;
CREATE INDEX sms_messages_to_lookup ON sms_messages (to_lookup, queued_at_ms);
ALTER TABLE callback_requests ADD COLUMN caller_lookup TEXT;
CREATE INDEX callback_requests_caller_lookup ON callback_requests (caller_lookup, requested_at_ms);
