//! The API surfaces. Each decodes its wire format into the neutral turn request of
//! [`crate::turns`] and renders the turn's events back into its wire format.
//!
//! | module | surface |
//! |---|---|
//! | [`chat`] | OpenAI chat completions (`POST /v1/chat/completions`), JSON and SSE |
//! | [`responses`] | the OpenAI Responses API (`/v1/responses`), with stored responses |
//! | [`sessions`] | the sessions API (`/api/v1/sessions`) |
//! | [`key_api`] | the LiteLLM-compatible key and spend API (`/key/*`, `/spend/*`), master key only |
//! | [`messages`] | Anthropic's Messages API (`POST /v1/messages`, `count_tokens`, models in its shape) |

pub mod chat;
pub mod key_api;
pub mod messages;
pub mod responses;
pub mod sessions;
