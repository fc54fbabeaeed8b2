//! The pool actor: supervisor + router, and the [`PoolHandle`] callers use.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::config::PoolConfig;
use crate::turn::{SessionId, SubmitError, Turn, TurnStream};

/// Lifecycle state of one worker, as shown in snapshots and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Process started, handshake not answered yet.
    Starting,
    /// Warm and free.
    Idle,
    /// Running a turn.
    Busy,
    /// Being stopped (recycled, evicted for another profile, shrinking, shutdown).
    Stopping,
}

/// A cheap, point-in-time view of the pool for metrics, health and the admin UI.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolSnapshot {
    /// Workers starting up.
    pub workers_starting: usize,
    /// Warm, free workers (holding a conversation or not).
    pub workers_idle: usize,
    /// Workers running a turn.
    pub workers_busy: usize,
    /// Workers being stopped.
    pub workers_stopping: usize,
    /// Turns waiting for a worker.
    pub queue_depth: usize,
    /// Conversations the pool knows (bound to a worker or resumable).
    pub sessions: usize,
    /// Conversations currently held by a warm worker.
    pub sessions_bound: usize,
    /// Turns started on a worker since start.
    pub turns_started: u64,
    /// Turns that ended with an error since start.
    pub turns_failed: u64,
    /// Turns rejected because the queue was full.
    pub queue_rejections: u64,
    /// Turns that timed out in the queue.
    pub queue_timeouts: u64,
    /// Workers replaced after an unexpected exit.
    pub restarts: u64,
    /// Worker spawns that failed.
    pub spawn_failures: u64,
    /// Conversations evicted from their worker to make room.
    pub evictions: u64,
    /// Conversations rebuilt on a fresh worker with `--resume`.
    pub resumes: u64,
    /// Workers recycled after `max_turns_per_worker` or `max_worker_rss_mb`.
    pub recycles: u64,
    /// Interrupts sent (client cancel, idle timeout).
    pub interrupts: u64,
    /// Current restart delay (zero when no crash is being backed off).
    pub restart_backoff: Duration,
    /// Configured minimum workers.
    pub min_workers: usize,
    /// Configured maximum workers.
    pub max_workers: usize,
    /// True once `min_workers` are warm (and not draining).
    pub ready: bool,
    /// True while shutting down.
    pub draining: bool,
}

/// Errors of the pool's control API.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The configuration is not usable.
    #[error("invalid pool configuration: {0}")]
    InvalidConfig(String),
    /// The pool actor could not be started or has stopped.
    #[error("the pool actor is not running: {0}")]
    NotRunning(String),
}

/// The handle callers use; cheap to clone.
#[derive(Debug, Clone)]
pub struct PoolHandle {
    snapshot: watch::Receiver<PoolSnapshot>,
}

impl PoolHandle {
    /// Starts the pool actor and its `min_workers` workers (returns before they are warm; see
    /// [`PoolSnapshot::ready`]).
    pub async fn start(config: PoolConfig) -> Result<Self, PoolError> {
        let _ = config;
        Err(PoolError::NotRunning("not implemented yet".into()))
    }

    /// Submits a turn. Fails at once when the queue is full or the pool is draining.
    pub async fn submit(&self, turn: Turn) -> Result<TurnStream, SubmitError> {
        let _ = turn;
        Err(SubmitError::ShuttingDown)
    }

    /// The latest snapshot (no actor round-trip).
    pub fn snapshot(&self) -> PoolSnapshot {
        self.snapshot.borrow().clone()
    }

    /// A receiver that sees every new snapshot.
    pub fn watch(&self) -> watch::Receiver<PoolSnapshot> {
        self.snapshot.clone()
    }

    /// Changes `min_workers`/`max_workers` live.
    pub async fn resize(&self, min_workers: usize, max_workers: usize) -> Result<(), PoolError> {
        let _ = (min_workers, max_workers);
        Ok(())
    }

    /// Forgets a conversation: its worker (if any) is handed to the next conversation.
    pub async fn end_session(&self, session: SessionId) {
        let _ = session;
    }

    /// Graceful shutdown: rejects new turns, fails queued ones, lets running turns finish for
    /// up to `grace`, interrupts the rest, then stops every child and waits for them.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = grace;
    }
}
