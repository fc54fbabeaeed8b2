//! A streamed answer as the API's named server-sent events, in its order:
//!
//! 1. `message_start`: the message with empty `content`, null `stop_reason`, the input usage;
//! 2. per block, `content_block_start` (the block, empty), `content_block_delta`s
//!    (`thinking_delta` and `signature_delta`, `text_delta`, `input_json_delta`),
//!    `content_block_stop`; indices count up from 0, one block open at a time;
//! 3. `message_delta`: `stop_reason`, `stop_sequence`, the cumulative usage;
//! 4. `message_stop`.
//!
//! `ping` may come anywhere; `error` replaces the rest of a stream that fails. [`StreamEncoder`]
//! takes the answer's pieces as they arrive and returns the events to send: it opens a block
//! when the kind of piece changes and closes the one before. Thinking pieces are dropped for
//! clients that did not ask for thinking (see [`super::request`]), and the blocks after them
//! are numbered as if they had never been.

use claude_pool_actors::Usage;
use serde_json::{Value, json};

use super::render::{OutBlock, StopReason, usage_json};

/// One event: its name (the SSE `event:` field) and its data (whose `type` is the name).
pub type Event = (&'static str, Value);

/// The block a streamed answer has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
}

/// The state of one streamed answer.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    show_thinking: bool,
    started: bool,
    finished: bool,
    open: Option<Open>,
    next_index: usize,
}

impl StreamEncoder {
    /// A new answer; thinking is streamed only with `show_thinking`.
    pub fn new(show_thinking: bool) -> Self {
        Self {
            show_thinking,
            started: false,
            finished: false,
            open: None,
            next_index: 0,
        }
    }

    /// `message_start`: first, once.
    pub fn start(&mut self, message_id: &str, model: &str, usage: &Usage) -> Vec<Event> {
        if self.started {
            return Vec::new();
        }
        self.started = true;
        vec![(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": message_id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": usage_json(usage),
            }}),
        )]
    }

    /// A piece of thinking.
    pub fn thinking(&mut self, delta: &str) -> Vec<Event> {
        if !self.show_thinking || delta.is_empty() || !self.accepts() {
            return Vec::new();
        }
        let mut out = self.ensure(Open::Thinking);
        out.push(self.delta(json!({"type": "thinking_delta", "thinking": delta})));
        out
    }

    /// The signature of the thinking so far (it ends the thinking block's deltas).
    pub fn signature(&mut self, signature: &str) -> Vec<Event> {
        if !self.show_thinking || !self.accepts() {
            return Vec::new();
        }
        let mut out = self.ensure(Open::Thinking);
        out.push(self.delta(json!({"type": "signature_delta", "signature": signature})));
        out
    }

    /// Redacted thinking: a block of its own, whole in its start.
    pub fn redacted_thinking(&mut self, data: &str) -> Vec<Event> {
        if !self.show_thinking || !self.accepts() {
            return Vec::new();
        }
        self.whole(json!({"type": "redacted_thinking", "data": data}), None)
    }

    /// A piece of text.
    pub fn text(&mut self, delta: &str) -> Vec<Event> {
        if delta.is_empty() || !self.accepts() {
            return Vec::new();
        }
        let mut out = self.ensure(Open::Text);
        out.push(self.delta(json!({"type": "text_delta", "text": delta})));
        out
    }

    /// A tool call, whole: its block starts with an empty input, which one `input_json_delta`
    /// fills; the block is closed at once.
    pub fn tool_use(&mut self, id: &str, name: &str, input: &Value) -> Vec<Event> {
        if !self.accepts() {
            return Vec::new();
        }
        let start = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
        let partial = json!({"type": "input_json_delta", "partial_json": input.to_string()});
        self.whole(start, Some(partial))
    }

    /// A whole block (a non-streamed piece of the answer).
    pub fn block(&mut self, block: &OutBlock) -> Vec<Event> {
        match block {
            OutBlock::Thinking {
                thinking,
                signature,
            } => {
                if !self.show_thinking {
                    return Vec::new();
                }
                let mut out = self.close();
                out.extend(self.thinking(thinking));
                out.extend(self.signature(signature));
                out.extend(self.close());
                out
            }
            OutBlock::RedactedThinking { data } => self.redacted_thinking(data),
            OutBlock::Text(text) => {
                let mut out = self.close();
                out.extend(self.text(text));
                out
            }
            OutBlock::ToolUse(call) => self.tool_use(&call.id, &call.name, &call.input),
        }
    }

    /// The end: the open block closed, `message_delta` with why it stopped and the usage,
    /// `message_stop`. Pieces after it are ignored.
    pub fn finish(&mut self, stop: &StopReason, usage: &Usage) -> Vec<Event> {
        if !self.accepts() {
            return Vec::new();
        }
        let mut out = self.close();
        self.finished = true;
        out.push((
            "message_delta",
            json!({"type": "message_delta",
                "delta": {"stop_reason": stop.as_str(), "stop_sequence": stop.stop_sequence()},
                "usage": usage_json(usage)}),
        ));
        out.push(("message_stop", json!({"type": "message_stop"})));
        out
    }

    /// True once [`StreamEncoder::finish`] has run.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// A keep-alive `ping`.
    pub fn ping() -> Event {
        ("ping", json!({"type": "ping"}))
    }

    /// An `error` event (`kind` is an error type of [`super::errors`], such as
    /// `overloaded_error`): the stream ends after it.
    pub fn error(kind: &str, message: &str) -> Event {
        (
            "error",
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        )
    }

    fn accepts(&self) -> bool {
        debug_assert!(
            self.started || self.finished,
            "a piece before message_start"
        );
        self.started && !self.finished
    }

    fn delta(&self, delta: Value) -> Event {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": self.next_index - 1, "delta": delta}),
        )
    }

    /// Closes the open block, if any.
    fn close(&mut self) -> Vec<Event> {
        match self.open.take() {
            Some(_) => vec![stop_event(self.next_index - 1)],
            None => Vec::new(),
        }
    }

    /// Opens a block of this kind unless one is open.
    fn ensure(&mut self, kind: Open) -> Vec<Event> {
        if self.open == Some(kind) {
            return Vec::new();
        }
        let mut out = self.close();
        let block = match kind {
            Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            Open::Text => json!({"type": "text", "text": ""}),
        };
        out.push(self.start_block(block));
        self.open = Some(kind);
        out
    }

    /// A block sent whole: start, one delta if any, stop.
    fn whole(&mut self, block: Value, delta: Option<Value>) -> Vec<Event> {
        let mut out = self.close();
        out.push(self.start_block(block));
        if let Some(delta) = delta {
            out.push(self.delta(delta));
        }
        out.push(stop_event(self.next_index - 1));
        out
    }

    fn start_block(&mut self, block: Value) -> Event {
        let index = self.next_index;
        self.next_index += 1;
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        )
    }
}

fn stop_event(index: usize) -> Event {
    (
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    )
}

/// One event as server-sent-event text: `event: <name>\ndata: <json>\n\n`.
pub fn to_sse((name, data): &Event) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
