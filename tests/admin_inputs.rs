//! Bad inputs to the key admin API, on SQLite and on PostgreSQL: each is a 4xx whose message
//! names what is wrong.

mod common;

use common::Backend;
use common::keys::{MASTER, server};
use serde_json::{Value, json};

on_both_backends!(bad_admin_inputs_are_4xx_with_a_message,);

async fn bad_admin_inputs_are_4xx_with_a_message(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (key, _) = s.generate(json!({})).await;
    use reqwest::Method as M;
    let cases: Vec<(M, String, Option<Value>, u16, &str)> = vec![
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"models": "gpt-4"})),
            400,
            "models",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"max_budget": -1})),
            400,
            "max_budget",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"max_budget": "ten"})),
            400,
            "max_budget",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"duration": "soon"})),
            400,
            "duration",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"duration": "-5d"})),
            400,
            "duration",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"rpm_limit": 0})),
            400,
            "rpm_limit",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"rpm_limit": -3})),
            400,
            "rpm_limit",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"models": ["gpt-9"]})),
            400,
            "gpt-9",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"metadata": [1]})),
            400,
            "metadata",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"max_buget": 5})),
            400,
            "max_buget",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"key_alias": ""})),
            400,
            "key_alias",
        ),
        (M::GET, "/key/info?key=not-a-key".into(), None, 400, "key"),
        (M::GET, "/key/list?size=0".into(), None, 400, "size"),
        (
            M::GET,
            "/spend/logs?start_date=soon".into(),
            None,
            400,
            "start_date",
        ),
        (
            M::POST,
            "/key/block".into(),
            Some(json!({"key": "sk-unknown-key-0000"})),
            404,
            "not found",
        ),
        (
            M::POST,
            "/key/regenerate".into(),
            Some(json!({})),
            400,
            "key",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"budget_duration": "sometimes"})),
            400,
            "budget_duration",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"tpm_limit": 1.5})),
            400,
            "whole",
        ),
        (
            M::POST,
            "/key/generate".into(),
            Some(json!({"tags": [""]})),
            400,
            "tags",
        ),
        (
            M::GET,
            "/key/info?key=sk-unknown-key-0000".into(),
            None,
            404,
            "not found",
        ),
        (M::GET, "/key/info?key=not-a-key".into(), None, 400, "token"),
        (
            M::POST,
            "/key/update".into(),
            Some(json!({"key": "sk-unknown-key-0000"})),
            404,
            "not found",
        ),
        (
            M::POST,
            "/key/update".into(),
            Some(json!({"models": []})),
            400,
            "key",
        ),
        (
            M::POST,
            "/key/update".into(),
            Some(json!({"key": key, "duration": "12 parsecs"})),
            400,
            "duration",
        ),
        (
            M::POST,
            "/key/update".into(),
            Some(json!({"key": key, "max_budget": -0.5})),
            400,
            "max_budget",
        ),
        (
            M::POST,
            "/key/update".into(),
            Some(json!({"key": key, "rpm_limit": "many"})),
            400,
            "rpm_limit",
        ),
        (
            M::POST,
            "/key/delete".into(),
            Some(json!({"keys": []})),
            400,
            "keys",
        ),
        (
            M::POST,
            "/key/delete".into(),
            Some(json!({"keys": "sk-x"})),
            400,
            "keys",
        ),
        (
            M::POST,
            "/key/delete".into(),
            Some(json!({"keys": ["sk-unknown-key-0000"]})),
            404,
            "not found",
        ),
    ];
    for (method, path, body, status, mentions) in cases {
        let (got, v) = s.admin(method.clone(), &path, body.clone()).await;
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(got, status, "{method} {path} {body:?}: {v}");
        assert!(
            message.contains(mentions),
            "{method} {path} {body:?}: `{message}` should mention `{mentions}`"
        );
    }
    // A body that is not JSON at all.
    let r = s
        .client
        .post(format!("{}/key/generate", s.url))
        .bearer_auth(MASTER)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Nothing was half-applied: the key is unchanged and still works.
    assert_eq!(s.key_info(&key).await["max_budget"], Value::Null);
    assert_eq!(s.chat_as(&key, "sonnet", "still fine").await.status(), 200);
    s.stop().await;
}
