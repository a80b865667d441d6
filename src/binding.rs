//! Where a registered phone can be reached, in a form any node can store and read back.
//!
//! A leaf on purpose: presence (shared between nodes through Redis) and the configuration
//! (a callback trunk's fixed contact) both name a binding, and neither may depend on the
//! SIP layer, which turns it into a live `sip::ContactBinding` when it sends a request.

/// The serialisable form of a SIP contact binding (`sip::ContactBinding`), for presence shared between nodes: a node
/// that did not take the REGISTER can still send an INVITE to the phone.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredBinding {
    /// The Contact URI as registered.
    pub uri: String,
    /// "udp" or "tcp" (the transport requests go out on).
    pub transport: Option<String>,
    /// Host (IP or name) requests go to.
    pub host: String,
    /// Port requests go to.
    pub port: Option<u16>,
}
