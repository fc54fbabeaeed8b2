//! The LiteLLM key workflows people script against, on SQLite and on PostgreSQL: numbers as
//! integers or floats, listing and filtering keys, deleting, regenerating, blocking, budgets
//! that reset on schedule, token and parallel limits. Spend reports and budget reservations are
//! in `litellm_spend.rs`.

mod common;

use std::time::Duration;

use common::keys::{error_code, server};
use common::{Backend, TestServer, poll_async};
use reqwest::Method as M;
use serde_json::{Value, json};

on_both_backends!(
    numbers_are_integers_or_floats_on_reused_connections,
    models_list_exactly_a_keys_full_claude_names,
    keys_are_listed_filtered_and_paged_by_key_info_and_key_list,
    keys_are_deleted_by_value_token_or_alias_with_post_or_delete,
    a_regenerated_key_keeps_its_settings_and_spend_and_the_old_one_stops,
    a_blocked_key_is_refused_in_litellm_words_until_unblocked,
    a_budget_with_a_period_resets_on_schedule,
    tpm_and_parallel_limits_refuse_with_retry_after,
);

fn header(r: &reqwest::Response, h: &str) -> String {
    r.headers()
        .get(h)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Waits until the stored spend of `key` is `usd`.
async fn spend_reaches(s: &TestServer, key: &str, usd: f64) {
    poll_async(&format!("spend {usd}"), Duration::from_secs(30), || async {
        (s.key_info(key).await["spend"].as_f64().unwrap() - usd).abs() < 1e-9
    })
    .await;
}

/// Every numeric field accepts `1` and `1.0` alike, also when a connection that already ran
/// the statement with a NULL (or another type) runs it again: the pool has two connections,
/// so the statements below share them.
async fn numbers_are_integers_or_floats_on_reused_connections(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let bodies = [
        json!({}),
        json!({"max_budget": 1}),
        json!({"max_budget": null}),
        json!({"max_budget": 1.5, "rpm_limit": 10}),
        json!({"max_budget": 2, "rpm_limit": 10}),
        json!({"max_budget": 0}),
        json!({}),
        json!({"max_budget": 3}),
    ];
    let mut made = Vec::new();
    for body in bodies.iter().chain(bodies.iter()) {
        let (key, v) = s.generate(body.clone()).await;
        let expected = body["max_budget"].as_f64();
        assert_eq!(v["max_budget"].as_f64(), expected, "{body} → {v}");
        made.push(key);
    }
    for (i, key) in made.iter().enumerate() {
        let budget: Value = if i % 2 == 0 { json!(5) } else { json!(null) };
        let (status, v) = s
            .admin(
                reqwest::Method::POST,
                "/key/update",
                Some(json!({"key": key, "max_budget": budget})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["max_budget"].as_f64(), budget.as_f64());
    }
    s.stop().await;
}

async fn models_list_exactly_a_keys_full_claude_names(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let scope = ["claude-sonnet-4-5-20250929", "claude-3-opus-20240229"];
    let (key, _) = s.generate(json!({"models": scope})).await;
    let list = s.get_json("/v1/models", &key).await;
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    for id in scope {
        assert!(ids.contains(&id), "{ids:?}");
        assert_eq!(
            s.get_json(&format!("/v1/models/{id}"), &key).await["id"],
            id
        );
    }
    // Another model: LiteLLM's wording, which scripts grep for.
    let r = s.chat_as(&key, "haiku", "hi").await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "key not allowed to access model. This key can only access \
         models=['claude-sonnet-4-5-20250929', 'claude-3-opus-20240229']. Tried to access haiku"
    );
    assert_eq!(s.chat_as(&key, scope[0], "hi").await.status(), 200);
    s.stop().await;
}

async fn keys_are_listed_filtered_and_paged_by_key_info_and_key_list(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    for i in 0..5 {
        s.generate(json!({"key_alias": if i < 3 { "team-a" } else { "team-b" }}))
            .await;
    }
    // `/key/info` without `key`: the list (the test server also has two configured keys).
    let (status, all) = s.admin(M::GET, "/key/info", None).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["total_count"], 7);
    assert_eq!(all["keys"].as_array().unwrap().len(), 7);
    let (_, a) = s.admin(M::GET, "/key/info?key_alias=team-a", None).await;
    assert_eq!(a["total_count"], 3);
    assert!(
        a["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["key_alias"] == "team-a")
    );
    // Pages of 2: 7 keys → 4 pages, every key once.
    let mut seen = std::collections::HashSet::new();
    for page in 1..=4 {
        let (_, p) = s
            .admin(M::GET, &format!("/key/list?page={page}&size=2"), None)
            .await;
        assert_eq!(
            (p["current_page"].as_i64(), p["total_pages"].as_i64()),
            (Some(page), Some(4))
        );
        for k in p["keys"].as_array().unwrap() {
            assert!(seen.insert(k["token"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(seen.len(), 7);
    let (_, b) = s
        .admin(M::GET, "/key/list?key_alias=team-b&size=1&page=2", None)
        .await;
    assert_eq!(
        (
            b["total_count"].as_i64(),
            b["keys"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    s.stop().await;
}

async fn keys_are_deleted_by_value_token_or_alias_with_post_or_delete(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (k1, _) = s.generate(json!({})).await;
    let (k2, made2) = s.generate(json!({})).await;
    let (k3, _) = s.generate(json!({"key_alias": "old-ci"})).await;
    let (k4, _) = s.generate(json!({"key_alias": "old-ci"})).await;
    // curl -X DELETE /key/delete -d '{"keys": [...]}', by value and by token.
    let (status, v) = s
        .admin(
            M::DELETE,
            "/key/delete",
            Some(json!({"keys": [k1, made2["token"]]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = s
        .admin(
            M::POST,
            "/key/delete",
            Some(json!({"key_aliases": ["old-ci"]})),
        )
        .await;
    assert_eq!(
        (status, &v["deleted_keys"]),
        (200, &json!(["old-ci"])),
        "{v}"
    );
    for key in [&k1, &k2, &k3, &k4] {
        poll_async("the key refused", Duration::from_secs(30), || async {
            s.chat_as(key, "sonnet", "hi").await.status() == 401
        })
        .await;
    }
    let (status, _) = s
        .admin(
            M::POST,
            "/key/delete",
            Some(json!({"key_aliases": ["nobody"]})),
        )
        .await;
    assert_eq!(status, 404);
    s.stop().await;
}

async fn a_regenerated_key_keeps_its_settings_and_spend_and_the_old_one_stops(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (old, made) = s
        .generate(
            json!({"key_alias": "svc", "models": ["sonnet"], "max_budget": 5, "tags": ["svc"]}),
        )
        .await;
    assert_eq!(
        s.chat_as(&old, "sonnet", "[[cost:0.25]]").await.status(),
        200
    );
    spend_reaches(&s, &old, 0.25).await;
    let (status, new) = s
        .admin(M::POST, "/key/regenerate", Some(json!({"key": old})))
        .await;
    assert_eq!(status, 200, "{new}");
    let new_key = new["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old);
    assert_eq!(new["previous_token"], made["token"]);
    for field in ["key_alias", "models", "max_budget", "tags"] {
        assert_eq!(new[field], made[field], "{field}");
    }
    assert_eq!(new["spend"], 0.25);
    assert_eq!(
        s.chat_as(&old, "sonnet", "hi").await.status(),
        401,
        "old key revoked at once"
    );
    assert_eq!(s.chat_as(&new_key, "sonnet", "hi").await.status(), 200);
    // LiteLLM's path form; a revoked key cannot be regenerated.
    let (status, v) = s
        .admin(M::POST, &format!("/key/{new_key}/regenerate"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = s
        .admin(M::POST, "/key/regenerate", Some(json!({"key": old})))
        .await;
    assert_eq!(status, 400);
    s.stop().await;
}

async fn a_blocked_key_is_refused_in_litellm_words_until_unblocked(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (key, _) = s.generate(json!({})).await;
    let (status, v) = s
        .admin(M::POST, "/key/block", Some(json!({"key": key})))
        .await;
    assert_eq!((status, &v["blocked"]), (200, &json!(true)), "{v}");
    let r = s.chat_as(&key, "sonnet", "hi").await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Key is blocked. Update via `/key/unblock` if you're admin."),
        "{v}"
    );
    assert_eq!(s.key_info(&key).await["blocked"], true);
    let (status, v) = s
        .admin(M::POST, "/key/unblock", Some(json!({"key": key})))
        .await;
    assert_eq!((status, &v["blocked"]), (200, &json!(false)), "{v}");
    assert_eq!(s.chat_as(&key, "sonnet", "hi").await.status(), 200);
    s.stop().await;
}

async fn a_budget_with_a_period_resets_on_schedule(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (key, made) = s
        .generate(json!({"max_budget": 0.01, "budget_duration": "1d"}))
        .await;
    assert_eq!(made["budget_duration"], "1d");
    let first_reset = made["budget_reset_at"].as_str().unwrap().to_owned();
    assert_eq!(
        s.chat_as(&key, "sonnet", "[[cost:0.02]]").await.status(),
        200
    );
    spend_reaches(&s, &key, 0.02).await;
    let r = s.chat_as(&key, "sonnet", "over").await;
    assert_eq!(r.status(), 429);
    // Retry-After points at the reset, a day away.
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((86_000..=86_400).contains(&retry), "{retry}");
    // A day later (the server's clock moved forward): spend back to 0, next reset a day on.
    s.app.limits.clock.advance(86_401);
    assert_eq!(s.chat_as(&key, "sonnet", "a new day").await.status(), 200);
    let info = s.key_info(&key).await;
    assert!(info["spend"].as_f64().unwrap() < 0.01, "{info}");
    assert!(
        info["budget_reset_at"].as_str().unwrap() > first_reset.as_str(),
        "{info}"
    );
    // Keys are also reset when listed, used or not.
    let (idle, _) = s
        .generate(json!({"max_budget": 1, "budget_duration": "1mo"}))
        .await;
    assert_eq!(
        s.chat_as(&idle, "sonnet", "[[cost:0.3]]").await.status(),
        200
    );
    spend_reaches(&s, &idle, 0.3).await;
    s.app.limits.clock.advance(32 * 86_400);
    spend_reaches(&s, &idle, 0.0).await;
    s.stop().await;
}

async fn tpm_and_parallel_limits_refuse_with_retry_after(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (tpm_key, _) = s.generate(json!({"tpm_limit": 5})).await;
    let r = s
        .chat_as(&tpm_key, "sonnet", "uses more than five tokens")
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ratelimit-limit-tokens"), "5");
    let r = s.chat_as(&tpm_key, "sonnet", "again").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "x-ratelimit-remaining-tokens"), "0");
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(error_code(&v), "rate_limit_exceeded");

    let (one, _) = s.generate(json!({"max_parallel_requests": 1})).await;
    let slow = {
        let (client, url, one) = (s.client.clone(), s.url.clone(), one.clone());
        tokio::spawn(async move {
            client
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(one)
                .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": "[[long]] [[slow:10]]"}]}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    poll("the slow turn running", Duration::from_secs(30), || {
        s.app
            .limits
            .in_flight
            .running(&claude_pool::keys::hash(&one))
            == 1
    })
    .await;
    let r = s.chat_as(&one, "sonnet", "second at once").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(error_code(&v), "max_parallel_requests_exceeded");
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(s.chat_as(&one, "sonnet", "after it").await.status(), 200);
    s.stop().await;
}

async fn poll(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    common::poll(what, timeout, cond).await
}
