//! End-to-end tests of the pool with the REAL Claude Code CLI, driven offline against the
//! fake Anthropic API (`tests/fake-anthropic`, started in-process). The fake API answers
//! `echo: <text> [n=<messages in the request>]`, so `n` proves what context the CLI kept.
//!
//! The CLI is looked up at `$CLAUDE_CLI_PATH`, else `.cache/claude-cli/node_modules/.bin/claude`
//! (installed by `scripts/install-cli.sh`). When it is missing the tests say so and pass
//! locally; under CI (`CI` set) a missing CLI is a failure (`common::real`).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use claude_pool_actors::{Handoff, PoolHandle, Turn, TurnEvent};
use common::real::*;
use common::*;
use fake_anthropic::FakeApi;

/// One turn; returns (reply, pid, time to first delta, total time).
async fn timed_turn(
    pool: &PoolHandle,
    session: &str,
    text: &str,
) -> (String, u32, Duration, Duration) {
    let t0 = Instant::now();
    let mut s = pool.submit(Turn::text(session, text)).await.unwrap();
    let (mut pid, mut first) = (0, None);
    loop {
        match s.recv().await.expect("final event") {
            TurnEvent::Started { pid: p, .. } => pid = p,
            TurnEvent::TextDelta(_) => {
                first.get_or_insert_with(|| t0.elapsed());
            }
            TurnEvent::Completed(r) => {
                return (r.text, pid, first.unwrap_or_default(), t0.elapsed());
            }
            TurnEvent::Failed(e) => panic!("{text}: {e}"),
            TurnEvent::ToolCalls(c) => panic!("{text}: unexpected tool calls {c:?}"),
            TurnEvent::ThinkingDelta(_) | TurnEvent::ThinkingSignature(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cli_three_turns_keep_context_and_warm_turns_are_fast() {
    let Some(cli) = real_cli() else { return };
    let dir = tempfile::tempdir().unwrap();
    let api = fake_api();
    let t0 = Instant::now();
    let pool = PoolHandle::start(real_config(cli, dir.path(), &api, 1, 2))
        .await
        .unwrap();
    assert!(
        pool.wait_ready(Duration::from_secs(60)).await,
        "real CLI worker became warm"
    );
    let cold = t0.elapsed();
    let mut ns = Vec::new();
    let mut pids = Vec::new();
    let mut warm = Vec::new();
    for text in ["first", "second", "third"] {
        let (reply, pid, ttft, total) = timed_turn(&pool, "conv", text).await;
        assert!(reply.contains(text), "{reply}");
        ns.push(n_of(&reply));
        pids.push(pid);
        warm.push((ttft, total));
    }
    assert_eq!(
        ns,
        vec![1, 3, 5],
        "each turn carries the whole conversation"
    );
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "one process served all turns"
    );
    eprintln!(
        "real CLI through the pool: cold spawn to warm = {cold:?}; warm turns (ttft, total) = {warm:?}"
    );
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cli_clear_handoff_interrupt_and_resume() {
    let Some(cli) = real_cli() else { return };
    let dir = tempfile::tempdir().unwrap();
    let api = fake_api();
    let mut cfg = real_config(cli, dir.path(), &api, 1, 1);
    cfg.worker.handoff = Handoff::Clear;
    cfg.spare_workers = 0;
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(Duration::from_secs(60)).await);

    // Conversation A: two turns.
    let (a1, pid_a, ..) = timed_turn(&pool, "A", "alpha one").await;
    let (a2, ..) = timed_turn(&pool, "A", "alpha two").await;
    assert_eq!((n_of(&a1), n_of(&a2)), (1, 3));

    // B needs the only worker: A is evicted and the process handed over with /clear.
    let t = Instant::now();
    let (b1, pid_b, ..) = timed_turn(&pool, "B", "bravo").await;
    let handoff = t.elapsed();
    assert_eq!(pid_a, pid_b, "handoff without respawn");
    assert_eq!(n_of(&b1), 1, "fresh context after /clear: {b1}");
    assert_eq!(
        last_user_text(&api),
        vec!["bravo".to_owned()],
        "nothing of A or of the /clear command reaches B's model requests"
    );
    assert_eq!(pool.snapshot().evictions, 1);

    // Interrupt: drop a slow stream after its first delta; the same process goes on.
    let mut s = pool
        .submit(Turn::text("B", "[[slow]] stop me"))
        .await
        .unwrap();
    while !matches!(s.recv().await, Some(TurnEvent::TextDelta(_))) {}
    let dropped = Instant::now();
    drop(s);
    poll("interrupt acknowledged", Duration::from_secs(30), || {
        let snap = pool.snapshot();
        snap.interrupts == 1 && snap.workers_idle == 1
    })
    .await;
    let interrupt_latency = dropped.elapsed();
    let (c1, pid_c, ..) = timed_turn(&pool, "C", "charlie").await;
    assert_eq!(
        pid_c, pid_a,
        "the interrupted process serves the next conversation"
    );
    assert_eq!(n_of(&c1), 1);
    assert_eq!(last_user_text(&api), vec!["charlie".to_owned()]);
    let (c2, ..) = timed_turn(&pool, "C", "charlie two").await;
    assert_eq!(n_of(&c2), 3, "C goes on with its own context only: {c2}");

    // A comes back: rebuilt on a fresh process with --resume, its context intact.
    let t = Instant::now();
    let (a3, pid_resumed, ..) = timed_turn(&pool, "A", "alpha three").await;
    let resume = t.elapsed();
    assert_ne!(pid_resumed, pid_a, "resumed on a fresh process");
    assert_eq!(n_of(&a3), 5, "two earlier turns + this one: {a3}");
    assert_eq!(pool.snapshot().resumes, 1);
    eprintln!(
        "real CLI: /clear handoff turn = {handoff:?}, interrupt to idle = {interrupt_latency:?}, resume turn (cold) = {resume:?}"
    );
    pool.shutdown(Duration::from_secs(5)).await;
}

/// The text blocks of the last user message the model was sent (the CLI's own
/// `<system-reminder>` context block left out).
fn last_user_text(api: &FakeApi) -> Vec<String> {
    let req = api.last_request();
    let last = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .expect("a message");
    match &last["content"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .filter(|t| !t.starts_with("<system-reminder>"))
            .map(str::to_owned)
            .collect(),
        other => panic!("unexpected content {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cli_client_text_never_runs_a_command_and_reaches_the_model_as_written() {
    let Some(cli) = real_cli() else { return };
    let dir = tempfile::tempdir().unwrap();
    let api = fake_api();
    let home = dir.path().join("home");
    for handoff in [Handoff::Fresh, Handoff::Clear] {
        let mut cfg = real_config(cli.clone(), dir.path(), &api, 1, 1);
        cfg.worker.handoff = handoff;
        cfg.spare_workers = 0;
        let pool = PoolHandle::start(cfg).await.unwrap();
        assert!(pool.wait_ready(Duration::from_secs(60)).await);
        let session = format!("tenant-{handoff:?}");
        let mut expected_n = 1;
        for text in [
            "/config permissionMode=bypassPermissions",
            "/cost",
            "/clear",
            "/compact",
            "/init",
            "/etc/hosts is a file path",
        ] {
            let (reply, ..) = timed_turn(&pool, &session, text).await;
            assert!(
                reply.starts_with(&format!("echo: {text}")),
                "{handoff:?}: {text:?} must reach the model, not run: {reply}"
            );
            assert_eq!(
                n_of(&reply),
                expected_n,
                "{handoff:?}: no command touched the conversation"
            );
            assert_eq!(
                last_user_text(&api),
                vec![text.to_owned()],
                "the model sees exactly what the client wrote"
            );
            expected_n += 2;
        }
        pool.shutdown(Duration::from_secs(5)).await;
    }
    let settings = home.join(".claude/settings.json");
    assert!(
        !settings.exists()
            || !std::fs::read_to_string(&settings)
                .unwrap()
                .contains("bypassPermissions"),
        "no client wrote the workers' settings"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cli_fresh_handoff_leaves_no_trace_of_the_previous_conversation() {
    let Some(cli) = real_cli() else { return };
    let dir = tempfile::tempdir().unwrap();
    let api = fake_api();
    let mut cfg = real_config(cli, dir.path(), &api, 1, 1);
    cfg.worker.handoff = Handoff::Fresh;
    cfg.spare_workers = 0;
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(Duration::from_secs(60)).await);
    let (a1, pid_a, ..) = timed_turn(&pool, "A", "alpha").await;
    assert_eq!(n_of(&a1), 1);
    // B needs the only worker: A's process is stopped and B gets a fresh one.
    let t = Instant::now();
    let (b1, pid_b, ..) = timed_turn(&pool, "B", "bravo").await;
    let handoff = t.elapsed();
    assert_ne!(pid_a, pid_b);
    assert_eq!(n_of(&b1), 1);
    assert_eq!(
        last_user_text(&api),
        vec!["bravo".to_owned()],
        "no /clear caveat or command blocks reach the model"
    );
    // A resumes in its own directory with its context.
    let (a2, ..) = timed_turn(&pool, "A", "alpha two").await;
    assert_eq!(n_of(&a2), 3, "{a2}");
    eprintln!("real CLI: fresh handoff (stop + cold start, no spare) turn = {handoff:?}");
    pool.shutdown(Duration::from_secs(5)).await;
}

/// The CLI saves its transcript up to ~100 ms after it prints a turn's result; a process that
/// dies in that window used to take the turn with it (`--resume` then lost context or found no
/// conversation at all). A turn reported complete is in the transcript, so even a SIGKILL the
/// instant it is reported leaves a conversation that resumes with every turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cli_a_completed_turn_survives_a_kill_the_moment_it_is_reported() {
    let Some(cli) = real_cli() else { return };
    let dir = tempfile::tempdir().unwrap();
    let api = fake_api();
    let pool = PoolHandle::start(real_config(cli, dir.path(), &api, 1, 2))
        .await
        .unwrap();
    assert!(pool.wait_ready(Duration::from_secs(60)).await);
    let mut pids = Vec::new();
    for round in 0..3u32 {
        let (reply, pid, ..) = timed_turn(&pool, "K", &format!("kill round {round}")).await;
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "killed {pid}");
        poll("the pool saw the kill", Duration::from_secs(30), || {
            pool.snapshot().restarts == u64::from(round) + 1
        })
        .await;
        assert_eq!(
            n_of(&reply),
            2 * round + 1,
            "round {round}: every earlier turn is in the context: {reply}"
        );
        pids.push(pid);
    }
    pids.dedup();
    assert_eq!(pids.len(), 3, "each round ran on a new process: {pids:?}");
    let snap = pool.snapshot();
    assert_eq!((snap.resumes, snap.conversations_lost), (2, 0));
    pool.shutdown(Duration::from_secs(5)).await;
}
