//! Conversations kept in the store, so any replica (or this one after a restart) can resume
//! them.
//!
//! After every completed turn the pool hands over where the CLI saved the conversation
//! ([`SavedTurn`]); [`Keeper`] appends what the store does not have yet (the part of the file
//! the turn added) before the turn is reported, so an acknowledged turn is durable. A replica
//! asked to continue a session its pool does not know loads the transcript and has the pool
//! adopt it ([`Keeper::take_up`]): the next turn resumes it with `--resume`, with its whole context.
//!
//! Parts are written by one task in batches (group commit: one transaction for whatever
//! turns completed meanwhile); each turn still waits until its own part is committed.
//!
//! A transcript larger than `store.max_conversation_bytes` is no longer kept: the store holds a
//! marker instead, the conversation goes on where it runs, and another replica answers its next
//! turn with 409 `conversation_not_resumable`.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use claude_pool_actors::{PoolHandle, SavedTurn, SessionId, TranscriptSink};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::error::ApiError;
use crate::store::{Store, TranscriptPart};

/// Sessions whose kept length is remembered before the map is emptied (a forgotten one is
/// kept whole again on its next turn).
const REMEMBERED: usize = 100_000;

/// The CLI session id the store holds for a conversation too large to keep.
const TOO_LARGE: &str = "";

/// Counters for metrics.
#[derive(Debug, Default)]
pub struct KeeperStats {
    /// Turns whose transcript was kept.
    pub kept: AtomicU64,
    /// Bytes written to the store.
    pub bytes: AtomicU64,
    /// Turns whose transcript could not be kept (store error).
    pub failures: AtomicU64,
    /// Conversations that grew past the size limit.
    pub too_large: AtomicU64,
}

/// Parts written in one transaction at most.
const MAX_BATCH: usize = 256;

/// One part to write and where its outcome goes (kept, or not kept: the condition did not
/// hold; or the store's error, as text for the log).
type Job = (TranscriptPart, oneshot::Sender<Result<bool, String>>);

/// Keeps completed turns' transcripts in the store.
#[derive(Debug)]
pub struct Keeper {
    store: Arc<dyn Store>,
    writer: mpsc::UnboundedSender<Job>,
    max_bytes: u64,
    /// Per session: the CLI session and length the store has (`None`: marked too large).
    kept: Mutex<HashMap<SessionId, Option<(String, u64)>>>,
    /// What happened, for metrics.
    pub stats: KeeperStats,
}

impl Keeper {
    /// A keeper writing to `store`, keeping transcripts up to `max_bytes`.
    pub fn new(store: Arc<dyn Store>, max_bytes: u64) -> Arc<Self> {
        let (writer, jobs) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(store.clone(), jobs));
        Arc::new(Self {
            writer,
            store,
            max_bytes,
            kept: Mutex::new(HashMap::new()),
            stats: KeeperStats::default(),
        })
    }

    /// The keeper `store` (the server's store) needs: `None` when `store.keep_conversations`
    /// is off.
    pub fn for_config(
        config: &crate::config::StoreConfig,
        store: &Arc<dyn Store>,
    ) -> Option<Arc<Self>> {
        config
            .keep_conversations
            .then(|| Self::new(store.clone(), config.max_conversation_bytes))
    }

    /// The sink the pool calls after every completed turn.
    pub fn sink(self: &Arc<Self>) -> TranscriptSink {
        let me = self.clone();
        TranscriptSink::new(move |session, saved| {
            let me = me.clone();
            // The turn is answered once this commit is done: traced under its `chat` span.
            let span = crate::telemetry::commit_span(&session);
            async move { me.keep(session, saved).instrument(span).await }
        })
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Option<(String, u64)>>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, session: SessionId, state: Option<(String, u64)>) {
        let mut kept = self.remembered();
        if kept.len() >= REMEMBERED && !kept.contains_key(&session) {
            kept.clear();
        }
        kept.insert(session, state);
    }

    /// Keeps one completed turn: appends what the turn added, or the whole file when the store
    /// may hold something else (another CLI session, a failed write, another replica's turns).
    pub async fn keep(&self, session: SessionId, saved: SavedTurn) {
        let known = self.remembered().get(&session).cloned();
        if saved.len > self.max_bytes {
            if known == Some(None) {
                return;
            }
            self.stats.too_large.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                bytes = saved.len,
                limit = self.max_bytes,
                "a conversation outgrew store.max_conversation_bytes; it goes on only on this replica"
            );
            let marker = TranscriptPart {
                session_id: session.to_string(),
                cli_session_id: TOO_LARGE.into(),
                start: 0,
                data: String::new(),
            };
            match self.write_part(marker).await {
                Ok(_) => self.remember(session, None),
                Err(e) => self.failed(&session, &e),
            }
            return;
        }
        let start = match known {
            Some(Some((cli, len))) if cli == saved.cli_session_id && len <= saved.len => len,
            _ => 0,
        };
        let mut result = self.write(&session, &saved, start).await;
        if start > 0 && matches!(result, Err(KeepError::NotAtEnd)) {
            result = self.write(&session, &saved, 0).await;
        }
        match result {
            Ok(written) => {
                self.stats.kept.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(written, Ordering::Relaxed);
                self.remember(session, Some((saved.cli_session_id, saved.len)));
            }
            Err(e) => self.failed(&session, &e.to_string()),
        }
    }

    fn failed(&self, session: &SessionId, e: &str) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.remembered().remove(session);
        tracing::warn!(error = %e, "cannot keep a conversation's transcript in the store; it goes on only on this replica until a later turn is kept");
    }

    async fn write(&self, session: &str, saved: &SavedTurn, start: u64) -> Result<u64, KeepError> {
        let bytes = read_range(&saved.file, start, saved.len).await?;
        let text = String::from_utf8(bytes).map_err(|_| {
            KeepError::File(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the transcript is not UTF-8 at the kept boundary",
            ))
        })?;
        let written = text.len() as u64;
        let part = TranscriptPart {
            session_id: session.to_owned(),
            cli_session_id: saved.cli_session_id.clone(),
            start: start as i64,
            data: text,
        };
        match self.write_part(part).await {
            Ok(true) => Ok(written),
            Ok(false) => Err(KeepError::NotAtEnd),
            Err(e) => Err(KeepError::Store(e)),
        }
    }

    /// Hands a part to the batch writer and waits until it is committed.
    async fn write_part(&self, part: TranscriptPart) -> Result<bool, String> {
        let (done, outcome) = oneshot::channel();
        self.writer
            .send((part, done))
            .map_err(|_| "the transcript writer has stopped".to_owned())?;
        outcome
            .await
            .map_err(|_| "the transcript writer has stopped".to_owned())?
    }
}

#[derive(Debug, thiserror::Error)]
enum KeepError {
    #[error("{0}")]
    Store(String),
    #[error("the kept copy does not end where this part starts")]
    NotAtEnd,
    #[error("cannot read the transcript: {0}")]
    File(#[from] std::io::Error),
}

/// The batch writer: whatever parts are waiting, in one transaction.
async fn write_batches(store: Arc<dyn Store>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.recv().await {
        batch.push(first);
        crate::store::batch::take_waiting(&mut jobs, &mut batch, MAX_BATCH);
        let parts: Vec<TranscriptPart> = batch.iter().map(|(p, _)| p.clone()).collect();
        match store.keep_transcripts(&parts).await {
            Ok(kept) => {
                for ((_, done), kept) in batch.drain(..).zip(kept) {
                    let _ = done.send(Ok(kept));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Bytes `start..end` of `file`.
async fn read_range(file: &std::path::Path, start: u64, end: u64) -> std::io::Result<Vec<u8>> {
    let mut f = tokio::fs::File::open(file).await?;
    f.seek(SeekFrom::Start(start)).await?;
    let mut buf = vec![0; usize::try_from(end.saturating_sub(start)).unwrap_or(0)];
    f.read_exact(&mut buf).await?;
    Ok(buf)
}

/// What [`Keeper::take_up`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum TakeUp {
    /// The pool holds the conversation as kept.
    Known,
    /// The pool adopted it from the store (it had not seen it, or what it held was behind:
    /// the conversation went on on another replica meanwhile).
    Adopted,
    /// Nothing is kept for it (no completed turn, or keeping is off).
    NothingKept,
    /// This replica kept it, and the store no longer has it: the session was deleted on
    /// another replica (its copy here is dropped).
    Deleted,
}

impl Keeper {
    /// Makes sure the pool continues `session` with its whole context. A conversation the
    /// pool does not know is adopted from the transcript kept in the store; one it knows but
    /// whose kept transcript has moved on past what this replica kept (its later turns ran on
    /// another replica, e.g. while this one was out of the load balancer) is dropped here and
    /// adopted again.
    pub async fn take_up(
        &self,
        pool: &PoolHandle,
        session: &SessionId,
    ) -> Result<TakeUp, ApiError> {
        if pool.knows(session).await {
            let ours = self.remembered().get(session).cloned().flatten();
            let Some((cli, len)) = ours else {
                return Ok(TakeUp::Known);
            };
            match self.store.transcript_head(session).await? {
                Some((kept_cli, kept_len)) if kept_cli == cli && kept_len as u64 == len => {
                    return Ok(TakeUp::Known);
                }
                Some(_) => {
                    tracing::info!("a conversation went on on another replica; taking it up again");
                    self.forget_held(pool, session);
                }
                None => {
                    self.forget_held(pool, session);
                    return Ok(TakeUp::Deleted);
                }
            }
        }
        let Some(kept) = self.store.transcript(session).await? else {
            return Ok(TakeUp::NothingKept);
        };
        if kept.cli_session_id == TOO_LARGE {
            return Err(ApiError::ConversationNotResumable(
                "this conversation grew past store.max_conversation_bytes, so it is kept only \
                 by the replica that ran it, which cannot serve it now; start a new session (or \
                 send the whole history without a session id)"
                    .into(),
            ));
        }
        let (cli, len) = (kept.cli_session_id.clone(), kept.data.len() as u64);
        match pool
            .adopt(session.clone(), kept.cli_session_id, kept.data.as_bytes())
            .await
        {
            Ok(true) => {
                tracing::info!(bytes = len, "conversation taken up from the store");
                self.remember(session.clone(), Some((cli, len)));
                Ok(TakeUp::Adopted)
            }
            Ok(false) => Ok(TakeUp::Known),
            Err(e) => Err(ApiError::Internal(format!(
                "cannot take up a kept conversation: {e}"
            ))),
        }
    }

    /// A session id that is new to the store must not continue a conversation this replica
    /// still holds under it (the session was deleted on another replica).
    pub fn forget_held(&self, pool: &PoolHandle, session: &SessionId) {
        self.remembered().remove(session);
        pool.end_session(session.clone());
    }
}
