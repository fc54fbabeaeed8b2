//! Keys and the admin API, on SQLite and on PostgreSQL (`TEST_POSTGRES_URL`, started by
//! `scripts/postgres.sh`; required under CI): lifecycle, expiry, scope, hash-only storage,
//! master-only admin routes, session ownership, per-key Claude credentials (bad inputs are in
//! `admin_inputs.rs`).

mod common;

use std::time::Duration;

use common::keys::{error_code, server};
use common::{Backend, KEY, OTHER_KEY, TestServer, poll_async};
use serde_json::{Value, json};

on_both_backends!(
    key_lifecycle_create_use_update_revoke,
    expired_keys_are_rejected,
    model_scope_is_enforced,
    only_hashes_are_stored,
    admin_routes_need_the_master_key,
    sessions_are_owned_by_their_key_across_restarts,
    a_key_with_its_own_claude_credential_runs_on_its_own_workers,
);

async fn key_lifecycle_create_use_update_revoke(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (key, created) = s
        .generate(
            json!({"key_alias": "ci", "models": ["gpt-4-turbo"], "duration": "30d",
                         "max_budget": 10.0, "rpm_limit": 100, "metadata": {"team": "a"}}),
        )
        .await;
    assert!(key.starts_with("sk-") && key.len() >= 43, "{key}");
    assert_eq!(created["token"], claude_pool::keys::hash(&key));
    assert_eq!(created["key_alias"], "ci");
    assert!(created["expires"].as_str().unwrap().ends_with('Z'));
    assert!(!created["key_name"].as_str().unwrap().contains(&key[8..30]));

    let r = s.chat_as(&key, "gpt-4-turbo", "hello").await;
    assert_eq!(r.status(), 200);
    let (status, updated) = s
        .admin(
            reqwest::Method::POST,
            "/key/update",
            Some(json!({"key": key, "key_alias": "renamed", "rpm_limit": null, "models": []})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["key_alias"], "renamed");
    assert_eq!(updated["rpm_limit"], Value::Null);
    assert_eq!(
        s.chat_as(&key, "haiku", "any model now").await.status(),
        200
    );
    let info = s.key_info(&key).await;
    assert_eq!(info["metadata"]["team"], "a");
    assert_eq!(info["max_budget"], 10.0);
    s.spend_rows(&key, 2).await;
    assert!(s.key_info(&key).await["spend"].as_f64().unwrap() > 0.0);

    let (status, v) = s
        .admin(
            reqwest::Method::POST,
            "/key/delete",
            Some(json!({"keys": [key]})),
        )
        .await;
    assert_eq!(
        (status, v["deleted_keys"][0].as_str()),
        (200, Some(key.as_str()))
    );
    // Revocation is effective at once on this replica (the cache entry is dropped).
    let r = s.chat_as(&key, "gpt-4-turbo", "after revoke").await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("revoked"),
        "{v}"
    );
    let (_, list) = s.admin(reqwest::Method::GET, "/key/list", None).await;
    let listed = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["token"] == created["token"]);
    assert_eq!(listed.unwrap()["revoked"], true);
    s.stop().await;
}

async fn expired_keys_are_rejected(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (key, _) = s.generate(json!({"duration": "2s"})).await;
    assert_eq!(s.chat_as(&key, "sonnet", "still valid").await.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.chat_as(&key, "sonnet", "expired yet?").await;
        if r.status() == 401 {
            let v: Value = r.json().await.unwrap();
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("Expired Key"),
                "{v}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the key never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(s.key_info(&key).await["active"], false);
    s.stop().await;
}

async fn model_scope_is_enforced(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (key, _) = s.generate(json!({"models": ["gpt-4", "haiku"]})).await;
    assert_eq!(
        s.chat_as(&key, "gpt-4", "allowed alias").await.status(),
        200
    );
    // `gpt-3.5-turbo` resolves to haiku, which is in scope.
    assert_eq!(
        s.chat_as(&key, "gpt-3.5-turbo", "allowed target")
            .await
            .status(),
        200
    );
    let r = s.chat_as(&key, "sonnet", "outside the scope").await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(error_code(&v), "model_not_allowed");
    assert_eq!(v["error"]["type"], "permission_error");
    // The key sees only the models it may use.
    let models = s.get_json("/v1/models", &key).await;
    let mut ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["gpt-3.5-turbo", "gpt-4", "gpt-4o-mini", "haiku"]);
    s.stop().await;
}

async fn only_hashes_are_stored(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let token = "sk-ant-oat01-private-credential-XYZW";
    let (key, _) = s.generate(json!({"claude_oauth_token": token})).await;
    assert_eq!(s.chat_as(&key, "sonnet", "use it once").await.status(), 200);
    s.spend_rows(&key, 1).await;
    // Every value in every table, as text.
    let store = claude_pool::store::SqlStore::open(&s.database_url, 1)
        .await
        .unwrap();
    let mut dump = String::new();
    for table in ["keys", "spend", "sessions"] {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(store.pool())
            .await
            .unwrap();
        for row in rows {
            use sqlx::Row;
            for i in 0..row.len() {
                if let Ok(Some(t)) = row.try_get::<Option<String>, _>(i) {
                    dump.push_str(&t);
                } else if let Ok(Some(b)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                    dump.push_str(&String::from_utf8_lossy(&b));
                }
                dump.push('|');
            }
        }
    }
    assert!(
        dump.contains(&claude_pool::keys::hash(&key)),
        "the hash is the key's id"
    );
    for secret in [key.as_str(), &key[3..], token, "private-credential", KEY] {
        assert!(!dump.contains(secret), "`{secret}` is stored in plain text");
    }
    if backend == Backend::Sqlite {
        // And nowhere in the database files, journal included.
        let mut bytes = Vec::new();
        for f in std::fs::read_dir(s.dir.path()).unwrap().flatten() {
            if f.file_name()
                .to_string_lossy()
                .starts_with("claude-pool.db")
            {
                bytes.extend(std::fs::read(f.path()).unwrap());
            }
        }
        assert!(!bytes.is_empty());
        for secret in [key.as_bytes(), token.as_bytes(), KEY.as_bytes()] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "secret in the file"
            );
        }
    }
    // Not returned either.
    let (_, list) = s.admin(reqwest::Method::GET, "/key/list", None).await;
    assert!(!list.to_string().contains(token) && !list.to_string().contains(&key));
    assert_eq!(s.key_info(&key).await["has_claude_credential"], true);
    s.stop().await;
}

async fn admin_routes_need_the_master_key(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let routes = [
        (reqwest::Method::POST, "/key/generate", Some(json!({}))),
        (reqwest::Method::GET, "/key/info?key=sk-whatever", None),
        (reqwest::Method::GET, "/key/list", None),
        (
            reqwest::Method::POST,
            "/key/update",
            Some(json!({"key": "sk-x"})),
        ),
        (
            reqwest::Method::POST,
            "/key/delete",
            Some(json!({"keys": ["sk-x"]})),
        ),
        (reqwest::Method::GET, "/spend/keys", None),
    ];
    for (method, path, body) in routes {
        for (key, expected) in [
            (None, 401),
            (Some("sk-wrong-key-123"), 401),
            (Some(KEY), 403),
        ] {
            let mut req = s.client.request(method.clone(), format!("{}{path}", s.url));
            if let Some(k) = key {
                req = req.bearer_auth(k);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.status().as_u16(),
                expected,
                "{method} {path} with {key:?}"
            );
            let v: Value = r.json().await.unwrap();
            assert!(v["error"]["message"].is_string(), "{v}");
        }
    }
    let (status, _) = s.admin(reqwest::Method::GET, "/key/list", None).await;
    assert_eq!(status, 200);
    s.stop().await;
}

async fn sessions_are_owned_by_their_key_across_restarts(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let id = s.create_session().await;
    let get = |s: &TestServer, key: &'static str, id: String| {
        let req = s
            .client
            .get(format!("{}/api/v1/sessions/{id}", s.url))
            .bearer_auth(key);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(&s, KEY, id.clone()).await, 200);
    assert_eq!(get(&s, OTHER_KEY, id.clone()).await, 404);
    // The other key using that id gets its own conversation, never the owner's.
    let r = s
        .client
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(OTHER_KEY)
        .header("x-session-id", &id)
        .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": "steal"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("[turn=1]"), "a fresh conversation: {text}");
    // A second server on the same database (a restart, or another replica) knows the owner.
    let url = s.database_url.clone();
    let s2 = server(backend, |c| c.store.database_url = url)
        .await
        .unwrap();
    assert_eq!(get(&s2, KEY, id.clone()).await, 200);
    // Each key has its own conversation under that id, with its own turn count.
    let turns = |key: &'static str| {
        let (s2, id) = (&s2, id.clone());
        async move { s2.get_json(&format!("/api/v1/sessions/{id}"), key).await["turns"].clone() }
    };
    poll_async(
        "the other key's turn counted",
        Duration::from_secs(30),
        || async { turns(OTHER_KEY).await == 1 },
    )
    .await;
    assert_eq!(
        turns(KEY).await,
        0,
        "the owner's conversation was not touched"
    );
    let list: Value = s2.get_json("/api/v1/sessions", KEY).await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == id.as_str())
    );
    s2.stop().await;
    s.stop().await;
}

async fn a_key_with_its_own_claude_credential_runs_on_its_own_workers(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (own, _) = s
        .generate(json!({"claude_oauth_token": "sk-ant-oat01-abcdef-QRST"}))
        .await;
    let reply = |r: Value| {
        r["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mine = reply(
        s.chat_as(&own, "sonnet", "[[credential]]")
            .await
            .json()
            .await
            .unwrap(),
    );
    assert!(mine.contains("credential=QRST"), "{mine}");
    let shared = reply(
        s.chat_as(KEY, "sonnet", "[[credential]]")
            .await
            .json()
            .await
            .unwrap(),
    );
    assert!(shared.contains("credential=none"), "{shared}");
    // Clearing the credential moves the key back to the server's workers.
    let (status, _) = s
        .admin(
            reqwest::Method::POST,
            "/key/update",
            Some(json!({"key": own, "claude_oauth_token": null})),
        )
        .await;
    assert_eq!(status, 200);
    let after = reply(
        s.chat_as(&own, "sonnet", "[[credential]]")
            .await
            .json()
            .await
            .unwrap(),
    );
    assert!(after.contains("credential=none"), "{after}");
    s.stop().await;
}
