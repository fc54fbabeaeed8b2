//! `tools` and `tool_choice` → the neutral [`ToolRequest`] chat completions use too.
//!
//! Custom tools (`type` absent or `custom`: `name`, `description`, `input_schema`) become
//! [`Function`]s; names follow the gateway's rule for functions (1 to [`MAX_NAME_LEN`]
//! characters of `a-z A-Z 0-9 _ -`: the CLI calls them `mcp__client__<name>`, within the API's
//! 64). Server tools (`web_search_20250305`, `bash_20250124`, `text_editor_...`,
//! `computer_...`, `code_execution_...`, `web_fetch_...`) run on Anthropic's side, which a
//! warm worker cannot offer its model: they are refused naming them.
//!
//! | `tool_choice` | neutral |
//! |---|---|
//! | absent, `auto` | [`ToolChoice::Auto`] |
//! | `any` | [`ToolChoice::Required`] (chat's `required`) |
//! | `tool` with `name` | [`ToolChoice::Named`] |
//! | `none` | no tools for the turn |
//!
//! `disable_parallel_tool_use` is accepted: the CLI decides how many calls it makes.

use serde_json::{Map, Value, json};

use super::WireError;
use super::check::{self, at};
use crate::tools::wire::{Function, MAX_NAME_LEN, ToolChoice, ToolRequest};

/// Reads `tools` and `tool_choice`: `None` when no tool is offered or `tool_choice` is `none`.
pub fn decode(
    tools: Option<&Value>,
    choice: Option<&Value>,
) -> Result<Option<ToolRequest>, WireError> {
    let tools = match tools {
        None | Some(Value::Null) => &[][..],
        Some(v) => check::list(v, "tools")?,
    };
    let mut functions: Vec<Function> = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let path = at("tools", i);
        let o = check::object(t, &path)?;
        match check::optional_str(o, "type", &path)? {
            None | Some("custom") => {}
            Some(kind) => {
                return Err(WireError::new(
                    path,
                    format!("server tool {kind} is not supported by this gateway"),
                ));
            }
        }
        let name = check::required_str(o, "name", &path)?;
        let valid = (1..=MAX_NAME_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(WireError::new(
                at(&path, "name"),
                format!("tool names must be 1-{MAX_NAME_LEN} characters of a-z, A-Z, 0-9, _ and -"),
            ));
        }
        if functions.iter().any(|f| f.name == name) {
            return Err(WireError::new(
                at(&path, "name"),
                format!("tool names must be unique: `{name}` is offered twice"),
            ));
        }
        let schema = check::required(o, "input_schema", &path)?;
        let parameters: Map<String, Value> =
            check::object(schema, &at(&path, "input_schema"))?.clone();
        functions.push(Function {
            name: name.to_owned(),
            description: check::optional_str(o, "description", &path)?.map(str::to_owned),
            parameters,
        });
    }
    let choice = match choice {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(v) => {
            let o = check::object(v, "tool_choice")?;
            check::optional_bool(o, "disable_parallel_tool_use", "tool_choice")?;
            match check::tag(o, "tool_choice")? {
                "none" => return Ok(None),
                "auto" => ToolChoice::Auto,
                "any" => ToolChoice::Required,
                "tool" => {
                    let name = check::required_str(o, "name", "tool_choice")?;
                    if !functions.iter().any(|f| f.name == name) {
                        return Err(WireError::new(
                            "tool_choice.name",
                            format!("tool_choice names `{name}`, which is not among the tools"),
                        ));
                    }
                    ToolChoice::Named(name.to_owned())
                }
                other => {
                    return Err(WireError::new(
                        "tool_choice.type",
                        format!("Input should be 'auto', 'any', 'tool' or 'none', not '{other}'"),
                    ));
                }
            }
        }
    };
    if functions.is_empty() {
        if choice != ToolChoice::Auto {
            return Err(WireError::new("tool_choice", "tool_choice needs tools"));
        }
        return Ok(None);
    }
    Ok(Some(ToolRequest {
        functions,
        choice,
        output: None,
    }))
}

/// The tool definitions a request would send, for estimates: each tool's name, description
/// and schema as JSON text.
pub(super) fn schema_text(tools: &ToolRequest) -> String {
    tools
        .functions
        .iter()
        .map(|f| json!([f.name, f.description, f.parameters]).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool(name: &str) -> Value {
        json!({"name": name, "description": "d",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}})
    }

    #[test]
    fn custom_tools_become_functions_and_choices_map_to_the_neutral_ones() {
        let tools = json!([tool("get_weather"), {"type": "custom", "name": "get_time",
            "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}]);
        let r = decode(Some(&tools), None).unwrap().unwrap();
        assert_eq!(r.functions.len(), 2);
        assert_eq!(r.functions[0].description.as_deref(), Some("d"));
        assert_eq!(r.functions[1].description, None);
        assert_eq!(
            r.functions[1].parameters,
            *json!({"type": "object"}).as_object().unwrap()
        );
        assert_eq!(r.choice, ToolChoice::Auto);
        for (choice, want) in [
            (
                json!({"type": "auto", "disable_parallel_tool_use": true}),
                ToolChoice::Auto,
            ),
            (json!({"type": "any"}), ToolChoice::Required),
            (
                json!({"type": "tool", "name": "get_time"}),
                ToolChoice::Named("get_time".into()),
            ),
        ] {
            let r = decode(Some(&tools), Some(&choice)).unwrap().unwrap();
            assert_eq!(r.choice, want, "{choice}");
        }
        assert_eq!(
            decode(Some(&tools), Some(&json!({"type": "none"}))).unwrap(),
            None
        );
        assert_eq!(decode(None, None).unwrap(), None);
        assert_eq!(
            decode(Some(&json!([])), Some(&json!({"type": "auto"}))).unwrap(),
            None
        );
    }

    #[test]
    fn bad_tools_and_choices_are_named() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for (tools, choice, param, says) in [
            (json!({}), None, "tools", "valid list"),
            (json!([1]), None, "tools.0", "object"),
            (
                json!([{"type": "web_search_20250305", "name": "web_search"}]),
                None,
                "tools.0",
                "server tool web_search_20250305 is not supported",
            ),
            (
                json!([tool("a"), {"type": "bash_20250124", "name": "bash"}]),
                None,
                "tools.1",
                "bash_20250124",
            ),
            (
                json!([{"input_schema": {}}]),
                None,
                "tools.0.name",
                "Field required",
            ),
            (
                json!([tool("has space")]),
                None,
                "tools.0.name",
                "characters",
            ),
            (json!([tool(&long)]), None, "tools.0.name", "characters"),
            (
                json!([tool("a"), tool("a")]),
                None,
                "tools.1.name",
                "unique",
            ),
            (
                json!([{"name": "a"}]),
                None,
                "tools.0.input_schema",
                "Field required",
            ),
            (
                json!([{"name": "a", "input_schema": "x"}]),
                None,
                "tools.0.input_schema",
                "object",
            ),
            (
                json!([tool("a")]),
                Some(json!("auto")),
                "tool_choice",
                "object",
            ),
            (
                json!([tool("a")]),
                Some(json!({"type": "sometimes"})),
                "tool_choice.type",
                "'any'",
            ),
            (
                json!([tool("a")]),
                Some(json!({"type": "tool"})),
                "tool_choice.name",
                "Field required",
            ),
            (
                json!([tool("a")]),
                Some(json!({"type": "tool", "name": "b"})),
                "tool_choice.name",
                "not among",
            ),
            (
                json!([]),
                Some(json!({"type": "any"})),
                "tool_choice",
                "needs tools",
            ),
        ] {
            let e = decode(Some(&tools), choice.as_ref()).unwrap_err();
            assert_eq!(e.param, param, "{tools} {choice:?}: {e}");
            assert!(e.message.contains(says), "{e}");
        }
    }
}
