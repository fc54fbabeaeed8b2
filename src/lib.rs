//! # claude-pool
//!
//! An OpenAI-compatible HTTP gateway in front of a pool of warm Claude Code CLI processes.
//! The pool itself (actors, child processes, routing) lives in the `claude-pool-actors`
//! crate; this crate is everything around it.
//!
//! ## Layout
//! | module | responsibility |
//! |---|---|
//! | [`api`] | the API surfaces: OpenAI chat completions and Responses, Anthropic's Messages API, sessions, the LiteLLM key and spend API; each decodes into a neutral turn and renders its events |
//! | [`turns`] | the turn path under every surface: admission, placement, start, output limit, spend ledger, parked turns |
//! | [`conversation`] | conversations independent of any API: fingerprints of stateless clients, replays, system prompts, the session registry |
//! | [`tools`] | function calling: the functions a turn offers, `tools`/`tool_calls` wire shapes, the MCP bridge workers call, turns parked for tool results |
//! | [`openai`] | OpenAI's chat wire types: request, completion, stream chunks, error envelope (pure) |
//! | [`http`] | the router of every surface, the API gate (keys, rate limits), the access log, the JSON extractor, health, models and metrics routes |
//! | [`listener`] | the API port's connection loop: header-read timeout, HTTP/1 + HTTP/2, graceful close |
//! | [`console`] | the HTTPS admin console: certificate, sign-in sessions and CSRF, token exchange, key management, live pool dashboard |
//! | [`auth`] | API keys (`Authorization: Bearer` / `X-API-Key`): master key, stored keys through a cache |
//! | [`keys`] | key material: generation, hashing, display form, `duration` and `budget_duration` syntax |
//! | [`keys_cli`] | `claude-pool keys create|list|info|revoke`, directly on the store |
//! | [`limits`] | per-key limits: requests (`governor`), tokens per minute, running turns, budget reservations, cost estimates |
//! | [`clock`] | the wall clock budget periods run on (tests move it forward) |
//! | [`credentials`] | the workers' default Claude credential: start-up check, upstream auth failures |
//! | [`models`] | the model catalogue: aliases and known Claude names; unknown names are refused |
//! | [`store`] | the durable store (SQLite or PostgreSQL): keys, spend, sessions, sealed credentials, and what replicas share |
//! | [`spend`] | the spend writer: per-turn records, batched, written also after disconnects |
//! | [`transcripts`] | conversations kept in the store after every turn, taken up on another replica |
//! | [`state`] | [`state::App`]: the pool and every service, built once at start |
//! | [`config`] | layered configuration (file < env < seed env names < flags), validation |
//! | [`error`] | [`error::ApiError`]: every failure as an OpenAI error envelope with its status |
//! | [`metrics`] | Prometheus registry: pool gauges, request and latency histograms |
//! | [`telemetry`] | OpenTelemetry traces of requests and their turns |
//! | [`logging`] | the log filter |
//! | [`server`] | start-up check, serving, graceful shutdown |
//! | [`healthcheck`] | `claude-pool healthcheck`: a running server's `/readyz` as an exit code (container probes) |
//!
//! How they depend on one another, and one request's path through them:
//! `docs/architecture.md` at the repository root.

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod console;
pub mod conversation;
pub mod credentials;
pub mod error;
pub mod healthcheck;
pub mod http;
pub mod keys;
pub mod keys_cli;
pub mod limits;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod models;
pub mod openai;
pub mod server;
pub mod spend;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tools;
pub mod transcripts;
pub mod turns;
