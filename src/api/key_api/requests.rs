//! Bodies of the key admin routes and their validation. Numbers are accepted as JSON integers
//! or floats alike (`"max_budget": 1`, `"rpm_limit": 100.0`); a fractional count is refused.

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::keys::{self, BudgetPeriod};
use crate::store::{KeyPolicy, KeySource, NewKey, Sealer};

/// `Some(None)` for an explicit `null`, `None` for an absent field.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A whole, non-negative number written as `100` or `100.0`.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<f64>::deserialize(d)?;
    v.map(|x| {
        if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= 9.0e15 {
            Ok(x as u64)
        } else {
            Err(serde::de::Error::custom(format!(
                "expected a whole non-negative number, got {x}"
            )))
        }
    })
    .transpose()
}

fn nullable_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    count(d).map(Some)
}

/// Body of `POST /key/generate` (and the settings `/key/regenerate` may change).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    #[serde(default)]
    pub(super) models: Option<Vec<String>>,
    #[serde(default)]
    pub(super) key_alias: Option<String>,
    #[serde(default)]
    pub(super) duration: Option<String>,
    #[serde(default)]
    pub(super) max_budget: Option<f64>,
    #[serde(default, deserialize_with = "count")]
    pub(super) rpm_limit: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    pub(super) tpm_limit: Option<u64>,
    #[serde(default, deserialize_with = "count")]
    pub(super) max_parallel_requests: Option<u64>,
    #[serde(default)]
    pub(super) budget_duration: Option<String>,
    #[serde(default)]
    pub(super) tags: Option<Vec<String>>,
    #[serde(default)]
    pub(super) metadata: Option<Value>,
    /// A Claude OAuth token for this key's turns (sealed at rest, never returned).
    #[serde(default)]
    pub(super) claude_oauth_token: Option<String>,
}

impl GenerateRequest {
    /// The settings of a key made by exchanging a Claude OAuth token (the admin console).
    pub fn for_credential(
        claude_oauth_token: String,
        key_alias: Option<String>,
        models: Option<Vec<String>>,
        duration: Option<String>,
        max_budget: Option<f64>,
        rpm_limit: Option<u64>,
    ) -> Self {
        Self {
            claude_oauth_token: Some(claude_oauth_token),
            key_alias,
            models,
            duration,
            max_budget,
            rpm_limit,
            ..Self::default()
        }
    }
}

/// Body of `POST /key/update`: absent fields are kept, `null` clears.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateRequest {
    pub key: String,
    #[serde(default)]
    pub models: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub key_alias: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub duration: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max_budget: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable_count")]
    pub rpm_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable_count")]
    pub tpm_limit: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable_count")]
    pub max_parallel_requests: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub budget_duration: Option<Option<String>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub claude_oauth_token: Option<Option<String>>,
}

/// Body of `POST`/`DELETE /key/delete`: keys by value or token, or by alias.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteRequest {
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub key_aliases: Vec<String>,
}

/// Body of `POST /key/block`, `/key/unblock` and `/key/regenerate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyRef {
    pub key: String,
}

pub(super) fn check_models(
    known: &dyn Fn(&str) -> bool,
    models: &[String],
) -> Result<(), ApiError> {
    for m in models {
        if m.trim().is_empty() {
            return Err(ApiError::bad("models", "model names must not be empty"));
        }
        if !known(m) {
            return Err(ApiError::bad("models", format!("unknown model `{m}`")));
        }
    }
    Ok(())
}

pub(super) fn check_alias(alias: &str) -> Result<(), ApiError> {
    if alias.trim().is_empty() || alias.chars().count() > 128 {
        return Err(ApiError::bad(
            "key_alias",
            "`key_alias` must be 1-128 characters",
        ));
    }
    Ok(())
}

pub(super) fn check_budget(budget: f64) -> Result<(), ApiError> {
    if !budget.is_finite() || budget < 0.0 {
        return Err(ApiError::bad(
            "max_budget",
            "`max_budget` must be a non-negative number of USD",
        ));
    }
    Ok(())
}

/// A limit that must be at least 1 (omitted = none or the server default).
pub(super) fn positive<T: TryFrom<u64>>(param: &str, v: u64) -> Result<T, ApiError> {
    if v == 0 {
        return Err(ApiError::bad(
            param,
            format!("`{param}` must be at least 1 (omit it for no limit of the key's own)"),
        ));
    }
    T::try_from(v).map_err(|_| ApiError::bad(param, format!("`{param}` is too large")))
}

pub(super) fn check_metadata(m: &Value) -> Result<(), ApiError> {
    if !m.is_object() {
        return Err(ApiError::bad(
            "metadata",
            "`metadata` must be a JSON object",
        ));
    }
    Ok(())
}

/// Tags: at most 32, each 1-64 characters.
pub fn check_tags(param: &str, tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > 32
        || tags
            .iter()
            .any(|t| t.trim().is_empty() || t.chars().count() > 64)
    {
        return Err(ApiError::bad(
            param,
            format!("`{param}` takes at most 32 tags of 1-64 characters each"),
        ));
    }
    Ok(())
}

pub(super) fn expiry(duration: &str, now: i64) -> Result<i64, ApiError> {
    let d = keys::parse_duration(duration).map_err(|e| ApiError::bad("duration", e))?;
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    Ok(now.saturating_add(secs))
}

/// The budget period as written and its first reset, one period from `now`.
pub(super) fn budget_period(written: &str, now: i64) -> Result<(String, i64), ApiError> {
    let period = BudgetPeriod::parse(written)
        .map_err(|e| ApiError::bad("budget_duration", format!("`budget_duration`: {e}")))?;
    Ok((written.trim().to_owned(), period.after(now)))
}

pub(super) fn seal(sealer: &Sealer, token: &str) -> Result<Vec<u8>, ApiError> {
    let t = token.trim();
    if t.is_empty() || t.len() > 4096 || t.chars().any(char::is_whitespace) {
        return Err(ApiError::bad(
            "claude_oauth_token",
            "`claude_oauth_token` must be a single token of at most 4096 characters",
        ));
    }
    sealer
        .seal(t)
        .map_err(|e| ApiError::bad("claude_oauth_token", e.to_string()))
}

/// Validates a generate request and makes the key: its plaintext (shown once) and its row.
/// `known` tells whether a model name resolves; `now` is the clock budget resets and expiry
/// count from. Shared by the API and `claude-pool keys create`.
pub fn prepare_key(
    req: GenerateRequest,
    known: &dyn Fn(&str) -> bool,
    sealer: &Sealer,
    now: i64,
) -> Result<(String, NewKey), ApiError> {
    let models = req.models.unwrap_or_default();
    check_models(known, &models)?;
    if let Some(a) = &req.key_alias {
        check_alias(a)?;
    }
    if let Some(b) = req.max_budget {
        check_budget(b)?;
    }
    let rpm_limit = req
        .rpm_limit
        .map(|r| positive("rpm_limit", r))
        .transpose()?;
    let tpm_limit = req
        .tpm_limit
        .map(|r| positive("tpm_limit", r))
        .transpose()?;
    let max_parallel_requests = req
        .max_parallel_requests
        .map(|r| positive("max_parallel_requests", r))
        .transpose()?;
    let tags = req.tags.unwrap_or_default();
    check_tags("tags", &tags)?;
    let metadata = req.metadata.unwrap_or_else(|| json!({}));
    check_metadata(&metadata)?;
    let expires_at = req
        .duration
        .as_deref()
        .map(|d| expiry(d, now))
        .transpose()?;
    let period = req
        .budget_duration
        .as_deref()
        .map(|d| budget_period(d, now))
        .transpose()?;
    let sealed = req
        .claude_oauth_token
        .as_deref()
        .map(|t| seal(sealer, t))
        .transpose()?;
    let key = keys::generate();
    let row = NewKey {
        id: keys::hash(&key),
        key_prefix: keys::display(&key),
        alias: req.key_alias,
        models,
        metadata,
        max_budget: req.max_budget,
        rpm_limit,
        expires_at,
        source: KeySource::Api,
        sealed_oauth_token: sealed,
        policy: KeyPolicy {
            tags,
            tpm_limit,
            max_parallel_requests,
            budget_duration: period.as_ref().map(|(d, _)| d.clone()),
            budget_reset_at: period.map(|(_, at)| at),
        },
    };
    Ok((key, row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_integers_and_whole_floats_only() {
        let r: GenerateRequest =
            serde_json::from_value(json!({"rpm_limit": 100.0, "tpm_limit": 5, "max_budget": 1}))
                .unwrap();
        assert_eq!(
            (r.rpm_limit, r.tpm_limit, r.max_budget),
            (Some(100), Some(5), Some(1.0))
        );
        for bad in [
            json!({"rpm_limit": 1.5}),
            json!({"tpm_limit": -1}),
            json!({"rpm_limit": "5"}),
        ] {
            assert!(
                serde_json::from_value::<GenerateRequest>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let u: UpdateRequest =
            serde_json::from_value(json!({"key": "k", "rpm_limit": null, "tpm_limit": 7.0}))
                .unwrap();
        assert_eq!(
            (u.rpm_limit, u.tpm_limit, u.max_parallel_requests),
            (Some(None), Some(Some(7)), None)
        );
    }
}
