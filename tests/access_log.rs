//! Request ids and the access log, on the server binary: the client's `x-request-id` comes back
//! on the response and lands in the spend record; without one a UUID is generated; every
//! response (404, errors, streams, admin routes) carries one; each request writes one JSON
//! access line with its fields (499 when the client goes first), rejections at INFO, and no
//! key anywhere in the log.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{KEY, fake_cli, free_port};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-access-log";

struct Server {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The JSON lines logged so far.
    fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The access line of a request id (waits for it: a body ends after its response head).
    async fn access_line(&self, id: &str) -> Value {
        for _ in 0..200 {
            let found = self.lines().into_iter().find(|l| {
                l["target"] == "claude_pool::access" && l["request_id"].as_str() == Some(id)
            });
            if let Some(l) = found {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no access line for {id}");
    }
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("server.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_claude-pool"))
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env("API_KEYS", KEY)
        .env("MASTER_KEY", MASTER)
        .env("HTTPS_PORT", "0")
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info")
        .env("CLAUDE_POOL_WORKER__COMMAND", fake_cli())
        .env("CLAUDE_POOL_WORKER__HOME", dir.path().join("home"))
        .env("CLAUDE_POOL_WORKER__WORK_ROOT", dir.path().join("work"))
        .env("CLAUDE_POOL_POOL__MIN_WORKERS", "1")
        .env("CLAUDE_POOL_POOL__MAX_WORKERS", "2")
        .env("CLAUDE_POOL_SERVER__SHUTDOWN_GRACE", "1s")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("claude-pool starts");
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        log,
        _dir: dir,
    };
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{}/readyz", server.url)).send().await {
            if r.status() == 200 {
                return server;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready");
}

fn request_id(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-request-id")
        .expect("x-request-id on the response")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_go_round_and_every_request_writes_one_access_line() {
    let s = start().await;
    let c = reqwest::Client::new();
    let chat =
        json!({"model": "sonnet", "messages": [{"role": "user", "content": "[[cost:0.25]] hi"}]});

    // The client's id: on the response, in the access line, in the spend record.
    let r = c
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(KEY)
        .header("x-request-id", "client-req-1")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(request_id(&r), "client-req-1");
    let body: Value = r.json().await.unwrap();
    let line = s.access_line("client-req-1").await;
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/v1/chat/completions");
    assert_eq!(line["status"], 200);
    assert_eq!(line["model"], "sonnet");
    assert!(line["key"].as_str().unwrap().starts_with("key-"), "{line}");
    assert!(line["session"].is_string(), "{line}");
    for f in [
        "queue_wait_ms",
        "ttft_ms",
        "duration_ms",
        "tokens_in",
        "tokens_out",
    ] {
        assert!(line[f].is_u64(), "{f} in {line}");
    }
    assert_eq!(line["cost_usd"], 0.25, "{line}");
    assert!(
        line.get("code").is_none(),
        "no error code on a success: {line}"
    );
    let mut logged = Value::Null;
    for _ in 0..200 {
        let r = c
            .get(format!("{}/spend/logs", s.url))
            .bearer_auth(MASTER)
            .header("x-request-id", "admin-req-1")
            .send()
            .await
            .unwrap();
        assert_eq!(request_id(&r), "admin-req-1");
        logged = r.json().await.unwrap();
        if logged.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(logged[0]["x_request_id"], "client-req-1", "{logged}");
    assert_eq!(logged[0]["request_id"], body["id"], "the response id stays");
    let admin = s.access_line("admin-req-1").await;
    assert_eq!(admin["route"], "/spend/logs");
    assert_eq!(admin["key"], "master");

    // No id (or an unusable one): a generated UUID, also on 404s and streams.
    let r = c
        .get(format!("{}/no/such/route", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let generated = request_id(&r);
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let line = s.access_line(&generated).await;
    assert_eq!(line["route"], "unmatched");
    assert_eq!(line["code"], "not_found", "{line}");
    let r = c
        .get(format!("{}/healthz", s.url))
        .header("x-request-id", "bad id; with spaces")
        .send()
        .await
        .unwrap();
    assert!(uuid::Uuid::parse_str(&request_id(&r)).is_ok());
    let mut streamed = chat.clone();
    streamed["stream"] = json!(true);
    let r = c
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(KEY)
        .header("x-request-id", "stream-req-1")
        .json(&streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(request_id(&r), "stream-req-1");
    let text = r.text().await.unwrap();
    assert!(text.contains("[DONE]"));
    let line = s.access_line("stream-req-1").await;
    assert_eq!(line["status"], 200);
    assert!(
        line["ttft_ms"].is_u64() && line["tokens_out"].is_u64(),
        "{line}"
    );

    // A client that goes before its answer: 499, with what the turn had noted.
    let gone = c
        .post(format!("{}/v1/chat/completions", s.url))
        .bearer_auth(KEY)
        .header("x-request-id", "gone-1")
        .timeout(Duration::from_millis(300))
        .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": "[[slow:400]] a slow answer"}]}))
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up");
    let line = s.access_line("gone-1").await;
    assert_eq!(line["status"], 499, "{line}");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["model"], "sonnet", "{line}");

    // A bad key: 401 at INFO with its code.
    let r = c
        .get(format!("{}/v1/models", s.url))
        .bearer_auth("sk-not-a-key-at-all")
        .header("x-request-id", "unauth-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(request_id(&r), "unauth-1");
    let line = s.access_line("unauth-1").await;
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["status"], 401);
    assert!(line["code"].is_string(), "{line}");
    assert!(line.get("key").is_none(), "{line}");

    // A key over its rate: 429 at INFO.
    let made: Value = c
        .post(format!("{}/key/generate", s.url))
        .bearer_auth(MASTER)
        .json(&json!({"rpm_limit": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let limited = made["key"].as_str().unwrap().to_owned();
    let mut last = None;
    for i in 0..3 {
        let id = format!("limited-{i}");
        let r = c
            .get(format!("{}/v1/models", s.url))
            .bearer_auth(&limited)
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            last = Some(id);
            break;
        }
    }
    let id = last.expect("a 429 within three requests");
    let line = s.access_line(&id).await;
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["status"], 429);
    assert_eq!(line["code"], "rate_limit_exceeded", "{line}");

    // Nothing secret in the whole log.
    let log = std::fs::read_to_string(&s.log).unwrap();
    for secret in [KEY, MASTER, limited.as_str(), "sk-not-a-key-at-all"] {
        assert!(!log.contains(secret), "{secret} logged");
    }
    // Libraries' INFO chatter is held back.
    assert!(
        !s.lines().iter().any(
            |l| l["target"].as_str().is_some_and(|t| t.starts_with("rmcp")) && l["level"] == "INFO"
        ),
        "rmcp INFO lines logged"
    );
}
