//! Tool results for a turn that was set aside (it gave its worker up while it waited): a new
//! turn in the same conversation brings them as its message, warm on the worker that still
//! holds the conversation, or resumed with `--resume` on another.
//!
//! The CLI answered the waiting calls itself when the turn was interrupted (an error
//! `tool_result`, "The user doesn't want to proceed with this tool use…", followed by
//! "[Request interrupted by user for tool use]"), and it drops a second `tool_result` for the
//! same call (measured with CLI 2.1.197: the model never sees it). So the results come as text
//! naming each call's id and function, after the CLI's note of the interrupt.

use std::sync::Arc;

use axum::response::Response;

use crate::api::chat::messages::normalize_history;
use crate::auth::Identity;
use crate::error::ApiError;
use crate::openai::{ChatRequest, completion_id};
use crate::state::App;
use crate::tools::wire::ToolChoice;
use crate::tools::{Outcome, ParkInfo};
use crate::turns::TurnRequest;
use crate::turns::tool_parking::{SetAside, ToolTurn};

/// Runs the turn that gives `outcomes` (CLI call id → result) to the conversation of the turn
/// set aside (`kept`, `info`). If the request is refused before it runs (rate limits, budget),
/// the turn stays parked for a retry.
pub(crate) async fn respond(
    app: Arc<App>,
    caller: Identity,
    req: ChatRequest,
    outcomes: Vec<(String, Outcome)>,
    kept: SetAside,
    info: Arc<ParkInfo>,
) -> Result<Response, ApiError> {
    let history = match kept.stateless {
        true => match normalize_history(&req.messages) {
            Ok(h) => Some(h),
            Err(e) => {
                app.tools.bridge.clone().park_set_aside(info, kept);
                return Err(e);
            }
        },
        false => None,
    };
    let admission = match app.admit(&caller, &req.model, &kept.claude_model).await {
        Ok(a) => a,
        Err(e) => {
            app.tools.bridge.clone().park_set_aside(info, kept);
            return Err(e);
        }
    };
    let mut tools = kept.tools;
    // The request's tool_choice was for the call already made; the model answers freely now.
    tools.choice = ToolChoice::Auto;
    let turn = TurnRequest {
        session: kept.session,
        content: results_message(&info.calls, &outcomes),
        model_name: req.model.clone(),
        claude_model: kept.claude_model,
        stream: req.stream,
        include_usage: req.include_usage(),
        history,
        claimed: None,
        caller,
        id: completion_id(),
        tags: kept.tags,
        admission,
        system_prompt: kept.system_prompt,
        limit: req.output_limit(),
        tools: Some(ToolTurn {
            request: tools,
            link: None,
            output: None,
        }),
    };
    crate::api::chat::render::respond(app, turn).await
}

/// The message that brings a set-aside turn's results: each call's id (as the model knows it),
/// function and result, in the order of the calls.
pub(crate) fn results_message(
    calls: &[(String, String)],
    outcomes: &[(String, Outcome)],
) -> String {
    let mut text =
        String::from("The results of your tool calls came after your turn was interrupted:");
    for (id, name) in calls {
        let result = outcomes
            .iter()
            .find(|(o, _)| o == id)
            .map(|(_, o)| o.text.as_str())
            .unwrap_or_default();
        text.push_str(&format!(
            "\n\n[result of tool call {id} ({name})]\n{result}"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_each_call_its_function_and_result_in_call_order() {
        let calls = [
            ("toolu_1".to_owned(), "get_weather".to_owned()),
            ("toolu_2".to_owned(), "get_time".to_owned()),
        ];
        let outcomes = [
            (
                "toolu_2".to_owned(),
                Outcome {
                    text: "14:05".into(),
                    is_error: false,
                },
            ),
            (
                "toolu_1".to_owned(),
                Outcome {
                    text: "sunny, 21 C".into(),
                    is_error: false,
                },
            ),
        ];
        assert_eq!(
            results_message(&calls, &outcomes),
            "The results of your tool calls came after your turn was interrupted:\n\n\
             [result of tool call toolu_1 (get_weather)]\nsunny, 21 C\n\n\
             [result of tool call toolu_2 (get_time)]\n14:05"
        );
    }
}
