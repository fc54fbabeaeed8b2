//! Unit tests of the routing rules, without actors or processes: a harness that drives the
//! [`Router`] by hand, and the tests by concern.

mod eviction;
mod fairness;
mod resume;
mod routing;

use super::*;

fn limits(min: usize, max: usize, cap: usize) -> Limits {
    Limits {
        min_workers: min,
        max_workers: max,
        queue_capacity: cap,
        handoff_by_clear: true,
        spare_workers: 0,
        min_residency: Duration::ZERO,
    }
}

struct Harness {
    router: Router,
    seq: u64,
    now: Instant,
    // Keep receivers alive so queued turns are not treated as cancelled.
    receivers: Vec<mpsc::Receiver<TurnEvent>>,
}

impl Harness {
    fn new(min: usize, max: usize, cap: usize) -> (Self, Vec<Action>) {
        Self::with(limits(min, max, cap))
    }

    fn pending(&mut self, session: &str) -> Pending {
        let (tx, rx) = mpsc::channel(4);
        self.receivers.push(rx);
        self.seq += 1;
        Pending {
            seq: self.seq,
            turn: Turn::text(session, "hi"),
            events: tx,
            enqueued: self.now,
        }
    }

    fn submit(&mut self, session: &str) -> (Result<(), ()>, Vec<Action>) {
        let p = self.pending(session);
        let mut actions = Vec::new();
        let r = self
            .router
            .submit(p, self.now, true, &mut actions)
            .map_err(|_| ());
        (r, actions)
    }

    fn ready_all(&mut self, actions: &[Action]) {
        for a in actions {
            if let Action::Spawn { worker, .. } = a {
                self.router
                    .worker_ready(*worker, 100 + *worker as u32, self.now);
            }
        }
    }

    fn pump(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        self.router.pump(self.now, true, &mut actions);
        actions
    }

    fn with(limits: Limits) -> (Self, Vec<Action>) {
        let mut h = Self {
            router: Router::new(
                limits,
                Profile::default(),
                "/tmp/w".into(),
                crate::config::BackoffConfig::default(),
            ),
            seq: 0,
            now: Instant::now(),
            receivers: Vec::new(),
        };
        let mut actions = Vec::new();
        h.router.pump(h.now, true, &mut actions);
        (h, actions)
    }

    /// Runs one turn of `session` to completion (it must be assignable now).
    fn run_turn(&mut self, session: &str) -> WorkerId {
        let (_, a) = self.submit(session);
        let w = assigned(&a)[0].0;
        self.router.turn_done(
            w,
            Some(format!("cli-{session}")),
            false,
            self.now,
            &mut Vec::new(),
        );
        w
    }

    /// Worker `w` finishes its turn (saved as `cli_id`) and the queue is walked; returns the
    /// actions of both.
    fn finish_turn(&mut self, w: WorkerId, cli_id: &str) -> Vec<Action> {
        let mut out = Vec::new();
        self.router
            .turn_done(w, Some(cli_id.into()), false, self.now, &mut out);
        self.router.pump(self.now, true, &mut out);
        out
    }

    /// Stops worker `w` and lets it go (its conversation is released); returns the actions.
    fn release(&mut self, w: WorkerId) -> Vec<Action> {
        let mut out = Vec::new();
        self.router.stop_worker(w, &mut out);
        self.router.worker_gone(w, &mut out);
        out
    }

    /// A conversation released earlier: it has a transcript (`cli-<sid>`) and no worker.
    fn released_earlier(&mut self, sid: &str) {
        self.router.sessions.insert(
            sid.into(),
            SessionSlot {
                worker: None,
                cli_session_id: Some(format!("cli-{sid}")),
                cwd: None,
                running: false,
                last_used: self.now,
                ended: false,
                resume_failures: 0,
            },
        );
    }
}

fn assigned(actions: &[Action]) -> Vec<(WorkerId, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign {
                worker, pending, ..
            } => Some((*worker, pending.turn.session.to_string())),
            _ => None,
        })
        .collect()
}

fn spawns(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Spawn { .. }))
        .count()
}

fn stopped(actions: &[Action]) -> Vec<WorkerId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Stop { worker } => Some(*worker),
            _ => None,
        })
        .collect()
}

/// The worker started to resume a conversation, from a batch of actions.
fn resume_spawn(actions: &[Action]) -> Option<WorkerId> {
    actions.iter().find_map(|a| match a {
        Action::Spawn {
            worker,
            conversation: Conversation::Resume(_),
            ..
        } => Some(*worker),
        _ => None,
    })
}

fn failed(actions: &[Action]) -> Vec<(String, TurnError)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Fail { pending, error } => {
                Some((pending.turn.session.to_string(), error.clone()))
            }
            _ => None,
        })
        .collect()
}

/// A released conversation `s` on a pool of one worker, with a turn of it queued; returns the
/// id of the worker started to resume it.
fn waiting_for_resume(h: &mut Harness) -> WorkerId {
    let w = h.run_turn("s");
    h.release(w);
    let (_, a) = h.submit("s");
    resume_spawn(&a).expect("a resume is started")
}
