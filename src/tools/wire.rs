//! OpenAI function calling on the wire (pure): the request's `tools` and `tool_choice`, the
//! answer's `tool_calls`, and the `tool` messages that carry results back.

use serde_json::{Value, json};

use crate::error::ApiError;

pub use super::request::{Function, MAX_NAME_LEN, SERVER_NAME, ToolChoice, ToolRequest};

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad(param, message)
}

/// Reads `tools` and `tool_choice`: `None` when no function is offered or `tool_choice` is
/// `"none"` (the turn runs without tools).
pub fn parse(
    tools: Option<&[Value]>,
    choice: Option<&Value>,
) -> Result<Option<ToolRequest>, ApiError> {
    let tools = tools.unwrap_or_default();
    let mut functions: Vec<Function> = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        if t.get("type").and_then(Value::as_str) != Some("function") {
            return Err(bad(
                &param,
                "only tools of `type: \"function\"` are supported",
            ));
        }
        let f = t
            .get("function")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(&param, "a function tool needs a `function` object"))?;
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("{param}.function.name"), "missing function name"))?;
        let valid = (1..=MAX_NAME_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(bad(
                &format!("{param}.function.name"),
                format!(
                    "function names must be 1-{MAX_NAME_LEN} characters of a-z, A-Z, 0-9, _ and -"
                ),
            ));
        }
        if functions.iter().any(|g| g.name == name) {
            return Err(bad(
                &format!("{param}.function.name"),
                format!("function `{name}` is offered twice"),
            ));
        }
        let parameters = match f.get("parameters") {
            None | Some(Value::Null) => serde_json::Map::from_iter([
                ("type".to_owned(), json!("object")),
                ("properties".to_owned(), json!({})),
            ]),
            Some(Value::Object(o)) => o.clone(),
            Some(_) => {
                return Err(bad(
                    &format!("{param}.function.parameters"),
                    "`parameters` must be a JSON Schema object",
                ));
            }
        };
        functions.push(Function {
            name: name.to_owned(),
            description: f
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned),
            parameters,
        });
    }
    let choice = match choice {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "none" => return Ok(None),
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(bad(
                    "tool_choice",
                    format!(
                        "unknown tool_choice `{other}`: use none, auto, required or a function"
                    ),
                ));
            }
        },
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice", "name the function: {\"type\": \"function\", \"function\": {\"name\": ...}}"))?;
            if !functions.iter().any(|f| f.name == name) {
                return Err(bad(
                    "tool_choice",
                    format!("tool_choice names `{name}`, which is not among the tools"),
                ));
            }
            ToolChoice::Named(name.to_owned())
        }
        Some(_) => {
            return Err(bad(
                "tool_choice",
                "tool_choice must be a string or an object",
            ));
        }
    };
    if functions.is_empty() {
        if choice != ToolChoice::Auto {
            return Err(bad("tool_choice", "tool_choice needs tools"));
        }
        return Ok(None);
    }
    Ok(Some(ToolRequest {
        functions,
        choice,
        output: None,
    }))
}

/// An OpenAI tool call id for a CLI call id (`toolu_x` → `call_x`), and back.
pub fn openai_id(cli_id: &str) -> String {
    format!("call_{}", cli_id.strip_prefix("toolu_").unwrap_or(cli_id))
}

/// The CLI call id for an OpenAI tool call id made by [`openai_id`].
pub fn cli_id(openai_id: &str) -> String {
    format!(
        "toolu_{}",
        openai_id.strip_prefix("call_").unwrap_or(openai_id)
    )
}

/// `message.tool_calls` for the CLI's calls.
pub fn tool_calls(calls: &[claude_pool_actors::ToolCall]) -> Vec<Value> {
    calls
        .iter()
        .map(|c| {
            json!({
                "id": openai_id(&c.id),
                "type": "function",
                "function": {"name": c.name, "arguments": c.input.to_string()},
            })
        })
        .collect()
}

/// A tool's result, from a `tool` message.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The OpenAI id of the call it answers.
    pub call_id: String,
    /// Its content as text.
    pub text: String,
}

/// The `tool` messages at the end of a request (the results of the previous answer's
/// calls), in order; empty when the request does not end with one.
pub fn trailing_results(
    messages: &[crate::openai::ChatMessage],
) -> Result<Vec<ToolResult>, ApiError> {
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate().rev() {
        if m.role != "tool" {
            break;
        }
        let call_id = m.tool_call_id.clone().ok_or_else(|| {
            bad(
                &format!("messages[{i}].tool_call_id"),
                "a `tool` message needs the `tool_call_id` it answers",
            )
        })?;
        let text = match &m.content {
            Some(c) => c.text().map_err(|part| {
                bad(
                    &format!("messages[{i}].content"),
                    format!("unsupported content part `{part}` in a tool result"),
                )
            })?,
            None => String::new(),
        };
        out.push(ToolResult { call_id, text });
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str) -> Value {
        json!({"type": "function", "function": {"name": name, "description": "d",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
    }

    #[test]
    fn tools_and_choices_are_read_and_bad_ones_named() {
        let t = [tool("get_weather"), tool("get_time")];
        let r = parse(Some(&t), None).unwrap().unwrap();
        assert_eq!(r.functions.len(), 2);
        assert_eq!(r.choice, ToolChoice::Auto);
        assert_eq!(parse(Some(&t), Some(&json!("none"))).unwrap(), None);
        assert_eq!(parse(None, None).unwrap(), None);
        let named = parse(
            Some(&t),
            Some(&json!({"type": "function", "function": {"name": "get_time"}})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(named.choice, ToolChoice::Named("get_time".into()));
        assert!(named.instruction().unwrap().contains("get_time"));
        for (tools, choice, param) in [
            (vec![json!({"type": "code_interpreter"})], None, "tools[0]"),
            (vec![tool("has space")], None, "tools[0].function.name"),
            (
                vec![tool(&"x".repeat(MAX_NAME_LEN + 1))],
                None,
                "tools[0].function.name",
            ),
            (vec![tool("a"), tool("a")], None, "tools[1].function.name"),
            (vec![tool("a")], Some(json!("sometimes")), "tool_choice"),
            (
                vec![tool("a")],
                Some(json!({"type": "function", "function": {"name": "b"}})),
                "tool_choice",
            ),
        ] {
            let e = parse(Some(&tools), choice.as_ref()).unwrap_err();
            assert_eq!(e.envelope().error.param.as_deref(), Some(param), "{e}");
        }
    }

    #[test]
    fn the_set_id_depends_on_the_functions_only() {
        let a = parse(Some(&[tool("a"), tool("b")]), None).unwrap().unwrap();
        let same = parse(Some(&[tool("a"), tool("b")]), Some(&json!("required")))
            .unwrap()
            .unwrap();
        let other = parse(Some(&[tool("a")]), None).unwrap().unwrap();
        assert_eq!(a.set_id(), same.set_id());
        assert_ne!(a.set_id(), other.set_id());
        assert_eq!(a.set_id().len(), 32);
    }

    #[test]
    fn call_ids_map_both_ways_and_calls_render_as_openai_tool_calls() {
        assert_eq!(openai_id("toolu_01abc"), "call_01abc");
        assert_eq!(cli_id(&openai_id("toolu_01abc")), "toolu_01abc");
        let calls = [claude_pool_actors::ToolCall {
            id: "toolu_1".into(),
            name: "get_weather".into(),
            input: json!({"city": "Paris"}),
        }];
        let v = tool_calls(&calls);
        assert_eq!(v[0]["id"], "call_1");
        assert_eq!(v[0]["function"]["name"], "get_weather");
        let args: Value =
            serde_json::from_str(v[0]["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args, json!({"city": "Paris"}));
    }
}
