//! # claude-pool
//!
//! An OpenAI-compatible HTTP gateway in front of a pool of warm Claude Code CLI processes.
//! The pool itself (actors, child processes, routing) lives in the `claude-pool-actors`
//! crate; this crate is everything around it.
//!
//! ## Layout
//! | module | responsibility |
//! |---|---|
//! | [`config`] | layered configuration (file < env < seed env names < flags), validation |
//! | [`openai`] | OpenAI wire types: requests, responses, stream chunks, error envelope (pure) |
//! | [`conversation`] | OpenAI message lists → pool turns; history fingerprints for stateless clients |
//! | [`credentials`] | the workers' default Claude credential: start-up check, upstream auth failures |
//! | [`auth`] | API keys (`Authorization: Bearer` / `X-API-Key`): master key, stored keys through a cache |
//! | [`keys`] | key material: generation, hashing, display form, `duration` and `budget_duration` syntax |
//! | [`clock`] | the wall clock budget periods run on (tests move it forward) |
//! | [`keys_cli`] | `claude-pool keys create|list|info|revoke`, directly on the store |
//! | [`limits`] | per-key limits: requests (`governor`), tokens per minute, running turns, budget reservations |
//! | [`store`] | the durable store (SQLite or PostgreSQL): keys, spend, sessions, sealed credentials |
//! | [`spend`] | the spend writer: per-turn records, batched, written also after disconnects |
//! | [`error`] | [`error::ApiError`]: every failure as an OpenAI error envelope with its status |
//! | [`models`] | the model catalogue: aliases and known Claude names; unknown names are refused |
//! | [`metrics`] | Prometheus registry: pool gauges, request and latency histograms |
//! | [`http`] | axum routes: chat completions (JSON and SSE), models, sessions, health, metrics, the LiteLLM key and spend API (`http::admin`) |
//! | [`tools`] | function calling: `tools`/`tool_calls` wire shapes, the MCP bridge workers call, turns parked for tool results |
//! | [`responses`] | the Responses API: wire shapes, stored responses, routes |
//! | [`api`] | the API surfaces: OpenAI chat, Responses, sessions, the key API, and Anthropic's Messages API (`api::messages`) |
//! | [`admin`] | the HTTPS admin console: certificate, sign-in sessions and CSRF, token exchange, key management, live pool dashboard |
//! | [`listener`] | the API port's connection loop: header-read timeout, HTTP/1 + HTTP/2, graceful close |
//! | [`server`] | start-up check, serving, graceful shutdown |
//! | [`healthcheck`] | `claude-pool healthcheck`: a running server's `/readyz` as an exit code (container probes) |

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
