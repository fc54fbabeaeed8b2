//! The pool actor: supervisor of the worker actors and executor of the router's decisions.
//!
//! Everything that changes routing state or worker lifecycle passes through this one mailbox,
//! so the two can never disagree. Workers are linked children; their exits arrive as
//! supervision events (never falling through to ractor's default, which would stop the pool),
//! and an unexpected exit is answered with a replacement after a jittered backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::{mpsc, watch};

use crate::child::{self, Conversation};
use crate::config::{Handoff, PoolConfig};
use crate::pool::router::{Action, Limits, Pending, Router, Timeouts};
use crate::pool::{PoolSnapshot, WorkerState};
use crate::turn::{Profile, SessionId, SubmitError, Turn, TurnError, TurnEvent};
use crate::worker::exchange::{ExchangeLimits, NO_TRANSCRIPT};
use crate::worker::{Assignment, Worker, WorkerArgs, WorkerId, WorkerMsg};

/// How often queue timeouts, idle conversations and held-back spawns are looked at.
const TICK: Duration = Duration::from_millis(100);
/// How long an unbound conversation can still be resumed from its transcript.
const SESSION_RESUME_TTL: Duration = Duration::from_secs(24 * 3600);

/// Messages of the pool actor.
#[derive(Debug)]
pub(crate) enum PoolMsg {
    Submit {
        turn: Turn,
        events: mpsc::Sender<TurnEvent>,
        reply: RpcReplyPort<Result<(), SubmitError>>,
    },
    WorkerReady {
        id: WorkerId,
        pid: u32,
        actor: ActorRef<WorkerMsg>,
    },
    SpawnFailed {
        id: WorkerId,
        error: String,
    },
    TurnDone {
        id: WorkerId,
        cli_session_id: Option<String>,
        recycle: bool,
        ok: bool,
        interrupted: bool,
    },
    WorkerCleared {
        id: WorkerId,
    },
    Tick,
    Resize {
        min: usize,
        max: usize,
        reply: RpcReplyPort<()>,
    },
    Reconfigure {
        config: Box<PoolConfig>,
        reply: RpcReplyPort<()>,
    },
    EndSession(SessionId),
    Shutdown {
        grace: Duration,
        reply: RpcReplyPort<()>,
    },
    ShutdownForce,
}

/// The pool actor.
#[derive(Debug)]
pub(crate) struct Pool;

/// Start-up arguments of the pool actor.
#[derive(Debug)]
pub(crate) struct PoolArgs {
    pub(crate) config: PoolConfig,
    pub(crate) name: String,
    pub(crate) snapshot: watch::Sender<PoolSnapshot>,
}

#[derive(Debug, Default)]
struct Stats {
    restarts: u64,
    spawn_failures: u64,
    turns_failed: u64,
    interrupts: u64,
}

/// The pool actor's state.
#[derive(Debug)]
pub(crate) struct PoolState {
    config: Arc<PoolConfig>,
    name: String,
    router: Router,
    actors: std::collections::HashMap<WorkerId, ActorRef<WorkerMsg>>,
    snapshot: watch::Sender<PoolSnapshot>,
    stats: Stats,
    seq: u64,
    draining: bool,
    /// The grace period is over: nothing new starts, what is left is stopped.
    forced: bool,
    /// A worker has been warm at least once (the CLI and its credential work).
    ever_warm: bool,
    shutdown_waiters: Vec<RpcReplyPort<()>>,
}

impl Actor for Pool {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = PoolArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: PoolArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let c = &args.config;
        let limits = Limits {
            min_workers: c.min_workers,
            max_workers: c.max_workers,
            queue_capacity: c.queue_capacity,
            handoff_by_clear: c.worker.handoff == Handoff::Clear
                && c.worker.allowed_tools.is_empty(),
            spare_workers: c.spare_workers,
            min_residency: c.min_residency,
        };
        let default_profile = Profile {
            model: None,
            oauth_token: None,
        };
        let router = Router::new(
            limits,
            default_profile,
            c.worker.work_root.clone(),
            c.backoff.clone(),
        );
        Ok(PoolState {
            config: Arc::new(args.config),
            name: args.name,
            router,
            actors: Default::default(),
            snapshot: args.snapshot,
            stats: Stats::default(),
            seq: 0,
            draining: false,
            forced: false,
            ever_warm: false,
            shutdown_waiters: Vec::new(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        myself.send_interval(TICK, || PoolMsg::Tick);
        let now = Instant::now();
        st.settle(&myself, now, Vec::new());
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        let mut actions = Vec::new();
        match msg {
            PoolMsg::Submit {
                turn,
                events,
                reply,
            } => {
                tracing::debug!(session = %turn.session, queued = st.router.queue.len(), "submit");
                if st.draining {
                    let _ = reply.send(Err(SubmitError::ShuttingDown));
                    return Ok(());
                }
                st.seq += 1;
                let pending = Pending {
                    seq: st.seq,
                    turn,
                    events,
                    enqueued: now,
                };
                let result = st
                    .router
                    .submit(pending, now, true, &mut actions)
                    .map_err(|_| SubmitError::QueueFull {
                        retry_after: retry_after_hint(&st.config),
                    });
                let _ = reply.send(result);
            }
            PoolMsg::WorkerReady { id, pid, actor } => {
                if st.router.workers.contains_key(&id) {
                    st.actors.insert(id, actor);
                    st.router.worker_ready(id, pid, now);
                    st.ever_warm = true;
                    if st.draining
                        || st.router.workers.get(&id).map(|w| w.state)
                            == Some(WorkerState::Stopping)
                    {
                        st.router.stop_worker(id, &mut actions);
                        if let Some(a) = st.actors.get(&id) {
                            a.stop(None);
                        }
                    }
                } else {
                    actor.stop(None);
                }
            }
            PoolMsg::SpawnFailed { id, error } => {
                tracing::error!(worker = id, %error, "worker could not be spawned");
                st.worker_failed(id, &error, now, &mut actions);
            }
            PoolMsg::TurnDone {
                id,
                cli_session_id,
                recycle,
                ok,
                interrupted,
            } => {
                tracing::debug!(
                    worker = id,
                    ?cli_session_id,
                    recycle,
                    ok,
                    interrupted,
                    "turn done"
                );
                if !ok {
                    st.stats.turns_failed += 1;
                }
                if interrupted {
                    st.stats.interrupts += 1;
                }
                st.router
                    .turn_done(id, cli_session_id, recycle, now, &mut actions);
            }
            PoolMsg::WorkerCleared { id } => {
                st.router.worker_cleared(id, now);
                if st.draining {
                    st.router.stop_worker(id, &mut actions);
                }
            }
            PoolMsg::Tick => {
                if !st.draining {
                    let t = Timeouts {
                        queue_timeout: st.config.queue_timeout,
                        session_idle_ttl: st.config.session_idle_ttl,
                        worker_idle_ttl: st.config.worker_idle_ttl,
                        session_resume_ttl: SESSION_RESUME_TTL.max(st.config.session_idle_ttl),
                    };
                    st.router.tick(now, &t, &mut actions);
                }
            }
            PoolMsg::Resize { min, max, reply } => {
                st.router.resize(min, max.max(1), &mut actions);
                let _ = reply.send(());
            }
            PoolMsg::Reconfigure { config, reply } => {
                tracing::info!(
                    min = config.min_workers,
                    max = config.max_workers,
                    "pool reconfigured"
                );
                st.router.limits.queue_capacity = config.queue_capacity;
                st.router
                    .resize(config.min_workers, config.max_workers.max(1), &mut actions);
                st.config = Arc::new(*config);
                let _ = reply.send(());
            }
            PoolMsg::EndSession(sid) => st.router.end_session(&sid, &mut actions),
            PoolMsg::Shutdown { grace, reply } => {
                st.shutdown_waiters.push(reply);
                if !st.draining {
                    // Queued turns keep their place: they are served within the grace like
                    // running ones; only what is left when it ends is cut.
                    st.draining = true;
                    st.router.draining = true;
                    tracing::info!(grace = ?grace, queued = st.router.queue.len(), "pool draining");
                    myself.send_after(grace, || PoolMsg::ShutdownForce);
                }
            }
            PoolMsg::ShutdownForce => {
                st.forced = true;
                for pending in std::mem::take(&mut st.router.queue) {
                    actions.push(Action::Fail {
                        pending,
                        error: TurnError::ShuttingDown,
                    });
                }
                let ids: Vec<WorkerId> = st.router.workers.keys().copied().collect();
                for id in ids {
                    st.router.stop_worker(id, &mut actions);
                }
            }
        }
        st.settle(&myself, now, actions);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        let (cell, failure) = match evt {
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, reason),
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            _ => return Ok(()),
        };
        let Some(id) = cell.get_name().and_then(|n| {
            n.rsplit_once("-w")
                .and_then(|(_, id)| id.parse::<WorkerId>().ok())
        }) else {
            return Ok(());
        };
        st.actors.remove(&id);
        let expected = st
            .router
            .workers
            .get(&id)
            .is_some_and(|w| w.state == WorkerState::Stopping);
        let mut actions = Vec::new();
        if expected {
            st.router.worker_gone(id, &mut actions);
        } else {
            let reason = failure.as_deref().unwrap_or("exited");
            tracing::warn!(worker = id, reason, "worker exited unexpectedly");
            st.worker_failed(id, reason, now, &mut actions);
        }
        st.settle(&myself, now, actions);
        Ok(())
    }
}

/// Removes a working directory nothing uses any more: at once when empty (the usual case:
/// without tools the CLI writes nothing there), else off the mailbox.
fn remove_work_dir(dir: std::path::PathBuf) {
    match std::fs::remove_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a working directory");
                }
            });
        }
    }
}

fn retry_after_hint(cfg: &PoolConfig) -> Duration {
    // A full queue drains at roughly one turn per worker per turn time; one second is a
    // polite floor that keeps clients from hammering.
    Duration::from_secs(1).max(cfg.queue_timeout / 30)
}

impl PoolState {
    /// After every event: route what can move, carry the actions out, finish a drain that is
    /// complete, and publish the new snapshot.
    fn settle(&mut self, myself: &ActorRef<PoolMsg>, now: Instant, mut actions: Vec<Action>) {
        if !self.forced {
            self.router.pump(now, true, &mut actions);
        }
        if self.draining {
            self.router.drain_idle(&mut actions);
        }
        self.execute(myself, actions);
        self.finish_if_drained(myself);
        self.publish();
    }

    /// An unexpected worker exit or a failed spawn/start-up. A start that failed holds back
    /// further starts of the same profile (backoff); a worker that was warm is replaced at
    /// once.
    fn worker_failed(
        &mut self,
        id: WorkerId,
        reason: &str,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        if let Some(slot) = self.router.worker_gone(id, actions) {
            // A conversation's own trouble (its transcript is gone) says nothing about whether
            // processes of this profile start.
            let lost = reason.contains(NO_TRANSCRIPT);
            if let (WorkerState::Starting, true, Some(sid)) =
                (slot.state, slot.resumed, &slot.session)
            {
                self.router.resume_failed(sid, lost, reason, actions);
            }
            match slot.state {
                WorkerState::Starting => {
                    self.stats.spawn_failures += 1;
                    if !self.draining && !lost {
                        let delay = self
                            .router
                            .backoffs
                            .start_failed(&slot.profile, reason, now);
                        tracing::warn!(
                            worker = id,
                            profile = %slot.profile.label(),
                            ?delay,
                            "worker start failed; starts of this profile held back"
                        );
                    }
                }
                WorkerState::Busy => {
                    self.stats.restarts += 1;
                    self.stats.turns_failed += 1;
                }
                _ => self.stats.restarts += 1,
            }
        }
    }

    fn execute(&mut self, myself: &ActorRef<PoolMsg>, actions: Vec<Action>) {
        for action in actions {
            match &action {
                Action::Assign {
                    worker, pending, ..
                } => tracing::debug!(worker, session = %pending.turn.session, "assign"),
                Action::Spawn {
                    worker,
                    conversation,
                    ..
                } => tracing::debug!(worker, ?conversation, "spawn"),
                Action::Clear { worker } => tracing::debug!(worker, "clear"),
                Action::Stop { worker } => tracing::debug!(worker, "stop"),
                Action::Fail { pending, error } => {
                    tracing::debug!(session = %pending.turn.session, %error, "fail queued turn")
                }
                Action::RemoveDir(dir) => tracing::debug!(dir = %dir.display(), "remove dir"),
            }
            match action {
                Action::Assign {
                    worker,
                    pending,
                    resumed,
                } => {
                    let assignment = Assignment {
                        content: pending.turn.content,
                        events: pending.events,
                        queued_for: pending.enqueued.elapsed(),
                        resumed,
                        limits: self.limits(),
                        budget: pending.turn.budget,
                    };
                    match self.actors.get(&worker) {
                        Some(a) => {
                            if let Err(e) = a.cast(WorkerMsg::Run(Box::new(assignment))) {
                                tracing::warn!(worker, error = %e, "worker mailbox closed");
                            }
                        }
                        None => {
                            let _ = assignment.events.try_send(TurnEvent::Failed(
                                TurnError::WorkerFailed("the worker is gone".into()),
                            ));
                        }
                    }
                }
                Action::Spawn {
                    worker,
                    profile,
                    cwd,
                    conversation,
                } => self.spawn_worker(myself, worker, &profile, cwd, &conversation),
                Action::Clear { worker } => {
                    if let Some(a) = self.actors.get(&worker) {
                        let _ = a.cast(WorkerMsg::Clear);
                    }
                }
                Action::Stop { worker } => match self.actors.get(&worker) {
                    Some(a) => a.stop(None),
                    None => {
                        // Still starting: its handshake may take long, so kill it outright.
                        let name = self.worker_name(worker);
                        match ractor::registry::where_is(name) {
                            Some(cell) => cell.kill(),
                            None => {
                                // Not spawned yet or already gone: the spawn task's result
                                // (ready or failed) will find it stopping.
                            }
                        }
                    }
                },
                Action::Fail { pending, error } => {
                    let _ = pending.events.try_send(TurnEvent::Failed(error));
                }
                Action::RemoveDir(dir) => remove_work_dir(dir),
            }
        }
    }

    fn limits(&self) -> ExchangeLimits {
        ExchangeLimits {
            idle_timeout: self.config.turn_idle_timeout,
            interrupt_timeout: self.config.interrupt_timeout,
        }
    }

    fn worker_name(&self, id: WorkerId) -> String {
        format!("{}-w{id}", self.name)
    }

    fn spawn_worker(
        &self,
        myself: &ActorRef<PoolMsg>,
        id: WorkerId,
        profile: &Profile,
        cwd: std::path::PathBuf,
        conversation: &Conversation,
    ) {
        let c = &self.config;
        let spec = child::spawn_spec(&c.worker, profile, &cwd, conversation, |name| {
            std::env::var(name).ok()
        });
        let args = WorkerArgs {
            id,
            pool: myself.clone(),
            spec,
            limits: self.limits(),
            startup_timeout: c.worker.startup_timeout,
            stop_grace: c.stop_grace,
            max_turns: c.max_turns_per_worker.max(1),
            max_rss_bytes: c.max_worker_rss_mb.saturating_mul(1024 * 1024),
        };
        let name = self.worker_name(id);
        let pool = myself.clone();
        tokio::spawn(async move {
            if let Err(e) = Actor::spawn_linked(Some(name), Worker, args, pool.get_cell()).await {
                let _ = pool.cast(PoolMsg::SpawnFailed {
                    id,
                    error: e.to_string(),
                });
            }
        });
    }

    fn finish_if_drained(&mut self, myself: &ActorRef<PoolMsg>) {
        if self.draining && self.router.workers.is_empty() && self.router.queue.is_empty() {
            for w in self.shutdown_waiters.drain(..) {
                let _ = w.send(());
            }
            myself.stop(Some("drained".into()));
        }
    }

    fn publish(&self) {
        let mut s = PoolSnapshot {
            min_workers: self.router.limits.min_workers,
            max_workers: self.router.limits.max_workers,
            queue_depth: self.router.queue.len(),
            sessions: self.router.sessions.len(),
            restarts: self.stats.restarts,
            spawn_failures: self.stats.spawn_failures,
            turns_failed: self.stats.turns_failed,
            interrupts: self.stats.interrupts,
            turns_started: self.router.counters.turns_started,
            queue_rejections: self.router.counters.queue_rejections,
            queue_timeouts: self.router.counters.queue_timeouts,
            evictions: self.router.counters.evictions,
            resumes: self.router.counters.resumes,
            conversations_lost: self.router.counters.conversations_lost,
            recycles: self.router.counters.recycles,
            restart_backoff: self.router.backoffs.current(),
            spawn_troubles: self.router.backoffs.troubles(Instant::now()),
            draining: self.draining,
            ..PoolSnapshot::default()
        };
        for w in self.router.workers.values() {
            match (w.state, w.clearing) {
                (WorkerState::Starting, _) => s.workers_starting += 1,
                (WorkerState::Stopping, _) => s.workers_stopping += 1,
                (WorkerState::Busy, _) | (WorkerState::Idle, true) => s.workers_busy += 1,
                (WorkerState::Idle, false) => s.workers_idle += 1,
            }
            if w.session.is_some() && w.state != WorkerState::Starting {
                s.sessions_bound += 1;
            }
        }
        s.ready = !self.draining && s.workers_idle + s.workers_busy >= s.min_workers;
        // Serving: not draining, and a warm worker is there or workers start normally (the
        // first one was warm and the default profile's starts are not failing).
        let warm = s.workers_idle + s.workers_busy > 0;
        let default_failing = self.router.backoffs.failures(&self.router.default_profile) > 0;
        s.serving = !self.draining && (warm || self.ever_warm && !default_failing);
        self.snapshot.send_replace(s);
    }
}
