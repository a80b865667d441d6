//! The results-day door policy in the router (issue 19): when a call joins a queue in surge,
//! the host asks the pure `callback::door` core what to offer, with the routing core's own
//! figures (its one expected-wait estimate, the queue's active maximum wait, the operators on
//! duty across the tenant's queues) and the book's promises; at `offer_after` the call asks
//! again, so capacity is checked when the offer is made. Every offer is a `door_offer` event.

use super::*;
use crate::callback::door::{window_capacity, CallbackWhen, Capacity, DoorPolicy, Offer};
use crate::config::{DoorConfig, Tenant};

impl AcdActor {
    /// The tenant of `queue`, its door settings and the policy, when it has
    /// `[tenant.surge.door]` and the queue is in surge.
    fn door_of(&self, queue: QueueId) -> Option<(&Tenant, DoorConfig, DoorPolicy)> {
        if !self.core.surge(queue) {
            return None;
        }
        let tid = self.shared.model.queue_tenant(queue);
        let tenant = self.shared.config.tenants.get(tid.0 as usize)?;
        let door = tenant.surge.door?;
        let queues = self.tenant_queues(tid);
        let window_ms = door
            .next_morning
            .map_or(0, |w| w.length().as_millis() as u64);
        Some((
            tenant,
            door,
            DoorPolicy {
                offer_above_ms: door.offer_above.as_millis() as u64,
                sms: self.sms_offered(),
                next_morning_capacity: window_capacity(
                    self.core.staff_for(&queues),
                    self.callback_share_percent(tenant),
                    window_ms,
                    self.callback_cost_ms(queue),
                ),
            },
        ))
    }

    fn tenant_queues(&self, tenant: TenantId) -> Vec<QueueId> {
        self.shared
            .model
            .queue_ids()
            .filter(|q| self.shared.model.queue_tenant(*q) == tenant)
            .collect()
    }

    /// What a callback costs an operator: the average handle time and the queue's wrap-up.
    fn callback_cost_ms(&self, queue: QueueId) -> u64 {
        let wrap_up = self.core.active_params(queue).map_or(0, |p| p.wrap_up_ms);
        self.shared.config.media.average_handle.as_millis() as u64 + wrap_up
    }

    /// The share of operator time callbacks may take: all but the live reserve.
    fn callback_share_percent(&self, tenant: &Tenant) -> u8 {
        100 - tenant
            .surge
            .callback
            .map_or(0, |c| c.live_reserve_percent.min(100))
    }

    /// The SMS is offered when it can be sent: a gateway and a deflection text.
    fn sms_offered(&self) -> bool {
        self.shared.config.sms.as_ref().is_some_and(|s| {
            s.templates
                .contains_key(&crate::sms::MessageKind::Deflection)
        })
    }

    /// The figures a callback promise is checked against, now.
    fn door_capacity(&self, queue: QueueId, tenant: &Tenant, door: &DoorConfig) -> Capacity {
        let tid = self.shared.model.queue_tenant(queue);
        let queues = self.tenant_queues(tid);
        let now = jiff::Timestamp::now();
        let until_close_ms = tenant.until_close_ms(now);
        // Promised for the morning: due at or after today's closing.
        let split = now.as_millisecond() + until_close_ms as i64;
        let (pending_today, promised) = self.callbacks.book.pending_split(&tenant.id, split);
        let (mut open_today, mut open_next_morning) = (0, 0);
        for (t, when) in self.open_offers.values() {
            if *t == tid {
                match when {
                    CallbackWhen::Today => open_today += 1,
                    CallbackWhen::NextMorning => open_next_morning += 1,
                }
            }
        }
        Capacity {
            serving: self.core.on_duty_for(&queues),
            handle_ms: self.callback_cost_ms(queue),
            callback_share_percent: self.callback_share_percent(tenant),
            until_close_ms,
            pending_today,
            promised_next_morning: if door.next_morning.is_some() {
                promised as u32
            } else {
                0
            },
            open_today,
            open_next_morning,
        }
    }

    /// Before a call joins `queue`: the offer at the door, when the tenant's policy says
    /// the wait is long (or the maximum wait comes before the in-queue offer, so that
    /// nobody is let go without an offer). Computed before the call is in the core, so the
    /// wait is the one it is about to face.
    pub(super) fn offer_at_entry(&mut self, call: CallId, queue: QueueId) -> Option<Offer> {
        let (tenant, door, policy) = self.door_of(queue)?;
        let now = self.shared.now();
        let handle_ms = self.shared.config.media.average_handle.as_millis() as u64;
        let expected = self.core.expected_wait_ms(queue, now, handle_ms);
        let max_wait = self.core.active_params(queue).map_or(0, |p| p.max_wait_ms);
        let capacity = self.door_capacity(queue, tenant, &door);
        let offer_after = tenant
            .surge
            .callback
            .map_or(0, |c| c.offer_after.as_millis() as u64);
        let offer = policy.at_queue_entry(expected, max_wait, offer_after, &capacity);
        if !offer.is_some() {
            return None;
        }
        self.emit_door_offer(call, queue, tenant, true, offer);
        self.hold_place(call, queue, offer);
        Some(offer)
    }

    /// The in-queue offer at `offer_after`: what can be offered now (nothing outside surge
    /// or without a door policy).
    pub(super) fn offer_in_queue(&mut self, call: CallId, queue: QueueId) -> Offer {
        let Some((tenant, door, policy)) = self.door_of(queue) else {
            return Offer::default();
        };
        let offer = policy.offer(&self.door_capacity(queue, tenant, &door));
        if offer.is_some() {
            self.emit_door_offer(call, queue, tenant, false, offer);
            self.hold_place(call, queue, offer);
        }
        offer
    }

    /// A callback offered holds its place until the offer closes ([`DoorClosed`]).
    fn hold_place(&mut self, call: CallId, queue: QueueId, offer: Offer) {
        if let Some(when) = offer.callback {
            let tenant = self.shared.model.queue_tenant(queue);
            self.open_offers.insert(call, (tenant, when));
        }
    }

    fn emit_door_offer(
        &self,
        call: CallId,
        queue: QueueId,
        tenant: &Tenant,
        at_door: bool,
        offer: Offer,
    ) {
        self.shared.events.emit(EventKind::DoorOffer {
            call: call_ref(call),
            tenant: tenant.id.clone(),
            queue: self.shared.model.queue_name(queue).to_string(),
            at_door,
            callback: match offer.callback {
                Some(CallbackWhen::Today) => "today",
                Some(CallbackWhen::NextMorning) => "next_morning",
                None => "none",
            }
            .into(),
            sms: offer.sms,
        });
    }

    /// When a callback promised for the next morning is due: the window's start, in the
    /// tenant's time zone (Unix milliseconds).
    pub(super) fn next_morning_due_ms(&self, tenant: &str) -> Option<i64> {
        let tenant = self.shared.config.tenant(tenant)?;
        let window = tenant.surge.door?.next_morning?;
        Some(tenant.next_local(jiff::Timestamp::now(), window.start))
    }
}

/// The call asks, at `offer_after`, what the door policy offers now.
#[derive(Message)]
#[rtype(result = "Offer")]
pub struct AskDoorOffer {
    /// The call.
    pub call: CallId,
    /// Its queue.
    pub queue: QueueId,
}

impl Handler<AskDoorOffer> for AcdActor {
    type Result = MessageResult<AskDoorOffer>;
    fn handle(&mut self, msg: AskDoorOffer, _: &mut Context<Self>) -> Self::Result {
        if !self.calls.contains_key(&msg.call) {
            return MessageResult(Offer::default());
        }
        MessageResult(self.offer_in_queue(msg.call, msg.queue))
    }
}

/// The caller took the information by SMS: the call leaves the queue; its outcome is the
/// call actor's (`deflected`), so the core's `abandoned` is neither tallied nor delivered.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeftForSms(pub CallId);

impl Handler<LeftForSms> for AcdActor {
    type Result = ();
    fn handle(&mut self, msg: LeftForSms, ctx: &mut Context<Self>) {
        self.open_offers.remove(&msg.0);
        if self.calls.remove(&msg.0).is_none() {
            return;
        }
        self.call_queue.remove(&msg.0);
        self.feed(Input::CallerLeft { call: msg.0 }, ctx);
    }
}

/// The door offer made to a call is closed (keyed, declined, or the call moved on): its
/// callback place is free again unless the key booked it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DoorClosed(pub CallId);

impl Handler<DoorClosed> for AcdActor {
    type Result = ();
    fn handle(&mut self, msg: DoorClosed, _: &mut Context<Self>) {
        self.open_offers.remove(&msg.0);
    }
}
