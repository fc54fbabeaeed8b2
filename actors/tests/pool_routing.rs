//! Routing behaviour of the pool against the fake CLI: affinity, parallelism, queueing,
//! eviction and resume, resize.

mod common;

use std::time::Duration;

use claude_pool_actors::{Handoff, PoolHandle, SubmitError, Turn, TurnError, TurnEvent};
use common::*;

const READY: Duration = Duration::from_secs(20);

#[tokio::test]
async fn same_session_stays_on_its_worker_and_keeps_context() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 2, 4))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let (r1, pid1) = turn(&pool, "s1", "hello").await;
    let (r2, pid2) = turn(&pool, "s1", "again").await;
    let (r3, pid3) = turn(&pool, "s1", "third").await;
    assert!(r1.starts_with("echo: hello"), "{r1}");
    assert_eq!(
        (turn_counter(&r1), turn_counter(&r2), turn_counter(&r3)),
        (1, 2, 3)
    );
    assert_eq!(pid1, pid2);
    assert_eq!(pid2, pid3);
    let s = pool.snapshot();
    assert_eq!(s.turns_started, 3);
    assert_eq!(s.sessions, 1);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn parallel_sessions_get_their_own_workers() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 4))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            turn(&pool, &format!("par-{i}"), "[[slow:50]] hi").await
        }));
    }
    let mut pids = Vec::new();
    for t in tasks {
        let (reply, pid) = t.await.unwrap();
        assert_eq!(turn_counter(&reply), 1);
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(
        pids.len(),
        4,
        "each parallel session ran on its own process"
    );
    assert_eq!(pool.snapshot().workers_idle, 4);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn turns_of_one_session_run_in_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 2, 2))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let mut streams = Vec::new();
    for i in 0..5 {
        streams.push(
            pool.submit(Turn::text("ordered", format!("[[slow:5]] m{i}")))
                .await
                .unwrap(),
        );
    }
    for (i, s) in streams.into_iter().enumerate() {
        let r = s.collect().await.unwrap();
        assert!(r.text.contains(&format!("m{i}")), "{}", r.text);
        assert_eq!(turn_counter(&r.text), i as u32 + 1);
    }
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn full_queue_rejects_at_once_and_queue_timeout_fails_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 1);
    cfg.queue_capacity = 2;
    cfg.queue_timeout = Duration::from_millis(400);
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    // Occupy the only worker.
    let busy = pool.submit(Turn::text("busy", "[[hang]]")).await.unwrap();
    poll("worker busy", Duration::from_secs(30), || {
        pool.snapshot().workers_busy == 1
    })
    .await;
    let q1 = pool.submit(Turn::text("q1", "a")).await.unwrap();
    let q2 = pool.submit(Turn::text("q2", "b")).await.unwrap();
    let started = std::time::Instant::now();
    let rejected = pool.submit(Turn::text("q3", "c")).await;
    assert!(
        matches!(rejected, Err(SubmitError::QueueFull { .. })),
        "{rejected:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "rejection is immediate"
    );
    assert_eq!(pool.snapshot().queue_rejections, 1);
    assert_eq!(q1.collect().await, Err(TurnError::QueueTimeout));
    assert_eq!(q2.collect().await, Err(TurnError::QueueTimeout));
    assert_eq!(pool.snapshot().queue_timeouts, 2);
    drop(busy);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_busy_session_does_not_block_others_in_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 2, 2))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let (_, _) = turn(&pool, "a", "warm a").await;
    let (_, _) = turn(&pool, "b", "warm b").await;
    // a is busy for a while and has a second turn queued behind it.
    let a1 = pool
        .submit(Turn::text("a", "[[slow:100]] long"))
        .await
        .unwrap();
    let a2 = pool.submit(Turn::text("a", "after")).await.unwrap();
    // b must not wait behind a's queued turn.
    let t = std::time::Instant::now();
    let (rb, _) = turn(&pool, "b", "quick").await;
    assert_eq!(turn_counter(&rb), 2);
    let b_elapsed = t.elapsed();
    let ra1 = a1.collect().await.unwrap();
    assert!(t.elapsed() > b_elapsed, "b finished before a's slow turn");
    assert_eq!(turn_counter(&ra1.text), 2);
    assert_eq!(turn_counter(&a2.collect().await.unwrap().text), 3);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn lru_session_is_evicted_at_max_and_resumed_later_with_context() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 2);
    cfg.worker.handoff = Handoff::Clear;
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let (a1, pid_a) = turn(&pool, "A", "one").await;
    let (a2, _) = turn(&pool, "A", "two").await;
    let (_, pid_b) = turn(&pool, "B", "b").await;
    turn(&pool, "B", "b two").await;
    assert_eq!((turn_counter(&a1), turn_counter(&a2)), (1, 2));
    assert_ne!(pid_a, pid_b);
    // C needs a worker: the pool is full, both conversations go on and A is least recently
    // used → evicted by /clear. (A finished one-shot conversation would go first.)
    let (c1, pid_c) = turn(&pool, "C", "c").await;
    assert_eq!(turn_counter(&c1), 1, "C starts a fresh conversation");
    assert_eq!(
        pid_c, pid_a,
        "A's process was handed to C without a respawn"
    );
    assert_eq!(pool.snapshot().evictions, 1);
    // A comes back: rebuilt on a new process with --resume, context kept.
    let mut s = pool.submit(Turn::text("A", "three")).await.unwrap();
    let mut resumed = false;
    let reply = loop {
        match s.recv().await.unwrap() {
            TurnEvent::Started { resumed: r, .. } => resumed = r,
            TurnEvent::Completed(r) => break r.text,
            TurnEvent::Failed(e) => panic!("{e}"),
            _ => {}
        }
    };
    assert!(
        resumed,
        "the turn reports that its conversation was resumed"
    );
    assert_eq!(
        turn_counter(&reply),
        3,
        "context survived eviction: {reply}"
    );
    let snap = pool.snapshot();
    assert_eq!(snap.resumes, 1);
    assert!(snap.workers_idle + snap.workers_busy + snap.workers_starting <= 2);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn resize_grows_and_shrinks_live() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 2))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    assert_eq!(pool.snapshot().workers_idle, 1);
    pool.resize(4, 6).await.unwrap();
    poll("4 warm workers", READY, || {
        pool.snapshot().workers_idle == 4
    })
    .await;
    assert!(pool.snapshot().ready);
    pool.resize(1, 1).await.unwrap();
    poll("shrunk to 1", Duration::from_secs(30), || {
        let s = pool.snapshot();
        s.workers_idle == 1 && s.workers_stopping == 0 && s.workers_starting == 0
    })
    .await;
    assert_eq!(pool.snapshot().max_workers, 1);
    assert!(pool.resize(3, 2).await.is_err(), "min above max is refused");
    let (r, _) = turn(&pool, "after-resize", "ok").await;
    assert_eq!(turn_counter(&r), 1);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn ended_session_hands_its_worker_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 1);
    cfg.worker.handoff = Handoff::Clear;
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let (_, pid1) = turn(&pool, "x", "one").await;
    pool.end_session("x".into());
    poll("session forgotten", Duration::from_secs(30), || {
        pool.snapshot().sessions == 0
    })
    .await;
    let (r, pid2) = turn(&pool, "y", "fresh").await;
    assert_eq!(pid1, pid2, "same process, new conversation");
    assert_eq!(turn_counter(&r), 1);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn reconfigure_applies_sizes_and_timeouts_live() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 1);
    let pool = PoolHandle::start(cfg.clone()).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    cfg.min_workers = 2;
    cfg.max_workers = 3;
    cfg.turn_idle_timeout = Duration::from_millis(300);
    pool.reconfigure(cfg.clone()).await.unwrap();
    poll("grown to 2 warm", READY, || {
        pool.snapshot().workers_idle == 2
    })
    .await;
    assert_eq!(pool.snapshot().max_workers, 3);
    let started = std::time::Instant::now();
    let r = pool
        .submit(Turn::text("slow", "[[hang]]"))
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        r,
        Err(TurnError::IdleTimeout),
        "the new idle timeout applies"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    cfg.max_workers = 0;
    assert!(
        pool.reconfigure(cfg).await.is_err(),
        "invalid sizes are refused"
    );
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn fresh_handoff_gives_each_conversation_its_own_process_and_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 2);
    cfg.worker.handoff = Handoff::Fresh;
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let (_, pid_a) = turn(&pool, "A", "one").await;
    let (_, pid_b) = turn(&pool, "B", "one").await;
    // The pool is full: the least recently used conversation (A) gives its worker up, for a
    // spare started ahead of need or for C itself; its process is stopped and C runs on a
    // fresh process, never on A's.
    let (c, pid_c) = turn(&pool, "C", "one").await;
    assert_eq!(turn_counter(&c), 1);
    assert_ne!(pid_c, pid_a);
    assert_ne!(pid_c, pid_b);
    let snap = pool.snapshot();
    assert!(snap.evictions + snap.spare_releases >= 1, "{snap:?}");
    // A resumes in its own directory with its context.
    let (a2, _) = turn(&pool, "A", "two").await;
    assert_eq!(turn_counter(&a2), 2, "{a2}");
    pool.end_session("A".into());
    pool.end_session("B".into());
    pool.end_session("C".into());
    pool.shutdown(Duration::from_secs(5)).await;
    let left: Vec<_> = std::fs::read_dir(dir.path().join("sessions"))
        .unwrap()
        .collect();
    assert!(
        left.is_empty(),
        "directories of forgotten conversations are removed: {left:?}"
    );
}

/// Readiness means "can take traffic": it stays true while every worker is busy and more are
/// starting under load (it used to require `min_workers` idle or busy ones), and turns false
/// when the pool drains.
#[tokio::test]
async fn the_pool_is_serving_under_load_while_workers_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 2, 6);
    // Workers that take a while to start, so the samples below see them starting (a fake CLI
    // otherwise starts within one sampling interval on an idle machine).
    cfg.worker
        .env
        .insert("FAKE_CLAUDE_STARTUP_DELAY_MS".into(), "200".into());
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            turn(&pool, &format!("load-{i}"), "[[slow:100]] busy").await
        }));
    }
    let mut seen_starting = false;
    let mut samples = 0;
    while !tasks.iter().all(|t| t.is_finished()) {
        let s = pool.snapshot();
        seen_starting |= s.workers_starting > 0;
        assert!(s.serving, "not serving under load: {s:?}");
        samples += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        seen_starting,
        "workers were started for the load ({samples} samples)"
    );
    let draining = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.shutdown(Duration::from_secs(5)).await })
    };
    poll(
        "not serving while draining",
        Duration::from_secs(30),
        || !pool.snapshot().serving,
    )
    .await;
    draining.await.unwrap();
}
