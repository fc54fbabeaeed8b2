//! The server's options and what it remembers: request counts per path (`GET /_stats`), the
//! message and tool-call counters behind fresh ids, and the last `/v1/messages` body
//! (`GET /_last_request`).

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::pyjson;
use crate::reply::Ids;

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The pause before each text chunk of a `[[slow]]` answer (`--slow-ms`, default 200 ms).
    pub slow: Duration,
    /// API keys (`x-api-key` or `Authorization: Bearer`) answered with 401 (`--reject-key`).
    pub reject_keys: Vec<String>,
    /// Log every request to stderr (`--verbose`).
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            slow: Duration::from_millis(200),
            reject_keys: Vec::new(),
            verbose: false,
        }
    }
}

impl Options {
    /// These options with `[[slow]]` pausing `ms` milliseconds per chunk.
    pub fn slow_ms(mut self, ms: u64) -> Self {
        self.slow = Duration::from_millis(ms);
        self
    }

    /// These options with one more rejected key.
    pub fn reject_key(mut self, key: impl Into<String>) -> Self {
        self.reject_keys.push(key.into());
        self
    }
}

/// Counters, as `GET /_stats` shows them: `{"requests": N, "by_path": {...}}`, then
/// `messages` (answers made) and `calls` (tool calls made) once each has counted something,
/// in the order they first did.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: u64,
    /// Requests per path (without the query), in order of first appearance.
    pub by_path: Vec<(String, u64)>,
    /// `messages` and `calls`, in order of first appearance.
    counters: Vec<(&'static str, u64)>,
}

impl Stats {
    /// Counts one request to `path`.
    pub fn count(&mut self, path: &str) {
        self.requests += 1;
        match self.by_path.iter_mut().find(|(p, _)| p == path) {
            Some((_, n)) => *n += 1,
            None => self.by_path.push((path.to_owned(), 1)),
        }
    }

    /// Requests counted for `path`.
    pub fn requests_to(&self, path: &str) -> u64 {
        self.by_path
            .iter()
            .find(|(p, _)| p == path)
            .map_or(0, |(_, n)| *n)
    }

    fn bump(&mut self, name: &'static str) -> u64 {
        if let Some((_, n)) = self.counters.iter_mut().find(|(k, _)| *k == name) {
            *n += 1;
            return *n;
        }
        self.counters.push((name, 1));
        1
    }

    /// The answers made so far (each had a fresh message id).
    pub fn messages(&self) -> u64 {
        self.counters
            .iter()
            .find(|(k, _)| *k == "messages")
            .map_or(0, |(_, n)| *n)
    }
}

impl Ids for Stats {
    fn next_call(&mut self) -> u64 {
        self.bump("calls")
    }
    fn next_message(&mut self) -> u64 {
        self.bump("messages")
    }
}

impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct ByPath<'a>(&'a [(String, u64)]);
        impl Serialize for ByPath<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (path, n) in self.0 {
                    map.serialize_entry(path, n)?;
                }
                map.end()
            }
        }
        let mut map = s.serialize_map(Some(2 + self.counters.len()))?;
        map.serialize_entry("requests", &self.requests)?;
        map.serialize_entry("by_path", &ByPath(&self.by_path))?;
        for (name, n) in &self.counters {
            map.serialize_entry(name, n)?;
        }
        map.end()
    }
}

/// Everything the server remembers, behind one lock (held only for a few field updates).
#[derive(Debug, Default)]
pub struct Memory {
    pub stats: Stats,
    /// The last `/v1/messages` body (after the key check), as received.
    pub last_request: Option<Bytes>,
}

/// The server's shared state.
#[derive(Debug, Default)]
pub struct Shared {
    memory: Mutex<Memory>,
}

impl Shared {
    /// The memory, even if a panicking thread poisoned the lock (counters stay usable).
    pub fn lock(&self) -> MutexGuard<'_, Memory> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `GET /_stats`.
    pub fn stats_json(&self) -> String {
        pyjson::to_string(&self.lock().stats)
    }

    /// `GET /_last_request`: the last body re-written as `json.dumps` writes it (`{}` if none).
    pub fn last_request_json(&self) -> String {
        let raw = self.lock().last_request.clone();
        raw.and_then(|b| pyjson::from_slice(&b).ok())
            .map_or_else(|| "{}".to_owned(), |v| pyjson::to_string(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_list_paths_and_counters_in_order_of_appearance() {
        let mut s = Stats::default();
        s.count("/v1/messages");
        s.count("/");
        s.count("/v1/messages");
        assert_eq!(
            pyjson::to_string(&s),
            r#"{"requests": 3, "by_path": {"/v1/messages": 2, "/": 1}}"#
        );
        assert_eq!(
            (s.next_message(), s.next_call(), s.next_message()),
            (1, 1, 2)
        );
        assert_eq!(
            pyjson::to_string(&s),
            r#"{"requests": 3, "by_path": {"/v1/messages": 2, "/": 1}, "messages": 2, "calls": 1}"#
        );
        assert_eq!(
            (s.messages(), s.requests_to("/"), s.requests_to("/x")),
            (2, 1, 0)
        );
    }
}
