//! [`SpendLog`]: the durable record of what every turn cost. Workers report a turn's spend
//! through its ledger callback (also when the client has gone); the record goes through a
//! channel to one writer task, which writes whatever has accumulated in one transaction, with
//! retries. On shutdown the pool is drained first, then [`SpendLog::close`] writes what is left.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::limits::Reservation;
use crate::store::{SpendRecord, Store};

/// A record and the budget reservation it settles (released once the record is written).
type Entry = (SpendRecord, Option<Reservation>);

/// Largest batch written in one transaction.
const MAX_BATCH: usize = 512;
/// Attempts per batch before it is given up (and logged).
const ATTEMPTS: u32 = 6;

/// Hands spend records to the writer task.
#[derive(Debug, Clone)]
pub struct SpendLog {
    tx: mpsc::UnboundedSender<Entry>,
    closing: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl SpendLog {
    /// Starts the writer.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let closing = CancellationToken::new();
        let task = tokio::spawn(writer(store, rx, closing.clone()));
        Self {
            tx,
            closing,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Queues a record (never blocks); `settles` is released once it is written.
    pub fn record(&self, r: SpendRecord, settles: Option<Reservation>) {
        if let Err(e) = self.tx.send((r, settles)) {
            let (r, _) = e.0;
            tracing::error!(key = %r.key_id, cost_usd = r.cost_usd, "spend record after shutdown; not written");
        }
    }

    /// Writes everything queued so far and stops the writer.
    pub async fn close(&self) {
        self.closing.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Entry>,
    closing: CancellationToken,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut closed = false;
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            () = closing.cancelled(), if !closed => {
                // No new records; what is queued is still received, then `None`.
                closed = true;
                rx.close();
                continue;
            }
        };
        let Some(first) = first else { return };
        batch.push(first);
        crate::store::batch::take_waiting(&mut rx, &mut batch, MAX_BATCH);
        write(store.as_ref(), &mut batch).await;
    }
}

/// Writes a batch; its reservations are released when it is written or given up (the cached
/// spend already counts the turns either way).
async fn write(store: &dyn Store, batch: &mut Vec<Entry>) {
    if batch.is_empty() {
        return;
    }
    let records: Vec<SpendRecord> = batch.iter().map(|(r, _)| r.clone()).collect();
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=ATTEMPTS {
        match store.record_spend(&records).await {
            Ok(()) => {
                batch.clear();
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, records = batch.len(), "writing spend failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                let cost: f64 = records.iter().map(|r| r.cost_usd).sum();
                tracing::error!(error = %e, records = batch.len(), cost_usd = cost, "spend records lost");
            }
        }
    }
    batch.clear();
}
