//! A Messages API request body → [`Decoded`].
//!
//! The body is read leniently, as the API reads it for clients that send more than this
//! gateway uses: unknown fields are ignored (never a 422), and `output_config`,
//! `context_management`, `service_tier`, `container`, `mcp_servers` are accepted and ignored.
//! What is used or checked is checked the way the API checks it, each error naming its part:
//!
//! | field | rule |
//! |---|---|
//! | `model` | required string |
//! | `max_tokens` | required integer ≥ 1 (not required by `count_tokens`) |
//! | `messages` | required, at least one `user` or `assistant` message; `system` messages join the system prompt |
//! | `system` | a string or text blocks (`cache_control` ignored); Claude Code's billing header block is dropped |
//! | `temperature`, `top_p` | numbers in 0..=1 (checked; the CLI samples as it does) |
//! | `top_k` | integer ≥ 0 (checked) |
//! | `stop_sequences` | strings with some non-whitespace |
//! | `stream` | boolean |
//! | `metadata.user_id` | kept, and read for a [`session_hint`] |
//! | `tools`, `tool_choice` | see [`super::tools`] |
//! | `thinking` | `enabled` (`budget_tokens` ≥ 1024 and < `max_tokens`), `disabled` or `adaptive` |
//!
//! ## Thinking
//!
//! `thinking` and `output_config` do not change a warm worker: its CLI decides its own
//! thinking and effort. What a client asked for is recorded in [`Decoded::thinking`] and
//! decides what it is shown: thinking blocks go to clients that asked for thinking
//! (`enabled` or `adaptive`, as Claude Code sends by default) and are left out for the others,
//! as the API itself never answers thinking blocks to a request without `thinking` (clients
//! that read `content[0].text` rely on it). Thinking blocks of assistant history are dropped:
//! the worker holds its own.

use claude_pool_actors::ToolCall;
use claude_pool_actors::content::{Block, text_of};
use serde::Deserialize;
use serde_json::Value;

use super::WireError;
use super::check::{self, at};
use super::content;
pub use super::content::Role;
use crate::tools::wire::ToolRequest;

/// The text Claude Code's first system block starts with: its billing attribution, which the
/// API reads and the model never needs (and which changes with every CLI version).
pub const BILLING_HEADER_PREFIX: &str = "x-anthropic-billing-header:";

/// The smallest `thinking.budget_tokens` the API takes.
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// A request body as sent. Each field is kept as JSON so that [`MessagesRequest::decode`]
/// can name the part at fault; fields this gateway does not use are not read at all.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessagesRequest {
    /// `model`.
    pub model: Option<Value>,
    /// `max_tokens`.
    pub max_tokens: Option<Value>,
    /// `system`.
    pub system: Option<Value>,
    /// `messages`.
    pub messages: Option<Value>,
    /// `stop_sequences`.
    pub stop_sequences: Option<Value>,
    /// `stream`.
    pub stream: Option<Value>,
    /// `temperature`.
    pub temperature: Option<Value>,
    /// `top_p`.
    pub top_p: Option<Value>,
    /// `top_k`.
    pub top_k: Option<Value>,
    /// `metadata`.
    pub metadata: Option<Value>,
    /// `tools`.
    pub tools: Option<Value>,
    /// `tool_choice`.
    pub tool_choice: Option<Value>,
    /// `thinking`.
    pub thinking: Option<Value>,
}

/// What a request asked for as thinking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Thinking {
    /// No `thinking`, or `disabled`.
    #[default]
    Off,
    /// `enabled` with this budget.
    Enabled {
        /// `budget_tokens`.
        budget_tokens: u64,
    },
    /// `adaptive`: the model decides.
    Adaptive,
}

impl Thinking {
    /// True when the client asked for thinking (and is shown thinking blocks).
    pub fn requested(self) -> bool {
        self != Thinking::Off
    }
}

/// One `user` or `assistant` message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its blocks: text, images, documents and tool results (tool calls are in `tool_uses`).
    pub content: Vec<Block>,
    /// Its text blocks joined by newlines (for assistant history and fingerprints).
    pub text: String,
    /// The tool calls of an assistant message, in order.
    pub tool_uses: Vec<ToolCall>,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// `model`, as sent (the catalogue resolves it).
    pub model: String,
    /// `max_tokens` (0 for a `count_tokens` request without one).
    pub max_tokens: u64,
    /// `stream`.
    pub stream: bool,
    /// The system prompt: `system`'s texts, then those of `system` messages, joined by blank
    /// lines; `None` when there is none.
    pub system: Option<String>,
    /// The `user` and `assistant` messages, in order.
    pub messages: Vec<Message>,
    /// `stop_sequences`.
    pub stop_sequences: Vec<String>,
    /// The offered tools; `None` without tools or with `tool_choice: none`.
    pub tools: Option<ToolRequest>,
    /// `metadata.user_id`.
    pub user_id: Option<String>,
    /// The client's session id, read from `metadata.user_id` (see [`session_hint`]).
    pub session_hint: Option<String>,
    /// What the client asked for as thinking.
    pub thinking: Thinking,
}

impl Decoded {
    /// The tool results the last message carries (when it is a user message), in order: the
    /// answers to the previous reply's tool calls.
    pub fn trailing_tool_results(&self) -> Vec<&Block> {
        match self.messages.last() {
            Some(m) if m.role == Role::User => m
                .content
                .iter()
                .filter(|b| matches!(b, Block::ToolResult { .. }))
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl MessagesRequest {
    /// Reads a body. Only a body that is not a JSON object fails here.
    pub fn from_slice(body: &[u8]) -> Result<Self, WireError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| WireError::new("", format!("the body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(WireError::new("", "the body must be a JSON object"));
        }
        serde_json::from_value(value).map_err(|e| WireError::new("", e.to_string()))
    }

    /// Decodes a `POST /v1/messages` request.
    pub fn decode(&self) -> Result<Decoded, WireError> {
        self.decode_with(true)
    }

    /// Decodes a `POST /v1/messages/count_tokens` request (which has no `max_tokens`).
    pub fn decode_for_count(&self) -> Result<Decoded, WireError> {
        self.decode_with(false)
    }

    fn decode_with(&self, needs_max_tokens: bool) -> Result<Decoded, WireError> {
        let model = match &self.model {
            None => return Err(WireError::new("model", "Field required")),
            Some(v) => check::string(v, "model")?,
        };
        if model.is_empty() {
            return Err(WireError::new(
                "model",
                "String should have at least 1 character",
            ));
        }
        let max_tokens = match &self.max_tokens {
            None if needs_max_tokens => return Err(WireError::new("max_tokens", "Field required")),
            None => 0,
            Some(v) => {
                if v.as_i64().is_some_and(|n| n < 1) {
                    return Err(WireError::new(
                        "max_tokens",
                        "Input should be greater than or equal to 1",
                    ));
                }
                check::unsigned(v, "max_tokens")?
            }
        };
        let stream = match &self.stream {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| WireError::new("stream", "Input should be a valid boolean"))?,
        };
        for (name, v) in [("temperature", &self.temperature), ("top_p", &self.top_p)] {
            if let Some(v) = v {
                unit_interval(v, name)?;
            }
        }
        if let Some(v) = &self.top_k {
            check::unsigned(v, "top_k")?;
        }
        let stop_sequences = stop_sequences(self.stop_sequences.as_ref())?;
        let thinking = thinking(self.thinking.as_ref(), max_tokens)?;
        let user_id = user_id(self.metadata.as_ref())?;
        let session_hint = user_id.as_deref().and_then(session_hint);

        let mut system: Vec<String> = match &self.system {
            None => Vec::new(),
            Some(v) => content::system_texts(v, "system")?,
        };
        let list = match &self.messages {
            None => return Err(WireError::new("messages", "Field required")),
            Some(v) => check::list(v, "messages")?,
        };
        let mut messages = Vec::with_capacity(list.len());
        for (i, m) in list.iter().enumerate() {
            let path = at("messages", i);
            let o = check::object(m, &path)?;
            let role = match check::required_str(o, "role", &path)? {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "system" => {
                    let content = check::required(o, "content", &path)?;
                    system.extend(content::system_texts(content, &at(&path, "content"))?);
                    continue;
                }
                _ => {
                    return Err(WireError::new(
                        at(&path, "role"),
                        "Input should be 'user' or 'assistant'",
                    ));
                }
            };
            let content = check::required(o, "content", &path)?;
            let decoded = content::message_content(content, role, &at(&path, "content"))?;
            messages.push(Message {
                role,
                text: text_of(&decoded.blocks),
                content: decoded.blocks,
                tool_uses: decoded.tool_uses,
            });
        }
        if messages.is_empty() {
            return Err(WireError::new(
                "messages",
                "at least one user or assistant message is required",
            ));
        }
        system.retain(|s| !s.starts_with(BILLING_HEADER_PREFIX) && !s.is_empty());
        let system = (!system.is_empty()).then(|| system.join("\n\n"));

        Ok(Decoded {
            model: model.to_owned(),
            max_tokens,
            stream,
            system,
            messages,
            stop_sequences,
            tools: super::tools::decode(self.tools.as_ref(), self.tool_choice.as_ref())?,
            user_id,
            session_hint,
            thinking,
        })
    }
}

fn unit_interval(v: &Value, name: &str) -> Result<f64, WireError> {
    let x = v
        .as_f64()
        .ok_or_else(|| WireError::new(name, "Input should be a valid number"))?;
    if x < 0.0 {
        return Err(WireError::new(
            name,
            "Input should be greater than or equal to 0",
        ));
    }
    if x > 1.0 {
        return Err(WireError::new(
            name,
            "Input should be less than or equal to 1",
        ));
    }
    Ok(x)
}

fn stop_sequences(v: Option<&Value>) -> Result<Vec<String>, WireError> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    check::list(v, "stop_sequences")?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = at("stop_sequences", i);
            let s = check::string(s, &path)?;
            if s.trim().is_empty() {
                return Err(WireError::new(
                    path,
                    "each stop sequence must contain non-whitespace",
                ));
            }
            Ok(s.to_owned())
        })
        .collect()
}

fn thinking(v: Option<&Value>, max_tokens: u64) -> Result<Thinking, WireError> {
    let Some(v) = v else {
        return Ok(Thinking::Off);
    };
    let o = check::object(v, "thinking")?;
    match check::tag(o, "thinking")? {
        "disabled" => Ok(Thinking::Off),
        "adaptive" => Ok(Thinking::Adaptive),
        "enabled" => {
            let path = "thinking.enabled.budget_tokens";
            let budget = check::required(o, "budget_tokens", "thinking.enabled")?;
            let budget_tokens = check::unsigned(budget, path)?;
            if budget_tokens < MIN_THINKING_BUDGET {
                return Err(WireError::new(
                    path,
                    format!("Input should be greater than or equal to {MIN_THINKING_BUDGET}"),
                ));
            }
            if max_tokens != 0 && budget_tokens >= max_tokens {
                return Err(WireError::new(
                    "max_tokens",
                    format!("must be greater than thinking.budget_tokens ({budget_tokens})"),
                ));
            }
            Ok(Thinking::Enabled { budget_tokens })
        }
        other => Err(WireError::new(
            "thinking.type",
            format!("Input should be 'enabled', 'disabled' or 'adaptive', not '{other}'"),
        )),
    }
}

fn user_id(metadata: Option<&Value>) -> Result<Option<String>, WireError> {
    let Some(metadata) = metadata else {
        return Ok(None);
    };
    let o = check::object(metadata, "metadata")?;
    Ok(check::optional_str(o, "user_id", "metadata")?.map(str::to_owned))
}

/// The session id a client put in `metadata.user_id`, if it looks like one: Claude Code sends
/// a JSON string holding `device_id`, `account_uuid` and `session_id`; older versions sent
/// `user_<hash>_account_<uuid>_session_<uuid>`. An id is 1-128 characters of `a-z A-Z 0-9 -
/// _`; anything else gives `None`.
pub fn session_hint(user_id: &str) -> Option<String> {
    let id = if user_id.trim_start().starts_with('{') {
        let v: Value = serde_json::from_str(user_id).ok()?;
        v.get("session_id")?.as_str()?.to_owned()
    } else {
        user_id.rsplit_once("_session_")?.1.to_owned()
    };
    let valid = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(id)
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "request_error_tests.rs"]
mod error_tests;
