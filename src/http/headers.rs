//! Headers every API surface shares: the session a response belongs to.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;

use crate::error::ApiError;

/// The session header, on requests and every response.
pub(crate) const SESSION_HEADER: &str = "x-session-id";

/// The session id a request names in header `name` (`None` without it); a value that is not
/// ASCII is a 400 about `param`.
pub(crate) fn session_in(
    headers: &HeaderMap,
    name: &str,
    param: &str,
) -> Result<Option<String>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::bad(param, "the session id must be ASCII"))
        })
        .transpose()
}

/// Puts the session header on a response.
pub(crate) fn with_session(mut resp: Response, session: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(session) {
        resp.headers_mut()
            .insert(HeaderName::from_static(SESSION_HEADER), v);
    }
    resp
}
