//! The lines the pool writes to the CLI's stdin: client messages made inert, the gateway's
//! own commands, the conversation boundary and control requests.

use crate::content::Block;

/// One JSON line (with trailing `\n`) carrying a client's message, made inert: the CLI reads
/// the *last* text block of a user message as a possible slash command (`/config`, `/cost`,
/// `/clear`, ...), and a last block that is empty is dropped before the message goes to the
/// model. So the client's blocks (text, images, documents, tool results, in their order) are
/// followed by one empty text block: whatever the client wrote (a leading `/` included)
/// reaches the model as written and never runs as a command (`docs/cli-hardening.md`).
pub fn user_message_line(content: &[Block]) -> String {
    let mut blocks: Vec<serde_json::Value> = content.iter().map(Block::to_cli).collect();
    blocks.push(serde_json::json!({"type": "text", "text": ""}));
    user_line(&serde_json::Value::Array(blocks))
}

/// One JSON line carrying a command of the gateway's own (e.g. `/clear`), as a plain string so
/// the CLI runs it. Never built from client text.
pub fn command_line(command: &str) -> String {
    user_line(&serde_json::Value::String(command.to_owned()))
}

/// The line that closes the previous conversation of a warm process off from the next one: a
/// `compact_boundary` system entry with a fresh uuid. Written while the process is idle, after
/// its `/clear` was answered, it keeps the `/clear` command's own messages (its caveat,
/// command name and empty output blocks) out of the next conversation: the next model request
/// carries only that conversation's messages, as a fresh process's does. The CLI answers
/// nothing to it, so it is written just before the next conversation's first message. Never
/// written during a turn (it would cut that turn's history).
pub fn conversation_boundary_line() -> String {
    let mut line = serde_json::json!({
        "type": "system",
        "subtype": "compact_boundary",
        "uuid": uuid::Uuid::new_v4().to_string(),
        "compact_metadata": {"trigger": "manual", "pre_tokens": 0},
    })
    .to_string();
    line.push('\n');
    line
}

fn user_line(content: &serde_json::Value) -> String {
    let mut line = serde_json::json!({
        "type": "user",
        "message": {"role": "user", "content": content},
    })
    .to_string();
    line.push('\n');
    line
}

/// Control requests we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRequest {
    /// Handshake: the CLI answers once it is ready.
    Initialize,
    /// Stop the running turn; the CLI ends it with an `error_during_execution` result.
    Interrupt,
}

/// `{"type":"control_request","request_id":..,"request":{"subtype":..}}` plus `\n`.
pub fn control_request_line(request_id: &str, request: ControlRequest) -> String {
    let subtype = match request {
        ControlRequest::Initialize => "initialize",
        ControlRequest::Interrupt => "interrupt",
    };
    let mut line = serde_json::json!({
        "type": "control_request",
        "request_id": request_id,
        "request": {"subtype": subtype},
    })
    .to_string();
    line.push('\n');
    line
}
