//! Running one turn for an HTTP request and answering it as an OpenAI completion, either as one
//! JSON body or as Server-Sent Events (`chat.completion.chunk`s, then `data: [DONE]`).
//!
//! The handler waits for the turn's start (JSON) or its first content (SSE) before answering,
//! so a turn that cannot start (queue timeout, shutdown) or fails before any content (upstream
//! 429/5xx, credential) gets a real HTTP status. After content started, failures are sent
//! in-band as an OpenAI error event followed by `[DONE]`. Dropping the response body (client
//! gone) drops the turn's stream, which makes the pool interrupt the turn.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{
    Ledger, Profile, Turn, TurnBudget, TurnError, TurnEvent, TurnSpend, TurnStream,
};
use futures_util::stream;

use crate::auth::Identity;
use crate::conversation::{Fingerprint, Msg, extended, fingerprint};
use crate::error::ApiError;
use crate::http::App;
use crate::http::answer::Answer;
use crate::limits::Admission;
use crate::openai::{
    ChatChunk, ChatCompletion, Choice, Delta, OutputLimit, ResponseMessage, Usage, unix_now,
};
use crate::store::{SpendRecord, now_secs};
use tokio_util::sync::CancellationToken;

/// The session header, on requests and every response.
pub(super) const SESSION_HEADER: &str = "x-session-id";

/// One turn to run for a request.
#[derive(Debug)]
pub(super) struct TurnRequest {
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
}

/// Submits the turn and answers it; an upstream refusal of the credential is counted for
/// `/v1/health`.
pub(super) async fn respond(app: Arc<App>, req: TurnRequest) -> Result<Response, ApiError> {
    let with_key_credential = req.caller.oauth_token.is_some();
    let result = run(app.clone(), req).await;
    if let Err(ApiError::Turn(e)) = &result {
        if crate::error::is_upstream_auth_failure(e) {
            app.auth_failures.record(with_key_credential, now_secs());
        }
    }
    result
}

async fn run(app: Arc<App>, mut req: TurnRequest) -> Result<Response, ApiError> {
    let t0 = Instant::now();
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
    let profile = Profile {
        model: (req.claude_model != app.default_model).then(|| req.claude_model.clone()),
        oauth_token: req.caller.oauth_token.clone(),
        system_prompt: req.system_prompt.clone(),
    };
    let turn = Turn {
        session: crate::http::sessions::scoped(&req.caller.key_id, &req.session).into(),
        content: serde_json::Value::String(req.content.clone()),
        profile,
        budget: TurnBudget {
            max_cost_usd: app.max_cost_per_request,
            cut: Some(cut.clone()),
            ledger: Some(ledger(&app, &req, admission)),
        },
    };
    let mut events = app.pool.submit(turn).await?;
    // Wait for the turn to start (or fail before any output). `Started` always comes first.
    match events.recv().await {
        Some(TurnEvent::Started { .. }) => {}
        Some(TurnEvent::Failed(e)) => return Err(e.into()),
        Some(other) => tracing::error!(?other, "a turn did not begin with Started"),
        None => return Err(TurnError::WorkerFailed("no worker answered".into()).into()),
    }
    let session = req.session.clone();
    let mut resp = if req.stream {
        // The response head waits for the first content: a turn that fails before any
        // (upstream rate limit, overload, credential) gets the same HTTP status as without
        // streaming, which SDKs know how to retry. A turn still silent after one keep-alive
        // interval gets its head and keep-alive comments, so proxies do not cut it.
        let first = match tokio::time::timeout(app.sse_keepalive, events.recv()).await {
            Ok(ev) => {
                claim.settle(ev.as_ref());
                match ev {
                    Some(TurnEvent::Failed(e)) => return Err(e.into()),
                    None => return Err(TurnError::WorkerFailed("stream ended".into()).into()),
                    Some(ev) => Some(ev),
                }
            }
            Err(_) => None,
        };
        sse(app, req, events, t0, claim, first, answer)
    } else {
        json(app, req, events, t0, claim, answer)
            .await?
            .into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&session) {
        resp.headers_mut()
            .insert(HeaderName::from_static(SESSION_HEADER), v);
    }
    Ok(resp)
}

/// The turn's spend report: called by the worker however the turn ends (also after the client
/// went away). It updates the key's cached spend, its token count and the metrics at once,
/// frees its in-flight slot, and queues the durable record, which releases the budget
/// reservation once written. A turn that never reached a worker drops the ledger unused, which
/// releases both.
fn ledger(app: &Arc<App>, req: &TurnRequest, admission: Admission) -> Ledger {
    let held = std::sync::Mutex::new(Some(admission));
    let tokens = app.clone();
    let request_id = req.id.clone();
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
        tokens
            .tokens
            .add(&key_id, input.saturating_add(s.usage.output_tokens));
        let admission = held.lock().unwrap_or_else(|e| e.into_inner()).take();
        let reservation = admission.and_then(|a| a.reservation);
        metrics.observe_turn(&label, input, s.usage.output_tokens, s.cost_usd);
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
struct Claim {
    app: Arc<App>,
    claimed: Option<Fingerprint>,
    session: String,
}

impl Claim {
    /// Follows the turn's events (`None`: the stream ended). A completed turn's answer
    /// fingerprint replaces the claim and a lost conversation is not given back; any other
    /// failure gives the conversation back at once, before the client can read the error and
    /// retry (a streamed error reaches the client before the response body is dropped).
    fn settle(&mut self, event: Option<&TurnEvent>) {
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
fn finished(app: &App, req: &TurnRequest, answer: &str) {
    if let Some(history) = &req.history {
        app.fingerprints.register(
            fingerprint(&req.caller.key_id, &extended(history, answer)),
            req.session.clone(),
        );
    }
}

async fn json(
    app: Arc<App>,
    req: TurnRequest,
    mut events: TurnStream,
    t0: Instant,
    mut claim: Claim,
    mut answer: Answer,
) -> Result<Json<ChatCompletion>, ApiError> {
    let mut first = true;
    let result = loop {
        let ev = events.recv().await;
        claim.settle(ev.as_ref());
        match ev {
            Some(TurnEvent::TextDelta(piece)) => {
                if first {
                    first = false;
                    app.metrics.observe_ttft(t0.elapsed().as_secs_f64());
                }
                answer.delta(piece);
            }
            Some(TurnEvent::Completed(r)) => break r,
            Some(TurnEvent::Failed(e)) => return Err(e.into()),
            Some(_) => {}
            None => return Err(TurnError::WorkerFailed("stream ended".into()).into()),
        }
    };
    answer.tail();
    let content = answer.full(&result);
    finished(&app, &req, &content);
    Ok(Json(ChatCompletion {
        id: req.id.clone(),
        object: "chat.completion",
        created: unix_now(),
        model: req.model_name.clone(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant",
                content,
                refusal: None,
            },
            finish_reason: answer.finish_reason(&result),
            logprobs: None,
        }],
        usage: Usage::from(result.usage),
        system_fingerprint: None,
    }))
}

/// Appends one SSE event (`data: <json>`) to the write buffer. JSON encoding escapes newlines,
/// so the payload is always a single `data:` line.
fn push_json<T: serde::Serialize>(pending: &mut Vec<u8>, v: &T) {
    pending.extend_from_slice(b"data: ");
    match serde_json::to_writer(&mut *pending, v) {
        Ok(()) => pending.extend_from_slice(b"\n\n"),
        Err(e) => tracing::error!(error = %e, "chunk encoding failed"),
    }
}

const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";
const KEEPALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

struct SseState {
    app: Arc<App>,
    req: TurnRequest,
    events: TurnStream,
    /// Encoded events not yet handed to the connection; everything ready is written at once.
    pending: Vec<u8>,
    done: bool,
    id: String,
    created: u64,
    t0: Instant,
    first_token: bool,
    claim: Claim,
    answer: Answer,
}

impl SseState {
    fn chunk(&mut self, delta: Delta<'_>, finish: Option<&'static str>) {
        let c = ChatChunk::delta(&self.id, self.created, &self.req.model_name, delta, finish);
        push_json(&mut self.pending, &c);
    }

    fn end_with_error(&mut self, e: ApiError) {
        tracing::warn!(error = %e, session = %self.req.session, "stream ended with an error");
        push_json(&mut self.pending, &e.envelope());
        self.pending.extend_from_slice(DONE_EVENT);
        self.done = true;
    }

    fn on_event(&mut self, ev: Option<TurnEvent>) {
        self.claim.settle(ev.as_ref());
        match ev {
            Some(TurnEvent::TextDelta(text)) => {
                if !self.first_token {
                    self.first_token = true;
                    self.app
                        .metrics
                        .observe_ttft(self.t0.elapsed().as_secs_f64());
                }
                let text = self.answer.delta(text);
                if !text.is_empty() {
                    self.chunk(
                        Delta {
                            role: None,
                            content: Some(&text),
                        },
                        None,
                    );
                }
            }
            Some(TurnEvent::Completed(r)) => {
                let tail = self.answer.tail();
                if !tail.is_empty() {
                    self.chunk(
                        Delta {
                            role: None,
                            content: Some(&tail),
                        },
                        None,
                    );
                }
                finished(&self.app, &self.req, &self.answer.full(&r));
                let reason = self.answer.finish_reason(&r);
                self.chunk(Delta::default(), Some(reason));
                if self.req.include_usage {
                    let u = ChatChunk::usage(
                        &self.id,
                        self.created,
                        &self.req.model_name,
                        Usage::from(r.usage),
                    );
                    push_json(&mut self.pending, &u);
                }
                self.pending.extend_from_slice(DONE_EVENT);
                self.done = true;
            }
            Some(TurnEvent::Failed(e)) => self.end_with_error(e.into()),
            Some(TurnEvent::Started { .. }) => {}
            None => self.end_with_error(TurnError::WorkerFailed("stream ended".into()).into()),
        }
    }
}

/// The SSE response, opened with the turn's `first` event when it came before the head was
/// sent. Every event that is ready when the connection can take more is written
/// in one frame (a burst of token deltas costs one write, not one per token); keep-alive
/// comments are sent after `server.sse_keepalive` without an event.
fn sse(
    app: Arc<App>,
    req: TurnRequest,
    events: TurnStream,
    t0: Instant,
    claim: Claim,
    first: Option<TurnEvent>,
    answer: Answer,
) -> Response {
    let keepalive = app.sse_keepalive;
    let mut st = SseState {
        app,
        id: req.id.clone(),
        req,
        events,
        pending: Vec::with_capacity(1024),
        done: false,
        created: unix_now(),
        t0,
        first_token: false,
        claim,
        answer,
    };
    st.chunk(
        Delta {
            role: Some("assistant"),
            content: Some(""),
        },
        None,
    );
    if let Some(ev) = first {
        st.on_event(Some(ev));
    }
    let body = stream::unfold(st, move |mut st| async move {
        loop {
            if !st.pending.is_empty() {
                let frame = Bytes::from(std::mem::take(&mut st.pending));
                return Some((Ok::<_, Infallible>(frame), st));
            }
            if st.done {
                return None;
            }
            tokio::select! {
                ev = st.events.recv() => {
                    st.on_event(ev);
                    while !st.done {
                        match st.events.try_recv() {
                            Some(ev) => st.on_event(Some(ev)),
                            None => break,
                        }
                    }
                }
                () = tokio::time::sleep(keepalive) => st.pending.extend_from_slice(KEEPALIVE_COMMENT),
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
