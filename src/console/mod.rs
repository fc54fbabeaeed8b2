//! The admin console: an HTTPS listener of its own (`server.https_port`) serving server-rendered
//! pages and a small JSON API to sign in, exchange a Claude OAuth token for an API key, manage
//! and revoke keys, and watch the pool live.
//!
//! | module | responsibility |
//! |---|---|
//! | [`tls`] | the certificate: load, generate (rcgen), fingerprint, reload on SIGHUP |
//! | [`password`] | the admin password, plain or argon2 |
//! | [`session`] | server-side sessions, CSRF and sign-in tokens, the sign-in limit per address |
//! | `guard` | who is calling: a signed-in operator (cookie + `X-CSRF-Token`) or the master key |
//! | `routes` | sign-in and out, token exchange, key list and revocation, the pool's JSON |
//! | `dashboard` | the pool, worker by worker, as the dashboard shows it |
//! | `pages` | the HTML pages and the console's own script and style sheet |
//!
//! Every console response carries a strict Content-Security-Policy (scripts only from the
//! console itself, no framing), HSTS, `Referrer-Policy: no-referrer` and `nosniff`. The plain
//! HTTP port never serves any of this: it answers the console's paths with 403
//! `admin_requires_https`.

mod dashboard;
mod guard;
mod pages;
pub mod password;
mod routes;
pub mod session;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};

use crate::state::App;
use password::AdminPassword;
use session::Sessions;

/// What the console's handlers share.
#[derive(Debug, Clone)]
pub struct Console {
    /// The gateway's state (store, keys, pool, metrics).
    pub app: Arc<App>,
    /// The admin password.
    pub password: Arc<AdminPassword>,
    /// Sessions and sign-in limits.
    pub sessions: Arc<Sessions>,
    /// The API's port (shown in usage examples).
    pub api_port: u16,
}

/// The console's routes (the HTTPS listener serves exactly these).
pub fn router(console: Console) -> Router {
    let routes = if console.password.is_set() {
        Router::new()
            .route("/", get(pages::home))
            .route("/admin", get(pages::admin))
            .route("/assets/console.js", get(pages::script))
            .route("/assets/console.css", get(pages::style))
            .route("/admin/login", post(routes::login))
            .route("/admin/logout", post(routes::logout))
            .route("/auth/exchange", post(routes::exchange))
            .route("/admin/keys/{key}", delete(routes::revoke))
            .route("/admin/api/keys", get(routes::keys))
            .route("/admin/api/pool", get(routes::pool))
            .fallback(routes::not_found)
            .with_state(console)
    } else {
        Router::new()
            .route("/assets/console.css", get(pages::style))
            .fallback(pages::disabled)
    };
    routes
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(crate::http::access::layer))
}

/// The headers every console response carries.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    );
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The certificate.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The password setting.
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    /// The port.
    #[error("cannot serve the admin console on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A started console listener.
#[derive(Debug)]
pub struct Listening {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Stops it (open connections get `grace`).
    pub handle: axum_server::Handle<SocketAddr>,
    /// Ends when it has stopped.
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds the HTTPS port and serves the console (the certificate is made first when missing;
/// SIGHUP reloads it). `api_port` is the API's bound port, shown in usage examples.
pub async fn serve(
    app: Arc<App>,
    config: &crate::config::Config,
    api_port: u16,
) -> Result<Listening, ConsoleError> {
    let server = &config.server;
    let names = tls::host_names(&server.host, &server.tls_hosts);
    let (origin, fingerprint) = tls::ensure(&server.tls_cert, &server.tls_key, &names)?;
    match origin {
        tls::CertOrigin::Generated => tracing::warn!(
            cert = %server.tls_cert.display(),
            key = %server.tls_key.display(),
            hosts = ?names,
            sha256 = %fingerprint,
            "generated a self-signed certificate for the admin console (browsers will ask to trust it; compare this fingerprint)"
        ),
        tls::CertOrigin::Loaded => tracing::info!(
            cert = %server.tls_cert.display(),
            sha256 = %fingerprint,
            "admin console certificate loaded"
        ),
    }
    let rustls = tls::load(&server.tls_cert, &server.tls_key).await?;
    tls::reload_on_hangup(
        rustls.clone(),
        server.tls_cert.clone(),
        server.tls_key.clone(),
    );
    let password = AdminPassword::new(&config.auth.admin_password)?;
    if !password.is_set() {
        tracing::warn!(
            "admin console OFF: auth.admin_password (ADMIN_PASSWORD) is empty; the HTTPS port only says how to enable it"
        );
    }
    let console = Console {
        app,
        password: Arc::new(password),
        sessions: Arc::new(Sessions::new(config.auth.admin_session_ttl)),
        api_port,
    };
    let addr = format!("{}:{}", server.host, server.https_port);
    let bind_error = |source| ConsoleError::Bind {
        addr: addr.clone(),
        source,
    };
    let listener = std::net::TcpListener::bind(&addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let handle = axum_server::Handle::new();
    let mut srv = axum_server::from_tcp_rustls(listener, rustls)
        .map_err(bind_error)?
        .handle(handle.clone());
    srv.http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(server.header_read_timeout);
    let service = router(console).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        if let Err(e) = srv.serve(service).await {
            tracing::error!(error = %e, "admin console listener failed");
        }
    });
    tracing::info!("admin console on https://{local}/");
    Ok(Listening {
        addr: local,
        handle,
        task,
    })
}

impl Listening {
    /// Stops accepting and lets open connections finish within `grace`; returns once stopped.
    pub async fn stop(self, grace: Duration) {
        self.handle.graceful_shutdown(Some(grace));
        let _ = self.task.await;
    }
}

/// How long console connections (dashboards polling) get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
