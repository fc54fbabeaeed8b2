//! The sessions API (`/api/v1/sessions`): create, list, read and delete the calling key's
//! conversations, and run one turn in a session (answered as a chat completion).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use claude_pool_actors::content::Block;
use serde::{Deserialize, Serialize};

use crate::api::chat::render::respond;
use crate::auth::Caller;
use crate::conversation::{SessionInfo, scoped};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::state::AppState;
use crate::turns::TurnRequest;

#[derive(Debug, Serialize)]
pub(crate) struct SessionList {
    object: &'static str,
    data: Vec<SessionInfo>,
}

/// `POST /api/v1/sessions`.
pub(crate) async fn create(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let id = app.conversations.sessions.create(&caller.key_id).await?;
    let info = app.conversations.sessions.get(&id, &caller.key_id).await?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// `GET /api/v1/sessions`.
pub(crate) async fn list(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<SessionList>, ApiError> {
    Ok(Json(SessionList {
        object: "list",
        data: app.conversations.sessions.list(&caller.key_id).await?,
    }))
}

/// `GET /api/v1/sessions/{id}`.
pub(crate) async fn get_one(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionInfo>, ApiError> {
    app.conversations
        .sessions
        .get(&id, &caller.key_id)
        .await
        .map(Json)
}

/// `DELETE /api/v1/sessions/{id}`: forgets the conversation and frees its worker.
pub(crate) async fn delete(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    app.conversations
        .sessions
        .remove(&id, &caller.key_id)
        .await?;
    // A turn waiting for tool results ends with its session (dropping it interrupts it).
    app.tools.bridge.end_session(&caller.key_id, &id);
    app.pool.end_session(scoped(&caller.key_id, &id).into());
    Ok(Json(serde_json::json!({"id": id, "object": "session", "deleted": true})).into_response())
}

/// Body of `POST /api/v1/sessions/{id}/messages`.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageBody {
    content: String,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    model: Option<String>,
}

/// `POST /api/v1/sessions/{id}/messages`: one turn in the session, as a chat completion
/// (JSON) or as SSE chunks.
pub(crate) async fn message(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MessageBody>,
) -> Result<Response, ApiError> {
    app.conversations.sessions.get(&id, &caller.key_id).await?;
    if body.content.trim().is_empty() {
        return Err(ApiError::bad("content", "`content` must not be empty"));
    }
    let model_name = body
        .model
        .unwrap_or_else(|| app.server.default_model.clone());
    // The session exists (checked above): a conversation held elsewhere is taken up.
    app.take_up(&caller.key_id, &id).await?;
    let system_prompt = app
        .conversations
        .sessions
        .system_prompt(&caller.key_id, &id, None)
        .await?;
    let (claude_model, admission) = app.admit_model(&caller, &model_name).await?;
    respond(
        app.clone(),
        TurnRequest {
            session: id,
            content: vec![Block::Text(body.content)],
            model_name,
            claude_model,
            stream: body.stream,
            include_usage: true,
            history: None,
            claimed: None,
            caller,
            id: crate::openai::completion_id(),
            tags: Vec::new(),
            admission,
            system_prompt,
            limit: None,
            tools: None,
        },
    )
    .await
}
