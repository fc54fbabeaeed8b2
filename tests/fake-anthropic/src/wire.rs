//! The Messages API's wire shapes for an [`Answer`]: the named server-sent events of a streamed
//! answer in the API's order, the JSON message of a non-streamed one, and the error envelope.
//! Everything is written as Python's `json.dumps` writes it (see [`crate::pyjson`]).

use serde::Serialize;
use serde_json::Value;

use crate::pyjson::{self, PyValue};
use crate::reply::{Answer, Body};

/// Text deltas carry this many characters each.
pub const CHUNK_CHARS: usize = 16;

/// `{"type": "error", "error": {"type": kind, "message": message}}`.
pub fn error_body(kind: &str, message: &str) -> String {
    #[derive(Serialize)]
    struct Detail<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        message: &'a str,
    }
    #[derive(Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        error: Detail<'a>,
    }
    pyjson::to_string(&Envelope {
        kind: "error",
        error: Detail { kind, message },
    })
}

/// The usage block of a message.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

/// A content block, as `content_block_start` opens it or a non-streamed message holds it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: PyValue,
    },
}

/// The increment of a `content_block_delta`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Delta {
    TextDelta { text: String },
    ThinkingDelta { thinking: String },
    SignatureDelta { signature: String },
    InputJsonDelta { partial_json: String },
}

/// A message: empty in `message_start`, complete when not streamed.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: Value,
    pub content: Vec<Block>,
    pub stop_reason: Option<&'static str>,
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

/// `message_delta.delta`.
#[derive(Debug, Clone, Serialize)]
pub struct StopDelta {
    pub stop_reason: &'static str,
    pub stop_sequence: Option<String>,
}

/// `message_delta.usage`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OutputUsage {
    pub output_tokens: u64,
}

/// One server-sent event of a streamed answer; its `type` is also the event's name.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    MessageStart {
        message: Message,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: StopDelta,
        usage: OutputUsage,
    },
    MessageStop,
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
        }
    }

    /// `event: <name>\ndata: <json>\n\n`.
    pub fn to_sse(&self) -> String {
        format!(
            "event: {}\ndata: {}\n\n",
            self.name(),
            pyjson::to_string(self)
        )
    }
}

/// An event of the stream and whether a `[[slow]]` answer pauses before sending it.
#[derive(Debug, Clone)]
pub struct Paced {
    pub pause_before: bool,
    pub event: Event,
}

impl Answer {
    fn usage(&self, output_tokens: u64) -> Usage {
        Usage {
            input_tokens: self.input_tokens,
            output_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
        }
    }

    fn message(&self, content: Vec<Block>, stop_reason: Option<&'static str>, out: u64) -> Message {
        Message {
            id: self.id.clone(),
            kind: "message",
            role: "assistant",
            model: self.model.clone(),
            content,
            stop_reason,
            stop_sequence: None,
            usage: self.usage(out),
        }
    }

    /// The non-streamed answer: one JSON message with its content and final usage.
    pub fn message_json(&self) -> String {
        let mut content = Vec::new();
        if let Some(t) = &self.thought {
            content.push(Block::Thinking {
                thinking: t.thinking.clone(),
                signature: t.signature.clone(),
            });
        }
        match &self.body {
            Body::Text(text) => content.push(Block::Text { text: text.clone() }),
            Body::ToolCalls(calls) => content.extend(calls.iter().map(|c| Block::ToolUse {
                id: c.id.clone(),
                name: c.name.clone(),
                input: c.input.clone(),
            })),
        }
        pyjson::to_string(&self.message(content, Some(self.stop_reason()), self.output_tokens))
    }

    /// The streamed answer's events in the API's order: `message_start`; per block
    /// `content_block_start`, its deltas, `content_block_stop`; `message_delta` with the stop
    /// reason and the output tokens; `message_stop`. Text comes in 16-character deltas, each
    /// after a pause when the answer is `[[slow]]`; tool inputs in one `input_json_delta`.
    pub fn events(&self) -> Vec<Paced> {
        let mut out = Vec::new();
        let mut push = |pause_before, event| {
            out.push(Paced {
                pause_before,
                event,
            })
        };
        // the input tokens at the start, one output token so far (the API's own shape)
        push(
            false,
            Event::MessageStart {
                message: self.message(Vec::new(), None, 1),
            },
        );
        let mut index = 0;
        if let Some(t) = &self.thought {
            push(
                false,
                Event::ContentBlockStart {
                    index,
                    content_block: Block::Thinking {
                        thinking: String::new(),
                        signature: String::new(),
                    },
                },
            );
            push(
                false,
                Event::ContentBlockDelta {
                    index,
                    delta: Delta::ThinkingDelta {
                        thinking: t.thinking.clone(),
                    },
                },
            );
            push(
                false,
                Event::ContentBlockDelta {
                    index,
                    delta: Delta::SignatureDelta {
                        signature: t.signature.clone(),
                    },
                },
            );
            push(false, Event::ContentBlockStop { index });
            index += 1;
        }
        match &self.body {
            Body::Text(text) => {
                push(
                    false,
                    Event::ContentBlockStart {
                        index,
                        content_block: Block::Text {
                            text: String::new(),
                        },
                    },
                );
                let chars: Vec<char> = text.chars().collect();
                for chunk in chars.chunks(CHUNK_CHARS) {
                    push(
                        self.slow,
                        Event::ContentBlockDelta {
                            index,
                            delta: Delta::TextDelta {
                                text: chunk.iter().collect(),
                            },
                        },
                    );
                }
            }
            Body::ToolCalls(calls) => {
                for (i, call) in calls.iter().enumerate() {
                    if i > 0 {
                        push(false, Event::ContentBlockStop { index: i - 1 });
                    }
                    push(
                        false,
                        Event::ContentBlockStart {
                            index: i,
                            content_block: Block::ToolUse {
                                id: call.id.clone(),
                                name: call.name.clone(),
                                input: PyValue::empty_object(),
                            },
                        },
                    );
                    push(
                        false,
                        Event::ContentBlockDelta {
                            index: i,
                            delta: Delta::InputJsonDelta {
                                partial_json: pyjson::to_string(&call.input),
                            },
                        },
                    );
                }
                index = calls.len().saturating_sub(1);
            }
        }
        push(false, Event::ContentBlockStop { index });
        push(
            false,
            Event::MessageDelta {
                delta: StopDelta {
                    stop_reason: self.stop_reason(),
                    stop_sequence: None,
                },
                usage: OutputUsage {
                    output_tokens: self.output_tokens,
                },
            },
        );
        push(false, Event::MessageStop);
        out
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
