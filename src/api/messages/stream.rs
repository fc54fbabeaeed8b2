//! A started turn streamed as the Messages API's named server-sent events: `message_start`,
//! each block's `content_block_start` / `content_block_delta` / `content_block_stop`,
//! `message_delta` with the usage, `message_stop`; `ping` during silence. After the head was
//! sent, a failure is an `event: error`. Dropping the body (client gone) drops the turn's
//! stream, which makes the pool interrupt the turn.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{ToolCall, TurnError, TurnEvent, TurnStream, Usage};
use futures_util::stream;

use super::outcome::stop_reason;
use super::wire::errors::translate;
use super::wire::render::StopReason;
use super::wire::stream::{Event, StreamEncoder, to_sse};
use crate::error::ApiError;
use crate::state::App;
use crate::turns::answer::Answer;
use crate::turns::{Claim, Started, TurnRequest, finished, first_token};

struct SseState {
    app: Arc<App>,
    req: TurnRequest,
    events: TurnStream,
    encoder: StreamEncoder,
    /// Encoded events not yet handed to the connection; everything ready is written at once.
    pending: Vec<u8>,
    done: bool,
    t0: Instant,
    first_token: bool,
    claim: Claim,
    answer: Answer,
    /// The model called tools: the turn is to be parked once the response ends.
    park: Option<Vec<ToolCall>>,
    /// The turn's span (ended when the stream ends, or when the turn is parked).
    span: tracing::Span,
}

impl SseState {
    fn push(&mut self, events: Vec<Event>) {
        for e in &events {
            self.pending.extend_from_slice(to_sse(e).as_bytes());
        }
    }

    fn end_with_error(&mut self, e: ApiError) {
        crate::telemetry::api_error(&self.span, &e);
        tracing::warn!(error = %e, session = %self.req.session, "stream ended with an error");
        let (status, kind, code, message) = e.parts();
        let error = translate(status.as_u16(), code.or(Some(kind)), &message);
        self.push(vec![StreamEncoder::error(error.kind, &error.message)]);
        self.done = true;
    }

    fn on_event(&mut self, ev: Option<TurnEvent>) {
        // Entered for each event: the span's end is its last exit (the turn's last event).
        let _in_turn = self.span.clone().entered();
        self.claim.settle(ev.as_ref());
        match ev {
            Some(TurnEvent::ThinkingDelta(piece)) => {
                let events = self.encoder.thinking(&piece);
                self.push(events);
            }
            Some(TurnEvent::ThinkingSignature(sig)) => {
                let events = self.encoder.signature(&sig);
                self.push(events);
            }
            Some(TurnEvent::TextDelta(piece)) => {
                if !std::mem::replace(&mut self.first_token, true) {
                    first_token(&self.app, self.t0, &self.span);
                }
                let text = self.answer.delta(piece);
                if !text.is_empty() {
                    let events = self.encoder.text(&text);
                    self.push(events);
                }
            }
            Some(TurnEvent::Completed(r)) => {
                crate::telemetry::completed(
                    &self.span,
                    r.usage.prompt_tokens(),
                    r.usage.output_tokens,
                    r.cost_usd,
                );
                let tail = self.answer.tail();
                if !tail.is_empty() {
                    let events = self.encoder.text(&tail);
                    self.push(events);
                }
                finished(&self.app, &self.req, &self.answer.full(&r));
                let stop = stop_reason(&self.answer, &r);
                let events = self.encoder.finish(&stop, &r.usage);
                self.push(events);
                self.done = true;
            }
            Some(TurnEvent::ToolCalls(calls)) if self.req.tools.is_some() => {
                let calls = crate::turns::tool_parking::take_output(self.req.tools.as_mut(), calls);
                if calls.is_empty() {
                    return;
                }
                for c in &calls {
                    let events = self.encoder.tool_use(&c.id, &c.name, &c.input);
                    self.push(events);
                }
                crate::telemetry::tool_calls(&self.span, calls.iter().map(|c| c.id.clone()));
                // The turn's usage comes with its final answer.
                let events = self.encoder.finish(&StopReason::ToolUse, &Usage::default());
                self.push(events);
                self.done = true;
                self.park = Some(calls);
            }
            Some(TurnEvent::Failed(e)) => self.end_with_error(e.into()),
            Some(TurnEvent::Started { .. } | TurnEvent::ToolCalls(_)) => {}
            None => self.end_with_error(TurnError::WorkerFailed("stream ended".into()).into()),
        }
    }

    /// Hands the turn to the tool bridge once its response ended with tool calls.
    fn park(self, calls: &[ToolCall]) {
        let SseState {
            app,
            req,
            events,
            t0,
            claim,
            answer,
            ..
        } = self;
        // The turn's span ends with this response; its rest has the continuation's.
        let started = Started {
            req,
            events,
            t0,
            claim,
            answer,
            first: None,
            span: tracing::Span::none(),
        };
        crate::turns::tool_parking::park(&app, started, calls);
    }
}

/// The SSE response, opened with `message_start` and the turn's `first` event when it came
/// before the head was sent. Every event that is ready when the connection can take more is
/// written in one frame; a `ping` is sent after `server.sse_keepalive` without an event.
pub(super) fn respond(app: Arc<App>, started: Started, show_thinking: bool) -> Response {
    let Started {
        req,
        events,
        t0,
        claim,
        answer,
        first,
        span,
    } = started;
    let keepalive = app.server.sse_keepalive;
    let mut st = SseState {
        app,
        encoder: StreamEncoder::new(show_thinking),
        req,
        events,
        pending: Vec::with_capacity(1024),
        done: false,
        t0,
        first_token: false,
        claim,
        answer,
        park: None,
        span,
    };
    let opening = st
        .encoder
        .start(&st.req.id, &st.req.model_name, &Usage::default());
    st.push(opening);
    if let Some(ev) = first {
        st.on_event(Some(ev));
    }
    let body = stream::unfold(Some(st), move |st| async move {
        let mut st = st?;
        loop {
            if let Some(calls) = st.park.take() {
                // The response ends here; the turn waits for the tool results.
                let frame = Bytes::from(std::mem::take(&mut st.pending));
                st.park(&calls);
                return Some((Ok::<_, Infallible>(frame), None));
            }
            if !st.pending.is_empty() {
                let frame = Bytes::from(std::mem::take(&mut st.pending));
                return Some((Ok::<_, Infallible>(frame), Some(st)));
            }
            if st.done {
                return None;
            }
            tokio::select! {
                ev = st.events.recv() => {
                    st.on_event(ev);
                    while !st.done {
                        match st.events.try_recv() {
                            Some(ev) => st.on_event(Some(ev)),
                            None => break,
                        }
                    }
                }
                () = tokio::time::sleep(keepalive) => st.push(vec![StreamEncoder::ping()]),
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
