//! Recordings after the recorder (D19, C9): the index, playback, access and retention.
//!
//! ```text
//! recorder opens a call's file --recording_started--> journal --> recordings row (node, url)
//! recorder closes it -----------recording-----------> journal --> same row: length, size, SHA-256
//! GET /api/recordings/{call} --> access (role, tenant, own call) --> audit --> this node's file
//!                                                                        \-> or the node that has it
//! retention job (hourly) --> rows older than the tenant's months --> file and row deleted, audited
//! ```
//!
//! * One row per call (`recording_uid` = the call's store name), written through the journal
//!   like every record, so a recording is found after a restart and from every node sharing
//!   the database. The row names the node that holds the file and the address other nodes
//!   fetch it from (`[recordings] node_url`).
//! * A recording is served by the node that wrote it. Another node relays the request there
//!   with the cluster's bootstrap token (`http.admin_token`, the same on every node) and an
//!   `X-Navbat-Relay` header; the person's access was checked and audited on the node they
//!   asked, and the holder serves only its own files for a relayed request, never relaying
//!   again. Storage is therefore each node's local disk; no shared filesystem is needed.
//! * Playback answers HTTP range requests (`Accept-Ranges: bytes`, 206 with
//!   `Content-Range`), so a browser's player seeks without fetching the whole file. The
//!   served WAV has a header made for the audio written so far: a live call's recording
//!   plays while it grows, a range past its current end being refused with 416.
//! * Access ([`access`]) and retention ([`retention`]) are decided by pure functions; the
//!   routes are `crate::desk::recordings` (this module stays below the desk and the actors).

pub mod access;
pub mod file;
pub mod index;
pub mod range;
pub mod retention;
pub mod seal;

/// The address other nodes fetch this node's recordings from: `[recordings] node_url`, else
/// `http://` and `http.listen` (right for one host; set node_url when nodes are on several).
pub fn node_url(config: &crate::config::Config) -> String {
    config
        .recordings
        .node_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.http.listen))
}

#[cfg(test)]
mod tests {
    use crate::store::record::{fold, JournalEntry};
    use serde_json::json;

    fn entry(seq: u64, at_ms: u64, event: serde_json::Value) -> JournalEntry {
        serde_json::from_value(json!({
            "uid": format!("node-a:b1:{seq}"),
            "node": "node-a",
            "boot": "b1",
            "seq": seq,
            "at_ms": at_ms,
            "event": event,
        }))
        .unwrap()
    }

    /// A recording's start and end in one journal batch are one row (Postgres refuses to
    /// upsert a row twice in one statement), with the start's time and tenant and the end's
    /// length, size, checksum and key.
    #[test]
    fn start_and_end_of_a_recording_fold_into_one_row() {
        let entries = [
            entry(
                1,
                1_000,
                json!({"kind": "recording_started", "call": "c1", "tenant": "dtm",
                       "path": "/r/c1.nvbrec", "node_url": "http://10.0.0.1:8080", "key_id": "k1"}),
            ),
            entry(
                2,
                9_000,
                json!({"kind": "recording", "call": "c1", "path": "/r/c1.nvbrec",
                       "duration_ms": 8_000, "bytes": 256_500, "sha256": "ab", "tenant": "dtm",
                       "node_url": "http://10.0.0.1:8080", "key_id": "k1"}),
            ),
        ];
        let rows = fold(&entries, &|_, _| "2026-12".into());
        assert_eq!(rows.recordings.len(), 1, "{:?}", rows.recordings);
        let r = &rows.recordings[0];
        assert_eq!(r.recording_uid, "node-a:b1:c1");
        assert_eq!(r.call_uid, "node-a:b1:c1");
        assert_eq!(r.node, "node-a");
        assert_eq!(r.node_url.as_deref(), Some("http://10.0.0.1:8080"));
        assert_eq!(r.tenant.as_deref(), Some("dtm"));
        assert_eq!(r.started_at_ms, Some(1_000));
        assert_eq!(r.at_ms, 9_000);
        assert_eq!((r.duration_ms, r.bytes), (Some(8_000), Some(256_500)));
        assert_eq!(r.sha256.as_deref(), Some("ab"));
        assert_eq!(r.key_id.as_deref(), Some("k1"));
        // Each alone (batches split between them) still names the same row.
        let start = fold(&entries[..1], &|_, _| "2026-12".into());
        let end = fold(&entries[1..], &|_, _| "2026-12".into());
        assert_eq!(
            start.recordings[0].recording_uid,
            end.recordings[0].recording_uid
        );
        assert_eq!(start.recordings[0].duration_ms, None);
    }
}
