"""claude-pool as a drop-in `base_url` for the official `openai` client, with the fake CLI and
with the real Claude Code CLI (against the fake Anthropic API) as workers.

The fake CLI answers `echo: <text> [turn=k]`; the real CLI through the fake Anthropic API
answers `echo: <text> [n=m]` where m is the number of messages the CLI sent upstream, so both
show how much context a conversation kept."""
import re
import uuid

import openai
import pytest

from conftest import KEY, fake_api_requests

MODEL = "gpt-4-turbo"  # an alias of sonnet, the workers' default model


def client(server, key=KEY):
    return openai.OpenAI(base_url=server["url"] + "/v1", api_key=key, max_retries=0, timeout=60)


def context_counter(server, text):
    """Turn number (fake CLI) or 1-based turn derived from the upstream message count (real)."""
    if server["kind"] == "fake":
        return int(re.search(r"\[turn=(\d+)\]", text).group(1))
    n = int(re.search(r"\[n=(\d+)\]", text).group(1))
    return (n + 1) // 2


def test_models_are_listed(server):
    ids = {m.id for m in client(server).models.list()}
    assert {"gpt-4", "gpt-4-turbo", "gpt-3.5-turbo", "sonnet", "opus", "haiku"} <= ids


def test_non_streaming_completion(server):
    r = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello there"}])
    assert r.object == "chat.completion"
    assert r.model == MODEL
    assert r.choices[0].message.role == "assistant"
    assert "hello there" in r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # Cache reads are part of prompt_tokens, as OpenAI counts them, and reported apart too.
    assert 0 <= r.usage.prompt_tokens_details.cached_tokens <= r.usage.prompt_tokens
    assert r.usage.completion_tokens_details.accepted_prediction_tokens == 0


def test_streaming_with_usage(server):
    stream = client(server).chat.completions.create(
        model=MODEL, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream this please"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "stream this please" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals and finals[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_session_header_keeps_context(server):
    c = client(server)
    sid = f"py-{uuid.uuid4()}"
    counters = []
    for text in ["alpha", "beta", "gamma"]:
        raw = c.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": text}],
            extra_headers={"X-Session-Id": sid})
        assert raw.headers["x-session-id"] == sid
        counters.append(context_counter(server, raw.parse().choices[0].message.content))
    assert counters == [1, 2, 3]


def test_stateless_history_reuses_one_warm_conversation(server):
    c = client(server)
    messages = [{"role": "user", "content": f"stateless {uuid.uuid4()}"}]
    sessions, counters = [], []
    before = fake_api_requests(server["fake_api"])
    for follow_up in ["and then?", "finally"]:
        raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
        sessions.append(raw.headers["x-session-id"])
        answer = raw.parse().choices[0].message.content
        counters.append(context_counter(server, answer))
        messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": follow_up}]
    raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
    sessions.append(raw.headers["x-session-id"])
    counters.append(context_counter(server, raw.parse().choices[0].message.content))
    assert len(set(sessions)) == 1, sessions
    assert counters == [1, 2, 3], "one warm conversation carried the context"
    if server["kind"] == "real":
        # Three upstream calls, one per turn: the history was never replayed.
        assert fake_api_requests(server["fake_api"]) - before == 3


def test_wrong_key_is_an_authentication_error(server):
    with pytest.raises(openai.AuthenticationError):
        client(server, key="sk-not-a-key").chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}])


def test_unknown_model_is_not_found(server):
    with pytest.raises(openai.NotFoundError):
        client(server).chat.completions.create(
            model="gpt-17-ultra", messages=[{"role": "user", "content": "x"}])
