//! Who makes way when the pool is full: LRU, residency (hysteresis), activity, one-shot
//! conversations.

use super::*;

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
fn a_conversation_keeps_its_worker_for_min_residency_against_newcomers() {
    let mut l = limits(2, 2, 8);
    l.min_residency = Duration::from_secs(2);
    l.handoff_by_clear = false;
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    for s in ["a", "b", "a", "b"] {
        h.run_turn(s); // two turns each: conversations that go on
    }
    // "c" is a new conversation.
    let (_, a) = h.submit("c");
    assert!(
        stopped(&a).is_empty(),
        "no newcomer displaces a conversation within min_residency: {a:?}"
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
fn a_waiting_conversation_takes_an_idle_conversations_worker_at_once() {
    let mut l = limits(2, 2, 8);
    l.min_residency = Duration::from_secs(2);
    l.handoff_by_clear = false;
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    for s in ["a", "b", "a", "b"] {
        h.run_turn(s);
    }
    // "c" was evicted earlier: it has a transcript and waits to be resumed. "a" and "b" have
    // had their turns; the least recently used makes way at once, residency or not.
    h.released_earlier("c");
    let (_, a) = h.submit("c");
    assert_eq!(stopped(&a).len(), 1, "{a:?}");
    assert_eq!(h.router.counters.evictions, 1);
    assert!(stopped(&h.pump()).is_empty(), "one conversation makes way");
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
    let out = h.finish_turn(w, "cli-s");
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
    let out = h.finish_turn(w, "cli-s");
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Clear { worker } if *worker == w)),
        "{out:?}"
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
    let out = h.finish_turn(two[0].0, "cli");
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
    h.release(w);
    // "a" comes back: resumed on a new process whose cold start takes 5 s.
    let (_, a) = h.submit("a");
    h.now += Duration::from_secs(5);
    h.ready_all(&a);
    let running = assigned(&h.pump());
    assert_eq!(running.len(), 1);
    let mut out = Vec::new();
    h.router
        .turn_done(running[0].0, Some("cli-a".into()), false, h.now, &mut out);
    // A newcomer waits; "a" just got its worker back (residency counts from then).
    let (_, a) = h.submit("b");
    assert!(stopped(&a).is_empty(), "{a:?}");
}
