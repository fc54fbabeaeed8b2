//! The real CLI against the fake Anthropic API, for the real-CLI tests: where the CLI is, the
//! fake API started in-process, a pool config pointing one at the other.
//!
//! The CLI is looked up at `$CLAUDE_CLI_PATH`, else `.cache/claude-cli/node_modules/.bin/claude`
//! (installed by `scripts/install-cli.sh`). When it is missing the tests say so and pass
//! locally; under CI (`CI` set) a missing CLI is a failure.

use std::path::PathBuf;
use std::time::Duration;

use claude_pool_actors::PoolConfig;
use fake_anthropic::{FakeApi, Options};

use super::fake_config;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The real CLI, or `None` (and a note) when it is not installed outside CI.
pub fn real_cli() -> Option<PathBuf> {
    let path = std::env::var_os("CLAUDE_CLI_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/claude-cli/node_modules/.bin/claude"));
    if path.exists() {
        return Some(path);
    }
    let why = format!(
        "real CLI ({}) missing; run scripts/install-cli.sh",
        path.display()
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the real-CLI tests: {why}"
    );
    eprintln!("SKIP: {why}");
    None
}

/// The fake Anthropic API on a free loopback port, `[[slow]]` pausing 100 ms per chunk;
/// stopped when dropped.
pub fn fake_api() -> FakeApi {
    FakeApi::start(Options::default().slow_ms(100)).expect("the fake API starts")
}

/// A pool config running the CLI at `cli` against `api`, with no upstream retries.
pub fn real_config(
    cli: PathBuf,
    dir: &std::path::Path,
    api: &FakeApi,
    min: usize,
    max: usize,
) -> PoolConfig {
    let mut cfg = fake_config(dir, min, max);
    cfg.worker.command = cli;
    cfg.worker.startup_timeout = Duration::from_secs(60);
    cfg.interrupt_timeout = Duration::from_secs(3);
    cfg.worker.env.extend([
        ("ANTHROPIC_BASE_URL".to_owned(), api.url()),
        ("ANTHROPIC_API_KEY".to_owned(), "dummy".to_owned()),
        ("CLAUDE_CODE_MAX_RETRIES".to_owned(), "0".to_owned()),
    ]);
    cfg
}

/// The `[n=k]` message count the fake API reports.
pub fn n_of(reply: &str) -> u32 {
    let start = reply.rfind("[n=").expect("reply carries [n=..]") + 3;
    reply[start..].split(']').next().unwrap().parse().unwrap()
}
