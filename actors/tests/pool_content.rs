//! A turn's content beyond text, through the pool with the fake CLI: attachments reach the CLI
//! as blocks (the fake describes each as the fake Anthropic API does), and the model's
//! thinking comes back as turn events and in the result.

mod common;

use std::time::Duration;

use claude_pool_actors::{PoolHandle, Turn, TurnEvent};
use common::*;

#[tokio::test]
async fn attachments_reach_the_cli_as_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 1))
        .await
        .unwrap();
    let (blocks, described) = attachments();
    let r = pool
        .submit(Turn::new("s", blocks))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(r.text, format!("echo: {described} [turn=1]"));
    // A command-like text with an attachment still reaches the model as text.
    let (mut blocks, _) = attachments();
    blocks[0] = claude_pool_actors::Block::text("/clear");
    blocks.truncate(2);
    let r = pool
        .submit(Turn::new("s", blocks))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(
        r.text
            .starts_with("echo: /clear [image base64 image/png 68 bytes"),
        "{}",
        r.text
    );
    assert_eq!(turn_counter(&r.text), 2, "the conversation went on");
    pool.shutdown(Duration::from_secs(5)).await;
}

/// The events of one turn, up to its end.
async fn events(pool: &PoolHandle, turn: Turn) -> Vec<TurnEvent> {
    let mut stream = pool.submit(turn).await.unwrap();
    let mut events = Vec::new();
    while let Some(event) = stream.recv().await {
        events.push(event);
    }
    events
}

#[tokio::test]
async fn thinking_streams_before_the_text_and_is_kept_in_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let pool = PoolHandle::start(fake_config(dir.path(), 1, 1))
        .await
        .unwrap();
    let evs = events(&pool, Turn::text("t", "why is the sky blue? [[think]]")).await;
    // The kinds in order, runs of one kind counted once.
    let mut kinds: Vec<&str> = evs
        .iter()
        .map(|e| match e {
            TurnEvent::Started { .. } => "started",
            TurnEvent::ThinkingDelta(_) => "thinking",
            TurnEvent::ThinkingSignature(_) => "signature",
            TurnEvent::TextDelta(_) => "text",
            TurnEvent::ToolCalls(_) => "tool calls",
            TurnEvent::Completed(_) => "completed",
            TurnEvent::Failed(_) => "failed",
        })
        .collect();
    let thinking_deltas = kinds.iter().filter(|k| **k == "thinking").count();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["started", "thinking", "signature", "text", "completed"]
    );
    assert!(thinking_deltas > 1, "streamed in pieces");
    let streamed: String = evs
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ThinkingDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(streamed, "thinking about: why is the sky blue? [[think]]");
    let Some(TurnEvent::Completed(r)) = evs.last() else {
        panic!("{evs:?}")
    };
    assert_eq!(r.text, "echo: why is the sky blue? [[think]] [turn=1]");
    assert_eq!(r.thinking.len(), 1);
    assert_eq!(r.thinking[0].text, streamed);
    let signature = r.thinking[0].signature.as_deref().unwrap();
    assert!(
        signature.starts_with("sig-fake-") && signature.len() == 17,
        "{signature}"
    );
    assert!(evs.contains(&TurnEvent::ThinkingSignature(signature.to_owned())));
    // A turn without thinking has none.
    let r = pool
        .submit(Turn::text("t", "plain"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(r.thinking.is_empty());
    pool.shutdown(Duration::from_secs(5)).await;
}
