//! Who is calling the console: a signed-in operator (the session cookie; for anything but a
//! read, also the session's `X-CSRF-Token`) or a script with the master key as a bearer token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};

use super::Console;
use super::session::{COOKIE, same_token};
use crate::auth::presented_key;
use crate::error::ApiError;

/// The CSRF header.
pub(super) const CSRF_HEADER: &str = "x-csrf-token";

/// A value of the request's cookie `name`.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A signed-in browser session, if the request has one (pages render for both cases).
pub(super) struct Viewer {
    /// The session's cookie value and CSRF token.
    pub(super) session: Option<(String, String)>,
}

impl FromRequestParts<Console> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, Self::Rejection> {
        let session = cookie(&parts.headers, COOKIE)
            .and_then(|id| c.sessions.csrf_of(id).map(|csrf| (id.to_owned(), csrf)));
        Ok(Viewer { session })
    }
}

/// An authorised caller of the console's API.
pub(super) enum Operator {
    /// A signed-in browser.
    Session,
    /// The master key.
    MasterKey,
}

impl FromRequestParts<Console> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, ApiError> {
        if let Some(key) = presented_key(&parts.headers) {
            return if c.app.auth.is_master_key(key) {
                Ok(Operator::MasterKey)
            } else {
                Err(ApiError::SignInRequired)
            };
        }
        let csrf = cookie(&parts.headers, COOKIE)
            .and_then(|id| c.sessions.csrf_of(id))
            .ok_or(ApiError::SignInRequired)?;
        if matches!(parts.method, Method::GET | Method::HEAD) {
            return Ok(Operator::Session);
        }
        let given = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if given.is_empty() || !same_token(given, &csrf) {
            return Err(ApiError::Forbidden {
                code: "csrf_token_invalid",
                message: "missing or wrong X-CSRF-Token header: send the csrf-token of the page's <meta name=\"csrf-token\">".into(),
            });
        }
        Ok(Operator::Session)
    }
}
