//! Multi-turn conversations that check their own context: each client holds conversations of
//! `turns_per_session` turns, sent either with `X-Session-Id` (only the new message) or as the
//! whole history (stateless clients), and checks every answer against the fake Anthropic API's
//! `[n=<messages>]` counter (or the fake CLI's `[turn=<k>]`): a conversation that lost its
//! context is counted as `context-lost`, a failed turn by its error, and the turn is sent again
//! (a failed turn may or may not have been kept, so the next answer may count it once more).
//! `turns-retried` counts the turns that needed more than one attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::modes::{Budget, Plan};
use crate::stats::Recorder;

/// What an answer says about the conversation's context.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Context {
    /// The model saw every earlier turn: continued from the turn the server-side conversation
    /// started at (`base`: 1, or the turn whose history was replayed into a new one).
    Kept { base: u64 },
    /// Earlier turns are missing.
    Lost,
    /// The answer carries no counter (not the fake API or the fake CLI).
    Unknown,
}

fn counter(answer: &str, tag: &str) -> Option<u64> {
    let start = answer.rfind(tag)? + tag.len();
    let digits: String = answer[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Checks the answer to turn `turn` (1-based) of a conversation whose server-side conversation
/// started at turn `base`, whose earlier turns' markers are `earlier`, after `retries` failed
/// attempts. The fake API counts messages: `2·(turn - base) + 1` when continued (a failed
/// attempt that was kept anyway adds two); a history replayed into a new conversation is one
/// message quoting every earlier turn (the new base is this turn). The fake CLI counts turns.
pub(crate) fn check(
    answer: &str,
    turn: u64,
    base: u64,
    retries: u64,
    earlier: &[String],
) -> Context {
    let (seen, per_turn) = match (counter(answer, "[n="), counter(answer, "[turn=")) {
        (Some(n), _) => (n, 2),
        (None, Some(k)) => (k, 1),
        (None, None) => return Context::Unknown,
    };
    let expected = 1 + per_turn * (turn - base);
    if seen >= expected && seen <= expected + per_turn * retries {
        return Context::Kept { base };
    }
    if seen == 1 && earlier.iter().all(|m| answer.contains(m.as_str())) {
        return Context::Kept { base: turn };
    }
    Context::Lost
}

/// One client: conversations of `plan.turns_per_session` turns until the budget is spent.
pub(crate) async fn client(
    http: reqwest::Client,
    plan: Arc<Plan>,
    client: usize,
    budget: Arc<Budget>,
    progress: indicatif::ProgressBar,
) -> Recorder {
    let mut rec = Recorder::default();
    let per = plan.turns_per_session.max(2);
    let mut conversation = 0u64;
    'conversations: loop {
        let sid = format!("conv-{}-{client}-{conversation}", std::process::id());
        let mut history: Vec<Value> = Vec::new();
        let mut markers: Vec<String> = Vec::new();
        let mut retries = 0;
        let mut turn = 1;
        let mut base = 1;
        // The current turn has failed at least once.
        let mut failed_attempt = false;
        while turn <= per {
            if budget.take().is_none() {
                break 'conversations;
            }
            let marker = format!("c{client}-v{conversation}-t{turn}");
            let text = format!("{} [{marker}]", plan.prompt);
            let mut messages = if plan.history {
                history.clone()
            } else {
                Vec::new()
            };
            messages.push(json!({"role": "user", "content": text}));
            let body = json!({"model": plan.model, "stream": plan.stream, "messages": messages});
            let mut req = http
                .post(format!("{}/v1/chat/completions", plan.url))
                .bearer_auth(&plan.api_key)
                .json(&body);
            if !plan.history {
                req = req.header("X-Session-Id", &sid);
            }
            let t0 = Instant::now();
            let outcome = tokio::time::timeout(plan.timeout, ask(req, plan.stream, t0)).await;
            progress.inc(1);
            match outcome {
                Ok(Ok((ttft, answer))) => {
                    rec.record(ttft, t0.elapsed());
                    match check(&answer, turn, base, retries, &markers) {
                        Context::Kept { base: b } => {
                            if b != base {
                                base = b;
                                retries = 0;
                            }
                        }
                        Context::Lost => {
                            let tail: String = answer
                                .chars()
                                .rev()
                                .take(80)
                                .collect::<Vec<_>>()
                                .into_iter()
                                .rev()
                                .collect();
                            eprintln!(
                                "context lost: conversation {sid} turn {turn} (after {retries} failed attempts): ...{tail}"
                            );
                            rec.error("context-lost");
                        }
                        Context::Unknown => {}
                    }
                    if std::mem::take(&mut failed_attempt) {
                        // Counted once per turn however many attempts it needed.
                        rec.error("turns-retried");
                    }
                    history.push(json!({"role": "user", "content": text}));
                    history.push(json!({"role": "assistant", "content": answer}));
                    markers.push(marker);
                    turn += 1;
                }
                Ok(Err(kind)) => {
                    rec.error(kind);
                    retries += 1;
                    failed_attempt = true;
                }
                Err(_) => {
                    rec.error("client-timeout");
                    retries += 1;
                    failed_attempt = true;
                }
            }
        }
        conversation += 1;
    }
    rec
}

/// Sends one turn; returns (time to first token, the answer).
async fn ask(
    req: reqwest::RequestBuilder,
    stream: bool,
    t0: Instant,
) -> Result<(Duration, String), String> {
    let resp = crate::modes::send(req).await?;
    if !stream {
        let v: Value = resp.json().await.map_err(|_| "transport".to_owned())?;
        let answer = v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        return Ok((t0.elapsed(), answer));
    }
    let mut events = resp.bytes_stream().eventsource();
    let mut ttft = None;
    let mut answer = String::new();
    while let Some(ev) = events.next().await {
        let ev = ev.map_err(|_| "sse".to_owned())?;
        if ev.data == "[DONE]" {
            return ttft
                .map(|t| (t, answer))
                .ok_or_else(|| "no-content".to_owned());
        }
        let v: Value = serde_json::from_str(&ev.data).map_err(|_| "bad-chunk")?;
        if let Some(code) = v["error"]["code"].as_str() {
            return Err(format!("stream-error:{code}"));
        }
        if v.get("error").is_some() {
            return Err("stream-error".into());
        }
        if let Some(piece) = v["choices"][0]["delta"]["content"].as_str() {
            if !piece.is_empty() && ttft.is_none() {
                ttft = Some(t0.elapsed());
            }
            answer.push_str(piece);
        }
    }
    Err("stream-cut".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked_against_the_counters() {
        let none: Vec<String> = Vec::new();
        let earlier = vec!["c0-v0-t1".to_owned(), "c0-v0-t2".to_owned()];
        let kept = |base| Context::Kept { base };
        // Sessioned turn 3 on the fake API: 5 messages.
        assert_eq!(check("echo: hi [n=5]", 3, 1, 0, &earlier), kept(1));
        assert_eq!(check("echo: hi [n=1]", 3, 1, 0, &earlier), Context::Lost);
        assert_eq!(check("echo: hi [n=3]", 3, 1, 0, &earlier), Context::Lost);
        // A failed attempt that was kept anyway counts once more.
        assert_eq!(check("echo: hi [n=7]", 3, 1, 1, &earlier), kept(1));
        assert_eq!(check("echo: hi [n=9]", 3, 1, 1, &earlier), Context::Lost);
        // A replayed history quotes every earlier turn, and is continued from there.
        let replay =
            "echo: <conversation_history> c0-v0-t1 ... c0-v0-t2 </conversation_history> [n=1]";
        assert_eq!(check(replay, 3, 1, 0, &earlier), kept(3));
        assert_eq!(check("echo: hi [n=3]", 4, 3, 0, &earlier), kept(3));
        assert_eq!(check("echo: hi [n=3]", 5, 3, 0, &earlier), Context::Lost);
        assert_eq!(
            check("echo: c0-v0-t1 only [n=1]", 3, 1, 0, &earlier),
            Context::Lost
        );
        // The fake CLI counts turns.
        assert_eq!(check("echo: hi [turn=3]", 3, 1, 0, &earlier), kept(1));
        assert_eq!(check("echo: hi [turn=1]", 3, 1, 0, &earlier), Context::Lost);
        assert_eq!(check("echo: hi [turn=1]", 1, 1, 0, &none), kept(1));
        assert_eq!(check("plain", 2, 1, 0, &earlier), Context::Unknown);
    }
}
