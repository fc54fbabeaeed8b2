use claude_pool_actors::ToolCall;

use super::super::render::Reply;
use super::*;

fn usage(input: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_creation_input_tokens: 2,
        cache_read_input_tokens: 7,
    }
}

/// Adds a stream up as the SDKs' message accumulators do, checking what they rely on:
/// `message_start` first; each block started at the next index, its deltas of its own kind
/// while it is open, stopped before the next starts; `message_delta` with no block open;
/// `message_stop` last. Returns the final message.
fn accumulate(events: &[Event]) -> Value {
    let mut message: Option<Value> = None;
    let mut open: Option<usize> = None;
    let mut json_buf = String::new();
    let mut stopped = false;
    for (name, data) in events {
        assert_eq!(data["type"], *name, "an event's data carries its name");
        assert!(!stopped, "nothing after message_stop: {name}");
        if *name == "ping" {
            continue;
        }
        if *name == "message_start" {
            assert!(message.is_none(), "one message_start");
            let m = data["message"].clone();
            assert_eq!(m["content"], json!([]));
            assert_eq!(m["stop_reason"], Value::Null);
            message = Some(m);
            continue;
        }
        let m = message.as_mut().expect("message_start comes first");
        let content = m["content"].as_array_mut().unwrap();
        match *name {
            "content_block_start" => {
                assert_eq!(open, None, "a block starts after the one before stopped");
                let index = data["index"].as_u64().unwrap() as usize;
                assert_eq!(index, content.len(), "indices count up");
                content.push(data["content_block"].clone());
                open = Some(index);
                json_buf.clear();
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap() as usize;
                assert_eq!(open, Some(index), "deltas go to the open block");
                let block = &mut content[index];
                let delta = &data["delta"];
                match (
                    block["type"].as_str().unwrap(),
                    delta["type"].as_str().unwrap(),
                ) {
                    ("text", "text_delta") => {
                        let t = block["text"].as_str().unwrap().to_owned();
                        block["text"] = json!(t + delta["text"].as_str().unwrap());
                    }
                    ("thinking", "thinking_delta") => {
                        let t = block["thinking"].as_str().unwrap().to_owned();
                        block["thinking"] = json!(t + delta["thinking"].as_str().unwrap());
                    }
                    ("thinking", "signature_delta") => {
                        block["signature"] = delta["signature"].clone();
                    }
                    ("tool_use", "input_json_delta") => {
                        json_buf.push_str(delta["partial_json"].as_str().unwrap());
                    }
                    (b, d) => panic!("a {d} in a {b} block"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap() as usize;
                assert_eq!(open, Some(index), "the open block stops");
                if content[index]["type"] == "tool_use" && !json_buf.is_empty() {
                    content[index]["input"] = serde_json::from_str(&json_buf).unwrap();
                }
                open = None;
            }
            "message_delta" => {
                assert_eq!(open, None, "every block stopped before message_delta");
                m["stop_reason"] = data["delta"]["stop_reason"].clone();
                m["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                m["usage"] = data["usage"].clone();
            }
            "message_stop" => {
                assert!(
                    m["stop_reason"].is_string(),
                    "message_delta before message_stop"
                );
                stopped = true;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(stopped, "the stream ends with message_stop");
    message.unwrap()
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|(n, _)| *n).collect()
}

#[test]
fn thinking_then_text_streams_in_order_and_adds_up_to_the_message() {
    let mut s = StreamEncoder::new(true);
    let mut events = s.start("msg_1", "sonnet", &usage(12, 1));
    events.extend(s.thinking("Let me "));
    events.push(StreamEncoder::ping());
    events.extend(s.thinking("think."));
    events.extend(s.signature("sig-1"));
    events.extend(s.text("Hello"));
    events.extend(s.text(""));
    events.extend(s.text(", world"));
    events.extend(s.finish(&StopReason::EndTurn, &usage(12, 9)));
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let reply = Reply {
        id: "msg_1".into(),
        model: "sonnet".into(),
        content: vec![
            OutBlock::Thinking {
                thinking: "Let me think.".into(),
                signature: "sig-1".into(),
            },
            OutBlock::Text("Hello, world".into()),
        ],
        stop: StopReason::EndTurn,
        usage: usage(12, 9),
    };
    assert_eq!(accumulate(&events), reply.to_json(true));
    assert_eq!(events[11].1["usage"]["output_tokens"], 9);
    assert_eq!(events[11].1["usage"]["input_tokens"], 12);
    assert_eq!(events[11].1["usage"]["cache_read_input_tokens"], 7);
    assert!(s.is_finished());
    assert!(s.text("late").is_empty());
    assert!(s.finish(&StopReason::EndTurn, &usage(0, 0)).is_empty());
}

#[test]
fn text_then_tool_uses_stream_as_blocks_of_their_own() {
    let mut s = StreamEncoder::new(false);
    let calls = [
        ToolCall {
            id: "toolu_1".into(),
            name: "get_weather".into(),
            input: json!({"city": "Paris"}),
        },
        ToolCall {
            id: "toolu_2".into(),
            name: "get_time".into(),
            input: json!({}),
        },
    ];
    let mut events = s.start("msg_2", "opus", &usage(20, 0));
    events.extend(s.text("Checking."));
    for c in &calls {
        events.extend(s.tool_use(&c.id, &c.name, &c.input));
    }
    events.extend(s.finish(&StopReason::ToolUse, &usage(20, 30)));
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| *n == "content_block_start")
        .map(|(_, d)| &d["content_block"])
        .collect();
    assert_eq!(
        starts[1],
        &json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}})
    );
    let reply = Reply {
        id: "msg_2".into(),
        model: "opus".into(),
        content: vec![
            OutBlock::Text("Checking.".into()),
            OutBlock::ToolUse(calls[0].clone()),
            OutBlock::ToolUse(calls[1].clone()),
        ],
        stop: StopReason::ToolUse,
        usage: usage(20, 30),
    };
    assert_eq!(accumulate(&events), reply.to_json(false));
}

#[test]
fn hidden_thinking_leaves_no_block_and_no_gap_in_the_indices() {
    let mut s = StreamEncoder::new(false);
    let mut events = s.start("msg_3", "m", &usage(1, 1));
    events.extend(s.thinking("secret"));
    events.extend(s.signature("sig"));
    events.extend(s.redacted_thinking("xyz"));
    events.extend(s.block(&OutBlock::Thinking {
        thinking: "more".into(),
        signature: "s".into(),
    }));
    events.extend(s.text("visible"));
    events.extend(s.finish(&StopReason::StopSequence("END".into()), &usage(1, 2)));
    let v = accumulate(&events);
    assert_eq!(v["content"], json!([{"type": "text", "text": "visible"}]));
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert_eq!(v["stop_sequence"], "END");
}

#[test]
fn whole_blocks_and_lone_signatures_stream_too() {
    let mut s = StreamEncoder::new(true);
    let blocks = [
        OutBlock::RedactedThinking { data: "enc".into() },
        OutBlock::Thinking {
            thinking: "t".into(),
            signature: "s".into(),
        },
        OutBlock::Text("a".into()),
        OutBlock::Text("b".into()),
        OutBlock::ToolUse(ToolCall {
            id: "toolu_3".into(),
            name: "f".into(),
            input: json!({"x": [1, 2]}),
        }),
    ];
    let mut events = s.start("msg_4", "m", &usage(1, 1));
    for b in &blocks {
        events.extend(s.block(b));
    }
    // a signature with no thinking open starts a thinking block of its own
    events.extend(s.signature("lone"));
    events.extend(s.finish(&StopReason::EndTurn, &usage(1, 5)));
    let v = accumulate(&events);
    let mut want: Vec<Value> = blocks.iter().map(OutBlock::to_json).collect();
    want.push(json!({"type": "thinking", "thinking": "", "signature": "lone"}));
    assert_eq!(v["content"], Value::Array(want));
}

#[test]
fn ping_error_and_sse_text() {
    assert_eq!(StreamEncoder::ping(), ("ping", json!({"type": "ping"})));
    let e = StreamEncoder::error("overloaded_error", "Overloaded");
    assert_eq!(e.0, "error");
    assert_eq!(
        e.1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(
        to_sse(&StreamEncoder::ping()),
        "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    );
    let mut s = StreamEncoder::new(true);
    assert_eq!(s.start("msg_5", "m", &usage(1, 0)).len(), 1);
    assert!(
        s.start("msg_5", "m", &usage(1, 0)).is_empty(),
        "one message_start"
    );
}
