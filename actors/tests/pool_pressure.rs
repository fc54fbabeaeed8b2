//! The pool under pressure, with the fake CLI: new conversations on a full pool take warm
//! processes, and conversations that outnumber workers take turns in arrival order.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claude_pool_actors::{Handoff, PoolHandle, Turn, TurnEvent};
use common::*;

const READY: Duration = Duration::from_secs(10);

/// A burst of new conversations on a pool whose workers all hold a conversation runs on those
/// same warm processes, handed over in place: no process is started for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_conversations_on_a_full_pool_run_on_its_warm_processes() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 4, 4);
    cfg.min_residency = Duration::from_secs(2);
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let mut warm = HashSet::new();
    for s in ["held-1", "held-2", "held-3", "held-4"] {
        warm.insert(turn(&pool, s, "[[pid]] hello").await.1);
    }
    assert_eq!(warm.len(), 4, "every worker holds a conversation");
    let burst: Vec<_> = (0..8)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move { turn(&pool, &format!("new-{i}"), "[[pid]] hi").await })
        })
        .collect();
    for t in burst {
        let (reply, pid) = t.await.unwrap();
        assert_eq!(turn_counter(&reply), 1, "a fresh conversation: {reply}");
        assert!(warm.contains(&pid), "ran on a warm process, not a new one");
    }
    let snap = pool.snapshot();
    assert_eq!(snap.resumes, 0);
    assert_eq!(snap.evictions, 8, "{snap:?}");
    pool.shutdown(Duration::from_secs(5)).await;
}

/// With `fresh` handoff, a full pool keeps a spare: an idle conversation gives its worker up
/// ahead of need, and the next new conversation runs on the process started in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fresh_handoff_a_full_pool_keeps_a_spare_for_the_next_newcomer() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 2, 2);
    cfg.worker.handoff = Handoff::Fresh;
    cfg.spare_workers = 1;
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let (_, a) = turn(&pool, "a", "[[pid]] one").await;
    let (_, b) = turn(&pool, "b", "[[pid]] one").await;
    poll("a spare is ready at max_workers", READY, || {
        let s = pool.snapshot();
        s.workers_spare == 1 && s.workers_idle == 2 && s.spare_releases >= 1
    })
    .await;
    let spare = pool
        .inspect()
        .await
        .unwrap()
        .workers
        .into_iter()
        .find(|w| w.session.is_none())
        .and_then(|w| w.pid)
        .expect("the spare's pid");
    assert!(spare != a && spare != b);
    let (reply, pid) = turn(&pool, "c", "[[pid]] newcomer").await;
    assert_eq!(pid, spare, "the newcomer ran on the spare: {reply}");
    // The conversation that gave its worker up goes on, resumed.
    let (reply, _) = turn(&pool, "a", "two").await;
    assert_eq!(turn_counter(&reply), 2, "{reply}");
    pool.shutdown(Duration::from_secs(5)).await;
}

/// Three conversations sending turns back to back on one worker: each turn of a conversation
/// queues behind the turns that were waiting before it, so they take turns instead of one
/// keeping the worker (even within `min_residency`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_outnumbering_workers_take_turns_in_arrival_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fake_config(dir.path(), 1, 1);
    cfg.min_residency = Duration::from_secs(30);
    cfg.spare_workers = 0;
    let pool = PoolHandle::start(cfg).await.unwrap();
    assert!(pool.wait_ready(READY).await);
    let order = Arc::new(Mutex::new(Vec::new()));
    // The first turns are queued in order before any of them can finish.
    let mut firsts = Vec::new();
    for s in ["a", "b", "c"] {
        firsts.push(
            pool.submit(Turn::text(s, "[[slow:20]] turn"))
                .await
                .unwrap(),
        );
    }
    let tasks: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .zip(firsts)
        .map(|(s, first)| {
            let (pool, order) = (pool.clone(), order.clone());
            tokio::spawn(async move {
                let mut stream = first;
                for k in 1..=4 {
                    loop {
                        match stream.recv().await {
                            Some(TurnEvent::Completed(r)) => {
                                assert_eq!(turn_counter(&r.text), k, "context kept: {}", r.text);
                                break;
                            }
                            Some(TurnEvent::Failed(e)) => {
                                let seen = pool.inspect().await;
                                panic!("{s}: {e}; {:?}; {seen:?}", pool.snapshot())
                            }
                            Some(_) => {}
                            None => panic!("{s}: no result"),
                        }
                    }
                    order.lock().unwrap().push(s);
                    if k < 4 {
                        stream = pool
                            .submit(Turn::text(s, "[[slow:20]] turn"))
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    for window in order.windows(3) {
        let distinct: HashSet<_> = window.iter().collect();
        assert_eq!(
            distinct.len(),
            3,
            "every conversation gets a turn per round: {order:?}"
        );
    }
    pool.shutdown(Duration::from_secs(5)).await;
}
