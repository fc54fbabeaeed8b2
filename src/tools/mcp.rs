//! The gateway's MCP server (rmcp, streamable HTTP, loopback only): workers with tools list
//! their function set at `/mcp/{set id}` and call a function with their own token as a
//! bearer; a call is answered with the client's result through the turn's [`Link`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use claude_pool_actors::content::{Block, Source};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
    Implementation, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::bridge::Bridge;
use super::keeper::HeldTurn;
use super::link::Link;

/// The MCP handler of one worker connection.
pub(super) struct McpServer<T: HeldTurn> {
    bridge: Arc<Bridge<T>>,
}

impl<T: HeldTurn> Clone for McpServer<T> {
    fn clone(&self) -> Self {
        Self {
            bridge: self.bridge.clone(),
        }
    }
}

fn parts(ctx: &RequestContext<RoleServer>) -> Option<&axum::http::request::Parts> {
    ctx.extensions.get::<axum::http::request::Parts>()
}

impl<T: HeldTurn> McpServer<T> {
    fn set_id(ctx: &RequestContext<RoleServer>) -> Option<String> {
        let path = parts(ctx)?.uri.path();
        path.strip_prefix("/mcp/").map(str::to_owned)
    }

    fn link(&self, ctx: &RequestContext<RoleServer>) -> Option<Arc<Link>> {
        let auth = parts(ctx)?.headers.get(axum::http::header::AUTHORIZATION)?;
        let token = auth.to_str().ok()?.strip_prefix("Bearer ")?;
        self.bridge.link_of(token)
    }
}

impl<T: HeldTurn> rmcp::ServerHandler for McpServer<T> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("claude-pool", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let set = Self::set_id(&ctx)
            .and_then(|id| self.bridge.set(&id))
            .ok_or_else(|| ErrorData::invalid_request("unknown function set", None))?;
        let tools = set
            .iter()
            .map(|f| {
                Tool::new(
                    f.name.clone(),
                    f.description.clone().unwrap_or_default(),
                    Arc::new(f.parameters.clone()),
                )
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let link = self.link(&ctx).ok_or_else(|| {
            ErrorData::invalid_request("no turn is running with this token", None)
        })?;
        let id = request
            .meta
            .as_ref()
            .and_then(|m| m.get("claudecode/toolUseId"))
            .and_then(|v| v.as_str())
            .or_else(|| {
                ctx.meta
                    .get("claudecode/toolUseId")
                    .and_then(|v| v.as_str())
            })
            .map(str::to_owned)
            .ok_or_else(|| ErrorData::invalid_request("the call carries no tool use id", None))?;
        let outcome = link.ask(&id).await;
        let content = result_content(outcome.text, &outcome.attachments);
        Ok(CallToolResponse::Complete(if outcome.is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        }))
    }
}

/// A result's MCP content: its text, then each base64 image as an image (the CLI gives the
/// model image results as images); any other attachment is named in a text block.
fn result_content(text: String, attachments: &[Block]) -> Vec<ContentBlock> {
    let mut content = vec![ContentBlock::text(text)];
    for a in attachments {
        content.push(match a {
            Block::Image(Source::Base64 { media_type, data }) => {
                ContentBlock::image(data.clone(), media_type.clone())
            }
            other => ContentBlock::text(other.summary()),
        });
    }
    content
}

/// Serves the MCP endpoint on a loopback port; returns its address.
pub(super) fn serve<T: HeldTurn>(bridge: Arc<Bridge<T>>) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let handler = McpServer { bridge };
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = Router::new().route_service("/mcp/{set}", service);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the tool bridge's MCP endpoint stopped");
        }
    });
    Ok(addr)
}
