//! Wire shapes of the fake's answers: event order, ids, usage, error envelopes.

use serde_json::{Value, json};

use super::*;
use crate::reply::tests::{Counter, answer};

fn names(a: &Answer) -> Vec<&'static str> {
    a.events().iter().map(|p| p.event.name()).collect()
}

fn data(p: &Paced) -> Value {
    serde_json::to_value(&p.event).unwrap()
}

fn user(text: &str) -> Value {
    json!({"model": "claude-sonnet-5", "messages": [{"role": "user", "content": text}]})
}

#[test]
fn a_short_text_answer_streams_byte_for_byte() {
    let a = answer(user("hello"), &mut Counter::default());
    let sse: String = a.events().iter().map(|p| p.event.to_sse()).collect();
    let expected = concat!(
        "event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"id\": \"msg_fake000001\", ",
        "\"type\": \"message\", \"role\": \"assistant\", \"model\": \"claude-sonnet-5\", \"content\": [], ",
        "\"stop_reason\": null, \"stop_sequence\": null, \"usage\": {\"input_tokens\": 12, \"output_tokens\": 1, ",
        "\"cache_creation_input_tokens\": 0, \"cache_read_input_tokens\": 0}}}\n\n",
        "event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, ",
        "\"content_block\": {\"type\": \"text\", \"text\": \"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, ",
        "\"delta\": {\"type\": \"text_delta\", \"text\": \"echo: hello [n=1\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, ",
        "\"delta\": {\"type\": \"text_delta\", \"text\": \"]\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\": \"content_block_stop\", \"index\": 0}\n\n",
        "event: message_delta\ndata: {\"type\": \"message_delta\", \"delta\": {\"stop_reason\": \"end_turn\", ",
        "\"stop_sequence\": null}, \"usage\": {\"output_tokens\": 4}}\n\n",
        "event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n",
    );
    assert_eq!(sse, expected);
}

#[test]
fn text_is_chunked_by_characters_and_paced_only_when_slow() {
    let a = answer(
        user("héllo wörld, ünïcode [[slow]]"),
        &mut Counter::default(),
    );
    let events = a.events();
    let deltas: Vec<&Paced> = events
        .iter()
        .filter(|p| p.event.name() == "content_block_delta")
        .collect();
    let texts: Vec<String> = deltas
        .iter()
        .map(|p| data(p)["delta"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        texts[..texts.len() - 1]
            .iter()
            .all(|t| t.chars().count() == CHUNK_CHARS)
    );
    let Body::Text(full) = &a.body else { panic!() };
    assert_eq!(texts.concat(), *full);
    assert!(deltas.iter().all(|p| p.pause_before));
    assert!(
        events
            .iter()
            .filter(|p| p.event.name() != "content_block_delta")
            .all(|p| !p.pause_before)
    );
    let fast = answer(user("hello"), &mut Counter::default());
    assert!(fast.events().iter().all(|p| !p.pause_before));
    // non-ASCII travels as \u escapes, as json.dumps writes it
    assert!(events[2].event.to_sse().contains("\\u00e9"));
}

#[test]
fn thinking_comes_first_as_its_own_block() {
    let mut body = user("why [[think]]");
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let a = answer(body, &mut Counter::default());
    // "echo: why [[think]] [n=1]": two text deltas
    assert_eq!(
        names(&a),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let events = a.events();
    assert_eq!(
        data(&events[1])["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        data(&events[2])["delta"]["thinking"],
        "thinking about: why [[think]]"
    );
    let sig = data(&events[3])["delta"]["signature"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(sig.starts_with("sig-fake-") && sig.len() == 17, "{sig}");
    assert_eq!(data(&events[4])["index"], 0);
    assert_eq!(
        (
            data(&events[5])["index"].clone(),
            data(&events[8])["index"].clone()
        ),
        (json!(1), json!(1))
    );
    let message: Value = serde_json::from_str(&a.message_json()).unwrap();
    assert_eq!(message["content"][0]["type"], "thinking");
    assert_eq!(message["content"][0]["signature"], sig.as_str());
    assert_eq!(message["content"][1]["type"], "text");
}

#[test]
fn parallel_tool_calls_close_each_block_before_the_next() {
    let body = json!({"tools": [{"name": "mcp__gw__get_weather"}, {"name": "mcp__gw__get_time"}],
        "messages": [{"role": "user", "content": r#"x [[call:get_weather {"city": "Paris"}]] [[call:get_time {"city": "Rome"}]]"#}]});
    let a = answer(body, &mut Counter::default());
    let events = a.events();
    let shape: Vec<(String, Value)> = events
        .iter()
        .map(|p| (p.event.name().to_owned(), data(p)["index"].clone()))
        .collect();
    let expected = [
        ("message_start", Value::Null),
        ("content_block_start", json!(0)),
        ("content_block_delta", json!(0)),
        ("content_block_stop", json!(0)),
        ("content_block_start", json!(1)),
        ("content_block_delta", json!(1)),
        ("content_block_stop", json!(1)),
        ("message_delta", Value::Null),
        ("message_stop", Value::Null),
    ];
    assert_eq!(shape, expected.map(|(n, i)| (n.to_owned(), i)));
    assert_eq!(
        data(&events[1])["content_block"],
        json!({"type": "tool_use", "id": "toolu_fake_call1", "name": "mcp__gw__get_weather", "input": {}})
    );
    assert_eq!(
        data(&events[2])["delta"],
        json!({"type": "input_json_delta", "partial_json": "{\"city\": \"Paris\"}"})
    );
    assert_eq!(data(&events[7])["delta"]["stop_reason"], "tool_use");
    let message: Value = serde_json::from_str(&a.message_json()).unwrap();
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(
        message["content"][1],
        json!({"type": "tool_use", "id": "toolu_fake_call2",
        "name": "mcp__gw__get_time", "input": {"city": "Rome"}})
    );
}

#[test]
fn usage_fields_and_fresh_ids() {
    let mut ids = Counter::default();
    let first = answer(user("pay [[cost:20]]"), &mut ids);
    let second = answer(user("again"), &mut ids);
    let start = data(&first.events()[0]);
    assert_eq!(start["message"]["id"], "msg_fake000001");
    assert_eq!(
        start["message"]["usage"],
        json!({"input_tokens": 12, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
    assert_eq!(
        data(first.events().last().unwrap()),
        json!({"type": "message_stop"})
    );
    let delta = first
        .events()
        .iter()
        .find(|p| p.event.name() == "message_delta")
        .map(data)
        .unwrap();
    assert_eq!(delta["usage"], json!({"output_tokens": 20}));
    assert_eq!(
        second.message_json(),
        concat!(
            "{\"id\": \"msg_fake000002\", \"type\": \"message\", \"role\": \"assistant\", \"model\": \"claude-sonnet-5\", ",
            "\"content\": [{\"type\": \"text\", \"text\": \"echo: again [n=1]\"}], \"stop_reason\": \"end_turn\", ",
            "\"stop_sequence\": null, \"usage\": {\"input_tokens\": 12, \"output_tokens\": 4, ",
            "\"cache_creation_input_tokens\": 0, \"cache_read_input_tokens\": 0}}"
        )
    );
}

#[test]
fn error_envelope() {
    assert_eq!(
        error_body("rate_limit_error", "Rate limited"),
        r#"{"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limited"}}"#
    );
}
