//! Every error case of the API, in-process (`tower::ServiceExt::oneshot`): status and the
//! OpenAI envelope.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(
    server: &TestServer,
    req: Request<Body>,
) -> (StatusCode, Value, axum::http::HeaderMap) {
    let resp = claude_pool::http::router(server.app.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v, headers)
}

fn chat(body: &str) -> Request<Body> {
    Request::post("/v1/chat/completions")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn assert_envelope(v: &Value, status: StatusCode, code_or_type: &str) {
    let e = &v["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{status}: {v}"
    );
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
    assert!(
        e["code"] == code_or_type || e["type"] == code_or_type,
        "expected {code_or_type} in {v}"
    );
}

#[tokio::test]
async fn bad_requests_get_openai_errors_with_the_right_status() {
    let s = TestServer::start(1, 1, |c| c.server.max_body_bytes = 4096).await;
    let user = r#"{"role":"user","content":"hi"}"#;
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            chat("{not json"),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            Request::post("/v1/chat/completions")
                .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("{}"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            chat(r#"{"model":"sonnet"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            chat(r#"{"model":"sonnet","messages":[]}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            chat(r#"{"model":"sonnet","messages":"hi"}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            chat(r#"{"model":7,"messages":[]}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            chat(r#"{"model":"sonnet","messages":[{"role":"wizard","content":"x"}]}"#),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            chat(&format!(
                r#"{{"model":"sonnet","messages":[{user},{{"role":"assistant","content":"a"}}]}}"#
            )),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            chat(
                r#"{"model":"sonnet","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}"#,
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            chat(&format!(
                r#"{{"model":"sonnet","n":2,"messages":[{user}]}}"#
            )),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            chat(&format!(
                r#"{{"model":"sonnet","tools":[{{"type":"function"}}],"messages":[{user}]}}"#
            )),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
        (
            chat(&format!(
                r#"{{"model":"sonnet","messages":[{{"role":"user","content":"{}"}}]}}"#,
                "x".repeat(8000)
            )),
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
        ),
        (
            chat(&format!(r#"{{"model":"gpt-17","messages":[{user}]}}"#)),
            StatusCode::NOT_FOUND,
            "model_not_found",
        ),
        (
            Request::get("/v1/does-not-exist")
                .body(Body::empty())
                .unwrap(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Request::get("/v1/chat/completions")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::post("/v1/chat/completions")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(
                    r#"{{"model":"sonnet","messages":[{user}]}}"#
                )))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            Request::post("/v1/chat/completions")
                .header(header::AUTHORIZATION, "Bearer sk-wrong-key")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(
                    r#"{{"model":"sonnet","messages":[{user}]}}"#
                )))
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            Request::post("/v1/chat/completions")
                .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
                .header(header::CONTENT_TYPE, "application/json")
                .header("x-session-id", "bad id with spaces")
                .body(Body::from(format!(
                    r#"{{"model":"sonnet","messages":[{user}]}}"#
                )))
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
        ),
    ];
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let (got, v, _) = call(&s, req).await;
        assert_eq!(got, status, "case {i}: {v}");
        assert_envelope(&v, status, code);
    }
    assert_eq!(
        s.pool.snapshot().turns_started,
        0,
        "no bad request reached a worker"
    );
    s.stop().await;
}

#[tokio::test]
async fn keys_work_as_bearer_or_x_api_key_and_models_are_listed() {
    let s = TestServer::start(1, 1, |_| {}).await;
    let (st, v, _) = call(
        &s,
        Request::get("/v1/models")
            .header("x-api-key", KEY)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for id in [
        "gpt-4",
        "gpt-4-turbo",
        "gpt-3.5-turbo",
        "opus",
        "sonnet",
        "haiku",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let (st, v, _) = call(
        &s,
        Request::get("/v1/models/gpt-4")
            .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!((st, v["id"].as_str()), (StatusCode::OK, Some("gpt-4")));
    let (st, v, _) = call(
        &s,
        Request::get("/v1/models/nope")
            .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_envelope(&v, st, "model_not_found");
    // Invented Claude-looking names (even 10 KB long) are refused before any worker starts:
    // no cold workers, no evicted conversations.
    let started = s.pool.snapshot().turns_started;
    let long = format!("claude-{}", "x".repeat(10_000));
    for name in ["claude-made-up-1", "claude-opus-99", long.as_str()] {
        let (st, v, _) = call(
            &s,
            Request::post("/v1/chat/completions")
                .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"model": name, "messages": [{"role": "user", "content": "x"}]})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{}", &name[..20.min(name.len())]);
        assert_envelope(&v, st, "model_not_found");
        assert!(
            v["error"]["message"].as_str().unwrap().len() < 200,
            "the name is not echoed whole"
        );
    }
    let snap = s.pool.snapshot();
    assert_eq!(snap.turns_started, started);
    assert!(snap.workers_idle + snap.workers_busy + snap.workers_starting <= 1);
    // Full Claude ids of the catalogue are accepted.
    let (st, _, _) = call(
        &s,
        Request::get("/v1/models/claude-3-5-haiku-20241022")
            .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    // Health endpoints need no key.
    for path in ["/healthz", "/readyz", "/v1/health", "/metrics"] {
        let resp = claude_pool::http::router(s.app.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    s.stop().await;
}

#[tokio::test]
async fn full_queue_is_429_with_retry_after_and_draining_is_503() {
    let s = TestServer::start(1, 1, |c| c.pool.queue_capacity = 1).await;
    // Occupy the only worker, then fill the queue.
    let hang = tokio::spawn({
        let req = s.post("/v1/chat/completions").json(&json!({
            "model": "sonnet", "messages": [{"role": "user", "content": "[[hang]]"}]}));
        async move { req.send().await }
    });
    poll("worker busy", std::time::Duration::from_secs(30), || {
        s.pool.snapshot().workers_busy == 1
    })
    .await;
    let queued = tokio::spawn({
        let req = s.post("/v1/chat/completions").json(&json!({
            "model": "sonnet", "messages": [{"role": "user", "content": "waiting"}]}));
        async move { req.send().await }
    });
    poll("one queued", std::time::Duration::from_secs(30), || {
        s.pool.snapshot().queue_depth == 1
    })
    .await;
    let (st, v, headers) = call(
        &s,
        chat(r#"{"model":"sonnet","messages":[{"role":"user","content":"x"}]}"#),
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_envelope(&v, st, "queue_full");
    assert!(headers.get(header::RETRY_AFTER).is_some());
    hang.abort();
    queued.abort();
    // Draining: new turns are refused with 503.
    let pool = s.pool.clone();
    let drain = tokio::spawn(async move { pool.shutdown(std::time::Duration::from_secs(5)).await });
    poll("draining", std::time::Duration::from_secs(30), || {
        s.pool.snapshot().draining
    })
    .await;
    let (st, v, _) = call(
        &s,
        chat(r#"{"model":"sonnet","messages":[{"role":"user","content":"x"}]}"#),
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_envelope(&v, st, "server_shutting_down");
    drain.await.unwrap();
}

#[tokio::test]
async fn silent_turn_is_504_and_upstream_errors_map_to_statuses() {
    let s = TestServer::start(1, 1, |c| {
        c.pool.turn_idle_timeout = std::time::Duration::from_millis(300)
    })
    .await;
    let (st, v, _) = call(
        &s,
        chat(r#"{"model":"sonnet","messages":[{"role":"user","content":"[[hang]]"}]}"#),
    )
    .await;
    assert_eq!(st, StatusCode::GATEWAY_TIMEOUT, "{v}");
    assert_envelope(&v, st, "turn_timeout");
    for (status, expected, code) in [
        (429, StatusCode::TOO_MANY_REQUESTS, "upstream_rate_limited"),
        (529, StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
        (500, StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
        (401, StatusCode::BAD_GATEWAY, "upstream_auth_failed"),
    ] {
        let body = format!(
            r#"{{"model":"sonnet","messages":[{{"role":"user","content":"[[error:{status}]]"}}]}}"#
        );
        let (st, v, _) = call(&s, chat(&body)).await;
        assert_eq!(st, expected, "{status}: {v}");
        assert_envelope(&v, st, code);
    }
    // The refused credential shows in the health report.
    let health = s.get_json("/v1/health", common::KEY).await;
    assert_eq!(
        health["credential"]["upstream_auth_failures"]["server_credential"], 1,
        "{health}"
    );
    assert_eq!(health["status"], "degraded");
    // Input over the context window is the client's to fix: 400, not "retry later".
    let (st, v, _) = call(
        &s,
        chat(r#"{"model":"sonnet","messages":[{"role":"user","content":"[[too-long]]"}]}"#),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_envelope(&v, st, "context_length_exceeded");
    s.stop().await;
}

/// Streaming: an upstream failure before any content is a real HTTP error with the same status
/// (and `Retry-After`) as without streaming — nothing was sent yet, and SDKs retry on statuses,
/// not on in-band events.
#[tokio::test]
async fn a_stream_that_fails_before_content_gets_the_same_status_as_json() {
    let s = TestServer::start(1, 1, |_| {}).await;
    for (status, expected, code) in [
        (429, StatusCode::TOO_MANY_REQUESTS, "upstream_rate_limited"),
        (529, StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
        (401, StatusCode::BAD_GATEWAY, "upstream_auth_failed"),
    ] {
        let body = format!(
            r#"{{"model":"sonnet","stream":true,"messages":[{{"role":"user","content":"[[error:{status}]]"}}]}}"#
        );
        let (st, v, headers) = call(&s, chat(&body)).await;
        assert_eq!(st, expected, "{status}: {v}");
        assert_envelope(&v, st, code);
        assert_eq!(
            headers.get(header::RETRY_AFTER).is_some(),
            status == 429,
            "{status}: {headers:?}"
        );
        assert_ne!(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
    }
    // A stream with content answers 200 as an event stream.
    let (st, _, headers) = call(
        &s,
        chat(r#"{"model":"sonnet","stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
    s.stop().await;
}
