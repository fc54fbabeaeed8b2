//! A started turn answered as an OpenAI chat completion: one JSON body, or Server-Sent Events
//! (`chat.completion.chunk`s, then `data: [DONE]`). After content started, failures are sent
//! in-band as an OpenAI error event followed by `[DONE]`. Dropping the response body (client
//! gone) drops the turn's stream, which makes the pool interrupt the turn.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{TurnError, TurnEvent, TurnStream};
use futures_util::stream;
use tracing::Instrument;

use crate::error::ApiError;
use crate::http::headers::with_session;
use crate::openai::{ChatChunk, ChatCompletion, Choice, Delta, ResponseMessage, Usage, unix_now};
use crate::state::App;
use crate::tools::wire::openai_id;
use crate::turns::answer::Answer;
use crate::turns::{Claim, Started, TurnRequest, finished, note_failure, start};

/// Runs the turn and answers it as a chat completion.
pub(crate) async fn respond(app: Arc<App>, req: TurnRequest) -> Result<Response, ApiError> {
    let started = start(&app, req).await?;
    render(app, started).await
}

/// Answers a started turn (or the rest of a parked one) as a chat completion.
pub(crate) async fn render(app: Arc<App>, started: Started) -> Result<Response, ApiError> {
    let session = started.req.session.clone();
    if started.req.stream {
        return Ok(with_session(sse(app, started), &session));
    }
    let Started {
        req,
        events,
        t0,
        claim,
        answer,
        span,
        ..
    } = started;
    let with_key_credential = req.caller.oauth_token.is_some();
    let resp = {
        let answered = json(app.clone(), req, events, t0, claim, answer, span.clone())
            .instrument(span.clone())
            .await;
        if let Err(e) = &answered {
            crate::telemetry::api_error(&span, e);
        }
        match answered {
            Ok(body) => body.into_response(),
            Err(e) => {
                note_failure(&app, with_key_credential, &e);
                return Err(e);
            }
        }
    };
    Ok(with_session(resp, &session))
}

async fn json(
    app: Arc<App>,
    mut req: TurnRequest,
    mut events: TurnStream,
    t0: Instant,
    mut claim: Claim,
    mut answer: Answer,
    span: tracing::Span,
) -> Result<Json<ChatCompletion>, ApiError> {
    let mut first = true;
    // The text before tool calls, if the model calls tools.
    let mut so_far = String::new();
    let result = loop {
        let ev = events.recv().await;
        claim.settle(ev.as_ref());
        match ev {
            Some(TurnEvent::TextDelta(piece)) => {
                if first {
                    first = false;
                    app.metrics.observe_ttft(t0.elapsed().as_secs_f64());
                    crate::http::access::first_token(t0.elapsed());
                    crate::telemetry::first_token(&span, t0.elapsed());
                }
                so_far.push_str(&answer.delta(piece));
            }
            Some(TurnEvent::ToolCalls(calls)) if req.tools.is_some() => {
                let calls = crate::turns::tool_parking::take_output(req.tools.as_mut(), calls);
                if calls.is_empty() {
                    continue;
                }
                let content = Some(so_far).filter(|t| !t.is_empty());
                let body = tool_calls_completion(&req, content, &calls);
                crate::telemetry::tool_calls(&span, calls.iter().map(|c| openai_id(&c.id)));
                // The turn's span ends with this answer; its rest has the continuation's.
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
                return Ok(Json(body));
            }
            Some(TurnEvent::Completed(r)) => break r,
            Some(TurnEvent::Failed(e)) => return Err(e.into()),
            Some(_) => {}
            None => return Err(TurnError::WorkerFailed("stream ended".into()).into()),
        }
    };
    crate::telemetry::completed(
        &span,
        result.usage.prompt_tokens(),
        result.usage.output_tokens,
        result.cost_usd,
    );
    answer.tail();
    let mut content = answer.full(&result);
    if let Some(json) = crate::turns::tool_parking::formatted(&req, &content)? {
        content = json;
    }
    finished(&app, &req, &content);
    Ok(Json(ChatCompletion {
        id: req.id.clone(),
        object: "chat.completion",
        created: unix_now(),
        model: req.model_name.clone(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content: Some(content),
                refusal: None,
                tool_calls: None,
            },
            finish_reason: answer.finish_reason(&result),
            logprobs: None,
        }],
        usage: Usage::from(result.usage),
        system_fingerprint: None,
    }))
}

/// A completion that ends with the model's tool calls (`finish_reason: "tool_calls"`); the
/// turn's usage comes with its final answer.
fn tool_calls_completion(
    req: &TurnRequest,
    content: Option<String>,
    calls: &[claude_pool_actors::ToolCall],
) -> ChatCompletion {
    ChatCompletion {
        id: req.id.clone(),
        object: "chat.completion",
        created: unix_now(),
        model: req.model_name.clone(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content,
                refusal: None,
                tool_calls: Some(crate::tools::wire::tool_calls(calls)),
            },
            finish_reason: "tool_calls",
            logprobs: None,
        }],
        usage: Usage::default(),
        system_fingerprint: None,
    }
}

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
                role: None,
                content: Some(text),
                tool_calls: None,
            },
            None,
        );
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
        match ev {
            Some(TurnEvent::TextDelta(text)) => {
                if !self.first_token {
                    self.first_token = true;
                    self.app
                        .metrics
                        .observe_ttft(self.t0.elapsed().as_secs_f64());
                    crate::http::access::first_token(self.t0.elapsed());
                    crate::telemetry::first_token(&self.span, self.t0.elapsed());
                }
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
                        role: None,
                        content: None,
                        tool_calls: Some(tool_calls),
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
            Some(TurnEvent::ThinkingDelta(_) | TurnEvent::ThinkingSignature(_)) => {}
            None => self.end_with_error(TurnError::WorkerFailed("stream ended".into()).into()),
        }
    }
}

/// The SSE response, opened with the turn's `first` event when it came before the head was
/// sent. Every event that is ready when the connection can take more is written
/// in one frame (a burst of token deltas costs one write, not one per token); keep-alive
/// comments are sent after `server.sse_keepalive` without an event.
fn sse(app: Arc<App>, started: Started) -> Response {
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
        park: None,
        span,
    };
    st.chunk(
        Delta {
            role: Some("assistant"),
            content: Some(""),
            tool_calls: None,
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
