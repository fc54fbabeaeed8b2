"""The Responses API through the official `openai` client: text and message-list input,
`instructions`, `previous_response_id` (a conversation), streaming with typed events, usage,
retrieval and deletion, and clear 400s for what is not supported."""
import openai
import pytest

from conftest import KEY
from test_openai_client import context_counter

MODEL = "sonnet"


def client(server):
    return openai.OpenAI(base_url=server["url"] + "/v1", api_key=KEY, max_retries=0, timeout=60)


def test_create_continue_retrieve_and_delete(server):
    c = client(server)
    r = c.responses.create(model=MODEL, input="hello responses", instructions="Be brief.")
    assert r.object == "response" and r.status == "completed"
    assert "hello responses" in r.output_text
    assert r.usage.output_tokens > 0 and r.usage.total_tokens >= r.usage.output_tokens
    assert context_counter(server, r.output_text) == 1
    # previous_response_id continues the same conversation on its worker.
    r2 = c.responses.create(model=MODEL, input="and more", previous_response_id=r.id)
    assert "and more" in r2.output_text
    assert context_counter(server, r2.output_text) == 2, r2.output_text
    assert r2.previous_response_id == r.id
    # Branching from the first response again: its history is replayed into a new conversation.
    r3 = c.responses.create(model=MODEL, input="another branch", previous_response_id=r.id)
    assert "another branch" in r3.output_text
    got = c.responses.retrieve(r2.id)
    assert got.id == r2.id and got.output_text == r2.output_text
    c.responses.delete(r2.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(r2.id)


def test_message_list_input_and_streaming_events(server):
    c = client(server)
    events = []
    text = ""
    with c.responses.stream(model=MODEL, input=[
            {"role": "developer", "content": "Answer plainly."},
            {"role": "user", "content": [{"type": "input_text", "text": "stream this"}]}]) as s:
        for ev in s:
            events.append(ev.type)
            if ev.type == "response.output_text.delta":
                text += ev.delta
        final = s.get_final_response()
    assert events[0] == "response.created" and events[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.output_text.done",
                 "response.output_item.done"):
        assert kind in events, events
    assert "stream this" in text and final.output_text == text
    assert final.usage.input_tokens > 0


def test_max_output_tokens_makes_an_incomplete_response(server):
    r = client(server).responses.create(model=MODEL, input="long [[long]]", max_output_tokens=5)
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"
    assert 0 < len(r.output_text) <= 20


def test_unsupported_fields_are_400s_naming_them(server):
    c = client(server)
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model=MODEL, input="x", tools=[
            {"type": "function", "name": "f", "parameters": {"type": "object"}}])
    assert e.value.param == "tools"
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model=MODEL, input=[
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}])
    assert e.value.param == "input[0].content[0]"
    with pytest.raises(openai.BadRequestError) as e:
        c.responses.create(model=MODEL, input=[
            {"type": "function_call_output", "call_id": "c", "output": "x"}])
    assert e.value.param == "input[0]"
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model=MODEL, input="x", previous_response_id="resp_unknown")
