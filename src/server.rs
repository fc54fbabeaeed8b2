//! Serving: the start-up check of the CLI, the pool, the listener, and graceful shutdown.
//!
//! On SIGTERM or SIGINT the listener stops accepting, the pool drains (queued turns fail,
//! running turns get `server.shutdown_grace` to finish, then their streams end with a final
//! `server_shutting_down` error event and `[DONE]`), every child is stopped and reaped, and
//! the process exits 0.

use std::net::SocketAddr;
use std::sync::Arc;

use claude_pool_actors::{PoolError, PoolHandle, child};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::http::router;
use crate::state::App;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The CLI is missing or broken.
    #[error(
        "the Claude Code CLI is not usable: {0}\n  install it with `npm install -g @anthropic-ai/claude-code`, or set worker.command (CLAUDE_POOL_WORKER__COMMAND) to its path"
    )]
    Cli(#[from] child::ChildError),
    /// The pool did not start.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The store could not be opened or migrated.
    #[error("cannot open the store ({backend}): {source}")]
    Store {
        /// `sqlite` or `postgres`.
        backend: String,
        /// The cause.
        source: crate::store::StoreError,
    },
    /// The admin console could not start (certificate, password, port).
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
    /// The port could not be bound or serving failed.
    #[error("cannot serve on {addr}: {source}")]
    Io {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Workers are started through this executable (`claude-pool launch-worker`): the server
/// spawns it with `posix_spawn`, it sets the parent-death signal and execs the CLI. Setting
/// that signal in the server between fork and exec would force a full `fork` of the server for
/// every worker, whose cost grows with the server's memory (measured: most of the server's CPU
/// in a burst of new conversations went to copying and tearing down its page tables).
fn launched(mut pool: claude_pool_actors::PoolConfig) -> claude_pool_actors::PoolConfig {
    match std::env::current_exe() {
        Ok(exe) => pool.worker.launcher = Some(exe),
        Err(e) => {
            tracing::warn!(error = %e, "cannot find this executable; workers are started by fork")
        }
    }
    pool
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

/// Reads the configuration again (on SIGHUP).
pub type Reload = Box<dyn Fn() -> Result<Config, crate::config::ConfigError> + Send + Sync>;

/// On every SIGHUP: reload the configuration and apply the pool's part live (sizes, queue,
/// timeouts; worker settings for workers started afterwards). A bad file is logged and ignored.
fn watch_reloads(
    pool: PoolHandle,
    reload: Reload,
    sink: Option<claude_pool_actors::TranscriptSink>,
) {
    tokio::spawn(async move {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; live reload disabled");
                return;
            }
        };
        while hup.recv().await.is_some() {
            match reload() {
                Ok(config) => match pool
                    .reconfigure(claude_pool_actors::PoolConfig {
                        transcript_sink: sink.clone(),
                        ..launched(config.pool_config())
                    })
                    .await
                {
                    Ok(()) => tracing::info!(
                        "configuration reloaded (pool settings applied; listener, keys and models need a restart)"
                    ),
                    Err(e) => tracing::error!(error = %e, "reloaded configuration not applied"),
                },
                Err(e) => {
                    tracing::error!(error = %e, "configuration reload failed; keeping the current one")
                }
            }
        }
    });
}

/// Forgets day-old sessions and responses past their time once an hour, so stateless traffic
/// cannot grow the tables forever.
fn prune_sessions_hourly(app: Arc<App>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every.tick().await;
            match app.conversations.sessions.prune().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "forgot sessions unused for a day"),
                Err(e) => tracing::warn!(error = %e, "pruning sessions failed"),
            }
            match app.conversations.responses.prune().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(responses = n, "forgot responses past their time"),
                Err(e) => tracing::warn!(error = %e, "pruning responses failed"),
            }
        }
    });
}

/// Runs the server until `stop` resolves (normally [`shutdown_signal`]); with `reload`, SIGHUP
/// reloads the pool's configuration live.
pub async fn serve(
    config: Config,
    reload: Option<Reload>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let pool_config = launched(config.pool_config());
    let version = child::check_command(&pool_config.worker).await?;
    tracing::info!(%version, command = %pool_config.worker.command.display(), "Claude Code CLI found");
    let backend = config
        .store
        .database_url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let store_error = |source| ServeError::Store {
        backend: backend.clone(),
        source,
    };
    let store = crate::store::open(&config.store)
        .await
        .map_err(store_error)?;
    tracing::info!(backend = store.backend(), "store open, migrations applied");
    let keeper = crate::transcripts::Keeper::for_config(&config.store, &store);
    let sink = keeper.as_ref().map(|k| k.sink());
    let mut pool_config = pool_config;
    pool_config.transcript_sink = sink.clone();
    let pool = PoolHandle::start(pool_config).await?;
    let app = match App::new(&config, pool.clone(), store, keeper).await {
        Ok(app) => Arc::new(app),
        Err(e) => {
            pool.shutdown(std::time::Duration::ZERO).await;
            return Err(store_error(e));
        }
    };
    if app.auth.is_open() {
        tracing::warn!(
            "OPEN MODE: auth.allow_open = true and no API key is configured; anyone who can reach this port can use it"
        );
    }
    if let crate::credentials::ServerCredential::Missing { problem } = &app.credentials.server {
        tracing::warn!(
            %problem,
            "NO CLAUDE CREDENTIAL for workers: turns of keys without their own claude_oauth_token will fail with 502 upstream_auth_failed (not logged in)"
        );
    }
    if !config.worker.allowed_tools.is_empty() {
        tracing::warn!(tools = ?config.worker.allowed_tools, "tools are ENABLED for workers: the model can act on this host");
    }
    if let Some(reload) = reload {
        watch_reloads(app.pool.clone(), reload, sink);
    }
    prune_sessions_hourly(app.clone());
    let addr = format!("{}:{}", config.server.host, config.server.port);
    let io = |source| ServeError::Io {
        addr: addr.clone(),
        source,
    };
    let listener = TcpListener::bind(&addr).await.map_err(io)?;
    let local: SocketAddr = listener.local_addr().map_err(io)?;
    tracing::info!("claude-pool listening on http://{local}");
    let console = if config.server.https_port == 0 {
        tracing::info!("admin console disabled (server.https_port = 0)");
        None
    } else {
        match crate::console::serve(app.clone(), &config, local.port()).await {
            Ok(console) => Some(console),
            Err(e) => {
                app.pool.shutdown(std::time::Duration::ZERO).await;
                return Err(e.into());
            }
        }
    };

    let token = CancellationToken::new();
    let trigger = token.clone();
    let signalled = app.clone();
    let drain_delay = config.server.drain_delay;
    tokio::spawn(async move {
        stop.await;
        // Load balancers see the replica leave (`/readyz` 503) while it still serves.
        signalled
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if !drain_delay.is_zero() {
            tracing::info!(
                ?drain_delay,
                "draining: /readyz answers 503 before the listener closes"
            );
            tokio::time::sleep(drain_delay).await;
        }
        trigger.cancel();
    });
    let pool = app.pool.clone();
    let spend = app.spend.clone();
    let grace = config.server.shutdown_grace;
    let drained = token.clone();
    let drain = tokio::spawn(async move {
        drained.cancelled().await;
        tracing::info!(?grace, "shutting down: draining the pool");
        pool.shutdown(grace).await;
        tracing::info!("pool stopped");
        // Every turn has reported its spend by now; write what is queued.
        spend.close().await;
    });
    let console_stopped = token.clone();
    let console = tokio::spawn(async move {
        console_stopped.cancelled().await;
        if let Some(console) = console {
            console.stop(crate::console::SHUTDOWN_GRACE).await;
        }
    });
    let limits = crate::listener::ConnectionLimits {
        header_read_timeout: config.server.header_read_timeout,
    };
    crate::listener::serve(
        listener,
        router(app),
        limits,
        token.clone().cancelled_owned(),
    )
    .await;
    token.cancel();
    let _ = tokio::join!(drain, console);
    tracing::info!("shutdown complete");
    Ok(())
}
