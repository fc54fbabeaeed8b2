//! `POST /v1/responses`, `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`: the Responses
//! API on the same pool, sessions, keys, limits and spend as chat completions. A response
//! continues the conversation of its `previous_response_id` (the newest response of a
//! conversation continues it in place; an older one branches into a new conversation that
//! replays the history up to it); without one, the input continues a live conversation it
//! extends (as stateless chat clients do) or starts one.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{TurnEvent, TurnResult};
use serde_json::{Value, json};

use super::finish::{outcome_of, store};
use super::output::Output;
use super::stream::sse;
use super::wire::{Head, ResponsesRequest, message_id, response_id, response_object};
use crate::api::chat::messages::normalize;
use crate::api::key_api::check_tags;
use crate::auth::{Caller, Identity};
use crate::conversation::Role;
use crate::conversation::{Msg, replay, system_prompt};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::headers::with_session;
use crate::openai::{Usage, unix_now};
use crate::state::{App, AppState};
use crate::turns::output_limit::OutputLimit;
use crate::turns::placement::{Placement, place};
use crate::turns::{Started, TurnRequest, finished, note_failure, start};

/// `POST /v1/responses`.
pub(crate) async fn create(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<ResponsesRequest>,
) -> Result<Response, ApiError> {
    if let Some((param, message)) = req.unsupported() {
        return Err(ApiError::bad(&param, message));
    }
    let chat = req.messages().map_err(|(p, m)| ApiError::bad(&p, m))?;
    let msgs = normalize(&chat)?;
    let tags = tags(&req)?;
    let (claude_model, admission) = app.admit_model(&caller, &req.model).await?;
    let (placement, before) = match &req.previous_response_id {
        Some(prev) => continue_from(&app, &caller, prev, msgs).await?,
        None => {
            let p = place(&app, &caller, None, msgs).await?;
            let before = p.history.clone().unwrap_or_default();
            (p, before)
        }
    };
    let id = response_id();
    let head = Head {
        id: id.clone(),
        created_at: unix_now(),
        model: req.model.clone(),
        message_id: message_id(),
        previous_response_id: req.previous_response_id.clone(),
        instructions: req.instructions.clone(),
        max_output_tokens: req.max_output_tokens,
        metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
        temperature: req.temperature,
        top_p: req.top_p,
    };
    let turn = TurnRequest {
        session: placement.session,
        content: placement.content,
        model_name: req.model.clone(),
        claude_model,
        stream: req.stream,
        include_usage: true,
        history: placement.history,
        claimed: placement.claimed,
        caller,
        id,
        tags,
        admission,
        system_prompt: placement.system_prompt,
        limit: OutputLimit::new(req.max_output_tokens, Vec::new()),
        tools: None,
    };
    let with_key_credential = turn.caller.oauth_token.is_some();
    let started = start(&app, turn).await?;
    let session = started.req.session.clone();
    let resp = if req.stream {
        sse(app, started, head, before)
    } else {
        match json_response(&app, started, &head, before).await {
            Ok(v) => Json(v).into_response(),
            Err(e) => {
                note_failure(&app, with_key_credential, &e);
                return Err(e);
            }
        }
    };
    Ok(with_session(resp, &session))
}

fn tags(req: &ResponsesRequest) -> Result<Vec<String>, ApiError> {
    let Some(t) = req.metadata.as_ref().and_then(|m| m.get("tags")) else {
        return Ok(Vec::new());
    };
    let tags: Vec<String> = serde_json::from_value(t.clone())
        .map_err(|_| ApiError::bad("metadata", "`metadata.tags` must be a list of strings"))?;
    check_tags("metadata.tags", &tags)?;
    Ok(tags)
}

/// The place of a response that continues `prev`, and the conversation's messages before it.
async fn continue_from(
    app: &App,
    caller: &Identity,
    prev: &str,
    msgs: Vec<Msg>,
) -> Result<(Placement, Vec<Msg>), ApiError> {
    let stored = app
        .conversations
        .responses
        .get(prev, &caller.key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("response `{prev}` not found")))?;
    let sent_system_prompt = system_prompt(&msgs)?;
    let new: Vec<Msg> = msgs
        .into_iter()
        .filter(|m| m.role != Role::System)
        .collect();
    let mut full = stored.history.clone();
    full.extend(new.iter().cloned());
    if app
        .conversations
        .responses
        .is_latest(prev, &stored.session)
        .await?
    {
        // In place: the conversation's worker (on this replica, or taken up from the store)
        // holds it; only the new input is sent.
        app.take_up(&caller.key_id, &stored.session).await?;
        let content = match new.as_slice() {
            [only] => only.blocks(),
            _ => replay(&new),
        };
        let system_prompt = app
            .conversations
            .sessions
            .system_prompt(&caller.key_id, &stored.session, sent_system_prompt)
            .await?;
        let placement = Placement {
            session: stored.session,
            content,
            history: None,
            claimed: None,
            system_prompt,
        };
        return Ok((placement, full));
    }
    // A branch from an older response: a new conversation replaying the history up to it.
    let session = app.conversations.sessions.create(&caller.key_id).await?;
    let system_prompt = app
        .conversations
        .sessions
        .system_prompt(&caller.key_id, &session, sent_system_prompt)
        .await?;
    let placement = Placement {
        session,
        content: replay(&full),
        history: None,
        claimed: None,
        system_prompt,
    };
    Ok((placement, full))
}

async fn json_response(
    app: &Arc<App>,
    mut started: Started,
    head: &Head,
    before: Vec<Msg>,
) -> Result<Value, ApiError> {
    let mut output = Output::new(&head.message_id, false);
    let result: TurnResult = loop {
        match started.next_event(app).await {
            TurnEvent::TextDelta(piece) => output.text(&started.answer.delta(piece)),
            TurnEvent::ThinkingDelta(piece) => output.thinking(&piece),
            TurnEvent::ThinkingSignature(_) => output.signature(),
            TurnEvent::Completed(r) => break r,
            TurnEvent::Failed(e) => {
                let e = ApiError::from(e);
                crate::telemetry::api_error(&started.span, &e);
                return Err(e);
            }
            _ => {}
        }
    };
    crate::telemetry::completed(&started.span, &result);
    let Started {
        req, mut answer, ..
    } = started;
    let tail = answer.tail();
    let text = answer.full(&result);
    finished(app, &req, &text);
    let items = output.finish(&tail, &text);
    let cut = answer.limit.as_ref().and_then(OutputLimit::cut);
    let usage = Usage::from(result.usage);
    let object = response_object(head, &outcome_of(cut), &items, Some(&usage));
    store(app, &req, before, &text, &object).await;
    Ok(object)
}

/// `GET /v1/responses/{id}`.
pub(crate) async fn get(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    app.conversations
        .responses
        .get(&id, &caller.key_id)
        .await?
        .map(|s| Json(s.object))
        .ok_or_else(|| ApiError::NotFound(format!("response `{id}` not found")))
}

/// `DELETE /v1/responses/{id}`.
pub(crate) async fn delete(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if app
        .conversations
        .responses
        .delete(&id, &caller.key_id)
        .await?
    {
        Ok(Json(
            json!({"id": id, "object": "response.deleted", "deleted": true}),
        ))
    } else {
        Err(ApiError::NotFound(format!("response `{id}` not found")))
    }
}
