//! OpenAI chat completions: the request decoded into a neutral turn (`handler`, `messages`),
//! the started turn rendered as one `chat.completion` (`render`) or as `chat.completion.chunk`
//! events (`stream`).

pub(crate) mod handler;
pub(crate) mod messages;
pub(crate) mod render;
pub(crate) mod stream;
