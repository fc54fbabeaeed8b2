//! A turn's content beyond text with the REAL Claude Code CLI against the fake Anthropic API
//! (in-process): attachments reach the model intact. See `real_cli.rs` for how the CLI is
//! found.

mod common;

use std::time::Duration;

use claude_pool_actors::{Block, PoolHandle, Turn};
use common::real::*;
use common::*;

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
