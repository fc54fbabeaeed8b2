//! The pool's routing state and decisions, kept free of actors and I/O.
//!
//! [`Router`] owns the workers' bookkeeping, the session → worker map and the bounded queue.
//! Every event (a turn submitted, a worker ready, a turn done, a worker gone, a timer tick)
//! updates that state and [`Router::pump`] returns the [`Action`]s that follow; the pool actor
//! carries them out. Keeping this pure makes the rules testable and cheap to benchmark.
//!
//! Rules, in queue order:
//! * a turn whose session is running, or has an earlier turn still queued, waits (turns of one
//!   session are serialized in arrival order) — it never blocks turns of other sessions;
//! * a session bound to an idle worker runs there;
//! * a session without a worker that has a CLI transcript is rebuilt on a new process with
//!   `--resume` (making room by stopping an idle worker if the pool is full);
//! * a new conversation takes an idle worker that holds no conversation; else a worker on the
//!   way (starting or clearing); else a new worker when there is room; else the
//!   least-recently-used idle conversation of the same profile is evicted (`/clear` handoff);
//!   else, for another profile, an idle worker is stopped to make room.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::child::Conversation;
use crate::pool::WorkerState;
use crate::turn::{Profile, SessionId, Turn, TurnError, TurnEvent};
use crate::worker::WorkerId;

/// A turn waiting for a worker.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) seq: u64,
    pub(crate) turn: Turn,
    pub(crate) events: mpsc::Sender<TurnEvent>,
    pub(crate) enqueued: Instant,
}

/// A turn was refused: the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueueFull;

/// The pool's view of one worker.
#[derive(Debug, Clone)]
pub(crate) struct WorkerSlot {
    pub(crate) state: WorkerState,
    /// Running `/clear` (counts as busy, holds no conversation).
    pub(crate) clearing: bool,
    pub(crate) profile: Profile,
    /// The conversation this worker holds or is being started for.
    pub(crate) session: Option<SessionId>,
    pub(crate) cwd: PathBuf,
    pub(crate) pid: Option<u32>,
    pub(crate) last_used: Instant,
    /// Started with `--resume`: its first turn reports `resumed`.
    pub(crate) resumed: bool,
}

/// The pool's view of one conversation.
#[derive(Debug, Clone)]
pub(crate) struct SessionSlot {
    pub(crate) worker: Option<WorkerId>,
    pub(crate) cli_session_id: Option<String>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) running: bool,
    pub(crate) last_used: Instant,
    /// Forget the session once its running turn ends.
    pub(crate) ended: bool,
}

/// What the pool actor must do.
#[derive(Debug)]
pub(crate) enum Action {
    /// Hand a turn to an idle worker.
    Assign {
        worker: WorkerId,
        pending: Pending,
        resumed: bool,
    },
    /// Start a new worker.
    Spawn {
        worker: WorkerId,
        profile: Profile,
        cwd: PathBuf,
        conversation: Conversation,
    },
    /// Run `/clear` on an idle worker (handoff to the next conversation).
    Clear { worker: WorkerId },
    /// Stop a worker gracefully.
    Stop { worker: WorkerId },
    /// End a queued turn with an error.
    Fail { pending: Pending, error: TurnError },
}

/// Pool sizing as the router sees it.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) min_workers: usize,
    pub(crate) max_workers: usize,
    pub(crate) queue_capacity: usize,
    /// Hand workers to the next conversation with `/clear`; when false (tools allowed), a
    /// worker whose conversation ends is replaced so every conversation gets a fresh directory.
    pub(crate) handoff_by_clear: bool,
}

/// Counters reported in snapshots.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) turns_started: u64,
    pub(crate) queue_rejections: u64,
    pub(crate) queue_timeouts: u64,
    pub(crate) evictions: u64,
    pub(crate) resumes: u64,
    pub(crate) recycles: u64,
}

/// Routing state; see the module docs.
#[derive(Debug)]
pub(crate) struct Router {
    pub(crate) workers: BTreeMap<WorkerId, WorkerSlot>,
    pub(crate) sessions: HashMap<SessionId, SessionSlot>,
    pub(crate) queue: VecDeque<Pending>,
    pub(crate) limits: Limits,
    pub(crate) counters: Counters,
    pub(crate) default_profile: Profile,
    work_root: PathBuf,
    next_worker_id: WorkerId,
}

impl Router {
    pub(crate) fn new(limits: Limits, default_profile: Profile, work_root: PathBuf) -> Self {
        Self {
            workers: BTreeMap::new(),
            sessions: HashMap::new(),
            queue: VecDeque::new(),
            limits,
            counters: Counters::default(),
            default_profile,
            work_root,
            next_worker_id: 1,
        }
    }

    /// Queues a turn and routes; `Err` when it would have to wait and the queue is full (the
    /// turn is dropped).
    pub(crate) fn submit(
        &mut self,
        pending: Pending,
        now: Instant,
        may_spawn: bool,
        actions: &mut Vec<Action>,
    ) -> Result<(), QueueFull> {
        let seq = pending.seq;
        self.queue.push_back(pending);
        self.pump(now, may_spawn, actions);
        if self.queue.len() > self.limits.queue_capacity {
            if let Some(pos) = self.queue.iter().rposition(|p| p.seq == seq) {
                self.counters.queue_rejections += 1;
                self.queue.remove(pos);
                return Err(QueueFull);
            }
        }
        Ok(())
    }

    /// Workers counted against `max_workers` (stopping ones still hold their memory).
    fn live(&self) -> usize {
        self.workers.len()
    }

    fn new_worker(
        &mut self,
        profile: Profile,
        session: Option<SessionId>,
        cwd: Option<PathBuf>,
        conversation: Conversation,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> WorkerId {
        let id = self.next_worker_id;
        self.next_worker_id += 1;
        let cwd = cwd.unwrap_or_else(|| self.work_root.join(uuid::Uuid::new_v4().to_string()));
        let resumed = matches!(conversation, Conversation::Resume(_));
        self.workers.insert(
            id,
            WorkerSlot {
                state: WorkerState::Starting,
                clearing: false,
                profile: profile.clone(),
                session,
                cwd: cwd.clone(),
                pid: None,
                last_used: now,
                resumed,
            },
        );
        actions.push(Action::Spawn {
            worker: id,
            profile,
            cwd,
            conversation,
        });
        id
    }

    /// Idle (not clearing) workers matching `filter`, least recently used first.
    fn idle_lru(&self, filter: impl Fn(&WorkerSlot) -> bool) -> Option<WorkerId> {
        self.workers
            .iter()
            .filter(|(_, w)| w.state == WorkerState::Idle && !w.clearing && filter(w))
            .min_by_key(|(_, w)| w.last_used)
            .map(|(id, _)| *id)
    }

    /// Releases a worker's conversation (the session keeps its transcript id for `--resume`)
    /// and hands the worker on: `/clear` when allowed, else stop.
    fn release(&mut self, worker: WorkerId, actions: &mut Vec<Action>) {
        let Some(slot) = self.workers.get_mut(&worker) else {
            return;
        };
        if let Some(sid) = slot.session.take() {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.worker = None;
            }
        }
        if self.limits.handoff_by_clear {
            slot.clearing = true;
            actions.push(Action::Clear { worker });
        } else {
            slot.state = WorkerState::Stopping;
            actions.push(Action::Stop { worker });
        }
    }

    /// Stops a worker, releasing its conversation.
    pub(crate) fn stop_worker(&mut self, worker: WorkerId, actions: &mut Vec<Action>) {
        let Some(slot) = self.workers.get_mut(&worker) else {
            return;
        };
        if slot.state == WorkerState::Stopping {
            return;
        }
        slot.state = WorkerState::Stopping;
        if let Some(sid) = slot.session.take() {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.worker = None;
            }
        }
        actions.push(Action::Stop { worker });
    }

    /// Routes queued turns; see the module docs for the rules.
    pub(crate) fn pump(&mut self, now: Instant, may_spawn: bool, actions: &mut Vec<Action>) {
        let mut blocked: HashSet<SessionId> = HashSet::new();
        // Workers on their way to being free for a new conversation, per profile.
        let mut incoming: HashMap<Profile, usize> = HashMap::new();
        for w in self.workers.values() {
            let on_the_way = w.state == WorkerState::Starting || w.clearing;
            if on_the_way && w.session.is_none() {
                *incoming.entry(w.profile.clone()).or_default() += 1;
            }
        }
        let mut i = 0;
        while i < self.queue.len() {
            let idle_any = self
                .workers
                .values()
                .any(|w| w.state == WorkerState::Idle && !w.clearing);
            let room = self.live() < self.limits.max_workers;
            let can_grow = room && may_spawn;
            if !(idle_any || can_grow) {
                break; // nothing can move until a worker frees up
            }
            if self.queue[i].events.is_closed() {
                self.queue.remove(i); // cancelled while queued
                continue;
            }
            let sid = self.queue[i].turn.session.clone();
            if blocked.contains(&sid) {
                i += 1;
                continue;
            }
            let profile = self.queue[i].turn.profile.clone();
            let session = self
                .sessions
                .entry(sid.clone())
                .or_insert_with(|| SessionSlot {
                    worker: None,
                    cli_session_id: None,
                    cwd: None,
                    running: false,
                    last_used: now,
                    ended: false,
                });
            if session.running {
                blocked.insert(sid);
                i += 1;
                continue;
            }
            if let Some(w) = session.worker {
                match self.workers.get(&w).map(|s| (s.state, s.clearing)) {
                    Some((WorkerState::Idle, false)) => {
                        self.assign(i, w, now, actions);
                        continue;
                    }
                    Some((WorkerState::Starting | WorkerState::Busy, _)) => {
                        blocked.insert(sid);
                        i += 1;
                        continue;
                    }
                    _ => session.worker = None,
                }
            }
            let resume = session.cli_session_id.clone();
            let session_cwd = session.cwd.clone();
            blocked.insert(sid.clone());
            if let Some(cli_id) = resume {
                if room && may_spawn {
                    let w = self.new_worker(
                        profile,
                        Some(sid.clone()),
                        session_cwd,
                        Conversation::Resume(cli_id),
                        now,
                        actions,
                    );
                    self.counters.resumes += 1;
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.worker = Some(w);
                    }
                } else if !room {
                    if let Some(victim) = self
                        .idle_lru(|w| w.session.is_none())
                        .or_else(|| self.idle_lru(|_| true))
                    {
                        if self.workers[&victim].session.is_some() {
                            self.counters.evictions += 1;
                        }
                        self.stop_worker(victim, actions);
                    }
                }
                i += 1;
                continue;
            }
            // A new conversation.
            if let Some(w) = self.idle_lru(|w| w.session.is_none() && w.profile == profile) {
                let slot = self.workers.get_mut(&w).expect("idle worker exists");
                slot.session = Some(sid.clone());
                let cwd = slot.cwd.clone();
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.worker = Some(w);
                    s.cwd = Some(cwd);
                }
                blocked.remove(&sid);
                self.assign(i, w, now, actions);
                continue;
            }
            if let Some(n) = incoming.get_mut(&profile).filter(|n| **n > 0) {
                *n -= 1;
            } else if room && may_spawn {
                self.new_worker(profile, None, None, Conversation::Fresh, now, actions);
            } else if let Some(w) = self.idle_lru(|w| {
                w.profile == profile
                    && w.session
                        .as_ref()
                        .is_some_and(|s| self.sessions.get(s).is_some_and(|s| !s.running))
            }) {
                self.counters.evictions += 1;
                self.release(w, actions);
                // Cleared, the worker comes back for this turn; stopped (no handoff by
                // `/clear`), it makes room for a new worker once it is gone.
            } else if !room {
                if let Some(victim) = self.idle_lru(|w| w.profile != profile) {
                    if self.workers[&victim].session.is_some() {
                        self.counters.evictions += 1;
                    }
                    self.stop_worker(victim, actions);
                }
            }
            i += 1;
        }
        self.replenish(now, may_spawn, actions);
    }

    /// Keeps at least `min_workers` live workers.
    fn replenish(&mut self, now: Instant, may_spawn: bool, actions: &mut Vec<Action>) {
        if !may_spawn {
            return;
        }
        let active = self
            .workers
            .values()
            .filter(|w| w.state != WorkerState::Stopping)
            .count();
        for _ in active..self.limits.min_workers.min(self.limits.max_workers) {
            if self.live() >= self.limits.max_workers {
                break;
            }
            let profile = self.default_profile.clone();
            self.new_worker(profile, None, None, Conversation::Fresh, now, actions);
        }
    }

    fn assign(&mut self, index: usize, worker: WorkerId, now: Instant, actions: &mut Vec<Action>) {
        let pending = self.queue.remove(index).expect("index in range");
        let slot = self.workers.get_mut(&worker).expect("worker exists");
        slot.state = WorkerState::Busy;
        slot.last_used = now;
        let resumed = std::mem::take(&mut slot.resumed);
        if let Some(s) = self.sessions.get_mut(&pending.turn.session) {
            s.running = true;
            s.last_used = now;
        }
        self.counters.turns_started += 1;
        actions.push(Action::Assign {
            worker,
            pending,
            resumed,
        });
    }

    /// A worker answered its handshake.
    pub(crate) fn worker_ready(&mut self, worker: WorkerId, pid: u32, now: Instant) {
        if let Some(slot) = self.workers.get_mut(&worker) {
            if slot.state == WorkerState::Starting {
                slot.state = WorkerState::Idle;
            }
            slot.pid = Some(pid);
            slot.last_used = now;
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
        if let Some(sid) = slot.session.clone() {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.running = false;
                s.last_used = now;
                if cli_session_id.is_some() {
                    s.cli_session_id = cli_session_id;
                }
                ended = s.ended;
            }
            if ended {
                self.sessions.remove(&sid);
            }
        }
        let over_max = self.live() > self.limits.max_workers;
        if recycle || over_max {
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

    /// A worker is gone (stopped, crashed, or failed to start). Returns its slot.
    pub(crate) fn worker_gone(&mut self, worker: WorkerId) -> Option<WorkerSlot> {
        let slot = self.workers.remove(&worker)?;
        if let Some(sid) = &slot.session {
            if let Some(s) = self.sessions.get_mut(sid) {
                if s.worker == Some(worker) {
                    s.worker = None;
                    s.running = false;
                }
                if s.ended && !s.running {
                    self.sessions.remove(sid);
                }
            }
        }
        Some(slot)
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
        self.sessions.remove(sid);
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
            .workers
            .iter()
            .filter(|(_, w)| {
                w.state == WorkerState::Idle
                    && !w.clearing
                    && w.session.is_some()
                    && now.duration_since(w.last_used) >= t.session_idle_ttl
            })
            .map(|(id, _)| *id)
            .collect();
        for w in idle_sessions {
            self.release(w, actions);
        }
        let mut spare = self
            .workers
            .values()
            .filter(|w| w.state != WorkerState::Stopping)
            .count()
            .saturating_sub(self.limits.min_workers);
        let idle_spare: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| {
                w.state == WorkerState::Idle
                    && !w.clearing
                    && w.session.is_none()
                    && now.duration_since(w.last_used) >= t.worker_idle_ttl
            })
            .map(|(id, _)| *id)
            .collect();
        for w in idle_spare {
            if spare == 0 {
                break;
            }
            spare -= 1;
            self.stop_worker(w, actions);
        }
        self.sessions.retain(|_, s| {
            s.worker.is_some()
                || s.running
                || now.duration_since(s.last_used) < t.session_resume_ttl
        });
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
            if self.workers[&v].session.is_some() {
                self.counters.evictions += 1;
            }
            self.stop_worker(v, actions);
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

/// Timeouts the tick applies.
#[derive(Debug, Clone)]
pub(crate) struct Timeouts {
    pub(crate) queue_timeout: Duration,
    pub(crate) session_idle_ttl: Duration,
    pub(crate) worker_idle_ttl: Duration,
    pub(crate) session_resume_ttl: Duration,
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
