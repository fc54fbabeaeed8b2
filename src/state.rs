//! The application's shared state: the pool and the services around it, built once at start
//! and shared by every handler ([`AppState`]).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use claude_pool_actors::PoolHandle;

use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::Config;
use crate::conversation::{FingerprintIndex, SessionRegistry};
use crate::error::ApiError;
use crate::limits::{CostEstimates, InFlight, Rate, RateLimits, Reservations, TokenWindows};
use crate::metrics::Metrics;
use crate::spend::SpendLog;
use crate::store::{Sealer, Store, StoreError};

/// Everything the handlers share, grouped by concern.
#[derive(Debug)]
pub struct App {
    /// The worker pool.
    pub pool: PoolHandle,
    /// Keys, spend records, sessions.
    pub store: Arc<dyn Store>,
    /// Key checks and the key cache.
    pub auth: Arc<Authenticator>,
    /// Claude credentials: the workers' default, keys' own sealed ones, upstream refusals.
    pub credentials: Credentials,
    /// Per-key limits and budgets.
    pub limits: Limits,
    /// Conversations: sessions, stateless clients' fingerprints, kept transcripts, stored
    /// Responses API responses.
    pub conversations: Conversations,
    /// Function calling: the MCP bridge and the turns parked for tool results.
    pub(crate) tools: crate::tools::ToolBridge<crate::turns::Started>,
    /// Durable spend records.
    pub spend: SpendLog,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Alias → Claude model.
    pub models: crate::models::Catalogue,
    /// Settings of the HTTP edge.
    pub server: ServerSettings,
    /// Set on SIGTERM/SIGINT: `/readyz` answers 503 `draining` from then on.
    pub draining: std::sync::atomic::AtomicBool,
}

/// Claude credentials.
#[derive(Debug)]
pub struct Credentials {
    /// Seals the Claude credentials given with keys.
    pub sealer: Sealer,
    /// The workers' default Claude credential, as checked at start.
    pub server: crate::credentials::ServerCredential,
    /// Upstream authentication failures seen.
    pub failures: crate::credentials::AuthFailures,
}

/// Per-key limits and budgets.
#[derive(Debug)]
pub struct Limits {
    /// Per-key request rates.
    pub rates: RateLimits,
    /// Request rates are taken from the store (PostgreSQL shared by replicas).
    pub shared_rates: bool,
    /// Per-key tokens per minute.
    pub tokens: TokenWindows,
    /// Per-key running turns.
    pub in_flight: InFlight,
    /// Budget held by admitted turns.
    pub reservations: Reservations,
    /// What each key's turns cost recently, and so what one of its turns holds of its budget.
    pub cost_estimates: CostEstimates,
    /// The clock budget periods run on.
    pub clock: Arc<Clock>,
    /// How long a turn waits for budget held by running turns (`pool.queue_timeout`).
    pub admission_wait: Duration,
    /// Cap of one turn's cost (USD).
    pub max_cost_per_request: Option<f64>,
    /// Default budget of a key without its own (USD).
    pub max_cost_per_key: Option<f64>,
    /// Workers one key may hold with parked turns (`limits.max_parked_turns_per_key`; 0 = half
    /// the pool's `max_workers`, at least 1).
    pub max_parked_turns_per_key: usize,
}

/// Conversations, whatever API they are held through.
#[derive(Debug)]
pub struct Conversations {
    /// Conversations and their owners.
    pub sessions: SessionRegistry,
    /// Live conversations by history fingerprint (stateless clients).
    pub fingerprints: FingerprintIndex,
    /// Keeps conversations in the store (`store.keep_conversations`); its sink is the pool's.
    pub keeper: Option<Arc<crate::transcripts::Keeper>>,
    /// Responses API responses (retrieval and `previous_response_id`).
    pub responses: crate::api::responses::ResponseStore,
}

/// Settings of the HTTP edge.
#[derive(Debug)]
pub struct ServerSettings {
    /// The model workers start with by default (`worker.model`).
    pub default_model: String,
    /// SSE keep-alive interval.
    pub sse_keepalive: Duration,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// The admin console's HTTPS port (0 = none), named when its paths are asked for here.
    pub https_port: u16,
}

/// Cheap-to-clone handle on [`App`].
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl FromRef<AppState> for Arc<App> {
    fn from_ref(s: &AppState) -> Self {
        s.0.clone()
    }
}

/// A positive cap, or none (0 = no cap).
fn cap(usd: f64) -> Option<f64> {
    (usd > 0.0).then_some(usd)
}

impl App {
    /// Builds the application state from the config, an open store and a started pool
    /// (registers the configured keys in the store, starts the spend writer). `keeper` is the
    /// one whose sink the pool was started with ([`crate::transcripts::Keeper::for_config`]).
    pub async fn new(
        config: &Config,
        pool: PoolHandle,
        store: Arc<dyn Store>,
        keeper: Option<Arc<crate::transcripts::Keeper>>,
    ) -> Result<Self, StoreError> {
        let sealer = Sealer::new(config.auth.sealing_secret());
        let auth = Arc::new(Authenticator::new(&config.auth, store.clone(), sealer.clone()).await?);
        let l = &config.limits;
        let snapshots = pool.watch();
        Ok(Self {
            pool,
            auth,
            credentials: Credentials {
                sealer,
                server: crate::credentials::server_credential(&config.pool_config().worker, |n| {
                    std::env::var(n).ok()
                }),
                failures: Default::default(),
            },
            limits: Limits {
                rates: RateLimits::new(Rate::new(l.rate_limit_requests, l.rate_limit_window)),
                shared_rates: l.shared_rate_limits && store.backend() == "postgres",
                tokens: TokenWindows::default(),
                in_flight: InFlight::default(),
                reservations: Reservations::default(),
                cost_estimates: CostEstimates::new(
                    cap(l.max_cost_per_request),
                    l.turn_cost_estimate,
                ),
                clock: Arc::new(Clock::default()),
                admission_wait: config.pool.queue_timeout,
                max_cost_per_request: cap(l.max_cost_per_request),
                max_cost_per_key: cap(l.max_cost_per_key),
                max_parked_turns_per_key: l.max_parked_turns_per_key,
            },
            conversations: Conversations {
                sessions: SessionRegistry::new(store.clone()),
                fingerprints: FingerprintIndex::new(config.pool.session_idle_ttl, 100_000),
                keeper,
                responses: crate::api::responses::ResponseStore::new(
                    store.clone(),
                    config.pool.session_idle_ttl,
                ),
            },
            tools: crate::tools::ToolBridge::start(
                crate::tools::ParkingRules {
                    timeout: config.pool.tool_result_timeout,
                    grace: config.pool.parked_turn_grace,
                },
                snapshots,
            ),
            spend: SpendLog::start(store.clone()),
            store,
            metrics: Arc::new(Metrics::new()),
            models: config.catalogue(),
            server: ServerSettings {
                default_model: config.worker.model.clone(),
                sse_keepalive: config.server.sse_keepalive,
                max_body_bytes: config.server.max_body_bytes,
                https_port: config.server.https_port,
            },
            draining: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Resolves a requested model name to the Claude model (404 `model_not_found` if unknown).
    pub fn resolve_model(&self, name: &str) -> Result<String, ApiError> {
        self.models
            .resolve(name)
            .ok_or_else(|| ApiError::ModelNotFound(name.chars().take(64).collect()))
    }
}
