//! `loadgen sim`: a discrete-event simulation of callers and operators around navbat's own
//! ACD core ([`navbat::acd::Acd`]), the code the router's queue actors run.
//!
//! Virtual time in milliseconds: the loop takes the earliest of the next model event (an
//! arrival, a caller's patience running out, an operator answering or hanging up, an
//! operator ending wrap-up early) and the core's own deadline ([`Acd::poll_timeout`]: ring
//! timeouts, wrap-up ends, maximum waits, overflow steps), feeds it in, and drains the
//! core's actions. Nothing reads a clock, so a seed fixes the whole run.
//!
//! Surge callbacks are modelled as navbat serves them: a caller still waiting
//! `surge_callback_after_secs` after joining the queue accepts a callback with probability
//! `surge_callback_accept`, hangs up (outcome `callback_requested`, the channel is freed),
//! and the callback waits in the core at the caller's original place
//! (`Input::EnqueueCallback`). When the core offers it, the dial-out takes a channel like
//! an inbound call (none free: it leaves the core and is parked in the router's own
//! readmission core, `navbat::callback::Readmission`, which every second lets as many back
//! at their places as there are free channels); the operator answers after the ring delay, the
//! caller is assumed to answer at once, and they talk for a `handle` sample. Unanswered
//! callers and retries are not modelled.

use crate::dist::{Dist, Rng};
use crate::report::{Outcome, Recorder, CALLBACK, INFO, IVR, PHASES, QUEUE, TALK};
use crate::scenario::{Profile, Scenario, ScenarioError};
use navbat::acd::{
    Acd, Action, CallId, Input, Millis, OperatorId, OperatorState, Outcome as AcdOutcome, QueueId,
    SkillSet,
};
use navbat::callback::door::{window_capacity, CallbackWhen, Capacity, DoorPolicy, Offer};
use navbat::callback::{FreeChannels, Readmission};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A model event, ordered by time then by the order it was scheduled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// Call `n` reaches the router.
    Arrival(u32),
    /// Call `n` has been through the IVR and joins its queue.
    JoinQueue(u32),
    /// Call `n`'s caller runs out of patience.
    Patience(u32),
    /// The operator's phone answers the offer of call `n`.
    OperatorAnswers(u32, u32),
    /// The answered call `n` ends (the operator hangs up after the handle time).
    HangUp(u32),
    /// The operator finishes after-call work and says so through the API.
    WrapUpDone(u32),
    /// Surge: call `n` has waited `surge_callback_after_secs` and hears the callback offer.
    CallbackOffer(u32),
    /// Surge: callbacks that found no free channel go back to their places in the core,
    /// as many as there are free channels.
    ReadmitCallbacks,
    /// Surge policy: call `n` has heard the self-service information and hangs up.
    InfoHeard(u32),
    /// Surge policy: call `n`, which keyed the callback or the SMS, has heard the
    /// confirmation and the router hangs up.
    Confirmed(u32),
}

/// Core call ids (and model event ids) of callbacks start here: `CALLBACK_BASE + slot`,
/// each time the callback enters the core a new slot.
const CALLBACK_BASE: u32 = 1 << 31;

/// The simulator's trunk: one tenant, `channels - in_system` free.
struct SimChannels(u32);

impl FreeChannels for SimChannels {
    fn global_free(&self) -> u32 {
        self.0
    }
    fn tenant_free(&self, _: usize) -> u32 {
        self.0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallbackPhase {
    /// In the core, waiting for an operator.
    Waiting,
    /// Offered with no free channel: leaving the core, to come back.
    NoChannel,
    /// Its operator is being rung; holds a channel.
    Dialling,
    /// Operator and caller talk; holds a channel.
    Talking,
    Done,
}

struct CallbackSim {
    phase: CallbackPhase,
    queue: QueueId,
    /// When the caller joined the queue: the place the callback keeps.
    arrived_ms: u64,
}

/// One call or callback an operator answered, in the order of the answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// When the caller joined the queue (for a callback, the original call's time).
    pub enqueued_ms: u64,
    /// When the operator answered.
    pub answered_ms: u64,
    /// Whether it was a callback.
    pub callback: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Ivr,
    Queued,
    /// Accepted a callback and is leaving the core.
    CallbackAccepted,
    /// Surge policy: accepted the information by SMS and is leaving the core.
    SmsAccepted,
    /// Surge policy: listening to the self-service information.
    Info,
    Talking,
    Done,
}

struct CallSim {
    phase: Phase,
    queue: QueueId,
    skills: SkillSet,
    enqueued_ms: u64,
    /// Surge policy: the caller has been offered a callback and the SMS.
    offered: bool,
    /// Surge policy: the offer is made at the door (the expected wait was long).
    at_door: bool,
    /// Surge policy: the door offer, decided when the caller joins the queue (as the
    /// router decides it) and answered `offer_secs` later; until then a callback offered
    /// holds its place in the room, as the router's open offers do.
    door_offer: Option<Offer>,
}

/// What a simulation produced.
pub struct SimOutput {
    /// Measurements, in scenario time.
    pub recorder: Recorder,
    /// Calls placed.
    pub placed: u64,
    /// Inputs and timeouts fed to the ACD core.
    pub core_steps: u64,
    /// Inputs the core rejected (a driver bug if not zero).
    pub rejected: u64,
    /// Scenario time simulated, milliseconds.
    pub end_ms: u64,
    /// Every answer, live call or callback, in order.
    pub served: Vec<Served>,
    /// Most channels in use at once (callers in the system and callback dial-outs).
    pub peak_channels: u32,
}

/// Runs the scenario through the ACD core; `bucket_secs` sets the report's interval.
pub fn simulate(sc: &Scenario, bucket_secs: f64) -> Result<SimOutput, ScenarioError> {
    let config = sc.navbat_config()?;
    let (model, queues, operators) = navbat::actors::model::RoutingModel::build(&config)
        .map_err(|e| ScenarioError::Skills(e.to_string()))?;
    let tenant = config
        .tenant("dtm")
        .ok_or_else(|| ScenarioError::Config("no dtm tenant".into()))?;
    let lang_queues: Vec<QueueId> = tenant
        .ivr
        .languages
        .iter()
        .map(|l| model.queue(&l.queue).unwrap_or(QueueId(0)))
        .collect();
    let topic_skills: Vec<SkillSet> = tenant
        .ivr
        .topics
        .iter()
        .map(|t| model.topic_skill(Some(&t.topic)))
        .collect();
    let dtm = model
        .tenant("dtm")
        .ok_or_else(|| ScenarioError::Config("no dtm tenant".into()))?;
    let op_count = operators.len();
    let mut acd = Acd::new(queues, operators);
    let mut rng = Rng::seeded(sc.seed);
    let arrivals = sc.profile.arrivals_ms(&mut rng, sc.call_limit);
    let mut rec = Recorder::new(bucket_secs, sc.target_secs);
    let mut calls: Vec<CallSim> = Vec::with_capacity(arrivals.len());
    let mut ringing: Vec<Option<u32>> = vec![None; op_count];
    let mut heap: BinaryHeap<Reverse<(u64, u64, Event)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<_>, at: u64, ev: Event| {
        seq += 1;
        heap.push(Reverse((at, seq, ev)));
    };
    let mut out = SimOutput {
        recorder: Recorder::new(bucket_secs, sc.target_secs),
        placed: arrivals.len() as u64,
        core_steps: 0,
        rejected: 0,
        end_ms: 0,
        served: Vec::new(),
        peak_channels: 0,
    };
    let mut callbacks: Vec<CallbackSim> = Vec::new();
    // Core slot -> callback index.
    let mut callback_slots: Vec<u32> = Vec::new();
    // Callbacks out of the core for want of a channel: the router's own readmission core.
    let mut readmission: Readmission<u32> = Readmission::new();
    let profile_end_ms = (sc.profile.duration_secs() * 1000.0) as u64;
    let (mut requested_by_end, mut completed_by_end) = (0u64, 0u64);
    let to_ms = |secs: f64| -> Option<u64> { secs.is_finite().then_some((secs * 1000.0) as u64) };
    let offer_callbacks = sc.surge && sc.surge_callback_accept > 0.0;
    // The results-day policy, in surge only: navbat's own door and capacity rules.
    let policy = sc.surge_policy.as_ref().filter(|_| sc.surge);
    let handle_ms = config.media.average_handle.as_millis() as u64;
    // What a callback costs an operator, for its promise: the talk and the wrap-up.
    let callback_cost_ms = handle_ms + sc.wrap_up_secs * 1000;
    let callback_share = policy.map_or(100, |p| 100 - p.live_reserve_percent.min(100));
    // The tenant's queues: its operators and promises are counted as a whole, since its
    // queues share operators of two languages (per-queue figures would promise the same
    // operator time twice).
    let tenant_queues: Vec<QueueId> = model
        .queue_ids()
        .filter(|q| model.queue_tenant(*q) == dtm)
        .collect();
    let door = policy.map(|p| DoorPolicy {
        offer_above_ms: to_ms(p.offer_above_secs).unwrap_or(u64::MAX / 4),
        sms: true,
        next_morning_capacity: window_capacity(
            acd.staff_for(&tenant_queues),
            callback_share,
            to_ms(p.next_morning_secs).unwrap_or(0),
            callback_cost_ms,
        ),
    });
    // Callbacks promised for today and not yet done, per queue; promised for the morning.
    let mut pending_today: Vec<usize> = vec![0; model.queue_ids().count()];
    let mut promised_next_morning: u32 = 0;
    // Door offers of a callback not yet answered: today's, the morning's.
    let mut open: (usize, u32) = (0, 0);
    let capacity = |acd: &Acd,
                    _queue: QueueId,
                    t: u64,
                    pending: &[usize],
                    promised: u32,
                    open: (usize, u32)| Capacity {
        serving: acd.on_duty_for(&tenant_queues),
        handle_ms: callback_cost_ms,
        callback_share_percent: callback_share,
        until_close_ms: profile_end_ms.saturating_sub(t),
        pending_today: pending.iter().sum(),
        promised_next_morning: promised,
        open_today: open.0,
        open_next_morning: open.1,
    };
    // Puts callback `i` into the core at its original place, under a fresh core id.
    let enqueue_callback = |acd: &mut Acd,
                            slots: &mut Vec<u32>,
                            callbacks: &mut [CallbackSim],
                            i: u32,
                            now: Millis| {
        let cb = &mut callbacks[i as usize];
        cb.phase = CallbackPhase::Waiting;
        let id = CALLBACK_BASE + slots.len() as u32;
        slots.push(i);
        acd.handle_input(
            now,
            Input::EnqueueCallback {
                call: CallId(u64::from(id)),
                queue: cb.queue,
                priority: 0,
                // As the router: a callback needs no topic skill.
                skills: SkillSet::EMPTY,
                arrived: Millis(cb.arrived_ms),
            },
        );
    };
    let wrap_up_ms = sc.wrap_up_secs * 1000;
    let callback_after_ms = to_ms(sc.surge_callback_after_secs).unwrap_or(u64::MAX / 4);
    for op in 0..op_count {
        acd.handle_input(
            Millis::ZERO,
            Input::SetOperatorState {
                operator: OperatorId(op as u32),
                state: OperatorState::Available,
            },
        );
    }
    if sc.surge {
        acd.handle_input(
            Millis::ZERO,
            Input::SetSurge {
                tenant: dtm,
                on: true,
            },
        );
    }
    while acd.poll_action().is_some() {}
    // Arrivals are pushed lazily, one ahead, to keep the heap small.
    let mut next_arrival = 0usize;
    if !arrivals.is_empty() {
        push(&mut heap, arrivals[0], Event::Arrival(0));
    }
    let mut in_system = 0u32;
    // Channels held, by phase (indexed by the `report::PHASES` constants).
    let mut held = [0u32; PHASES];
    let mut waiting = 0u64;
    loop {
        let next_model = heap.peek().map(|Reverse((t, _, _))| *t);
        let next_core = acd.poll_timeout().map(|m| m.0);
        let now = match (next_model, next_core) {
            (None, None) => break,
            (Some(m), Some(c)) if c <= m => {
                acd.handle_timeout(Millis(c));
                out.core_steps += 1;
                c
            }
            (None, Some(c)) => {
                acd.handle_timeout(Millis(c));
                out.core_steps += 1;
                c
            }
            (Some(_), _) => {
                let Reverse((t, _, ev)) = heap.pop().expect("peeked");
                let now = Millis(t);
                match ev {
                    Event::Arrival(n) => {
                        next_arrival += 1;
                        if let Some(&at) = arrivals.get(next_arrival) {
                            push(&mut heap, at, Event::Arrival(next_arrival as u32));
                        }
                        rec.arrival(t);
                        let lang = rng.weighted(&sc.language_weights);
                        let topic = rng.weighted(&sc.topic_weights);
                        calls.push(CallSim {
                            phase: Phase::Ivr,
                            queue: lang_queues.get(lang).copied().unwrap_or(QueueId(0)),
                            skills: topic_skills.get(topic).copied().unwrap_or_default(),
                            enqueued_ms: 0,
                            offered: false,
                            at_door: false,
                            door_offer: None,
                        });
                        if in_system >= sc.channels {
                            calls[n as usize].phase = Phase::Done;
                            rec.finished(t, Outcome::Blocked, None);
                        } else {
                            in_system += 1;
                            held[IVR] += 1;
                            out.peak_channels = out.peak_channels.max(in_system);
                            let ivr = match policy {
                                Some(p) => to_ms(p.ivr_secs).unwrap_or(0),
                                None => to_ms(sc.ivr_secs).unwrap_or(0),
                            };
                            push(&mut heap, t + ivr, Event::JoinQueue(n));
                        }
                    }
                    Event::JoinQueue(n) if sc.surge && rng.unit() < sc.surge_deflect_share => {
                        // Self-service instead of the queue. Without the policy the
                        // information prompt's length is not modelled (the channel is freed
                        // at once); with it, the channel is held while the prompt plays.
                        match policy {
                            Some(p) => {
                                calls[n as usize].phase = Phase::Info;
                                held[IVR] -= 1;
                                held[INFO] += 1;
                                let info = to_ms(p.info_secs).unwrap_or(0);
                                push(&mut heap, t + info, Event::InfoHeard(n));
                            }
                            None => {
                                calls[n as usize].phase = Phase::Done;
                                in_system -= 1;
                                held[IVR] -= 1;
                                rec.finished(t, Outcome::Deflected, None);
                            }
                        }
                    }
                    Event::Confirmed(n) => {
                        let c = &mut calls[n as usize];
                        let outcome = if c.phase == Phase::CallbackAccepted {
                            Outcome::CallbackRequested
                        } else {
                            Outcome::Deflected
                        };
                        c.phase = Phase::Done;
                        in_system -= 1;
                        held[QUEUE] -= 1;
                        rec.finished(t, outcome, Some(t.saturating_sub(c.enqueued_ms)));
                    }
                    Event::InfoHeard(n) => {
                        calls[n as usize].phase = Phase::Done;
                        in_system -= 1;
                        held[INFO] -= 1;
                        rec.policy.got_info_self_service += 1;
                        rec.finished(t, Outcome::Deflected, None);
                    }
                    Event::JoinQueue(n) => {
                        // The door: with the policy, a caller facing a long wait hears the
                        // offer at once (deciding when it ends), others after
                        // `offer_after` if still waiting.
                        let queue = calls[n as usize].queue;
                        let offer_at = match (&door, policy) {
                            (Some(d), Some(p)) => {
                                let expected = acd.expected_wait_ms(queue, now, handle_ms);
                                let cap = capacity(
                                    &acd,
                                    queue,
                                    t,
                                    &pending_today,
                                    promised_next_morning,
                                    open,
                                );
                                let max_wait = sc.surge_max_wait_secs * 1000;
                                let offer =
                                    d.at_queue_entry(expected, max_wait, callback_after_ms, &cap);
                                if offer.is_some() {
                                    rec.policy.offers_at_door += 1;
                                    calls[n as usize].at_door = true;
                                    calls[n as usize].door_offer = Some(offer);
                                    match offer.callback {
                                        Some(CallbackWhen::Today) => open.0 += 1,
                                        Some(CallbackWhen::NextMorning) => open.1 += 1,
                                        None => {}
                                    }
                                    rec.policy.count_offered(offer.callback);
                                    Some(t + to_ms(p.offer_secs).unwrap_or(0))
                                } else {
                                    Some(t + callback_after_ms)
                                }
                            }
                            _ => offer_callbacks.then_some(t + callback_after_ms),
                        };
                        held[IVR] -= 1;
                        held[QUEUE] += 1;
                        let c = &mut calls[n as usize];
                        c.phase = Phase::Queued;
                        c.enqueued_ms = t;
                        waiting += 1;
                        rec.queue_length(t, waiting);
                        acd.handle_input(
                            now,
                            Input::Enqueue {
                                call: CallId(n as u64),
                                queue: c.queue,
                                priority: 0,
                                skills: c.skills,
                            },
                        );
                        out.core_steps += 1;
                        if let Some(p) = to_ms(sc.patience.sample(&mut rng)) {
                            push(&mut heap, t + p, Event::Patience(n));
                        }
                        if let Some(at) = offer_at {
                            push(&mut heap, at, Event::CallbackOffer(n));
                        }
                    }
                    Event::CallbackOffer(n) if door.is_some() => {
                        let d = door.expect("guarded");
                        let c = &mut calls[n as usize];
                        // The door offer closes now, answered or not: its place is free
                        // again unless the caller books it below.
                        let held = c.door_offer.take();
                        match held.and_then(|o| o.callback) {
                            Some(CallbackWhen::Today) => open.0 -= 1,
                            Some(CallbackWhen::NextMorning) => open.1 -= 1,
                            None => {}
                        }
                        if c.phase == Phase::Queued {
                            if !c.at_door {
                                rec.policy.offers_in_queue += 1;
                            }
                            c.offered = true;
                            let queue = c.queue;
                            let cap = capacity(
                                &acd,
                                queue,
                                t,
                                &pending_today,
                                promised_next_morning,
                                open,
                            );
                            let offer = held.unwrap_or_else(|| {
                                let offer = d.offer(&cap);
                                rec.policy.count_offered(offer.callback);
                                offer
                            });
                            let takes_callback =
                                offer.callback.is_some() && rng.unit() < sc.surge_callback_accept;
                            let takes_sms = !takes_callback
                                && offer.sms
                                && rng.unit() < policy.map_or(0.0, |p| p.sms_accept);
                            rec.offer(
                                t,
                                takes_callback || takes_sms,
                                takes_callback,
                                cap.room_today(),
                            );
                            if takes_callback || takes_sms {
                                let c = &mut calls[n as usize];
                                c.phase = if takes_callback {
                                    Phase::CallbackAccepted
                                } else {
                                    Phase::SmsAccepted
                                };
                                acd.handle_input(
                                    now,
                                    Input::CallerLeft {
                                        call: CallId(n as u64),
                                    },
                                );
                                out.core_steps += 1;
                            }
                            if takes_sms {
                                rec.policy.took_sms += 1;
                                rec.policy.got_info_sms += 1;
                            }
                            match (takes_callback, offer.callback) {
                                (true, Some(CallbackWhen::NextMorning)) => {
                                    promised_next_morning += 1;
                                    rec.policy.took_callback_next_morning += 1;
                                    rec.policy.got_callback_next_morning += 1;
                                }
                                (true, _) => {
                                    rec.policy.took_callback_today += 1;
                                    pending_today[queue.0 as usize] += 1;
                                    let c = &calls[n as usize];
                                    callbacks.push(CallbackSim {
                                        phase: CallbackPhase::Waiting,
                                        queue: c.queue,
                                        arrived_ms: c.enqueued_ms,
                                    });
                                    rec.callbacks.requested += 1;
                                    if t <= profile_end_ms {
                                        requested_by_end += 1;
                                    }
                                    let i = (callbacks.len() - 1) as u32;
                                    enqueue_callback(
                                        &mut acd,
                                        &mut callback_slots,
                                        &mut callbacks,
                                        i,
                                        now,
                                    );
                                    out.core_steps += 1;
                                }
                                _ => {}
                            }
                        }
                    }
                    Event::CallbackOffer(n) => {
                        if calls[n as usize].phase == Phase::Queued
                            && rng.unit() < sc.surge_callback_accept
                        {
                            // The caller leaves the core (its `Finished` below ends the call
                            // as callback_requested) and the callback takes its place.
                            calls[n as usize].phase = Phase::CallbackAccepted;
                            acd.handle_input(
                                now,
                                Input::CallerLeft {
                                    call: CallId(n as u64),
                                },
                            );
                            let c = &calls[n as usize];
                            callbacks.push(CallbackSim {
                                phase: CallbackPhase::Waiting,
                                queue: c.queue,
                                arrived_ms: c.enqueued_ms,
                            });
                            rec.callbacks.requested += 1;
                            if t <= profile_end_ms {
                                requested_by_end += 1;
                            }
                            let i = (callbacks.len() - 1) as u32;
                            enqueue_callback(&mut acd, &mut callback_slots, &mut callbacks, i, now);
                            out.core_steps += 2;
                        }
                    }
                    Event::ReadmitCallbacks => {
                        let free = SimChannels(sc.channels.saturating_sub(in_system));
                        for i in readmission.handle_timeout(now, &free, |_| true) {
                            enqueue_callback(&mut acd, &mut callback_slots, &mut callbacks, i, now);
                            out.core_steps += 1;
                        }
                        if let Some(due) = readmission.poll_timeout() {
                            push(&mut heap, due.0, Event::ReadmitCallbacks);
                        }
                    }
                    Event::Patience(n) => {
                        if calls[n as usize].phase == Phase::Queued {
                            acd.handle_input(
                                now,
                                Input::CallerLeft {
                                    call: CallId(n as u64),
                                },
                            );
                            out.core_steps += 1;
                        }
                    }
                    Event::OperatorAnswers(n, op) => {
                        if ringing[op as usize] == Some(n) {
                            acd.handle_input(
                                now,
                                Input::Answered {
                                    call: CallId(n as u64),
                                    operator: OperatorId(op),
                                },
                            );
                            out.core_steps += 1;
                        }
                    }
                    Event::HangUp(n) => {
                        if n >= CALLBACK_BASE {
                            let i = callback_slots[(n - CALLBACK_BASE) as usize];
                            callbacks[i as usize].phase = CallbackPhase::Done;
                            held[CALLBACK] -= 1;
                        } else {
                            calls[n as usize].phase = Phase::Done;
                            held[TALK] -= 1;
                        }
                        in_system -= 1;
                        acd.handle_input(
                            now,
                            Input::CallEnded {
                                call: CallId(n as u64),
                            },
                        );
                        out.core_steps += 1;
                    }
                    Event::WrapUpDone(op) => {
                        let id = OperatorId(op);
                        if acd.operator_state(id) == OperatorState::WrapUp {
                            acd.handle_input(
                                now,
                                Input::SetOperatorState {
                                    operator: id,
                                    state: OperatorState::Available,
                                },
                            );
                            out.core_steps += 1;
                        }
                    }
                }
                t
            }
        };
        while let Some(action) = acd.poll_action() {
            match action {
                Action::Offer { call, operator } if call.0 >= u64::from(CALLBACK_BASE) => {
                    let i = callback_slots[(call.0 - u64::from(CALLBACK_BASE)) as usize];
                    let cb = &mut callbacks[i as usize];
                    if cb.phase == CallbackPhase::Dialling {
                        // As the router: a callback rings one operator at a time.
                        acd.handle_input(Millis(now), Input::Declined { call, operator });
                        out.core_steps += 1;
                    } else if in_system >= sc.channels {
                        // The dial-out needs a channel (D6): none free, so the callback
                        // leaves the core and comes back at its place; not an attempt.
                        cb.phase = CallbackPhase::NoChannel;
                        acd.handle_input(Millis(now), Input::CallerLeft { call });
                        out.core_steps += 1;
                    } else {
                        cb.phase = CallbackPhase::Dialling;
                        in_system += 1;
                        held[CALLBACK] += 1;
                        out.peak_channels = out.peak_channels.max(in_system);
                        ringing[operator.0 as usize] = Some(call.0 as u32);
                        let delay = to_ms(sc.ring_delay.sample(&mut rng)).unwrap_or(u64::MAX / 4);
                        push(
                            &mut heap,
                            now + delay,
                            Event::OperatorAnswers(call.0 as u32, operator.0),
                        );
                    }
                }
                Action::Withdraw { call, operator } if call.0 >= u64::from(CALLBACK_BASE) => {
                    if ringing[operator.0 as usize] == Some(call.0 as u32) {
                        ringing[operator.0 as usize] = None;
                        // The operator did not answer in time: the channel is given back
                        // and the core keeps the callback at its place.
                        let i = callback_slots[(call.0 - u64::from(CALLBACK_BASE)) as usize];
                        let cb = &mut callbacks[i as usize];
                        if cb.phase == CallbackPhase::Dialling {
                            cb.phase = CallbackPhase::Waiting;
                            in_system -= 1;
                            held[CALLBACK] -= 1;
                        }
                    }
                }
                Action::Finished { call, outcome } if call.0 >= u64::from(CALLBACK_BASE) => {
                    let i = callback_slots[(call.0 - u64::from(CALLBACK_BASE)) as usize];
                    let cb = &mut callbacks[i as usize];
                    match (outcome, cb.phase) {
                        (AcdOutcome::Answered, _) => {
                            cb.phase = CallbackPhase::Talking;
                            for r in ringing.iter_mut().filter(|r| **r == Some(call.0 as u32)) {
                                *r = None;
                            }
                            let wait = now.saturating_sub(cb.arrived_ms);
                            let _ = rec.callbacks.wait_ms.record(wait.max(1));
                            rec.callbacks.completed += 1;
                            rec.callbacks.last_answered_ms = Some(now);
                            if now <= profile_end_ms {
                                completed_by_end += 1;
                                if waiting > 0 {
                                    rec.policy.conversations_callback += 1;
                                }
                            }
                            let q = cb.queue.0 as usize;
                            pending_today[q] = pending_today[q].saturating_sub(1);
                            out.served.push(Served {
                                enqueued_ms: cb.arrived_ms,
                                answered_ms: now,
                                callback: true,
                            });
                            let talk = to_ms(sc.handle.sample(&mut rng)).unwrap_or(0);
                            push(&mut heap, now + talk, Event::HangUp(call.0 as u32));
                        }
                        (_, CallbackPhase::NoChannel) => {
                            if readmission.park(Millis(now), i, 0, cb.arrived_ms as i64) {
                                if let Some(due) = readmission.poll_timeout() {
                                    push(&mut heap, due.0, Event::ReadmitCallbacks);
                                }
                            }
                        }
                        // Callbacks have no maximum wait and no patience in the core.
                        _ => cb.phase = CallbackPhase::Done,
                    }
                }
                Action::Offer { call, operator } => {
                    ringing[operator.0 as usize] = Some(call.0 as u32);
                    let delay = to_ms(sc.ring_delay.sample(&mut rng)).unwrap_or(u64::MAX / 4);
                    push(
                        &mut heap,
                        now + delay,
                        Event::OperatorAnswers(call.0 as u32, operator.0),
                    );
                }
                Action::Withdraw { operator, .. } => ringing[operator.0 as usize] = None,
                Action::Finished { call, outcome } => {
                    let c = &mut calls[call.0 as usize];
                    let wait = now.saturating_sub(c.enqueued_ms);
                    waiting -= 1;
                    rec.queue_length(now, waiting);
                    let confirm_ms = policy.and_then(|p| to_ms(p.confirm_secs)).unwrap_or(0);
                    if matches!(c.phase, Phase::CallbackAccepted | Phase::SmsAccepted)
                        && confirm_ms > 0
                    {
                        // The confirmation prompt plays; the channel is held until it ends.
                        push(&mut heap, now + confirm_ms, Event::Confirmed(call.0 as u32));
                    } else if c.phase == Phase::CallbackAccepted {
                        c.phase = Phase::Done;
                        in_system -= 1;
                        held[QUEUE] -= 1;
                        rec.finished(now, Outcome::CallbackRequested, Some(wait));
                    } else if c.phase == Phase::SmsAccepted {
                        // Sent the information by SMS: navbat ends it as deflected.
                        c.phase = Phase::Done;
                        in_system -= 1;
                        held[QUEUE] -= 1;
                        rec.finished(now, Outcome::Deflected, Some(wait));
                    } else if outcome == AcdOutcome::Answered {
                        held[QUEUE] -= 1;
                        held[TALK] += 1;
                        // `waiting` still counts this caller: others waited if it is above 1.
                        if now <= profile_end_ms && waiting > 0 {
                            rec.policy.conversations_live += 1;
                        }
                        c.phase = Phase::Talking;
                        for r in ringing.iter_mut().filter(|r| **r == Some(call.0 as u32)) {
                            *r = None;
                        }
                        rec.finished(now, Outcome::Answered, Some(wait));
                        out.served.push(Served {
                            enqueued_ms: c.enqueued_ms,
                            answered_ms: now,
                            callback: false,
                        });
                        let talk = to_ms(sc.handle.sample(&mut rng)).unwrap_or(0);
                        push(&mut heap, now + talk, Event::HangUp(call.0 as u32));
                    } else {
                        c.phase = Phase::Done;
                        in_system -= 1;
                        held[QUEUE] -= 1;
                        let o = match outcome {
                            AcdOutcome::Abandoned => Outcome::Abandoned,
                            AcdOutcome::TimedOut => {
                                if policy.is_some() && !c.offered {
                                    rec.policy.let_go_unoffered += 1;
                                }
                                Outcome::TimedOut
                            }
                            AcdOutcome::Blocked => Outcome::Blocked,
                            AcdOutcome::Answered => Outcome::Answered,
                        };
                        rec.finished(now, o, Some(wait));
                    }
                }
                Action::OperatorChanged {
                    operator,
                    to: OperatorState::WrapUp,
                    ..
                } => {
                    if let Some(w) = to_ms(sc.operator_wrap_up.sample(&mut rng)) {
                        if w < wrap_up_ms {
                            push(&mut heap, now + w, Event::WrapUpDone(operator.0));
                        }
                    }
                }
                Action::Rejected { .. } => out.rejected += 1,
                Action::OperatorChanged { .. } | Action::Requeued { .. } => {}
            }
        }
        out.end_ms = now;
        debug_assert_eq!(held.iter().sum::<u32>(), in_system);
        rec.channels(now, &held);
    }
    rec.close_policy(requested_by_end, completed_by_end);
    out.recorder = rec;
    Ok(out)
}

/// A single pool of `agents` bilingual operators with no IVR, no wrap-up, instant
/// answer and no limits: the M/M/N (+M) queue Erlang C (A) describes. `erlangs` of load
/// with exponential talk of mean `aht` seconds; `calls` arrivals.
pub fn mmn(agents: u32, calls: u64, erlangs: f64, aht: f64, patience: Dist) -> Scenario {
    let rate = erlangs / aht;
    Scenario {
        profile: Profile::constant(calls, calls as f64 / rate),
        seed: 20240601,
        patience,
        handle: Dist::Exp { mean: aht },
        ring_delay: Dist::Const { value: 0.0 },
        operator_wrap_up: Dist::Const { value: 0.0 },
        ivr_secs: 0.0,
        language_weights: [0.7, 0.3],
        topic_weights: [0.25, 0.25, 0.25, 0.25],
        operators: agents,
        bilingual_share: 1.0,
        reserve: 0,
        channels: 100_000,
        max_wait_secs: 1_000_000,
        ring_timeout_secs: 60,
        wrap_up_secs: 0,
        reserve_after_secs: None,
        max_waiting: None,
        target_secs: 20.0,
        surge: false,
        surge_max_wait_secs: 120,
        surge_deflect_share: 0.0,
        surge_callback_after_secs: 45.0,
        surge_callback_accept: 0.0,
        surge_policy: None,
        call_limit: u64::MAX,
    }
}

/// One row of the simulator-versus-Erlang agreement table.
#[derive(Debug, serde::Serialize)]
pub struct Agreement {
    /// Agents.
    pub agents: u32,
    /// Offered Erlangs.
    pub erlangs: f64,
    /// Mean patience in seconds (None = Erlang C).
    pub patience_secs: Option<f64>,
    /// Service level, formula and simulation.
    pub sl_formula: f64,
    /// ...
    pub sl_sim: f64,
    /// Abandonment, formula and simulation.
    pub abandon_formula: f64,
    /// ...
    pub abandon_sim: f64,
    /// Calls simulated.
    pub calls: u64,
}

/// Simulates M/M/N and M/M/N+M cases and sets them beside Erlang C and A.
pub fn agreement(
    cases: &[(u32, f64, Option<f64>)],
    calls: u64,
) -> Result<Vec<Agreement>, ScenarioError> {
    cases
        .iter()
        .map(|&(agents, erlangs, patience)| {
            let p = patience.map_or(Dist::Never, |m| Dist::Exp { mean: m });
            let out = simulate(&mmn(agents, calls, erlangs, 180.0, p), 3600.0)?;
            let f = crate::erlang::erlang_a(
                agents,
                erlangs,
                180.0,
                patience.unwrap_or(f64::INFINITY),
                20.0,
            );
            let ab = out
                .recorder
                .totals
                .get(&Outcome::Abandoned)
                .copied()
                .unwrap_or(0) as f64
                / out.placed as f64;
            Ok(Agreement {
                agents,
                erlangs,
                patience_secs: patience,
                sl_formula: f.service_level,
                sl_sim: out.recorder.service_level(),
                abandon_formula: f.p_abandon,
                abandon_sim: ab,
                calls: out.placed,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erlang::{erlang_a, erlang_c};

    fn share(out: &SimOutput, o: Outcome) -> f64 {
        out.recorder.totals.get(&o).copied().unwrap_or(0) as f64 / out.placed as f64
    }

    /// M/M/N against Erlang C, for the case (10 Erlangs, 14 agents) and a larger one.
    #[test]
    fn agrees_with_erlang_c() {
        for (agents, erlangs) in [(14, 10.0), (45, 40.0)] {
            let out = simulate(&mmn(agents, 200_000, erlangs, 180.0, Dist::Never), 3600.0).unwrap();
            assert_eq!(out.rejected, 0);
            assert_eq!(out.recorder.ended(), 200_000);
            let c = erlang_c(agents, erlangs, 180.0, 20.0);
            let sl = out.recorder.service_level();
            assert!(
                (sl - c.service_level).abs() < 0.02,
                "N={agents}: sim {sl} vs C {}",
                c.service_level
            );
        }
    }

    /// M/M/N+M against Erlang A: service level and abandonment, under and over load.
    #[test]
    fn agrees_with_erlang_a() {
        for (agents, erlangs, patience) in [(13, 10.0, 300.0), (10, 12.0, 120.0), (40, 45.0, 60.0)]
        {
            let out = simulate(
                &mmn(
                    agents,
                    200_000,
                    erlangs,
                    180.0,
                    Dist::Exp { mean: patience },
                ),
                3600.0,
            )
            .unwrap();
            assert_eq!(out.rejected, 0);
            let a = erlang_a(agents, erlangs, 180.0, patience, 20.0);
            let sl = out.recorder.service_level();
            let ab = share(&out, Outcome::Abandoned);
            assert!(
                (sl - a.service_level).abs() < 0.02,
                "{agents}/{erlangs}: sim SL {sl} vs A {}",
                a.service_level
            );
            assert!(
                (ab - a.p_abandon).abs() < 0.02,
                "{agents}/{erlangs}: sim abandon {ab} vs A {}",
                a.p_abandon
            );
        }
    }

    /// Every placed call ends exactly once, and a fixed seed gives the same result.
    #[test]
    fn results_day_accounts_for_every_call_and_is_reproducible() {
        let sc = crate::scenario::tests::scenario();
        let a = simulate(&sc, 60.0).unwrap();
        let b = simulate(&sc, 60.0).unwrap();
        assert_eq!(a.recorder.ended(), 150_000);
        assert_eq!(a.rejected, 0);
        assert_eq!(a.recorder.totals, b.recorder.totals);
        assert!(
            a.recorder
                .totals
                .get(&Outcome::Blocked)
                .copied()
                .unwrap_or(0)
                > 0
        );
    }

    /// One queue and one operator, callers who never hang up, half of them taking the
    /// callback: every callback keeps its caller's place, so the operator answers live
    /// calls and callbacks strictly in the order the callers joined the queue, and every
    /// callback is served (none starved).
    #[test]
    fn callbacks_are_served_at_their_callers_places() {
        let mut sc = mmn(1, 400, 1.5, 60.0, Dist::Never);
        sc.language_weights = [1.0, 0.0];
        sc.ring_delay = Dist::Const { value: 2.0 };
        sc.handle = Dist::Const { value: 60.0 };
        sc.surge = true;
        sc.surge_max_wait_secs = 1_000_000;
        sc.surge_callback_after_secs = 30.0;
        sc.surge_callback_accept = 0.5;
        let out = simulate(&sc, 60.0).unwrap();
        assert_eq!(out.rejected, 0);
        assert_eq!(out.recorder.ended(), 400);
        let cb = &out.recorder.callbacks;
        let requested = out.recorder.totals[&Outcome::CallbackRequested];
        assert_eq!(cb.requested, requested);
        assert!(cb.requested > 100, "{}", cb.requested);
        assert_eq!(cb.completed, cb.requested);
        assert_eq!(cb.pending(), 0);
        assert_eq!(out.served.len() as u64, 400);
        assert!(out.served.iter().any(|s| s.callback));
        for pair in out.served.windows(2) {
            assert!(
                pair[0].enqueued_ms <= pair[1].enqueued_ms,
                "served out of arrival order: {pair:?}"
            );
        }
    }

    /// With few channels a callback's dial-out waits for one: never more channels in use
    /// than the limit, the callbacks still all complete, and callers blocked at the door
    /// show the channels were full meanwhile.
    #[test]
    fn callback_dial_outs_take_channels() {
        let mut sc = mmn(2, 600, 8.0, 60.0, Dist::Never);
        sc.language_weights = [1.0, 0.0];
        sc.channels = 4;
        // Wrap-up: an operator becomes free some time after their call gave its channel
        // back, by when a new caller may hold it.
        sc.wrap_up_secs = 15;
        sc.operator_wrap_up = Dist::Const { value: 15.0 };
        sc.surge = true;
        sc.surge_max_wait_secs = 1_000_000;
        sc.surge_callback_after_secs = 10.0;
        sc.surge_callback_accept = 1.0;
        let out = simulate(&sc, 60.0).unwrap();
        assert_eq!(out.rejected, 0);
        assert_eq!(out.recorder.ended(), 600);
        assert!(out.recorder.totals[&Outcome::Blocked] > 0);
        assert!(out.peak_channels <= 4, "{}", out.peak_channels);
        let cb = &out.recorder.callbacks;
        assert!(cb.requested > 0);
        assert_eq!(cb.completed, cb.requested);
    }

    #[test]
    fn the_confirmation_holds_the_channel_and_every_call_still_ends_once() {
        let mut sc = crate::scenario::tests::scenario();
        sc.call_limit = 20_000;
        sc.surge = true;
        sc.surge_deflect_share = 0.25;
        sc.surge_callback_accept = 0.3;
        sc.surge_policy = Some(crate::scenario::SurgePolicy {
            confirm_secs: 0.0,
            ..crate::scenario::SurgePolicy::default()
        });
        let quick = simulate(&sc, 60.0).unwrap();
        sc.surge_policy = Some(crate::scenario::SurgePolicy {
            confirm_secs: 6.3,
            ..crate::scenario::SurgePolicy::default()
        });
        let held = simulate(&sc, 60.0).unwrap();
        for out in [&quick, &held] {
            assert_eq!(out.recorder.ended(), 20_000);
            assert_eq!(out.rejected, 0);
        }
        let p = &held.recorder.policy;
        let taken = p.took_sms + p.took_callback_today + p.took_callback_next_morning;
        assert!(taken > 0);
        // Takers hold their channel while the confirmation plays: the channels held in the
        // queue phase reach higher than when they are freed at once.
        let peak = |o: &SimOutput| {
            o.recorder
                .buckets
                .iter()
                .map(|b| b.channels_max[QUEUE])
                .max()
                .unwrap_or(0)
        };
        assert!(peak(&held) >= peak(&quick));
        let blocked = |o: &SimOutput| o.recorder.totals.get(&Outcome::Blocked).copied();
        assert!(blocked(&held) > blocked(&quick));
    }

    #[test]
    fn surge_deflects_its_share_and_shortens_the_longest_wait() {
        let mut sc = crate::scenario::tests::scenario();
        sc.call_limit = 20_000;
        let normal = simulate(&sc, 60.0).unwrap();
        sc.surge = true;
        sc.surge_max_wait_secs = 120;
        sc.surge_deflect_share = 0.25;
        let surge = simulate(&sc, 60.0).unwrap();
        assert_eq!(surge.recorder.ended(), 20_000);
        assert_eq!(surge.rejected, 0);
        let count = |o: &SimOutput, outcome| o.recorder.totals.get(&outcome).copied().unwrap_or(0);
        assert_eq!(count(&normal, Outcome::Deflected), 0);
        assert!(count(&surge, Outcome::Deflected) > 0);
        assert!(count(&surge, Outcome::Blocked) < count(&normal, Outcome::Blocked));
    }
}
