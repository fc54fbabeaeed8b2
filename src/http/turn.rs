//! Starting one turn for an HTTP request: the pool turn built from the request (profile, cost
//! cap, cut, spend ledger), its submission, and the wait for its start (JSON) or first content
//! (streams), so a turn that cannot start (queue timeout, shutdown) or fails before any
//! content (upstream 429/5xx, credential) gets a real HTTP status. The rendering is the
//! caller's: a chat completion (`chat_render`) or a Responses API response (`crate::responses`).

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use claude_pool_actors::{
    Ledger, Profile, Turn, TurnBudget, TurnError, TurnEvent, TurnSpend, TurnStream,
};

use crate::auth::Identity;
use crate::conversation::{Fingerprint, Msg, extended, fingerprint};
use crate::error::ApiError;
use crate::http::App;
use crate::http::answer::Answer;
use crate::limits::Admission;
use crate::openai::OutputLimit;
use crate::store::{SpendRecord, now_secs};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The session header, on requests and every response.
pub(crate) const SESSION_HEADER: &str = "x-session-id";

/// One turn to run for a request.
#[derive(Debug)]
pub(crate) struct TurnRequest {
    /// The gateway session.
    pub session: String,
    /// What to send to the CLI.
    pub content: String,
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
    pub request: crate::tools::wire::ToolRequest,
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

/// Counts a turn's failure where `/v1/health` shows it (an upstream refusal of the credential
/// the turn ran with).
pub(crate) fn note_failure(app: &App, with_key_credential: bool, e: &ApiError) {
    if let ApiError::Turn(e) = e {
        if crate::error::is_upstream_auth_failure(e) {
            app.auth_failures.record(with_key_credential, now_secs());
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
        content = format!("{content}\n\n{instruction}");
    }
    let profile = Profile {
        model: (req.claude_model != app.default_model).then(|| req.claude_model.clone()),
        oauth_token: req.caller.oauth_token.clone(),
        system_prompt: req.system_prompt.clone(),
        external_tools,
    };
    let turn = Turn {
        session: crate::http::sessions::scoped(&req.caller.key_id, &req.session).into(),
        content: vec![claude_pool_actors::Block::Text(content)],
        profile,
        budget: TurnBudget {
            max_cost_usd: app.max_cost_per_request,
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
    let scoped = || crate::http::sessions::scoped(&req.caller.key_id, &req.session);
    crate::telemetry::turn_running(scoped, &span);
    let mut first = None;
    if req.stream {
        // A turn still silent after one keep-alive interval gets its head and keep-alive
        // comments, so proxies do not cut it.
        let waited = tokio::time::timeout(app.sse_keepalive, events.recv())
            .instrument(span.clone())
            .await;
        if let Ok(ev) = waited {
            claim.settle(ev.as_ref());
            match ev {
                Some(TurnEvent::Failed(e)) => {
                    let e = ApiError::from(e);
                    crate::telemetry::api_error(&span, &e);
                    return Err(e);
                }
                None => return Err(TurnError::WorkerFailed("stream ended".into()).into()),
                Some(ev) => first = Some(ev),
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
    })
}

/// Puts the session header on a response.
pub(crate) fn with_session(mut resp: Response, session: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(session) {
        resp.headers_mut()
            .insert(HeaderName::from_static(SESSION_HEADER), v);
    }
    resp
}

/// The turn's spend report: called by the worker however the turn ends (also after the client
/// went away). It updates the key's cached spend, its token count, its cost estimate and the
/// metrics at once, frees its in-flight slot, and queues the durable record, which releases the
/// budget reservation once written. A turn that never reached a worker drops the ledger unused,
/// which releases both.
fn ledger(app: &Arc<App>, req: &TurnRequest, admission: Admission) -> Ledger {
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
    let session = crate::http::sessions::scoped(&key_id, &req.session);
    let model = req.model_name.clone();
    Ledger::new(move |s: TurnSpend| {
        let input = s.usage.prompt_tokens();
        auth.add_spend(&key_id, s.cost_usd);
        app.cost_estimates.observe(&key_id, s.cost_usd);
        app.tokens
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

/// A stateless continuation's hold on its conversation (the fingerprint index hands each
/// conversation to one request at a time). Unless the turn completes, dropping it gives the
/// conversation back, so the client's retry continues it rather than replaying the history into
/// a new one; a conversation that is lost is not given back (the retry starts afresh).
pub(crate) struct Claim {
    app: Arc<App>,
    claimed: Option<Fingerprint>,
    session: String,
}

impl Claim {
    /// Follows the turn's events (`None`: the stream ended). A completed turn's answer
    /// fingerprint replaces the claim and a lost conversation is not given back; any other
    /// failure gives the conversation back at once, before the client can read the error and
    /// retry (a streamed error reaches the client before the response body is dropped).
    pub(crate) fn settle(&mut self, event: Option<&TurnEvent>) {
        match event {
            Some(TurnEvent::Completed(_) | TurnEvent::Failed(TurnError::ConversationLost(_))) => {
                self.claimed = None;
            }
            Some(TurnEvent::Failed(_)) | None => self.give_back(),
            Some(_) => {}
        }
    }

    fn give_back(&mut self) {
        if let Some(fp) = self.claimed.take() {
            self.app
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
        app.fingerprints.register(
            fingerprint(&req.caller.key_id, &extended(history, answer)),
            req.session.clone(),
        );
    }
}
