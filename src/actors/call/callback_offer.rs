//! The in-queue callback offer (surge mode): a caller who has waited the tenant's
//! `offer_after` while surge is on hears `callback-offer-intro` then `press-<key>` (in their
//! language; the key is the tenant's, see `media::announce::callback_offer`) and accepts with
//! that key (RFC 4733 or INFO, as in the IVR). The ACD host books the callback with
//! the time the caller joined the queue, so the callback keeps their place; the caller hears
//! `callback-booked` and the call ends `callback_requested` (the confirmation SMS follows
//! from that outcome when SMS is on). A refused request (for instance one already pending for
//! this number) leaves the caller waiting.

use super::{CallActor, Phase};
use crate::acd::TenantId;
use crate::actors::acd_host::RequestCallback;
use crate::events::CallOutcome;
use crate::media::MediaCommand;
use actix::prelude::*;

impl CallActor {
    /// Arms the offer when the call joins its queue (if the tenant offers callbacks).
    pub(super) fn arm_callback_offer(&mut self, ctx: &mut Context<Self>) {
        let Some(offer) = self.shared.config.tenants[self.tenant].surge.callback else {
            return;
        };
        ctx.run_later(offer.offer_after, |act, ctx| act.offer_callback(ctx));
    }

    fn offer_callback(&mut self, _: &mut Context<Self>) {
        let Some(offer) = self.shared.config.tenants[self.tenant].surge.callback else {
            return;
        };
        if self.phase != Phase::Queued
            || self.callback_offered
            || !self.shared.model.surge_on(TenantId(self.tenant as u16))
        {
            return;
        }
        self.callback_offered = true;
        // Each language's offer whole (invitation, then its key) before the next one's.
        let languages: Vec<String> = match &self.language {
            Some(l) => vec![l.clone()],
            None => crate::config::SUPPORTED_LANGUAGES
                .iter()
                .map(|l| l.to_string())
                .collect(),
        };
        let names = crate::media::announce::callback_offer(offer.digit.as_char());
        let clips: Vec<_> = languages
            .iter()
            .flat_map(|l| names.iter().flat_map(|n| self.clips(n, Some(l))))
            .collect();
        self.play(clips);
    }

    /// A key while queued: the callback acceptance, or nothing.
    pub(super) fn on_queued_digit(&mut self, digit: char, ctx: &mut Context<Self>) {
        let Some(offer) = self.shared.config.tenants[self.tenant].surge.callback else {
            return;
        };
        if !self.callback_offered || self.callback_asked || digit != offer.digit.as_char() {
            return;
        }
        let (Some(queue), Some(enqueued_at)) = (self.queue, self.enqueued_at) else {
            return;
        };
        self.callback_asked = true;
        let request = RequestCallback {
            call: self.id,
            call_ref: self.call_ref.clone(),
            queue,
            number: self.caller.clone(),
            language: self.language.clone().unwrap_or_else(|| "uz".into()),
            enqueued_at,
        };
        self.acd
            .send(request)
            .into_actor(self)
            .map(|result, act, ctx| match result {
                Ok(Ok(_)) if act.phase == Phase::Queued => act.leave_for_callback(ctx),
                Ok(Ok(_)) => {}
                // Refused (the reason is an event): the caller keeps waiting; one try.
                Ok(Err(_)) | Err(_) => {}
            })
            .wait(ctx);
    }

    /// The callback is booked: confirm, then hang up with `callback_requested`.
    fn leave_for_callback(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Leaving;
        self.drop_all_offers();
        self.stop_waiting_media(ctx);
        if let Some(s) = &self.media.session {
            s.send(MediaCommand::StopPrompts);
            s.send(MediaCommand::Music(None));
        }
        let language = self.language.clone();
        let clips = self.clips("callback-booked", language.as_deref());
        if !clips.is_empty() {
            if let Some(id) = self.play(clips) {
                self.media.hangup_after = Some((id, CallOutcome::CallbackRequested, "caller"));
                return;
            }
        }
        self.leg.hangup();
        self.finish(CallOutcome::CallbackRequested, "caller", ctx);
    }
}
