//! The multi-node claim protocol: with shared presence (Redis) an operator is claimed before
//! any node rings them, local operators another node holds are parked in the core, and
//! operators free on other nodes are mirrored in as candidates.

use super::*;

impl AcdActor {
    /// Feeds a state from the shared view (not an event, not published back).
    pub(super) fn mirror(
        &mut self,
        operator: OperatorId,
        state: OperatorState,
        ctx: &mut Context<Self>,
    ) {
        self.mirroring = true;
        self.feed(Input::SetOperatorState { operator, state }, ctx);
        self.mirroring = false;
    }

    /// One look at the shared presence: remote operators free on their node become
    /// candidates here; local operators another node claimed are parked until released.
    pub(super) fn sync_shared(&mut self, ctx: &mut Context<Self>) {
        let Some(shared) = self.shared.presence.shared().cloned() else {
            return;
        };
        let view = shared.view();
        let mine = format!("{}/", shared.node());
        for i in 0..self.shared.model.operator_count() {
            let id = OperatorId(i as u32);
            let ext = self.ext(id);
            let state = self.core.operator_state(id);
            let entry = view.get(&ext);
            if let Some(&lost) = self.lost_claim_round.get(&id) {
                if shared.rounds() < lost + 2 {
                    continue;
                }
                self.lost_claim_round.remove(&id);
            }
            if self.shared.presence.is_registered(id) {
                self.remote.remove(&id);
                let claimed_elsewhere = entry
                    .and_then(|o| o.claimed_by.as_deref())
                    .is_some_and(|c| !c.starts_with(&mine));
                if claimed_elsewhere && state == OperatorState::Available {
                    self.held_elsewhere.insert(id);
                    self.mirror(id, OperatorState::Break, ctx);
                } else if !claimed_elsewhere
                    && self.held_elsewhere.remove(&id)
                    && state == OperatorState::Break
                {
                    self.mirror(id, OperatorState::Available, ctx);
                }
                continue;
            }
            let free = entry
                .filter(|o| o.node != shared.node() && o.is_free())
                .and_then(|o| o.contact.as_ref())
                .and_then(crate::sip::ContactBinding::from_stored);
            match free {
                Some(binding) => {
                    self.remote.insert(id, binding);
                    if state == OperatorState::LoggedOut {
                        self.mirror(id, OperatorState::Available, ctx);
                    }
                }
                None => {
                    // Not free (or gone): no longer a candidate here. The check is on the
                    // state, not on whether it was in `remote`: an operator this node took
                    // (claimed, rang, talked to) comes back Available after wrap-up while
                    // its own node still shows it busy, and must not be offered without a
                    // contact until that node says it is free again.
                    self.remote.remove(&id);
                    if state == OperatorState::Available {
                        self.mirror(id, OperatorState::LoggedOut, ctx);
                    }
                }
            }
        }
    }

    /// Tells the other nodes about a local operator's new state; releases this node's claim
    /// when the operator is done with our call.
    pub(super) fn publish_state(
        &mut self,
        operator: OperatorId,
        from: OperatorState,
        to: OperatorState,
    ) {
        let Some(shared) = self.shared.presence.shared().cloned() else {
            return;
        };
        let ext = self.ext(operator);
        if let Some(binding) = self.shared.presence.binding(operator) {
            shared.publish(
                &ext,
                crate::presence::shared::OperatorEntry {
                    state: state_name(to).into(),
                    contact: Some(binding.stored()),
                    idle_since_ms: crate::store::db::now_ms().max(0) as u64,
                },
            );
        }
        let busy = |s| {
            matches!(
                s,
                OperatorState::Ringing | OperatorState::OnCall | OperatorState::WrapUp
            )
        };
        if busy(from) && !busy(to) {
            actix::spawn(async move { shared.release(&ext).await });
        }
    }

    /// Claims `operator` in Redis (with shared presence) for `holder`, then reaches them:
    /// a live call's offer, or a callback's dial-out, which rings the operator first. So a
    /// callback, like a live call, never rings an operator another node holds.
    pub(super) fn claim_then_reach(
        &mut self,
        call: CallId,
        operator: OperatorId,
        reach: Reach,
        holder: String,
        ctx: &mut Context<Self>,
    ) {
        let local = self.shared.presence.binding(operator);
        let binding = local
            .clone()
            .or_else(|| self.remote.get(&operator).cloned());
        let ext = self.ext(operator);
        let Some(shared) = self.shared.presence.shared().cloned() else {
            self.reach(reach, call, operator, ext, binding, ctx);
            return;
        };
        let ttl = self.shared.config.presence.expiry;
        let is_local = local.is_some();
        let claim_ext = ext.clone();
        let claimer = shared.clone();
        self.claim_tokens += 1;
        let token = self.claim_tokens;
        self.claiming.insert((call, operator), token);
        ctx.spawn(
            async move { claimer.claim(&claim_ext, &holder, ttl).await }
                .into_actor(self)
                .map(move |claim, act, ctx| {
                    use crate::presence::shared::Claim;
                    let won = claim == Claim::Won;
                    if act.claiming.get(&(call, operator)) != Some(&token) {
                        // Withdrawn while the claim was under way (the caller left, ...).
                        if won {
                            actix::spawn(async move { shared.release(&ext).await });
                        }
                        return;
                    }
                    let go = match &claim {
                        Claim::Won => true,
                        Claim::Unavailable => is_local,
                        Claim::Lost(_) => false,
                    };
                    if go {
                        act.claiming.remove(&(call, operator));
                        act.reach(reach, call, operator, ext, binding, ctx);
                        return;
                    }
                    if let Claim::Lost(by) = &claim {
                        tracing::debug!(operator = %ext, held_by = %by, "operator claimed by another node; offer dropped");
                    }
                    act.lost_claim_round.insert(operator, shared.rounds());
                    shared.poke();
                    if is_local {
                        act.held_elsewhere.insert(operator);
                        act.mirror(operator, OperatorState::Break, ctx);
                    } else {
                        act.remote.remove(&operator);
                        act.mirror(operator, OperatorState::LoggedOut, ctx);
                    }
                    act.claiming.remove(&(call, operator));
                }),
        );
    }
}
