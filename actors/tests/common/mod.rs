//! Shared helpers for the pool's integration tests: configs pointing at the fake CLI (at the
//! real one in `real`), a turn with attachments, polling with deadlines, and /proc inspection
//! for leaks.
#![allow(dead_code, unreachable_pub)]

pub mod real;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use claude_pool_actors::{
    BackoffConfig, Block, PoolConfig, PoolHandle, Source, Turn, TurnEvent, WorkerConfig,
};

/// The fake CLI built with this crate.
pub fn fake_cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fake-claude"))
}

/// A pool config for the fake CLI with short timeouts, rooted in `dir`.
pub fn fake_config(dir: &Path, min: usize, max: usize) -> PoolConfig {
    PoolConfig {
        min_workers: min,
        max_workers: max,
        queue_capacity: 16,
        queue_timeout: Duration::from_secs(10),
        turn_idle_timeout: Duration::from_secs(10),
        interrupt_timeout: Duration::from_millis(500),
        stop_grace: Duration::from_secs(2),
        backoff: BackoffConfig {
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            jitter: 0.2,
            max_restarts: 1000,
            window: Duration::from_secs(60),
        },
        min_residency: Duration::ZERO,
        worker: WorkerConfig {
            command: fake_cli(),
            home: dir.join("home"),
            work_root: dir.join("sessions"),
            startup_timeout: Duration::from_secs(10),
            ..WorkerConfig::default()
        },
        ..PoolConfig::default()
    }
}

/// Polls `cond` every 10 ms until it holds, panicking with `what` after `timeout`.
pub async fn poll(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs one text turn and returns (reply text, worker pid); panics on failure.
pub async fn turn(pool: &PoolHandle, session: &str, text: &str) -> (String, u32) {
    let mut stream = pool
        .submit(Turn::text(session, text))
        .await
        .expect("submitted");
    let mut pid = 0;
    loop {
        match stream.recv().await {
            Some(TurnEvent::Started { pid: p, .. }) => pid = p,
            Some(
                TurnEvent::TextDelta(_)
                | TurnEvent::ThinkingDelta(_)
                | TurnEvent::ThinkingSignature(_)
                | TurnEvent::ToolCalls(_),
            ) => {}
            Some(TurnEvent::Completed(r)) => return (r.text, pid),
            Some(TurnEvent::Failed(e)) => panic!("turn {text:?} failed: {e}"),
            None => panic!("turn {text:?} ended without a result"),
        }
    }
}

/// A 1x1 transparent PNG, base64.
pub const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";
/// `%PDF-1.4\n%fake\n`, base64.
pub const PDF: &str = "JVBERi0xLjQKJWZha2UK";

/// A question with a base64 PNG, a titled PDF, a text document and an image by URL; and how
/// both the fake CLI and the fake Anthropic API describe it in their echo (each attachment with
/// its size and the first 8 hex digits of its decoded bytes' SHA-256).
pub fn attachments() -> (Vec<Block>, &'static str) {
    let base64 = |media_type: &str, data: &str| Source::Base64 {
        media_type: media_type.into(),
        data: data.into(),
    };
    let blocks = vec![
        Block::text("what is this?"),
        Block::Image(base64("image/png", PNG)),
        Block::Document {
            source: base64("application/pdf", PDF),
            title: Some("spec".into()),
        },
        Block::Document {
            source: Source::Text("hello world".into()),
            title: None,
        },
        Block::Image(Source::Url("https://example.com/a.png".into())),
    ];
    let described = "what is this? [image base64 image/png 68 bytes sha256:63ef318d] \
        [document base64 application/pdf 15 bytes sha256:ef381f48] [document text 11 chars] \
        [image url https://example.com/a.png]";
    (blocks, described)
}

/// The `[turn=k]` counter in a fake CLI reply.
pub fn turn_counter(reply: &str) -> u32 {
    let start = reply.rfind("[turn=").expect("reply has a turn counter") + 6;
    reply[start..]
        .trim_end_matches(']')
        .split(']')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("turn counter is a number")
}

/// (pid, ppid, pgrp, state) of every process on the machine.
pub fn processes() -> Vec<(u32, u32, u32, char)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut f = rest.split_whitespace();
            let state = f.next()?.chars().next()?;
            let ppid = f.next()?.parse().ok()?;
            let pgrp = f.next()?.parse().ok()?;
            Some((pid, ppid, pgrp, state))
        })
        .collect()
}

/// Live processes that are descendants of this test process.
pub fn descendants() -> Vec<u32> {
    let me = std::process::id();
    let procs = processes();
    let mut found = vec![me];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        for (pid, ppid, _, state) in &procs {
            if *ppid == parent && *state != 'Z' && !found.contains(pid) {
                found.push(*pid);
            }
        }
        i += 1;
    }
    found.retain(|p| *p != me);
    found
}

/// Zombie children of this test process.
pub fn zombies() -> usize {
    let me = std::process::id();
    processes()
        .iter()
        .filter(|(_, ppid, _, state)| *ppid == me && *state == 'Z')
        .count()
}

/// Processes (not zombies) in any of these process groups.
pub fn group_members(pgids: &[u32]) -> Vec<u32> {
    processes()
        .iter()
        .filter(|(_, _, pgrp, state)| pgids.contains(pgrp) && *state != 'Z')
        .map(|(pid, ..)| *pid)
        .collect()
}

/// Is this pid alive (and not a zombie)?
pub fn alive(pid: u32) -> bool {
    processes()
        .iter()
        .any(|(p, _, _, s)| *p == pid && *s != 'Z')
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}
