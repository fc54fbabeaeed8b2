//! Group commit of new conversations' session rows. A burst of new conversations (10,000 at
//! once) used to take one store connection per request, each waiting for SQLite's single
//! writer; one task now writes whatever rows are waiting in one transaction and answers every
//! request of the batch. A request still returns only once its row is written (or with the
//! store's error: 503 while the database is unavailable).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Store, StoreError};

/// Rows written in one transaction at most.
const MAX_BATCH: usize = 512;

/// How a batch ended, for each of its requests.
#[derive(Debug, Clone, Copy)]
enum Written {
    Ok,
    Unavailable,
    Failed,
}

type Request = ((String, String), oneshot::Sender<Written>);

/// Hands new session rows to the writer.
#[derive(Debug, Clone)]
pub(crate) struct NewSessions {
    tx: mpsc::UnboundedSender<Request>,
}

impl NewSessions {
    /// Starts the writer.
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(store, rx));
        Self { tx }
    }

    /// Writes the row of a new session `key` owned by `owner`.
    pub(crate) async fn create(&self, key: String, owner: String) -> Result<(), StoreError> {
        let (done, written) = oneshot::channel();
        self.tx
            .send(((key, owner), done))
            .map_err(|_| StoreError::Unavailable)?;
        match written.await {
            Ok(Written::Ok) => Ok(()),
            Ok(Written::Unavailable) | Err(_) => Err(StoreError::Unavailable),
            Ok(Written::Failed) => Err(StoreError::Corrupt("sessions (batch insert failed)")),
        }
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        crate::store::batch::take_waiting(&mut rx, &mut batch, MAX_BATCH);
        let rows: Vec<(String, String)> = batch.iter().map(|(row, _)| row.clone()).collect();
        let outcome = match store.create_sessions(&rows).await {
            Ok(()) => Written::Ok,
            Err(e) if e.is_unavailable() => Written::Unavailable,
            Err(e) => {
                tracing::error!(error = %e, rows = rows.len(), "writing new sessions failed");
                Written::Failed
            }
        };
        for (_, done) in batch.drain(..) {
            let _ = done.send(outcome);
        }
    }
}
