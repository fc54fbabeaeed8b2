//! What the Messages API answers around the turn: Anthropic's error envelope and `request-id`
//! header on every response of its routes, `POST /v1/messages/count_tokens`, the model list in
//! Anthropic's shape, and Claude Code's unauthenticated probes (`HEAD /`, `/api/hello`).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::handler::decode;
use super::wire::count_tokens::{count_tokens, response};
use super::wire::errors::translate_body;
use super::wire::models::{display_name, model_list, model_object};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Anthropic's request id header.
const ANTHROPIC_REQUEST_ID: &str = "request-id";

/// The header Anthropic's SDKs send with every request.
pub(crate) const ANTHROPIC_VERSION: &str = "anthropic-version";

/// Largest error body read back to be rewritten.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Rewrites every error of the Messages routes (the gate's too) into Anthropic's envelope and
/// status, and puts the request id in `request-id` as the API does.
pub(crate) async fn anthropic_errors(req: Request, next: Next) -> Response {
    // The access layer outside has given the request its id (the client's `x-request-id`, or
    // a new one).
    let request_id = crate::http::access::current().map(|a| a.id().to_owned());
    let resp = next.run(req).await;
    let mut resp = if resp.status().is_client_error() || resp.status().is_server_error() {
        rewrite(resp, request_id.as_deref()).await
    } else {
        resp
    };
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        resp.headers_mut()
            .insert(HeaderName::from_static(ANTHROPIC_REQUEST_ID), id);
    }
    resp
}

async fn rewrite(resp: Response, request_id: Option<&str>) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let openai: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        serde_json::json!({"error": {"message": if text.is_empty() { "error".to_owned() } else { text }}})
    });
    let error = translate_body(parts.status.as_u16(), &openai);
    parts.status = StatusCode::from_u16(error.status).unwrap_or(parts.status);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = Body::from(error.body(request_id).to_string());
    Response::from_parts(parts, body)
}

/// `POST /v1/messages/count_tokens`: an estimate of the request's input tokens (about four
/// characters per token, a fixed cost per image); the CLI's real counts come with each answer.
pub(crate) async fn count(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req = decode(&body, true)?;
    let target = app.resolve_model(&req.model)?;
    if !caller.allows_model(&req.model, &target) {
        return Err(ApiError::ModelNotFound(
            req.model.chars().take(64).collect(),
        ));
    }
    Ok(Json(response(count_tokens(&req))))
}

/// True when the request comes from an Anthropic client.
pub(crate) fn wants_anthropic(headers: &HeaderMap) -> bool {
    headers.contains_key(ANTHROPIC_VERSION)
}

/// `GET /v1/models` for Anthropic clients: the Claude models the key may use (the OpenAI
/// aliases of `[models]` are for OpenAI clients, and are left out).
pub(crate) fn models(app: &crate::state::App, caller: &crate::auth::Identity) -> Value {
    let names: Vec<(&str, String)> = app
        .models
        .entries()
        .filter(|(name, target)| !app.models.is_alias(name) && caller.allows_model(name, target))
        .map(|(name, _)| (name, display_name(name)))
        .collect();
    model_list(names.iter().map(|(id, d)| (*id, d.as_str())))
}

/// `GET /v1/models/{id}` for Anthropic clients.
pub(crate) fn model(id: &str) -> Value {
    model_object(id, &display_name(id))
}

/// `HEAD /` and `/api/hello`: Claude Code's reachability probes, answered without a key.
pub(crate) async fn probe() -> StatusCode {
    StatusCode::OK
}
