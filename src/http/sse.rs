//! A started turn as Server-Sent Events, whatever API renders its events: the pump that reads
//! the turn's events, has the surface render them, writes everything ready in one frame (a
//! burst of token deltas costs one write, not one per token), sends the surface's keep-alive
//! after `server.sse_keepalive` of silence, and parks the turn once a response ends with the
//! model's calls of the client's tools. Dropping the body (client gone) drops the turn's
//! stream, which makes the pool interrupt the turn.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{ToolCall, TurnEvent};
use futures_util::stream;

use crate::state::App;
use crate::turns::Started;

/// What the surface has written and decided so far.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    /// Encoded events not yet handed to the connection.
    pub bytes: Vec<u8>,
    /// The response ends once these bytes are out.
    pub done: bool,
    /// The answer ended with these calls of the client's tools: the turn is parked for their
    /// results once the response ends.
    pub park: Option<Vec<ToolCall>>,
}

/// A surface's rendering of one streamed turn.
pub(crate) trait TurnRenderer: Send + Sized + 'static {
    /// The turn.
    fn turn(&mut self) -> &mut Started;
    /// What is written so far.
    fn frame(&mut self) -> &mut Frame;
    /// Renders one event (`None`: the turn's stream ended).
    fn on_event(&mut self, ev: Option<TurnEvent>);
    /// Writes what keeps a silent stream open.
    fn keepalive(&mut self);
    /// The state and the turn, for parking it.
    fn into_turn(self) -> (Arc<App>, Started);
}

/// The SSE response of `st`, whose opening events are already in its frame, with the turn's
/// `first` event when it came before the head was sent.
pub(crate) fn respond<R: TurnRenderer>(mut st: R, keepalive: Duration) -> Response {
    if let Some(ev) = st.turn().first.take() {
        st.on_event(Some(ev));
    }
    let body = stream::unfold(Some(st), move |st| async move {
        let mut st = st?;
        loop {
            if let Some(calls) = st.frame().park.take() {
                // The response ends here; the turn waits for the tool results.
                let frame = Bytes::from(std::mem::take(&mut st.frame().bytes));
                let (app, turn) = st.into_turn();
                crate::turns::tool_parking::park(&app, turn, &calls);
                return Some((Ok::<_, Infallible>(frame), None));
            }
            if !st.frame().bytes.is_empty() {
                let frame = Bytes::from(std::mem::take(&mut st.frame().bytes));
                return Some((Ok::<_, Infallible>(frame), Some(st)));
            }
            if st.frame().done {
                return None;
            }
            let waited = tokio::time::timeout(keepalive, st.turn().events.recv()).await;
            match waited {
                Ok(ev) => {
                    st.on_event(ev);
                    while !st.frame().done {
                        match st.turn().events.try_recv() {
                            Some(ev) => st.on_event(Some(ev)),
                            None => break,
                        }
                    }
                }
                Err(_) => st.keepalive(),
            }
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
