//! Magic words in the last user text that choose the fake's behaviour: faults (`[[error500]]`,
//! `[[overloaded]]`, `[[ratelimit]]`, `[[unauthorized]]`, `[[hang]]`), tool calls (`[[tool]]`,
//! `[[call:NAME {json}]]`), the reported output tokens (`[[cost:N]]`) and the answer's shape
//! (`[[slow]]`, `[[long]]`, `[[think]]`).

use std::sync::LazyLock;

use regex::Regex;

use crate::pyjson::{self, PyValue};
use crate::request::Invalid;

/// An HTTP error the API answers with instead of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// HTTP status.
    pub status: u16,
    /// `error.type` of Anthropic's error envelope.
    pub kind: &'static str,
    /// `error.message`.
    pub message: &'static str,
    /// The `retry-after` header, in seconds.
    pub retry_after: Option<u32>,
}

/// What the magic words ask for before any answer is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupt {
    /// Answer with an error.
    Fault(Fault),
    /// Accept the request and never answer, until the client goes away or the server stops.
    Hang,
}

/// The fault or hang `text` asks for, checked in this order.
pub fn interrupt(text: &str) -> Option<Interrupt> {
    let fault = |status, kind, message, retry_after| {
        Some(Interrupt::Fault(Fault {
            status,
            kind,
            message,
            retry_after,
        }))
    };
    if text.contains("[[error500]]") {
        fault(500, "api_error", "Internal server error", None)
    } else if text.contains("[[overloaded]]") {
        fault(529, "overloaded_error", "Overloaded", None)
    } else if text.contains("[[ratelimit]]") {
        fault(429, "rate_limit_error", "Rate limited", Some(1))
    } else if text.contains("[[unauthorized]]") {
        fault(401, "authentication_error", "invalid x-api-key", None)
    } else if text.contains("[[hang]]") {
        Some(Interrupt::Hang)
    } else {
        None
    }
}

/// A tool call the words ask for, before it has an id.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSpec {
    /// The offered tool's full name (or the written name when none matches).
    pub name: String,
    /// The call's input.
    pub input: PyValue,
}

static CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\[\[call:([A-Za-z0-9_.-]+)(?:\s+(\{.*?\}))?\]\]").expect("a valid pattern")
});

static COST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[\[cost:(\d+)\]\]").expect("a valid pattern"));

/// Whether `text` holds `[[tool]]`: a call of `Bash` with `{"command": "true"}`, id `toolu_fake1`.
pub fn wants_bash(text: &str) -> bool {
    text.contains("[[tool]]")
}

/// The `[[call:NAME {json}]]` calls in `text`, in order. NAME picks the first offered tool
/// named NAME or ending in `__NAME` (as MCP tools are named, `mcp__<server>__<name>`); the
/// input is the JSON object written after it (default `{}`).
pub fn calls(text: &str, offered: &[String]) -> Result<Vec<CallSpec>, Invalid> {
    CALL.captures_iter(text)
        .map(|m| {
            let written = &m[1];
            let suffix = format!("__{written}");
            let name = offered
                .iter()
                .find(|n| *n == written || n.ends_with(&suffix))
                .map_or(written, String::as_str)
                .to_owned();
            let input = match m.get(2) {
                Some(args) => pyjson::from_slice(args.as_str().as_bytes())
                    .map_err(|e| Invalid(format!("[[call:{written}]] input is not JSON: {e}")))?,
                None => PyValue::empty_object(),
            };
            Ok(CallSpec { name, input })
        })
        .collect()
}

/// The N of the first `[[cost:N]]`: the output tokens to report.
pub fn cost(text: &str) -> Option<u64> {
    COST.captures(text).and_then(|m| m[1].parse().ok())
}

/// `[[slow]]`: a pause before every text chunk.
pub fn slow(text: &str) -> bool {
    text.contains("[[slow]]")
}

/// `[[long]]`: about 2,000 words appended to the answer.
pub fn long(text: &str) -> bool {
    text.contains("[[long]]")
}

/// `[[think]]`: a thinking block first, when the request enables thinking.
pub fn think(text: &str) -> bool {
    text.contains("[[think]]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_in_their_order() {
        let f = |t| match interrupt(t) {
            Some(Interrupt::Fault(f)) => (f.status, f.kind, f.retry_after),
            other => panic!("{other:?}"),
        };
        assert_eq!(f("x [[error500]] [[hang]]"), (500, "api_error", None));
        assert_eq!(f("[[overloaded]]"), (529, "overloaded_error", None));
        assert_eq!(f("[[ratelimit]]"), (429, "rate_limit_error", Some(1)));
        assert_eq!(f("[[unauthorized]]"), (401, "authentication_error", None));
        assert_eq!(interrupt("[[hang]]"), Some(Interrupt::Hang));
        assert_eq!(interrupt("[[slow]] [[long]]"), None);
    }

    #[test]
    fn calls_match_offered_names_and_keep_their_input() {
        let offered = vec!["Bash".to_owned(), "mcp__gw__get_weather".to_owned()];
        let text = r#"a [[call:get_weather {"city": "Paris", "a": 1}]] b [[call:lookup]] [[call:x {"a": 1}"#;
        let calls = calls(text, &offered).unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].name, "mcp__gw__get_weather");
        assert_eq!(
            pyjson::to_string(&calls[0].input),
            r#"{"city": "Paris", "a": 1}"#
        );
        assert_eq!(calls[1].name, "lookup");
        assert_eq!(calls[1].input, PyValue::empty_object());
        // the input ends at the first `}]]`
        let nested = calls_of(r#"[[call:f {"a": {"b": 1}}]] [[call:g {"c": 2}]]"#);
        assert_eq!(nested, vec![r#"{"a": {"b": 1}}"#, r#"{"c": 2}"#]);
        assert!(super::calls("[[call:f {nope}]]", &[]).is_err());
    }

    fn calls_of(text: &str) -> Vec<String> {
        calls(text, &[])
            .unwrap()
            .iter()
            .map(|c| pyjson::to_string(&c.input))
            .collect()
    }

    #[test]
    fn cost_and_shape_words() {
        assert_eq!(cost("pay [[cost:20]] and [[cost:5]]"), Some(20));
        assert_eq!(cost("[[cost:]]"), None);
        assert!(slow("[[slow]] x") && !slow("[[slow:40]]"));
        assert!(long("[[long]]") && think("[[think]]") && wants_bash("[[tool]]"));
    }
}
