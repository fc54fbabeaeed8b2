//! The registry of conversations and their owners. A session belongs to the key that created it; any other key gets 404. Ownership is stored
//! (it survives restarts and is shared by replicas); owners are cached in memory, since a
//! session's owner never changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::ApiError;
use crate::store::{SessionRecord, Store};

/// A session as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// Always `session`.
    object: &'static str,
    #[serde(flatten)]
    record: SessionRecord,
}

impl From<SessionRecord> for SessionInfo {
    fn from(mut record: SessionRecord) -> Self {
        // Stored under the owner's scope; the client knows it by its own id.
        if let Some(own) = record
            .id
            .strip_prefix(record.owner.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
        {
            record.id = own.to_owned();
        }
        Self {
            object: "session",
            record,
        }
    }
}

/// The id a conversation has in the store and the pool: the client's id within its key's
/// scope, so the same `X-Session-Id` used by two keys names two conversations and no answer
/// can tell a key that another one uses an id.
pub fn scoped(owner: &str, id: &str) -> String {
    format!("{owner}/{id}")
}

/// How long an unused session is kept (matches the pool's resume window).
const SESSION_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Owners cached before the cache is emptied.
const OWNER_CACHE_CAPACITY: usize = 100_000;

/// Conversations and their owners (by key id), in the store with an owner cache.
#[derive(Debug)]
pub struct SessionRegistry {
    store: Arc<dyn Store>,
    owners: Mutex<HashMap<String, Arc<str>>>,
    /// The system prompt of each conversation that has one, so a turn sent with only its new
    /// message keeps it (also when the conversation is resumed on a new process).
    system_prompts: Mutex<HashMap<String, Arc<str>>>,
    /// New conversations' rows, written in batches.
    new_rows: super::new_sessions::NewSessions,
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

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("session `{id}` not found"))
}

impl SessionRegistry {
    /// A registry over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            new_rows: super::new_sessions::NewSessions::start(store.clone()),
            store,
            owners: Mutex::new(HashMap::new()),
            system_prompts: Mutex::new(HashMap::new()),
        }
    }

    fn prompts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<str>>> {
        self.system_prompts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The system prompt a turn of `owner`'s conversation `id` runs with: the one it was sent
    /// with (which becomes the conversation's), else the conversation's own. Kept in the store
    /// too, so the replica that takes the conversation up runs it with the same prompt.
    pub async fn system_prompt(
        &self,
        owner: &str,
        id: &str,
        sent: Option<Arc<str>>,
    ) -> Result<Option<Arc<str>>, ApiError> {
        let key = scoped(owner, id);
        let cached = self.prompts().get(&key).cloned();
        match sent {
            Some(p) => {
                if cached.as_deref() != Some(&*p) {
                    self.store.set_session_prompt(&key, &p).await?;
                    self.cache_prompt(key, p.clone());
                }
                Ok(Some(p))
            }
            None if cached.is_some() => Ok(cached),
            None => {
                let stored: Option<Arc<str>> =
                    self.store.session_prompt(&key).await?.map(Into::into);
                if let Some(p) = &stored {
                    self.cache_prompt(key, p.clone());
                }
                Ok(stored)
            }
        }
    }

    fn cache_prompt(&self, key: String, prompt: Arc<str>) {
        let mut prompts = self.prompts();
        if prompts.len() >= OWNER_CACHE_CAPACITY {
            prompts.clear();
        }
        prompts.insert(key, prompt);
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<str>>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached_owner(&self, id: &str) -> Option<Arc<str>> {
        self.owners().get(id).cloned()
    }

    fn remember(&self, id: &str, owner: &Arc<str>) {
        let mut map = self.owners();
        if map.len() >= OWNER_CACHE_CAPACITY {
            map.clear();
        }
        map.insert(id.to_owned(), owner.clone());
    }

    /// A new conversation of `owner` with a fresh id (returned as the client sees it).
    pub async fn create(&self, owner: &Arc<str>) -> Result<String, ApiError> {
        let id = uuid::Uuid::new_v4().to_string();
        let key = scoped(owner, &id);
        self.new_rows.create(key.clone(), owner.to_string()).await?;
        self.remember(&key, owner);
        Ok(id)
    }

    /// Takes `id` for `owner` (creating it when new); true when it was created. Ids live in
    /// the owner's scope, so another key's use of the same id is neither seen nor in the way.
    pub async fn claim_or_create(&self, id: &str, owner: &Arc<str>) -> Result<bool, ApiError> {
        valid_id(id)?;
        let key = scoped(owner, id);
        if self.cached_owner(&key).is_some() {
            return Ok(false);
        }
        let (_, created) = self.store.claim_session(&key, owner).await?;
        self.remember(&key, owner);
        Ok(created)
    }

    /// Drops the cached owner of `owner`'s `id` (the session was deleted on another replica).
    pub fn forget_cached(&self, id: &str, owner: &str) {
        self.owners().remove(&scoped(owner, id));
    }

    /// True when `owner` has a conversation `id` (a stateless continuation checks that the
    /// conversation still exists).
    pub async fn owned_by(&self, id: &str, owner: &Arc<str>) -> Result<bool, ApiError> {
        let key = scoped(owner, id);
        if self.cached_owner(&key).is_some() {
            return Ok(true);
        }
        Ok(match self.store.session(&key).await? {
            Some(_) => {
                self.remember(&key, owner);
                true
            }
            None => false,
        })
    }

    /// Forgets sessions unused for [`SESSION_RETENTION`] (the pool has forgotten their
    /// conversations by then too); returns how many.
    pub async fn prune(&self) -> Result<u64, ApiError> {
        let cutoff = crate::store::now_secs() - SESSION_RETENTION.as_secs() as i64;
        let n = self.store.prune_sessions(cutoff).await?;
        if n > 0 {
            self.owners().clear();
        }
        Ok(n)
    }

    pub(crate) async fn get(&self, id: &str, owner: &Arc<str>) -> Result<SessionInfo, ApiError> {
        match self.store.session(&scoped(owner, id)).await? {
            Some(s) if s.owner == **owner => Ok(s.into()),
            _ => Err(not_found(id)),
        }
    }

    pub(crate) async fn list(&self, owner: &Arc<str>) -> Result<Vec<SessionInfo>, ApiError> {
        let rows = self.store.list_sessions(owner).await?;
        Ok(rows.into_iter().map(SessionInfo::from).collect())
    }

    pub(crate) async fn remove(&self, id: &str, owner: &Arc<str>) -> Result<(), ApiError> {
        let key = scoped(owner, id);
        if !self.store.delete_session(&key, owner).await? {
            return Err(not_found(id));
        }
        self.owners().remove(&key);
        self.prompts().remove(&key);
        Ok(())
    }
}
