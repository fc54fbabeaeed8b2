//! The sessions API (`/api/v1/sessions`) and the registry of conversations and their owners.
//! A session belongs to the key that created it; any other key gets 404.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::turn::{TurnRequest, respond};
use crate::http::{ApiJson, AppState};
use crate::openai::unix_now;

/// What the gateway knows of a conversation.
#[derive(Debug, Clone, Serialize)]
pub(super) struct SessionInfo {
    /// The session id.
    pub id: String,
    /// Always `session`.
    pub object: &'static str,
    /// Creation time (Unix seconds).
    pub created_at: u64,
    /// Last turn (Unix seconds).
    pub last_used_at: u64,
    /// Turns started.
    pub turns: u64,
    #[serde(skip)]
    owner: Arc<str>,
}

/// Conversations by id, with their owner's key label. In memory: a restart forgets ownership
/// (the CLI transcripts remain, but the pool's session map is per process too). Sessions unused
/// for a day are forgotten, as the pool forgets their transcripts' ids.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    map: Mutex<HashMap<String, SessionInfo>>,
}

/// How long an unused session is remembered (matches the pool's resume window).
const SESSION_RETENTION_SECS: u64 = 24 * 3600;

/// Stale sessions are swept once every this many new sessions.
const SWEEP_EVERY: usize = 1024;

fn insert(map: &mut HashMap<String, SessionInfo>, info: SessionInfo) {
    if map.len() % SWEEP_EVERY == SWEEP_EVERY - 1 {
        let cutoff = unix_now().saturating_sub(SESSION_RETENTION_SECS);
        map.retain(|_, s| s.last_used_at >= cutoff);
    }
    map.insert(info.id.clone(), info);
}

fn valid_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(
            "session_id",
            "a session id is 1-128 characters of A-Z, a-z, 0-9, '-', '_', '.', ':'",
        ))
    }
}

impl SessionRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionInfo>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session owned by `owner`; returns its id.
    pub fn create(&self, owner: &Arc<str>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let now = unix_now();
        insert(
            &mut self.lock(),
            SessionInfo {
                id: id.clone(),
                object: "session",
                created_at: now,
                last_used_at: now,
                turns: 0,
                owner: owner.clone(),
            },
        );
        id
    }

    /// Uses an existing session of `owner`, or creates it under this id. Returns true when
    /// created. Another owner's session is reported as not found.
    pub fn claim_or_create(&self, id: &str, owner: &Arc<str>) -> Result<bool, ApiError> {
        valid_id(id)?;
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.owner == *owner => Ok(false),
            Some(_) => Err(ApiError::NotFound(format!("session `{id}` not found"))),
            None => {
                let now = unix_now();
                insert(
                    &mut map,
                    SessionInfo {
                        id: id.to_owned(),
                        object: "session",
                        created_at: now,
                        last_used_at: now,
                        turns: 0,
                        owner: owner.clone(),
                    },
                );
                Ok(true)
            }
        }
    }

    /// True when the session exists and belongs to `owner`.
    pub fn owned_by(&self, id: &str, owner: &Arc<str>) -> bool {
        self.lock().get(id).is_some_and(|s| s.owner == *owner)
    }

    /// Records a turn.
    pub fn touch(&self, id: &str) {
        if let Some(s) = self.lock().get_mut(id) {
            s.turns += 1;
            s.last_used_at = unix_now();
        }
    }

    fn get(&self, id: &str, owner: &Arc<str>) -> Result<SessionInfo, ApiError> {
        self.lock()
            .get(id)
            .filter(|s| s.owner == *owner)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("session `{id}` not found")))
    }

    fn list(&self, owner: &Arc<str>) -> Vec<SessionInfo> {
        let mut v: Vec<SessionInfo> = self
            .lock()
            .values()
            .filter(|s| s.owner == *owner)
            .cloned()
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.last_used_at));
        v
    }

    fn remove(&self, id: &str, owner: &Arc<str>) -> Result<(), ApiError> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.owner == *owner => {
                map.remove(id);
                Ok(())
            }
            _ => Err(ApiError::NotFound(format!("session `{id}` not found"))),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct SessionList {
    object: &'static str,
    data: Vec<SessionInfo>,
}

/// `POST /api/v1/sessions`.
pub(super) async fn create(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
) -> Result<Response, ApiError> {
    let id = app.sessions.create(&caller.label);
    let info = app.sessions.get(&id, &caller.label)?;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// `GET /api/v1/sessions`.
pub(super) async fn list(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
) -> Json<SessionList> {
    Json(SessionList {
        object: "list",
        data: app.sessions.list(&caller.label),
    })
}

/// `GET /api/v1/sessions/{id}`.
pub(super) async fn get_one(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionInfo>, ApiError> {
    app.sessions.get(&id, &caller.label).map(Json)
}

/// `DELETE /api/v1/sessions/{id}`: forgets the conversation and frees its worker.
pub(super) async fn delete(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    app.sessions.remove(&id, &caller.label)?;
    app.pool.end_session(id.as_str().into());
    Ok(Json(serde_json::json!({"id": id, "object": "session", "deleted": true})).into_response())
}

/// Body of `POST /api/v1/sessions/{id}/messages`.
#[derive(Debug, Deserialize)]
pub(super) struct MessageBody {
    content: String,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    model: Option<String>,
}

/// `POST /api/v1/sessions/{id}/messages`: one turn in the session, as a chat completion
/// (JSON) or as SSE chunks.
pub(super) async fn message(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MessageBody>,
) -> Result<Response, ApiError> {
    app.sessions.get(&id, &caller.label)?;
    if body.content.trim().is_empty() {
        return Err(ApiError::bad("content", "`content` must not be empty"));
    }
    let model_name = body.model.unwrap_or_else(|| app.default_model.clone());
    let claude_model = app.resolve_model(&model_name)?;
    respond(
        app.clone(),
        TurnRequest {
            session: id,
            content: body.content,
            model_name,
            claude_model,
            stream: body.stream,
            include_usage: true,
            history: None,
            key_label: caller.label.clone(),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_is_per_key_and_stale_sessions_are_swept() {
        let reg = SessionRegistry::default();
        let (a, b): (Arc<str>, Arc<str>) = ("key-a".into(), "key-b".into());
        let id = reg.create(&a);
        assert!(reg.owned_by(&id, &a) && !reg.owned_by(&id, &b));
        assert!(
            !reg.claim_or_create(&id, &a).unwrap(),
            "existing session reused"
        );
        assert!(
            reg.claim_or_create(&id, &b).is_err(),
            "another key gets 404"
        );
        assert!(reg.claim_or_create("bad id", &a).is_err());
        reg.lock().get_mut(&id).unwrap().last_used_at = 0;
        for _ in 0..SWEEP_EVERY {
            reg.create(&b);
        }
        assert!(!reg.owned_by(&id, &a), "a day-old session was swept");
        assert_eq!(reg.list(&b).len(), SWEEP_EVERY);
    }
}
