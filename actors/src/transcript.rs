//! Where the CLI keeps a conversation's transcript, and waiting until a turn is in it.
//!
//! The CLI appends every message of a conversation to
//! `<config dir>/projects/<slug of its cwd>/<session id>.jsonl` (config dir: `$CLAUDE_CONFIG_DIR`,
//! else `$HOME/.claude`), and `--resume` rebuilds the conversation from that file. It writes
//! through a queue drained by a 100 ms timer, so the file lags the `result` line by up to
//! ~100 ms (measured 43–75 ms). A process killed in that window leaves a transcript without
//! its last turn (or no file at all after a first turn): `--resume` then loses context or
//! refuses ("No conversation found"). A worker therefore reports a turn complete only once
//! the turn's last assistant message is in the file ([`wait_for_entry`]).

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::time::Instant;

/// A completed turn's place in its conversation's transcript: the CLI session, its file, and
/// how far the file reaches with this turn saved (the file only grows past it, or is rewritten
/// from the start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedTurn {
    /// The CLI's session id (the file's name; changes on `/clear` and may on `--resume`).
    pub cli_session_id: String,
    /// The transcript file.
    pub file: PathBuf,
    /// Bytes of the file that hold the conversation up to and including this turn.
    pub len: u64,
}

/// Where completed turns' transcripts are kept beyond this pool (so a conversation can be
/// taken up elsewhere, see [`crate::PoolHandle::adopt`]). The worker awaits it before it
/// reports the turn complete, so a completed turn is kept before the caller hears of it; it is
/// given up to [`KEEP_TIMEOUT`] (the sink reports its own failures).
#[derive(Clone)]
pub struct TranscriptSink(
    Arc<dyn Fn(crate::SessionId, SavedTurn) -> BoxFuture<'static, ()> + Send + Sync>,
);

/// How long a worker waits for a [`TranscriptSink`] before it reports the turn anyway.
pub const KEEP_TIMEOUT: Duration = Duration::from_secs(10);

impl TranscriptSink {
    /// Wraps an async callback.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(crate::SessionId, SavedTurn) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Self(Arc::new(move |sid, saved| Box::pin(f(sid, saved))))
    }

    /// Keeps one turn's transcript (bounded by [`KEEP_TIMEOUT`]).
    pub(crate) async fn keep(&self, session: crate::SessionId, saved: SavedTurn) {
        if tokio::time::timeout(KEEP_TIMEOUT, (self.0)(session, saved))
            .await
            .is_err()
        {
            tracing::warn!(
                "keeping a transcript took longer than {KEEP_TIMEOUT:?}; the turn is reported without it"
            );
        }
    }
}

impl std::fmt::Debug for TranscriptSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TranscriptSink")
    }
}

/// Longest project directory name the CLI uses as is; longer ones are cut and hashed.
const MAX_SLUG: usize = 200;
/// How often the file is checked while waiting.
const POLL: Duration = Duration::from_millis(5);

/// The directory holding the transcripts of the conversations run in one working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptDir(PathBuf);

impl TranscriptDir {
    /// The directory for a child started in `cwd` with environment `env` (the child's whole
    /// environment: `CLAUDE_CONFIG_DIR`, else `HOME`). `None` when neither is set.
    pub fn for_child(cwd: &Path, env: &[(String, String)]) -> Option<Self> {
        let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let config = match (var("CLAUDE_CONFIG_DIR"), var("HOME")) {
            (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
            (_, Some(home)) if !home.is_empty() => Path::new(home).join(".claude"),
            _ => return None,
        };
        // The CLI names the directory after its real working directory (symlinks resolved).
        let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
        Some(Self(
            config
                .join("projects")
                .join(project_slug(&cwd.to_string_lossy())),
        ))
    }

    /// The transcript file of one CLI session.
    pub fn file(&self, cli_session_id: &str) -> PathBuf {
        self.0.join(format!("{cli_session_id}.jsonl"))
    }
}

/// The CLI's name for a working directory: every character other than an ASCII letter or
/// digit becomes `-`; names longer than 200 are cut and suffixed with a hash of the path.
pub fn project_slug(path: &str) -> String {
    let slug: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if slug.chars().count() <= MAX_SLUG {
        return slug;
    }
    // The CLI's 32-bit string hash over UTF-16 code units (h = h * 31 + c), in base 36.
    let hash = path
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let cut: String = slug.chars().take(MAX_SLUG).collect();
    format!("{cut}-{}", base36(hash.unsigned_abs()))
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

/// Why waiting for a transcript entry ended without it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum WaitError {
    #[error("the transcript did not record the turn within {0:?}")]
    TimedOut(Duration),
}

/// Waits until the entry with message id `uuid` is in the transcript at `path`, looking only
/// at what was appended after `from` (where the previous confirmed save was read to). The id is
/// searched as `"uuid":"<id>"`, which only the entry's own line carries. Returns the position
/// read to: the next turn's entries come after it.
pub(crate) async fn wait_for_entry(
    path: &Path,
    from: u64,
    uuid: &str,
    timeout: Duration,
) -> Result<u64, WaitError> {
    let needle = format!("\"uuid\":\"{uuid}\"").into_bytes();
    let deadline = Instant::now() + timeout;
    let mut pos = from;
    // The end of what was read last time, in case the needle straddles two reads.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        if let Ok(mut f) = tokio::fs::File::open(path).await {
            let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
            if len < pos {
                // Rewritten (the CLI compacts or re-appends metadata): look at all of it.
                pos = 0;
                carry.clear();
            }
            if len > pos && f.seek(SeekFrom::Start(pos)).await.is_ok() {
                let mut fresh = Vec::with_capacity((len - pos) as usize);
                if f.read_to_end(&mut fresh).await.is_ok() {
                    pos += fresh.len() as u64;
                    carry.extend_from_slice(&fresh);
                    if contains(&carry, &needle) {
                        return Ok(pos);
                    }
                    let keep = carry.len().saturating_sub(needle.len());
                    carry.drain(..keep);
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(WaitError::TimedOut(timeout));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_match_the_cli() {
        // Taken from a real CLI's ~/.claude/projects.
        assert_eq!(project_slug("/tmp/c-h6aami6p"), "-tmp-c-h6aami6p");
        assert_eq!(
            project_slug("/var/lib/claude-pool/work/2c80814c-f238-47b4"),
            "-var-lib-claude-pool-work-2c80814c-f238-47b4"
        );
        assert_eq!(project_slug("/a/b_c.d é"), "-a-b-c-d--");
        let long = format!("/{}", "x".repeat(300));
        let slug = project_slug(&long);
        assert!(slug.starts_with(&format!("-{}-", "x".repeat(199))));
        assert!(slug.len() > 201);
        assert!(slug[201..].chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn the_config_dir_wins_over_home() {
        let cwd = Path::new("/nonexistent/w1");
        let home = vec![("HOME".to_owned(), "/h".to_owned())];
        assert_eq!(
            TranscriptDir::for_child(cwd, &home).unwrap().file("s"),
            Path::new("/h/.claude/projects/-nonexistent-w1/s.jsonl")
        );
        let both = vec![
            ("HOME".to_owned(), "/h".to_owned()),
            ("CLAUDE_CONFIG_DIR".to_owned(), "/cfg".to_owned()),
        ];
        assert_eq!(
            TranscriptDir::for_child(cwd, &both).unwrap().file("s"),
            Path::new("/cfg/projects/-nonexistent-w1/s.jsonl")
        );
        assert_eq!(TranscriptDir::for_child(cwd, &[]), None);
    }

    #[tokio::test]
    async fn waits_for_an_entry_appended_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, "{\"type\":\"user\",\"uuid\":\"old\"}\n").unwrap();
        let from = std::fs::metadata(&path).unwrap().len();
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                let mut text = std::fs::read_to_string(&path).unwrap();
                text.push_str("{\"type\":\"assistant\",\"uuid\":\"new\"}\n");
                std::fs::write(&path, text).unwrap();
            })
        };
        let read_to = wait_for_entry(&path, from, "new", Duration::from_secs(5))
            .await
            .unwrap();
        writer.await.unwrap();
        assert_eq!(
            read_to,
            std::fs::metadata(&path).unwrap().len(),
            "read to the end"
        );
        // An entry written before the turn began does not count.
        assert_eq!(
            wait_for_entry(&path, read_to, "old", Duration::from_millis(20)).await,
            Err(WaitError::TimedOut(Duration::from_millis(20)))
        );
        // A missing file is waited for, not an error.
        assert!(
            wait_for_entry(&dir.path().join("none"), 0, "x", Duration::from_millis(10))
                .await
                .is_err()
        );
    }
}
