//! Admission of a turn, before any worker is used: the key's model scope (403, in LiteLLM's
//! wording), its tokens per minute, its running turns and its budget (429 each). An admitted
//! turn holds an [`Admission`] until it ends. A turn whose key's remaining budget is held by
//! admitted turns waits for them (up to `pool.queue_timeout`, like a queued turn).
//!
//! The budget hold is taken here, before the turn waits in the pool's queue, not when a worker
//! starts it: a worker writes the turn to its CLI as it reports `Started`, so a hold taken then
//! could not refuse, and the overshoot bound needs every turn that may still run counted at
//! what it will hold. Far from the budget a queued turn holds only its key's estimate, so
//! queued turns cost little of it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::auth::Identity;
use crate::error::ApiError;
use crate::limits::{Admission, Refusal, Reservation};
use crate::state::App;
use crate::store::HoldSizes;
use crate::store::KeyRecord;

/// How long a turn's hold in the store lasts if its replica dies before releasing it.
const STORE_HOLD_TTL: Duration = Duration::from_secs(15 * 60);
/// How often a turn whose key's budget is held on other replicas looks again.
const STORE_HOLD_RETRY: Duration = Duration::from_millis(100);

/// `['a', 'b']`: the model list as LiteLLM prints it in its scope error.
fn python_list(models: &[String]) -> String {
    let quoted: Vec<String> = models.iter().map(|m| format!("'{m}'")).collect();
    format!("[{}]", quoted.join(", "))
}

impl App {
    /// Resolves the client's model name `requested` to its Claude model (404 if unknown) and
    /// admits a turn of `caller` on it (see [`App::admit`]).
    pub async fn admit_model(
        &self,
        caller: &Identity,
        requested: &str,
    ) -> Result<(String, Admission), ApiError> {
        let claude = self.resolve_model(requested)?;
        let admission = self.admit(caller, requested, &claude).await?;
        Ok((claude, admission))
    }

    /// Admits a turn of `caller` on `requested` (the client's name), resolving to `claude`, in
    /// the request's `admission` span (exported with traces).
    pub async fn admit(
        &self,
        caller: &Identity,
        requested: &str,
        claude: &str,
    ) -> Result<Admission, ApiError> {
        use tracing::Instrument;
        let span =
            crate::telemetry::span(|| tracing::info_span!("admission", otel.name = "admission"));
        let admitted = self
            .admit_turn(caller, requested, claude)
            .instrument(span.clone())
            .await;
        match &admitted {
            Ok(a) => {
                crate::telemetry::attr(&span, "claude_pool.budget_held", a.reservation.is_some())
            }
            Err(e) => crate::telemetry::api_error(&span, e),
        }
        admitted
    }

    async fn admit_turn(
        &self,
        caller: &Identity,
        requested: &str,
        claude: &str,
    ) -> Result<Admission, ApiError> {
        let Some(key) = &caller.key else {
            return Ok(Admission::default());
        };
        if !caller.allows_model(requested, claude) {
            return Err(ApiError::Forbidden {
                code: "model_not_allowed",
                message: format!(
                    "key not allowed to access model. This key can only access models={}. Tried to access {requested}",
                    python_list(&key.models)
                ),
            });
        }
        let id = &caller.key_id;
        if let Some(limit) = key.policy.tpm_limit {
            let state = self.limits.tokens.state(id, limit);
            if state.remaining == 0 {
                return Err(ApiError::TokensLimited {
                    limit,
                    retry_after: state.reset,
                });
            }
        }
        let max = key.policy.max_parallel_requests;
        let slot =
            self.limits
                .in_flight
                .enter(id, max)
                .map_err(|running| ApiError::TooManyParallel {
                    max: max.unwrap_or_default(),
                    running,
                })?;
        let reservation = match key.max_budget.or(self.limits.max_cost_per_key) {
            None => None,
            Some(budget) => Some(self.reserve(id, key, budget).await?),
        };
        Ok(Admission {
            slot: Some(slot),
            reservation,
        })
    }

    /// With replicas sharing the store: holds the turn's budget there too, so turns on every
    /// replica count against the key's budget. The store decides between the estimate and the
    /// worst case by the same rule, seeing every replica's holds; this replica's hold follows
    /// it (never below what it decided itself). A store that cannot be reached leaves the
    /// decision to this replica's own holds.
    async fn hold_in_store(
        &self,
        id: &Arc<str>,
        budget: f64,
        sizes: HoldSizes,
        mut local: Reservation,
    ) -> Result<Reservation, Refusal> {
        let hold_id = uuid::Uuid::new_v4().simple().to_string();
        let expires_at = crate::store::now_secs() + STORE_HOLD_TTL.as_secs() as i64;
        let sizes = HoldSizes {
            estimate: local.usd(),
            worst: sizes.worst.max(local.usd()),
        };
        match self
            .store
            .hold_budget(id, &hold_id, sizes, budget, expires_at)
            .await
        {
            Ok(hold) => {
                local.raise_to(Refusal::of(hold, budget)?);
                Ok(local.with_store_hold(self.store.clone(), hold_id))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot hold budget in the store; this replica's own holds decide");
                Ok(local)
            }
        }
    }

    /// Reserves budget for a turn against `budget` (its key's estimate far from the budget,
    /// the worst case near it), waiting while admitted turns hold what is left.
    async fn reserve(
        &self,
        id: &Arc<str>,
        key: &KeyRecord,
        budget: f64,
    ) -> Result<Reservation, ApiError> {
        let deadline = Instant::now() + self.limits.admission_wait;
        loop {
            let released = self.limits.reservations.released();
            tokio::pin!(released);
            released.as_mut().enable();
            // The spend as turns settle on this replica (never below what was read).
            let spend = self
                .auth
                .cached_spend(id)
                .unwrap_or(key.spend)
                .max(key.spend);
            let sizes = self.limits.cost_estimates.hold_sizes(id);
            let refusal = match self.limits.reservations.reserve(id, spend, budget, sizes) {
                Ok(r) if !self.limits.shared_rates => return Ok(r),
                Ok(r) => match self.hold_in_store(id, budget, sizes, r).await {
                    Ok(r) => return Ok(r),
                    Err(Refusal::Held { .. }) if Instant::now() < deadline => {
                        // Held by turns on other replicas, whose releases are not notified
                        // here: look again shortly.
                        tokio::time::sleep(STORE_HOLD_RETRY.min(deadline - Instant::now())).await;
                        continue;
                    }
                    Err(refusal) => refusal,
                },
                Err(r) => r,
            };
            match refusal {
                Refusal::Held { .. } if Instant::now() < deadline => {
                    let _ = tokio::time::timeout_at(deadline, released).await;
                }
                Refusal::Held {
                    spend,
                    held,
                    turns,
                    budget,
                } => {
                    return Err(ApiError::BudgetHeld {
                        spend,
                        held,
                        turns,
                        budget,
                    });
                }
                Refusal::Spent { spend, budget } => {
                    return Err(ApiError::BudgetExceeded {
                        spend,
                        budget,
                        resets_in: key.policy.budget_reset_at.map(|at| {
                            Duration::from_secs(
                                u64::try_from(at - self.limits.clock.now()).unwrap_or_default(),
                            )
                        }),
                    });
                }
            }
        }
    }
}
