//! The admin console over real TLS: the certificate made on first start, the page headers,
//! sign-in (cookie attributes, wrong password, the limit per address, sign-in tokens), CSRF on
//! every change, the token exchange, revocation, the pool's JSON, master-key scripts, the
//! console switched off, and the plain HTTP port refusing all of it.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::console::*;
use common::keys::{MASTER, error_code};
use common::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_over_tls_with_a_generated_certificate_and_strict_headers() {
    let c = ConsoleServer::start(PASSWORD).await;
    let mode = std::fs::metadata(&c.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key is readable by its owner only");
    let resp = c.client.get(c.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        h["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h.contains_key("x-request-id"),
        "the console's responses carry request ids"
    );
    let html = resp.text().await.unwrap();
    assert!(meta_csrf(&html).is_some_and(|t| !t.is_empty()), "{html}");
    assert!(html.contains(r#"action="/admin/login""#) && !html.contains("<script>"));
    // The script and style sheet come from the console itself, with their types.
    for (path, kind) in [
        ("/assets/console.js", "text/javascript"),
        ("/assets/console.css", "text/css"),
    ] {
        let r = c.client.get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }
    // Signed out, /admin sends the browser to the sign-in form.
    let r = c.client.get(c.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_a_strict_host_cookie_and_a_wrong_password_sets_none() {
    let c = ConsoleServer::start(PASSWORD).await;
    let wrong = c
        .client
        .post(c.url("/admin/login"))
        .form(&[("password", "not it")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_password");

    let ok = c
        .client
        .post(c.url("/admin/login"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-claude-pool-session="),
        "{cookie}"
    );
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let session = cookie.split(';').next().unwrap();
    let page = c
        .client
        .get(c.url("/admin"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(r#"id="workers""#));

    // Signed out, the cookie is worth nothing.
    let csrf = c.page_token("/", Some(session)).await;
    let out = c
        .client
        .post(c.url("/admin/logout"))
        .header("cookie", session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = c
        .client
        .get(c.url("/admin/api/pool"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_gets_five_sign_in_attempts_a_minute_then_429_with_retry_after() {
    let c = ConsoleServer::start(PASSWORD).await;
    for _ in 0..5 {
        let r = c
            .client
            .post(c.url("/admin/login"))
            .form(&[("password", "guess")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    // Even the right password waits now.
    let r = c
        .client
        .post(c.url("/admin/login"))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(r.headers().get("set-cookie").is_none());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_need_the_sessions_csrf_token_and_a_page_sign_in_needs_the_pages_token() {
    let c = ConsoleServer::start(PASSWORD).await;
    // A browser on another site cannot sign this browser in.
    let forged = c
        .client
        .post(c.url("/admin/login"))
        .header("origin", "https://evil.example")
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.headers().get("set-cookie").is_none());
    let bad_token = c
        .client
        .post(c.url("/admin/login"))
        .form(&[("password", PASSWORD), ("csrf_token", "1.00")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_token.status(), 403);

    let (session, csrf) = c.sign_in().await;
    assert_eq!(
        c.page_token("/admin", Some(&session)).await,
        csrf,
        "pages carry the session's token"
    );
    let exchange = |token: Option<&str>| {
        let mut req = c
            .client
            .post(c.url("/auth/exchange"))
            .header("cookie", &session)
            .json(&json!({"oauth_token": OAUTH_TOKEN}));
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    for token in [None, Some("0".repeat(64).as_str()), Some("")] {
        let r = exchange(token).await.unwrap();
        assert_eq!(r.status(), 403, "token {token:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), "csrf_token_invalid");
    }
    assert_eq!(exchange(Some(&csrf)).await.unwrap().status(), 200);
    // Reads need the cookie only; without it, 401.
    let read = c
        .client
        .get(c.url("/admin/api/keys"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let anon = c.client.get(c.url("/admin/api/keys")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let body: Value = anon.json().await.unwrap();
    assert_eq!(error_code(&body), "sign_in_required");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchanged_key_runs_on_workers_with_its_own_credential_and_revocation_is_immediate() {
    let c = ConsoleServer::start(PASSWORD).await;
    let (session, csrf) = c.sign_in().await;
    let post = |body: Value| {
        c.client
            .post(c.url("/auth/exchange"))
            .header("cookie", &session)
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let refused = post(json!({"oauth_token": "sk-ant-api03-not-oauth"}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sk-ant-oat01-"),
        "{body}"
    );
    assert_eq!(body["error"]["param"], "oauth_token");

    let made = post(json!({"oauth_token": OAUTH_TOKEN, "key_alias": "team-a",
        "models": ["sonnet"], "duration": "30d", "max_budget": 12.5, "rpm_limit": 60}))
    .await
    .unwrap();
    assert_eq!(made.status(), 200);
    let made: Value = made.json().await.unwrap();
    let key = made["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-"));
    assert_eq!(made["key_alias"], "team-a");
    assert_eq!(made["models"], json!(["sonnet"]));
    assert_eq!(made["max_budget"], 12.5);
    assert_eq!(made["rpm_limit"], 60);
    assert_eq!(made["has_claude_credential"], true);
    assert!(made["expires"].is_string());
    assert!(!made.to_string().contains(OAUTH_TOKEN));

    // The key works, on a worker started with its credential.
    let resp = c
        .api
        .client
        .post(format!("{}/v1/chat/completions", c.api.url))
        .bearer_auth(&key)
        .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": "[[credential]]"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reply: Value = resp.json().await.unwrap();
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap();
    let last4 = &OAUTH_TOKEN[OAUTH_TOKEN.len() - 4..];
    assert!(
        text.contains(&format!("credential={last4}")),
        "run with the exchanged token: {text}"
    );
    let get = |path: &str| c.client.get(c.url(path)).header("cookie", &session).send();
    let keys: Value = get("/admin/api/keys?alias=TEAM")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = &keys["keys"].as_array().unwrap()[0];
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1, "{keys}");
    let fingerprint = listed["credential_fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fingerprint.starts_with("sha256:"));
    assert!(listed["last_used"].is_string(), "{listed}");
    assert!(!keys.to_string().contains(&key) && !keys.to_string().contains(OAUTH_TOKEN));
    let pool: Value = get("/admin/api/pool").await.unwrap().json().await.unwrap();
    let workers = pool["workers"].as_array().unwrap();
    assert!(
        workers
            .iter()
            .any(|w| w["credential"] == fingerprint.as_str() && w["turns"] == 1),
        "a worker with the key's credential ran its turn: {pool}"
    );
    assert!(
        workers
            .iter()
            .all(|w| w["rss_bytes"].as_u64().is_some_and(|b| b > 0))
    );
    assert!(pool["ttft"]["p50_ms"].as_f64().is_some(), "{pool}");
    assert!(
        pool["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "warm")
    );
    assert!(!pool.to_string().contains(OAUTH_TOKEN));

    // Revoked by its value in the path: 204, and its very next request is refused.
    let gone = c
        .client
        .delete(c.url(&format!("/admin/keys/{key}")))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let after = c
        .api
        .client
        .get(format!("{}/v1/models", c.api.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    let unknown = c
        .client
        .delete(c.url("/admin/keys/sk-never-issued-key"))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body = unknown.text().await.unwrap();
    assert!(
        !body.contains("sk-never-issued-key"),
        "the secret is not echoed: {body}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_use_the_master_key_and_other_keys_are_refused() {
    let c = ConsoleServer::start(PASSWORD).await;
    let r = c
        .client
        .post(c.url("/auth/exchange"))
        .bearer_auth(MASTER)
        .json(&json!({"oauth_token": OAUTH_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let made: Value = r.json().await.unwrap();
    let token = made["token"].as_str().unwrap();
    for bearer in [KEY, made["key"].as_str().unwrap()] {
        let r = c
            .client
            .get(c.url("/admin/api/pool"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "an API key is not an admin");
    }
    let r = c
        .client
        .delete(c.url(&format!("/admin/keys/{token}")))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "revoked by its token");
    let bad = c
        .client
        .post(c.url("/auth/exchange"))
        .bearer_auth(MASTER)
        .json(&json!({"oauth_token": OAUTH_TOKEN, "surprise": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_http_port_refuses_every_console_path() {
    let c = ConsoleServer::start(PASSWORD).await;
    let http = &c.api.client;
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/admin"),
        ("POST", "/admin/login"),
        ("POST", "/admin/logout"),
        ("POST", "/auth/exchange"),
        ("DELETE", "/admin/keys/sk-some-key"),
        ("GET", "/admin/api/pool"),
        ("GET", "/admin/api/keys"),
    ] {
        let r = http
            .request(method.parse().unwrap(), format!("{}{path}", c.api.url))
            .bearer_auth(MASTER)
            .form(&[("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        assert!(r.headers().get("set-cookie").is_none());
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), "admin_requires_https", "{method} {path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("https://")
        );
    }
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_password_turns_the_console_off_on_every_path() {
    let c = ConsoleServer::start("").await;
    for path in ["/", "/admin", "/admin/login", "/auth/exchange", "/anything"] {
        let r = c
            .client
            .post(c.url(path))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert!(r.headers().get("content-security-policy").is_some());
        let page = r.text().await.unwrap();
        assert!(
            page.contains("ADMIN_PASSWORD") && page.contains("console is off"),
            "{page}"
        );
    }
    c.stop().await;
}
