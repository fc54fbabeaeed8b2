//! What the console shows: keys with their spend, budget, expiry, credential fingerprint and
//! last use; the pool worker by worker (state, conversation, credential, turns, memory, age),
//! its queue, sessions, time to first token and recent starts and crashes.

use std::collections::HashMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::keys::rfc3339;
use crate::state::App;

/// A short, stable fingerprint of a Claude credential (`sha256:` and 12 hex digits): tells
/// keys and workers with the same credential apart without revealing it.
pub(super) fn credential_fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..12])
}

/// The keys, newest first, optionally those whose alias contains `alias`.
pub(super) async fn keys(app: &App, alias: Option<&str>) -> Result<Vec<Value>, ApiError> {
    let records = app.store.list_keys().await?;
    let last_used: HashMap<String, Option<i64>> = app
        .store
        .spend_by_key()
        .await?
        .into_iter()
        .map(|s| (s.token, s.last_used))
        .collect();
    let budget_default = app.limits.max_cost_per_key;
    let mut out = Vec::new();
    for k in records {
        if let Some(want) = alias.filter(|a| !a.is_empty()) {
            let has = k.alias.as_deref().unwrap_or_default().to_lowercase();
            if !has.contains(want) {
                continue;
            }
        }
        let credential = match &k.sealed_oauth_token {
            None => Value::Null,
            Some(sealed) => match app.credentials.sealer.open(sealed) {
                Ok(token) => Value::String(credential_fingerprint(&token)),
                Err(_) => Value::String("unreadable".into()),
            },
        };
        let mut v = k.public_json();
        v["credential_fingerprint"] = credential;
        v["last_used"] = last_used
            .get(&k.id)
            .copied()
            .flatten()
            .map_or(Value::Null, |t| Value::String(rfc3339(t)));
        v["effective_budget"] = json!(k.max_budget.or(budget_default));
        out.push(v);
    }
    Ok(out)
}

/// Resident memory of a process in bytes (Linux `/proc`), if readable.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The dashboard's data.
pub(super) async fn pool(app: &App) -> Result<Value, ApiError> {
    let snap = app.pool.snapshot();
    let inspection = app
        .pool
        .inspect()
        .await
        .map_err(|e| ApiError::Internal(format!("pool inspection failed: {e}")))?;
    let workers: Vec<Value> = inspection
        .workers
        .iter()
        .map(|w| {
            let credential = w.profile.oauth_token.as_ref().map_or_else(
                || "server".to_owned(),
                |t| credential_fingerprint(t.expose()),
            );
            // Pool sessions are `<key id>/<session id>`.
            let (owner, session) = match w.session.as_deref().map(|s| s.split_once('/')) {
                Some(Some((owner, id))) => (Some(crate::keys::label(owner)), Some(id)),
                Some(None) => (None, w.session.as_deref()),
                None => (None, None),
            };
            json!({
                "id": w.id,
                "pid": w.pid,
                "state": w.state,
                "session": session,
                "session_key": owner,
                "profile": w.profile.label(),
                "credential": credential,
                "turns": w.turns,
                "rss_bytes": w.pid.and_then(rss_bytes),
                "age_seconds": w.age.as_secs(),
                "idle_seconds": w.idle_for.as_secs(),
            })
        })
        .collect();
    let events: Vec<Value> = inspection
        .events
        .iter()
        .rev()
        .map(|e| {
            let at =
                e.at.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
            json!({
                "at_ms": at,
                "worker": e.worker,
                "kind": e.kind.as_str(),
                "detail": e.detail,
            })
        })
        .collect();
    let ttft = app.metrics.ttft_percentiles().map_or(Value::Null, |p| {
        json!({
            "p50_ms": p.p50 * 1000.0,
            "p99_ms": p.p99 * 1000.0,
            "samples": p.samples,
        })
    });
    Ok(json!({
        "ready": snap.ready,
        "serving": snap.serving,
        "draining": snap.draining,
        "min_workers": snap.min_workers,
        "max_workers": snap.max_workers,
        "counts": {
            "starting": snap.workers_starting,
            "idle": snap.workers_idle,
            "busy": snap.workers_busy,
            "stopping": snap.workers_stopping,
        },
        "spare": snap.workers_spare,
        "spare_releases": snap.spare_releases,
        "queue_depth": snap.queue_depth,
        "parked_turns": app.tools.bridge.parked_turns(),
        "parked_turns_set_aside": app.tools.bridge.set_aside_turns(),
        "sessions": snap.sessions,
        "sessions_bound": snap.sessions_bound,
        "turns_started": snap.turns_started,
        "turns_failed": snap.turns_failed,
        "restarts": snap.restarts,
        "spawn_failures": snap.spawn_failures,
        "queue_rejections": snap.queue_rejections,
        "conversations_lost": snap.conversations_lost,
        "ttft": ttft,
        "workers": workers,
        "events": events,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_short_stable_and_do_not_contain_the_token() {
        let a = credential_fingerprint("sk-ant-oat01-aaaa");
        assert_eq!(a, credential_fingerprint("sk-ant-oat01-aaaa"));
        assert_ne!(a, credential_fingerprint("sk-ant-oat01-aaab"));
        assert_eq!(a.len(), "sha256:".len() + 12);
        assert!(!a.contains("oat01"));
        assert!(rss_bytes(std::process::id()).is_some_and(|b| b > 0));
    }
}
