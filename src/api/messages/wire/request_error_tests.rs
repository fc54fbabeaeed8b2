//! Every refused request names the part at fault, in the API's wording.

use serde_json::{Value, json};

use super::content;
use super::tests::{PNG, decode, minimal, user};

#[test]
fn every_error_names_its_part() {
    let img = |source: Value| {
        user(json!([{"type": "text", "text": "x"}, {"type": "image", "source": source}]))
    };
    let too_big = "A".repeat(content::MAX_IMAGE_BASE64_LEN + 4);
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"max_tokens": 1, "messages": []}),
            "model",
            "Field required",
        ),
        (
            json!({"model": 5, "max_tokens": 1}),
            "model",
            "valid string",
        ),
        (json!({"model": "", "max_tokens": 1}), "model", "at least 1"),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            "max_tokens",
            "Field required",
        ),
        (
            json!({"model": "m", "max_tokens": 0}),
            "max_tokens",
            "greater than or equal to 1",
        ),
        (
            json!({"model": "m", "max_tokens": -3}),
            "max_tokens",
            "greater than or equal to 1",
        ),
        (
            json!({"model": "m", "max_tokens": "9"}),
            "max_tokens",
            "valid integer",
        ),
        (
            json!({"model": "m", "max_tokens": 1.5}),
            "max_tokens",
            "valid integer",
        ),
        (
            json!({"model": "m", "max_tokens": 1}),
            "messages",
            "Field required",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": {}}),
            "messages",
            "valid list",
        ),
        (minimal(json!([])), "messages", "at least one"),
        (
            minimal(json!([{"role": "system", "content": "s"}])),
            "messages",
            "at least one",
        ),
        (minimal(json!(["hi"])), "messages.0", "object"),
        (
            minimal(json!([{"content": "x"}])),
            "messages.0.role",
            "Field required",
        ),
        (
            minimal(json!([{"role": "tool", "content": "x"}])),
            "messages.0.role",
            "'user' or 'assistant'",
        ),
        (
            minimal(json!([{"role": "user"}])),
            "messages.0.content",
            "Field required",
        ),
        (user(json!(5)), "messages.0.content", "string or a list"),
        (
            user(json!([{"text": "x"}])),
            "messages.0.content.0.type",
            "Field required",
        ),
        (
            user(json!([{"type": "text"}])),
            "messages.0.content.0.text",
            "Field required",
        ),
        (
            user(json!([{"type": "search_result", "source": "s"}])),
            "messages.0.content.0",
            "`search_result` is not supported",
        ),
        (
            user(json!([{"type": "thinking", "thinking": "t"}])),
            "messages.0.content.0",
            "assistant messages",
        ),
        (
            user(json!([{"type": "tool_use", "id": "t", "name": "n", "input": {}}])),
            "messages.0.content.0",
            "assistant messages",
        ),
        (
            minimal(
                json!([{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]}]),
            ),
            "messages.1.content.0",
            "`server_tool_use` is not supported",
        ),
        (
            minimal(
                json!([{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "web_search_tool_result", "tool_use_id": "s", "content": []}]}]),
            ),
            "messages.1.content.0",
            "`web_search_tool_result` is not supported",
        ),
        (
            minimal(
                json!([{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "image", "source": {"type": "url", "url": "https://x"}}]}]),
            ),
            "messages.1.content.0",
            "user messages",
        ),
        (
            minimal(
                json!([{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": "{}"}]}]),
            ),
            "messages.1.content.0.input",
            "object",
        ),
        (
            minimal(
                json!([{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "tool_use", "name": "n", "input": {}}]}]),
            ),
            "messages.1.content.0.id",
            "Field required",
        ),
        (
            img(json!(null)),
            "messages.0.content.1.source",
            "Field required",
        ),
        (img(json!("x")), "messages.0.content.1.source", "object"),
        (
            img(json!({"media_type": "image/png"})),
            "messages.0.content.1.source.type",
            "Field required",
        ),
        (
            img(json!({"type": "base64", "media_type": "image/png", "data": "%%%"})),
            "messages.0.content.1.source.data",
            "invalid base64",
        ),
        (
            img(json!({"type": "base64", "media_type": "image/png", "data": ""})),
            "messages.0.content.1.source.data",
            "empty",
        ),
        (
            img(json!({"type": "base64", "media_type": "image/png"})),
            "messages.0.content.1.source.data",
            "Field required",
        ),
        (
            img(json!({"type": "base64", "media_type": "image/bmp", "data": PNG})),
            "messages.0.content.1.source.media_type",
            "'image/jpeg'",
        ),
        (
            img(json!({"type": "base64", "media_type": "image/png", "data": too_big})),
            "messages.0.content.1.source.data",
            "exceeds 5 MB",
        ),
        (
            img(json!({"type": "url"})),
            "messages.0.content.1.source.url",
            "Field required",
        ),
        (
            img(json!({"type": "url", "url": "file:///etc/passwd"})),
            "messages.0.content.1.source.url",
            "http",
        ),
        (
            img(json!({"type": "file", "file_id": "file_1"})),
            "messages.0.content.1.source.type",
            "Files API",
        ),
        (
            user(
                json!([{"type": "document", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]),
            ),
            "messages.0.content.0.source.media_type",
            "'application/pdf'",
        ),
        (
            user(
                json!([{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER@"}}]),
            ),
            "messages.0.content.0.source.data",
            "invalid base64",
        ),
        (
            user(
                json!([{"type": "document", "source": {"type": "text", "media_type": "text/html", "data": "<p>"}}]),
            ),
            "messages.0.content.0.source.media_type",
            "'text/plain'",
        ),
        (
            user(json!([{"type": "document", "source": {"type": "text"}}])),
            "messages.0.content.0.source.data",
            "Field required",
        ),
        (
            user(json!([{"type": "document", "source": {"type": "content", "content": "x"}}])),
            "messages.0.content.0.source.type",
            "`content` is not supported",
        ),
        (
            user(
                json!([{"type": "document", "title": 3, "source": {"type": "text", "data": "x"}}]),
            ),
            "messages.0.content.0.title",
            "valid string",
        ),
        (
            user(json!([{"type": "tool_result"}])),
            "messages.0.content.0.tool_use_id",
            "Field required",
        ),
        (
            user(json!([{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}])),
            "messages.0.content.0.is_error",
            "boolean",
        ),
        (
            user(json!([{"type": "tool_result", "tool_use_id": "t", "content": 7}])),
            "messages.0.content.0.content",
            "string or a list",
        ),
        (
            user(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "search_result"}]}]),
            ),
            "messages.0.content.0.content.0",
            "`search_result` is not supported",
        ),
        (
            user(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "!"}}]}]),
            ),
            "messages.0.content.0.content.0.source.data",
            "invalid base64",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "system": 5}),
            "system",
            "string or a list",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "system": [{"type": "image"}]}),
            "system.0.type",
            "text",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "system": [{"type": "text"}]}),
            "system.0.text",
            "Field required",
        ),
        (
            minimal(json!([{"role": "system", "content": 5}])),
            "messages.0.content",
            "string or a list",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "stream": "yes"}),
            "stream",
            "boolean",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "temperature": 1.5}),
            "temperature",
            "less than or equal to 1",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "temperature": -0.1}),
            "temperature",
            "greater than or equal to 0",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "top_p": "x"}),
            "top_p",
            "valid number",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "top_k": -1}),
            "top_k",
            "greater than or equal to 0",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "stop_sequences": "END"}),
            "stop_sequences",
            "valid list",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "stop_sequences": ["a", 1]}),
            "stop_sequences.1",
            "valid string",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "stop_sequences": [" \n"]}),
            "stop_sequences.0",
            "non-whitespace",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "metadata": "x"}),
            "metadata",
            "object",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "metadata": {"user_id": 5}}),
            "metadata.user_id",
            "valid string",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "thinking": {"type": "enabled"}}),
            "thinking.enabled.budget_tokens",
            "Field required",
        ),
        (
            json!({"model": "m", "max_tokens": 9000, "thinking": {"type": "enabled", "budget_tokens": 1023}}),
            "thinking.enabled.budget_tokens",
            "1024",
        ),
        (
            json!({"model": "m", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2000}}),
            "max_tokens",
            "greater than thinking.budget_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "thinking": {"type": "sometimes"}}),
            "thinking.type",
            "'adaptive'",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "thinking": {}}),
            "thinking.type",
            "Field required",
        ),
        (
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            "tools.0",
            "server tool web_search_20250305 is not supported by this gateway",
        ),
    ];
    for (body, param, says) in cases {
        let e = decode(body.clone()).unwrap_err();
        assert_eq!(e.param, param, "{body}: {e}");
        assert!(e.message.contains(says), "{body}: {e}");
        assert_eq!(e.to_string(), format!("{param}: {}", e.message));
    }
}
