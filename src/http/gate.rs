//! The API gate: every request to an API-key route is authenticated here and counted against
//! its key's rate limit. A key whose budget period is over has its spend reset first. The
//! caller's [`Identity`](crate::auth::Identity) goes into the request's extensions (read by
//! the [`crate::auth::Caller`] extractor), and every response of a limited key carries the
//! limit headers:
//!
//! | header | value |
//! |---|---|
//! | `X-RateLimit-Limit`, `X-RateLimit-Remaining` | requests per window, and left now |
//! | `X-RateLimit-Reset` | Unix time when the allowance is full again |
//! | `x-ratelimit-{limit,remaining}-requests` | as above (OpenAI's names) |
//! | `x-ratelimit-reset-requests` | time until then, OpenAI's form (`12s`, `1m30s`) |
//! | `x-ratelimit-{limit,remaining,reset}-tokens` | the same for `tpm_limit`, when the key has one |

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use tracing::Instrument;

use crate::auth::Identity;
use crate::error::ApiError;
use crate::limits::{Decision, TokenState};
use crate::state::{App, AppState};
use crate::store::now_secs;

fn put(headers: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// OpenAI's relative form: `1s`, `12s`, `1m30s`.
fn relative(d: Duration) -> String {
    let secs = crate::limits::ceil_secs(d);
    humantime::format_duration(Duration::from_secs(secs))
        .to_string()
        .replace(' ', "")
}

fn set_request_headers(headers: &mut HeaderMap, d: &Decision) {
    let reset = Duration::from_secs(d.reset_secs);
    put(headers, "x-ratelimit-limit", d.limit);
    put(headers, "x-ratelimit-remaining", d.remaining);
    put(
        headers,
        "x-ratelimit-reset",
        now_secs().saturating_add(d.reset_secs as i64),
    );
    put(headers, "x-ratelimit-limit-requests", d.limit);
    put(headers, "x-ratelimit-remaining-requests", d.remaining);
    put(headers, "x-ratelimit-reset-requests", relative(reset));
}

fn set_token_headers(headers: &mut HeaderMap, t: &TokenState) {
    put(headers, "x-ratelimit-limit-tokens", t.limit);
    put(headers, "x-ratelimit-remaining-tokens", t.remaining);
    put(headers, "x-ratelimit-reset-tokens", relative(t.reset));
}

/// Resets the budgets whose period is over (this key's among them) and forgets their cached
/// state, so the key is read again with its spend at 0.
async fn reset_due_budgets(app: &App, key_id: &str) -> Result<(), ApiError> {
    for id in app.store.reset_due_budgets(app.limits.clock.now()).await? {
        app.auth.invalidate(&id);
        tracing::info!(key = %crate::keys::label(&id), "budget period over: spend reset");
    }
    app.auth.invalidate(key_id);
    Ok(())
}

/// Counts one request of a key: in the store when replicas share it (one atomic statement),
/// else here. A store that fails falls back to this replica's own count (logged), so the
/// rate limit never turns a database hiccup into refused requests.
async fn check_rate(
    app: &App,
    key_id: &std::sync::Arc<str>,
    rate: Option<crate::limits::Rate>,
) -> Option<Decision> {
    let rate = rate?;
    if app.limits.shared_rates {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let (interval, tolerance) = rate.gcra_ms();
        match app
            .store
            .take_rate(key_id, now_ms, interval, tolerance)
            .await
        {
            Ok(take) => return Some(rate.shared_decision(now_ms, take)),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limit unavailable; counting on this replica")
            }
        }
    }
    app.limits.rates.check(key_id, Some(rate))
}

/// Authenticates the request (a key whose budget period is over has its spend reset first and
/// is read again) and counts it against its key's rate limit.
async fn authorize(
    app: &App,
    headers: &HeaderMap,
) -> Result<(Identity, Option<Decision>), ApiError> {
    let mut identity = app.auth.authenticate(headers).await?;
    crate::http::access::key(&identity.label);
    let due = identity.key.as_ref().and_then(|k| k.policy.budget_reset_at);
    if due.is_some_and(|at| at <= app.limits.clock.now()) {
        reset_due_budgets(app, &identity.key_id).await?;
        identity = app.auth.authenticate(headers).await?;
    }
    let decision = if identity.is_master {
        None
    } else {
        let rate = app
            .limits
            .rates
            .rate_for(identity.key.as_ref().and_then(|k| k.rpm_limit));
        check_rate(app, &identity.key_id, rate).await
    };
    Ok((identity, decision))
}

/// Authenticates, rate-limits, and runs the route. The check runs in the request's `gate`
/// span (exported with traces), which ends before the route runs.
pub(super) async fn api_gate(
    State(AppState(app)): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let span = crate::telemetry::span(|| tracing::info_span!("gate", otel.name = "gate"));
    let checked = authorize(&app, req.headers())
        .instrument(span.clone())
        .await;
    let (identity, decision) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            let resp = e.into_response();
            crate::telemetry::failed(&span, resp.status().as_str());
            return resp;
        }
    };
    crate::telemetry::attr(&span, "claude_pool.key", identity.label.to_string());
    if let Some(d) = &decision {
        crate::telemetry::attr(&span, "claude_pool.rate.remaining", d.remaining as i64);
        if d.retry_after.is_some() {
            crate::telemetry::failed(&span, "rate_limit_exceeded");
        }
    }
    drop(span);
    let tpm = identity.key.as_ref().and_then(|k| k.policy.tpm_limit);
    let key_id = identity.key_id.clone();
    let mut resp = match &decision {
        Some(Decision {
            retry_after: Some(retry_after),
            limit,
            window,
            ..
        }) => ApiError::RateLimited {
            limit: *limit,
            window: humantime::format_duration(*window).to_string(),
            retry_after: *retry_after,
        }
        .into_response(),
        _ => {
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
    };
    if let Some(d) = &decision {
        set_request_headers(resp.headers_mut(), d);
    }
    if let Some(limit) = tpm {
        set_token_headers(resp.headers_mut(), &app.limits.tokens.state(&key_id, limit));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_resets_are_in_openai_form() {
        assert_eq!(relative(Duration::from_millis(200)), "1s");
        assert_eq!(relative(Duration::from_secs(12)), "12s");
        assert_eq!(relative(Duration::from_secs(90)), "1m30s");
        assert_eq!(relative(Duration::ZERO), "0s");
    }
}
