//! How the router's state follows the workers' lives and the clock: ready, turn done,
//! cleared, gone, sessions ended, timer ticks and resizes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Action, Router, WorkerSlot};
use crate::pool::WorkerState;
use crate::turn::{SessionId, TurnError};
use crate::worker::WorkerId;

/// Failed starts in a row after which a conversation's queued turns stop waiting for it to
/// be resumed.
pub(crate) const MAX_RESUME_ATTEMPTS: u32 = 3;

/// Timeouts the tick applies.
#[derive(Debug, Clone)]
pub(crate) struct Timeouts {
    pub(crate) queue_timeout: Duration,
    pub(crate) session_idle_ttl: Duration,
    pub(crate) worker_idle_ttl: Duration,
    pub(crate) session_resume_ttl: Duration,
}

impl Router {
    /// A worker answered its handshake: its profile starts fine again.
    pub(crate) fn worker_ready(&mut self, worker: WorkerId, pid: u32, now: Instant) {
        if let Some(slot) = self.workers.get_mut(&worker) {
            if slot.state == WorkerState::Starting {
                slot.state = WorkerState::Idle;
            }
            slot.pid = Some(pid);
            slot.last_used = now;
            // A conversation resumed here holds the worker from now on: its residency starts
            // when it can run, not when the (slow) cold start began.
            slot.bound_at = now;
            let profile = slot.profile.clone();
            self.backoffs.started(&profile);
        }
    }

    /// A worker finished a turn (its process is healthy).
    pub(crate) fn turn_done(
        &mut self,
        worker: WorkerId,
        cli_session_id: Option<String>,
        recycle: bool,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        let Some(slot) = self.workers.get_mut(&worker) else {
            return;
        };
        if slot.state == WorkerState::Busy {
            slot.state = WorkerState::Idle;
        }
        slot.last_used = now;
        let mut ended = false;
        let cwd = slot.cwd.clone();
        if let Some(sid) = slot.session.clone() {
            if cli_session_id.is_some() {
                // Saved where this process runs: a resume must run there.
                self.set_session_cwd(&sid, &cwd, actions);
            }
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.running = false;
                s.last_used = now;
                s.resume_failures = 0;
                if cli_session_id.is_some() {
                    s.cli_session_id = cli_session_id;
                }
                ended = s.ended;
            }
            if ended {
                self.forget_session(&sid, actions);
            }
        }
        let over_max = self.live() > self.limits.max_workers;
        if recycle || over_max || self.draining && !self.queue_wants(worker) {
            if recycle {
                self.counters.recycles += 1;
            }
            self.stop_worker(worker, actions);
        } else if ended {
            self.release(worker, actions);
        }
    }

    /// A worker finished `/clear`: it holds no conversation and is free.
    pub(crate) fn worker_cleared(&mut self, worker: WorkerId, now: Instant) {
        if let Some(slot) = self.workers.get_mut(&worker) {
            slot.clearing = false;
            slot.session = None;
            slot.last_used = now;
            if slot.state == WorkerState::Busy {
                slot.state = WorkerState::Idle;
            }
        }
    }

    /// A worker is gone (stopped, crashed, or failed to start). Returns its slot; its
    /// directory is released (and removed when nothing else uses it).
    pub(crate) fn worker_gone(
        &mut self,
        worker: WorkerId,
        actions: &mut Vec<Action>,
    ) -> Option<WorkerSlot> {
        let slot = self.workers.remove(&worker)?;
        if let Some(sid) = &slot.session {
            let mut forget = false;
            if let Some(s) = self.sessions.get_mut(sid) {
                if s.worker == Some(worker) {
                    s.worker = None;
                    s.running = false;
                }
                forget = s.ended && !s.running;
            }
            if forget {
                self.forget_session(sid, actions);
            }
        }
        if self.dirs.release(&slot.cwd) {
            actions.push(Action::RemoveDir(slot.cwd.clone()));
        }
        Some(slot)
    }

    /// A process started to resume `sid` failed to start. `lost`: the CLI found no transcript,
    /// so the conversation cannot be resumed at all. Its queued turns fail at once when it is
    /// lost, or after [`MAX_RESUME_ATTEMPTS`] failed starts in a row (else they wait for the
    /// next attempt); a lost conversation's next turn starts a new one.
    pub(crate) fn resume_failed(
        &mut self,
        sid: &SessionId,
        lost: bool,
        reason: &str,
        actions: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        s.resume_failures += 1;
        if !lost && s.resume_failures < MAX_RESUME_ATTEMPTS {
            return;
        }
        s.resume_failures = 0;
        let error = if lost {
            s.cli_session_id = None;
            self.counters.conversations_lost += 1;
            TurnError::ConversationLost(reason.to_owned())
        } else {
            TurnError::SpawnFailed(reason.to_owned())
        };
        let (failed, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|p| p.turn.session == *sid);
        self.queue = kept;
        for pending in failed {
            actions.push(Action::Fail {
                pending,
                error: error.clone(),
            });
        }
    }

    /// Forgets a conversation; its worker is handed on once idle.
    pub(crate) fn end_session(&mut self, sid: &SessionId, actions: &mut Vec<Action>) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        if s.running {
            s.ended = true;
            return;
        }
        let worker = s.worker;
        self.forget_session(sid, actions);
        if let Some(w) = worker {
            if self
                .workers
                .get(&w)
                .is_some_and(|w| w.state == WorkerState::Idle)
            {
                self.release(w, actions);
            } else if let Some(slot) = self.workers.get_mut(&w) {
                slot.session = None;
            }
        }
    }

    /// True when a queued turn could use this worker (its conversation's next turn, or a new
    /// conversation of its profile while it holds none).
    pub(crate) fn queue_wants(&self, worker: WorkerId) -> bool {
        let Some(w) = self.workers.get(&worker) else {
            return false;
        };
        self.queue.iter().any(|p| match &w.session {
            Some(sid) => *sid == p.turn.session,
            None => {
                p.turn.profile == w.profile
                    && self
                        .sessions
                        .get(&p.turn.session)
                        .is_none_or(|s| s.worker.is_none() && s.cli_session_id.is_none())
            }
        })
    }

    /// While draining: stops every worker that neither runs a turn nor can serve a queued one.
    pub(crate) fn drain_idle(&mut self, actions: &mut Vec<Action>) {
        let idle: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| {
                !w.clearing && matches!(w.state, WorkerState::Idle | WorkerState::Starting)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            if self.queue.is_empty() || !self.queue_wants(id) {
                self.stop_worker(id, actions);
            }
        }
    }

    /// Timer work: queue timeouts, cancelled queued turns, idle conversations and workers.
    pub(crate) fn tick(&mut self, now: Instant, t: &Timeouts, actions: &mut Vec<Action>) {
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for p in self.queue.drain(..) {
            if p.events.is_closed() {
                continue;
            }
            if now.duration_since(p.enqueued) >= t.queue_timeout {
                self.counters.queue_timeouts += 1;
                actions.push(Action::Fail {
                    pending: p,
                    error: TurnError::QueueTimeout,
                });
            } else {
                kept.push_back(p);
            }
        }
        self.queue = kept;
        let idle_sessions: Vec<WorkerId> = self
            .idle_where(|w| {
                w.session.is_some() && now.duration_since(w.last_used) >= t.session_idle_ttl
            })
            .map(|(id, _)| id)
            .collect();
        for w in idle_sessions {
            self.release(w, actions);
        }
        let mut spare = self
            .workers
            .values()
            .filter(|w| w.state != WorkerState::Stopping)
            .count()
            .saturating_sub(self.limits.min_workers.max(self.limits.spare_workers));
        let idle_spare: Vec<WorkerId> = self
            .idle_where(|w| {
                w.session.is_none() && now.duration_since(w.last_used) >= t.worker_idle_ttl
            })
            .map(|(id, _)| id)
            .collect();
        for w in idle_spare {
            if spare == 0 {
                break;
            }
            spare -= 1;
            self.stop_worker(w, actions);
        }
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.worker.is_none()
                    && !s.running
                    && now.duration_since(s.last_used) >= t.session_resume_ttl
            })
            .map(|(id, _)| id.clone())
            .collect();
        for sid in expired {
            self.forget_session(&sid, actions);
        }
    }

    /// Applies new sizes; idle workers above the new maximum are stopped now, busy ones when
    /// their turn ends.
    pub(crate) fn resize(&mut self, min: usize, max: usize, actions: &mut Vec<Action>) {
        self.limits.min_workers = min;
        self.limits.max_workers = max;
        while self.live() > max {
            let victim = self
                .idle_lru(|w| w.session.is_none())
                .or_else(|| self.idle_lru(|_| true))
                .or_else(|| {
                    self.workers
                        .iter()
                        .find(|(_, w)| w.state == WorkerState::Starting)
                        .map(|(id, _)| *id)
                });
            let Some(v) = victim else { break };
            self.evict(v, actions);
            // Stopping workers still count until they are gone; count only the rest.
            let stopping = self
                .workers
                .values()
                .filter(|w| w.state == WorkerState::Stopping)
                .count();
            if self.live() - stopping <= max {
                break;
            }
        }
    }
}
