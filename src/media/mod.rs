//! Media (RTP/AVP, RFC 3550/3551): the router anchors every call's audio.
//!
//! - [`PortPool`] hands out RTP/RTCP socket pairs from the configured range, and hands a
//!   finished call's pair to a later call after a short wait;
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

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Hands out RTP/RTCP port pairs from the configured range, and takes back the pairs of
/// finished calls to hand out again (a bound socket costs the kernel a `socket`, a `bind`
/// and a `close` to make and unmake, four sockets a call).
#[derive(Debug)]
pub struct PortPool {
    ip: IpAddr,
    min: u16,
    max: u16,
    cursor: AtomicU32,
    /// The lowest even port of the range, and the pairs from it (at least 1).
    first: u16,
    pairs: u32,
    spares: Mutex<VecDeque<Spare>>,
    /// Spare pairs kept at most: half the range, so that fresh binds still find free
    /// ports, and at most [`SPARES_MAX`].
    spares_max: usize,
    /// Pairs handed out again (for the metrics and the tests).
    pub reused: AtomicU64,
    /// Spare pairs closed because a phone streamed on into them.
    pub streamed_on: AtomicU64,
}

/// A finished call's pair waits this long before another call gets it: the last packets
/// of the previous call's phones (in flight when the BYE went) arrive meanwhile and are
/// read away before the new call starts, so symmetric RTP does not latch the new call onto
/// them. Closing and binding afresh would give no more: the kernel hands a closed port to
/// the next `bind` at once, and a range of 500 pairs comes round in half a second at
/// 500 calls a second.
pub const SPARE_QUARANTINE: Duration = Duration::from_millis(500);
/// A spare pair nobody took for this long is closed (descriptors go back after a peak).
pub const SPARE_IDLE: Duration = Duration::from_secs(60);
/// Spare pairs kept at most, whatever the range.
pub const SPARES_MAX: usize = 4_096;
/// Datagrams read away from a spare's socket at most before it is handed out again.
const SPARE_DRAIN_MAX: usize = 256;

#[derive(Debug)]
struct Spare {
    since: Instant,
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    /// It got RTP during its first wait and is waiting a second time.
    waited_again: bool,
}

/// A bound RTP socket (and its RTCP neighbour), released on drop, or handed back to its
/// pool by the media session that used it ([`PortPool::give_back`]).
#[derive(Debug)]
pub struct RtpPort {
    rtp: UdpSocket,
    rtcp: Option<UdpSocket>,
    /// The pool to give the sockets back to when the call ends.
    home: Option<Arc<PortPool>>,
    /// The sockets were a finished call's: already non-blocking and tuned.
    reused: bool,
}

impl RtpPort {
    /// The local RTP address.
    pub fn addr(&self) -> SocketAddr {
        self.rtp
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
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
        let first = min + (min % 2);
        let pairs = u32::from(max.saturating_sub(first)) / 2 + 1;
        Arc::new(PortPool {
            first,
            pairs,
            ip,
            min,
            max,
            cursor: AtomicU32::new(0),
            spares: Mutex::new(VecDeque::new()),
            spares_max: (pairs as usize / 2).min(SPARES_MAX),
            reused: AtomicU64::new(0),
            streamed_on: AtomicU64::new(0),
        })
    }

    /// A finished call's pair that has waited out [`SPARE_QUARANTINE`], or else the next
    /// free even port (RTP) and, when free, the odd one above it (RTCP). When the range is
    /// full, the oldest spare even if its wait is not over (as binding a just-closed port
    /// would give).
    pub fn allocate(self: &Arc<Self>) -> Result<RtpPort, PortsExhausted> {
        self.allocate_at(Instant::now())
    }

    fn allocate_at(self: &Arc<Self>, now: Instant) -> Result<RtpPort, PortsExhausted> {
        if let Some(port) = self.take_spare(now, false) {
            return Ok(port);
        }
        for _ in 0..self.pairs {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed) % self.pairs;
            let port = self.first + (i * 2) as u16;
            if port > self.max {
                continue;
            }
            if let Ok(rtp) = UdpSocket::bind((self.ip, port)) {
                let rtcp = port
                    .checked_add(1)
                    .filter(|p| *p <= self.max)
                    .and_then(|p| UdpSocket::bind((self.ip, p)).ok());
                return Ok(RtpPort {
                    rtp,
                    rtcp,
                    home: Some(self.clone()),
                    reused: false,
                });
            }
        }
        self.take_spare(now, true).ok_or(PortsExhausted {
            ip: self.ip,
            min: self.min,
            max: self.max,
        })
    }

    fn spares(&self) -> std::sync::MutexGuard<'_, VecDeque<Spare>> {
        self.spares.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The oldest spare when it has waited out the quarantine (or `any`), read empty.
    ///
    /// A pair that got RTP while it waited (the last packets of a phone that had not yet
    /// heard the BYE) waits once more; one that gets RTP in its second wait as well has a
    /// phone streaming on into it, and is closed rather than handed to a call that
    /// symmetric RTP would then latch onto that phone.
    fn take_spare(self: &Arc<Self>, now: Instant, any: bool) -> Option<RtpPort> {
        loop {
            let (spare, stale) = {
                let mut spares = self.spares();
                let stale = take_idle(&mut spares, now);
                let due = spares.front().is_some_and(|s| {
                    any || now.saturating_duration_since(s.since) >= SPARE_QUARANTINE
                });
                (if due { spares.pop_front() } else { None }, stale)
            };
            drop(stale); // closed outside the lock
            let mut spare = spare?;
            let heard = drain(&spare.rtp);
            if let Some(rtcp) = &spare.rtcp {
                drain(rtcp);
            }
            if heard > 0 {
                if spare.waited_again {
                    self.streamed_on.fetch_add(1, Ordering::Relaxed);
                    continue; // closed
                }
                if !any {
                    spare.since = now;
                    spare.waited_again = true;
                    self.spares().push_back(spare);
                    continue;
                }
            }
            self.reused.fetch_add(1, Ordering::Relaxed);
            return Some(RtpPort {
                rtp: spare.rtp,
                rtcp: spare.rtcp,
                home: Some(self.clone()),
                reused: true,
            });
        }
    }

    /// Takes back a finished call's sockets (non-blocking, out of every poller); closes
    /// them instead when enough pairs are spare.
    pub fn give_back(&self, rtp: UdpSocket, rtcp: Option<UdpSocket>) {
        self.give_back_at(Instant::now(), rtp, rtcp);
    }

    fn give_back_at(&self, now: Instant, rtp: UdpSocket, rtcp: Option<UdpSocket>) {
        let mut spares = self.spares();
        if spares.len() < self.spares_max {
            spares.push_back(Spare {
                since: now,
                rtp,
                rtcp,
                waited_again: false,
            });
        } else {
            drop(spares);
            drop((rtp, rtcp));
        }
    }

    /// Spare pairs held now.
    pub fn spare_count(&self) -> usize {
        self.spares().len()
    }

    /// Closes the spares nobody took for [`SPARE_IDLE`] (allocation does it too; this is for
    /// the quiet hours after a peak, called by the once-a-second poller).
    pub fn close_idle(&self) {
        self.close_idle_at(Instant::now());
    }

    fn close_idle_at(&self, now: Instant) {
        let stale = take_idle(&mut self.spares(), now);
        drop(stale); // closed outside the lock
    }
}

/// The spares at the front that nobody took for [`SPARE_IDLE`] (oldest first).
fn take_idle(spares: &mut VecDeque<Spare>, now: Instant) -> Vec<Spare> {
    let idle = spares
        .iter()
        .position(|s| now.saturating_duration_since(s.since) < SPARE_IDLE)
        .unwrap_or(spares.len());
    spares.drain(..idle).collect()
}

/// Reads away what waits on a non-blocking socket (a previous call's late packets, a
/// queued ICMP error), up to a bound; the datagrams read.
fn drain(sock: &UdpSocket) -> usize {
    let mut buf = [0u8; 1_500];
    let mut got = 0;
    for _ in 0..SPARE_DRAIN_MAX {
        match sock.recv_from(&mut buf) {
            Ok(_) => got += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // An error queued on the socket (port unreachable) is taken by this read.
            Err(_) => {}
        }
    }
    got
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
    /// RTP packets from a source that is not the leg's (symmetric RTP held to the call's own
    /// stream): dropped, neither heard nor answered.
    pub foreign: AtomicU64,
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

    fn nothing_to_read(sock: &UdpSocket) -> bool {
        let mut buf = [0u8; 64];
        matches!(sock.recv_from(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Gives a pair back as a media session does: non-blocking sockets.
    fn give_back(pool: &PortPool, port: RtpPort, at: Instant) -> u16 {
        let p = port.addr().port();
        port.rtp.set_nonblocking(true).unwrap();
        if let Some(rtcp) = &port.rtcp {
            rtcp.set_nonblocking(true).unwrap();
        }
        pool.give_back_at(at, port.rtp, port.rtcp);
        p
    }

    #[test]
    fn a_finished_call_s_pair_goes_to_another_call_after_its_wait_and_read_empty() {
        let base = free_block_of_8();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), base, base + 7);
        let t0 = Instant::now();
        let a = pool.allocate_at(t0).unwrap();
        assert!(!a.reused);
        let a_rtcp = a.rtcp.as_ref().unwrap().local_addr().unwrap();
        let phone = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a_port = give_back(&pool, a, t0);
        assert_eq!(pool.spare_count(), 1);

        // Within the wait another call gets a pair of its own.
        let b = pool.allocate_at(t0 + SPARE_QUARANTINE / 2).unwrap();
        assert_ne!(b.addr().port(), a_port);
        assert!(!b.reused);
        // The last RTCP of the finished call's phone arrives meanwhile (RTCP does not
        // count as a phone streaming on).
        phone.send_to(b"late rtcp", a_rtcp).unwrap();

        // After it, the finished call's sockets, read empty.
        let c = pool.allocate_at(t0 + SPARE_QUARANTINE).unwrap();
        assert_eq!(c.addr().port(), a_port);
        assert!(c.reused);
        assert!(nothing_to_read(&c.rtp));
        assert!(nothing_to_read(c.rtcp.as_ref().unwrap()));
        assert_eq!(pool.reused.load(Ordering::Relaxed), 1);
        assert_eq!(pool.spare_count(), 0);
        // The new call's phone is heard on the same socket.
        phone.send_to(b"new", c.rtp.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(c.rtp.recv_from(&mut buf).unwrap().0, 3);
    }

    #[test]
    fn a_pair_that_gets_rtp_waits_again_and_is_closed_when_a_phone_streams_on() {
        let base = free_block_of_8();
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), base, base + 7);
        let t0 = Instant::now();
        let phone = UdpSocket::bind("127.0.0.1:0").unwrap();

        // A phone's last packets, in flight when the BYE went: the pair waits once more,
        // and is then handed out read empty.
        let a = pool.allocate_at(t0).unwrap();
        let a_rtp = a.rtp.local_addr().unwrap();
        let a_port = give_back(&pool, a, t0);
        phone.send_to(b"straggler", a_rtp).unwrap();
        let other = pool.allocate_at(t0 + SPARE_QUARANTINE).unwrap();
        assert_ne!(other.addr().port(), a_port);
        assert!(!other.reused);
        assert_eq!(pool.spare_count(), 1);
        let again = pool.allocate_at(t0 + 2 * SPARE_QUARANTINE).unwrap();
        assert_eq!(again.addr().port(), a_port);
        assert!(again.reused);
        assert!(nothing_to_read(&again.rtp));

        // A phone that streams on into the pair through both waits: it is closed.
        let t1 = t0 + 3 * SPARE_QUARANTINE;
        let again_port = give_back(&pool, again, t1);
        assert_eq!(again_port, a_port);
        phone.send_to(b"rtp", a_rtp).unwrap();
        let fresh = pool.allocate_at(t1 + SPARE_QUARANTINE).unwrap();
        assert!(!fresh.reused);
        phone.send_to(b"rtp", a_rtp).unwrap();
        let fresh2 = pool.allocate_at(t1 + 2 * SPARE_QUARANTINE).unwrap();
        assert!(!fresh2.reused);
        assert_eq!(pool.spare_count(), 0);
        assert_eq!(pool.streamed_on.load(Ordering::Relaxed), 1);
        assert_eq!(pool.reused.load(Ordering::Relaxed), 1);
        drop((other, fresh, fresh2));
    }

    #[test]
    fn a_full_range_takes_a_waiting_spare_and_spares_are_bounded_and_closed_when_idle() {
        let base = free_block_of_8();
        // Four pairs: two spares at most.
        let pool = PortPool::new("127.0.0.1".parse().unwrap(), base, base + 7);
        let t0 = Instant::now();
        let held: Vec<RtpPort> = (0..4).map(|_| pool.allocate_at(t0).unwrap()).collect();
        let mut held = held.into_iter();
        let a = give_back(&pool, held.next().unwrap(), t0);
        let b = give_back(&pool, held.next().unwrap(), t0);
        // A third spare is over the bound: closed, its port free again.
        let c = give_back(&pool, held.next().unwrap(), t0);
        assert_eq!(pool.spare_count(), 2);
        let d = held.next().unwrap();

        let soon = t0 + Duration::from_millis(1);
        let fresh = pool.allocate_at(soon).unwrap();
        assert_eq!(fresh.addr().port(), c);
        assert!(!fresh.reused);
        // Every port is held now: the oldest spare is taken before its wait is over,
        // rather than refusing the call.
        let early = pool.allocate_at(soon).unwrap();
        assert_eq!(early.addr().port(), a);
        assert!(early.reused);
        assert_eq!(pool.spare_count(), 1);
        // A spare nobody took for a minute is closed (by the poller in quiet hours, or by
        // the next allocation): its port is bound afresh.
        pool.close_idle_at(t0 + SPARE_IDLE - Duration::from_millis(1));
        assert_eq!(pool.spare_count(), 1);
        pool.close_idle_at(t0 + SPARE_IDLE);
        assert_eq!(pool.spare_count(), 0);
        let later = pool.allocate_at(t0 + SPARE_IDLE).unwrap();
        assert_eq!(later.addr().port(), b);
        assert!(!later.reused);
        drop((d, fresh, early, later));
    }
}
