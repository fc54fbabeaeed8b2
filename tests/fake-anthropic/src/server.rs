//! The HTTP side: one handler for every path (as the API and the CLI use them), and the
//! connection loop. When the server stops, every open connection is closed at once, hanging
//! and streaming ones included, as if the process had exited.
//!
//! | request                               | answer                                             |
//! |---------------------------------------|----------------------------------------------------|
//! | `HEAD` any path                       | 200, empty (the CLI's reachability check)          |
//! | `GET /_stats`                         | request counts (see [`crate::state::Stats`])       |
//! | `GET /_last_request`                  | the last `/v1/messages` body                       |
//! | `GET /v1/models`                      | three model entries                                |
//! | `POST …/count_tokens`                 | `{"input_tokens": 10 * messages}`                  |
//! | `POST /v1/messages` (any query)       | the reply ([`crate::reply`]), streamed or not      |
//! | other `GET` / `POST` paths            | 200 `{}`                                           |
//!
//! A POST body that is not JSON is a 400; a rejected key on `/v1/messages` is a 401.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::magic::Interrupt;
use crate::pyjson;
use crate::reply::{self, Reply};
use crate::request;
use crate::state::{Options, Shared};
use crate::wire;

/// A fake API server: its options and state. Cheap to clone; clones share the state.
#[derive(Debug, Clone)]
pub struct Server {
    app: Arc<App>,
}

#[derive(Debug)]
struct App {
    options: Options,
    shared: Shared,
    /// Requests held by `[[hang]]` right now.
    hanging: AtomicUsize,
}

/// Serves `options`' fake API on `listener` until `shutdown` resolves, then closes every
/// connection and returns once they are gone.
pub async fn serve(listener: TcpListener, options: Options, shutdown: impl Future<Output = ()>) {
    Server::new(options).run(listener, shutdown).await;
}

impl Server {
    /// A server with fresh counters.
    pub fn new(options: Options) -> Self {
        Self {
            app: Arc::new(App {
                options,
                shared: Shared::default(),
                hanging: AtomicUsize::new(0),
            }),
        }
    }

    /// What `GET /_stats` answers, parsed.
    pub fn stats(&self) -> Value {
        serde_json::from_str(&self.app.shared.stats_json()).unwrap_or_default()
    }

    /// What `GET /_last_request` answers, parsed: the last `/v1/messages` body (`{}` if none).
    pub fn last_request(&self) -> Value {
        serde_json::from_str(&self.app.shared.last_request_json()).unwrap_or_default()
    }

    /// Requests held by `[[hang]]` right now (they end when their client goes away).
    pub fn hanging(&self) -> usize {
        self.app.hanging.load(Ordering::SeqCst)
    }

    /// Serves on `listener` until `shutdown` resolves, then closes every connection.
    pub async fn run(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let router = Router::new().fallback(handle).with_state(self.app.clone());
        let builder = Builder::new(TokioExecutor::new());
        let closing = CancellationToken::new();
        let connections = TaskTracker::new();
        tokio::pin!(shutdown);
        loop {
            let tcp = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(_) => {
                        // out of descriptors and the like: back off instead of spinning
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = tcp.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            let builder = builder.clone();
            let closing = closing.clone();
            connections.spawn(async move {
                let conn = builder.serve_connection(TokioIo::new(tcp), service);
                tokio::select! {
                    _ = conn => {}
                    () = closing.cancelled() => {}
                }
            });
        }
        closing.cancel();
        connections.close();
        connections.wait().await;
    }
}

/// Every request; with `--verbose` logged as `fake-anthropic: "POST /v1/messages HTTP/1.1" 200 -`.
async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    if !app.options.verbose {
        return route(&app, req).await;
    }
    let line = format!(
        "\"{} {} {:?}\"",
        req.method(),
        req.uri().path_and_query().map_or("/", |p| p.as_str()),
        req.version()
    );
    let response = route(&app, req).await;
    eprintln!("fake-anthropic: {line} {} -", response.status().as_u16());
    response
}

async fn route(app: &App, req: Request) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let path = target.split('?').next().unwrap_or("/");
    let method = req.method().clone();
    if ![Method::HEAD, Method::GET, Method::POST].contains(&method) {
        return error(
            501,
            "invalid_request_error",
            &format!("Unsupported method ({method})"),
        );
    }
    app.shared.lock().stats.count(path);
    if method == Method::HEAD {
        let mut r = respond(StatusCode::OK, None, Body::empty());
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
        return r;
    }
    if method == Method::GET {
        let body = if target.starts_with("/_last_request") {
            app.shared.last_request_json()
        } else if target.starts_with("/_stats") {
            app.shared.stats_json()
        } else if target.starts_with("/v1/models") {
            models_json()
        } else {
            "{}".to_owned()
        };
        return json(StatusCode::OK, body);
    }
    let headers = req.headers().clone();
    let raw = match axum::body::to_bytes(req.into_body(), usize::MAX).await {
        Ok(raw) => raw,
        Err(_) => return error(400, "invalid_request_error", "body could not be read"),
    };
    let parsed: Result<Value, _> = if raw.is_empty() {
        Ok(Value::Object(Default::default()))
    } else {
        serde_json::from_slice(&raw)
    };
    let Ok(body) = parsed else {
        return error(400, "invalid_request_error", "body is not JSON");
    };
    if path.ends_with("/count_tokens") {
        return match request::message_list(&body) {
            Ok(m) => json(
                StatusCode::OK,
                format!("{{\"input_tokens\": {}}}", 10 * m.len()),
            ),
            Err(e) => error(400, "invalid_request_error", &e.0),
        };
    }
    if path != "/v1/messages" {
        return json(StatusCode::OK, "{}".to_owned());
    }
    if app.options.reject_keys.contains(&api_key(&headers)) {
        return error(401, "authentication_error", "invalid x-api-key");
    }
    let reply = {
        let mut memory = app.shared.lock();
        memory.last_request = Some(raw);
        reply::reply(&body, &mut memory.stats)
    };
    match reply {
        Err(e) => error(400, "invalid_request_error", &e.0),
        Ok(Reply::Interrupt(Interrupt::Fault(f))) => {
            let mut r = error(f.status, f.kind, f.message);
            if let Some(secs) = f.retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            r
        }
        Ok(Reply::Interrupt(Interrupt::Hang)) => hang(app).await,
        Ok(Reply::Answer(answer)) if request::wants_stream(&body) => {
            let pause = app.options.slow;
            let events = answer
                .events()
                .into_iter()
                .map(move |p| (p.pause_before, p.event.to_sse()));
            let stream =
                futures_util::stream::iter(events).then(move |(pause_before, sse)| async move {
                    if pause_before && !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    Ok::<_, Infallible>(Bytes::from(sse))
                });
            let mut r = respond(
                StatusCode::OK,
                Some("text/event-stream"),
                Body::from_stream(stream),
            );
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        Ok(Reply::Answer(answer)) => json(StatusCode::OK, answer.message_json()),
    }
}

/// The caller's key: `x-api-key`, else the `Authorization` value without `Bearer `.
fn api_key(headers: &HeaderMap) -> String {
    let text = |name| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    };
    let key = text(header::HeaderName::from_static("x-api-key"));
    if key.is_empty() {
        text(header::AUTHORIZATION).replace("Bearer ", "")
    } else {
        key
    }
}

/// Never answers. The connection task drops this future when the client goes away (hyper
/// notices the closed socket) or the server stops, so nothing is held after that.
async fn hang(app: &App) -> Response {
    struct Held<'a>(&'a AtomicUsize);
    impl Drop for Held<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    app.hanging.fetch_add(1, Ordering::SeqCst);
    let _held = Held(&app.hanging);
    std::future::pending().await
}

fn models_json() -> String {
    let data: Vec<PyModel> = ["claude-opus-4-8", "claude-sonnet-5", "claude-haiku-4-5"]
        .into_iter()
        .map(|id| PyModel {
            kind: "model",
            id,
            display_name: id,
        })
        .collect();
    pyjson::to_string(&Models {
        data,
        has_more: false,
    })
}

#[derive(serde::Serialize)]
struct PyModel {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'static str,
    display_name: &'static str,
}

#[derive(serde::Serialize)]
struct Models {
    data: Vec<PyModel>,
    has_more: bool,
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, wire::error_body(kind, message))
}

fn json(status: StatusCode, body: String) -> Response {
    respond(status, Some("application/json"), Body::from(body))
}

fn respond(status: StatusCode, content_type: Option<&'static str>, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}
