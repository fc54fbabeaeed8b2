//! LiteLLM's spend reports and budgets under concurrency, on SQLite and on PostgreSQL: spend by
//! tag and the spend log with their filters, and running turns that cannot overshoot a budget.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Backend;
use common::keys::{error_code, server};
use reqwest::Method as M;
use serde_json::{Value, json};

on_both_backends!(
    spend_is_reported_by_tag_and_in_the_spend_log,
    concurrent_turns_cannot_overshoot_a_budget_by_more_than_one_cap,
);

fn header(r: &reqwest::Response, h: &str) -> String {
    r.headers()
        .get(h)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn spend_is_reported_by_tag_and_in_the_spend_log(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (key, made) = s.generate(json!({"tags": ["team-x"]})).await;
    let (other, _) = s.generate(json!({})).await;
    let chat = |key: String, tags: Value, cost: &str| {
        let (client, url) = (s.client.clone(), s.url.clone());
        let text = format!("[[cost:{cost}]]");
        async move {
            let r = client
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&json!({"model": "sonnet", "metadata": {"tags": tags},
                              "messages": [{"role": "user", "content": text}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let first = chat(key.clone(), json!(["prod", "search"]), "0.1").await;
    chat(key.clone(), json!(["prod"]), "0.2").await;
    chat(other.clone(), json!(["search"]), "0.4").await;
    chat(other.clone(), json!([]), "0.8").await;
    s.spend_rows(&other, 2).await;
    s.spend_rows(&key, 2).await;
    let (status, tags) = s.admin(M::GET, "/spend/tags", None).await;
    assert_eq!(status, 200, "{tags}");
    let by_tag = |t: &str| {
        tags.as_array()
            .unwrap()
            .iter()
            .find(|r| r["individual_request_tag"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no {t} in {tags}"))
    };
    let approx = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
    assert!(approx(&by_tag("search")["total_spend"], 0.5) && by_tag("search")["log_count"] == 2);
    assert!(approx(&by_tag("prod")["total_spend"], 0.3) && by_tag("prod")["log_count"] == 2);
    // The key's own tags are recorded with each of its requests.
    assert!(approx(&by_tag("team-x")["total_spend"], 0.3));
    assert!(by_tag("team-x")["total_tokens"].as_i64().unwrap() > 0);
    assert_eq!(tags.as_array().unwrap().len(), 3);
    // Spend log: filtered by key (value or token), paged, newest first.
    let r = s
        .client
        .get(format!(
            "{}/spend/logs?api_key={}&page_size=1",
            s.url,
            made["token"].as_str().unwrap()
        ))
        .bearer_auth(common::keys::MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-total-count"), "2");
    let page: Value = r.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);
    let (_, all) = s
        .admin(M::GET, &format!("/spend/logs?api_key={key}"), None)
        .await;
    let all = all.as_array().unwrap();
    assert_eq!(all[1]["request_id"], first.as_str());
    assert_eq!(all[1]["request_tags"], json!(["team-x", "prod", "search"]));
    assert_eq!(all[1]["api_key"], made["token"]);
    assert!(approx(&all[1]["spend"], 0.1));
    assert_eq!(all[0], page[0]);
    // Date filters: today has all four; a day in the past none.
    let today = claude_pool::keys::rfc3339(claude_pool::store::now_secs())[..10].to_owned();
    let (_, day) = s
        .admin(
            M::GET,
            &format!("/spend/logs?start_date={today}&end_date={today}"),
            None,
        )
        .await;
    assert_eq!(day.as_array().unwrap().len(), 4);
    let (_, none) = s
        .admin(
            M::GET,
            "/spend/logs?start_date=2020-01-01&end_date=2020-01-02",
            None,
        )
        .await;
    assert_eq!(none, json!([]));
    let (_, past) = s
        .admin(
            M::GET,
            "/spend/tags?start_date=2020-01-01&end_date=2020-01-02",
            None,
        )
        .await;
    assert_eq!(past, json!([]));
    // A request's tags must be strings.
    let r = s
        .post("/v1/chat/completions")
        .json(&json!({"model": "sonnet", "metadata": {"tags": [1]},
                      "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}

/// 20 concurrent turns of $0.15 each (cap $0.20) on a key with $1 of budget: running turns
/// hold their cap, so the key spends at most $1 + one cap, not $3. Refused turns retry until
/// they run or the budget is spent.
async fn concurrent_turns_cannot_overshoot_a_budget_by_more_than_one_cap(backend: Backend) {
    let Some(s) = server(backend, |c| c.limits.max_cost_per_request = 0.2).await else {
        return;
    };
    let (key, _) = s.generate(json!({"max_budget": 1})).await;
    let s = Arc::new(s);
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let (s, key) = (s.clone(), key.clone());
            tokio::spawn(async move {
                loop {
                    let r = s
                        .chat_as(
                            &key,
                            "sonnet",
                            &format!("client {i} [[cost:0.15]] [[slow:20]]"),
                        )
                        .await;
                    match r.status().as_u16() {
                        200 => return "ran",
                        429 => {
                            assert!(r.headers().contains_key("retry-after"));
                            let v: Value = r.json().await.unwrap();
                            match error_code(&v) {
                                "budget_reserved" => {
                                    tokio::time::sleep(Duration::from_millis(50)).await
                                }
                                "budget_exceeded" => return "refused",
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
    for c in clients {
        if c.await.unwrap() == "ran" {
            ran += 1;
        }
    }
    let rows = s.spend_rows(&key, ran).await;
    let total: f64 = rows.iter().map(|r| r.cost_usd).sum();
    eprintln!("{ran} turns ran, spent {total}");
    assert!(total <= 1.0 + 0.2 + 1e-9, "spent {total} in {ran} turns");
    assert!(ran >= 7, "the budget was used: {ran} turns, {total}");
    assert_eq!(
        s.app
            .limits
            .reservations
            .held(&claude_pool::keys::hash(&key)),
        0.0
    );
    Arc::try_unwrap(s).ok().unwrap().stop().await;
}
