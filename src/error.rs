//! [`ApiError`]: every failure of the HTTP API, rendered as the OpenAI error envelope with the
//! right status. Internal causes are logged here and never sent to the client.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{SubmitError, TurnError};

use crate::openai::{ErrorBody, ErrorEnvelope};

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or asks for something unsupported.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The offending parameter.
        param: Option<String>,
    },
    /// 401: no or wrong API key.
    #[error("invalid API key")]
    Unauthorized,
    /// 401: a known key that can no longer be used (revoked, expired, blocked).
    #[error("{0}")]
    KeyRejected(String),
    /// 403: the key may not do this (`code` says what: `model_not_allowed`, `admin_only`).
    #[error("{message}")]
    Forbidden {
        /// Machine-readable reason.
        code: &'static str,
        /// What is not allowed.
        message: String,
    },
    /// 429: the key's request rate is over its limit.
    #[error("rate limit exceeded: {limit} requests per {window}; retry after {}s", retry_secs(*retry_after))]
    RateLimited {
        /// The limit.
        limit: u32,
        /// Its window, human-readable.
        window: String,
        /// When a request will be accepted again.
        retry_after: Duration,
    },
    /// 429: the key's tokens per minute are used up.
    #[error("tokens per minute limit exceeded: this key may use {limit} tokens per minute; retry after {}s", retry_secs(*retry_after))]
    TokensLimited {
        /// The limit.
        limit: u64,
        /// When the window ends.
        retry_after: Duration,
    },
    /// 429: the key already runs its `max_parallel_requests`.
    #[error(
        "Max parallel request limit reached: this key may run {max} requests at once and runs {running}"
    )]
    TooManyParallel {
        /// The limit.
        max: u32,
        /// Running now.
        running: u32,
    },
    /// 429: the key has spent its budget (LiteLLM's wording, which scripts look for).
    #[error("Budget has been exceeded! Current cost: {spend}, Max budget: {budget}")]
    BudgetExceeded {
        /// Spend so far (USD).
        spend: f64,
        /// The budget (USD).
        budget: f64,
        /// Until the budget period resets, if the key has one.
        resets_in: Option<Duration>,
    },
    /// 429: what is left of the budget is held by the key's running turns.
    #[error(
        "the rest of this key's budget is held by its {turns} running requests (spend {spend:.4} + held {held:.4} of {budget:.4} USD); retry when they finish"
    )]
    BudgetHeld {
        /// Spend so far (USD).
        spend: f64,
        /// Held by running turns (USD).
        held: f64,
        /// Running turns.
        turns: u32,
        /// The budget (USD).
        budget: f64,
    },
    /// 500: the store failed; the cause is logged only.
    #[error("store error")]
    Store(#[from] crate::store::StoreError),
    /// 404: unknown model.
    #[error("the model `{0}` does not exist")]
    ModelNotFound(String),
    /// 404: unknown route or resource.
    #[error("{0}")]
    NotFound(String),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 413.
    #[error("request body too large (see server.max_body_bytes)")]
    PayloadTooLarge,
    /// 415.
    #[error("expected a JSON body with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// 429: the pool's queue is full.
    #[error("the server is busy: all workers are occupied and the queue is full")]
    QueueFull(Duration),
    /// 503: the pool is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A turn failed after it was accepted.
    #[error(transparent)]
    Turn(#[from] TurnError),
    /// 500: a bug or an unexpected condition; the cause is logged only.
    #[error("internal error")]
    Internal(String),
    /// 401: the admin console needs a signed-in operator (or the master key).
    #[error("sign in to the admin console first (or send the master key as a bearer token)")]
    SignInRequired,
    /// 401: the admin password given at sign-in is wrong.
    #[error("wrong admin password")]
    WrongPassword,
    /// 502: the model's answer does not satisfy the request's `response_format`.
    #[error("{0}")]
    OutputRejected(String),
    /// 429: too many sign-in attempts from one address.
    #[error("too many sign-in attempts from this address; retry after {}s", retry_secs(*.0))]
    SignInThrottled(Duration),
    /// 409: the conversation cannot be continued here (its transcript was too large to keep).
    #[error("{0}")]
    ConversationNotResumable(String),
    /// 429: the key holds as many workers with turns parked for tool results as it may.
    #[error(
        "this key already holds {limit} workers with turns waiting for tool results (limits.max_parked_turns_per_key = {limit}): send their results first, or retry after {}s", retry_secs(*retry_after)
    )]
    ParkedTurnsExceeded {
        /// The limit.
        limit: usize,
        /// When its oldest parked turn may give its worker up.
        retry_after: Duration,
    },
    /// 400: tool results the turn that asked for them can no longer take (`code` says why).
    #[error("{message}")]
    ToolResultsRefused {
        /// Machine-readable reason.
        code: &'static str,
        /// Which call and why.
        message: String,
    },
}

/// True when the upstream refused the credential the turn ran with (the CLI says "not logged
/// in", or the model API answered 401/403).
pub fn is_upstream_auth_failure(e: &TurnError) -> bool {
    matches!(e, TurnError::Upstream { message, status }
        if message.contains("Not logged in") || matches!(status, Some(401 | 403)))
}

/// The error `code` of an error response, in its extensions for the access log.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// `Retry-After` of a key over a budget that has no period: an admin must raise it, so
/// clients are told not to retry soon.
const BUDGET_RETRY_AFTER: u64 = 3600;

/// `Retry-After` of a rate-limited request: rounded up, at least 1 s.
fn retry_secs(d: Duration) -> u64 {
    crate::limits::ceil_secs(d).max(1)
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::QueueFull { retry_after } => ApiError::QueueFull(retry_after),
            SubmitError::ShuttingDown => ApiError::ShuttingDown,
        }
    }
}

impl ApiError {
    /// A 400 about one parameter.
    pub fn bad(param: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            param: Some(param.to_owned()),
        }
    }

    /// Status, OpenAI error type, code, and the message safe to show.
    pub fn parts(&self) -> (StatusCode, &'static str, Option<&'static str>, String) {
        use ApiError::*;
        match self {
            BadRequest { message, .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                message.clone(),
            ),
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                Some("invalid_api_key"),
                "Incorrect or missing API key. Send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.".into(),
            ),
            KeyRejected(_) => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                Some("invalid_api_key"),
                self.to_string(),
            ),
            Forbidden { code, .. } => (
                StatusCode::FORBIDDEN,
                "permission_error",
                Some(code),
                self.to_string(),
            ),
            RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                self.to_string(),
            ),
            TokensLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                self.to_string(),
            ),
            TooManyParallel { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("max_parallel_requests_exceeded"),
                self.to_string(),
            ),
            BudgetExceeded { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                Some("budget_exceeded"),
                self.to_string(),
            ),
            BudgetHeld { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("budget_reserved"),
                self.to_string(),
            ),
            Store(e) if e.is_unavailable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("store_unavailable"),
                "the database is unavailable; retry later".into(),
            ),
            Store(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                Some("internal_error"),
                "internal server error".into(),
            ),
            ModelNotFound(_) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
                self.to_string(),
            ),
            NotFound(_) => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                Some("not_found"),
                self.to_string(),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                Some("method_not_allowed"),
                self.to_string(),
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                Some("request_too_large"),
                self.to_string(),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                Some("unsupported_media_type"),
                self.to_string(),
            ),
            QueueFull(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("queue_full"),
                self.to_string(),
            ),
            ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("server_shutting_down"),
                self.to_string(),
            ),
            Turn(t) => turn_parts(t),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                Some("internal_error"),
                "internal server error".into(),
            ),
            OutputRejected(_) => (
                StatusCode::BAD_GATEWAY,
                "server_error",
                Some("response_format_unmet"),
                self.to_string(),
            ),
            ConversationNotResumable(_) => (
                StatusCode::CONFLICT,
                "invalid_request_error",
                Some("conversation_not_resumable"),
                self.to_string(),
            ),
            SignInRequired => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                Some("sign_in_required"),
                self.to_string(),
            ),
            WrongPassword => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                Some("invalid_password"),
                self.to_string(),
            ),
            SignInThrottled(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("sign_in_throttled"),
                self.to_string(),
            ),
            ParkedTurnsExceeded { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("parked_turns_exceeded"),
                self.to_string(),
            ),
            ToolResultsRefused { code, .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                Some(code),
                self.to_string(),
            ),
        }
    }

    /// The envelope (also used for mid-stream error events).
    pub fn envelope(&self) -> ErrorEnvelope {
        let (_, kind, code, message) = self.parts();
        let param = match self {
            ApiError::BadRequest { param, .. } => param.clone(),
            ApiError::ToolResultsRefused { .. } => Some("messages".into()),
            ApiError::ModelNotFound(_) => Some("model".into()),
            _ => None,
        };
        ErrorEnvelope {
            error: ErrorBody {
                message,
                kind,
                param,
                code,
            },
        }
    }
}

fn turn_parts(t: &TurnError) -> (StatusCode, &'static str, Option<&'static str>, String) {
    match t {
        TurnError::QueueTimeout => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("queue_timeout"),
            "no worker became available in time; retry later".into(),
        ),
        TurnError::IdleTimeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            Some("turn_timeout"),
            "the model produced no output in time".into(),
        ),
        TurnError::WorkerFailed(_) => (
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("worker_failed"),
            "the Claude worker failed while answering; the conversation can be continued".into(),
        ),
        TurnError::SpawnFailed(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("worker_unavailable"),
            "no Claude worker could be started".into(),
        ),
        TurnError::ConversationLost(_) => (
            StatusCode::GONE,
            "invalid_request_error",
            Some("conversation_lost"),
            "the conversation's saved state could not be restored; send the whole history (or continue the session: its next turn starts a new conversation)".into(),
        ),
        TurnError::Interrupted => (
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("interrupted"),
            "the turn was interrupted".into(),
        ),
        TurnError::CostLimitExceeded { .. } => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("cost_limit_exceeded"),
            format!("{t}: the turn was stopped (see limits.max_cost_per_request)"),
        ),
        TurnError::ShuttingDown => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            Some("server_shutting_down"),
            "the server is shutting down".into(),
        ),
        TurnError::Upstream { message, .. } if message.contains("Prompt is too long") => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("context_length_exceeded"),
            "the conversation is too long for the model's context window: shorten the messages or start a new conversation".into(),
        ),
        TurnError::Upstream { message, .. } if message.contains("Not logged in") => (
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("upstream_auth_failed"),
            "the server has no usable Claude credential (the CLI says \"not logged in\"): set CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_API_KEY (your API key was fine)".into(),
        ),
        TurnError::Upstream {
            status: Some(400 | 413),
            ..
        } => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("upstream_rejected_request"),
            "the model API rejected the request as invalid".into(),
        ),
        TurnError::Upstream { status, .. } => match status {
            Some(429) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                Some("upstream_rate_limited"),
                "the upstream model API is rate limiting; retry later".into(),
            ),
            Some(401 | 403) => (
                StatusCode::BAD_GATEWAY,
                "server_error",
                Some("upstream_auth_failed"),
                "upstream credential rejected: the server's Claude credential is not valid (your API key was fine)".into(),
            ),
            _ => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("upstream_unavailable"),
                "the upstream model API failed or is overloaded; retry later".into(),
            ),
        },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, code, _) = self.parts();
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Store(cause) if cause.is_unavailable() => {
                tracing::warn!(%cause, "request failed: the database is unavailable")
            }
            ApiError::Store(cause) => tracing::error!(%cause, "store error"),
            ApiError::Turn(t) => tracing::warn!(error = %t, "turn failed"),
            _ => tracing::debug!(error = %self, status = status.as_u16(), "request rejected"),
        }
        let mut resp = (status, Json(self.envelope())).into_response();
        resp.extensions_mut()
            .insert(ErrorCode(code.unwrap_or(kind)));
        let retry = match &self {
            ApiError::QueueFull(d) => Some(d.as_secs().max(1)),
            ApiError::Store(e) if e.is_unavailable() => {
                Some(crate::store::COOL_DOWN.as_secs().max(1))
            }
            ApiError::RateLimited { retry_after, .. }
            | ApiError::TokensLimited { retry_after, .. }
            | ApiError::SignInThrottled(retry_after)
            | ApiError::ParkedTurnsExceeded { retry_after, .. } => Some(retry_secs(*retry_after)),
            ApiError::BudgetExceeded { resets_in, .. } => {
                Some(resets_in.map_or(BUDGET_RETRY_AFTER, retry_secs))
            }
            // Every other 429 (upstream rate limit, parallel limit, held budget): soon.
            _ if status == StatusCode::TOO_MANY_REQUESTS => Some(1),
            _ => None,
        };
        if let Some(secs) = retry {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}
