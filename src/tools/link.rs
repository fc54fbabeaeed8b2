//! Where a running turn's MCP calls meet the client's results: the CLI asks for a call's result
//! (the MCP server holds the call until it comes), the client's request brings it; whichever
//! comes first waits for the other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

/// A tool's outcome as the CLI receives it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// The text given to the model.
    pub text: String,
    /// True when it reports a failure (no result came).
    pub is_error: bool,
    /// Images and documents of the result (the MCP result carries base64 images as images,
    /// anything else as a note in its text).
    pub attachments: Vec<claude_pool_actors::content::Block>,
}

enum Slot {
    /// The CLI asked; the result has not come.
    Asked(oneshot::Sender<Outcome>),
    /// The result came first.
    Ready(Outcome),
}

/// One turn's exchange of calls and results, found by the worker's token.
#[derive(Default)]
pub struct Link {
    slots: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Link")
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Link {
    /// The CLI calls `id`: its result, now or once it comes (an error outcome if the turn is
    /// given up first).
    pub async fn ask(&self, id: &str) -> Outcome {
        let rx = {
            let mut slots = lock(&self.slots);
            if let Some(Slot::Ready(o)) = slots.remove(id) {
                return o;
            }
            let (tx, rx) = oneshot::channel();
            slots.insert(id.to_owned(), Slot::Asked(tx));
            rx
        };
        rx.await.unwrap_or_else(|_| Outcome {
            text: "the client gave no result for this call".into(),
            is_error: true,
            ..Outcome::default()
        })
    }

    /// The client's result for `id`.
    pub fn answer(&self, id: &str, outcome: Outcome) {
        let mut slots = lock(&self.slots);
        match slots.remove(id) {
            Some(Slot::Asked(tx)) => {
                let _ = tx.send(outcome);
            }
            _ => {
                slots.insert(id.to_owned(), Slot::Ready(outcome));
            }
        }
    }

    /// Gives up every waiting call (the turn is ending).
    pub fn abandon(&self) {
        lock(&self.slots).clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn ok(text: &str) -> Outcome {
        Outcome {
            text: text.into(),
            is_error: false,
            ..Outcome::default()
        }
    }

    #[tokio::test]
    async fn a_call_gets_its_result_whichever_comes_first() {
        let link = Arc::new(Link::default());
        link.answer("toolu_b", ok("early"));
        assert_eq!(link.ask("toolu_b").await, ok("early"));
        let asking = tokio::spawn({
            let link = link.clone();
            async move { link.ask("toolu_a").await }
        });
        tokio::task::yield_now().await;
        while lock(&link.slots).is_empty() {
            tokio::task::yield_now().await;
        }
        link.answer("toolu_a", ok("late"));
        assert_eq!(asking.await.unwrap(), ok("late"));
        let given_up = tokio::spawn({
            let link = link.clone();
            async move { link.ask("toolu_c").await }
        });
        while lock(&link.slots).is_empty() {
            tokio::task::yield_now().await;
        }
        link.abandon();
        assert!(given_up.await.unwrap().is_error);
    }
}
