//! The console's JSON routes: sign-in and out, the token exchange, the key list and
//! revocation, and the pool dashboard's data.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Console;
use super::guard::{CSRF_HEADER, Operator, cookie};
use super::session::COOKIE;
use crate::api::key_api::{GenerateRequest, find_key, prepare_key};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::keys;

/// The prefix of Claude OAuth tokens (`claude setup-token`).
pub(super) const OAUTH_PREFIX: &str = "sk-ant-oat01-";

#[derive(Deserialize)]
pub(super) struct SignIn {
    password: String,
    #[serde(default)]
    csrf_token: Option<String>,
}

/// `POST /admin/login` (form field `password`): a session cookie, or 401 without one. Five
/// attempts a minute per address. A sign-in from a page (a browser sends `Origin`) must carry
/// the page's sign-in token.
pub(super) async fn login(
    State(c): State<Console>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<SignIn>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(|e| {
        ApiError::bad(
            "password",
            format!("send the password as a form field `password` ({e})"),
        )
    })?;
    c.sessions
        .attempt(peer.ip())
        .map_err(ApiError::SignInThrottled)?;
    let token = form
        .csrf_token
        .as_deref()
        .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
    let from_a_page = headers.contains_key(header::ORIGIN);
    match token {
        Some(t) if !c.sessions.check_sign_in_token(t) => {
            return Err(csrf_refused(
                "the sign-in page's token is wrong or expired: reload the page",
            ));
        }
        None if from_a_page => {
            return Err(csrf_refused(
                "a sign-in from a page must carry the page's csrf-token",
            ));
        }
        _ => {}
    }
    if !c.password.verify(form.password).await {
        tracing::warn!(peer = %peer.ip(), "admin console: wrong password");
        return Err(ApiError::WrongPassword);
    }
    let (id, csrf) = c.sessions.create();
    tracing::info!(peer = %peer.ip(), "admin console: signed in");
    let ttl = c.sessions.ttl().as_secs();
    let cookie = format!("{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={ttl}");
    let wants_page = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut resp = if wants_page {
        Redirect::to("/").into_response()
    } else {
        Json(json!({"signed_in": true, "csrf_token": csrf, "expires_in": ttl})).into_response()
    };
    let value = HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?;
    resp.headers_mut().insert(header::SET_COOKIE, value);
    Ok(resp)
}

fn csrf_refused(message: &str) -> ApiError {
    ApiError::Forbidden {
        code: "csrf_token_invalid",
        message: message.to_owned(),
    }
}

/// `POST /admin/logout`: ends the session and clears the cookie.
pub(super) async fn logout(_: Operator, State(c): State<Console>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, COOKIE) {
        c.sessions.end(id);
    }
    let clear = format!("{COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0");
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Body of `POST /auth/exchange`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Exchange {
    oauth_token: String,
    #[serde(default)]
    key_alias: Option<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    max_budget: Option<f64>,
    #[serde(default)]
    rpm_limit: Option<u64>,
}

/// `POST /auth/exchange`: a new API key whose turns run with the given Claude OAuth token
/// (sealed at rest, never shown again). The answer has `/key/generate`'s shape; the key is in
/// it once.
pub(super) async fn exchange(
    _: Operator,
    State(c): State<Console>,
    ApiJson(req): ApiJson<Exchange>,
) -> Result<Json<Value>, ApiError> {
    let token = req.oauth_token.trim();
    if !token.starts_with(OAUTH_PREFIX) || token.len() <= OAUTH_PREFIX.len() {
        return Err(ApiError::bad(
            "oauth_token",
            format!(
                "`oauth_token` must be a Claude OAuth token starting with `{OAUTH_PREFIX}` (made by `claude setup-token`)"
            ),
        ));
    }
    let blank = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let generate = GenerateRequest::for_credential(
        token.to_owned(),
        blank(req.key_alias),
        req.models.filter(|m| !m.is_empty()),
        blank(req.duration),
        req.max_budget,
        req.rpm_limit,
    );
    let app = &c.app;
    let known = |m: &str| app.resolve_model(m).is_ok();
    let (key, row) = prepare_key(
        generate,
        &known,
        &app.credentials.sealer,
        app.limits.clock.now(),
    )?;
    let record = app.store.insert_key(&row).await?;
    tracing::info!(
        key = %keys::label(&record.id),
        alias = ?record.alias,
        credential = %super::dashboard::credential_fingerprint(token),
        "key made by token exchange"
    );
    let mut body = record.public_json();
    body["key"] = Value::String(key);
    Ok(Json(body))
}

/// `DELETE /admin/keys/{key-or-token}`: revokes the key (refused from now on, here at once and
/// on other replicas within the key cache's lifetime). The path holds a secret: only the key's
/// label is logged.
pub(super) async fn revoke(
    _: Operator,
    State(c): State<Console>,
    Path(reference): Path<String>,
) -> Result<StatusCode, ApiError> {
    let app = &c.app;
    let record = find_key(app.store.as_ref(), &reference).await?;
    app.store
        .revoke_keys(std::slice::from_ref(&record.id))
        .await?;
    app.auth.invalidate(&record.id);
    tracing::info!(key = %keys::label(&record.id), "key revoked from the admin console");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /admin/api/keys?alias=`: every key with its spend, budget, expiry, credential
/// fingerprint and last use (newest first).
pub(super) async fn keys(
    _: Operator,
    State(c): State<Console>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let alias = q.get("alias").map(|a| a.trim().to_lowercase());
    let list = super::dashboard::keys(&c.app, alias.as_deref()).await?;
    Ok(Json(json!({ "keys": list })))
}

/// `GET /admin/api/pool`: the pool, worker by worker, with its recent events.
pub(super) async fn pool(_: Operator, State(c): State<Console>) -> Result<Json<Value>, ApiError> {
    Ok(Json(super::dashboard::pool(&c.app).await?))
}

/// Unknown console paths.
pub(super) async fn not_found() -> ApiError {
    ApiError::NotFound("no such page in the admin console".into())
}
