//! A finished response: how it ended, and its storing for retrieval and
//! `previous_response_id`.

use serde_json::Value;

use super::wire::Outcome;
use crate::conversation::{Msg, extended};
use crate::state::App;
use crate::turns::TurnRequest;
use crate::turns::output_limit::Cut;

/// How a response whose answer was cut (or not) ended.
pub(super) fn outcome_of(cut: Option<Cut>) -> Outcome {
    match cut {
        Some(Cut::Length) => Outcome::Incomplete,
        _ => Outcome::Completed,
    }
}

/// Stores a finished response (the conversation's messages now end with its answer), before
/// the client hears it is complete, so its next request may go to any replica. A store
/// failure is logged; the answer is still given (it cannot then be continued by id).
pub(super) async fn store(
    app: &App,
    req: &TurnRequest,
    before: Vec<Msg>,
    text: &str,
    object: &Value,
) {
    let history = extended(&before, text);
    if let Err(e) = app
        .conversations
        .responses
        .put(&req.id, &req.caller.key_id, &req.session, &history, object)
        .await
    {
        tracing::warn!(error = %e, "cannot store a response; previous_response_id will not find it");
    }
}
