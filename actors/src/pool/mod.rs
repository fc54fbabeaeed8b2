//! The pool actor: supervisor + router, and the [`PoolHandle`] callers use.

mod actor;
pub(crate) mod backoff;
#[doc(hidden)]
pub mod bench_support;
mod inspect;
pub(crate) mod router;
mod workdirs;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorRef, rpc::CallResult};
use serde::Serialize;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::PoolConfig;
use crate::turn::{SessionId, SubmitError, Turn, TurnStream};
pub(crate) use actor::PoolMsg;
use actor::{Pool, PoolArgs};
pub use backoff::SpawnTrouble;
pub use inspect::{EVENTS_KEPT, PoolInspection, WorkerEvent, WorkerEventKind, WorkerView};

/// Events buffered per turn before the worker waits for the reader (backpressure).
const TURN_EVENT_BUFFER: usize = 128;

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
    /// Fresh workers (holding no conversation) that are warm or starting: spares ready for
    /// new conversations.
    pub workers_spare: usize,
    /// Turns waiting for a worker.
    pub queue_depth: usize,
    /// Conversations with a turn queued that waits for a worker, not behind a running turn
    /// of its own conversation (a conversation's later queued turns wait for its first).
    pub waiting_for_worker: usize,
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
    /// Conversations whose transcript was missing when they were to be resumed.
    pub conversations_lost: u64,
    /// Conversations taken up from a transcript kept elsewhere ([`PoolHandle::adopt`]).
    pub conversations_adopted: u64,
    /// Idle conversations whose worker was taken ahead of need to make a spare at
    /// `max_workers` (the conversations stay resumable).
    pub spare_releases: u64,
    /// Workers recycled after `max_turns_per_worker` or `max_worker_rss_mb`.
    pub recycles: u64,
    /// Interrupts sent (client cancel, idle timeout).
    pub interrupts: u64,
    /// Longest start delay applied to a failing profile (zero when every profile starts).
    pub restart_backoff: Duration,
    /// Configured minimum workers.
    pub min_workers: usize,
    /// Configured maximum workers.
    pub max_workers: usize,
    /// True once `min_workers` are warm (and not draining).
    pub ready: bool,
    /// True while the pool can take traffic: not draining, and a worker is warm or workers
    /// start normally (readiness).
    pub serving: bool,
    /// Profiles whose workers fail to start, with the last error and the time to the next try.
    pub spawn_troubles: Vec<SpawnTrouble>,
    /// True while shutting down.
    pub draining: bool,
}

/// Where a conversation taken up from elsewhere will live: its working directory and the
/// directory its transcript must be written to.
#[derive(Debug, Clone)]
pub(crate) struct ConversationPlace {
    pub(crate) cwd: std::path::PathBuf,
    /// The environment a process started there gets (where its CLI keeps transcripts).
    pub(crate) env: Vec<(String, String)>,
}

/// Why a conversation could not be taken up.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// The pool has stopped.
    #[error("the pool actor is not running")]
    NotRunning,
    /// The workers' HOME is not known, so there is nowhere to put the transcript.
    #[error("the workers have no HOME to resume conversations from")]
    NoHome,
    /// The transcript could not be written.
    #[error("cannot write the transcript: {0}")]
    Io(#[from] std::io::Error),
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
    actor: ActorRef<PoolMsg>,
    snapshot: watch::Receiver<PoolSnapshot>,
    join: Arc<Mutex<Option<JoinHandle<()>>>>,
}

static POOL_SEQ: AtomicU64 = AtomicU64::new(1);

impl PoolConfig {
    /// Checks sizes and limits; the message names the offending setting.
    pub fn validate(&self) -> Result<(), PoolError> {
        let bad = |m: &str| Err(PoolError::InvalidConfig(m.to_owned()));
        if self.max_workers == 0 {
            return bad("max_workers must be at least 1");
        }
        if self.min_workers > self.max_workers {
            return bad("min_workers must not exceed max_workers");
        }
        if self.queue_capacity == 0 {
            return bad("queue_capacity must be at least 1");
        }
        if self.turn_idle_timeout.is_zero() || self.queue_timeout.is_zero() {
            return bad("turn_idle_timeout and queue_timeout must be positive");
        }
        if self.worker.max_line_bytes < 1024 {
            return bad("worker.max_line_bytes must be at least 1024");
        }
        Ok(())
    }
}

impl PoolHandle {
    /// Starts the pool actor and its `min_workers` workers (returns before they are warm; see
    /// [`PoolSnapshot::ready`] and [`PoolHandle::wait_ready`]).
    pub async fn start(config: PoolConfig) -> Result<Self, PoolError> {
        config.validate()?;
        for dir in [&config.worker.home, &config.worker.work_root] {
            std::fs::create_dir_all(dir).map_err(|e| {
                PoolError::InvalidConfig(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let (tx, rx) = watch::channel(PoolSnapshot {
            min_workers: config.min_workers,
            max_workers: config.max_workers,
            ..PoolSnapshot::default()
        });
        let name = format!("claude-pool-{}", POOL_SEQ.fetch_add(1, Ordering::Relaxed));
        let args = PoolArgs {
            config,
            name: name.clone(),
            snapshot: tx,
        };
        let (actor, join) = Actor::spawn(Some(name), Pool, args)
            .await
            .map_err(|e| PoolError::NotRunning(e.to_string()))?;
        Ok(Self {
            actor,
            snapshot: rx,
            join: Arc::new(Mutex::new(Some(join))),
        })
    }

    /// Submits a turn. Fails at once when the queue is full or the pool is draining.
    pub async fn submit(&self, turn: Turn) -> Result<TurnStream, SubmitError> {
        let (tx, rx) = mpsc::channel(TURN_EVENT_BUFFER);
        let call = self
            .actor
            .call(
                |reply| PoolMsg::Submit {
                    turn,
                    events: tx,
                    reply,
                },
                None,
            )
            .await;
        match call {
            Ok(CallResult::Success(Ok(()))) => Ok(TurnStream::new(rx)),
            Ok(CallResult::Success(Err(e))) => Err(e),
            _ => Err(SubmitError::ShuttingDown),
        }
    }

    /// The latest snapshot (no actor round-trip).
    pub fn snapshot(&self) -> PoolSnapshot {
        self.snapshot.borrow().clone()
    }

    /// A receiver that sees every new snapshot. Do not hold a borrow of it across an
    /// `.await`: the pool publishes through the same lock.
    pub fn watch(&self) -> watch::Receiver<PoolSnapshot> {
        self.snapshot.clone()
    }

    /// Waits until `min_workers` are warm; false on timeout or when the pool stopped.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut rx = self.snapshot.clone();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(|s| s.ready)).await,
            Ok(Ok(_))
        )
    }

    /// Changes `min_workers`/`max_workers` live.
    pub async fn resize(&self, min_workers: usize, max_workers: usize) -> Result<(), PoolError> {
        if max_workers == 0 || min_workers > max_workers {
            return Err(PoolError::InvalidConfig(
                "need 1 <= max_workers and min_workers <= max_workers".into(),
            ));
        }
        self.control(|reply| PoolMsg::Resize {
            min: min_workers,
            max: max_workers,
            reply,
        })
        .await
    }

    /// Applies a new configuration live: sizes and the queue capacity at once (idle workers
    /// above a smaller maximum stop now, busy ones after their turn), timeouts from the next
    /// turn on, and worker settings (command, arguments, environment) to workers started from
    /// now on.
    pub async fn reconfigure(&self, config: PoolConfig) -> Result<(), PoolError> {
        config.validate()?;
        self.control(|reply| PoolMsg::Reconfigure {
            config: Box::new(config),
            reply,
        })
        .await
    }

    /// Sends a control message and waits for the pool's acknowledgement.
    async fn control(
        &self,
        msg: impl FnOnce(ractor::RpcReplyPort<()>) -> PoolMsg,
    ) -> Result<(), PoolError> {
        match self.actor.call(msg, None).await {
            Ok(CallResult::Success(())) => Ok(()),
            Ok(_) => Err(PoolError::NotRunning("no answer".into())),
            Err(e) => Err(PoolError::NotRunning(e.to_string())),
        }
    }

    /// Every worker and the recent worker events (one round-trip to the pool actor).
    pub async fn inspect(&self) -> Result<PoolInspection, PoolError> {
        match self
            .actor
            .call(|reply| PoolMsg::Inspect { reply }, None)
            .await
        {
            Ok(CallResult::Success(view)) => Ok(view),
            Ok(_) => Err(PoolError::NotRunning("no answer".into())),
            Err(e) => Err(PoolError::NotRunning(e.to_string())),
        }
    }

    /// True when the pool knows the conversation `session` (a worker holds it, or it can be
    /// resumed from its transcript here).
    pub async fn knows(&self, session: &SessionId) -> bool {
        let session = session.clone();
        matches!(
            self.actor
                .call(|reply| PoolMsg::KnowsConversation { session, reply }, None)
                .await,
            Ok(CallResult::Success(true))
        )
    }

    async fn place(&self, session: &SessionId) -> Result<Option<ConversationPlace>, AdoptError> {
        let session = session.clone();
        match self
            .actor
            .call(|reply| PoolMsg::PlaceConversation { session, reply }, None)
            .await
        {
            Ok(CallResult::Success(place)) => Ok(place),
            _ => Err(AdoptError::NotRunning),
        }
    }

    /// Takes up a conversation run elsewhere (another pool, another host) from its transcript,
    /// as the CLI wrote it for `cli_session_id`: the transcript is written where a process in a
    /// new working directory finds it, and the conversation's next turn resumes it there with
    /// `--resume`. Returns false (and writes nothing) when the pool already knows the session.
    pub async fn adopt(
        &self,
        session: SessionId,
        cli_session_id: String,
        transcript: &[u8],
    ) -> Result<bool, AdoptError> {
        let Some(place) = self.place(&session).await? else {
            return Ok(false);
        };
        // The directory first: the CLI names the transcript's folder after its resolved path.
        tokio::fs::create_dir_all(&place.cwd).await?;
        let Some(dir) = crate::transcript::TranscriptDir::for_child(&place.cwd, &place.env) else {
            let _ = tokio::fs::remove_dir(&place.cwd).await;
            return Err(AdoptError::NoHome);
        };
        let file = dir.file(&cli_session_id);
        let written = async {
            if let Some(parent) = file.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            tokio::fs::write(&file, transcript).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_dir_all(&place.cwd).await;
            let _ = tokio::fs::remove_file(&file).await;
            return Err(e.into());
        }
        match self
            .actor
            .call(
                |reply| PoolMsg::AdoptConversation {
                    session,
                    cli_session_id,
                    place,
                    reply,
                },
                None,
            )
            .await
        {
            Ok(CallResult::Success(adopted)) => Ok(adopted),
            _ => Err(AdoptError::NotRunning),
        }
    }

    /// Forgets a conversation: its worker (if any) is handed to the next conversation.
    pub fn end_session(&self, session: SessionId) {
        let _ = self.actor.cast(PoolMsg::EndSession(session));
    }

    /// Graceful shutdown: rejects new turns, fails queued ones, lets running turns finish for
    /// up to `grace`, interrupts the rest, then stops every child and waits for them.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self
            .actor
            .call(|reply| PoolMsg::Shutdown { grace, reply }, None)
            .await;
        if let Some(join) = self.join.lock().await.take() {
            let _ = join.await;
        }
    }
}
