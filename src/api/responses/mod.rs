//! The OpenAI Responses API (`/v1/responses`) on the same pool, sessions, keys, limits and
//! spend as chat completions: [`wire`] holds the request, response and stream-event shapes
//! (pure), [`store`] the responses kept for retrieval and `previous_response_id`, and `routes`
//! the handlers.

pub(crate) mod routes;
pub mod store;
pub mod wire;

pub use store::ResponseStore;
