//! Group commit: a writer task takes whatever is waiting on its channel, up to a bound, and
//! writes it in one transaction (spend records, new sessions' rows, transcript parts).

use tokio::sync::mpsc;

/// Moves what is waiting on `rx` into `batch` until it holds `max` (never waits).
pub(crate) fn take_waiting<T>(rx: &mut mpsc::UnboundedReceiver<T>, batch: &mut Vec<T>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
}
