//! Media (RTP/AVP, RFC 3550/3551): the router anchors every call's audio.
//!
//! - [`PortPool`] hands out RTP/RTCP socket pairs from the configured range;
//! - [`g711`], [`rtp`], [`dtmf`] are pure codecs and parsers;
//! - [`prompts`] loads the recordings the IVR and the queue play;
//! - [`recorder`] writes stereo WAV recordings off the packet path;
//! - [`session`] runs calls' media on one shared 20 ms clock per media worker (prompts,
//!   DTMF, bridge, recording, monitoring);
//! - [`announce`] decides what the queue announcement says (pure).
//!
//! The call's actor never does socket I/O: it starts a session on the media runtime through
//! [`MediaEngine::start_session`] and steers it with commands.

pub mod announce;
pub mod dtmf;
pub mod g711;
pub mod prompts;
pub mod recorder;
pub mod rtcp;
pub mod rtp;
pub mod session;

pub use session::{HoldBy, LegSpec, MediaCommand, MediaEvent, MediaHandle, MediaMsg, MonitorMode};

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A G.711 codec as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type (RFC 3551 table 4).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The encoding name in `a=rtpmap`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The codec of a static payload type we support.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The G.711 law.
    pub fn law(self) -> g711::Law {
        match self {
            Codec::Pcmu => g711::Law::Ulaw,
            Codec::Pcma => g711::Law::Alaw,
        }
    }

    /// Every codec, in [`Codec::index`] order.
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// Position in per-codec counter arrays (also the index of its [`PAYLOAD_NAMES`] entry).
    pub fn index(self) -> usize {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 1,
        }
    }

    /// The lower-case name used as a metric label value.
    pub fn label(self) -> &'static str {
        PAYLOAD_NAMES[self.index()]
    }
}

/// Kinds of received RTP payload counted apart: the two codecs, RFC 4733 events, others.
pub const PAYLOAD_CLASSES: usize = 4;
/// Index of telephone-event packets in [`MediaCounters::received_by_payload`].
pub const PAYLOAD_TELEPHONE_EVENT: usize = 2;
/// Index of any other payload type (comfort noise, unknown).
pub const PAYLOAD_OTHER: usize = 3;
/// Label values of the payload classes, by index.
pub const PAYLOAD_NAMES: [&str; PAYLOAD_CLASSES] = ["pcmu", "pcma", "telephone_event", "other"];
/// Jitter samples kept for the metrics poller at most; more are dropped (counted).
pub const JITTER_SAMPLES_MAX: usize = 16_384;

/// Hands out RTP/RTCP port pairs from the configured range.
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    max: u16,
    cursor: AtomicU32,
}

/// A bound RTP socket (and its RTCP neighbour), released on drop.
#[derive(Debug)]
pub struct RtpPort {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
}

impl RtpPort {
    /// The local RTP address.
    pub fn addr(&self) -> SocketAddr {
        self.rtp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The sockets, for the media task: RTP, and RTCP when port + 1 was free (read and
    /// reported on by [`rtcp::RtcpLeg`]).
    pub fn into_sockets(self) -> (UdpSocket, Option<UdpSocket>) {
        (self.rtp, self.rtcp)
    }
}

/// No port of the range could be bound.
#[derive(Debug, thiserror::Error)]
#[error("no free RTP port in {ip} {min}-{max}; fix: widen media.rtp_port_min..rtp_port_max")]
pub struct PortsExhausted {
    ip: IpAddr,
    min: u16,
    max: u16,
}

impl PortPool {
    /// A pool over `min..=max` on `ip`.
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Arc<PortPool> {
        Arc::new(PortPool {
            ip,
            min,
            max,
            cursor: AtomicU32::new(0),
        })
    }

    /// Binds the next free even port (RTP) and, when free, the odd one above it (RTCP).
    pub fn allocate(&self) -> Result<RtpPort, PortsExhausted> {
        let first = self.min + (self.min % 2);
        let pairs = (u32::from(self.max.saturating_sub(first)) / 2 + 1).max(1);
        for _ in 0..pairs {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed) % pairs;
            let port = first + (i * 2) as u16;
            if port > self.max {
                continue;
            }
            if let Ok(rtp) = UdpSocket::bind((self.ip, port)) {
                let rtcp = port
                    .checked_add(1)
                    .filter(|p| *p <= self.max)
                    .and_then(|p| UdpSocket::bind((self.ip, p)).ok());
                return Ok(RtpPort { rtp, rtcp });
            }
        }
        Err(PortsExhausted {
            ip: self.ip,
            min: self.min,
            max: self.max,
        })
    }
}

/// Process-wide media counters. The media drivers add to them once per 20 ms tick (summed
/// over all their sessions); `actors::poll::MetricsPoller` exports them once a second.
#[derive(Debug, Default)]
pub struct MediaCounters {
    /// Media sessions running.
    pub sessions: AtomicU64,
    /// RTP datagrams received.
    pub packets_in: AtomicU64,
    /// RTP packets sent.
    pub packets_out: AtomicU64,
    /// Packets lost on the way in (RTP sequence gaps, RFC 3550 A.3), as they are seen.
    pub packets_lost: AtomicU64,
    /// RTP packets received, by payload class ([`PAYLOAD_NAMES`]).
    pub received_by_payload: [AtomicU64; PAYLOAD_CLASSES],
    /// RTP packets sent, by codec ([`Codec::index`]).
    pub sent_by_codec: [AtomicU64; 2],
    /// Packets lost on the way in, by the leg's codec.
    pub lost_by_codec: [AtomicU64; 2],
    /// Per-leg interarrival jitter (seconds), sampled once a second per leg, waiting for
    /// the metrics poller ([`MediaCounters::take_jitter_samples`]).
    jitter_samples: Mutex<Vec<(Codec, f64)>>,
    /// Jitter samples dropped because nobody took them.
    pub jitter_samples_dropped: AtomicU64,
    /// Datagrams that were not RTP.
    pub malformed: AtomicU64,
    /// Sends dropped because the socket buffer was full.
    pub send_dropped: AtomicU64,
    /// Sends that failed (e.g. ICMP port unreachable).
    pub send_errors: AtomicU64,
    /// Inbound samples dropped because a leg's buffer was full (clock drift, bursts).
    pub samples_dropped: AtomicU64,
    /// Commands dropped because a session's mailbox was full.
    pub commands_shed: AtomicU64,
    /// 20 ms ticks run, over all sessions.
    pub ticks: AtomicU64,
    /// 20 ms frames relayed between bridged legs.
    pub frames_bridged: AtomicU64,
    /// RFC 4733 key presses detected.
    pub dtmf_events: AtomicU64,
    /// Valid RTCP compound packets received.
    pub rtcp_in: AtomicU64,
    /// RTCP reports sent.
    pub rtcp_out: AtomicU64,
    /// Datagrams on RTCP ports that were not valid RTCP.
    pub rtcp_malformed: AtomicU64,
}

impl MediaCounters {
    /// Queues jitter samples for the poller (empties `samples`); bounded by
    /// [`JITTER_SAMPLES_MAX`].
    pub(crate) fn add_jitter_samples(&self, samples: &mut Vec<(Codec, f64)>) {
        let mut queued = self
            .jitter_samples
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let room = JITTER_SAMPLES_MAX.saturating_sub(queued.len());
        let dropped = samples.len().saturating_sub(room);
        queued.extend(samples.drain(..).take(room));
        drop(queued);
        if dropped > 0 {
            self.jitter_samples_dropped
                .fetch_add(dropped as u64, Ordering::Relaxed);
        }
        samples.clear();
    }

    /// Takes the jitter samples queued since the last call.
    pub fn take_jitter_samples(&self) -> Vec<(Codec, f64)> {
        std::mem::take(
            &mut *self
                .jitter_samples
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }
}

/// Media settings taken from the configuration.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// Where prompt recordings are.
    pub prompts_dir: std::path::PathBuf,
    /// Take the demo prompts compiled into the binary for what `prompts_dir` lacks (the
    /// embedded demo configuration, run from any directory).
    pub embedded_prompts: bool,
    /// Where call recordings go.
    pub recordings_dir: std::path::PathBuf,
    /// Frames the recording writer may hold before it sheds.
    pub recorder_queue: usize,
}

/// The media engine: the drivers (one shared 20 ms clock per media worker thread), prompts,
/// recorder, counters. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MediaEngine {
    drivers: Arc<session::Drivers>,
    /// Prompt recordings.
    pub prompts: Arc<prompts::PromptStore>,
    /// The recording writer.
    pub recorder: recorder::Recorder,
    /// Counters.
    pub counters: Arc<MediaCounters>,
}

impl MediaEngine {
    /// An engine whose sessions run on `rt` (a multi-threaded runtime that outlives them):
    /// one driver per worker thread of `rt`, sessions spread over them round robin.
    pub fn new(
        rt: tokio::runtime::Handle,
        settings: &MediaSettings,
    ) -> Result<MediaEngine, recorder::RecorderError> {
        let counters = Arc::new(MediaCounters::default());
        let workers = rt.metrics().num_workers();
        Ok(MediaEngine {
            drivers: Arc::new(session::Drivers::start(&rt, workers, &counters)),
            prompts: Arc::new(if settings.embedded_prompts {
                prompts::PromptStore::with_embedded_fallback(&settings.prompts_dir)
            } else {
                prompts::PromptStore::new(&settings.prompts_dir)
            }),
            recorder: recorder::Recorder::start(&settings.recordings_dir, settings.recorder_queue)?,
            counters,
        })
    }

    /// Starts a call's media session with the caller's leg; events go to `to`. The session
    /// runs from the next tick of its driver.
    pub fn start_session(&self, caller: LegSpec, to: actix::Recipient<MediaMsg>) -> MediaHandle {
        self.drivers
            .start_session(caller, to, self.counters.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An even loopback port `p` with `p..p+8` free on UDP just now (not a fixed range: the
    /// demo or another test may hold one).
    fn free_block_of_8() -> u16 {
        for _ in 0..500 {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let base = probe.local_addr().unwrap().port() & !1;
            drop(probe);
            if base > u16::MAX - 8 {
                continue;
            }
            let held: Vec<_> = (base..base + 8)
                .map_while(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).ok())
                .collect();
            if held.len() == 8 {
                return base;
            }
        }
        panic!("no block of 8 free UDP ports on loopback after 500 tries");
    }

    #[test]
    fn allocates_distinct_even_ports_and_reuses_freed_ones() {
        let base = free_block_of_8();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), base, base + 7);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_ne!(a.addr().port(), b.addr().port());
        assert_eq!(a.addr().port() % 2, 0);
        let c = pool.allocate().unwrap();
        let d = pool.allocate().unwrap();
        assert!(pool.allocate().is_err());
        drop((a, b, c));
        assert!(pool.allocate().is_ok());
        drop(d);
    }
}
