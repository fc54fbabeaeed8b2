//! `[[think]]`: a thinking block before the answer, as the real CLI prints one it gets from
//! the API (which it asks for by default, `thinking: {"type": "adaptive"}`): a
//! `content_block_start` of type `thinking`, `thinking_delta`s (16-character pieces),
//! one `signature_delta`, the block's own `assistant` line, `content_block_stop`.
//! The block is `thinking about: <user text>`, signed `sig-fake-<first 8 hex of its SHA-256>`,
//! as the fake Anthropic API makes it.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Fake, emit};

impl Fake {
    /// Streams the thinking block of a `[[think]]` turn about `text`.
    pub(super) fn think(&self, text: &str) {
        let thinking = format!("thinking about: {text}");
        let digest = Sha256::digest(thinking.as_bytes());
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let signature = format!("sig-fake-{hex}");
        let event = |event: serde_json::Value| {
            emit(&json!({"type": "stream_event", "event": event, "session_id": self.session_id}));
        };
        event(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}));
        let chars: Vec<char> = thinking.chars().collect();
        for piece in chars.chunks(16) {
            let piece: String = piece.iter().collect();
            event(json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "thinking_delta", "thinking": piece}}));
        }
        event(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": signature}}));
        emit(
            &json!({"type": "assistant", "message": {"model": self.model, "role": "assistant",
            "content": [{"type": "thinking", "thinking": thinking, "signature": signature}]},
            "session_id": self.session_id}),
        );
        event(json!({"type": "content_block_stop", "index": 0}));
    }
}
