//! The API gate: every request to an API-key route is authenticated here and counted against
//! its key's rate limit. The caller's [`Identity`] goes into the request's extensions (read by
//! the [`crate::auth::Caller`] extractor), and every response of a limited key carries
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::http::AppState;
use crate::limits::Decision;

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    for (name, value) in [
        (LIMIT, u64::from(d.limit)),
        (REMAINING, u64::from(d.remaining)),
        (RESET, d.reset_secs),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}

/// Authenticates, rate-limits, and runs the route.
pub(super) async fn api_gate(
    State(AppState(app)): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let identity = match app.auth.authenticate(req.headers()).await {
        Ok(i) => i,
        Err(e) => return e.into_response(),
    };
    let decision = if identity.is_master {
        None
    } else {
        let rate = app
            .limits
            .rate_for(identity.key.as_ref().and_then(|k| k.rpm_limit));
        app.limits.check(&identity.key_id, rate)
    };
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
        set_headers(resp.headers_mut(), d);
    }
    resp
}
