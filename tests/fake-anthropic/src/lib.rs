//! A fake Anthropic Messages API that the real Claude Code CLI runs against in tests, with no
//! network and no model: every answer is deterministic, `echo: <last user text> [n=<messages>]`,
//! so a test sees both what reached the model and how much context the CLI sent. Magic words in
//! the prompt choose faults, tool calls, thinking, long or slow answers (see the README).
//!
//! # Layout
//!
//! Wire logic, pure and unit-tested, apart from I/O:
//! - [`request`]: reading a request (last user text after system-reminders, tool results,
//!   attachment descriptions, offered tools, `stream` and `thinking`).
//! - [`magic`]: the magic words (`[[error500]]`, `[[call:NAME {json}]]`, `[[cost:N]]`, …).
//! - [`reply`]: deciding the reply: a fault, a hang or an [`reply::Answer`] with its usage.
//! - [`wire`]: the answer as named server-sent events in the API's order, or as one JSON
//!   message; the error envelope.
//! - [`pyjson`]: JSON written as Python's `json.dumps` writes it, so answers are byte for byte
//!   those of the Python fake the project's tests used before this crate.
//!
//! I/O:
//! - [`state`]: options, request counts, id counters, the last request.
//! - [`server`]: the HTTP handler and connection loop ([`serve`]).
//! - [`handle`]: [`FakeApi`], the server in-process for Rust tests (stops on drop).
//!
//! The `fake-anthropic` binary serves it for scripts and the Python tests.

pub mod handle;
pub mod magic;
pub mod pyjson;
pub mod reply;
pub mod request;
pub mod server;
pub mod state;
pub mod wire;

pub use handle::FakeApi;
pub use server::{Server, serve};
pub use state::Options;
