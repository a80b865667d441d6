//! One call's media: a tokio task that owns the call's RTP sockets and, every 20 ms, sends
//! what each leg should hear. Before the bridge the caller hears prompts or hold music;
//! after it, caller and operator hear each other (decoded, mixed where a supervisor joins,
//! re-encoded in each leg's codec), and the recorder gets both sides.
//!
//! The call's actor steers the task with [`MediaCommand`]s over a bounded channel
//! ([`MediaHandle`]); the task reports [`MediaEvent`]s back through an actix `Recipient`.
//! Packets are paced by an interval on an absolute schedule, so there is no drift; each leg
//! has one outgoing [`OutStream`], so sequence numbers and timestamps stay continuous across
//! prompts, silences and the switch to the bridge.

use super::dtmf::DtmfDetector;
use super::prompts::Clip;
use super::recorder::{Recording, FRAME};
use super::rtcp::{self as rtcp_mod, RtcpLeg};
use super::rtp::{self, OutStream, RecvStats};
use super::{Codec, MediaCounters, RtpPort};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

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

/// What a supervisor does on a live call (D17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// Hears both sides; nobody hears the supervisor.
    Listen,
    /// Hears both sides; only the operator hears the supervisor.
    Whisper,
    /// Three-way: everyone hears everyone.
    Barge,
}

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
    /// Sends a command without waiting; a full mailbox sheds it (counted).
    pub fn send(&self, cmd: MediaCommand) {
        if self.tx.try_send(cmd).is_err() {
            self.counters.commands_shed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Capacity of a session's command mailbox.
pub const MAILBOX: usize = 64;

pub(super) fn spawn(
    rt: &tokio::runtime::Handle,
    caller: LegSpec,
    to: actix::Recipient<MediaMsg>,
    counters: Arc<MediaCounters>,
) -> MediaHandle {
    let (tx, rx) = mpsc::channel(MAILBOX);
    let c = counters.clone();
    counters.sessions.fetch_add(1, Ordering::Relaxed);
    rt.spawn(async move {
        match Leg::new(caller, &c) {
            Ok(leg) => run(leg, rx, to, c.clone()).await,
            Err(e) => tracing::warn!(error = %e, "media session could not start"),
        }
        c.sessions.fetch_sub(1, Ordering::Relaxed);
    });
    MediaHandle { tx, counters }
}

struct Leg {
    sock: UdpSocket,
    rtcp: Option<RtcpLeg>,
    remote: Option<SocketAddr>,
    latched: bool,
    codec: Codec,
    telephone_event: Option<u8>,
    out: OutStream,
    stats: RecvStats,
    inbound: VecDeque<i16>,
    primed: bool,
    dtmf: DtmfDetector,
}

impl Leg {
    fn new(spec: LegSpec, _c: &MediaCounters) -> std::io::Result<Leg> {
        let (rtp, rtcp) = spec.port.into_sockets();
        rtp.set_nonblocking(true)?;
        let sock = UdpSocket::from_std(rtp)?;
        Ok(Leg {
            sock,
            rtcp: rtcp.and_then(|s| RtcpLeg::new(s, Instant::now()).ok()),
            remote: spec.remote,
            latched: false,
            codec: spec.codec,
            telephone_event: spec.telephone_event,
            out: OutStream::new(rand::random(), rand::random(), rand::random()),
            stats: RecvStats::default(),
            inbound: VecDeque::with_capacity(MAX_BUFFERED),
            primed: false,
            dtmf: DtmfDetector::default(),
        })
    }

    /// Takes one received datagram; returns a key press if it carried one.
    fn on_datagram(
        &mut self,
        data: &[u8],
        from: SocketAddr,
        arrival: u32,
        c: &MediaCounters,
    ) -> Option<char> {
        c.packets_in.fetch_add(1, Ordering::Relaxed);
        let Ok((h, payload)) = rtp::parse(data) else {
            self.stats.on_malformed();
            c.malformed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        // Symmetric RTP (RFC 4961): answer where the media comes from (callers behind NAT).
        if !self.latched || self.remote != Some(from) {
            self.remote = Some(from);
            self.latched = true;
        }
        self.stats.on_packet(&h, payload.len(), arrival);
        if Some(h.payload_type) == self.telephone_event {
            return self.dtmf.on_packet(h.ssrc, h.timestamp, payload);
        }
        let law = if h.payload_type == Codec::Pcmu.payload_type() {
            Codec::Pcmu.law()
        } else if h.payload_type == Codec::Pcma.payload_type() {
            Codec::Pcma.law()
        } else {
            return None; // comfort noise and others: ignored
        };
        let mut samples = Vec::with_capacity(payload.len());
        law.decode_into(payload, &mut samples);
        self.inbound.extend(samples);
        while self.inbound.len() > MAX_BUFFERED {
            self.inbound.pop_front();
            c.samples_dropped.fetch_add(1, Ordering::Relaxed);
        }
        None
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
        for (slot, s) in frame.iter_mut().zip(self.inbound.drain(..FRAME)) {
            *slot = s;
        }
        true
    }

    /// Sends 20 ms of `samples`, or lets the tick pass silently with `None`.
    async fn send(&mut self, samples: Option<&[i16]>, buf: &mut Vec<u8>, c: &MediaCounters) {
        let Some(remote) = self.remote else {
            self.out.skip(FRAME as u32);
            return;
        };
        let Some(samples) = samples else {
            self.out.skip(FRAME as u32);
            return;
        };
        buf.clear();
        let h = self.out.next(self.codec.payload_type(), FRAME as u32);
        rtp::write_header(&h, buf);
        self.codec.law().encode_into(samples, buf);
        match self.sock.try_send_to(buf, remote) {
            Ok(_) => {
                c.packets_out.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                c.send_dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                // ICMP unreachable from a peer that went away: counted, not fatal.
                c.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends this leg's RTCP report when one is due.
    fn rtcp_tick(&mut self, now: Instant, wall: std::time::SystemTime, c: &MediaCounters) {
        let Some(r) = self.rtcp.as_mut() else {
            return;
        };
        let view = rtcp_mod::LegView {
            ssrc: self.out.ssrc(),
            sent_packets: self.out.packets,
            sent_octets: self.out.packets * FRAME as u64,
            rtp_timestamp: self.out.timestamp(),
            source: self.stats.source(),
            received: self.stats.packets,
            lost: self.stats.lost(),
            jitter: self.stats.jitter_units(),
            rtp_remote: self.remote,
        };
        r.tick(now, wall, &view, c);
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

async fn recv_on(leg: &Option<Leg>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match leg {
        Some(l) => l.sock.recv_from(buf).await,
        None => std::future::pending().await,
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

async fn run(
    mut caller: Leg,
    mut rx: mpsc::Receiver<MediaCommand>,
    to: actix::Recipient<MediaMsg>,
    c: Arc<MediaCounters>,
) {
    let start = Instant::now();
    let arrival = |now: Instant| (now.duration_since(start).as_micros() / 125) as u32;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut operator: Option<Leg> = None;
    let mut supervisor: Option<(Leg, MonitorMode)> = None;
    let mut recording: Option<Recording> = None;
    let mut player = Player {
        queue: VecDeque::new(),
        pos: 0,
        music: None,
        music_pos: 0,
    };
    let (mut b1, mut b2, mut b3) = (vec![0u8; 2048], vec![0u8; 2048], vec![0u8; 2048]);
    let mut b4 = vec![0u8; 3 * 1024];
    let mut out = Vec::with_capacity(FRAME + rtp::HEADER_LEN);
    let mut finished = Vec::new();
    let (mut from_caller, mut from_op, mut from_sup) =
        ([0i16; FRAME], [0i16; FRAME], [0i16; FRAME]);
    let mut mixed = [0i16; FRAME];
    // (who holds, the music, where in it)
    let mut hold: Option<(HoldBy, Clip, usize)> = None;
    loop {
        // Biased: commands, then the tick (after a stall the late ticks play out what is
        // buffered before more is read), then the sockets.
        tokio::select! {
            biased;
            cmd = rx.recv() => match cmd {
                None | Some(MediaCommand::Stop) => break,
                Some(MediaCommand::Play { clips, id }) => {
                    let n = clips.len();
                    if n == 0 {
                        finished.push((id, player.queue.is_empty()));
                    }
                    for (i, clip) in clips.into_iter().enumerate() {
                        player.queue.push_back((clip, (i + 1 == n).then_some(id)));
                    }
                }
                Some(MediaCommand::StopPrompts) => {
                    player.queue.clear();
                    player.pos = 0;
                }
                Some(MediaCommand::Music(m)) => {
                    player.music = m;
                    player.music_pos = 0;
                }
                Some(MediaCommand::Bridge { operator: spec, recording: rec }) => {
                    match Leg::new(spec, &c) {
                        Ok(leg) => {
                            operator = Some(leg);
                            recording = rec;
                            player.queue.clear();
                            player.music = None;
                            caller.out.mark();
                            caller.inbound.clear();
                            caller.primed = false;
                        }
                        Err(e) => tracing::warn!(error = %e, "operator media could not start"),
                    }
                }
                Some(MediaCommand::Unbridge) => {
                    operator = None;
                    recording = None;
                    supervisor = None;
                    caller.out.mark();
                }
                Some(MediaCommand::Monitor { leg, mode }) => match Leg::new(leg, &c) {
                    Ok(l) => supervisor = Some((l, mode)),
                    Err(e) => tracing::warn!(error = %e, "supervisor media could not start"),
                },
                Some(MediaCommand::SetMonitorMode(mode)) => {
                    if let Some((_, m)) = supervisor.as_mut() {
                        *m = mode;
                    }
                }
                Some(MediaCommand::EndMonitor) => supervisor = None,
                Some(MediaCommand::Hold { by, music }) => {
                    hold = music.filter(|m| !m.is_empty()).map(|m| (by, m, 0));
                    caller.out.mark();
                    if let Some(op) = operator.as_mut() {
                        op.out.mark();
                    }
                }
            },
            _ = tick.tick() => {
                c.ticks.fetch_add(1, Ordering::Relaxed);
                if let Some(op) = operator.as_mut() {
                    caller.pop_frame(&mut from_caller);
                    op.pop_frame(&mut from_op);
                    if let Some(r) = recording.as_mut() {
                        r.push(&from_caller, &from_op);
                    }
                    let sup_mode = supervisor.as_ref().map(|(_, m)| *m);
                    if let Some((s, _)) = supervisor.as_mut() {
                        s.pop_frame(&mut from_sup);
                    }
                    if let Some((by, music, pos)) = hold.as_mut() {
                        // On hold: the held party hears music, the holder nothing.
                        for slot in mixed.iter_mut() {
                            *slot = music[*pos];
                            *pos = (*pos + 1) % music.len();
                        }
                        let (held, holder) = match by {
                            HoldBy::Operator => (&mut caller, op),
                            HoldBy::Caller => (op, &mut caller),
                        };
                        held.send(Some(&mixed), &mut out, &c).await;
                        holder.send(None, &mut out, &c).await;
                    } else {
                        // The caller hears the operator (and the supervisor when barging).
                        if sup_mode == Some(MonitorMode::Barge) {
                            mix(&mut mixed, &[&from_op, &from_sup]);
                            caller.send(Some(&mixed), &mut out, &c).await;
                        } else {
                            caller.send(Some(&from_op), &mut out, &c).await;
                        }
                        // The operator hears the caller (and the supervisor unless only
                        // listening).
                        match sup_mode {
                            Some(MonitorMode::Whisper) | Some(MonitorMode::Barge) => {
                                mix(&mut mixed, &[&from_caller, &from_sup]);
                                op.send(Some(&mixed), &mut out, &c).await;
                            }
                            _ => op.send(Some(&from_caller), &mut out, &c).await,
                        }
                    }
                    if let Some((s, _)) = supervisor.as_mut() {
                        mix(&mut mixed, &[&from_caller, &from_op]);
                        s.send(Some(&mixed), &mut out, &c).await;
                    }
                    c.frames_bridged.fetch_add(1, Ordering::Relaxed);
                } else {
                    // Before the bridge the caller's audio is not needed (keys come as events).
                    caller.inbound.clear();
                    let playing = player.next(&mut mixed, &mut finished);
                    caller.send(playing.then_some(&mixed[..]), &mut out, &c).await;
                }
                for (id, idle) in finished.drain(..) {
                    to.do_send(MediaMsg(MediaEvent::Played { id, idle }));
                }
                let (now, wall) = (Instant::now(), std::time::SystemTime::now());
                caller.rtcp_tick(now, wall, &c);
                if let Some(op) = operator.as_mut() {
                    op.rtcp_tick(now, wall, &c);
                }
                if let Some((s, _)) = supervisor.as_mut() {
                    s.rtcp_tick(now, wall, &c);
                }
            }
            r = rtcp_mod::recv_any(
                [
                    caller.rtcp.as_ref(),
                    operator.as_ref().and_then(|l| l.rtcp.as_ref()),
                    supervisor.as_ref().and_then(|(l, _)| l.rtcp.as_ref()),
                ],
                &mut b4,
            ) => {
                if let Ok((which, n, from)) = r {
                    let leg = match which {
                        0 => Some(&mut caller),
                        1 => operator.as_mut(),
                        _ => supervisor.as_mut().map(|(l, _)| l),
                    };
                    if let Some(r) = leg.and_then(|l| l.rtcp.as_mut()) {
                        r.on_datagram(&b4[..n], from, Instant::now(), &c);
                    }
                }
            }
            r = caller.sock.recv_from(&mut b1) => {
                if let Ok((n, from)) = r {
                    if let Some(digit) = caller.on_datagram(&b1[..n], from, arrival(Instant::now()), &c) {
                        c.dtmf_events.fetch_add(1, Ordering::Relaxed);
                        to.do_send(MediaMsg(MediaEvent::Dtmf { digit }));
                    }
                }
            }
            r = recv_on(&operator, &mut b2) => {
                if let (Ok((n, from)), Some(op)) = (r, operator.as_mut()) {
                    op.on_datagram(&b2[..n], from, arrival(Instant::now()), &c);
                }
            }
            r = async {
                match &supervisor {
                    Some((l, _)) => l.sock.recv_from(&mut b3).await,
                    None => std::future::pending().await,
                }
            } => {
                if let (Ok((n, from)), Some((l, _))) = (r, supervisor.as_mut()) {
                    l.on_datagram(&b3[..n], from, arrival(Instant::now()), &c);
                }
            }
        }
        if !finished.is_empty() {
            for (id, idle) in finished.drain(..) {
                to.do_send(MediaMsg(MediaEvent::Played { id, idle }));
            }
        }
    }
    drop(recording);
    let lost = caller.stats.lost() + operator.as_ref().map(|o| o.stats.lost()).unwrap_or(0);
    c.packets_lost.fetch_add(lost, Ordering::Relaxed);
    to.do_send(MediaMsg(MediaEvent::Ended {
        caller: caller.report(),
        operator: operator.as_ref().map(Leg::report),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

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
