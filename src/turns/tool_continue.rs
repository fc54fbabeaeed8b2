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

use claude_pool_actors::content::Block;

use crate::auth::Identity;
use crate::conversation::Msg;
use crate::error::ApiError;
use crate::state::App;
use crate::tools::request::ToolChoice;
use crate::tools::request::ToolRequest;
use crate::tools::{Outcome, ParkInfo};
use crate::turns::output_limit::OutputLimit;
use crate::turns::{Started, ToolTurn, TurnRequest};

/// Tool results a request brings for a parked turn, decoded by its API surface.
#[derive(Debug)]
pub(crate) struct ToolResults {
    /// Each result by the CLI's call id.
    pub outcomes: Vec<(String, Outcome)>,
    /// The calls' ids as the client knows them (for traces), in the same order.
    pub client_ids: Vec<String>,
    /// The model name the client used.
    pub model_name: String,
    /// Answer as a stream.
    pub stream: bool,
    /// Send a final usage chunk.
    pub include_usage: bool,
    /// The answer's id.
    pub id: String,
    /// The request's whole history, for stateless clients (its answer is fingerprinted).
    pub history: Vec<Msg>,
    /// The request's output limit.
    pub limit: Option<OutputLimit>,
}

/// What is kept of a turn set aside: what a new turn needs to continue its conversation.
#[derive(Debug)]
pub(crate) struct SetAside {
    /// The conversation.
    pub session: String,
    /// The Claude model the conversation runs on.
    pub claude_model: String,
    /// Its system prompt.
    pub system_prompt: Option<Arc<str>>,
    /// Its functions (the same set, so the same workers), with `response_format`.
    pub tools: ToolRequest,
    /// The client sends the whole history (its answer is fingerprinted for the next request).
    pub stateless: bool,
    /// The request's `metadata.tags`.
    pub tags: Vec<String>,
}

/// Starts the turn that gives `results` to the conversation of the turn set aside (`kept`,
/// `info`). If the request is refused before it runs (rate limits, budget), the turn stays
/// parked for a retry.
pub(crate) async fn start_with_results(
    app: Arc<App>,
    caller: Identity,
    results: ToolResults,
    kept: SetAside,
    info: Arc<ParkInfo>,
) -> Result<Started, ApiError> {
    let admission = match app
        .admit(&caller, &results.model_name, &kept.claude_model)
        .await
    {
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
        content: results_content(&info.calls, &results.outcomes),
        model_name: results.model_name,
        claude_model: kept.claude_model,
        stream: results.stream,
        include_usage: results.include_usage,
        history: kept.stateless.then_some(results.history),
        claimed: None,
        caller,
        id: results.id,
        tags: kept.tags,
        admission,
        system_prompt: kept.system_prompt,
        limit: results.limit,
        tools: Some(ToolTurn {
            request: tools,
            link: None,
            output: None,
        }),
    };
    crate::turns::start(&app, turn).await
}

/// The content that brings a set-aside turn's results: the message naming them, then the
/// results' images and documents in the order of the calls.
fn results_content(calls: &[(String, String)], outcomes: &[(String, Outcome)]) -> Vec<Block> {
    let mut content = vec![Block::Text(results_message(calls, outcomes))];
    for (id, _) in calls {
        if let Some((_, o)) = outcomes.iter().find(|(o, _)| o == id) {
            content.extend(o.attachments.iter().cloned());
        }
    }
    content
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
                    ..Outcome::default()
                },
            ),
            (
                "toolu_1".to_owned(),
                Outcome {
                    text: "sunny, 21 C".into(),
                    is_error: false,
                    ..Outcome::default()
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
