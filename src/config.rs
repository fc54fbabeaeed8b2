//! Layered configuration: built-in defaults < `config/claude-pool.toml` (or `--config`) <
//! `CLAUDE_POOL_<SECTION>__<KEY>` < the seed deployments' env names (`PORT`, `API_KEYS`, ...) <
//! command-line flags. Layering is done by `figment`; [`Config::validate`] checks what types
//! cannot, and every error names the offending key.
//!
//! This file is the schema (sections, defaults); loading, validation and the conversion to the
//! pool's configuration are in `config/load.rs`.

mod load;

pub use load::FlagOverrides;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use claude_pool_actors::{PoolConfig, WorkerConfig};

/// The default config file, used when present.
pub const DEFAULT_CONFIG_PATH: &str = "config/claude-pool.toml";

/// A configuration problem; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file given with `--config` does not exist.
    #[error("config file {0} not found")]
    MissingFile(PathBuf),
    /// A value has the wrong type or an unknown key is present.
    #[error("{0}")]
    Invalid(Box<figment::Error>),
    /// A value is out of range.
    #[error("invalid value for `{key}`: {reason}")]
    Value {
        /// The dotted key, e.g. `pool.max_workers`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`: listener and HTTP behaviour.
    pub server: ServerConfig,
    /// `[pool]`: pool sizing and timeouts.
    pub pool: PoolSection,
    /// `[worker]`: how the CLI is started.
    pub worker: WorkerSection,
    /// `[auth]`: API keys and the admin password.
    pub auth: AuthConfig,
    /// `[limits]`: rate limits and cost caps.
    pub limits: LimitsConfig,
    /// `[store]`: the database.
    pub store: StoreConfig,
    /// `[models]`: alias → Claude model name (merged over the defaults).
    pub models: BTreeMap<String, String>,
    /// `[catalogue]`: the Claude model names accepted besides the aliases.
    pub catalogue: CatalogueConfig,
}

/// `[catalogue]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogueConfig {
    /// Claude model names (short names and full ids) clients may ask for; any other name that
    /// is not an alias gets 404 `model_not_found`.
    pub models: Vec<String>,
}

impl Default for CatalogueConfig {
    fn default() -> Self {
        Self {
            models: crate::models::default_catalogue(),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to bind.
    pub host: String,
    /// Port of the OpenAI-compatible API.
    pub port: u16,
    /// Port of the HTTPS admin console (0 = no HTTPS listener).
    pub https_port: u16,
    /// The admin console's certificate chain (PEM). Generated (self-signed) with its key when
    /// neither file exists.
    pub tls_cert: PathBuf,
    /// The admin console's private key (PEM).
    pub tls_key: PathBuf,
    /// Host names (or IP addresses) a generated certificate is valid for, besides `localhost`,
    /// `127.0.0.1` and `::1`.
    #[serde(deserialize_with = "list_or_csv")]
    pub tls_hosts: Vec<String>,
    /// Largest accepted request body (default 32 MiB, the model API's own request limit).
    pub max_body_bytes: usize,
    /// Interval of SSE keep-alive comments (also bounds disconnect detection).
    #[serde(with = "humantime_serde")]
    pub sse_keepalive: Duration,
    /// How long in-flight turns may run on after SIGTERM/SIGINT.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// On SIGTERM/SIGINT, how long `/readyz` answers 503 `draining` while the server still
    /// takes requests, so load balancers stop sending before the listener closes.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Time a client has to send a request's headers, from the connection's start or the end
    /// of its previous response (so also the longest idle keep-alive wait).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Log filter (`info`, `debug`, `claude_pool=debug,info`, ...).
    pub log_level: String,
    /// Log lines as text or as JSON objects (one per line).
    pub log_format: LogFormat,
}

/// `server.log_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (fields, span fields, target, level, timestamp).
    Json,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 8000,
            https_port: 8443,
            tls_cert: PathBuf::from("certs/server.crt"),
            tls_key: PathBuf::from("certs/server.key"),
            tls_hosts: Vec::new(),
            max_body_bytes: 32 * 1024 * 1024,
            sse_keepalive: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            header_read_timeout: Duration::from_secs(10),
            log_level: "info".into(),
            log_format: LogFormat::Text,
        }
    }
}

/// `[pool]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSection {
    /// Workers kept warm at all times.
    pub min_workers: usize,
    /// Upper bound of live workers.
    pub max_workers: usize,
    /// Turns that may wait for a worker.
    pub queue_capacity: usize,
    /// Longest wait in the queue.
    #[serde(with = "humantime_serde")]
    pub queue_timeout: Duration,
    /// Longest silence of a running turn.
    #[serde(with = "humantime_serde")]
    pub turn_idle_timeout: Duration,
    /// Longest wait for an interrupt to be acknowledged before the worker is killed.
    #[serde(with = "humantime_serde")]
    pub interrupt_timeout: Duration,
    /// Longest wait for a client's tool results (the turn ends then, and late results are
    /// refused).
    #[serde(with = "humantime_serde")]
    pub tool_result_timeout: Duration,
    /// How long a turn parked for tool results keeps its worker however busy the pool is;
    /// past it, the worker goes to a waiting turn and the results continue the conversation
    /// with a new turn.
    #[serde(with = "humantime_serde")]
    pub parked_turn_grace: Duration,
    /// Turns after which a worker is replaced.
    pub max_turns_per_worker: u64,
    /// Resident memory (MiB, whole process group) above which a worker is replaced.
    pub max_worker_rss_mb: u64,
    /// Idle time after which a conversation releases its worker.
    #[serde(with = "humantime_serde")]
    pub session_idle_ttl: Duration,
    /// Idle time after which spare workers above `min_workers` are stopped.
    #[serde(with = "humantime_serde")]
    pub worker_idle_ttl: Duration,
    /// Fresh workers kept started ahead of need (within `max_workers`).
    pub spare_workers: usize,
    /// A conversation keeps its worker at least this long before another may take it.
    #[serde(with = "humantime_serde")]
    pub min_residency: Duration,
    /// Grace between SIGTERM and SIGKILL when a worker is stopped.
    #[serde(with = "humantime_serde")]
    pub stop_grace: Duration,
    /// First delay before starting again a profile whose worker failed to start (doubles up to
    /// `restart_backoff_max`; a warm worker that dies is replaced at once).
    #[serde(with = "humantime_serde")]
    pub restart_backoff_min: Duration,
    /// Largest delay before starting again a profile whose workers fail to start.
    #[serde(with = "humantime_serde")]
    pub restart_backoff_max: Duration,
}

impl Default for PoolSection {
    fn default() -> Self {
        let p = PoolConfig::default();
        Self {
            min_workers: p.min_workers,
            max_workers: p.max_workers,
            queue_capacity: p.queue_capacity,
            queue_timeout: p.queue_timeout,
            turn_idle_timeout: p.turn_idle_timeout,
            interrupt_timeout: p.interrupt_timeout,
            tool_result_timeout: p.tool_result_timeout,
            parked_turn_grace: Duration::from_secs(5),
            max_turns_per_worker: p.max_turns_per_worker,
            max_worker_rss_mb: p.max_worker_rss_mb,
            session_idle_ttl: p.session_idle_ttl,
            worker_idle_ttl: p.worker_idle_ttl,
            spare_workers: p.spare_workers,
            min_residency: p.min_residency,
            stop_grace: p.stop_grace,
            restart_backoff_min: p.backoff.min_delay,
            restart_backoff_max: p.backoff.max_delay,
        }
    }
}

/// `[worker]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSection {
    /// The CLI executable.
    pub command: PathBuf,
    /// Extra CLI arguments.
    pub args: Vec<String>,
    /// Default model for requests that name none.
    pub model: String,
    /// HOME shared by all workers (transcripts for `--resume` live here).
    pub home: PathBuf,
    /// Parent of the workers' working directories.
    pub work_root: PathBuf,
    /// Tools the model may use. DANGEROUS: tools run commands and edit files on this host.
    pub allowed_tools: Vec<String>,
    /// Run the CLI with `--bare`.
    pub bare: bool,
    /// How a worker passes to the next conversation: `fresh` (a new process, started ahead of
    /// need) or `clear` (the CLI's `/clear`: faster, but its caveat blocks reach the next
    /// conversation's first message).
    pub handoff: HandoffSetting,
    /// Longest accepted output line of the CLI.
    pub max_line_bytes: usize,
    /// Longest start-up of a worker.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// Extra environment for every worker, e.g. `ANTHROPIC_BASE_URL`.
    pub env: BTreeMap<String, String>,
}

impl Default for WorkerSection {
    fn default() -> Self {
        let w = WorkerConfig::default();
        Self {
            command: w.command,
            args: w.args,
            model: "sonnet".into(),
            home: w.home,
            work_root: w.work_root,
            allowed_tools: w.allowed_tools,
            bare: w.bare,
            handoff: HandoffSetting::Clear,
            max_line_bytes: w.max_line_bytes,
            startup_timeout: w.startup_timeout,
            env: w.env,
        }
    }
}

/// `worker.handoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HandoffSetting {
    /// A fresh process per conversation.
    Fresh,
    /// The same process, reset with `/clear` and a conversation boundary.
    Clear,
}

/// `[auth]`. Never printed: `Debug` redacts the secrets.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The admin key (full access, admin API).
    pub master_key: String,
    /// Static API keys (`API_KEYS`, comma-separated in the environment).
    #[serde(deserialize_with = "list_or_csv")]
    pub api_keys: Vec<String>,
    /// Serve without any key. Only for local use.
    pub allow_open: bool,
    /// Password of the admin console: plain, or an argon2 PHC string (`$argon2id$...`).
    /// Empty turns the console off.
    pub admin_password: String,
    /// How long an admin console sign-in lasts.
    #[serde(with = "humantime_serde")]
    pub admin_session_ttl: Duration,
    /// Secret that seals stored Claude credentials (default: the master key). Changing it
    /// makes stored credentials unreadable (those keys fall back to the server's credential).
    pub encryption_key: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            master_key: String::new(),
            api_keys: Vec::new(),
            allow_open: false,
            admin_password: String::new(),
            admin_session_ttl: Duration::from_secs(12 * 3600),
            encryption_key: String::new(),
        }
    }
}

impl AuthConfig {
    /// The secret used to seal stored credentials.
    pub fn sealing_secret(&self) -> &str {
        if self.encryption_key.is_empty() {
            &self.master_key
        } else {
            &self.encryption_key
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("master_key", &redacted(&self.master_key))
            .field("api_keys", &format!("[{} keys]", self.api_keys.len()))
            .field("allow_open", &self.allow_open)
            .field("admin_password", &redacted(&self.admin_password))
            .field("admin_session_ttl", &self.admin_session_ttl)
            .field("encryption_key", &redacted(&self.encryption_key))
            .finish()
    }
}

fn redacted(s: &str) -> &'static str {
    if s.is_empty() { "(unset)" } else { "***" }
}

/// `[limits]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per window and key (0 = no default limit; a key's `rpm_limit` still applies).
    pub rate_limit_requests: u32,
    /// The rate-limit window: a duration (`60s`, `1m`) or plain seconds (`60`, as
    /// `RATE_LIMIT_WINDOW=60` writes it).
    #[serde(
        serialize_with = "humantime_serde::serialize",
        deserialize_with = "seconds_or_duration"
    )]
    pub rate_limit_window: Duration,
    /// On PostgreSQL, keep request-rate state in the database, so replicas sharing it enforce
    /// one limit per key (one statement per request); off, or on SQLite, each replica counts
    /// alone.
    pub shared_rate_limits: bool,
    /// Largest cost of one request, USD (0 = no cap).
    pub max_cost_per_request: f64,
    /// Budget of a key without its own `max_budget`, USD (0 = no cap).
    pub max_cost_per_key: f64,
    /// What a turn of a key without recorded turns is taken to cost, USD: what it holds of its
    /// key's budget far from the budget (at most `max_cost_per_request`), and near the budget
    /// when there is no per-request cap (see [`crate::limits::estimate`]).
    pub turn_cost_estimate: f64,
    /// Workers one key may hold with turns parked for tool results (0 = half of
    /// `pool.max_workers`, at least 1); past it, a request that could park another is 429
    /// `parked_turns_exceeded`.
    pub max_parked_turns_per_key: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            rate_limit_requests: 60,
            rate_limit_window: Duration::from_secs(60),
            shared_rate_limits: true,
            max_cost_per_request: 5.0,
            max_cost_per_key: 50.0,
            turn_cost_estimate: 0.5,
            max_parked_turns_per_key: 0,
        }
    }
}

/// `[store]`. `Debug` hides credentials in the URL.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://path` or `postgres://...`.
    pub database_url: String,
    /// Connections in the store's pool (0 = the backend's default: SQLite 4, PostgreSQL 8).
    pub max_connections: u32,
    /// Keep every conversation's transcript in the store after each completed turn, so any
    /// replica (or this one after a restart) can resume it.
    pub keep_conversations: bool,
    /// Largest transcript kept; a conversation that grows past it goes on only where it runs.
    pub max_conversation_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database_url: "sqlite://data/claude-pool.db".into(),
            max_connections: 0,
            keep_conversations: true,
            max_conversation_bytes: 8 * 1024 * 1024,
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.database_url.split("://").next().unwrap_or_default();
        f.debug_struct("StoreConfig")
            .field("database_url", &format!("{scheme}://***"))
            .field("max_connections", &self.max_connections)
            .field("keep_conversations", &self.keep_conversations)
            .field("max_conversation_bytes", &self.max_conversation_bytes)
            .finish()
    }
}

/// A duration written as plain seconds (a number, or a string of digits) or in humantime form.
fn seconds_or_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum SecondsOrText {
        Seconds(u64),
        Text(String),
    }
    match SecondsOrText::deserialize(d)? {
        SecondsOrText::Seconds(s) => Ok(Duration::from_secs(s)),
        SecondsOrText::Text(t) => match t.trim().parse::<u64>() {
            Ok(s) => Ok(Duration::from_secs(s)),
            Err(_) => humantime::parse_duration(t.trim()).map_err(|e| {
                serde::de::Error::custom(format!(
                    "expected seconds (60) or a duration (60s, 1m): {e}"
                ))
            }),
        },
    }
}

fn list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCsv {
        List(Vec<String>),
        Csv(String),
    }
    Ok(match ListOrCsv::deserialize(d)? {
        ListOrCsv::List(v) => v,
        ListOrCsv::Csv(s) => s
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect(),
    })
}

impl Config {
    /// The model catalogue: the aliases and the known Claude names.
    pub fn catalogue(&self) -> crate::models::Catalogue {
        crate::models::Catalogue::new(self.models.clone(), &self.catalogue.models)
    }
}

/// The default alias table (SPEC §4): OpenAI names map to Claude models.
pub fn default_models() -> BTreeMap<String, String> {
    [
        ("gpt-4", "opus"),
        ("gpt-4-turbo", "sonnet"),
        ("gpt-3.5-turbo", "haiku"),
        ("gpt-4o", "sonnet"),
        ("gpt-4o-mini", "haiku"),
    ]
    .into_iter()
    .map(|(a, m)| (a.to_owned(), m.to_owned()))
    .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
