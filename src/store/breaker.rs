//! Failing fast while the database is unreachable.
//!
//! A request that needs an unreachable database would otherwise wait for the connection pool's
//! acquire timeout (every new connection attempt is retried until then), and every request after
//! it the same. [`Breaker`] wraps a [`Store`]: once a call fails because the database is
//! unavailable ([`StoreError::is_unavailable`]), calls for the next [`COOL_DOWN`] fail at once
//! with [`StoreError::Unavailable`] (HTTP 503 `store_unavailable` with `Retry-After`); the first
//! call after that tries the database again, and a success closes the breaker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    BudgetHold, HoldSizes, KeyFilter, KeyRecord, KeySpend, KeyUpdate, NewKey, RateTake,
    ResponseRecord, SessionRecord, SpendFilter, SpendRecord, Store, StoreError, StoredTranscript,
    TagSpend, TranscriptPart,
};

/// How long calls fail fast after the database was found unavailable.
pub const COOL_DOWN: Duration = Duration::from_secs(2);

/// A [`Store`] that fails fast while its database is unavailable.
#[derive(Debug)]
pub struct Breaker<S> {
    inner: S,
    open_until: Mutex<Option<Instant>>,
}

impl<S: Store> Breaker<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            open_until: Mutex::new(None),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        let open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
        match *open {
            Some(until) if Instant::now() < until => Err(StoreError::Unavailable),
            _ => Ok(()),
        }
    }

    fn note<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        let mut open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
        match &r {
            Err(e) if e.is_unavailable() => {
                if open.is_none() {
                    tracing::error!(error = %e, "the database is unavailable");
                }
                *open = Some(Instant::now() + COOL_DOWN);
            }
            Ok(_) if open.is_some() => {
                tracing::info!("the database is reachable again");
                *open = None;
            }
            _ => {}
        }
        r
    }
}

/// Runs one delegated call through the breaker, timed by operation and outcome.
macro_rules! guarded {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        $self.check()?;
        let t0 = Instant::now();
        let r = $self.inner.$method($($arg),*).await;
        super::timing::observe(stringify!($method), r.is_ok(), t0.elapsed());
        $self.note(r)
    }};
}

#[async_trait]
impl<S: Store> Store for Breaker<S> {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        guarded!(self.ping())
    }
    async fn take_rate(
        &self,
        key_id: &str,
        now_ms: i64,
        interval_ms: i64,
        tolerance_ms: i64,
    ) -> Result<RateTake, StoreError> {
        guarded!(self.take_rate(key_id, now_ms, interval_ms, tolerance_ms))
    }
    async fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, StoreError> {
        guarded!(self.insert_key(key))
    }
    async fn ensure_key(&self, key: &NewKey) -> Result<(), StoreError> {
        guarded!(self.ensure_key(key))
    }
    async fn key(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        guarded!(self.key(id))
    }
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        guarded!(self.list_keys())
    }
    async fn update_key(
        &self,
        id: &str,
        update: &KeyUpdate,
    ) -> Result<Option<KeyRecord>, StoreError> {
        guarded!(self.update_key(id, update))
    }
    async fn revoke_keys(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        guarded!(self.revoke_keys(ids))
    }
    async fn list_keys_page(
        &self,
        filter: &KeyFilter,
    ) -> Result<(Vec<KeyRecord>, i64), StoreError> {
        guarded!(self.list_keys_page(filter))
    }
    async fn set_blocked(
        &self,
        id: &str,
        blocked: bool,
        now: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        guarded!(self.set_blocked(id, blocked, now))
    }
    async fn regenerate_key(
        &self,
        old_id: &str,
        new_id: &str,
        new_prefix: &str,
        now: i64,
    ) -> Result<Option<KeyRecord>, StoreError> {
        guarded!(self.regenerate_key(old_id, new_id, new_prefix, now))
    }
    async fn reset_due_budgets(&self, now: i64) -> Result<Vec<String>, StoreError> {
        guarded!(self.reset_due_budgets(now))
    }
    async fn spend_by_tag(
        &self,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<TagSpend>, StoreError> {
        guarded!(self.spend_by_tag(since, until))
    }
    async fn spend_log(&self, filter: &SpendFilter) -> Result<(Vec<SpendRecord>, i64), StoreError> {
        guarded!(self.spend_log(filter))
    }
    async fn record_spend(&self, records: &[SpendRecord]) -> Result<(), StoreError> {
        guarded!(self.record_spend(records))
    }
    async fn spend_by_key(&self) -> Result<Vec<KeySpend>, StoreError> {
        guarded!(self.spend_by_key())
    }
    async fn spend_records(
        &self,
        key_id: &str,
        limit: i64,
    ) -> Result<Vec<SpendRecord>, StoreError> {
        guarded!(self.spend_records(key_id, limit))
    }
    async fn claim_session(
        &self,
        id: &str,
        owner: &str,
    ) -> Result<(SessionRecord, bool), StoreError> {
        guarded!(self.claim_session(id, owner))
    }
    async fn create_sessions(&self, sessions: &[(String, String)]) -> Result<(), StoreError> {
        guarded!(self.create_sessions(sessions))
    }
    async fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        guarded!(self.session(id))
    }
    async fn list_sessions(&self, owner: &str) -> Result<Vec<SessionRecord>, StoreError> {
        guarded!(self.list_sessions(owner))
    }
    async fn set_session_prompt(&self, id: &str, prompt: &str) -> Result<(), StoreError> {
        guarded!(self.set_session_prompt(id, prompt))
    }
    async fn session_prompt(&self, id: &str) -> Result<Option<String>, StoreError> {
        guarded!(self.session_prompt(id))
    }
    async fn delete_session(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        guarded!(self.delete_session(id, owner))
    }
    async fn prune_sessions(&self, unused_since: i64) -> Result<u64, StoreError> {
        guarded!(self.prune_sessions(unused_since))
    }
    async fn keep_transcripts(&self, parts: &[TranscriptPart]) -> Result<Vec<bool>, StoreError> {
        guarded!(self.keep_transcripts(parts))
    }
    async fn hold_budget(
        &self,
        key_id: &str,
        hold_id: &str,
        sizes: HoldSizes,
        budget: f64,
        expires_at: i64,
    ) -> Result<BudgetHold, StoreError> {
        guarded!(self.hold_budget(key_id, hold_id, sizes, budget, expires_at))
    }
    async fn release_budget(&self, hold_id: &str) -> Result<(), StoreError> {
        guarded!(self.release_budget(hold_id))
    }
    async fn put_response(&self, response: &ResponseRecord) -> Result<(), StoreError> {
        guarded!(self.put_response(response))
    }
    async fn response(&self, id: &str) -> Result<Option<ResponseRecord>, StoreError> {
        guarded!(self.response(id))
    }
    async fn latest_response(&self, session_id: &str) -> Result<Option<String>, StoreError> {
        guarded!(self.latest_response(session_id))
    }
    async fn delete_response(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        guarded!(self.delete_response(id, owner))
    }
    async fn prune_responses(&self, before: i64) -> Result<u64, StoreError> {
        guarded!(self.prune_responses(before))
    }
    async fn transcript_head(&self, session_id: &str) -> Result<Option<(String, i64)>, StoreError> {
        guarded!(self.transcript_head(session_id))
    }
    async fn transcript(&self, session_id: &str) -> Result<Option<StoredTranscript>, StoreError> {
        guarded!(self.transcript(session_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_errors_are_the_connection_kind() {
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolClosed).is_unavailable());
        assert!(
            StoreError::Database(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused
            )))
            .is_unavailable()
        );
        assert!(StoreError::Unavailable.is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::Corrupt("keys").is_unavailable());
    }
}
