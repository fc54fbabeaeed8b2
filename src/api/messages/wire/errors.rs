//! Anthropic's error envelope, made from the gateway's OpenAI one.
//!
//! ```json
//! {"type": "error", "error": {"type": "rate_limit_error", "message": "..."}, "request_id": "..."}
//! ```
//!
//! The gateway's failures are [`crate::error::ApiError`]s: a status, an OpenAI error type, a
//! code and a message ([`crate::error::ApiError::parts`]). [`translate`] maps them to the
//! API's error types (those its SDKs know: `invalid_request_error`, `authentication_error`,
//! `permission_error`, `not_found_error`, `request_too_large`, `rate_limit_error`,
//! `timeout_error`, `api_error`, `overloaded_error`). The message is kept; so is `Retry-After`
//! (the caller keeps the header of the OpenAI error). By code:
//!
//! | gateway code (status) | Anthropic status and type | why |
//! |---|---|---|
//! | none: bad request (400), `cost_limit_exceeded`, `upstream_rejected_request`, `tool_call_ended` and other tool-result refusals (400) | 400 `invalid_request_error` | |
//! | `context_length_exceeded` (400) | 400 `invalid_request_error`, message starting `prompt is too long` | the API's wording, which clients (Claude Code) read to compact the conversation |
//! | `budget_exceeded` (429) | 400 `invalid_request_error` | as the API answers an exhausted credit balance: retrying does not help, and SDKs retry a 429 |
//! | `invalid_api_key`, `sign_in_required`, `invalid_password` (401) | 401 `authentication_error` | |
//! | `model_not_allowed`, `admin_only`, `admin_requires_https`, `csrf_token_invalid` (403) | 403 `permission_error` | |
//! | `model_not_found`, `not_found` (404) | 404 `not_found_error` | |
//! | `method_not_allowed` (405), `conversation_not_resumable` (409), `conversation_lost` (410), `unsupported_media_type` (415) | same status, `invalid_request_error` | the API's type for other 4xx |
//! | `request_too_large` (413) | 413 `request_too_large` | |
//! | `rate_limit_exceeded`, `max_parallel_requests_exceeded`, `budget_reserved`, `parked_turns_exceeded`, `sign_in_throttled`, `upstream_rate_limited` (429) | 429 `rate_limit_error` | the key's own limits: retried after `Retry-After` |
//! | `queue_full` (429), `queue_timeout`, `server_shutting_down`, `upstream_unavailable` (503) | 529 `overloaded_error` | the pool (or the model API behind it) has no room now, for anyone: what the API says when it is overloaded |
//! | `internal_error` (500) | 500 `api_error` | |
//! | `worker_failed`, `interrupted`, `upstream_auth_failed`, `response_format_unmet` (502) | 502 `api_error` | the gateway's side failed; never `authentication_error`, the client's key was fine |
//! | `store_unavailable`, `worker_unavailable` (503) | 503 `api_error` | a failure, not an overload |
//! | `turn_timeout` (504) | 504 `timeout_error` | the SDKs' gateway timeout type |
//!
//! Any other code goes by its status: 401, 403, 404, 413, 429 and 529 as above, other 4xx
//! `invalid_request_error`, 5xx `api_error`.

use serde_json::{Value, json};

/// The gateway codes answered as the API answers an overload (529 `overloaded_error`).
const OVERLOADED: [&str; 4] = [
    "queue_full",
    "queue_timeout",
    "server_shutting_down",
    "upstream_unavailable",
];

/// An error as the Messages API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnthropicError {
    /// The HTTP status.
    pub status: u16,
    /// The error type (`error.type`).
    pub kind: &'static str,
    /// The message (`error.message`).
    pub message: String,
}

impl AnthropicError {
    /// The body: `{"type": "error", "error": {...}, "request_id": ...}` (`request_id` null
    /// without one).
    pub fn body(&self, request_id: Option<&str>) -> Value {
        envelope(self.kind, &self.message, request_id)
    }
}

/// The error envelope.
pub fn envelope(kind: &str, message: &str, request_id: Option<&str>) -> Value {
    json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": request_id,
    })
}

/// The Anthropic form of a gateway error: its status, its OpenAI `code` (if any) and its
/// message (see the table above).
pub fn translate(status: u16, code: Option<&str>, message: &str) -> AnthropicError {
    let (status, kind) = match code {
        Some(c) if OVERLOADED.contains(&c) => (529, "overloaded_error"),
        Some("budget_exceeded") => (400, "invalid_request_error"),
        Some("turn_timeout") => (504, "timeout_error"),
        _ => (status, by_status(status)),
    };
    let message = match code {
        Some("context_length_exceeded") if !message.starts_with("prompt is too long") => {
            format!("prompt is too long: {message}")
        }
        _ => message.to_owned(),
    };
    AnthropicError {
        status,
        kind,
        message,
    }
}

/// [`translate`] for an OpenAI error body (`{"error": {"message", "type", "code",
/// "param"}}`), as the gateway writes it; a body of another shape keeps only its status.
pub fn translate_body(status: u16, body: &Value) -> AnthropicError {
    let error = &body["error"];
    let message = error["message"].as_str().unwrap_or("error");
    translate(status, error["code"].as_str(), message)
}

fn by_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status and code the gateway answers with (see `ApiError::parts`), and what the
    /// Messages API answers instead.
    #[test]
    fn every_gateway_error_maps_as_the_table_says() {
        let table: &[(u16, Option<&str>, u16, &str)] = &[
            (400, None, 400, "invalid_request_error"),
            (
                400,
                Some("cost_limit_exceeded"),
                400,
                "invalid_request_error",
            ),
            (
                400,
                Some("upstream_rejected_request"),
                400,
                "invalid_request_error",
            ),
            (400, Some("tool_call_ended"), 400, "invalid_request_error"),
            (
                400,
                Some("context_length_exceeded"),
                400,
                "invalid_request_error",
            ),
            (429, Some("budget_exceeded"), 400, "invalid_request_error"),
            (401, Some("invalid_api_key"), 401, "authentication_error"),
            (401, Some("sign_in_required"), 401, "authentication_error"),
            (401, Some("invalid_password"), 401, "authentication_error"),
            (403, Some("model_not_allowed"), 403, "permission_error"),
            (403, Some("admin_only"), 403, "permission_error"),
            (403, Some("admin_requires_https"), 403, "permission_error"),
            (403, Some("csrf_token_invalid"), 403, "permission_error"),
            (404, Some("model_not_found"), 404, "not_found_error"),
            (404, Some("not_found"), 404, "not_found_error"),
            (
                405,
                Some("method_not_allowed"),
                405,
                "invalid_request_error",
            ),
            (
                409,
                Some("conversation_not_resumable"),
                409,
                "invalid_request_error",
            ),
            (410, Some("conversation_lost"), 410, "invalid_request_error"),
            (413, Some("request_too_large"), 413, "request_too_large"),
            (
                415,
                Some("unsupported_media_type"),
                415,
                "invalid_request_error",
            ),
            (429, Some("rate_limit_exceeded"), 429, "rate_limit_error"),
            (
                429,
                Some("max_parallel_requests_exceeded"),
                429,
                "rate_limit_error",
            ),
            (429, Some("budget_reserved"), 429, "rate_limit_error"),
            (429, Some("parked_turns_exceeded"), 429, "rate_limit_error"),
            (429, Some("sign_in_throttled"), 429, "rate_limit_error"),
            (429, Some("upstream_rate_limited"), 429, "rate_limit_error"),
            (429, Some("queue_full"), 529, "overloaded_error"),
            (503, Some("queue_timeout"), 529, "overloaded_error"),
            (503, Some("server_shutting_down"), 529, "overloaded_error"),
            (503, Some("upstream_unavailable"), 529, "overloaded_error"),
            (500, Some("internal_error"), 500, "api_error"),
            (502, Some("worker_failed"), 502, "api_error"),
            (502, Some("interrupted"), 502, "api_error"),
            (502, Some("upstream_auth_failed"), 502, "api_error"),
            (502, Some("response_format_unmet"), 502, "api_error"),
            (503, Some("store_unavailable"), 503, "api_error"),
            (503, Some("worker_unavailable"), 503, "api_error"),
            (504, Some("turn_timeout"), 504, "timeout_error"),
            (418, Some("something_new"), 418, "invalid_request_error"),
            (599, None, 599, "api_error"),
        ];
        for &(status, code, want_status, want_kind) in table {
            let e = translate(status, code, "what happened");
            assert_eq!((e.status, e.kind), (want_status, want_kind), "{code:?}");
        }
    }

    #[test]
    fn messages_are_kept_and_the_envelope_has_the_apis_shape() {
        let e = translate(429, Some("queue_full"), "the server is busy");
        assert_eq!(e.message, "the server is busy");
        assert_eq!(
            e.body(Some("req_1")),
            json!({"type": "error", "error": {"type": "overloaded_error",
                "message": "the server is busy"}, "request_id": "req_1"})
        );
        assert_eq!(e.body(None)["request_id"], Value::Null);
        let long = translate(
            400,
            Some("context_length_exceeded"),
            "the conversation is too long",
        );
        assert_eq!(
            long.message,
            "prompt is too long: the conversation is too long"
        );
        let body = json!({"error": {"message": "rate limit exceeded", "type": "rate_limit_error",
            "code": "rate_limit_exceeded", "param": null}});
        let e = translate_body(429, &body);
        assert_eq!(
            (e.status, e.kind, e.message.as_str()),
            (429, "rate_limit_error", "rate limit exceeded")
        );
        assert_eq!(translate_body(500, &json!("oops")).kind, "api_error");
    }
}
