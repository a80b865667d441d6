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
//! * Access ([`access`]) and retention ([`retention`]) are decided by pure functions.

pub mod access;
pub mod file;
pub mod index;
pub mod range;
pub mod retention;
pub mod seal;
#[allow(clippy::result_large_err)]
pub mod serve;

/// The address other nodes fetch this node's recordings from: `[recordings] node_url`, else
/// `http://` and `http.listen` (right for one host; set node_url when nodes are on several).
pub fn node_url(config: &crate::config::Config) -> String {
    config
        .recordings
        .node_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.http.listen))
}
