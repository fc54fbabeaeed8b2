//! The key routes: generate, show and list, update, delete, regenerate, block and unblock.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::query::{page, total_pages};
use super::requests::{
    DeleteRequest, GenerateRequest, KeyRef, UpdateRequest, budget_period, check_alias,
    check_budget, check_metadata, check_models, check_tags, expiry, positive, prepare_key, seal,
};
use super::{Admin, find_key, key_id, unknown_key};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::keys;
use crate::state::{App, AppState};
use crate::store::{KeyFilter, KeyRecord, KeyUpdate};

/// `POST /key/generate`.
pub(crate) async fn generate(
    _: Admin,
    State(AppState(app)): State<AppState>,
    ApiJson(req): ApiJson<GenerateRequest>,
) -> Result<Json<Value>, ApiError> {
    let known = |m: &str| app.resolve_model(m).is_ok();
    let (key, row) = prepare_key(req, &known, &app.credentials.sealer, app.limits.clock.now())?;
    let record = app.store.insert_key(&row).await?;
    tracing::info!(key = %keys::label(&record.id), alias = ?record.alias, "key generated");
    let mut body = record.public_json();
    body["key"] = Value::String(key);
    Ok(Json(body))
}

/// Budgets whose period is over are reset before keys are shown.
async fn reset_due_budgets(app: &App) -> Result<(), ApiError> {
    for id in app.store.reset_due_budgets(app.limits.clock.now()).await? {
        app.auth.invalidate(&id);
        tracing::info!(key = %keys::label(&id), "budget period over: spend reset");
    }
    Ok(())
}

/// `GET /key/info?key=`: one key; without `key`, the list (as `/key/list`).
pub(crate) async fn info(
    admin: Admin,
    State(AppState(app)): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let Some(reference) = q.get("key") else {
        return list(admin, State(AppState(app)), Query(q)).await;
    };
    reset_due_budgets(&app).await?;
    let record = find_key(app.store.as_ref(), reference).await?;
    Ok(Json(
        json!({"key": record.id, "info": record.public_json()}),
    ))
}

/// `GET /key/list?key_alias=&page=&size=`: newest first, 100 per page by default.
pub(crate) async fn list(
    _: Admin,
    State(AppState(app)): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (page, size) = page(&q, "size", 100)?;
    reset_due_budgets(&app).await?;
    let filter = KeyFilter {
        alias: q.get("key_alias").cloned(),
        page,
        size,
    };
    let (records, total) = app.store.list_keys_page(&filter).await?;
    let keys: Vec<Value> = records.iter().map(KeyRecord::public_json).collect();
    Ok(Json(json!({
        "keys": keys,
        "total_count": total,
        "current_page": page,
        "total_pages": total_pages(total, size),
    })))
}

/// `POST /key/update`.
pub(crate) async fn update(
    _: Admin,
    State(AppState(app)): State<AppState>,
    ApiJson(req): ApiJson<UpdateRequest>,
) -> Result<Json<Value>, ApiError> {
    let id = key_id(&req.key)?;
    let now = app.limits.clock.now();
    if let Some(m) = &req.models {
        check_models(&|name: &str| app.resolve_model(name).is_ok(), m)?;
    }
    if let Some(Some(a)) = &req.key_alias {
        check_alias(a)?;
    }
    if let Some(Some(b)) = req.max_budget {
        check_budget(b)?;
    }
    if let Some(m) = &req.metadata {
        check_metadata(m)?;
    }
    if let Some(t) = &req.tags {
        check_tags("tags", t)?;
    }
    // Absent stays absent, `null` clears, a value is checked, parsed or sealed.
    let limit = |param: &str, v: Option<Option<u64>>| {
        v.map(|v| v.map(|n| positive::<u64>(param, n)).transpose())
            .transpose()
    };
    let rpm_limit = limit("rpm_limit", req.rpm_limit)?;
    let tpm_limit = limit("tpm_limit", req.tpm_limit)?;
    let parallel = limit("max_parallel_requests", req.max_parallel_requests)?;
    let expires_at = req
        .duration
        .as_ref()
        .map(|d| d.as_deref().map(|d| expiry(d, now)).transpose())
        .transpose()?;
    let budget_period = req
        .budget_duration
        .as_ref()
        .map(|d| d.as_deref().map(|d| budget_period(d, now)).transpose())
        .transpose()?;
    let sealed = req
        .claude_oauth_token
        .as_ref()
        .map(|t| {
            t.as_deref()
                .map(|t| seal(&app.credentials.sealer, t))
                .transpose()
        })
        .transpose()?;
    let narrow =
        |v: Option<Option<u64>>| v.map(|v| v.map(|n| u32::try_from(n).unwrap_or(u32::MAX)));
    let update = KeyUpdate {
        alias: req.key_alias,
        models: req.models,
        metadata: req.metadata,
        max_budget: req.max_budget,
        rpm_limit: narrow(rpm_limit),
        expires_at,
        sealed_oauth_token: sealed,
        tags: req.tags,
        tpm_limit,
        max_parallel_requests: narrow(parallel),
        budget_period,
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

/// `POST` or `DELETE /key/delete`: revokes the keys named by value, token or alias (their
/// spend records are kept). Nothing is revoked unless every name is found.
pub(crate) async fn delete(
    _: Admin,
    State(AppState(app)): State<AppState>,
    ApiJson(req): ApiJson<DeleteRequest>,
) -> Result<Json<Value>, ApiError> {
    if req.keys.is_empty() && req.key_aliases.is_empty() {
        return Err(ApiError::bad(
            "keys",
            "name the keys to delete in `keys` (values or tokens) or `key_aliases`",
        ));
    }
    let mut ids = Vec::new();
    for reference in &req.keys {
        ids.push(find_key(app.store.as_ref(), reference).await?.id);
    }
    for alias in &req.key_aliases {
        let filter = KeyFilter {
            alias: Some(alias.clone()),
            page: 1,
            size: u32::MAX / 2,
        };
        let (found, _) = app.store.list_keys_page(&filter).await?;
        if found.is_empty() {
            return Err(ApiError::NotFound(format!(
                "no key has the alias `{alias}`"
            )));
        }
        ids.extend(found.into_iter().map(|k| k.id));
    }
    app.store.revoke_keys(&ids).await?;
    for id in &ids {
        app.auth.invalidate(id);
        tracing::info!(key = %keys::label(id), "key revoked");
    }
    let mut deleted = req.keys;
    deleted.extend(req.key_aliases);
    Ok(Json(json!({"deleted_keys": deleted})))
}

/// `POST /key/regenerate` with `{"key": ...}`: a new secret with the same settings and
/// spend; the old one is revoked at once.
pub(crate) async fn regenerate(
    admin: Admin,
    state: State<AppState>,
    ApiJson(req): ApiJson<KeyRef>,
) -> Result<Json<Value>, ApiError> {
    regenerate_key(admin, state, &req.key).await
}

/// `POST /key/{key}/regenerate` (LiteLLM's form). The path holds a secret: it is never
/// logged (metrics use the route's template).
pub(crate) async fn regenerate_path(
    admin: Admin,
    state: State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    regenerate_key(admin, state, &key).await
}

async fn regenerate_key(
    _: Admin,
    State(AppState(app)): State<AppState>,
    reference: &str,
) -> Result<Json<Value>, ApiError> {
    let old = find_key(app.store.as_ref(), reference).await?;
    let key = keys::generate();
    let record = app
        .store
        .regenerate_key(
            &old.id,
            &keys::hash(&key),
            &keys::display(&key),
            app.limits.clock.now(),
        )
        .await?
        .ok_or_else(|| ApiError::bad("key", "a revoked key cannot be regenerated"))?;
    app.auth.invalidate(&old.id);
    tracing::info!(old = %keys::label(&old.id), new = %keys::label(&record.id), "key regenerated");
    let mut body = record.public_json();
    body["key"] = Value::String(key);
    body["previous_token"] = Value::String(old.id);
    Ok(Json(body))
}

/// `POST /key/block`: the key is refused until unblocked.
pub(crate) async fn block(
    admin: Admin,
    state: State<AppState>,
    ApiJson(req): ApiJson<KeyRef>,
) -> Result<Json<Value>, ApiError> {
    set_blocked(admin, state, &req.key, true).await
}

/// `POST /key/unblock`.
pub(crate) async fn unblock(
    admin: Admin,
    state: State<AppState>,
    ApiJson(req): ApiJson<KeyRef>,
) -> Result<Json<Value>, ApiError> {
    set_blocked(admin, state, &req.key, false).await
}

async fn set_blocked(
    _: Admin,
    State(AppState(app)): State<AppState>,
    reference: &str,
    blocked: bool,
) -> Result<Json<Value>, ApiError> {
    let id = key_id(reference)?;
    let record = app
        .store
        .set_blocked(&id, blocked, app.limits.clock.now())
        .await?
        .ok_or_else(|| unknown_key(reference))?;
    app.auth.invalidate(&id);
    tracing::info!(key = %keys::label(&id), blocked, "key blocked state changed");
    Ok(Json(record.public_json()))
}
