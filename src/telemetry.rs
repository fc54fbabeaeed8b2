//! OpenTelemetry traces. With `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, every request's span is exported over OTLP
//! (HTTP/protobuf, to `<endpoint>/v1/traces`) as a server span named `METHOD route`, with its
//! status, key label, session, model, queue wait, time to first token, tokens and cost; a W3C
//! `traceparent` from the client makes it a child of the client's trace. The service name is
//! `claude-pool` unless `OTEL_SERVICE_NAME` says otherwise; the other `OTEL_*` settings of the
//! exporter and the batch processor apply as the OpenTelemetry SDK reads them.
//!
//! Under the server span, tracing spans (made only when traces are exported: [`span`]) reach
//! OpenTelemetry through the tracing layer:
//!
//! ```text
//! POST /v1/chat/completions            server (access.rs)
//! ├── gate                             key lookup, budget period reset, rate limit (gate.rs)
//! ├── admission                        scope, tokens per minute, parallel turns, budget hold
//! ├── queue wait                       submission → the pool's Started: queued_for_ms, resumed
//! └── chat {model}                     the turn (client span, GenAI conventions): usage, cost,
//!     │                                event gen_ai.first_token; gen_ai.tool_calls when parked
//!     └── store commit                 the kept transcript's write, which the answer waits for
//! POST /v1/chat/completions            a request bringing tool results
//! ├── gate
//! └── tool round                       event gen_ai.tool_results (call ids)
//!     └── chat {model}                 the rest of the parked turn
//! ```
//!
//! A refused request has the server span and the step that refused it, with an error status and
//! `error.type`. Spans carry labels, ids and numbers, never keys, message text or tool arguments.
//! With traces off, [`span`] gives [`tracing::Span::none`] and the helpers here return at once;
//! on, a request costs about a millisecond more (debug build, fake CLI; see the README).

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported (spans then carry the OpenTelemetry fields).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporter's endpoint, if traces are to be exported.
fn endpoint(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .filter_map(env)
    .find(|v| !v.trim().is_empty())
}

/// The running exporter: flushed and stopped by [`Telemetry::shutdown`].
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Starts the exporter when an endpoint is configured (must run outside the async
    /// runtime: the exporter's HTTP client is a blocking one, on the batch processor's thread).
    pub fn from_env() -> Result<Option<(Self, SdkTracer)>, String> {
        if endpoint(|n| std::env::var(n).ok()).is_none() {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| format!("OpenTelemetry exporter: {e}"))?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("claude-pool");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("claude-pool");
        ENABLED.store(true, Ordering::Relaxed);
        Ok(Some((Self { provider }, tracer)))
    }

    /// Exports what is left and stops.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("claude-pool: OpenTelemetry shutdown: {e}");
        }
    }
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes `span` a child of the client's trace (W3C `traceparent`/`tracestate`), if it sent one.
pub fn adopt_parent(span: &tracing::Span, headers: &HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    if let Err(e) = span.set_parent(cx) {
        tracing::debug!(error = %e, "traceparent not applied");
    }
}

/// A span of a request's tree, made only when traces are exported (else [`tracing::Span::none`],
/// which costs nothing to enter, record or drop).
pub fn span(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if enabled() {
        make()
    } else {
        tracing::Span::none()
    }
}

/// Sets an attribute on `span` (nothing when traces are off).
pub fn attr(span: &tracing::Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if enabled() {
        span.set_attribute(key, value);
    }
}

/// Adds an event with attributes to `span` (nothing when traces are off).
pub fn event(
    span: &tracing::Span,
    name: &'static str,
    attrs: impl FnOnce() -> Vec<opentelemetry::KeyValue>,
) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if enabled() {
        span.add_event(name, attrs());
    }
}

/// Marks `span` as failed, with `error.type` (an error code or an HTTP status; never a message
/// that could carry what the client sent).
pub fn failed(span: &tracing::Span, error_type: &str) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if enabled() {
        span.set_attribute("error.type", error_type.to_owned());
        span.set_status(opentelemetry::trace::Status::error(error_type.to_owned()));
    }
}

/// Marks `span` as failed with an API error's code (or its type).
pub fn api_error(span: &tracing::Span, e: &crate::error::ApiError) {
    if enabled() {
        let (_, kind, code, _) = e.parts();
        failed(span, code.unwrap_or(kind));
    }
}

/// The span of a turn on the model: `chat {model}` (GenAI semantic conventions: a client span
/// with `gen_ai.operation.name`, `gen_ai.system`, `gen_ai.request.model`).
pub fn chat_span(model: &str) -> tracing::Span {
    span(|| {
        tracing::info_span!(
            "chat",
            otel.name = %format_args!("chat {model}"),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.system = "anthropic",
            gen_ai.request.model = %model,
        )
    })
}

/// Records a turn's first content on its span: the event `gen_ai.first_token`, with the time
/// since the request arrived.
pub fn first_token(span: &tracing::Span, since_request: std::time::Duration) {
    event(span, "gen_ai.first_token", || {
        vec![opentelemetry::KeyValue::new(
            "claude_pool.ttft_ms",
            since_request.as_millis() as i64,
        )]
    });
}

/// Records a completed turn's usage (all input tokens, output tokens) and cost on its span.
pub fn completed(span: &tracing::Span, r: &claude_pool_actors::TurnResult) {
    attr(
        span,
        "gen_ai.usage.input_tokens",
        r.usage.prompt_tokens() as i64,
    );
    attr(
        span,
        "gen_ai.usage.output_tokens",
        r.usage.output_tokens as i64,
    );
    attr(span, "claude_pool.cost_usd", r.cost_usd);
}

/// Records the tool calls a turn ended its answer with (their ids as the client sees them,
/// never their arguments).
pub fn tool_calls(span: &tracing::Span, client_ids: impl Iterator<Item = String>) {
    event(span, "gen_ai.tool_calls", || {
        let ids: Vec<opentelemetry::StringValue> = client_ids.map(Into::into).collect();
        vec![opentelemetry::KeyValue::new(
            "claude_pool.tool_call_ids",
            opentelemetry::Value::Array(ids.into()),
        )]
    });
    let reasons: Vec<opentelemetry::StringValue> = vec!["tool_calls".into()];
    attr(
        span,
        "gen_ai.response.finish_reasons",
        opentelemetry::Value::Array(reasons.into()),
    );
}

/// Turns running now whose transcript the keeper may commit, by scoped session: the context of
/// their `chat` span. Forgotten whole when it grows past this (a turn that failed is never
/// committed, so its entry is not taken).
const MAX_RUNNING: usize = 10_000;

static RUNNING: std::sync::Mutex<
    Option<std::collections::HashMap<String, opentelemetry::Context>>,
> = std::sync::Mutex::new(None);

/// Notes that the turn of `session` (scoped) runs in `span`, where the store commit of its
/// transcript (on its worker's task) is to be traced.
pub fn turn_running(session: impl FnOnce() -> String, span: &tracing::Span) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !enabled() || span.is_none() {
        return;
    }
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let running = running.get_or_insert_with(Default::default);
    if running.len() >= MAX_RUNNING {
        running.clear();
    }
    running.insert(session(), span.context());
}

/// The `store commit` span of a turn's transcript, under the turn's `chat` span (none when
/// traces are off or the turn is not known).
pub fn commit_span(session: &str) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !enabled() {
        return tracing::Span::none();
    }
    let cx = RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .and_then(|r| r.remove(session));
    let Some(cx) = cx else {
        return tracing::Span::none();
    };
    let span = tracing::info_span!("store commit", otel.name = "store commit");
    if let Err(e) = span.set_parent(cx) {
        tracing::debug!(error = %e, "store commit span not placed");
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_traces_off_no_span_is_made_and_no_turn_is_noted() {
        assert!(!enabled());
        let made = span(|| unreachable!("no span is made with traces off"));
        assert!(made.is_none());
        turn_running(|| unreachable!("no session is noted"), &made);
        assert!(commit_span("key/session").is_none());
        first_token(&made, std::time::Duration::from_millis(3));
    }

    #[test]
    fn the_traces_endpoint_wins_and_blank_is_none() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(endpoint(env(&[])), None);
        assert_eq!(endpoint(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])), None);
        assert_eq!(
            endpoint(env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://b:4318/v1/traces"
                ),
            ])),
            Some("http://b:4318/v1/traces".into())
        );
    }
}
