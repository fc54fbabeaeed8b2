//! Released conversations: resumed in their own directory, and what happens when a resume
//! cannot start.

use super::*;
use crate::pool::router::events::MAX_RESUME_ATTEMPTS;

#[test]
fn an_evicted_session_is_resumed_on_a_new_process() {
    let (mut h, actions) = Harness::new(1, 2, 8);
    h.ready_all(&actions);
    let w = h.run_turn("s");
    h.release(w);
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
    let out = h.release(w);
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
fn a_conversation_lives_where_its_first_turn_was_answered() {
    let mut l = limits(2, 2, 8);
    l.handoff_by_clear = false;
    let (mut h, actions) = Harness::with(l);
    h.ready_all(&actions);
    // The first attempt dies with its worker before anything is saved.
    let (_, a) = h.submit("s");
    let first = assigned(&a)[0].0;
    let first_dir = h.router.workers[&first].cwd.clone();
    let mut out = Vec::new();
    h.router.worker_gone(first, &mut out);
    // The retry is answered on another worker: the transcript is in that worker's directory.
    let (_, a) = h.submit("s");
    let second = assigned(&a)[0].0;
    let second_dir = h.router.workers[&second].cwd.clone();
    assert_ne!(first_dir, second_dir);
    let mut out = a;
    h.router
        .turn_done(second, Some("cli-s".into()), false, h.now, &mut out);
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::RemoveDir(d) if *d == first_dir)),
        "the dead attempt's directory is no one's any more: {out:?}"
    );
    assert_eq!(h.router.sessions["s"].cwd.as_ref(), Some(&second_dir));
    h.release(second);
    let (_, a) = h.submit("s");
    let resumed_in = a.iter().find_map(|a| match a {
        Action::Spawn {
            cwd,
            conversation: Conversation::Resume(_),
            ..
        } => Some(cwd.clone()),
        _ => None,
    });
    assert_eq!(resumed_in, Some(second_dir));
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
