//! Starting one turn: the pool turn built from the neutral request (profile, cost cap, cut,
//! spend ledger), its submission, and the wait for its start (JSON) or first content
//! (streams), so a turn that cannot start (queue timeout, shutdown) or fails before any
//! content (upstream 429/5xx, credential) gets a real HTTP status. The rendering is the API
//! surface's (`crate::api`).

use std::sync::Arc;
use std::time::Instant;

use claude_pool_actors::content::Block;
use claude_pool_actors::{Profile, Turn, TurnBudget, TurnError, TurnEvent, TurnStream};

use crate::auth::Identity;
use crate::conversation::{Fingerprint, Msg};
use crate::error::ApiError;
use crate::limits::Admission;
use crate::state::App;
use crate::store::now_secs;
use crate::turns::Claim;
use crate::turns::answer::Answer;
use crate::turns::ledger::ledger;
use crate::turns::output_limit::OutputLimit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// One turn to run for a request.
#[derive(Debug)]
pub(crate) struct TurnRequest {
    /// The gateway session.
    pub session: String,
    /// What to send to the CLI, as the content of one user message.
    pub content: Vec<Block>,
    /// The model name the client used (echoed in responses).
    pub model_name: String,
    /// The Claude model it resolves to.
    pub claude_model: String,
    /// Answer as SSE.
    pub stream: bool,
    /// Send a final usage chunk.
    pub include_usage: bool,
    /// For stateless clients: the history to fingerprint once the answer is known.
    pub history: Option<Vec<Msg>>,
    /// For a stateless continuation: the fingerprint it claimed its conversation by.
    pub claimed: Option<Fingerprint>,
    /// Who asked (spend, credential, metrics).
    pub caller: Identity,
    /// The response's id (`chatcmpl-...`), also the spend record's `request_id`.
    pub id: String,
    /// The request's `metadata.tags` (the key's own tags are added to the spend record).
    pub tags: Vec<String>,
    /// What the admitted turn holds (in-flight slot, budget reservation) until it ends.
    pub admission: Admission,
    /// The model's system prompt (workers are started with it, one set per prompt).
    pub system_prompt: Option<Arc<str>>,
    /// `max_tokens` / `stop`: applied to the streamed answer, which is cut when reached.
    pub limit: Option<OutputLimit>,
    /// Function calling: the offered functions and, once the turn runs, its link to the
    /// MCP bridge.
    pub tools: Option<ToolTurn>,
}

/// A turn's function calling.
#[derive(Debug)]
pub(crate) struct ToolTurn {
    /// The functions and `tool_choice`.
    pub request: crate::tools::request::ToolRequest,
    /// Where the worker's MCP calls meet the client's results (set when the turn starts).
    pub link: Option<Arc<crate::tools::Link>>,
    /// The arguments of the output function (`response_format`), once called.
    pub output: Option<serde_json::Value>,
}

/// A turn that has started on a worker, ready to be rendered (as a chat completion or as a
/// Responses API response).
pub(crate) struct Started {
    /// The request.
    pub req: TurnRequest,
    /// The turn's events after `Started` (and after `first`, if set).
    pub events: TurnStream,
    /// When the request arrived (time to first token).
    pub t0: Instant,
    /// The stateless continuation's hold on its conversation.
    pub claim: Claim,
    /// The answer through the output limit.
    pub answer: Answer,
    /// For a stream: the first event, read before the response head was sent.
    pub first: Option<TurnEvent>,
    /// The turn's `chat {model}` span (exported with traces; ended when the turn is answered
    /// or parked).
    pub span: tracing::Span,
    /// The request's first output (thinking or text) was seen: its time to first token is
    /// recorded.
    pub first_output_noted: bool,
}

impl Started {
    /// What each event of the turn means to the gateway whatever API renders it: the stateless
    /// continuation's claim settles, and the request's first output (thinking or text) is its
    /// time to first token.
    pub(crate) fn note(&mut self, app: &App, ev: &TurnEvent) {
        self.claim.settle(ev);
        let output = matches!(ev, TurnEvent::TextDelta(_) | TurnEvent::ThinkingDelta(_));
        if output && !self.first_output_noted {
            self.first_output_noted = true;
            first_token(app, self.t0, &self.span);
        }
    }

    /// The turn's next event (see [`or_ended`]), noted (see [`Started::note`]).
    pub(crate) async fn next_event(&mut self, app: &App) -> TurnEvent {
        let ev = or_ended(self.events.recv().await);
        self.note(app, &ev);
        ev
    }
}

/// A turn's event as read from its stream, where a stream that ended without its last event
/// (`Completed` or `Failed`: the worker went away) reads as that failure.
pub(crate) fn or_ended(ev: Option<TurnEvent>) -> TurnEvent {
    ev.unwrap_or_else(|| TurnEvent::Failed(TurnError::WorkerFailed("stream ended".into())))
}

/// Submits the turn and waits until it has started; a stream also waits for its first content
/// (up to one keep-alive interval), so a turn that fails before any content (upstream rate
/// limit, overload, credential) gets a real HTTP status, which SDKs know how to retry. An
/// upstream refusal of the credential is counted for `/v1/health`.
pub(crate) async fn start(app: &Arc<App>, req: TurnRequest) -> Result<Started, ApiError> {
    let with_key_credential = req.caller.oauth_token.is_some();
    let result = start_turn(app, req).await;
    if let Err(e) = &result {
        note_failure(app, with_key_credential, e);
    }
    result
}

/// Adds the function-calling instruction to the end of the message's last text block (the
/// prompt it qualifies, which stays one block with it), or as a text block of its own when
/// the message has no text.
fn with_instruction(content: &mut Vec<Block>, instruction: &str) {
    match content.iter_mut().rev().find_map(|b| match b {
        Block::Text(text) => Some(text),
        _ => None,
    }) {
        Some(text) => {
            text.push_str("\n\n");
            text.push_str(instruction);
        }
        None => content.push(Block::Text(instruction.to_owned())),
    }
}

/// Records the time to the turn's first output the client sees (thinking or text): the
/// latency histogram, the access log line and the turn's span.
fn first_token(app: &App, t0: Instant, span: &tracing::Span) {
    let elapsed = t0.elapsed();
    app.metrics.observe_ttft(elapsed.as_secs_f64());
    crate::http::access::first_token(elapsed);
    crate::telemetry::first_token(span, elapsed);
}

/// Counts a turn's failure where `/v1/health` shows it (an upstream refusal of the credential
/// the turn ran with).
pub(crate) fn note_failure(app: &App, with_key_credential: bool, e: &ApiError) {
    if let ApiError::Turn(e) = e {
        if crate::error::is_upstream_auth_failure(e) {
            app.credentials
                .failures
                .record(with_key_credential, now_secs());
        }
    }
}

async fn start_turn(app: &Arc<App>, mut req: TurnRequest) -> Result<Started, ApiError> {
    let t0 = Instant::now();
    crate::http::access::turn(&req.session, &req.model_name);
    let admission = std::mem::take(&mut req.admission);
    let cut = CancellationToken::new();
    let answer = Answer {
        limit: req.limit.take(),
        cut: cut.clone(),
        text: String::new(),
    };
    let mut claim = Claim {
        app: app.clone(),
        claimed: req.claimed,
        session: req.session.clone(),
    };
    let external_tools =
        match &req.tools {
            Some(t) => Some(app.tools.external_tools(&t.request).map_err(|e| {
                ApiError::Internal(format!("function calling is unavailable: {e}"))
            })?),
            None => None,
        };
    let mut content = req.content.clone();
    if let Some(instruction) = req.tools.as_ref().and_then(|t| t.request.instruction()) {
        with_instruction(&mut content, &instruction);
    }
    let profile = Profile {
        model: (req.claude_model != app.server.default_model).then(|| req.claude_model.clone()),
        oauth_token: req.caller.oauth_token.clone(),
        system_prompt: req.system_prompt.clone(),
        external_tools,
    };
    let turn = Turn {
        session: crate::conversation::scoped(&req.caller.key_id, &req.session).into(),
        content,
        profile,
        budget: TurnBudget {
            max_cost_usd: app.limits.max_cost_per_request,
            cut: Some(cut.clone()),
            ledger: Some(ledger(app, &req, admission)),
        },
    };
    // A turn of this conversation parked for tool results would hold the conversation's
    // worker until its deadline: it gives the worker up, and this turn follows it.
    app.tools
        .bridge
        .release_session(&req.caller.key_id, &req.session);
    // The wait for a worker, in the request's `queue wait` span: from the submission until the
    // pool's `Started` (or the failure before it).
    let queue =
        crate::telemetry::span(|| tracing::info_span!("queue wait", otel.name = "queue wait"));
    let waited = async {
        let mut events = app.pool.submit(turn).await?;
        let first = events.recv().await;
        Ok::<_, ApiError>((events, first))
    }
    .instrument(queue.clone())
    .await;
    let (mut events, first) = match waited {
        Ok(w) => w,
        Err(e) => {
            crate::telemetry::api_error(&queue, &e);
            return Err(e);
        }
    };
    // Wait for the turn to start (or fail before any output). `Started` always comes first.
    match first {
        Some(TurnEvent::Started {
            tool_token,
            queued_for,
            resumed,
            worker_id,
            ..
        }) => {
            crate::telemetry::attr(
                &queue,
                "claude_pool.queued_for_ms",
                queued_for.as_millis() as i64,
            );
            crate::telemetry::attr(&queue, "claude_pool.resumed", resumed);
            crate::telemetry::attr(&queue, "claude_pool.worker_id", worker_id as i64);
            app.metrics.observe_queue_wait(queued_for.as_secs_f64());
            crate::http::access::queue_wait(queued_for);
            if let (Some(tools), Some(token)) = (&mut req.tools, tool_token) {
                tools.link = Some(app.tools.bridge.link(token.expose()));
            }
        }
        Some(TurnEvent::Failed(e)) => {
            let e = ApiError::from(e);
            crate::telemetry::api_error(&queue, &e);
            return Err(e);
        }
        Some(other) => tracing::error!(?other, "a turn did not begin with Started"),
        None => return Err(TurnError::WorkerFailed("no worker answered".into()).into()),
    }
    drop(queue);
    let span = crate::telemetry::chat_span(&req.model_name);
    let scoped = || crate::conversation::scoped(&req.caller.key_id, &req.session);
    crate::telemetry::turn_running(scoped, &span);
    let mut first = None;
    if req.stream {
        // A turn still silent after one keep-alive interval gets its head and keep-alive
        // comments, so proxies do not cut it.
        let waited = tokio::time::timeout(app.server.sse_keepalive, events.recv())
            .instrument(span.clone())
            .await;
        if let Ok(ev) = waited {
            let ev = or_ended(ev);
            claim.settle(&ev);
            match ev {
                TurnEvent::Failed(e) => {
                    let e = ApiError::from(e);
                    crate::telemetry::api_error(&span, &e);
                    return Err(e);
                }
                ev => first = Some(ev),
            }
        }
    }
    Ok(Started {
        req,
        events,
        t0,
        claim,
        answer,
        first,
        span,
        first_output_noted: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instruction_joins_the_last_text_block() {
        let image = Block::Image(claude_pool_actors::content::Source::Url(
            "https://x/a.png".into(),
        ));
        let mut content = vec![Block::text("one"), Block::text("two"), image.clone()];
        with_instruction(&mut content, "call it");
        assert_eq!(
            content,
            [
                Block::text("one"),
                Block::text("two\n\ncall it"),
                image.clone()
            ]
        );
        let mut only_image = vec![image.clone()];
        with_instruction(&mut only_image, "call it");
        assert_eq!(only_image, [image, Block::text("call it")]);
    }
}
