//! `POST /v1/messages` end to end over a real socket with the fake CLI: the `message` shape,
//! named SSE events in order, thinking, warm continuation of stateless histories, a tool round,
//! errors in Anthropic's envelope with `request-id`, `count_tokens`, models, probes.

mod common;

use common::*;
use serde_json::{Value, json};

fn messages(s: &TestServer, body: Value) -> reqwest::RequestBuilder {
    s.client
        .post(format!("{}/v1/messages?beta=true", s.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
}

/// A non-streamed request's answer, as JSON.
async fn message(s: &TestServer, body: Value) -> Value {
    messages(s, body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

/// The named events of an SSE body, in order: (event, data).
async fn named_events(resp: reqwest::Response) -> Vec<(String, Value)> {
    use eventsource_stream::Eventsource;
    use futures_util::StreamExt;
    let mut events = resp.bytes_stream().eventsource();
    let mut out = Vec::new();
    while let Some(ev) = events.next().await {
        let ev = ev.expect("well-formed SSE");
        out.push((ev.event, serde_json::from_str(&ev.data).unwrap()));
    }
    out
}

#[tokio::test]
async fn a_message_and_its_stream_have_anthropics_shapes() {
    let s = TestServer::start(1, 2, |_| {}).await;
    let resp = messages(
        &s,
        json!({"model": "sonnet", "max_tokens": 1024, "messages": [user("hello")]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("request-id").is_some());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "sonnet");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["content"][0]["type"], "text");
    assert!(
        v["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("echo: hello")
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    for k in [
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ] {
        assert!(v["usage"][k].is_u64(), "usage.{k}: {v}");
    }

    let resp = messages(
        &s,
        json!({"model": "sonnet", "max_tokens": 2048, "stream": true,
               "thinking": {"type": "enabled", "budget_tokens": 1024},
               "messages": [user("why [[think]]")]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let events = named_events(resp).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(starts[0]["content_block"]["type"], "thinking");
    assert_eq!(starts[1]["content_block"]["type"], "text");
    let deltas: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| &d["delta"])
        .collect();
    let thinking: String = deltas
        .iter()
        .filter_map(|d| d["thinking"].as_str())
        .collect();
    assert_eq!(thinking, "thinking about: why [[think]]");
    assert!(deltas.iter().any(|d| d["type"] == "signature_delta"
        && d["signature"].as_str().unwrap().starts_with("sig-fake-")));
    let text: String = deltas.iter().filter_map(|d| d["text"].as_str()).collect();
    assert!(text.starts_with("echo: why [[think]]"), "{text}");
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    // Without thinking asked for, no thinking block.
    let v: Value = message(
        &s,
        json!({"model": "sonnet", "max_tokens": 1024, "messages": [user("why [[think]]")]}),
    )
    .await;
    assert_eq!(v["content"].as_array().unwrap().len(), 1, "{v}");
    s.stop().await;
}

#[tokio::test]
async fn a_resent_history_continues_warm_and_stop_sequences_cut() {
    let s = TestServer::start(1, 2, |_| {}).await;
    let first: Value = message(&s, json!({"model": "sonnet", "max_tokens": 1024, "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
               "messages": [user("one")]})).await;
    let answer = first["content"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(turn_counter(&answer), 1);
    let second: Value = message(&s, json!({"model": "sonnet", "max_tokens": 1024, "system": [{"type": "text", "text": "be brief"}],
               "messages": [user("one"), {"role": "assistant", "content": [{"type": "text", "text": answer}]}, user("two")]})).await;
    // The worker held the conversation: only the new message was sent (turn 2).
    assert_eq!(
        turn_counter(second["content"][0]["text"].as_str().unwrap()),
        2
    );

    let v: Value = message(&s, json!({"model": "sonnet", "max_tokens": 1024, "stop_sequences": ["lo"], "messages": [user("hello")]})).await;
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert!(v["usage"]["output_tokens"].as_u64().is_some());
    assert_eq!(v["stop_sequence"], "lo");
    assert_eq!(v["content"][0]["text"], "echo: hel");
    s.stop().await;
}

#[tokio::test]
async fn errors_come_in_anthropics_envelope_with_the_request_id() {
    let s = TestServer::start(1, 1, |_| {}).await;
    let check = |resp: reqwest::Response, status: u16, kind: &'static str| async move {
        assert_eq!(resp.status(), status);
        let id = resp.headers()["request-id"].to_str().unwrap().to_owned();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert_eq!(v["request_id"], id.as_str());
        v["error"]["message"].as_str().unwrap().to_owned()
    };
    let m = check(
        messages(&s, json!({"model": "sonnet", "messages": [user("x")]}))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("max_tokens"), "{m}");
    let m = check(
        messages(
            &s,
            json!({"model": "sonnet", "max_tokens": 10, "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "@@@"}}]}]}),
        )
        .send()
        .await
        .unwrap(),
        400,
        "invalid_request_error",
    )
    .await;
    assert!(m.contains("messages.0.content.0"), "{m}");
    check(
        messages(
            &s,
            json!({"model": "no-such-model", "max_tokens": 10, "messages": [user("x")]}),
        )
        .send()
        .await
        .unwrap(),
        404,
        "not_found_error",
    )
    .await;
    let resp = s
        .client
        .post(format!("{}/v1/messages", s.url))
        .header("x-api-key", "sk-wrong")
        .json(&json!({"model": "sonnet", "max_tokens": 10, "messages": [user("x")]}))
        .send()
        .await
        .unwrap();
    check(resp, 401, "authentication_error").await;
    // A client's own x-request-id is the request id.
    let resp = messages(&s, json!({"model": "sonnet", "messages": [user("x")]}))
        .header("x-request-id", "req-client-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["request-id"], "req-client-1");
    s.stop().await;
}

#[tokio::test]
async fn count_tokens_models_and_probes() {
    let s = TestServer::start(1, 1, |_| {}).await;
    let v: Value = s
        .client
        .post(format!("{}/v1/messages/count_tokens", s.url))
        .header("x-api-key", KEY)
        .json(&json!({"model": "sonnet", "messages": [user(&"word ".repeat(100))]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = v["input_tokens"].as_u64().unwrap();
    assert!((100..=200).contains(&n), "{v}");
    let v: Value = s
        .client
        .get(format!("{}/v1/models", s.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["type"], "model", "{v}");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"sonnet") && !ids.iter().any(|i| i.starts_with("gpt-")),
        "{ids:?}"
    );
    assert_eq!(v["has_more"], false);
    for path in ["/", "/api/hello"] {
        let status = s
            .client
            .head(format!("{}{path}", s.url))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "HEAD {path}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_tool_result_continues_the_parked_turn_in_json_and_in_a_stream() {
    let s = TestServer::start(1, 2, |_| {}).await;
    let tools = json!([{"name": "get_weather", "description": "weather of a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let ask = user("weather? [[call:get_weather {\"city\": \"Oslo\"}]]");
    let v: Value = message(
        &s,
        json!({"model": "sonnet", "max_tokens": 1024, "tools": tools, "messages": [ask]}),
    )
    .await;
    assert_eq!(v["stop_reason"], "tool_use", "{v}");
    let call = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .expect("a tool_use block")
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"]["city"], "Oslo");
    let id = call["id"].as_str().unwrap();
    assert!(id.starts_with("toolu_"), "{id}");
    // The client resends the history with the result: the same turn goes on (streamed).
    let resp = messages(
        &s,
        json!({"model": "sonnet", "max_tokens": 1024, "stream": true, "tools": tools, "messages": [
            ask, {"role": "assistant", "content": v["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "sunny, 21 C"}]}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let events = named_events(resp).await;
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert!(text.contains("sunny, 21 C"), "{text}");
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "end_turn"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_answer_cut_at_max_tokens_shows_at_most_max_tokens() {
    let s = TestServer::start(1, 1, |_| {}).await;
    let v: Value = message(
        &s,
        json!({"model": "sonnet", "max_tokens": 5, "messages": [user("hi [[long]]")]}),
    )
    .await;
    assert_eq!(v["stop_reason"], "max_tokens", "{v}");
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() <= 5, "{v}");
    assert!(v["content"][0]["text"].as_str().unwrap().chars().count() <= 20);
    s.stop().await;
}
