//! Parked turns never starve the pool: a task follows the pool's snapshots and, while turns
//! wait in the queue for a worker and no worker is idle, asks the oldest parked turns past
//! `pool.parked_turn_grace` to give their workers up, one per waiting turn that no worker on its
//! way (starting, stopping, being given up) will serve.

use std::sync::Weak;
use std::time::Duration;

use claude_pool_actors::PoolSnapshot;
use tokio::sync::watch;

use super::bridge::Bridge;
use super::keeper::HeldTurn;

/// How often the snapshot is looked at again without a change (parked turns pass their grace
/// while the pool stands still).
const TICK: Duration = Duration::from_millis(250);

/// Follows `snapshots` until the pool or the bridge is gone.
pub(super) fn spawn<T: HeldTurn>(
    bridge: Weak<Bridge<T>>,
    mut snapshots: watch::Receiver<PoolSnapshot>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(TICK) => {}
            }
            let Some(bridge) = bridge.upgrade() else {
                return;
            };
            let (waiting, coming) = {
                let s = snapshots.borrow_and_update();
                (pressure(&s), s.workers_starting + s.workers_stopping)
            };
            if waiting > 0 {
                bridge.relieve(waiting, coming);
            }
        }
    });
}

/// Turns that wait for a worker while none is idle (not those that wait behind a running turn
/// of their own conversation: a worker would not serve them sooner).
fn pressure(s: &PoolSnapshot) -> usize {
    if s.workers_idle == 0 {
        s.waiting_for_worker
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_queue_with_no_idle_worker_is_pressure() {
        let mut s = PoolSnapshot {
            queue_depth: 4,
            waiting_for_worker: 3,
            workers_busy: 4,
            ..PoolSnapshot::default()
        };
        assert_eq!(pressure(&s), 3);
        s.workers_idle = 1;
        assert_eq!(pressure(&s), 0);
        s.workers_idle = 0;
        s.waiting_for_worker = 0;
        assert_eq!(
            pressure(&s),
            0,
            "turns behind their own conversation's turn"
        );
    }
}
