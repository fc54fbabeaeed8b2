//! The admin console in the real binary: the certificate generated on first start with its
//! fingerprint logged, `gen-certs` for more host names, SIGHUP reloading the certificate, the
//! password settings checked at start (`changeme`, a broken argon2 hash; `hash-password`), and
//! no secret (OAuth token, admin password, API keys, master key) in any log line, page or
//! response after a whole session of console use.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::console::{OAUTH_TOKEN, PASSWORD, client_trusting, meta_csrf};
use common::keys::MASTER;
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

struct Server {
    child: Child,
    api: String,
    https: String,
    https_port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-pool"));
    cmd.current_dir(dir)
        .env_remove("ADMIN_PASSWORD")
        .env_remove("MASTER_KEY")
        .env("API_KEYS", KEY)
        .env("MASTER_KEY", MASTER)
        .env("ADMIN_PASSWORD", PASSWORD)
        .env("CLAUDE_POOL_WORKER__COMMAND", fake_cli())
        .env("CLAUDE_POOL_WORKER__HOME", dir.join("home"))
        .env("CLAUDE_POOL_WORKER__WORK_ROOT", dir.join("work"))
        .env("CLAUDE_POOL_SERVER__SHUTDOWN_GRACE", "2s")
        .stdin(Stdio::null());
    cmd
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (port, https_port) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let child = binary(dir.path())
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
        .env("HTTPS_PORT", https_port.to_string())
        .env("LOG_LEVEL", "debug")
        .env("CLAUDE_POOL_POOL__MIN_WORKERS", "1")
        .env("CLAUDE_POOL_POOL__MAX_WORKERS", "2")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("claude-pool starts");
    let api = format!("http://127.0.0.1:{port}");
    let cert = dir.path().join("certs/server.crt");
    poll_async(
        "server ready with its certificate",
        Duration::from_secs(30),
        || {
            let (api, cert) = (api.clone(), cert.clone());
            async move {
                cert.exists()
                    && reqwest::get(format!("{api}/readyz"))
                        .await
                        .is_ok_and(|r| r.status() == 200)
            }
        },
    )
    .await;
    Server {
        child,
        api,
        https: format!("https://127.0.0.1:{https_port}"),
        https_port,
        dir,
    }
}

fn log_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_of_console_use_leaves_no_secret_in_logs_pages_or_responses() {
    let mut s = start().await;
    let certs = s.dir.path().join("certs");
    let fingerprint =
        claude_pool::console::tls::file_fingerprint(&certs.join("server.crt")).unwrap();
    let c = client_trusting(&certs.join("server.crt"));
    let mut seen = String::new();

    let page = c
        .get(format!("{}/", s.https))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = meta_csrf(&page).unwrap();
    seen += &page;
    let login = c
        .post(format!("{}/admin/login", s.https))
        .header("origin", &s.https)
        .form(&[("password", PASSWORD), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let session = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in ["/", "/admin"] {
        seen += &c
            .get(format!("{}{path}", s.https))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    let made = c
        .post(format!("{}/auth/exchange", s.https))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .json(&json!({"oauth_token": OAUTH_TOKEN, "key_alias": "logs"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key = serde_json::from_str::<Value>(&made).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    seen += &made.replace(&key, "");
    let chat = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", s.api))
        .bearer_auth(&key)
        .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    seen += &chat.text().await.unwrap();
    for path in ["/admin/api/keys", "/admin/api/pool"] {
        seen += &c
            .get(format!("{}{path}", s.https))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    let revoked = c
        .delete(format!("{}/admin/keys/{key}", s.https))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 204);
    let wrong = c
        .post(format!("{}/admin/login", s.https))
        .form(&[("password", format!("{PASSWORD}-typo"))])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    seen += &wrong.text().await.unwrap();

    kill(Pid::from_raw(s.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = s.child.wait().unwrap();
    assert!(status.success(), "exits 0 on SIGTERM: {status}");
    let logs = log_text(s.dir.path());
    assert!(
        logs.contains(&fingerprint),
        "the generated certificate's fingerprint is logged"
    );
    assert!(logs.contains("key made by token exchange") && logs.contains("key revoked"));
    for secret in [OAUTH_TOKEN, PASSWORD, key.as_str(), MASTER, KEY] {
        assert!(!logs.contains(secret), "a secret is in the logs:\n{logs}");
        assert!(!seen.contains(secret), "a secret is in a page or response");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_that_gen_certs_wrote_for_another_host() {
    let s = start().await;
    let certs = s.dir.path().join("certs");
    let old = client_trusting(&certs.join("server.crt"));
    assert_eq!(
        old.get(format!("{}/", s.https))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let refused = binary(s.dir.path())
        .args(["gen-certs", "--host", "pool.test"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "existing files are not replaced without --force"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let made = binary(s.dir.path())
        .args(["gen-certs", "--force", "--host", "pool.test"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let out = String::from_utf8_lossy(&made.stdout).to_string();
    let fingerprint =
        claude_pool::console::tls::file_fingerprint(&certs.join("server.crt")).unwrap();
    assert!(
        out.contains(&fingerprint) && out.contains("pool.test"),
        "{out}"
    );

    kill(Pid::from_raw(s.child.id() as i32), Signal::SIGHUP).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", s.https_port).parse().unwrap();
    let pem = std::fs::read(certs.join("server.crt")).unwrap();
    let new = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .resolve("pool.test", addr)
        .build()
        .unwrap();
    let url = format!("https://pool.test:{}/", s.https_port);
    poll_async(
        "the new certificate served",
        Duration::from_secs(30),
        || {
            let (new, url) = (new.clone(), url.clone());
            async move { new.get(url).send().await.is_ok_and(|r| r.status() == 200) }
        },
    )
    .await;
    assert!(log_text(s.dir.path()).contains("certificate reloaded"));
}

#[test]
fn password_settings_are_checked_at_start_and_hash_password_makes_a_usable_hash() {
    let dir = tempfile::tempdir().unwrap();
    let check = |password: &str| {
        binary(dir.path())
            .arg("check-config")
            .env("ADMIN_PASSWORD", password)
            .output()
            .unwrap()
    };
    for bad in ["changeme", "$argon2id$v=19$broken"] {
        let out = check(bad);
        assert_eq!(out.status.code(), Some(64), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("auth.admin_password"), "{err}");
        if bad != "changeme" {
            assert!(!err.contains(bad), "the password is not echoed: {err}");
        }
    }
    let mut hashing = binary(dir.path())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    hashing
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long passphrase\n")
        .unwrap();
    let out = hashing.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(check(phc.trim()).status.success());
}
