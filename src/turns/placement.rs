//! Where a request's turn runs: which conversation it continues or starts, what is sent to
//! the CLI, and with which system prompt (see `crate::conversation` and
//! docs/conversations.md). Shared by chat completions and the Responses API.

use std::sync::Arc;

use crate::auth::Identity;
use crate::conversation::scoped;
use crate::conversation::{Fingerprint, Msg, fingerprint, replay, system_prompt};
use crate::error::ApiError;
use crate::state::App;
use crate::transcripts::TakeUp;

/// A request's place in a conversation.
#[derive(Debug)]
pub(crate) struct Placement {
    /// The gateway session.
    pub session: String,
    /// What to send to the CLI: the last message, or a replay of the history.
    pub content: String,
    /// For stateless clients: the history to fingerprint once the answer is known.
    pub history: Option<Vec<Msg>>,
    /// For a stateless continuation: the fingerprint it claimed its conversation by.
    pub claimed: Option<Fingerprint>,
    /// The system prompt the turn runs with.
    pub system_prompt: Option<Arc<str>>,
}

impl App {
    /// Makes sure the pool continues `owner`'s session `id` with its whole context: a
    /// conversation this replica's pool does not hold as kept (it ran on another replica, or
    /// before a restart) is taken up from the store ([`crate::transcripts::Keeper::take_up`]).
    /// `Known` when conversations are not kept.
    pub(crate) async fn take_up(&self, owner: &str, id: &str) -> Result<TakeUp, ApiError> {
        match &self.conversations.keeper {
            Some(keeper) => keeper.take_up(&self.pool, &scoped(owner, id).into()).await,
            None => Ok(TakeUp::Known),
        }
    }
}

/// Places a turn: with an explicit session id, in that session (a session the gateway has not
/// seen starts with the whole history; a turn without system messages keeps the session's
/// system prompt); without one, in the live conversation whose history the messages extend,
/// or in a new conversation that replays them.
pub(crate) async fn place(
    app: &App,
    caller: &Identity,
    explicit: Option<String>,
    msgs: Vec<Msg>,
) -> Result<Placement, ApiError> {
    let sent_system_prompt = system_prompt(&msgs)?;
    let last = msgs.last().map(|m| m.text.clone()).unwrap_or_default();
    if let Some(sid) = explicit {
        let mut created = app
            .conversations
            .sessions
            .claim_or_create(&sid, &caller.key_id)
            .await?;
        if created {
            if let Some(keeper) = &app.conversations.keeper {
                keeper.forget_held(&app.pool, &scoped(&caller.key_id, &sid).into());
            }
        } else if app.take_up(&caller.key_id, &sid).await? == TakeUp::Deleted {
            // Deleted on another replica: the id starts a new conversation.
            app.conversations
                .sessions
                .forget_cached(&sid, &caller.key_id);
            created = app
                .conversations
                .sessions
                .claim_or_create(&sid, &caller.key_id)
                .await?;
        }
        let content = if created { replay(&msgs) } else { last };
        let system_prompt = app
            .conversations
            .sessions
            .system_prompt(&caller.key_id, &sid, sent_system_prompt)
            .await?;
        return Ok(Placement {
            session: sid,
            content,
            history: None,
            claimed: None,
            system_prompt,
        });
    }
    let prefix = &msgs[..msgs.len() - 1];
    let fp = fingerprint(&caller.key_id, prefix);
    let mut continued = (!prefix.is_empty())
        .then(|| app.conversations.fingerprints.claim(&fp))
        .flatten();
    if let Some(sid) = &continued {
        if !app
            .conversations
            .sessions
            .owned_by(sid, &caller.key_id)
            .await?
        {
            continued = None;
        }
    }
    Ok(match continued {
        Some(sid) => Placement {
            session: sid,
            content: last,
            history: Some(msgs),
            claimed: Some(fp),
            system_prompt: sent_system_prompt,
        },
        None => Placement {
            session: app.conversations.sessions.create(&caller.key_id).await?,
            content: replay(&msgs),
            history: Some(msgs),
            claimed: None,
            system_prompt: sent_system_prompt,
        },
    })
}
