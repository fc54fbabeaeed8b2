//! A burst of new conversations at once, on SQLite and on PostgreSQL: their session rows are
//! written in batches (one transaction for whatever is waiting), and every request still
//! returns only once its row is stored.

mod common;

use std::sync::Arc;

use common::keys::server;
use common::{Backend, KEY};

on_both_backends!(a_burst_of_new_conversations_gets_every_row_written,);

async fn a_burst_of_new_conversations_gets_every_row_written(backend: Backend) {
    let Some(s) = server(backend, |c| c.pool.queue_capacity = 512).await else {
        return;
    };
    let s = Arc::new(s);
    let clients: Vec<_> = (0..300)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let r = s
                    .chat_as(KEY, "sonnet", &format!("new conversation {i}"))
                    .await;
                assert_eq!(r.status(), 200);
                r.headers()["x-session-id"].to_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for c in clients {
        ids.insert(c.await.unwrap());
    }
    assert_eq!(ids.len(), 300, "one conversation each");
    // Every row is in the store, owned by the key, as soon as its request was answered.
    let listed = s.get_json("/api/v1/sessions", KEY).await;
    let stored: std::collections::HashSet<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ids.is_subset(&stored),
        "{} of 300 listed",
        ids.intersection(&stored).count()
    );
    Arc::try_unwrap(s).ok().unwrap().stop().await;
}
