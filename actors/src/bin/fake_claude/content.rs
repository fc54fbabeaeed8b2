//! What the fake CLI reads from a user message: its text, whether the real CLI would run it as
//! a slash command, and its attachments, described as the fake Anthropic API describes them
//! (`tests/fake-anthropic/src/request.rs`) so a test can expect the same text from both:
//! ` [image base64 image/png 68 bytes sha256:63ef318d]`, ` [image url https://…]`,
//! ` [document base64 application/pdf 15 bytes sha256:ef381f48]`, ` [document text 11 chars]`.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The message text with its attachment descriptions after it, and whether the CLI would run
/// it as a slash command: like the real CLI, only the last text block is read as a command (a
/// string content is one block), and an empty last block is dropped.
pub(crate) fn content_text(content: &Value) -> (String, bool) {
    match content {
        Value::String(s) => (s.clone(), s.starts_with('/')),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect();
            let command = texts.last().is_some_and(|t| t.starts_with('/'));
            let kept: Vec<&str> = texts.into_iter().filter(|t| !t.is_empty()).collect();
            let mut text = kept.join("\n");
            for part in parts {
                text.push_str(&describe(part));
            }
            (text, command)
        }
        _ => (String::new(), false),
    }
}

/// ` [kind source detail]` for an image or document block, nothing for other blocks.
fn describe(block: &Value) -> String {
    let kind = match block["type"].as_str() {
        Some(k @ ("image" | "document")) => k,
        _ => return String::new(),
    };
    let source = &block["source"];
    match source["type"].as_str().unwrap_or("?") {
        "base64" => {
            let media = source["media_type"].as_str().unwrap_or("?");
            match decode_base64(source["data"].as_str().unwrap_or_default()) {
                Some(raw) => {
                    let digest = Sha256::digest(&raw);
                    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
                    format!(" [{kind} base64 {media} {} bytes sha256:{hex}]", raw.len())
                }
                None => format!(" [{kind} base64 {media} not base64]"),
            }
        }
        "url" => format!(
            " [{kind} url {}]",
            source["url"].as_str().unwrap_or_default()
        ),
        "text" => {
            let chars = source["data"].as_str().map_or(0, |s| s.chars().count());
            format!(" [{kind} text {chars} chars]")
        }
        other => format!(" [{kind} {other}]"),
    }
}

/// Standard base64 (padding optional, whitespace skipped); `None` for any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
