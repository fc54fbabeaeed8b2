//! `claude-pool healthcheck`: asks a running server's `/readyz` (or another path) and turns the
//! answer into an exit code, for container health checks on images without curl.
//!
//! Plain HTTP/1.1 over a loopback TCP connection: the check must not depend on anything the
//! image may lack, and it must fail fast (one overall timeout) rather than hang a probe.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Why a check did not pass.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot reach {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("no answer from {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0} answered {1}")]
    Status(String, String),
    #[error("{0} did not answer HTTP")]
    NotHttp(String),
}

/// Requests `http://{host}:{port}{path}` and returns the status line when it is 200.
pub fn check(host: &str, port: u16, path: &str, timeout: Duration) -> Result<String, CheckError> {
    let target = format!("{host}:{port}");
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| CheckError::Connect(target.clone(), e))?
        .collect();
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, remaining(deadline)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = stream.ok_or_else(|| {
        CheckError::Connect(
            target.clone(),
            last.unwrap_or_else(|| std::io::Error::other("no address")),
        )
    })?;
    let io = |e| CheckError::Io(target.clone(), e);
    stream
        .set_read_timeout(Some(remaining(deadline)))
        .map_err(io)?;
    stream
        .set_write_timeout(Some(remaining(deadline)))
        .map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: claude-pool-healthcheck\r\n\r\n"
    )
    .map_err(io)?;
    // The status line is all that matters; read until it is complete.
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(v), Some("200")) if v.starts_with("HTTP/") => Ok(line),
        (Some(v), Some(_)) if v.starts_with("HTTP/") => Err(CheckError::Status(
            format!("http://{target}{path}"),
            line.clone(),
        )),
        _ => Err(CheckError::NotHttp(target)),
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static [u8]) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer);
                // Close only our side, and read until the client closes: closing with unread
                // request bytes would send a reset that can overtake the answer.
                let _ = s.shutdown(std::net::Shutdown::Write);
                let _ = std::io::copy(&mut s, &mut std::io::sink());
            }
        });
        port
    }

    #[test]
    fn a_200_passes_and_anything_else_fails() {
        let ok = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        let line = check("127.0.0.1", ok, "/readyz", Duration::from_secs(5)).unwrap();
        assert_eq!(line, "HTTP/1.1 200 OK");
        let busy = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let e = check("127.0.0.1", busy, "/readyz", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, CheckError::Status(..)), "{e}");
        assert!(e.to_string().contains("503"), "{e}");
        let garbage = serve_once(b"SSH-2.0-OpenSSH\r\n");
        let e = check("127.0.0.1", garbage, "/", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, CheckError::NotHttp(_)), "{e}");
    }

    #[test]
    fn nothing_listening_fails_at_once() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = check("127.0.0.1", port, "/readyz", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, CheckError::Connect(..)), "{e}");
    }
}
