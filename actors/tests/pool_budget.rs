//! Per-turn budgets against the fake CLI: the mid-turn cost cap interrupts a running turn, the
//! caller's cut ends one as completed, and the ledger hears about every turn that ran, however
//! it ended.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use claude_pool_actors::{Ledger, PoolHandle, Turn, TurnBudget, TurnError, TurnEvent, TurnSpend};
use common::*;

const READY: Duration = Duration::from_secs(20);

fn recorder() -> (Ledger, Arc<Mutex<Vec<TurnSpend>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (Ledger::new(move |s| sink.lock().unwrap().push(s)), seen)
}

fn budgeted(session: &str, text: &str, max: Option<f64>, ledger: &Ledger) -> Turn {
    let mut t = Turn::text(session, text);
    t.budget = TurnBudget {
        max_cost_usd: max,
        ledger: Some(ledger.clone()),
        cut: None,
    };
    t
}

#[tokio::test]
async fn a_turn_whose_streamed_usage_passes_the_cap_is_interrupted_mid_turn() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 1))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let (ledger, seen) = recorder();
    // 100,000 output tokens at Sonnet's $15/M ≈ $1.50, reported before the (slow, long) text.
    let mut s = pool
        .submit(budgeted(
            "b",
            "[[tokens:100000]] [[long]] [[slow:20]] [[pid]]",
            Some(0.10),
            &ledger,
        ))
        .await
        .unwrap();
    let mut deltas = 0;
    let err = loop {
        match s.recv().await.expect("a final event") {
            TurnEvent::TextDelta(_) => deltas += 1,
            TurnEvent::Failed(e) => break e,
            TurnEvent::Completed(r) => panic!("an over-cap turn completed: {r:?}"),
            _ => {}
        }
    };
    match err {
        TurnError::CostLimitExceeded {
            cost_usd,
            limit_usd,
        } => {
            assert_eq!(limit_usd, 0.10);
            assert!(cost_usd > 1.0, "the estimate is reported: {cost_usd}");
        }
        other => panic!("expected CostLimitExceeded, got {other:?}"),
    }
    assert!(deltas < 10, "stopped early, after {deltas} of ~190 deltas");
    poll(
        "the ledger heard of the turn",
        Duration::from_secs(30),
        || seen.lock().unwrap().len() == 1,
    )
    .await;
    let spend = seen.lock().unwrap()[0].clone();
    assert_eq!(spend.status, "cost_limit");
    assert_eq!(spend.usage.output_tokens, 100_000);
    // The worker was interrupted, not killed: the conversation goes on in the same process.
    let (reply, _) = turn(&pool, "b", "after").await;
    assert!(reply.contains("echo: after"), "{reply}");
    assert_eq!(pool.snapshot().restarts, 0);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_ledger_hears_of_completed_capped_and_abandoned_turns() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 1))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let (ledger, seen) = recorder();
    // Completed, with the CLI's own cost.
    let r = pool
        .submit(budgeted("l", "cheap [[cost:0.002]]", Some(1.0), &ledger))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!((r.cost_usd - 0.002).abs() < 1e-9);
    // Over the cap only by the CLI's final figure (no usage streamed): fails at the end.
    let e = pool
        .submit(budgeted("l", "dear [[cost:2.5]]", Some(1.0), &ledger))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap_err();
    assert!(
        matches!(e, TurnError::CostLimitExceeded { cost_usd, .. } if (cost_usd - 2.5).abs() < 1e-9),
        "{e:?}"
    );
    // Abandoned by its caller mid-stream: still reported.
    let mut s = pool
        .submit(budgeted(
            "l",
            "[[long]] [[slow:20]] [[cost:0.003]]",
            None,
            &ledger,
        ))
        .await
        .unwrap();
    while !matches!(s.recv().await, Some(TurnEvent::TextDelta(_))) {}
    drop(s);
    poll("three spend reports", Duration::from_secs(30), || {
        seen.lock().unwrap().len() == 3
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    let statuses: Vec<&str> = seen.iter().map(|s| s.status).collect();
    assert_eq!(statuses, ["completed", "cost_limit", "interrupted"]);
    assert!((seen[1].cost_usd - 2.5).abs() < 1e-9);
    assert!((seen[2].cost_usd - 0.003).abs() < 1e-9, "{:?}", seen[2]);
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_cut_turn_completes_with_what_was_said_and_the_worker_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 1))
        .await
        .unwrap();
    assert!(pool.wait_ready(READY).await);
    let (ledger, seen) = recorder();
    let cut = tokio_util::sync::CancellationToken::new();
    let mut t = budgeted("c", "[[long]] [[slow:20]] [[cost:0.004]]", None, &ledger);
    t.budget.cut = Some(cut.clone());
    let mut s = pool.submit(t).await.unwrap();
    let mut deltas = 0;
    let result = loop {
        match s.recv().await.expect("a final event") {
            TurnEvent::TextDelta(_) => {
                deltas += 1;
                if deltas == 3 {
                    cut.cancel();
                }
            }
            TurnEvent::Completed(r) => break r,
            TurnEvent::Failed(e) => panic!("a cut turn failed: {e:?}"),
            _ => {}
        }
    };
    assert!(result.cut, "{result:?}");
    assert!(
        deltas < 20,
        "stopped soon after the cut, after {deltas} of ~200 deltas"
    );
    poll("the ledger heard of it", Duration::from_secs(30), || {
        seen.lock().unwrap().len() == 1
    })
    .await;
    assert_eq!(seen.lock().unwrap()[0].status, "completed");
    // Interrupted, not killed: the conversation goes on in the same process.
    let (reply, _) = turn(&pool, "c", "after the cut").await;
    assert!(reply.contains("echo: after the cut"), "{reply}");
    assert_eq!(turn_counter(&reply), 2, "{reply}");
    assert_eq!(pool.snapshot().restarts, 0);
    pool.shutdown(Duration::from_secs(5)).await;
}
