//! Loading the layered configuration, validating it, and deriving the pool's configuration.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use claude_pool_actors::{BackoffConfig, Handoff};

use super::*;

/// The seed deployments' environment names and the keys they set.
const SEED_ENV: &[(&str, &str)] = &[
    ("PORT", "server.port"),
    ("HTTPS_PORT", "server.https_port"),
    ("LOG_LEVEL", "server.log_level"),
    ("LOG_FORMAT", "server.log_format"),
    ("ADMIN_PASSWORD", "auth.admin_password"),
    ("API_KEYS", "auth.api_keys"),
    ("MASTER_KEY", "auth.master_key"),
    ("RATE_LIMIT_REQUESTS", "limits.rate_limit_requests"),
    ("RATE_LIMIT_WINDOW", "limits.rate_limit_window"),
    ("CLAUDE_MAX_COST_PER_REQUEST", "limits.max_cost_per_request"),
    ("CLAUDE_MAX_COST_PER_USER", "limits.max_cost_per_key"),
    ("DATABASE_URL", "store.database_url"),
    ("DATABASE_MAX_CONNECTIONS", "store.max_connections"),
];

/// Overrides given on the command line (highest precedence).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagOverrides {
    /// `--host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `--port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl Config {
    /// Loads and validates the layered configuration. `path` is the `--config` file (which
    /// must exist); without it the default file is used when present.
    pub fn load(path: Option<&Path>, flags: &FlagOverrides) -> Result<Self, ConfigError> {
        let config = Self::load_unchecked(path, flags)?;
        config.validate()?;
        config.require_keys()?;
        Ok(config)
    }

    fn load_unchecked(path: Option<&Path>, flags: &FlagOverrides) -> Result<Self, ConfigError> {
        let file = match path {
            Some(p) if !p.exists() => return Err(ConfigError::MissingFile(p.to_path_buf())),
            Some(p) => p.to_path_buf(),
            None => PathBuf::from(DEFAULT_CONFIG_PATH),
        };
        let figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file(&file))
            .merge(Env::prefixed("CLAUDE_POOL_").split("__"))
            .merge(Env::raw().filter_map(|name| {
                SEED_ENV
                    .iter()
                    .find(|(seed, _)| name == *seed)
                    .map(|(_, key)| (*key).into())
            }))
            .merge(Serialized::default("server", ServerFlags::from(flags)));
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        let mut models = default_models();
        models.append(&mut config.models);
        config.models = models;
        Ok(config)
    }

    /// Like [`Config::load`], without requiring an API key (for `claude-pool keys`, which
    /// creates them).
    pub fn load_for_key_admin(path: Option<&Path>) -> Result<Self, ConfigError> {
        let config = Self::load_unchecked(path, &FlagOverrides::default())?;
        config.validate()?;
        Ok(config)
    }

    /// Range checks that types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, reason: &str| {
            Err(ConfigError::Value {
                key,
                reason: reason.to_owned(),
            })
        };
        let p = &self.pool;
        if p.max_workers == 0 {
            return bad("pool.max_workers", "must be at least 1");
        }
        if p.min_workers > p.max_workers {
            return bad("pool.min_workers", "must not exceed pool.max_workers");
        }
        if p.queue_capacity == 0 {
            return bad("pool.queue_capacity", "must be at least 1");
        }
        for (key, d) in [
            ("pool.queue_timeout", p.queue_timeout),
            ("pool.turn_idle_timeout", p.turn_idle_timeout),
            ("pool.tool_result_timeout", p.tool_result_timeout),
            ("pool.interrupt_timeout", p.interrupt_timeout),
            ("server.sse_keepalive", self.server.sse_keepalive),
            ("worker.startup_timeout", self.worker.startup_timeout),
            ("auth.admin_session_ttl", self.auth.admin_session_ttl),
        ] {
            if d.is_zero() {
                return bad(key, "must be a positive duration like \"30s\"");
            }
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes", "must be at least 1024");
        }
        if self.worker.max_line_bytes < 1024 {
            return bad("worker.max_line_bytes", "must be at least 1024");
        }
        if self.worker.command.as_os_str().is_empty() {
            return bad("worker.command", "must name the claude executable");
        }
        if self.limits.max_cost_per_request < 0.0
            || self.limits.max_cost_per_key < 0.0
            || self.limits.turn_cost_estimate.is_nan()
            || self.limits.turn_cost_estimate <= 0.0
        {
            return bad(
                "limits.max_cost_per_request",
                "costs must not be negative (and limits.turn_cost_estimate must be positive)",
            );
        }
        if self.limits.rate_limit_requests > 0 && self.limits.rate_limit_window.is_zero() {
            return bad(
                "limits.rate_limit_window",
                "must be a positive duration like \"60s\"",
            );
        }
        let url = &self.store.database_url;
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            return bad(
                "store.database_url",
                "must start with sqlite:// or postgres://",
            );
        }
        if self.auth.api_keys.iter().any(|k| k.trim().len() < 8) {
            return bad("auth.api_keys", "every key must have at least 8 characters");
        }
        if !self.auth.master_key.is_empty() && self.auth.master_key.len() < 8 {
            return bad("auth.master_key", "must have at least 8 characters");
        }
        if let Err(e) = crate::console::password::AdminPassword::new(&self.auth.admin_password) {
            return bad("auth.admin_password", &e.to_string());
        }
        if self.auth.admin_password == "changeme" {
            return bad(
                "auth.admin_password",
                "is the placeholder \"changeme\" (env ADMIN_PASSWORD): set a real password",
            );
        }
        Ok(())
    }

    /// A server needs some key (or explicit open mode).
    pub fn require_keys(&self) -> Result<(), ConfigError> {
        if self.auth.api_keys.is_empty() && self.auth.master_key.is_empty() && !self.auth.allow_open
        {
            return Err(ConfigError::Value {
                key: "auth.api_keys",
                reason:
                    "no API key is configured: set API_KEYS / auth.api_keys (or auth.master_key), \
                         or auth.allow_open = true for an unauthenticated local server"
                        .to_owned(),
            });
        }
        Ok(())
    }

    /// The pool's typed configuration.
    pub fn pool_config(&self) -> PoolConfig {
        let p = &self.pool;
        let w = &self.worker;
        PoolConfig {
            min_workers: p.min_workers,
            max_workers: p.max_workers,
            queue_capacity: p.queue_capacity,
            queue_timeout: p.queue_timeout,
            turn_idle_timeout: p.turn_idle_timeout,
            interrupt_timeout: p.interrupt_timeout,
            tool_result_timeout: p.tool_result_timeout,
            max_turns_per_worker: p.max_turns_per_worker,
            max_worker_rss_mb: p.max_worker_rss_mb,
            session_idle_ttl: p.session_idle_ttl,
            worker_idle_ttl: p.worker_idle_ttl,
            spare_workers: p.spare_workers,
            min_residency: p.min_residency,
            stop_grace: p.stop_grace,
            backoff: BackoffConfig {
                min_delay: p.restart_backoff_min,
                max_delay: p.restart_backoff_max.max(p.restart_backoff_min),
                ..BackoffConfig::default()
            },
            worker: WorkerConfig {
                command: w.command.clone(),
                args: w.args.clone(),
                model: Some(w.model.clone()).filter(|m| !m.is_empty()),
                home: w.home.clone(),
                work_root: w.work_root.clone(),
                allowed_tools: w.allowed_tools.clone(),
                bare: w.bare,
                handoff: match w.handoff {
                    HandoffSetting::Fresh => Handoff::Fresh,
                    HandoffSetting::Clear => Handoff::Clear,
                },
                env: w.env.clone(),
                max_line_bytes: w.max_line_bytes,
                startup_timeout: w.startup_timeout,
                ..WorkerConfig::default()
            },
            transcript_sink: None,
        }
    }
}

#[derive(Serialize)]
struct ServerFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

impl From<&FlagOverrides> for ServerFlags {
    fn from(f: &FlagOverrides) -> Self {
        Self {
            host: f.host.clone(),
            port: f.port,
        }
    }
}
