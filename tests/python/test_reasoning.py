"""The model's thinking through the official `openai` client: `reasoning_content` on chat
completions (the message, and `delta.reasoning_content` before the text when streamed), and a
`reasoning` output item before the message on the Responses API (JSON, stream, stored). The
fake CLI and the fake Anthropic API answer a prompt with `[[think]]` with a thinking block
`thinking about: <prompt>` first; a plain prompt gets none, and then nothing says it thought."""
import openai

from conftest import KEY
from test_openai_client import context_counter

MODEL = "sonnet"


def client(server):
    return openai.OpenAI(base_url=server["url"] + "/v1", api_key=KEY, max_retries=0, timeout=60)


def thinking_of(text):
    return f"thinking about: {text}"


def test_chat_completion_carries_the_thinking_as_reasoning_content(server):
    c = client(server)
    prompt = "why is the sky blue? [[think]]"
    r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}])
    message = r.choices[0].message
    assert message.reasoning_content.startswith(thinking_of("why is the sky blue?"))
    assert "[[think]]" in message.reasoning_content
    assert "why is the sky blue?" in message.content
    assert "thinking about" not in message.content
    # The client gives the answer back with its reasoning: the conversation goes on warm.
    history = [{"role": "user", "content": prompt}, message.to_dict(),
               {"role": "user", "content": "and at night?"}]
    r2 = c.chat.completions.create(model=MODEL, messages=history)
    assert context_counter(server, r2.choices[0].message.content) == 2
    # A plain prompt: no reasoning_content at all (absent, not null).
    plain = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "plain"}])
    assert "reasoning_content" not in plain.choices[0].message.to_dict()
    assert getattr(plain.usage.completion_tokens_details, "reasoning_tokens", None) is None


def test_streamed_reasoning_comes_before_the_text(server):
    c = client(server)

    def stream(prompt, **kw):
        chunks = list(c.chat.completions.create(
            model=MODEL, stream=True, messages=[{"role": "user", "content": prompt}], **kw))
        kinds, reasoning, text = [], "", ""
        for ch in chunks:
            if not ch.choices:
                continue
            delta = ch.choices[0].delta.to_dict()
            if delta.get("reasoning_content"):
                kinds.append("reasoning")
                reasoning += delta["reasoning_content"]
            if delta.get("content"):
                kinds.append("content")
                text += delta["content"]
        return kinds, reasoning, text, chunks

    kinds, reasoning, text, _ = stream("stream a thought [[think]]")
    assert reasoning.startswith(thinking_of("stream a thought"))
    assert "stream a thought" in text and "thinking about" not in text
    assert "reasoning" in kinds and "content" in kinds
    assert kinds.index("content") > len(kinds) - 1 - kinds[::-1].index("reasoning"), kinds
    # The output limit cuts the text only: the whole thinking still comes.
    kinds, reasoning, text, chunks = stream("cut this [[think]] [[long]]", max_tokens=3)
    assert reasoning.startswith(thinking_of("cut this"))
    assert 0 < len(text) <= 12, text
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "length"
    kinds, reasoning, text, _ = stream("plain stream")
    assert reasoning == "" and "reasoning" not in kinds and "plain stream" in text


def test_a_response_starts_with_a_reasoning_item(server):
    c = client(server)
    r = c.responses.create(model=MODEL, input="ponder this [[think]]")
    assert [item.type for item in r.output] == ["reasoning", "message"]
    reasoning = r.output[0]
    assert reasoning.id.startswith("rs_")
    assert [s.type for s in reasoning.summary] == ["summary_text"]
    assert reasoning.summary[0].text.startswith(thinking_of("ponder this"))
    assert "ponder this" in r.output_text and "thinking about" not in r.output_text
    # Stored with it.
    got = c.responses.retrieve(r.id)
    assert [item.type for item in got.output] == ["reasoning", "message"]
    assert got.output[0].summary[0].text == reasoning.summary[0].text
    # Its output given back as input (a client that keeps the history itself): the reasoning
    # item is taken and left out, and the conversation goes on.
    history = [{"role": "user", "content": "ponder this [[think]]"}]
    history += [item.to_dict() for item in r.output]
    history.append({"role": "user", "content": "and then?"})
    r2 = c.responses.create(model=MODEL, input=history)
    assert [item.type for item in r2.output] == ["message"]
    assert context_counter(server, r2.output_text) == 2
    assert r2.usage.output_tokens_details.reasoning_tokens == 0
    plain = c.responses.create(model=MODEL, input="plain")
    assert [item.type for item in plain.output] == ["message"]


def test_a_streamed_response_sends_the_reasoning_summary_first(server):
    c = client(server)
    events = []
    with c.responses.stream(model=MODEL, input="stream a ponder [[think]]") as s:
        for ev in s:
            events.append(ev)
        final = s.get_final_response()
    kinds = [ev.type for ev in events]
    expected = ["response.created", "response.in_progress",
                "response.output_item.added", "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta"]
    assert kinds[:5] == expected, kinds
    assert events[2].item.type == "reasoning" and events[2].output_index == 0
    reasoning = "".join(ev.delta for ev in events
                        if ev.type == "response.reasoning_summary_text.delta")
    assert reasoning.startswith(thinking_of("stream a ponder"))
    done = kinds.index("response.reasoning_summary_text.done")
    assert events[done].text == reasoning
    assert kinds[done + 1:done + 5] == [
        "response.reasoning_summary_part.done", "response.output_item.done",
        "response.output_item.added", "response.content_part.added"]
    assert events[done + 3].item.type == "message" and events[done + 3].output_index == 1
    assert kinds[-1] == "response.completed"
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == reasoning
    assert "stream a ponder" in final.output_text
    with c.responses.stream(model=MODEL, input="plain ponder") as s:
        kinds = [ev.type for ev in s]
        final = s.get_final_response()
    assert not [k for k in kinds if "reasoning" in k], kinds
    assert [item.type for item in final.output] == ["message"]
