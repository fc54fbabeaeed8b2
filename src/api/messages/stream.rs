//! A started turn streamed as the Messages API's named server-sent events: `message_start`,
//! each block's `content_block_start` / `content_block_delta` / `content_block_stop`,
//! `message_delta` with the usage, `message_stop`; `ping` during silence. After the head was
//! sent, a failure is an `event: error`. Dropping the body (client gone) drops the turn's
//! stream, which makes the pool interrupt the turn.

use std::sync::Arc;

use axum::response::Response;
use claude_pool_actors::{TurnError, TurnEvent, Usage};

use super::outcome::{shown_usage, stop_reason};
use super::wire::errors::translate;
use super::wire::render::StopReason;
use super::wire::stream::{Event, StreamEncoder, to_sse};
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
    fn push(&mut self, events: Vec<Event>) {
        for e in &events {
            self.frame.bytes.extend_from_slice(to_sse(e).as_bytes());
        }
    }

    fn end_with_error(&mut self, e: ApiError) {
        crate::telemetry::api_error(&self.turn.span, &e);
        tracing::warn!(error = %e, session = %self.turn.req.session, "stream ended with an error");
        let (status, kind, code, message) = e.parts();
        let error = translate(status.as_u16(), code.or(Some(kind)), &message);
        self.push(vec![StreamEncoder::error(error.kind, &error.message)]);
        self.frame.done = true;
    }

    fn on_event(&mut self, ev: Option<TurnEvent>) {
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
                let text = self.turn.answer.delta(piece);
                if !text.is_empty() {
                    let events = self.encoder.text(&text);
                    self.push(events);
                }
            }
            Some(TurnEvent::Completed(r)) => {
                crate::telemetry::completed(&self.turn.span, &r);
                let tail = self.turn.answer.tail();
                if !tail.is_empty() {
                    let events = self.encoder.text(&tail);
                    self.push(events);
                }
                finished(&self.app, &self.turn.req, &self.turn.answer.full(&r));
                let stop = stop_reason(&self.turn.answer, &r);
                let usage = shown_usage(&self.turn.answer, &r);
                let events = self.encoder.finish(&stop, &usage);
                self.push(events);
                self.frame.done = true;
            }
            Some(TurnEvent::ToolCalls(calls)) if self.turn.req.tools.is_some() => {
                let calls =
                    crate::turns::tool_parking::take_output(self.turn.req.tools.as_mut(), calls);
                if calls.is_empty() {
                    return;
                }
                for c in &calls {
                    let events = self.encoder.tool_use(&c.id, &c.name, &c.input);
                    self.push(events);
                }
                crate::telemetry::tool_calls(&self.turn.span, calls.iter().map(|c| c.id.clone()));
                // The turn's usage comes with its final answer.
                let events = self.encoder.finish(&StopReason::ToolUse, &Usage::default());
                self.push(events);
                self.frame.done = true;
                self.frame.park = Some(calls);
            }
            Some(TurnEvent::Failed(e)) => self.end_with_error(e.into()),
            Some(TurnEvent::Started { .. } | TurnEvent::ToolCalls(_)) => {}
            None => self.end_with_error(TurnError::WorkerFailed("stream ended".into()).into()),
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
    fn on_event(&mut self, ev: Option<TurnEvent>) {
        SseState::on_event(self, ev);
    }
    fn keepalive(&mut self) {
        self.push(vec![StreamEncoder::ping()]);
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
    let opening = st
        .encoder
        .start(&st.turn.req.id, &st.turn.req.model_name, &Usage::default());
    st.push(opening);
    crate::http::sse::respond(app, st)
}
