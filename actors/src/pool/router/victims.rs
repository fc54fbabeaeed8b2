//! Which conversation gives up its worker when the pool is full.
//!
//! Conversations outnumbering workers must take turns, and every change of hands costs a cold
//! `--resume` (~0.9 s with the real CLI). Two rules keep that rare and fair:
//! * **hysteresis**: a conversation that goes on (a second turn, or one resumed with its
//!   history) keeps the worker it was given for at least `min_residency`, however many others
//!   wait — so each worker serves a run of warm turns between resumes instead of thrashing. A
//!   conversation that has had only its first turn (most stateless one-shot requests) is not
//!   protected: keeping it would hold a worker for nothing;
//! * **activity**: a newcomer (a new conversation) never displaces a conversation that is
//!   active (running, or with a turn queued); a waiting conversation may displace another one,
//!   preferring one with nothing queued, then the least recently used.
//!
//! Idle workers without a conversation (fresh spares, other profiles) always go first.

use std::collections::HashSet;
use std::time::Instant;

use super::{Router, WorkerSlot};
use crate::pool::WorkerState;
use crate::turn::SessionId;
use crate::worker::WorkerId;

impl Router {
    /// A worker to stop so that a waiting conversation can be resumed.
    pub(super) fn victim_for_resume(
        &self,
        now: Instant,
        queued: &HashSet<SessionId>,
    ) -> Option<WorkerId> {
        // Whoever a newcomer could displace, else a conversation that has a turn queued too.
        self.victim_for_newcomer(now, queued)
            .or_else(|| self.idle_lru(|w| self.displaceable(w, now, queued, true)))
    }

    /// A worker whose conversation may make way for a new conversation (never an active one).
    pub(super) fn victim_for_newcomer(
        &self,
        now: Instant,
        queued: &HashSet<SessionId>,
    ) -> Option<WorkerId> {
        self.idle_lru(|w| w.session.is_none())
            .or_else(|| self.idle_lru(|w| self.displaceable(w, now, queued, false)))
    }

    /// True when `w`'s conversation may lose its worker: it is not running, is past its
    /// residency (if it goes on), and (unless `even_queued`) has no turn waiting.
    fn displaceable(
        &self,
        w: &WorkerSlot,
        now: Instant,
        queued: &HashSet<SessionId>,
        even_queued: bool,
    ) -> bool {
        let Some(sid) = &w.session else {
            return false;
        };
        w.state == WorkerState::Idle
            && (w.conversation_turns < 2
                || now.duration_since(w.bound_at) >= self.limits.min_residency)
            && self.sessions.get(sid).is_none_or(|s| !s.running)
            && (even_queued || !queued.contains(sid))
    }
}
