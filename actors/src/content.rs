//! A user message's content as blocks: text, images, documents and tool results. Every API
//! surface decodes its own parts into these; the worker writes them to the CLI as the content
//! of one stream-json user message, which the CLI passes to the model unchanged.
//!
//! Attachments are carried as given (base64 data, a URL, or plain text); their bytes are never
//! decoded here. Identity for fingerprints and indexes comes from [`Block::digest_into`], which
//! hashes an attachment's data instead of copying it.

use sha2::{Digest, Sha256};

/// One block of a user message (serialized, adjacently tagged, where a history is stored).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Block {
    /// Text, as written.
    Text(String),
    /// An image.
    Image(Source),
    /// A document (PDF or plain text), with an optional title.
    Document {
        /// Where its content is.
        source: Source,
        /// Its title, if the client gave one.
        title: Option<String>,
    },
    /// The result of a tool call the model made (text, images or documents).
    ToolResult {
        /// The call's id.
        call_id: String,
        /// What the tool returned.
        content: Vec<Block>,
        /// The tool failed.
        is_error: bool,
    },
}

/// Where an attachment's content is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Source {
    /// Base64-encoded bytes of the given media type (`image/png`, `application/pdf`, ...).
    Base64 {
        /// The media type.
        media_type: String,
        /// The base64 text (not decoded here).
        data: String,
    },
    /// A URL the model fetches.
    Url(String),
    /// Plain text (documents only).
    Text(String),
}

impl Block {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// The block as the CLI's stream-json (Anthropic) content block.
    pub fn to_cli(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Text(text) => json!({"type": "text", "text": text}),
            Self::Image(source) => json!({"type": "image", "source": source.to_cli()}),
            Self::Document { source, title } => {
                let mut doc = json!({"type": "document", "source": source.to_cli()});
                if let Some(title) = title {
                    doc["title"] = json!(title);
                }
                doc
            }
            Self::ToolResult {
                call_id,
                content,
                is_error,
            } => json!({
                "type": "tool_result",
                "tool_use_id": call_id,
                "content": content.iter().map(Self::to_cli).collect::<Vec<_>>(),
                "is_error": is_error,
            }),
        }
    }

    /// The block's text, if it is a text block.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    /// Feeds the block's identity into a hash: its kind, its text, and for attachments the
    /// media type and a digest of the data (so equal attachments hash alike without their
    /// bytes being kept anywhere).
    pub fn digest_into(&self, hasher: &mut Sha256) {
        match self {
            Self::Text(text) => {
                hasher.update(b"t");
                hash_str(hasher, text);
            }
            Self::Image(source) => {
                hasher.update(b"i");
                source.digest_into(hasher);
            }
            Self::Document { source, title } => {
                hasher.update(b"d");
                source.digest_into(hasher);
                hash_str(hasher, title.as_deref().unwrap_or(""));
            }
            Self::ToolResult {
                call_id,
                content,
                is_error,
            } => {
                hasher.update(b"r");
                hash_str(hasher, call_id);
                hasher.update([u8::from(*is_error)]);
                hasher.update((content.len() as u64).to_le_bytes());
                for block in content {
                    block.digest_into(hasher);
                }
            }
        }
    }

    /// A short description for logs and transcripts (`[image image/png sha256:1a2b3c4d]`):
    /// never the attachment's data.
    pub fn summary(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Image(source) => format!("[image {}]", source.summary()),
            Self::Document { source, .. } => format!("[document {}]", source.summary()),
            Self::ToolResult {
                call_id, content, ..
            } => {
                let inner: Vec<String> = content.iter().map(Self::summary).collect();
                format!("[tool result {call_id}: {}]", inner.join(" "))
            }
        }
    }
}

impl Source {
    fn to_cli(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::Base64 { media_type, data } => {
                json!({"type": "base64", "media_type": media_type, "data": data})
            }
            Self::Url(url) => json!({"type": "url", "url": url}),
            Self::Text(text) => json!({"type": "text", "media_type": "text/plain", "data": text}),
        }
    }

    fn digest_into(&self, hasher: &mut Sha256) {
        match self {
            Self::Base64 { media_type, data } => {
                hasher.update(b"b");
                hash_str(hasher, media_type);
                hasher.update(Sha256::digest(data.as_bytes()));
            }
            Self::Url(url) => {
                hasher.update(b"u");
                hash_str(hasher, url);
            }
            Self::Text(text) => {
                hasher.update(b"x");
                hasher.update(Sha256::digest(text.as_bytes()));
            }
        }
    }

    fn summary(&self) -> String {
        match self {
            Self::Base64 { media_type, data } => {
                let digest = Sha256::digest(data.as_bytes());
                format!("{media_type} sha256:{}", hex8(&digest))
            }
            Self::Url(url) => format!("url {url}"),
            Self::Text(text) => {
                let digest = Sha256::digest(text.as_bytes());
                format!("text/plain sha256:{}", hex8(&digest))
            }
        }
    }
}

/// The text of a message's blocks, joined by newlines (attachments left out).
pub fn text_of(blocks: &[Block]) -> String {
    let texts: Vec<&str> = blocks.iter().filter_map(Block::as_text).collect();
    texts.join("\n")
}

fn hash_str(hasher: &mut Sha256, s: &str) {
    hasher.update((s.len() as u64).to_le_bytes());
    hasher.update(s.as_bytes());
}

fn hex8(digest: &[u8]) -> String {
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(data: &str) -> Block {
        Block::Image(Source::Base64 {
            media_type: "image/png".into(),
            data: data.into(),
        })
    }

    fn digest(blocks: &[Block]) -> Vec<u8> {
        let mut h = Sha256::new();
        for b in blocks {
            b.digest_into(&mut h);
        }
        h.finalize().to_vec()
    }

    #[test]
    fn blocks_render_as_the_cli_takes_them() {
        let blocks = [
            Block::text("look"),
            png("iVBORw0KGgo="),
            Block::Image(Source::Url("https://example.com/a.png".into())),
            Block::Document {
                source: Source::Base64 {
                    media_type: "application/pdf".into(),
                    data: "JVBERi0=".into(),
                },
                title: Some("spec".into()),
            },
            Block::ToolResult {
                call_id: "toolu_1".into(),
                content: vec![Block::text("42")],
                is_error: false,
            },
        ];
        let cli: Vec<_> = blocks.iter().map(Block::to_cli).collect();
        assert_eq!(
            serde_json::Value::Array(cli),
            serde_json::json!([
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}, "title": "spec"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "42"}], "is_error": false},
            ])
        );
    }

    #[test]
    fn digests_tell_attachments_apart_without_keeping_them() {
        assert_eq!(digest(&[png("AAAA")]), digest(&[png("AAAA")]));
        assert_ne!(digest(&[png("AAAA")]), digest(&[png("AAAB")]));
        assert_ne!(
            digest(&[Block::text("ab")]),
            digest(&[Block::text("a"), Block::text("b")])
        );
        let summary = png("AAAA").summary();
        assert!(summary.starts_with("[image image/png sha256:"), "{summary}");
        assert!(!summary.contains("AAAA"));
    }

    #[test]
    fn text_of_joins_text_blocks_only() {
        assert_eq!(
            text_of(&[Block::text("a"), png("AAAA"), Block::text("b")]),
            "a\nb"
        );
    }
}
