//! Reading a Messages API request: the messages, the last user text (after the CLI's
//! `<system-reminder>` blocks), the tool results and attachments of the last message, the
//! offered tools, and the `stream` / `thinking` switches. Pure functions over the parsed body.

use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// A request the fake cannot read: answered 400 `invalid_request_error` with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

/// The body's `messages` array, whatever its items (absent means none): what
/// `count_tokens` counts.
pub fn message_list(body: &Value) -> Result<&[Value], Invalid> {
    let Value::Object(fields) = body else {
        return Err(Invalid("body is not a JSON object".to_owned()));
    };
    match fields.get("messages") {
        None => Ok(&[]),
        Some(Value::Array(m)) => Ok(m.as_slice()),
        Some(_) => Err(Invalid("messages: not an array".to_owned())),
    }
}

/// The body's `messages`: absent means none; anything but an array of objects is invalid.
pub fn messages(body: &Value) -> Result<&[Value], Invalid> {
    let messages = message_list(body)?;
    match messages.iter().position(|m| !m.is_object()) {
        Some(i) => Err(Invalid(format!("messages.{i}: not an object"))),
        None => Ok(messages),
    }
}

/// Text of the last text block of the last user message, after any system-reminder, trimmed.
///
/// The CLI puts its context in text blocks starting with `<system-reminder>`; they are skipped
/// unless nothing else is there. After an interrupt the CLI merges the interrupted prompt,
/// `[Request interrupted by user]` and the next prompt into one user message, so only the last
/// block is the new prompt.
pub fn last_user_text(messages: &[Value]) -> String {
    let Some(msg) = messages.iter().rev().find(|m| m["role"] == "user") else {
        return String::new();
    };
    let text = match &msg["content"] {
        Value::String(s) => s.as_str(),
        Value::Array(blocks) => {
            let parts: Vec<&str> = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .map(|b| b["text"].as_str().unwrap_or(""))
                .collect();
            let own: Vec<&str> = parts
                .iter()
                .copied()
                .filter(|t| !py_trim_start(t).starts_with("<system-reminder>"))
                .collect();
            let parts = if own.is_empty() { parts } else { own };
            parts.last().copied().unwrap_or("")
        }
        _ => "",
    };
    let text = match text.rsplit_once("</system-reminder>") {
        Some((_, after)) => after,
        None => text,
    };
    py_trim(text).to_owned()
}

/// `(tool_use_id, text)` of each `tool_result` block of the last message, if it is a user one.
pub fn tool_results(messages: &[Value]) -> Vec<(String, String)> {
    let Some(Value::Array(blocks)) = last_user_content(messages) else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            let text = match &b["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter(|p| p["type"] == "text")
                    .map(|p| p["text"].as_str().unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            };
            let id = b["tool_use_id"].as_str().unwrap_or("").to_owned();
            (id, py_trim(&text).to_owned())
        })
        .collect()
}

/// One ` [kind source detail]` description per image or document block of the last user
/// message, those inside its `tool_result` blocks included (after the top-level ones):
/// ` [image base64 image/png 68 bytes sha256:63ef318d]`, ` [document url https://…]`,
/// ` [document text 12 chars]`, or ` [image <source type>]` for other sources.
pub fn attachments(messages: &[Value]) -> Result<String, Invalid> {
    let Some(Value::Array(top)) = last_user_content(messages) else {
        return Ok(String::new());
    };
    let nested = top
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .filter_map(|b| b["content"].as_array())
        .flatten();
    let blocks: Vec<&Value> = top.iter().chain(nested).collect();
    let mut out = String::new();
    for block in blocks {
        let kind = match block["type"].as_str() {
            Some(k @ ("image" | "document")) => k,
            _ => continue,
        };
        let source = &block["source"];
        let source_type = source.get("type").map_or_else(|| "?".to_owned(), py_str);
        let line = match source_type.as_str() {
            "base64" => {
                let data = match source.get("data") {
                    None => "",
                    Some(Value::String(s)) => s.as_str(),
                    Some(_) => return Err(Invalid(format!("{kind}: data is not a string"))),
                };
                let raw = b64decode(data).map_err(|e| Invalid(format!("{kind}: {e}")))?;
                let media = source
                    .get("media_type")
                    .map_or_else(|| "?".to_owned(), py_str);
                let digest = hex8(&Sha256::digest(&raw));
                format!(
                    " [{kind} base64 {media} {} bytes sha256:{digest}]",
                    raw.len()
                )
            }
            "url" => {
                let url = source.get("url").map_or_else(String::new, py_str);
                format!(" [{kind} url {url}]")
            }
            "text" => {
                let chars = match source.get("data") {
                    None => 0,
                    Some(Value::String(s)) => s.chars().count(),
                    Some(Value::Array(a)) => a.len(),
                    Some(Value::Object(o)) => o.len(),
                    Some(_) => return Err(Invalid(format!("{kind}: data has no length"))),
                };
                format!(" [{kind} text {chars} chars]")
            }
            other => format!(" [{kind} {other}]"),
        };
        out.push_str(&line);
    }
    Ok(out)
}

/// Names of the tools the request offers (`tools[].name`).
pub fn offered_tools(body: &Value) -> Vec<String> {
    match &body["tools"] {
        Value::Array(tools) => tools
            .iter()
            .map(|t| t["name"].as_str().unwrap_or("").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether the request asks for a streamed answer (`stream` as Python's truth value).
pub fn wants_stream(body: &Value) -> bool {
    truthy(&body["stream"])
}

/// Whether the request enables extended thinking (`thinking.type` `enabled` or `adaptive`).
pub fn thinking_enabled(body: &Value) -> bool {
    matches!(
        body["thinking"]["type"].as_str(),
        Some("enabled" | "adaptive")
    )
}

/// The first 8 hex digits of a digest.
pub fn hex8(digest: &[u8]) -> String {
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn last_user_content(messages: &[Value]) -> Option<&Value> {
    let last = messages.last()?;
    (last["role"] == "user").then_some(&last["content"])
}

/// Python's truth value of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `str(value)` in an f-string: strings bare, anything else as JSON.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Python's whitespace (`str.isspace`): Unicode White_Space plus the separators U+001C..U+001F.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_trim(s: &str) -> &str {
    s.trim_matches(py_space)
}

fn py_trim_start(s: &str) -> &str {
    s.trim_start_matches(py_space)
}

/// Python's `base64.b64decode(data)` (not validating): characters outside the alphabet are
/// skipped, input ends at the first complete padding, and a missing pad is an error.
fn b64decode(data: &str) -> Result<Vec<u8>, String> {
    if !data.is_ascii() {
        return Err("string argument should contain only ASCII characters".to_owned());
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3);
    let (mut quad, mut pads, mut left, mut count) = (0u8, 0u8, 0u8, 0usize);
    for b in data.bytes() {
        if b == b'=' {
            if quad >= 2 {
                pads += 1;
                if quad + pads >= 4 {
                    return Ok(out);
                }
            }
            continue;
        }
        let Some(v) = sextet(b) else { continue };
        count += 1;
        pads = 0;
        match quad {
            0 => left = v,
            1 => {
                out.push((left << 2) | (v >> 4));
                left = v & 0x0f;
            }
            2 => {
                out.push((left << 4) | (v >> 2));
                left = v & 0x03;
            }
            _ => out.push((left << 6) | v),
        }
        quad = (quad + 1) % 4;
    }
    match quad {
        0 => Ok(out),
        1 => Err(format!(
            "Invalid base64-encoded string: number of data characters ({count}) cannot be 1 more than a multiple of 4"
        )),
        _ => Err("Incorrect padding".to_owned()),
    }
}

fn sextet(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn last_user_text_skips_system_reminders_and_takes_the_newest_prompt() {
        let msgs = [
            json!({"role": "user", "content": "first"}),
            json!({"role": "assistant", "content": "echo"}),
            json!({"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>\nctx\n</system-reminder>"},
                {"type": "text", "text": "  hello [[slow]]  "},
            ]}),
        ];
        assert_eq!(last_user_text(&msgs), "hello [[slow]]");
        // after an interrupt: the interrupted prompt, the marker and the next prompt in one message
        let merged = [json!({"role": "user", "content": [
            {"type": "text", "text": "[[slow]] stop me"},
            {"type": "text", "text": "[Request interrupted by user]"},
            {"type": "text", "text": "charlie"},
        ]})];
        assert_eq!(last_user_text(&merged), "charlie");
        // a reminder glued in front of the prompt in one string
        let glued = [json!({"role": "user", "content":
            "<system-reminder>a</system-reminder>x<system-reminder>b</system-reminder>\n bravo"})];
        assert_eq!(last_user_text(&glued), "bravo");
        // only reminders: the last one is used, and what follows its closing tag is the text
        let only = [json!({"role": "user", "content": [
            {"type": "text", "text": " <system-reminder>r</system-reminder> tail"},
        ]})];
        assert_eq!(last_user_text(&only), "tail");
        // the last user message counts even when an assistant message follows
        let trailing = [
            json!({"role": "user", "content": "q"}),
            json!({"role": "assistant", "content": "a"}),
        ];
        assert_eq!(last_user_text(&trailing), "q");
        assert_eq!(last_user_text(&[]), "");
        let blocks = [json!({"role": "user", "content": [{"type": "image"}]})];
        assert_eq!(last_user_text(&blocks), "");
    }

    #[test]
    fn tool_results_are_read_from_the_last_user_message_only() {
        let msgs = [
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t1"}]}),
            json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": " sunny "},
                {"type": "tool_result", "tool_use_id": "t2", "content": [
                    {"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": "b"},
                ]},
                {"type": "text", "text": "ignored"},
            ]}),
        ];
        assert_eq!(
            tool_results(&msgs),
            vec![("t1".into(), "sunny".into()), ("t2".into(), "a b".into())]
        );
        assert!(tool_results(&msgs[..1]).is_empty());
    }

    #[test]
    fn attachments_inside_tool_results_are_described_after_the_others() {
        let msgs = [json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [
                {"type": "text", "text": "the chart"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/c.png"}}]},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        ]})];
        assert_eq!(
            attachments(&msgs).unwrap(),
            " [image url https://example.com/a.png] [image url https://example.com/c.png]"
        );
    }

    #[test]
    fn attachments_are_described_with_size_and_digest() {
        // a 1x1 transparent PNG (the earlier Python fake described it the same way)
        let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";
        let msgs = [json!({"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "document", "source": {"type": "text", "data": "héllo"}},
            {"type": "document", "source": {"type": "file", "file_id": "f1"}},
            {"type": "document"},
        ]})];
        assert_eq!(
            attachments(&msgs).unwrap(),
            " [image base64 image/png 68 bytes sha256:63ef318d] [image url https://example.com/a.png] \
             [document text 5 chars] [document file] [document ?]"
        );
    }

    #[test]
    fn base64_is_decoded_as_python_does() {
        assert_eq!(b64decode("aGk=").unwrap(), b"hi");
        assert_eq!(b64decode("aG\nk=").unwrap(), b"hi");
        assert_eq!(b64decode("aGk=ignored").unwrap(), b"hi");
        assert_eq!(b64decode("aGk").unwrap_err(), "Incorrect padding");
        assert!(b64decode("aGkaa").unwrap_err().contains("(5)"));
        assert_eq!(b64decode("").unwrap(), b"");
        assert!(b64decode("aé==").is_err());
    }

    #[test]
    fn malformed_bodies_are_invalid_not_panics() {
        assert!(messages(&json!([1])).is_err());
        assert!(messages(&json!({"messages": "x"})).is_err());
        assert!(messages(&json!({"messages": [1]})).is_err());
        assert_eq!(message_list(&json!({"messages": [1]})).unwrap().len(), 1);
        assert_eq!(messages(&json!({})).unwrap().len(), 0);
        let bad = [
            json!({"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": 5}}]}),
        ];
        assert!(attachments(&bad).is_err());
    }

    #[test]
    fn switches() {
        assert!(wants_stream(&json!({"stream": true})));
        assert!(!wants_stream(&json!({"stream": 0})));
        assert!(!wants_stream(&json!({})));
        assert!(thinking_enabled(&json!({"thinking": {"type": "adaptive"}})));
        assert!(thinking_enabled(
            &json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})
        ));
        assert!(!thinking_enabled(
            &json!({"thinking": {"type": "disabled"}})
        ));
        assert!(!thinking_enabled(&json!({"thinking": "on"})));
        assert_eq!(
            offered_tools(&json!({"tools": [{"name": "mcp__gw__get_weather"}, {}]})),
            vec!["mcp__gw__get_weather".to_owned(), String::new()]
        );
    }
}
