//! [`Answer`]: a turn's answer as the client receives it, through the request's output limit
//! (`max_tokens`, `stop`); reaching the limit cuts the turn.

use claude_pool_actors::TurnResult;
use tokio_util::sync::CancellationToken;

use crate::turns::output_limit::{Cut, OutputLimit};

/// The answer as the client receives it: the deltas through the output limit, if any. When
/// the limit is reached, the turn is cut.
pub(crate) struct Answer {
    pub(crate) limit: Option<OutputLimit>,
    pub(crate) cut: CancellationToken,
    /// What was sent (kept only under a limit; otherwise the turn's own text is the answer).
    pub(crate) text: String,
}

impl Answer {
    /// The part of a delta to send.
    pub(crate) fn delta(&mut self, piece: String) -> String {
        let Some(limit) = &mut self.limit else {
            return piece;
        };
        let out = limit.push(&piece);
        if limit.cut().is_some() {
            self.cut.cancel();
        }
        self.text.push_str(&out);
        out
    }

    /// The tail still held back when the turn ended on its own.
    pub(crate) fn tail(&mut self) -> String {
        let out = self
            .limit
            .as_mut()
            .map(OutputLimit::finish)
            .unwrap_or_default();
        self.text.push_str(&out);
        out
    }

    /// The whole answer (after [`Answer::tail`]).
    pub(crate) fn full(&self, r: &TurnResult) -> String {
        match self.limit {
            Some(_) => self.text.clone(),
            None => r.text.clone(),
        }
    }

    pub(crate) fn finish_reason(&self, r: &TurnResult) -> &'static str {
        match self.limit.as_ref().and_then(OutputLimit::cut) {
            Some(Cut::Length) => "length",
            Some(Cut::Stop) => "stop",
            None if r.stop_reason.as_deref() == Some("max_tokens") => "length",
            None => "stop",
        }
    }
}
