//! Deciding the reply to a `/v1/messages` request: a fault, a hang, or an [`Answer`]
//! (`echo: <last user text><attachments> [n=<messages>]`, tool calls, a thinking block),
//! with its usage. Pure: ids come from an [`Ids`] source the caller owns.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::magic::{self, Interrupt};
use crate::pyjson::PyValue;
use crate::request::{self, Invalid};

/// Where message and tool-call numbers come from (the server's counters).
pub trait Ids {
    /// The next tool call's number: its id is `toolu_fake_call<N>`.
    fn next_call(&mut self) -> u64;
    /// The next message's number: its id is `msg_fake<N, six digits>`.
    fn next_message(&mut self) -> u64;
}

/// What the API does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A fault or a hang chosen by a magic word.
    Interrupt(Interrupt),
    /// A message, streamed or not.
    Answer(Answer),
}

/// One assistant message.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// `msg_fake000001`, … (fresh per message: the CLI merges blocks that share one).
    pub id: String,
    /// The request's `model`, echoed (`claude-sonnet-5` when absent).
    pub model: Value,
    /// A thinking block before the text (`[[think]]` with thinking enabled).
    pub thought: Option<Thought>,
    /// The text or the tool calls.
    pub body: Body,
    /// `10 * messages + 2`.
    pub input_tokens: u64,
    /// `[[cost:N]]`, else a quarter of the answer's characters (at least 1).
    pub output_tokens: u64,
    /// `[[slow]]`: a pause before every text chunk.
    pub slow: bool,
}

/// The content after an optional thinking block.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// One text block (`stop_reason` `end_turn`).
    Text(String),
    /// One `tool_use` block per call (`stop_reason` `tool_use`).
    ToolCalls(Vec<ToolCall>),
}

/// A `tool_use` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: PyValue,
}

/// A thinking block: `thinking about: <text>`, signed `sig-fake-<8 hex of its SHA-256>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Thought {
    pub thinking: String,
    pub signature: String,
}

impl Answer {
    /// `end_turn` or `tool_use`.
    pub fn stop_reason(&self) -> &'static str {
        match self.body {
            Body::Text(_) => "end_turn",
            Body::ToolCalls(_) => "tool_use",
        }
    }
}

/// The words of a `[[long]]` answer: ` word0 word1 … word1999`.
fn long_tail() -> String {
    (0..2000).map(|i| format!(" word{i}")).collect()
}

/// The reply to the parsed body of a `/v1/messages` request.
pub fn reply(body: &Value, ids: &mut impl Ids) -> Result<Reply, Invalid> {
    let messages = request::messages(body)?;
    let mut text = request::last_user_text(messages);
    if let Some(interrupt) = magic::interrupt(&text) {
        return Ok(Reply::Interrupt(interrupt));
    }
    let results = request::tool_results(messages);
    if !results.is_empty() {
        let listed: Vec<String> = results.iter().map(|(id, t)| format!("{id}={t}")).collect();
        text = format!("tool results: {}", listed.join("; "));
    }
    let mut answer = format!(
        "echo: {text}{} [n={}]",
        request::attachments(messages)?,
        messages.len()
    );
    if magic::long(&text) {
        answer.push_str(&long_tail());
    }
    let output_tokens =
        magic::cost(&text).unwrap_or_else(|| (answer.chars().count() as u64 / 4).max(1));
    let mut calls = Vec::new();
    if results.is_empty() {
        if magic::wants_bash(&text) {
            calls.push(ToolCall {
                id: "toolu_fake1".to_owned(),
                name: "Bash".to_owned(),
                input: PyValue::Object(vec![(
                    "command".to_owned(),
                    PyValue::String("true".to_owned()),
                )]),
            });
        }
        for spec in magic::calls(&text, &request::offered_tools(body))? {
            let id = format!("toolu_fake_call{}", ids.next_call());
            calls.push(ToolCall {
                id,
                name: spec.name,
                input: spec.input,
            });
        }
    }
    let id = format!("msg_fake{:06}", ids.next_message());
    let thought = (calls.is_empty() && request::thinking_enabled(body) && magic::think(&text))
        .then(|| {
            let thinking = format!("thinking about: {text}");
            let signature = format!(
                "sig-fake-{}",
                request::hex8(&Sha256::digest(thinking.as_bytes()))
            );
            Thought {
                thinking,
                signature,
            }
        });
    let model = match body.get("model") {
        Some(m) => m.clone(),
        None => Value::from("claude-sonnet-5"),
    };
    Ok(Reply::Answer(Answer {
        id,
        model,
        thought,
        body: if calls.is_empty() {
            Body::Text(answer)
        } else {
            Body::ToolCalls(calls)
        },
        input_tokens: 10 * messages.len() as u64 + 2,
        output_tokens,
        slow: magic::slow(&text),
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// Counters starting at zero, as a fresh server's.
    #[derive(Default)]
    pub(crate) struct Counter {
        pub(crate) calls: u64,
        pub(crate) messages: u64,
    }

    impl Ids for Counter {
        fn next_call(&mut self) -> u64 {
            self.calls += 1;
            self.calls
        }
        fn next_message(&mut self) -> u64 {
            self.messages += 1;
            self.messages
        }
    }

    pub(crate) fn answer(body: Value, ids: &mut Counter) -> Answer {
        match reply(&body, ids).unwrap() {
            Reply::Answer(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn user(text: &str) -> Value {
        json!({"messages": [{"role": "user", "content": text}]})
    }

    #[test]
    fn echo_with_message_count_usage_and_fresh_ids() {
        let mut ids = Counter::default();
        let body = json!({"model": "claude-opus-4-8", "messages": [
            {"role": "user", "content": "one"}, {"role": "assistant", "content": "x"},
            {"role": "user", "content": "two"},
        ]});
        let a = answer(body.clone(), &mut ids);
        assert_eq!(a.body, Body::Text("echo: two [n=3]".into()));
        assert_eq!(
            (a.id.as_str(), a.input_tokens, a.output_tokens),
            ("msg_fake000001", 32, 3)
        );
        assert_eq!(a.model, json!("claude-opus-4-8"));
        assert_eq!(answer(body, &mut ids).id, "msg_fake000002");
        assert_eq!(answer(json!({}), &mut ids).model, json!("claude-sonnet-5"));
    }

    #[test]
    fn cost_long_and_slow() {
        let mut ids = Counter::default();
        let a = answer(user("pay [[cost:20]]"), &mut ids);
        assert_eq!(a.output_tokens, 20);
        let long = answer(user("[[long]] [[slow]]"), &mut ids);
        let Body::Text(text) = &long.body else {
            panic!()
        };
        assert!(text.starts_with("echo: [[long]] [[slow]] [n=1] word0 word1 "));
        assert!(text.ends_with(" word1999"));
        assert_eq!(long.output_tokens, text.chars().count() as u64 / 4);
        assert!(long.slow);
    }

    #[test]
    fn faults_come_before_any_id() {
        let mut ids = Counter::default();
        let r = reply(&user("[[overloaded]]"), &mut ids).unwrap();
        assert!(matches!(r, Reply::Interrupt(Interrupt::Fault(f)) if f.status == 529));
        assert!(matches!(
            reply(&user("[[hang]]"), &mut ids).unwrap(),
            Reply::Interrupt(Interrupt::Hang)
        ));
        assert_eq!(ids.messages, 0);
    }

    #[test]
    fn tool_calls_are_numbered_across_requests() {
        let mut ids = Counter::default();
        let body = json!({"tools": [{"name": "mcp__gw__get_weather"}], "messages": [{"role": "user",
            "content": r#"[[call:get_weather {"city": "Oslo"}]] [[call:get_time]]"#}]});
        let a = answer(body.clone(), &mut ids);
        let Body::ToolCalls(calls) = &a.body else {
            panic!()
        };
        let ids_names: Vec<_> = calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str()))
            .collect();
        assert_eq!(
            ids_names,
            [
                ("toolu_fake_call1", "mcp__gw__get_weather"),
                ("toolu_fake_call2", "get_time")
            ]
        );
        assert_eq!(a.stop_reason(), "tool_use");
        let again = answer(body, &mut ids);
        let Body::ToolCalls(calls) = &again.body else {
            panic!()
        };
        assert_eq!(calls[0].id, "toolu_fake_call3");
        let bash = answer(user("[[tool]]"), &mut ids);
        let Body::ToolCalls(calls) = &bash.body else {
            panic!()
        };
        assert_eq!(
            (calls[0].id.as_str(), calls[0].name.as_str()),
            ("toolu_fake1", "Bash")
        );
    }

    #[test]
    fn tool_results_are_echoed_and_call_nothing() {
        let mut ids = Counter::default();
        let body = json!({"messages": [
            {"role": "user", "content": "[[call:f]]"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_fake_call1"}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_fake_call1", "content": "12C"},
                {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "ok"}]},
            ]},
        ]});
        let a = answer(body, &mut ids);
        assert_eq!(
            a.body,
            Body::Text("echo: tool results: toolu_fake_call1=12C; t2=ok [n=3]".into())
        );
        assert_eq!(ids.calls, 0);
    }

    #[test]
    fn thinking_only_when_enabled_and_asked() {
        let mut ids = Counter::default();
        let mut body = user("why? [[think]]");
        assert!(answer(body.clone(), &mut ids).thought.is_none());
        body["thinking"] = json!({"type": "adaptive"});
        let t = answer(body.clone(), &mut ids).thought.unwrap();
        assert_eq!(t.thinking, "thinking about: why? [[think]]");
        let digest = request::hex8(&Sha256::digest(t.thinking.as_bytes()));
        assert_eq!(t.signature, format!("sig-fake-{digest}"));
        body["messages"][0]["content"] = json!("[[think]] [[tool]]");
        assert!(
            answer(body, &mut ids).thought.is_none(),
            "no thinking before tool calls"
        );
    }

    #[test]
    fn attachments_go_before_the_count() {
        let mut ids = Counter::default();
        let body = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
        ]}]});
        assert_eq!(
            answer(body, &mut ids).body,
            Body::Text("echo: what is this? [document url https://example.com/a.pdf] [n=1]".into())
        );
    }
}
