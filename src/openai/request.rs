//! The `POST /v1/chat/completions` request.

use serde::{Deserialize, Serialize};

/// A chat-completions request. Fields OpenAI defines that have no meaning for a Claude Code
/// worker (`temperature`, `top_p`, penalties, `seed`, ...) are
/// accepted and ignored; the few that would change the answer's shape are rejected by
/// [`ChatRequest::unsupported`].
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// Model name or alias.
    pub model: String,
    /// The conversation so far, ending with the user's new message.
    pub messages: Vec<ChatMessage>,
    /// Stream the answer as Server-Sent Events.
    #[serde(default)]
    pub stream: bool,
    /// Stream options (`include_usage`).
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// The answer's token limit (legacy name): enforced on the streamed answer.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// The answer's token limit: enforced on the streamed answer (wins over `max_tokens`).
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// Up to 4 strings the answer ends before.
    #[serde(default)]
    pub stop: Option<Stop>,
    /// End-user id (logged, not used for routing).
    #[serde(default)]
    pub user: Option<String>,
    /// Free-form metadata; `metadata.tags` (a list of strings, LiteLLM's form) is recorded
    /// with the request's spend.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// The conversation to continue (same as the `X-Session-Id` header).
    #[serde(default)]
    pub session_id: Option<String>,
    /// Number of choices; only 1 is supported.
    #[serde(default)]
    pub n: Option<u32>,
    /// Function tools: offered to the model through the gateway's MCP bridge.
    #[serde(default)]
    pub tools: Option<Vec<serde_json::Value>>,
    /// `none`, `auto`, `required` or a named function.
    #[serde(default)]
    pub tool_choice: Option<serde_json::Value>,
    /// Accepted (the model may call several tools in one answer either way).
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// Legacy functions; not supported.
    #[serde(default)]
    pub functions: Option<Vec<serde_json::Value>>,
    /// Log probabilities; not supported.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// Sampling temperature, 0-2: checked, then left to the CLI.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0-1: checked, then left to the CLI.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// -2 to 2: checked, then left to the CLI.
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    /// -2 to 2: checked, then left to the CLI.
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    /// `text`, `json_object` or `json_schema`: a JSON answer checked against the schema.
    #[serde(default)]
    pub response_format: Option<serde_json::Value>,
}

impl ChatRequest {
    /// `metadata.tags` (empty when absent); `Err` when it is not a list of strings.
    pub fn tags(&self) -> Result<Vec<String>, &'static str> {
        let Some(tags) = self.metadata.as_ref().and_then(|m| m.get("tags")) else {
            return Ok(Vec::new());
        };
        let list = tags
            .as_array()
            .ok_or("`metadata.tags` must be a list of strings")?;
        list.iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .ok_or("`metadata.tags` must be a list of strings")
            })
            .collect()
    }
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl ChatRequest {
    /// The answer's output limit (`max_completion_tokens`, else `max_tokens`, and `stop`).
    pub fn output_limit(&self) -> Option<crate::turns::output_limit::OutputLimit> {
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        crate::turns::output_limit::OutputLimit::new(
            self.max_completion_tokens.or(self.max_tokens),
            stop,
        )
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with `usage` and empty `choices`.
    #[serde(default)]
    pub include_usage: bool,
}

/// One message of the conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it, as sent ([`Role::parse`] reads it, so an unknown role gets a message that
    /// names the accepted ones).
    pub role: String,
    /// Its content (absent for some assistant messages).
    #[serde(default)]
    pub content: Option<Content>,
    /// Optional author name.
    #[serde(default)]
    pub name: Option<String>,
    /// An assistant message's tool calls.
    #[serde(default)]
    pub tool_calls: Option<Vec<serde_json::Value>>,
    /// A `tool` message: the call it answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// Message roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// Instructions (newer name for system).
    Developer,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
}

impl Role {
    /// A role as OpenAI names it; `Err` with a message for anything else.
    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "system" => Role::System,
            "developer" => Role::Developer,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            "function" => {
                return Err("role `function` (the legacy function-calling form) is not \
                            supported; send tool results as role `tool`"
                    .into());
            }
            other => {
                return Err(format!(
                    "unknown role `{}`: use system, developer, user, assistant or tool",
                    other.chars().take(32).collect::<String>()
                ));
            }
        })
    }
}

/// Message content: a string or a list of parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Content parts.
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// A text part.
    Text {
        /// The text.
        text: String,
    },
    /// An image (not supported).
    ImageUrl {
        /// The image reference.
        #[serde(default)]
        image_url: serde_json::Value,
    },
    /// Audio input (not supported).
    InputAudio {
        /// The audio.
        #[serde(default)]
        input_audio: serde_json::Value,
    },
    /// A file (not supported).
    File {
        /// The file.
        #[serde(default)]
        file: serde_json::Value,
    },
}

impl Content {
    /// The text of the content (parts joined by newlines), or the name of the first
    /// unsupported part type.
    pub fn text(&self) -> Result<String, &'static str> {
        match self {
            Content::Text(s) => Ok(s.clone()),
            Content::Parts(parts) => {
                let mut out = Vec::with_capacity(parts.len());
                for p in parts {
                    match p {
                        ContentPart::Text { text } => out.push(text.as_str()),
                        ContentPart::ImageUrl { .. } => return Err("image_url"),
                        ContentPart::InputAudio { .. } => return Err("input_audio"),
                        ContentPart::File { .. } => return Err("file"),
                    }
                }
                Ok(out.join("\n"))
            }
        }
    }
}

/// A request field that cannot be honoured: (param, message).
pub(crate) type Unsupported = (&'static str, String);

impl ChatRequest {
    /// The first request feature that cannot be honoured, if any.
    pub fn unsupported(&self) -> Option<Unsupported> {
        if self.n.is_some_and(|n| n != 1) {
            return Some(("n", "only n = 1 is supported".into()));
        }
        if self.functions.as_ref().is_some_and(|f| !f.is_empty()) {
            return Some(("functions", "functions are not supported".into()));
        }
        if self.logprobs == Some(true) {
            return Some(("logprobs", "logprobs are not supported".into()));
        }
        let ranges = [
            ("temperature", self.temperature, 0.0, 2.0),
            ("top_p", self.top_p, 0.0, 1.0),
            ("presence_penalty", self.presence_penalty, -2.0, 2.0),
            ("frequency_penalty", self.frequency_penalty, -2.0, 2.0),
        ];
        for (param, value, min, max) in ranges {
            if let Some(v) = value.filter(|v| !(min..=max).contains(v)) {
                return Some((
                    param,
                    format!("`{param}` must be between {min} and {max}, got {v}"),
                ));
            }
        }
        let stops: &[String] = match &self.stop {
            None => &[],
            Some(Stop::One(s)) => std::slice::from_ref(s),
            Some(Stop::Many(v)) => v,
        };
        if stops.len() > 4
            || stops
                .iter()
                .any(|s| s.is_empty() || s.chars().count() > 256)
        {
            return Some((
                "stop",
                "`stop` takes up to 4 non-empty strings of at most 256 characters".into(),
            ));
        }
        for (param, value) in [
            ("max_tokens", self.max_tokens),
            ("max_completion_tokens", self.max_completion_tokens),
        ] {
            if value == Some(0) {
                return Some((param, format!("`{param}` must be at least 1")));
            }
        }
        None
    }

    /// `stream_options.include_usage`.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_out_of_range_name_their_parameter() {
        let check = |extra: &str| {
            let r: ChatRequest = serde_json::from_str(&format!(
                r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}]{extra}}}"#
            ))
            .unwrap();
            r.unsupported().map(|(p, _)| p)
        };
        assert_eq!(check(r#","temperature":5"#), Some("temperature"));
        assert_eq!(check(r#","temperature":-0.1"#), Some("temperature"));
        assert_eq!(check(r#","top_p":1.5"#), Some("top_p"));
        assert_eq!(check(r#","presence_penalty":-3"#), Some("presence_penalty"));
        assert_eq!(check(r#","max_tokens":0"#), Some("max_tokens"));
        assert_eq!(
            check(r#","temperature":2,"top_p":0,"frequency_penalty":2"#),
            None
        );
    }
}
