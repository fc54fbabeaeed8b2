//! Helpers of the keys, limits and budgets suites: a server with a master key on a chosen
//! backend, admin calls, chats as a given key, and the spend records of a key.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Backend, TestServer, poll_async};

pub const MASTER: &str = "sk-master-test-key";

/// Runs each named test on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Postgres).await })*
        }
    };
}

pub async fn server(
    backend: Backend,
    tweak: impl FnOnce(&mut claude_pool::config::Config),
) -> Option<TestServer> {
    TestServer::start_on(backend, 1, 4, |c| {
        c.auth.master_key = MASTER.into();
        c.pool.queue_capacity = 64;
        // Few connections, so differently typed statements share them as in production.
        c.store.max_connections = 2;
        tweak(c);
    })
    .await
}

impl TestServer {
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(MASTER);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn generate(&self, body: Value) -> (String, Value) {
        let (status, v) = self
            .admin(reqwest::Method::POST, "/key/generate", Some(body))
            .await;
        assert_eq!(status, 200, "{v}");
        (v["key"].as_str().unwrap().to_owned(), v)
    }

    pub async fn chat_as(&self, key: &str, model: &str, text: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": text}]}))
            .send()
            .await
            .unwrap()
    }

    pub async fn key_info(&self, key: &str) -> Value {
        let (status, v) = self
            .admin(reqwest::Method::GET, &format!("/key/info?key={key}"), None)
            .await;
        assert_eq!(status, 200, "{v}");
        v["info"].clone()
    }

    /// Waits until the key's stored spend records number `n`.
    pub async fn spend_rows(&self, key: &str, n: usize) -> Vec<claude_pool::store::SpendRecord> {
        let id = claude_pool::keys::hash(key);
        let store = self.app.store.clone();
        poll_async(
            &format!("{n} spend records"),
            Duration::from_secs(10),
            || {
                let (store, id) = (store.clone(), id.clone());
                async move { store.spend_records(&id, 1000).await.unwrap().len() >= n }
            },
        )
        .await;
        self.app.store.spend_records(&id, 1000).await.unwrap()
    }
}

pub fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}
