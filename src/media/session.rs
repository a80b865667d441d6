//! Calls' media, driven by one shared 20 ms clock.
//!
//! A media *driver* is one task on the media runtime (one per worker thread) that owns many
//! calls' sessions. Every 20 ms it wakes once and, for each session in turn: applies the
//! actor's queued [`MediaCommand`]s, drains the session's readable RTP sockets (`recvmmsg`,
//! kernel arrival timestamps for the RFC 3550 jitter), and sends what each leg should
//! hear. Before the bridge the caller hears prompts or hold music; after it, caller and
//! operator hear each other (decoded, mixed where a supervisor joins, re-encoded in each
//! leg's codec), and the recorder gets both sides. A leg whose phone has sent nothing for
//! five seconds (or never) is not relayed: the other side gets no packets rather than a
//! made-up stream of silence, as a PBX's two-party bridge does.
//!
//! Why one clock instead of a task and a timer per call: at 300 calls the per-call timers,
//! socket readiness wake-ups and task polls cost more than the audio work itself
//! (`BENCHMARKS.md`, "Media"). Sockets are not registered with the reactor at all; a
//! datagram waits in the kernel's receive buffer (sized by [`RTP_RECV_BUFFER`]) until the
//! next tick, which is when it would have been played out anyway. Each leg's RTP socket
//! and RTCP socket (RTP port + 1, [`super::rtcp`]) are in one epoll set per driver, asked
//! once per tick without waiting; only the sockets it reports readable are read, and each
//! leg's RTCP report is sent from the tick when due. An RTP socket with a phone talking
//! into it leaves the set and is read at every tick (it would be readable at every tick),
//! and goes back when the phone has been quiet for [`HOT_IDLE_TICKS`].
//!
//! The call's actor steers its session with [`MediaCommand`]s over a bounded channel
//! ([`MediaHandle`]); the session reports [`MediaEvent`]s back through an actix
//! `Recipient`. The clock is an interval on an absolute schedule, so there is no drift;
//! each leg has one outgoing [`OutStream`], so sequence numbers and timestamps stay
//! continuous across prompts, silences and the switch to the bridge. Counters are summed
//! per tick and published once per tick ([`MediaCounters`]), never per packet.

use super::dtmf::DtmfDetector;
use super::prompts::Clip;
use super::recorder::{Recording, FRAME};
use super::rtcp::{self as rtcp_mod, RtcpLeg};
use super::rtp::{self, OutStream, RecvStats};
use super::{Codec, MediaCounters, PortPool, RtpPort, PAYLOAD_CLASSES};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{
    self as nsock, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage,
};
use std::collections::VecDeque;
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::{self, error::TryRecvError};

/// The media clock: one packet per leg every 20 ms (160 samples at 8 kHz).
pub const TICK: Duration = Duration::from_millis(20);
/// Kernel receive buffer asked for on every RTP socket: a driver stalled by a loaded
/// machine finds up to a few seconds of a leg's packets still there.
pub const RTP_RECV_BUFFER: usize = 256 * 1024;
/// Datagrams one `recvmmsg` call may return.
const RECV_BATCH: usize = 8;
/// `recvmmsg` calls per socket per tick at most (a stalled driver catching up).
const MAX_RECV_ROUNDS: usize = 16;
/// Largest datagram read whole; longer ones are truncated (and then not valid RTP).
const DATAGRAM: usize = 2048;
/// Ticks between two jitter samples of a leg (one second).
const JITTER_EVERY: u32 = 50;
/// New sessions a driver may have waiting for adoption.
const ADOPT_QUEUE: usize = 1024;
/// Readiness events the poller's buffer holds at least (it grows with the driver's legs,
/// two sockets each, so that one query reports every readable socket).
const MIN_EVENTS: usize = 256;
/// Ticks after a leg's last packet (5 s) until the other side stops hearing it: a bridge
/// relays what a phone sends (silence included, comfort noise and key presses keep it
/// going) and makes up no stream for a leg that sends nothing, as a PBX's two-party bridge
/// does; the RTP timestamps run on meanwhile, and the next packet starts a talk spurt.
const SOURCE_IDLE_TICKS: u32 = 250;

/// Inbound audio kept per leg before it is played out (200 ms); older samples are dropped.
const MAX_BUFFERED: usize = FRAME * 10;
/// Frames the bridge waits for before it starts playing a leg's audio (jitter absorption).
const PREFILL: usize = FRAME * 2;

/// One leg's media parameters, from SDP offer/answer.
#[derive(Debug)]
pub struct LegSpec {
    /// Our sockets for the leg.
    pub port: RtpPort,
    /// Where the SDP says to send (replaced by where packets come from: symmetric RTP).
    pub remote: Option<SocketAddr>,
    /// The negotiated codec.
    pub codec: Codec,
    /// The telephone-event payload type, when negotiated.
    pub telephone_event: Option<u8>,
}

// Declared with the events (a supervisor's join is one); the media code names it here.
pub use crate::events::MonitorMode;

/// Which side of a bridged call put it on hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldBy {
    /// The caller holds: the operator hears the music.
    Caller,
    /// The operator holds: the caller hears the music.
    Operator,
}

/// Commands from the call's actor.
#[derive(Debug)]
pub enum MediaCommand {
    /// Queue clips to play to the caller; [`MediaEvent::Played`] with `id` after the last.
    Play {
        /// The audio, in order.
        clips: Vec<Clip>,
        /// Reported back when done.
        id: u64,
    },
    /// Drop queued and playing prompts (barge-in by a key press).
    StopPrompts,
    /// Loop this clip whenever no prompt plays (`None`: silence).
    Music(Option<Clip>),
    /// Join the operator's leg: caller and operator hear each other.
    Bridge {
        /// The operator's leg.
        operator: LegSpec,
        /// Record the conversation here.
        recording: Option<Recording>,
    },
    /// Drop the operator's leg (an answer the router refused): back to prompts and music.
    Unbridge,
    /// Add a supervisor's leg.
    Monitor {
        /// The supervisor's leg.
        leg: LegSpec,
        /// What they do.
        mode: MonitorMode,
    },
    /// Change what the supervisor does.
    SetMonitorMode(MonitorMode),
    /// Drop the supervisor's leg.
    EndMonitor,
    /// A leg's offer/answer was redone (re-INVITE or UPDATE with SDP): from now on send it
    /// this codec (a new talk spurt: marker bit) and telephone-event type, and to `remote`
    /// until its packets show where it really is (symmetric RTP).
    Renegotiate {
        /// Whose leg: the caller's or the operator's.
        side: HoldBy,
        /// The codec now agreed.
        codec: Codec,
        /// The peer's telephone-event payload type, if any.
        telephone_event: Option<u8>,
        /// The address in the new SDP, if usable.
        remote: Option<SocketAddr>,
    },
    /// One side of the bridge put the call on hold (re-INVITE `sendonly`/`inactive`): the
    /// other side hears this music instead of silence, nothing is sent to the holder, and
    /// the recording goes on. `music: None` resumes the bridge.
    Hold {
        /// Who holds.
        by: HoldBy,
        /// What the held party hears; `None`: off hold.
        music: Option<Clip>,
    },
    /// End the session (also when the handle is dropped).
    Stop,
}

/// Per-leg figures reported at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegReport {
    /// Packets received.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
    /// Packets lost on the way in.
    pub lost: u64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
}

/// Events for the call's actor.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// Everything queued up to and including `Play { id }` has been played; `idle`: nothing
    /// more is queued.
    Played {
        /// The `id` of the Play command.
        id: u64,
        /// No prompt left.
        idle: bool,
    },
    /// An RFC 4733 key press from the caller.
    Dtmf {
        /// 0-9, *, #, A-D.
        digit: char,
    },
    /// The session ended.
    Ended {
        /// The caller's leg.
        caller: LegReport,
        /// The operator's leg, if bridged.
        operator: Option<LegReport>,
    },
}

/// A [`MediaEvent`] as an actix message.
#[derive(Debug, Clone, actix::Message)]
#[rtype(result = "()")]
pub struct MediaMsg(pub MediaEvent);

/// The actor's end of a session. Dropping it ends the session.
#[derive(Debug, Clone)]
pub struct MediaHandle {
    tx: mpsc::Sender<MediaCommand>,
    counters: Arc<MediaCounters>,
}

impl MediaHandle {
    /// Sends a command without waiting; a full mailbox sheds it (counted). The session
    /// applies it at its next tick (within 20 ms).
    pub fn send(&self, cmd: MediaCommand) {
        if self.tx.try_send(cmd).is_err() {
            self.counters.commands_shed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Capacity of a session's command mailbox.
pub const MAILBOX: usize = 64;

/// The drivers of an engine: where new sessions go (round robin).
pub(super) struct Drivers {
    queues: Vec<mpsc::Sender<Session>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Drivers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drivers")
            .field("drivers", &self.queues.len())
            .finish()
    }
}

impl Drivers {
    /// Starts `n` drivers on `rt`.
    pub(super) fn start(rt: &tokio::runtime::Handle, n: usize, c: &Arc<MediaCounters>) -> Drivers {
        let queues = (0..n.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(ADOPT_QUEUE);
                rt.spawn(drive(rx, c.clone()));
                tx
            })
            .collect();
        Drivers {
            queues,
            next: AtomicUsize::new(0),
        }
    }

    /// Starts a session with the caller's leg on the next driver.
    pub(super) fn start_session(
        &self,
        caller: LegSpec,
        to: actix::Recipient<MediaMsg>,
        counters: Arc<MediaCounters>,
    ) -> MediaHandle {
        let (tx, rx) = mpsc::channel(MAILBOX);
        let handle = MediaHandle {
            tx,
            counters: counters.clone(),
        };
        let caller = match Leg::new(caller) {
            Ok(leg) => leg,
            Err(e) => {
                // The handle's commands are shed (counted): the call goes on without audio.
                tracing::warn!(error = %e, "media session could not start");
                return handle;
            }
        };
        let session = Session {
            rx,
            to,
            caller,
            operator: None,
            supervisor: None,
            recording: None,
            player: Player {
                queue: VecDeque::new(),
                pos: 0,
                music: None,
                music_pos: 0,
            },
            hold: None,
            finished: Vec::new(),
            ticks: 0,
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        counters.sessions.fetch_add(1, Ordering::Relaxed);
        if self.queues[i].try_send(session).is_err() {
            counters.sessions.fetch_sub(1, Ordering::Relaxed);
            counters.commands_shed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("media driver overloaded: session not started");
        }
        handle
    }
}

/// One driver: adopts new sessions and runs every session's tick on one shared clock.
async fn drive(mut incoming: mpsc::Receiver<Session>, c: Arc<MediaCounters>) {
    let mut sessions: Vec<Session> = Vec::new();
    let mut tick = tokio::time::interval(TICK);
    // After a stall the late ticks run back to back, so what each phone receives keeps
    // pace with the wall clock (the RTP timestamps advance 160 per tick either way).
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut work = Work::default();
    loop {
        if sessions.is_empty() {
            // Idle: no clock until a call needs one.
            match incoming.recv().await {
                Some(s) => sessions.push(s),
                None => break,
            }
            tick.reset_immediately();
        }
        tick.tick().await;
        while let Ok(s) = incoming.try_recv() {
            sessions.push(s);
        }
        run_tick(&mut sessions, &mut work, &c);
    }
}

/// What a tick reuses: buffers and the counters it publishes at its end.
struct Work {
    bufs: Box<[[u8; DATAGRAM]; RECV_BATCH]>,
    out: Vec<u8>,
    digits: Vec<char>,
    tally: Tally,
    /// Readiness of the driver's RTP and RTCP sockets (`None`: could not be created; then
    /// each socket is read at every tick).
    epoll: Option<Epoll>,
    events: Vec<EpollEvent>,
    ready: FdSet,
}

/// Descriptors the poller reported readable at the start of a tick: one bit each, so a leg
/// asks in constant time however many sockets are ready.
#[derive(Default)]
struct FdSet {
    words: Vec<u64>,
}

impl FdSet {
    fn insert(&mut self, fd: u64) {
        let (w, bit) = ((fd / 64) as usize, fd % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << bit;
    }

    fn contains(&self, fd: u64) -> bool {
        self.words
            .get((fd / 64) as usize)
            .is_some_and(|w| w & (1 << (fd % 64)) != 0)
    }

    /// Empties the set, touching only the words these descriptors are in.
    fn remove_all(&mut self, fds: impl Iterator<Item = u64>) {
        for fd in fds {
            if let Some(w) = self.words.get_mut((fd / 64) as usize) {
                *w = 0;
            }
        }
    }
}

impl Default for Work {
    fn default() -> Work {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .inspect_err(|e| tracing::warn!(error = %e, "no RTCP poller: RTCP read every tick"))
            .ok();
        Work {
            bufs: Box::new([[0u8; DATAGRAM]; RECV_BATCH]),
            out: Vec::with_capacity(FRAME + rtp::HEADER_LEN),
            digits: Vec::new(),
            tally: Tally::default(),
            epoll,
            events: vec![EpollEvent::empty(); MIN_EVENTS],
            ready: FdSet::default(),
        }
    }
}

/// Counts of one tick over all of a driver's sessions, added to [`MediaCounters`] at the
/// end of the tick (one atomic add per counter per tick, not per packet).
#[derive(Default)]
struct Tally {
    received: [u64; PAYLOAD_CLASSES],
    malformed: u64,
    /// RTP from a source that is not the leg's ([`Latch`]).
    foreign: u64,
    sent: [u64; 2],
    lost: [u64; 2],
    send_dropped: u64,
    send_errors: u64,
    samples_dropped: u64,
    ticks: u64,
    frames_bridged: u64,
    dtmf_events: u64,
    rtcp_in: u64,
    rtcp_out: u64,
    rtcp_malformed: u64,
    jitter: Vec<(Codec, f64)>,
}

impl Tally {
    fn publish(&mut self, c: &MediaCounters) {
        fn add(a: &std::sync::atomic::AtomicU64, n: u64) {
            if n > 0 {
                a.fetch_add(n, Ordering::Relaxed);
            }
        }
        let received: u64 = self.received.iter().sum();
        add(&c.packets_in, received + self.malformed + self.foreign);
        add(&c.packets_out, self.sent.iter().sum());
        for (a, n) in c.received_by_payload.iter().zip(self.received) {
            add(a, n);
        }
        for (a, n) in c.sent_by_codec.iter().zip(self.sent) {
            add(a, n);
        }
        for (a, n) in c.lost_by_codec.iter().zip(self.lost) {
            add(a, n);
        }
        add(&c.packets_lost, self.lost.iter().sum());
        add(&c.malformed, self.malformed);
        add(&c.foreign, self.foreign);
        add(&c.send_dropped, self.send_dropped);
        add(&c.send_errors, self.send_errors);
        add(&c.samples_dropped, self.samples_dropped);
        add(&c.ticks, self.ticks);
        add(&c.frames_bridged, self.frames_bridged);
        add(&c.dtmf_events, self.dtmf_events);
        add(&c.rtcp_in, self.rtcp_in);
        add(&c.rtcp_out, self.rtcp_out);
        add(&c.rtcp_malformed, self.rtcp_malformed);
        if !self.jitter.is_empty() {
            c.add_jitter_samples(&mut self.jitter);
        }
        let jitter = std::mem::take(&mut self.jitter);
        *self = Tally::default();
        self.jitter = jitter;
    }
}

/// One tick of every session of a driver; ended sessions are reported and dropped.
fn run_tick(sessions: &mut Vec<Session>, work: &mut Work, c: &MediaCounters) {
    // recvmmsg's headers hold raw pointers (not `Send`), so they live for one tick only.
    // The kernel shortens each header's address length to what it wrote; every RTP socket
    // is bound to the one configured media address, so all sockets share a family and the
    // length stays right for all of them.
    let mut headers: MultiHeaders<SockaddrStorage> =
        MultiHeaders::preallocate(RECV_BATCH, Some(nix::cmsg_space!(nix::sys::time::TimeSpec)));
    // Arrival time for a datagram without a kernel timestamp, on the same (realtime) clock.
    let wall = SystemTime::now();
    let since_epoch = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let fallback = samples_8k(since_epoch.as_secs(), u64::from(since_epoch.subsec_nanos()));
    // One readiness query for all of the driver's sockets (level-triggered, no wait): RTCP
    // comes every few seconds per leg, and a phone that is ringing, on hold or silent with
    // DTX sends no RTP, so reading every socket at every tick would be a wasted system call
    // per idle socket per tick. The buffer holds an event for every socket the driver has.
    let sockets = sessions.iter().map(Session::sockets).sum::<usize>();
    if work.events.len() < sockets {
        work.events
            .resize(sockets.next_power_of_two(), EpollEvent::empty());
    }
    let mut polled = 0;
    if let Some(ep) = work.epoll.as_ref() {
        if let Ok(n) = ep.wait(&mut work.events, EpollTimeout::ZERO) {
            polled = n;
            for e in &work.events[..n] {
                work.ready.insert(e.data());
            }
        }
    }
    let mut rx = Receiver {
        headers: &mut headers,
        bufs: &mut work.bufs,
        fallback,
        epoll: work.epoll.as_ref(),
        ready: &work.ready,
        now: Instant::now(),
        wall,
    };
    let mut i = 0;
    while i < sessions.len() {
        if sessions[i].on_tick(&mut rx, &mut work.out, &mut work.digits, &mut work.tally) {
            i += 1;
        } else {
            sessions.swap_remove(i).finish(&mut work.tally, c, rx.epoll);
        }
    }
    work.tally.publish(c);
    work.ready
        .remove_all(work.events[..polled].iter().map(EpollEvent::data));
}

/// Arrival time in 8 kHz sample units (wrapping), the RTP timestamp clock of G.711.
fn samples_8k(secs: u64, nanos: u64) -> u32 {
    secs.wrapping_mul(8000).wrapping_add(nanos / 125_000) as u32
}

/// A tick's receive buffers, clocks and RTCP readiness.
struct Receiver<'a> {
    headers: &'a mut MultiHeaders<SockaddrStorage>,
    bufs: &'a mut [[u8; DATAGRAM]; RECV_BATCH],
    fallback: u32,
    /// The driver's poller, if it could be created.
    epoll: Option<&'a Epoll>,
    /// Sockets (by descriptor) the poller found readable at the start of the tick.
    ready: &'a FdSet,
    /// The tick's time, for RTCP report scheduling and delays since the peer's last SR.
    now: Instant,
    /// The tick's wall-clock time, for SR NTP timestamps.
    wall: SystemTime,
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Where a leg sends its RTP and whose packets it takes: symmetric RTP (RFC 4961) for phones
/// behind NAT, held to one stream. The first packet latches the leg to its source and SSRC.
/// A packet from another address is taken (and the leg moves to it) only when it is the
/// same stream (the latched SSRC: the phone's NAT binding moved), comes from the address
/// the SDP gave, comes after the latched source has been quiet for [`SOURCE_IDLE_TICKS`],
/// or is the first after a new offer or answer (the phone may restart its stream). Anything
/// else is someone else's packet: dropped and counted, never heard and never answered.
#[derive(Debug, Clone)]
struct Latch {
    /// Where the leg's packets go.
    remote: Option<SocketAddr>,
    /// The address the leg's SDP gave last.
    signalled: Option<SocketAddr>,
    /// The stream the leg is latched to (None: not yet, or learning again).
    ssrc: Option<u32>,
}

impl Latch {
    fn new(signalled: Option<SocketAddr>) -> Latch {
        Latch {
            remote: signalled,
            signalled,
            ssrc: None,
        }
    }

    /// Whether a packet from `from` carrying `ssrc` is the leg's; `quiet`: the latched
    /// source has sent nothing for [`SOURCE_IDLE_TICKS`].
    fn admit(&mut self, from: SocketAddr, ssrc: u32, quiet: bool) -> bool {
        let ours = match self.ssrc {
            None => true,
            Some(_) if self.remote == Some(from) => true,
            Some(latched) => latched == ssrc || self.signalled == Some(from) || quiet,
        };
        if ours {
            self.remote = Some(from);
            self.ssrc = Some(ssrc);
        }
        ours
    }

    /// A new offer or answer gave `remote` (if it gave an address). A new address moves the
    /// leg there until packets come (then it latches again); the same one repeated (a hold or
    /// resume from a phone behind NAT) keeps the address packets come from. Either way the
    /// next packet may start a new stream from a new source.
    fn renegotiate(&mut self, remote: Option<SocketAddr>) {
        if remote.is_some() && remote != self.signalled {
            self.signalled = remote;
            self.remote = remote;
        }
        self.ssrc = None;
    }
}

struct Leg {
    sock: UdpSocket,
    rtp_poll: Poll,
    rtcp: Option<RtcpLeg>,
    rtcp_poll: Poll,
    /// Where the leg's RTP goes, and which packets are the leg's.
    latch: Latch,
    codec: Codec,
    telephone_event: Option<u8>,
    out: OutStream,
    stats: RecvStats,
    inbound: VecDeque<i16>,
    primed: bool,
    dtmf: DtmfDetector,
    /// Losses already added to the counters.
    lost_reported: u64,
    /// Ticks since the leg's last packet ([`SOURCE_IDLE_TICKS`] and more: it is not heard).
    quiet_ticks: u32,
    /// Where the sockets go when the leg ends (to be handed to another call).
    home: Option<Arc<PortPool>>,
}

/// Whether a socket of a leg is in its driver's poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    /// Not yet (the leg's first tick adds it, and reads it).
    New,
    /// Read when the poller says it is readable.
    Polled,
    /// An RTP socket with a phone talking into it: out of the poller and read at every
    /// tick, as it would be reported readable at every tick anyway (the poller costs about
    /// as much per ready socket as the read); `idle` ticks in a row found nothing.
    Hot { idle: u32 },
    /// No poller: read at every tick.
    EveryTick,
}

/// Ticks in a row without a packet after which a hot RTP socket goes back to the poller.
const HOT_IDLE_TICKS: u32 = 10;

impl Poll {
    /// Takes `sock` out of the poller; `false` when it is still in it (then it must be
    /// closed, not handed to another call, which may run on another driver).
    fn leave(self, sock: &UdpSocket, ep: Option<&Epoll>) -> bool {
        match self {
            Poll::Polled => ep.is_some_and(|ep| ep.delete(sock).is_ok()),
            Poll::New | Poll::Hot { .. } | Poll::EveryTick => true,
        }
    }

    /// Whether `sock` is to be read at this tick; a new socket joins the poller first.
    fn due(&mut self, sock: &UdpSocket, rx: &Receiver<'_>) -> bool {
        let fd = sock.as_raw_fd() as u64;
        match *self {
            Poll::Polled => rx.ready.contains(fd),
            Poll::Hot { .. } | Poll::EveryTick => true,
            Poll::New => {
                let added = rx.epoll.is_some_and(|ep| {
                    ep.add(sock, EpollEvent::new(EpollFlags::EPOLLIN, fd))
                        .is_ok()
                });
                // Without a poller the socket is simply read at every tick.
                *self = if added { Poll::Polled } else { Poll::EveryTick };
                true
            }
        }
    }

    /// After an RTP socket was read (`got` datagrams): a polled socket that had packets
    /// leaves the poller (a phone talks: every tick will have some), a hot one that had none
    /// for [`HOT_IDLE_TICKS`] goes back to it (the phone went quiet).
    fn settle(&mut self, sock: &UdpSocket, rx: &Receiver<'_>, got: usize) {
        let Some(ep) = rx.epoll else {
            return;
        };
        match *self {
            Poll::Polled if got > 0 && ep.delete(sock).is_ok() => *self = Poll::Hot { idle: 0 },
            Poll::Hot { .. } if got > 0 => *self = Poll::Hot { idle: 0 },
            Poll::Hot { idle } if idle + 1 < HOT_IDLE_TICKS => *self = Poll::Hot { idle: idle + 1 },
            Poll::Hot { .. } => {
                let fd = sock.as_raw_fd() as u64;
                *self = match ep.add(sock, EpollEvent::new(EpollFlags::EPOLLIN, fd)) {
                    Ok(()) => Poll::Polled,
                    Err(_) => Poll::EveryTick,
                };
            }
            _ => {}
        }
    }
}

impl Leg {
    /// Ends the leg: its counters are added, an RTCP BYE goes out, and its sockets go back
    /// to their pool out of this driver's poller (or are closed).
    fn retire(mut self, tally: &mut Tally, ep: Option<&Epoll>) {
        self.account(tally, false);
        self.rtcp_bye(tally);
        let Some(home) = self.home.take() else {
            return;
        };
        if !self.rtp_poll.leave(&self.sock, ep) {
            return;
        }
        let rtcp = match self.rtcp.take() {
            Some(r) if self.rtcp_poll.leave(r.socket(), ep) => Some(r.into_socket()),
            Some(_) => return,
            None => None,
        };
        home.give_back(self.sock, rtcp);
    }

    fn new(spec: LegSpec) -> std::io::Result<Leg> {
        let RtpPort {
            rtp,
            rtcp,
            home,
            reused,
        } = spec.port;
        // A finished call's sockets were made ready when they were new.
        if !reused {
            rtp.set_nonblocking(true)?;
            let sock = socket2::SockRef::from(&rtp);
            // Best effort: without them the leg still works (coarser jitter, smaller buffer).
            let _ = sock.set_recv_buffer_size(RTP_RECV_BUFFER);
            let _ = nsock::setsockopt(&rtp, nsock::sockopt::ReceiveTimestampns, &true);
        }
        Ok(Leg {
            home,
            sock: rtp,
            rtp_poll: Poll::New,
            rtcp: rtcp.and_then(|s| RtcpLeg::new(s, Instant::now()).ok()),
            rtcp_poll: Poll::New,
            latch: Latch::new(spec.remote),
            codec: spec.codec,
            telephone_event: spec.telephone_event,
            out: OutStream::new(rand::random(), rand::random(), rand::random()),
            stats: RecvStats::default(),
            inbound: VecDeque::with_capacity(MAX_BUFFERED + FRAME),
            primed: false,
            dtmf: DtmfDetector::default(),
            lost_reported: 0,
            quiet_ticks: SOURCE_IDLE_TICKS,
        })
    }

    /// Reads every datagram waiting on the RTP socket (key presses go to `digits`), then
    /// what waits on the RTCP socket.
    fn receive(&mut self, rx: &mut Receiver<'_>, tally: &mut Tally, digits: &mut Vec<char>) {
        self.receive_rtp(rx, tally, digits);
        self.rtcp_receive(rx, tally);
    }

    /// Reads every datagram waiting on the RTP socket; key presses go to `digits`.
    fn receive_rtp(&mut self, rx: &mut Receiver<'_>, tally: &mut Tally, digits: &mut Vec<char>) {
        self.quiet_ticks = self.quiet_ticks.saturating_add(1);
        if !self.rtp_poll.due(&self.sock, rx) {
            return;
        }
        let fd = self.sock.as_raw_fd();
        let mut total = 0;
        for _ in 0..MAX_RECV_ROUNDS {
            let mut iovs = rx.bufs.each_mut().map(|b| [IoSliceMut::new(b)]);
            let got = match nsock::recvmmsg(
                fd,
                rx.headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) {
                Ok(results) => {
                    let mut n = 0;
                    for msg in results {
                        n += 1;
                        let arrival = msg
                            .cmsgs()
                            .ok()
                            .and_then(|mut it| {
                                it.find_map(|m| match m {
                                    ControlMessageOwned::ScmTimestampns(ts) => {
                                        Some(samples_8k(ts.tv_sec() as u64, ts.tv_nsec() as u64))
                                    }
                                    _ => None,
                                })
                            })
                            .unwrap_or(rx.fallback);
                        let Some(from) = msg.address.as_ref().and_then(std_addr) else {
                            continue;
                        };
                        let data = msg.iovs().next().unwrap_or(&[]);
                        if let Some(d) = self.on_datagram(data, from, arrival, tally) {
                            digits.push(d);
                        }
                    }
                    n
                }
                Err(Errno::EINTR) => continue,
                // EAGAIN: drained. Anything else (an ICMP error queued on the socket) is
                // not fatal; the next tick reads again.
                Err(_) => break,
            };
            total += got;
            if got < RECV_BATCH {
                break;
            }
        }
        self.rtp_poll.settle(&self.sock, rx, total);
    }

    /// Takes one received datagram; returns a key press if it carried one.
    fn on_datagram(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        arrival: u32,
        tally: &mut Tally,
    ) -> Option<char> {
        let Ok((h, payload)) = rtp::parse(data) else {
            self.stats.on_malformed();
            tally.malformed += 1;
            return None;
        };
        // Symmetric RTP (RFC 4961), held to the call's own stream: a packet from elsewhere
        // is neither heard nor answered (RTP sprayed at the port range cannot take the
        // call's audio or speak into it).
        if !self
            .latch
            .admit(from, h.ssrc, self.quiet_ticks >= SOURCE_IDLE_TICKS)
        {
            tally.foreign += 1;
            return None;
        }
        self.quiet_ticks = 0;
        self.stats.on_packet(&h, payload.len(), arrival);
        if Some(h.payload_type) == self.telephone_event {
            tally.received[super::PAYLOAD_TELEPHONE_EVENT] += 1;
            return self.dtmf.on_packet(h.ssrc, h.timestamp, payload);
        }
        let Some(codec) = Codec::from_payload_type(h.payload_type) else {
            tally.received[super::PAYLOAD_OTHER] += 1;
            return None; // comfort noise and others: ignored
        };
        tally.received[codec.index()] += 1;
        // Decoded on the stack, then copied into the ring a piece at a time (20 ms is 160
        // samples; longer packetisations take more pieces).
        let mut decoded = [0i16; 2 * FRAME];
        for piece in payload.chunks(decoded.len()) {
            let n = codec.law().decode_to(piece, &mut decoded);
            self.inbound.extend(&decoded[..n]);
        }
        let excess = self.inbound.len().saturating_sub(MAX_BUFFERED);
        if excess > 0 {
            self.inbound.drain(..excess);
            tally.samples_dropped += excess as u64;
        }
        None
    }

    /// Whether the leg's phone sent a packet in the last [`SOURCE_IDLE_TICKS`].
    fn heard(&self) -> bool {
        self.quiet_ticks < SOURCE_IDLE_TICKS
    }

    /// The next 20 ms of what this leg said (silence when nothing is buffered).
    fn pop_frame(&mut self, frame: &mut [i16; FRAME]) -> bool {
        if !self.primed {
            if self.inbound.len() < PREFILL {
                frame.fill(0);
                return false;
            }
            self.primed = true;
        }
        if self.inbound.len() < FRAME {
            // Underrun: play what is there, then silence, and wait for a new prefill.
            let n = self.inbound.len();
            for (i, s) in self.inbound.drain(..).enumerate() {
                frame[i] = s;
            }
            frame[n..].fill(0);
            self.primed = false;
            return n > 0;
        }
        let (front, back) = self.inbound.as_slices();
        let split = front.len().min(FRAME);
        frame[..split].copy_from_slice(&front[..split]);
        frame[split..].copy_from_slice(&back[..FRAME - split]);
        self.inbound.drain(..FRAME);
        true
    }

    /// Sends 20 ms of `samples`, or lets the tick pass silently with `None`.
    fn send(&mut self, samples: Option<&[i16]>, buf: &mut Vec<u8>, tally: &mut Tally) {
        let (Some(remote), Some(samples)) = (self.latch.remote, samples) else {
            self.out.skip(FRAME as u32);
            return;
        };
        buf.clear();
        let h = self.out.next(self.codec.payload_type(), FRAME as u32);
        rtp::write_header(&h, buf);
        self.codec.law().encode_into(samples, buf);
        match self.sock.send_to(buf, remote) {
            Ok(_) => tally.sent[self.codec.index()] += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => tally.send_dropped += 1,
            // ICMP unreachable from a peer that went away: counted, not fatal.
            Err(_) => tally.send_errors += 1,
        }
    }

    /// Adds losses seen since the last call to the tally (the counter never goes back
    /// when a late packet fills a gap).
    fn account(&mut self, tally: &mut Tally, sample_jitter: bool) {
        let lost = self.stats.lost();
        if lost > self.lost_reported {
            tally.lost[self.codec.index()] += lost - self.lost_reported;
            self.lost_reported = lost;
        }
        if sample_jitter && self.stats.packets > 0 {
            tally
                .jitter
                .push((self.codec, self.stats.jitter_ms() / 1000.0));
        }
    }

    /// Reads the leg's RTCP socket when the driver's poller saw it readable (the first
    /// tick of a leg adds the socket to the poller).
    fn rtcp_receive(&mut self, rx: &mut Receiver<'_>, tally: &mut Tally) {
        let Some(r) = self.rtcp.as_mut() else {
            return;
        };
        if self.rtcp_poll.due(r.socket(), rx) {
            let d = r.drain(&mut rx.bufs[0], rx.now);
            tally.rtcp_in += d.valid;
            tally.rtcp_malformed += d.malformed;
        }
    }

    /// New offer/answer parameters for this leg.
    fn renegotiate(&mut self, codec: Codec, te: Option<u8>, remote: Option<SocketAddr>) {
        if codec != self.codec {
            self.codec = codec;
            self.out.mark();
        }
        self.telephone_event = te;
        self.latch.renegotiate(remote);
    }

    /// What RTCP reports say about this leg.
    fn rtcp_view(&self) -> rtcp_mod::LegView {
        rtcp_mod::LegView {
            ssrc: self.out.ssrc(),
            sent_packets: self.out.packets,
            sent_octets: self.out.packets * FRAME as u64,
            rtp_timestamp: self.out.timestamp(),
            source: self.stats.source(),
            received: self.stats.packets,
            lost: self.stats.lost(),
            jitter: self.stats.jitter_units(),
            rtp_remote: self.latch.remote,
        }
    }

    /// The leg ends: a last RTCP report with a BYE (RFC 3550 §6.6).
    fn rtcp_bye(&mut self, tally: &mut Tally) {
        let view = self.rtcp_view();
        let Some(r) = self.rtcp.as_mut() else {
            return;
        };
        match r.bye(Instant::now(), SystemTime::now(), &view) {
            rtcp_mod::Sent::Nothing => {}
            rtcp_mod::Sent::Report => tally.rtcp_out += 1,
            rtcp_mod::Sent::Failed => tally.send_errors += 1,
        }
    }

    /// Sends this leg's RTCP report when one is due.
    fn rtcp_tick(&mut self, rx: &Receiver<'_>, tally: &mut Tally) {
        let view = self.rtcp_view();
        let Some(r) = self.rtcp.as_mut() else {
            return;
        };
        match r.tick(rx.now, rx.wall, &view) {
            rtcp_mod::Sent::Nothing => {}
            rtcp_mod::Sent::Report => tally.rtcp_out += 1,
            rtcp_mod::Sent::Failed => tally.send_errors += 1,
        }
    }

    fn report(&self) -> LegReport {
        LegReport {
            received: self.stats.packets,
            sent: self.out.packets,
            lost: self.stats.lost(),
            jitter_ms: self.stats.jitter_ms(),
        }
    }
}

/// One call's media state, owned by a driver.
struct Session {
    rx: mpsc::Receiver<MediaCommand>,
    to: actix::Recipient<MediaMsg>,
    caller: Leg,
    operator: Option<Leg>,
    supervisor: Option<(Leg, MonitorMode)>,
    recording: Option<Recording>,
    player: Player,
    /// On hold: who holds, the music the held party hears, and where in it.
    hold: Option<(HoldBy, Clip, usize)>,
    finished: Vec<(u64, bool)>,
    ticks: u32,
}

impl Session {
    /// One 20 ms step; `false` when the session has ended.
    fn on_tick(
        &mut self,
        rx: &mut Receiver<'_>,
        out: &mut Vec<u8>,
        digits: &mut Vec<char>,
        tally: &mut Tally,
    ) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(MediaCommand::Stop) | Err(TryRecvError::Disconnected) => return false,
                Ok(cmd) => self.apply(cmd, tally, rx.epoll),
                Err(TryRecvError::Empty) => break,
            }
        }
        tally.ticks += 1;
        self.caller.receive(rx, tally, digits);
        for digit in digits.drain(..) {
            tally.dtmf_events += 1;
            self.to.do_send(MediaMsg(MediaEvent::Dtmf { digit }));
        }
        // Key presses of the operator and supervisor legs are not acted on.
        if let Some(op) = self.operator.as_mut() {
            op.receive(rx, tally, digits);
        }
        if let Some((s, _)) = self.supervisor.as_mut() {
            s.receive(rx, tally, digits);
        }
        digits.clear();

        let mut from_caller = [0i16; FRAME];
        let mut from_op = [0i16; FRAME];
        let mut from_sup = [0i16; FRAME];
        let mut mixed = [0i16; FRAME];
        if let Some(op) = self.operator.as_mut() {
            let caller = &mut self.caller;
            caller.pop_frame(&mut from_caller);
            op.pop_frame(&mut from_op);
            if let Some(r) = self.recording.as_mut() {
                r.push(&from_caller, &from_op);
            }
            let sup_mode = self.supervisor.as_ref().map(|(_, m)| *m);
            // Who is sending at all: a leg hears a mix only while a source of it is.
            let caller_on = caller.heard();
            let op_on = op.heard();
            let mut sup_on = false;
            if let Some((s, _)) = self.supervisor.as_mut() {
                s.pop_frame(&mut from_sup);
                sup_on = s.heard();
            }
            if let Some((by, music, pos)) = self.hold.as_mut() {
                // On hold: the held party hears music, the holder nothing; the recording
                // and a supervisor still get both sides.
                for slot in mixed.iter_mut() {
                    *slot = music[*pos];
                    *pos = (*pos + 1) % music.len();
                }
                let (held, holder) = match by {
                    HoldBy::Operator => (caller, op),
                    HoldBy::Caller => (op, caller),
                };
                held.send(Some(&mixed), out, tally);
                holder.send(None, out, tally);
            } else {
                // The caller hears the operator (and the supervisor when barging).
                if sup_mode == Some(MonitorMode::Barge) {
                    mix(&mut mixed, &[&from_op, &from_sup]);
                    caller.send((op_on || sup_on).then_some(&mixed), out, tally);
                } else {
                    caller.send(op_on.then_some(&from_op), out, tally);
                }
                // The operator hears the caller (and the supervisor unless only listening).
                match sup_mode {
                    Some(MonitorMode::Whisper) | Some(MonitorMode::Barge) => {
                        mix(&mut mixed, &[&from_caller, &from_sup]);
                        op.send((caller_on || sup_on).then_some(&mixed), out, tally);
                    }
                    _ => op.send(caller_on.then_some(&from_caller), out, tally),
                }
            }
            if let Some((s, _)) = self.supervisor.as_mut() {
                mix(&mut mixed, &[&from_caller, &from_op]);
                s.send((caller_on || op_on).then_some(&mixed), out, tally);
            }
            tally.frames_bridged += 1;
        } else {
            // Before the bridge the caller's audio is not needed (keys come as events).
            self.caller.inbound.clear();
            let playing = self.player.next(&mut mixed, &mut self.finished);
            self.caller.send(playing.then_some(&mixed[..]), out, tally);
        }
        for (id, idle) in self.finished.drain(..) {
            self.to.do_send(MediaMsg(MediaEvent::Played { id, idle }));
        }
        self.caller.rtcp_tick(rx, tally);
        if let Some(op) = self.operator.as_mut() {
            op.rtcp_tick(rx, tally);
        }
        if let Some((s, _)) = self.supervisor.as_mut() {
            s.rtcp_tick(rx, tally);
        }
        self.ticks = self.ticks.wrapping_add(1);
        let sample = self.ticks.is_multiple_of(JITTER_EVERY);
        self.caller.account(tally, sample);
        if let Some(op) = self.operator.as_mut() {
            op.account(tally, sample);
        }
        if let Some((s, _)) = self.supervisor.as_mut() {
            s.account(tally, sample);
        }
        true
    }

    fn apply(&mut self, cmd: MediaCommand, tally: &mut Tally, ep: Option<&Epoll>) {
        match cmd {
            MediaCommand::Stop => {}
            MediaCommand::Play { clips, id } => {
                let n = clips.len();
                if n == 0 {
                    self.finished.push((id, self.player.queue.is_empty()));
                }
                for (i, clip) in clips.into_iter().enumerate() {
                    self.player
                        .queue
                        .push_back((clip, (i + 1 == n).then_some(id)));
                }
            }
            MediaCommand::StopPrompts => {
                self.player.queue.clear();
                self.player.pos = 0;
            }
            MediaCommand::Music(m) => {
                self.player.music = m;
                self.player.music_pos = 0;
            }
            MediaCommand::Bridge {
                operator: spec,
                recording,
            } => match Leg::new(spec) {
                Ok(leg) => {
                    if let Some(mut old) = self.operator.replace(leg) {
                        old.account(tally, false);
                        old.rtcp_bye(tally);
                    }
                    self.recording = recording;
                    self.hold = None;
                    self.player.queue.clear();
                    self.player.music = None;
                    self.caller.out.mark();
                    self.caller.inbound.clear();
                    self.caller.primed = false;
                }
                Err(e) => tracing::warn!(error = %e, "operator media could not start"),
            },
            MediaCommand::Unbridge => {
                if let Some(old) = self.operator.take() {
                    old.retire(tally, ep);
                }
                if let Some((old, _)) = self.supervisor.take() {
                    old.retire(tally, ep);
                }
                self.recording = None;
                self.hold = None;
                self.caller.out.mark();
            }
            MediaCommand::Monitor { leg, mode } => match Leg::new(leg) {
                Ok(l) => {
                    if let Some((old, _)) = self.supervisor.replace((l, mode)) {
                        old.retire(tally, ep);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "supervisor media could not start"),
            },
            MediaCommand::SetMonitorMode(mode) => {
                if let Some((_, m)) = self.supervisor.as_mut() {
                    *m = mode;
                }
            }
            MediaCommand::EndMonitor => {
                if let Some((old, _)) = self.supervisor.take() {
                    old.retire(tally, ep);
                }
            }
            MediaCommand::Renegotiate {
                side,
                codec,
                telephone_event,
                remote,
            } => {
                let leg = match side {
                    HoldBy::Caller => Some(&mut self.caller),
                    HoldBy::Operator => self.operator.as_mut(),
                };
                if let Some(leg) = leg {
                    leg.renegotiate(codec, telephone_event, remote);
                }
            }
            MediaCommand::Hold { by, music } => {
                self.hold = music.filter(|m| !m.is_empty()).map(|m| (by, m, 0));
                self.caller.out.mark();
                if let Some(op) = self.operator.as_mut() {
                    op.out.mark();
                }
            }
        }
    }

    /// The driver's sockets this session's legs hold (RTP and RTCP).
    fn sockets(&self) -> usize {
        let legs =
            1 + usize::from(self.operator.is_some()) + usize::from(self.supervisor.is_some());
        2 * legs
    }

    /// Closes the recording and reports the end to the actor.
    fn finish(mut self, tally: &mut Tally, c: &MediaCounters, ep: Option<&Epoll>) {
        drop(self.recording.take());
        c.sessions.fetch_sub(1, Ordering::Relaxed);
        self.to.do_send(MediaMsg(MediaEvent::Ended {
            caller: self.caller.report(),
            operator: self.operator.as_ref().map(Leg::report),
        }));
        self.caller.retire(tally, ep);
        if let Some(op) = self.operator {
            op.retire(tally, ep);
        }
        if let Some((s, _)) = self.supervisor {
            s.retire(tally, ep);
        }
    }
}

struct Player {
    queue: VecDeque<(Clip, Option<u64>)>,
    pos: usize,
    music: Option<Clip>,
    music_pos: usize,
}

impl Player {
    /// The next 20 ms for the caller, and the ids of plays that just finished.
    fn next(&mut self, frame: &mut [i16; FRAME], finished: &mut Vec<(u64, bool)>) -> bool {
        let mut filled = 0;
        let mut any = false;
        while filled < FRAME {
            let Some((clip, _)) = self.queue.front() else {
                break;
            };
            let take = (clip.len() - self.pos).min(FRAME - filled);
            frame[filled..filled + take].copy_from_slice(&clip[self.pos..self.pos + take]);
            filled += take;
            self.pos += take;
            any = true;
            if self.pos >= clip.len() {
                let (_, id) = self.queue.pop_front().expect("front exists");
                self.pos = 0;
                if let Some(id) = id {
                    finished.push((id, self.queue.is_empty()));
                }
            }
        }
        if any {
            frame[filled..].fill(0);
            return true;
        }
        if let Some(m) = &self.music {
            if m.is_empty() {
                return false;
            }
            for slot in frame.iter_mut() {
                *slot = m[self.music_pos];
                self.music_pos = (self.music_pos + 1) % m.len();
            }
            return true;
        }
        false
    }
}

fn mix(out: &mut [i16; FRAME], parts: &[&[i16; FRAME]]) {
    for (i, slot) in out.iter_mut().enumerate() {
        let sum: i32 = parts.iter().map(|p| i32::from(p[i])).sum();
        *slot = sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_latched_leg_takes_only_its_own_stream() {
        let mut latch = Latch::new(Some(at(4000)));
        // The phone is behind NAT: its packets come from elsewhere than its SDP said.
        assert!(
            latch.admit(at(30000), 0xAAAA, true),
            "the first packet latches"
        );
        assert_eq!(latch.remote, Some(at(30000)));
        assert!(latch.admit(at(30000), 0xAAAA, false));
        // Someone else's stream from another address: dropped, the leg stays.
        assert!(!latch.admit(at(31000), 0xBBBB, false));
        assert_eq!(latch.remote, Some(at(30000)), "sprayed RTP moved the leg");
        // The same stream from a new port (the NAT binding moved): followed.
        assert!(latch.admit(at(30002), 0xAAAA, false));
        assert_eq!(latch.remote, Some(at(30002)));
        // The same source restarting its stream: still the leg's.
        assert!(latch.admit(at(30002), 0xCCCC, false));
        assert!(
            !latch.admit(at(30002 + 8), 0xAAAA, false),
            "the old stream is gone"
        );
        // The address the SDP gave always gets the leg back.
        assert!(latch.admit(at(4000), 0xDDDD, false));
        assert_eq!(latch.remote, Some(at(4000)));
    }

    #[test]
    fn a_leg_learns_again_after_quiet_or_a_new_offer() {
        let mut latch = Latch::new(Some(at(4000)));
        assert!(latch.admit(at(30000), 0xAAAA, true));
        assert!(!latch.admit(at(31000), 0xBBBB, false));
        // The latched source went quiet (a phone on hold whose NAT binding expired).
        assert!(latch.admit(at(31000), 0xBBBB, true));
        assert_eq!(latch.remote, Some(at(31000)));
        // A re-offer with the same address (resume behind NAT): the next stream is taken.
        latch.renegotiate(Some(at(4000)));
        assert_eq!(
            latch.remote,
            Some(at(31000)),
            "the same SDP address keeps the leg"
        );
        assert!(latch.admit(at(32000), 0xEEEE, false));
        assert_eq!(latch.remote, Some(at(32000)));
        // A new address in the SDP: packets go there until the phone's come.
        latch.renegotiate(Some(at(5000)));
        assert_eq!(latch.remote, Some(at(5000)));
        assert!(latch.admit(at(33000), 0xFFFF, false));
        assert!(!latch.admit(at(34000), 0x1234, false));
    }

    #[test]
    fn the_ready_set_answers_for_each_descriptor_and_empties() {
        let mut set = FdSet::default();
        let fds = [0u64, 5, 63, 64, 1000, 65_535];
        for fd in fds {
            set.insert(fd);
        }
        for fd in 0..66_000u64 {
            assert_eq!(set.contains(fd), fds.contains(&fd), "descriptor {fd}");
        }
        set.remove_all(fds.into_iter());
        assert!((0..66_000u64).all(|fd| !set.contains(fd)));
        assert!(set.words.iter().all(|w| *w == 0));
    }

    #[test]
    fn player_reports_each_play_once_and_loops_music() {
        let mut p = Player {
            queue: VecDeque::new(),
            pos: 0,
            music: None,
            music_pos: 0,
        };
        let a: Clip = vec![1i16; 200].into();
        let b: Clip = vec![2i16; 100].into();
        p.queue.push_back((a, None));
        p.queue.push_back((b, Some(7)));
        let mut f = [0i16; FRAME];
        let mut done = Vec::new();
        assert!(p.next(&mut f, &mut done));
        assert!(done.is_empty());
        assert!(p.next(&mut f, &mut done));
        // 40 samples of a, then 100 of b, then silence.
        assert_eq!((f[0], f[39], f[40], f[139], f[140]), (1, 1, 2, 2, 0));
        assert_eq!(done, vec![(7, true)]);
        assert!(!p.next(&mut f, &mut done));
        p.music = Some(vec![3i16; 50].into());
        assert!(p.next(&mut f, &mut done));
        assert!(f.iter().all(|s| *s == 3));
    }

    #[test]
    fn mixing_saturates() {
        let mut out = [0i16; FRAME];
        mix(&mut out, &[&[30000; FRAME], &[30000; FRAME]]);
        assert_eq!(out[0], i16::MAX);
        mix(&mut out, &[&[100; FRAME], &[-50; FRAME]]);
        assert_eq!(out[0], 50);
    }
}
