//! The LiteLLM key workflows people script against, on SQLite and on PostgreSQL: numbers as
//! integers or floats, listing and filtering keys, deleting, regenerating, blocking, budgets
//! that reset on schedule, spend by tag and the spend log.

mod common;

use common::Backend;
use common::keys::server;
use serde_json::{Value, json};

on_both_backends!(numbers_are_integers_or_floats_on_reused_connections,);

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
