//! Rate limits, budgets, per-request cost caps and spend records, on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::keys::{error_code, server};
use common::{Backend, KEY, OTHER_KEY, TestServer, poll_async, sse_data};
use futures_util::StreamExt;
use serde_json::{Value, json};

on_both_backends!(
    rate_limit_headers_and_429,
    budgets_stop_a_key_before_any_worker_is_used,
    a_turn_over_the_request_cap_is_stopped,
    spend_is_recorded_after_a_disconnect,
    concurrent_use_of_one_key_loses_no_spend,
    sixty_four_streams_of_one_key_far_from_its_budget_all_run,
    four_turns_of_a_ten_dollar_key_run_at_once,
);

async fn rate_limit_headers_and_429(backend: Backend) {
    let Some(s) = server(backend, |c| {
        c.limits.rate_limit_requests = 3;
        c.limits.rate_limit_window = Duration::from_secs(60);
    })
    .await
    else {
        return;
    };
    let (key, _) = s.generate(json!({"rpm_limit": 2})).await;
    let header = |r: &reqwest::Response, h: &str| {
        r.headers()
            .get(h)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let r1 = s.chat_as(&key, "sonnet", "one").await;
    assert_eq!(r1.status(), 200);
    assert_eq!(header(&r1, "x-ratelimit-limit"), "2");
    assert_eq!(header(&r1, "x-ratelimit-remaining"), "1");
    // X-RateLimit-Reset is a Unix time (the allowance is full again in 30 s); OpenAI's
    // relative form is in x-ratelimit-reset-requests.
    let reset: i64 = header(&r1, "x-ratelimit-reset").parse().unwrap();
    let now = claude_pool::store::now_secs();
    assert!((now + 28..=now + 31).contains(&reset), "{reset} vs {now}");
    assert_eq!(header(&r1, "x-ratelimit-reset-requests"), "30s");
    assert_eq!(header(&r1, "x-ratelimit-limit-requests"), "2");
    assert_eq!(header(&r1, "x-ratelimit-remaining-requests"), "1");
    // Errors count and carry the headers too.
    let r2 = s.chat_as(&key, "no-such-model", "two").await;
    assert_eq!(
        (r2.status().as_u16(), header(&r2, "x-ratelimit-remaining")),
        (404, "0".into())
    );
    let r3 = s.chat_as(&key, "sonnet", "three").await;
    assert_eq!(r3.status(), 429);
    let retry: u64 = header(&r3, "retry-after").parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(header(&r3, "x-ratelimit-remaining"), "0");
    let v: Value = r3.json().await.unwrap();
    assert_eq!(error_code(&v), "rate_limit_exceeded");
    // Configured keys get the server default (3 per 60 s); each key has its own allowance.
    for expected in ["2", "1", "0"] {
        let r = s.chat_as(KEY, "sonnet", "default limit").await;
        assert_eq!(header(&r, "x-ratelimit-limit"), "3");
        assert_eq!(header(&r, "x-ratelimit-remaining"), expected);
    }
    assert_eq!(s.chat_as(KEY, "sonnet", "over").await.status(), 429);
    assert_eq!(
        s.chat_as(OTHER_KEY, "sonnet", "own allowance")
            .await
            .status(),
        200
    );
    s.stop().await;
}

async fn budgets_stop_a_key_before_any_worker_is_used(backend: Backend) {
    let Some(s) = server(backend, |c| c.limits.max_cost_per_key = 0.05).await else {
        return;
    };
    let (key, _) = s.generate(json!({"max_budget": 0.01})).await;
    assert_eq!(
        s.chat_as(&key, "sonnet", "expensive [[cost:0.02]]")
            .await
            .status(),
        200
    );
    let rows = s.spend_rows(&key, 1).await;
    assert!((rows[0].cost_usd - 0.02).abs() < 1e-9, "{rows:?}");
    let turns_before = s.pool.snapshot().turns_started;
    let r = s.chat_as(&key, "sonnet", "one more").await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.headers()["retry-after"],
        "3600",
        "no budget period: not soon"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(error_code(&v), "budget_exceeded");
    // LiteLLM's wording, which scripts look for; Retry-After on this 429 too.
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Budget has been exceeded! Current cost: 0.02, Max budget: 0.01"),
        "{v}"
    );
    assert_eq!(
        s.pool.snapshot().turns_started,
        turns_before,
        "no worker was used"
    );
    // Raising the budget lets the key in again at once.
    let (status, _) = s
        .admin(
            reqwest::Method::POST,
            "/key/update",
            Some(json!({"key": key, "max_budget": 1.0})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.chat_as(&key, "sonnet", "again").await.status(), 200);
    // A key without its own budget gets limits.max_cost_per_key.
    let (plain, _) = s.generate(json!({})).await;
    assert_eq!(
        s.chat_as(&plain, "sonnet", "[[cost:0.06]]").await.status(),
        200
    );
    s.spend_rows(&plain, 1).await;
    assert_eq!(
        s.chat_as(&plain, "sonnet", "over the default")
            .await
            .status(),
        429
    );
    s.stop().await;
}

async fn a_turn_over_the_request_cap_is_stopped(backend: Backend) {
    let Some(s) = server(backend, |c| c.limits.max_cost_per_request = 0.05).await else {
        return;
    };
    let r = s.chat_as(KEY, "sonnet", "[[cost:0.5]]").await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(error_code(&v), "cost_limit_exceeded");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_cost_per_request"),
        "{v}"
    );
    // Streaming: the error arrives in-band, then [DONE].
    let r = s
        .post("/v1/chat/completions")
        .json(&json!({"model": "sonnet", "stream": true,
                      "messages": [{"role": "user", "content": "[[cost:0.5]] streamed"}]}))
        .send()
        .await
        .unwrap();
    let data = sse_data(r).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let err: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(error_code(&err), "cost_limit_exceeded");
    let rows = s.spend_rows(KEY, 2).await;
    assert!(
        rows.iter()
            .all(|r| r.status == "cost_limit" && r.cost_usd >= 0.5),
        "{rows:?}"
    );
    // Cheap turns are unaffected.
    assert_eq!(s.chat_as(KEY, "sonnet", "cheap").await.status(), 200);
    s.stop().await;
}

async fn spend_is_recorded_after_a_disconnect(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let r = s
        .post("/v1/chat/completions")
        .json(&json!({"model": "sonnet", "stream": true,
                      "messages": [{"role": "user", "content": "[[long]] [[slow:20]] [[cost:0.003]]"}]}))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    let rows = s.spend_rows(KEY, 1).await;
    assert_eq!(rows[0].status, "interrupted", "{rows:?}");
    assert!(rows[0].session_id.is_some());
    s.stop().await;
}

async fn concurrent_use_of_one_key_loses_no_spend(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (key, _) = s.generate(json!({})).await;
    let s = std::sync::Arc::new(s);
    let clients: Vec<_> = (0..50)
        .map(|i| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                s.chat_as(&key, "sonnet", &format!("client {i} [[cost:0.001]]"))
                    .await
                    .status()
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.await.unwrap(), 200);
    }
    let rows = s.spend_rows(&key, 50).await;
    assert_eq!(rows.len(), 50);
    let total: f64 = rows.iter().map(|r| r.cost_usd).sum();
    assert!((total - 0.05).abs() < 1e-9, "{total}");
    poll_async("the key's spend total", Duration::from_secs(30), || {
        let s = s.clone();
        let key = key.clone();
        async move { (s.key_info(&key).await["spend"].as_f64().unwrap() - 0.05).abs() < 1e-9 }
    })
    .await;
    let (_, spend) = s.admin(reqwest::Method::GET, "/spend/keys", None).await;
    let row = spend
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["token"] == claude_pool::keys::hash(&key));
    assert_eq!(row.unwrap()["requests"], 50);
    std::sync::Arc::try_unwrap(s).ok().unwrap().stop().await;
}

/// Starts a streamed chat as `key`: its head arrives once the turn runs on a worker and has
/// sent its first content.
async fn stream_as(s: &TestServer, key: &str, text: &str) -> reqwest::Response {
    s.client
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(key)
        .json(&json!({"model": "sonnet", "stream": true,
                      "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap()
}

/// Far from its budget a key runs as many turns at once as the pool has workers: 64
/// concurrent streams of one key at the default limits ($50 budget, $5 per-request cap, a
/// little spent) all run and none gets 429, since each holds what the key's turns cost, not
/// the cap (holding the cap, 10 run at once and the rest wait, then get 429
/// `budget_reserved`).
async fn sixty_four_streams_of_one_key_far_from_its_budget_all_run(backend: Backend) {
    let defaults = claude_pool::config::LimitsConfig::default();
    let Some(s) = server(backend, |c| {
        c.limits.max_cost_per_key = defaults.max_cost_per_key;
        c.pool.min_workers = 64;
        c.pool.max_workers = 64;
    })
    .await
    else {
        return;
    };
    assert_eq!(s.app.limits.max_cost_per_key, Some(50.0));
    assert_eq!(s.app.limits.max_cost_per_request, Some(5.0));
    let (key, _) = s.generate(json!({})).await;
    let r = s.chat_as(&key, "sonnet", "a little [[cost:0.02]]").await;
    assert_eq!(r.status(), 200);
    s.spend_rows(&key, 1).await;
    let s = std::sync::Arc::new(s);
    // Each turn streams three pieces a second apart: 64 at once take about 3 s; 10 at a
    // time, about 20 s, longer than a turn waits for held budget (pool.queue_timeout, 10 s).
    let streams: Vec<_> = (0..64)
        .map(|i| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                let r = stream_as(&s, &key, &format!("stream {i:02} [[slow:1000]]")).await;
                let status = r.status().as_u16();
                if status != 200 {
                    return (status, r.text().await.unwrap_or_default());
                }
                let data = sse_data(r).await;
                let ok = data.last().is_some_and(|d| d == "[DONE]")
                    && !data.iter().any(|d| d.contains("\"error\""));
                (if ok { 200 } else { 500 }, data.join("\n"))
            })
        })
        .collect();
    let mut refused = Vec::new();
    for stream in streams {
        let (status, body) = stream.await.unwrap();
        if status != 200 {
            refused.push(format!("{status}: {body}"));
        }
    }
    assert!(
        refused.is_empty(),
        "{} of 64 failed, the first: {:?}",
        refused.len(),
        refused.first()
    );
    assert_eq!(s.spend_rows(&key, 65).await.len(), 65);
    let id = claude_pool::keys::hash(&key);
    poll_async("every hold released", Duration::from_secs(30), || {
        let (s, id) = (s.clone(), id.clone());
        async move { s.app.limits.reservations.held(&id) == 0.0 }
    })
    .await;
    std::sync::Arc::try_unwrap(s).ok().unwrap().stop().await;
}

/// A key with a $10 budget and nothing spent, at the default $5 per-request cap: four turns on
/// four workers all run at once (every one has started before any ends). Holding the cap,
/// two would run and the others wait for them.
async fn four_turns_of_a_ten_dollar_key_run_at_once(backend: Backend) {
    let Some(s) = server(backend, |c| c.pool.min_workers = 4).await else {
        return;
    };
    assert_eq!(s.app.limits.max_cost_per_request, Some(5.0));
    let (key, _) = s.generate(json!({"max_budget": 10})).await;
    let s = std::sync::Arc::new(s);
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let turns: Vec<_> = (0..4)
        .map(|i| {
            let (s, key, started) = (s.clone(), key.clone(), started.clone());
            tokio::spawn(async move {
                let r = stream_as(&s, &key, &format!("turn {i} [[slow:1500]]")).await;
                assert_eq!(r.status(), 200);
                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let data = sse_data(r).await;
                assert_eq!(data.last().unwrap(), "[DONE]");
                // How many turns had started when this one ended.
                started.load(std::sync::atomic::Ordering::SeqCst)
            })
        })
        .collect();
    let mut running_at_end = Vec::new();
    for t in turns {
        running_at_end.push(t.await.unwrap());
    }
    assert_eq!(
        running_at_end,
        [4, 4, 4, 4],
        "turns started when each ended"
    );
    std::sync::Arc::try_unwrap(s).ok().unwrap().stop().await;
}
