//! OpenTelemetry traces, on the server binary: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, a request
//! with a W3C `traceparent` is exported over OTLP/HTTP (protobuf, `/v1/traces`) as a span of the
//! client's trace, whose parent is the client's span, named after the route.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use common::{KEY, fake_cli, free_port};
use serde_json::json;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An OTLP/HTTP receiver keeping the bodies posted to `/v1/traces`.
async fn collector() -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), bodies)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_exported_as_a_span_of_the_clients_trace() {
    let (endpoint, bodies) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_claude-pool"))
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(dir.path())
            .env("API_KEYS", KEY)
            .env("HTTPS_PORT", "0")
            .env("LOG_LEVEL", "warn")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("CLAUDE_POOL_WORKER__COMMAND", fake_cli())
            .env("CLAUDE_POOL_WORKER__HOME", dir.path().join("home"))
            .env("CLAUDE_POOL_WORKER__WORK_ROOT", dir.path().join("work"))
            .env("CLAUDE_POOL_POOL__MIN_WORKERS", "1")
            .env("CLAUDE_POOL_POOL__MAX_WORKERS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .spawn()
            .expect("claude-pool starts"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..600 {
        if let Ok(r) = c.get(format!("{url}/readyz")).send().await {
            if r.status() == 200 {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the server did not become ready");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let r = c
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": "[[cost:0.1]] hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    r.bytes().await.unwrap();
    let (trace, parent) = (unhex(trace_id), unhex(parent_id));
    let mut found = None;
    for _ in 0..200 {
        found = bodies
            .lock()
            .unwrap()
            .iter()
            .find(|b| contains(b, &trace))
            .cloned();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(body) = found else {
        panic!(
            "no span of the client's trace among {} export(s); server log:\n{}",
            bodies.lock().unwrap().len(),
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        );
    };
    assert!(contains(&body, &parent), "its parent is the client's span");
    assert!(
        contains(&body, b"POST /v1/chat/completions"),
        "named after the route"
    );
    assert!(contains(&body, b"claude-pool"), "the service name");
    assert!(
        contains(&body, b"claude_pool.tokens_out"),
        "the turn's numbers"
    );
}
