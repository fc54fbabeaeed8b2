//! The pool actor: supervisor of the worker actors and executor of the router's decisions.
//!
//! Everything that changes routing state or worker lifecycle passes through this one mailbox,
//! so the two can never disagree. Workers are linked children; their exits arrive as
//! supervision events (never falling through to ractor's default, which would stop the pool);
//! a warm worker that died is replaced at once, a failed start holds back its profile's starts
//! (see `backoff`). How the router's actions are carried out is in [`effects`].

mod effects;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::{mpsc, watch};

use crate::child::{self, Conversation};
use crate::config::{Handoff, PoolConfig};
use crate::pool::ConversationPlace;
use crate::pool::inspect::{EventLog, PoolInspection, WorkerEventKind, WorkerView};
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
    /// Whether the pool knows a conversation (a worker holds it, or it can resume it).
    KnowsConversation {
        session: SessionId,
        reply: RpcReplyPort<bool>,
    },
    /// Where a conversation the pool does not know could be taken up: `None` when it knows it.
    PlaceConversation {
        session: SessionId,
        reply: RpcReplyPort<Option<ConversationPlace>>,
    },
    /// Takes up a conversation whose transcript was written at `place` (false: the pool meanwhile
    /// knows the session, and the place is not used).
    AdoptConversation {
        session: SessionId,
        cli_session_id: String,
        place: ConversationPlace,
        reply: RpcReplyPort<bool>,
    },
    Inspect {
        reply: RpcReplyPort<PoolInspection>,
    },
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
    /// Recent worker starts, failed starts and crashes (for dashboards).
    events: EventLog,
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
        let default_profile = Profile::default();
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
            events: EventLog::default(),
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
                    st.events.push(id, WorkerEventKind::Warm, "");
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
            PoolMsg::KnowsConversation { session, reply } => {
                let _ = reply.send(st.router.sessions.contains_key(&session));
                return Ok(());
            }
            PoolMsg::PlaceConversation { session, reply } => {
                let place = (!st.router.sessions.contains_key(&session)).then(|| st.place());
                let _ = reply.send(place);
                return Ok(());
            }
            PoolMsg::AdoptConversation {
                session,
                cli_session_id,
                place,
                reply,
            } => {
                let adopted = !st.draining
                    && st
                        .router
                        .adopt(session, cli_session_id, place.cwd.clone(), now);
                if !adopted {
                    actions.push(Action::RemoveDir(place.cwd));
                }
                let _ = reply.send(adopted);
            }
            PoolMsg::Inspect { reply } => {
                let _ = reply.send(st.inspect(now));
                return Ok(());
            }
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

fn retry_after_hint(cfg: &PoolConfig) -> Duration {
    // A full queue drains at roughly one turn per worker per turn time; one second is a
    // polite floor that keeps clients from hammering.
    Duration::from_secs(1).max(cfg.queue_timeout / 30)
}
