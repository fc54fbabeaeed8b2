//! A fixture for benchmarking the routing decision without actors or processes (used by the
//! criterion benches; not part of the supported API).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::BackoffConfig;
use crate::pool::router::{Action, Limits, Pending, Router};
use crate::turn::{Profile, Turn, TurnEvent};

/// A router with `workers` warm workers, each holding one conversation.
#[derive(Debug)]
pub struct RoutingFixture {
    router: Router,
    sessions: Vec<String>,
    seq: u64,
    actions: Vec<Action>,
    _rx: Vec<mpsc::Receiver<TurnEvent>>,
    tx: Vec<mpsc::Sender<TurnEvent>>,
}

impl RoutingFixture {
    /// Builds the fixture (workers are made ready and given one turn each).
    pub fn new(workers: usize) -> Self {
        let limits = Limits {
            min_workers: workers,
            max_workers: workers,
            queue_capacity: 1024,
            handoff_by_clear: true,
            spare_workers: 0,
            min_residency: Duration::ZERO,
        };
        let mut router = Router::new(
            limits,
            Profile::default(),
            "/tmp/bench".into(),
            BackoffConfig::default(),
        );
        let now = Instant::now();
        let mut actions = Vec::new();
        router.pump(now, true, &mut actions);
        for a in actions.drain(..) {
            if let Action::Spawn { worker, .. } = a {
                router.worker_ready(worker, worker as u32, now);
            }
        }
        let mut f = Self {
            router,
            sessions: (0..workers).map(|i| format!("session-{i}")).collect(),
            seq: 0,
            actions,
            _rx: Vec::new(),
            tx: Vec::new(),
        };
        for _ in 0..workers {
            let (tx, rx) = mpsc::channel(1);
            f.tx.push(tx);
            f._rx.push(rx);
        }
        for i in 0..workers {
            f.route(i);
        }
        f
    }

    /// Routes one turn of conversation `i` (to the worker holding it) and completes it; returns
    /// the worker id chosen.
    pub fn route(&mut self, i: usize) -> u64 {
        let now = Instant::now();
        self.seq += 1;
        let pending = Pending {
            seq: self.seq,
            turn: Turn::text(self.sessions[i].as_str(), "hi"),
            events: self.tx[i].clone(),
            enqueued: now,
        };
        self.actions.clear();
        let _ = self.router.submit(pending, now, true, &mut self.actions);
        let mut chosen = 0;
        for a in self.actions.drain(..) {
            if let Action::Assign { worker, .. } = a {
                chosen = worker;
            }
        }
        self.router
            .turn_done(chosen, None, false, now, &mut self.actions);
        chosen
    }
}
