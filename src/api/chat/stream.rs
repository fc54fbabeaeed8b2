//! A started turn answered as Server-Sent Events: `chat.completion.chunk`s, then
//! `data: [DONE]`. The model's thinking streams as `delta.reasoning_content` before the text's
//! `delta.content`. After content started, failures are sent in-band as an OpenAI error event
//! followed by `[DONE]`. Dropping the response body (client gone) drops the turn's stream,
//! which makes the pool interrupt the turn.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{TurnError, TurnEvent, TurnStream};
use futures_util::stream;

use crate::api::reasoning::Reasoning;
use crate::error::ApiError;
use crate::openai::{ChatChunk, Delta, Usage, unix_now};
use crate::state::App;
use crate::tools::wire::openai_id;
use crate::turns::answer::Answer;
use crate::turns::{Claim, Started, TurnRequest, finished, first_token};

/// Appends one SSE event (`data: <json>`) to the write buffer. JSON encoding escapes newlines,
/// so the payload is always a single `data:` line.
fn push_json<T: serde::Serialize>(pending: &mut Vec<u8>, v: &T) {
    pending.extend_from_slice(b"data: ");
    match serde_json::to_writer(&mut *pending, v) {
        Ok(()) => pending.extend_from_slice(b"\n\n"),
        Err(e) => tracing::error!(error = %e, "chunk encoding failed"),
    }
}

const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";
const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

struct SseState {
    app: Arc<App>,
    req: TurnRequest,
    events: TurnStream,
    /// Encoded events not yet handed to the connection; everything ready is written at once.
    pending: Vec<u8>,
    done: bool,
    id: String,
    created: u64,
    t0: Instant,
    first_token: bool,
    claim: Claim,
    answer: Answer,
    /// The model's thinking so far.
    reasoning: Reasoning,
    /// The model called tools: the turn is to be parked once the response ends.
    park: Option<Vec<claude_pool_actors::ToolCall>>,
    /// The turn's span (ended when the stream ends, or when the turn is parked).
    span: tracing::Span,
}

impl SseState {
    /// True under a `response_format`: the answer is sent whole, once checked.
    fn formatted(&self) -> bool {
        self.req
            .tools
            .as_ref()
            .is_some_and(|t| t.request.output.is_some())
    }

    fn chunk(&mut self, delta: Delta<'_>, finish: Option<&'static str>) {
        let c = ChatChunk::delta(&self.id, self.created, &self.req.model_name, delta, finish);
        push_json(&mut self.pending, &c);
    }

    /// A chunk of answer text.
    fn text(&mut self, text: &str) {
        self.chunk(
            Delta {
                content: Some(text),
                ..Delta::default()
            },
            None,
        );
    }

    /// A chunk of the model's thinking.
    fn thinking(&mut self, piece: &str) {
        if let Some(piece) = self.reasoning.chat_delta(piece) {
            self.chunk(
                Delta {
                    reasoning_content: Some(&piece),
                    ..Delta::default()
                },
                None,
            );
        }
    }

    /// The chunk with `finish_reason`, the usage chunk if asked for, and `[DONE]`.
    fn finish(&mut self, reason: &'static str, usage: Usage) {
        self.chunk(Delta::default(), Some(reason));
        if self.req.include_usage {
            let u = ChatChunk::usage(&self.id, self.created, &self.req.model_name, usage);
            push_json(&mut self.pending, &u);
        }
        self.pending.extend_from_slice(DONE_EVENT);
        self.done = true;
    }

    fn end_with_error(&mut self, e: ApiError) {
        crate::telemetry::api_error(&self.span, &e);
        tracing::warn!(error = %e, session = %self.req.session, "stream ended with an error");
        push_json(&mut self.pending, &e.envelope());
        self.pending.extend_from_slice(DONE_EVENT);
        self.done = true;
    }

    fn on_event(&mut self, ev: Option<TurnEvent>) {
        // Entered for each event: the span's end is its last exit (the turn's last event).
        let _in_turn = self.span.clone().entered();
        self.claim.settle(ev.as_ref());
        let output = matches!(
            ev,
            Some(TurnEvent::TextDelta(_) | TurnEvent::ThinkingDelta(_))
        );
        if output && !self.first_token {
            self.first_token = true;
            first_token(&self.app, self.t0, &self.span);
        }
        match ev {
            Some(TurnEvent::ThinkingDelta(piece)) => self.thinking(&piece),
            Some(TurnEvent::ThinkingSignature(_)) => self.reasoning.close(),
            Some(TurnEvent::TextDelta(text)) => {
                self.reasoning.close();
                let text = self.answer.delta(text);
                if !text.is_empty() && !self.formatted() {
                    self.text(&text);
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
                // Under a response_format the answer is sent whole, once checked; otherwise
                // only the tail the output limit held back is still unsent.
                let (unsent, answer, reason) = if self.formatted() {
                    let full = self.answer.full(&r);
                    match crate::turns::tool_parking::formatted(&self.req, &full) {
                        Ok(json) => {
                            let json = json.unwrap_or_default();
                            (json.clone(), json, "stop")
                        }
                        Err(e) => return self.end_with_error(e),
                    }
                } else {
                    let reason = self.answer.finish_reason(&r);
                    (tail, self.answer.full(&r), reason)
                };
                if !unsent.is_empty() {
                    self.text(&unsent);
                }
                finished(&self.app, &self.req, &answer);
                self.finish(reason, Usage::from(r.usage));
            }
            Some(TurnEvent::ToolCalls(calls)) if self.req.tools.is_some() => {
                let calls = crate::turns::tool_parking::take_output(self.req.tools.as_mut(), calls);
                if calls.is_empty() {
                    return;
                }
                let tool_calls = crate::tools::wire::tool_calls(&calls)
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut c)| {
                        c["index"] = i.into();
                        c
                    })
                    .collect();
                self.chunk(
                    Delta {
                        tool_calls: Some(tool_calls),
                        ..Delta::default()
                    },
                    None,
                );
                crate::telemetry::tool_calls(&self.span, calls.iter().map(|c| openai_id(&c.id)));
                // The turn's usage comes with its final answer.
                self.finish("tool_calls", Usage::default());
                self.park = Some(calls);
            }
            Some(TurnEvent::Failed(e)) => self.end_with_error(e.into()),
            Some(TurnEvent::Started { .. } | TurnEvent::ToolCalls(_)) => {}
            None => self.end_with_error(TurnError::WorkerFailed("stream ended".into()).into()),
        }
    }
}

/// The SSE response, opened with the turn's `first` event when it came before the head was
/// sent. Every event that is ready when the connection can take more is written
/// in one frame (a burst of token deltas costs one write, not one per token); keep-alive
/// comments are sent after `server.sse_keepalive` without an event.
pub(super) fn sse(app: Arc<App>, started: Started) -> Response {
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
        id: req.id.clone(),
        req,
        events,
        pending: Vec::with_capacity(1024),
        done: false,
        created: unix_now(),
        t0,
        first_token: false,
        claim,
        answer,
        reasoning: Reasoning::default(),
        park: None,
        span,
    };
    st.chunk(
        Delta {
            role: Some("assistant"),
            content: Some(""),
            ..Delta::default()
        },
        None,
    );
    if let Some(ev) = first {
        st.on_event(Some(ev));
    }
    let body = stream::unfold(Some(st), move |st| async move {
        let mut st = st?;
        loop {
            if let Some(calls) = st.park.take() {
                // The response ends here; the turn waits for the tool results.
                let frame = Bytes::from(std::mem::take(&mut st.pending));
                let SseState {
                    app,
                    req,
                    events,
                    t0,
                    claim,
                    answer,
                    ..
                } = st;
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
                crate::turns::tool_parking::park(&app, started, &calls);
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
                () = tokio::time::sleep(keepalive) => st.pending.extend_from_slice(KEEPALIVE_COMMENT),
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
