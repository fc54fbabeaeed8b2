//! Conversations kept in the store survive their replica: a session run on one server is
//! continued on another server sharing the database (and on a restarted one) with its whole
//! context, the client sending only its new message; deleting the session deletes what was
//! kept; a conversation past `store.max_conversation_bytes` gets a clear 409 elsewhere. Run on
//! SQLite (two servers on one file) and PostgreSQL.

mod common;

use common::*;
use serde_json::{Value, json};

/// One turn of session `sid` with only its new message; returns (status, body).
async fn say(s: &TestServer, sid: &str, text: &str) -> (u16, Value) {
    let r = s
        .post("/v1/chat/completions")
        .header("X-Session-Id", sid)
        .json(&json!({"model": "sonnet", "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn answer(body: &Value) -> &str {
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
}

async fn continued_elsewhere(backend: Backend) {
    let Some(a) = TestServer::start_on(backend, 1, 2, |_| {}).await else {
        return;
    };
    let b = a.replica(|_| {}).await;
    for k in 1..=3 {
        let (status, body) = say(&a, "trip", &format!("message {k}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(turn_counter(answer(&body)), k);
    }
    // The other replica has never seen it: it takes the conversation up from the store.
    let (status, body) = say(&b, "trip", "message 4").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(turn_counter(answer(&body)), 4, "{body}");
    assert_eq!(b.pool.snapshot().conversations_adopted, 1);
    let (_, body) = say(&b, "trip", "message 5").await;
    assert_eq!(turn_counter(answer(&body)), 5, "{body}");
    assert_eq!(b.pool.snapshot().conversations_adopted, 1, "taken up once");

    // A third server started later (a restarted replica) goes on from turn 5.
    let c = a.replica(|_| {}).await;
    let (_, body) = say(&c, "trip", "message 6").await;
    assert_eq!(turn_counter(answer(&body)), 6, "{body}");

    // Deleting the session deletes what was kept.
    let scoped = format!("{}/trip", claude_pool::keys::hash(KEY));
    assert!(a.app.store.transcript(&scoped).await.unwrap().is_some());
    assert_eq!(
        b.status(reqwest::Method::DELETE, "/api/v1/sessions/trip")
            .await,
        200
    );
    assert!(a.app.store.transcript(&scoped).await.unwrap().is_none());

    for s in [a, b, c] {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_goes_on_on_another_replica_sqlite() {
    continued_elsewhere(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_goes_on_on_another_replica_postgres() {
    continued_elsewhere(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_too_large_to_keep_is_refused_elsewhere_with_409() {
    let a = TestServer::start(1, 2, |c| c.store.max_conversation_bytes = 600).await;
    let b = a.replica(|c| c.store.max_conversation_bytes = 600).await;
    let (_, body) = say(&a, "big", "short").await;
    assert_eq!(turn_counter(answer(&body)), 1);
    let long = "x".repeat(400);
    let (status, body) = say(&a, "big", &long).await;
    assert_eq!(status, 200, "the turn that outgrows the limit is answered");
    let (status, body2) = say(&a, "big", "still here").await;
    assert_eq!(status, 200, "{body2}");
    assert_eq!(
        turn_counter(answer(&body2)),
        3,
        "it goes on where it runs: {body}"
    );
    let (status, body) = say(&b, "big", "elsewhere").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conversation_not_resumable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("store.max_conversation_bytes")
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keeping_off_nothing_is_kept() {
    let a = TestServer::start(1, 2, |c| c.store.keep_conversations = false).await;
    let (_, body) = say(&a, "plain", "hello").await;
    assert_eq!(turn_counter(answer(&body)), 1);
    let scoped = format!("{}/plain", claude_pool::keys::hash(KEY));
    assert!(a.app.store.transcript(&scoped).await.unwrap().is_none());
    a.stop().await;
}

/// A replica that still holds a conversation which went on elsewhere (it was out of the load
/// balancer for a while) takes it up again from the store instead of answering from its stale
/// copy; a session deleted elsewhere starts afresh here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_holding_a_conversation_that_went_on_elsewhere_catches_up() {
    let a = TestServer::start(1, 2, |_| {}).await;
    let b = a.replica(|_| {}).await;
    for k in 1..=2 {
        let (_, body) = say(&a, "moved", &format!("a{k}")).await;
        assert_eq!(turn_counter(answer(&body)), k);
    }
    for k in 3..=4 {
        let (_, body) = say(&b, "moved", &format!("b{k}")).await;
        assert_eq!(turn_counter(answer(&body)), k, "{body}");
    }
    let (_, body) = say(&a, "moved", "back on a").await;
    assert_eq!(turn_counter(answer(&body)), 5, "{body}");
    assert_eq!(a.pool.snapshot().conversations_adopted, 1);

    // Deleted on B while A holds it: the id starts a new conversation on A.
    assert_eq!(
        b.status(reqwest::Method::DELETE, "/api/v1/sessions/moved")
            .await,
        200
    );
    let (_, body) = say(&a, "moved", "fresh").await;
    assert_eq!(turn_counter(answer(&body)), 1, "{body}");
    a.stop().await;
    b.stop().await;
}

/// A conversation's system prompt moves with it: the replica that takes it up runs it with
/// the prompt its first turn was sent with, although later turns send only their new message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_prompt_moves_with_the_conversation() {
    let a = TestServer::start(1, 2, |_| {}).await;
    let b = a.replica(|_| {}).await;
    let r = a
        .post("/v1/chat/completions")
        .header("X-Session-Id", "pirate")
        .json(&json!({"model": "sonnet", "messages": [
            {"role": "system", "content": "talk like a pirate"},
            {"role": "user", "content": "[[system]] ahoy"}]}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(
        answer(&body).contains("system=talk like a pirate"),
        "{body}"
    );
    let (status, body) = say(&b, "pirate", "[[system]] and now?").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        answer(&body).contains("system=talk like a pirate"),
        "{body}"
    );
    assert_eq!(turn_counter(answer(&body)), 2, "{body}");
    a.stop().await;
    b.stop().await;
}

/// Responses API responses are in the store: a response made on one replica is continued
/// (`previous_response_id`, in place: the conversation is taken up), shown and deleted on
/// another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_made_on_one_replica_is_continued_on_another() {
    let a = TestServer::start(1, 2, |_| {}).await;
    let b = a.replica(|_| {}).await;
    let first: Value = a
        .post("/v1/responses")
        .json(&json!({"model": "sonnet", "input": "hello"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = first["id"].as_str().unwrap().to_owned();
    let r = b
        .post("/v1/responses")
        .json(&json!({"model": "sonnet", "input": "again", "previous_response_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    let text = second["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("echo: again"), "{second}");
    assert_eq!(turn_counter(text), 2, "continued in place: {second}");
    let path = format!("/v1/responses/{id}");
    assert_eq!(b.status(reqwest::Method::GET, &path).await, 200);
    assert_eq!(b.status(reqwest::Method::DELETE, &path).await, 200);
    assert_eq!(a.status(reqwest::Method::GET, &path).await, 404);
    a.stop().await;
    b.stop().await;
}
