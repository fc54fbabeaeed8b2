//! The server's own Claude credential, as its workers will see it: checked at start (a
//! warning names the problem and the fix) and shown by `/v1/health` with the upstream
//! authentication failures seen since. Keys may carry their own credential
//! (`claude_oauth_token`); this is the default for keys without one.

use std::path::Path;
use std::sync::Mutex;

use claude_pool_actors::WorkerConfig;
use serde::Serialize;

/// Where the workers' default credential comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ServerCredential {
    /// A variable the workers get (from the server's environment or `[worker.env]`).
    Variable {
        /// Its name (never its value).
        name: String,
    },
    /// A login saved in the workers' HOME (`claude login`).
    LoginFile,
    /// Nothing the CLI can use.
    Missing {
        /// What is wrong and how to fix it.
        problem: String,
    },
}

const OAUTH: &str = "CLAUDE_CODE_OAUTH_TOKEN";
const API_KEY: &str = "ANTHROPIC_API_KEY";
const AUTH_TOKEN: &str = "ANTHROPIC_AUTH_TOKEN";

/// What the workers will authenticate with. `server_env` looks up the server's environment
/// (only allow-listed names reach workers).
pub fn server_credential(
    worker: &WorkerConfig,
    server_env: impl Fn(&str) -> Option<String>,
) -> ServerCredential {
    let visible = |name: &str| {
        worker.env.get(name).is_some_and(|v| !v.is_empty())
            || (worker.env_allowlist.iter().any(|n| n == name)
                && server_env(name).is_some_and(|v| !v.is_empty()))
    };
    let found = |name: &str| ServerCredential::Variable { name: name.into() };
    if visible(API_KEY) {
        return found(API_KEY);
    }
    if worker.bare {
        // Bare mode reads ANTHROPIC_API_KEY only.
        let problem = if visible(OAUTH) || visible(AUTH_TOKEN) {
            format!(
                "{} is set, but worker.bare = true reads only {API_KEY}: set worker.bare = false",
                if visible(OAUTH) { OAUTH } else { AUTH_TOKEN }
            )
        } else {
            format!("no {API_KEY} (worker.bare = true reads nothing else)")
        };
        return ServerCredential::Missing { problem };
    }
    if visible(OAUTH) {
        return found(OAUTH);
    }
    if visible(AUTH_TOKEN) {
        return found(AUTH_TOKEN);
    }
    if login_file(&worker.home) {
        return ServerCredential::LoginFile;
    }
    ServerCredential::Missing {
        problem: format!(
            "no {OAUTH} (from `claude setup-token`), {API_KEY} or saved login in {}",
            worker.home.display()
        ),
    }
}

fn login_file(home: &Path) -> bool {
    home.join(".claude/.credentials.json").is_file()
}

/// Upstream authentication failures seen (the CLI said "not logged in" or got a 401).
#[derive(Debug, Default)]
pub struct AuthFailures {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
struct Seen {
    server_credential: u64,
    key_credentials: u64,
    last_at: Option<i64>,
}

impl AuthFailures {
    /// Counts one failure, with the server's credential or a key's own.
    pub fn record(&self, with_key_credential: bool, now: i64) {
        let mut s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if with_key_credential {
            s.key_credentials += 1;
        } else {
            s.server_credential += 1;
        }
        s.last_at = Some(now);
    }

    /// The counts as `/v1/health` shows them.
    pub fn json(&self) -> serde_json::Value {
        let s = *self.seen.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({
            "server_credential": s.server_credential,
            "key_credentials": s.key_credentials,
            "last": s.last_at.map(crate::keys::rfc3339),
        })
    }

    /// Failures with the server's credential so far.
    pub fn with_server_credential(&self) -> u64 {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .server_credential
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(bare: bool) -> WorkerConfig {
        WorkerConfig {
            bare,
            home: "/nonexistent-home".into(),
            ..WorkerConfig::default()
        }
    }

    #[test]
    fn the_credential_the_workers_see_is_named_or_its_absence_explained() {
        let none = |_: &str| None;
        let oauth = |n: &str| (n == OAUTH).then(|| "sk-ant-oat01-x".to_owned());
        let api = |n: &str| (n == API_KEY).then(|| "sk-ant-api".to_owned());
        assert_eq!(
            server_credential(&worker(false), oauth),
            ServerCredential::Variable { name: OAUTH.into() }
        );
        assert_eq!(
            server_credential(&worker(true), api),
            ServerCredential::Variable {
                name: API_KEY.into()
            }
        );
        match server_credential(&worker(true), oauth) {
            ServerCredential::Missing { problem } => {
                assert!(problem.contains("worker.bare = false"), "{problem}")
            }
            other => panic!("{other:?}"),
        }
        match server_credential(&worker(false), none) {
            ServerCredential::Missing { problem } => assert!(problem.contains(OAUTH), "{problem}"),
            other => panic!("{other:?}"),
        }
        // [worker.env] counts; a name off the allow-list does not reach workers.
        let mut w = worker(false);
        w.env.insert(OAUTH.into(), "tok".into());
        assert!(matches!(
            server_credential(&w, none),
            ServerCredential::Variable { .. }
        ));
        let mut w = worker(false);
        w.env_allowlist.retain(|n| n != OAUTH);
        assert!(matches!(
            server_credential(&w, oauth),
            ServerCredential::Missing { .. }
        ));
    }
}
