//! `POST /v1/messages/count_tokens`: an estimate of a request's input tokens, answered as
//! `{"input_tokens": N}`.
//!
//! It is an estimate, not the model's tokenizer (a warm worker has no way to count without
//! running a turn), made the way the gateway estimates text elsewhere:
//!
//! | part | tokens |
//! |---|---|
//! | text: system prompt, messages, tool results, assistant tool calls (name and input), text documents | one per [`CHARS_PER_TOKEN`] characters, rounded up |
//! | each message | [`MESSAGE_OVERHEAD_TOKENS`] (its role and separators) |
//! | tools | their names, descriptions and schemas as text, plus [`TOOLS_OVERHEAD_TOKENS`] (the API's tool-use system prompt) |
//! | an image | [`IMAGE_TOKENS`], what the API charges for an image at its largest before resizing (about 1.15 megapixels at 750 pixels a token); smaller images cost less |
//! | a base64 PDF | one per [`PDF_BYTES_PER_TOKEN`] bytes of the file (the API charges 1,500 to 3,000 tokens a page, text plus the page's image) |
//! | a PDF by URL | [`URL_DOCUMENT_TOKENS`] (its size is not known) |

use claude_pool_actors::content::{Block, Source};
use serde_json::{Value, json};

use super::request::Decoded;

/// Characters per token of the estimate (as the gateway's output limits count).
pub const CHARS_PER_TOKEN: u64 = 4;
/// Tokens of each message besides its content.
pub const MESSAGE_OVERHEAD_TOKENS: u64 = 4;
/// Tokens of an image.
pub const IMAGE_TOKENS: u64 = 1_600;
/// PDF bytes per token (a ~75 KB page ≈ 2,300 tokens).
pub const PDF_BYTES_PER_TOKEN: u64 = 32;
/// Tokens of a document given by URL.
pub const URL_DOCUMENT_TOKENS: u64 = 3_000;
/// Tokens the API adds to a request that offers tools (its tool-use system prompt).
pub const TOOLS_OVERHEAD_TOKENS: u64 = 346;

/// Characters of text and tokens of attachments, added up.
#[derive(Default)]
struct Tally {
    chars: u64,
    tokens: u64,
}

impl Tally {
    fn text(&mut self, s: &str) {
        self.chars += s.chars().count() as u64;
    }

    fn block(&mut self, b: &Block) {
        match b {
            Block::Text(t) => self.text(t),
            Block::Image(_) => self.tokens += IMAGE_TOKENS,
            Block::Document { source, title } => {
                if let Some(title) = title {
                    self.text(title);
                }
                match source {
                    Source::Text(t) => self.text(t),
                    Source::Base64 { data, .. } => {
                        let bytes = data.len() as u64 / 4 * 3;
                        self.tokens += bytes.div_ceil(PDF_BYTES_PER_TOKEN);
                    }
                    Source::Url(_) => self.tokens += URL_DOCUMENT_TOKENS,
                }
            }
            Block::ToolResult { content, .. } => content.iter().for_each(|b| self.block(b)),
        }
    }
}

/// The estimated input tokens of a request.
pub fn count_tokens(request: &Decoded) -> u64 {
    let mut t = Tally::default();
    if let Some(system) = &request.system {
        t.text(system);
    }
    for m in &request.messages {
        t.tokens += MESSAGE_OVERHEAD_TOKENS;
        m.content.iter().for_each(|b| t.block(b));
        for call in &m.tool_uses {
            t.text(&call.name);
            t.text(&call.input.to_string());
        }
    }
    if let Some(tools) = &request.tools {
        t.tokens += TOOLS_OVERHEAD_TOKENS;
        t.text(&super::tools::schema_text(tools));
    }
    t.tokens + t.chars.div_ceil(CHARS_PER_TOKEN)
}

/// The answer of `count_tokens`.
pub fn response(input_tokens: u64) -> Value {
    json!({"input_tokens": input_tokens})
}

#[cfg(test)]
mod tests {
    use super::super::request::MessagesRequest;
    use super::*;

    fn count(body: Value) -> u64 {
        let r: MessagesRequest = serde_json::from_value(body).unwrap();
        count_tokens(&r.decode_for_count().unwrap())
    }

    #[test]
    fn text_counts_four_characters_a_token_plus_each_message() {
        let n = count(json!({"model": "m", "system": "abcd",
            "messages": [{"role": "user", "content": "12345678"}]}));
        assert_eq!(n, MESSAGE_OVERHEAD_TOKENS + 3);
        let two = count(json!({"model": "m", "messages": [
            {"role": "user", "content": "héllo"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "ab", "input": {}}]},
        ]}));
        // "héllo" is five characters, "ab" and "{}" four more: nine, three tokens
        assert_eq!(two, 2 * MESSAGE_OVERHEAD_TOKENS + 3);
        assert_eq!(response(7), json!({"input_tokens": 7}));
    }

    #[test]
    fn attachments_and_tools_count_as_documented() {
        let pdf = "A".repeat(4 * 1024); // 3 KiB of PDF
        let n = count(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}},
                {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
                {"type": "tool_result", "tool_use_id": "t", "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://x/b.png"}}]},
            ]}]}),
        );
        assert_eq!(
            n,
            MESSAGE_OVERHEAD_TOKENS
                + 2 * IMAGE_TOKENS
                + 3 * 1024 / PDF_BYTES_PER_TOKEN
                + URL_DOCUMENT_TOKENS
        );
        let base = count(json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}));
        let with_tools = count(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "get_weather", "description": "Weather of a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]}),
        );
        assert!(
            with_tools > base + TOOLS_OVERHEAD_TOKENS + 10,
            "{with_tools}"
        );
    }
}
