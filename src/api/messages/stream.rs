//! A started turn streamed as the Messages API's named server-sent events: `message_start`,
//! each block's `content_block_start` / `content_block_delta` / `content_block_stop`,
//! `message_delta` with the usage, `message_stop`; `ping` during silence. After the head was
//! sent, a failure is an `event: error`. Dropping the body (client gone) drops the turn's
//! stream, which makes the pool interrupt the turn.

use std::sync::Arc;

use axum::response::Response;
use claude_pool_actors::{TurnEvent, Usage};

use super::outcome::{shown_usage, stop_reason};
use super::wire::errors::translate;
use super::wire::render::StopReason;
use super::wire::stream::StreamEncoder;
use crate::error::ApiError;
use crate::http::sse::{Frame, TurnRenderer};
use crate::state::App;
use crate::turns::{Started, finished};

struct SseState {
    app: Arc<App>,
    turn: Started,
    frame: Frame,
    encoder: StreamEncoder,
}

impl SseState {
    fn end_with_error(&mut self, e: ApiError) {
        crate::telemetry::api_error(&self.turn.span, &e);
        tracing::warn!(error = %e, session = %self.turn.req.session, "stream ended with an error");
        let (status, kind, code, message) = e.parts();
        let error = translate(status.as_u16(), code.or(Some(kind)), &message);
        StreamEncoder::error(&mut self.frame.bytes, error.kind, &error.message);
        self.frame.done = true;
    }

    fn on_event(&mut self, ev: TurnEvent) {
        match ev {
            TurnEvent::ThinkingDelta(piece) => {
                self.encoder.thinking(&mut self.frame.bytes, &piece);
            }
            TurnEvent::ThinkingSignature(sig) => {
                self.encoder.signature(&mut self.frame.bytes, &sig);
            }
            TurnEvent::TextDelta(piece) => {
                let text = self.turn.answer.delta(piece);
                if !text.is_empty() {
                    self.encoder.text(&mut self.frame.bytes, &text);
                }
            }
            TurnEvent::Completed(r) => {
                crate::telemetry::completed(&self.turn.span, &r);
                let tail = self.turn.answer.tail();
                if !tail.is_empty() {
                    self.encoder.text(&mut self.frame.bytes, &tail);
                }
                finished(&self.app, &self.turn.req, &self.turn.answer.full(&r));
                let stop = stop_reason(&self.turn.answer, &r);
                let usage = shown_usage(&self.turn.answer, &r);
                self.encoder.finish(&mut self.frame.bytes, &stop, &usage);
                self.frame.done = true;
            }
            TurnEvent::ToolCalls(calls) if self.turn.req.tools.is_some() => {
                let calls =
                    crate::turns::tool_parking::take_output(self.turn.req.tools.as_mut(), calls);
                if calls.is_empty() {
                    return;
                }
                for c in &calls {
                    self.encoder
                        .tool_use(&mut self.frame.bytes, &c.id, &c.name, &c.input);
                }
                crate::telemetry::tool_calls(&self.turn.span, calls.iter().map(|c| c.id.clone()));
                // The turn's usage comes with its final answer.
                self.encoder.finish(
                    &mut self.frame.bytes,
                    &StopReason::ToolUse,
                    &Usage::default(),
                );
                self.frame.done = true;
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
        StreamEncoder::ping(&mut self.frame.bytes);
    }
    fn into_turn(self) -> Started {
        self.turn
    }
}

/// The SSE response, opened with `message_start` (see [`crate::http::sse`]); a `ping` is sent
/// after `server.sse_keepalive` without an event.
pub(super) fn respond(app: Arc<App>, turn: Started, show_thinking: bool) -> Response {
    let mut st = SseState {
        app: app.clone(),
        encoder: StreamEncoder::new(show_thinking),
        turn,
        frame: Frame::default(),
    };
    let req = &st.turn.req;
    st.encoder.start(
        &mut st.frame.bytes,
        &req.id,
        &req.model_name,
        &Usage::default(),
    );
    crate::http::sse::respond(app, st)
}
