//! Helpers of the admin console suites: a test server with its HTTPS console (a certificate
//! generated into a temporary folder), a client that trusts that certificate, signing in, and
//! reading the page's CSRF token.

use std::path::PathBuf;
use std::time::Duration;

use claude_pool::console::Listening;
use serde_json::Value;

use super::TestServer;
use super::keys::MASTER;

pub const PASSWORD: &str = "correct horse battery staple";
pub const OAUTH_TOKEN: &str = "sk-ant-oat01-console-test-token-0123456789";

/// A server with its console on an ephemeral HTTPS port.
pub struct ConsoleServer {
    pub api: TestServer,
    pub https: String,
    pub client: reqwest::Client,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub listening: Option<Listening>,
    pub certs: tempfile::TempDir,
}

/// A client trusting `cert` only, without redirects (their answers are checked).
pub fn client_trusting(cert: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(cert).expect("certificate written");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM certificate"))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

impl ConsoleServer {
    /// A server whose console has `password` (empty: off).
    pub async fn start(password: &str) -> Self {
        let certs = tempfile::tempdir().unwrap();
        let (cert, key) = (
            certs.path().join("certs/server.crt"),
            certs.path().join("certs/server.key"),
        );
        let mut kept = None;
        let api = TestServer::start(1, 3, |c| {
            c.auth.master_key = MASTER.into();
            c.auth.admin_password = password.into();
            // Named by the API port's refusals; the console itself binds an ephemeral port.
            c.server.https_port = 8443;
            c.server.tls_cert = cert.clone();
            c.server.tls_key = key.clone();
            c.pool.queue_capacity = 32;
            kept = Some(c.clone());
        })
        .await;
        let mut config = kept.expect("config seen");
        config.server.https_port = 0;
        let listening = claude_pool::console::serve(api.app.clone(), &config, 8000)
            .await
            .expect("console starts");
        let https = format!("https://127.0.0.1:{}", listening.addr.port());
        Self {
            client: client_trusting(&cert),
            api,
            https,
            cert,
            key,
            listening: Some(listening),
            certs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.https)
    }

    /// The `<meta name="csrf-token">` of a page.
    pub async fn page_token(&self, path: &str, session: Option<&str>) -> String {
        let mut req = self.client.get(self.url(path));
        if let Some(s) = session {
            req = req.header("cookie", s);
        }
        let html = req.send().await.unwrap().text().await.unwrap();
        meta_csrf(&html).expect("the page carries a csrf-token")
    }

    /// Signs in with the page's token; returns the `name=value` cookie and the CSRF token.
    pub async fn sign_in(&self) -> (String, String) {
        let token = self.page_token("/", None).await;
        let resp = self
            .client
            .post(self.url("/admin/login"))
            .header("origin", &self.https)
            .header("accept", "application/json")
            .form(&[("password", PASSWORD), ("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "sign-in accepted");
        let cookie = resp
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let body: Value = resp.json().await.unwrap();
        (cookie, body["csrf_token"].as_str().unwrap().to_owned())
    }

    pub async fn stop(mut self) {
        if let Some(l) = self.listening.take() {
            l.stop(Duration::from_secs(1)).await;
        }
        self.api.stop().await;
    }
}

/// The content of `<meta name="csrf-token" content="...">`.
pub fn meta_csrf(html: &str) -> Option<String> {
    let at = html.find(r#"<meta name="csrf-token" content=""#)?;
    let rest = &html[at + r#"<meta name="csrf-token" content=""#.len()..];
    rest.split('"').next().map(str::to_owned)
}
