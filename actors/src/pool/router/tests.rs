//! Unit tests of the routing rules, without actors or processes.

use super::*;
use crate::pool::router::events::MAX_RESUME_ATTEMPTS;

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
        let mut h = Self {
            router: Router::new(
                limits(min, max, cap),
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

#[test]
fn min_workers_are_spawned_at_start() {
    let (_, actions) = Harness::new(3, 5, 8);
    assert_eq!(spawns(&actions), 3);
}

#[test]
fn a_session_sticks_to_its_worker() {
    let (mut h, actions) = Harness::new(2, 4, 8);
    h.ready_all(&actions);
    let (_, a1) = h.submit("s");
    let w = assigned(&a1)[0].0;
    h.router
        .turn_done(w, Some("cli-1".into()), false, h.now, &mut Vec::new());
    let (_, a2) = h.submit("s");
    assert_eq!(assigned(&a2), vec![(w, "s".to_owned())]);
}

#[test]
fn new_sessions_spread_over_idle_workers_then_spawn() {
    let (mut h, actions) = Harness::new(1, 3, 8);
    h.ready_all(&actions);
    let (_, a1) = h.submit("a");
    assert_eq!(assigned(&a1).len(), 1);
    let (_, a2) = h.submit("b");
    assert!(assigned(&a2).is_empty());
    assert_eq!(spawns(&a2), 1, "room left: a new worker is started for b");
    h.ready_all(&a2);
    assert_eq!(assigned(&h.pump()), vec![(2, "b".to_owned())]);
}

#[test]
fn full_pool_evicts_the_least_recently_used_idle_session() {
    let (mut h, actions) = Harness::new(2, 2, 8);
    h.ready_all(&actions);
    for s in ["old", "new"] {
        let (_, a) = h.submit(s);
        let w = assigned(&a)[0].0;
        h.now += Duration::from_millis(10);
        h.router
            .turn_done(w, Some(format!("cli-{s}")), false, h.now, &mut Vec::new());
    }
    let (_, a) = h.submit("third");
    let cleared: Vec<WorkerId> = a
        .iter()
        .filter_map(|a| match a {
            Action::Clear { worker } => Some(*worker),
            _ => None,
        })
        .collect();
    assert_eq!(cleared, vec![1], "the LRU conversation's worker is cleared");
    assert_eq!(h.router.counters.evictions, 1);
    assert!(h.router.sessions["old"].worker.is_none());
    assert_eq!(
        h.router.sessions["old"].cli_session_id.as_deref(),
        Some("cli-old")
    );
    h.router.worker_cleared(1, h.now);
    assert_eq!(assigned(&h.pump()), vec![(1, "third".to_owned())]);
}

#[test]
fn an_evicted_session_is_resumed_on_a_new_process() {
    let (mut h, actions) = Harness::new(1, 2, 8);
    h.ready_all(&actions);
    let (_, a) = h.submit("s");
    let w = assigned(&a)[0].0;
    h.router
        .turn_done(w, Some("cli-s".into()), false, h.now, &mut Vec::new());
    h.router.stop_worker(w, &mut Vec::new());
    h.router.worker_gone(w, &mut Vec::new());
    let (_, a) = h.submit("s");
    let resume: Vec<&Conversation> = a
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { conversation, .. } => Some(conversation),
            _ => None,
        })
        .collect();
    assert!(
        resume.contains(&&Conversation::Resume("cli-s".into())),
        "{a:?}"
    );
    assert_eq!(h.router.counters.resumes, 1);
}

#[test]
fn a_busy_session_does_not_block_the_queue() {
    let (mut h, actions) = Harness::new(2, 2, 8);
    h.ready_all(&actions);
    let (_, a) = h.submit("busy");
    assert_eq!(assigned(&a).len(), 1);
    let (_, a) = h.submit("busy");
    assert!(
        assigned(&a).is_empty(),
        "second turn of a running session waits"
    );
    let (_, a) = h.submit("other");
    assert_eq!(assigned(&a), vec![(2, "other".to_owned())]);
    assert_eq!(h.router.queue.len(), 1);
}

#[test]
fn full_queue_rejects_only_turns_that_would_wait() {
    let (mut h, actions) = Harness::new(1, 1, 1);
    h.ready_all(&actions);
    assert!(h.submit("a").0.is_ok()); // runs at once
    assert!(h.submit("a").0.is_ok()); // waits: queue 1/1
    assert!(h.submit("a").0.is_err()); // would wait: rejected
    assert_eq!(h.router.counters.queue_rejections, 1);
    assert_eq!(h.router.queue.len(), 1);
}

#[test]
fn tick_times_out_queued_turns_and_drops_cancelled_ones() {
    let (mut h, actions) = Harness::new(1, 1, 8);
    h.ready_all(&actions);
    assert!(h.submit("a").0.is_ok());
    assert!(h.submit("a").0.is_ok());
    assert!(h.submit("a").0.is_ok());
    // Cancel the last queued turn.
    h.receivers.pop();
    h.now += Duration::from_secs(2);
    let mut out = Vec::new();
    let t = Timeouts {
        queue_timeout: Duration::from_secs(1),
        session_idle_ttl: Duration::from_secs(60),
        worker_idle_ttl: Duration::from_secs(60),
        session_resume_ttl: Duration::from_secs(600),
    };
    h.router.tick(h.now, &t, &mut out);
    let failed = out
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Fail {
                    error: TurnError::QueueTimeout,
                    ..
                }
            )
        })
        .count();
    assert_eq!(failed, 1);
    assert!(h.router.queue.is_empty());
}

#[test]
fn resize_down_stops_idle_workers() {
    let (mut h, actions) = Harness::new(3, 3, 8);
    h.ready_all(&actions);
    let mut out = Vec::new();
    h.router.resize(1, 1, &mut out);
    let stops = out
        .iter()
        .filter(|a| matches!(a, Action::Stop { .. }))
        .count();
    assert_eq!(stops, 2);
}

impl Harness {
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

#[test]
fn a_conversation_keeps_its_worker_for_min_residency() {
    let mut l = limits(2, 2, 8);
    l.min_residency = Duration::from_secs(2);
    l.handoff_by_clear = false;
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    for s in ["a", "b", "a", "b"] {
        h.run_turn(s); // two turns each: conversations that go on
    }
    // "c" was evicted earlier: it has a transcript and no worker.
    h.router.sessions.insert(
        "c".into(),
        SessionSlot {
            worker: None,
            cli_session_id: Some("cli-c".into()),
            cwd: None,
            running: false,
            last_used: h.now,
            ended: false,
            resume_failures: 0,
        },
    );
    let (_, a) = h.submit("c");
    assert!(
        stopped(&a).is_empty(),
        "nobody is displaced within min_residency: {a:?}"
    );
    h.now += Duration::from_secs(3);
    let a = h.pump();
    assert_eq!(
        stopped(&a).len(),
        1,
        "after it, the LRU conversation makes way"
    );
    assert_eq!(h.router.counters.evictions, 1);
    // The stopping worker's place is taken by "c" alone: a second pump evicts nobody more.
    assert!(stopped(&h.pump()).is_empty());
}

#[test]
fn a_newcomer_never_displaces_an_active_conversation() {
    let (mut h, actions) = Harness::with(limits(1, 1, 8));
    h.ready_all(&actions);
    // "s" is running; its next turn queues behind it, then a newcomer arrives.
    let (_, a) = h.submit("s");
    let w = assigned(&a)[0].0;
    assert!(h.submit("s").0.is_ok());
    let (_, a) = h.submit("new");
    assert!(assigned(&a).is_empty());
    h.now += Duration::from_secs(5);
    let mut out = Vec::new();
    h.router
        .turn_done(w, Some("cli-s".into()), false, h.now, &mut out);
    h.router.pump(h.now, true, &mut out);
    assert_eq!(
        assigned(&out),
        vec![(w, "s".to_owned())],
        "the active conversation keeps its worker: {out:?}"
    );
    assert!(
        !out.iter()
            .any(|a| matches!(a, Action::Clear { .. } | Action::Stop { .. }))
    );
    // Once "s" is idle with nothing queued, the newcomer may take its place.
    let mut out = Vec::new();
    h.router
        .turn_done(w, Some("cli-s".into()), false, h.now, &mut out);
    h.router.pump(h.now, true, &mut out);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Clear { worker } if *worker == w)),
        "{out:?}"
    );
}

#[test]
fn spare_workers_are_started_ahead_of_need() {
    let mut l = limits(1, 4, 8);
    l.spare_workers = 1;
    l.handoff_by_clear = false;
    let (mut h, actions) = Harness::with(l);
    assert_eq!(spawns(&actions), 1, "the floor doubles as the spare");
    h.ready_all(&actions);
    let (_, a) = h.submit("a");
    assert_eq!(assigned(&a).len(), 1);
    assert_eq!(spawns(&a), 1, "a new spare replaces the one just taken");
}

#[test]
fn a_failing_profile_backs_off_alone() {
    let (mut h, actions) = Harness::new(1, 4, 8);
    h.ready_all(&actions);
    let bad = Profile {
        model: Some("broken".into()),
        ..Profile::default()
    };
    let p = {
        let (tx, rx) = mpsc::channel(4);
        h.receivers.push(rx);
        h.seq += 1;
        let mut turn = Turn::text("k", "hi");
        turn.profile = bad.clone();
        Pending {
            seq: h.seq,
            turn,
            events: tx,
            enqueued: h.now,
        }
    };
    let mut a = Vec::new();
    h.router.submit(p, h.now, true, &mut a).unwrap();
    let w = a
        .iter()
        .find_map(|a| match a {
            Action::Spawn {
                worker, profile, ..
            } if *profile == bad => Some(*worker),
            _ => None,
        })
        .expect("a worker for the profile");
    h.router.worker_gone(w, &mut Vec::new());
    h.router.backoffs.start_failed(&bad, "exit code 1", h.now);
    let a = h.pump();
    assert_eq!(spawns(&a), 0, "the failing profile waits for its backoff");
    let (_, a) = h.submit("healthy");
    assert_eq!(
        assigned(&a).len(),
        1,
        "the default profile is served meanwhile"
    );
    h.now += Duration::from_secs(1);
    assert_eq!(spawns(&h.pump()), 1, "after the delay, it is tried again");
}

#[test]
fn a_conversation_directory_outlives_its_processes() {
    let mut l = limits(1, 2, 8);
    l.handoff_by_clear = false;
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    let w = h.run_turn("s");
    let dir = h.router.sessions["s"]
        .cwd
        .clone()
        .expect("the conversation has a directory");
    let mut out = Vec::new();
    h.router.stop_worker(w, &mut out);
    h.router.worker_gone(w, &mut out);
    assert!(
        !out.iter().any(|a| matches!(a, Action::RemoveDir(_))),
        "evicted, the conversation still owns its directory: {out:?}"
    );
    // Resumed in the same directory, then forgotten: the directory goes with the last user.
    let (_, a) = h.submit("s");
    let resumed_in = a
        .iter()
        .find_map(|a| match a {
            Action::Spawn {
                cwd,
                conversation: Conversation::Resume(_),
                ..
            } => Some(cwd.clone()),
            _ => None,
        })
        .expect("resumed");
    assert_eq!(resumed_in, dir);
    let mut out = Vec::new();
    h.router.end_session(&"s".into(), &mut out);
    assert!(
        !out.iter().any(|a| matches!(a, Action::RemoveDir(_))),
        "a process still runs there"
    );
    let w2 = h
        .router
        .workers
        .iter()
        .find(|(_, s)| s.cwd == dir)
        .map(|(id, _)| *id)
        .unwrap();
    h.router.worker_gone(w2, &mut out);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::RemoveDir(d) if *d == dir)),
        "{out:?}"
    );
}

#[test]
fn draining_serves_queued_turns_then_stops_idle_workers() {
    let (mut h, actions) = Harness::new(2, 2, 8);
    h.ready_all(&actions);
    let (_, a) = h.submit("s");
    let w = assigned(&a)[0].0;
    assert!(h.submit("s").0.is_ok(), "second turn queued");
    h.router.draining = true;
    let mut out = Vec::new();
    h.router.drain_idle(&mut out);
    assert_eq!(
        stopped(&out),
        vec![2],
        "the idle worker nobody waits for stops"
    );
    let mut out = Vec::new();
    h.router
        .turn_done(w, Some("cli-s".into()), false, h.now, &mut out);
    h.router.pump(h.now, true, &mut out);
    assert_eq!(
        assigned(&out),
        vec![(w, "s".to_owned())],
        "the queued turn still runs"
    );
}

#[test]
fn one_shot_conversations_make_way_for_newcomers_at_once() {
    let mut l = limits(1, 2, 8);
    l.min_residency = Duration::from_secs(2);
    l.handoff_by_clear = false;
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    let (_, a) = h.submit("one");
    h.ready_all(&a);
    let (_, a) = h.submit("two");
    h.ready_all(&a);
    let two = assigned(&h.pump());
    assert_eq!(two.len(), 1, "both workers busy now");
    let (_, a) = h.submit("three");
    assert!(assigned(&a).is_empty());
    let mut out = Vec::new();
    h.router
        .turn_done(two[0].0, Some("cli".into()), false, h.now, &mut out);
    h.router.pump(h.now, true, &mut out);
    assert_eq!(
        stopped(&out).len(),
        1,
        "a finished one-shot conversation makes way: {out:?}"
    );
}

#[test]
fn residency_counts_from_when_a_resumed_worker_is_ready() {
    let mut l = limits(1, 1, 8);
    l.min_residency = Duration::from_secs(2);
    l.handoff_by_clear = false;
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    h.run_turn("a");
    h.run_turn("a");
    let w = h.router.sessions["a"].worker.unwrap();
    let mut out = Vec::new();
    h.router.stop_worker(w, &mut out);
    h.router.worker_gone(w, &mut out);
    // "a" comes back: resumed on a new process whose cold start takes 5 s.
    let (_, a) = h.submit("a");
    h.now += Duration::from_secs(5);
    h.ready_all(&a);
    let running = assigned(&h.pump());
    assert_eq!(running.len(), 1);
    let mut out = Vec::new();
    h.router
        .turn_done(running[0].0, Some("cli-a".into()), false, h.now, &mut out);
    // Another conversation with a transcript waits; "a" just got its worker back.
    h.router.sessions.insert(
        "b".into(),
        SessionSlot {
            worker: None,
            cli_session_id: Some("cli-b".into()),
            cwd: None,
            running: false,
            last_used: h.now,
            ended: false,
            resume_failures: 0,
        },
    );
    let (_, a) = h.submit("b");
    assert!(stopped(&a).is_empty(), "{a:?}");
}

/// The resume worker started for `s` (its id), from a batch of actions.
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
    let (_, a) = h.submit("s");
    let w = assigned(&a)[0].0;
    h.router
        .turn_done(w, Some("cli-s".into()), false, h.now, &mut Vec::new());
    h.router.stop_worker(w, &mut Vec::new());
    h.router.worker_gone(w, &mut Vec::new());
    let (_, a) = h.submit("s");
    resume_spawn(&a).expect("a resume is started")
}

#[test]
fn a_conversation_without_transcript_fails_its_turns_once_and_starts_afresh() {
    let (mut h, actions) = Harness::new(1, 1, 8);
    h.ready_all(&actions);
    let w = waiting_for_resume(&mut h);
    let mut actions = Vec::new();
    h.router.worker_gone(w, &mut actions);
    h.router
        .resume_failed(&"s".into(), true, "no transcript", &mut actions);
    let failed = failed(&actions);
    assert_eq!(failed.len(), 1, "{actions:?}");
    assert!(matches!(failed[0].1, TurnError::ConversationLost(_)));
    assert!(h.router.queue.is_empty());
    assert_eq!(h.router.sessions["s"].cli_session_id, None);
    assert_eq!(h.router.counters.conversations_lost, 1);
    // Its next turn is a new conversation: a fresh process, no resume.
    let (_, a) = h.submit("s");
    assert_eq!(resume_spawn(&a), None, "{a:?}");
}

#[test]
fn a_resume_that_keeps_failing_to_start_fails_its_turns_after_three_attempts() {
    let (mut h, actions) = Harness::new(1, 1, 8);
    h.ready_all(&actions);
    let mut w = waiting_for_resume(&mut h);
    for attempt in 1..=MAX_RESUME_ATTEMPTS {
        let mut actions = Vec::new();
        h.router.worker_gone(w, &mut actions);
        h.router
            .resume_failed(&"s".into(), false, "killed", &mut actions);
        if attempt < MAX_RESUME_ATTEMPTS {
            assert!(failed(&actions).is_empty(), "attempt {attempt}: waits");
            w = resume_spawn(&h.pump()).expect("tried again");
        } else {
            let failed = failed(&actions);
            assert_eq!(failed.len(), 1);
            assert!(matches!(failed[0].1, TurnError::SpawnFailed(_)));
        }
    }
    // The transcript is kept: a later turn resumes it again.
    assert_eq!(
        h.router.sessions["s"].cli_session_id.as_deref(),
        Some("cli-s")
    );
}
