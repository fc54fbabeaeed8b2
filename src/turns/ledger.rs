//! A turn's spend: the report the worker makes however the turn ends, applied at once to the
//! key's cached spend, token window, cost estimate and metrics, and queued as a durable record.

use std::sync::Arc;

use claude_pool_actors::{Ledger, TurnSpend};

use crate::limits::Admission;
use crate::state::App;
use crate::store::{SpendRecord, now_secs};
use crate::turns::TurnRequest;

/// The turn's spend report: called by the worker however the turn ends (also after the client
/// went away). It updates the key's cached spend, its token count, its cost estimate and the
/// metrics at once, frees its in-flight slot, and queues the durable record, which releases the
/// budget reservation once written. A turn that never reached a worker drops the ledger unused,
/// which releases both.
pub(crate) fn ledger(app: &Arc<App>, req: &TurnRequest, admission: Admission) -> Ledger {
    let held = std::sync::Mutex::new(Some(admission));
    let app = app.clone();
    let request_id = req.id.clone();
    let access = crate::http::access::current();
    let mut tags = req
        .caller
        .key
        .as_ref()
        .map(|k| k.policy.tags.clone())
        .unwrap_or_default();
    for t in &req.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let auth = app.auth.clone();
    let metrics = app.metrics.clone();
    let spend = app.spend.clone();
    let key_id = req.caller.key_id.clone();
    let label = req.caller.label.clone();
    // The session's row in the store (its id within the key's scope).
    let session = crate::conversation::scoped(&key_id, &req.session);
    let model = req.model_name.clone();
    Ledger::new(move |s: TurnSpend| {
        let input = s.usage.prompt_tokens();
        auth.add_spend(&key_id, s.cost_usd);
        app.limits.cost_estimates.observe(&key_id, s.cost_usd);
        app.limits
            .tokens
            .add(&key_id, input.saturating_add(s.usage.output_tokens));
        let admission = held.lock().unwrap_or_else(|e| e.into_inner()).take();
        let reservation = admission.and_then(|a| a.reservation);
        metrics.observe_turn(&label, input, s.usage.output_tokens, s.cost_usd);
        if let Some(a) = &access {
            a.spent(input, s.usage.output_tokens, s.cost_usd);
        }
        spend.record(
            SpendRecord {
                key_id: key_id.to_string(),
                session_id: Some(session.clone()),
                model: model.clone(),
                input_tokens: input,
                output_tokens: s.usage.output_tokens,
                cost_usd: s.cost_usd,
                duration_ms: s.duration.as_millis() as u64,
                status: s.status,
                created_at: now_secs(),
                request_id: Some(request_id.clone()),
                x_request_id: access.as_ref().map(|a| a.id().to_owned()),
                tags: tags.clone(),
            },
            reservation,
        );
    })
}
