//! The OpenAI Responses API (`/v1/responses`) on the same pool, sessions, keys, limits and
//! spend as chat completions: [`wire`] holds the request and response shapes (pure),
//! [`output`] the response's output items (the model's thinking as a `reasoning` item, then
//! the message) and their stream events (pure), [`store`] the responses kept for retrieval
//! and `previous_response_id`, `routes` the handlers, `stream` a response's typed
//! Server-Sent Events and `finish` a finished response's outcome and storing.

mod finish;
pub mod output;
pub(crate) mod routes;
pub mod store;
pub(crate) mod stream;
pub mod wire;

pub use store::ResponseStore;
