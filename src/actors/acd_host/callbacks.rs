//! Surge callbacks in the router: the book's requests go into the routing core at their
//! original places, the core's offers become dial-outs (`actors::callback`), and the dial-outs'
//! ends go back to the book. The decisions are the pure `crate::callback` core's.

use super::*;

// ----- surge callbacks ----------------------------------------------------------------------

/// The callback book, empty: pending requests of earlier runs come from the store in
/// `started`.
pub(super) fn open_callbacks(shared: &Shared) -> CallbackHost {
    let config = &shared.config;
    let mut book = CallbackBook::new(
        CallbackPolicy {
            max_attempts: 3,
            retry_after_ms: 120_000,
        },
        config.callbacks.capacity,
    );
    for t in &config.tenants {
        if let Some(offer) = &t.surge.callback {
            book.set_tenant_policy(
                &t.id,
                CallbackPolicy {
                    max_attempts: offer.max_attempts,
                    retry_after_ms: offer.retry_after.as_millis() as i64,
                },
            );
        }
    }
    CallbackHost::new(book, shared.store.is_some())
}

impl AcdActor {
    /// Pending callbacks of earlier runs the store has recovered go back into their queues,
    /// in arrival order. Called at start and, until the store has its database's part, every
    /// [`RECOVERY_CHECK`]; only a mutex is taken, nothing waits on the database.
    pub(super) fn restore_callbacks(&mut self, ctx: &mut Context<Self>) {
        let Some(store) = self.shared.store.clone() else {
            self.callbacks.recovering = false;
            return;
        };
        let recovered = store.take_recovered_callbacks();
        let mut pending = recovered.items;
        pending.sort_by_key(|r| (r.arrived_ms, r.id.clone()));
        let mut restored = 0usize;
        for request in pending {
            let id = request.id.clone();
            if self.callbacks.finished.contains(&id) || self.callbacks.book.get(&id).is_some() {
                continue;
            }
            if self.shared.model.queue(&request.queue).is_none() {
                tracing::warn!(callback = %id, "pending callback for a queue no longer configured");
                continue;
            }
            let attempts = request.attempts;
            match self.callbacks.book.request(request) {
                Ok(()) => {
                    restored += 1;
                    self.schedule_callback(&id, ctx);
                }
                Err(CallbackError::AlreadyPending(newer)) => {
                    // Came back late (the database was down at start-up) after the caller had
                    // booked again: the booking in the core stands; this one is closed so that
                    // it does not stay pending in the table for ever.
                    tracing::warn!(callback = %id, kept = %newer, "recovered callback superseded by a newer booking");
                    if let Err(e) = self.record_callback(CallbackRecord::Finished {
                        id: id.clone(),
                        outcome: CallbackOutcome::Superseded,
                        attempts,
                    }) {
                        tracing::error!(error = %e, "callback progress not stored");
                    }
                }
                Err(CallbackError::Full(_)) => {
                    tracing::warn!(callback = %id, "callback book full: recovered callback waits for the next start");
                }
            }
        }
        if restored > 0 {
            tracing::info!(restored, "pending callbacks resumed");
        }
        if recovered.complete {
            self.callbacks.recovering = false;
            self.callbacks.finished = std::collections::HashSet::new();
        }
    }

    /// Hands a step of the book to the store. `Ok(None)`: no store.
    pub(super) fn record_callback(
        &self,
        record: CallbackRecord,
    ) -> Result<Option<tokio::sync::oneshot::Receiver<()>>, crate::store::BufferFull> {
        match &self.shared.store {
            Some(store) => store.record(StoreRecord::Callback(record)).map(Some),
            None => Ok(None),
        }
    }

    /// Puts a pending callback into its queue when it is due.
    pub(super) fn schedule_callback(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(request) = self.callbacks.book.get(id) else {
            return;
        };
        let wait = request.due_ms - wall_ms();
        if wait > 0 {
            let id = id.to_string();
            ctx.run_later(Duration::from_millis(wait as u64), move |act, ctx| {
                act.enqueue_callback(&id, ctx)
            });
        } else {
            self.enqueue_callback(id, ctx);
        }
    }

    /// The callback joins the core at its original arrival.
    pub(super) fn enqueue_callback(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(request) = self.callbacks.book.get(id) else {
            return;
        };
        let Some(queue) = self.shared.model.queue(&request.queue) else {
            return;
        };
        let now = self.shared.now();
        let ago = (wall_ms() - request.arrived_ms).max(0) as u64;
        let priority = self
            .shared
            .config
            .queues
            .get(queue.0 as usize)
            .map(|q| q.priority)
            .unwrap_or(0);
        let call = self.callbacks.core_id();
        self.callbacks.in_core.insert(call, id.to_string());
        self.call_queue.insert(call, queue);
        self.feed(
            Input::EnqueueCallback {
                call,
                queue,
                priority,
                skills: SkillSet::EMPTY,
                arrived: Millis(now.0.saturating_sub(ago)),
            },
            ctx,
        );
    }

    /// The core offered a callback to `operator`: claim the operator (shared presence), then
    /// start the dial-out.
    pub(super) fn dial_callback(
        &mut self,
        call: CallId,
        operator: OperatorId,
        ctx: &mut Context<Self>,
    ) {
        if self.callbacks.actors.contains_key(&call) {
            // Ring-all: a callback rings one operator at a time.
            self.feed(Input::Declined { call, operator }, ctx);
            return;
        }
        let Some(id) = self
            .callbacks
            .in_core
            .get(&call)
            .filter(|id| self.callbacks.book.get(id).is_some())
            .cloned()
        else {
            self.feed(Input::CallerLeft { call }, ctx);
            return;
        };
        self.claim_then_reach(call, operator, Reach::Callback, id, ctx);
    }

    /// The operator is ours: take a trunk channel and start the dial-out.
    pub(super) fn start_callback_dial(
        &mut self,
        call: CallId,
        operator: OperatorId,
        binding: Option<crate::sip::ContactBinding>,
        ctx: &mut Context<Self>,
    ) {
        if self.callbacks.actors.contains_key(&call) {
            self.feed(Input::Declined { call, operator }, ctx);
            return;
        }
        let request = self
            .callbacks
            .in_core
            .get(&call)
            .and_then(|id| self.callbacks.book.get(id))
            .cloned();
        let Some(request) = request else {
            self.feed(Input::CallerLeft { call }, ctx);
            return;
        };
        // The dial-out goes through the trunk, so it holds a channel like an inbound call
        // (D6). It is taken before the operator is rung, so an operator never answers a
        // callback that then cannot be dialled. With none free the callback leaves the core
        // (its operator is free for the live callers, who already hold channels) and comes
        // back at its original place a moment later; that is not an attempt.
        let tenant = self
            .shared
            .config
            .tenants
            .iter()
            .position(|t| t.id == request.tenant)
            .unwrap_or(0);
        let ticket = match self.shared.gate.try_acquire(tenant) {
            Ok(ticket) => ticket,
            Err(reason) => {
                tracing::debug!(callback = %request.id, ?reason, "no free channel for a callback");
                let now = self.shared.now();
                self.callbacks.readmission.park(
                    now,
                    request.id.clone(),
                    tenant,
                    request.arrived_ms,
                );
                self.feed(Input::CallerLeft { call }, ctx);
                self.schedule_readmission(ctx);
                return;
            }
        };
        // As for a live call, the offer is an event once the claim is won and the phone is
        // actually rung.
        self.shared.events.emit(EventKind::CallOffered {
            call: self.call_name(call),
            queue: self.queue_of(call),
            operator: self.ext(operator),
        });
        let actor = CallbackActor::new(
            self.shared.clone(),
            ctx.address(),
            call,
            request,
            operator,
            binding,
            ticket,
        )
        .start();
        self.callbacks.actors.insert(call, actor);
        self.callbacks.operators.insert(call, operator);
    }

    /// Arms the timer of the readmission core's next check, if it has one and none is armed
    /// for that time. At the check, callbacks that found no free channel come back to their
    /// places, as many as the gate has free channels (none while it is full or draining).
    pub(super) fn schedule_readmission(&mut self, ctx: &mut Context<Self>) {
        let next = self.callbacks.readmission.poll_timeout();
        let now = self.shared.now();
        self.callbacks
            .readmit_timer
            .rearm(next, now, ctx, |act: &mut Self, ctx| {
                act.callbacks.readmit_timer.fired();
                let now = act.shared.now();
                let gate = act.shared.gate.clone();
                let book = &act.callbacks.book;
                let back = act
                    .callbacks
                    .readmission
                    .handle_timeout(now, &*gate, |id| book.get(id).is_some());
                for id in back {
                    act.enqueue_callback(&id, ctx);
                }
                act.schedule_readmission(ctx);
            });
    }

    /// The core withdrew a callback's offer: its dial-out stops quietly.
    pub(super) fn withdraw_callback(&mut self, call: CallId, operator: OperatorId) {
        if self.callbacks.operators.get(&call) == Some(&operator) {
            self.callbacks.operators.remove(&call);
            if let Some(actor) = self.callbacks.actors.remove(&call) {
                actor.do_send(CallbackWithdraw);
            }
        }
    }

    pub(super) fn refuse_callback<T>(
        &self,
        call: &str,
        tenant: &str,
        reason: CallbackRefusal,
    ) -> Result<T, CallbackRefusal> {
        self.shared.events.emit(EventKind::CallbackRefused {
            call: call.into(),
            tenant: tenant.into(),
            reason: reason.label().into(),
        });
        Err(reason)
    }

    /// A waiting caller accepted the callback offer. `Ok`: the request's id, and the
    /// receiver that resolves once the booking is fsynced (`None` without a store).
    pub(super) fn request_callback(
        &mut self,
        msg: RequestCallback,
        ctx: &mut Context<Self>,
    ) -> Result<(String, Option<tokio::sync::oneshot::Receiver<()>>), CallbackRefusal> {
        let tenant = self
            .shared
            .model
            .tenant_name(self.shared.model.queue_tenant(msg.queue));
        let tenant = tenant.to_string();
        if !self.calls.contains_key(&msg.call) {
            return self.refuse_callback(&msg.call_ref, &tenant, CallbackRefusal::NotWaiting);
        }
        let Some(offer) = self
            .shared
            .config
            .tenant(&tenant)
            .and_then(|t| t.surge.callback)
        else {
            return self.refuse_callback(&msg.call_ref, &tenant, CallbackRefusal::Disabled);
        };
        let Ok(number) = crate::sms::E164::parse(msg.number.expose()) else {
            return self.refuse_callback(&msg.call_ref, &tenant, CallbackRefusal::InvalidNumber);
        };
        // A callback promised for the next morning's window is due at its start.
        let due_ms = if msg.next_morning {
            match self.next_morning_due_ms(&tenant) {
                Some(due) => due,
                None => {
                    return self.refuse_callback(&msg.call_ref, &tenant, CallbackRefusal::Disabled)
                }
            }
        } else {
            0
        };
        let now = self.shared.now();
        let waited = now.0.saturating_sub(msg.enqueued_at.0) as i64;
        let request = CallbackRequest {
            id: self.callbacks.request_id(&self.shared.config.node.id),
            tenant: tenant.clone(),
            queue: self.shared.model.queue_name(msg.queue).to_string(),
            number: number.expose().to_string(),
            language: msg.language,
            arrived_ms: wall_ms() - waited,
            attempts: 0,
            due_ms,
            call: msg.call_ref.clone(),
        };
        self.callbacks.book.set_tenant_policy(
            &tenant,
            CallbackPolicy {
                max_attempts: offer.max_attempts,
                retry_after_ms: offer.retry_after.as_millis() as i64,
            },
        );
        if let Err(e) = self.callbacks.book.request(request.clone()) {
            return self.refuse_callback(&msg.call_ref, &tenant, e.into());
        }
        let durable = match self.record_callback(CallbackRecord::Requested(request.clone())) {
            Ok(durable) => durable,
            Err(e) => {
                tracing::error!(error = %e, "callback not stored");
                self.callbacks.book.remove(&request.id);
                return self.refuse_callback(&msg.call_ref, &tenant, CallbackRefusal::Store);
            }
        };
        // The live call leaves the queue; its outcome is the call actor's (callback_requested),
        // so the core's `abandoned` for it is neither tallied nor delivered.
        self.calls.remove(&msg.call);
        self.call_queue.remove(&msg.call);
        self.open_offers.remove(&msg.call);
        self.feed(Input::CallerLeft { call: msg.call }, ctx);
        self.shared.events.emit(EventKind::CallbackRequested {
            callback: request.id.clone(),
            call: msg.call_ref,
            tenant,
            queue: request.queue.clone(),
            number: PhoneNumber::new(request.number.clone()),
            language: request.language.clone(),
        });
        self.schedule_callback(&request.id, ctx);
        Ok((request.id, durable))
    }

    /// A dial-out reported progress.
    pub(super) fn on_callback_progress(&mut self, msg: CallbackProgress, ctx: &mut Context<Self>) {
        match msg {
            CallbackProgress::OperatorAnswered { call, operator } => {
                self.feed(Input::Answered { call, operator }, ctx);
            }
            CallbackProgress::OperatorDeclined {
                call,
                operator,
                status,
            } => {
                if self.callbacks.operators.get(&call) != Some(&operator) {
                    return; // withdrawn meanwhile
                }
                self.callbacks.operators.remove(&call);
                self.callbacks.actors.remove(&call);
                let id = self
                    .callbacks
                    .in_core
                    .get(&call)
                    .cloned()
                    .unwrap_or_default();
                self.shared.events.emit(EventKind::OfferDeclined {
                    call: id,
                    operator: self.ext(operator),
                    status,
                });
                self.feed(Input::Declined { call, operator }, ctx);
            }
            CallbackProgress::Ended { call, end } => {
                let Some(operator) = self.callbacks.operators.remove(&call) else {
                    return;
                };
                self.callbacks.actors.remove(&call);
                let Some(id) = self.callbacks.in_core.get(&call).cloned() else {
                    return;
                };
                self.feed(Input::CallEnded { call }, ctx);
                self.callbacks.in_core.remove(&call);
                self.call_queue.remove(&call);
                self.on_callback_attempt(&id, operator, end, ctx);
            }
        }
    }

    /// Records an attempt and applies the book's decision.
    pub(super) fn on_callback_attempt(
        &mut self,
        id: &str,
        operator: OperatorId,
        end: DialEnd,
        ctx: &mut Context<Self>,
    ) {
        let Some(request) = self.callbacks.book.get(id).cloned() else {
            return;
        };
        let (status, talk_ms) = match end {
            DialEnd::Connected { talk_ms } => (None, talk_ms),
            DialEnd::NotReached { status } => (Some(status), 0),
            DialEnd::OperatorLeft => (None, 0),
        };
        self.shared.events.emit(EventKind::CallbackAttempt {
            callback: id.to_string(),
            call: request.call.clone(),
            queue: request.queue.clone(),
            operator: self.ext(operator),
            attempt: request.attempts + 1,
            result: end.label().into(),
            status,
            talk_ms,
        });
        let result = match end {
            // Not the caller's attempt: back to the queue at once, at the same place.
            DialEnd::OperatorLeft => return self.enqueue_callback(id, ctx),
            DialEnd::Connected { .. } => DialResult::Connected,
            DialEnd::NotReached { .. } => DialResult::NoAnswer,
        };
        let Some(outcome) = self.callbacks.book.on_dial_result(id, result, wall_ms()) else {
            return;
        };
        let record = match &outcome {
            CallbackOutcome::Retry { due_ms } => CallbackRecord::Retry {
                id: id.to_string(),
                attempts: request.attempts + 1,
                due_ms: *due_ms,
            },
            other => {
                if self.callbacks.recovering {
                    self.callbacks.finished.insert(id.to_string());
                }
                CallbackRecord::Finished {
                    id: id.to_string(),
                    outcome: other.clone(),
                    attempts: request.attempts + 1,
                }
            }
        };
        // Not waited for: lost only with a crash inside one fsync (the request is then
        // dialled again after the restart).
        if let Err(e) = self.record_callback(record) {
            tracing::error!(error = %e, "callback progress not stored");
        }
        match outcome {
            CallbackOutcome::Retry { .. } => self.schedule_callback(id, ctx),
            done => {
                self.shared.events.emit(EventKind::CallbackFinished {
                    callback: id.to_string(),
                    call: request.call,
                    tenant: request.tenant,
                    queue: request.queue,
                    outcome: match done {
                        CallbackOutcome::Connected => "connected",
                        _ => "gave_up",
                    }
                    .into(),
                    attempts: request.attempts + 1,
                });
            }
        }
    }
}

/// A waiting caller accepts the callback offer. `Ok`: the request's id; the call leaves the
/// queue. `Err`: why not ([`CallbackRefusal`]); the call keeps waiting.
#[derive(Message)]
#[rtype(result = "Result<String, CallbackRefusal>")]
pub struct RequestCallback {
    /// The call.
    pub call: CallId,
    /// Its external name.
    pub call_ref: String,
    /// Its queue.
    pub queue: QueueId,
    /// The caller's number.
    pub number: PhoneNumber,
    /// The language chosen.
    pub language: String,
    /// When it joined the queue: the place the callback keeps.
    pub enqueued_at: Millis,
    /// Promised for the next morning's window (the door policy): due at its start.
    pub next_morning: bool,
}

/// Answers once the booking is fsynced, so a caller hears "booked" only for a request that
/// survives a crash; the host goes on meanwhile (nothing here waits on the database).
impl Handler<RequestCallback> for AcdActor {
    type Result = ResponseActFuture<Self, Result<String, CallbackRefusal>>;
    fn handle(&mut self, msg: RequestCallback, ctx: &mut Context<Self>) -> Self::Result {
        match self.request_callback(msg, ctx) {
            Err(reason) => Box::pin(fut::ready(Err(reason))),
            Ok((id, None)) => Box::pin(fut::ready(Ok(id))),
            Ok((id, Some(durable))) => Box::pin(
                async move {
                    // The caller's actor waits for this answer, so a journal disk that stopped
                    // taking writes must not hold it for ever: after a while the booking
                    // stands as it is (in the book, and journaled once the disk recovers).
                    match tokio::time::timeout(BOOKING_DURABLE_WAIT, durable).await {
                        Ok(_) => {}
                        Err(_) => tracing::error!(
                            callback = %id,
                            "callback booked before it reached the journal disk"
                        ),
                    }
                    Ok(id)
                }
                .into_actor(self),
            ),
        }
    }
}

impl Handler<CallbackProgress> for AcdActor {
    type Result = ();
    fn handle(&mut self, msg: CallbackProgress, ctx: &mut Context<Self>) {
        self.on_callback_progress(msg, ctx);
    }
}

/// Shutdown: ends every callback dial-out in progress (a connected one is finished, one not
/// yet connected stays pending in the store and resumes at the next start). Returns how many.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct HangUpCallbacks;

impl Handler<HangUpCallbacks> for AcdActor {
    type Result = usize;
    fn handle(&mut self, _: HangUpCallbacks, _: &mut Context<Self>) -> usize {
        for actor in self.callbacks.actors.values() {
            actor.do_send(crate::actors::callback::CallbackHangUp);
        }
        self.callbacks.actors.len()
    }
}
