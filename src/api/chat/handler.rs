//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::api::chat::messages::normalize;
use crate::api::chat::messages::normalize_history;
use crate::api::chat::render::{render, respond};
use crate::api::key_api::check_tags;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::headers::{SESSION_HEADER, session_in};
use crate::openai::{ChatRequest, completion_id};
use crate::state::AppState;
use crate::tools::Outcome;
use crate::tools::wire::cli_id;
use crate::turns::TurnRequest;
use crate::turns::placement::{Placement, place};
use crate::turns::tool_continue::ToolResults;
use crate::turns::tool_parking::continue_turn;

/// Maps the request onto a conversation (see `crate::conversation`) and runs the turn.
pub(crate) async fn chat_completions(
    State(AppState(app)): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    if let Some((param, message)) = req.unsupported() {
        return Err(ApiError::bad(param, message));
    }
    // Tool results for a turn that waits for them: the same turn goes on.
    let results = crate::tools::wire::trailing_results(&req.messages)?;
    if !results.is_empty() {
        let results = ToolResults {
            client_ids: results.iter().map(|r| r.call_id.clone()).collect(),
            outcomes: results
                .into_iter()
                .map(|r| {
                    let outcome = Outcome {
                        text: r.text,
                        is_error: false,
                        ..Outcome::default()
                    };
                    (cli_id(&r.call_id), outcome)
                })
                .collect(),
            model_name: req.model.clone(),
            stream: req.stream,
            include_usage: req.include_usage(),
            id: completion_id(),
            history: normalize_history(&req.messages)?,
            limit: req.output_limit(),
        };
        let started = continue_turn(app.clone(), caller, results).await?;
        return render(app, started).await;
    }
    let tools = crate::tools::request::with_output(
        crate::tools::wire::parse(req.tools.as_deref(), req.tool_choice.as_ref())?,
        crate::tools::format::parse(req.response_format.as_ref())?,
    )?;
    if tools.as_ref().is_some_and(|t| t.offers_client_functions()) {
        crate::turns::tool_parking::check_parked_limit(&app, &caller)?;
    }
    let msgs = normalize(&req.messages)?;
    let tags = req.tags().map_err(|m| ApiError::bad("metadata", m))?;
    check_tags("metadata.tags", &tags)?;
    let (claude_model, admission) = app.admit_model(&caller, &req.model).await?;
    let explicit =
        session_in(&headers, SESSION_HEADER, "X-Session-Id")?.or_else(|| req.session_id.clone());
    let Placement {
        session,
        content,
        history,
        claimed,
        system_prompt,
    } = place(&app, &caller, explicit, msgs).await?;
    if let Some(user) = &req.user {
        tracing::debug!(%user, %session, "chat completion");
    }
    respond(
        app,
        TurnRequest {
            session,
            content,
            model_name: req.model.clone(),
            claude_model,
            stream: req.stream,
            include_usage: req.include_usage(),
            history,
            claimed,
            caller,
            id: completion_id(),
            tags,
            admission,
            system_prompt,
            limit: req.output_limit(),
            tools: tools.map(|request| crate::turns::ToolTurn {
                request,
                link: None,
                output: None,
            }),
        },
    )
    .await
}
