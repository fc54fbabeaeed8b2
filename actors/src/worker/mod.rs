//! The worker actor: owns one CLI child process and serves many turns on it, one at a time.
//!
//! Life of a worker: `pre_start` spawns the child (a failure is returned to the spawner);
//! `post_start` sends `initialize` and waits for the answer, then tells the pool it is ready.
//! Each turn runs in a task of its own ([`exchange::run_exchange`]) so the mailbox stays free;
//! the task hands the child's I/O back with [`WorkerMsg::ExchangeDone`]. A turn that leaves the
//! process unusable (crash, protocol break, unacknowledged interrupt) makes the actor fail,
//! which the pool's supervision turns into a replacement. `post_stop` stops the child
//! (SIGTERM → grace → SIGKILL); if the actor is killed instead, the child's group guard does it.

pub(crate) mod exchange;
mod thinking;

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::child::{self, ChildControl, ChildIo, SpawnSpec};
use crate::pool::PoolMsg;
use crate::protocol;
use crate::transcript::{TranscriptDir, TranscriptSink};
use crate::turn::{SessionId, TurnBudget, TurnError, TurnEvent, TurnResult, TurnSpend, Usage};
use exchange::{Exchange, ExchangeEnd, ExchangeLimits, ExchangeReport, InterruptCause, SaveCheck};

/// The pool's id for a worker (unique within one pool).
pub type WorkerId = u64;

/// A turn handed to a worker by the pool.
#[derive(Debug)]
pub(crate) struct Assignment {
    /// The user message, as blocks.
    pub(crate) content: Vec<crate::content::Block>,
    pub(crate) events: mpsc::Sender<TurnEvent>,
    pub(crate) queued_for: Duration,
    pub(crate) resumed: bool,
    /// Timeouts of this turn (current pool configuration).
    pub(crate) limits: ExchangeLimits,
    /// Its cost cap and spend report.
    pub(crate) budget: TurnBudget,
    /// Where its transcript is kept once it completes, and its conversation.
    pub(crate) keep: Option<(TranscriptSink, SessionId)>,
}

/// Messages of the worker actor.
#[derive(Debug)]
pub(crate) enum WorkerMsg {
    /// Run a user turn.
    Run(Box<Assignment>),
    /// Start a fresh conversation in this process (`/clear`): the handoff to the next session.
    Clear,
    /// The exchange task finished (I/O handed back).
    ExchangeDone(Box<ExchangeReport>),
    /// The child exited while no exchange was running.
    ChildExited(String),
}

/// Start-up arguments of a worker.
#[derive(Debug)]
pub(crate) struct WorkerArgs {
    pub(crate) id: WorkerId,
    pub(crate) pool: ActorRef<PoolMsg>,
    pub(crate) spec: SpawnSpec,
    pub(crate) limits: ExchangeLimits,
    pub(crate) startup_timeout: Duration,
    pub(crate) stop_grace: Duration,
    pub(crate) max_turns: u64,
    pub(crate) max_rss_bytes: u64,
    /// Its token for external tools (reported with every turn it starts).
    pub(crate) tool_token: Option<crate::turn::Secret>,
    /// The name prefix of its external tools.
    pub(crate) external_prefix: Option<String>,
}

/// The worker actor (behaviour only; all data lives in [`WorkerData`]).
#[derive(Debug)]
pub(crate) struct Worker;

/// What kind of exchange is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Running {
    Turn,
    Clear,
}

/// The worker's state: the child and the bookkeeping of its turns.
#[derive(Debug)]
pub(crate) struct WorkerData {
    args: WorkerArgs,
    control: Option<ChildControl>,
    io: Option<ChildIo>,
    task: Option<JoinHandle<()>>,
    running: Option<Running>,
    /// The current turn's stream, kept to deliver the final event.
    current: Option<mpsc::Sender<TurnEvent>>,
    /// The current turn's cost cap and spend report.
    budget: TurnBudget,
    /// Where the current turn's transcript is kept once it completes.
    keep: Option<(TranscriptSink, SessionId)>,
    /// The CLI's cumulative cost after the previous result (per process, not per conversation).
    last_total_cost: f64,
    turns: u64,
    seq: u64,
    turn_started: Option<Instant>,
    /// When the process group's memory was last measured (a /proc scan, so not every turn).
    rss_checked: Option<Instant>,
    /// Where the CLI saves this process's conversations (`None`: no HOME known).
    transcripts: Option<TranscriptDir>,
    /// Where the last confirmed save of a turn ended (CLI session, position in its file).
    saved: Option<(String, u64)>,
    /// A `/clear` was answered: the next turn starts a new conversation, and the boundary line
    /// goes before its first message.
    boundary_due: bool,
}

/// How often a worker's resident memory is measured (after a turn, at most this often).
const RSS_CHECK_INTERVAL: Duration = Duration::from_secs(5);

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = WorkerData;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: WorkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let (io, control) = child::spawn(&args.spec)?;
        tracing::debug!(
            worker = args.id,
            pid = control.pid(),
            "worker child spawned"
        );
        Ok(WorkerData {
            control: Some(control),
            io: Some(io),
            task: None,
            running: None,
            current: None,
            budget: TurnBudget::default(),
            keep: None,
            last_total_cost: 0.0,
            turns: 0,
            seq: 0,
            turn_started: None,
            rss_checked: None,
            transcripts: TranscriptDir::for_child(&args.spec.cwd, &args.spec.env),
            saved: None,
            boundary_due: false,
            args,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (Some(io), Some(control)) = (st.io.as_mut(), st.control.as_ref()) else {
            return Err("worker started without a child".into());
        };
        let mut exit = control.exit_watch();
        let pid = control.pid();
        if let Err(reason) = exchange::handshake(io, &mut exit, st.args.startup_timeout).await {
            if let Some(c) = st.control.take() {
                c.kill().await;
            }
            return Err(format!("worker {} did not start: {reason}", st.args.id).into());
        }
        // Watch for the child dying between turns.
        let me = myself.clone();
        tokio::spawn(async move {
            if let Ok(v) = exit.wait_for(Option::is_some).await {
                let info = v.map(|i| i.to_string()).unwrap_or_default();
                let _ = me.cast(WorkerMsg::ChildExited(info));
            }
        });
        tracing::debug!(worker = st.args.id, pid, "worker ready");
        st.args.pool.cast(PoolMsg::WorkerReady {
            id: st.args.id,
            pid,
            actor: myself,
        })?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Run(a) => {
                let pid = st
                    .control
                    .as_ref()
                    .map(ChildControl::pid)
                    .unwrap_or_default();
                let started = TurnEvent::Started {
                    worker_id: st.args.id,
                    pid,
                    queued_for: a.queued_for,
                    resumed: a.resumed,
                    tool_token: st.args.tool_token.clone(),
                };
                if a.events.try_send(started).is_err() && a.events.is_closed() {
                    // Cancelled between dispatch and start: nothing to run.
                    st.args.pool.cast(PoolMsg::TurnDone {
                        id: st.args.id,
                        cli_session_id: None,
                        recycle: false,
                        ok: false,
                        interrupted: false,
                    })?;
                    return Ok(());
                }
                st.current = Some(a.events.clone());
                st.turn_started = Some(Instant::now());
                st.args.limits = a.limits;
                st.budget = a.budget;
                st.keep = a.keep;
                let mut input = protocol::user_message_line(&a.content);
                if std::mem::take(&mut st.boundary_due) {
                    input.insert_str(0, &protocol::conversation_boundary_line());
                }
                start_exchange(&myself, st, Running::Turn, input, Some(a.events))
            }
            WorkerMsg::Clear => start_exchange(
                &myself,
                st,
                Running::Clear,
                protocol::command_line("/clear"),
                None,
            ),
            WorkerMsg::ExchangeDone(report) => finish_exchange(st, *report).await,
            WorkerMsg::ChildExited(info) => {
                if st.running.is_some() {
                    // The exchange task sees the exit too and reports it.
                    return Ok(());
                }
                Err(format!("worker {} child exited while idle ({info})", st.args.id).into())
            }
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(task) = st.task.take() {
            task.abort();
        }
        if let Some(tx) = st.current.take() {
            let _ = tx.try_send(TurnEvent::Failed(TurnError::ShuttingDown));
        }
        if let Some(control) = st.control.take() {
            let pid = control.pid();
            let exit = control.stop(st.args.stop_grace).await;
            tracing::debug!(worker = st.args.id, pid, ?exit, "worker child stopped");
        }
        // The working directory belongs to the conversation, not to this process: the pool
        // removes it once no conversation and no process uses it.
        Ok(())
    }
}

fn start_exchange(
    myself: &ActorRef<WorkerMsg>,
    st: &mut WorkerData,
    kind: Running,
    input: String,
    sink: Option<mpsc::Sender<TurnEvent>>,
) -> Result<(), ActorProcessingErr> {
    let (Some(io), Some(control)) = (st.io.take(), st.control.as_ref()) else {
        if let Some(tx) = sink {
            let _ = tx.try_send(TurnEvent::Failed(TurnError::WorkerFailed(
                "the worker was busy".into(),
            )));
        }
        return Err(format!("worker {} got work while busy", st.args.id).into());
    };
    st.seq += 1;
    st.running = Some(kind);
    let exit = control.exit_watch();
    let limits = st.args.limits;
    let max_cost = (kind == Running::Turn)
        .then_some(st.budget.max_cost_usd)
        .flatten();
    let cut = (kind == Running::Turn)
        .then(|| st.budget.cut.clone())
        .flatten();
    let seq = st.seq;
    let external_prefix = st.args.external_prefix.clone();
    let keep = if kind == Running::Turn {
        st.keep.take()
    } else {
        None
    };
    let save = st.transcripts.clone().map(|dir| SaveCheck {
        dir,
        saved: st.saved.clone(),
        keep,
    });
    let me = myself.clone();
    st.task = Some(tokio::spawn(async move {
        let exchange = Exchange {
            input,
            sink,
            limits,
            max_cost_usd: max_cost,
            cut,
            seq,
            save,
            external_prefix,
        };
        let report = exchange::run_exchange(io, exit, exchange).await;
        let _ = me.cast(WorkerMsg::ExchangeDone(Box::new(report)));
    }));
    Ok(())
}

async fn finish_exchange(
    st: &mut WorkerData,
    report: ExchangeReport,
) -> Result<(), ActorProcessingErr> {
    st.task = None;
    let kind = st.running.take();
    st.io = Some(report.io);
    if report.saved.is_some() {
        st.saved.clone_from(&report.saved);
    }
    let current = st.current.take();
    let elapsed = st.turn_started.take().map(|t| t.elapsed());
    let budget = std::mem::take(&mut st.budget);
    let limit = budget.max_cost_usd;
    let over = |cost: f64| TurnError::CostLimitExceeded {
        cost_usd: cost,
        limit_usd: limit.unwrap_or_default(),
    };
    // What the streamed token counts say the turn cost (stands in when the CLI's figure is
    // missing or lower, as for an interrupted call).
    let estimate = report.meter.estimate_usd();
    let (event, ok, broken, spend) = match report.end {
        ExchangeEnd::Broken { reason } => {
            let error = match report.interrupted {
                Some(InterruptCause::IdleTimeout) => TurnError::IdleTimeout,
                Some(InterruptCause::Cancelled) => TurnError::Interrupted,
                Some(InterruptCause::CostLimit) => over(estimate),
                Some(InterruptCause::Cut) | None => TurnError::WorkerFailed(reason.clone()),
            };
            let spend = (report.meter.usage(), estimate);
            (TurnEvent::Failed(error), false, Some(reason), spend)
        }
        ExchangeEnd::Finished { result, text } => {
            let cost = match result.total_cost_usd {
                Some(total) => {
                    let cost = (total - st.last_total_cost).max(0.0);
                    st.last_total_cost = total;
                    cost
                }
                None => estimate,
            };
            let over_limit = limit.is_some_and(|max| cost > max);
            let event = match report.interrupted {
                Some(InterruptCause::IdleTimeout) => TurnEvent::Failed(TurnError::IdleTimeout),
                Some(InterruptCause::Cancelled) => TurnEvent::Failed(TurnError::Interrupted),
                Some(InterruptCause::CostLimit) => TurnEvent::Failed(over(cost.max(estimate))),
                Some(InterruptCause::Cut) => TurnEvent::Completed(TurnResult {
                    text,
                    usage: result.usage,
                    cost_usd: cost,
                    stop_reason: result.stop_reason.clone(),
                    duration_ms: elapsed.map(|d| d.as_millis() as u64).unwrap_or_default(),
                    cut: true,
                    thinking: report.thinking,
                }),
                None if over_limit => TurnEvent::Failed(over(cost)),
                None if result.is_interrupted() => TurnEvent::Failed(TurnError::Interrupted),
                None if result.is_error => TurnEvent::Failed(TurnError::Upstream {
                    status: result.api_error_status,
                    message: result
                        .result
                        .clone()
                        .unwrap_or_else(|| result.subtype.clone()),
                }),
                None => TurnEvent::Completed(TurnResult {
                    text,
                    usage: result.usage,
                    cost_usd: cost,
                    stop_reason: result.stop_reason.clone(),
                    duration_ms: if result.duration_ms > 0 {
                        result.duration_ms
                    } else {
                        elapsed.map(|d| d.as_millis() as u64).unwrap_or_default()
                    },
                    cut: false,
                    thinking: report.thinking,
                }),
            };
            let ok = matches!(event, TurnEvent::Completed(_));
            // Tokens streamed are facts the result may not repeat (an interrupted call); the
            // estimate stands in for the CLI's cost only for turns that did not complete.
            let usage = max_usage(result.usage, report.meter.usage());
            let cost = if ok { cost } else { cost.max(estimate) };
            (event, ok, None, (usage, cost))
        }
    };
    if let (Some(Running::Turn), Some(ledger)) = (kind, &budget.ledger) {
        ledger.record(TurnSpend {
            usage: spend.0,
            cost_usd: spend.1,
            duration: elapsed.unwrap_or_default(),
            status: match &event {
                TurnEvent::Completed(_) => "completed",
                TurnEvent::Failed(TurnError::CostLimitExceeded { .. }) => "cost_limit",
                TurnEvent::Failed(TurnError::Interrupted) => "interrupted",
                _ => "failed",
            },
        });
    }
    if let Some(tx) = current {
        // Off the mailbox: a slow reader must not stall the worker.
        tokio::spawn(async move {
            let _ = tx.send(event).await;
        });
    }
    if let Some(reason) = broken {
        tracing::warn!(worker = st.args.id, %reason, "worker process unusable; replacing it");
        if let Some(c) = st.control.take() {
            c.kill().await;
        }
        return Err(format!("worker {}: {reason}", st.args.id).into());
    }
    match kind {
        Some(Running::Clear) => {
            st.boundary_due = true;
            st.args
                .pool
                .cast(PoolMsg::WorkerCleared { id: st.args.id })?;
        }
        _ => {
            st.turns += 1;
            let due = st
                .rss_checked
                .is_none_or(|t| t.elapsed() >= RSS_CHECK_INTERVAL);
            let rss = match (&st.control, due && st.args.max_rss_bytes > 0) {
                (Some(control), true) => {
                    st.rss_checked = Some(Instant::now());
                    control.group_rss_bytes()
                }
                _ => 0,
            };
            let recycle = st.turns >= st.args.max_turns
                || (st.args.max_rss_bytes > 0 && rss > st.args.max_rss_bytes);
            if recycle {
                tracing::info!(
                    worker = st.args.id,
                    turns = st.turns,
                    rss,
                    "recycling worker"
                );
            }
            st.args.pool.cast(PoolMsg::TurnDone {
                id: st.args.id,
                // Only a completed turn is known to be in the transcript (it waited for the
                // save): a failed one must not point a later `--resume` at a file the CLI may
                // never have written.
                cli_session_id: report.cli_session_id.filter(|_| ok),
                recycle,
                ok,
                interrupted: report.interrupted.is_some(),
            })?;
        }
    }
    Ok(())
}

fn max_usage(a: Usage, b: Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens.max(b.input_tokens),
        output_tokens: a.output_tokens.max(b.output_tokens),
        cache_creation_input_tokens: a
            .cache_creation_input_tokens
            .max(b.cache_creation_input_tokens),
        cache_read_input_tokens: a.cache_read_input_tokens.max(b.cache_read_input_tokens),
    }
}
