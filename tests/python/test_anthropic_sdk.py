"""Anthropic's Messages API through the official `anthropic` Python SDK, on the fake and the
real CLI: answers and streams, a conversation resent whole that goes on warm, a tool loop,
images and a PDF reaching the model intact, count_tokens, the models list, thinking with its
signature, and every error as the SDK's typed exception.

The fake CLI answers `echo: <text> [turn=k]`; the real CLI's model is the fake Anthropic API,
which answers `echo: <text> [n=<messages it was sent>]` (turn k of one conversation carries
2k-1 messages), so a continued conversation shows as `[n=3]` on the second turn, and a replay
as `[n=1]`."""
import hashlib
import json
import re
import shutil
import tempfile
import urllib.request
import uuid
from pathlib import Path

import anthropic
import pytest
import requests

from conftest import (KEY, MASTER, TARGET, admin, fake_api_requests, free_port, running_server,
                      worker_toml)
from media import b64, described, pdf, png

MODEL = "sonnet"
WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}


def client(server, key=KEY, **kw):
    return anthropic.Anthropic(base_url=server["url"], api_key=key, max_retries=0, timeout=120, **kw)


def create(server, content, **kw):
    kw.setdefault("max_tokens", 1024)
    messages = content if isinstance(content, list) else [{"role": "user", "content": content}]
    return client(server).messages.create(model=MODEL, messages=messages, **kw)


def turn_of(server, text):
    """The conversation's turn number an answer shows."""
    if server["kind"] == "fake":
        return int(re.search(r"\[turn=(\d+)\]", text).group(1))
    return (int(re.search(r"\[n=(\d+)\]", text).group(1)) + 1) // 2


def counter(server):
    """The answer's trailing counter for a first turn: ` [turn=1]` or ` [n=1]`."""
    return " [turn=1]" if server["kind"] == "fake" else " [n=1]"


def new_key(server, **fields):
    status, body = admin(server, "POST", "/key/generate", fields)
    assert status == 200, body
    return body["key"]


def signed(prompt):
    """The fake's thinking block about `prompt` and its signature."""
    thinking = f"thinking about: {prompt}"
    return thinking, "sig-fake-" + hashlib.sha256(thinking.encode()).hexdigest()[:8]


def sse_events(response):
    """(event name, data) of a streamed answer, read off the wire."""
    events, name = [], None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line[5:])))
    return events


def test_create_answers_a_message(server):
    r = create(server, "hello from the anthropic sdk")
    assert r.type == "message" and r.role == "assistant"
    assert r.id.startswith("msg_")
    assert r.model
    [block] = r.content
    assert block.type == "text"
    assert block.text == "echo: hello from the anthropic sdk" + counter(server)
    assert r.stop_reason == "end_turn" and r.stop_sequence is None
    assert r.usage.output_tokens > 0
    if server["kind"] == "real":
        # the CLI's counts of the fake API's usage: 10 per message sent, plus 2
        assert r.usage.input_tokens == 12


def test_stream_text_and_final_message(server):
    prompt = "stream from the anthropic sdk [[long]]"
    with client(server).messages.stream(model=MODEL, max_tokens=8192,
                                        messages=[{"role": "user", "content": prompt}]) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    text = "".join(pieces)
    assert len(pieces) > 1, "the answer arrives in pieces"
    assert text.startswith("echo: stream from the anthropic sdk")
    assert "word399" in text
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert final.id.startswith("msg_")


def stream_raw(url, content, key=KEY):
    r = requests.post(f"{url}/v1/messages", stream=True, timeout=120,
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                      json={"model": MODEL, "max_tokens": 1024, "stream": True,
                            "messages": [{"role": "user", "content": content}]})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return sse_events(r)


def test_streamed_events_come_in_the_api_order(server):
    events = stream_raw(server["url"], "in order")
    for name, data in events:
        assert data["type"] == name, "each event's data carries its name as its type"
    names = [n for n, _ in events if n != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names[1] == "content_block_start" and names[-3] == "content_block_stop"
    assert set(names[2:-3]) == {"content_block_delta"}
    start = next(d for n, d in events if n == "message_start")
    assert start["message"]["content"] == [] and start["message"]["stop_reason"] is None
    assert start["message"]["id"].startswith("msg_")
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "echo: in order" + counter(server)
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] > 0


def test_pings_keep_a_silent_stream_alive(fake_api):
    """A server whose keep-alive is 200 ms, the fake CLI pausing 700 ms between pieces: `ping`
    events fill the silence, between the answer's events."""
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    config = f"""
[server]
host = "127.0.0.1"
port = {port}
https_port = 0
sse_keepalive = "200ms"
[pool]
min_workers = 1
max_workers = 1
{worker_toml(TARGET / "fake-claude", tmp, fake_api)}[auth]
api_keys = ["{KEY}"]
[limits]
rate_limit_requests = 0
"""
    try:
        with running_server(tmp, config, port) as url:
            events = stream_raw(url, "slowly [[slow:700]]")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = [n for n, _ in events]
    assert names.count("ping") >= 2, names
    assert names[0] == "message_start" and names[-1] == "message_stop"
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == "echo: slowly [[slow:700]] [turn=1]"


def test_a_resent_history_goes_on_warm(server):
    c = client(server)
    messages = [{"role": "user", "content": "first turn of a resent history"}]
    r1 = c.messages.create(model=MODEL, max_tokens=1024, messages=messages)
    assert turn_of(server, r1.content[0].text) == 1
    messages += [{"role": "assistant", "content": r1.content},
                 {"role": "user", "content": "second turn"}]
    r2 = c.messages.create(model=MODEL, max_tokens=1024, messages=messages)
    # continued on the warm worker with only the new message: [n=3], not a replay's [n=1]
    assert r2.content[0].text.startswith("echo: second turn")
    assert turn_of(server, r2.content[0].text) == 2, r2.content[0].text
    # streamed, a third
    messages += [{"role": "assistant", "content": r2.content},
                 {"role": "user", "content": "third turn"}]
    with c.messages.stream(model=MODEL, max_tokens=1024, messages=messages) as s:
        text = s.get_final_text()
    assert turn_of(server, text) == 3, text


@pytest.mark.parametrize("pin", ["x-session-id", "x-claude-code-session-id", "metadata"])
def test_a_session_id_pins_the_conversation(server, pin):
    """With a session id, the second turn continues the first even though the history resent
    with it does not match the answer (a client that keeps its own version): unpinned, that
    history would start a new conversation."""
    sid = f"pin-{pin}-{uuid.uuid4()}"
    kw = {}
    if pin == "metadata":
        kw["metadata"] = {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "",
                                                 "session_id": sid})}
    else:
        kw["extra_headers"] = {pin: sid}
    c = client(server)
    first = c.messages.create(model=MODEL, max_tokens=1024,
                              messages=[{"role": "user", "content": "pinned first"}], **kw)
    assert turn_of(server, first.content[0].text) == 1
    second = c.messages.create(model=MODEL, max_tokens=1024, messages=[
        {"role": "user", "content": "pinned first"},
        {"role": "assistant", "content": "(the client's own note of the answer)"},
        {"role": "user", "content": "pinned second"}], **kw)
    assert second.content[0].text.startswith("echo: pinned second")
    assert turn_of(server, second.content[0].text) == 2, second.content[0].text


def test_a_tool_loop_continues_the_same_turn(server):
    c = client(server)
    messages = [{"role": "user", "content": 'Weather in Paris? [[call:get_weather {"city": "Paris"}]]'}]
    first = c.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    assert call.id.startswith("toolu_")
    messages += [{"role": "assistant", "content": first.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                               "content": "sunny, 21 C"}]}]
    second = c.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages)
    assert second.stop_reason == "end_turn"
    text = "".join(b.text for b in second.content if b.type == "text")
    assert text.startswith("echo: tool results: ") and "=sunny, 21 C" in text, text
    # the parked turn went on (the model call carried the call and its result), not a replay
    assert text.endswith(" [turn=1]" if server["kind"] == "fake" else " [n=3]"), text


def test_an_image_in_a_tool_result_reaches_the_model(server):
    """The parked turn's MCP result carries the image as an image: the model gets it inside
    its tool_result, bytes unchanged (the fake CLI answers MCP results as text only)."""
    if server["kind"] == "fake":
        pytest.skip("the fake CLI's MCP client keeps only the text of a result")
    c = client(server)
    messages = [{"role": "user", "content": 'Chart? [[call:get_weather {"city": "Rome"}]]'}]
    first = c.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages)
    [call] = [b for b in first.content if b.type == "tool_use"]
    image = png(seed=7)
    messages += [{"role": "assistant", "content": first.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": [
                     {"type": "text", "text": "the chart"},
                     {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                  "data": b64(image)}}]}]}]
    second = c.messages.create(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages)
    text = "".join(b.text for b in second.content if b.type == "text")
    assert "=the chart" in text and described("image", "image/png", image) in text, text


def test_a_streamed_tool_call(server):
    c = client(server)
    messages = [{"role": "user", "content": 'Weather in Oslo? [[call:get_weather {"city": "Oslo"}]]'}]
    with c.messages.stream(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages) as s:
        kinds = [e.type for e in s]
        first = s.get_final_message()
    assert "input_json" in kinds, kinds
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "Oslo"}
    messages += [{"role": "assistant", "content": first.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                               "content": [{"type": "text", "text": "snow"}]}]}]
    with c.messages.stream(model=MODEL, max_tokens=1024, tools=[WEATHER], messages=messages) as s:
        text = s.get_final_text()
    assert "=snow" in text, text


def test_images_reach_the_model_intact(server):
    image = png(24, 16, seed=7)
    r = create(server, [{"role": "user", "content": [
        {"type": "text", "text": "what is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(image)}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]}])
    assert r.content[0].text == (f"echo: what is in these? {described('image', 'image/png', image)} "
                                 f"[image url https://example.com/cat.png]" + counter(server))
    if server["kind"] == "real":
        # the image block the model got is the client's, byte for byte
        with urllib.request.urlopen(f"http://127.0.0.1:{server['fake_api']}/_last_request") as r:
            sent = json.load(r)
        images = [b for b in sent["messages"][-1]["content"] if b["type"] == "image"]
        assert images[0]["source"] == {"type": "base64", "media_type": "image/png", "data": b64(image)}
        assert images[1]["source"] == {"type": "url", "url": "https://example.com/cat.png"}


def test_a_pdf_reaches_the_model_intact(server):
    doc = pdf("quarterly numbers")
    r = create(server, [{"role": "user", "content": [
        {"type": "text", "text": "summarise this"},
        {"type": "document", "title": "report",
         "source": {"type": "base64", "media_type": "application/pdf", "data": b64(doc)}},
    ]}])
    assert r.content[0].text == (f"echo: summarise this {described('document', 'application/pdf', doc)}"
                                 + counter(server))


def test_count_tokens_without_a_model_call(server):
    c = client(server)
    calls = fake_api_requests(server["fake_api"])
    short = c.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "count me"}])
    assert short.input_tokens > 0
    long = c.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "count me " * 500}])
    assert long.input_tokens > short.input_tokens + 500
    with_tools = c.messages.count_tokens(model=MODEL, tools=[WEATHER], system="Be brief.",
                                         messages=[{"role": "user", "content": "count me"}])
    assert with_tools.input_tokens > short.input_tokens
    with_image = c.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "count me"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(png())}}]}])
    assert with_image.input_tokens > short.input_tokens
    assert fake_api_requests(server["fake_api"]) == calls, "counting ran no model call"


def test_models_in_anthropic_shape(server):
    page = client(server).models.list()
    assert page.data and all(m.type == "model" for m in page.data)
    ids = [m.id for m in page.data]
    assert any(i.startswith("claude-") for i in ids), ids
    one = client(server).models.retrieve(ids[0])
    assert one.id == ids[0] and one.display_name


def test_bearer_auth_master_key_and_beta_query(server):
    bearer = anthropic.Anthropic(base_url=server["url"], auth_token=KEY, max_retries=0, timeout=120)
    r = bearer.messages.create(model=MODEL, max_tokens=1024,
                               messages=[{"role": "user", "content": "by bearer"}])
    assert r.content[0].text.startswith("echo: by bearer")
    r = client(server, MASTER).messages.create(model=MODEL, max_tokens=1024,
                                               messages=[{"role": "user", "content": "by master"}])
    assert r.content[0].text.startswith("echo: by master")
    # the beta surface: /v1/messages?beta=true with an anthropic-beta header
    r = client(server).beta.messages.create(model=MODEL, max_tokens=1024, betas=["context-1m-2025-08-07"],
                                            messages=[{"role": "user", "content": "beta"}])
    assert r.content[0].text.startswith("echo: beta")


def test_probes_answer_without_a_key(server):
    for path in ("/", "/api/hello"):
        r = requests.head(server["url"] + path, timeout=10)
        assert r.status_code == 200, path


def error_type(e):
    assert e.body["type"] == "error", e.body
    assert e.request_id, "a request-id header"
    return e.body["error"]["type"]


def test_a_bad_key_is_an_authentication_error(server):
    with pytest.raises(anthropic.AuthenticationError) as e:
        client(server, "sk-not-a-key").messages.create(
            model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 401
    assert error_type(e.value) == "authentication_error"


def test_a_model_outside_the_keys_scope_is_a_permission_error(server):
    key = new_key(server, models=["gpt-3.5-turbo"])
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        client(server, key).messages.create(
            model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 403
    assert error_type(e.value) == "permission_error"


def test_an_unknown_model_is_not_found(server):
    with pytest.raises(anthropic.NotFoundError) as e:
        client(server).messages.create(
            model="claude-imaginary-9", max_tokens=1024, messages=[{"role": "user", "content": "x"}])
    assert e.value.status_code == 404
    assert error_type(e.value) == "not_found_error"


def test_a_key_over_its_rate_is_a_rate_limit_error_with_retry_after(server):
    c = client(server, new_key(server, rpm_limit=1))
    c.messages.create(model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "one"}])
    with pytest.raises(anthropic.RateLimitError) as e:
        c.messages.create(model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "two"}])
    assert e.value.status_code == 429
    assert error_type(e.value) == "rate_limit_error"
    assert int(e.value.response.headers["retry-after"]) >= 1


def test_bad_requests_name_the_field(server):
    c = client(server)
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(model=MODEL, max_tokens=anthropic.omit,
                          messages=[{"role": "user", "content": "no max_tokens"}])
    assert error_type(e.value) == "invalid_request_error"
    assert "max_tokens" in e.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as e:
        c.messages.create(model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "this is not base64!"}}]}])
    assert error_type(e.value) == "invalid_request_error"
    assert "messages.0.content.1.source" in e.value.body["error"]["message"], e.value.body


def test_thinking_with_its_signature(server):
    c = client(server)
    prompt = "why is the sky blue? [[think]]"
    thinking, signature = signed(prompt)
    r = c.messages.create(model=MODEL, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
                          messages=[{"role": "user", "content": prompt}])
    assert [b.type for b in r.content] == ["thinking", "text"], r.content
    assert r.content[0].thinking == thinking
    assert r.content[0].signature == signature
    assert r.content[1].text.startswith("echo: why is the sky blue?")
    # streamed: thinking deltas, then the signature, then the text
    prompt = "and in a stream? [[think]]"
    thinking, signature = signed(prompt)
    with c.messages.stream(model=MODEL, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
                           messages=[{"role": "user", "content": prompt}]) as s:
        kinds = [e.type for e in s]
        final = s.get_final_message()
    assert "thinking" in kinds and "signature" in kinds and "text" in kinds, kinds
    assert kinds.index("signature") < kinds.index("text")
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert (final.content[0].thinking, final.content[0].signature) == (thinking, signature)
    # without `thinking`, the answer has no thinking block, as the API answers
    r = c.messages.create(model=MODEL, max_tokens=1024,
                          messages=[{"role": "user", "content": "no thoughts shown [[think]]"}])
    assert [b.type for b in r.content] == ["text"]
