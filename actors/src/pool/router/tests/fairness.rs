//! Warmth and fairness under pressure: spares at `max_workers` (an idle conversation's worker
//! taken ahead of need) and waiting conversations served in arrival order.

use super::*;

fn full_pool(max: usize, spares: usize) -> Harness {
    let mut l = limits(max, max, 64);
    l.spare_workers = spares;
    l.handoff_by_clear = false; // spares at the maximum are made with `fresh` handoff
    l.min_residency = Duration::from_secs(2);
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    h
}

#[test]
fn at_max_workers_an_idle_one_shot_conversation_makes_way_for_a_spare() {
    let mut h = full_pool(2, 1);
    let (_, a) = h.submit("one");
    assert_eq!(assigned(&a).len(), 1);
    let (_, a) = h.submit("two");
    let w2 = assigned(&a)[0].0;
    let w1 = h.router.sessions["one"].worker.unwrap();
    // Both workers hold a conversation; "one" finishes and is the least recently used.
    h.now += Duration::from_millis(10);
    let out = h.finish_turn(w1, "cli-one");
    assert_eq!(stopped(&out), vec![w1], "taken ahead of need: {out:?}");
    assert_eq!(h.router.counters.spare_releases, 1);
    assert_eq!(
        h.router.sessions["one"].cli_session_id.as_deref(),
        Some("cli-one"),
        "the conversation stays resumable"
    );
    // Paced: while that worker stops, nobody else is taken.
    let out = h.finish_turn(w2, "cli-two");
    assert!(stopped(&out).is_empty(), "{out:?}");
    // Once it is gone, a fresh process starts in its place, and a newcomer takes it warm.
    let mut gone = Vec::new();
    h.router.worker_gone(w1, &mut gone);
    h.router.pump(h.now, true, &mut gone);
    assert_eq!(spawns(&gone), 1, "{gone:?}");
    h.ready_all(&gone);
    let (_, a) = h.submit("three");
    assert_eq!(
        assigned(&a).len(),
        1,
        "the newcomer runs at once on the spare"
    );
    assert_eq!(stopped(&a), vec![w2], "and the next spare is prepared");
}

#[test]
fn no_spare_is_made_from_a_conversation_within_its_residency_or_with_a_turn_queued() {
    let mut h = full_pool(1, 1);
    let w = h.run_turn("a");
    let w_again = h.run_turn("a"); // "a" goes on: protected for min_residency
    assert_eq!(w, w_again);
    assert!(stopped(&h.pump()).is_empty());
    h.now += Duration::from_secs(3);
    assert_eq!(
        stopped(&h.pump()),
        vec![w],
        "past its residency it makes way"
    );
}

#[test]
fn with_clear_handoff_no_conversation_is_taken_ahead_of_need() {
    let mut l = limits(1, 1, 8);
    l.spare_workers = 1;
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    let (_, a) = h.submit("a");
    let w = assigned(&a)[0].0;
    let out = h.finish_turn(w, "cli-a");
    assert!(out.is_empty(), "{out:?}");
    // A newcomer takes the conversation's worker, cleared.
    let (_, a) = h.submit("b");
    assert!(
        matches!(a[..], [Action::Clear { worker }] if worker == w),
        "{a:?}"
    );
}

#[test]
fn no_spare_is_made_while_turns_wait_for_a_worker() {
    let mut h = full_pool(1, 1);
    let (_, a) = h.submit("a");
    let w = assigned(&a)[0].0;
    h.released_earlier("b");
    assert!(
        h.submit("b")
            .1
            .iter()
            .all(|a| !matches!(a, Action::Stop { .. }))
    );
    // "a" ends; "b" waits to be resumed: the place goes to "b", not to a spare.
    let out = h.finish_turn(w, "cli-a");
    assert_eq!(stopped(&out), vec![w]);
    let mut gone = Vec::new();
    h.router.worker_gone(w, &mut gone);
    h.router.pump(h.now, true, &mut gone);
    assert!(resume_spawn(&gone).is_some(), "{gone:?}");
    assert_eq!(spawns(&gone), 1, "no spare beside the resume");
    assert_eq!(
        h.router.counters.spare_releases, 0,
        "the stop made room for the resume"
    );
    assert_eq!(h.router.counters.evictions, 1);
}

#[test]
fn a_conversation_turn_after_turn_queues_behind_those_already_waiting() {
    let mut h = full_pool(1, 0);
    let (_, a) = h.submit("busy");
    let w = assigned(&a)[0].0;
    // "waiting" (a conversation with a transcript) arrives while "busy" runs.
    h.released_earlier("waiting");
    assert!(h.submit("waiting").1.is_empty());
    // "busy" ends its turn and at once sends the next, within its residency: it arrived
    // after "waiting", so "waiting" gets the worker and "busy" queues behind it.
    let mut out = Vec::new();
    h.router
        .turn_done(w, Some("cli-busy".into()), false, h.now, &mut out);
    let (_, a) = h.submit("busy");
    out.extend(a);
    assert!(assigned(&out).is_empty(), "{out:?}");
    assert_eq!(
        stopped(&out),
        vec![w],
        "busy's worker goes to the older turn"
    );
    let mut gone = Vec::new();
    h.router.worker_gone(w, &mut gone);
    h.router.pump(h.now, true, &mut gone);
    let resumed = resume_spawn(&gone).expect("the waiting conversation is resumed");
    assert_eq!(
        h.router.workers[&resumed].session.as_deref(),
        Some("waiting")
    );
    // The resumed conversation runs its turn before anybody may take the worker back.
    h.router.worker_ready(resumed, 7, h.now);
    let out = h.pump();
    assert_eq!(assigned(&out), vec![(resumed, "waiting".to_owned())]);
    assert!(stopped(&out).is_empty());
}

#[test]
fn a_resumed_conversation_is_not_displaced_before_its_turn_ran() {
    let mut h = full_pool(1, 0);
    h.released_earlier("a");
    h.released_earlier("b");
    // The pool's one fresh worker makes way for "a", which is resumed in its place.
    let (_, a) = h.submit("a");
    let mut gone = Vec::new();
    for w in stopped(&a) {
        h.router.worker_gone(w, &mut gone);
    }
    h.router.pump(h.now, true, &mut gone);
    let w = resume_spawn(&gone).expect("a is being resumed");
    assert!(h.router.workers[&w].resumed);
    let (_, b) = h.submit("b");
    assert!(stopped(&b).is_empty(), "{b:?}");
    h.router.worker_ready(w, 9, h.now);
    let out = h.pump();
    assert_eq!(assigned(&out), vec![(w, "a".to_owned())]);
    assert!(stopped(&out).is_empty(), "{out:?}");
}

/// Carries out stops (the worker is gone) and spawns (the worker is ready) and walks the
/// queue again until nothing moves; returns the turns assigned on the way.
fn settle(h: &mut Harness, mut actions: Vec<Action>) -> Vec<(WorkerId, String)> {
    let mut ran = Vec::new();
    loop {
        ran.extend(assigned(&actions));
        let mut next = Vec::new();
        let mut moved = false;
        for a in &actions {
            match a {
                Action::Stop { worker } => {
                    h.router.worker_gone(*worker, &mut next);
                    moved = true;
                }
                Action::Spawn { worker, .. } => {
                    h.router.worker_ready(*worker, 1, h.now);
                    moved = true;
                }
                Action::Clear { worker } => {
                    h.router.worker_cleared(*worker, h.now);
                    moved = true;
                }
                _ => {}
            }
        }
        if !moved {
            return ran;
        }
        h.router.pump(h.now, true, &mut next);
        actions = next;
    }
}

#[test]
fn conversations_outnumbering_workers_take_turns_in_arrival_order() {
    // Three conversations with back-to-back turns on one worker: each gets one turn per round.
    let mut h = full_pool(1, 0);
    let mut actions = Vec::new();
    for s in ["c1", "c2", "c3"] {
        h.released_earlier(s);
        actions.extend(h.submit(s).1);
    }
    let mut order = Vec::new();
    for _ in 0..9 {
        let ran = settle(&mut h, std::mem::take(&mut actions));
        assert_eq!(ran.len(), 1, "one turn at a time: {ran:?}");
        let (w, s) = ran[0].clone();
        order.push(s.clone());
        h.now += Duration::from_millis(100);
        // The turn ends and the conversation's next turn comes at once.
        h.router
            .turn_done(w, Some(format!("cli-{s}")), false, h.now, &mut actions);
        actions.extend(h.submit(&s).1);
    }
    assert_eq!(
        order,
        ["c1", "c2", "c3", "c1", "c2", "c3", "c1", "c2", "c3"],
        "round robin in arrival order"
    );
}

#[test]
fn new_conversations_outnumbering_workers_take_turns_with_clear_handoff() {
    let mut l = limits(1, 1, 64);
    l.min_residency = Duration::from_secs(30);
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    let mut actions = Vec::new();
    for s in ["a", "b", "c"] {
        actions.extend(h.submit(s).1);
    }
    let mut order = Vec::new();
    for _ in 0..9 {
        let ran = settle(&mut h, std::mem::take(&mut actions));
        assert_eq!(ran.len(), 1, "one turn at a time: {ran:?} after {order:?}");
        let (w, s) = ran[0].clone();
        order.push(s.clone());
        h.now += Duration::from_millis(100);
        h.router
            .turn_done(w, Some(format!("cli-{s}")), false, h.now, &mut actions);
        h.router.pump(h.now, true, &mut actions);
        actions.extend(h.submit(&s).1);
    }
    assert_eq!(order, ["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
}
