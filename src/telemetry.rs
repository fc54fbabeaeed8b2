//! OpenTelemetry traces. With `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, every request's span is exported over OTLP
//! (HTTP/protobuf, to `<endpoint>/v1/traces`) as a server span named `METHOD route`, with its
//! status, key label, session, model, queue wait, time to first token, tokens and cost; a W3C
//! `traceparent` from the client makes it a child of the client's trace. The service name is
//! `claude-pool` unless `OTEL_SERVICE_NAME` says otherwise; the other `OTEL_*` settings of the
//! exporter and the batch processor apply as the OpenTelemetry SDK reads them.

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

#[cfg(test)]
mod tests {
    use super::*;

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
