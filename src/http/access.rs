//! Request ids and the access log. Every request gets an id: the client's `x-request-id` when
//! it is sane (1 to 128 characters of `A-Z a-z 0-9 - _ . : /`), else a generated one (a UUID),
//! returned in `x-request-id` on every response. The request runs in a `request` span with its
//! `request_id`, so every line logged on its behalf names it, and the request's turn writes it
//! into its spend record.
//!
//! When the response body ends (for a stream: when the stream ends or the client goes), one
//! line is written with target `claude_pool::access`: method, route (the matched pattern, never
//! the raw path), status, error code, key label (never the key), session, model, queue wait,
//! time to first token, duration, tokens and cost. Fields that do not apply are left out.
//! Rejections (4xx) are INFO, server faults (5xx) WARN.
//!
//! What the handlers learn on the way (the key, the turn's numbers) is noted through the
//! functions of this module, which find the request's record in a task-local; outside a request
//! (tests building a turn directly, background tasks) they do nothing.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tracing::Instrument;

/// The request id header, on requests and every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Longest client request id taken as is.
const MAX_ID_LEN: usize = 128;

pub use crate::error::ErrorCode;

tokio::task_local! {
    static CURRENT: Arc<Access>;
}

/// What one request's access line says.
#[derive(Debug, Default)]
struct Fields {
    status: u16,
    code: Option<&'static str>,
    key: Option<String>,
    session: Option<String>,
    model: Option<String>,
    queue_wait_ms: Option<u64>,
    ttft_ms: Option<u64>,
    tokens_in: Option<u64>,
    tokens_out: Option<u64>,
    cost_usd: Option<f64>,
}

/// One request's record, shared by its handler, its turn's spend report and its body.
#[derive(Debug)]
pub struct Access {
    id: String,
    method: Method,
    route: String,
    t0: Instant,
    fields: Mutex<Fields>,
}

impl Access {
    /// The request id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn with(&self, f: impl FnOnce(&mut Fields)) {
        f(&mut self.fields.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The turn's tokens and cost (its spend report, from the worker's task).
    pub fn spent(&self, input: u64, output: u64, cost_usd: f64) {
        self.with(|f| {
            f.tokens_in = Some(input);
            f.tokens_out = Some(output);
            f.cost_usd = Some(cost_usd);
        });
    }

    /// Writes the access line.
    fn write(&self) {
        let f = self.fields.lock().unwrap_or_else(|e| e.into_inner());
        let duration_ms = self.t0.elapsed().as_millis() as u64;
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    target: "claude_pool::access",
                    $level,
                    request_id = %self.id,
                    method = %self.method,
                    route = %self.route,
                    status = f.status,
                    code = f.code,
                    key = f.key.as_deref(),
                    session = f.session.as_deref(),
                    model = f.model.as_deref(),
                    queue_wait_ms = f.queue_wait_ms,
                    ttft_ms = f.ttft_ms,
                    duration_ms,
                    tokens_in = f.tokens_in,
                    tokens_out = f.tokens_out,
                    cost_usd = f.cost_usd,
                    "request"
                )
            };
        }
        if f.status >= 500 {
            line!(tracing::Level::WARN);
        } else {
            line!(tracing::Level::INFO);
        }
    }
}

/// The current request's record, if running on behalf of one.
pub fn current() -> Option<Arc<Access>> {
    CURRENT.try_with(Arc::clone).ok()
}

fn note(f: impl FnOnce(&mut Fields)) {
    let _ = CURRENT.try_with(|a| a.with(f));
}

/// The caller's key label (`key-<8 hex>`, `master`, `open`).
pub fn key(label: &str) {
    note(|f| f.key = Some(label.to_owned()));
}

/// The turn's session and the model the client asked for.
pub fn turn(session: &str, model: &str) {
    note(|f| {
        f.session = Some(session.to_owned());
        f.model = Some(model.to_owned());
    });
}

/// How long the turn waited for a worker.
pub fn queue_wait(d: Duration) {
    note(|f| f.queue_wait_ms = Some(d.as_millis() as u64));
}

/// Time from the request's arrival to the turn's first content.
pub fn first_token(d: Duration) {
    note(|f| {
        f.ttft_ms.get_or_insert(d.as_millis() as u64);
    });
}

/// A sane client request id, taken as is.
fn client_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(REQUEST_ID_HEADER)?.to_str().ok()?.trim();
    let sane = !v.is_empty()
        && v.len() <= MAX_ID_LEN
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
    sane.then(|| v.to_owned())
}

/// The request id of a request: the client's, or a new UUID.
pub fn request_id(headers: &HeaderMap) -> String {
    client_id(headers).unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The middleware: the request id, the span, the record, and the body that writes the line.
/// A request whose client goes before its response head (a turn still waiting or running)
/// writes its line then, with status 499 (nginx's "client closed request").
pub async fn layer(req: Request, next: Next) -> Response {
    let id = request_id(req.headers());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let access = Arc::new(Access {
        id: id.clone(),
        method: req.method().clone(),
        route,
        t0: Instant::now(),
        fields: Mutex::default(),
    });
    let span = span(&access);
    crate::telemetry::adopt_parent(&span, req.headers());
    let gone = ClientGone(Some(access.clone()));
    let mut resp = CURRENT
        .scope(access.clone(), next.run(req).instrument(span.clone()))
        .await;
    gone.answered();
    let code = resp.extensions().get::<ErrorCode>().map(|c| c.0);
    let status = resp.status().as_u16();
    access.with(|f| {
        f.status = status;
        f.code = code;
    });
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }
    resp.map(|inner| {
        Body::new(Logged {
            inner,
            access,
            span,
        })
    })
}

/// The request's span: its id, and the OpenTelemetry fields when traces are exported.
fn span(a: &Access) -> tracing::Span {
    use tracing::field::Empty;
    if !crate::telemetry::enabled() {
        return tracing::info_span!("request", request_id = %a.id);
    }
    tracing::info_span!(
        "request",
        request_id = %a.id,
        otel.name = %format_args!("{} {}", a.method, a.route),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %a.method,
        http.route = %a.route,
        http.response.status_code = Empty,
        error.type = Empty,
        claude_pool.key = Empty,
        claude_pool.session = Empty,
        claude_pool.model = Empty,
        claude_pool.queue_wait_ms = Empty,
        claude_pool.ttft_ms = Empty,
        claude_pool.tokens_in = Empty,
        claude_pool.tokens_out = Empty,
        claude_pool.cost_usd = Empty,
    )
}

/// Puts what the access line says on the span (exported when traces are).
fn record(span: &tracing::Span, a: &Access) {
    if !crate::telemetry::enabled() {
        return;
    }
    let f = a.fields.lock().unwrap_or_else(|e| e.into_inner());
    span.record("error.type", f.code);
    span.record("claude_pool.key", f.key.as_deref());
    span.record("claude_pool.session", f.session.as_deref());
    span.record("claude_pool.model", f.model.as_deref());
    span.record("claude_pool.queue_wait_ms", f.queue_wait_ms.map(int));
    span.record("claude_pool.ttft_ms", f.ttft_ms.map(int));
    span.record("claude_pool.tokens_in", f.tokens_in.map(int));
    span.record("claude_pool.tokens_out", f.tokens_out.map(int));
    span.record("claude_pool.cost_usd", f.cost_usd);
}

/// A number as an OpenTelemetry integer (the tracing layer exports unsigned ones as strings).
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes the line of a request dropped before its response head.
struct ClientGone(Option<Arc<Access>>);

impl ClientGone {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for ClientGone {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            a.with(|f| f.status = CLIENT_CLOSED);
            a.write();
        }
    }
}

/// The status of a request whose client went before its response head.
const CLIENT_CLOSED: u16 = 499;

/// A response body run in its request's span and record; writes the access line when dropped
/// (sent in full, or the client went away).
struct Logged {
    inner: Body,
    access: Arc<Access>,
    span: tracing::Span,
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        let inner = &mut this.inner;
        CURRENT.sync_scope(this.access.clone(), || Pin::new(inner).poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        record(&self.span, &self.access);
        self.access.write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn sane_client_ids_are_kept_and_others_replaced() {
        assert_eq!(request_id(&headers("req-42_a.b:c/d")), "req-42_a.b:c/d");
        let long = "a".repeat(MAX_ID_LEN + 1);
        for bad in ["", "has space", "semi;colon", "quote\"", long.as_str()] {
            let id = request_id(&headers(bad));
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        }
        assert!(uuid::Uuid::parse_str(&request_id(&HeaderMap::new())).is_ok());
    }

    #[test]
    fn notes_outside_a_request_do_nothing() {
        key("master");
        queue_wait(Duration::from_millis(3));
        assert!(current().is_none());
    }
}
