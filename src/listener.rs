//! The connection loop of the API port: accepts TCP connections and serves each with hyper
//! (HTTP/1.1 and HTTP/2), with the protections `axum::serve` does not offer:
//!
//! * **header-read timeout** (`server.header_read_timeout`): a request's headers must arrive
//!   within it, counted from the connection's start or from the end of its previous response,
//!   so a client trickling header lines (or holding an idle keep-alive connection) cannot keep
//!   a connection and its descriptor forever;
//! * **graceful shutdown**: when `stop` resolves the listener closes, idle connections are
//!   closed, and requests in flight (SSE streams included) run to their end.
//!
//! Every connection gets `TCP_NODELAY`: token deltas are small writes that Nagle's algorithm and
//! delayed ACKs would hold back by ~40 ms.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Timeouts of client connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time to receive a request's headers (also the longest idle keep-alive wait).
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` resolves, then waits for requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // An HTTP/2 client that stops answering pings is gone.
        .keep_alive_interval(Some(limits.header_read_timeout))
        .keep_alive_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors and the like: back off a little instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            // hyper's timer starts with the first request byte (before that the protocol is
            // being detected): a connection that sends nothing gets the same limit here.
            let mut first = [0u8; 1];
            match tokio::time::timeout(timeout, tcp.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
