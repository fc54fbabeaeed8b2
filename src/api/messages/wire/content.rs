//! Content blocks of a request's messages → neutral [`Block`]s.
//!
//! | block | where | becomes |
//! |---|---|---|
//! | `text` | any message | [`Block::Text`] (`cache_control`, `citations` ignored) |
//! | `image` | user, tool result | [`Block::Image`]: `base64` (JPEG, PNG, GIF, WebP; checked to decode, at most [`MAX_IMAGE_BASE64_LEN`] characters) or `url` |
//! | `document` | user, tool result | [`Block::Document`]: `base64` PDF (checked to decode), `text` (`text/plain`) or `url`; `title` kept, `context` and `citations` ignored |
//! | `tool_result` | user | [`Block::ToolResult`]: `tool_use_id`, `content` (a string or text, image and document blocks), `is_error` |
//! | `tool_use` | assistant | a [`ToolCall`] of the message |
//! | `thinking`, `redacted_thinking` | assistant | dropped: the worker holds its own thinking |
//!
//! Anything else (`search_result`, `server_tool_use`, `web_search_tool_result`, a `file` or
//! `content` source, ...) is refused with a 400 naming it: the gateway has no server tools and
//! no Files API.

use claude_pool_actors::ToolCall;
use claude_pool_actors::content::{Block, Source};
use serde_json::Value;

use super::WireError;
use super::check::{self, Object, at};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The user (or tool results the user's side sends).
    User,
    /// The model (assistant history, or a prefill when last).
    Assistant,
}

pub use crate::api::attachments::{
    IMAGE_TYPES as IMAGE_MEDIA_TYPES, MAX_IMAGE_BASE64 as MAX_IMAGE_BASE64_LEN, is_base64,
};

/// The blocks and tool calls of one message.
#[derive(Debug, Default)]
pub(super) struct Decoded {
    pub(super) blocks: Vec<Block>,
    pub(super) tool_uses: Vec<ToolCall>,
}

/// A message's `content` (a string or a list of blocks) as the given role may write it.
pub(super) fn message_content(v: &Value, role: Role, path: &str) -> Result<Decoded, WireError> {
    let mut out = Decoded::default();
    let blocks = match v {
        Value::String(s) => {
            out.blocks.push(Block::text(s.as_str()));
            return Ok(out);
        }
        Value::Array(blocks) => blocks,
        _ => {
            return Err(WireError::new(
                path,
                "Input should be a string or a list of content blocks",
            ));
        }
    };
    for (i, b) in blocks.iter().enumerate() {
        let path = at(path, i);
        let o = check::object(b, &path)?;
        match (check::tag(o, &path)?, role) {
            ("text", _) => out.blocks.push(text(o, &path)?),
            ("image", Role::User) => out.blocks.push(image(o, &path)?),
            ("document", Role::User) => out.blocks.push(document(o, &path)?),
            ("tool_result", Role::User) => out.blocks.push(tool_result(o, &path)?),
            ("tool_use", Role::Assistant) => out.tool_uses.push(tool_use(o, &path)?),
            ("thinking" | "redacted_thinking", Role::Assistant) => {}
            (kind @ ("image" | "document" | "tool_result"), Role::Assistant) => {
                return Err(WireError::new(
                    path,
                    format!("`{kind}` blocks are only allowed in user messages"),
                ));
            }
            (kind @ ("tool_use" | "thinking" | "redacted_thinking"), Role::User) => {
                return Err(WireError::new(
                    path,
                    format!("`{kind}` blocks are only allowed in assistant messages"),
                ));
            }
            (kind, _) => return Err(unsupported(&path, kind)),
        }
    }
    Ok(out)
}

/// The texts of a system prompt (`system`, or a `system` message): a string or text blocks.
pub(super) fn system_texts(v: &Value, path: &str) -> Result<Vec<String>, WireError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let path = at(path, i);
                let o = check::object(b, &path)?;
                match check::tag(o, &path)? {
                    "text" => Ok(check::required_str(o, "text", &path)?.to_owned()),
                    other => Err(WireError::new(
                        at(&path, "type"),
                        format!("system prompt blocks must be `text` blocks, not `{other}`"),
                    )),
                }
            })
            .collect(),
        _ => Err(WireError::new(
            path,
            "Input should be a string or a list of text blocks",
        )),
    }
}

fn unsupported(path: &str, kind: &str) -> WireError {
    WireError::new(
        path,
        format!("content block type `{kind}` is not supported by this gateway"),
    )
}

fn text(o: &Object, path: &str) -> Result<Block, WireError> {
    Ok(Block::text(check::required_str(o, "text", path)?))
}

fn image(o: &Object, path: &str) -> Result<Block, WireError> {
    let source = check::required(o, "source", path)?;
    let path = at(path, "source");
    let source = check::object(source, &path)?;
    match check::tag(source, &path)? {
        "base64" => {
            let media_type = check::required_str(source, "media_type", &path)?;
            if !IMAGE_MEDIA_TYPES.contains(&media_type) {
                return Err(WireError::new(
                    at(&path, "media_type"),
                    format!(
                        "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp', not '{media_type}'"
                    ),
                ));
            }
            let data = base64_data(source, &path)?;
            if data.len() > MAX_IMAGE_BASE64_LEN {
                return Err(WireError::new(
                    at(&path, "data"),
                    format!(
                        "image exceeds 5 MB maximum: {} bytes > {MAX_IMAGE_BASE64_LEN} bytes",
                        data.len()
                    ),
                ));
            }
            Ok(Block::Image(Source::Base64 {
                media_type: media_type.to_owned(),
                data: data.to_owned(),
            }))
        }
        "url" => Ok(Block::Image(Source::Url(url(source, &path)?))),
        other => Err(source_type(&path, other, "`base64` or `url`")),
    }
}

fn document(o: &Object, path: &str) -> Result<Block, WireError> {
    let title = check::optional_str(o, "title", path)?.map(str::to_owned);
    let source = check::required(o, "source", path)?;
    let path = at(path, "source");
    let source = check::object(source, &path)?;
    let source = match check::tag(source, &path)? {
        "base64" => {
            let media_type = check::required_str(source, "media_type", &path)?;
            if media_type != "application/pdf" {
                return Err(WireError::new(
                    at(&path, "media_type"),
                    format!("Input should be 'application/pdf', not '{media_type}'"),
                ));
            }
            Source::Base64 {
                media_type: media_type.to_owned(),
                data: base64_data(source, &path)?.to_owned(),
            }
        }
        "text" => {
            if let Some(media_type) = check::optional_str(source, "media_type", &path)? {
                if media_type != "text/plain" {
                    return Err(WireError::new(
                        at(&path, "media_type"),
                        format!("Input should be 'text/plain', not '{media_type}'"),
                    ));
                }
            }
            Source::Text(check::required_str(source, "data", &path)?.to_owned())
        }
        "url" => Source::Url(url(source, &path)?),
        other => return Err(source_type(&path, other, "`base64`, `text` or `url`")),
    };
    Ok(Block::Document { source, title })
}

fn tool_result(o: &Object, path: &str) -> Result<Block, WireError> {
    let call_id = check::required_str(o, "tool_use_id", path)?.to_owned();
    let is_error = check::optional_bool(o, "is_error", path)?.unwrap_or(false);
    let content_path = at(path, "content");
    let content = match check::optional(o, "content") {
        None => Vec::new(),
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => vec![Block::text(s.as_str())],
        Some(Value::Array(blocks)) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.iter().enumerate() {
                let path = at(&content_path, i);
                let o = check::object(b, &path)?;
                out.push(match check::tag(o, &path)? {
                    "text" => text(o, &path)?,
                    "image" => image(o, &path)?,
                    "document" => document(o, &path)?,
                    kind => return Err(unsupported(&path, kind)),
                });
            }
            out
        }
        Some(_) => {
            return Err(WireError::new(
                content_path,
                "Input should be a string or a list of content blocks",
            ));
        }
    };
    Ok(Block::ToolResult {
        call_id,
        content,
        is_error,
    })
}

fn tool_use(o: &Object, path: &str) -> Result<ToolCall, WireError> {
    let id = check::required_str(o, "id", path)?.to_owned();
    let name = check::required_str(o, "name", path)?.to_owned();
    let input = check::required(o, "input", path)?;
    if !input.is_object() {
        return Err(WireError::new(
            at(path, "input"),
            "Input should be an object",
        ));
    }
    Ok(ToolCall {
        id,
        name,
        input: input.clone(),
    })
}

/// The `data` of a base64 source: present, not empty, and decodable.
fn base64_data<'a>(source: &'a Object, path: &str) -> Result<&'a str, WireError> {
    let data = check::required_str(source, "data", path)?;
    if data.is_empty() {
        return Err(WireError::new(at(path, "data"), "data must not be empty"));
    }
    if !is_base64(data) {
        return Err(WireError::new(at(path, "data"), "invalid base64"));
    }
    Ok(data)
}

fn url(source: &Object, path: &str) -> Result<String, WireError> {
    let url = check::required_str(source, "url", path)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(WireError::new(
            at(path, "url"),
            "Input should be an http or https URL",
        ));
    }
    Ok(url.to_owned())
}

fn source_type(path: &str, kind: &str, expected: &str) -> WireError {
    let why = match kind {
        "file" => "`file` sources need the Files API, which this gateway does not have".to_owned(),
        _ => format!("source type `{kind}` is not supported by this gateway"),
    };
    WireError::new(at(path, "type"), format!("{why}: use {expected}"))
}
