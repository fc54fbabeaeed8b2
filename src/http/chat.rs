//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::auth::Caller;
use crate::conversation::normalize;
use crate::error::ApiError;
use crate::http::admin::check_tags;
use crate::http::chat_render::respond;
use crate::http::placement::{Placement, place};
use crate::http::turn::{SESSION_HEADER, TurnRequest};
use crate::http::{ApiJson, AppState};
use crate::openai::{ChatRequest, completion_id};

/// Maps the request onto a conversation (see `crate::conversation`) and runs the turn.
pub(super) async fn chat_completions(
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
        return crate::http::tool_turns::continue_turn(app, caller, req, results).await;
    }
    let tools = crate::tools::wire::with_output(
        crate::tools::wire::parse(req.tools.as_deref(), req.tool_choice.as_ref())?,
        crate::tools::format::parse(req.response_format.as_ref())?,
    )?;
    if tools.as_ref().is_some_and(|t| t.offers_client_functions()) {
        crate::http::tool_turns::check_parked_limit(&app, &caller)?;
    }
    let msgs = normalize(&req.messages)?;
    let tags = req.tags().map_err(|m| ApiError::bad("metadata", m))?;
    check_tags("metadata.tags", &tags)?;
    let claude_model = app.resolve_model(&req.model)?;
    let admission = app.admit(&caller, &req.model, &claude_model).await?;
    let explicit = match headers.get(SESSION_HEADER) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad("X-Session-Id", "the session id must be ASCII"))?
                .to_owned(),
        ),
        None => req.session_id.clone(),
    };
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
            tools: tools.map(|request| crate::http::tool_turns::ToolTurn {
                request,
                link: None,
                output: None,
            }),
        },
    )
    .await
}
