//! Function calling: a turn whose model calls the client's tools is answered with the calls
//! (in the API surface's shape) and parked until the request that brings the results continues
//! it. While it holds its worker the results go to the waiting CLI turn; a turn set aside (its
//! worker was needed, see `crate::tools::parking`) is continued by a new turn in its
//! conversation whose message carries the results (`tool_continue`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use claude_pool_actors::{ToolCall, TurnEvent};
use tracing::Instrument;

use crate::auth::Identity;
use crate::error::ApiError;
use crate::state::App;
use crate::tools::{Continuation, ContinueError, HeldTurn, Outcome, ParkInfo};
use crate::turns::tool_continue::{SetAside, ToolResults};
use crate::turns::{Started, ToolTurn, TurnRequest, or_ended};

/// Longest wait for a turn being set aside to end (the worker ends it within its interrupt and
/// save timeouts).
const SET_ASIDE_WAIT: Duration = Duration::from_secs(30);

impl HeldTurn for Started {
    type Kept = SetAside;

    async fn stirs(&mut self) {
        if self.first.is_some() {
            return std::future::pending().await;
        }
        self.first = Some(or_ended(self.events.recv().await));
    }

    async fn set_aside(self) -> Result<SetAside, String> {
        let Started {
            req,
            mut events,
            mut claim,
            answer,
            first,
            ..
        } = self;
        // Cut while it waits for results, the CLI answers the calls as refused, notes the
        // interrupt, and the turn completes once that is saved (the conversation is kept).
        answer.cut.cancel();
        let mut seen = first;
        let ended = tokio::time::timeout(SET_ASIDE_WAIT, async {
            loop {
                let ev = match seen.take() {
                    Some(ev) => ev,
                    None => or_ended(events.recv().await),
                };
                claim.settle(&ev);
                match ev {
                    TurnEvent::Completed(_) => return Ok(()),
                    TurnEvent::Failed(e) => return Err(e.to_string()),
                    _ => {}
                }
            }
        })
        .await;
        ended.unwrap_or_else(|_| Err("the turn did not end".into()))?;
        let Some(tools) = req.tools else {
            return Err("a parked turn without tools".into());
        };
        Ok(SetAside {
            session: req.session,
            claude_model: req.claude_model,
            system_prompt: req.system_prompt,
            tools: tools.request,
            stateless: req.history.is_some(),
            tags: req.tags,
        })
    }
}

/// How many workers one key may hold with parked turns: `limits.max_parked_turns_per_key`, or
/// half the pool's current `max_workers` (at least 1).
pub(crate) fn parked_limit(app: &App) -> usize {
    match app.limits.max_parked_turns_per_key {
        0 => (app.pool.snapshot().max_workers / 2).max(1),
        n => n,
    }
}

/// Before a turn with the client's functions: the key may hold one more worker with a parked
/// turn (its oldest parked turn past `pool.parked_turn_grace` gives its worker up to make
/// room), else 429 `parked_turns_exceeded`. Checked before the turn runs, so a refused request
/// costs nothing and its retry pays the model once.
pub(crate) fn check_parked_limit(app: &App, caller: &Identity) -> Result<(), ApiError> {
    let limit = parked_limit(app);
    app.tools
        .bridge
        .make_room(&caller.key_id, limit)
        .map_err(|retry_after| ApiError::ParkedTurnsExceeded { limit, retry_after })
}

/// Parks a started turn whose model called `calls`: it waits for their results (see
/// [`continue_turn`]); after `pool.tool_result_timeout` it ends (a turn holding its worker is
/// dropped, which interrupts it; the conversation is kept). The turn's span ends with the
/// answer that showed the calls; its rest has the continuation's.
pub(crate) fn park(app: &Arc<App>, mut started: Started, calls: &[ToolCall]) {
    started.first = None;
    started.span = tracing::Span::none();
    let Some(link) = started.req.tools.as_ref().and_then(|t| t.link.clone()) else {
        tracing::error!("tool calls from a turn without a link to the bridge");
        return;
    };
    let info = ParkInfo::new(
        started.req.caller.key_id.clone(),
        started.req.session.clone(),
        calls
            .iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect(),
    );
    let limit = parked_limit(app);
    app.tools.bridge.park(info, started, link, limit);
}

/// Takes the calls of the output function (`response_format`) out of `calls`: each is
/// answered at once and its arguments kept as the answer. The client's calls remain.
pub(crate) fn take_output(tools: Option<&mut ToolTurn>, calls: Vec<ToolCall>) -> Vec<ToolCall> {
    let Some(tools) = tools.filter(|t| t.request.output.is_some()) else {
        return calls;
    };
    let (output, client): (Vec<ToolCall>, Vec<ToolCall>) = calls
        .into_iter()
        .partition(|c| c.name == crate::tools::format::OUTPUT_FUNCTION);
    for call in output {
        if let Some(link) = &tools.link {
            let received = Outcome {
                text: "Received.".into(),
                is_error: false,
                ..Outcome::default()
            };
            link.answer(&call.id, received);
        }
        tools.output = Some(call.input);
    }
    client
}

/// The answer under `response_format`: the output function's arguments (else the text, if it
/// is JSON), checked against the schema; `Ok(None)` without a format.
pub(crate) fn formatted(req: &TurnRequest, text: &str) -> Result<Option<String>, ApiError> {
    let Some(tools) = &req.tools else {
        return Ok(None);
    };
    let Some(format) = &tools.request.output else {
        return Ok(None);
    };
    format
        .answer(tools.output.as_ref(), text)
        .map(Some)
        .map_err(ApiError::OutputRejected)
}

/// Hands the results to the parked turn that asked for them and gives back the rest of that
/// turn (more tool calls, or the answer), or, for a turn set aside, a new turn of its
/// conversation that brings them. It runs in the request's `tool round` span (the call ids it
/// answers, never their arguments or results), with the rest of the turn in a `chat {model}`
/// span under it.
pub(crate) async fn continue_turn(
    app: Arc<App>,
    caller: Identity,
    results: ToolResults,
) -> Result<Started, ApiError> {
    let round =
        crate::telemetry::span(|| tracing::info_span!("tool round", otel.name = "tool round"));
    crate::telemetry::event(&round, "gen_ai.tool_results", || {
        let ids: Vec<opentelemetry::StringValue> = results
            .client_ids
            .iter()
            .map(|id| id.clone().into())
            .collect();
        vec![opentelemetry::KeyValue::new(
            "claude_pool.tool_call_ids",
            opentelemetry::Value::Array(ids.into()),
        )]
    });
    let answered = resume(app, caller, results, &round)
        .instrument(round.clone())
        .await;
    if let Err(e) = &answered {
        crate::telemetry::api_error(&round, e);
    }
    answered
}

async fn resume(
    app: Arc<App>,
    caller: Identity,
    results: ToolResults,
    round: &tracing::Span,
) -> Result<Started, ApiError> {
    let continuation = app
        .tools
        .bridge
        .resume(&caller.key_id, results.outcomes.clone())
        .await
        .map_err(|e| match e {
            ContinueError::Ended { .. } => ApiError::ToolResultsRefused {
                code: "tool_call_ended",
                message: e.to_string(),
            },
            ContinueError::Unknown(_) | ContinueError::Missing(_) => {
                ApiError::bad("messages", e.to_string())
            }
        })?;
    let mut started = match continuation {
        Continuation::Held(started) => started,
        Continuation::SetAside { kept, info } => {
            return crate::turns::tool_continue::start_with_results(
                app, caller, results, kept, info,
            )
            .await;
        }
    };
    // The rest of the turn is this request's answer.
    crate::http::access::turn(&started.req.session, &results.model_name);
    let r = &mut started.req;
    r.stream = results.stream;
    r.include_usage = results.include_usage;
    r.model_name = results.model_name.clone();
    r.id = results.id;
    if r.history.is_some() {
        // Stateless clients continue from this request's messages plus the answer.
        r.history = Some(results.history);
    }
    started.t0 = Instant::now();
    started.first = None;
    started.first_output_noted = false;
    started.span = round.in_scope(|| crate::telemetry::chat_span(&results.model_name));
    let scoped = || crate::conversation::scoped(&caller.key_id, &started.req.session);
    crate::telemetry::turn_running(scoped, &started.span);
    Ok(started)
}
