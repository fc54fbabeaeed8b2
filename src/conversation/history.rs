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
use crate::openai::Role;

/// A message reduced to what routing and replay need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Msg {
    /// Normalized role (`developer` counts as `system`).
    pub role: Role,
    /// The text (parts joined by newlines).
    pub text: String,
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
            Role::System | Role::Developer => b"s",
            Role::User => b"u",
            Role::Assistant => b"a",
            Role::Tool => b"t",
        };
        h.update(role);
        h.update((m.text.len() as u64).to_le_bytes());
        h.update(m.text.as_bytes());
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
/// transcript, then the new message. System messages are not part of it: they are the
/// conversation's system prompt ([`system_prompt`]).
pub fn replay(messages: &[Msg]) -> String {
    let (last, earlier) = messages
        .split_last()
        .expect("normalized lists are not empty");
    let turns: Vec<&Msg> = earlier.iter().filter(|m| m.role != Role::System).collect();
    if turns.is_empty() {
        return last.text.clone();
    }
    let mut out = String::from("<conversation_history>\n");
    for m in turns {
        let tag = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
            _ => "tool",
        };
        out.push_str(&format!("<{tag}>\n{}\n</{tag}>\n", m.text));
    }
    out.push_str("</conversation_history>\n\n");
    out.push_str(&last.text);
    out
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
    v.push(Msg {
        role: Role::Assistant,
        text: answer.to_owned(),
    });
    v
}
