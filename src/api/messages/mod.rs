//! Anthropic's Messages API: `POST /v1/messages` (JSON and named server-sent events),
//! `POST /v1/messages/count_tokens`, the Anthropic shape of `GET /v1/models`, Claude Code's
//! probes, and Anthropic's error envelope on all of them.
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | the API's shapes (pure): request decoding, the `message`, stream events, errors |
//! | `handler` | a request → the neutral turn request (history, tool results, session pin) |
//! | `render` | a started turn → one `message` |
//! | `outcome` | what both renderings share: the stop reason |
//! | `stream` | a started turn → named server-sent events |
//! | `edge` | the error envelope and `request-id`, `count_tokens`, models, probes |

pub(crate) mod edge;
pub(crate) mod handler;
mod outcome;
mod render;
mod stream;
pub mod wire;
