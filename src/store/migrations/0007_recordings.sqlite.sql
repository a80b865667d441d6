-- navbat schema 7: the recordings index (issue 16). One row per recorded call, keyed by the
-- call's store name, written when recording starts (so a live call's recording is found from
-- every node) and completed when it ends. The row names the node whose disk holds the file,
-- the address other nodes fetch it from, and the key it is encrypted with. Rows of schema 1
-- (keyed by their event) stay readable; their tenant, operator and node are filled in here.
ALTER TABLE recordings ADD COLUMN tenant TEXT;
ALTER TABLE recordings ADD COLUMN operator TEXT;
ALTER TABLE recordings ADD COLUMN node TEXT;
ALTER TABLE recordings ADD COLUMN node_url TEXT;
ALTER TABLE recordings ADD COLUMN started_at_ms BIGINT;
ALTER TABLE recordings ADD COLUMN key_id TEXT;
UPDATE recordings SET
    tenant = (SELECT c.tenant FROM call_records c WHERE c.call_uid = recordings.call_uid),
    operator = (SELECT c.operator FROM call_records c WHERE c.call_uid = recordings.call_uid),
    started_at_ms = at_ms - COALESCE(duration_ms, 0),
    -- The node that wrote it is the first part of the call's store name (node:boot:call).
    node = substr(call_uid, 1, instr(call_uid, ':') - 1);
CREATE INDEX recordings_tenant_started ON recordings (tenant, started_at_ms);
CREATE INDEX recordings_node_started ON recordings (node, started_at_ms);
