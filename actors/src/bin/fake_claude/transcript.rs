//! The fake CLI's transcript: one JSON line per entry, where the real CLI keeps its own
//! (`TranscriptDir::for_child`), each carrying the `uuid` of the line it saves and the turn
//! count, so `--resume` continues the count and the worker can confirm a turn saved.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::Fake;

/// Where the real CLI keeps the transcript of session `id` started in this working directory.
pub(crate) fn transcript_file(id: &str) -> Option<PathBuf> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cwd = std::env::current_dir().ok()?;
    Some(claude_pool_actors::transcript::TranscriptDir::for_child(&cwd, &env)?.file(id))
}

/// The turn count of the last entry of session `id`'s transcript.
pub(crate) fn transcript_turns(id: &str) -> Option<u64> {
    let text = std::fs::read_to_string(transcript_file(id)?).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["turns"].as_u64())
}

impl Fake {
    /// Appends a completed turn to the session's transcript (before its `result`, as the real
    /// CLI's file has it within ~100 ms).
    pub(super) fn append_transcript(&self, text: &str, reply: &str, uuid: &str) {
        self.write_entry(
            &json!({"type": "assistant", "uuid": uuid, "sessionId": self.session_id,
            "turns": self.turns, "user": text, "text": reply}),
        );
    }

    /// Appends the entry of another line the CLI saves (a tool call, a tool result, the note of
    /// an interrupt).
    pub(super) fn append_entry(&self, kind: &str, uuid: &str) {
        self.write_entry(
            &json!({"type": kind, "uuid": uuid, "sessionId": self.session_id,
            "turns": self.turns}),
        );
    }

    fn write_entry(&self, entry: &Value) {
        let Some(file) = transcript_file(&self.session_id) else {
            return;
        };
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
        {
            let _ = writeln!(f, "{entry}");
        }
    }
}
