//! The key admin API (master key only), with LiteLLM's route and field names:
//! `POST /key/generate`, `GET /key/info?key=`, `GET /key/list`, `POST /key/update`,
//! `POST /key/delete`, `GET /spend/keys`. A key is named by its plaintext (`sk-...`) or by its
//! `token` (the stored SHA-256). Plaintext keys are returned once, by `/key/generate`; Claude
//! credentials are never returned.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::auth::presented_key;
use crate::error::ApiError;
use crate::http::{ApiJson, AppState};
use crate::keys;
use crate::store::{KeyRecord, KeySource, KeyUpdate, NewKey, Sealer, Store, now_secs};

/// Extractor: the caller presented the master key (401 without a valid key, 403 with another).
pub(super) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = &state.0.auth;
        let Some(key) = presented_key(&parts.headers) else {
            return Err(ApiError::Unauthorized);
        };
        if auth.is_master_key(key) {
            return Ok(Admin);
        }
        let forbidden = |message: &str| ApiError::Forbidden {
            code: "admin_only",
            message: message.to_owned(),
        };
        if !auth.has_master() {
            return Err(forbidden(
                "the admin API is disabled: no master key is configured (auth.master_key)",
            ));
        }
        match auth.authenticate(&parts.headers).await {
            Ok(_) => Err(forbidden("this route needs the master key")),
            Err(_) => Err(ApiError::Unauthorized),
        }
    }
}

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Body of `POST /key/generate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    key_alias: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    max_budget: Option<f64>,
    #[serde(default)]
    rpm_limit: Option<u32>,
    #[serde(default)]
    metadata: Option<Value>,
    /// A Claude OAuth token for this key's turns (sealed at rest, never returned).
    #[serde(default)]
    claude_oauth_token: Option<String>,
}

/// Body of `POST /key/update`: absent fields are kept, `null` clears.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateRequest {
    key: String,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    key_alias: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    rpm_limit: Option<Option<u32>>,
    #[serde(default)]
    metadata: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    claude_oauth_token: Option<Option<String>>,
}

/// Body of `POST /key/delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteRequest {
    keys: Vec<String>,
}

/// The stored id of a key given as plaintext or as its token.
fn key_id(reference: &str) -> Result<String, ApiError> {
    let r = reference.trim();
    if r.starts_with("sk-") {
        Ok(keys::hash(r))
    } else if r.len() == 64 && r.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(r.to_ascii_lowercase())
    } else {
        Err(ApiError::bad(
            "key",
            "name the key by its value (`sk-...`) or by its token (64 hex characters)",
        ))
    }
}

/// The stored key named by `reference` (its value or its token): 400 if malformed, 404 if
/// unknown. Shared by the admin API and `claude-pool keys`.
pub async fn find_key(store: &dyn Store, reference: &str) -> Result<KeyRecord, ApiError> {
    let id = key_id(reference)?;
    store.key(&id).await?.ok_or_else(|| unknown_key(reference))
}

fn unknown_key(reference: &str) -> ApiError {
    let shown = if reference.starts_with("sk-") {
        keys::display(reference)
    } else {
        reference.to_owned()
    };
    ApiError::NotFound(format!("key `{shown}` not found"))
}

fn check_models(known: &dyn Fn(&str) -> bool, models: &[String]) -> Result<(), ApiError> {
    for m in models {
        if m.trim().is_empty() {
            return Err(ApiError::bad("models", "model names must not be empty"));
        }
        if !known(m) {
            return Err(ApiError::bad("models", format!("unknown model `{m}`")));
        }
    }
    Ok(())
}

fn check_alias(alias: &str) -> Result<(), ApiError> {
    if alias.trim().is_empty() || alias.chars().count() > 128 {
        return Err(ApiError::bad(
            "key_alias",
            "`key_alias` must be 1-128 characters",
        ));
    }
    Ok(())
}

fn check_budget(budget: f64) -> Result<(), ApiError> {
    if !budget.is_finite() || budget < 0.0 {
        return Err(ApiError::bad(
            "max_budget",
            "`max_budget` must be a non-negative number of USD",
        ));
    }
    Ok(())
}

fn check_rpm(rpm: u32) -> Result<(), ApiError> {
    if rpm == 0 {
        return Err(ApiError::bad(
            "rpm_limit",
            "`rpm_limit` must be at least 1 (omit it for the server default)",
        ));
    }
    Ok(())
}

fn check_metadata(m: &Value) -> Result<(), ApiError> {
    if !m.is_object() {
        return Err(ApiError::bad(
            "metadata",
            "`metadata` must be a JSON object",
        ));
    }
    Ok(())
}

fn expiry(duration: &str) -> Result<i64, ApiError> {
    let d = keys::parse_duration(duration).map_err(|e| ApiError::bad("duration", e))?;
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    Ok(now_secs().saturating_add(secs))
}

fn seal(sealer: &Sealer, token: &str) -> Result<Vec<u8>, ApiError> {
    let t = token.trim();
    if t.is_empty() || t.len() > 4096 || t.chars().any(char::is_whitespace) {
        return Err(ApiError::bad(
            "claude_oauth_token",
            "`claude_oauth_token` must be a single token of at most 4096 characters",
        ));
    }
    sealer
        .seal(t)
        .map_err(|e| ApiError::bad("claude_oauth_token", e.to_string()))
}

/// Validates a generate request and makes the key: its plaintext (shown once) and its row.
/// `known` tells whether a model name resolves. Shared by the API and `claude-pool keys create`.
pub fn prepare_key(
    req: GenerateRequest,
    known: &dyn Fn(&str) -> bool,
    sealer: &Sealer,
) -> Result<(String, NewKey), ApiError> {
    let models = req.models.unwrap_or_default();
    check_models(known, &models)?;
    if let Some(a) = &req.key_alias {
        check_alias(a)?;
    }
    if let Some(b) = req.max_budget {
        check_budget(b)?;
    }
    if let Some(r) = req.rpm_limit {
        check_rpm(r)?;
    }
    let metadata = req.metadata.unwrap_or_else(|| json!({}));
    check_metadata(&metadata)?;
    let expires_at = req.duration.as_deref().map(expiry).transpose()?;
    let sealed = req
        .claude_oauth_token
        .as_deref()
        .map(|t| seal(sealer, t))
        .transpose()?;
    let key = keys::generate();
    let row = NewKey {
        id: keys::hash(&key),
        key_prefix: keys::display(&key),
        alias: req.key_alias,
        models,
        metadata,
        max_budget: req.max_budget,
        rpm_limit: req.rpm_limit,
        expires_at,
        source: KeySource::Api,
        sealed_oauth_token: sealed,
    };
    Ok((key, row))
}

/// `POST /key/generate`.
pub(super) async fn generate(
    _: Admin,
    State(AppState(app)): State<AppState>,
    ApiJson(req): ApiJson<GenerateRequest>,
) -> Result<Json<Value>, ApiError> {
    let known = |m: &str| app.resolve_model(m).is_ok();
    let (key, row) = prepare_key(req, &known, &app.sealer)?;
    let record = app.store.insert_key(&row).await?;
    tracing::info!(key = %keys::label(&record.id), alias = ?record.alias, "key generated");
    let mut body = record.public_json();
    body["key"] = Value::String(key);
    Ok(Json(body))
}

/// `GET /key/info?key=`.
pub(super) async fn info(
    _: Admin,
    State(AppState(app)): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let reference = q
        .get("key")
        .ok_or_else(|| ApiError::bad("key", "the query parameter `key` is required"))?;
    let record = find_key(app.store.as_ref(), reference).await?;
    Ok(Json(
        json!({"key": record.id, "info": record.public_json()}),
    ))
}

/// `GET /key/list`.
pub(super) async fn list(
    _: Admin,
    State(AppState(app)): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let keys: Vec<Value> = app
        .store
        .list_keys()
        .await?
        .iter()
        .map(KeyRecord::public_json)
        .collect();
    Ok(Json(json!({"total_count": keys.len(), "keys": keys})))
}

/// `POST /key/update`.
pub(super) async fn update(
    _: Admin,
    State(AppState(app)): State<AppState>,
    ApiJson(req): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let id = key_id(&req.key)?;
    if let Some(m) = &req.models {
        check_models(&|name: &str| app.resolve_model(name).is_ok(), m)?;
    }
    if let Some(Some(a)) = &req.key_alias {
        check_alias(a)?;
    }
    if let Some(Some(b)) = req.max_budget {
        check_budget(b)?;
    }
    if let Some(Some(r)) = req.rpm_limit {
        check_rpm(r)?;
    }
    if let Some(m) = &req.metadata {
        check_metadata(m)?;
    }
    // Absent stays absent, `null` clears, a value is parsed or sealed.
    let expires_at = req
        .duration
        .as_ref()
        .map(|d| d.as_deref().map(expiry).transpose())
        .transpose()?;
    let sealed = req
        .claude_oauth_token
        .as_ref()
        .map(|t| t.as_deref().map(|t| seal(&app.sealer, t)).transpose())
        .transpose()?;
    let update = KeyUpdate {
        alias: req.key_alias,
        models: req.models,
        metadata: req.metadata,
        max_budget: req.max_budget,
        rpm_limit: req.rpm_limit,
        expires_at,
        sealed_oauth_token: sealed,
    };
    let record = app
        .store
        .update_key(&id, &update)
        .await?
        .ok_or_else(|| unknown_key(&req.key))?;
    app.auth.invalidate(&id);
    tracing::info!(key = %keys::label(&id), "key updated");
    Ok(Json(record.public_json()))
}

/// `POST /key/delete`: revokes the keys (their spend records are kept).
pub(super) async fn delete(
    _: Admin,
    State(AppState(app)): State<AppState>,
    ApiJson(req): ApiJson<DeleteRequest>,
) -> Result<Json<Value>, ApiError> {
    if req.keys.is_empty() {
        return Err(ApiError::bad("keys", "`keys` must name at least one key"));
    }
    let mut ids = Vec::with_capacity(req.keys.len());
    for reference in &req.keys {
        ids.push(find_key(app.store.as_ref(), reference).await?.id);
    }
    app.store.revoke_keys(&ids).await?;
    for id in &ids {
        app.auth.invalidate(id);
        tracing::info!(key = %keys::label(id), "key revoked");
    }
    Ok(Json(json!({"deleted_keys": req.keys})))
}

/// `GET /spend/keys`: spend per key, highest first.
pub(super) async fn spend_keys(
    _: Admin,
    State(AppState(app)): State<AppState>,
) -> Result<Json<Vec<crate::store::KeySpend>>, ApiError> {
    Ok(Json(app.store.spend_by_key().await?))
}
