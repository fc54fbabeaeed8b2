//! Conversations, independent of any API: their histories as routing and replay see them
//! (fingerprints of stateless clients, replays, system prompts), the registry of sessions and
//! their owners, and the batched writes of new sessions' rows. See `docs/conversations.md`.

mod history;
pub(crate) mod new_sessions;
mod sessions;

pub use history::{
    Fingerprint, FingerprintIndex, MAX_SYSTEM_PROMPT, Msg, Role, extended, fingerprint, replay,
    system_prompt, tool_result_text, with_tool_calls,
};
pub use sessions::{SessionInfo, SessionRegistry, scoped};
