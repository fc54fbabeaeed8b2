//! The fake CLI's MCP client: the one HTTP server of `--mcp-config` (the gateway's bridge),
//! spoken over plain HTTP/1.1 on loopback with blocking sockets, enough of streamable HTTP for
//! `initialize` and `tools/call` (JSON or SSE answers, chunked or not, a session id kept).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// A tool's outcome as the model would get it.
pub(crate) struct Outcome {
    pub(crate) text: String,
    pub(crate) is_error: bool,
}

/// The MCP server named in `--mcp-config`.
pub(crate) struct Server {
    /// Its name (tools are `mcp__<name>__<tool>`).
    pub(crate) name: String,
    host: String,
    path: String,
    headers: Vec<(String, String)>,
    session: Arc<Mutex<Option<String>>>,
}

/// A call on its way: its outcome comes on `rx`; `abandon` closes its connection.
pub(crate) struct Pending {
    pub(crate) rx: Receiver<Outcome>,
    conn: Arc<Mutex<Option<TcpStream>>>,
}

impl Pending {
    /// Gives the call up (what the real CLI does on an interrupt): its connection is closed.
    pub(crate) fn abandon(&self) {
        if let Some(s) = self.conn.lock().ok().and_then(|mut c| c.take()) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// `${NAME}` in `s` replaced by the environment's value (as the CLI expands its MCP config).
fn expand(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + len];
        out.push_str(&std::env::var(name).unwrap_or_default());
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

impl Server {
    /// The first HTTP server of an `--mcp-config` JSON.
    pub(crate) fn from_config(config: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(config).ok()?;
        let (name, server) = v["mcpServers"].as_object()?.iter().next()?;
        let url = server["url"].as_str()?;
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let headers = server["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), expand(v.as_str().unwrap_or_default())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            name: name.clone(),
            host: host.to_owned(),
            path: if path.is_empty() { "/" } else { path }.to_owned(),
            headers,
            session: Arc::default(),
        })
    }

    /// Calls `tool` for the tool use `id` in a thread of its own.
    pub(crate) fn call(&self, id: &str, tool: &str, input: &Value) -> Pending {
        let (tx, rx) = mpsc::channel();
        let conn = Arc::new(Mutex::new(None));
        let client = Client {
            host: self.host.clone(),
            path: self.path.clone(),
            headers: self.headers.clone(),
            session: self.session.clone(),
            conn: conn.clone(),
        };
        let params = json!({"name": tool, "arguments": input,
            "_meta": {"claudecode/toolUseId": id, "progressToken": 1}});
        std::thread::spawn(move || {
            let outcome = client.call_tool(params).unwrap_or_else(|e| Outcome {
                text: format!("MCP call failed: {e}"),
                is_error: true,
            });
            let _ = tx.send(outcome);
        });
        Pending { rx, conn }
    }
}

struct Client {
    host: String,
    path: String,
    headers: Vec<(String, String)>,
    session: Arc<Mutex<Option<String>>>,
    conn: Arc<Mutex<Option<TcpStream>>>,
}

impl Client {
    fn call_tool(&self, params: Value) -> Result<Outcome, String> {
        let known = self.session.lock().map(|s| s.is_some()).unwrap_or(false);
        if !known {
            let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "fake-claude", "version": "2.1.197"}}});
            self.post(&init, false)?;
            let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            self.post(&note, false)?;
        }
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
        let answer = self.post(&call, true)?.ok_or("no answer to tools/call")?;
        if let Some(e) = answer.get("error") {
            return Err(e.to_string());
        }
        let r = &answer["result"];
        let text = r["content"]
            .as_array()
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        Ok(Outcome {
            text,
            is_error: r["isError"].as_bool().unwrap_or(false),
        })
    }

    /// POSTs one JSON-RPC message; the answer with the message's id (if it has one).
    fn post(&self, msg: &Value, keep: bool) -> Result<Option<Value>, String> {
        let mut stream = TcpStream::connect(&self.host).map_err(|e| e.to_string())?;
        if keep {
            if let (Ok(mut c), Ok(clone)) = (self.conn.lock(), stream.try_clone()) {
                *c = Some(clone);
            }
        }
        let body = msg.to_string();
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.path,
            self.host,
            body.len()
        );
        let session = self.session.lock().ok().and_then(|s| s.clone());
        if let Some(s) = &session {
            head.push_str(&format!(
                "Mcp-Session-Id: {s}\r\nMcp-Protocol-Version: 2025-06-18\r\n"
            ));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).map_err(|e| e.to_string())?;
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line {status:?}"))?;
        let (mut chunked, mut sse, mut length) = (false, false, None);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                break;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                "content-type" => sse = v.starts_with("text/event-stream"),
                "content-length" => length = v.parse::<u64>().ok(),
                "mcp-session-id" => {
                    if let Ok(mut s) = self.session.lock() {
                        *s = Some(v.to_owned());
                    }
                }
                _ => {}
            }
        }
        if !(200..300).contains(&code) {
            return Err(format!("HTTP {code}"));
        }
        let Some(id) = msg.get("id") else {
            return Ok(None);
        };
        let body: Box<dyn Read> = match (chunked, length) {
            (true, _) => Box::new(Chunked {
                inner: reader,
                left: 0,
                done: false,
            }),
            (false, Some(n)) => Box::new(reader.take(n)),
            (false, None) => Box::new(reader),
        };
        let mut body = BufReader::new(body);
        if !sse {
            let mut text = String::new();
            body.read_to_string(&mut text).map_err(|e| e.to_string())?;
            return serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| e.to_string());
        }
        // Server-sent events: the answer is the `data:` carrying our id.
        loop {
            let mut line = String::new();
            if body.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("the event stream ended without an answer".into());
            }
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
                if v.get("id") == Some(id)
                    && (v.get("result").is_some() || v.get("error").is_some())
                {
                    return Ok(Some(v));
                }
            }
        }
    }
}

/// A chunked HTTP/1.1 body.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut size = String::new();
            if self.inner.read_line(&mut size)? == 0 {
                self.done = true;
                return Ok(0);
            }
            return self.start_chunk(size.trim(), buf);
        }
        self.read_data(buf)
    }
}

impl<R: BufRead> Chunked<R> {
    fn start_chunk(&mut self, size: &str, buf: &mut [u8]) -> std::io::Result<usize> {
        let hex = size.split(';').next().unwrap_or_default();
        let n = usize::from_str_radix(hex, 16).map_err(std::io::Error::other)?;
        if n == 0 {
            self.done = true;
            return Ok(0);
        }
        self.left = n;
        self.read_data(buf)
    }

    fn read_data(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.done = true;
        }
        self.left -= n;
        if self.left == 0 {
            // The CRLF that ends the chunk.
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
        }
        Ok(n)
    }
}
