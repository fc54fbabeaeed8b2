//! OpenAI chat messages → the conversation's neutral history ([`Msg`]): roles checked,
//! `name`s, tool calls and tool results made part of the text.

use claude_pool_actors::content::Block;
use serde_json::Value;

use crate::api::attachments;
use crate::conversation::{self, Msg};
use crate::error::ApiError;
use crate::openai::{ChatMessage, Content, ContentPart, Role};

/// A message's content: its text parts joined by newlines, and its images (`image_url`) and
/// documents (`file`), which only user messages may carry.
fn content(
    i: usize,
    role: conversation::Role,
    content: &Content,
) -> Result<(String, Vec<Block>), ApiError> {
    let parts = match content {
        Content::Text(text) => return Ok((text.clone(), Vec::new())),
        Content::Parts(parts) => parts,
    };
    let mut texts = Vec::new();
    let mut attachments = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let param = format!("messages[{i}].content[{j}]");
        let attachment = match part {
            ContentPart::Text { text } => {
                texts.push(text.as_str());
                continue;
            }
            ContentPart::ImageUrl { image_url } => image(&param, image_url)?,
            ContentPart::File { file } => document(&param, file)?,
            ContentPart::InputAudio { .. } => {
                return Err(ApiError::bad(
                    &param,
                    "audio input is not supported: send text, images or files",
                ));
            }
        };
        if role != conversation::Role::User {
            return Err(ApiError::bad(
                &param,
                "images and files are accepted in user messages only",
            ));
        }
        attachments.push(attachment);
    }
    Ok((texts.join("\n"), attachments))
}

/// `image_url`: `{"url": ..., "detail": ...}` (or the URL alone); a data URL or an http(s)
/// URL. `detail` is accepted: the model sizes images itself.
fn image(param: &str, image_url: &Value) -> Result<Block, ApiError> {
    let url = match image_url {
        Value::String(url) => Some(url.as_str()),
        other => other.get("url").and_then(Value::as_str),
    };
    let url = url.ok_or_else(|| ApiError::bad(param, "`image_url.url` is required"))?;
    attachments::image_from_url(&format!("{param}.image_url.url"), url)
}

/// `file`: `{"file_data": "data:application/pdf;base64,...", "filename": ...}`. Uploaded file
/// ids are not kept by this gateway.
fn document(param: &str, file: &Value) -> Result<Block, ApiError> {
    let title = file
        .get("filename")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(data) = file.get("file_data").and_then(Value::as_str) {
        return attachments::document_from_data(&format!("{param}.file.file_data"), data, title);
    }
    if let Some(url) = file.get("file_url").and_then(Value::as_str) {
        return attachments::document_url(&format!("{param}.file.file_url"), url, title);
    }
    if file.get("file_id").is_some() {
        return Err(ApiError::bad(
            param,
            "file ids are not supported (this gateway has no file store): send the file as `file_data`",
        ));
    }
    Err(ApiError::bad(param, "`file.file_data` is required"))
}

/// Normalizes and validates the request's messages; the last must be from the user.
pub(crate) fn normalize(messages: &[ChatMessage]) -> Result<Vec<Msg>, ApiError> {
    let out = normalize_history(messages)?;
    let last = out.last().expect("not empty");
    if last.role != conversation::Role::User {
        return Err(ApiError::bad(
            "messages",
            "the last message must have role `user`",
        ));
    }
    if last.text.trim().is_empty() && last.attachments.is_empty() {
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
        let role = match Role::parse(&m.role)
            .map_err(|message| ApiError::bad(&format!("messages[{i}].role"), message))?
        {
            Role::Developer | Role::System => conversation::Role::System,
            Role::User => conversation::Role::User,
            Role::Assistant => conversation::Role::Assistant,
            Role::Tool => conversation::Role::Tool,
        };
        let (text, attachments) = match &m.content {
            Some(c) => content(i, role, c)?,
            None => (String::new(), Vec::new()),
        };
        // A user's `name` says who speaks: the model reads it before the text (OpenAI's
        // participants in one conversation). Names elsewhere carry nothing the CLI can use.
        let text = match (&m.name, role) {
            (Some(name), conversation::Role::User) => {
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
            (conversation::Role::Assistant, Some(calls), _) if !calls.is_empty() => {
                conversation::with_tool_calls(&text, &Value::Array(calls.clone()))
            }
            (conversation::Role::Tool, _, Some(id)) => conversation::tool_result_text(id, &text),
            _ => text,
        };
        out.push(Msg {
            role,
            text,
            attachments,
        });
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

    fn replay_text(m: &[Msg]) -> String {
        claude_pool_actors::content::text_of(&replay(m))
    }

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    #[test]
    fn images_and_files_become_attachments_of_user_messages() {
        let m = msgs(&format!(
            r#"[{{"role":"user","content":[{{"type":"text","text":"what is this?"}},
                {{"type":"image_url","image_url":{{"url":"data:image/png;base64,{PNG}","detail":"low"}}}},
                {{"type":"image_url","image_url":{{"url":"https://example.com/a.jpg"}}}},
                {{"type":"file","file":{{"filename":"a.pdf","file_data":"data:application/pdf;base64,JVBERi0xLjQ="}}}}]}}]"#
        ));
        assert_eq!(m[0].text, "what is this?");
        assert_eq!(m[0].attachments.len(), 3);
        let blocks = m[0].blocks();
        assert_eq!(blocks.len(), 4);
        assert!(matches!(&blocks[3], Block::Document { title: Some(t), .. } if t == "a.pdf"));
        // The fingerprint tells images apart without holding them.
        let other = msgs(r#"[{"role":"user","content":"what is this?"}]"#);
        assert_ne!(fingerprint("k", &m), fingerprint("k", &other));
        // A replay names each earlier attachment and sends them after the transcript.
        let mut history = m.clone();
        history.push(Msg::text(conversation::Role::Assistant, "a dot"));
        history.extend(msgs(r#"[{"role":"user","content":"and now?"}]"#));
        let r = replay(&history);
        assert_eq!(r.len(), 4);
        let text = claude_pool_actors::content::text_of(&r);
        assert!(
            text.contains("(attachment 1: [image image/png sha256:"),
            "{text}"
        );
        assert!(text.ends_with("and now?"), "{text}");
    }

    #[test]
    fn attachments_outside_user_messages_and_audio_are_400s() {
        let r: ChatRequest = serde_json::from_str(&format!(
            r#"{{"model":"m","messages":[{{"role":"assistant","content":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{PNG}"}}}}]}},{{"role":"user","content":"x"}}]}}"#
        )).unwrap();
        match normalize(&r.messages).unwrap_err() {
            ApiError::BadRequest { param, .. } => {
                assert_eq!(param.as_deref(), Some("messages[0].content[0]"))
            }
            other => panic!("{other:?}"),
        }
        let r: ChatRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
        ).unwrap();
        assert!(normalize(&r.messages).is_err());
        let r: ChatRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,@@"}}]}]}"#,
        ).unwrap();
        match normalize(&r.messages).unwrap_err() {
            ApiError::BadRequest { param, message } => {
                assert_eq!(
                    param.as_deref(),
                    Some("messages[0].content[0].image_url.url")
                );
                assert!(message.contains("base64"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

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
        let r = replay_text(&m);
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
            replay_text(&msgs(
                r#"[{"role":"system","content":"s"},{"role":"user","content":"only"}]"#
            )),
            "only"
        );
        assert!(r.ends_with("</conversation_history>\n\nq2"));
        assert_eq!(
            replay_text(&msgs(r#"[{"role":"user","content":"only"}]"#)),
            "only"
        );
    }
}
