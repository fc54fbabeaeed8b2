//! Which conversation gives up its worker when the pool is full.
//!
//! Conversations outnumbering workers must take turns, and every change of hands costs a cold
//! `--resume` (~0.9 s with the real CLI). The rules serve waiting conversations in arrival
//! order while keeping needless changes of hands rare:
//! * **arrival order**: a turn waiting for a worker (a conversation to resume, or a new one)
//!   may take the worker of an idle conversation whose own next turn arrived after it, once
//!   that conversation has run a turn on the worker (its share): a conversation that keeps its
//!   worker busy turn after turn queues behind those already waiting instead of starving them;
//! * **hysteresis**: a conversation with no turn queued that goes on (a second turn, or one
//!   resumed with its history) keeps the worker it was given for at least `min_residency` — so
//!   a client that thinks between turns does not lose its warm process to every newcomer. A
//!   conversation that has had only its first turn (most stateless one-shot requests) is not
//!   protected: keeping it would hold a worker for nothing;
//! * **activity**: a conversation whose next turn waited longer than the newcomer's is never
//!   displaced by it (it is served first anyway: the queue is walked in arrival order).
//!
//! Idle workers without a conversation (fresh spares, other profiles) always go first, then
//! conversations with nothing queued, least recently used first, then those whose next turn
//! came after the waiting one.

use std::collections::HashMap;
use std::time::Instant;

use super::{Router, WorkerSlot};
use crate::pool::WorkerState;
use crate::turn::SessionId;
use crate::worker::WorkerId;

/// The first queued turn of each conversation that has one: its place in the queue.
pub(super) type FirstQueued = HashMap<SessionId, u64>;

impl Router {
    /// A worker to take for the turn queued as `waiter` (its sequence number): a free worker
    /// of another profile, else an idle conversation with nothing queued, else one whose next
    /// turn came after the waiter.
    pub(super) fn victim_for(
        &self,
        waiter: u64,
        now: Instant,
        queued: &FirstQueued,
    ) -> Option<WorkerId> {
        self.idle_lru(|w| w.session.is_none())
            .or_else(|| self.victim_ahead_of_need(now, queued))
            .or_else(|| self.idle_lru(|w| self.displaceable(w, now, queued, Some(waiter))))
    }

    /// The least recently used idle conversation that may give its worker up for a spare:
    /// nothing queued, past its residency if it goes on.
    pub(super) fn victim_ahead_of_need(
        &self,
        now: Instant,
        queued: &FirstQueued,
    ) -> Option<WorkerId> {
        self.idle_lru(|w| self.displaceable(w, now, queued, None))
    }

    /// True when `w`'s conversation may lose its worker. With `after: None`: it is idle, not
    /// running, has nothing queued and is past its residency (if it goes on). With
    /// `after: Some(seq)`: it is idle, has run a turn on this worker, and its next turn was
    /// queued after the turn numbered `seq`.
    fn displaceable(
        &self,
        w: &WorkerSlot,
        now: Instant,
        queued: &FirstQueued,
        after: Option<u64>,
    ) -> bool {
        let Some(sid) = &w.session else {
            return false;
        };
        if w.state != WorkerState::Idle || self.sessions.get(sid).is_some_and(|s| s.running) {
            return false;
        }
        match (queued.get(sid), after) {
            (None, None) => {
                w.conversation_turns < 2
                    || now.duration_since(w.bound_at) >= self.limits.min_residency
            }
            // A resumed worker keeps its conversation until that conversation's turn ran.
            (Some(&next), Some(seq)) => next > seq && !w.resumed,
            _ => false,
        }
    }
}
