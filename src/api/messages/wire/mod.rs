//! The Messages API on the wire (pure: no I/O, no handlers, no state).
//!
//! | module | what |
//! |---|---|
//! | [`request`] | a request body → [`request::Decoded`]: messages as neutral blocks, tools, session hint |
//! | [`content`] | content blocks (text, image, document, tool use and result) and their checks |
//! | [`tools`] | `tools` and `tool_choice` → the neutral [`crate::tools::wire::ToolRequest`] |
//! | [`render`] | a complete `message` object, stop reasons, message ids |
//! | [`stream`] | [`stream::StreamEncoder`]: the named server-sent events in the API's order |
//! | [`errors`] | the gateway's OpenAI error envelope → Anthropic's error envelope and status |
//! | [`count_tokens`] | the estimate `POST /v1/messages/count_tokens` answers |
//! | [`models`] | `GET /v1/models` and one model in Anthropic's shape |
//!
//! Every request error is a [`WireError`] naming the part at fault the way the API does
//! (`messages.0.content.1.source.data: invalid base64`); it is answered as a 400
//! `invalid_request_error` whose message is the error's `Display`.

mod check;
pub mod content;
pub mod count_tokens;
pub mod errors;
pub mod models;
pub mod render;
pub mod request;
pub mod stream;
pub mod tools;

/// A request the gateway cannot take: the part at fault (`param`, a dotted path such as
/// `messages.0.content.1.source.data`; empty for the body as a whole) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", joined(.param, .message))]
pub struct WireError {
    /// The part at fault.
    pub param: String,
    /// What is wrong with it.
    pub message: String,
}

impl WireError {
    /// An error about `param`.
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// `param: message`, or the message alone when no part is named.
fn joined(param: &str, message: &str) -> String {
    if param.is_empty() {
        message.to_owned()
    } else {
        format!("{param}: {message}")
    }
}
