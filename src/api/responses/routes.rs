//! `POST /v1/responses`, `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`: the Responses
//! API on the same pool, sessions, keys, limits and spend as chat completions. A response
//! continues the conversation of its `previous_response_id` (the newest response of a
//! conversation continues it in place; an older one branches into a new conversation that
//! replays the history up to it); without one, the input continues a live conversation it
//! extends (as stateless chat clients do) or starts one.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{TurnError, TurnEvent, TurnResult};
use futures_util::stream;
use serde_json::{Value, json};

use super::wire::{
    Head, Outcome, ResponsesRequest, message_id, message_item, response_id, response_object,
};
use crate::api::chat::messages::normalize;
use crate::api::key_api::check_tags;
use crate::auth::{Caller, Identity};
use crate::conversation::Role;
use crate::conversation::{Msg, extended, replay, system_prompt};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::headers::with_session;
use crate::openai::{Usage, unix_now};
use crate::state::{App, AppState};
use crate::turns::output_limit::{Cut, OutputLimit};
use crate::turns::placement::{Placement, place};
use crate::turns::{Started, TurnRequest, finished, note_failure, start};

/// `POST /v1/responses`.
pub(crate) async fn create(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<ResponsesRequest>,
) -> Result<Response, ApiError> {
    if let Some((param, message)) = req.unsupported() {
        return Err(ApiError::bad(&param, message));
    }
    let chat = req.messages().map_err(|(p, m)| ApiError::bad(&p, m))?;
    let msgs = normalize(&chat)?;
    let tags = tags(&req)?;
    let claude_model = app.resolve_model(&req.model)?;
    let admission = app.admit(&caller, &req.model, &claude_model).await?;
    let (placement, before) = match &req.previous_response_id {
        Some(prev) => continue_from(&app, &caller, prev, msgs).await?,
        None => {
            let p = place(&app, &caller, None, msgs).await?;
            let before = p.history.clone().unwrap_or_default();
            (p, before)
        }
    };
    let id = response_id();
    let head = Head {
        id: id.clone(),
        created_at: unix_now(),
        model: req.model.clone(),
        message_id: message_id(),
        previous_response_id: req.previous_response_id.clone(),
        instructions: req.instructions.clone(),
        max_output_tokens: req.max_output_tokens,
        metadata: req.metadata.clone().unwrap_or_else(|| json!({})),
        temperature: req.temperature,
        top_p: req.top_p,
    };
    let turn = TurnRequest {
        session: placement.session,
        content: placement.content,
        model_name: req.model.clone(),
        claude_model,
        stream: req.stream,
        include_usage: true,
        history: placement.history,
        claimed: placement.claimed,
        caller,
        id,
        tags,
        admission,
        system_prompt: placement.system_prompt,
        limit: OutputLimit::new(req.max_output_tokens, Vec::new()),
        tools: None,
    };
    let with_key_credential = turn.caller.oauth_token.is_some();
    let started = start(&app, turn).await?;
    let session = started.req.session.clone();
    let resp = if req.stream {
        sse(app, started, head, before)
    } else {
        match json_response(&app, started, &head, before).await {
            Ok(v) => Json(v).into_response(),
            Err(e) => {
                note_failure(&app, with_key_credential, &e);
                return Err(e);
            }
        }
    };
    Ok(with_session(resp, &session))
}

fn tags(req: &ResponsesRequest) -> Result<Vec<String>, ApiError> {
    let Some(t) = req.metadata.as_ref().and_then(|m| m.get("tags")) else {
        return Ok(Vec::new());
    };
    let tags: Vec<String> = serde_json::from_value(t.clone())
        .map_err(|_| ApiError::bad("metadata", "`metadata.tags` must be a list of strings"))?;
    check_tags("metadata.tags", &tags)?;
    Ok(tags)
}

/// The place of a response that continues `prev`, and the conversation's messages before it.
async fn continue_from(
    app: &App,
    caller: &Identity,
    prev: &str,
    msgs: Vec<Msg>,
) -> Result<(Placement, Vec<Msg>), ApiError> {
    let stored = app
        .conversations
        .responses
        .get(prev, &caller.key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("response `{prev}` not found")))?;
    let sent_system_prompt = system_prompt(&msgs)?;
    let new: Vec<Msg> = msgs
        .into_iter()
        .filter(|m| m.role != Role::System)
        .collect();
    let mut full = stored.history.clone();
    full.extend(new.iter().cloned());
    if app
        .conversations
        .responses
        .is_latest(prev, &stored.session)
        .await?
    {
        // In place: the conversation's worker (on this replica, or taken up from the store)
        // holds it; only the new input is sent.
        app.take_up(&caller.key_id, &stored.session).await?;
        let content = match new.as_slice() {
            [only] => only.blocks(),
            _ => replay(&new),
        };
        let system_prompt = app
            .conversations
            .sessions
            .system_prompt(&caller.key_id, &stored.session, sent_system_prompt)
            .await?;
        let placement = Placement {
            session: stored.session,
            content,
            history: None,
            claimed: None,
            system_prompt,
        };
        return Ok((placement, full));
    }
    // A branch from an older response: a new conversation replaying the history up to it.
    let session = app.conversations.sessions.create(&caller.key_id).await?;
    let system_prompt = app
        .conversations
        .sessions
        .system_prompt(&caller.key_id, &session, sent_system_prompt)
        .await?;
    let placement = Placement {
        session,
        content: replay(&full),
        history: None,
        claimed: None,
        system_prompt,
    };
    Ok((placement, full))
}

fn outcome_of(cut: Option<Cut>) -> Outcome {
    match cut {
        Some(Cut::Length) => Outcome::Incomplete,
        _ => Outcome::Completed,
    }
}

/// Stores a finished response (the conversation's messages now end with its answer), before
/// the client hears it is complete, so its next request may go to any replica. A store
/// failure is logged; the answer is still given (it cannot then be continued by id).
async fn store(app: &App, req: &TurnRequest, before: Vec<Msg>, text: &str, object: &Value) {
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

async fn json_response(
    app: &Arc<App>,
    started: Started,
    head: &Head,
    before: Vec<Msg>,
) -> Result<Value, ApiError> {
    let Started {
        req,
        mut events,
        t0,
        mut claim,
        mut answer,
        span,
        ..
    } = started;
    let mut first = true;
    let result: TurnResult = loop {
        let ev = events.recv().await;
        claim.settle(ev.as_ref());
        match ev {
            Some(TurnEvent::TextDelta(piece)) => {
                if first {
                    first = false;
                    app.metrics.observe_ttft(t0.elapsed().as_secs_f64());
                    crate::http::access::first_token(t0.elapsed());
                    crate::telemetry::first_token(&span, t0.elapsed());
                }
                answer.delta(piece);
            }
            Some(TurnEvent::Completed(r)) => break r,
            Some(TurnEvent::Failed(e)) => {
                let e = ApiError::from(e);
                crate::telemetry::api_error(&span, &e);
                return Err(e);
            }
            Some(_) => {}
            None => return Err(TurnError::WorkerFailed("stream ended".into()).into()),
        }
    };
    let usage = &result.usage;
    crate::telemetry::completed(
        &span,
        usage.prompt_tokens(),
        usage.output_tokens,
        result.cost_usd,
    );
    answer.tail();
    let text = answer.full(&result);
    finished(app, &req, &text);
    let cut = answer.limit.as_ref().and_then(OutputLimit::cut);
    let usage = Usage::from(result.usage);
    let object = response_object(head, &outcome_of(cut), Some(&text), Some(&usage));
    store(app, &req, before, &text, &object).await;
    Ok(object)
}

/// The stream's state: typed events with sequence numbers.
struct Sse {
    app: Arc<App>,
    started: Started,
    head: Head,
    before: Option<Vec<Msg>>,
    seq: u64,
    pending: Vec<u8>,
    done: bool,
    first_token: bool,
    /// A completed response, to store before its last event (`kind`, with the response) is
    /// sent: (messages before it, its text, the response object, the event's kind).
    to_store: Option<(Vec<Msg>, String, Value, &'static str)>,
}

impl Sse {
    fn event(&mut self, kind: &str, mut body: Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        self.pending
            .extend_from_slice(format!("event: {kind}\ndata: ").as_bytes());
        if serde_json::to_writer(&mut self.pending, &body).is_err() {
            tracing::error!("response event encoding failed");
        }
        self.pending.extend_from_slice(b"\n\n");
    }

    fn part(&self) -> Value {
        json!({"item_id": self.head.message_id, "output_index": 0, "content_index": 0})
    }

    fn opening(&mut self) {
        let r = response_object(&self.head, &Outcome::InProgress, None, None);
        self.event("response.created", json!({"response": r}));
        self.event("response.in_progress", json!({"response": r}));
        let item = message_item(&self.head.message_id, "", false);
        self.event(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        );
        let mut p = self.part();
        p["part"] = json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
        self.event("response.content_part.added", p);
    }

    fn on_event(&mut self, ev: Option<TurnEvent>) {
        // Entered for each event: the span's end is its last exit (the turn's last event).
        let _in_turn = self.started.span.clone().entered();
        self.started.claim.settle(ev.as_ref());
        match ev {
            Some(TurnEvent::TextDelta(piece)) => {
                if !self.first_token {
                    self.first_token = true;
                    let t = self.started.t0.elapsed().as_secs_f64();
                    self.app.metrics.observe_ttft(t);
                    crate::http::access::first_token(self.started.t0.elapsed());
                    crate::telemetry::first_token(&self.started.span, self.started.t0.elapsed());
                }
                let delta = self.started.answer.delta(piece);
                if !delta.is_empty() {
                    let mut p = self.part();
                    p["delta"] = json!(delta);
                    p["logprobs"] = json!([]);
                    self.event("response.output_text.delta", p);
                }
            }
            Some(TurnEvent::Completed(r)) => self.closing(&r),
            Some(TurnEvent::Failed(e)) => self.fail(e.into()),
            Some(TurnEvent::Started { .. } | TurnEvent::ToolCalls(_)) => {}
            Some(TurnEvent::ThinkingDelta(_) | TurnEvent::ThinkingSignature(_)) => {}
            None => self.fail(TurnError::WorkerFailed("stream ended".into()).into()),
        }
    }

    fn closing(&mut self, r: &TurnResult) {
        let usage = &r.usage;
        crate::telemetry::completed(
            &self.started.span,
            usage.prompt_tokens(),
            usage.output_tokens,
            r.cost_usd,
        );
        let tail = self.started.answer.tail();
        if !tail.is_empty() {
            let mut p = self.part();
            p["delta"] = json!(tail);
            p["logprobs"] = json!([]);
            self.event("response.output_text.delta", p);
        }
        let text = self.started.answer.full(r);
        finished(&self.app, &self.started.req, &text);
        let mut p = self.part();
        p["text"] = json!(text);
        p["logprobs"] = json!([]);
        self.event("response.output_text.done", p);
        let mut p = self.part();
        p["part"] = json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
        self.event("response.content_part.done", p);
        let item = message_item(&self.head.message_id, &text, true);
        self.event(
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        );
        let cut = self
            .started
            .answer
            .limit
            .as_ref()
            .and_then(OutputLimit::cut);
        let outcome = outcome_of(cut);
        let usage = Usage::from(r.usage);
        let object = response_object(&self.head, &outcome, Some(&text), Some(&usage));
        let before = self.before.take().unwrap_or_default();
        let kind = match outcome {
            Outcome::Incomplete => "response.incomplete",
            _ => "response.completed",
        };
        // Stored before this last event goes out (see the stream loop).
        self.to_store = Some((before, text, object, kind));
        self.done = true;
    }

    fn fail(&mut self, e: ApiError) {
        crate::telemetry::api_error(&self.started.span, &e);
        tracing::warn!(error = %e, session = %self.started.req.session, "response stream ended with an error");
        let (_, _, code, message) = e.parts();
        let error = json!({"code": code.unwrap_or("server_error"), "message": message});
        let object = response_object(&self.head, &Outcome::Failed(error), None, None);
        self.event("response.failed", json!({"response": object}));
        self.done = true;
    }
}

fn sse(app: Arc<App>, started: Started, head: Head, before: Vec<Msg>) -> Response {
    let keepalive = app.server.sse_keepalive;
    let first = started.first.clone();
    let mut st = Sse {
        app,
        started,
        head,
        before: Some(before),
        seq: 0,
        pending: Vec::with_capacity(2048),
        done: false,
        first_token: false,
        to_store: None,
    };
    st.opening();
    if let Some(ev) = first {
        st.on_event(Some(ev));
    }
    let body = stream::unfold(st, move |mut st| async move {
        loop {
            if let Some((before, text, object, kind)) = st.to_store.take() {
                store(&st.app, &st.started.req, before, &text, &object).await;
                st.event(kind, json!({"response": object}));
            }
            if !st.pending.is_empty() {
                let frame = Bytes::from(std::mem::take(&mut st.pending));
                return Some((Ok::<_, Infallible>(frame), st));
            }
            if st.done {
                return None;
            }
            tokio::select! {
                ev = st.started.events.recv() => st.on_event(ev),
                () = tokio::time::sleep(keepalive) => st.pending.extend_from_slice(b": keep-alive\n\n"),
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// `GET /v1/responses/{id}`.
pub(crate) async fn get(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    app.conversations
        .responses
        .get(&id, &caller.key_id)
        .await?
        .map(|s| Json(s.object))
        .ok_or_else(|| ApiError::NotFound(format!("response `{id}` not found")))
}

/// `DELETE /v1/responses/{id}`.
pub(crate) async fn delete(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if app
        .conversations
        .responses
        .delete(&id, &caller.key_id)
        .await?
    {
        Ok(Json(
            json!({"id": id, "object": "response.deleted", "deleted": true}),
        ))
    } else {
        Err(ApiError::NotFound(format!("response `{id}` not found")))
    }
}
