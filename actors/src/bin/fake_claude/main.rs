//! `fake-claude`: a stand-in for the Claude Code CLI in stream-json mode, for fault tests.
//!
//! It accepts the real CLI's flags (`-p --input-format stream-json --output-format stream-json
//! --verbose --include-partial-messages --bare --tools X --model M --system-prompt T
//! --session-id UUID --resume ID ...`), answers `--version` with `2.1.197 (fake)`, and speaks
//! the same protocol: `control_request` initialize/interrupt → `control_response`; a user
//! message → `system/init`, `system/status`, `stream_event` text deltas (16-byte pieces),
//! `assistant`, `result` (usage, cumulative `total_cost_usd` per process, `duration_ms`).
//!
//! A user message's content is a string or an array of blocks: its text blocks, then its image
//! and document blocks described as the fake Anthropic API describes them (`content`), make
//! the user text. Reply text: `echo: <user text> [turn=<k>]`, k = turns of the current
//! conversation. `/clear` starts a new conversation (new session id, k back to 0). The count
//! is saved after every turn in `$HOME/.fake-claude/sessions/<session id>`, and each completed
//! turn is appended, like the real CLI does, to its transcript
//! `<config dir>/projects/<slug of cwd>/<session id>.jsonl` (an entry with the `uuid` of the
//! turn's `assistant` line and the turn count), so `--resume <id>` continues it in another
//! process, also one that has only the transcript.
//!
//! Magic words in the user text:
//! - `[[slow]]` / `[[slow:N]]`: 100 ms / N ms between deltas; `[[long]]`: about 200 deltas
//! - `[[crash]]`: a delta or two, then exit(3) mid-turn; `[[crash-now]]`: exit(3) at once
//! - `[[hang]]`: one delta, then silence (an interrupt is still answered)
//! - `[[hang-hard]]`: silence, interrupts ignored, forever
//! - `[[garbage]]`: a non-JSON line first; `[[unknown]]`: a line of an unknown type first
//! - `[[oversize:N]]`: one delta line carrying N bytes of text
//! - `[[grandchild]]`: starts `sleep 1000` holding our stdout; the reply has `grandchild=<pid>`
//! - `[[cost:X]]`: the turn costs X USD (default 0.001)
//! - `[[error:S]]`: the turn ends like an upstream error with status S (`is_error`, `api_error_status`)
//! - `[[retry]]`: a `system/api_retry` line first
//! - `[[env]]`: the reply is the sorted names (not values) of the environment
//! - `[[tokens:N]]`: before the text, stream a `message_start` and a `message_delta` reporting
//!   N output tokens (what the real CLI streams for each model call)
//! - `[[credential]]`: the reply has `credential=<last 4 characters of CLAUDE_CODE_OAUTH_TOKEN>`
//!   (or `credential=none`)
//! - `[[system]]`: the reply has `system=<--system-prompt>` (or `system=none`)
//! - `[[pid]]`: the reply has `pid=<pid>`; `[[stderr]]`: writes to stderr
//! - `[[exit]]`: exit 0 after the turn
//! - `[[think]]`: a thinking block (deltas, signature) before the text (`thinking`)
//! - `[[call:NAME {json}]]` (with `--mcp-config`): the model calls the MCP server's tool NAME
//!   (see `tools`), `[[abort-call:MS]]` gives such a call up after MS ms
//!
//! Environment: `FAKE_CLAUDE_STARTUP_DELAY_MS` (delay before reading stdin),
//! `FAKE_CLAUDE_FAIL_START=1` (exit 2 at once), `FAKE_CLAUDE_VERSION_FAIL=1` (`--version` fails).
//! stdin EOF: exit 0 after the current turn.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod content;
mod mcp;
mod thinking;
mod tools;
mod transcript;

enum Input {
    User { text: String, command: bool },
    Control { id: String, subtype: String },
    Eof,
}

struct Fake {
    session_id: String,
    turns: u64,
    total_cost: f64,
    home: PathBuf,
    model: String,
    /// `--system-prompt`, shown by `[[system]]`.
    system_prompt: Option<String>,
    /// The MCP server of `--mcp-config`, whose tools `[[call:..]]` calls.
    mcp: Option<mcp::Server>,
    inbox: Receiver<Input>,
    /// User messages that arrived mid-turn, run next (the real CLI queues them too).
    queued: VecDeque<(String, bool)>,
    eof: bool,
}

enum TurnEnd {
    Done,
    Interrupted,
}

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn magic_number<T: std::str::FromStr>(text: &str, word: &str) -> Option<T> {
    let start = text.find(&format!("[[{word}:"))? + word.len() + 3;
    text[start..].split("]]").next()?.trim().parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version") {
        if std::env::var_os("FAKE_CLAUDE_VERSION_FAIL").is_some() {
            eprintln!("fake-claude: --version asked to fail");
            std::process::exit(1);
        }
        println!("2.1.197 (fake)");
        return;
    }
    if std::env::var_os("FAKE_CLAUDE_FAIL_START").is_some() {
        eprintln!("fake-claude: asked to fail at start");
        std::process::exit(2);
    }
    if let Some(ms) = std::env::var("FAKE_CLAUDE_STARTUP_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into()))
        .join(".fake-claude/sessions");
    let (session_id, turns) = match flag("--resume") {
        Some(id) => {
            let turns = transcript::transcript_turns(&id)
                .or_else(|| {
                    std::fs::read_to_string(home.join(&id))
                        .ok()
                        .and_then(|s| s.trim().parse().ok())
                })
                .unwrap_or(0);
            (id, turns)
        }
        None => (
            flag("--session-id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            0,
        ),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read_stdin(tx));
    let mut fake = Fake {
        session_id,
        turns,
        total_cost: 0.0,
        home,
        model: flag("--model").unwrap_or_else(|| "claude-sonnet-5".into()),
        system_prompt: flag("--system-prompt"),
        mcp: flag("--mcp-config").and_then(|c| mcp::Server::from_config(&c)),
        inbox: rx,
        queued: VecDeque::new(),
        eof: false,
    };
    fake.run();
}

fn read_stdin(tx: mpsc::Sender<Input>) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            eprintln!("fake-claude: ignoring a line that is not JSON");
            continue;
        };
        let input = match v["type"].as_str() {
            Some("user") => {
                let (text, command) = content::content_text(&v["message"]["content"]);
                Input::User { text, command }
            }
            Some("control_request") => Input::Control {
                id: v["request_id"].as_str().unwrap_or_default().to_owned(),
                subtype: v["request"]["subtype"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            },
            _ => continue,
        };
        if tx.send(input).is_err() {
            return;
        }
    }
    let _ = tx.send(Input::Eof);
}

impl Fake {
    fn run(&mut self) {
        loop {
            if let Some((text, command)) = self.queued.pop_front() {
                self.user(&text, command);
                continue;
            }
            if self.eof {
                std::process::exit(0);
            }
            match self.inbox.recv() {
                Ok(Input::User { text, command }) => self.user(&text, command),
                Ok(Input::Control { id, .. }) => self.control_ok(&id),
                Ok(Input::Eof) | Err(_) => std::process::exit(0),
            }
        }
    }

    fn control_ok(&self, id: &str) {
        emit(&json!({"type": "control_response", "response": {
            "subtype": "success", "request_id": id, "response": {"commands": []}}}));
    }

    fn init_lines(&self) {
        emit(
            &json!({"type": "system", "subtype": "init", "cwd": std::env::current_dir().ok(),
            "session_id": self.session_id, "tools": [], "mcp_servers": [], "model": self.model,
            "permissionMode": "default", "apiKeySource": "none"}),
        );
    }

    fn user(&mut self, text: &str, command: bool) {
        if command && text.trim() == "/clear" {
            self.session_id = uuid::Uuid::new_v4().to_string();
            self.turns = 0;
            self.init_lines();
            emit(
                &json!({"type": "assistant", "message": {"id": uuid::Uuid::new_v4().to_string(),
                "model": "<synthetic>", "role": "assistant", "type": "message", "content": []},
                "session_id": self.session_id}),
            );
            self.result("success", false, None, "", 0, 0, Instant::now());
            return;
        }
        let started = Instant::now();
        if text.contains("[[crash-now]]") {
            std::process::exit(3);
        }
        self.init_lines();
        emit(
            &json!({"type": "system", "subtype": "status", "status": "requesting",
            "session_id": self.session_id}),
        );
        if text.contains("[[garbage]]") {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "this is not json {{");
            let _ = out.flush();
        }
        if text.contains("[[unknown]]") {
            emit(&json!({"type": "mystery_event", "detail": 1}));
        }
        if text.contains("[[retry]]") {
            emit(
                &json!({"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 10,
                "retry_delay_ms": 100, "error_status": 529, "error": "overloaded",
                "session_id": self.session_id}),
            );
        }
        if text.contains("[[stderr]]") {
            eprintln!("fake-claude: some diagnostics\nfake-claude: more diagnostics");
        }
        self.turns += 1;
        if text.contains("[[too-long]]") {
            // What the CLI answers for input over the model's context window.
            let msg = "Prompt is too long";
            emit(
                &json!({"type": "assistant", "message": {"model": "<synthetic>", "role": "assistant",
                "content": [{"type": "text", "text": msg}]}, "session_id": self.session_id}),
            );
            self.result("success", true, Some(400), msg, 0, 1, started);
            return;
        }
        if let Some(status) = magic_number::<u16>(text, "error") {
            emit(
                &json!({"type": "assistant", "message": {"model": "<synthetic>", "role": "assistant",
                "content": [{"type": "text", "text": format!("API Error: {status}")}]},
                "session_id": self.session_id}),
            );
            let msg = format!("API Error: {status} upstream failure");
            self.result("success", true, Some(status), &msg, 0, 1, started);
            self.save();
            return;
        }
        if let Some(server) = self.mcp.take() {
            let calls = tools::calls_in(text);
            let tool_turn = !calls.is_empty();
            if tool_turn {
                self.tool_turn(&server, calls, text, started);
            }
            self.mcp = Some(server);
            if tool_turn {
                self.save();
                return;
            }
        }
        let mut extras = String::new();
        if text.contains("[[system]]") {
            let prompt = self.system_prompt.as_deref().unwrap_or("none");
            extras.push_str(&format!(" system={prompt}"));
        }
        if text.contains("[[pid]]") {
            extras.push_str(&format!(" pid={}", std::process::id()));
        }
        if text.contains("[[grandchild]]") {
            match std::process::Command::new("sleep")
                .arg("1000")
                .stdin(std::process::Stdio::null())
                .spawn()
            {
                Ok(child) => extras.push_str(&format!(" grandchild={}", child.id())),
                Err(e) => eprintln!("fake-claude: no grandchild: {e}"),
            }
        }
        if text.contains("[[long]]") {
            for i in 0..400 {
                extras.push_str(&format!(" word{i}"));
            }
        }
        let mut reply = if text.contains("[[credential]]") {
            let tail = std::env::var("CLAUDE_CODE_OAUTH_TOKEN")
                .map(|t| {
                    let start = t.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
                    t[start..].to_owned()
                })
                .unwrap_or_else(|_| "none".to_owned());
            format!("credential={tail}")
        } else if text.contains("[[env]]") {
            let mut names: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
            names.sort();
            names.join(",")
        } else {
            format!("echo: {text}{extras}")
        };
        reply.push_str(&format!(" [turn={}]", self.turns));
        let delay = magic_number::<u64>(text, "slow")
            .or(text.contains("[[slow]]").then_some(100))
            .map(Duration::from_millis);
        let cost = magic_number::<f64>(text, "cost").unwrap_or(0.001);
        let end = if text.contains("[[hang-hard]]") {
            loop {
                let _ = self.inbox.recv_timeout(Duration::from_secs(3600));
            }
        } else if let Some(n) = magic_number::<usize>(text, "oversize") {
            self.delta(&"x".repeat(n));
            TurnEnd::Done
        } else {
            if let Some(n) = magic_number::<u64>(text, "tokens") {
                self.usage_events(n);
            }
            if text.contains("[[think]]") {
                self.think(text);
            }
            self.stream(&reply, text, delay)
        };
        self.total_cost += cost;
        match end {
            TurnEnd::Done => self.answer(text, &reply, started),
            TurnEnd::Interrupted => self.interrupted(started),
        }
        self.save();
        if text.contains("[[exit]]") {
            std::process::exit(0);
        }
    }

    /// The answer's `assistant` line (saved in the transcript) and the turn's `result`.
    fn answer(&self, text: &str, reply: &str, started: Instant) {
        let uuid = uuid::Uuid::new_v4().to_string();
        emit(
            &json!({"type": "assistant", "message": {"model": self.model, "role": "assistant",
            "content": [{"type": "text", "text": reply}]}, "session_id": self.session_id,
            "uuid": uuid}),
        );
        self.append_transcript(text, reply, &uuid);
        let out_tokens = (reply.len() / 4).max(1) as u64;
        self.result("success", false, None, reply, out_tokens, 1, started);
    }

    /// The end of an interrupted turn.
    fn interrupted(&self, started: Instant) {
        emit(
            &json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "text", "text": "[Request interrupted by user]"}]},
            "session_id": self.session_id}),
        );
        self.result("error_during_execution", true, None, "", 0, 1, started);
    }

    /// Streams `reply` in 16-byte pieces, watching the inbox for interrupts.
    fn stream(&mut self, reply: &str, text: &str, delay: Option<Duration>) -> TurnEnd {
        let pieces: Vec<String> = reply
            .chars()
            .collect::<Vec<_>>()
            .chunks(16)
            .map(|c| c.iter().collect())
            .collect();
        for (i, piece) in pieces.iter().enumerate() {
            if i == 2 && text.contains("[[crash]]") {
                std::process::exit(3);
            }
            if i == 1 && text.contains("[[hang]]") {
                return self.wait_for_interrupt(None);
            }
            self.delta(piece);
            if let Some(d) = delay {
                if let TurnEnd::Interrupted = self.wait_for_interrupt(Some(d)) {
                    return TurnEnd::Interrupted;
                }
            } else if let Ok(input) = self.inbox.try_recv() {
                if let TurnEnd::Interrupted = self.handle_mid_turn(input) {
                    return TurnEnd::Interrupted;
                }
            }
        }
        if text.contains("[[crash]]") {
            std::process::exit(3);
        }
        TurnEnd::Done
    }

    /// Waits up to `limit` (forever when `None`) for an interrupt; other input is queued.
    fn wait_for_interrupt(&mut self, limit: Option<Duration>) -> TurnEnd {
        let deadline = limit.map(|d| Instant::now() + d);
        loop {
            let wait = match deadline {
                Some(t) => t.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            match self.inbox.recv_timeout(wait) {
                Ok(input) => {
                    if let TurnEnd::Interrupted = self.handle_mid_turn(input) {
                        return TurnEnd::Interrupted;
                    }
                }
                Err(RecvTimeoutError::Timeout) if deadline.is_some() => return TurnEnd::Done,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.eof = true;
                    if deadline.is_none() {
                        std::process::exit(0);
                    }
                    return TurnEnd::Done;
                }
            }
        }
    }

    fn handle_mid_turn(&mut self, input: Input) -> TurnEnd {
        match input {
            Input::Control { id, subtype } => {
                self.control_ok(&id);
                if subtype == "interrupt" {
                    return TurnEnd::Interrupted;
                }
            }
            Input::User { text, command } => self.queued.push_back((text, command)),
            Input::Eof => self.eof = true,
        }
        TurnEnd::Done
    }

    /// The usage a model call streams: input at `message_start`, output so far in
    /// `message_delta`.
    fn usage_events(&self, output_tokens: u64) {
        emit(
            &json!({"type": "stream_event", "event": {"type": "message_start", "message": {
            "model": self.model, "usage": {"input_tokens": 10, "output_tokens": 1}}},
            "session_id": self.session_id}),
        );
        emit(
            &json!({"type": "stream_event", "event": {"type": "message_delta",
            "delta": {"stop_reason": null}, "usage": {"output_tokens": output_tokens}},
            "session_id": self.session_id}),
        );
    }

    fn delta(&self, text: &str) {
        emit(
            &json!({"type": "stream_event", "event": {"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": text}}, "session_id": self.session_id}),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn result(
        &self,
        subtype: &str,
        is_error: bool,
        status: Option<u16>,
        text: &str,
        output_tokens: u64,
        num_turns: u32,
        started: Instant,
    ) {
        emit(
            &json!({"type": "result", "subtype": subtype, "is_error": is_error,
            "api_error_status": status, "duration_ms": started.elapsed().as_millis() as u64,
            "num_turns": num_turns, "result": text, "stop_reason": if is_error { Value::Null } else { json!("end_turn") },
            "session_id": self.session_id, "total_cost_usd": self.total_cost,
            "usage": {"input_tokens": 10 * self.turns, "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}),
        );
    }

    fn save(&self) {
        let _ = std::fs::create_dir_all(&self.home);
        let _ = std::fs::write(self.home.join(&self.session_id), self.turns.to_string());
    }
}
