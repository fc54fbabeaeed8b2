//! Parsing tests on lines captured from the real CLI (2.1.197) against the fake Anthropic API.

use super::*;
use crate::content::Block;

const FIXTURE: &str = include_str!("../tests/fixtures/real-cli-2.1.197.jsonl");

fn events() -> Vec<CliEvent> {
    FIXTURE
        .lines()
        .map(|l| parse_line(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn every_real_line_parses_and_none_is_unknown() {
    let evs = events();
    assert_eq!(evs.len(), 81);
    assert!(!evs.iter().any(|e| matches!(e, CliEvent::Unknown { .. })));
    let count = |f: fn(&CliEvent) -> bool| evs.iter().filter(|e| f(e)).count();
    assert_eq!(count(|e| matches!(e, CliEvent::Result(_))), 7);
    assert_eq!(count(|e| matches!(e, CliEvent::SystemInit { .. })), 7);
    assert_eq!(count(|e| matches!(e, CliEvent::ControlResponse { .. })), 2);
    assert_eq!(count(|e| matches!(e, CliEvent::User { .. })), 1);
}

#[test]
fn text_deltas_reassemble_the_answer() {
    let evs = events();
    let mut text = String::new();
    for e in &evs {
        match e {
            CliEvent::TextDelta(t) => text.push_str(t),
            CliEvent::Result(_) => break,
            _ => {}
        }
    }
    assert_eq!(text, "echo: hello [n=1]");
}

#[test]
fn results_carry_cost_usage_and_session() {
    let results: Vec<ResultLine> = events()
        .into_iter()
        .filter_map(|e| match e {
            CliEvent::Result(r) => Some(r),
            _ => None,
        })
        .collect();
    let first = &results[0];
    assert_eq!(first.subtype, "success");
    assert!(!first.is_error);
    assert_eq!(first.result.as_deref(), Some("echo: hello [n=1]"));
    assert_eq!(first.usage.input_tokens, 12);
    assert_eq!(first.usage.output_tokens, 4);
    assert_eq!(first.num_turns, 1);
    assert_eq!(first.stop_reason.as_deref(), Some("end_turn"));
    assert!(first.total_cost_usd.unwrap() > 0.0);
    assert_eq!(
        first.session_id.as_deref(),
        Some("563f19f6-5892-474d-ba1f-175ac9969d26")
    );
    // /clear: a zero-turn success; cumulative cost unchanged.
    let clear = &results[2];
    assert_eq!(clear.num_turns, 0);
    assert_eq!(clear.total_cost_usd, results[1].total_cost_usd);
    // The interrupted turn.
    let interrupted = &results[4];
    assert!(interrupted.is_error && interrupted.is_interrupted());
    // Upstream 500 with retries disabled.
    let upstream = &results[5];
    assert!(upstream.is_error && !upstream.is_interrupted());
    assert_eq!(upstream.api_error_status, Some(500));
    assert!(
        upstream
            .result
            .as_deref()
            .unwrap()
            .starts_with("API Error: 500")
    );
}

#[test]
fn control_responses_and_init_are_understood() {
    let evs = events();
    assert!(
        matches!(&evs[0], CliEvent::ControlResponse { request_id, success: true, .. } if request_id == "r1")
    );
    assert!(
        matches!(&evs[1], CliEvent::SystemInit { session_id, cwd: Some(_), .. } if session_id.len() == 36)
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, CliEvent::Assistant { model: Some(m), .. } if m == "<synthetic>"))
    );
}

#[test]
fn a_resume_without_transcript_is_reported_in_errors() {
    // Printed by CLI 2.1.197 for `--resume <id>` when `<id>.jsonl` does not exist (then exit 1).
    let line = r#"{"type":"result","subtype":"error_during_execution","duration_ms":0,"duration_api_ms":0,"is_error":true,"num_turns":0,"stop_reason":null,"session_id":"44d82446-5c4e-43d1-93d0-998e1ce91c4e","total_cost_usd":0,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard"},"modelUsage":{},"permission_denials":[],"uuid":"7190794b-3a57-4921-93b5-f28b7c9e90bc","errors":["No conversation found with session ID: 44d82446-5c4e-43d1-93d0-998e1ce91c4e"]}"#;
    let CliEvent::Result(r) = parse_line(line).unwrap() else {
        panic!("a result line");
    };
    assert!(r.is_error);
    assert_eq!(
        r.errors,
        ["No conversation found with session ID: 44d82446-5c4e-43d1-93d0-998e1ce91c4e"]
    );
}

#[test]
fn assistant_messages_carry_their_transcript_id() {
    // The id a worker waits for in the transcript before it reports a turn complete.
    let ids: Vec<String> = events()
        .into_iter()
        .filter_map(|e| match e {
            CliEvent::Assistant { uuid, .. } => uuid,
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 7);
    assert!(ids.contains(&"8064cce5-b95a-4e8c-b094-5968a4c307a6".to_owned()));
}

#[test]
fn api_retry_garbage_and_unknown_lines() {
    let retry = r#"{"type":"system","subtype":"api_retry","attempt":4,"max_retries":10,"retry_delay_ms":4953,"error_status":401,"error":"authentication_failed","session_id":"x"}"#;
    assert_eq!(
        parse_line(retry).unwrap(),
        CliEvent::ApiRetry {
            attempt: 4,
            max_retries: 10,
            retry_delay_ms: 4953,
            error_status: Some(401),
            error: Some("authentication_failed".into()),
        }
    );
    assert!(parse_line("this is not json {").is_err());
    assert!(parse_line("[1,2]").is_err());
    assert!(parse_line(r#"{"no_type":1}"#).is_err());
    assert_eq!(
        parse_line(r#"{"type":"rate_limit_event","x":1}"#).unwrap(),
        CliEvent::Unknown {
            kind: "rate_limit_event".into()
        }
    );
    assert!(matches!(
        parse_line(r#"{"type":"stream_event","event":{"type":"content_block_delta","delta":{"type":"input_json_delta","partial_json":"{"}}}"#).unwrap(),
        CliEvent::StreamOther { event_type } if event_type == "content_block_delta"
    ));
}

const THINKING_FIXTURE: &str =
    include_str!("../tests/fixtures/real-cli-2.1.197-thinking-attachments.jsonl");

#[test]
fn thinking_and_its_signature_come_before_the_text() {
    // A `[[think]]` turn (the fake API thinks when asked, as the CLI enables adaptive thinking
    // by default), then a turn with attachments, as CLI 2.1.197 prints them.
    let evs: Vec<CliEvent> = THINKING_FIXTURE
        .lines()
        .map(|l| parse_line(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!evs.iter().any(|e| matches!(e, CliEvent::Unknown { .. })));
    let deltas: Vec<&CliEvent> = evs
        .iter()
        .filter(|e| {
            matches!(
                e,
                CliEvent::TextDelta(_) | CliEvent::ThinkingDelta(_) | CliEvent::SignatureDelta(_)
            )
        })
        .collect();
    assert_eq!(
        deltas[..3],
        [
            &CliEvent::ThinkingDelta("thinking about: why? [[think]]".into()),
            &CliEvent::SignatureDelta("sig-fake-884c4cf8".into()),
            &CliEvent::TextDelta("echo: why? [[thi".into()),
        ]
    );
    let thinking = evs
        .iter()
        .filter(|e| matches!(e, CliEvent::ThinkingDelta(_) | CliEvent::SignatureDelta(_)))
        .count();
    assert_eq!(thinking, 2, "only the first turn thought");
    // The thinking block's own assistant line carries no text.
    let texts: Vec<&str> = evs
        .iter()
        .filter_map(|e| match e {
            CliEvent::Assistant { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts[..2], ["", "echo: why? [[think]] [n=1]"]);
    let Some(CliEvent::Result(r)) = evs.last() else {
        panic!("a result last")
    };
    assert_eq!(
        r.result.as_deref(),
        Some(
            "echo: what is this? [image base64 image/png 68 bytes sha256:63ef318d] \
             [document base64 application/pdf 15 bytes sha256:ef381f48] [document text 11 chars] \
             [image url https://example.com/a.png] [n=3]"
        )
    );
}

#[test]
fn content_deltas_of_each_kind() {
    let delta = |d: &str| {
        parse_line(&format!(
            r#"{{"type":"stream_event","event":{{"type":"content_block_delta","index":0,"delta":{d}}}}}"#
        ))
        .unwrap()
    };
    assert_eq!(
        delta(r#"{"type":"text_delta","text":"a\"b"}"#),
        CliEvent::TextDelta("a\"b".into())
    );
    assert_eq!(
        delta(r#"{"type":"thinking_delta","thinking":"hm\n"}"#),
        CliEvent::ThinkingDelta("hm\n".into())
    );
    assert_eq!(
        delta(r#"{"type":"signature_delta","signature":"EqQBCkYI"}"#),
        CliEvent::SignatureDelta("EqQBCkYI".into())
    );
    // A delta without its field is another stream event, not an empty piece.
    assert!(matches!(
        delta(r#"{"type":"thinking_delta"}"#),
        CliEvent::StreamOther { .. }
    ));
}

#[test]
fn input_lines_have_the_cli_shapes() {
    let line = user_message_line(&[Block::text("hi \"there\"\n")]);
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["type"], "user");
    assert_eq!(v["message"]["role"], "user");
    assert_eq!(
        v["message"]["content"],
        serde_json::json!([{"type": "text", "text": "hi \"there\"\n"}, {"type": "text", "text": ""}])
    );
    let v: serde_json::Value = serde_json::from_str(&command_line("/clear")).unwrap();
    assert_eq!(v["message"]["content"], "/clear");
    for (req, sub) in [
        (ControlRequest::Initialize, "initialize"),
        (ControlRequest::Interrupt, "interrupt"),
    ] {
        let v: serde_json::Value = serde_json::from_str(&control_request_line("r9", req)).unwrap();
        assert_eq!(v["type"], "control_request");
        assert_eq!(v["request_id"], "r9");
        assert_eq!(v["request"]["subtype"], sub);
    }
}

#[test]
fn a_user_line_carries_every_kind_of_block_then_the_empty_one() {
    use crate::content::Source;
    let base64 = |media_type: &str, data: &str| Source::Base64 {
        media_type: media_type.into(),
        data: data.into(),
    };
    let content = [
        Block::text("/cost of this?"),
        Block::Image(base64("image/png", "iVBORw0KGgo=")),
        Block::Image(Source::Url("https://example.com/a.png".into())),
        Block::Document {
            source: base64("application/pdf", "JVBERi0xLjQ="),
            title: Some("spec".into()),
        },
        Block::Document {
            source: Source::Text("plain words".into()),
            title: None,
        },
        Block::ToolResult {
            call_id: "toolu_1".into(),
            content: vec![Block::text("12C")],
            is_error: true,
        },
    ];
    let line = user_message_line(&content);
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        v["message"]["content"],
        serde_json::json!([
            {"type": "text", "text": "/cost of this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="}, "title": "spec"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "12C"}], "is_error": true},
            {"type": "text", "text": ""},
        ]),
        "the client's blocks in order, then the empty block that keeps them from running as a command"
    );
    let v: serde_json::Value = serde_json::from_str(&user_message_line(&[])).unwrap();
    assert_eq!(
        v["message"]["content"],
        serde_json::json!([{"type": "text", "text": ""}])
    );
}

#[test]
fn mid_turn_usage_is_reported_and_priced_like_the_cli() {
    let evs = events();
    let mut usage = Vec::new();
    for e in &evs {
        match e {
            CliEvent::MessageUsage {
                usage: u,
                start,
                model,
            } => usage.push((*u, *start, model.clone())),
            CliEvent::Result(r) => {
                let (start, delta) = (&usage[0], &usage[1]);
                assert!(start.1 && !delta.1);
                assert_eq!(start.2.as_deref(), Some("claude-opus-4-8"));
                assert_eq!(start.0.input_tokens, 12);
                assert_eq!(delta.0.output_tokens, 4);
                let mut meter = crate::pricing::CostMeter::default();
                meter.on_usage(&start.0, true, start.2.as_deref());
                meter.on_usage(&delta.0, false, None);
                let cli = r.total_cost_usd.unwrap();
                assert!(
                    (meter.estimate_usd() - cli).abs() < 1e-9,
                    "estimate {} vs CLI {cli}",
                    meter.estimate_usd()
                );
                return;
            }
            _ => {}
        }
    }
    panic!("no result in the fixture");
}

const TOOL_FIXTURE: &str = include_str!("../tests/fixtures/real-cli-2.1.197-mcp-tools.jsonl");

#[test]
fn tool_calls_and_their_results_are_read_from_real_lines() {
    let evs: Vec<CliEvent> = TOOL_FIXTURE
        .lines()
        .map(|l| parse_line(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let uses: Vec<&ToolUse> = evs
        .iter()
        .filter_map(|e| match e {
            CliEvent::Assistant { tool_uses, .. } => Some(tool_uses),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(uses.len(), 2, "two parallel calls, one assistant line each");
    assert_eq!(uses[0].id, "toolu_fake_call1");
    assert_eq!(uses[0].name, "mcp__client__get_weather");
    assert_eq!(uses[0].input, serde_json::json!({"city": "Paris"}));
    assert_eq!(uses[1].name, "mcp__client__get_time");
    let results: Vec<&String> = evs
        .iter()
        .filter_map(|e| match e {
            CliEvent::User { tool_results, .. } => Some(tool_results),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(results, ["toolu_fake_call1", "toolu_fake_call2"]);
    let CliEvent::SystemInit { .. } = &evs[0] else {
        panic!("init first")
    };
}

const INTERRUPT_FIXTURE: &str =
    include_str!("../tests/fixtures/real-cli-2.1.197-mcp-interrupt.jsonl");

#[test]
fn an_interrupt_during_a_tool_call_ends_it_with_a_result_and_a_notice() {
    // An interrupt while the CLI waits for an MCP call: it answers the call itself (an error
    // result: "The user doesn't want to proceed with this tool use…"), then says so in a second
    // user message; both are transcript entries (they carry uuids) before the `result`.
    let evs: Vec<CliEvent> = INTERRUPT_FIXTURE
        .lines()
        .map(|l| parse_line(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let users: Vec<(&Vec<String>, &Option<String>)> = evs
        .iter()
        .filter_map(|e| match e {
            CliEvent::User { tool_results, uuid } => Some((tool_results, uuid)),
            _ => None,
        })
        .collect();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].0, &["toolu_fake_call6"]);
    assert!(users[1].0.is_empty());
    assert!(users.iter().all(|(_, uuid)| uuid.is_some()));
    let Some(CliEvent::Result(r)) = evs.last() else {
        panic!("a result last")
    };
    assert!(r.is_interrupted() && r.is_error);
}
