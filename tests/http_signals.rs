//! The real binary under signals: SIGTERM mid-stream ends the stream with a final event and
//! exits 0 with no child left; SIGKILL of the server leaves no worker behind either.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_server(workers: usize) -> Server {
    start_server_with(workers, &[]).await
}

async fn start_server_with(workers: usize, env: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_claude-pool"))
        .envs(env.iter().copied())
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(dir.path())
        .env("API_KEYS", KEY)
        .env("HTTPS_PORT", "0")
        .env("CLAUDE_POOL_WORKER__COMMAND", fake_cli())
        .env("CLAUDE_POOL_WORKER__HOME", dir.path().join("home"))
        .env("CLAUDE_POOL_WORKER__WORK_ROOT", dir.path().join("work"))
        .env("CLAUDE_POOL_POOL__MIN_WORKERS", workers.to_string())
        .env("CLAUDE_POOL_POOL__MAX_WORKERS", workers.to_string())
        .env("CLAUDE_POOL_SERVER__SHUTDOWN_GRACE", "1s")
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("claude-pool starts");
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{url}/readyz")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server {
        child,
        url,
        _dir: dir,
    }
}

#[tokio::test]
async fn sigterm_mid_stream_sends_a_final_event_exits_zero_and_leaves_no_child() {
    let mut server = start_server(2).await;
    let server_pid = server.child.id();
    let workers = children_of(server_pid);
    assert_eq!(workers.len(), 2, "two warm workers");
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(KEY)
        .json(&json!({"model": "sonnet", "stream": true,
            "messages": [{"role": "user", "content": "[[slow:100]] [[long]]"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut events = eventsource_stream::Eventsource::eventsource(resp.bytes_stream());
    let first = events.next().await.unwrap().unwrap();
    assert!(first.data.contains("chat.completion.chunk"));
    kill(Pid::from_raw(server_pid as i32), Signal::SIGTERM).unwrap();
    let mut rest = Vec::new();
    while let Some(ev) = events.next().await {
        let ev = ev.expect("the stream ends cleanly, not cut");
        let done = ev.data == "[DONE]";
        rest.push(ev.data);
        if done {
            break;
        }
    }
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"), "{rest:?}");
    let last: Value = serde_json::from_str(&rest[rest.len() - 2]).unwrap();
    assert_eq!(last["error"]["code"], "server_shutting_down", "{last}");
    let status = tokio::task::spawn_blocking(move || server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean exit");
    poll("no worker left", Duration::from_secs(30), || {
        workers.iter().all(|p| !alive(*p))
    })
    .await;
}

#[tokio::test]
async fn sigkill_of_the_server_leaves_no_worker_behind() {
    let mut server = start_server(2).await;
    let server_pid = server.child.id();
    let workers = children_of(server_pid);
    assert_eq!(workers.len(), 2);
    server.child.kill().unwrap(); // SIGKILL: no cleanup code of ours runs
    server.child.wait().unwrap();
    poll(
        "workers gone after the server was killed",
        Duration::from_secs(30),
        || workers.iter().all(|p| !alive(*p)),
    )
    .await;
}

#[tokio::test]
async fn sighup_reloads_the_pool_configuration_live() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("claude-pool.toml");
    let (home, work) = (dir.path().join("home"), dir.path().join("work"));
    let write = |min: usize, max: usize| {
        std::fs::write(
            &config,
            format!(
                "[server]\nhost = \"127.0.0.1\"\nport = {port}\nlog_level = \"warn\"\n\
                 [pool]\nmin_workers = {min}\nmax_workers = {max}\n\
                 [worker]\ncommand = \"{}\"\nhome = \"{}\"\nwork_root = \"{}\"\n\
                 [auth]\napi_keys = [\"{KEY}\"]\n",
                fake_cli().display(),
                home.display(),
                work.display()
            ),
        )
        .unwrap();
    };
    write(1, 1);
    let child = Command::new(env!("CARGO_BIN_EXE_claude-pool"))
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed on drop if an assertion fails, so no server (and no worker) outlives the test.
    let mut server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let pid = server.child.id() as i32;
    let url = format!("{}/v1/health", server.url);
    let client = reqwest::Client::new();
    let idle = |v: &Value| v["pool"]["workers_idle"].as_u64().unwrap_or(0);
    let mut health = Value::Null;
    for _ in 0..1500 {
        if let Ok(r) = client.get(&url).send().await {
            health = r.json().await.unwrap_or(Value::Null);
            if idle(&health) == 1 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(idle(&health), 1, "{health}");
    write(3, 4);
    kill(Pid::from_raw(pid), Signal::SIGHUP).unwrap();
    for _ in 0..1500 {
        health = client.get(&url).send().await.unwrap().json().await.unwrap();
        if idle(&health) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(idle(&health), 3, "grown live: {health}");
    assert_eq!(health["pool"]["max_workers"], 4);
    // A broken file is refused and the server keeps running.
    std::fs::write(&config, "[pool]\nmax_workers = \"many\"\n").unwrap();
    kill(Pid::from_raw(pid), Signal::SIGHUP).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let still: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(still["pool"]["max_workers"], 4);
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || server.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn on_sigterm_readyz_answers_draining_while_the_server_still_serves_then_it_exits() {
    let mut server = start_server_with(1, &[("CLAUDE_POOL_SERVER__DRAIN_DELAY", "3s")]).await;
    kill(Pid::from_raw(server.child.id() as i32), Signal::SIGTERM).unwrap();
    let client = reqwest::Client::new();
    let url = server.url.clone();
    poll_async("/readyz says draining", Duration::from_secs(30), || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            match client.get(format!("{url}/readyz")).send().await {
                Ok(r) if r.status() == 503 => {
                    r.json::<Value>().await.unwrap()["status"] == "draining"
                }
                _ => false,
            }
        }
    })
    .await;
    // Still serving meanwhile.
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": "late"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}

/// `claude-pool launch-worker` (how the server starts each CLI): it runs the command only while
/// the process that started it is the server it names, so a worker never outlives a server
/// that died before the parent-death signal was armed.
#[test]
fn the_worker_launcher_runs_the_command_only_under_its_server() {
    let run = |parent: u32| {
        Command::new(env!("CARGO_BIN_EXE_claude-pool"))
            .args([
                "launch-worker",
                &parent.to_string(),
                "--",
                "/bin/echo",
                "started",
            ])
            .output()
            .unwrap()
    };
    let ours = run(std::process::id());
    assert!(ours.status.success());
    assert_eq!(String::from_utf8_lossy(&ours.stdout), "started\n");
    let orphan = run(1);
    assert_eq!(orphan.status.code(), Some(126));
    assert!(orphan.stdout.is_empty(), "the command did not run");
    let missing = Command::new(env!("CARGO_BIN_EXE_claude-pool"))
        .args([
            "launch-worker",
            &std::process::id().to_string(),
            "--",
            "/no/such/cli",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/cli"));
}
