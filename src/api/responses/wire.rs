//! Responses API wire types (pure): the request, its input as messages, and the response
//! object and stream events as OpenAI defines them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::openai::{ChatMessage, Content, Usage};

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
    /// system message; `Err((param, message))` for items that are not messages of text.
    pub fn messages(&self) -> Result<Vec<ChatMessage>, Unsupported> {
        let mut out = Vec::new();
        if let Some(i) = self.instructions.as_ref().filter(|i| !i.trim().is_empty()) {
            out.push(message("system", i.clone()));
        }
        match &self.input {
            Input::Text(t) => out.push(message("user", t.clone())),
            Input::Items(items) => {
                for (n, item) in items.iter().enumerate() {
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
    let text = match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text") => texts.push(
                        part.get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                    other => {
                        return Err(bad(
                            &format!("{param}.content"),
                            format!(
                                "content parts of type `{}` are not supported (only text)",
                                other.unwrap_or("?")
                            ),
                        ));
                    }
                }
            }
            texts.join("\n")
        }
        _ => {
            return Err(bad(
                &format!("{param}.content"),
                "`content` must be a string or a list of text parts",
            ));
        }
    };
    Ok(message(role, text))
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

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.prompt_tokens_details.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
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

/// The response object.
pub fn response_object(
    h: &Head,
    outcome: &Outcome,
    text: Option<&str>,
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
    let output = match text {
        Some(t) => json!([message_item(&h.message_id, t, true)]),
        None => json!([]),
    };
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
        "usage": usage.map(usage_json),
        "user": null,
        "metadata": h.metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ResponsesRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn input_text_items_and_instructions_become_messages() {
        let r = req(json!({"model": "m", "input": "hi", "instructions": "be brief"}));
        let m = r.messages().unwrap();
        assert_eq!((m[0].role.as_str(), m[1].role.as_str()), ("system", "user"));
        // The Vercel AI SDK's and the Agents SDK's item forms.
        let r = req(json!({"model": "m", "input": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "input_text", "text": "q1"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a1"}]},
            {"role": "user", "content": "q2"}]}));
        let m = r.messages().unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[2].content.as_ref().unwrap().text().unwrap(), "a1");
        let (param, _) = req(json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}))
            .messages()
            .unwrap_err();
        assert_eq!(param, "input[0]");
        let (param, _) = req(json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}))
            .messages()
            .unwrap_err();
        assert_eq!(param, "input[0].content");
    }

    #[test]
    fn fields_that_change_the_answer_are_refused_by_name() {
        let p = |v: Value| req(v).unsupported().map(|(p, _)| p);
        assert_eq!(
            p(json!({"model": "m", "input": "x", "tools": [{"type": "function"}]})).as_deref(),
            Some("tools")
        );
        assert_eq!(
            p(json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}))
                .as_deref(),
            Some("text.format")
        );
        assert_eq!(
            p(json!({"model": "m", "input": "x", "temperature": 3})).as_deref(),
            Some("temperature")
        );
        assert_eq!(
            p(json!({"model": "m", "input": "x", "background": true})).as_deref(),
            Some("background")
        );
        assert_eq!(
            p(json!({"model": "m", "input": "x", "tools": [], "store": false, "reasoning": {}})),
            None
        );
    }

    #[test]
    fn the_response_object_has_openais_shape() {
        let h = Head {
            id: "resp_1".into(),
            created_at: 7,
            model: "sonnet".into(),
            message_id: "msg_1".into(),
            previous_response_id: None,
            instructions: None,
            max_output_tokens: Some(5),
            metadata: json!({}),
            temperature: None,
            top_p: None,
        };
        let v = response_object(
            &h,
            &Outcome::Incomplete,
            Some("hey"),
            Some(&Usage::default()),
        );
        assert_eq!(v["object"], "response");
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
        assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
        assert_eq!(v["output"][0]["content"][0]["text"], "hey");
        assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 0);
    }
}
