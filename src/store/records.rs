//! The store's records: keys, spend, sessions, and the filters of its listings.

use serde::Serialize;

use super::now_secs;

/// Where a key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// `POST /key/generate` or `claude-pool keys create`.
    Api,
    /// `auth.api_keys` / `API_KEYS` (registered at start so their spend is tracked).
    Config,
}

impl KeySource {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            KeySource::Api => "api",
            KeySource::Config => "config",
        }
    }
    pub(super) fn parse(s: &str) -> Self {
        if s == "config" {
            KeySource::Config
        } else {
            KeySource::Api
        }
    }
}

/// A stored key. The plaintext key is never stored; `id` is the hex SHA-256 of it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// Hex SHA-256 of the key (LiteLLM's `token`).
    pub id: String,
    /// A display form: `sk-AbC…wXyZ`.
    pub key_prefix: String,
    /// Human name.
    pub alias: Option<String>,
    /// Models (as the client names them) this key may use; empty = all.
    pub models: Vec<String>,
    /// Free-form JSON object.
    pub metadata: serde_json::Value,
    /// Total spend allowed (USD); `None` = the server default (`limits.max_cost_per_key`).
    pub max_budget: Option<f64>,
    /// Requests per minute; `None` = the server default (`limits.rate_limit_*`).
    pub rpm_limit: Option<u32>,
    /// Spend so far (USD).
    pub spend: f64,
    /// Expiry (Unix seconds).
    pub expires_at: Option<i64>,
    /// Creation (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
    /// Revocation (Unix seconds).
    pub revoked_at: Option<i64>,
    /// Where it came from.
    pub source: KeySource,
    /// The key's own Claude OAuth token, sealed ([`super::Sealer`]); never returned.
    pub sealed_oauth_token: Option<Vec<u8>>,
    /// Tags, token and concurrency limits, and the budget period.
    pub policy: KeyPolicy,
    /// Blocked (Unix seconds): refused until unblocked; unlike revocation, reversible.
    pub blocked_at: Option<i64>,
}

/// The LiteLLM key settings beyond scope, budget and request rate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyPolicy {
    /// Tags recorded with every request of the key (with the request's `metadata.tags`).
    pub tags: Vec<String>,
    /// Tokens (input + output) per minute.
    pub tpm_limit: Option<u64>,
    /// Turns of this key running at once.
    pub max_parallel_requests: Option<u32>,
    /// The budget period (`30d`, `1mo`, ...): spend goes back to 0 at `budget_reset_at`.
    pub budget_duration: Option<String>,
    /// The next budget reset (Unix seconds).
    pub budget_reset_at: Option<i64>,
}

impl KeyRecord {
    /// The public view of a key, as the admin API and the CLI show it (no secrets; LiteLLM's
    /// field names where they exist).
    pub fn public_json(&self) -> serde_json::Value {
        use crate::keys::rfc3339;
        serde_json::json!({
            "token": self.id,
            "key_name": self.key_prefix,
            "key_alias": self.alias,
            "models": self.models,
            "metadata": self.metadata,
            "max_budget": self.max_budget,
            "rpm_limit": self.rpm_limit,
            "spend": self.spend,
            "expires": self.expires_at.map(rfc3339),
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "revoked": self.revoked_at.is_some(),
            "revoked_at": self.revoked_at.map(rfc3339),
            "active": self.is_active(now_secs()),
            "source": self.source,
            "has_claude_credential": self.sealed_oauth_token.is_some(),
            "tags": self.policy.tags,
            "tpm_limit": self.policy.tpm_limit,
            "max_parallel_requests": self.policy.max_parallel_requests,
            "budget_duration": self.policy.budget_duration,
            "budget_reset_at": self.policy.budget_reset_at.map(rfc3339),
            "blocked": self.blocked_at.is_some(),
        })
    }

    /// True when the key may be used at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none()
            && self.blocked_at.is_none()
            && self.expires_at.is_none_or(|t| now < t)
    }
}

/// A key to insert.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Hex SHA-256 of the key.
    pub id: String,
    /// Display form.
    pub key_prefix: String,
    /// See [`KeyRecord`].
    pub alias: Option<String>,
    /// See [`KeyRecord`].
    pub models: Vec<String>,
    /// See [`KeyRecord`].
    pub metadata: serde_json::Value,
    /// See [`KeyRecord`].
    pub max_budget: Option<f64>,
    /// See [`KeyRecord`].
    pub rpm_limit: Option<u32>,
    /// See [`KeyRecord`].
    pub expires_at: Option<i64>,
    /// See [`KeyRecord`].
    pub source: KeySource,
    /// See [`KeyRecord`].
    pub sealed_oauth_token: Option<Vec<u8>>,
    /// See [`KeyRecord`].
    pub policy: KeyPolicy,
}

/// Changes to a key; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    /// New alias.
    pub alias: Option<Option<String>>,
    /// New model scope.
    pub models: Option<Vec<String>>,
    /// New metadata.
    pub metadata: Option<serde_json::Value>,
    /// New budget.
    pub max_budget: Option<Option<f64>>,
    /// New rate limit.
    pub rpm_limit: Option<Option<u32>>,
    /// New expiry.
    pub expires_at: Option<Option<i64>>,
    /// New sealed Claude credential.
    pub sealed_oauth_token: Option<Option<Vec<u8>>>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// New token rate.
    pub tpm_limit: Option<Option<u64>>,
    /// New concurrency limit.
    pub max_parallel_requests: Option<Option<u32>>,
    /// New budget period and its first reset (both set or both cleared).
    pub budget_period: Option<Option<(String, i64)>>,
}

/// What one turn cost, recorded once per turn.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendRecord {
    /// The key's id (`master` for the master key, `open` in open mode).
    pub key_id: String,
    /// The gateway session.
    pub session_id: Option<String>,
    /// The model the client asked for.
    pub model: String,
    /// Input tokens (including cache reads and writes).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in USD as the CLI reported it.
    pub cost_usd: f64,
    /// Wall time of the turn.
    pub duration_ms: u64,
    /// `completed`, `failed`, `interrupted` or `cost_limit`.
    pub status: &'static str,
    /// The response's id (`chatcmpl-...`).
    pub request_id: Option<String>,
    /// The HTTP request's id (`x-request-id`: the client's, or a generated one).
    pub x_request_id: Option<String>,
    /// The key's tags and the request's `metadata.tags`.
    pub tags: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// The outcome of [`super::Store::take_rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateTake {
    /// The request fits the rate.
    pub allowed: bool,
    /// The key's theoretical arrival time (Unix ms): after the request when allowed.
    pub tat_ms: i64,
}

/// Spend totals of one key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySpend {
    /// The key's id.
    pub token: String,
    /// Its display form (`sk-AbCd…wXyZ`).
    pub key_name: String,
    /// Its alias.
    pub key_alias: Option<String>,
    /// Total spend (USD).
    pub spend: f64,
    /// Its budget, if any.
    pub max_budget: Option<f64>,
    /// Turns recorded.
    pub requests: i64,
    /// Input tokens recorded.
    pub prompt_tokens: i64,
    /// Output tokens recorded.
    pub completion_tokens: i64,
    /// Its newest recorded turn (Unix seconds).
    pub last_used: Option<i64>,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    /// The session id.
    pub id: String,
    /// The owning key's id.
    #[serde(skip)]
    pub owner: String,
    /// Creation (Unix seconds).
    pub created_at: i64,
    /// Last turn (Unix seconds).
    pub last_used_at: i64,
    /// Turns recorded.
    pub turns: i64,
}

/// A page of keys.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    /// Only keys with this alias.
    pub alias: Option<String>,
    /// 1-based page.
    pub page: u32,
    /// Keys per page.
    pub size: u32,
}

/// A page of spend records.
#[derive(Debug, Clone, Default)]
pub struct SpendFilter {
    /// Only this key's records.
    pub key_id: Option<String>,
    /// Records at or after (Unix seconds).
    pub since: Option<i64>,
    /// Records before (Unix seconds).
    pub until: Option<i64>,
    /// 1-based page.
    pub page: u32,
    /// Records per page.
    pub size: u32,
}

/// Spend of one tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagSpend {
    /// The tag (LiteLLM's name for it).
    pub individual_request_tag: String,
    /// Requests recorded with it.
    pub log_count: i64,
    /// Their spend (USD).
    pub total_spend: f64,
    /// Their input tokens.
    pub prompt_tokens: i64,
    /// Their output tokens.
    pub completion_tokens: i64,
    /// Input plus output.
    pub total_tokens: i64,
}
