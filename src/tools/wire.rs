//! OpenAI function calling on the wire (pure): the request's `tools` and `tool_choice`, the
//! answer's `tool_calls`, and the `tool` messages that carry results back.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The MCP server's name in workers' configuration: the CLI calls its tools
/// `mcp__client__<name>`.
pub const SERVER_NAME: &str = "client";
/// Longest function name the CLI can carry (Anthropic's 64 minus `mcp__client__`).
pub const MAX_NAME_LEN: usize = 64 - "mcp__client__".len();

/// One function the client offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// The JSON Schema of its arguments (an object schema).
    pub parameters: serde_json::Map<String, Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    /// The model decides (the default).
    Auto,
    /// The model must call a tool.
    Required,
    /// The model must call this function.
    Named(String),
}

/// The functions a request offers and how the model should use them.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolRequest {
    /// The functions, in the request's order (the output function last, with `output`).
    pub functions: Vec<Function>,
    /// `tool_choice`.
    pub choice: ToolChoice,
    /// `response_format`: the answer comes as the output function's arguments.
    pub output: Option<super::format::OutputFormat>,
}

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

/// The tools of a request with its `response_format`: the client's functions (if any) and the
/// output function.
pub fn with_output(
    tools: Option<ToolRequest>,
    output: Option<super::format::OutputFormat>,
) -> Result<Option<ToolRequest>, ApiError> {
    let Some(output) = output else {
        return Ok(tools);
    };
    let mut request = tools.unwrap_or(ToolRequest {
        functions: Vec::new(),
        choice: ToolChoice::Auto,
        output: None,
    });
    if request
        .functions
        .iter()
        .any(|f| f.name == super::format::OUTPUT_FUNCTION)
    {
        return Err(bad(
            "tools",
            format!(
                "`{}` is the gateway's own function for response_format: rename yours",
                super::format::OUTPUT_FUNCTION
            ),
        ));
    }
    request.functions.push(output.function());
    request.output = Some(output);
    Ok(Some(request))
}

impl ToolRequest {
    /// A stable id of the function set (workers are kept per set): a hash of the functions.
    pub fn set_id(&self) -> String {
        let canonical: Vec<Value> = self
            .functions
            .iter()
            .map(|f| json!([f.name, f.description, f.parameters]))
            .collect();
        let digest = Sha256::digest(Value::Array(canonical).to_string().as_bytes());
        hex::encode(&digest[..16])
    }

    /// True when the model may call one of the client's functions (whose results the client
    /// sends: the turn may park), not only the output function of `response_format`.
    pub fn offers_client_functions(&self) -> bool {
        self.functions.len() > usize::from(self.output.is_some())
    }

    /// What the turn's message says about `tool_choice` and `response_format` (the CLI has
    /// no switch for them).
    pub fn instruction(&self) -> Option<String> {
        let choice = match &self.choice {
            ToolChoice::Auto => None,
            ToolChoice::Required => {
                Some("(Answer by calling one or more of the available tools.)".to_owned())
            }
            ToolChoice::Named(name) => Some(format!("(Answer by calling the tool `{name}`.)")),
        };
        let output = self
            .output
            .as_ref()
            .map(super::format::OutputFormat::instruction);
        match (choice, output) {
            (Some(c), Some(o)) => Some(format!("{c}\n{o}")),
            (c, o) => c.or(o),
        }
    }
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
