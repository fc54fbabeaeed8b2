//! Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`, the
//! Anthropic shape of `GET /v1/models`).

pub mod wire;
