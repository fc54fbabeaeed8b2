//! Headers every API surface shares: the session a response belongs to.

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

/// The session header, on requests and every response.
pub(crate) const SESSION_HEADER: &str = "x-session-id";

/// Puts the session header on a response.
pub(crate) fn with_session(mut resp: Response, session: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(session) {
        resp.headers_mut()
            .insert(HeaderName::from_static(SESSION_HEADER), v);
    }
    resp
}
