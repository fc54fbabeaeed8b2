//! A started turn answered as a Messages API `message`: one JSON object, or named SSE events
//! (`stream.rs`). Thinking comes as `thinking` blocks with their signatures when the client
//! asked for thinking; the model's calls of the client's tools end the answer with `tool_use`
//! blocks and park the turn for their results.

use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{TurnEvent, Usage};
use tracing::Instrument;

use super::outcome::{shown_usage, stop_reason};
use super::wire::render::{OutBlock, Reply, StopReason};
use crate::error::ApiError;
use crate::http::headers::with_session;
use crate::state::App;
use crate::turns::{Started, finished, note_failure};

/// Answers a started turn (or the rest of a parked one) as one `message` object.
pub(super) async fn respond(
    app: Arc<App>,
    started: Started,
    show_thinking: bool,
) -> Result<Response, ApiError> {
    let session = started.req.session.clone();
    let span = started.span.clone();
    let with_key_credential = started.req.caller.oauth_token.is_some();
    let answered = json(app.clone(), started).instrument(span.clone()).await;
    match answered {
        Ok(reply) => Ok(with_session(
            Json(reply.to_json(show_thinking)).into_response(),
            &session,
        )),
        Err(e) => {
            crate::telemetry::api_error(&span, &e);
            note_failure(&app, with_key_credential, &e);
            Err(e)
        }
    }
}

/// Thinking blocks as they stream: deltas, then the block's signature.
#[derive(Default)]
pub(super) struct ThinkingBlocks {
    pub(super) done: Vec<OutBlock>,
    open: Option<String>,
}

impl ThinkingBlocks {
    pub(super) fn delta(&mut self, piece: &str) {
        self.open.get_or_insert_with(String::new).push_str(piece);
    }

    pub(super) fn signature(&mut self, signature: String) {
        self.done.push(OutBlock::Thinking {
            thinking: self.open.take().unwrap_or_default(),
            signature,
        });
    }

    /// All blocks, an unsigned one last (a call that ended before its signature).
    pub(super) fn take(&mut self) -> Vec<OutBlock> {
        if let Some(thinking) = self.open.take() {
            self.done.push(OutBlock::Thinking {
                thinking,
                signature: String::new(),
            });
        }
        std::mem::take(&mut self.done)
    }
}

async fn json(app: Arc<App>, mut started: Started) -> Result<Reply, ApiError> {
    let span = started.span.clone();
    let mut thinking = ThinkingBlocks::default();
    // The text before tool calls, if the model calls tools.
    let mut so_far = String::new();
    let result = loop {
        match started.next_event(&app).await {
            TurnEvent::ThinkingDelta(piece) => thinking.delta(&piece),
            TurnEvent::ThinkingSignature(sig) => thinking.signature(sig),
            TurnEvent::TextDelta(piece) => {
                so_far.push_str(&started.answer.delta(piece));
            }
            TurnEvent::ToolCalls(calls) if started.req.tools.is_some() => {
                let calls =
                    crate::turns::tool_parking::take_output(started.req.tools.as_mut(), calls);
                if calls.is_empty() {
                    continue;
                }
                let mut content = thinking.take();
                if !so_far.is_empty() {
                    content.push(OutBlock::Text(so_far));
                }
                content.extend(calls.iter().cloned().map(OutBlock::ToolUse));
                crate::telemetry::tool_calls(&span, calls.iter().map(|c| c.id.clone()));
                let reply = Reply {
                    id: started.req.id.clone(),
                    model: started.req.model_name.clone(),
                    content,
                    stop: StopReason::ToolUse,
                    // The turn's usage comes with its final answer.
                    usage: Usage::default(),
                };
                crate::turns::tool_parking::park(&app, started, &calls);
                return Ok(reply);
            }
            TurnEvent::Completed(r) => break r,
            TurnEvent::Failed(e) => return Err(e.into()),
            _ => {}
        }
    };
    crate::telemetry::completed(&span, &result);
    let Started {
        req, mut answer, ..
    } = started;
    answer.tail();
    let text = answer.full(&result);
    finished(&app, &req, &text);
    let mut content = thinking.take();
    content.push(OutBlock::Text(text));
    Ok(Reply {
        id: req.id.clone(),
        model: req.model_name.clone(),
        content,
        stop: stop_reason(&answer, &result),
        usage: shown_usage(&answer, &result),
    })
}
