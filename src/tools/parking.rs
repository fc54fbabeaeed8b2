//! What the bridge knows of parked turns, and its decisions about them (pure): which parked
//! turns give up their workers when turns wait for one, whether a key may park another turn,
//! and what is remembered of turns that ended without their results.
//!
//! A turn *parked* for the client's tool results first *holds* its worker (the CLI waits in
//! the MCP call, so the results continue the very same turn). It gives the worker up (it is
//! *set aside*: the CLI turn is interrupted, the conversation kept) when the pool needs the
//! worker and the turn has been parked longer than `pool.parked_turn_grace`, when its key
//! parks more turns than it may hold, when its conversation gets a new message instead of the
//! results, or when the CLI stopped waiting by itself; its results then continue the
//! conversation with a new turn.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What is known of one parked turn (shared by its keeper and the bridge's registry).
#[derive(Debug)]
pub struct ParkInfo {
    /// The key that owns the turn (only it may continue it).
    pub owner: Arc<str>,
    /// Its session.
    pub session: String,
    /// The calls waiting for results: (the CLI's call id, the function's name), in order.
    pub calls: Vec<(String, String)>,
    /// When it was parked (its deadline is `pool.tool_result_timeout` later).
    pub parked_at: Instant,
    /// True while the turn holds its worker.
    holding: AtomicBool,
    /// True while the turn is giving its worker up.
    releasing: AtomicBool,
}

impl ParkInfo {
    /// A turn parked now, holding its worker.
    pub fn new(owner: Arc<str>, session: String, calls: Vec<(String, String)>) -> Self {
        Self {
            owner,
            session,
            calls,
            parked_at: Instant::now(),
            holding: AtomicBool::new(true),
            releasing: AtomicBool::new(false),
        }
    }

    /// The CLI ids of its calls.
    pub fn call_ids(&self) -> Vec<&str> {
        self.calls.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// True while it holds its worker and is not giving it up.
    pub fn holds(&self) -> bool {
        self.holding.load(Ordering::Relaxed) && !self.releasing.load(Ordering::Relaxed)
    }

    /// True while it is giving its worker up.
    pub fn releasing(&self) -> bool {
        self.releasing.load(Ordering::Relaxed)
    }

    /// Marks the start of its release; false if it was not holding or already releasing.
    pub(super) fn begin_release(&self) -> bool {
        self.holding.load(Ordering::Relaxed) && !self.releasing.swap(true, Ordering::Relaxed)
    }

    /// Marks the end of its release: it holds no worker any more.
    pub(super) fn released(&self) {
        self.holding.store(false, Ordering::Relaxed);
        self.releasing.store(false, Ordering::Relaxed);
    }

    /// A copy that is not holding a worker (a turn set aside, parked again).
    pub(super) fn set_aside_copy(&self) -> Self {
        Self {
            owner: self.owner.clone(),
            session: self.session.clone(),
            calls: self.calls.clone(),
            parked_at: self.parked_at,
            holding: AtomicBool::new(false),
            releasing: AtomicBool::new(false),
        }
    }
}

/// Why a parked turn gives up its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseCause {
    /// Turns wait for a worker and none is free.
    PoolFull,
    /// Its key parks more turns than it may hold.
    KeyLimit,
    /// The CLI stopped waiting for the results by itself (its own limit on an MCP call), or the
    /// turn ended.
    CliMovedOn,
    /// Its conversation got a new message instead of the results.
    SessionMovedOn,
}

impl ReleaseCause {
    /// How logs and metrics name it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseCause::PoolFull => "pool_full",
            ReleaseCause::KeyLimit => "key_limit",
            ReleaseCause::CliMovedOn => "cli_moved_on",
            ReleaseCause::SessionMovedOn => "session_moved_on",
        }
    }
}

/// Why a parked turn ended without its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// `pool.tool_result_timeout` passed.
    Expired(Duration),
    /// Its session was deleted.
    SessionDeleted,
    /// The turn failed while it waited and its conversation cannot take the results.
    Failed(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Expired(d) => write!(
                f,
                "its results did not come within pool.tool_result_timeout ({}), so the turn ended",
                humantime::format_duration(*d)
            ),
            Ended::SessionDeleted => f.write_str("its session was deleted"),
            Ended::Failed(why) => write!(f, "the turn failed while it waited: {why}"),
        }
    }
}

/// A parked turn as the release decisions see it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// When it was parked.
    pub parked_at: Instant,
    /// It holds its worker and is not giving it up.
    pub holds: bool,
}

/// The parked turns that give up their workers now, oldest first: as many as turns `waiting`
/// for a worker that none of the workers `coming` (starting, stopping, being given up) will
/// serve, among those holding a worker for longer than `grace`.
pub fn pick_for_pool(
    waiting: usize,
    coming: usize,
    parked: &[Candidate],
    now: Instant,
    grace: Duration,
) -> Vec<usize> {
    let wanted = waiting.saturating_sub(coming);
    let mut due: Vec<usize> = (0..parked.len())
        .filter(|&i| parked[i].holds && now.duration_since(parked[i].parked_at) >= grace)
        .collect();
    due.sort_by_key(|&i| parked[i].parked_at);
    due.truncate(wanted);
    due
}

/// Whether a key may park one more turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRoom {
    /// It holds fewer workers parked than it may.
    Free,
    /// It holds as many as it may: its parked turn at this index (the oldest past its grace)
    /// gives its worker up to make room.
    ReleaseOldest(usize),
    /// It holds as many as it may, all within their grace: retry after this long.
    Full(Duration),
}

/// Whether a key whose parked turns are `parked` may park another one, holding at most `limit`
/// workers.
pub fn room_for_key(parked: &[Candidate], limit: usize, now: Instant, grace: Duration) -> KeyRoom {
    let holding: Vec<usize> = (0..parked.len()).filter(|&i| parked[i].holds).collect();
    if holding.len() < limit {
        return KeyRoom::Free;
    }
    let Some(&oldest) = holding.iter().min_by_key(|&&i| parked[i].parked_at) else {
        return KeyRoom::Free;
    };
    let age = now.duration_since(parked[oldest].parked_at);
    if age >= grace {
        KeyRoom::ReleaseOldest(oldest)
    } else {
        KeyRoom::Full(grace - age)
    }
}

/// How many ended calls are remembered (oldest forgotten first).
const TOMBSTONES: usize = 10_000;

/// The calls of turns that ended without their results, with why (so a late result is told).
#[derive(Debug, Default)]
pub struct Tombstones {
    reasons: HashMap<String, Ended>,
    order: VecDeque<String>,
}

impl Tombstones {
    /// Remembers why the turn with these calls ended.
    pub fn bury<'a>(&mut self, calls: impl IntoIterator<Item = &'a str>, why: &Ended) {
        for id in calls {
            if self.reasons.insert(id.to_owned(), why.clone()).is_none() {
                self.order.push_back(id.to_owned());
            }
        }
        while self.order.len() > TOMBSTONES {
            if let Some(old) = self.order.pop_front() {
                self.reasons.remove(&old);
            }
        }
    }

    /// Why the turn that made call `id` ended, if it is remembered.
    pub fn why(&self, id: &str) -> Option<&Ended> {
        self.reasons.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: Instant, secs_ago: u64, holds: bool) -> Candidate {
        Candidate {
            parked_at: now - Duration::from_secs(secs_ago),
            holds,
        }
    }

    #[test]
    fn the_oldest_parked_turns_past_their_grace_give_way_one_per_waiting_turn() {
        let now = Instant::now();
        let grace = Duration::from_secs(5);
        let parked = [
            at(now, 10, true),  // 0
            at(now, 30, true),  // 1: the oldest
            at(now, 2, true),   // 2: within its grace
            at(now, 60, false), // 3: already set aside
            at(now, 20, true),  // 4
        ];
        assert_eq!(pick_for_pool(1, 0, &parked, now, grace), [1]);
        assert_eq!(pick_for_pool(2, 0, &parked, now, grace), [1, 4]);
        assert_eq!(pick_for_pool(9, 0, &parked, now, grace), [1, 4, 0]);
        // Workers on their way serve waiting turns first.
        assert_eq!(pick_for_pool(3, 2, &parked, now, grace), [1]);
        assert!(pick_for_pool(2, 2, &parked, now, grace).is_empty());
        assert!(pick_for_pool(0, 0, &parked, now, grace).is_empty());
        // Nobody is past the grace yet.
        assert!(pick_for_pool(3, 0, &parked, now, Duration::from_secs(120)).is_empty());
    }

    #[test]
    fn a_key_at_its_limit_makes_room_with_its_oldest_turn_or_waits_for_its_grace() {
        let now = Instant::now();
        let grace = Duration::from_secs(5);
        let parked = [at(now, 8, true), at(now, 1, true), at(now, 50, false)];
        assert_eq!(room_for_key(&parked, 3, now, grace), KeyRoom::Free);
        assert_eq!(
            room_for_key(&parked, 2, now, grace),
            KeyRoom::ReleaseOldest(0)
        );
        assert_eq!(
            room_for_key(&parked, 2, now, Duration::from_secs(10)),
            KeyRoom::Full(Duration::from_secs(2))
        );
        assert_eq!(room_for_key(&[], 1, now, grace), KeyRoom::Free);
    }

    #[test]
    fn ended_calls_are_remembered_with_why_up_to_a_bound() {
        let mut t = Tombstones::default();
        t.bury(["toolu_a", "toolu_b"], &Ended::SessionDeleted);
        assert_eq!(t.why("toolu_b"), Some(&Ended::SessionDeleted));
        assert_eq!(t.why("toolu_c"), None);
        for i in 0..TOMBSTONES {
            t.bury(
                [format!("toolu_{i}").as_str()],
                &Ended::Expired(Duration::from_secs(1)),
            );
        }
        assert_eq!(t.why("toolu_a"), None, "the oldest are forgotten");
        assert!(t.why(&format!("toolu_{}", TOMBSTONES - 1)).is_some());
        assert!(
            Ended::Expired(Duration::from_secs(600))
                .to_string()
                .contains("pool.tool_result_timeout (10m)")
        );
    }
}
