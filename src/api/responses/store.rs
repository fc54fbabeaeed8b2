//! [`ResponseStore`]: Responses API responses, for `GET`/`DELETE /v1/responses/{id}` and for
//! `previous_response_id`: each with its owner, its conversation (session) and the messages of
//! that conversation up to it. Kept in the database (shared by replicas, so any replica
//! continues a response) for `pool.session_idle_ttl`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::conversation::Msg;
use crate::error::ApiError;
use crate::store::{ResponseRecord, Store, StoreError, now_secs};

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
}

/// Responses by id.
#[derive(Debug)]
pub struct ResponseStore {
    store: Arc<dyn Store>,
    ttl: Duration,
}

impl ResponseStore {
    /// Responses in `store`, each kept for `ttl`.
    pub fn new(store: Arc<dyn Store>, ttl: Duration) -> Self {
        Self { store, ttl }
    }

    /// Stores a response as the newest of its conversation.
    pub async fn put(
        &self,
        id: &str,
        owner: &str,
        session: &str,
        history: &[Msg],
        object: &Value,
    ) -> Result<(), StoreError> {
        let record = ResponseRecord {
            id: id.to_owned(),
            owner: owner.to_owned(),
            session_id: session.to_owned(),
            history: serde_json::to_string(history).unwrap_or_else(|_| "[]".into()),
            object: object.to_string(),
            created_at: now_secs(),
        };
        self.store.put_response(&record).await
    }

    /// A response of `owner` (another key's, or one past its time, is not found).
    pub async fn get(&self, id: &str, owner: &str) -> Result<Option<Stored>, ApiError> {
        let Some(r) = self.store.response(id).await? else {
            return Ok(None);
        };
        if r.owner != owner || r.created_at + self.ttl.as_secs() as i64 <= now_secs() {
            return Ok(None);
        }
        let decoded = serde_json::from_str(&r.history)
            .and_then(|history| Ok((history, serde_json::from_str(&r.object)?)));
        match decoded {
            Ok((history, object)) => Ok(Some(Stored {
                owner: r.owner,
                session: r.session_id,
                history,
                object,
            })),
            Err(_) => Err(StoreError::Corrupt("responses").into()),
        }
    }

    /// True when `id` is the newest response of its conversation.
    pub async fn is_latest(&self, id: &str, session: &str) -> Result<bool, ApiError> {
        Ok(self.store.latest_response(session).await?.as_deref() == Some(id))
    }

    /// Deletes a response of `owner`; false if there was none.
    pub async fn delete(&self, id: &str, owner: &str) -> Result<bool, ApiError> {
        Ok(self.store.delete_response(id, owner).await?)
    }

    /// Forgets responses past their time; returns how many.
    pub async fn prune(&self) -> Result<u64, ApiError> {
        let before = now_secs() - self.ttl.as_secs() as i64;
        Ok(self.store.prune_responses(before).await?)
    }
}
