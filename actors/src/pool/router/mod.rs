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
//!   `--resume` in its own directory (making room by stopping an idle worker if the pool is
//!   full, see [`victims`]);
//! * a new conversation takes an idle worker that holds no conversation; else a worker on the
//!   way (starting or clearing); else a new worker when there is room; else it takes the place
//!   of an idle conversation that is not active (no queued turn, unused for `min_residency`):
//!   `/clear` handoff, or stop and start fresh;
//! * processes are started ahead of need: `min_workers` always, plus `spare_workers` fresh
//!   ones while there is room, and one fresh spare for each other profile (system prompt,
//!   credential, model) that started a conversation within [`PROFILE_SPARE_TTL`];
//! * starts are held back per profile while that profile's starts fail (`ProfileBackoffs`).
//!
//! The walk itself is in `pump`, the choice of a victim in [`victims`], the reactions to
//! workers' events in `events`.

/// How long a profile other than the default keeps a fresh spare after its last new
/// conversation (a client with its own system prompt or credential stays warm).
pub(crate) const PROFILE_SPARE_TTL: Duration = Duration::from_secs(600);

mod events;
mod pump;
#[cfg(test)]
mod tests;
mod victims;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::child::Conversation;
use crate::config::BackoffConfig;
use crate::pool::WorkerState;
use crate::pool::backoff::ProfileBackoffs;
use crate::pool::workdirs::WorkDirs;
use crate::turn::{Profile, SessionId, Turn, TurnError, TurnEvent};
use crate::worker::WorkerId;

pub(crate) use events::Timeouts;

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
    /// When it took its current conversation (eviction hysteresis).
    pub(crate) bound_at: Instant,
    /// Turns of its current conversation it has run (a resumed conversation starts at 1: it
    /// has a history). Hysteresis protects only conversations that go on (two or more).
    pub(crate) conversation_turns: u32,
    /// Started with `--resume`: its first turn reports `resumed`.
    pub(crate) resumed: bool,
    /// When it was spawned (dashboards).
    pub(crate) spawned_at: Instant,
    /// Turns it has been given since it was spawned (dashboards).
    pub(crate) turns: u64,
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
    /// Starts of a `--resume` for it that failed in a row.
    pub(crate) resume_failures: u32,
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
    /// Remove a working directory nothing uses any more.
    RemoveDir(PathBuf),
}

/// Pool sizing as the router sees it.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) min_workers: usize,
    pub(crate) max_workers: usize,
    pub(crate) queue_capacity: usize,
    /// Hand workers to the next conversation with `/clear`; when false, a worker whose
    /// conversation ends is stopped and a fresh process takes the next conversation.
    pub(crate) handoff_by_clear: bool,
    /// Fresh workers of the default profile kept started ahead of need (within the maximum).
    pub(crate) spare_workers: usize,
    /// A conversation keeps its worker at least this long (eviction hysteresis).
    pub(crate) min_residency: Duration,
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
    pub(crate) conversations_lost: u64,
    pub(crate) adopted: u64,
    /// Idle conversations whose worker was taken ahead of need for a spare (at `max_workers`).
    pub(crate) spare_releases: u64,
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
    /// Profiles other than the default, with the last time a new conversation asked for one:
    /// each keeps a fresh spare for [`PROFILE_SPARE_TTL`] after that.
    pub(crate) wanted_profiles: HashMap<Profile, Instant>,
    /// Start-up failures, per profile.
    pub(crate) backoffs: ProfileBackoffs,
    /// Shutting down: serve what is queued, start nothing ahead of need.
    pub(crate) draining: bool,
    dirs: WorkDirs,
    work_root: PathBuf,
    next_worker_id: WorkerId,
}

impl Router {
    pub(crate) fn new(
        limits: Limits,
        default_profile: Profile,
        work_root: PathBuf,
        backoff: BackoffConfig,
    ) -> Self {
        Self {
            workers: BTreeMap::new(),
            sessions: HashMap::new(),
            queue: VecDeque::new(),
            limits,
            counters: Counters::default(),
            default_profile,
            wanted_profiles: HashMap::new(),
            backoffs: ProfileBackoffs::new(backoff),
            draining: false,
            dirs: WorkDirs::default(),
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

    fn can_spawn(&mut self, may_spawn: bool, profile: &Profile, now: Instant) -> bool {
        may_spawn && self.backoffs.may_spawn(profile, now)
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
        self.dirs.acquire(&cwd);
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
                bound_at: now,
                conversation_turns: u32::from(resumed),
                resumed,
                spawned_at: now,
                turns: 0,
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

    /// Idle (not clearing) workers matching `filter`.
    fn idle_where(
        &self,
        filter: impl Fn(&WorkerSlot) -> bool,
    ) -> impl Iterator<Item = (WorkerId, &WorkerSlot)> {
        self.workers
            .iter()
            .filter(move |(_, w)| w.state == WorkerState::Idle && !w.clearing && filter(w))
            .map(|(id, w)| (*id, w))
    }

    /// The least recently used idle (not clearing) worker matching `filter`.
    fn idle_lru(&self, filter: impl Fn(&WorkerSlot) -> bool) -> Option<WorkerId> {
        self.idle_where(filter)
            .min_by_key(|(_, w)| w.last_used)
            .map(|(id, _)| id)
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

    /// Takes up a conversation that was run elsewhere and whose transcript is now in `cwd`:
    /// its next turn resumes it there. False when the session is already known here.
    pub(crate) fn adopt(
        &mut self,
        sid: SessionId,
        cli_session_id: String,
        cwd: PathBuf,
        now: Instant,
    ) -> bool {
        if self.sessions.contains_key(&sid) {
            return false;
        }
        self.dirs.acquire(&cwd);
        self.sessions.insert(
            sid,
            SessionSlot {
                worker: None,
                cli_session_id: Some(cli_session_id),
                cwd: Some(cwd),
                running: false,
                last_used: now,
                ended: false,
                resume_failures: 0,
            },
        );
        self.counters.adopted += 1;
        true
    }

    /// Forgets a conversation for good; its directory goes once no process uses it.
    fn forget_session(&mut self, sid: &SessionId, actions: &mut Vec<Action>) {
        if let Some(s) = self.sessions.remove(sid) {
            if let Some(cwd) = s.cwd {
                if self.dirs.release(&cwd) {
                    actions.push(Action::RemoveDir(cwd));
                }
            }
        }
    }

    /// Gives a conversation the directory of the process that runs it (held until the
    /// conversation is forgotten). The CLI keeps a conversation's transcript under its
    /// directory, so the directory changes only while nothing was saved yet: a new conversation
    /// whose first attempt died on one worker and was answered on another lives where it was
    /// answered.
    pub(super) fn set_session_cwd(
        &mut self,
        sid: &SessionId,
        cwd: &Path,
        actions: &mut Vec<Action>,
    ) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        if s.cwd.as_deref() == Some(cwd) {
            return;
        }
        self.dirs.acquire(cwd);
        if let Some(old) = s.cwd.replace(cwd.to_path_buf()) {
            if self.dirs.release(&old) {
                actions.push(Action::RemoveDir(old));
            }
        }
    }

    fn assign(&mut self, index: usize, worker: WorkerId, now: Instant, actions: &mut Vec<Action>) {
        let pending = self.queue.remove(index).expect("index in range");
        let slot = self.workers.get_mut(&worker).expect("worker exists");
        slot.state = WorkerState::Busy;
        slot.last_used = now;
        slot.conversation_turns += 1;
        slot.turns += 1;
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
}
