//! # claude-pool-actors
//!
//! A supervised pool of warm Claude Code CLI processes, built on `ractor` actors.
//! This crate knows nothing about HTTP: it takes [`Turn`]s and gives back a stream of
//! [`TurnEvent`]s.
//!
//! ## Layout
//! | module | responsibility |
//! |---|---|
//! | [`content`] | a user message's content blocks (text, image, document, tool result): to stream-json, digests, summaries; pure |
//! | [`protocol`] | the CLI's stream-json lines (what we write to stdin, what it prints on stdout); pure, no I/O |
//! | [`config`] | [`PoolConfig`] and [`WorkerConfig`]: pool sizing, timeouts, how a child is started |
//! | [`turn`] | the public request/response types: [`Turn`], [`TurnEvent`], [`TurnStream`], [`SubmitError`] |
//! | [`pricing`] | mid-turn cost estimates from streamed token counts (per-request cost caps) |
//! | [`transcript`] | where the CLI keeps a conversation's transcript; waiting until a turn is saved in it |
//! | [`child`] | one child process: spawn (own process group, allow-listed env), JSON-line framing, stop (SIGTERM → grace → SIGKILL → reap), drop guard |
//! | [`worker`] | the worker actor: owns one child, runs one turn at a time, interrupt, `/clear` handoff, recycling |
//! | [`pool`] | the pool actor: supervisor + router (affinity, bounded queue, eviction, restart with backoff, resize, shutdown) and its [`PoolHandle`] |
//!
//! The runtime contract (ordering, cancellation, restart, queue-full, eviction, resume and
//! shutdown) is described in `docs/runtime-semantics.md` at the repository root.

pub mod child;
pub mod config;
pub mod content;
pub mod pool;
pub mod pricing;
pub mod protocol;
pub mod transcript;
pub mod turn;
pub mod worker;

pub use config::{BackoffConfig, Handoff, PoolConfig, WorkerConfig};
pub use content::{Block, Source};
pub use pool::{AdoptError, PoolError, PoolHandle, PoolSnapshot, WorkerState};
pub use transcript::{SavedTurn, TranscriptSink};
pub use turn::{
    ExternalTools, Ledger, Profile, Secret, SessionId, SubmitError, Thinking, ToolCall, Turn,
    TurnBudget, TurnError, TurnEvent, TurnResult, TurnSpend, TurnStream, Usage,
};
pub use worker::WorkerId;
