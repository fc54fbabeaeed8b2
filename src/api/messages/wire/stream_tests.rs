use claude_pool_actors::ToolCall;
use serde_json::json;

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
        let name = name.as_str();
        assert_eq!(data["type"], name, "an event's data carries its name");
        assert!(!stopped, "nothing after message_stop: {name}");
        if name == "ping" {
            continue;
        }
        if name == "message_start" {
            assert!(message.is_none(), "one message_start");
            let m = data["message"].clone();
            assert_eq!(m["content"], json!([]));
            assert_eq!(m["stop_reason"], Value::Null);
            message = Some(m);
            continue;
        }
        let m = message.as_mut().expect("message_start comes first");
        let content = m["content"].as_array_mut().unwrap();
        match name {
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

/// An event as read back from the SSE text: its name and its data.
type Event = (String, Value);

/// Reads SSE text back into events, checking each is one `event:` line and one `data:` line.
fn parse(sse: &[u8]) -> Vec<Event> {
    let text = std::str::from_utf8(sse).unwrap();
    assert!(text.is_empty() || text.ends_with("\n\n"), "{text}");
    text.split_terminator("\n\n")
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let name = event.strip_prefix("event: ").unwrap();
            let data = data.strip_prefix("data: ").unwrap();
            assert!(!data.contains('\n'), "one data line: {data}");
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn thinking_then_text_streams_in_order_and_adds_up_to_the_message() {
    let mut s = StreamEncoder::new(true);
    let mut out = Vec::new();
    s.start(&mut out, "msg_1", "sonnet", &usage(12, 1));
    s.thinking(&mut out, "Let me ");
    StreamEncoder::ping(&mut out);
    s.thinking(&mut out, "think.");
    s.signature(&mut out, "sig-1");
    s.text(&mut out, "Hello");
    s.text(&mut out, "");
    s.text(&mut out, ", world");
    s.finish(&mut out, &StopReason::EndTurn, &usage(12, 9));
    let events = parse(&out);
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
    let mut late = Vec::new();
    s.text(&mut late, "late");
    s.finish(&mut late, &StopReason::EndTurn, &usage(0, 0));
    assert!(late.is_empty(), "nothing after the end");
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
    let mut out = Vec::new();
    s.start(&mut out, "msg_2", "opus", &usage(20, 0));
    s.text(&mut out, "Checking.");
    for c in &calls {
        s.tool_use(&mut out, &c.id, &c.name, &c.input);
    }
    s.finish(&mut out, &StopReason::ToolUse, &usage(20, 30));
    let events = parse(&out);
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
    let mut out = Vec::new();
    s.start(&mut out, "msg_3", "m", &usage(1, 1));
    s.thinking(&mut out, "secret");
    s.signature(&mut out, "sig");
    s.redacted_thinking(&mut out, "xyz");
    s.block(
        &mut out,
        &OutBlock::Thinking {
            thinking: "more".into(),
            signature: "s".into(),
        },
    );
    s.text(&mut out, "visible");
    s.finish(
        &mut out,
        &StopReason::StopSequence("END".into()),
        &usage(1, 2),
    );
    let v = accumulate(&parse(&out));
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
    let mut out = Vec::new();
    s.start(&mut out, "msg_4", "m", &usage(1, 1));
    for b in &blocks {
        s.block(&mut out, b);
    }
    // a signature with no thinking open starts a thinking block of its own
    s.signature(&mut out, "lone");
    s.finish(&mut out, &StopReason::EndTurn, &usage(1, 5));
    let v = accumulate(&parse(&out));
    let mut want: Vec<Value> = blocks.iter().map(OutBlock::to_json).collect();
    want.push(json!({"type": "thinking", "thinking": "", "signature": "lone"}));
    assert_eq!(v["content"], Value::Array(want));
}

#[test]
fn ping_error_and_sse_text() {
    let mut out = Vec::new();
    StreamEncoder::ping(&mut out);
    assert_eq!(out, b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    let mut out = Vec::new();
    StreamEncoder::error(&mut out, "overloaded_error", "Overloaded");
    assert_eq!(
        parse(&out),
        [(
            "error".to_owned(),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )]
    );
    let mut s = StreamEncoder::new(true);
    let mut out = Vec::new();
    s.start(&mut out, "msg_5", "m", &usage(1, 0));
    s.start(&mut out, "msg_5", "m", &usage(1, 0));
    let events = parse(&out);
    assert_eq!(names(&events), ["message_start"], "one message_start");
    assert_eq!(
        events[0].1,
        json!({"type": "message_start", "message": {
            "id": "msg_5", "type": "message", "role": "assistant", "model": "m",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 1, "cache_creation_input_tokens": 2,
                      "cache_read_input_tokens": 7, "output_tokens": 0},
        }})
    );
}
