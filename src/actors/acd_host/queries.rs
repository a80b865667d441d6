//! What the API, the metrics poller and the queue announcement ask the routing core.

use super::*;

/// Live queue figures for the API.
#[derive(Message)]
#[rtype(result = "Vec<QueueSnapshot>")]
pub struct Snapshots;

impl Handler<Snapshots> for AcdActor {
    type Result = MessageResult<Snapshots>;
    fn handle(&mut self, _: Snapshots, _: &mut Context<Self>) -> Self::Result {
        let now = self.shared.now();
        let ids: Vec<QueueId> = self.shared.model.queue_ids().collect();
        MessageResult(
            ids.into_iter()
                .map(|q| self.core.queue_snapshot(q, now))
                .collect(),
        )
    }
}

/// How many operators are in each state, by [`state_name`]: what the metrics poller needs
/// every second, without building [`OperatorStates`]' per-operator views (600 bindings cloned
/// a second on the routing thread).
#[derive(Message)]
#[rtype(result = "Vec<(&'static str, usize)>")]
pub struct OperatorStateCounts;

impl Handler<OperatorStateCounts> for AcdActor {
    type Result = MessageResult<OperatorStateCounts>;
    fn handle(&mut self, _: OperatorStateCounts, _: &mut Context<Self>) -> Self::Result {
        let mut counts: Vec<(&'static str, usize)> = [
            OperatorState::LoggedOut,
            OperatorState::Available,
            OperatorState::Ringing,
            OperatorState::OnCall,
            OperatorState::WrapUp,
            OperatorState::Break,
        ]
        .into_iter()
        .map(|s| (state_name(s), 0))
        .collect();
        for i in 0..self.shared.model.operator_count() {
            let name = state_name(self.core.operator_state(OperatorId(i as u32)));
            if let Some(c) = counts.iter_mut().find(|(n, _)| *n == name) {
                c.1 += 1;
            }
        }
        MessageResult(counts)
    }
}

/// Operator states for the API.
#[derive(Message)]
#[rtype(result = "Vec<OperatorView>")]
pub struct OperatorStates;

impl Handler<OperatorStates> for AcdActor {
    type Result = MessageResult<OperatorStates>;
    fn handle(&mut self, _: OperatorStates, _: &mut Context<Self>) -> Self::Result {
        let n = self.shared.model.operator_count();
        MessageResult(
            (0..n)
                .map(|i| {
                    let id = OperatorId(i as u32);
                    let binding = self
                        .shared
                        .presence
                        .binding(id)
                        .or_else(|| self.remote.get(&id).cloned());
                    OperatorView {
                        ext: self.ext(id),
                        state: state_name(self.core.operator_state(id)).into(),
                        registered: binding.is_some(),
                        contact: binding.map(|b| b.uri),
                        reserve: self
                            .shared
                            .config
                            .operators
                            .get(i)
                            .map(|o| o.reserve)
                            .unwrap_or(false),
                    }
                })
                .collect(),
        )
    }
}

/// Where a waiting call stands, for the queue announcement: its 1-based place and how many
/// operators are serving its queue (available, ringing, on a call or in wrap-up: the
/// one estimate's `serving`, [`crate::acd::expected_wait_ms`]). `None` when it is not waiting.
#[derive(Message)]
#[rtype(result = "Option<(usize, usize)>")]
pub struct WaitingPosition(pub CallId);

impl Handler<WaitingPosition> for AcdActor {
    type Result = Option<(usize, usize)>;
    fn handle(&mut self, msg: WaitingPosition, _: &mut Context<Self>) -> Self::Result {
        let (queue, position) = self.core.waiting_position(msg.0)?;
        let snap = self.core.queue_snapshot(queue, self.shared.now());
        Some((position, snap.serving()))
    }
}
