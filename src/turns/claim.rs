//! A stateless continuation's hold on its conversation, and the fingerprint a completed turn
//! leaves for the client's next request.

use std::sync::Arc;

use claude_pool_actors::{TurnError, TurnEvent};

use crate::conversation::{Fingerprint, extended, fingerprint};
use crate::state::App;
use crate::turns::TurnRequest;

/// A stateless continuation's hold on its conversation (the fingerprint index hands each
/// conversation to one request at a time). Unless the turn completes, dropping it gives the
/// conversation back, so the client's retry continues it rather than replaying the history into
/// a new one; a conversation that is lost is not given back (the retry starts afresh).
pub(crate) struct Claim {
    pub(crate) app: Arc<App>,
    pub(crate) claimed: Option<Fingerprint>,
    pub(crate) session: String,
}

impl Claim {
    /// Follows the turn's events (a stream that ended early reads as a failure, see
    /// [`super::start::or_ended`]). A completed turn's answer fingerprint replaces the claim
    /// and a lost conversation is not given back; any other failure gives the conversation
    /// back at once, before the client can read the error and retry (a streamed error reaches
    /// the client before the response body is dropped).
    pub(crate) fn settle(&mut self, event: &TurnEvent) {
        match event {
            TurnEvent::Completed(_) | TurnEvent::Failed(TurnError::ConversationLost(_)) => {
                self.claimed = None;
            }
            TurnEvent::Failed(_) => self.give_back(),
            _ => {}
        }
    }

    fn give_back(&mut self) {
        if let Some(fp) = self.claimed.take() {
            self.app
                .conversations
                .fingerprints
                .register(fp, std::mem::take(&mut self.session));
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.give_back();
    }
}

/// Bookkeeping after a completed turn: the fingerprint stateless clients will continue from
/// (with the answer as they received it).
pub(crate) fn finished(app: &App, req: &TurnRequest, answer: &str) {
    if let Some(history) = &req.history {
        app.conversations.fingerprints.register(
            fingerprint(&req.caller.key_id, &extended(history, answer)),
            req.session.clone(),
        );
    }
}
