//! OpenAI wire types (pure serde data, no I/O): the chat-completions request, the response and
//! stream-chunk shapes, the model list, and the error envelope.

mod request;
mod response;

pub use request::{ChatMessage, ChatRequest, Content, ContentPart, Role, Stop, StreamOptions};
pub use response::{
    ChatChunk, ChatCompletion, Choice, ChunkChoice, Delta, ErrorBody, ErrorEnvelope, Model,
    ModelList, ResponseMessage, Usage, completion_id, unix_now,
};
