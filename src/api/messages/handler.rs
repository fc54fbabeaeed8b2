//! `POST /v1/messages`: a Messages API request decoded into the neutral turn request and run on
//! the same pool, keys, limits, budgets and sessions as chat completions.
//!
//! Anthropic clients resend the whole history, so the stateless rule applies: a request whose
//! history extends a live conversation continues it on its warm worker with only the new
//! message. `X-Session-Id`, `x-claude-code-session-id` or the session id Claude Code puts in
//! `metadata.user_id` pin a conversation instead. A last message of `tool_result` blocks
//! continues the turn parked for them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use claude_pool_actors::content::{Block, text_of};

use super::wire::WireError;
use super::wire::render::message_id;
use super::wire::request::{Decoded, MessagesRequest, Role as WireRole};
use crate::auth::Caller;
use crate::conversation::{Msg, Role, tool_result_text, with_tool_calls};
use crate::error::ApiError;
use crate::http::headers::{SESSION_HEADER, session_in};
use crate::state::AppState;
use crate::tools::Outcome;
use crate::turns::output_limit::OutputLimit;
use crate::turns::placement::{Placement, place};
use crate::turns::tool_continue::ToolResults;
use crate::turns::tool_parking::{check_parked_limit, continue_turn};
use crate::turns::{ToolTurn, TurnRequest};

/// Answers a started turn as one `message` or as its stream.
async fn respond(
    app: std::sync::Arc<crate::state::App>,
    started: crate::turns::Started,
    show_thinking: bool,
) -> Result<Response, ApiError> {
    if started.req.stream {
        let session = started.req.session.clone();
        let resp = super::stream::respond(app, started, show_thinking);
        return Ok(crate::http::headers::with_session(resp, &session));
    }
    super::render::respond(app, started, show_thinking).await
}

/// Claude Code's own session header.
const CLAUDE_CODE_SESSION_HEADER: &str = "x-claude-code-session-id";

/// A decode failure: a 400 naming the part.
fn bad(e: WireError) -> ApiError {
    ApiError::BadRequest {
        message: e.to_string(),
        param: (!e.param.is_empty()).then_some(e.param),
    }
}

/// Decodes a body (any JSON object; unknown fields are ignored).
pub(crate) fn decode(body: &[u8], for_count: bool) -> Result<Decoded, ApiError> {
    let req = MessagesRequest::from_slice(body).map_err(bad)?;
    match for_count {
        true => req.decode_for_count(),
        false => req.decode(),
    }
    .map_err(bad)
}

/// `POST /v1/messages`.
pub(crate) async fn create_message(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req = decode(&body, false)?;
    drop(body);
    let show_thinking = req.thinking.requested();
    let limit = OutputLimit::new(Some(req.max_tokens), req.stop_sequences.clone());
    let history = history(&req);
    let results = tool_results(&req);
    if !results.is_empty() {
        let results = ToolResults {
            client_ids: results.iter().map(|(id, _)| id.clone()).collect(),
            outcomes: results,
            model_name: req.model.clone(),
            stream: req.stream,
            include_usage: true,
            id: message_id(),
            history,
            limit,
        };
        let started = continue_turn(app.clone(), caller, results).await?;
        return respond(app, started, show_thinking).await;
    }
    if history.last().is_none_or(|m| {
        m.role != Role::User || (m.text.trim().is_empty() && m.attachments.is_empty())
    }) {
        return Err(ApiError::bad(
            "messages",
            "the last message must be a user message with content",
        ));
    }
    if req
        .tools
        .as_ref()
        .is_some_and(|t| t.offers_client_functions())
    {
        check_parked_limit(&app, &caller)?;
    }
    let (claude_model, admission) = app.admit_model(&caller, &req.model).await?;
    let explicit = explicit_session(&headers, &req)?;
    let Placement {
        session,
        content,
        history,
        claimed,
        system_prompt,
    } = place(&app, &caller, explicit, history).await?;
    if let Some(user) = &req.user_id {
        tracing::debug!(user = %user.chars().take(64).collect::<String>(), %session, "message");
    }
    let turn = TurnRequest {
        session,
        content,
        model_name: req.model.clone(),
        claude_model,
        stream: req.stream,
        include_usage: true,
        history,
        claimed,
        caller,
        id: message_id(),
        tags: Vec::new(),
        admission,
        system_prompt,
        limit,
        tools: req.tools.map(|request| ToolTurn {
            request,
            link: None,
            output: None,
        }),
    };
    let started = crate::turns::start(&app, turn).await?;
    respond(app, started, show_thinking).await
}

/// The session a request pins: `X-Session-Id`, else Claude Code's session header, else the
/// session id in `metadata.user_id`.
fn explicit_session(headers: &HeaderMap, req: &Decoded) -> Result<Option<String>, ApiError> {
    for name in [SESSION_HEADER, CLAUDE_CODE_SESSION_HEADER] {
        if let Some(session) = session_in(headers, name, name)? {
            return Ok(Some(session));
        }
    }
    Ok(req.session_hint.clone())
}

/// The conversation as the turn path sees it: the system prompt first, then each message's
/// text (an assistant's tool calls and a user's tool results as part of it, as chat
/// completions shows them) and its attachments.
pub(crate) fn history(req: &Decoded) -> Vec<Msg> {
    let mut out = Vec::with_capacity(req.messages.len() + 1);
    if let Some(system) = &req.system {
        out.push(Msg::text(Role::System, system.clone()));
    }
    for m in &req.messages {
        let role = match m.role {
            WireRole::User => Role::User,
            WireRole::Assistant => Role::Assistant,
        };
        let mut texts = Vec::new();
        let mut attachments = Vec::new();
        for block in &m.content {
            match block {
                Block::Text(t) => texts.push(t.clone()),
                Block::ToolResult {
                    call_id, content, ..
                } => {
                    texts.push(tool_result_text(call_id, &text_of(content)));
                    attachments.extend(attachments_of(content));
                }
                other => attachments.push(other.clone()),
            }
        }
        let mut text = texts.join("\n");
        if !m.tool_uses.is_empty() {
            let calls: Vec<serde_json::Value> = m
                .tool_uses
                .iter()
                .map(|c| serde_json::json!({"id": c.id, "name": c.name, "input": c.input}))
                .collect();
            text = with_tool_calls(&text, &serde_json::Value::Array(calls));
        }
        out.push(Msg {
            role,
            text,
            attachments,
        });
    }
    out
}

/// The results a last message of `tool_result` blocks brings, by the CLI's call id (the ids
/// the answer showed are the CLI's own `toolu_` ids).
fn tool_results(req: &Decoded) -> Vec<(String, Outcome)> {
    req.trailing_tool_results()
        .into_iter()
        .filter_map(|b| match b {
            Block::ToolResult {
                call_id,
                content,
                is_error,
            } => Some((
                call_id.clone(),
                Outcome {
                    text: text_of(content),
                    is_error: *is_error,
                    attachments: attachments_of(content).collect(),
                },
            )),
            _ => None,
        })
        .collect()
}

/// A tool result's images and documents (its text is the result's text).
fn attachments_of(content: &[Block]) -> impl Iterator<Item = Block> + '_ {
    content
        .iter()
        .filter(|b| !matches!(b, Block::Text(_)))
        .cloned()
}
