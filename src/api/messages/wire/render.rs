//! A complete answer as the API's `message` object (a non-streamed reply; also what a
//! streamed one adds up to):
//!
//! ```json
//! {"id": "msg_...", "type": "message", "role": "assistant", "model": "...",
//!  "content": [{"type": "thinking", "thinking": "...", "signature": "..."},
//!              {"type": "text", "text": "..."},
//!              {"type": "tool_use", "id": "toolu_...", "name": "...", "input": {...}}],
//!  "stop_reason": "tool_use", "stop_sequence": null,
//!  "usage": {"input_tokens": 12, "output_tokens": 5, "cache_creation_input_tokens": 0,
//!            "cache_read_input_tokens": 0}}
//! ```
//!
//! Tool call ids are the CLI's own (`toolu_...`): a client sends them back in `tool_result`
//! blocks as they are.

use claude_pool_actors::{ToolCall, Usage};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// It finished (`end_turn`).
    EndTurn,
    /// `max_tokens` was reached.
    MaxTokens,
    /// One of the request's `stop_sequences` (this one) was reached.
    StopSequence(String),
    /// It called tools (`tool_use`): their results are the next request.
    ToolUse,
    /// It declined (`refusal`).
    Refusal,
}

impl StopReason {
    /// The `stop_reason` string.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::EndTurn => "end_turn",
            Self::MaxTokens => "max_tokens",
            Self::StopSequence(_) => "stop_sequence",
            Self::ToolUse => "tool_use",
            Self::Refusal => "refusal",
        }
    }

    /// The `stop_sequence`: the sequence reached, if that is why it stopped.
    pub fn stop_sequence(&self) -> Option<&str> {
        match self {
            Self::StopSequence(s) => Some(s),
            _ => None,
        }
    }

    /// A `stop_reason` as the API (and so the CLI) reports it; `sequence` is the matched stop
    /// sequence. `pause_turn` and unknown reasons read as `end_turn`.
    pub fn from_wire(reason: &str, sequence: Option<&str>) -> Self {
        match reason {
            "max_tokens" | "model_context_window_exceeded" => Self::MaxTokens,
            "stop_sequence" => Self::StopSequence(sequence.unwrap_or_default().to_owned()),
            "tool_use" => Self::ToolUse,
            "refusal" => Self::Refusal,
            _ => Self::EndTurn,
        }
    }
}

/// One block of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum OutBlock {
    /// The model's thinking, with the signature that lets it be sent back.
    Thinking {
        /// The thinking text.
        thinking: String,
        /// Its signature.
        signature: String,
    },
    /// Thinking the API returns encrypted.
    RedactedThinking {
        /// The encrypted data.
        data: String,
    },
    /// Text.
    Text(String),
    /// A tool call (the CLI's id, the tool's name without the bridge's prefix, its input).
    ToolUse(ToolCall),
}

impl OutBlock {
    /// True for thinking and redacted thinking.
    pub fn is_thinking(&self) -> bool {
        matches!(self, Self::Thinking { .. } | Self::RedactedThinking { .. })
    }

    /// The block as the API writes it in a `message`'s `content`.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Thinking {
                thinking,
                signature,
            } => json!({"type": "thinking", "thinking": thinking, "signature": signature}),
            Self::RedactedThinking { data } => json!({"type": "redacted_thinking", "data": data}),
            Self::Text(text) => json!({"type": "text", "text": text}),
            Self::ToolUse(call) => json!({
                "type": "tool_use", "id": call.id, "name": call.name, "input": call.input,
            }),
        }
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Its id ([`message_id`]).
    pub id: String,
    /// The model, as the client named it.
    pub model: String,
    /// Its blocks, in order.
    pub content: Vec<OutBlock>,
    /// Why it stopped.
    pub stop: StopReason,
    /// Its usage.
    pub usage: Usage,
}

impl Reply {
    /// The `message` object; thinking blocks only when `show_thinking` (the client asked for
    /// thinking, see [`super::request::Thinking::requested`]).
    pub fn to_json(&self, show_thinking: bool) -> Value {
        let content: Vec<Value> = self
            .content
            .iter()
            .filter(|b| show_thinking || !b.is_thinking())
            .map(OutBlock::to_json)
            .collect();
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop.as_str(),
            "stop_sequence": self.stop.stop_sequence(),
            "usage": usage_json(&self.usage),
        })
    }
}

/// `usage` as the API writes it.
pub fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": usage.output_tokens,
    })
}

/// A new message id: `msg_` and 24 random letters and digits, as the API's look.
pub fn message_id() -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("msg_{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> Usage {
        Usage {
            input_tokens: 12,
            output_tokens: 5,
            cache_creation_input_tokens: 3,
            cache_read_input_tokens: 4,
        }
    }

    #[test]
    fn a_reply_renders_as_the_api_message() {
        let reply = Reply {
            id: "msg_1".into(),
            model: "claude-sonnet-4-5".into(),
            content: vec![
                OutBlock::Thinking {
                    thinking: "hmm".into(),
                    signature: "sig".into(),
                },
                OutBlock::Text("Let me check.".into()),
                OutBlock::ToolUse(ToolCall {
                    id: "toolu_01".into(),
                    name: "get_weather".into(),
                    input: json!({"city": "Paris"}),
                }),
            ],
            stop: StopReason::ToolUse,
            usage: usage(),
        };
        assert_eq!(
            reply.to_json(true),
            json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 12, "cache_creation_input_tokens": 3,
                    "cache_read_input_tokens": 4, "output_tokens": 5},
            })
        );
        let plain = reply.to_json(false);
        assert_eq!(plain["content"].as_array().unwrap().len(), 2);
        assert_eq!(plain["content"][0]["type"], "text");
    }

    #[test]
    fn stop_reasons_and_sequences() {
        let stopped = Reply {
            id: "msg_2".into(),
            model: "m".into(),
            content: vec![
                OutBlock::RedactedThinking { data: "x".into() },
                OutBlock::Text("a".into()),
            ],
            stop: StopReason::StopSequence("END".into()),
            usage: Usage::default(),
        };
        let v = stopped.to_json(true);
        assert_eq!(v["stop_reason"], "stop_sequence");
        assert_eq!(v["stop_sequence"], "END");
        assert_eq!(
            v["content"][0],
            json!({"type": "redacted_thinking", "data": "x"})
        );
        for (reason, want) in [
            (StopReason::EndTurn, "end_turn"),
            (StopReason::MaxTokens, "max_tokens"),
            (StopReason::ToolUse, "tool_use"),
            (StopReason::Refusal, "refusal"),
        ] {
            assert_eq!(reason.as_str(), want);
            assert_eq!(reason.stop_sequence(), None);
            assert_eq!(StopReason::from_wire(want, None), reason);
        }
        assert_eq!(
            StopReason::from_wire("stop_sequence", Some("END")),
            StopReason::StopSequence("END".into())
        );
        assert_eq!(
            StopReason::from_wire("pause_turn", None),
            StopReason::EndTurn
        );
    }

    #[test]
    fn message_ids_look_like_the_apis() {
        let a = message_id();
        assert_eq!(a.len(), 4 + 24);
        assert!(a.starts_with("msg_"));
        assert!(a[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, message_id());
    }
}
