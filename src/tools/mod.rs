//! OpenAI function calling on warm workers, through an MCP bridge.
//!
//! | module | responsibility |
//! |---|---|
//! | [`wire`] | `tools`, `tool_choice`, `tool_calls` and `tool` messages (pure) |
//! | [`format`] | `response_format`: the answer as an output function's JSON arguments, checked against the schema |
//! | [`bridge`] | parked turns and the exchange of calls and results between a worker and a client |
//! | `mcp` | the MCP server workers call (rmcp, streamable HTTP, loopback) |
//!
//! A request with `tools` runs on workers started for its function set, with the gateway's
//! MCP server in their `--mcp-config` (built-in tools stay off). The model's calls end the
//! client's response with `tool_calls`; the CLI turn waits, parked, holding its worker; the
//! request that brings the `tool` results continues the same turn (no replay). See
//! docs/conversations.md.

pub mod bridge;
pub mod format;
mod mcp;
pub mod wire;

use std::sync::Arc;

use claude_pool_actors::ExternalTools;
use serde_json::json;

pub use bridge::{Bridge, ContinueError, Link, Outcome, Parked};

/// The bridge with its MCP endpoint.
pub struct ToolBridge<T> {
    /// Registries and parked turns.
    pub bridge: Arc<Bridge<T>>,
    /// `http://127.0.0.1:<port>`, or why the endpoint could not start.
    base: Result<String, String>,
}

impl<T> std::fmt::Debug for ToolBridge<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolBridge")
            .field("base", &self.base)
            .finish()
    }
}

impl<T: Send + 'static> ToolBridge<T> {
    /// Starts the MCP endpoint (needs a Tokio runtime); parked turns wait `timeout` for their
    /// results.
    pub fn start(timeout: std::time::Duration) -> Self {
        let bridge = Arc::new(Bridge::new(timeout));
        let base = match mcp::serve(bridge.clone()) {
            Ok(addr) => Ok(format!("http://{addr}")),
            Err(e) => {
                tracing::error!(error = %e, "the tool bridge cannot listen: requests with tools will fail");
                Err(e.to_string())
            }
        };
        Self { bridge, base }
    }

    /// The workers' external tools for a request's functions (registering the set); `Err`
    /// when the MCP endpoint is not running.
    pub fn external_tools(&self, request: &wire::ToolRequest) -> Result<ExternalTools, String> {
        let base = self.base.as_ref().map_err(Clone::clone)?;
        let id = request.set_id();
        self.bridge.add_set(&id, request.functions.clone());
        let config = json!({"mcpServers": {wire::SERVER_NAME: {
            "type": "http",
            "url": format!("{base}/mcp/{id}"),
            "headers": {"Authorization": format!("Bearer ${{{}}}", claude_pool_actors::child::TOOL_TOKEN_ENV)},
        }}});
        Ok(ExternalTools {
            server: wire::SERVER_NAME.into(),
            config: config.to_string().into(),
        })
    }
}
