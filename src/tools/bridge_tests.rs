//! The bridge's parked turns with a stand-in turn: results, release, the CLI moving on,
//! deadline, deleted sessions, a key's limit and pool pressure.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

use super::*;

/// A stand-in turn: set aside, it keeps its name (or fails when told to); it stirs when told.
struct Turn {
    name: &'static str,
    stir: watch::Receiver<bool>,
    fail: bool,
    released: Arc<AtomicUsize>,
}

impl HeldTurn for Turn {
    type Kept = &'static str;

    async fn stirs(&mut self) {
        let _ = self.stir.wait_for(|s| *s).await;
    }

    async fn set_aside(self) -> Result<&'static str, String> {
        self.released.fetch_add(1, Ordering::Relaxed);
        if self.fail {
            Err("its worker died".into())
        } else {
            Ok(self.name)
        }
    }
}

fn ok(text: &str) -> Outcome {
    Outcome {
        text: text.into(),
        is_error: false,
        ..Outcome::default()
    }
}

struct Harness {
    bridge: Arc<Bridge<Turn>>,
    released: Arc<AtomicUsize>,
    stirs: Vec<watch::Sender<bool>>,
}

impl Harness {
    fn new(timeout: Duration, grace: Duration) -> Self {
        Self {
            bridge: Arc::new(Bridge::new(ParkingRules { timeout, grace })),
            released: Arc::default(),
            stirs: Vec::new(),
        }
    }

    /// Parks `name` for `owner` with calls `toolu_<name>_1..=n`; returns its link.
    fn park(&mut self, owner: &str, name: &'static str, calls: usize, fail: bool) -> Arc<Link> {
        let (tx, rx) = watch::channel(false);
        self.stirs.push(tx);
        let link = self.bridge.link(name);
        let calls = (1..=calls)
            .map(|i| (format!("toolu_{name}_{i}"), "get_weather".to_owned()))
            .collect();
        let info = ParkInfo::new(owner.into(), format!("session-{name}"), calls);
        let turn = Turn {
            name,
            stir: rx,
            fail,
            released: self.released.clone(),
        };
        self.bridge.park(info, turn, link.clone(), 8);
        link
    }
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn results(name: &str, n: usize) -> Vec<(String, Outcome)> {
    (1..=n)
        .map(|i| (format!("toolu_{name}_{i}"), ok(&format!("r{i}"))))
        .collect()
}

#[tokio::test]
async fn a_holding_turn_is_continued_by_its_owner_with_every_result() {
    let mut h = Harness::new(Duration::from_secs(60), Duration::from_secs(5));
    let link = h.park("key-a", "a", 2, false);
    assert_eq!(h.bridge.parked_turns(), 1);
    let one = results("a", 1);
    assert!(
        matches!(h.bridge.resume("key-a", one).await, Err(ContinueError::Missing(m)) if m == "call_a_2")
    );
    assert!(matches!(
        h.bridge.resume("key-b", results("a", 2)).await,
        Err(ContinueError::Unknown(_))
    ));
    match h.bridge.resume("key-a", results("a", 2)).await {
        Ok(Continuation::Held(t)) => assert_eq!(t.name, "a"),
        _ => panic!("the turn itself, still holding its worker"),
    }
    assert_eq!(
        link.ask("toolu_a_2").await,
        ok("r2"),
        "the results went to the CLI"
    );
    assert!(matches!(
        h.bridge.resume("key-a", results("a", 2)).await,
        Err(ContinueError::Unknown(_))
    ));
    assert_eq!(h.bridge.parked_turns(), 0);
}

#[tokio::test]
async fn a_released_turn_keeps_its_conversation_for_the_results() {
    let mut h = Harness::new(Duration::from_secs(60), Duration::ZERO);
    h.park("key-a", "a", 1, false);
    h.bridge.relieve(1, 0);
    settle().await;
    assert_eq!(h.released.load(Ordering::Relaxed), 1);
    assert_eq!(
        (h.bridge.parked_turns(), h.bridge.set_aside_turns()),
        (0, 1)
    );
    assert_eq!(h.bridge.releases(), [("pool_full", 1)]);
    match h.bridge.resume("key-a", results("a", 1)).await {
        Ok(Continuation::SetAside { kept, info }) => {
            assert_eq!(kept, "a");
            assert_eq!(info.session, "session-a");
            // A continuation refused before it ran (rate limit) parks it again.
            h.bridge.clone().park_set_aside(info, kept);
        }
        _ => panic!("what continues its conversation"),
    }
    assert_eq!(h.bridge.set_aside_turns(), 1);
    assert!(matches!(
        h.bridge.resume("key-a", results("a", 1)).await,
        Ok(Continuation::SetAside { kept: "a", .. })
    ));
}

#[tokio::test]
async fn the_cli_moving_on_sets_the_turn_aside_and_a_failed_turn_refuses_late_results() {
    let mut h = Harness::new(Duration::from_secs(60), Duration::from_secs(60));
    h.park("key-a", "a", 1, false);
    h.park("key-a", "b", 1, true);
    h.stirs[0].send_replace(true);
    h.stirs[1].send_replace(true);
    settle().await;
    assert_eq!(h.bridge.releases(), [("cli_moved_on", 2)]);
    assert!(matches!(
        h.bridge.resume("key-a", results("a", 1)).await,
        Ok(Continuation::SetAside { kept: "a", .. })
    ));
    let e = h.bridge.resume("key-a", results("b", 1)).await.err();
    assert!(
        matches!(&e, Some(ContinueError::Ended { call, why: Ended::Failed(_) }) if call == "call_b_1"),
        "{e:?}"
    );
}

#[tokio::test]
async fn past_the_deadline_a_result_is_refused_naming_the_call_and_why() {
    let mut h = Harness::new(Duration::from_millis(300), Duration::ZERO);
    h.park("key-a", "a", 1, false);
    h.park("key-a", "b", 1, false);
    h.bridge.relieve(1, 0); // "a" is set aside, "b" holds its worker
    settle().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    settle().await;
    assert_eq!(
        (h.bridge.parked_turns(), h.bridge.set_aside_turns()),
        (0, 0)
    );
    for name in ["a", "b"] {
        let Err(e) = h.bridge.resume("key-a", results(name, 1)).await else {
            panic!("a late result is refused");
        };
        assert!(matches!(
            e,
            ContinueError::Ended {
                why: Ended::Expired(_),
                ..
            }
        ));
        let text = e.to_string();
        assert!(text.contains(&format!("call_{name}_1")) && text.contains("tool_result_timeout"));
    }
}

#[tokio::test]
async fn deleting_a_session_ends_its_parked_turns_only() {
    let mut h = Harness::new(Duration::from_secs(60), Duration::from_secs(5));
    h.park("key", "a", 1, false);
    h.park("key", "b", 1, false);
    h.bridge.end_session("other-key", "session-a");
    assert_eq!(h.bridge.parked_turns(), 2);
    h.bridge.end_session("key", "session-a");
    assert_eq!(h.bridge.parked_turns(), 1);
    assert!(matches!(
        h.bridge.resume("key", results("a", 1)).await,
        Err(ContinueError::Ended {
            why: Ended::SessionDeleted,
            ..
        })
    ));
}

#[tokio::test]
async fn a_key_at_its_limit_gives_its_oldest_worker_up_or_waits_out_the_grace() {
    let mut h = Harness::new(Duration::from_secs(60), Duration::from_millis(50));
    h.park("key", "a", 1, false);
    h.park("key", "b", 1, false);
    h.park("other", "c", 1, false);
    let wait = h.bridge.make_room("key", 2).unwrap_err();
    assert!(wait <= Duration::from_millis(50));
    assert_eq!(h.bridge.make_room("key", 3), Ok(()));
    assert_eq!(h.bridge.make_room("other", 1).map_err(|_| ()), Err(()));
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(h.bridge.make_room("key", 2), Ok(()), "the oldest gives way");
    settle().await;
    assert!(matches!(
        h.bridge.resume("key", results("a", 1)).await,
        Ok(Continuation::SetAside { kept: "a", .. })
    ));
    assert_eq!(h.bridge.parked_turns(), 2);
    // A turn parked past its key's limit (requests that raced the check) is set aside at once.
    let (tx, rx) = watch::channel(false);
    h.stirs.push(tx);
    let info = ParkInfo::new(
        "key".into(),
        "s".into(),
        vec![("toolu_d".into(), "f".into())],
    );
    let d = Turn {
        name: "d",
        stir: rx,
        fail: false,
        released: h.released.clone(),
    };
    h.bridge.park(info, d, h.bridge.link("d"), 1);
    settle().await;
    assert_eq!(h.bridge.set_aside_turns(), 1);
    assert_eq!(h.bridge.releases(), [("key_limit", 2)]);
}

#[tokio::test]
async fn pool_pressure_releases_one_parked_turn_per_waiting_turn_nothing_else_serves() {
    let mut h = Harness::new(Duration::from_secs(60), Duration::ZERO);
    for name in ["a", "b", "c", "d"] {
        h.park("key", name, 1, false);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    h.bridge.relieve(3, 2);
    settle().await;
    assert_eq!(h.released.load(Ordering::Relaxed), 1);
    assert!(matches!(
        h.bridge.resume("key", results("a", 1)).await,
        Ok(Continuation::SetAside { .. })
    ));
    // Just after a release its worker still counts as on its way.
    h.bridge.relieve(1, 0);
    settle().await;
    assert_eq!(h.released.load(Ordering::Relaxed), 1);
    h.bridge.relieve(2, 0);
    settle().await;
    assert_eq!(h.released.load(Ordering::Relaxed), 2, "the next oldest");
    assert_eq!(h.bridge.parked_turns(), 2);
}
