//! Carrying out the router's decisions: spawning, assigning, clearing and stopping workers,
//! failing turns, removing directories nobody uses; answering a worker's failure; publishing
//! the pool's snapshot after every event.

use super::*;

impl PoolState {
    /// After every event: route what can move, carry the actions out, finish a drain that is
    /// complete, and publish the new snapshot.
    pub(super) fn settle(
        &mut self,
        myself: &ActorRef<PoolMsg>,
        now: Instant,
        mut actions: Vec<Action>,
    ) {
        if !self.forced {
            self.router.pump(now, true, &mut actions);
        }
        if self.draining {
            self.router.drain_idle(&mut actions);
        }
        self.execute(myself, actions);
        self.finish_if_drained(myself);
        self.publish();
    }

    /// An unexpected worker exit or a failed spawn/start-up. A start that failed holds back
    /// further starts of the same profile (backoff); a worker that was warm is replaced at
    /// once.
    pub(super) fn worker_failed(
        &mut self,
        id: WorkerId,
        reason: &str,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        if let Some(slot) = self.router.worker_gone(id, actions) {
            // A conversation's own trouble (its transcript is gone) says nothing about whether
            // processes of this profile start.
            let lost = reason.contains(NO_TRANSCRIPT);
            if let (WorkerState::Starting, true, Some(sid)) =
                (slot.state, slot.resumed, &slot.session)
            {
                self.router.resume_failed(sid, lost, reason, actions);
            }
            let kind = match slot.state {
                WorkerState::Starting => WorkerEventKind::StartFailed,
                _ => WorkerEventKind::Crashed,
            };
            self.events.push(id, kind, reason);
            match slot.state {
                WorkerState::Starting => {
                    self.stats.spawn_failures += 1;
                    if !self.draining && !lost {
                        let delay = self
                            .router
                            .backoffs
                            .start_failed(&slot.profile, reason, now);
                        tracing::warn!(
                            worker = id,
                            profile = %slot.profile.label(),
                            ?delay,
                            "worker start failed; starts of this profile held back"
                        );
                    }
                }
                WorkerState::Busy => {
                    self.stats.restarts += 1;
                    self.stats.turns_failed += 1;
                }
                _ => self.stats.restarts += 1,
            }
        }
    }

    fn execute(&mut self, myself: &ActorRef<PoolMsg>, actions: Vec<Action>) {
        for action in actions {
            match &action {
                Action::Assign {
                    worker, pending, ..
                } => tracing::debug!(worker, session = %pending.turn.session, "assign"),
                Action::Spawn {
                    worker,
                    conversation,
                    ..
                } => tracing::debug!(worker, ?conversation, "spawn"),
                Action::Clear { worker } => tracing::debug!(worker, "clear"),
                Action::Stop { worker } => tracing::debug!(worker, "stop"),
                Action::Fail { pending, error } => {
                    tracing::debug!(session = %pending.turn.session, %error, "fail queued turn")
                }
                Action::RemoveDir(dir) => tracing::debug!(dir = %dir.display(), "remove dir"),
            }
            match action {
                Action::Assign {
                    worker,
                    pending,
                    resumed,
                } => {
                    let assignment = Assignment {
                        content: pending.turn.content,
                        events: pending.events,
                        queued_for: pending.enqueued.elapsed(),
                        resumed,
                        limits: self.limits(),
                        budget: pending.turn.budget,
                        keep: self
                            .config
                            .transcript_sink
                            .clone()
                            .map(|sink| (sink, pending.turn.session)),
                    };
                    match self.actors.get(&worker) {
                        Some(a) => {
                            if let Err(e) = a.cast(WorkerMsg::Run(Box::new(assignment))) {
                                tracing::warn!(worker, error = %e, "worker mailbox closed");
                            }
                        }
                        None => {
                            let _ = assignment.events.try_send(TurnEvent::Failed(
                                TurnError::WorkerFailed("the worker is gone".into()),
                            ));
                        }
                    }
                }
                Action::Spawn {
                    worker,
                    profile,
                    cwd,
                    conversation,
                } => self.spawn_worker(myself, worker, &profile, cwd, &conversation),
                Action::Clear { worker } => {
                    if let Some(a) = self.actors.get(&worker) {
                        let _ = a.cast(WorkerMsg::Clear);
                    }
                }
                Action::Stop { worker } => match self.actors.get(&worker) {
                    Some(a) => a.stop(None),
                    None => {
                        // Still starting: its handshake may take long, so kill it outright.
                        let name = self.worker_name(worker);
                        match ractor::registry::where_is(name) {
                            Some(cell) => cell.kill(),
                            None => {
                                // Not spawned yet or already gone: the spawn task's result
                                // (ready or failed) will find it stopping.
                            }
                        }
                    }
                },
                Action::Fail { pending, error } => {
                    let _ = pending.events.try_send(TurnEvent::Failed(error));
                }
                Action::RemoveDir(dir) => remove_work_dir(dir),
            }
        }
    }

    fn limits(&self) -> ExchangeLimits {
        ExchangeLimits {
            idle_timeout: self.config.turn_idle_timeout,
            interrupt_timeout: self.config.interrupt_timeout,
            external_wait: self.config.tool_result_timeout,
        }
    }

    /// A new working directory for a conversation taken up from elsewhere, and where its
    /// transcript goes for `--resume` to find it there.
    pub(super) fn place(&self) -> ConversationPlace {
        let c = &self.config;
        let cwd = c.worker.work_root.join(uuid::Uuid::new_v4().to_string());
        let spec = child::spawn_spec(
            &c.worker,
            &Profile::default(),
            &cwd,
            &Conversation::Fresh,
            None,
            |name| std::env::var(name).ok(),
        );
        // Only what locates the transcripts (the rest may hold credentials).
        let env = spec
            .env
            .into_iter()
            .filter(|(k, _)| k == "HOME" || k == "CLAUDE_CONFIG_DIR")
            .collect();
        ConversationPlace { cwd, env }
    }

    fn worker_name(&self, id: WorkerId) -> String {
        format!("{}-w{id}", self.name)
    }

    fn spawn_worker(
        &self,
        myself: &ActorRef<PoolMsg>,
        id: WorkerId,
        profile: &Profile,
        cwd: std::path::PathBuf,
        conversation: &Conversation,
    ) {
        let c = &self.config;
        // A worker with external tools gets its own token for them (the caller's MCP server
        // tells workers apart by it).
        let tool_token = profile
            .external_tools
            .as_ref()
            .map(|_| crate::turn::Secret::new(uuid::Uuid::new_v4().simple().to_string()));
        let tools = tool_token.as_ref().map(|t| (t, c.tool_result_timeout));
        let spec = child::spawn_spec(&c.worker, profile, &cwd, conversation, tools, |name| {
            std::env::var(name).ok()
        });
        let args = WorkerArgs {
            id,
            pool: myself.clone(),
            spec,
            limits: self.limits(),
            startup_timeout: c.worker.startup_timeout,
            stop_grace: c.stop_grace,
            max_turns: c.max_turns_per_worker.max(1),
            max_rss_bytes: c.max_worker_rss_mb.saturating_mul(1024 * 1024),
            tool_token,
            external_prefix: profile.external_tools.as_ref().map(|t| t.prefix()),
        };
        let name = self.worker_name(id);
        let pool = myself.clone();
        tokio::spawn(async move {
            if let Err(e) = Actor::spawn_linked(Some(name), Worker, args, pool.get_cell()).await {
                let _ = pool.cast(PoolMsg::SpawnFailed {
                    id,
                    error: e.to_string(),
                });
            }
        });
    }

    fn finish_if_drained(&mut self, myself: &ActorRef<PoolMsg>) {
        if self.draining && self.router.workers.is_empty() && self.router.queue.is_empty() {
            for w in self.shutdown_waiters.drain(..) {
                let _ = w.send(());
            }
            myself.stop(Some("drained".into()));
        }
    }

    /// Every worker, by id, and the recent worker events.
    pub(super) fn inspect(&self, now: Instant) -> PoolInspection {
        let mut workers: Vec<WorkerView> = self
            .router
            .workers
            .iter()
            .map(|(&id, w)| WorkerView {
                id,
                pid: w.pid,
                state: match (w.state, w.clearing) {
                    (WorkerState::Starting, _) => "starting",
                    (WorkerState::Stopping, _) => "stopping",
                    (WorkerState::Busy, _) => "busy",
                    (WorkerState::Idle, true) => "clearing",
                    (WorkerState::Idle, false) => "idle",
                },
                session: w.session.clone(),
                profile: w.profile.clone(),
                turns: w.turns,
                age: now.saturating_duration_since(w.spawned_at),
                idle_for: now.saturating_duration_since(w.last_used),
            })
            .collect();
        workers.sort_by_key(|w| w.id);
        PoolInspection {
            workers,
            events: self.events.to_vec(),
        }
    }

    /// Conversations with a queued turn that does not wait behind a running turn of its own.
    fn waiting_for_worker(&self) -> usize {
        let router = &self.router;
        router
            .queue
            .iter()
            .map(|p| &p.turn.session)
            .filter(|sid| !router.sessions.get(*sid).is_some_and(|s| s.running))
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    fn publish(&self) {
        let mut s = PoolSnapshot {
            min_workers: self.router.limits.min_workers,
            max_workers: self.router.limits.max_workers,
            queue_depth: self.router.queue.len(),
            waiting_for_worker: self.waiting_for_worker(),
            sessions: self.router.sessions.len(),
            restarts: self.stats.restarts,
            spawn_failures: self.stats.spawn_failures,
            turns_failed: self.stats.turns_failed,
            interrupts: self.stats.interrupts,
            turns_started: self.router.counters.turns_started,
            queue_rejections: self.router.counters.queue_rejections,
            queue_timeouts: self.router.counters.queue_timeouts,
            evictions: self.router.counters.evictions,
            resumes: self.router.counters.resumes,
            conversations_lost: self.router.counters.conversations_lost,
            conversations_adopted: self.router.counters.adopted,
            recycles: self.router.counters.recycles,
            spare_releases: self.router.counters.spare_releases,
            restart_backoff: self.router.backoffs.current(),
            spawn_troubles: self.router.backoffs.troubles(Instant::now()),
            draining: self.draining,
            ..PoolSnapshot::default()
        };
        for w in self.router.workers.values() {
            match (w.state, w.clearing) {
                (WorkerState::Starting, _) => s.workers_starting += 1,
                (WorkerState::Stopping, _) => s.workers_stopping += 1,
                (WorkerState::Busy, _) | (WorkerState::Idle, true) => s.workers_busy += 1,
                (WorkerState::Idle, false) => s.workers_idle += 1,
            }
            if w.session.is_some() && w.state != WorkerState::Starting {
                s.sessions_bound += 1;
            }
            if w.session.is_none() && matches!(w.state, WorkerState::Starting | WorkerState::Idle) {
                s.workers_spare += 1;
            }
        }
        s.ready = !self.draining && s.workers_idle + s.workers_busy >= s.min_workers;
        // Serving: not draining, and a warm worker is there or workers start normally (the
        // first one was warm and the default profile's starts are not failing).
        let warm = s.workers_idle + s.workers_busy > 0;
        let default_failing = self.router.backoffs.failures(&self.router.default_profile) > 0;
        s.serving = !self.draining && (warm || self.ever_warm && !default_failing);
        self.snapshot.send_replace(s);
    }
}

/// Removes a working directory nothing uses any more: at once when empty (the usual case:
/// without tools the CLI writes nothing there), else off the mailbox.
fn remove_work_dir(dir: std::path::PathBuf) {
    match std::fs::remove_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a working directory");
                }
            });
        }
    }
}
