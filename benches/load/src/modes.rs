//! The three ways of driving turns: through the gateway, straight to a warm CLI process, and
//! one fresh CLI process per request.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use claude_pool_actors::protocol::{self, CliEvent, ControlRequest};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::payload::Api;
use crate::stats::Recorder;

/// Settings shared by every client of a run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) url: String,
    pub(crate) api_key: String,
    pub(crate) model: String,
    pub(crate) prompt: String,
    pub(crate) stream: bool,
    /// The gateway API the turns go through.
    pub(crate) api: Api,
    /// The request body of a gateway turn, built once (see [`crate::payload::body`]).
    pub(crate) body: bytes::Bytes,
    /// Session ids are `<prefix>-<client>[-<n>]`.
    pub(crate) session_prefix: String,
    /// Turns per conversation; 0 = one conversation per client for the whole run.
    pub(crate) turns_per_session: u64,
    /// Conversations send their whole history instead of `X-Session-Id`.
    pub(crate) history: bool,
    pub(crate) cli: String,
    pub(crate) cli_args: Vec<String>,
    pub(crate) cli_env: Vec<(String, String)>,
    pub(crate) timeout: Duration,
}

/// Hands out request numbers until the run's total is reached.
#[derive(Debug)]
pub(crate) struct Budget {
    next: AtomicU64,
    total: u64,
}

impl Budget {
    pub(crate) fn new(total: u64) -> Arc<Self> {
        Arc::new(Self {
            next: AtomicU64::new(0),
            total,
        })
    }

    pub(crate) fn take(&self) -> Option<u64> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.total).then_some(i)
    }
}

fn session_for(plan: &Plan, client: usize, turn: u64) -> Option<String> {
    match plan.turns_per_session {
        0 => Some(format!("{}-{client}", plan.session_prefix)),
        1 => None,
        n => Some(format!("{}-{client}-{}", plan.session_prefix, turn / n)),
    }
}

/// One gateway client: requests until the budget is spent.
pub(crate) async fn gateway_client(
    http: reqwest::Client,
    plan: Arc<Plan>,
    client: usize,
    budget: Arc<Budget>,
    progress: indicatif::ProgressBar,
) -> Recorder {
    let mut rec = Recorder::default();
    let mut turn = 0;
    while budget.take().is_some() {
        let mut req = match plan.api {
            Api::Chat => http
                .post(format!("{}/v1/chat/completions", plan.url))
                .bearer_auth(&plan.api_key),
            Api::Messages => http
                .post(format!("{}/v1/messages", plan.url))
                .header("x-api-key", &plan.api_key)
                .header("anthropic-version", "2023-06-01"),
        }
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(plan.body.clone());
        if let Some(sid) = session_for(&plan, client, turn) {
            req = req.header("X-Session-Id", sid);
        }
        turn += 1;
        let t0 = Instant::now();
        let answer = async {
            match plan.api {
                Api::Chat => gateway_turn(req, plan.stream, t0).await,
                Api::Messages => messages_turn(req, plan.stream, t0).await,
            }
        };
        match tokio::time::timeout(plan.timeout, answer).await {
            Ok(Ok(ttft)) => rec.record(ttft, t0.elapsed()),
            Ok(Err(kind)) => rec.error(kind),
            Err(_) => rec.error("client-timeout"),
        }
        progress.inc(1);
    }
    rec
}

/// Sends a gateway request; a failure is reported by its kind (`connect`, `transport`, or
/// `http-<status>:<error code>`, the code of OpenAI's envelope or the type of Anthropic's).
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    let resp = req.send().await.map_err(|e| {
        if e.is_connect() {
            "connect".to_owned()
        } else {
            "transport".to_owned()
        }
    })?;
    let status = resp.status();
    if !status.is_success() {
        let code = resp
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| {
                let e = &v["error"];
                e["code"].as_str().or(e["type"].as_str()).map(String::from)
            })
            .unwrap_or_default();
        return Err(format!("http-{}:{code}", status.as_u16()));
    }
    Ok(resp)
}

async fn gateway_turn(
    req: reqwest::RequestBuilder,
    stream: bool,
    t0: Instant,
) -> Result<Duration, String> {
    let resp = send(req).await?;
    if !stream {
        resp.bytes().await.map_err(|_| "transport".to_owned())?;
        return Ok(t0.elapsed());
    }
    let mut events = resp.bytes_stream().eventsource();
    let mut ttft = None;
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(|_| "sse".to_owned())?;
        if ev.data == "[DONE]" {
            return ttft.ok_or_else(|| "no-content".to_owned());
        }
        if ttft.is_none() {
            let v: serde_json::Value = serde_json::from_str(&ev.data).map_err(|_| "bad-chunk")?;
            if let Some(code) = v["error"]["code"].as_str() {
                return Err(format!("stream-error:{code}"));
            }
            if v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
            {
                ttft = Some(t0.elapsed());
            }
        } else if ev.data.starts_with("{\"error\"") {
            return Err("stream-error".into());
        }
    }
    Err("stream-cut".into())
}

/// A Messages API turn: the time to the first text delta (streamed) or to the whole answer.
async fn messages_turn(
    req: reqwest::RequestBuilder,
    stream: bool,
    t0: Instant,
) -> Result<Duration, String> {
    let resp = send(req).await?;
    if !stream {
        resp.bytes().await.map_err(|_| "transport".to_owned())?;
        return Ok(t0.elapsed());
    }
    let mut events = resp.bytes_stream().eventsource();
    let mut ttft = None;
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(|_| "sse".to_owned())?;
        match ev.event.as_str() {
            "content_block_delta" if ttft.is_none() => {
                let v: serde_json::Value =
                    serde_json::from_str(&ev.data).map_err(|_| "bad-event")?;
                if v["delta"]["type"] == "text_delta"
                    && v["delta"]["text"].as_str().is_some_and(|t| !t.is_empty())
                {
                    ttft = Some(t0.elapsed());
                }
            }
            "message_stop" => return ttft.ok_or_else(|| "no-content".to_owned()),
            "error" => {
                let v: serde_json::Value = serde_json::from_str(&ev.data).unwrap_or_default();
                let kind = v["error"]["type"].as_str().unwrap_or_default();
                return Err(format!("stream-error:{kind}"));
            }
            _ => {}
        }
    }
    Err("stream-cut".into())
}

/// A CLI process driven over stdin/stdout.
pub(crate) struct CliProcess {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl CliProcess {
    /// Starts the CLI in stream-json mode.
    pub(crate) fn spawn(plan: &Plan) -> std::io::Result<Self> {
        let mut cmd = Command::new(&plan.cli);
        cmd.args(claude_pool_actors::child::STREAM_JSON_ARGS)
            .args(&plan.cli_args)
            .envs(plan.cli_env.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        Ok(Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// Sends `initialize` and waits for its answer.
    pub(crate) async fn handshake(&mut self) -> Result<(), String> {
        self.write(&protocol::control_request_line(
            "init",
            ControlRequest::Initialize,
        ))
        .await?;
        loop {
            match self.next().await? {
                CliEvent::ControlResponse { .. } => return Ok(()),
                _ => continue,
            }
        }
    }

    async fn write(&mut self, line: &str) -> Result<(), String> {
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|_| "cli-write")?;
        self.stdin.flush().await.map_err(|_| "cli-write".to_owned())
    }

    async fn next(&mut self) -> Result<CliEvent, String> {
        loop {
            let line = self
                .lines
                .next_line()
                .await
                .map_err(|_| "cli-read")?
                .ok_or("cli-eof")?;
            if let Ok(ev) = protocol::parse_line(&line) {
                return Ok(ev);
            }
        }
    }

    /// One turn: returns the time to the first text delta (from `t0`).
    pub(crate) async fn turn(&mut self, prompt: &str, t0: Instant) -> Result<Duration, String> {
        self.write(&protocol::user_message_line(&[
            claude_pool_actors::Block::text(prompt),
        ]))
        .await?;
        let mut ttft = None;
        loop {
            match self.next().await? {
                CliEvent::TextDelta(_) if ttft.is_none() => ttft = Some(t0.elapsed()),
                CliEvent::Result(r) if r.is_error => return Err("cli-error-result".into()),
                CliEvent::Result(_) => return ttft.ok_or_else(|| "no-content".to_owned()),
                _ => {}
            }
        }
    }

    /// Closes stdin and waits for the exit.
    pub(crate) async fn finish(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// One direct client: a warm process of its own, turns written straight to it.
pub(crate) async fn direct_client(
    mut cli: CliProcess,
    plan: Arc<Plan>,
    budget: Arc<Budget>,
    progress: indicatif::ProgressBar,
) -> Recorder {
    let mut rec = Recorder::default();
    while budget.take().is_some() {
        let t0 = Instant::now();
        match tokio::time::timeout(plan.timeout, cli.turn(&plan.prompt, t0)).await {
            Ok(Ok(ttft)) => rec.record(ttft, t0.elapsed()),
            Ok(Err(kind)) => rec.error(kind),
            Err(_) => rec.error("client-timeout"),
        }
        progress.inc(1);
    }
    cli.finish().await;
    rec
}

/// One spawn-per-request client: every turn starts (and ends) a CLI process.
pub(crate) async fn spawn_client(
    plan: Arc<Plan>,
    budget: Arc<Budget>,
    progress: indicatif::ProgressBar,
) -> Recorder {
    let mut rec = Recorder::default();
    while budget.take().is_some() {
        let t0 = Instant::now();
        let outcome = async {
            let mut cli = CliProcess::spawn(&plan).map_err(|_| "spawn".to_owned())?;
            let r = cli
                .turn(&plan.prompt, t0)
                .await
                .map(|ttft| (ttft, t0.elapsed()));
            cli.finish().await;
            r
        };
        match tokio::time::timeout(plan.timeout, outcome).await {
            Ok(Ok((ttft, total))) => rec.record(ttft, total),
            Ok(Err(kind)) => rec.error(kind),
            Err(_) => rec.error("client-timeout"),
        }
        progress.inc(1);
    }
    rec
}
