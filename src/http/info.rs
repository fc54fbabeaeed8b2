//! Models, health, readiness and metrics.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::AppState;
use crate::openai::{Model, ModelList};

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

/// `GET /v1/models`: the aliases and the Claude model names (those the key may use).
pub(super) async fn list_models(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
) -> Json<ModelList> {
    let mut data: Vec<Model> = app
        .models
        .iter()
        .filter(|(alias, target)| caller.allows_model(alias, target))
        .map(|(a, _)| model(a, true))
        .collect();
    for name in ["opus", "sonnet", "haiku"] {
        if !app.models.contains_key(name) && caller.allows_model(name, name) {
            data.push(model(name, false));
        }
    }
    Json(ModelList {
        object: "list",
        data,
    })
}

/// `GET /v1/models/{id}`.
pub(super) async fn get_model(
    State(AppState(app)): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Model>, ApiError> {
    app.resolve_model(&id)?;
    Ok(Json(model(&id, app.models.contains_key(&id))))
}

/// `GET /v1/health`: a summary of the pool.
pub(super) async fn health(State(AppState(app)): State<AppState>) -> Response {
    let s = app.pool.snapshot();
    let status = if s.draining {
        "draining"
    } else if s.ready {
        "ok"
    } else {
        "starting"
    };
    Json(json!({
        "status": status,
        "pool": s,
    }))
    .into_response()
}

/// `GET /healthz`: liveness.
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 once `min_workers` are warm, 503 while starting or draining.
pub(super) async fn readyz(State(AppState(app)): State<AppState>) -> Response {
    let s = app.pool.snapshot();
    if s.ready && !s.draining {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        let status = if s.draining { "draining" } else { "starting" };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": status})),
        )
            .into_response()
    }
}

/// `GET /metrics`: Prometheus text exposition.
pub(super) async fn metrics(State(AppState(app)): State<AppState>) -> Response {
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
