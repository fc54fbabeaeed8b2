//! The functions a turn offers the model, whatever API they came from: their names, schemas
//! and `tool_choice`, the output function of a structured answer, and what the turn's message
//! says about them (pure).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::format::{OUTPUT_FUNCTION, OutputFormat};
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
    pub output: Option<OutputFormat>,
}

/// The tools of a request with its `response_format`: the client's functions (if any) and the
/// output function.
pub fn with_output(
    tools: Option<ToolRequest>,
    output: Option<OutputFormat>,
) -> Result<Option<ToolRequest>, ApiError> {
    let Some(output) = output else {
        return Ok(tools);
    };
    let mut request = tools.unwrap_or(ToolRequest {
        functions: Vec::new(),
        choice: ToolChoice::Auto,
        output: None,
    });
    if request.functions.iter().any(|f| f.name == OUTPUT_FUNCTION) {
        return Err(ApiError::bad(
            "tools",
            format!(
                "`{OUTPUT_FUNCTION}` is the gateway's own function for response_format: rename yours"
            ),
        ));
    }
    request.functions.push(output_function(&output));
    request.output = Some(output);
    Ok(Some(request))
}

/// The output function offered with the client's functions under a structured answer.
pub fn output_function(format: &OutputFormat) -> Function {
    debug_assert!(OUTPUT_FUNCTION.len() <= MAX_NAME_LEN);
    Function {
        name: OUTPUT_FUNCTION.to_owned(),
        description: Some(
            "Give your final answer as this function's arguments (a JSON object matching its schema)."
                .to_owned(),
        ),
        parameters: format.schema.as_object().cloned().unwrap_or_default(),
    }
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
        let output = self.output.as_ref().map(OutputFormat::instruction);
        match (choice, output) {
            (Some(c), Some(o)) => Some(format!("{c}\n{o}")),
            (c, o) => c.or(o),
        }
    }
}
