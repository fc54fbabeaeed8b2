//! Process hygiene: many crash/restart cycles leave no zombie and no leaked descriptor, and
//! shutdown leaves no descendant process — grandchildren included. One test per binary
//! section so /proc counts are not disturbed by other tests.

mod common;

use std::time::Duration;

use claude_pool_actors::{PoolHandle, Turn, TurnError};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_cycles_leak_nothing_and_shutdown_leaves_no_descendant() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 1))
        .await
        .unwrap();
    assert!(pool.wait_ready(Duration::from_secs(20)).await);
    // Warm up once so lazily opened descriptors (runtime, registry) are counted as baseline.
    let _ = turn(&pool, "warm", "hi").await;
    let fds_before = open_fds();

    for i in 0..200 {
        let r = pool
            .submit(Turn::text(format!("crash-{i}"), "[[crash]]"))
            .await
            .unwrap()
            .collect()
            .await;
        assert!(
            matches!(r, Err(TurnError::WorkerFailed(_))),
            "cycle {i}: {r:?}"
        );
    }
    poll("pool recovered", Duration::from_secs(30), || {
        let s = pool.snapshot();
        s.restarts == 200 && s.ready
    })
    .await;
    let _ = turn(&pool, "after", "still works").await;
    poll("no zombies", Duration::from_secs(30), || zombies() == 0).await;
    let fds_after = open_fds();
    assert!(
        fds_after <= fds_before + 2,
        "descriptors leaked: {fds_before} before, {fds_after} after"
    );

    // A grandchild that holds the worker's stdout must not survive shutdown either.
    let (reply, pid) = turn(&pool, "gc", "[[grandchild]]").await;
    let grandchild: u32 = reply
        .split("grandchild=")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .expect("fake CLI reports its grandchild pid");
    assert!(alive(grandchild));
    assert!(descendants().contains(&pid));
    pool.shutdown(Duration::from_secs(5)).await;
    poll("no descendant left", Duration::from_secs(30), || {
        descendants().is_empty() && !alive(grandchild) && group_members(&[pid]).is_empty()
    })
    .await;
    assert_eq!(zombies(), 0);
}
