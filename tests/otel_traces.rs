//! OpenTelemetry traces, on the server binary: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, requests
//! are exported over OTLP/HTTP (protobuf, `/v1/traces`). The receiver here decodes the exports
//! with the protocol's own messages and checks each request's span tree by span ids: a streamed
//! turn of a client's trace (server span → gate, admission, queue wait, `chat {model}` with its
//! first-token event and usage, and under it the store commit of its transcript), and refused
//! requests, by authentication (401) and by the key's rate limit (429): only the server span and
//! its gate, which failed.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use common::{KEY, fake_cli, free_port};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message;
use serde_json::json;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The spans received, and the service names they came with.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    services: Vec<String>,
}

/// An OTLP/HTTP receiver decoding what is posted to `/v1/traces`.
async fn collector() -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
                let mut r = kept.lock().unwrap();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .as_ref()
                        .and_then(|res| text(&res.attributes, "service.name"));
                    r.services.extend(service);
                    for ss in rs.scope_spans {
                        r.spans.extend(ss.spans);
                    }
                }
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

fn value<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    match value(attrs, key)? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match value(attrs, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// One trace's spans, by name (each name once in these traces).
struct Tree(HashMap<String, Span>);

impl Tree {
    fn span(&self, name: &str) -> &Span {
        self.0
            .get(name)
            .unwrap_or_else(|| panic!("no span {name:?} among {:?}", self.names()))
    }

    fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.0.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }

    fn assert_child(&self, child: &str, parent: &str) {
        assert_eq!(
            self.span(child).parent_span_id,
            self.span(parent).span_id,
            "{child:?} is a child of {parent:?}"
        );
    }
}

/// Waits for the spans of `trace` until the server span (`root`) is among them.
async fn tree(received: &Mutex<Received>, trace: &str, root: &str, log: &std::path::Path) -> Tree {
    let trace = unhex(trace);
    for _ in 0..200 {
        let spans: HashMap<String, Span> = received
            .lock()
            .unwrap()
            .spans
            .iter()
            .filter(|s| s.trace_id == trace)
            .map(|s| (s.name.clone(), s.clone()))
            .collect();
        if spans.contains_key(root) {
            return Tree(spans);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no server span of the trace among {} span(s); server log:\n{}",
        received.lock().unwrap().spans.len(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_exported_as_span_trees_of_the_clients_traces() {
    let (endpoint, received) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
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
            .env("CLAUDE_POOL_LIMITS__RATE_LIMIT_REQUESTS", "2")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
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
    let route = "POST /v1/chat/completions";

    // A streamed turn, in the client's trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let r = c
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .json(&json!({"model": "sonnet", "stream": true,
            "messages": [{"role": "user", "content": "[[cost:0.1]] [[tokens:7]] zebra crossing"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("[DONE]"), "{body}");
    let t = tree(&received, trace_id, route, &log).await;
    let server = t.span(route);
    assert_eq!(server.parent_span_id, unhex(parent_id), "the client's span");
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(
        int(&server.attributes, "http.response.status_code"),
        Some(200),
        "{:?}",
        server.attributes
    );
    for child in ["gate", "admission", "queue wait", "chat sonnet"] {
        t.assert_child(child, route);
    }
    t.assert_child("store commit", "chat sonnet");
    let (commit, turn) = (t.span("store commit"), t.span("chat sonnet"));
    assert!(
        commit.end_time_unix_nano <= turn.end_time_unix_nano,
        "the turn is answered once its transcript is kept"
    );
    let first = turn.events.iter().find(|e| e.name == "gen_ai.first_token");
    assert!(
        first.is_some_and(|e| e.time_unix_nano <= turn.end_time_unix_nano),
        "the first token comes within the turn"
    );
    assert_eq!(t.0.len(), 6, "{:?}", t.names());
    let gate = t.span("gate");
    let key = text(&gate.attributes, "claude_pool.key").unwrap_or_default();
    assert!(key.starts_with("key-"), "the key's label: {key}");
    let queue = t.span("queue wait");
    assert!(int(&queue.attributes, "claude_pool.queued_for_ms").is_some());
    assert!(value(&queue.attributes, "claude_pool.resumed").is_some());
    let chat = t.span("chat sonnet");
    assert_eq!(chat.kind, SpanKind::Client as i32);
    let a = &chat.attributes;
    assert_eq!(text(a, "gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(text(a, "gen_ai.system").as_deref(), Some("anthropic"));
    assert_eq!(text(a, "gen_ai.request.model").as_deref(), Some("sonnet"));
    assert!(int(a, "gen_ai.usage.input_tokens").is_some());
    let out = int(a, "gen_ai.usage.output_tokens");
    assert!(out.is_some_and(|n| n > 0), "{out:?}");
    assert_eq!(int(&server.attributes, "claude_pool.tokens_out"), out);
    assert!(value(a, "claude_pool.cost_usd").is_some());
    let first = chat.events.iter().find(|e| e.name == "gen_ai.first_token");
    let first = first.unwrap_or_else(|| panic!("no first-token event: {:?}", chat.events));
    assert!(int(&first.attributes, "claude_pool.ttft_ms").is_some());
    assert!(
        queue.end_time_unix_nano <= chat.start_time_unix_nano,
        "the wait comes first"
    );
    assert!(chat.end_time_unix_nano <= server.end_time_unix_nano);
    {
        let all = received.lock().unwrap();
        assert!(
            all.services.iter().any(|s| s == "claude-pool"),
            "the service name"
        );
        for s in all.spans.iter() {
            for kv in s.attributes.iter() {
                let v = format!("{:?}", kv.value);
                assert!(!v.contains(KEY) && !v.contains("zebra"), "{}: {v}", kv.key);
            }
        }
    }

    // A refused request: the server span and its gate only, the gate failed.
    let trace_id = "5bf92f3577b34da6a3ce929d0e0e4737";
    let r = c
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth("sk-wrong")
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    r.bytes().await.unwrap();
    let t = tree(&received, trace_id, route, &log).await;
    assert_eq!(t.names(), [route, "gate"]);
    t.assert_child("gate", route);
    let server = t.span(route);
    assert_eq!(
        int(&server.attributes, "http.response.status_code"),
        Some(401)
    );
    assert!(text(&server.attributes, "error.type").is_some());
    let gate = t.span("gate");
    let status = gate.status.as_ref().expect("the gate's status");
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(text(&gate.attributes, "error.type").as_deref(), Some("401"));

    // Over the key's rate limit (2 a window; the refused request above did not count): the
    // gate refuses with its error status.
    let chat = |traceparent: Option<String>| {
        let mut r = c
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]}));
        if let Some(tp) = traceparent {
            r = r.header("traceparent", tp);
        }
        r.send()
    };
    assert_eq!(chat(None).await.unwrap().status(), 200);
    let trace_id = "6bf92f3577b34da6a3ce929d0e0e4738";
    let r = chat(Some(format!("00-{trace_id}-{parent_id}-01")))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    r.bytes().await.unwrap();
    let t = tree(&received, trace_id, route, &log).await;
    assert_eq!(t.names(), [route, "gate"]);
    t.assert_child("gate", route);
    let gate = t.span("gate");
    assert_eq!(
        gate.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(
        text(&gate.attributes, "error.type").as_deref(),
        Some("rate_limit_exceeded")
    );
    assert_eq!(int(&gate.attributes, "claude_pool.rate.remaining"), Some(0));
}
