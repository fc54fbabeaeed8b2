//! The HTTP edge: the router of every API surface, the gate of API keys and rate limits, the
//! access log, request metrics, health and model routes, and the JSON extractor.

pub mod access;
pub mod extract;
mod gate;
pub(crate) mod headers;
mod info;
pub(crate) mod sse;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get, head, post};

use crate::api::{chat, key_api as keys, messages, responses, sessions};
use crate::error::ApiError;
use crate::state::{App, AppState};

/// The full router.
pub fn router(app: Arc<App>) -> Router {
    let limit = app.server.max_body_bytes;
    let state = AppState(app);
    // Routes of API keys: authenticated and rate limited by the gate.
    let api = Router::new()
        .route(
            "/v1/chat/completions",
            post(chat::handler::chat_completions),
        )
        .route("/v1/responses", post(responses::routes::create))
        .route(
            "/v1/responses/{id}",
            get(responses::routes::get).delete(responses::routes::delete),
        )
        .route("/v1/models", get(info::list_models))
        .route("/v1/models/{id}", get(info::get_model))
        .route(
            "/api/v1/sessions",
            post(sessions::create).get(sessions::list),
        )
        .route(
            "/api/v1/sessions/{id}",
            get(sessions::get_one).delete(sessions::delete),
        )
        .route("/api/v1/sessions/{id}/messages", post(sessions::message))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            gate::api_gate,
        ));
    // The Messages API: the same gate, and Anthropic's error envelope on all it answers.
    let anthropic = Router::new()
        .route("/v1/messages", post(messages::handler::create_message))
        .route("/v1/messages/count_tokens", post(messages::edge::count))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            gate::api_gate,
        ))
        .route_layer(middleware::from_fn(messages::edge::anthropic_errors));
    Router::new()
        .merge(api)
        .merge(anthropic)
        .route("/api/hello", get(messages::edge::probe))
        .route("/v1/health", get(info::health))
        .route("/healthz", get(info::healthz))
        .route("/readyz", get(info::readyz))
        .route("/metrics", get(info::metrics))
        .route("/key/generate", post(keys::generate))
        .route("/key/info", get(keys::info))
        .route("/key/list", get(keys::list))
        .route("/key/update", post(keys::update))
        .route("/key/delete", post(keys::delete).delete(keys::delete))
        .route("/key/regenerate", post(keys::regenerate))
        .route("/key/{key}/regenerate", post(keys::regenerate_path))
        .route("/key/block", post(keys::block))
        .route("/key/unblock", post(keys::unblock))
        .route("/spend/keys", get(keys::spend_keys))
        .route("/spend/tags", get(keys::spend_tags))
        .route("/spend/logs", get(keys::spend_logs))
        .route(
            "/",
            head(messages::edge::probe).fallback(console_over_https),
        )
        .route("/admin", any(console_over_https))
        .route("/admin/{*rest}", any(console_over_https))
        .route("/auth/exchange", any(console_over_https))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), record))
        .layer(middleware::from_fn(access::layer))
        .with_state(state)
}

/// The admin console's paths on the plain HTTP port: refused, never served (a password or a
/// session cookie must not cross the network in clear).
async fn console_over_https(State(AppState(app)): State<AppState>) -> ApiError {
    let message = if app.server.https_port == 0 {
        "the admin console is served over HTTPS only, and this server has no HTTPS port (server.https_port = 0)".to_owned()
    } else {
        format!(
            "the admin console is served over HTTPS only: open https://<this host>:{}/",
            app.server.https_port
        )
    };
    ApiError::Forbidden {
        code: "admin_requires_https",
        message,
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("unknown route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Counts every response by route and status, with its latency to the response head.
async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let t0 = Instant::now();
    let resp = next.run(req).await;
    state
        .0
        .metrics
        .observe_request(&route, resp.status().as_u16(), t0.elapsed().as_secs_f64());
    resp
}
