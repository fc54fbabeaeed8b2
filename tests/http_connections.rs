//! Client connections on the API port: a client that trickles its headers, or keeps an idle
//! keep-alive connection, is disconnected after `server.header_read_timeout`; answers that take
//! longer than that (slow streams) are not cut.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_millis(800);

/// True once the server closed `conn` (EOF or reset), polling with short reads.
async fn closed_by_server(conn: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let read = tokio::time::timeout(Duration::from_millis(100), conn.read(&mut buf)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn trickled_headers_and_idle_keep_alive_connections_are_closed() {
    let server = TestServer::start(1, 1, |c| c.server.header_read_timeout = TIMEOUT).await;
    let addr = server.url.trim_start_matches("http://").to_owned();

    // 20 clients send one header line every 300 ms and never finish.
    let mut tricklers = Vec::new();
    for _ in 0..20 {
        let mut c = TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        tricklers.push(c);
    }
    let started = Instant::now();
    let feed = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let line = format!("X-Trickle-{i}: y\r\n");
            let mut open = 0;
            for c in &mut tricklers {
                if c.write_all(line.as_bytes()).await.is_ok() {
                    open += 1;
                }
            }
            if open == 0 || started.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
    };
    feed.await;
    for c in &mut tricklers {
        assert!(
            closed_by_server(c, Duration::from_secs(5)).await,
            "a trickling client was disconnected"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "disconnected near the timeout, not at the feed's end"
    );

    // A connection that sends nothing at all.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    assert!(closed_by_server(&mut silent, Duration::from_secs(5)).await);

    // A keep-alive connection: one answered request, then idle.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "served"
    );
    assert!(closed_by_server(&mut idle, Duration::from_secs(5)).await);
    server.stop().await;
}

#[tokio::test]
async fn a_stream_longer_than_the_header_timeout_is_not_cut() {
    let server = TestServer::start(1, 1, |c| c.server.header_read_timeout = TIMEOUT).await;
    // A delta every 700 ms for ~2 s, well past the timeout.
    let t0 = Instant::now();
    let resp = server
        .chat(json!({"model": "sonnet", "stream": true,
            "messages": [{"role": "user", "content": "[[slow:700]] a b c d e"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    let data = sse_data(resp).await;
    assert!(
        t0.elapsed() > TIMEOUT * 2,
        "the stream outlived the timeout: {:?}, {} events",
        t0.elapsed(),
        data.len()
    );
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(
        !data.iter().any(|d| d.contains("\"error\"")),
        "no error event"
    );
    server.stop().await;
}
