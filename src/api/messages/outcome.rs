//! What both renderings of a Messages API answer share: why the answer stopped.

use claude_pool_actors::TurnResult;

use super::wire::render::StopReason;
use crate::turns::answer::Answer;
use crate::turns::output_limit::Cut;

/// Why the answer stopped: the request's output limit, else the model's own reason.
pub(super) fn stop_reason(answer: &Answer, r: &TurnResult) -> StopReason {
    match answer.limit.as_ref().and_then(|l| l.cut().map(|c| (c, l))) {
        Some((Cut::Length, _)) => StopReason::MaxTokens,
        Some((Cut::Stop, limit)) => {
            StopReason::StopSequence(limit.matched_stop().unwrap_or_default().to_owned())
        }
        None => StopReason::from_wire(r.stop_reason.as_deref().unwrap_or("end_turn"), None),
    }
}
