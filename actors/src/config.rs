//! Pool and worker configuration (typed; the root crate builds these from its layered config).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How the pool is sized and timed.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Workers kept spawned and warm at all times.
    pub min_workers: usize,
    /// Upper bound on live workers (all profiles together).
    pub max_workers: usize,
    /// Turns that may wait for a worker; one more is rejected at once.
    pub queue_capacity: usize,
    /// A queued turn waiting longer than this fails with [`crate::TurnError::QueueTimeout`].
    pub queue_timeout: Duration,
    /// A running turn with no output for this long is interrupted, then its worker killed.
    pub turn_idle_timeout: Duration,
    /// How long an interrupt may take to be acknowledged before the worker is killed.
    pub interrupt_timeout: Duration,
    /// How long a turn may wait for the results of its external tool calls; then it is
    /// interrupted (its conversation kept) and its worker freed.
    pub tool_result_timeout: Duration,
    /// A worker is recycled (replaced) after this many turns.
    pub max_turns_per_worker: u64,
    /// A worker whose process group uses more resident memory than this is recycled.
    pub max_worker_rss_mb: u64,
    /// A conversation idle for this long releases its worker (it can still be resumed).
    pub session_idle_ttl: Duration,
    /// Workers above `min_workers` that hold no conversation are stopped after this idle time.
    pub worker_idle_ttl: Duration,
    /// Fresh workers (holding no conversation) kept started ahead of need, within
    /// `max_workers`, so a new conversation finds a warm process.
    pub spare_workers: usize,
    /// Eviction hysteresis: a conversation keeps the worker it was given for at least this
    /// long before another conversation may take it (prevents resume thrash when
    /// conversations outnumber workers).
    pub min_residency: Duration,
    /// Grace between SIGTERM and SIGKILL when stopping a child.
    pub stop_grace: Duration,
    /// Restart policy for crashed workers.
    pub backoff: BackoffConfig,
    /// How each worker's child process is started.
    pub worker: WorkerConfig,
    /// Where completed turns' transcripts are also kept (`None`: only in the workers' HOME).
    pub transcript_sink: Option<crate::transcript::TranscriptSink>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            min_workers: 2,
            max_workers: 8,
            queue_capacity: 256,
            queue_timeout: Duration::from_secs(30),
            turn_idle_timeout: Duration::from_secs(120),
            interrupt_timeout: Duration::from_secs(3),
            tool_result_timeout: Duration::from_secs(600),
            max_turns_per_worker: 1000,
            max_worker_rss_mb: 640,
            session_idle_ttl: Duration::from_secs(30 * 60),
            worker_idle_ttl: Duration::from_secs(5 * 60),
            spare_workers: 1,
            min_residency: Duration::from_secs(2),
            stop_grace: Duration::from_secs(3),
            backoff: BackoffConfig::default(),
            worker: WorkerConfig::default(),
            transcript_sink: None,
        }
    }
}

/// Jittered exponential backoff with a restart-rate limit, applied per profile to workers that
/// fail to start (a worker that was warm and then died is replaced at once).
#[derive(Debug, Clone)]
pub struct BackoffConfig {
    /// First restart delay after a crash.
    pub min_delay: Duration,
    /// Upper bound of the delay.
    pub max_delay: Duration,
    /// Random spread applied to each delay, 0.0..=1.0 (0.2 = ±20 %).
    pub jitter: f64,
    /// More than this many restarts within `window` holds restarts at `max_delay`.
    pub max_restarts: u32,
    /// The window of the restart-rate limit.
    pub window: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            jitter: 0.2,
            max_restarts: 20,
            window: Duration::from_secs(60),
        }
    }
}

/// How a worker's child process is started.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The CLI executable (`claude`, or a path).
    pub command: PathBuf,
    /// Extra arguments appended after the stream-json arguments.
    pub args: Vec<String>,
    /// Default model (`--model`) when a turn's profile names none.
    pub model: Option<String>,
    /// HOME for every child; shared by the pool so `--resume` finds transcripts.
    pub home: PathBuf,
    /// Parent of the per-worker working directories.
    pub work_root: PathBuf,
    /// Tools the model may use; empty = `--tools ""` (no tools at all, the default).
    pub allowed_tools: Vec<String>,
    /// How a worker goes from one conversation to the next.
    pub handoff: Handoff,
    /// Pass `--bare` (no hooks, plugins, CLAUDE.md discovery; auth only from `ANTHROPIC_API_KEY`).
    /// Workers for a profile with an OAuth token always run without it.
    pub bare: bool,
    /// Variables copied from the server's own environment when set (an allow-list).
    pub env_allowlist: Vec<String>,
    /// Extra variables for every child (`[worker.env]`).
    pub env: BTreeMap<String, String>,
    /// Longest accepted stdout line; a longer one fails the turn and recycles the worker.
    pub max_line_bytes: usize,
    /// How long a fresh child may take to answer the `initialize` handshake.
    pub startup_timeout: Duration,
    /// A launcher the CLI is started through (`<launcher> launch-worker <server pid> --
    /// <command> <args>`), which sets the parent-death signal and execs the CLI. Without one the
    /// server sets it between fork and exec, which forces a full `fork` of the server (its
    /// page tables copied per worker); with one, the child is made with `posix_spawn`.
    pub launcher: Option<PathBuf>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            command: PathBuf::from("claude"),
            args: Vec::new(),
            model: None,
            home: PathBuf::from("data/claude-home"),
            work_root: PathBuf::from("data/sessions"),
            allowed_tools: Vec::new(),
            handoff: Handoff::default(),
            bare: true,
            env_allowlist: default_env_allowlist(),
            env: BTreeMap::new(),
            max_line_bytes: 16 * 1024 * 1024,
            startup_timeout: Duration::from_secs(60),
            launcher: None,
        }
    }
}

/// How a worker whose conversation ended (or was evicted) serves the next one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Handoff {
    /// Stop it and let a fresh process (started ahead of need) take the next conversation; the
    /// CLI runs with `--disable-slash-commands`. Costs a cold start (~0.7 s of CPU) per new
    /// conversation.
    Fresh,
    /// Reuse the process (~20 ms instead of a ~0.7 s CPU start): the gateway's own `/clear`
    /// (a new CLI session and transcript), then, before the next conversation's first message,
    /// a conversation boundary that keeps the `/clear` command's blocks out of it: the next
    /// conversation's model requests carry only its own messages, as a fresh process's do.
    /// Client text never runs a command (see `protocol::user_message_line`). Ignored when tools
    /// are allowed (every conversation then gets a fresh directory).
    #[default]
    Clear,
}

/// Environment variables a child may inherit from the server: what the CLI needs to run and
/// reach its API, nothing else (the server's own secrets stay out).
pub fn default_env_allowlist() -> Vec<String> {
    [
        "PATH",
        "LANG",
        "LC_ALL",
        "TZ",
        "TMPDIR",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "NODE_EXTRA_CA_CERTS",
        "SSL_CERT_FILE",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "CLAUDE_CODE_MAX_RETRIES",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}
