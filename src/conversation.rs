//! From OpenAI message lists to pool turns.
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
use crate::openai::{ChatMessage, Role};

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

/// Normalizes and validates the request's messages; the last must be from the user.
pub fn normalize(messages: &[ChatMessage]) -> Result<Vec<Msg>, ApiError> {
    let out = normalize_history(messages)?;
    let last = out.last().expect("not empty");
    if last.role != Role::User {
        return Err(ApiError::bad(
            "messages",
            "the last message must have role `user`",
        ));
    }
    if last.text.trim().is_empty() {
        return Err(ApiError::bad(
            "messages",
            "the last user message must not be empty",
        ));
    }
    Ok(out)
}

/// Like [`normalize`], for any message list (one that ends with tool results, say). An
/// assistant message's tool calls and a tool message's call id are part of their text, so a
/// replayed history shows them and fingerprints tell tool rounds apart.
pub fn normalize_history(messages: &[ChatMessage]) -> Result<Vec<Msg>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::bad("messages", "`messages` must not be empty"));
    }
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let text = match &m.content {
            Some(c) => c.text().map_err(|part| {
                ApiError::bad(
                    &format!("messages[{i}].content"),
                    format!("unsupported content part `{part}`: only text parts are supported"),
                )
            })?,
            None => String::new(),
        };
        let role = match Role::parse(&m.role)
            .map_err(|message| ApiError::bad(&format!("messages[{i}].role"), message))?
        {
            Role::Developer => Role::System,
            r => r,
        };
        // A user's `name` says who speaks: the model reads it before the text (OpenAI's
        // participants in one conversation). Names elsewhere carry nothing the CLI can use.
        let text = match (&m.name, role) {
            (Some(name), Role::User) => {
                check_name(i, name)?;
                format!("{name}: {text}")
            }
            (Some(name), _) => {
                check_name(i, name)?;
                text
            }
            (None, _) => text,
        };
        let text = match (role, &m.tool_calls, &m.tool_call_id) {
            (Role::Assistant, Some(calls), _) if !calls.is_empty() => {
                let calls = serde_json::Value::Array(calls.clone());
                format!("{text}\n[tool calls: {calls}]")
            }
            (Role::Tool, _, Some(id)) => format!("[result of tool call {id}]\n{text}"),
            _ => text,
        };
        out.push(Msg { role, text });
    }
    Ok(out)
}

/// OpenAI's rule for `name`: 1-64 of `a-z A-Z 0-9 _ -`.
fn check_name(i: usize, name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(
            &format!("messages[{i}].name"),
            "`name` must be 1-64 letters, digits, `_` or `-`",
        ))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::ChatRequest;

    fn msgs(json: &str) -> Vec<Msg> {
        let r: ChatRequest =
            serde_json::from_str(&format!(r#"{{"model":"m","messages":{json}}}"#)).unwrap();
        normalize(&r.messages).unwrap()
    }

    #[test]
    fn validation_errors_are_400s() {
        let r: ChatRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}"#,
        )
        .unwrap();
        assert!(normalize(&r.messages).is_err());
        assert!(normalize(&[]).is_err());
        // Roles and names: clear messages naming the field.
        let error = |json: &str| {
            let r: ChatRequest =
                serde_json::from_str(&format!(r#"{{"model":"m","messages":{json}}}"#)).unwrap();
            match normalize(&r.messages).unwrap_err() {
                ApiError::BadRequest { message, param } => (param.unwrap_or_default(), message),
                other => panic!("{other:?}"),
            }
        };
        let (param, message) = error(r#"[{"role":"function","name":"f","content":"x"}]"#);
        assert_eq!(param, "messages[0].role");
        assert!(
            message.contains("`function`") && message.contains("`tool`"),
            "{message}"
        );
        let (_, message) = error(r#"[{"role":"wizard","content":"x"}]"#);
        assert!(message.contains("unknown role `wizard`"), "{message}");
        let (param, _) = error(r#"[{"role":"user","name":"no spaces","content":"x"}]"#);
        assert_eq!(param, "messages[0].name");
    }

    #[test]
    fn a_users_name_is_read_before_the_text() {
        let m = msgs(r#"[{"role":"user","name":"alice","content":"hi"}]"#);
        assert_eq!(m[0].text, "alice: hi");
        let plain = msgs(r#"[{"role":"user","content":"hi"}]"#);
        assert_ne!(fingerprint("k", &m), fingerprint("k", &plain));
    }

    #[test]
    fn a_continuation_matches_the_previous_turns_fingerprint() {
        let first = msgs(r#"[{"role":"system","content":"s"},{"role":"user","content":"hi"}]"#);
        let registered = fingerprint("key-a", &extended(&first, "hello"));
        let second = msgs(
            r#"[{"role":"system","content":"s"},{"role":"user","content":"hi"},
               {"role":"assistant","content":"hello"},{"role":"user","content":"more"}]"#,
        );
        assert_eq!(
            fingerprint("key-a", &second[..second.len() - 1]),
            registered
        );
        assert_ne!(
            fingerprint("key-b", &second[..second.len() - 1]),
            registered,
            "another key's identical history is another conversation"
        );
        let other = msgs(
            r#"[{"role":"system","content":"s"},{"role":"user","content":"hi"},
               {"role":"assistant","content":"HELLO"},{"role":"user","content":"more"}]"#,
        );
        assert_ne!(fingerprint("key-a", &other[..other.len() - 1]), registered);
    }

    #[test]
    fn claims_are_single_use_and_expire() {
        let idx = FingerprintIndex::new(Duration::from_secs(60), 2);
        idx.register([1; 16], "a".into());
        assert_eq!(idx.claim(&[1; 16]).as_deref(), Some("a"));
        assert_eq!(idx.claim(&[1; 16]), None);
        for i in 0..5 {
            idx.register([i; 16], format!("s{i}"));
        }
        assert!(idx.len() <= 2);
        let short = FingerprintIndex::new(Duration::ZERO, 8);
        short.register([9; 16], "x".into());
        assert_eq!(short.claim(&[9; 16]), None);
    }

    #[test]
    fn replay_renders_history_and_system_messages_become_the_system_prompt() {
        let m = msgs(
            r#"[{"role":"developer","content":"be brief"},{"role":"user","content":"q1"},
               {"role":"assistant","content":"a1"},{"role":"system","content":"and kind"},
               {"role":"user","content":"q2"}]"#,
        );
        let r = replay(&m);
        assert!(!r.contains("be brief") && !r.contains("and kind"), "{r}");
        assert!(r.starts_with(
            "<conversation_history>\n<user>\nq1\n</user>\n<assistant>\na1\n</assistant>"
        ));
        assert_eq!(
            system_prompt(&m).unwrap().as_deref(),
            Some("be brief\n\nand kind")
        );
        assert_eq!(system_prompt(&m[1..2]).unwrap(), None);
        let huge = format!(
            r#"[{{"role":"system","content":"{}"}},{{"role":"user","content":"x"}}]"#,
            "a".repeat(MAX_SYSTEM_PROMPT + 1)
        );
        assert!(system_prompt(&msgs(&huge)).is_err());
        assert_eq!(
            replay(&msgs(
                r#"[{"role":"system","content":"s"},{"role":"user","content":"only"}]"#
            )),
            "only"
        );
        assert!(r.ends_with("</conversation_history>\n\nq2"));
        assert_eq!(
            replay(&msgs(r#"[{"role":"user","content":"only"}]"#)),
            "only"
        );
    }
}
