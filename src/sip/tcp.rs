//! SIP over TCP: navbat's own accept loop and framing in front of the stack (issue 18, part 6).
//!
//! rsipstack's TCP listener accepts every connection and frames it without a deadline, so one
//! source could hold every descriptor, a byte every few seconds kept a connection open for ever,
//! and a message the stack could not parse closed the connection instead of being answered.
//! Here the listener is ours:
//!
//! * **Caps at accept**: at most `per_source` connections from one source (an IPv4 address, an
//!   IPv6 /64) and `total` in all; one over a cap is closed at once and counted.
//! * **Deadlines**: a message must be complete within `header_deadline` of its first byte (a
//!   slowloris sending a byte a second is closed there), and a connection with nothing to say
//!   for `idle` is closed.
//! * **Framing** by Content-Length (RFC 3261 §18.3), at most `max_message` bytes; CRLFCRLF
//!   keep-alives are answered with CRLF and a lone CRLF (a pong) is ignored (RFC 5626 §4.4.1).
//! * **Screening**: every message goes through the same [`super::guard::screen_parsed`] as a UDP
//!   datagram, so an unknown method gets 501 and another SIP version 505 on the same
//!   connection, which stays open.
//!
//! Messages that pass are handed to the stack as arriving on an rsipstack `TcpConnection` built
//! on the same socket, registered in its connection cache: its answers and any request to the
//! peer go back on this connection. The stack's own reader for it is kept parked (we hold the
//! lock of its read half) until we are done, then gets an end of stream.

use super::guard::{screen_parsed, screen_truncated, GuardCounters, Screen};
use super::warn_limit;
use rsipstack::transport::connection::TransportSender;
use rsipstack::transport::stream::StreamConnectionInner;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Limits on SIP over TCP (`[sip.tcp_limits]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpPolicy {
    /// Connections open at once from one source (IPv4 address, IPv6 /64).
    pub per_source: u32,
    /// Connections open at once in all.
    pub total: u32,
    /// A message must be complete this long after its first byte.
    pub header_deadline: Duration,
    /// A connection with no message under way is closed after this long without a byte.
    pub idle: Duration,
    /// The largest message read (header and body).
    pub max_message: usize,
    /// Messages handed to the stack and not yet taken above which reading pauses.
    pub queue: usize,
}

impl Default for TcpPolicy {
    fn default() -> TcpPolicy {
        TcpPolicy {
            per_source: 16,
            total: 1_024,
            header_deadline: Duration::from_secs(5),
            idle: Duration::from_secs(900),
            max_message: 65_535,
            queue: 4_096,
        }
    }
}

/// Why a connection was refused at accept or closed by navbat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// Its source already had `per_source` connections.
    SourceCap,
    /// `total` connections were open.
    TotalCap,
    /// A message was not complete within the header deadline.
    HeaderDeadline,
    /// Nothing arrived within the idle deadline.
    Idle,
    /// A message larger than `max_message`.
    TooLarge,
    /// A Content-Length that cannot be read: the stream cannot be framed.
    BadFraming,
}

impl Closing {
    /// The `reason` label of `navbat_sip_tcp_refused_total`.
    pub fn label(self) -> &'static str {
        TCP_REASONS[self.index()]
    }

    fn index(self) -> usize {
        match self {
            Closing::SourceCap => 0,
            Closing::TotalCap => 1,
            Closing::HeaderDeadline => 2,
            Closing::Idle => 3,
            Closing::TooLarge => 4,
            Closing::BadFraming => 5,
        }
    }
}

pub use crate::metrics::TCP_REASONS;

/// Counters of SIP over TCP.
#[derive(Default, Debug)]
pub struct TcpCounters {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections refused or closed by navbat, by [`Closing`] (index: [`TCP_REASONS`]).
    pub refused: [AtomicU64; 6],
    /// Messages handed to the stack.
    pub handed: AtomicU64,
    /// Of those, taken up by the stack (counted by the stream guard).
    pub taken: AtomicU64,
    /// CRLFCRLF keep-alives answered.
    pub keepalives: AtomicU64,
}

impl TcpCounters {
    fn count(&self, why: Closing) {
        self.refused[why.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Refused or closed for `why` so far.
    pub fn refused(&self, why: Closing) -> u64 {
        self.refused[why.index()].load(Ordering::Relaxed)
    }

    fn queued(&self) -> usize {
        let handed = self.handed.load(Ordering::Relaxed);
        let taken = self.taken.load(Ordering::Relaxed);
        usize::try_from(handed.saturating_sub(taken)).unwrap_or(usize::MAX)
    }
}

/// The connection caps: pure bookkeeping, driven by the accept loop.
#[derive(Debug)]
pub struct ConnCaps {
    per_source: u32,
    total: u32,
    open: u32,
    by_source: HashMap<IpAddr, u32>,
}

impl ConnCaps {
    /// Caps of `per_source` and `total` connections.
    pub fn new(per_source: u32, total: u32) -> ConnCaps {
        ConnCaps {
            per_source,
            total,
            open: 0,
            by_source: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip`, or says which cap refuses it.
    pub fn admit(&mut self, ip: IpAddr) -> Result<(), Closing> {
        if self.open >= self.total {
            return Err(Closing::TotalCap);
        }
        let n = self.by_source.entry(super::auth::group(ip)).or_insert(0);
        if *n >= self.per_source {
            return Err(Closing::SourceCap);
        }
        *n += 1;
        self.open += 1;
        Ok(())
    }

    /// A connection from `ip` closed.
    pub fn release(&mut self, ip: IpAddr) {
        let key = super::auth::group(ip);
        if let Some(n) = self.by_source.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.by_source.remove(&key);
            }
            self.open = self.open.saturating_sub(1);
        }
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.open
    }
}

/// What the front of a stream's buffer holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet.
    Incomplete,
    /// A CRLFCRLF keep-alive ping of this many bytes: answer CRLF.
    Ping(usize),
    /// A CRLF (a pong, or a CRLF before a message, RFC 3261 §7.5): skip it.
    Skip(usize),
    /// A whole message of this many bytes.
    Message(usize),
    /// Larger than the limit.
    TooLarge,
    /// A Content-Length that cannot be read, or two that disagree.
    BadLength,
}

/// Frames the front of `buf` by Content-Length (RFC 3261 §18.3); a message may not exceed
/// `max` bytes. A message without Content-Length has no body.
pub fn frame(buf: &[u8], max: usize) -> Frame {
    if buf.starts_with(b"\r\n\r\n") {
        return Frame::Ping(4);
    }
    if buf.starts_with(b"\r\n") {
        // "\r\n" and "\r\n\r" may still become a ping.
        return if buf.len() >= 4 || !b"\r\n\r\n".starts_with(buf) {
            Frame::Skip(2)
        } else {
            Frame::Incomplete
        };
    }
    if buf == b"\r" {
        return Frame::Incomplete;
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > max {
            Frame::TooLarge
        } else {
            Frame::Incomplete
        };
    };
    let mut length: Option<usize> = None;
    for line in buf[..end].split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = std::str::from_utf8(line[colon + 1..].trim_ascii())
            .ok()
            .and_then(|v| v.parse::<usize>().ok());
        match (value, length) {
            (None, _) => return Frame::BadLength,
            (Some(v), Some(prev)) if v != prev => return Frame::BadLength,
            (Some(v), _) => length = Some(v),
        }
    }
    let total = (end + 4).saturating_add(length.unwrap_or(0));
    if total > max {
        Frame::TooLarge
    } else if buf.len() >= total {
        Frame::Message(total)
    } else {
        Frame::Incomplete
    }
}

/// What the accept loop needs from the stack.
pub struct TcpServer {
    /// The limits.
    pub policy: TcpPolicy,
    /// Counts of connections and refusals.
    pub counters: Arc<TcpCounters>,
    /// The guard's counters (answers 400/501/505/513, drops).
    pub guard: Arc<GuardCounters>,
    /// Where messages enter the stack.
    pub feed: TransportSender,
    /// The stack's endpoint, whose connection cache learns each connection.
    pub endpoint: rsipstack::transaction::endpoint::EndpointInnerRef,
    /// The listening address as the stack names it.
    pub local: SipAddr,
    /// Stops the loop and every connection.
    pub cancel: CancellationToken,
}

/// Accepts connections on `listener` until cancelled.
pub async fn serve(listener: TcpListener, server: TcpServer) {
    let server = Arc::new(server);
    let caps = Arc::new(Mutex::new(ConnCaps::new(
        server.policy.per_source,
        server.policy.total,
    )));
    loop {
        let accepted = tokio::select! {
            _ = server.cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(got) => got,
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                tracing::warn!(error = %e, "SIP over TCP: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admitted = caps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(peer.ip());
        if let Err(why) = admitted {
            server.counters.count(why);
            tracing::debug!(%peer, reason = why.label(), "SIP over TCP: connection refused");
            drop(stream);
            continue;
        }
        server.counters.open.fetch_add(1, Ordering::Relaxed);
        let server = server.clone();
        let caps = caps.clone();
        tokio::spawn(async move {
            connection(stream, peer, &server).await;
            caps.lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(peer.ip());
            server.counters.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Serves one connection until it closes or breaks a limit.
async fn connection(stream: tokio::net::TcpStream, peer: SocketAddr, server: &TcpServer) {
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let _ = stream.set_nodelay(true);
    let remote = SipAddr {
        r#type: Some(rsipstack::sip::Transport::Tcp),
        addr: peer.into(),
    };
    let (read_half, write_half) = tokio::io::split(stream);
    let conn = TcpConnection {
        inner: Arc::new(StreamConnectionInner::new(
            server.local.clone(),
            remote.clone(),
            read_half,
            write_half,
        )),
        cancel_token: Some(server.cancel.child_token()),
    };
    let inner = conn.inner.clone();
    // Held until we are done: the stack's own reader waits on it and never frames this stream.
    let mut parked = inner.read_half.lock().await;
    let Some(mut reader) = parked.take() else {
        return;
    };
    let sip_conn = SipConnection::Tcp(conn.clone());
    server
        .endpoint
        .transport_layer
        .add_connection(sip_conn.clone());
    let closing = read_loop(&mut reader, &conn, &sip_conn, peer, &remote, server).await;
    if let Some(why) = closing {
        server.counters.count(why);
        tracing::debug!(%peer, reason = why.label(), "SIP over TCP: connection closed");
    }
    server.endpoint.transport_layer.remove_connection(&sip_conn);
    // Both ways: the peer sees the close now, and the stack's reader, handed the read half
    // back, reads the end of the stream and retires the connection.
    let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Both);
    *parked = Some(reader);
}

async fn read_loop(
    reader: &mut tokio::io::ReadHalf<tokio::net::TcpStream>,
    conn: &TcpConnection,
    sip_conn: &SipConnection,
    peer: SocketAddr,
    remote: &SipAddr,
    server: &TcpServer,
) -> Option<Closing> {
    let policy = server.policy;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    // When the message under way began (its first byte), if one is.
    let mut started: Option<tokio::time::Instant> = None;
    loop {
        loop {
            match frame(&buf, policy.max_message) {
                Frame::Incomplete => break,
                Frame::Ping(n) => {
                    buf.drain(..n);
                    server.counters.keepalives.fetch_add(1, Ordering::Relaxed);
                    if conn.inner.send_raw(b"\r\n").await.is_err() {
                        return None;
                    }
                }
                Frame::Skip(n) => {
                    buf.drain(..n);
                }
                Frame::Message(n) => {
                    let message: Vec<u8> = buf.drain(..n).collect();
                    started = None;
                    if !handle(&message, conn, sip_conn, peer, remote, server).await {
                        return None;
                    }
                }
                Frame::TooLarge => {
                    let reply = warn_limit::from_source(peer.ip(), || screen_truncated(&buf));
                    if let Screen::Answer { status, bytes } = reply {
                        server.guard.count_answer(status);
                        let _ = conn.inner.send_raw(&bytes).await;
                    }
                    return Some(Closing::TooLarge);
                }
                Frame::BadLength => return Some(Closing::BadFraming),
            }
        }
        let now = tokio::time::Instant::now();
        // Nothing, or the start of a keep-alive: the idle deadline; a message under way: the
        // header deadline from its first byte.
        let (deadline, why) = if b"\r\n\r\n".starts_with(&buf) {
            (now + policy.idle, Closing::Idle)
        } else {
            let first = *started.get_or_insert(now);
            (first + policy.header_deadline, Closing::HeaderDeadline)
        };
        let read = tokio::select! {
            _ = server.cancel.cancelled() => return None,
            read = tokio::time::timeout_at(deadline, reader.read(&mut chunk)) => read,
        };
        match read {
            Err(_) => return Some(why),
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => {
                if buf.is_empty() && started.is_none() && !chunk[..n].starts_with(b"\r\n") {
                    started = Some(tokio::time::Instant::now());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// Screens one framed message and hands it to the stack or answers it; `false` when the stack
/// is gone.
async fn handle(
    message: &[u8],
    conn: &TcpConnection,
    sip_conn: &SipConnection,
    peer: SocketAddr,
    remote: &SipAddr,
    server: &TcpServer,
) -> bool {
    // One parse: the screen's own, handed on.
    let passed = warn_limit::from_source(peer.ip(), || match screen_parsed(message) {
        (Screen::Pass, Some(msg)) => Ok(Ok(msg)),
        (Screen::Pass, None) => Ok(Err("unparseable")),
        (Screen::PassRewritten(_), parsed) => {
            server.guard.normalised.fetch_add(1, Ordering::Relaxed);
            Ok(parsed.ok_or("unparseable rewrite"))
        }
        (other, _) => Err(other),
    });
    let parsed = match passed {
        Ok(parsed) => parsed,
        Err(Screen::Answer { status, bytes }) => {
            server.guard.count_answer(status);
            tracing::debug!(%peer, status, "malformed SIP over TCP answered");
            return conn.inner.send_raw(&bytes).await.is_ok();
        }
        Err(_) => Err("dropped by the guard"),
    };
    let msg = match parsed.and_then(|m| {
        SipConnection::update_msg_received(m, peer, rsipstack::sip::Transport::Tcp)
            .map_err(|_| "no Via to mark")
    }) {
        Ok(msg) => msg,
        Err(reason) => {
            server.guard.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, reason, "malformed SIP over TCP dropped");
            return true;
        }
    };
    // A bounded queue to the stack: past it, this connection stops reading (TCP pushes back).
    while server.counters.queued() >= server.policy.queue {
        tokio::select! {
            _ = server.cancel.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    server.counters.handed.fetch_add(1, Ordering::Relaxed);
    server
        .feed
        .send(TransportEvent::Incoming(
            msg,
            sip_conn.clone(),
            remote.clone(),
        ))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_by_content_length_and_keepalives() {
        let m = b"OPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabcREST";
        assert_eq!(frame(m, 1000), Frame::Message(m.len() - 4));
        assert_eq!(frame(&m[..10], 1000), Frame::Incomplete);
        assert_eq!(frame(b"\r\n\r\nOPTIONS", 1000), Frame::Ping(4));
        assert_eq!(frame(b"\r\nOPTIONS", 1000), Frame::Skip(2));
        assert_eq!(frame(b"\r\n", 1000), Frame::Incomplete);
        assert_eq!(frame(b"\r\n\r", 1000), Frame::Incomplete);
        assert_eq!(frame(&m[..10], 5), Frame::TooLarge);
        assert_eq!(frame(m, 20), Frame::TooLarge);
        let bad = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n";
        assert_eq!(frame(bad, 1000), Frame::BadLength);
        let two = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab";
        assert_eq!(frame(two, 1000), Frame::BadLength);
        let none = b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\nNEXT";
        assert_eq!(frame(none, 1000), Frame::Message(none.len() - 4));
    }

    #[test]
    fn caps_hold_per_source_and_in_all() {
        let mut caps = ConnCaps::new(2, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "2001:db8::1".parse().unwrap();
        let c2: IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(caps.admit(a), Ok(()));
        assert_eq!(caps.admit(a), Ok(()));
        assert_eq!(caps.admit(a), Err(Closing::SourceCap));
        assert_eq!(caps.admit(c), Ok(()));
        // The same /64.
        assert_eq!(caps.admit(c2), Err(Closing::TotalCap));
        caps.release(a);
        assert_eq!(caps.admit(c2), Ok(()));
        assert_eq!(caps.admit(b), Err(Closing::TotalCap));
        caps.release(c);
        caps.release(c2);
        caps.release(a);
        assert_eq!(caps.open(), 0);
        // Releasing what was never admitted changes nothing.
        caps.release(b);
        assert_eq!(caps.open(), 0);
    }
}
