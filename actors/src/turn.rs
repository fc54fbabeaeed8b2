//! Public request/response types of the pool: what a caller submits and what it gets back.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::content::Block;

/// The gateway's own conversation id. It is stable for the life of a conversation, while the
/// CLI's session id changes on `/clear` and may change on `--resume`.
pub type SessionId = Arc<str>;

/// Which kind of worker can serve a turn: workers are started for one model and one
/// credential, and only serve turns of the same profile. Turns of different profiles share
/// the pool's limits (`max_workers`, `queue_capacity`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Profile {
    /// Model passed to the CLI as `--model` (`None` = the CLI's default / `worker.model`).
    pub model: Option<String>,
    /// A per-key Claude OAuth token; `None` = the pool's own credential.
    pub oauth_token: Option<Secret>,
    /// The model's system prompt (`--system-prompt`); `None` = the CLI's own.
    pub system_prompt: Option<Arc<str>>,
    /// Tools the caller answers (through an MCP server of its own); `None` = no tools.
    pub external_tools: Option<ExternalTools>,
}

/// Tools whose calls are answered outside the CLI, by an MCP server the caller runs: the
/// model calls them, the turn reports each call ([`TurnEvent::ToolUse`]) and waits (up to the
/// pool's `tool_result_timeout`) for the CLI to get the results from that server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExternalTools {
    /// The MCP server's name in `config` (the CLI names its tools `mcp__<server>__<tool>`).
    pub server: Arc<str>,
    /// The `--mcp-config` JSON. `${CLAUDE_POOL_TOOL_TOKEN}` in it is replaced by the CLI with
    /// the worker's own random token (reported in [`TurnEvent::Started`]), so the server can
    /// tell which worker, and so which turn, calls.
    pub config: Arc<str>,
}

impl ExternalTools {
    /// The prefix of these tools' names as the CLI knows them.
    pub fn prefix(&self) -> String {
        format!("mcp__{}__", self.server)
    }
}

impl Profile {
    /// A label for logs, health and metrics: the model, the kind of credential (never the
    /// credential itself), short hashes of the system prompt and the external tools (never
    /// their text).
    pub fn label(&self) -> String {
        use std::hash::{Hash, Hasher};
        fn short_hash(value: &impl Hash) -> u32 {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            value.hash(&mut h);
            h.finish() as u32
        }
        let model = self.model.as_deref().unwrap_or("default model");
        let credential = match &self.oauth_token {
            Some(_) => "key credential",
            None => "server credential",
        };
        let mut label = format!("{model}, {credential}");
        if let Some(prompt) = &self.system_prompt {
            label.push_str(&format!(", system prompt {:08x}", short_hash(prompt)));
        }
        if let Some(tools) = &self.external_tools {
            label.push_str(&format!(", tools {:08x}", short_hash(tools)));
        }
        label
    }
}

/// A secret string (credential) that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }
    /// The secret value; only for handing it to a child's environment.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One user turn to run in a conversation.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The conversation this turn belongs to. A turn for a session that a worker holds goes to
    /// that worker; turns of one session run one at a time, in submission order.
    pub session: SessionId,
    /// What the CLI receives as one user message: text, images, documents and tool results,
    /// in order (written by [`crate::protocol::user_message_line`], which keeps any of it from
    /// running as a slash command).
    pub content: Vec<Block>,
    /// Which workers may serve it.
    pub profile: Profile,
    /// Its cost cap and where its spend is reported.
    pub budget: TurnBudget,
}

/// A turn's limits: its cost cap, the caller's cut, and its spend report.
#[derive(Debug, Clone, Default)]
pub struct TurnBudget {
    /// Stop the turn (interrupt) once its cost exceeds this many USD: checked mid-turn
    /// against an estimate from streamed token counts, and at the end against the CLI's cost.
    pub max_cost_usd: Option<f64>,
    /// Cancelled by the caller to end the turn early *as completed* (it has all the output it
    /// wants, e.g. an output limit was reached): the worker interrupts the CLI, the process
    /// stays warm, the conversation keeps what was said, and the turn completes with
    /// [`TurnResult::cut`] set.
    ///
    /// Cutting a turn that waits for the results of external tool calls *sets it aside*: the
    /// CLI answers the waiting calls itself (as refused) and notes the interrupt; the turn
    /// completes once the transcript holds that note, so the conversation can go on (warm on
    /// its worker, or resumed with `--resume` wherever it is moved) and the results be given
    /// as the next user message.
    pub cut: Option<tokio_util::sync::CancellationToken>,
    /// Called exactly once for every turn that reached a worker, however it ended (also when
    /// the caller dropped its stream mid-turn).
    pub ledger: Option<Ledger>,
}

/// What a turn that ran cost.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnSpend {
    /// Tokens used (the CLI's count, or the streamed count if no result arrived).
    pub usage: Usage,
    /// Cost in USD (the CLI's figure, or the mid-turn estimate if no result arrived).
    pub cost_usd: f64,
    /// Wall time on the worker.
    pub duration: Duration,
    /// How the turn ended: `completed`, `failed`, `interrupted` or `cost_limit`.
    pub status: &'static str,
}

/// Receives a turn's [`TurnSpend`]; runs on the worker's task, so it must be quick (hand the
/// record to a channel).
#[derive(Clone)]
pub struct Ledger(Arc<dyn Fn(TurnSpend) + Send + Sync>);

impl Ledger {
    /// Wraps a callback.
    pub fn new(f: impl Fn(TurnSpend) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Reports a spend.
    pub fn record(&self, spend: TurnSpend) {
        (self.0)(spend);
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

impl Turn {
    /// A turn of these content blocks with the default profile.
    pub fn new(session: impl Into<SessionId>, content: Vec<Block>) -> Self {
        Self {
            session: session.into(),
            content,
            profile: Profile::default(),
            budget: TurnBudget::default(),
        }
    }

    /// A plain-text turn (one text block) with the default profile.
    pub fn text(session: impl Into<SessionId>, text: impl Into<String>) -> Self {
        Self::new(session, vec![Block::text(text)])
    }
}

/// Token usage of one turn as the CLI reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens (not counting cache reads/writes).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: u64,
}

impl Usage {
    /// All input tokens: plain, written to and read from the prompt cache (OpenAI's
    /// `prompt_tokens`).
    pub fn prompt_tokens(&self) -> u64 {
        self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
    }
}

impl std::ops::Add for Usage {
    type Output = Usage;

    fn add(self, o: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + o.input_tokens,
            output_tokens: self.output_tokens + o.output_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens
                + o.cache_creation_input_tokens,
            cache_read_input_tokens: self.cache_read_input_tokens + o.cache_read_input_tokens,
        }
    }
}

/// The end of a successful turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnResult {
    /// The full assistant text of the turn.
    pub text: String,
    /// Token usage of the turn.
    pub usage: Usage,
    /// Cost of this turn in USD (difference of the CLI's cumulative `total_cost_usd`).
    pub cost_usd: f64,
    /// The CLI's stop reason (`end_turn`, `max_tokens`, ...), if any.
    pub stop_reason: Option<String>,
    /// Wall time the CLI reports for the turn.
    pub duration_ms: u64,
    /// Ended early by the caller's cut ([`TurnBudget::cut`]).
    pub cut: bool,
    /// The model's thinking blocks in the turn, in order (one per model call that thought:
    /// a turn with tool rounds may have several); empty when it did not think.
    pub thinking: Vec<Thinking>,
}

/// One thinking block of the model, as streamed ([`TurnEvent::ThinkingDelta`]s, then its
/// [`TurnEvent::ThinkingSignature`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thinking {
    /// The thinking text.
    pub text: String,
    /// The block's signature (what the model API checks when the block is given back to it);
    /// `None` when the block ended without one (an interrupted call).
    pub signature: Option<String>,
}

/// Why a turn failed. Each maps to one HTTP status at the edge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TurnError {
    /// Waited in the queue longer than `queue_timeout` (→ 503).
    #[error("no worker became available within the queue timeout")]
    QueueTimeout,
    /// No output for `turn_idle_timeout` mid-turn (→ 504).
    #[error("the worker produced no output within the turn idle timeout")]
    IdleTimeout,
    /// The worker process exited or broke the protocol mid-turn (→ 502).
    #[error("the worker failed mid-turn: {0}")]
    WorkerFailed(String),
    /// The upstream model API answered with an error (status as reported by the CLI).
    #[error("upstream API error{}: {message}", status.map(|s| format!(" {s}")).unwrap_or_default())]
    Upstream {
        /// The upstream HTTP status, if the CLI reported one.
        status: Option<u16>,
        /// The CLI's error text.
        message: String,
    },
    /// The turn was interrupted (cancelled by the caller, or over its cost limit).
    #[error("the turn was interrupted")]
    Interrupted,
    /// The pool is shutting down (→ 503).
    #[error("the pool is shutting down")]
    ShuttingDown,
    /// The turn cost more than its cap and was stopped.
    #[error("the turn cost ${cost_usd:.4}, over its limit of ${limit_usd:.4}")]
    CostLimitExceeded {
        /// What it cost (or was estimated to cost when it was stopped).
        cost_usd: f64,
        /// The cap.
        limit_usd: f64,
    },
    /// The worker could not be started for this turn (→ 503).
    #[error("no worker could be started: {0}")]
    SpawnFailed(String),
    /// The conversation's saved transcript could not be loaded (missing, or every attempt to
    /// resume it failed); the session's next turn starts a new conversation (→ 410).
    #[error("the conversation could not be restored: {0}")]
    ConversationLost(String),
}

/// What a turn's stream yields, in order: `Started`; then the output in the order the CLI
/// prints it: per model call, its thinking (`ThinkingDelta`s, then the block's
/// `ThinkingSignature`) before its `TextDelta`s, and its external calls (`ToolCalls`) once the
/// call's message ends; then exactly one of `Completed` or `Failed`, then the stream ends.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    /// A worker took the turn.
    Started {
        /// The worker's id in the pool.
        worker_id: u64,
        /// The worker's child process id.
        pid: u32,
        /// Time spent waiting in the queue.
        queued_for: Duration,
        /// True when the conversation was rebuilt on this worker with `--resume`.
        resumed: bool,
        /// The worker's token for external tools (see [`ExternalTools::config`]).
        tool_token: Option<Secret>,
    },
    /// The model called external tools (one or more, in one message); the turn waits for
    /// their results (which the CLI gets from the caller's MCP server), then goes on.
    ToolCalls(Vec<ToolCall>),
    /// A piece of assistant text, as it arrives.
    TextDelta(String),
    /// A piece of the model's thinking, as it arrives (before the text of the same call).
    ThinkingDelta(String),
    /// The signature that closes the thinking block whose deltas came before it.
    ThinkingSignature(String),
    /// The turn finished.
    Completed(TurnResult),
    /// The turn failed; nothing more follows.
    Failed(TurnError),
}

/// One call of an external tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The call's id (the CLI's `toolu_...`; the MCP call carries it in `_meta`).
    pub id: String,
    /// The tool's name without the `mcp__<server>__` prefix.
    pub name: String,
    /// Its arguments.
    pub input: serde_json::Value,
}

/// Why a turn was not accepted at all.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmitError {
    /// The queue is full (→ 429 with `Retry-After`).
    #[error("the pool queue is full")]
    QueueFull {
        /// A hint for the client's `Retry-After`.
        retry_after: Duration,
    },
    /// The pool is draining or stopped (→ 503).
    #[error("the pool is shutting down")]
    ShuttingDown,
}

/// The receiving end of a turn. Dropping it cancels the turn: a queued turn is discarded, a
/// running one is interrupted in-band (and its worker killed and replaced if the interrupt is
/// not acknowledged in time).
#[derive(Debug)]
pub struct TurnStream {
    rx: mpsc::Receiver<TurnEvent>,
}

impl TurnStream {
    pub(crate) fn new(rx: mpsc::Receiver<TurnEvent>) -> Self {
        Self { rx }
    }

    /// The next event, or `None` once the turn has ended.
    pub async fn recv(&mut self) -> Option<TurnEvent> {
        self.rx.recv().await
    }

    /// The next event if one is ready now (`None` when none is waiting or the turn ended).
    pub fn try_recv(&mut self) -> Option<TurnEvent> {
        self.rx.try_recv().ok()
    }

    /// Drains the stream and returns the final outcome (test and non-streaming helper).
    pub async fn collect(mut self) -> Result<TurnResult, TurnError> {
        while let Some(ev) = self.rx.recv().await {
            match ev {
                TurnEvent::Completed(r) => return Ok(r),
                TurnEvent::Failed(e) => return Err(e),
                _ => {}
            }
        }
        Err(TurnError::WorkerFailed(
            "turn stream ended without a result".into(),
        ))
    }

    /// The inner receiver, for adapters (e.g. `ReceiverStream`).
    pub fn into_inner(self) -> mpsc::Receiver<TurnEvent> {
        self.rx
    }
}
