//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::auth::Caller;
use crate::conversation::{fingerprint, normalize, replay, system_prompt};
use crate::error::ApiError;
use crate::http::admin::check_tags;
use crate::http::chat_render::respond;
use crate::http::turn::{SESSION_HEADER, TurnRequest};
use crate::http::{ApiJson, AppState};
use crate::openai::{ChatRequest, completion_id};

/// Maps the request onto a conversation (see `crate::conversation`) and runs the turn.
pub(super) async fn chat_completions(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    if let Some((param, message)) = req.unsupported() {
        return Err(ApiError::bad(param, message));
    }
    let msgs = normalize(&req.messages)?;
    let sent_system_prompt = system_prompt(&msgs)?;
    let tags = req.tags().map_err(|m| ApiError::bad("metadata", m))?;
    check_tags("metadata.tags", &tags)?;
    let claude_model = app.resolve_model(&req.model)?;
    let admission = app.admit(&caller, &req.model, &claude_model).await?;
    let explicit = match headers.get(SESSION_HEADER) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad("X-Session-Id", "the session id must be ASCII"))?
                .to_owned(),
        ),
        None => req.session_id.clone(),
    };
    let last = msgs.last().map(|m| m.text.clone()).unwrap_or_default();
    let mut claimed = None;
    let mut system_prompt = sent_system_prompt.clone();
    let (session, content, history) = match explicit {
        Some(sid) => {
            let created = app.sessions.claim_or_create(&sid, &caller.key_id).await?;
            // A session the gateway has not seen starts with the client's whole history.
            let content = if created { replay(&msgs) } else { last };
            // A turn sent without system messages keeps the conversation's system prompt.
            system_prompt = app
                .sessions
                .system_prompt(&caller.key_id, &sid, sent_system_prompt);
            (sid, content, None)
        }
        None => {
            let prefix = &msgs[..msgs.len() - 1];
            let fp = fingerprint(&caller.key_id, prefix);
            let mut continued = (!prefix.is_empty())
                .then(|| app.fingerprints.claim(&fp))
                .flatten();
            if let Some(sid) = &continued {
                if !app.sessions.owned_by(sid, &caller.key_id).await? {
                    continued = None;
                }
            }
            match continued {
                Some(sid) => {
                    claimed = Some(fp);
                    (sid, last, Some(msgs))
                }
                None => {
                    let sid = app.sessions.create(&caller.key_id).await?;
                    (sid, replay(&msgs), Some(msgs))
                }
            }
        }
    };
    if let Some(user) = &req.user {
        tracing::debug!(%user, %session, "chat completion");
    }
    respond(
        app,
        TurnRequest {
            session,
            content,
            model_name: req.model.clone(),
            claude_model,
            stream: req.stream,
            include_usage: req.include_usage(),
            history,
            claimed,
            caller,
            id: completion_id(),
            tags,
            admission,
            system_prompt,
            limit: req.output_limit(),
        },
    )
    .await
}
