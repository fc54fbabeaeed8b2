//! End-to-end over a real socket with the fake CLI: streaming and non-streaming shapes,
//! session continuity, stateless clients, mid-stream failures, disconnects, sessions API.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[tokio::test]
async fn non_streaming_and_streaming_completions_have_openai_shapes() {
    let s = TestServer::start(1, 2, |_| {}).await;
    let resp = s
        .chat(json!({"model": "gpt-4-turbo", "messages": [user("hello")]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-session-id").is_some());
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4-turbo");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("echo: hello")
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap())
    );

    let resp = s
        .chat(
            json!({"model": "sonnet", "stream": true, "stream_options": {"include_usage": true},
            "messages": [user("stream [[long]]")]}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    let data = sse_data(resp).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.len() > 10, "tokens arrive as many chunks");
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(
        chunks
            .iter()
            .all(|c| c["id"] == id && c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let text = streamed_text(&data);
    assert!(
        text.starts_with("echo: stream [[long]] word0 word1"),
        "{text}"
    );
    assert_eq!(turn_counter(&text), 1);
    s.stop().await;
}

#[tokio::test]
async fn x_session_id_keeps_the_conversation_on_its_worker() {
    let s = TestServer::start(2, 2, |_| {}).await;
    let mut counters = Vec::new();
    for text in ["one", "two", "three"] {
        let resp = s
            .post("/v1/chat/completions")
            .header("X-Session-Id", "my-conv-1")
            .json(&json!({"model": "sonnet", "messages": [user(text)]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-session-id"], "my-conv-1");
        let v: Value = resp.json().await.unwrap();
        counters.push(turn_counter(
            v["choices"][0]["message"]["content"].as_str().unwrap(),
        ));
    }
    assert_eq!(counters, vec![1, 2, 3]);
    // Another key using the same id gets a conversation of its own: nothing tells it that
    // the id is in use, and neither conversation sees the other.
    let as_other = |text: &str| {
        s.client
            .post(format!("{}/v1/chat/completions", s.url))
            .bearer_auth(OTHER_KEY)
            .header("X-Session-Id", "my-conv-1")
            .json(&json!({"model": "sonnet", "messages": [user(text)]}))
            .send()
    };
    let resp = as_other("mine").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-session-id"], "my-conv-1");
    let v: Value = resp.json().await.unwrap();
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(turn_counter(answer), 1, "a fresh conversation: {answer}");
    let resp = s
        .post("/v1/chat/completions")
        .header("X-Session-Id", "my-conv-1")
        .json(&json!({"model": "sonnet", "messages": [user("four")]}))
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        turn_counter(answer),
        4,
        "the first key's conversation went on: {answer}"
    );
    let mine = s.get_json("/api/v1/sessions", OTHER_KEY).await;
    let ids: Vec<&str> = mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["my-conv-1"],
        "each key lists its own id as it wrote it"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_history_fingerprint_never_crosses_keys() {
    let s = TestServer::start(1, 3, |_| {}).await;
    let first = json!({"model": "sonnet", "messages": [user("hello")]});
    let resp = s.chat(first).await;
    let session_a = resp.headers()["x-session-id"].to_str().unwrap().to_owned();
    let v: Value = resp.json().await.unwrap();
    let answer = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let history = json!({"model": "sonnet", "messages": [user("hello"),
        {"role": "assistant", "content": answer}, user("next")]});
    // The other key sends exactly the history of the first key's conversation.
    let resp = s
        .client
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(OTHER_KEY)
        .json(&history)
        .send()
        .await
        .unwrap();
    assert_ne!(resp.headers()["x-session-id"].to_str().unwrap(), session_a);
    let v: Value = resp.json().await.unwrap();
    let other = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        turn_counter(other),
        1,
        "a new conversation, replayed: {other}"
    );
    // The first key's continuation was not consumed.
    let resp = s.chat(history).await;
    assert_eq!(resp.headers()["x-session-id"].to_str().unwrap(), session_a);
    let v: Value = resp.json().await.unwrap();
    let mine = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(turn_counter(mine), 2, "{mine}");
    s.stop().await;
}

#[tokio::test]
async fn stateless_history_reuses_one_warm_conversation() {
    let s = TestServer::start(1, 2, |_| {}).await;
    let mut messages = vec![
        json!({"role": "system", "content": "be brief"}),
        user("first"),
    ];
    let mut sessions = Vec::new();
    for (i, next) in ["second", "third"]
        .iter()
        .chain(std::iter::once(&"end"))
        .enumerate()
    {
        let resp = s
            .chat(json!({"model": "sonnet", "messages": messages}))
            .await;
        sessions.push(resp.headers()["x-session-id"].to_str().unwrap().to_owned());
        let v: Value = resp.json().await.unwrap();
        let answer = v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(turn_counter(&answer), i as u32 + 1, "{answer}");
        if i == 0 {
            // The system message is the workers' system prompt, not part of the user text.
            assert!(
                !answer.contains("be brief") && !answer.contains("<system_instructions>"),
                "system prompt not inlined: {answer}"
            );
        } else {
            assert!(
                !answer.contains("<conversation_history>"),
                "only the new message is sent"
            );
        }
        messages.push(json!({"role": "assistant", "content": answer}));
        messages.push(user(next));
    }
    assert!(sessions.windows(2).all(|w| w[0] == w[1]), "{sessions:?}");
    assert_eq!(s.pool.snapshot().sessions, 1);
    // A history that diverges starts a new conversation with a faithful replay.
    let resp = s
        .chat(json!({"model": "sonnet", "messages": [user("first"),
            {"role": "assistant", "content": "something else"}, user("next")]}))
        .await;
    assert_ne!(
        resp.headers()["x-session-id"].to_str().unwrap(),
        sessions[0]
    );
    let v: Value = resp.json().await.unwrap();
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        answer.contains("<assistant>\nsomething else\n</assistant>"),
        "{answer}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_crash_mid_stream_ends_with_an_error_event_then_done() {
    let s = TestServer::start(1, 1, |_| {}).await;
    let resp = s
        .chat(json!({"model": "sonnet", "stream": true, "messages": [user("[[crash]]")]}))
        .await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(resp).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let err: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(err["error"]["code"], "worker_failed", "{err}");
    assert!(
        !streamed_text(&data).is_empty(),
        "text before the crash was streamed"
    );
    s.stop().await;
}

#[tokio::test]
async fn client_disconnect_interrupts_and_the_worker_is_reused() {
    let s = TestServer::start(1, 1, |_| {}).await;
    let first: Value = s
        .post("/v1/chat/completions")
        .header("X-Session-Id", "dc")
        .json(&json!({"model": "sonnet", "messages": [user("[[pid]] hi")]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid_text = first["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let pid = pid_text
        .split("pid=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let resp = s
        .post("/v1/chat/completions")
        .header("X-Session-Id", "dc")
        .json(&json!({"model": "sonnet", "stream": true, "messages": [user("[[slow:200]] [[long]]")]}))
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    use futures_util::StreamExt;
    let _ = body.next().await; // the first chunk arrived: the turn is running
    drop(body);
    poll("interrupted", Duration::from_secs(30), || {
        let snap = s.pool.snapshot();
        snap.interrupts == 1 && snap.workers_idle == 1
    })
    .await;
    let next: Value = s
        .post("/v1/chat/completions")
        .header("X-Session-Id", "dc")
        .json(&json!({"model": "sonnet", "messages": [user("[[pid]] again")]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = next["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        text.contains(&format!("pid={pid}")),
        "same process: {text} vs {pid}"
    );
    assert_eq!(s.pool.snapshot().restarts, 0);
    s.stop().await;
}

#[tokio::test]
async fn sessions_api_creates_lists_messages_and_deletes_per_key() {
    let s = TestServer::start(1, 2, |_| {}).await;
    let id = s.create_session().await;
    let m1: Value = s
        .post(&format!("/api/v1/sessions/{id}/messages"))
        .json(&json!({"content": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        turn_counter(m1["choices"][0]["message"]["content"].as_str().unwrap()),
        1
    );
    let resp = s
        .post(&format!("/api/v1/sessions/{id}/messages"))
        .json(&json!({"content": "again", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(turn_counter(&streamed_text(&sse_data(resp).await)), 2);
    let list = s.get_json("/api/v1/sessions", KEY).await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str())
    );
    // Turns are counted when their spend record is written (just after the answer).
    let path = format!("/api/v1/sessions/{id}");
    poll_async("two turns counted", Duration::from_secs(30), || {
        let (s, path) = (&s, path.clone());
        async move { s.get_json(&path, KEY).await["turns"] == 2 }
    })
    .await;
    // Another key sees nothing.
    for req in [
        s.client.get(format!("{}/api/v1/sessions/{id}", s.url)),
        s.client.delete(format!("{}/api/v1/sessions/{id}", s.url)),
        s.client
            .post(format!("{}/api/v1/sessions/{id}/messages", s.url))
            .json(&json!({"content": "x"})),
    ] {
        assert_eq!(
            req.bearer_auth(OTHER_KEY).send().await.unwrap().status(),
            404
        );
    }
    let other_list = s.get_json("/api/v1/sessions", OTHER_KEY).await;
    assert_eq!(other_list["data"].as_array().unwrap().len(), 0);
    let path = format!("/api/v1/sessions/{id}");
    assert_eq!(s.status(reqwest::Method::DELETE, &path).await, 200);
    assert_eq!(s.status(reqwest::Method::GET, &path).await, 404);
    s.stop().await;
}

#[tokio::test]
async fn silent_streams_get_keep_alive_comments() {
    let s = TestServer::start(1, 1, |c| c.server.sse_keepalive = Duration::from_millis(50)).await;
    let resp = s
        .chat(json!({"model": "sonnet", "stream": true, "messages": [user("[[slow:300]] hi")]}))
        .await;
    let body = resp.text().await.unwrap();
    assert!(body.contains("\n: keep-alive\n\n"), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"));
    s.stop().await;
}

/// `claude-pool healthcheck` (the container's probe): exit 0 while the server is ready, 1 when
/// nothing answers, with the reason on stderr.
#[tokio::test]
async fn the_healthcheck_subcommand_reports_readiness_as_its_exit_code() {
    let server = TestServer::start(1, 1, |_| {}).await;
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let probe = |port: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_claude-pool"))
            .args(["healthcheck", "--port", &port, "--timeout", "5"])
            .env_remove("API_KEYS")
            .output()
            .expect("run claude-pool healthcheck")
    };
    let ok = tokio::task::spawn_blocking({
        let port = port.clone();
        move || probe(port)
    })
    .await
    .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("200"));
    let closed = free_port().to_string();
    let down = tokio::task::spawn_blocking(move || probe(closed))
        .await
        .unwrap();
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach"));
    server.stop().await;
}
