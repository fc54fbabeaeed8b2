//! Conversations kept outside the pool: every completed turn's transcript reaches the
//! configured sink before the turn is reported, and another pool (another HOME, another
//! working root) takes the conversation up from those bytes and goes on with its context.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use claude_pool_actors::{PoolHandle, SavedTurn, SessionId, TranscriptSink, TurnEvent};
use common::{fake_config, turn, turn_counter};

type Kept = Arc<Mutex<Vec<(SessionId, String, Vec<u8>)>>>;

/// A sink that copies each saved turn's transcript (as far as the turn reaches).
fn copying_sink(kept: Kept) -> TranscriptSink {
    TranscriptSink::new(move |session, saved: SavedTurn| {
        let kept = kept.clone();
        async move {
            let bytes = tokio::fs::read(&saved.file).await.expect("transcript file");
            let upto = usize::try_from(saved.len).unwrap().min(bytes.len());
            kept.lock()
                .unwrap()
                .push((session, saved.cli_session_id, bytes[..upto].to_vec()));
        }
    })
}

#[tokio::test]
async fn a_conversation_kept_by_one_pool_is_taken_up_by_another_with_its_context() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let kept: Kept = Arc::default();
    let mut config_a = fake_config(dir_a.path(), 1, 2);
    config_a.transcript_sink = Some(copying_sink(kept.clone()));
    let a = PoolHandle::start(config_a).await.unwrap();
    let b = PoolHandle::start(fake_config(dir_b.path(), 1, 2))
        .await
        .unwrap();

    for k in 1..=3 {
        let (reply, _) = turn(&a, "s1", &format!("message {k}")).await;
        assert_eq!(turn_counter(&reply), k);
        // Kept before the turn was reported: the copy already has this turn.
        let copies = kept.lock().unwrap();
        assert_eq!(copies.len(), k as usize, "one copy per completed turn");
        let text = String::from_utf8_lossy(&copies.last().unwrap().2).into_owned();
        assert!(text.contains(&format!("message {k}")), "{text}");
    }
    let (session, cli_session_id, transcript) = kept.lock().unwrap().last().cloned().unwrap();
    assert_eq!(&*session, "s1");

    let sid: SessionId = "s1".into();
    assert!(!b.knows(&sid).await, "the other pool has never seen it");
    assert!(
        b.adopt(sid.clone(), cli_session_id.clone(), &transcript)
            .await
            .unwrap()
    );
    assert!(b.knows(&sid).await);
    assert!(
        !b.adopt(sid.clone(), cli_session_id, &transcript)
            .await
            .unwrap(),
        "a conversation the pool knows is not taken up twice"
    );
    assert!(a.knows(&sid).await, "the first pool still has it");

    // The next turn on the second pool resumes it: the fourth turn of the conversation.
    let mut stream = b
        .submit(claude_pool_actors::Turn::text("s1", "message 4"))
        .await
        .unwrap();
    let mut resumed = None;
    let reply = loop {
        match stream.recv().await {
            Some(TurnEvent::Started { resumed: r, .. }) => resumed = Some(r),
            Some(TurnEvent::Completed(r)) => break r.text,
            Some(TurnEvent::Failed(e)) => panic!("turn failed: {e}"),
            Some(_) => {}
            None => panic!("no result"),
        }
    };
    assert_eq!(resumed, Some(true));
    assert_eq!(turn_counter(&reply), 4, "{reply}");
    assert_eq!(b.snapshot().conversations_adopted, 1);
    assert_eq!(b.snapshot().conversations_lost, 0);

    a.shutdown(Duration::from_secs(2)).await;
    b.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn a_failed_turn_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let kept: Kept = Arc::default();
    let mut config = fake_config(dir.path(), 1, 2);
    config.transcript_sink = Some(copying_sink(kept.clone()));
    let pool = PoolHandle::start(config).await.unwrap();
    turn(&pool, "s", "hello").await;
    let mut stream = pool
        .submit(claude_pool_actors::Turn::text("s", "[[error:529]]"))
        .await
        .unwrap();
    while let Some(ev) = stream.recv().await {
        if matches!(ev, TurnEvent::Completed(_) | TurnEvent::Failed(_)) {
            break;
        }
    }
    assert_eq!(kept.lock().unwrap().len(), 1, "only the completed turn");
    pool.shutdown(Duration::from_secs(2)).await;
}
