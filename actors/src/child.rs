//! One child process: spawn, JSON-line framing, stop, and the guards that make sure no path
//! leaves a process behind.
//!
//! * The child runs in its own process group (`process_group(0)`), so a stop reaches every
//!   process it started (tools, shells) and a terminal Ctrl-C does not reach it directly.
//! * It gets SIGKILL if the server dies (the parent-death signal): armed by the configured
//!   launcher (`claude-pool launch-worker`, started with `posix_spawn`) before it execs the
//!   CLI, or without one between fork and exec, which costs a full fork of the server.
//! * Its environment is built from an allow-list plus the configured extras
//!   ([`spawn_spec`]); nothing else of the server's environment reaches it.
//! * stdout is read as JSON lines with a maximum length; stderr is drained into `tracing`
//!   (an unread stderr pipe would block the child).
//! * A waiter task owns the `tokio::process::Child`, reaps it, and publishes the exit on a
//!   `watch` channel: stdout EOF is not taken as proof of exit (a grandchild may hold the pipe).
//! * [`ChildControl::stop`] is SIGTERM to the group → grace → SIGKILL → reap → sweep;
//!   [`GroupGuard`] SIGKILLs the group if the control is dropped without a stop.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::config::{Handoff, WorkerConfig};
use crate::turn::{Profile, Secret};

/// Errors of child-process handling.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The executable could not be started.
    #[error("could not start `{command}`: {source}")]
    Spawn {
        /// The command as configured.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// `--version` did not answer successfully.
    #[error("`{command} --version` failed: {detail}")]
    Version {
        /// The command as configured.
        command: String,
        /// What went wrong.
        detail: String,
    },
    /// Writing to the child's stdin failed (it has exited or closed stdin).
    #[error("writing to the child failed: {0}")]
    Write(std::io::Error),
    /// A stdout line exceeded the configured maximum.
    #[error("the child printed a line longer than {0} bytes")]
    LineTooLong(usize),
    /// Reading stdout failed.
    #[error("reading the child's output failed: {0}")]
    Read(std::io::Error),
    /// Preparing the working directory failed.
    #[error("could not prepare working directory {path}: {source}")]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The arguments that put the CLI in stream-json mode with token streaming.
pub const STREAM_JSON_ARGS: &[&str] = &[
    "-p",
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
    "--include-partial-messages",
];

/// Everything needed to start one child: pure data, built by [`spawn_spec`].
#[derive(Clone, PartialEq, Eq)]
pub struct SpawnSpec {
    /// Executable.
    pub command: PathBuf,
    /// Full argument list.
    pub args: Vec<OsString>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The complete environment (the child's environment is cleared first).
    pub env: Vec<(String, String)>,
    /// Longest accepted stdout line.
    pub max_line_bytes: usize,
    /// Started through this launcher (see [`WorkerConfig::launcher`]).
    pub launcher: Option<PathBuf>,
}

impl std::fmt::Debug for SpawnSpec {
    // Values of the environment may be credentials: print names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnSpec")
            .field("command", &self.command)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

/// How a conversation starts on a new process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Conversation {
    /// A fresh conversation.
    #[default]
    Fresh,
    /// Continue the CLI session with this id (`--resume`).
    Resume(String),
}

/// The environment variable carrying a worker's token for external tools (the MCP config
/// refers to it as `${CLAUDE_POOL_TOOL_TOKEN}`).
pub const TOOL_TOKEN_ENV: &str = "CLAUDE_POOL_TOOL_TOKEN";

/// The CLI's limit on how long an MCP call over HTTP may go without an answer or a progress
/// notification (milliseconds; 0 turns it off). Read in CLI 2.1.197's binary next to
/// "sent no response or progress for …s; aborting"; the CLI checks it every 30 s.
pub const MCP_IDLE_TIMEOUT_ENV: &str = "CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT";

/// Builds the command line and environment of a worker child.
///
/// `server_env` looks up the server's own environment; only names on the allow-list are
/// consulted. `[worker.env]` extras override inherited values; a profile's OAuth token
/// overrides both and turns `--bare` off (bare mode reads only `ANTHROPIC_API_KEY`).
/// A profile's external tools add its MCP server (and no other) with only its tools allowed;
/// `tools` gives the worker's token for it and how long one call may take.
pub fn spawn_spec(
    cfg: &WorkerConfig,
    profile: &Profile,
    cwd: &Path,
    conversation: &Conversation,
    tools: Option<(&Secret, Duration)>,
    server_env: impl Fn(&str) -> Option<String>,
) -> SpawnSpec {
    let mut args: Vec<OsString> = STREAM_JSON_ARGS.iter().map(OsString::from).collect();
    let bare = cfg.bare && profile.oauth_token.is_none();
    if bare {
        args.push("--bare".into());
    }
    args.push("--tools".into());
    args.push(cfg.allowed_tools.join(",").into());
    if let Some(model) = profile.model.as_ref().or(cfg.model.as_ref()) {
        args.push("--model".into());
        args.push(model.into());
    }
    if let Some(prompt) = &profile.system_prompt {
        args.push("--system-prompt".into());
        args.push(prompt.as_ref().into());
    }
    // The workers' settings are the gateway's: no user/project/local settings files are read
    // (a `settings.json` written into the shared HOME changes nothing), and without the
    // `/clear` handoff no slash command can run at all.
    args.push("--setting-sources".into());
    args.push("".into());
    if cfg.handoff == Handoff::Fresh || !cfg.allowed_tools.is_empty() {
        args.push("--disable-slash-commands".into());
    }
    if let Some(external) = &profile.external_tools {
        args.push("--mcp-config".into());
        args.push(external.config.as_ref().into());
        args.push("--strict-mcp-config".into());
        args.push("--allowedTools".into());
        args.push(format!("mcp__{}", external.server).into());
    }
    if let Conversation::Resume(id) = conversation {
        args.push("--resume".into());
        args.push(id.into());
    }
    args.extend(cfg.args.iter().map(OsString::from));

    let mut env: Vec<(String, String)> = cfg
        .env_allowlist
        .iter()
        .filter_map(|name| server_env(name).map(|v| (name.clone(), v)))
        .collect();
    let mut set = |name: &str, value: String| {
        env.retain(|(k, _)| k != name);
        env.push((name.to_owned(), value));
    };
    for (k, v) in &cfg.env {
        set(k, v.clone());
    }
    set("HOME", cfg.home.to_string_lossy().into_owned());
    if let Some(token) = &profile.oauth_token {
        // The key's own credential, and no other: an API key would take precedence over it.
        env.retain(|(k, _)| k != "ANTHROPIC_API_KEY" && k != "ANTHROPIC_AUTH_TOKEN");
        env.push((
            "CLAUDE_CODE_OAUTH_TOKEN".to_owned(),
            token.expose().to_owned(),
        ));
    }
    if let (Some(_), Some((token, timeout))) = (&profile.external_tools, tools) {
        // The CLI's own limits on one MCP call, past the pool's, so the pool decides: the whole
        // call (`MCP_TOOL_TIMEOUT`, default 1e8 ms) and its silence (`MCP_IDLE_TIMEOUT_ENV`,
        // default 300 s, checked every 30 s). Set here, after `[worker.env]`: an override there
        // would make the CLI answer a held call with its own error text before the deadline.
        let ms = (timeout + Duration::from_secs(60)).as_millis().to_string();
        for (name, value) in [
            (TOOL_TOKEN_ENV, token.expose().to_owned()),
            ("MCP_TOOL_TIMEOUT", ms.clone()),
            (MCP_IDLE_TIMEOUT_ENV, ms),
        ] {
            env.retain(|(k, _)| k != name);
            env.push((name.to_owned(), value));
        }
    }
    // Quiet, self-contained children unless the operator says otherwise.
    for (k, v) in [
        ("DISABLE_AUTOUPDATER", "1"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
    ] {
        if !env.iter().any(|(name, _)| name == k) {
            env.push((k.to_owned(), v.to_owned()));
        }
    }
    env.sort();
    SpawnSpec {
        command: cfg.command.clone(),
        args,
        cwd: cwd.to_path_buf(),
        env,
        max_line_bytes: cfg.max_line_bytes,
        launcher: cfg.launcher.clone(),
    }
}

/// Runs `<command> --version` and returns its first output line: the start-up check that
/// turns a missing or broken CLI into one clear error instead of a crash-restart loop.
pub async fn check_command(cfg: &WorkerConfig) -> Result<String, ChildError> {
    let command = cfg.command.display().to_string();
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(&cfg.command)
            .arg("--version")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| ChildError::Version {
        command: command.clone(),
        detail: "no answer within 20 s".into(),
    })?
    .map_err(|source| ChildError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(ChildError::Version {
            command,
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned())
}

/// The child's stdin and framed stdout: owned by whoever runs the current exchange.
#[derive(Debug)]
pub struct ChildIo {
    stdin: ChildStdin,
    lines: FramedRead<ChildStdout, LinesCodec>,
    max_line_bytes: usize,
}

impl ChildIo {
    /// Writes one complete line (which must end in `\n`) and flushes.
    pub async fn write_line(&mut self, line: &str) -> Result<(), ChildError> {
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(ChildError::Write)?;
        self.stdin.flush().await.map_err(ChildError::Write)
    }

    /// The next stdout line; `None` at EOF. An over-long line is an error after which the
    /// stream must not be used again.
    pub async fn next_line(&mut self) -> Option<Result<String, ChildError>> {
        let item = self.lines.next().await?;
        Some(item.map_err(|e| match e {
            LinesCodecError::MaxLineLengthExceeded => ChildError::LineTooLong(self.max_line_bytes),
            LinesCodecError::Io(io) => ChildError::Read(io),
        }))
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Terminating signal, if any.
    pub signal: Option<i32>,
}

impl From<ExitStatus> for ExitInfo {
    fn from(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Self {
            code: status.code(),
            signal: status.signal(),
        }
    }
}

impl std::fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit code {c}"),
            (None, Some(s)) => write!(f, "signal {s}"),
            (None, None) => f.write_str("unknown exit"),
        }
    }
}

/// SIGKILLs a process group when dropped, unless disarmed after a confirmed stop.
#[derive(Debug)]
pub struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Control over a running child: its pid, its exit, and stopping it.
#[derive(Debug)]
pub struct ChildControl {
    pid: u32,
    exit: watch::Receiver<Option<ExitInfo>>,
    guard: GroupGuard,
}

impl ChildControl {
    /// The child's pid (also its process-group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A receiver that turns `Some` once the child has exited and been reaped.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitInfo>> {
        self.exit.clone()
    }

    /// The exit, if the child has already exited.
    pub fn exited(&self) -> Option<ExitInfo> {
        *self.exit.borrow()
    }

    /// Stops the whole group: SIGTERM, up to `grace` for the leader to exit, then SIGKILL;
    /// waits for the reap, sweeps the group once more, and disarms the guard.
    pub async fn stop(mut self, grace: Duration) -> Option<ExitInfo> {
        let pgid = Pid::from_raw(self.pid as i32);
        if self.exited().is_none() {
            let _ = killpg(pgid, Signal::SIGTERM);
            if tokio::time::timeout(grace, wait_exit(&mut self.exit))
                .await
                .is_err()
            {
                let _ = killpg(pgid, Signal::SIGKILL);
            }
        }
        // The leader's exit may leave group members behind (tools, grandchildren).
        let _ = killpg(pgid, Signal::SIGKILL);
        let info = wait_exit(&mut self.exit).await;
        self.guard.disarm();
        info
    }

    /// SIGKILL to the group at once, then wait for the reap (for hung or broken children).
    pub async fn kill(self) -> Option<ExitInfo> {
        self.stop(Duration::ZERO).await
    }

    /// Resident memory of the whole process group, in bytes (from `/proc`).
    pub fn group_rss_bytes(&self) -> u64 {
        group_rss_bytes(self.pid as i32)
    }
}

async fn wait_exit(exit: &mut watch::Receiver<Option<ExitInfo>>) -> Option<ExitInfo> {
    match exit.wait_for(Option::is_some).await {
        Ok(v) => *v,
        // The waiter task is gone (runtime shutting down): nothing more to learn.
        Err(_) => None,
    }
}

/// The launcher's subcommand: `<launcher> launch-worker <server pid> -- <command> <args>`.
pub const LAUNCH_SUBCOMMAND: &str = "launch-worker";

/// Spawns a child per `spec`. Returns its I/O (for the exchange runner) and its control
/// (for the owner). Must be called within a tokio runtime.
pub fn spawn(spec: &SpawnSpec) -> Result<(ChildIo, ChildControl), ChildError> {
    std::fs::create_dir_all(&spec.cwd).map_err(|source| ChildError::WorkDir {
        path: spec.cwd.clone(),
        source,
    })?;
    let mut cmd = match &spec.launcher {
        // posix_spawn (no code between fork and exec): the launcher sets the parent-death
        // signal itself, then execs the CLI with the same pid.
        Some(launcher) => {
            let mut cmd = Command::new(launcher);
            cmd.arg(LAUNCH_SUBCOMMAND)
                .arg(std::process::id().to_string())
                .arg("--")
                .arg(&spec.command);
            cmd
        }
        None => {
            let mut cmd = Command::new(&spec.command);
            set_parent_death_signal(&mut cmd);
            cmd
        }
    };
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| ChildError::Spawn {
        command: spec.command.display().to_string(),
        source,
    })?;
    let pid = child.id().unwrap_or_default();
    let guard = GroupGuard {
        pgid: Some(Pid::from_raw(pid as i32)),
    };
    let (stdin, stdout, stderr) =
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => unreachable!("all three pipes were requested"),
        };
    tokio::spawn(drain_stderr(pid, stderr));
    let (exit_tx, exit_rx) = watch::channel(None);
    tokio::spawn(async move {
        let info = match child.wait().await {
            Ok(status) => ExitInfo::from(status),
            Err(e) => {
                tracing::warn!(pid, error = %e, "waiting for child failed");
                ExitInfo {
                    code: None,
                    signal: None,
                }
            }
        };
        tracing::debug!(pid, exit = %info, "child exited");
        let _ = exit_tx.send(Some(info));
    });
    let io = ChildIo {
        stdin,
        lines: FramedRead::new(stdout, LinesCodec::new_with_max_length(spec.max_line_bytes)),
        max_line_bytes: spec.max_line_bytes,
    };
    let control = ChildControl {
        pid,
        exit: exit_rx,
        guard,
    };
    Ok((io, control))
}

/// Asks the kernel to SIGKILL the child if the thread that spawned it goes away, so a server
/// killed with SIGKILL leaves no worker behind. Children are spawned from the runtime's
/// long-lived worker threads (never from the blocking pool, whose threads come and go), which
/// is what makes the thread-scoped `PR_SET_PDEATHSIG` safe here.
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe; it allocates nothing and touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

async fn drain_stderr(pid: u32, stderr: tokio::process::ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => tracing::debug!(target: "claude_pool::child::stderr", pid, "{line}"),
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(pid, error = %e, "stderr not readable");
                break;
            }
        }
    }
}

/// Sums `VmRSS` (resident pages × page size) over every process whose process group is `pgid`.
pub fn group_rss_bytes(pgid: i32) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let page = 4096u64;
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Fields after the parenthesised command name: state ppid pgrp ...
            let rest = &stat[stat.rfind(')')? + 2..];
            let pgrp: i32 = rest.split_whitespace().nth(2)?.parse().ok()?;
            if pgrp != pgid {
                return None;
            }
            let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
            let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
            Some(resident * page)
        })
        .sum()
}

#[cfg(test)]
#[path = "child_tests.rs"]
mod tests;
