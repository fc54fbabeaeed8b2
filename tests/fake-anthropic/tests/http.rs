//! The fake API over HTTP, started in-process: a streamed and a non-streamed answer, a rejected
//! key, the counters, and a `[[hang]]` that ends when its client goes away.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fake_anthropic::{FakeApi, Options};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn ask(text: &str, stream: bool) -> Value {
    json!({"model": "claude-sonnet-5", "max_tokens": 100, "stream": stream,
           "messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn streamed_and_plain_answers_rejected_keys_and_stats() {
    let api = FakeApi::start(Options::default().reject_key("sk-bad")).unwrap();
    let http = client();
    let messages = format!("{}/v1/messages?beta=true", api.url());

    assert_eq!(http.head(api.url()).send().await.unwrap().status(), 200);

    let r = http
        .post(&messages)
        .header("x-api-key", "dummy")
        .json(&ask("hi there", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let body = r.text().await.unwrap();
    let events: Vec<(&str, Value)> = body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap();
            (
                name,
                serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert!(events.iter().all(|(n, d)| d["type"] == *n));
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "echo: hi there [n=1]");
    assert_eq!(events[0].1["message"]["id"], "msg_fake000001");

    let r = http
        .post(&messages)
        .bearer_auth("dummy")
        .json(&ask("plain", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let message: Value = r.json().await.unwrap();
    assert_eq!(message["id"], "msg_fake000002");
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "echo: plain [n=1]"}])
    );
    assert_eq!(message["usage"]["input_tokens"], 12);
    assert_eq!(api.last_request(), ask("plain", false));

    for auth in [("x-api-key", "sk-bad"), ("authorization", "Bearer sk-bad")] {
        let r = http
            .post(&messages)
            .header(auth.0, auth.1)
            .json(&ask("no", false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let e: Value = r.json().await.unwrap();
        assert_eq!(
            e,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        );
    }

    let r = http
        .post(&messages)
        .json(&ask("busy [[ratelimit]]", true))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "1")
    );
    let r = http.post(&messages).body("[1, 2]").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(&messages)
        .json(&ask("[[overloaded]]", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 529);
    let r = http.post(&messages).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );

    let count: Value = http
        .post(format!("{}/v1/messages/count_tokens?beta=true", api.url()))
        .json(&json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(count, json!({"input_tokens": 20}));
    let models: Value = http
        .get(format!("{}/v1/models", api.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][1]["id"], "claude-sonnet-5");

    let stats: Value = http
        .get(format!("{}/_stats", api.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"], 12);
    assert_eq!(stats["by_path"]["/v1/messages"], 8);
    assert_eq!(stats["by_path"]["/"], 1);
    assert_eq!(stats["by_path"]["/_stats"], 1);
    assert_eq!(stats["messages"], 2);
    let last: Value = http
        .get(format!("{}/_last_request", api.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        last,
        ask("[[overloaded]]", true),
        "a rejected key or bad JSON is not remembered"
    );
}

#[tokio::test]
async fn slow_answers_pause_before_every_chunk() {
    let api = FakeApi::start(Options::default().slow_ms(30)).unwrap();
    let t0 = Instant::now();
    let body = client()
        .post(format!("{}/v1/messages", api.url()))
        .json(&ask("[[slow]] abc", true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // "echo: [[slow]] abc [n=1]" is 24 characters: two chunks, two pauses
    assert_eq!(body.matches("text_delta").count(), 2);
    assert!(
        t0.elapsed() >= Duration::from_millis(60),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn a_hang_ends_when_its_client_goes_away_or_the_server_stops() {
    let api = FakeApi::start(Options::default()).unwrap();
    let request = |conn: &mut TcpStream| {
        let body = ask("[[hang]]", true).to_string();
        write!(
            conn,
            "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
    };
    let wait_for = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let mut conn = TcpStream::connect(("127.0.0.1", api.port())).unwrap();
    request(&mut conn);
    wait_for("the request hangs", &|| api.hanging() == 1);
    conn.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(conn.read(&mut [0; 64]).is_err(), "no answer while hanging");
    drop(conn);
    wait_for("the hang ends with its client", &|| api.hanging() == 0);

    let mut conn = TcpStream::connect(("127.0.0.1", api.port())).unwrap();
    request(&mut conn);
    wait_for("the second request hangs", &|| api.hanging() == 1);
    drop(api);
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        conn.read(&mut [0; 64]).unwrap(),
        0,
        "stopping the server closes the connection"
    );
}
