//! A started turn answered as an OpenAI chat completion: one JSON body here, or Server-Sent
//! Events ([`super::stream`]). The model's thinking is the message's `reasoning_content`
//! (absent when it did not think); the output limit applies to the text only.

use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use claude_pool_actors::TurnEvent;
use tracing::Instrument;

use super::stream::sse;
use crate::api::reasoning::Reasoning;
use crate::error::ApiError;
use crate::http::headers::with_session;
use crate::openai::{ChatCompletion, ResponseMessage, Usage};
use crate::state::App;
use crate::tools::wire::openai_id;
use crate::turns::{Started, TurnRequest, finished, note_failure, start};

/// Runs the turn and answers it as a chat completion.
pub(crate) async fn respond(app: Arc<App>, req: TurnRequest) -> Result<Response, ApiError> {
    let started = start(&app, req).await?;
    render(app, started).await
}

/// Answers a started turn (or the rest of a parked one) as a chat completion.
pub(crate) async fn render(app: Arc<App>, started: Started) -> Result<Response, ApiError> {
    let session = started.req.session.clone();
    if started.req.stream {
        return Ok(with_session(sse(app, started), &session));
    }
    let span = started.span.clone();
    let with_key_credential = started.req.caller.oauth_token.is_some();
    let resp = {
        let answered = json(app.clone(), started).instrument(span.clone()).await;
        if let Err(e) = &answered {
            crate::telemetry::api_error(&span, e);
        }
        match answered {
            Ok(body) => body.into_response(),
            Err(e) => {
                note_failure(&app, with_key_credential, &e);
                return Err(e);
            }
        }
    };
    Ok(with_session(resp, &session))
}

async fn json(app: Arc<App>, mut started: Started) -> Result<Json<ChatCompletion>, ApiError> {
    let span = started.span.clone();
    // The text before tool calls, if the model calls tools.
    let mut so_far = String::new();
    let mut reasoning = Reasoning::default();
    let result = loop {
        match started.next_event(&app).await {
            TurnEvent::TextDelta(piece) => {
                reasoning.close();
                so_far.push_str(&started.answer.delta(piece));
            }
            TurnEvent::ThinkingDelta(piece) => {
                reasoning.delta(&piece);
            }
            TurnEvent::ThinkingSignature(_) => reasoning.close(),
            TurnEvent::ToolCalls(calls) if started.req.tools.is_some() => {
                let calls =
                    crate::turns::tool_parking::take_output(started.req.tools.as_mut(), calls);
                if calls.is_empty() {
                    continue;
                }
                let content = Some(so_far).filter(|t| !t.is_empty());
                let body =
                    tool_calls_completion(&started.req, content, reasoning.content(), &calls);
                crate::telemetry::tool_calls(&span, calls.iter().map(|c| openai_id(&c.id)));
                crate::turns::tool_parking::park(&app, started, &calls);
                return Ok(Json(body));
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
    let mut content = answer.full(&result);
    if let Some(json) = crate::turns::tool_parking::formatted(&req, &content)? {
        content = json;
    }
    finished(&app, &req, &content);
    let message = ResponseMessage {
        role: "assistant",
        content: Some(content),
        reasoning_content: reasoning.content(),
        refusal: None,
        tool_calls: None,
    };
    Ok(Json(ChatCompletion::answer(
        req.id.clone(),
        req.model_name.clone(),
        message,
        answer.finish_reason(&result),
        Usage::from(result.usage),
    )))
}

/// A completion that ends with the model's tool calls (`finish_reason: "tool_calls"`); the
/// turn's usage comes with its final answer.
fn tool_calls_completion(
    req: &TurnRequest,
    content: Option<String>,
    reasoning_content: Option<String>,
    calls: &[claude_pool_actors::ToolCall],
) -> ChatCompletion {
    let message = ResponseMessage {
        role: "assistant",
        content,
        reasoning_content,
        refusal: None,
        tool_calls: Some(crate::tools::wire::tool_calls(calls)),
    };
    ChatCompletion::answer(
        req.id.clone(),
        req.model_name.clone(),
        message,
        "tool_calls",
        Usage::default(),
    )
}
