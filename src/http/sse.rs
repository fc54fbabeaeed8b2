//! A started turn as Server-Sent Events, whatever API renders its events: the pump that reads
//! the turn's events, has the surface render them, writes everything ready in one frame (a
//! burst of token deltas costs one write, not one per token), sends the surface's keep-alive
//! after `server.sse_keepalive` of silence, and parks the turn once a response ends with the
//! model's calls of the client's tools. Every event is noted for the gateway (claim, time to
//! first token) before the surface renders it. Dropping the body (client gone) drops the turn's
//! stream, which makes the pool interrupt the turn.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use claude_pool_actors::{ToolCall, TurnEvent};
use futures_util::stream;

use crate::state::App;
use crate::turns::{Started, or_ended};

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
    /// Renders one event (a stream that ended early reads as a failure). The pump has noted
    /// it ([`Started::note`]) and entered the turn's span.
    fn on_event(&mut self, ev: TurnEvent);
    /// Writes what keeps a silent stream open.
    fn keepalive(&mut self);
    /// The turn, for parking it.
    fn into_turn(self) -> Started;
    /// Runs once when the frame is done, before its last bytes go out (the Responses API
    /// stores a completed response here, so the client's next request finds it).
    fn before_end(&mut self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// Notes `ev` and has the surface render it inside the turn's span (whose end is its last
/// exit: the turn's last event).
fn deliver<R: TurnRenderer>(app: &App, st: &mut R, ev: TurnEvent) {
    let span = st.turn().span.clone();
    let _in_turn = span.entered();
    st.turn().note(app, &ev);
    st.on_event(ev);
}

/// The pump's state: the surface's renderer, and whether its end ran.
struct Pump<R> {
    app: Arc<App>,
    renderer: R,
    ended: bool,
}

/// The SSE response of `st`, whose opening events are already in its frame, with the turn's
/// `first` event when it came before the head was sent.
pub(crate) fn respond<R: TurnRenderer>(app: Arc<App>, mut st: R) -> Response {
    let keepalive = app.server.sse_keepalive;
    if let Some(ev) = st.turn().first.take() {
        deliver(&app, &mut st, ev);
    }
    let pump = Pump {
        app,
        renderer: st,
        ended: false,
    };
    let body = stream::unfold(Some(pump), move |pump| async move {
        let mut p = pump?;
        loop {
            if p.renderer.frame().done && !p.ended {
                p.ended = true;
                p.renderer.before_end().await;
            }
            if let Some(calls) = p.renderer.frame().park.take() {
                // The response ends here; the turn waits for the tool results.
                let frame = Bytes::from(std::mem::take(&mut p.renderer.frame().bytes));
                let turn = p.renderer.into_turn();
                crate::turns::tool_parking::park(&p.app, turn, &calls);
                return Some((Ok::<_, Infallible>(frame), None));
            }
            if !p.renderer.frame().bytes.is_empty() {
                let frame = Bytes::from(std::mem::take(&mut p.renderer.frame().bytes));
                return Some((Ok::<_, Infallible>(frame), Some(p)));
            }
            if p.renderer.frame().done {
                return None;
            }
            let waited = tokio::time::timeout(keepalive, p.renderer.turn().events.recv()).await;
            match waited {
                Ok(ev) => {
                    deliver(&p.app, &mut p.renderer, or_ended(ev));
                    // Everything already queued goes out in the same frame.
                    while !p.renderer.frame().done {
                        match p.renderer.turn().events.try_recv() {
                            Some(ev) => deliver(&p.app, &mut p.renderer, ev),
                            None => break,
                        }
                    }
                }
                Err(_) => p.renderer.keepalive(),
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
