//! The key admin API (master key only), with LiteLLM's routes, fields and status codes:
//! `POST /key/generate`, `GET /key/info` (one key with `key=`, else the list),
//! `GET /key/list`, `POST /key/update`, `POST`/`DELETE /key/delete`, `POST /key/regenerate`
//! (and `/key/{key}/regenerate`), `POST /key/block` and `/key/unblock`, and the spend reports
//! `GET /spend/keys`, `/spend/tags`, `/spend/logs`. A key is named by its plaintext (`sk-...`)
//! or by its `token` (the stored SHA-256). Plaintext keys are returned once, by
//! `/key/generate` and `/key/regenerate`; Claude credentials are never returned.

mod keys;
mod query;
mod requests;
mod spend;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub(crate) use keys::{
    block, delete, generate, info, list, regenerate, regenerate_path, unblock, update,
};
pub use requests::{GenerateRequest, check_tags, prepare_key};
pub(crate) use spend::{spend_keys, spend_logs, spend_tags};

use crate::auth::presented_key;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{KeyRecord, Store};

/// Extractor: the caller presented the master key (401 without a valid key, 403 with another).
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = &state.0.auth;
        let Some(key) = presented_key(&parts.headers) else {
            return Err(ApiError::Unauthorized);
        };
        if auth.is_master_key(key) {
            crate::http::access::key("master");
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

/// The stored id of a key given as plaintext or as its token.
pub fn key_id(reference: &str) -> Result<String, ApiError> {
    let r = reference.trim();
    if r.starts_with("sk-") {
        Ok(crate::keys::hash(r))
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

/// 404 naming the key without its secret.
pub(super) fn unknown_key(reference: &str) -> ApiError {
    let shown = if reference.starts_with("sk-") {
        crate::keys::display(reference)
    } else {
        reference.to_owned()
    };
    ApiError::NotFound(format!("key `{shown}` not found"))
}
