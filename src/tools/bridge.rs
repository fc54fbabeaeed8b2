//! The bridge between a worker's MCP calls and the client's tool results.
//!
//! A turn with tools runs on a worker whose CLI knows the gateway's MCP server (`--mcp-config`,
//! with the worker's own token). When the model calls tools, the turn reports the calls and the
//! client's response ends with `tool_calls`; the turn is *parked* here, holding its worker,
//! until a request brings the results (`tool` messages naming the calls) or
//! `pool.tool_result_timeout` passes. Meanwhile the CLI calls the MCP server, one call at a
//! time: a call whose result is there is answered at once, any other is held until it comes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::wire::Function;

/// A tool's outcome as the CLI receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The text given to the model.
    pub text: String,
    /// True when it reports a failure (no result came).
    pub is_error: bool,
}

enum Slot {
    /// The CLI asked; the result has not come.
    Asked(oneshot::Sender<Outcome>),
    /// The result came first.
    Ready(Outcome),
}

/// One turn's exchange of calls and results, found by the worker's token.
#[derive(Default)]
pub struct Link {
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Link")
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    /// The CLI calls `id`: its result, now or once it comes (an error outcome if the turn is
    /// given up first).
    pub async fn ask(&self, id: &str) -> Outcome {
        let rx = {
            let mut slots = lock(&self.slots);
            if let Some(Slot::Ready(o)) = slots.remove(id) {
                return o;
            }
            let (tx, rx) = oneshot::channel();
            slots.insert(id.to_owned(), Slot::Asked(tx));
            rx
        };
        rx.await.unwrap_or_else(|_| Outcome {
            text: "the client gave no result for this call".into(),
            is_error: true,
        })
    }

    /// The client's result for `id`.
    pub fn answer(&self, id: &str, outcome: Outcome) {
        let mut slots = lock(&self.slots);
        match slots.remove(id) {
            Some(Slot::Asked(tx)) => {
                let _ = tx.send(outcome);
            }
            _ => {
                slots.insert(id.to_owned(), Slot::Ready(outcome));
            }
        }
    }

    /// Gives up every waiting call (the turn is ending).
    pub fn abandon(&self) {
        lock(&self.slots).clear();
    }
}

/// What a parked turn keeps: the rest of the turn, to be rendered for the request that brings
/// the results.
pub struct Parked<T> {
    /// The key that owns the turn (only it may continue it).
    pub owner: Arc<str>,
    /// Its session (deleting the session ends the turn).
    pub session: String,
    /// The CLI ids of the calls waiting for results.
    pub calls: Vec<String>,
    /// The turn's link (results go there).
    pub link: Arc<Link>,
    /// The rest of the turn.
    pub turn: T,
}

/// Why parked turn could not be continued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContinueError {
    /// No parked turn has these calls (never made, already answered, or timed out).
    #[error(
        "no turn is waiting for the results of {0} (unknown call ids, or pool.tool_result_timeout passed and the turn ended)"
    )]
    Unknown(String),
    /// Some of the turn's calls have no result in the request.
    #[error("results are missing for tool calls {0}: send one `tool` message per call")]
    Missing(String),
}

/// The functions of one set.
type FunctionSet = Arc<Vec<Function>>;

/// Function sets kept before old ones are forgotten.
const MAX_SETS: usize = 4096;
/// How long an unused function set is kept once there are many.
const SET_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// A parked turn, shared by the ids of its calls (taken once).
type ParkedCell<T> = Arc<Mutex<Option<Parked<T>>>>;

/// The bridge's registries: function sets by id, live turns by worker token, parked turns by
/// call id.
pub struct Bridge<T> {
    /// Function sets with their last use.
    sets: Mutex<HashMap<String, (FunctionSet, Instant)>>,
    /// Held by the running turns (an entry dies with its turn).
    links: Mutex<HashMap<String, Weak<Link>>>,
    parked: Mutex<HashMap<String, ParkedCell<T>>>,
    /// How long a parked turn waits for its results.
    pub timeout: Duration,
}

impl<T> std::fmt::Debug for Bridge<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<T: Send + 'static> Bridge<T> {
    /// An empty bridge whose parked turns wait `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            sets: Mutex::default(),
            links: Mutex::default(),
            parked: Mutex::default(),
            timeout,
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

    /// Parks a turn until its results come or the timeout passes (then `on_timeout` gets it).
    pub fn park(self: &Arc<Self>, parked: Parked<T>, on_timeout: impl FnOnce(T) + Send + 'static) {
        let ids = parked.calls.clone();
        let link = parked.link.clone();
        let cell = Arc::new(Mutex::new(Some(parked)));
        {
            let mut map = lock(&self.parked);
            for id in &ids {
                map.insert(id.clone(), cell.clone());
            }
        }
        let bridge = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(bridge.timeout).await;
            let expired = lock(&cell).take();
            if let Some(p) = expired {
                bridge.forget(&p.calls);
                link.abandon();
                tracing::info!(
                    calls = p.calls.len(),
                    "tool results never came: the turn ends"
                );
                on_timeout(p.turn);
            }
        });
    }

    fn forget(&self, ids: &[String]) {
        let mut map = lock(&self.parked);
        for id in ids {
            map.remove(id);
        }
    }

    /// Takes the parked turn that `results` (CLI call id → outcome) answer, for `owner`, and
    /// hands the results to its link.
    pub fn resume(&self, owner: &str, results: Vec<(String, Outcome)>) -> Result<T, ContinueError> {
        let first = results
            .first()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let cell = lock(&self.parked)
            .get(&first)
            .cloned()
            .ok_or_else(|| ContinueError::Unknown(super::wire::openai_id(&first)))?;
        let mut guard = lock(&cell);
        let Some(parked) = guard.as_ref() else {
            return Err(ContinueError::Unknown(super::wire::openai_id(&first)));
        };
        if &*parked.owner != owner {
            return Err(ContinueError::Unknown(super::wire::openai_id(&first)));
        }
        let missing: Vec<String> = parked
            .calls
            .iter()
            .filter(|c| !results.iter().any(|(id, _)| id == *c))
            .map(|c| super::wire::openai_id(c))
            .collect();
        if !missing.is_empty() {
            return Err(ContinueError::Missing(missing.join(", ")));
        }
        let parked = guard.take().expect("checked above");
        drop(guard);
        self.forget(&parked.calls);
        for (id, outcome) in results {
            if parked.calls.contains(&id) {
                parked.link.answer(&id, outcome);
            }
        }
        Ok(parked.turn)
    }

    /// Ends the turns parked in `owner`'s `session` (it was deleted): their calls get no
    /// result and the turns are handed to `end`.
    pub fn end_session(&self, owner: &str, session: &str, mut end: impl FnMut(T)) {
        let cells: Vec<ParkedCell<T>> = lock(&self.parked).values().cloned().collect();
        for cell in cells {
            let mut guard = lock(&cell);
            let matches = guard
                .as_ref()
                .is_some_and(|p| &*p.owner == owner && p.session == session);
            if matches {
                if let Some(p) = guard.take() {
                    drop(guard);
                    self.forget(&p.calls);
                    p.link.abandon();
                    end(p.turn);
                }
            }
        }
    }

    /// Turns parked now.
    pub fn parked_turns(&self) -> usize {
        let map = lock(&self.parked);
        let mut cells: Vec<*const Mutex<Option<Parked<T>>>> =
            map.values().map(Arc::as_ptr).collect();
        cells.sort();
        cells.dedup();
        cells.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Outcome {
        Outcome {
            text: text.into(),
            is_error: false,
        }
    }

    #[tokio::test]
    async fn a_call_gets_its_result_whichever_comes_first() {
        let link = Arc::new(Link::default());
        link.answer("toolu_b", ok("early"));
        assert_eq!(link.ask("toolu_b").await, ok("early"));
        let asking = tokio::spawn({
            let link = link.clone();
            async move { link.ask("toolu_a").await }
        });
        tokio::task::yield_now().await;
        while lock(&link.slots).is_empty() {
            tokio::task::yield_now().await;
        }
        link.answer("toolu_a", ok("late"));
        assert_eq!(asking.await.unwrap(), ok("late"));
        let given_up = tokio::spawn({
            let link = link.clone();
            async move { link.ask("toolu_c").await }
        });
        while lock(&link.slots).is_empty() {
            tokio::task::yield_now().await;
        }
        link.abandon();
        assert!(given_up.await.unwrap().is_error);
    }

    #[tokio::test]
    async fn a_parked_turn_is_resumed_by_its_owner_with_every_result_or_times_out() {
        let bridge: Arc<Bridge<&'static str>> = Arc::new(Bridge::new(Duration::from_millis(50)));
        let link = bridge.link("token");
        let calls = vec!["toolu_1".to_owned(), "toolu_2".to_owned()];
        bridge.park(
            Parked {
                owner: "key-a".into(),
                session: "s".into(),
                calls: calls.clone(),
                link: link.clone(),
                turn: "the turn",
            },
            |_| {},
        );
        assert_eq!(bridge.parked_turns(), 1);
        let one = vec![("toolu_1".to_owned(), ok("r1"))];
        assert!(
            matches!(bridge.resume("key-a", one.clone()), Err(ContinueError::Missing(m)) if m == "call_2")
        );
        let both = vec![
            ("toolu_1".to_owned(), ok("r1")),
            ("toolu_2".to_owned(), ok("r2")),
        ];
        assert!(matches!(
            bridge.resume("key-b", both.clone()),
            Err(ContinueError::Unknown(_))
        ));
        assert_eq!(bridge.resume("key-a", both.clone()), Ok("the turn"));
        assert_eq!(link.ask("toolu_2").await, ok("r2"));
        assert!(matches!(
            bridge.resume("key-a", both),
            Err(ContinueError::Unknown(_))
        ));
        assert_eq!(bridge.parked_turns(), 0);

        let (tx, rx) = oneshot::channel();
        let link = bridge.link("token");
        bridge.park(
            Parked {
                owner: "key-a".into(),
                session: "s".into(),
                calls: vec!["toolu_3".into()],
                link,
                turn: "late turn",
            },
            move |t| {
                let _ = tx.send(t);
            },
        );
        assert_eq!(rx.await.unwrap(), "late turn");
        assert_eq!(bridge.parked_turns(), 0);
    }

    #[tokio::test]
    async fn deleting_a_session_ends_its_parked_turns_only() {
        let bridge: Arc<Bridge<&'static str>> = Arc::new(Bridge::new(Duration::from_secs(60)));
        for (session, call, turn) in [("s1", "toolu_a", "turn a"), ("s2", "toolu_b", "turn b")] {
            let link = bridge.link(session);
            let parked = Parked {
                owner: "key".into(),
                session: session.into(),
                calls: vec![call.into()],
                link,
                turn,
            };
            bridge.park(parked, |_| {});
        }
        let mut ended = Vec::new();
        bridge.end_session("other-key", "s1", |t| ended.push(t));
        assert!(ended.is_empty());
        bridge.end_session("key", "s1", |t| ended.push(t));
        assert_eq!(ended, ["turn a"]);
        assert_eq!(bridge.parked_turns(), 1);
    }
}
