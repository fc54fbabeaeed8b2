//! The keeper of one parked turn: a task that owns the turn while it waits for the client's
//! tool results and serializes what can happen to it: the results come (the turn goes on, or
//! the conversation does if the turn was set aside), it is asked to give its worker up, the CLI
//! moves on without the results, its session is deleted, or its deadline passes.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant as TokioInstant, sleep_until};

use super::link::{Link, Outcome};
use super::parking::{Ended, ParkInfo, ReleaseCause};

/// Why tool results could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContinueError {
    /// No parked turn has these calls (never made, or already answered).
    #[error(
        "no turn is waiting for the results of {0} (unknown call ids, or they were answered already)"
    )]
    Unknown(String),
    /// Some of the turn's calls have no result in the request.
    #[error("results are missing for tool calls {0}: send one `tool` message per call")]
    Missing(String),
    /// The turn that made the call ended before its results came.
    #[error("tool call {call} can no longer take its result: {why}")]
    Ended {
        /// The call (OpenAI id).
        call: String,
        /// Why its turn ended.
        why: Ended,
    },
}

/// What a keeper needs of the bridge that parked its turn.
pub(super) trait ParkingLot<T: HeldTurn>: Send + Sync + 'static {
    /// How long a parked turn waits for its results.
    fn timeout(&self) -> std::time::Duration;
    /// Removes a parked turn from the registry.
    fn forget(&self, info: &ParkInfo);
    /// Remembers why a parked turn ended without its results.
    fn bury(&self, info: &ParkInfo, why: &Ended);
    /// Counts a finished release.
    fn note_release(&self, cause: ReleaseCause);
    /// Keeps a turn set aside until its results come or its deadline passes.
    fn park_set_aside(self: Arc<Self>, info: Arc<ParkInfo>, kept: T::Kept);
}

/// What the bridge needs of a turn it parks.
pub trait HeldTurn: Send + 'static {
    /// What is kept of a turn set aside: enough to continue its conversation with a new turn.
    type Kept: Send + 'static;

    /// Resolves when the turn moves while it should wait for results: the CLI went on without
    /// them (its own limit on an MCP call), or the turn ended. Cancel safe; what it saw is kept
    /// for [`HeldTurn::set_aside`].
    fn stirs(&mut self) -> impl Future<Output = ()> + Send;

    /// Ends the CLI turn and keeps its conversation: what continues it, or why it cannot be.
    fn set_aside(self) -> impl Future<Output = Result<Self::Kept, String>> + Send;
}

/// How the results of a parked turn are to be given.
pub enum Continuation<T: HeldTurn> {
    /// The turn held its worker: the results went to the waiting CLI; the rest of the turn is
    /// the answer.
    Held(T),
    /// The turn was set aside: a new turn in its conversation must bring the results.
    SetAside {
        /// What was kept of it.
        kept: T::Kept,
        /// The parked turn.
        info: Arc<ParkInfo>,
    },
}

/// What a keeper is told.
pub(super) enum KeeperMsg<T: HeldTurn> {
    /// The client's results (CLI call id → outcome), from `owner`.
    Continue {
        owner: String,
        results: Vec<(String, Outcome)>,
        reply: oneshot::Sender<Result<Continuation<T>, ContinueError>>,
    },
    /// Give the worker up.
    Release(ReleaseCause),
    /// End the turn (its session was deleted).
    End(Ended),
}

enum Phase<T: HeldTurn> {
    Holding(T),
    SetAside(T::Kept),
}

enum Happened<T: HeldTurn> {
    Told(Option<KeeperMsg<T>>),
    Stirred,
    Deadline,
}

/// Runs a parked turn until its results come or it ends. `turn` is `None` for a turn already
/// set aside (`kept` then).
pub(super) async fn keep<T: HeldTurn, B: ParkingLot<T>>(
    bridge: Arc<B>,
    info: Arc<ParkInfo>,
    link: Option<Arc<Link>>,
    start: Result<T, T::Kept>,
    mut inbox: mpsc::UnboundedReceiver<KeeperMsg<T>>,
) {
    let deadline = TokioInstant::from_std(info.parked_at + bridge.timeout());
    let mut phase = match start {
        Ok(turn) => Phase::Holding(turn),
        Err(kept) => Phase::SetAside(kept),
    };
    let calls = info.call_ids().join(",");
    loop {
        let happened = match &mut phase {
            Phase::Holding(turn) => tokio::select! {
                m = inbox.recv() => Happened::Told(m),
                () = turn.stirs() => Happened::Stirred,
                () = sleep_until(deadline) => Happened::Deadline,
            },
            Phase::SetAside(_) => tokio::select! {
                m = inbox.recv() => Happened::Told(m),
                () = sleep_until(deadline) => Happened::Deadline,
            },
        };
        match happened {
            Happened::Told(Some(KeeperMsg::Continue {
                owner,
                results,
                reply,
            })) => {
                if let Err(e) = check(&info, &owner, &results) {
                    let _ = reply.send(Err(e));
                    continue;
                }
                bridge.forget(&info);
                let continuation = match phase {
                    Phase::Holding(turn) => {
                        if let Some(link) = &link {
                            for (id, outcome) in results {
                                link.answer(&id, outcome);
                            }
                        }
                        tracing::info!(session = %info.session, %calls, "tool results continue the parked turn on its worker");
                        Continuation::Held(turn)
                    }
                    Phase::SetAside(kept) => {
                        tracing::info!(session = %info.session, %calls, "tool results continue a conversation whose turn was set aside");
                        Continuation::SetAside {
                            kept,
                            info: info.clone(),
                        }
                    }
                };
                if let Err(Ok(Continuation::SetAside { kept, info })) = reply.send(Ok(continuation))
                {
                    // The request went away before it got them: the results may come again.
                    bridge.clone().park_set_aside(info, kept);
                }
                return;
            }
            Happened::Told(Some(KeeperMsg::Release(cause))) => {
                if let Phase::Holding(turn) = phase {
                    phase = match set_aside(&*bridge, &info, turn, cause).await {
                        Some(kept) => Phase::SetAside(kept),
                        None => return,
                    };
                }
            }
            Happened::Stirred => {
                if let Phase::Holding(turn) = phase {
                    tracing::warn!(session = %info.session, %calls, "the CLI stopped waiting for the tool results before they came (its own limit on an MCP call?); the turn is set aside and the results will be given as a new message");
                    info.begin_release();
                    phase = match set_aside(&*bridge, &info, turn, ReleaseCause::CliMovedOn).await {
                        Some(kept) => Phase::SetAside(kept),
                        None => return,
                    };
                }
            }
            Happened::Told(Some(KeeperMsg::End(why))) => {
                tracing::info!(session = %info.session, %calls, reason = %why, "a parked turn ends");
                end(&*bridge, &info, link.as_deref(), why);
                return;
            }
            Happened::Deadline => {
                let why = Ended::Expired(bridge.timeout());
                tracing::info!(session = %info.session, %calls, "tool results did not come within pool.tool_result_timeout: the parked turn ends");
                end(&*bridge, &info, link.as_deref(), why);
                return;
            }
            Happened::Told(None) => return,
        }
    }
}

/// The results must name every call of the turn, and come from its owner.
fn check(info: &ParkInfo, owner: &str, results: &[(String, Outcome)]) -> Result<(), ContinueError> {
    let first = results
        .first()
        .map(|(id, _)| id.as_str())
        .unwrap_or_default();
    if &*info.owner != owner {
        return Err(ContinueError::Unknown(super::wire::openai_id(first)));
    }
    let missing: Vec<String> = info
        .calls
        .iter()
        .filter(|(c, _)| !results.iter().any(|(id, _)| id == c))
        .map(|(c, _)| super::wire::openai_id(c))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ContinueError::Missing(missing.join(", ")))
    }
}

/// Gives the worker up; `None` when the turn failed and its results cannot be taken.
async fn set_aside<T: HeldTurn, B: ParkingLot<T>>(
    bridge: &B,
    info: &ParkInfo,
    turn: T,
    cause: ReleaseCause,
) -> Option<T::Kept> {
    let waited = info.parked_at.elapsed();
    let outcome = turn.set_aside().await;
    info.released();
    bridge.note_release(cause);
    let calls = info.call_ids().join(",");
    match outcome {
        Ok(kept) => {
            tracing::info!(session = %info.session, %calls, cause = cause.as_str(), waited_ms = waited.as_millis() as u64, "a parked turn gave up its worker; its conversation is kept for the results");
            Some(kept)
        }
        Err(why) => {
            tracing::warn!(session = %info.session, %calls, error = %why, "a parked turn failed as it gave up its worker");
            end(bridge, info, None, Ended::Failed(why));
            None
        }
    }
}

/// The turn ends without its results (a holding turn is dropped with its keeper, which
/// interrupts it; its conversation is kept).
fn end<T: HeldTurn, B: ParkingLot<T>>(
    bridge: &B,
    info: &ParkInfo,
    link: Option<&Link>,
    why: Ended,
) {
    if let Some(link) = link {
        link.abandon();
    }
    bridge.forget(info);
    bridge.bury(info, &why);
}
