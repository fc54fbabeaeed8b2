//! Tool calls in the fake CLI, the way the real one makes them against an MCP server of
//! `--mcp-config`: each `[[call:NAME {"flat": "json"}]]` in the user text is a `tool_use` of
//! `mcp__<server>__NAME` (one `assistant` line each, then the message ends); the calls go to the
//! server one at a time, in order, each result is echoed as a `user` line, and the "model"
//! answers `echo: tool results: <id>=<text>; ... [turn=k]`.
//!
//! An interrupt while a call waits gives the waiting calls up (their connection is closed) and
//! answers them as refused, like the real CLI: a `user` line with an error `tool_result` per
//! call ("The user doesn't want to proceed with this tool use…"), then
//! `[Request interrupted by user for tool use]`, both saved in the transcript, then an
//! `error_during_execution` result. `[[abort-call:MS]]` makes the fake give a call up by itself
//! after MS ms, as the real CLI does past `CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT`: the call's result
//! is the CLI's own error text and the turn goes on with it.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::mcp::{Outcome, Server};
use super::{Fake, TurnEnd, emit, magic_number};

/// What the real CLI (2.1.197) gives the model for a call it gave up on an interrupt.
const REFUSED: &str = "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it was a file edit, the new_string was NOT written to the file). STOP what you are doing and wait for the user to tell you how to proceed.";

/// The `[[call:NAME {json}]]` magic words of `text`: (name, input).
pub(crate) fn calls_in(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[[call:") {
        rest = &rest[start + 7..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "_-.".contains(*c))
            .collect();
        rest = &rest[name.len()..];
        let trimmed = rest.trim_start();
        let input = if trimmed.starts_with('{') {
            match trimmed.find("}]]") {
                Some(end) => serde_json::from_str(&trimmed[..=end]).unwrap_or(json!({})),
                None => json!({}),
            }
        } else {
            json!({})
        };
        out.push((name, input));
    }
    out
}

impl Fake {
    /// A turn in which the model calls `calls` on `server`, then answers with their results.
    pub(super) fn tool_turn(
        &mut self,
        server: &Server,
        calls: Vec<(String, Value)>,
        text: &str,
        started: Instant,
    ) {
        let give_up = magic_number::<u64>(text, "abort-call").map(Duration::from_millis);
        let uses: Vec<(String, String, Value)> = calls
            .into_iter()
            .map(|(name, input)| {
                let id = format!(
                    "toolu_fake{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..12]
                );
                (id, name, input)
            })
            .collect();
        for (id, name, input) in &uses {
            let uuid = uuid::Uuid::new_v4().to_string();
            emit(
                &json!({"type": "assistant", "message": {"model": self.model, "role": "assistant",
                "content": [{"type": "tool_use", "id": id, "input": input,
                    "name": format!("mcp__{}__{name}", server.name)}]},
                "session_id": self.session_id, "uuid": uuid}),
            );
            self.append_entry("assistant", &uuid);
        }
        self.usage_events(5);
        emit(
            &json!({"type": "stream_event", "event": {"type": "message_stop"},
            "session_id": self.session_id}),
        );
        let mut results: Vec<(String, Outcome)> = Vec::new();
        for (i, (id, name, input)) in uses.iter().enumerate() {
            let pending = server.call(id, name, input);
            let deadline = give_up.map(|d| Instant::now() + d);
            let outcome = loop {
                match pending.rx.recv_timeout(Duration::from_millis(10)) {
                    Ok(o) => break o,
                    Err(RecvTimeoutError::Disconnected) => {
                        break Outcome {
                            text: "the MCP call ended without an answer".into(),
                            is_error: true,
                        };
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    pending.abandon();
                    let secs = give_up.unwrap_or_default().as_secs();
                    break Outcome {
                        text: format!(
                            "MCP server \"{}\" tool \"{name}\" sent no response or progress for {secs}s; aborting. Set CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT (ms) higher or to 0 if this tool is expected to run silently for longer.",
                            server.name
                        ),
                        is_error: true,
                    };
                }
                if let Ok(input) = self.inbox.try_recv() {
                    if let TurnEnd::Interrupted = self.handle_mid_turn(input) {
                        pending.abandon();
                        let waiting: Vec<&String> = uses[i..].iter().map(|u| &u.0).collect();
                        self.refuse(&waiting, started);
                        return;
                    }
                }
            };
            self.tool_result(id, &outcome);
            results.push((id.clone(), outcome));
        }
        let listed: Vec<String> = results
            .iter()
            .map(|(id, o)| format!("{id}={}", o.text))
            .collect();
        let reply = format!(
            "echo: tool results: {} [turn={}]",
            listed.join("; "),
            self.turns
        );
        if let TurnEnd::Interrupted = self.stream(&reply, text, None) {
            self.interrupted(started);
            return;
        }
        self.total_cost += 0.001;
        self.answer(text, &reply, started);
    }

    /// The `user` line that gives the model a call's result (a transcript entry).
    fn tool_result(&self, id: &str, o: &Outcome) {
        let uuid = uuid::Uuid::new_v4().to_string();
        emit(
            &json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": id, "is_error": o.is_error,
             "content": [{"type": "text", "text": o.text}]}]},
            "session_id": self.session_id, "uuid": uuid}),
        );
        self.append_entry("user", &uuid);
    }

    /// An interrupt while calls wait: they are answered as refused, the interrupt is noted.
    fn refuse(&mut self, waiting: &[&String], started: Instant) {
        let uuid = uuid::Uuid::new_v4().to_string();
        let content: Vec<Value> = waiting
            .iter()
            .map(|id| json!({"type": "tool_result", "tool_use_id": id, "is_error": true, "content": REFUSED}))
            .collect();
        emit(
            &json!({"type": "user", "message": {"role": "user", "content": content},
            "session_id": self.session_id, "uuid": uuid}),
        );
        self.append_entry("user", &uuid);
        let uuid = uuid::Uuid::new_v4().to_string();
        emit(
            &json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "text", "text": "[Request interrupted by user for tool use]"}]},
            "session_id": self.session_id, "uuid": uuid}),
        );
        self.append_entry("user", &uuid);
        self.result("error_during_execution", true, None, "", 0, 1, started);
    }
}
