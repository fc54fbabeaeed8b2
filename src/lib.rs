//! claude-pool: OpenAI-compatible HTTP gateway (placeholder crate root).
