//! The `POST /v1/chat/completions` request.

use serde::Deserialize;

/// A chat-completions request. Fields OpenAI defines that have no meaning for a Claude Code
/// worker (`temperature`, `top_p`, penalties, `seed`, `stop`, `response_format`, ...) are
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
    /// Accepted; the CLI decides the answer length.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Accepted; the CLI decides the answer length.
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
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
    /// Function tools; not supported.
    #[serde(default)]
    pub tools: Option<Vec<serde_json::Value>>,
    /// Legacy functions; not supported.
    #[serde(default)]
    pub functions: Option<Vec<serde_json::Value>>,
    /// Log probabilities; not supported.
    #[serde(default)]
    pub logprobs: Option<bool>,
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
    /// Who wrote it.
    pub role: Role,
    /// Its content (absent for some assistant messages).
    #[serde(default)]
    pub content: Option<Content>,
    /// Optional author name.
    #[serde(default)]
    pub name: Option<String>,
}

/// Message roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
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
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Some(("tools", "function tools are not supported".into()));
        }
        if self.functions.as_ref().is_some_and(|f| !f.is_empty()) {
            return Some(("functions", "functions are not supported".into()));
        }
        if self.logprobs == Some(true) {
            return Some(("logprobs", "logprobs are not supported".into()));
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
