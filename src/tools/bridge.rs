//! The bridge between workers' MCP calls and the clients' tool results: the function sets
//! workers list, the links of running turns (found by the worker's token), and the turns
//! parked for results (found by their call ids), each run by its keeper (`keeper`).
//!
//! A turn with tools runs on a worker whose CLI knows the gateway's MCP server (`--mcp-config`,
//! with the worker's own token). When the model calls tools, the turn reports the calls and the
//! client's response ends with `tool_calls`; the turn is *parked* here until a request brings
//! the results (`tool` messages naming the calls) or `pool.tool_result_timeout` passes.
//! Meanwhile the CLI calls the MCP server, one call at a time: a call whose result is there is
//! answered at once, any other is held until it comes. A parked turn gives its worker up when
//! it is needed (see `parking`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::keeper::{Continuation, ContinueError, HeldTurn, KeeperMsg, ParkingLot, keep};
use super::link::{Link, Outcome, lock};
use super::parking::{
    Candidate, Ended, KeyRoom, ParkInfo, ReleaseCause, Tombstones, pick_for_pool, room_for_key,
};
use super::wire::{Function, openai_id};

/// The functions of one set.
type FunctionSet = Arc<Vec<Function>>;

/// Function sets kept before old ones are forgotten.
const MAX_SETS: usize = 4096;
/// How long an unused function set is kept once there are many.
const SET_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long a finished release still counts as a worker on its way to a waiting turn (until
/// the pool's snapshot shows the worker handed on).
const RELEASE_SETTLE: Duration = Duration::from_secs(1);

/// A parked turn in the registry: what is known of it and how to reach its keeper.
struct Entry<T: HeldTurn> {
    info: Arc<ParkInfo>,
    tx: mpsc::UnboundedSender<KeeperMsg<T>>,
}

/// How long parked turns wait and when they give their workers up.
#[derive(Debug, Clone, Copy)]
pub struct ParkingRules {
    /// How long a parked turn waits for its results (`pool.tool_result_timeout`).
    pub timeout: Duration,
    /// How long a parked turn keeps its worker however busy the pool is
    /// (`pool.parked_turn_grace`).
    pub grace: Duration,
}

/// The bridge's registries.
pub struct Bridge<T: HeldTurn> {
    /// Function sets with their last use.
    sets: Mutex<HashMap<String, (FunctionSet, Instant)>>,
    /// Held by the running turns (an entry dies with its turn).
    links: Mutex<HashMap<String, Weak<Link>>>,
    /// Parked turns by call id.
    parked: Mutex<HashMap<String, Arc<Entry<T>>>>,
    /// Calls of turns that ended without their results.
    ended: Mutex<Tombstones>,
    /// Releases that finished lately (see [`RELEASE_SETTLE`]), and releases by cause.
    releases: Mutex<(VecDeque<Instant>, HashMap<&'static str, u64>)>,
    /// How long a parked turn waits for its results.
    pub timeout: Duration,
    /// How long a parked turn keeps its worker however busy the pool is.
    pub grace: Duration,
}

impl<T: HeldTurn> std::fmt::Debug for Bridge<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("timeout", &self.timeout)
            .field("grace", &self.grace)
            .finish()
    }
}

impl<T: HeldTurn> Bridge<T> {
    /// An empty bridge.
    pub fn new(rules: ParkingRules) -> Self {
        Self {
            sets: Mutex::default(),
            links: Mutex::default(),
            parked: Mutex::default(),
            ended: Mutex::default(),
            releases: Mutex::default(),
            timeout: rules.timeout,
            grace: rules.grace,
        }
    }

    /// Registers a function set under its id (or notes its use). Past [`MAX_SETS`], sets
    /// unused for a day are forgotten (their workers have long stopped).
    pub fn add_set(&self, id: &str, functions: Vec<Function>) {
        let now = Instant::now();
        let mut sets = lock(&self.sets);
        if sets.len() >= MAX_SETS && !sets.contains_key(id) {
            sets.retain(|_, (_, used)| now.duration_since(*used) < SET_RETENTION);
        }
        sets.entry(id.to_owned())
            .and_modify(|(_, used)| *used = now)
            .or_insert_with(|| (Arc::new(functions), now));
    }

    /// The functions of a set.
    pub fn set(&self, id: &str) -> Option<Arc<Vec<Function>>> {
        lock(&self.sets).get(id).map(|(f, _)| f.clone())
    }

    /// A new link for the turn starting on the worker with `token` (the turn holds it; the
    /// entry goes when the turn ends).
    pub fn link(&self, token: &str) -> Arc<Link> {
        let link = Arc::new(Link::default());
        let mut links = lock(&self.links);
        links.retain(|_, l| l.strong_count() > 0);
        links.insert(token.to_owned(), Arc::downgrade(&link));
        link
    }

    /// The link of the turn running on the worker with `token`.
    pub fn link_of(&self, token: &str) -> Option<Arc<Link>> {
        lock(&self.links).get(token).and_then(Weak::upgrade)
    }

    /// Parks a turn holding its worker until its results come, it is set aside, or
    /// `timeout` passes. When its key already holds `limit` workers with parked turns (requests
    /// that raced past [`Bridge::make_room`]), it is set aside at once.
    pub fn park(self: &Arc<Self>, info: ParkInfo, turn: T, link: Arc<Link>, limit: usize) {
        let over = self.holding_of(&info.owner).len() >= limit;
        let info = Arc::new(info);
        tracing::info!(session = %info.session, calls = %info.call_ids().join(","), "a turn waits for the client's tool results, holding its worker");
        let tx = self.register(info.clone(), Ok(turn), Some(link));
        if over && info.begin_release() {
            let _ = tx.send(KeeperMsg::Release(ReleaseCause::KeyLimit));
        }
    }

    /// Parks a turn already set aside (its results continue its conversation with a new turn)
    /// until its results come or its deadline passes.
    pub fn park_set_aside(self: Arc<Self>, info: Arc<ParkInfo>, kept: T::Kept) {
        let info = Arc::new(info.set_aside_copy());
        self.register(info, Err(kept), None);
    }

    fn register(
        self: &Arc<Self>,
        info: Arc<ParkInfo>,
        start: Result<T, T::Kept>,
        link: Option<Arc<Link>>,
    ) -> mpsc::UnboundedSender<KeeperMsg<T>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let entry = Arc::new(Entry {
            info: info.clone(),
            tx: tx.clone(),
        });
        {
            let mut map = lock(&self.parked);
            for (id, _) in &info.calls {
                map.insert(id.clone(), entry.clone());
            }
        }
        tokio::spawn(keep(self.clone(), info, link, start, rx));
        tx
    }

    /// Removes a parked turn from the registry.
    fn forget_turn(&self, info: &ParkInfo) {
        let mut map = lock(&self.parked);
        for (id, _) in &info.calls {
            if map.get(id).is_some_and(|e| std::ptr::eq(&*e.info, info)) {
                map.remove(id);
            }
        }
    }

    /// Remembers why a parked turn ended without its results.
    fn bury_turn(&self, info: &ParkInfo, why: &Ended) {
        lock(&self.ended).bury(info.calls.iter().map(|(id, _)| id.as_str()), why);
    }

    /// Counts a finished release (it still counts as a worker on its way for a moment).
    fn count_release(&self, cause: ReleaseCause) {
        let mut r = lock(&self.releases);
        r.0.push_back(Instant::now());
        *r.1.entry(cause.as_str()).or_default() += 1;
    }

    /// Takes the parked turn that `results` (CLI call id → outcome) answer, for `owner`: the
    /// turn itself if it still holds its worker (the results went to it), else what continues
    /// its conversation.
    pub async fn resume(
        &self,
        owner: &str,
        results: Vec<(String, Outcome)>,
    ) -> Result<Continuation<T>, ContinueError> {
        let first = results
            .first()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let entry = lock(&self.parked).get(&first).cloned();
        let Some(entry) = entry else {
            return Err(match lock(&self.ended).why(&first) {
                Some(why) => ContinueError::Ended {
                    call: openai_id(&first),
                    why: why.clone(),
                },
                None => ContinueError::Unknown(openai_id(&first)),
            });
        };
        let (reply, answer) = oneshot::channel();
        let msg = KeeperMsg::Continue {
            owner: owner.to_owned(),
            results,
            reply,
        };
        if entry.tx.send(msg).is_err() {
            return Err(ContinueError::Unknown(openai_id(&first)));
        }
        match answer.await {
            Ok(r) => r,
            // The keeper ended meanwhile (deadline, deleted session).
            Err(_) => Err(match lock(&self.ended).why(&first) {
                Some(why) => ContinueError::Ended {
                    call: openai_id(&first),
                    why: why.clone(),
                },
                None => ContinueError::Unknown(openai_id(&first)),
            }),
        }
    }

    /// Ends the turns parked in `owner`'s `session` (it was deleted): they leave the registry at
    /// once, and their keepers drop them (which interrupts a turn holding its worker).
    pub fn end_session(&self, owner: &str, session: &str) {
        for e in self.entries() {
            if &*e.info.owner == owner && e.info.session == session {
                let _ = e.tx.send(KeeperMsg::End(Ended::SessionDeleted));
                self.forget(&e.info);
                self.bury(&e.info, &Ended::SessionDeleted);
            }
        }
    }

    /// A new turn comes for `owner`'s `session`: a turn of it parked holding its worker gives
    /// the worker up (the new turn runs once it has; the results may still come later).
    pub fn release_session(&self, owner: &str, session: &str) {
        for e in self.entries() {
            if &*e.info.owner == owner && e.info.session == session {
                self.release(&e, ReleaseCause::SessionMovedOn);
            }
        }
    }

    /// Every parked turn once.
    fn entries(&self) -> Vec<Arc<Entry<T>>> {
        let map = lock(&self.parked);
        let mut out: Vec<Arc<Entry<T>>> = Vec::new();
        for e in map.values() {
            if !out.iter().any(|o| Arc::ptr_eq(o, e)) {
                out.push(e.clone());
            }
        }
        out
    }

    fn holding_of(&self, owner: &str) -> Vec<Arc<Entry<T>>> {
        self.entries()
            .into_iter()
            .filter(|e| &*e.info.owner == owner && e.info.holds())
            .collect()
    }

    /// Before a turn of `owner` that may park: `Ok` when the key may hold one more worker with
    /// a parked turn (if it holds `limit` already, its oldest parked turn past the grace gives
    /// its worker up to make room); else how long until one may.
    pub fn make_room(&self, owner: &str, limit: usize) -> Result<(), Duration> {
        let mine = self.holding_of(owner);
        let candidates: Vec<Candidate> = mine.iter().map(|e| candidate(&e.info)).collect();
        match room_for_key(&candidates, limit, Instant::now(), self.grace) {
            KeyRoom::Free => Ok(()),
            KeyRoom::ReleaseOldest(i) => {
                self.release(&mine[i], ReleaseCause::KeyLimit);
                Ok(())
            }
            KeyRoom::Full(wait) => Err(wait),
        }
    }

    /// Pool pressure: `waiting` turns wait for a worker and none is free, `coming` workers are
    /// on their way (starting, stopping); parked turns past their grace give their workers up,
    /// the oldest first, one per waiting turn that nothing else will serve.
    pub fn relieve(&self, waiting: usize, coming: usize) {
        let entries = self.entries();
        if entries.is_empty() {
            return;
        }
        let now = Instant::now();
        let settling = {
            let mut r = lock(&self.releases);
            while r
                .0
                .front()
                .is_some_and(|t| now.duration_since(*t) > RELEASE_SETTLE)
            {
                r.0.pop_front();
            }
            r.0.len()
        };
        let releasing = entries.iter().filter(|e| e.info.releasing()).count();
        let candidates: Vec<Candidate> = entries.iter().map(|e| candidate(&e.info)).collect();
        let coming = coming + releasing + settling;
        for i in pick_for_pool(waiting, coming, &candidates, now, self.grace) {
            self.release(&entries[i], ReleaseCause::PoolFull);
        }
    }

    fn release(&self, entry: &Entry<T>, cause: ReleaseCause) {
        if entry.info.begin_release() {
            let _ = entry.tx.send(KeeperMsg::Release(cause));
        }
    }

    /// Parked turns holding their workers now.
    pub fn parked_turns(&self) -> usize {
        self.entries().iter().filter(|e| e.info.holds()).count()
    }

    /// Parked turns set aside (waiting for results without a worker) now.
    pub fn set_aside_turns(&self) -> usize {
        self.entries().iter().filter(|e| !e.info.holds()).count()
    }

    /// Parked turns that gave up their workers since start, by cause.
    pub fn releases(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<(&'static str, u64)> = lock(&self.releases)
            .1
            .iter()
            .map(|(k, n)| (*k, *n))
            .collect();
        v.sort();
        v
    }
}

fn candidate(info: &ParkInfo) -> Candidate {
    Candidate {
        parked_at: info.parked_at,
        holds: info.holds(),
    }
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;

impl<T: HeldTurn> ParkingLot<T> for Bridge<T> {
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn forget(&self, info: &ParkInfo) {
        self.forget_turn(info);
    }
    fn bury(&self, info: &ParkInfo, why: &Ended) {
        self.bury_turn(info, why);
    }
    fn note_release(&self, cause: ReleaseCause) {
        self.count_release(cause);
    }
    fn park_set_aside(self: Arc<Self>, info: Arc<ParkInfo>, kept: T::Kept) {
        Bridge::park_set_aside(self, info, kept);
    }
}
