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
//! takes the answer's pieces as they arrive and appends the events to send, as SSE text, to the
//! caller's buffer: it opens a block when the kind of piece changes and closes the one before.
//! Each event's data is a typed value ([`Data`]) written straight into the buffer. Thinking pieces are dropped for
//! clients that did not ask for thinking (see [`super::request`]), and the blocks after them
//! are numbered as if they had never been.

use claude_pool_actors::Usage;
use serde::Serialize;
use serde_json::Value;

use super::render::{OutBlock, StopReason};

/// An event's data; its `type` is also the event's name.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Data<'a> {
    /// The message, before any content.
    MessageStart {
        /// The message so far.
        message: MessageHead<'a>,
    },
    /// A block opens.
    ContentBlockStart {
        /// Its index.
        index: usize,
        /// The block, empty.
        content_block: BlockStart<'a>,
    },
    /// A piece of the open block.
    ContentBlockDelta {
        /// The block's index.
        index: usize,
        /// The piece.
        delta: BlockDelta<'a>,
    },
    /// A block closes.
    ContentBlockStop {
        /// Its index.
        index: usize,
    },
    /// Why the message stopped, and its usage.
    MessageDelta {
        /// The stop.
        delta: StopDelta<'a>,
        /// The cumulative usage.
        usage: WireUsage,
    },
    /// The end.
    MessageStop,
    /// A keep-alive.
    Ping,
    /// A failure after the head was sent; the stream ends.
    Error {
        /// The error's type and message.
        error: ErrorBody<'a>,
    },
}

impl Data<'_> {
    /// The event's name (the SSE `event:` field).
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
        }
    }

    /// Appends the event as SSE text: `event: <name>\ndata: <json>\n\n`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(self.name().as_bytes());
        out.extend_from_slice(b"\ndata: ");
        match serde_json::to_writer(&mut *out, self) {
            Ok(()) => out.extend_from_slice(b"\n\n"),
            Err(e) => tracing::error!(error = %e, "message event encoding failed"),
        }
    }
}

/// `message_start`'s message: no content yet, no stop reason.
#[derive(Debug, Serialize)]
pub struct MessageHead<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: WireUsage,
}

/// A block as it opens.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockStart<'a> {
    /// Thinking, filled by its deltas.
    Thinking {
        /// Empty.
        thinking: &'static str,
        /// Empty until its `signature_delta`.
        signature: &'static str,
    },
    /// Text, filled by its deltas.
    Text {
        /// Empty.
        text: &'static str,
    },
    /// Redacted thinking, whole.
    RedactedThinking {
        /// The encrypted data.
        data: &'a str,
    },
    /// A tool call with an empty input, which one `input_json_delta` fills.
    ToolUse {
        /// The call's id.
        id: &'a str,
        /// The tool.
        name: &'a str,
        /// `{}`.
        input: EmptyObject,
    },
}

/// `{}`.
#[derive(Debug, Serialize)]
pub struct EmptyObject {}

/// A piece of a block.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta<'a> {
    /// Thinking text.
    ThinkingDelta {
        /// The piece.
        thinking: &'a str,
    },
    /// The thinking's signature.
    SignatureDelta {
        /// The signature.
        signature: &'a str,
    },
    /// Answer text.
    TextDelta {
        /// The piece.
        text: &'a str,
    },
    /// A tool call's input as JSON text.
    InputJsonDelta {
        /// The JSON text.
        partial_json: String,
    },
}

/// `message_delta`'s stop.
#[derive(Debug, Serialize)]
pub struct StopDelta<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

/// An `error` event's error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// The usage as the API shows it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WireUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

impl From<&Usage> for WireUsage {
    fn from(u: &Usage) -> Self {
        Self {
            input_tokens: u.input_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            output_tokens: u.output_tokens,
        }
    }
}

/// The block a streamed answer has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking,
    Text,
}

/// The state of one streamed answer. Each method appends its events to `out`.
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
    pub fn start(&mut self, out: &mut Vec<u8>, message_id: &str, model: &str, usage: &Usage) {
        if self.started {
            return;
        }
        self.started = true;
        let message = MessageHead {
            id: message_id,
            kind: "message",
            role: "assistant",
            model,
            content: [],
            stop_reason: None,
            stop_sequence: None,
            usage: usage.into(),
        };
        Data::MessageStart { message }.write_to(out);
    }

    /// A piece of thinking.
    pub fn thinking(&mut self, out: &mut Vec<u8>, delta: &str) {
        if !self.show_thinking || delta.is_empty() || !self.accepts() {
            return;
        }
        self.ensure(out, Open::Thinking);
        self.delta(out, BlockDelta::ThinkingDelta { thinking: delta });
    }

    /// The signature of the thinking so far (it ends the thinking block's deltas).
    pub fn signature(&mut self, out: &mut Vec<u8>, signature: &str) {
        if !self.show_thinking || !self.accepts() {
            return;
        }
        self.ensure(out, Open::Thinking);
        self.delta(out, BlockDelta::SignatureDelta { signature });
    }

    /// Redacted thinking: a block of its own, whole in its start.
    pub fn redacted_thinking(&mut self, out: &mut Vec<u8>, data: &str) {
        if !self.show_thinking || !self.accepts() {
            return;
        }
        self.whole(out, BlockStart::RedactedThinking { data }, None);
    }

    /// A piece of text.
    pub fn text(&mut self, out: &mut Vec<u8>, delta: &str) {
        if delta.is_empty() || !self.accepts() {
            return;
        }
        self.ensure(out, Open::Text);
        self.delta(out, BlockDelta::TextDelta { text: delta });
    }

    /// A tool call, whole: its block starts with an empty input, which one `input_json_delta`
    /// fills; the block is closed at once.
    pub fn tool_use(&mut self, out: &mut Vec<u8>, id: &str, name: &str, input: &Value) {
        if !self.accepts() {
            return;
        }
        let start = BlockStart::ToolUse {
            id,
            name,
            input: EmptyObject {},
        };
        let partial = BlockDelta::InputJsonDelta {
            partial_json: input.to_string(),
        };
        self.whole(out, start, Some(partial));
    }

    /// A whole block (a non-streamed piece of the answer).
    pub fn block(&mut self, out: &mut Vec<u8>, block: &OutBlock) {
        match block {
            OutBlock::Thinking {
                thinking,
                signature,
            } => {
                if !self.show_thinking {
                    return;
                }
                self.close(out);
                self.thinking(out, thinking);
                self.signature(out, signature);
                self.close(out);
            }
            OutBlock::RedactedThinking { data } => self.redacted_thinking(out, data),
            OutBlock::Text(text) => {
                self.close(out);
                self.text(out, text);
            }
            OutBlock::ToolUse(call) => self.tool_use(out, &call.id, &call.name, &call.input),
        }
    }

    /// The end: the open block closed, `message_delta` with why it stopped and the usage,
    /// `message_stop`. Pieces after it are ignored.
    pub fn finish(&mut self, out: &mut Vec<u8>, stop: &StopReason, usage: &Usage) {
        if !self.accepts() {
            return;
        }
        self.close(out);
        self.finished = true;
        let delta = StopDelta {
            stop_reason: stop.as_str(),
            stop_sequence: stop.stop_sequence(),
        };
        Data::MessageDelta {
            delta,
            usage: usage.into(),
        }
        .write_to(out);
        Data::MessageStop.write_to(out);
    }

    /// True once [`StreamEncoder::finish`] has run.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// A keep-alive `ping`.
    pub fn ping(out: &mut Vec<u8>) {
        Data::Ping.write_to(out);
    }

    /// An `error` event (`kind` is an error type of [`super::errors`], such as
    /// `overloaded_error`): the stream ends after it.
    pub fn error(out: &mut Vec<u8>, kind: &str, message: &str) {
        Data::Error {
            error: ErrorBody { kind, message },
        }
        .write_to(out);
    }

    fn accepts(&self) -> bool {
        debug_assert!(
            self.started || self.finished,
            "a piece before message_start"
        );
        self.started && !self.finished
    }

    fn delta(&self, out: &mut Vec<u8>, delta: BlockDelta<'_>) {
        let index = self.next_index - 1;
        Data::ContentBlockDelta { index, delta }.write_to(out);
    }

    /// Closes the open block, if any.
    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            stop_block(out, self.next_index - 1);
        }
    }

    /// Opens a block of this kind unless one is open.
    fn ensure(&mut self, out: &mut Vec<u8>, kind: Open) {
        if self.open == Some(kind) {
            return;
        }
        self.close(out);
        let block = match kind {
            Open::Thinking => BlockStart::Thinking {
                thinking: "",
                signature: "",
            },
            Open::Text => BlockStart::Text { text: "" },
        };
        self.start_block(out, block);
        self.open = Some(kind);
    }

    /// A block sent whole: start, one delta if any, stop.
    fn whole(&mut self, out: &mut Vec<u8>, block: BlockStart<'_>, delta: Option<BlockDelta<'_>>) {
        self.close(out);
        self.start_block(out, block);
        if let Some(delta) = delta {
            self.delta(out, delta);
        }
        stop_block(out, self.next_index - 1);
    }

    fn start_block(&mut self, out: &mut Vec<u8>, content_block: BlockStart<'_>) {
        let index = self.next_index;
        self.next_index += 1;
        Data::ContentBlockStart {
            index,
            content_block,
        }
        .write_to(out);
    }
}

fn stop_block(out: &mut Vec<u8>, index: usize) {
    Data::ContentBlockStop { index }.write_to(out);
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
