//! A started turn answered as Server-Sent Events: `chat.completion.chunk`s, then
//! `data: [DONE]`. The model's thinking streams as `delta.reasoning_content` before the text's
//! `delta.content`. After content started, failures are sent in-band as an OpenAI error event
//! followed by `[DONE]`. Dropping the response body (client gone) drops the turn's stream,
//! which makes the pool interrupt the turn.

use std::sync::Arc;

use axum::response::Response;
use claude_pool_actors::TurnEvent;

use crate::api::reasoning::Reasoning;
use crate::error::ApiError;
use crate::http::sse::{Frame, TurnRenderer};
use crate::openai::{ChatChunk, Delta, Usage, unix_now};
use crate::state::App;
use crate::tools::wire::openai_id;
use crate::turns::{Started, finished};

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
    turn: Started,
    frame: Frame,
    id: String,
    created: u64,
    /// The model's thinking so far.
    reasoning: Reasoning,
}

impl SseState {
    /// True under a `response_format`: the answer is sent whole, once checked.
    fn formatted(&self) -> bool {
        self.turn
            .req
            .tools
            .as_ref()
            .is_some_and(|t| t.request.output.is_some())
    }

    fn chunk(&mut self, delta: Delta<'_>, finish: Option<&'static str>) {
        let c = ChatChunk::delta(
            &self.id,
            self.created,
            &self.turn.req.model_name,
            delta,
            finish,
        );
        push_json(&mut self.frame.bytes, &c);
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
        if self.turn.req.include_usage {
            let u = ChatChunk::usage(&self.id, self.created, &self.turn.req.model_name, usage);
            push_json(&mut self.frame.bytes, &u);
        }
        self.frame.bytes.extend_from_slice(DONE_EVENT);
        self.frame.done = true;
    }

    fn end_with_error(&mut self, e: ApiError) {
        crate::telemetry::api_error(&self.turn.span, &e);
        tracing::warn!(error = %e, session = %self.turn.req.session, "stream ended with an error");
        push_json(&mut self.frame.bytes, &e.envelope());
        self.frame.bytes.extend_from_slice(DONE_EVENT);
        self.frame.done = true;
    }

    fn on_event(&mut self, ev: TurnEvent) {
        match ev {
            TurnEvent::ThinkingDelta(piece) => self.thinking(&piece),
            TurnEvent::ThinkingSignature(_) => self.reasoning.close(),
            TurnEvent::TextDelta(text) => {
                self.reasoning.close();
                let text = self.turn.answer.delta(text);
                if !text.is_empty() && !self.formatted() {
                    self.text(&text);
                }
            }
            TurnEvent::Completed(r) => {
                crate::telemetry::completed(&self.turn.span, &r);
                let tail = self.turn.answer.tail();
                // Under a response_format the answer is sent whole, once checked; otherwise
                // only the tail the output limit held back is still unsent.
                let (unsent, answer, reason) = if self.formatted() {
                    let full = self.turn.answer.full(&r);
                    match crate::turns::tool_parking::formatted(&self.turn.req, &full) {
                        Ok(json) => {
                            let json = json.unwrap_or_default();
                            (json.clone(), json, "stop")
                        }
                        Err(e) => return self.end_with_error(e),
                    }
                } else {
                    let reason = self.turn.answer.finish_reason(&r);
                    (tail, self.turn.answer.full(&r), reason)
                };
                if !unsent.is_empty() {
                    self.text(&unsent);
                }
                finished(&self.app, &self.turn.req, &answer);
                self.finish(reason, Usage::from(r.usage));
            }
            TurnEvent::ToolCalls(calls) if self.turn.req.tools.is_some() => {
                let calls =
                    crate::turns::tool_parking::take_output(self.turn.req.tools.as_mut(), calls);
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
                crate::telemetry::tool_calls(
                    &self.turn.span,
                    calls.iter().map(|c| openai_id(&c.id)),
                );
                // The turn's usage comes with its final answer.
                self.finish("tool_calls", Usage::default());
                self.frame.park = Some(calls);
            }
            TurnEvent::Failed(e) => self.end_with_error(e.into()),
            TurnEvent::Started { .. } | TurnEvent::ToolCalls(_) => {}
        }
    }
}

impl TurnRenderer for SseState {
    fn turn(&mut self) -> &mut Started {
        &mut self.turn
    }
    fn frame(&mut self) -> &mut Frame {
        &mut self.frame
    }
    fn on_event(&mut self, ev: TurnEvent) {
        SseState::on_event(self, ev);
    }
    fn keepalive(&mut self) {
        self.frame.bytes.extend_from_slice(KEEPALIVE_COMMENT);
    }
    fn into_turn(self) -> Started {
        self.turn
    }
}

/// The SSE response, opened with the assistant's role (see [`crate::http::sse`]).
pub(super) fn sse(app: Arc<App>, turn: Started) -> Response {
    let mut st = SseState {
        app: app.clone(),
        id: turn.req.id.clone(),
        turn,
        frame: Frame::default(),
        created: unix_now(),
        reasoning: Reasoning::default(),
    };
    st.chunk(
        Delta {
            role: Some("assistant"),
            content: Some(""),
            ..Delta::default()
        },
        None,
    );
    crate::http::sse::respond(app, st)
}
