//! A turn's content beyond text, through the pool to the fake CLI: attachments reach the CLI
//! as blocks (the fake describes each as the fake Anthropic API does).

mod common;

use std::time::Duration;

use claude_pool_actors::{PoolHandle, Turn};
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
