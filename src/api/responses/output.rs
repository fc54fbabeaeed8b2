//! A response's output items, put together as its turn's events arrive (pure): while the
//! model thinks, a `reasoning` item whose summary has one `summary_text` part per thinking
//! block; then the `message` item with the answer's text. A stream gets each step's typed
//! events in OpenAI's order: `response.output_item.added` (reasoning),
//! `response.reasoning_summary_part.added`, `response.reasoning_summary_text.delta`s,
//! `response.reasoning_summary_text.done`, `response.reasoning_summary_part.done`,
//! `response.output_item.done`; then the message's `output_item.added`,
//! `content_part.added`, `output_text.delta`s, `output_text.done`, `content_part.done`,
//! `output_item.done`. Thinking that comes once the text has started (a model call after
//! another) becomes a reasoning item of its own after the message.

use serde_json::{Value, json};

use super::wire::message_item;
use crate::api::reasoning::Reasoning;

/// A fresh `rs_...` id.
pub fn reasoning_id() -> String {
    format!("rs_{}", uuid::Uuid::new_v4().simple())
}

/// A reasoning item: its summary is the thinking blocks, one `summary_text` part each.
pub fn reasoning_item(id: &str, blocks: &[String]) -> Value {
    let summary: Vec<Value> = blocks.iter().map(|text| summary_part(text)).collect();
    json!({"id": id, "type": "reasoning", "summary": summary})
}

fn summary_part(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// Where the message item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    /// Not started: thinking still opens reasoning items before it.
    Ahead,
    /// Open at this output index.
    Open(usize),
    /// Done.
    Done,
}

/// The reasoning item being made.
#[derive(Debug)]
struct OpenReasoning {
    id: String,
    index: usize,
    thinking: Reasoning,
    /// Its last summary part still takes deltas.
    part_open: bool,
}

/// The output of one response.
#[derive(Debug)]
pub(crate) struct Output {
    message_id: String,
    /// Make stream events (a stream) or only the items (a JSON response).
    streaming: bool,
    /// Finished items, in order.
    items: Vec<Value>,
    reasoning: Option<OpenReasoning>,
    message: Message,
    /// Thinking that came after the message started.
    late: Reasoning,
    events: Vec<(&'static str, Value)>,
}

impl Output {
    /// The output of a response whose message item is `message_id`; `streaming` makes the
    /// stream's events.
    pub(crate) fn new(message_id: &str, streaming: bool) -> Self {
        Self {
            message_id: message_id.to_owned(),
            streaming,
            items: Vec::new(),
            reasoning: None,
            message: Message::Ahead,
            late: Reasoning::default(),
            events: Vec::new(),
        }
    }

    /// The stream events made since the last call (kind, body without `type` and
    /// `sequence_number`).
    pub(crate) fn take_events(&mut self) -> Vec<(&'static str, Value)> {
        std::mem::take(&mut self.events)
    }

    fn event(&mut self, kind: &'static str, body: Value) {
        if self.streaming {
            self.events.push((kind, body));
        }
    }

    /// A piece of the model's thinking.
    pub(crate) fn thinking(&mut self, piece: &str) {
        if piece.is_empty() {
            return;
        }
        if let Message::Open(_) = self.message {
            self.late.delta(piece);
            return;
        }
        let index = self.items.len();
        let r = self.reasoning.get_or_insert_with(|| OpenReasoning {
            id: reasoning_id(),
            index,
            thinking: Reasoning::default(),
            part_open: false,
        });
        let Some(step) = r.thinking.delta(piece) else {
            return;
        };
        r.part_open = true;
        let (id, index) = (r.id.clone(), r.index);
        let at = json!({"item_id": id, "output_index": index, "summary_index": step.block});
        if step.starts && step.block == 0 {
            let item = reasoning_item(&id, &[]);
            self.event(
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            );
        }
        if step.starts {
            let mut e = at.clone();
            e["part"] = summary_part("");
            self.event("response.reasoning_summary_part.added", e);
        }
        let mut e = at;
        e["delta"] = json!(piece);
        self.event("response.reasoning_summary_text.delta", e);
    }

    /// The signature that ends a thinking block.
    pub(crate) fn signature(&mut self) {
        match self.message {
            Message::Open(_) => self.late.close(),
            _ => self.close_part(),
        }
    }

    fn close_part(&mut self) {
        let Some(r) = self.reasoning.as_mut().filter(|r| r.part_open) else {
            return;
        };
        r.part_open = false;
        r.thinking.close();
        let block = r.thinking.blocks().len() - 1;
        let text = r.thinking.blocks()[block].clone();
        let at = json!({"item_id": r.id, "output_index": r.index, "summary_index": block});
        let mut e = at.clone();
        e["text"] = json!(text);
        self.event("response.reasoning_summary_text.done", e);
        let mut e = at;
        e["part"] = summary_part(&text);
        self.event("response.reasoning_summary_part.done", e);
    }

    fn close_reasoning(&mut self) {
        self.close_part();
        let Some(r) = self.reasoning.take() else {
            return;
        };
        let item = reasoning_item(&r.id, r.thinking.blocks());
        self.event(
            "response.output_item.done",
            json!({"output_index": r.index, "item": item}),
        );
        self.items.push(item);
    }

    /// The message's place in the stream's events.
    fn at(&self, index: usize) -> Value {
        json!({"item_id": self.message_id, "output_index": index, "content_index": 0})
    }

    /// Text started (a delta, maybe empty when the output limit holds it back): the reasoning
    /// item is done and the message item open. Returns its output index.
    fn open_message(&mut self) -> usize {
        if let Message::Open(index) = self.message {
            return index;
        }
        self.close_reasoning();
        let index = self.items.len();
        self.message = Message::Open(index);
        let item = message_item(&self.message_id, "", false);
        self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        );
        let mut e = self.at(index);
        e["part"] = output_text_part("");
        self.event("response.content_part.added", e);
        index
    }

    /// A piece of the answer's text, as the client receives it (after the output limit).
    pub(crate) fn text(&mut self, delta: &str) {
        let index = self.open_message();
        if !delta.is_empty() {
            let mut e = self.at(index);
            e["delta"] = json!(delta);
            e["logprobs"] = json!([]);
            self.event("response.output_text.delta", e);
        }
    }

    /// The turn ended: `tail` is the text the output limit held back until now, `text` the
    /// whole answer. Closes every item; returns the response's `output`.
    pub(crate) fn finish(&mut self, tail: &str, text: &str) -> Vec<Value> {
        self.text(tail);
        let index = self.open_message();
        let mut e = self.at(index);
        e["text"] = json!(text);
        e["logprobs"] = json!([]);
        self.event("response.output_text.done", e);
        let mut e = self.at(index);
        e["part"] = output_text_part(text);
        self.event("response.content_part.done", e);
        let item = message_item(&self.message_id, text, true);
        self.event(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.items.push(item);
        self.message = Message::Done;
        let late = std::mem::take(&mut self.late);
        for block in late.blocks() {
            self.thinking(block);
            self.close_part();
        }
        self.close_reasoning();
        self.items.clone()
    }
}

#[cfg(test)]
#[path = "output_tests.rs"]
mod tests;
