//! State replicas share through the store, on SQLite and PostgreSQL. Transcripts: parts append
//! only where the kept copy ends and only to the same CLI session; a part at 0 replaces
//! everything; a batch keeps its other parts when one does not fit; deleting the session
//! deletes the transcript. Responses: the newest of a conversation, deletion by its owner only,
//! pruning by age.

mod common;

use claude_pool::store::TranscriptPart;
use common::Backend;

on_both_backends!(
    parts_append_in_order_and_replace_from_zero,
    responses_are_kept_per_conversation,
);

fn part(session: &str, cli: &str, start: i64, data: &str) -> TranscriptPart {
    TranscriptPart {
        session_id: session.into(),
        cli_session_id: cli.into(),
        start,
        data: data.into(),
    }
}

async fn parts_append_in_order_and_replace_from_zero(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = common::database_url(backend, dir.path()).await else {
        return;
    };
    let config = claude_pool::config::StoreConfig {
        database_url: url,
        ..Default::default()
    };
    let store = claude_pool::store::open(&config).await.unwrap();
    store.claim_session("k/s", "k").await.unwrap();
    let kept = store
        .keep_transcripts(&[part("k/s", "c1", 0, "a\n"), part("k/t", "c9", 0, "t\n")])
        .await
        .unwrap();
    assert_eq!(kept, vec![true, true]);
    // An append where the copy ends, one after a gap, one for another CLI session: in one
    // batch, only the first is kept.
    let kept = store
        .keep_transcripts(&[
            part("k/s", "c1", 2, "b\n"),
            part("k/t", "c9", 5, "gap\n"),
            part("k/t", "other", 2, "x\n"),
        ])
        .await
        .unwrap();
    assert_eq!(kept, vec![true, false, false]);
    let s = store.transcript("k/s").await.unwrap().unwrap();
    assert_eq!(
        (s.cli_session_id.as_str(), s.data.as_str()),
        ("c1", "a\nb\n")
    );
    assert_eq!(
        store.transcript_head("k/s").await.unwrap(),
        Some(("c1".into(), 4))
    );
    assert_eq!(store.transcript("k/t").await.unwrap().unwrap().data, "t\n");
    // A part at 0 replaces the copy, also with another CLI session.
    store
        .keep_transcripts(&[part("k/s", "c2", 0, "new\n")])
        .await
        .unwrap();
    let s = store.transcript("k/s").await.unwrap().unwrap();
    assert_eq!(
        (s.cli_session_id.as_str(), s.data.as_str()),
        ("c2", "new\n")
    );
    // Deleting the session deletes its transcript.
    assert!(store.delete_session("k/s", "k").await.unwrap());
    assert_eq!(store.transcript("k/s").await.unwrap(), None);
    assert_eq!(store.transcript_head("k/s").await.unwrap(), None);
}

async fn responses_are_kept_per_conversation(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = common::database_url(backend, dir.path()).await else {
        return;
    };
    let config = claude_pool::config::StoreConfig {
        database_url: url,
        ..Default::default()
    };
    let store = claude_pool::store::open(&config).await.unwrap();
    let record = |id: &str, at: i64| claude_pool::store::ResponseRecord {
        id: id.into(),
        owner: "k".into(),
        session_id: "s".into(),
        history: "[]".into(),
        object: format!("{{\"id\":\"{id}\"}}"),
        created_at: at,
    };
    store.put_response(&record("r1", 100)).await.unwrap();
    assert_eq!(
        store.latest_response("s").await.unwrap().as_deref(),
        Some("r1")
    );
    store.put_response(&record("r2", 200)).await.unwrap();
    assert_eq!(
        store.latest_response("s").await.unwrap().as_deref(),
        Some("r2")
    );
    assert_eq!(store.response("r1").await.unwrap(), Some(record("r1", 100)));
    assert!(!store.delete_response("r1", "other").await.unwrap());
    assert!(store.delete_response("r1", "k").await.unwrap());
    assert_eq!(store.response("r1").await.unwrap(), None);
    assert_eq!(store.prune_responses(300).await.unwrap(), 1);
    assert_eq!(store.response("r2").await.unwrap(), None);
    assert_eq!(store.latest_response("s").await.unwrap(), None);
}
