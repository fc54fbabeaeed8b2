//! A response as typed Server-Sent Events (`event: <type>` + `data:` with a
//! `sequence_number`): `response.created`, `response.in_progress`, the output items' events
//! ([`super::output`]: the model's thinking as a `reasoning` item, then the message), and
//! `response.completed` (or `response.incomplete`, `response.failed`). A completed response is
//! stored before its last event goes out, so the client's next request may continue it on any
//! replica.

use std::sync::Arc;

use axum::response::Response;
use claude_pool_actors::{TurnEvent, TurnResult};
use serde_json::{Value, json};

use super::finish::{outcome_of, store};
use super::output::Output;
use super::wire::{Head, Outcome, response_object};
use crate::conversation::Msg;
use crate::error::ApiError;
use crate::http::sse::{Frame, TurnRenderer};
use crate::openai::Usage;
use crate::state::App;
use crate::turns::output_limit::OutputLimit;
use crate::turns::{Started, finished};

/// A completed response, to store before its last event is sent.
struct ToStore {
    /// The conversation's messages before it.
    before: Vec<Msg>,
    /// Its answer.
    text: String,
    /// The response object.
    object: Value,
    /// The last event's kind.
    kind: &'static str,
}

/// The stream's state: typed events with sequence numbers.
struct Sse {
    app: Arc<App>,
    started: Started,
    head: Head,
    output: Output,
    before: Option<Vec<Msg>>,
    seq: u64,
    frame: Frame,
    to_store: Option<ToStore>,
}

impl Sse {
    fn event(&mut self, kind: &str, mut body: Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        let bytes = &mut self.frame.bytes;
        bytes.extend_from_slice(format!("event: {kind}\ndata: ").as_bytes());
        if serde_json::to_writer(&mut *bytes, &body).is_err() {
            tracing::error!("response event encoding failed");
        }
        bytes.extend_from_slice(b"\n\n");
    }

    /// The output items' events made since the last call.
    fn flush_output(&mut self) {
        for (kind, body) in self.output.take_events() {
            self.event(kind, body);
        }
    }

    fn opening(&mut self) {
        let r = response_object(&self.head, &Outcome::InProgress, &[], None);
        self.event("response.created", json!({"response": r}));
        self.event("response.in_progress", json!({"response": r}));
    }

    fn on_event(&mut self, ev: TurnEvent) {
        match ev {
            TurnEvent::TextDelta(piece) => {
                let delta = self.started.answer.delta(piece);
                self.output.text(&delta);
            }
            TurnEvent::ThinkingDelta(piece) => self.output.thinking(&piece),
            TurnEvent::ThinkingSignature(_) => self.output.signature(),
            TurnEvent::Completed(r) => self.closing(&r),
            TurnEvent::Failed(e) => self.fail(e.into()),
            TurnEvent::Started { .. } | TurnEvent::ToolCalls(_) => {}
        }
        self.flush_output();
    }

    fn closing(&mut self, r: &TurnResult) {
        crate::telemetry::completed(&self.started.span, r);
        let tail = self.started.answer.tail();
        let text = self.started.answer.full(r);
        finished(&self.app, &self.started.req, &text);
        let items = self.output.finish(&tail, &text);
        let cut = self
            .started
            .answer
            .limit
            .as_ref()
            .and_then(OutputLimit::cut);
        let outcome = outcome_of(cut);
        let usage = Usage::from(r.usage);
        let object = response_object(&self.head, &outcome, &items, Some(&usage));
        let kind = match outcome {
            Outcome::Incomplete => "response.incomplete",
            _ => "response.completed",
        };
        // Stored before this last event goes out (see `before_end`).
        self.to_store = Some(ToStore {
            before: self.before.take().unwrap_or_default(),
            text,
            object,
            kind,
        });
        self.frame.done = true;
    }

    fn fail(&mut self, e: ApiError) {
        crate::telemetry::api_error(&self.started.span, &e);
        tracing::warn!(error = %e, session = %self.started.req.session, "response stream ended with an error");
        let (_, _, code, message) = e.parts();
        let error = json!({"code": code.unwrap_or("server_error"), "message": message});
        let object = response_object(&self.head, &Outcome::Failed(error), &[], None);
        self.event("response.failed", json!({"response": object}));
        self.frame.done = true;
    }
}

impl TurnRenderer for Sse {
    fn turn(&mut self) -> &mut Started {
        &mut self.started
    }
    fn frame(&mut self) -> &mut Frame {
        &mut self.frame
    }
    fn on_event(&mut self, ev: TurnEvent) {
        Sse::on_event(self, ev);
    }
    fn keepalive(&mut self) {
        self.frame.bytes.extend_from_slice(b": keep-alive\n\n");
    }
    fn into_turn(self) -> Started {
        self.started
    }
    /// Stores a completed response, then writes its last event.
    async fn before_end(&mut self) {
        if let Some(s) = self.to_store.take() {
            store(&self.app, &self.started.req, s.before, &s.text, &s.object).await;
            self.event(s.kind, json!({"response": s.object}));
        }
    }
}

/// The response's event stream; `before` is the conversation's messages before it (see
/// [`crate::http::sse`]).
pub(super) fn sse(app: Arc<App>, started: Started, head: Head, before: Vec<Msg>) -> Response {
    let output = Output::new(&head.message_id, true);
    let mut st = Sse {
        app: app.clone(),
        started,
        head,
        output,
        before: Some(before),
        seq: 0,
        frame: Frame::default(),
        to_store: None,
    };
    st.opening();
    crate::http::sse::respond(app, st)
}
