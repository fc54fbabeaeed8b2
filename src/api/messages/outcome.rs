//! What both renderings of a Messages API answer share: why the answer stopped, and the usage
//! shown.

use claude_pool_actors::{TurnResult, Usage};

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

/// The usage the answer shows: the CLI's counts, except that an answer cut at `max_tokens`
/// shows at most `max_tokens` output tokens, as the API's own answers do (the model generated
/// more before the cut stopped it; the spend record keeps what it really cost).
pub(super) fn shown_usage(answer: &Answer, r: &TurnResult) -> Usage {
    let mut usage = r.usage;
    let limit = answer.limit.as_ref();
    if let Some(max) = limit
        .filter(|l| l.cut() == Some(Cut::Length))
        .and_then(|l| l.max_tokens())
    {
        usage.output_tokens = usage.output_tokens.min(max);
    }
    usage
}
