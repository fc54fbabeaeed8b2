//! Affinity, spreading, the bounded queue, timeouts, resizing, spares, per-profile backoff
//! and draining.

use super::*;

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
    let out = h.finish_turn(w, "cli-s");
    assert_eq!(
        assigned(&out),
        vec![(w, "s".to_owned())],
        "the queued turn still runs"
    );
}

#[test]
fn a_profile_in_demand_keeps_a_warm_spare_until_its_demand_ends() {
    let (mut h, actions) = Harness::with(Limits {
        spare_workers: 1,
        ..limits(1, 8, 16)
    });
    h.ready_all(&actions);
    let terse = Profile {
        system_prompt: Some("You are terse.".into()),
        ..Profile::default()
    };
    let submit = |h: &mut Harness, session: &str| {
        let (tx, rx) = mpsc::channel(4);
        h.receivers.push(rx);
        h.seq += 1;
        let mut turn = Turn::text(session, "hi");
        turn.profile = terse.clone();
        let mut a = Vec::new();
        let p = Pending {
            seq: h.seq,
            turn,
            events: tx,
            enqueued: h.now,
        };
        h.router.submit(p, h.now, true, &mut a).unwrap();
        a
    };
    let spawned_for = |a: &[Action]| {
        a.iter()
            .filter(|a| matches!(a, Action::Spawn { profile, .. } if *profile == terse))
            .count()
    };
    // The first conversation: its own worker, and a spare for the next one.
    let a = submit(&mut h, "c1");
    assert_eq!(spawned_for(&a), 2, "{a:?}");
    h.ready_all(&a);
    h.pump();
    // The next conversation with that system prompt finds the spare warm, and a new spare
    // is started behind it.
    let a = submit(&mut h, "c2");
    assert_eq!(assigned(&a).len(), 1, "served at once by the spare");
    assert_eq!(spawned_for(&a), 1, "{a:?}");
    h.ready_all(&a);
    // Once the profile has had no new conversation for the TTL, its spare is not replaced.
    h.now += PROFILE_SPARE_TTL + Duration::from_secs(1);
    let a = submit(&mut h, "c3");
    assert_eq!(assigned(&a).len(), 1);
    h.now += PROFILE_SPARE_TTL + Duration::from_secs(1);
    h.router.wanted_profiles.clear();
    assert_eq!(spawned_for(&h.pump()), 0);
}
