//! Shared helpers for the HTTP tests: a server on 127.0.0.1:0 backed by the fake CLI, SSE
//! reading, polling, and /proc inspection.
#![allow(dead_code, unreachable_pub)]

pub mod console;
pub mod keys;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use claude_pool::config::Config;
use claude_pool::http::router;
use claude_pool::state::App;
use claude_pool_actors::PoolHandle;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;

pub const KEY: &str = "sk-test-key-1";
pub const OTHER_KEY: &str = "sk-test-key-2";

/// The fake CLI binary (built by `cargo test --workspace` with the actors crate).
pub fn fake_cli() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let p = dir.join("fake-claude");
    assert!(
        p.exists(),
        "{} missing: run `cargo build -p claude-pool-actors --bin fake-claude` (cargo test --workspace does)",
        p.display()
    );
    p
}

/// A loopback port free at the moment of asking (for servers started as separate processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A config for the fake CLI rooted in `dir`.
pub fn test_config(dir: &Path, min: usize, max: usize) -> Config {
    let mut c = Config::default();
    c.auth.api_keys = vec![KEY.into(), OTHER_KEY.into()];
    c.server.host = "127.0.0.1".into();
    c.server.port = 0;
    c.server.shutdown_grace = Duration::from_secs(5);
    c.pool.min_workers = min;
    c.pool.max_workers = max;
    c.pool.queue_capacity = 16;
    c.pool.queue_timeout = Duration::from_secs(10);
    c.pool.interrupt_timeout = Duration::from_secs(1);
    c.pool.stop_grace = Duration::from_secs(2);
    c.pool.restart_backoff_min = Duration::from_millis(5);
    c.pool.restart_backoff_max = Duration::from_millis(50);
    c.worker.command = fake_cli();
    c.worker.home = dir.join("home");
    c.worker.work_root = dir.join("work");
    c.models = claude_pool::config::default_models();
    c.limits.rate_limit_requests = 0;
    c.limits.max_cost_per_key = 0.0;
    c
}

/// The store backends the store and API suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database of `backend` for one test: an SQLite file in `dir`, or a new database on
/// the PostgreSQL server named by `TEST_POSTGRES_URL` (`scripts/postgres.sh` starts one).
/// Without that variable PostgreSQL tests are skipped (`None`), except under CI, where they fail.
pub async fn database_url(backend: Backend, dir: &Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}/claude-pool.db", dir.display())),
        Backend::Postgres => {
            let Ok(base) = std::env::var("TEST_POSTGRES_URL") else {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "TEST_POSTGRES_URL is not set under CI (.ci/run starts PostgreSQL)"
                );
                eprintln!("skipping the PostgreSQL run: TEST_POSTGRES_URL is not set");
                return None;
            };
            use sqlx::Connection;
            let name = format!("cp_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .expect("connect to TEST_POSTGRES_URL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create a test database");
            let (root, _) = base.rsplit_once('/').expect("URL with a database");
            Some(format!("{root}/{name}"))
        }
    }
}

/// A running server.
pub struct TestServer {
    pub url: String,
    pub pool: PoolHandle,
    pub app: Arc<App>,
    pub client: reqwest::Client,
    pub database_url: String,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(min: usize, max: usize, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(Backend::Sqlite, min, max, tweak)
            .await
            .expect("SQLite is always available")
    }

    /// A server whose store is a fresh database of `backend` (`None`: backend unavailable).
    pub async fn start_on(
        backend: Backend,
        min: usize,
        max: usize,
        tweak: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = database_url(backend, dir.path()).await?;
        Some(Self::start_with_database(dir, database_url, min, max, tweak).await)
    }

    /// A server on an existing database (replicas share one), its files in `dir`.
    pub async fn start_with_database(
        dir: tempfile::TempDir,
        database_url: String,
        min: usize,
        max: usize,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = test_config(dir.path(), min, max);
        config.store.database_url = database_url.clone();
        tweak(&mut config);
        config.validate().expect("valid test config");
        let store = claude_pool::store::open(&config.store)
            .await
            .expect("store");
        let keeper = claude_pool::transcripts::Keeper::for_config(&config.store, &store);
        let mut pool_config = config.pool_config();
        pool_config.transcript_sink = keeper.as_ref().map(|k| k.sink());
        let pool = PoolHandle::start(pool_config).await.expect("pool");
        assert!(pool.wait_ready(Duration::from_secs(20)).await, "pool warm");
        let app = Arc::new(
            App::new(&config, pool.clone(), store, keeper)
                .await
                .expect("app"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let r = router(app.clone());
        let limits = claude_pool::listener::ConnectionLimits {
            header_read_timeout: config.server.header_read_timeout,
        };
        tokio::spawn(claude_pool::listener::serve(
            listener,
            r,
            limits,
            std::future::pending(),
        ));
        Self {
            url: format!("http://{addr}"),
            pool,
            app,
            client: reqwest::Client::new(),
            database_url,
            dir,
        }
    }

    /// Another server on this one's database (a replica), with its own HOME, working root and
    /// data folder.
    pub async fn replica(&self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_with_database(
            tempfile::tempdir().unwrap(),
            self.database_url.clone(),
            1,
            2,
            tweak,
        )
        .await
    }

    /// The status of `method path` sent with [`KEY`] and no body.
    pub async fn status(&self, method: reqwest::Method, path: &str) -> u16 {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(KEY)
    }

    /// `GET path` with `key`, decoded as JSON.
    pub async fn get_json(&self, path: &str, key: &str) -> serde_json::Value {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST /api/v1/sessions` with [`KEY`]; returns the new session's id.
    pub async fn create_session(&self) -> String {
        let created: serde_json::Value = self
            .post("/api/v1/sessions")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        created["id"].as_str().expect("a session id").to_owned()
    }

    pub async fn chat(&self, body: serde_json::Value) -> reqwest::Response {
        self.post("/v1/chat/completions")
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.pool.shutdown(Duration::from_secs(5)).await;
        self.app.spend.close().await;
    }
}

/// Reads an SSE response to the end: the `data:` payloads in order.
pub async fn sse_data(resp: reqwest::Response) -> Vec<String> {
    let mut events = resp.bytes_stream().eventsource();
    let mut out = Vec::new();
    while let Some(ev) = events.next().await {
        let ev = ev.expect("well-formed SSE");
        let done = ev.data == "[DONE]";
        out.push(ev.data);
        if done {
            break;
        }
    }
    out
}

/// Concatenated `delta.content` of chunk payloads.
pub fn streamed_text(data: &[String]) -> String {
    data.iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

/// The `[turn=k]` counter of a fake CLI reply.
pub fn turn_counter(reply: &str) -> u32 {
    let start = reply.rfind("[turn=").expect("turn counter") + 6;
    reply[start..].split(']').next().unwrap().parse().unwrap()
}

pub async fn poll(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// (pid, ppid, state) of every process.
pub fn processes() -> Vec<(u32, u32, char)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut f = rest.split_whitespace();
            let state = f.next()?.chars().next()?;
            let ppid = f.next()?.parse().ok()?;
            Some((pid, ppid, state))
        })
        .collect()
}

pub fn children_of(parent: u32) -> Vec<u32> {
    processes()
        .into_iter()
        .filter(|(_, ppid, s)| *ppid == parent && *s != 'Z')
        .map(|(p, ..)| p)
        .collect()
}

pub fn alive(pid: u32) -> bool {
    processes().iter().any(|(p, _, s)| *p == pid && *s != 'Z')
}

/// Polls an async condition every 20 ms until it holds (panics after `timeout`).
pub async fn poll_async<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
