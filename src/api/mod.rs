//! API surfaces other than OpenAI's: Anthropic's Messages API.

pub mod messages;
