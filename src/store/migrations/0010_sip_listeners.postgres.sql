-- navbat schema 10 (Postgres): a SIP identity for the accounts that may listen to live calls by
-- feature code from a softphone (issue 16 part 3, D19): officers and supervisor accounts, who
-- are not configured operators. Only digest HA1s are kept (never the password): md5 and
-- SHA-256 of "ext:realm:password", with the realm they were made for (a changed sip.realm
-- makes them unusable, and navbat says so). Set by `navbat user sip`.
-- Independent of other schema steps: the runner applies every version not yet applied.
CREATE TABLE account_sip (
    username        TEXT PRIMARY KEY,       -- accounts.username
    ext             TEXT NOT NULL,          -- the SIP user name the softphone authenticates as
    realm           TEXT NOT NULL,
    ha1_md5         TEXT NOT NULL,
    ha1_sha256      TEXT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
CREATE UNIQUE INDEX account_sip_ext ON account_sip (ext);
