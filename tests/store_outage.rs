//! The database going away under a running server (PostgreSQL stopped): requests that need it
//! get a fast 503 `store_unavailable` with `Retry-After` (not a 500 after a long wait),
//! `/readyz` says so, and everything recovers once the database is back.
//!
//! Runs its own PostgreSQL cluster (`scripts/postgres.sh` on a free port and a throwaway
//! directory) so it can stop it; skipped where PostgreSQL is not installed, except under CI.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// A PostgreSQL cluster of this test's own; stopped and removed on drop.
struct OwnPostgres {
    port: u16,
    dir: PathBuf,
    url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh")
}

impl OwnPostgres {
    fn start(dir: &Path) -> Option<Self> {
        let port = free_port();
        let mut pg = Self {
            port,
            dir: dir.join("pg"),
            url: String::new(),
        };
        let out = pg.run(None);
        if !out.status.success() {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required under CI: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("SKIP: PostgreSQL is not available");
            return None;
        }
        pg.url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Some(pg)
    }

    fn run(&self, action: Option<&str>) -> std::process::Output {
        let mut cmd = Command::new(script());
        cmd.env("PG_TEST_PORT", self.port.to_string())
            .env("PG_TEST_DIR", &self.dir);
        if let Some(a) = action {
            cmd.arg(a);
        }
        cmd.output().expect("scripts/postgres.sh runs")
    }

    fn stop(&self) {
        assert!(
            self.run(Some("stop")).status.success(),
            "PostgreSQL stopped"
        );
    }

    fn restart(&self) {
        assert!(
            self.run(Some("restart")).status.success(),
            "PostgreSQL restarted"
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.run(Some("stop"));
    }
}

#[tokio::test]
async fn a_stopped_database_gets_fast_503s_and_recovery_follows_its_return() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = OwnPostgres::start(dir.path()) else {
        return;
    };
    let url = pg.url.clone();
    let server = TestServer::start(1, 1, |c| c.store.database_url = url).await;
    let chat = || async {
        let t0 = Instant::now();
        let r = server
            .chat(json!({"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        (r, t0.elapsed())
    };
    let ready = || async {
        server
            .client
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap()
    };
    let (r, _) = chat().await;
    assert_eq!(r.status(), 200);
    assert_eq!(ready().await.status(), 200);

    pg.stop();
    // The first request finds out (bounded by the connection pool's acquire timeout)...
    let (r, first) = chat().await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert!(
        !body.to_string().contains("postgres"),
        "no internal detail: {body}"
    );
    // ...the next ones are told at once, and readiness says why.
    let mut later = Vec::new();
    for _ in 0..5 {
        let (r, took) = chat().await;
        assert_eq!(r.status(), 503);
        later.push(took);
    }
    let r = ready().await;
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "store_unavailable");
    eprintln!("database down: first request answered in {first:?}, the next in {later:?}");
    // Bounds, not timings: within the pool's 3 s acquire timeout, never the old 10 s.
    assert!(first < Duration::from_secs(5), "{first:?}");
    assert!(
        later.iter().all(|t| *t < Duration::from_secs(5)),
        "{later:?}"
    );

    pg.restart();
    poll_async(
        "requests succeed again",
        Duration::from_secs(30),
        || async { chat().await.0.status() == 200 },
    )
    .await;
    assert_eq!(ready().await.status(), 200);
    server.stop().await;
}
