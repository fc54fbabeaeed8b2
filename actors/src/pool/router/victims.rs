//! Which conversation gives up its worker when the pool is full.
//!
//! Conversations outnumbering workers must take turns, and every change of hands costs a cold
//! `--resume` (~0.9 s with the real CLI). The rules serve waiting turns in arrival order while
//! keeping warm the conversations that are likely to go on:
//! * **arrival order**: a turn waiting for a worker may take the worker of an idle conversation
//!   whose own next turn arrived after it, once that conversation has run a turn on the worker
//!   (its share): a conversation that keeps its worker busy turn after turn queues behind those
//!   already waiting instead of starving them. A conversation resumed for a turn keeps its
//!   worker until that turn ran;
//! * **idle conversations make way for waiting ones**: a conversation with nothing queued has had
//!   its turn; a waiting conversation (one with a history, to be resumed) takes its worker at
//!   once, finished one-shot conversations first, then the least recently used;
//! * **hysteresis against newcomers**: a new conversation takes a finished one-shot
//!   conversation's worker at once, but a conversation that goes on (a second turn, or resumed
//!   with its history) keeps its worker for at least `min_residency` against newcomers and
//!   against spares made ahead of need — so a client that thinks between turns keeps its warm
//!   process while one-shot traffic passes.
//!
//! Idle workers without a conversation (fresh spares, other profiles) always go first.

use std::collections::HashMap;
use std::time::Instant;

use super::{Router, WorkerSlot};
use crate::pool::WorkerState;
use crate::turn::SessionId;
use crate::worker::WorkerId;

/// The first queued turn of each conversation that has one: its place in the queue.
pub(super) type FirstQueued = HashMap<SessionId, u64>;

impl Router {
    /// A worker to take for the turn queued as `waiter` (its sequence number); `newcomer`: the
    /// turn starts a new conversation (else it resumes one).
    pub(super) fn victim_for(
        &self,
        waiter: u64,
        newcomer: bool,
        now: Instant,
        queued: &FirstQueued,
    ) -> Option<WorkerId> {
        self.idle_lru(|w| w.session.is_none())
            .or_else(|| self.idle_lru(|w| self.finished(w, queued) && w.conversation_turns < 2))
            .or_else(|| {
                self.idle_lru(|w| {
                    self.finished(w, queued) && (!newcomer || self.past_residency(w, now))
                })
            })
            .or_else(|| self.idle_lru(|w| self.queued_after(w, queued, waiter)))
    }

    /// The least recently used idle conversation that may give its worker up for a spare:
    /// nothing queued, a finished one-shot conversation or one past its residency.
    pub(super) fn victim_ahead_of_need(
        &self,
        now: Instant,
        queued: &FirstQueued,
    ) -> Option<WorkerId> {
        self.idle_lru(|w| {
            self.finished(w, queued) && (w.conversation_turns < 2 || self.past_residency(w, now))
        })
    }

    /// `w` is idle with a conversation that is not running and has no turn queued.
    fn finished(&self, w: &WorkerSlot, queued: &FirstQueued) -> bool {
        w.session.as_ref().is_some_and(|sid| {
            w.state == WorkerState::Idle
                && !queued.contains_key(sid)
                && self.sessions.get(sid).is_none_or(|s| !s.running)
        })
    }

    /// `w`'s conversation has held it for `min_residency`.
    fn past_residency(&self, w: &WorkerSlot, now: Instant) -> bool {
        now.duration_since(w.bound_at) >= self.limits.min_residency
    }

    /// `w` is idle, has run a turn of its conversation, and that conversation's next turn was
    /// queued after the turn numbered `seq`.
    fn queued_after(&self, w: &WorkerSlot, queued: &FirstQueued, seq: u64) -> bool {
        w.session.as_ref().is_some_and(|sid| {
            w.state == WorkerState::Idle
                && !w.resumed
                && queued.get(sid).is_some_and(|next| *next > seq)
                && self.sessions.get(sid).is_none_or(|s| !s.running)
        })
    }
}
