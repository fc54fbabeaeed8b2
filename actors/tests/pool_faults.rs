//! Fault handling against the fake CLI: crashes, hangs, cancellation, ignored interrupts,
//! protocol garbage, start-up failures and backoff.

mod common;

use std::time::Duration;

use claude_pool_actors::pool::WorkerEventKind;
use claude_pool_actors::{PoolHandle, Turn, TurnError, TurnEvent};
use common::*;

const READY: Duration = Duration::from_secs(20);

#[tokio::test]
async fn crash_mid_turn_fails_that_turn_and_the_session_resumes_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 2))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let (r1, pid1) = turn(&pool, "c", "before").await;
    assert_eq!(turn_counter(&r1), 1);
    let mut s = pool.submit(Turn::text("c", "[[crash]]")).await.unwrap();
    let mut got_delta = false;
    let err = loop {
        match s.recv().await.expect("a final event, not a silent end") {
            TurnEvent::TextDelta(_) => got_delta = true,
            TurnEvent::Failed(e) => break e,
            TurnEvent::Completed(r) => panic!("crash turn completed: {r:?}"),
            _ => {}
        }
    };
    assert!(got_delta, "deltas before the crash were forwarded");
    assert!(matches!(err, TurnError::WorkerFailed(_)), "{err:?}");
    assert!(s.recv().await.is_none(), "nothing after the failure");
    poll("crashed process gone", Duration::from_secs(30), || {
        !alive(pid1)
    })
    .await;
    poll("restart counted", Duration::from_secs(30), || {
        pool.snapshot().restarts == 1
    })
    .await;
    // The dashboard's view: the crash in the history, the dead process in no worker row.
    let seen = pool.inspect().await.unwrap();
    let kinds: Vec<_> = seen.events.iter().map(|e| (e.worker, e.kind)).collect();
    assert!(
        kinds.iter().any(|(_, k)| *k == WorkerEventKind::Crashed),
        "{kinds:?}"
    );
    assert!(seen.workers.iter().all(|w| w.pid != Some(pid1)));
    assert!(
        seen.workers
            .iter()
            .all(|w| w.state != "busy" && w.turns <= 1)
    );
    // The conversation continues (resumed from its transcript) with its context.
    let (r2, pid2) = turn(&pool, "c", "after").await;
    assert_ne!(pid1, pid2);
    assert_eq!(turn_counter(&r2), 2, "context kept across the crash: {r2}");
    poll("pool healthy again", READY, || pool.snapshot().ready).await;
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn idle_turn_times_out_with_an_interrupt_and_the_worker_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 1);
    cfg.turn_idle_timeout = Duration::from_millis(300);
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let (_, pid1) = turn(&pool, "h", "[[pid]] first").await;
    let r = pool
        .submit(Turn::text("h", "[[hang]]"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(r, Err(TurnError::IdleTimeout));
    let (reply, pid2) = turn(&pool, "h", "next").await;
    assert_eq!(pid1, pid2, "an answered interrupt keeps the process");
    assert_eq!(turn_counter(&reply), 3);
    assert_eq!(pool.snapshot().restarts, 0);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn hard_hang_is_killed_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 1);
    cfg.turn_idle_timeout = Duration::from_millis(300);
    cfg.interrupt_timeout = Duration::from_millis(300);
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let (_, pid1) = turn(&pool, "hh", "first").await;
    let r = pool
        .submit(Turn::text("hh", "[[hang-hard]]"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(r, Err(TurnError::IdleTimeout));
    poll("hung process killed", Duration::from_secs(30), || {
        !alive(pid1)
    })
    .await;
    let (_, pid2) = turn(&pool, "other", "healthy").await;
    assert_ne!(pid1, pid2);
    assert_eq!(pool.snapshot().restarts, 1);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn dropping_the_stream_interrupts_quickly_and_the_worker_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 1))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let (_, pid1) = turn(&pool, "x", "warm").await;
    let mut s = pool
        .submit(Turn::text("x", "[[slow:200]] [[long]]"))
        .await
        .unwrap();
    loop {
        if let Some(TurnEvent::TextDelta(_)) = s.recv().await {
            break;
        }
    }
    let seen = pool.inspect().await.unwrap();
    assert_eq!(seen.workers.len(), 1);
    let w = &seen.workers[0];
    assert_eq!(
        (w.state, w.session.as_deref(), w.pid, w.turns),
        ("busy", Some("x"), Some(pid1), 2)
    );
    let dropped = std::time::Instant::now();
    drop(s);
    poll(
        "interrupt sent and turn ended",
        Duration::from_secs(30),
        || {
            let snap = pool.snapshot();
            snap.interrupts == 1 && snap.workers_idle == 1
        },
    )
    .await;
    assert!(dropped.elapsed() < Duration::from_secs(1));
    let (r, pid2) = turn(&pool, "x", "next").await;
    assert_eq!(pid1, pid2, "the same process serves the next turn");
    assert!(turn_counter(&r) >= 2);
    assert_eq!(pool.snapshot().restarts, 0);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn ignored_interrupt_kills_and_replaces_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 1);
    cfg.interrupt_timeout = Duration::from_millis(300);
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let (_, pid1) = turn(&pool, "i", "warm").await;
    let mut s = pool.submit(Turn::text("i", "[[hang-hard]]")).await.unwrap();
    assert!(matches!(s.recv().await, Some(TurnEvent::Started { .. })));
    drop(s);
    poll(
        "unresponsive process killed",
        Duration::from_secs(30),
        || !alive(pid1),
    )
    .await;
    poll("replacement warm", READY, || {
        let snap = pool.snapshot();
        snap.restarts == 1 && snap.workers_idle == 1
    })
    .await;
    let (_, pid2) = turn(&pool, "j", "fresh").await;
    assert_ne!(pid1, pid2);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn garbage_and_unknown_lines_are_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 1))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let (r, pid1) = turn(
        &pool,
        "g",
        "[[garbage]] [[unknown]] [[retry]] [[stderr]] ok",
    )
    .await;
    assert_eq!(turn_counter(&r), 1);
    let (_, pid2) = turn(&pool, "g", "again").await;
    assert_eq!(pid1, pid2);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn oversize_line_fails_the_turn_and_replaces_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 1);
    cfg.worker.max_line_bytes = 64 * 1024;
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let (_, pid1) = turn(&pool, "o", "warm").await;
    let r = pool
        .submit(Turn::text("o", "[[oversize:200000]]"))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        matches!(r, Err(TurnError::WorkerFailed(ref m)) if m.contains("longer than")),
        "{r:?}"
    );
    poll("worker replaced", READY, || {
        let s = pool.snapshot();
        s.restarts == 1 && s.workers_idle == 1
    })
    .await;
    assert!(!alive(pid1));
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn upstream_errors_and_costs_are_reported_per_turn() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 1))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let r1 = pool
        .submit(Turn::text("u", "[[cost:0.25]] a"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let r2 = pool
        .submit(Turn::text("u", "[[cost:0.5]] b"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!((r1.cost_usd - 0.25).abs() < 1e-9, "{}", r1.cost_usd);
    assert!(
        (r2.cost_usd - 0.5).abs() < 1e-9,
        "per-turn, not cumulative: {}",
        r2.cost_usd
    );
    let e = pool
        .submit(Turn::text("u", "[[error:529]]"))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        matches!(
            e,
            Err(TurnError::Upstream {
                status: Some(529),
                ..
            })
        ),
        "{e:?}"
    );
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn failing_start_is_backed_off_and_visible_in_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 1);
    cfg.worker
        .env
        .insert("FAKE_CLAUDE_FAIL_START".into(), "1".into());
    cfg.backoff.min_delay = Duration::from_millis(50);
    cfg.backoff.max_delay = Duration::from_millis(400);
    cfg.backoff.jitter = 0.0;
    cfg.queue_timeout = Duration::from_millis(500);
    let pool = PoolHandle::start(cfg).await.unwrap();
    poll("several failed starts", Duration::from_secs(30), || {
        pool.snapshot().spawn_failures >= 4
    })
    .await;
    let mut watch = pool.watch();
    // (The borrow returned by wait_for is dropped at once: holding it would block the pool.)
    let seen = tokio::time::timeout(
        Duration::from_secs(5),
        watch.wait_for(|s| s.restart_backoff >= Duration::from_millis(200)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(seen, "backoff grows and shows in the snapshot");
    let s = pool.snapshot();
    assert!(!s.ready);
    let seen = pool.inspect().await.unwrap();
    assert!(seen.events.len() >= 4);
    assert!(
        seen.events
            .iter()
            .all(|e| e.kind == WorkerEventKind::StartFailed && !e.detail.is_empty()),
        "{:?}",
        seen.events
    );
    // A turn waits, then times out cleanly instead of hanging.
    let r = pool
        .submit(Turn::text("z", "hi"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(r, Err(TurnError::QueueTimeout));
    pool.shutdown(Duration::from_secs(2)).await;
}
