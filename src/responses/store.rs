//! [`ResponseStore`]: the responses of this replica, for `GET`/`DELETE /v1/responses/{id}` and
//! for `previous_response_id`: each with its owner, its conversation (session) and the
//! messages of that conversation up to it. Kept in memory for a bounded time and number.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::conversation::Msg;

/// One stored response.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The owning key's id.
    pub owner: String,
    /// The conversation it belongs to.
    pub session: String,
    /// The conversation's messages up to and including this response's answer.
    pub history: Vec<Msg>,
    /// The response object.
    pub object: Value,
    at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    responses: HashMap<String, Stored>,
    /// The newest response of each conversation: only it can be continued in place.
    latest: HashMap<String, String>,
}

/// Responses by id.
#[derive(Debug)]
pub struct ResponseStore {
    inner: Mutex<Inner>,
    ttl: Duration,
    capacity: usize,
}

impl ResponseStore {
    /// A store keeping responses for `ttl`, at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            ttl,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a response as the newest of its conversation.
    pub fn put(&self, id: &str, owner: &str, session: &str, history: Vec<Msg>, object: Value) {
        let mut inner = self.lock();
        let ttl = self.ttl;
        inner.responses.retain(|_, s| s.at.elapsed() < ttl);
        if inner.responses.len() >= self.capacity {
            // Drop the oldest tenth at once rather than one per insert.
            let mut ages: Vec<(Instant, String)> = inner
                .responses
                .iter()
                .map(|(k, s)| (s.at, k.clone()))
                .collect();
            ages.sort();
            for (_, k) in ages.into_iter().take(self.capacity / 10 + 1) {
                inner.responses.remove(&k);
            }
        }
        inner.latest.insert(session.to_owned(), id.to_owned());
        inner.responses.insert(
            id.to_owned(),
            Stored {
                owner: owner.to_owned(),
                session: session.to_owned(),
                history,
                object,
                at: Instant::now(),
            },
        );
    }

    /// A response of `owner` (another key's is not found).
    pub fn get(&self, id: &str, owner: &str) -> Option<Stored> {
        let inner = self.lock();
        inner
            .responses
            .get(id)
            .filter(|s| s.owner == owner && s.at.elapsed() < self.ttl)
            .cloned()
    }

    /// True when `id` is the newest response of its conversation.
    pub fn is_latest(&self, id: &str, session: &str) -> bool {
        self.lock().latest.get(session).is_some_and(|l| l == id)
    }

    /// Deletes a response of `owner`; false if there was none.
    pub fn delete(&self, id: &str, owner: &str) -> bool {
        let mut inner = self.lock();
        match inner.responses.get(id) {
            Some(s) if s.owner == owner => {
                inner.responses.remove(id);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_belong_to_their_key_and_only_the_newest_continues_in_place() {
        let s = ResponseStore::new(Duration::from_secs(60), 100);
        s.put("r1", "k", "s", Vec::new(), Value::Null);
        assert!(s.get("r1", "k").is_some());
        assert!(s.get("r1", "other").is_none());
        assert!(s.is_latest("r1", "s"));
        s.put("r2", "k", "s", Vec::new(), Value::Null);
        assert!(!s.is_latest("r1", "s") && s.is_latest("r2", "s"));
        assert!(!s.delete("r2", "other"));
        assert!(s.delete("r2", "k"));
        assert!(s.get("r2", "k").is_none());
        let tiny = ResponseStore::new(Duration::from_secs(60), 2);
        for i in 0..5 {
            tiny.put(&format!("r{i}"), "k", "s", Vec::new(), Value::Null);
        }
        assert!(tiny.get("r4", "k").is_some());
        assert!(tiny.lock().responses.len() <= 2);
    }
}
