//! `claude-pool keys create|list|info|revoke`: the admin API's key operations, run directly on
//! the configured store (no server needed). Output is JSON, in the admin API's shapes.
//! A running server sees a revocation within its key-cache lifetime (5 s).

use std::sync::Arc;

use clap::Subcommand;
use serde_json::{Value, json};

use crate::api::key_api::{GenerateRequest, find_key, prepare_key};
use crate::config::Config;
use crate::store::{self, Sealer, Store};

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (shown only this once).
    Create {
        /// Human name of the key.
        #[arg(long)]
        alias: Option<String>,
        /// Models the key may use, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Lifetime, e.g. `30m`, `12h`, `30d` (default: no expiry).
        #[arg(long)]
        duration: Option<String>,
        /// Total spend allowed, USD.
        #[arg(long)]
        max_budget: Option<f64>,
        /// Requests per minute.
        #[arg(long)]
        rpm_limit: Option<u32>,
        /// Metadata, a JSON object.
        #[arg(long)]
        metadata: Option<String>,
        /// Name of an environment variable holding a Claude OAuth token for this key's turns
        /// (read from the environment so it stays out of the shell history).
        #[arg(long, value_name = "VAR")]
        claude_oauth_token_env: Option<String>,
    },
    /// List all keys (no secrets).
    List,
    /// Show one key, named by its value (`sk-...`) or token.
    Info {
        /// The key or its token.
        key: String,
    },
    /// Revoke a key, named by its value or token.
    Revoke {
        /// The key or its token.
        key: String,
    },
}

/// Why a key command failed.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The store could not be opened or used.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The input was refused, or names no key.
    #[error("{0}")]
    Invalid(String),
}

/// Runs a key command and returns what to print.
pub async fn run(config: &Config, command: KeysCommand) -> Result<Value, KeysError> {
    let store: Arc<dyn Store> = store::open(&config.store).await?;
    // The store's own errors keep their cause; refusals become the message to print.
    let invalid = |e: crate::error::ApiError| match e {
        crate::error::ApiError::Store(e) => KeysError::Store(e),
        other => KeysError::Invalid(other.to_string()),
    };
    match command {
        KeysCommand::Create {
            alias,
            models,
            duration,
            max_budget,
            rpm_limit,
            metadata,
            claude_oauth_token_env,
        } => {
            let metadata = metadata
                .map(|m| serde_json::from_str::<Value>(&m))
                .transpose()
                .map_err(|e| KeysError::Invalid(format!("--metadata is not JSON: {e}")))?;
            let token = match claude_oauth_token_env {
                Some(var) => Some(std::env::var(&var).map_err(|_| {
                    KeysError::Invalid(format!("environment variable {var} is not set"))
                })?),
                None => None,
            };
            let req: GenerateRequest = serde_json::from_value(json!({
                "key_alias": alias,
                "models": models,
                "duration": duration,
                "max_budget": max_budget,
                "rpm_limit": rpm_limit,
                "metadata": metadata,
                "claude_oauth_token": token,
            }))
            .map_err(|e| KeysError::Invalid(e.to_string()))?;
            let catalogue = config.catalogue();
            let known = |m: &str| catalogue.resolve(m).is_some();
            let sealer = Sealer::new(config.auth.sealing_secret());
            let (key, row) =
                prepare_key(req, &known, &sealer, store::now_secs()).map_err(invalid)?;
            let record = store.insert_key(&row).await?;
            let mut out = record.public_json();
            out["key"] = Value::String(key);
            Ok(out)
        }
        KeysCommand::List => {
            let keys: Vec<Value> = store
                .list_keys()
                .await?
                .iter()
                .map(|k| k.public_json())
                .collect();
            Ok(json!({"total_count": keys.len(), "keys": keys}))
        }
        KeysCommand::Info { key } => {
            let record = find_key(store.as_ref(), &key).await.map_err(invalid)?;
            Ok(record.public_json())
        }
        KeysCommand::Revoke { key } => {
            let id = find_key(store.as_ref(), &key).await.map_err(invalid)?.id;
            let revoked = store.revoke_keys(std::slice::from_ref(&id)).await?;
            Ok(json!({"token": id, "revoked": true, "already_revoked": revoked.is_empty()}))
        }
    }
}
