//! OpenAI chat messages → the conversation's neutral history ([`Msg`]): roles checked,
//! `name`s, tool calls and tool results made part of the text.

use crate::conversation::Msg;
use crate::error::ApiError;
use crate::openai::{ChatMessage, Role};

/// Normalizes and validates the request's messages; the last must be from the user.
pub(crate) fn normalize(messages: &[ChatMessage]) -> Result<Vec<Msg>, ApiError> {
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
pub(crate) fn normalize_history(messages: &[ChatMessage]) -> Result<Vec<Msg>, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::*;
    use crate::openai::ChatRequest;
    use std::time::Duration;

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
