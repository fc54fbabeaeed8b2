//! OpenAI chat completions: the request decoded into a neutral turn (`handler`, `messages`),
//! the started turn rendered as one `chat.completion` or as `chat.completion.chunk` events
//! (`render`).

pub(crate) mod handler;
pub(crate) mod messages;
pub(crate) mod render;
