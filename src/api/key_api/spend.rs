//! The spend reports: per key, per tag, and the per-request log.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::query::{date, page};
use super::{Admin, key_id};
use crate::error::ApiError;
use crate::keys::rfc3339;
use crate::state::AppState;
use crate::store::{KeySpend, SpendFilter, SpendRecord, TagSpend};

/// `GET /spend/keys`: spend per key, highest first.
pub(crate) async fn spend_keys(
    _: Admin,
    State(AppState(app)): State<AppState>,
) -> Result<Json<Vec<KeySpend>>, ApiError> {
    Ok(Json(app.store.spend_by_key().await?))
}

/// `GET /spend/tags?start_date=&end_date=`: spend, requests and tokens per tag.
pub(crate) async fn spend_tags(
    _: Admin,
    State(AppState(app)): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Vec<TagSpend>>, ApiError> {
    let since = date(&q, "start_date", false)?;
    let until = date(&q, "end_date", true)?;
    Ok(Json(app.store.spend_by_tag(since, until).await?))
}

/// One record as LiteLLM's spend log shows it.
fn log_entry(r: &SpendRecord) -> Value {
    let start = r
        .created_at
        .saturating_sub(i64::try_from(r.duration_ms / 1000).unwrap_or_default());
    json!({
        "request_id": r.request_id,
        "x_request_id": r.x_request_id,
        "api_key": r.key_id,
        "model": r.model,
        "spend": r.cost_usd,
        "prompt_tokens": r.input_tokens,
        "completion_tokens": r.output_tokens,
        "total_tokens": r.input_tokens.saturating_add(r.output_tokens),
        "startTime": rfc3339(start),
        "endTime": rfc3339(r.created_at),
        "duration_ms": r.duration_ms,
        "status": r.status,
        "session_id": r.session_id,
        "request_tags": r.tags,
    })
}

/// `GET /spend/logs?api_key=&start_date=&end_date=&page=&page_size=`: per-request records,
/// newest first, 100 per page by default; the matching total in `X-Total-Count`.
pub(crate) async fn spend_logs(
    _: Admin,
    State(AppState(app)): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (page, size) = page(&q, "page_size", 100)?;
    let filter = SpendFilter {
        key_id: q
            .get("api_key")
            .map(|k| {
                key_id(k).map_err(|_| {
                    ApiError::bad(
                        "api_key",
                        "`api_key` must be a key (`sk-...`) or its token (64 hex characters)",
                    )
                })
            })
            .transpose()?,
        since: date(&q, "start_date", false)?,
        until: date(&q, "end_date", true)?,
        page,
        size,
    };
    let (records, total) = app.store.spend_log(&filter).await?;
    let entries: Vec<Value> = records.iter().map(log_entry).collect();
    let mut resp = Json(entries).into_response();
    resp.headers_mut().insert(
        HeaderName::from_static("x-total-count"),
        HeaderValue::from(total),
    );
    Ok(resp)
}
