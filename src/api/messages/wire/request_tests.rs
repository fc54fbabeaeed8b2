use claude_pool_actors::content::Source;
use serde_json::{Value, json};

use super::*;
use crate::tools::wire::ToolChoice;

/// A request as Claude Code 2.1.197 sends it (its default tools, system blocks with the
/// billing header and `cache_control`, adaptive thinking, `output_config`,
/// `context_management`, `metadata.user_id` as a JSON string).
const CLAUDE_CODE: &str = include_str!("testdata/claude_code_request.json");

/// A 1x1 PNG.
pub(super) const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

fn request(v: Value) -> MessagesRequest {
    serde_json::from_value(v).unwrap()
}

pub(super) fn decode(v: Value) -> Result<Decoded, WireError> {
    request(v).decode()
}

pub(super) fn minimal(messages: Value) -> Value {
    json!({"model": "sonnet", "max_tokens": 100, "messages": messages})
}

pub(super) fn user(content: Value) -> Value {
    minimal(json!([{"role": "user", "content": content}]))
}

#[test]
fn a_claude_code_request_decodes() {
    let d = MessagesRequest::from_slice(CLAUDE_CODE.as_bytes())
        .unwrap()
        .decode()
        .unwrap();
    assert_eq!(d.model, "claude-opus-4-8");
    assert_eq!(d.max_tokens, 64000);
    assert!(d.stream);
    assert_eq!(d.thinking, Thinking::Adaptive);
    assert!(d.thinking.requested());
    let system = d.system.clone().unwrap();
    assert!(system.starts_with("You are a Claude agent"), "{system}");
    assert!(system.contains("\n\nCWD: /tmp/cap/cwd"), "{system}");
    assert!(!system.contains(BILLING_HEADER_PREFIX));
    assert_eq!(d.messages.len(), 1);
    let m = &d.messages[0];
    assert_eq!(m.role, Role::User);
    assert_eq!(m.content.len(), 2);
    assert!(
        m.text.ends_with("</system-reminder>\n\n\nhello there"),
        "{}",
        m.text
    );
    let tools = d.tools.clone().unwrap();
    let names: Vec<&str> = tools.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["Bash", "Edit", "Read"]);
    assert_eq!(tools.choice, ToolChoice::Auto);
    assert_eq!(
        tools.functions[0].parameters["required"],
        json!(["command"])
    );
    assert_eq!(
        d.session_hint.as_deref(),
        Some("5ed134e7-df82-4dbc-a24f-711b67dd374d")
    );
    assert!(d.user_id.as_deref().unwrap().contains("device_id"));
    assert!(d.trailing_tool_results().is_empty());
}

#[test]
fn session_hints_come_from_both_user_id_forms() {
    let json_form = r#"{"device_id":"abc","account_uuid":"","session_id":"5ed134e7-df82-4dbc-a24f-711b67dd374d"}"#;
    assert_eq!(
        session_hint(json_form).as_deref(),
        Some("5ed134e7-df82-4dbc-a24f-711b67dd374d")
    );
    let old = "user_7b27d1_account_0d4ee3c2-1111-2222-3333-444455556666_session_9f0e1d2c-aaaa-bbbb-cccc-ddddeeeeffff";
    assert_eq!(
        session_hint(old).as_deref(),
        Some("9f0e1d2c-aaaa-bbbb-cccc-ddddeeeeffff")
    );
    assert_eq!(
        session_hint("user_ab_account__session_s-1").as_deref(),
        Some("s-1")
    );
    for none in [
        "",
        "alice",
        "{not json",
        r#"{"device_id":"abc"}"#,
        r#"{"session_id":""}"#,
        r#"{"session_id":"has space"}"#,
        "user_a_session_",
    ] {
        assert_eq!(session_hint(none), None, "{none}");
    }
    assert_eq!(
        session_hint(&format!("x_session_{}", "a".repeat(129))),
        None
    );
}

#[test]
fn images_documents_and_tool_results_decode_to_blocks() {
    let d = decode(user(json!([
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true, "content": [
            {"type": "text", "text": "see"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        ]},
        {"type": "tool_result", "tool_use_id": "toolu_3"},
        {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "document", "title": "spec", "context": "c", "citations": {"enabled": true},
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
    ])))
    .unwrap();
    let m = &d.messages[0];
    assert_eq!(
        m.content,
        vec![
            Block::ToolResult {
                call_id: "toolu_1".into(),
                content: vec![Block::text("42")],
                is_error: false,
            },
            Block::ToolResult {
                call_id: "toolu_2".into(),
                content: vec![
                    Block::text("see"),
                    Block::Image(Source::Url("https://example.com/a.png".into())),
                ],
                is_error: true,
            },
            Block::ToolResult {
                call_id: "toolu_3".into(),
                content: vec![],
                is_error: false,
            },
            Block::text("look"),
            Block::Image(Source::Base64 {
                media_type: "image/png".into(),
                data: PNG.into(),
            }),
            Block::Document {
                source: Source::Base64 {
                    media_type: "application/pdf".into(),
                    data: "JVBERi0xLjQK".into(),
                },
                title: Some("spec".into()),
            },
            Block::Document {
                source: Source::Text("plain".into()),
                title: None,
            },
            Block::Document {
                source: Source::Url("https://example.com/a.pdf".into()),
                title: None,
            },
        ]
    );
    assert_eq!(m.text, "look");
    let results = d.trailing_tool_results();
    assert_eq!(results.len(), 3);
    assert!(matches!(results[1], Block::ToolResult { call_id, .. } if call_id == "toolu_2"));
}

#[test]
fn assistant_history_keeps_text_and_tool_calls_and_drops_thinking() {
    let d = decode(minimal(json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "xyz"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}},
        ]},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "sunny"}]},
    ])))
    .unwrap();
    assert_eq!(d.messages.len(), 3);
    let a = &d.messages[1];
    assert_eq!(a.role, Role::Assistant);
    assert_eq!(a.content, vec![Block::text("Let me check.")]);
    assert_eq!(a.text, "Let me check.");
    assert_eq!(a.tool_uses.len(), 1);
    assert_eq!(a.tool_uses[0].id, "toolu_9");
    assert_eq!(a.tool_uses[0].input, json!({"city": "Paris"}));
    assert_eq!(d.system.as_deref(), Some("Answer in French."));
    assert_eq!(d.trailing_tool_results().len(), 1);
    assert_eq!(d.thinking, Thinking::Off);
    assert!(!d.stream);
}

#[test]
fn system_prompts_join_and_optional_fields_are_read() {
    let d = decode(json!({
        "model": "opus", "max_tokens": 2048, "stream": false,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=9;"},
            {"type": "text", "text": "one", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "text", "text": "two"},
        ],
        "messages": [{"role": "user", "content": "hi"}],
        "stop_sequences": ["\n\nHuman:", "END"],
        "temperature": 0.7, "top_p": 1, "top_k": 0,
        "metadata": {"user_id": "alice"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "output_config": {"effort": "low"}, "service_tier": "auto", "container": null,
        "mcp_servers": [], "context_management": {"edits": []}, "something_new": {"x": 1},
    }))
    .unwrap();
    assert_eq!(d.system.as_deref(), Some("one\n\ntwo"));
    assert_eq!(d.stop_sequences, ["\n\nHuman:", "END"]);
    assert_eq!(d.user_id.as_deref(), Some("alice"));
    assert_eq!(d.session_hint, None);
    assert_eq!(
        d.thinking,
        Thinking::Enabled {
            budget_tokens: 1024
        }
    );
    assert_eq!(d.tools, None);
    let off = decode(json!({"model": "m", "max_tokens": 1, "system": "",
        "thinking": {"type": "disabled"}, "messages": [{"role": "user", "content": "x"}]}))
    .unwrap();
    assert_eq!(off.system, None);
    assert_eq!(off.thinking, Thinking::Off);
}

#[test]
fn count_tokens_requests_need_no_max_tokens() {
    let r = request(
        json!({"model": "sonnet", "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 5000}}),
    );
    assert_eq!(
        r.decode().unwrap_err().to_string(),
        "max_tokens: Field required"
    );
    assert_eq!(r.decode_for_count().unwrap().max_tokens, 0);
}

#[test]
fn bodies_that_are_not_objects_are_refused() {
    for body in ["", "[]", "{\"model\":", "42"] {
        let e = MessagesRequest::from_slice(body.as_bytes()).unwrap_err();
        assert_eq!(e.param, "", "{body}");
    }
    assert!(MessagesRequest::from_slice(b"{\"model\": 5}").is_ok());
}

#[test]
fn base64_is_checked_without_keeping_the_bytes() {
    assert!(content::is_base64(PNG));
    assert!(content::is_base64("YWJj"));
    assert!(content::is_base64("YWI"), "unpadded");
    assert!(!content::is_base64("YW=j"));
    assert!(!content::is_base64("Y"));
    assert!(!content::is_base64("data:image/png;base64,YWJj"));
    let long = "QUJD".repeat(5000);
    assert!(content::is_base64(&long));
    assert!(!content::is_base64(&format!("{long}!")));
}
