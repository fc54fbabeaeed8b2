//! The API surfaces. Each decodes its wire format into the neutral turn request of
//! [`crate::turns`] and renders the turn's events back into its wire format.
//!
//! | module | surface |
//! |---|---|
//! | [`attachments`] | images and documents checked and turned into neutral content blocks, for every surface |
//! | [`chat`] | OpenAI chat completions (`POST /v1/chat/completions`), JSON and SSE |
//! | [`responses`] | the OpenAI Responses API (`/v1/responses`), with stored responses |
//! | [`sessions`] | the sessions API (`/api/v1/sessions`) |
//! | [`key_api`] | the LiteLLM-compatible key and spend API (`/key/*`, `/spend/*`), master key only |
//! | [`messages`] | Anthropic's Messages API (`POST /v1/messages`, `count_tokens`, models in its shape) |
//! | `reasoning` | the model's thinking as the OpenAI surfaces show it (`reasoning_content`, `reasoning` items) |

pub mod attachments;
pub mod chat;
pub mod key_api;
pub mod messages;
pub(crate) mod reasoning;
pub mod responses;
pub mod sessions;
