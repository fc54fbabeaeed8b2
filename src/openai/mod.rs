//! OpenAI wire types (pure serde data, no I/O): the chat-completions request, the response and
//! stream-chunk shapes, the model list, the error envelope, and the output limits (`max_tokens`, `stop`) applied to a
//! streamed answer.

mod output_limit;
mod request;
mod response;

pub use output_limit::{CHARS_PER_TOKEN, Cut, OutputLimit};
pub use request::{ChatMessage, ChatRequest, Content, ContentPart, Role, Stop, StreamOptions};
pub use response::{
    ChatChunk, ChatCompletion, Choice, ChunkChoice, Delta, ErrorBody, ErrorEnvelope, Model,
    ModelList, ResponseMessage, Usage, completion_id, unix_now,
};
