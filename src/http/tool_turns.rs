//! Function calling in chat completions: a turn whose model calls the client's tools is
//! answered with `tool_calls` and parked (holding its worker) until the request that brings
//! the results continues it, or `pool.tool_result_timeout` ends it.

use std::sync::Arc;
use std::time::Instant;

use axum::response::Response;
use claude_pool_actors::ToolCall;
use tracing::Instrument;

use crate::auth::Identity;
use crate::conversation::normalize_history;
use crate::error::ApiError;
use crate::http::App;
pub(crate) use crate::http::turn::ToolTurn;
use crate::http::turn::{Started, TurnRequest};
use crate::openai::{ChatRequest, completion_id};
use crate::tools::wire::{ToolResult, cli_id};
use crate::tools::{ContinueError, Outcome, Parked};

/// Parks a started turn whose model called `calls`: it waits for their results (see
/// [`continue_turn`]); after `pool.tool_result_timeout` it is dropped, which interrupts it (the
/// conversation is kept) and frees its worker.
pub(crate) fn park(app: &Arc<App>, started: Started, calls: &[ToolCall]) {
    let Some(link) = started.req.tools.as_ref().and_then(|t| t.link.clone()) else {
        tracing::error!("tool calls from a turn without a link to the bridge");
        return;
    };
    let owner = started.req.caller.key_id.clone();
    let session = started.req.session.clone();
    app.tools.bridge.park(
        Parked {
            owner,
            session: session.clone(),
            calls: calls.iter().map(|c| c.id.clone()).collect(),
            link,
            turn: started,
        },
        move |turn| {
            tracing::info!(%session, "tool results did not come in time: the turn is interrupted");
            drop(turn);
        },
    );
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

/// A request ending with `tool` messages: hands the results to the parked turn that asked for
/// them and answers with the rest of that turn (more tool calls, or the answer). It runs in the
/// request's `tool round` span (the call ids it answers, never their arguments or results),
/// with the rest of the turn in a `chat {model}` span under it.
pub(crate) async fn continue_turn(
    app: Arc<App>,
    caller: Identity,
    req: ChatRequest,
    results: Vec<ToolResult>,
) -> Result<Response, ApiError> {
    let round =
        crate::telemetry::span(|| tracing::info_span!("tool round", otel.name = "tool round"));
    crate::telemetry::event(&round, "gen_ai.tool_results", || {
        let ids: Vec<opentelemetry::StringValue> =
            results.iter().map(|r| r.call_id.clone().into()).collect();
        vec![opentelemetry::KeyValue::new(
            "claude_pool.tool_call_ids",
            opentelemetry::Value::Array(ids.into()),
        )]
    });
    let answered = resume(app, caller, req, results, &round)
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
    req: ChatRequest,
    results: Vec<ToolResult>,
    round: &tracing::Span,
) -> Result<Response, ApiError> {
    let outcomes = results
        .into_iter()
        .map(|r| {
            let outcome = Outcome {
                text: r.text,
                is_error: false,
            };
            (cli_id(&r.call_id), outcome)
        })
        .collect();
    let mut started = app
        .tools
        .bridge
        .resume(&caller.key_id, outcomes)
        .map_err(|e| match e {
            ContinueError::Unknown(_) | ContinueError::Missing(_) => {
                ApiError::bad("messages", e.to_string())
            }
        })?;
    // The rest of the turn is this request's answer.
    let r = &mut started.req;
    r.stream = req.stream;
    r.include_usage = req.include_usage();
    r.model_name = req.model.clone();
    r.id = completion_id();
    if r.history.is_some() {
        // Stateless clients continue from this request's messages plus the answer.
        r.history = Some(normalize_history(&req.messages)?);
    }
    started.t0 = Instant::now();
    started.first = None;
    started.span = round.in_scope(|| crate::telemetry::chat_span(&req.model));
    let scoped = || crate::http::sessions::scoped(&caller.key_id, &started.req.session);
    crate::telemetry::turn_running(scoped, &started.span);
    crate::http::chat_render::render(app, started).await
}
