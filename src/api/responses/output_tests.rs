use serde_json::Value;

use super::*;

fn kinds(events: &[(&'static str, Value)]) -> Vec<&'static str> {
    events.iter().map(|(k, _)| *k).collect()
}

#[test]
fn without_thinking_the_output_is_the_message_alone() {
    let mut o = Output::new("msg_1", true);
    o.text("he");
    o.text("");
    let items = o.finish("y", "hey");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["type"], "message");
    assert_eq!(items[0]["content"][0]["text"], "hey");
    let events = o.take_events();
    assert_eq!(
        kinds(&events),
        [
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
        ]
    );
    assert!(events.iter().all(|(_, e)| e["output_index"] == 0));
    assert_eq!(events[3].1["delta"], "y");
    assert!(o.take_events().is_empty());
}

#[test]
fn thinking_is_a_reasoning_item_before_the_message() {
    let mut o = Output::new("msg_1", true);
    o.thinking("thinking ");
    o.thinking("about it");
    o.signature();
    o.thinking("");
    o.text("answer");
    let items = o.finish("", "answer");
    assert_eq!(items.len(), 2);
    let rs = &items[0];
    assert_eq!(rs["type"], "reasoning");
    assert!(rs["id"].as_str().unwrap().starts_with("rs_"));
    assert_eq!(
        rs["summary"],
        serde_json::json!([{"type": "summary_text", "text": "thinking about it"}])
    );
    assert_eq!(items[1]["type"], "message");
    let events = o.take_events();
    assert_eq!(
        kinds(&events),
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
        ]
    );
    let (_, added) = &events[0];
    assert_eq!(added["item"]["summary"], serde_json::json!([]));
    assert_eq!(added["output_index"], 0);
    for (_, e) in &events[1..6] {
        assert_eq!(e["item_id"], rs["id"]);
        assert_eq!(e["summary_index"], 0);
    }
    assert_eq!(events[4].1["text"], "thinking about it");
    assert_eq!(events[5].1["part"]["text"], "thinking about it");
    assert_eq!(events[6].1["item"], *rs);
    for (_, e) in &events[7..] {
        assert_eq!(e["output_index"], 1);
    }
}

#[test]
fn blocks_are_summary_parts_and_late_thinking_follows_the_message() {
    let mut o = Output::new("msg_1", true);
    o.thinking("one");
    o.signature();
    o.thinking("two");
    // Text closes the block without a signature.
    o.text("");
    o.thinking("three");
    o.signature();
    let items = o.finish("", "");
    let summaries: Vec<Vec<&str>> = items
        .iter()
        .filter(|i| i["type"] == "reasoning")
        .map(|i| {
            i["summary"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["text"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(summaries, [vec!["one", "two"], vec!["three"]]);
    assert_eq!(items[1]["type"], "message");
    let events = o.take_events();
    let parts: Vec<i64> = events
        .iter()
        .filter(|(k, _)| *k == "response.reasoning_summary_part.added")
        .map(|(_, e)| e["summary_index"].as_i64().unwrap())
        .collect();
    assert_eq!(parts, [0, 1, 0]);
    let (_, last) = events.last().unwrap();
    assert_eq!(last["output_index"], 2);
    assert_eq!(last["item"], items[2]);
}

#[test]
fn a_json_response_makes_no_events() {
    let mut o = Output::new("msg_1", false);
    o.thinking("hm");
    o.text("a");
    let items = o.finish("", "a");
    assert_eq!(items.len(), 2);
    assert!(o.take_events().is_empty());
}
