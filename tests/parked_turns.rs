//! Turns parked for tool results with the fake CLI (its `[[call:NAME {json}]]` calls the
//! gateway's MCP bridge): parked turns give their workers to waiting turns of other keys and
//! still continue their conversations, a key's limit on parked turns, the deadline, and a CLI
//! that stops waiting by itself.

mod common;

use std::time::{Duration, Instant};

use common::{KEY, OTHER_KEY, TestServer, poll_async, turn_counter};
use serde_json::{Value, json};

fn weather() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
}

async fn post(
    s: &TestServer,
    key: &str,
    session: impl AsRef<str>,
    body: Value,
) -> reqwest::Response {
    let session = session.as_ref();
    s.client
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(key)
        .header("x-session-id", session)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A request whose model calls `get_weather` for `city`: its call id.
async fn call(s: &TestServer, key: &str, session: &str, city: &str, extra: &str) -> String {
    let body = json!({"model": "sonnet", "tools": weather(), "messages": [{"role": "user",
        "content": format!("weather? [[call:get_weather {{\"city\": \"{city}\"}}]]{extra}")}]});
    let r = post(s, key, session, body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    call["id"].as_str().unwrap().to_owned()
}

/// The request that brings the result of `call`.
async fn answer(
    s: &TestServer,
    key: &str,
    session: &str,
    call: &str,
    result: &str,
) -> reqwest::Response {
    let body = json!({"model": "sonnet", "tools": weather(), "messages": [
        {"role": "tool", "tool_call_id": call, "content": result}]});
    post(s, key, session, body).await
}

async fn text_of(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn metric(s: &TestServer, name: &str) -> String {
    let text = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn parked_turns_give_their_workers_to_other_keys_and_their_results_still_continue() {
    let s = TestServer::start(1, 4, |c| {
        c.pool.parked_turn_grace = Duration::from_millis(500);
        c.limits.max_parked_turns_per_key = 4;
    })
    .await;
    // Four turns park, holding the pool's four workers (structured-output clients that never
    // send a result look like this).
    let mut calls = Vec::new();
    for i in 0..4 {
        let session = format!("parked-{i}");
        calls.push((
            session.clone(),
            call(&s, KEY, &session, &format!("c{i}"), "").await,
        ));
    }
    assert_eq!(
        metric(&s, "claude_pool_parked_turns ").await,
        "claude_pool_parked_turns 4"
    );
    assert_eq!(s.pool.snapshot().workers_busy, 4);

    // Another key's ordinary requests (slow ones, so they need four workers at once) all
    // complete: they take parked turns' workers.
    let t0 = Instant::now();
    let others: Vec<_> = (0..4)
        .map(|i| {
            let ask = format!("hello {i} [[slow:100]]");
            let body = json!({"model": "sonnet", "messages": [{"role": "user", "content": ask}]});
            post(&s, OTHER_KEY, format!("other-{i}"), body)
        })
        .collect();
    for r in futures_util::future::join_all(others).await {
        let text = text_of(r).await;
        assert!(text.starts_with("echo: hello"), "{text}");
    }
    let waited = t0.elapsed();
    assert!(waited < Duration::from_secs(8), "served in {waited:?}");
    assert_eq!(s.pool.snapshot().queue_timeouts, 0);
    let count = |line: String| -> usize { line.rsplit(' ').next().unwrap().parse().unwrap() };
    let holding = count(metric(&s, "claude_pool_parked_turns ").await);
    let set_aside = count(metric(&s, "claude_pool_parked_turns_set_aside ").await);
    let released = count(
        metric(
            &s,
            "claude_pool_parked_turn_releases_total{event=\"pool_full\"}",
        )
        .await,
    );
    assert_eq!(holding + set_aside, 4);
    assert!(
        set_aside >= 1 && released == set_aside,
        "{set_aside} set aside, {released} released"
    );
    println!("{set_aside} of 4 parked turns gave their workers up in {waited:?}");

    // Their results come later and each continues its conversation: a turn still holding its
    // worker goes on (its first turn), a turn set aside gets them as its conversation's next
    // message naming the call, its function and the result (its second turn).
    let mut continued_aside = 0;
    for (i, (session, call)) in calls.iter().enumerate() {
        let t = Instant::now();
        let text = text_of(answer(&s, KEY, session, call, &format!("sunny {i}")).await).await;
        let cli_id = call.replace("call_", "toolu_");
        let aside = format!("[result of tool call {cli_id} (get_weather)]\nsunny {i}");
        if text.contains(&aside) {
            continued_aside += 1;
            assert_eq!(
                turn_counter(&text),
                2,
                "the same conversation goes on: {text}"
            );
        } else {
            assert!(text.contains(&format!("{cli_id}=sunny {i}")), "{text}");
            assert_eq!(turn_counter(&text), 1, "the same turn goes on: {text}");
        }
        println!("continuation {i}: {:?}", t.elapsed());
    }
    assert_eq!(continued_aside, set_aside);
    assert_eq!(
        metric(&s, "claude_pool_parked_turns_set_aside ").await,
        "claude_pool_parked_turns_set_aside 0"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_key_past_its_parked_limit_gets_429_naming_it() {
    let s = TestServer::start(1, 4, |c| {
        c.pool.parked_turn_grace = Duration::from_secs(60);
        c.limits.max_parked_turns_per_key = 1;
    })
    .await;
    let first = call(&s, KEY, "limit-1", "Oslo", "").await;
    let body = json!({"model": "sonnet", "tools": weather(), "messages": [
        {"role": "user", "content": "again [[call:get_weather {\"city\": \"Rome\"}]]"}]});
    let r = post(&s, KEY, "limit-2", body.clone()).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "parked_turns_exceeded");
    assert_eq!(e["error"]["type"], "rate_limit_error");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("limits.max_parked_turns_per_key = 1"), "{msg}");
    // Requests without tools, another key's, and the parked turn's own results go through.
    let plain = json!({"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(post(&s, KEY, "limit-3", plain).await.status(), 200);
    call(&s, OTHER_KEY, "limit-4", "Lima", "").await;
    let text = text_of(answer(&s, KEY, "limit-1", &first, "fog").await).await;
    assert!(text.contains("=fog"), "the held turn went on: {text}");
    assert_eq!(post(&s, KEY, "limit-2", body).await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn a_result_past_the_deadline_is_refused_naming_the_call() {
    let s = TestServer::start(1, 2, |c| {
        c.pool.tool_result_timeout = Duration::from_millis(800);
    })
    .await;
    let id = call(&s, KEY, "late", "Bern", "").await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = answer(&s, KEY, "late", &id, "too late").await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "tool_call_ended", "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&id) && msg.contains("pool.tool_result_timeout"),
        "{msg}"
    );
    // The conversation itself goes on.
    let body =
        json!({"model": "sonnet", "messages": [{"role": "user", "content": "still there?"}]});
    let text = text_of(post(&s, KEY, "late", body).await).await;
    assert_eq!(turn_counter(&text), 2, "{text}");
    s.stop().await;
}

#[tokio::test]
async fn a_cli_that_stops_waiting_never_passes_its_error_off_as_the_result() {
    let s = TestServer::start(1, 2, |c| {
        c.pool.parked_turn_grace = Duration::from_secs(60);
    })
    .await;
    // The fake gives the call up after 300 ms, as the real CLI does past its own MCP limits,
    // and answers with its error text.
    let id = call(&s, KEY, "gave-up", "Kyiv", " [[abort-call:300]]").await;
    poll_async("the turn set aside", Duration::from_secs(30), || async {
        metric(&s, "claude_pool_parked_turns_set_aside ").await
            == "claude_pool_parked_turns_set_aside 1"
    })
    .await;
    let text = text_of(answer(&s, KEY, "gave-up", &id, "snow").await).await;
    assert!(!text.contains("aborting"), "{text}");
    let cli_id = id.replace("call_", "toolu_");
    assert!(
        text.contains(&format!(
            "[result of tool call {cli_id} (get_weather)]\nsnow"
        )),
        "{text}"
    );
    assert_eq!(turn_counter(&text), 2, "{text}");
    s.stop().await;
}

#[tokio::test]
async fn a_new_message_instead_of_the_results_runs_at_once_and_the_results_may_follow() {
    let s = TestServer::start(1, 2, |c| {
        c.pool.parked_turn_grace = Duration::from_secs(60);
        c.pool.queue_timeout = Duration::from_secs(5);
    })
    .await;
    let id = call(&s, KEY, "moved-on", "Riga", "").await;
    // The client goes on without answering the call: the parked turn gives its worker up to
    // the conversation's next turn instead of holding it until its deadline.
    let t0 = Instant::now();
    let body = json!({"model": "sonnet", "messages": [{"role": "user", "content": "never mind"}]});
    let text = text_of(post(&s, KEY, "moved-on", body).await).await;
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(turn_counter(&text), 2, "{text}");
    let text = text_of(answer(&s, KEY, "moved-on", &id, "rain").await).await;
    assert!(text.contains("(get_weather)]\nrain"), "{text}");
    assert_eq!(turn_counter(&text), 3, "{text}");
    s.stop().await;
}
