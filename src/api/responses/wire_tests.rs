use super::*;

fn req(v: Value) -> ResponsesRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn input_text_items_and_instructions_become_messages() {
    let r = req(json!({"model": "m", "input": "hi", "instructions": "be brief"}));
    let m = r.messages().unwrap();
    assert_eq!((m[0].role.as_str(), m[1].role.as_str()), ("system", "user"));
    // The Vercel AI SDK's and the Agents SDK's item forms.
    let r = req(json!({"model": "m", "input": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "input_text", "text": "q1"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a1"}]},
        {"role": "user", "content": "q2"}]}));
    let m = r.messages().unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!(m[2].content.as_ref().unwrap().text().unwrap(), "a1");
    let (param, _) = req(json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}))
        .messages()
        .unwrap_err();
    assert_eq!(param, "input[0]");
    let (param, _) = req(json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio", "data": "x"}]}]}))
        .messages()
        .unwrap_err();
    assert_eq!(param, "input[0].content[0]");
    let (param, m) = req(json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "q"}, {"type": "input_image", "image_url": "data:image/png;base64,@@"}]}]}))
        .messages()
        .unwrap_err();
    assert_eq!(param, "input[0].content[1].image_url");
    assert!(m.contains("base64"), "{m}");
    let m = req(json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "q"}, {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "auto"}, {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}]}]}))
        .messages()
        .unwrap();
    let msgs = crate::api::chat::messages::normalize(&m).unwrap();
    assert_eq!(msgs[0].attachments.len(), 2);
    // Named by its place in `input` (not in the chat messages it becomes).
    let (param, m) = req(json!({"model": "m", "instructions": "sys", "input": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}]},
        {"role": "user", "content": "q2"}]}))
    .messages()
    .unwrap_err();
    assert_eq!(param, "input[1].content[0]");
    assert!(m.contains("user messages only"), "{m}");
}

#[test]
fn fields_that_change_the_answer_are_refused_by_name() {
    let p = |v: Value| req(v).unsupported().map(|(p, _)| p);
    assert_eq!(
        p(json!({"model": "m", "input": "x", "tools": [{"type": "function"}]})).as_deref(),
        Some("tools")
    );
    assert_eq!(
        p(json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}))
            .as_deref(),
        Some("text.format")
    );
    assert_eq!(
        p(json!({"model": "m", "input": "x", "temperature": 3})).as_deref(),
        Some("temperature")
    );
    assert_eq!(
        p(json!({"model": "m", "input": "x", "background": true})).as_deref(),
        Some("background")
    );
    assert_eq!(
        p(json!({"model": "m", "input": "x", "tools": [], "store": false, "reasoning": {}})),
        None
    );
}

#[test]
fn the_response_object_has_openais_shape() {
    let h = Head {
        id: "resp_1".into(),
        created_at: 7,
        model: "sonnet".into(),
        message_id: "msg_1".into(),
        previous_response_id: None,
        instructions: None,
        max_output_tokens: Some(5),
        metadata: json!({}),
        temperature: None,
        top_p: None,
    };
    let message = message_item("msg_1", "hey", true);
    let v = response_object(
        &h,
        &Outcome::Incomplete,
        std::slice::from_ref(&message),
        Some(&Usage::default()),
    );
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(v["output"][0]["content"][0]["text"], "hey");
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 0);
    // The model thought: its reasoning item comes first; no reasoning token count is made up.
    let reasoning = super::super::output::reasoning_item("rs_1", &["hm".to_owned()]);
    let v = response_object(
        &h,
        &Outcome::Completed,
        &[reasoning, message],
        Some(&Usage::default()),
    );
    assert_eq!(v["output"][0]["type"], "reasoning");
    assert_eq!(v["output"][0]["summary"][0]["text"], "hm");
    assert_eq!(v["output"][1]["type"], "message");
    assert_eq!(v["usage"]["output_tokens_details"], json!({}));
    let in_progress = response_object(&h, &Outcome::InProgress, &[], None);
    assert_eq!(in_progress["output"], json!([]));
    assert!(in_progress["usage"].is_null());
}

#[test]
fn reasoning_items_given_back_are_left_out() {
    let r = req(json!({"model": "m", "input": [
        {"role": "user", "content": "q1"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hm"}]},
        {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": "a1", "annotations": []}]},
        {"role": "user", "content": "q2"}]}));
    let m = r.messages().unwrap();
    let roles: Vec<&str> = m.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
}
