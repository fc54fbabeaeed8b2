//! The CLI's stream-json protocol: the lines we write to its stdin and the lines it prints on
//! stdout (the stdin lines are built in `input`). Pure data and parsing, no I/O.
//!
//! Parsing is on the hot path (one line per streamed token), so lines are deserialized straight
//! into small borrowed structs that name only the fields we use; everything else is skipped.
//! Unknown line types are tolerated ([`CliEvent::Unknown`]); only a line that is not a JSON
//! object with a `type` is an error.

use serde::Deserialize;

use crate::turn::Usage;

mod input;

pub use input::{
    ControlRequest, command_line, control_request_line, conversation_boundary_line,
    user_message_line,
};

// ---- stdout -----------------------------------------------------------------------------

/// One stdout line of the CLI, reduced to what the pool needs.
#[derive(Debug, Clone, PartialEq)]
pub enum CliEvent {
    /// `system/init`: printed at the start of every turn and after `/clear`.
    SystemInit {
        /// The CLI's conversation id (changes on `/clear`).
        session_id: String,
        /// The model in use.
        model: Option<String>,
        /// The process's working directory.
        cwd: Option<String>,
    },
    /// `system/api_retry`: the CLI is retrying an upstream call (counts as liveness).
    ApiRetry {
        /// Attempt number.
        attempt: u32,
        /// Retries the CLI will make.
        max_retries: u32,
        /// Delay before the next attempt.
        retry_delay_ms: u64,
        /// Upstream HTTP status of the failed attempt.
        error_status: Option<u16>,
        /// Upstream error kind.
        error: Option<String>,
    },
    /// Any other `system` subtype (`status`, ...).
    System {
        /// The subtype.
        subtype: String,
    },
    /// A `stream_event` carrying a `text_delta`: the text piece.
    TextDelta(String),
    /// A `stream_event` carrying a `thinking_delta`: a piece of the model's thinking.
    ThinkingDelta(String),
    /// A `stream_event` carrying a `signature_delta`: the signature that ends a thinking block.
    SignatureDelta(String),
    /// Token usage of one model call, mid-turn: a `message_start` (input side, `start`) or a
    /// `message_delta` (output tokens so far in that message).
    MessageUsage {
        /// The tokens reported.
        usage: Usage,
        /// True for `message_start`.
        start: bool,
        /// The model of the call (on `message_start`).
        model: Option<String>,
    },
    /// Any other `stream_event` (message/content-block boundaries, other delta kinds).
    StreamOther {
        /// The Anthropic event type.
        event_type: String,
    },
    /// A complete assistant message (model `<synthetic>` for CLI-made messages).
    Assistant {
        /// Concatenated text blocks.
        text: String,
        /// The model named in the message.
        model: Option<String>,
        /// The message's id in the CLI's transcript (the line's `uuid`).
        uuid: Option<String>,
        /// Tool calls the model made in it.
        tool_uses: Vec<ToolUse>,
    },
    /// A `user` line echoed by the CLI (interrupt notice, tool results).
    User {
        /// The ids of the tool calls whose results it carries.
        tool_results: Vec<String>,
        /// The message's id in the CLI's transcript (the line's `uuid`).
        uuid: Option<String>,
    },
    /// The end of a turn.
    Result(ResultLine),
    /// The answer to one of our control requests.
    ControlResponse {
        /// The id we sent.
        request_id: String,
        /// Whether it succeeded.
        success: bool,
        /// The error text, if it failed.
        error: Option<String>,
    },
    /// A line with a `type` we do not know (tolerated; callers log it).
    Unknown {
        /// The unknown type.
        kind: String,
    },
}

/// The `result` line that ends a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultLine {
    /// `success`, `error_during_execution`, `error_max_turns`, ...
    pub subtype: String,
    /// True for failed turns (upstream errors, interrupts).
    pub is_error: bool,
    /// The upstream HTTP status when the upstream call failed.
    pub api_error_status: Option<u16>,
    /// The full text of the answer (or the error text).
    pub result: Option<String>,
    /// The CLI's conversation id.
    pub session_id: Option<String>,
    /// Cumulative cost of the process so far (not reset by `/clear`).
    pub total_cost_usd: Option<f64>,
    /// Token usage of the turn.
    pub usage: Usage,
    /// Wall time of the turn.
    pub duration_ms: u64,
    /// Model round trips in the turn (0 for `/clear`).
    pub num_turns: u32,
    /// The model's stop reason.
    pub stop_reason: Option<String>,
    /// Errors the CLI reports outside the model's answer (e.g. a `--resume` whose transcript
    /// does not exist: "No conversation found with session ID: …").
    pub errors: Vec<String>,
}

impl ResultLine {
    /// True when the turn ended because it was interrupted.
    pub fn is_interrupted(&self) -> bool {
        self.subtype == "error_during_execution"
    }
}

/// A stdout line that cannot be understood at all.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Not JSON, not an object, or a known type with a malformed body.
    #[error("not a valid stream-json line: {0}")]
    Invalid(#[from] serde_json::Error),
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    subtype: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct InitLine {
    session_id: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
}

#[derive(Deserialize)]
struct RetryLine {
    #[serde(default)]
    attempt: u32,
    #[serde(default)]
    max_retries: u32,
    #[serde(default)]
    retry_delay_ms: u64,
    #[serde(default)]
    error_status: Option<u16>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct StreamLine<'a> {
    #[serde(borrow)]
    event: StreamEvent<'a>,
}

#[derive(Deserialize)]
struct StreamEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    /// `message_delta` usage.
    #[serde(default)]
    usage: Option<UsageWire>,
    /// `message_start` message (model, usage).
    #[serde(default)]
    message: Option<StartMessage>,
}

#[derive(Deserialize, Default)]
struct StartMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<UsageWire>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

impl Delta<'_> {
    /// The content delta this is (text, thinking, signature), if any.
    fn into_event(self) -> Option<CliEvent> {
        match (
            self.kind?.as_ref(),
            self.text,
            self.thinking,
            self.signature,
        ) {
            ("text_delta", Some(text), ..) => Some(CliEvent::TextDelta(text)),
            ("thinking_delta", _, Some(thinking), _) => Some(CliEvent::ThinkingDelta(thinking)),
            ("signature_delta", .., Some(signature)) => Some(CliEvent::SignatureDelta(signature)),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct AssistantLine {
    message: AssistantMessage,
    #[serde(default)]
    uuid: Option<String>,
}

#[derive(Deserialize)]
struct AssistantMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<ContentBlock>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<serde_json::Value>,
    #[serde(default)]
    tool_use_id: Option<String>,
}

/// A tool call the model made: its id (the CLI's `toolu_...`), the tool's name as the CLI
/// knows it, and its input.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolUse {
    /// The call's id.
    pub id: String,
    /// The tool's name (MCP tools: `mcp__<server>__<tool>`).
    pub name: String,
    /// Its arguments.
    pub input: serde_json::Value,
}

#[derive(Deserialize)]
struct UserLine {
    #[serde(default)]
    message: Option<UserMessage>,
    #[serde(default)]
    uuid: Option<String>,
}

#[derive(Deserialize)]
struct UserMessage {
    #[serde(default)]
    content: UserContent,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum UserContent {
    Blocks(Vec<ContentBlock>),
    Text(#[allow(dead_code)] String),
    #[default]
    None,
}

#[derive(Deserialize)]
struct ResultWire {
    #[serde(default)]
    subtype: String,
    #[serde(default)]
    is_error: bool,
    #[serde(default)]
    api_error_status: Option<u16>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    total_cost_usd: Option<f64>,
    #[serde(default)]
    usage: UsageWire,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    num_turns: u32,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct UsageWire {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
}

impl From<UsageWire> for Usage {
    fn from(u: UsageWire) -> Self {
        Usage {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
        }
    }
}

#[derive(Deserialize)]
struct ControlResponseLine {
    response: ControlResponseBody,
}

#[derive(Deserialize)]
struct ControlResponseBody {
    #[serde(default)]
    subtype: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    error: Option<String>,
}

/// Parses one stdout line. Unknown `type` → `Ok(CliEvent::Unknown)`; non-JSON → `Err`.
pub fn parse_line(line: &str) -> Result<CliEvent, ProtocolError> {
    let env: Envelope<'_> = serde_json::from_str(line)?;
    Ok(match env.kind.as_ref() {
        "stream_event" => {
            let s: StreamLine<'_> = serde_json::from_str(line)?;
            match s.event.delta.and_then(Delta::into_event) {
                Some(delta) => delta,
                None if s.event.kind == "message_start" => {
                    let m = s.event.message.unwrap_or_default();
                    CliEvent::MessageUsage {
                        usage: m.usage.unwrap_or_default().into(),
                        start: true,
                        model: m.model,
                    }
                }
                None if s.event.kind == "message_delta" && s.event.usage.is_some() => {
                    CliEvent::MessageUsage {
                        usage: s.event.usage.unwrap_or_default().into(),
                        start: false,
                        model: None,
                    }
                }
                None => CliEvent::StreamOther {
                    event_type: s.event.kind.into_owned(),
                },
            }
        }
        "system" => match env.subtype.as_deref().unwrap_or_default() {
            "init" => {
                let i: InitLine = serde_json::from_str(line)?;
                CliEvent::SystemInit {
                    session_id: i.session_id,
                    model: i.model,
                    cwd: i.cwd,
                }
            }
            "api_retry" => {
                let r: RetryLine = serde_json::from_str(line)?;
                CliEvent::ApiRetry {
                    attempt: r.attempt,
                    max_retries: r.max_retries,
                    retry_delay_ms: r.retry_delay_ms,
                    error_status: r.error_status,
                    error: r.error,
                }
            }
            other => CliEvent::System {
                subtype: other.to_owned(),
            },
        },
        "assistant" => {
            let a: AssistantLine = serde_json::from_str(line)?;
            let mut text = String::new();
            let mut tool_uses = Vec::new();
            for b in a.message.content {
                match b.kind.as_str() {
                    "text" => text.push_str(b.text.as_deref().unwrap_or_default()),
                    "tool_use" => {
                        if let (Some(id), Some(name)) = (b.id, b.name) {
                            tool_uses.push(ToolUse {
                                id,
                                name,
                                input: b.input.unwrap_or(serde_json::Value::Null),
                            });
                        }
                    }
                    _ => {}
                }
            }
            CliEvent::Assistant {
                text,
                model: a.message.model,
                uuid: a.uuid,
                tool_uses,
            }
        }
        "user" => {
            let u: UserLine = serde_json::from_str(line).unwrap_or(UserLine {
                message: None,
                uuid: None,
            });
            let tool_results = match u.message.map(|m| m.content) {
                Some(UserContent::Blocks(blocks)) => blocks
                    .into_iter()
                    .filter(|b| b.kind == "tool_result")
                    .filter_map(|b| b.tool_use_id)
                    .collect(),
                _ => Vec::new(),
            };
            CliEvent::User {
                tool_results,
                uuid: u.uuid,
            }
        }
        "result" => {
            let r: ResultWire = serde_json::from_str(line)?;
            CliEvent::Result(ResultLine {
                subtype: r.subtype,
                is_error: r.is_error,
                api_error_status: r.api_error_status,
                result: r.result,
                session_id: r.session_id,
                total_cost_usd: r.total_cost_usd,
                usage: r.usage.into(),
                duration_ms: r.duration_ms,
                num_turns: r.num_turns,
                stop_reason: r.stop_reason,
                errors: r
                    .errors
                    .into_iter()
                    .map(|e| match e {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            })
        }
        "control_response" => {
            let body = serde_json::from_str::<ControlResponseLine>(line)?.response;
            CliEvent::ControlResponse {
                success: body.subtype == "success",
                request_id: body.request_id,
                error: body.error,
            }
        }
        other => CliEvent::Unknown {
            kind: other.to_owned(),
        },
    })
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
