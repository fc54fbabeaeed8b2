//! A conversation's history as routing and replay see it.
//!
//! * With a session id (`X-Session-Id` header or body `session_id`) that the gateway already
//!   knows, only the last (user) message is sent: the worker holds the rest.
//! * Without one, the history before the last message is fingerprinted; if it extends a live
//!   conversation (the fingerprint of that conversation's messages and answers so far), the
//!   request continues it and again only the last message is sent.
//! * Otherwise a new conversation starts, and its first turn replays the history faithfully
//!   ([`replay`]). See `docs/conversations.md`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::ApiError;
use claude_pool_actors::content::Block;

/// Who wrote a message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions: the conversation's system prompt.
    #[serde(alias = "developer")]
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// A message reduced to what routing and replay need, whatever API it came through.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Msg {
    /// Its role.
    pub role: Role,
    /// The text (parts joined by newlines).
    pub text: String,
    /// Its images and documents, in order, after the text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Block>,
}

impl Msg {
    /// A message of text only.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            text: text.into(),
            attachments: Vec::new(),
        }
    }

    /// The message as the content of one user message to the CLI: its text, then its
    /// attachments.
    pub fn blocks(&self) -> Vec<Block> {
        let mut blocks = Vec::with_capacity(1 + self.attachments.len());
        if !self.text.is_empty() || self.attachments.is_empty() {
            blocks.push(Block::Text(self.text.clone()));
        }
        blocks.extend(self.attachments.iter().cloned());
        blocks
    }
}

/// An assistant message's text as history shows it with the tool calls it made (their JSON),
/// so a replay shows them and fingerprints tell tool rounds apart.
pub fn with_tool_calls(text: &str, calls: &serde_json::Value) -> String {
    format!("{text}\n[tool calls: {calls}]")
}

/// A tool's result as history shows it: the call it answers, then its text.
pub fn tool_result_text(call_id: &str, text: &str) -> String {
    format!("[result of tool call {call_id}]\n{text}")
}

/// A 128-bit fingerprint of a message list.
pub type Fingerprint = [u8; 16];

/// Fingerprint of a message list within one key's scope: SHA-256 over the owner and the role,
/// length and text of each message, truncated to 128 bits. The owner is part of it, so the
/// same history sent by another key never continues (or consumes) this key's conversation.
pub fn fingerprint(owner: &str, messages: &[Msg]) -> Fingerprint {
    let mut h = Sha256::new();
    h.update((owner.len() as u64).to_le_bytes());
    h.update(owner.as_bytes());
    for m in messages {
        let role: &[u8] = match m.role {
            Role::System => b"s",
            Role::User => b"u",
            Role::Assistant => b"a",
            Role::Tool => b"t",
        };
        h.update(role);
        h.update((m.text.len() as u64).to_le_bytes());
        h.update(m.text.as_bytes());
        // Attachments by a digest of their data: the index never holds their bytes.
        h.update((m.attachments.len() as u64).to_le_bytes());
        for a in &m.attachments {
            a.digest_into(&mut h);
        }
    }
    let full = h.finalize();
    let mut fp = [0u8; 16];
    fp.copy_from_slice(&full[..16]);
    fp
}

/// The system prompt of a message list: its system and developer messages, joined by blank
/// lines (`None` without any). It reaches the model as its system prompt (workers are started
/// with it); at most [`MAX_SYSTEM_PROMPT`] bytes (it travels on the CLI's command line).
pub fn system_prompt(messages: &[Msg]) -> Result<Option<std::sync::Arc<str>>, ApiError> {
    let parts: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.text.as_str())
        .collect();
    if parts.is_empty() {
        return Ok(None);
    }
    let prompt = parts.join("\n\n");
    if prompt.len() > MAX_SYSTEM_PROMPT {
        return Err(ApiError::bad(
            "messages",
            format!(
                "the system messages are {} bytes; at most {MAX_SYSTEM_PROMPT} are supported",
                prompt.len()
            ),
        ));
    }
    Ok(Some(prompt.into()))
}

/// Largest system prompt (bytes): under Linux's 128 KiB limit for one command-line argument.
pub const MAX_SYSTEM_PROMPT: usize = 100 * 1024;

/// The first turn of a conversation that starts with history: earlier turns in a tagged
/// transcript, then the new message, as the content of one user message. System messages are
/// not part of it: they are the conversation's system prompt ([`system_prompt`]). Earlier
/// messages' attachments follow the transcript in order (each is named where it was sent),
/// then the new message's.
pub fn replay(messages: &[Msg]) -> Vec<Block> {
    let (last, earlier) = messages
        .split_last()
        .expect("normalized lists are not empty");
    let turns: Vec<&Msg> = earlier.iter().filter(|m| m.role != Role::System).collect();
    if turns.is_empty() {
        return last.blocks();
    }
    let mut attachments = Vec::new();
    let mut out = String::from("<conversation_history>\n");
    for m in turns {
        let tag = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
            _ => "tool",
        };
        let mut text = m.text.clone();
        for a in &m.attachments {
            attachments.push(a.clone());
            text.push_str(&format!(
                "\n(attachment {}: {})",
                attachments.len(),
                a.summary()
            ));
        }
        out.push_str(&format!("<{tag}>\n{text}\n</{tag}>\n"));
    }
    out.push_str("</conversation_history>\n\n");
    out.push_str(&last.text);
    let mut blocks = vec![Block::Text(out)];
    blocks.extend(attachments);
    blocks.extend(last.attachments.iter().cloned());
    blocks
}

/// Live conversations by the fingerprint of their history (bounded, with a TTL).
#[derive(Debug)]
pub struct FingerprintIndex {
    entries: Mutex<HashMap<Fingerprint, (String, Instant)>>,
    ttl: Duration,
    capacity: usize,
}

impl FingerprintIndex {
    /// An index keeping entries for `ttl`, at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Takes the session whose history has this fingerprint (each entry can be claimed once,
    /// so two concurrent continuations cannot both take one conversation).
    pub fn claim(&self, fp: &Fingerprint) -> Option<String> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (sid, at) = map.remove(fp)?;
        (at.elapsed() < self.ttl).then_some(sid)
    }

    /// Records that `session`'s history now has this fingerprint.
    pub fn register(&self, fp: Fingerprint, session: String) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity {
            let ttl = self.ttl;
            map.retain(|_, (_, at)| at.elapsed() < ttl);
            if map.len() >= self.capacity {
                // Still full: drop the oldest entry.
                if let Some(oldest) = map.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(fp, (session, Instant::now()));
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or_default()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The history of a finished turn as the next stateless request will send it.
pub fn extended(history: &[Msg], answer: &str) -> Vec<Msg> {
    let mut v = history.to_vec();
    v.push(Msg::text(Role::Assistant, answer));
    v
}
