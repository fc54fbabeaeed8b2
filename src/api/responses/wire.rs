//! Responses API wire types (pure): the request, its input as messages, and the response
//! object and stream events as OpenAI defines them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::attachments;
use crate::openai::{ChatMessage, Content, ContentPart, Usage};

/// `POST /v1/responses`. Fields not listed here are accepted and ignored (documented in the
/// README); the ones that would change the answer's shape are refused by
/// [`ResponsesRequest::unsupported`].
#[derive(Debug, Clone, Deserialize)]
pub struct ResponsesRequest {
    /// Model name or alias.
    pub model: String,
    /// A string (one user message) or a list of input items.
    pub input: Input,
    /// The model's system prompt for this response.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Continue the conversation of this response.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// Stream typed events.
    #[serde(default)]
    pub stream: bool,
    /// The answer's token limit.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    /// 0-2, checked.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// 0-1, checked.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// Free-form; `metadata.tags` is recorded with spend.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Function tools: not supported yet.
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    /// Output format (`text.format`): only plain text.
    #[serde(default)]
    pub text: Option<Value>,
    /// Background responses: not supported.
    #[serde(default)]
    pub background: Option<bool>,
    /// Server-side conversations: use `previous_response_id`.
    #[serde(default)]
    pub conversation: Option<Value>,
    /// Stored prompt templates: not supported.
    #[serde(default)]
    pub prompt: Option<Value>,
}

/// `input`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Input {
    /// One user message.
    Text(String),
    /// Input items.
    Items(Vec<Value>),
}

/// A field that cannot be honoured: (param, message).
pub type Unsupported = (String, String);

fn bad(param: &str, message: impl Into<String>) -> Unsupported {
    (param.to_owned(), message.into())
}

impl ResponsesRequest {
    /// The first field that cannot be honoured, if any.
    pub fn unsupported(&self) -> Option<Unsupported> {
        if self.tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Some(bad(
                "tools",
                "function tools are not supported on /v1/responses",
            ));
        }
        if self.background == Some(true) {
            return Some(bad("background", "background responses are not supported"));
        }
        if self.conversation.is_some() {
            return Some(bad(
                "conversation",
                "`conversation` is not supported: continue with `previous_response_id`",
            ));
        }
        if self.prompt.is_some() {
            return Some(bad("prompt", "stored prompt templates are not supported"));
        }
        let format = self
            .text
            .as_ref()
            .and_then(|t| t.get("format"))
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str);
        if format.is_some_and(|f| f != "text") {
            return Some(bad(
                "text.format",
                "only `text.format.type: \"text\"` is supported",
            ));
        }
        for (param, value, min, max) in [
            ("temperature", self.temperature, 0.0, 2.0),
            ("top_p", self.top_p, 0.0, 1.0),
        ] {
            if let Some(v) = value.filter(|v| !(min..=max).contains(v)) {
                return Some(bad(
                    param,
                    format!("`{param}` must be between {min} and {max}, got {v}"),
                ));
            }
        }
        if self.max_output_tokens == Some(0) {
            return Some(bad(
                "max_output_tokens",
                "`max_output_tokens` must be at least 1",
            ));
        }
        None
    }

    /// The input as chat messages (for the conversation logic), `instructions` first as a
    /// system message; `reasoning` items are left out; `Err((param, message))` for other
    /// items that are not messages.
    pub fn messages(&self) -> Result<Vec<ChatMessage>, Unsupported> {
        let mut out = Vec::new();
        if let Some(i) = self.instructions.as_ref().filter(|i| !i.trim().is_empty()) {
            out.push(message("system", i.clone()));
        }
        match &self.input {
            Input::Text(t) => out.push(message("user", t.clone())),
            Input::Items(items) => {
                for (n, item) in items.iter().enumerate() {
                    // The model's thinking given back (a client passing on a response's
                    // output): the conversation keeps its own, so it is not sent again.
                    if item.get("type").and_then(Value::as_str) == Some("reasoning") {
                        continue;
                    }
                    out.push(item_message(n, item)?);
                }
            }
        }
        Ok(out)
    }
}

fn message(role: &str, text: String) -> ChatMessage {
    ChatMessage {
        role: role.to_owned(),
        content: Some(Content::Text(text)),
        name: None,
        tool_calls: None,
        tool_call_id: None,
    }
}

/// One input item: a message (`{"role", "content"}`, `type` `message` or absent) whose content
/// is a string or text parts.
fn item_message(n: usize, item: &Value) -> Result<ChatMessage, Unsupported> {
    let param = format!("input[{n}]");
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    if kind != "message" {
        return Err(bad(
            &param,
            format!("input items of type `{kind}` are not supported (only messages of text)"),
        ));
    }
    let role = item
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&param, "a message item needs a `role`"))?;
    let content = match item.get("content") {
        Some(Value::String(s)) => Content::Text(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let part = content_part(&format!("{param}.content[{j}]"), part)?;
                if role != "user" && !matches!(part, ContentPart::Text { .. }) {
                    return Err(bad(
                        &format!("{param}.content[{j}]"),
                        "images and files are accepted in user messages only",
                    ));
                }
                out.push(part);
            }
            Content::Parts(out)
        }
        _ => {
            return Err(bad(
                &format!("{param}.content"),
                "`content` must be a string or a list of content parts",
            ));
        }
    };
    Ok(ChatMessage {
        role: role.to_owned(),
        content: Some(content),
        name: None,
        tool_calls: None,
        tool_call_id: None,
    })
}

/// One content part: text, `input_image` (`image_url`: a data URL or an http(s) URL) or
/// `input_file` (`file_data`: a data URL; or `file_url`), checked here so a bad one is named
/// by its place in `input`.
fn content_part(param: &str, part: &Value) -> Result<ContentPart, Unsupported> {
    let str_of = |key: &str| part.get(key).and_then(Value::as_str);
    let checked = |r: Result<claude_pool_actors::content::Block, crate::error::ApiError>| match r {
        Ok(_) => Ok(()),
        Err(crate::error::ApiError::BadRequest { message, param }) => {
            Err((param.unwrap_or_default(), message))
        }
        Err(other) => Err((String::new(), other.to_string())),
    };
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => Ok(ContentPart::Text {
            text: str_of("text").unwrap_or_default().to_owned(),
        }),
        Some("input_image") => {
            if part.get("file_id").is_some_and(|f| !f.is_null()) {
                return Err(bad(
                    param,
                    "file ids are not supported (this gateway has no file store): send `image_url`",
                ));
            }
            let url = str_of("image_url")
                .ok_or_else(|| bad(param, "an `input_image` needs an `image_url`"))?;
            checked(attachments::image_from_url(
                &format!("{param}.image_url"),
                url,
            ))?;
            Ok(ContentPart::ImageUrl {
                image_url: json!({"url": url}),
            })
        }
        Some("input_file") => {
            let mut file = serde_json::Map::new();
            if let Some(name) = str_of("filename") {
                file.insert("filename".into(), name.into());
            }
            if let Some(data) = str_of("file_data") {
                checked(attachments::document_from_data(
                    &format!("{param}.file_data"),
                    data,
                    None,
                ))?;
                file.insert("file_data".into(), data.into());
            } else if let Some(url) = str_of("file_url") {
                checked(attachments::document_url(
                    &format!("{param}.file_url"),
                    url,
                    None,
                ))?;
                file.insert("file_url".into(), url.into());
            } else {
                return Err(bad(
                    param,
                    "an `input_file` needs `file_data` (a data URL) or `file_url`; file ids are not supported",
                ));
            }
            Ok(ContentPart::File {
                file: Value::Object(file),
            })
        }
        other => Err(bad(
            param,
            format!(
                "content parts of type `{}` are not supported (text, input_image and input_file are)",
                other.unwrap_or("?")
            ),
        )),
    }
}

/// A fresh `resp_...` id.
pub fn response_id() -> String {
    format!("resp_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh `msg_...` id.
pub fn message_id() -> String {
    format!("msg_{}", uuid::Uuid::new_v4().simple())
}

/// What a response object says about its request.
#[derive(Debug, Clone)]
pub struct Head {
    /// `resp_...`.
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The model as the client named it.
    pub model: String,
    /// The output message's id.
    pub message_id: String,
    /// The response it continues.
    pub previous_response_id: Option<String>,
    /// Its instructions.
    pub instructions: Option<String>,
    /// Its token limit.
    pub max_output_tokens: Option<u64>,
    /// Its metadata.
    pub metadata: Value,
    /// Sampling settings, echoed.
    pub temperature: Option<f64>,
    /// Sampling settings, echoed.
    pub top_p: Option<f64>,
}

/// How a response ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Generating.
    InProgress,
    /// Done.
    Completed,
    /// Cut at `max_output_tokens`.
    Incomplete,
    /// Failed with this OpenAI error body.
    Failed(Value),
}

/// `usage`. `output_tokens_details.reasoning_tokens` is 0 when the model did not think, and
/// left out when it did: the CLI counts thinking in the output tokens, with no separate count.
fn usage_json(u: &Usage, thought: bool) -> Value {
    let details = match thought {
        true => json!({}),
        false => json!({"reasoning_tokens": 0}),
    };
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.prompt_tokens_details.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": details,
        "total_tokens": u.total_tokens,
    })
}

/// The output message item.
pub fn message_item(id: &str, text: &str, done: bool) -> Value {
    let content = if done || !text.is_empty() {
        json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
    } else {
        json!([])
    };
    json!({
        "id": id,
        "type": "message",
        "status": if done { "completed" } else { "in_progress" },
        "role": "assistant",
        "content": content,
    })
}

/// The response object, with its `output` items (none while in progress or when failed).
pub fn response_object(
    h: &Head,
    outcome: &Outcome,
    output: &[Value],
    usage: Option<&Usage>,
) -> Value {
    let (status, incomplete, error) = match outcome {
        Outcome::InProgress => ("in_progress", Value::Null, Value::Null),
        Outcome::Completed => ("completed", Value::Null, Value::Null),
        Outcome::Incomplete => (
            "incomplete",
            json!({"reason": "max_output_tokens"}),
            Value::Null,
        ),
        Outcome::Failed(e) => ("failed", Value::Null, e.clone()),
    };
    let thought = output.iter().any(|item| item["type"] == "reasoning");
    json!({
        "id": h.id,
        "object": "response",
        "created_at": h.created_at,
        "status": status,
        "background": false,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": h.instructions,
        "max_output_tokens": h.max_output_tokens,
        "model": h.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": h.previous_response_id,
        "reasoning": {"effort": null, "summary": null},
        "store": true,
        "temperature": h.temperature.unwrap_or(1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": h.top_p.unwrap_or(1.0),
        "truncation": "disabled",
        "usage": usage.map(|u| usage_json(u, thought)),
        "user": null,
        "metadata": h.metadata,
    })
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
