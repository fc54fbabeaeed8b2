//! A turn's content beyond text with the REAL Claude Code CLI against the fake Anthropic API
//! (in-process): attachments reach the model intact, and the model's thinking (the CLI asks
//! for adaptive thinking by default) comes back as turn events. See `common::real` for how
//! the CLI is found.

mod common;

use std::time::Duration;

use claude_pool_actors::{Block, PoolHandle, Thinking, Turn, TurnEvent};
use common::real::*;
use common::*;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cli_attachments_reach_the_model_intact() {
    let Some(cli) = real_cli() else { return };
    let dir = tempfile::tempdir().unwrap();
    let api = fake_api();
    let pool = PoolHandle::start(real_config(cli, dir.path(), &api, 1, 1))
        .await
        .unwrap();
    assert!(pool.wait_ready(Duration::from_secs(60)).await);
    let (blocks, described) = attachments();
    let r = pool
        .submit(Turn::new("att", blocks))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        r.text,
        format!("echo: {described} [n=1]"),
        "each attachment reached the API with its size and digest, after the text"
    );
    let request = api.last_request();
    let sent = &request["messages"][0]["content"];
    let image = sent
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "image"))
        .expect("an image block");
    assert_eq!(image["source"]["data"], PNG, "the image's data unchanged");
    let pdf = sent
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "document"))
        .expect("a document block");
    assert_eq!(
        (&pdf["source"]["data"], &pdf["title"]),
        (&serde_json::json!(PDF), &serde_json::json!("spec"))
    );
    // Text that reads as a command, with an attachment after it, still goes to the model.
    let (mut blocks, _) = attachments();
    blocks[0] = Block::text("/cost");
    blocks.truncate(2);
    let r = pool
        .submit(Turn::new("att", blocks))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        r.text,
        "echo: /cost [image base64 image/png 68 bytes sha256:63ef318d] [n=3]"
    );
    pool.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cli_thinking_comes_as_turn_events_with_the_api_signature() {
    let Some(cli) = real_cli() else { return };
    let dir = tempfile::tempdir().unwrap();
    let api = fake_api();
    let pool = PoolHandle::start(real_config(cli, dir.path(), &api, 1, 1))
        .await
        .unwrap();
    assert!(pool.wait_ready(Duration::from_secs(60)).await);
    let mut stream = pool
        .submit(Turn::text("think", "why? [[think]]"))
        .await
        .unwrap();
    let (mut thought, mut signatures, mut text_before_signature) =
        (String::new(), Vec::new(), false);
    let result = loop {
        match stream.recv().await.expect("a final event") {
            TurnEvent::ThinkingDelta(piece) => thought.push_str(&piece),
            TurnEvent::ThinkingSignature(s) => signatures.push(s),
            TurnEvent::TextDelta(_) => text_before_signature |= signatures.is_empty(),
            TurnEvent::Completed(r) => break r,
            TurnEvent::Failed(e) => panic!("{e}"),
            TurnEvent::Started { .. } | TurnEvent::ToolCalls(_) => {}
        }
    };
    // What the fake API signs: `sig-fake-` and the first 8 hex of the thinking's SHA-256.
    let digest = Sha256::digest(b"thinking about: why? [[think]]");
    let expected: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(thought, "thinking about: why? [[think]]");
    assert_eq!(signatures, [format!("sig-fake-{expected}")]);
    assert!(!text_before_signature, "the thinking came before the text");
    assert_eq!(result.text, "echo: why? [[think]] [n=1]");
    assert_eq!(
        result.thinking,
        [Thinking {
            text: thought,
            signature: Some(signatures[0].clone()),
        }]
    );
    pool.shutdown(Duration::from_secs(5)).await;
}
