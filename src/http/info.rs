//! Models, health, readiness and metrics.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::openai::{Model, ModelList};
use crate::state::AppState;

/// A fixed `created` for model entries (the aliases have no release date).
const MODELS_CREATED: u64 = 1_700_000_000;

fn model(id: &str, alias: bool) -> Model {
    Model {
        id: id.to_owned(),
        object: "model",
        created: MODELS_CREATED,
        owned_by: if alias { "claude-pool" } else { "anthropic" },
    }
}

/// `GET /v1/models`: the aliases and the Claude model names of the catalogue (those the key
/// may use).
pub(super) async fn list_models(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    headers: axum::http::HeaderMap,
) -> Response {
    if crate::api::messages::edge::wants_anthropic(&headers) {
        return Json(crate::api::messages::edge::models(&app, &caller)).into_response();
    }
    let data: Vec<Model> = app
        .models
        .entries()
        .filter(|(name, target)| caller.allows_model(name, target))
        .map(|(name, _)| model(name, app.models.is_alias(name)))
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
    .into_response()
}

/// `GET /v1/models/{id}`: agrees with the list (404 for a name the key may not use).
pub(super) async fn get_model(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let target = app.resolve_model(&id)?;
    if !caller.allows_model(&id, &target) {
        return Err(ApiError::ModelNotFound(id));
    }
    if crate::api::messages::edge::wants_anthropic(&headers) {
        return Ok(Json(crate::api::messages::edge::model(&id)).into_response());
    }
    Ok(Json(model(&id, app.models.is_alias(&id))).into_response())
}

/// How long readiness waits for the store's answer.
const STORE_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Can the store answer right now (within [`STORE_PING_TIMEOUT`])?
async fn store_reachable(app: &crate::state::App) -> bool {
    match tokio::time::timeout(STORE_PING_TIMEOUT, app.store.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store is unreachable");
            false
        }
        Err(_) => {
            tracing::warn!("readiness: the store did not answer within 1 s");
            false
        }
    }
}

/// What readiness says: `ready`, or why not (`draining`, `starting`, `workers_failing`,
/// `store_unavailable`).
fn pool_status(s: &claude_pool_actors::PoolSnapshot) -> &'static str {
    if s.draining {
        "draining"
    } else if s.serving {
        "ready"
    } else if s.spawn_troubles.is_empty() {
        "starting"
    } else {
        "workers_failing"
    }
}

/// `GET /v1/health`: a summary of the pool, the store and any profile whose workers fail to
/// start (with the reason).
pub(super) async fn health(State(AppState(app)): State<AppState>) -> Response {
    let s = app.pool.snapshot();
    let store_ok = store_reachable(&app).await;
    // A missing server credential, or one the upstream refused, is a problem for every key
    // without a credential of its own.
    let credential_problem = matches!(
        app.credentials.server,
        crate::credentials::ServerCredential::Missing { .. }
    ) || app.credentials.failures.with_server_credential() > 0;
    let status = match (pool_status(&s), store_ok) {
        ("ready", true) if s.spawn_troubles.is_empty() && !credential_problem => "ok",
        ("ready", true) => "degraded",
        ("ready", false) => "store_unavailable",
        (other, _) => other,
    };
    Json(json!({
        "status": status,
        "store": if store_ok { "ok" } else { "unavailable" },
        "credential": {
            "server": app.credentials.server,
            "upstream_auth_failures": app.credentials.failures.json(),
        },
        "pool": s,
    }))
    .into_response()
}

/// `GET /healthz`: liveness.
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 while the gateway can take traffic: the pool is serving (a worker is
/// warm, or workers start normally after the first one was) and the store answers. 503 while
/// starting up, draining, when no worker can start, or when the store is unreachable.
pub(super) async fn readyz(State(AppState(app)): State<AppState>) -> Response {
    let s = app.pool.snapshot();
    let draining = app.draining.load(std::sync::atomic::Ordering::Relaxed);
    let status = match pool_status(&s) {
        _ if draining => "draining",
        "ready" if !store_reachable(&app).await => "store_unavailable",
        other => other,
    };
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(json!({"status": status}))).into_response()
}

/// `GET /metrics`: Prometheus text exposition.
pub(super) async fn metrics(State(AppState(app)): State<AppState>) -> Response {
    let bridge = &app.tools.bridge;
    app.metrics.set_parked_turns(
        bridge.parked_turns(),
        bridge.set_aside_turns(),
        &bridge.releases(),
    );
    if let Some(keeper) = &app.conversations.keeper {
        app.metrics.observe_keeper(&keeper.stats);
    }
    let body = app.metrics.render(&app.pool.snapshot());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
