//! Response, stream-chunk, model-list and error shapes, exactly as OpenAI's.

use serde::Serialize;

/// Seconds since the Unix epoch (`created`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A fresh `chatcmpl-...` id.
pub fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

/// Token usage, counted the way OpenAI counts it: `prompt_tokens` is every input token
/// (plain, written to and read from the prompt cache); the cache reads are also reported as
/// `prompt_tokens_details.cached_tokens`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Input tokens (including cache reads and writes).
    pub prompt_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Their sum.
    pub total_tokens: u64,
    /// The part of the input read from the prompt cache.
    pub prompt_tokens_details: PromptTokensDetails,
    /// Breakdown of the output (Claude reports none: predictions and audio are not offered).
    pub completion_tokens_details: CompletionTokensDetails,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PromptTokensDetails {
    /// Input tokens read from the prompt cache (the CLI's `cache_read_input_tokens`).
    pub cached_tokens: u64,
    /// Always 0.
    pub audio_tokens: u64,
}

/// `usage.completion_tokens_details`. `reasoning_tokens` is left out: the CLI counts the
/// model's thinking in its output tokens and gives no separate count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CompletionTokensDetails {
    /// Always 0.
    pub audio_tokens: u64,
    /// Always 0.
    pub accepted_prediction_tokens: u64,
    /// Always 0.
    pub rejected_prediction_tokens: u64,
}

impl From<claude_pool_actors::Usage> for Usage {
    fn from(u: claude_pool_actors::Usage) -> Self {
        let prompt = u.prompt_tokens();
        Self {
            prompt_tokens: prompt,
            completion_tokens: u.output_tokens,
            total_tokens: prompt + u.output_tokens,
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: u.cache_read_input_tokens,
                audio_tokens: 0,
            },
            completion_tokens_details: CompletionTokensDetails::default(),
        }
    }
}

/// A non-streamed completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatCompletion {
    /// `chatcmpl-...`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Creation time.
    pub created: u64,
    /// The model name the client asked for.
    pub model: String,
    /// Exactly one choice.
    pub choices: Vec<Choice>,
    /// Token usage.
    pub usage: Usage,
    /// Always null.
    pub system_fingerprint: Option<String>,
}

impl ChatCompletion {
    /// A completion of one assistant message, created now.
    pub fn answer(
        id: String,
        model: String,
        message: ResponseMessage,
        finish_reason: &'static str,
        usage: Usage,
    ) -> Self {
        Self {
            id,
            object: "chat.completion",
            created: unix_now(),
            model,
            choices: vec![Choice {
                index: 0,
                message,
                finish_reason,
                logprobs: None,
            }],
            usage,
            system_fingerprint: None,
        }
    }
}

/// A choice of a completion.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: ResponseMessage,
    /// `stop` or `length`.
    pub finish_reason: &'static str,
    /// Always null.
    pub logprobs: Option<()>,
}

/// The assistant's message.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The text (null when the answer is only tool calls).
    pub content: Option<String>,
    /// The model's thinking (LiteLLM's and DeepSeek's field); absent when it did not think.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Always null.
    pub refusal: Option<String>,
    /// The tools the model calls (function calling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<serde_json::Value>>,
}

/// One streamed chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChunk<'a> {
    /// Same id for every chunk of a completion.
    pub id: &'a str,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    /// Creation time.
    pub created: u64,
    /// The model name the client asked for.
    pub model: &'a str,
    /// One choice, or none in the final usage chunk.
    pub choices: Vec<ChunkChoice<'a>>,
    /// Present (and non-null) only in the final usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Always null.
    pub system_fingerprint: Option<String>,
}

/// A choice of a chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkChoice<'a> {
    /// Always 0.
    pub index: u32,
    /// The increment.
    pub delta: Delta<'a>,
    /// Set on the last content chunk.
    pub finish_reason: Option<&'static str>,
    /// Always null.
    pub logprobs: Option<()>,
}

/// A chunk's increment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delta<'a> {
    /// `assistant` in the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// A piece of text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    /// A piece of the model's thinking (sent before the text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<&'a str>,
    /// Tool calls (each with its `index`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<serde_json::Value>>,
}

impl<'a> ChatChunk<'a> {
    /// A chunk with one choice.
    pub fn delta(
        id: &'a str,
        created: u64,
        model: &'a str,
        delta: Delta<'a>,
        finish: Option<&'static str>,
    ) -> Self {
        Self {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                logprobs: None,
            }],
            usage: None,
            system_fingerprint: None,
        }
    }

    /// The final usage chunk (`stream_options.include_usage`).
    pub fn usage(id: &'a str, created: u64, model: &'a str, usage: Usage) -> Self {
        Self {
            id,
            object: "chat.completion.chunk",
            created,
            model,
            choices: Vec::new(),
            usage: Some(usage),
            system_fingerprint: None,
        }
    }
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<Model>,
}

/// One model.
#[derive(Debug, Clone, Serialize)]
pub struct Model {
    /// Name or alias.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// A fixed timestamp.
    pub created: u64,
    /// `anthropic` for Claude names, `claude-pool` for aliases.
    pub owned_by: &'static str,
}

/// The error envelope: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The error body.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// Human-readable message.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, ...
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The offending parameter, if any.
    pub param: Option<String>,
    /// A machine-readable code.
    pub code: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::ChatRequest;

    #[test]
    fn chunk_and_completion_shapes_match_openai() {
        let c = ChatChunk::delta(
            "chatcmpl-1",
            7,
            "gpt-4",
            Delta {
                role: Some("assistant"),
                content: Some(""),
                ..Delta::default()
            },
            None,
        );
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        assert_eq!(v["choices"][0]["delta"]["role"], "assistant");
        assert!(v["choices"][0]["finish_reason"].is_null());
        assert!(v.get("usage").is_none());
        let u = ChatChunk::usage("chatcmpl-1", 7, "gpt-4", Usage::default());
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(v["choices"].as_array().unwrap().len(), 0);
        assert_eq!(v["usage"]["total_tokens"], 0);
    }

    #[test]
    fn reasoning_content_is_absent_unless_the_model_thought() {
        let message = |reasoning: Option<&str>| ResponseMessage {
            role: "assistant",
            content: Some("hi".into()),
            reasoning_content: reasoning.map(str::to_owned),
            refusal: None,
            tool_calls: None,
        };
        let v = serde_json::to_value(message(None)).unwrap();
        assert!(v.get("reasoning_content").is_none(), "{v}");
        let v = serde_json::to_value(message(Some("hm"))).unwrap();
        assert_eq!(v["reasoning_content"], "hm");
        let thinking = ChatChunk::delta(
            "chatcmpl-1",
            7,
            "gpt-4",
            Delta {
                reasoning_content: Some("hm"),
                ..Delta::default()
            },
            None,
        );
        let v = serde_json::to_value(&thinking).unwrap();
        assert_eq!(
            v["choices"][0]["delta"],
            serde_json::json!({"reasoning_content": "hm"})
        );
        let text = ChatChunk::delta(
            "chatcmpl-1",
            7,
            "gpt-4",
            Delta {
                content: Some("hi"),
                ..Delta::default()
            },
            None,
        );
        let v = serde_json::to_value(&text).unwrap();
        assert_eq!(
            v["choices"][0]["delta"],
            serde_json::json!({"content": "hi"})
        );
        // No reasoning token count is made up.
        let v = serde_json::to_value(Usage::default()).unwrap();
        assert!(
            v["completion_tokens_details"]
                .get("reasoning_tokens")
                .is_none()
        );
    }

    #[test]
    fn usage_counts_every_input_token_and_reports_cache_reads() {
        let u = Usage::from(claude_pool_actors::Usage {
            input_tokens: 3,
            output_tokens: 12,
            cache_creation_input_tokens: 100,
            cache_read_input_tokens: 2000,
        });
        let v = serde_json::to_value(u).unwrap();
        assert_eq!(v["prompt_tokens"], 2103);
        assert_eq!(v["completion_tokens"], 12);
        assert_eq!(v["total_tokens"], 2115);
        assert_eq!(v["prompt_tokens_details"]["cached_tokens"], 2000);
        assert_eq!(
            v["completion_tokens_details"]["accepted_prediction_tokens"],
            0
        );
    }

    #[test]
    fn request_parses_openai_sdk_bodies() {
        let body = r#"{"model":"gpt-4","messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
            "stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"top_p":1,
            "max_tokens":50,"user":"u1","seed":3}"#;
        let r: ChatRequest = serde_json::from_str(body).unwrap();
        assert!(r.stream && r.include_usage());
        assert_eq!(
            r.messages[1].content.as_ref().unwrap().text().unwrap(),
            "a\nb"
        );
        assert!(r.unsupported().is_none());
        let bad: ChatRequest =
            serde_json::from_str(r#"{"model":"m","messages":[],"n":2}"#).unwrap();
        assert_eq!(bad.unsupported().unwrap().0, "n");
        let img: ChatRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            img.messages[0].content.as_ref().unwrap().text(),
            Err("image_url")
        );
        // Roles are read as sent and checked by `Role::parse` (a message naming them).
        let wizard: ChatRequest =
            serde_json::from_str(r#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#)
                .unwrap();
        assert!(crate::openai::Role::parse(&wizard.messages[0].role).is_err());
    }
}
