//! Replicas on one PostgreSQL database behave as one service for a key's limits: two servers
//! sharing a database enforce one request rate (a key with `rpm_limit` 10, requests
//! alternating between them), and spend and revocations made on one are enforced by the
//! other (its key cache lives 1 s on PostgreSQL). (On SQLite each server counts alone, as a
//! single node does.)

mod common;

use common::keys::{MASTER, server};
use common::*;
use serde_json::json;

/// A second server on `a`'s database (its own files, the same master key).
async fn replica_of(
    a: &TestServer,
    tweak: impl FnOnce(&mut claude_pool::config::Config),
) -> TestServer {
    a.replica(|c| {
        c.auth.master_key = MASTER.into();
        tweak(c);
    })
    .await
}

async fn hammer(servers: &[&TestServer], key: &str, n: usize) -> (usize, Vec<u64>) {
    let mut accepted = 0;
    let mut retry_after = Vec::new();
    for i in 0..n {
        let s = servers[i % servers.len()];
        let r = s
            .client
            .get(format!("{}/v1/models", s.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => accepted += 1,
            429 => retry_after.push(
                r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            ),
            other => panic!("unexpected status {other}"),
        }
    }
    (accepted, retry_after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_database_share_a_keys_rate_limit() {
    let Some(a) = server(Backend::Postgres, |_| {}).await else {
        return;
    };
    let b = replica_of(&a, |_| {}).await;
    assert!(a.app.limits.shared_rates && b.app.limits.shared_rates);
    let (key, _) = a.generate(json!({"rpm_limit": 10})).await;
    // 30 requests take well under the 6 s it takes to earn one more: 10 pass in all.
    let (accepted, waits) = hammer(&[&a, &b], &key, 30).await;
    assert_eq!(accepted, 10, "one limit for both replicas");
    assert!(waits.iter().all(|w| (1..=6).contains(w)), "{waits:?}");
    // Another key has its own allowance.
    let (other, _) = b.generate(json!({"rpm_limit": 10})).await;
    assert_eq!(hammer(&[&b, &a], &other, 4).await.0, 4);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sharing_each_replica_counts_alone() {
    let Some(a) = server(Backend::Postgres, |c| c.limits.shared_rate_limits = false).await else {
        return;
    };
    let b = replica_of(&a, |c| c.limits.shared_rate_limits = false).await;
    assert!(!a.app.limits.shared_rates);
    let (key, _) = a.generate(json!({"rpm_limit": 10})).await;
    assert_eq!(hammer(&[&a, &b], &key, 30).await.0, 20, "10 per replica");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_and_revocation_on_one_replica_are_enforced_by_the_other() {
    let Some(a) = server(Backend::Postgres, |_| {}).await else {
        return;
    };
    let b = replica_of(&a, |_| {}).await;
    let (key, _) = a
        .generate(json!({"max_budget": 0.01, "max_parallel_requests": 1}))
        .await;
    // B knows the key (and caches it) before A spends.
    assert_eq!(b.chat_as(&key, "sonnet", "hi").await.status(), 200);
    let spent = a.chat_as(&key, "sonnet", "[[cost:0.05]] expensive").await;
    assert_eq!(spent.status(), 200);
    poll_async(
        "B refuses the key over its budget",
        std::time::Duration::from_secs(30),
        || {
            let b = &b;
            let key = key.clone();
            async move {
                let r = b.chat_as(&key, "sonnet", "more").await;
                r.status() == 429
                    && r.json::<serde_json::Value>().await.unwrap()["error"]["code"]
                        == "budget_exceeded"
            }
        },
    )
    .await;
    // A revocation on A is enforced by B.
    let (other, _) = a.generate(json!({})).await;
    assert_eq!(hammer(&[&b], &other, 1).await.0, 1);
    let (status, _) = a
        .admin(
            reqwest::Method::POST,
            "/key/delete",
            Some(json!({"keys": [other.clone()]})),
        )
        .await;
    assert_eq!(status, 200);
    poll_async(
        "B refuses the revoked key",
        std::time::Duration::from_secs(30),
        || {
            let b = &b;
            let other = other.clone();
            async move {
                b.client
                    .get(format!("{}/v1/models", b.url))
                    .bearer_auth(&other)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    == 401
            }
        },
    )
    .await;
    a.stop().await;
    b.stop().await;
}

/// 20 concurrent turns of $0.15 (cap $0.20) on a key with $1 of budget, spread over three
/// replicas on one PostgreSQL: every running turn holds its cap in the store, so the key
/// spends at most $1 plus one cap in all, not $1 per replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_do_not_overshoot_a_budget_by_more_than_one_cap() {
    let cap = |c: &mut claude_pool::config::Config| c.limits.max_cost_per_request = 0.2;
    let Some(a) = server(Backend::Postgres, cap).await else {
        return;
    };
    let b = replica_of(&a, cap).await;
    let c = replica_of(&a, cap).await;
    let (key, _) = a.generate(json!({"max_budget": 1})).await;
    let replicas = std::sync::Arc::new([a, b, c]);
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let (replicas, key) = (replicas.clone(), key.clone());
            tokio::spawn(async move {
                let s = &replicas[i % 3];
                loop {
                    let text = format!("client {i} [[cost:0.15]] [[slow:20]]");
                    let r = s.chat_as(&key, "sonnet", &text).await;
                    match r.status().as_u16() {
                        200 => return true,
                        429 => {
                            let v: serde_json::Value = r.json().await.unwrap();
                            match v["error"]["code"].as_str().unwrap_or_default() {
                                "budget_reserved" => {
                                    tokio::time::sleep(std::time::Duration::from_millis(50)).await
                                }
                                "budget_exceeded" => return false,
                                other => panic!("{other}: {v}"),
                            }
                        }
                        other => panic!("status {other}"),
                    }
                }
            })
        })
        .collect();
    let mut ran = 0;
    for client in clients {
        if client.await.unwrap() {
            ran += 1;
        }
    }
    let rows = replicas[0].spend_rows(&key, ran).await;
    let total: f64 = rows.iter().map(|r| r.cost_usd).sum();
    eprintln!("three replicas: {ran} turns ran, spent {total:.2} of a $1 budget");
    assert!(total <= 1.0 + 0.2 + 1e-9, "spent {total} in {ran} turns");
    assert!(ran >= 6, "the budget was used: {ran} turns, {total}");
    let Ok(replicas) = std::sync::Arc::try_unwrap(replicas) else {
        panic!("clients done");
    };
    for s in replicas {
        s.stop().await;
    }
}
