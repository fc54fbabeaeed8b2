//! Micro-benchmarks of the per-token and per-request hot paths: parsing the CLI's stream-json
//! lines, encoding OpenAI stream chunks and Messages API stream events, fingerprinting a history, and the pool's routing
//! decision. Run: `cargo bench --bench hot_paths`.

use std::hint::black_box;

use claude_pool::api::messages::wire::stream::StreamEncoder;
use claude_pool::conversation::{Msg, Role, fingerprint};
use claude_pool::openai::{ChatChunk, ChatRequest, Delta};
use claude_pool_actors::Usage;
use claude_pool_actors::pool::bench_support::RoutingFixture;
use claude_pool_actors::protocol::parse_line;
use criterion::{Criterion, criterion_group, criterion_main};

const FIXTURE: &str = include_str!("../actors/tests/fixtures/real-cli-2.1.197.jsonl");

fn line_of(kind: &str) -> &'static str {
    FIXTURE
        .lines()
        .find(|l| l.contains(kind))
        .expect("fixture has the line")
}

fn parsing(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_line");
    for (name, line) in [
        ("text_delta", line_of("\"text_delta\"")),
        ("result", line_of("\"type\":\"result\"")),
        ("system_init", line_of("\"subtype\":\"init\"")),
    ] {
        g.bench_function(name, |b| b.iter(|| parse_line(black_box(line)).unwrap()));
    }
    g.finish();
}

fn chunk_encoding(c: &mut Criterion) {
    c.bench_function("encode_chunk", |b| {
        b.iter(|| {
            let chunk = ChatChunk::delta(
                black_box("chatcmpl-0123456789abcdef0123456789abcdef"),
                1_795_000_000,
                "gpt-4-turbo",
                Delta {
                    content: Some(black_box("echo: hello ther")),
                    ..Delta::default()
                },
                None,
            );
            serde_json::to_string(&chunk).unwrap()
        })
    });
}

/// One text piece of a streamed Messages API answer (its block already open) as SSE bytes.
fn message_event_encoding(c: &mut Criterion) {
    let mut encoder = StreamEncoder::new(false);
    let mut out = Vec::with_capacity(1024);
    encoder.start(
        &mut out,
        "msg_0123456789abcdef01234567",
        "sonnet",
        &Usage::default(),
    );
    encoder.text(&mut out, "echo: ");
    c.bench_function("encode_message_text_delta", |b| {
        b.iter(|| {
            out.clear();
            encoder.text(&mut out, black_box("echo: hello ther"));
            out.len()
        })
    });
}

fn fingerprinting(c: &mut Criterion) {
    let history: Vec<Msg> = (0..10)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            Msg::text(role, format!("message {i} ").repeat(40))
        })
        .collect();
    c.bench_function("fingerprint_10_messages_4kb", |b| {
        b.iter(|| fingerprint(black_box("key-0123abcd"), black_box(&history)))
    });
    let body = serde_json::json!({"model": "gpt-4", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "how are you?"}]})
    .to_string();
    c.bench_function("parse_chat_request", |b| {
        b.iter(|| serde_json::from_str::<ChatRequest>(black_box(&body)).unwrap())
    });
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_turn");
    for workers in [8usize, 64] {
        let mut f = RoutingFixture::new(workers);
        let mut i = 0;
        g.bench_function(format!("{workers}_workers"), |b| {
            b.iter(|| {
                i = (i + 1) % workers;
                f.route(black_box(i))
            })
        });
    }
    g.finish();
}

/// What every request adds for keys and limits: hashing the presented key (the cache lookup is
/// a map probe on that hash) and a rate-limit decision.
fn keys_and_limits(c: &mut Criterion) {
    let key = claude_pool::keys::generate();
    c.bench_function("key_hash", |b| {
        b.iter(|| claude_pool::keys::hash(black_box(&key)))
    });
    let limits = claude_pool::limits::RateLimits::new(claude_pool::limits::Rate::new(
        u32::MAX,
        std::time::Duration::from_secs(1),
    ));
    let id: std::sync::Arc<str> = claude_pool::keys::hash(&key).into();
    let rate = limits.rate_for(None);
    c.bench_function("rate_limit_check", |b| {
        b.iter(|| limits.check(black_box(&id), rate))
    });
}

criterion_group!(
    benches,
    parsing,
    chunk_encoding,
    message_event_encoding,
    fingerprinting,
    routing,
    keys_and_limits
);
criterion_main!(benches);
