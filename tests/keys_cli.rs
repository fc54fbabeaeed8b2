//! `claude-pool keys ...` against a running server's store, on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::keys::{MASTER, server};
use common::{Backend, TestServer, poll_async};
use serde_json::Value;

on_both_backends!(the_keys_command_works_on_the_servers_store,);

/// `claude-pool keys ...` on the server's database, as an operator would run it.
fn keys_cli(s: &TestServer, args: &[&str]) -> (bool, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_claude-pool"))
        .arg("keys")
        .args(args)
        .current_dir(s.dir.path())
        .env("CLAUDE_POOL_STORE__DATABASE_URL", &s.database_url)
        .env_remove("DATABASE_URL")
        .env("CLAUDE_POOL_AUTH__MASTER_KEY", MASTER)
        .env("CLI_CLAUDE_TOKEN", "sk-ant-oat01-from-env-LMNO")
        .output()
        .expect("run claude-pool keys");
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn the_keys_command_works_on_the_servers_store(backend: Backend) {
    let Some(s) = server(backend, |_| {}).await else {
        return;
    };
    let (ok, created, err) = keys_cli(
        &s,
        &[
            "create",
            "--alias",
            "from-cli",
            "--models",
            "sonnet,haiku",
            "--duration",
            "1d",
            "--rpm-limit",
            "50",
            "--claude-oauth-token-env",
            "CLI_CLAUDE_TOKEN",
        ],
    );
    assert!(ok, "{err}");
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(created["has_claude_credential"], true);
    // The server takes the new key at once (unknown keys are not cached for long).
    poll_async(
        "the server accepts the CLI's key",
        Duration::from_secs(30),
        || {
            let (s, key) = (&s, key.clone());
            async move { s.chat_as(&key, "sonnet", "hi").await.status() == 200 }
        },
    )
    .await;
    let reply: Value = s
        .chat_as(&key, "sonnet", "[[credential]]")
        .await
        .json()
        .await
        .unwrap();
    assert!(reply.to_string().contains("credential=LMNO"), "{reply}");
    assert_eq!(s.chat_as(&key, "opus", "out of scope").await.status(), 403);
    let (ok, info, _) = keys_cli(&s, &["info", &key]);
    assert!(
        ok && info["key_alias"] == "from-cli" && info["rpm_limit"] == 50,
        "{info}"
    );
    assert!(!info.to_string().contains(&key) && !info.to_string().contains("LMNO"));
    let (ok, list, _) = keys_cli(&s, &["list"]);
    assert!(
        ok && list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key_alias"] == "from-cli")
    );
    let (ok, revoked, _) = keys_cli(&s, &["revoke", info["token"].as_str().unwrap()]);
    assert!(ok && revoked["revoked"] == true, "{revoked}");
    // Another process revoked it: this server notices when its cache entry expires (5 s).
    poll_async(
        "the server rejects the revoked key",
        Duration::from_secs(30),
        || {
            let (s, key) = (&s, key.clone());
            async move { s.chat_as(&key, "sonnet", "hi").await.status() == 401 }
        },
    )
    .await;
    // Bad input: a clear message and a failing exit status.
    let (ok, _, err) = keys_cli(&s, &["create", "--max-budget=-1"]);
    assert!(!ok && err.contains("max_budget"), "{err}");
    let (ok, _, err) = keys_cli(&s, &["info", "sk-no-such-key-000"]);
    assert!(!ok && err.contains("not found"), "{err}");
    s.stop().await;
}
