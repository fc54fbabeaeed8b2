//! Function calling on warm workers, through an MCP bridge.
//!
//! | module | responsibility |
//! |---|---|
//! | [`request`] | the functions a turn offers, `tool_choice`, the output function; whatever API they came from (pure) |
//! | [`wire`] | OpenAI's `tools`, `tool_choice`, `tool_calls` and `tool` messages (pure) |
//! | [`format`] | `response_format`: the answer as an output function's JSON arguments, checked against the schema |
//! | [`link`] | where a running turn's MCP calls meet the client's results |
//! | [`bridge`] | function sets, links, and the registry of parked turns |
//! | [`parking`] | parked turns' states and the decisions about them: who gives a worker up, a key's limit (pure) |
//! | `keeper` | the task that runs one parked turn: results, release, the CLI moving on, deadline |
//! | `relief` | gives parked turns' workers to waiting turns when the pool is full |
//! | `mcp` | the MCP server workers call (rmcp, streamable HTTP, loopback) |
//!
//! A request with `tools` runs on workers started for its function set, with the gateway's
//! MCP server in their `--mcp-config` (built-in tools stay off). The model's calls end the
//! client's response with `tool_calls`; the CLI turn waits, parked, holding its worker; the
//! request that brings the `tool` results continues the same turn (no replay). A parked turn
//! gives its worker up when turns wait for one (after `pool.parked_turn_grace`); its results
//! then continue the conversation as the next message. See docs/conversations.md.

pub mod bridge;
pub mod format;
mod keeper;
pub mod link;
mod mcp;
pub mod parking;
mod relief;
pub mod request;
pub mod wire;

use std::sync::Arc;

use claude_pool_actors::{ExternalTools, PoolSnapshot};
use serde_json::json;
use tokio::sync::watch;

pub use bridge::{Bridge, ParkingRules};
pub use keeper::{Continuation, ContinueError, HeldTurn};
pub use link::{Link, Outcome};
pub use parking::ParkInfo;

/// The bridge with its MCP endpoint.
pub struct ToolBridge<T: HeldTurn> {
    /// Registries and parked turns.
    pub bridge: Arc<Bridge<T>>,
    /// `http://127.0.0.1:<port>`, or why the endpoint could not start.
    base: Result<String, String>,
}

impl<T: HeldTurn> std::fmt::Debug for ToolBridge<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolBridge")
            .field("base", &self.base)
            .finish()
    }
}

impl<T: HeldTurn> ToolBridge<T> {
    /// Starts the MCP endpoint (needs a Tokio runtime) and the task that gives parked turns'
    /// workers to waiting turns (following the pool's `snapshots`).
    pub fn start(rules: ParkingRules, snapshots: watch::Receiver<PoolSnapshot>) -> Self {
        let bridge = Arc::new(Bridge::new(rules));
        let base = match mcp::serve(bridge.clone()) {
            Ok(addr) => Ok(format!("http://{addr}")),
            Err(e) => {
                tracing::error!(error = %e, "the tool bridge cannot listen: requests with tools will fail");
                Err(e.to_string())
            }
        };
        relief::spawn(Arc::downgrade(&bridge), snapshots);
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
