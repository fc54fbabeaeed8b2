"""OpenAI function calling with the real CLI (against the fake Anthropic API, which calls the
offered tools on `[[call:NAME {json}]]`) and the official `openai` client: the CLI calls the
gateway's MCP bridge, the client gets `tool_calls`, and its `tool` results continue the same
CLI turn (the fake API's `[n=..]` counter proves no replay). Parallel calls, streaming, the
conversation going on after a tool round, `tool_choice: "none"`, tool sets kept apart between
conversations, and the tool-result timeout freeing the worker."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from conftest import KEY, REAL_CLI, free_port, running_server, wait_until, worker_toml

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def tools_server(fake_api):
    if not REAL_CLI.exists():
        if os.environ.get("CI"):
            raise AssertionError(f"the real CLI is required in CI: {REAL_CLI} missing")
        pytest.skip("real CLI not installed (scripts/install-cli.sh)")
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    config = f"""
[server]
host = "127.0.0.1"
port = {port}
https_port = 0
log_level = "info"
[pool]
min_workers = 1
max_workers = 4
tool_result_timeout = "4s"
{worker_toml(REAL_CLI, tmp, fake_api)}[auth]
api_keys = ["{KEY}"]
[limits]
rate_limit_requests = 0
"""
    with running_server(tmp, config, port) as url:
        yield {"url": url, "fake_api": fake_api, "log": tmp / "server.log"}
    shutil.rmtree(tmp, ignore_errors=True)


def client(server):
    return openai.OpenAI(base_url=server["url"] + "/v1", api_key=KEY, max_retries=0, timeout=60)


def last_upstream_request(server):
    with urllib.request.urlopen(f"http://127.0.0.1:{server['fake_api']}/_last_request") as r:
        return json.load(r)


def counter(text):
    return int(text.rsplit("[n=", 1)[1].split("]")[0])


def test_a_tool_call_round_continues_the_same_turn_and_the_conversation_goes_on(tools_server):
    c = client(tools_server)
    messages = [{"role": "user", "content": 'Weather in Paris? [[call:get_weather {"city": "Paris"}]]'}]
    first = c.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_")
    offered = [t["name"] for t in last_upstream_request(tools_server)["tools"]]
    assert offered == ["mcp__client__get_weather"], "only the client's function, no built-in tool"

    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    t0 = time.monotonic()
    second = c.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    continued_in = time.monotonic() - t0
    text = second.choices[0].message.content
    assert second.choices[0].finish_reason == "stop"
    assert f"{call.id.replace('call_', 'toolu_')}=sunny, 21 C" in text, text
    # user, assistant tool_use, user tool_result: the same CLI turn went on (no replay).
    assert counter(text) == 3, text
    assert second.usage.total_tokens > 0
    print(f"tool result to answer: {continued_in * 1000:.0f} ms")

    # The conversation goes on with its context (stateless client: the whole history): the
    # next turn runs in the same CLI conversation, which still holds the tool round (the CLI
    # merges the round into its user and assistant messages).
    messages += [{"role": "assistant", "content": text},
                 {"role": "user", "content": "thanks"}]
    third = c.chat.completions.with_raw_response.create(model="sonnet", messages=messages,
                                                        tools=[WEATHER])
    upstream = json.dumps(last_upstream_request(tools_server)["messages"])
    assert third.parse().choices[0].finish_reason == "stop"
    assert "thanks" in upstream and call.id.replace("call_", "toolu_") in upstream
    assert "sunny, 21 C" in upstream, "the tool result is still in the conversation"
    assert upstream.count("Weather in Paris?") == 1, "no replay of the history" 


def test_parallel_calls_come_in_one_answer_and_streaming_deltas_accumulate(tools_server):
    c = client(tools_server)
    messages = [{"role": "user", "content":
                 'Paris? [[call:get_weather {"city": "Paris"}]] [[call:get_time {"city": "Rome"}]]'}]
    stream = c.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER, TIME],
                                       stream=True, stream_options={"include_usage": True})
    calls, finish = {}, None
    for chunk in stream:
        if not chunk.choices:
            continue
        for d in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            slot["id"] = d.id or slot["id"]
            slot["name"] += d.function.name or ""
            slot["arguments"] += d.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[1]["arguments"]) == {"city": "Rome"}
    messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": calls[i]["id"], "type": "function",
         "function": {"name": calls[i]["name"], "arguments": calls[i]["arguments"]}}
        for i in sorted(calls)]})
    messages += [{"role": "tool", "tool_call_id": calls[0]["id"], "content": "rain"},
                 {"role": "tool", "tool_call_id": calls[1]["id"], "content": "14:05"}]
    text = ""
    for chunk in c.chat.completions.create(model="sonnet", messages=messages,
                                           tools=[WEATHER, TIME], stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert "=rain" in text and "=14:05" in text, text
    assert counter(text) == 3, "one assistant message with both calls, one with both results"


def test_tool_choice_none_offers_nothing_and_tool_sets_stay_apart(tools_server):
    c = client(tools_server)
    r = c.chat.completions.create(
        model="sonnet", tool_choice="none", tools=[WEATHER],
        messages=[{"role": "user", "content": 'no tools [[call:get_weather {"city": "Oslo"}]]'}])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.tool_calls is None
    assert not last_upstream_request(tools_server).get("tools")
    # Another conversation with another tool set sees only its own.
    r = c.chat.completions.create(
        model="sonnet", tools=[TIME],
        messages=[{"role": "user", "content": 'time? [[call:get_time {"city": "Oslo"}]]'}])
    assert r.choices[0].message.tool_calls[0].function.name == "get_time"
    offered = [t["name"] for t in last_upstream_request(tools_server)["tools"]]
    assert offered == ["mcp__client__get_time"]
    # Bad tool definitions and unknown results are clear 400s.
    with pytest.raises(openai.BadRequestError, match="function names"):
        c.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "x"}],
                                  tools=[{"type": "function", "function": {"name": "bad name"}}])
    with pytest.raises(openai.BadRequestError, match="no turn is waiting"):
        c.chat.completions.create(model="sonnet", tools=[TIME], messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_nope", "type": "function",
                                                                  "function": {"name": "get_time", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_nope", "content": "?"}])


def test_a_turn_whose_results_never_come_ends_and_frees_its_worker(tools_server):
    c = client(tools_server)
    metrics = lambda: urllib.request.urlopen(tools_server["url"] + "/metrics").read().decode()
    # (Turns an earlier test left waiting end first.)
    wait_until("no parked turn", lambda: "claude_pool_parked_turns 0" in metrics(), 30)
    messages = [{"role": "user", "content": 'stuck [[call:get_weather {"city": "Lima"}]]'}]
    r = c.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    call = r.choices[0].message.tool_calls[0]
    health = lambda: json.load(urllib.request.urlopen(tools_server["url"] + "/v1/health"))
    assert "claude_pool_parked_turns 1" in metrics()
    assert health()["pool"]["workers_busy"] >= 1, "the parked turn holds its worker"
    # The pool's tool_result_timeout is 4 s here: the turn is interrupted, its worker freed.
    wait_until("the parked turn to end", lambda: health()["pool"]["workers_busy"] == 0, 30)
    assert "claude_pool_parked_turns 0" in metrics()
    messages += [r.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "too late"}]
    with pytest.raises(openai.BadRequestError, match="tool_result_timeout") as late:
        c.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    assert late.value.body["code"] == "tool_call_ended", late.value.body
    assert call.id in late.value.body["message"]


def test_agent_frameworks_complete_tool_loops(tools_server):
    """The Vercel AI SDK and the openai Node client (tests/node/tools.mjs), and a LangChain
    `bind_tools` loop, each completing a two-step tool use."""
    node_dir = Path(__file__).resolve().parents[1] / "node"
    if not (node_dir / "node_modules").is_dir():
        if os.environ.get("CI"):
            raise AssertionError("tests/node/node_modules missing: scripts/test.sh installs it")
        pytest.skip("run `npm ci` in tests/node first")
    env = dict(os.environ, CP_URL=tools_server["url"], CP_KEY=KEY)
    r = subprocess.run(["node", str(node_dir / "tools.mjs")], env=env, cwd=node_dir,
                       capture_output=True, text=True, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]

    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        return f"{city}: cloudy, 12 C"

    llm = ChatOpenAI(base_url=tools_server["url"] + "/v1", api_key=KEY, model="sonnet",
                     max_retries=0).bind_tools([get_weather])
    messages = [HumanMessage('Weather in Bergen? [[call:get_weather {"city": "Bergen"}]]')]
    ai = llm.invoke(messages)
    assert ai.tool_calls and ai.tool_calls[0]["name"] == "get_weather"
    messages.append(ai)
    for call in ai.tool_calls:
        messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    final = llm.invoke(messages)
    assert "Bergen: cloudy, 12 C" in final.content, final.content


CITY = {"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": {
    "type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
    "required": ["city", "temp"], "additionalProperties": False}}}


def test_a_json_schema_answer_is_valid_json_or_a_visible_error(tools_server):
    c = client(tools_server)
    ask = 'Oslo? [[call:respond_with_json {"city": "Oslo", "temp": 3}]]'
    r = c.chat.completions.create(model="sonnet", response_format=CITY,
                                  messages=[{"role": "user", "content": ask}])
    assert r.choices[0].finish_reason == "stop"
    assert json.loads(r.choices[0].message.content) == {"city": "Oslo", "temp": 3}
    text = ""
    for chunk in c.chat.completions.create(model="sonnet", response_format=CITY, stream=True,
                                           messages=[{"role": "user", "content": ask}]):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert json.loads(text) == {"city": "Oslo", "temp": 3}
    # With the client's own tools too: they still come back as tool_calls.
    r = c.chat.completions.create(model="sonnet", response_format=CITY, tools=[WEATHER],
                                  messages=[{"role": "user", "content":
                                             'x [[call:get_weather {"city": "Oslo"}]]'}])
    assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
    # An answer that does not match the schema, or is not JSON at all, is an error.
    for content, fmt in [('x [[call:respond_with_json {"city": 5, "temp": 1}]]', CITY),
                         ("just text", {"type": "json_object"})]:
        with pytest.raises(openai.APIStatusError) as e:
            c.chat.completions.create(model="sonnet", response_format=fmt,
                                      messages=[{"role": "user", "content": content}])
        assert e.value.status_code == 502
        assert e.value.body["code"] == "response_format_unmet", e.value.body
    with pytest.raises(openai.BadRequestError, match="response_format"):
        c.chat.completions.create(model="sonnet", response_format={"type": "yaml"},
                                  messages=[{"role": "user", "content": "x"}])


def test_session_clients_send_only_new_messages_and_deleting_the_session_ends_a_parked_turn(tools_server):
    c = client(tools_server)
    h = {"X-Session-Id": "tool-session-1"}
    r = c.chat.completions.create(model="sonnet", tools=[WEATHER], extra_headers=h, messages=[
        {"role": "user", "content": 'Lyon? [[call:get_weather {"city": "Lyon"}]]'}])
    call = r.choices[0].message.tool_calls[0]
    r = c.chat.completions.create(model="sonnet", tools=[WEATHER], extra_headers=h, messages=[
        {"role": "tool", "tool_call_id": call.id, "content": "windy"}])
    assert "=windy" in r.choices[0].message.content
    r = c.chat.completions.create(model="sonnet", tools=[WEATHER], extra_headers=h, messages=[
        {"role": "user", "content": "and tomorrow?"}])
    assert r.choices[0].finish_reason == "stop"
    upstream = json.dumps(last_upstream_request(tools_server)["messages"])
    assert "windy" in upstream and "and tomorrow?" in upstream, "the same conversation goes on"
    # A parked turn of a session that is deleted ends with it (before its timeout).
    h = {"X-Session-Id": "tool-session-2"}
    r = c.chat.completions.create(model="sonnet", tools=[WEATHER], extra_headers=h, messages=[
        {"role": "user", "content": 'Nice? [[call:get_weather {"city": "Nice"}]]'}])
    assert r.choices[0].finish_reason == "tool_calls"
    metrics = lambda: urllib.request.urlopen(tools_server["url"] + "/metrics").read().decode()
    parked = lambda: int(re.search(r"^claude_pool_parked_turns (\d+)$", metrics(), re.M)[1])
    before = parked()
    assert before >= 1
    req = urllib.request.Request(tools_server["url"] + "/api/v1/sessions/tool-session-2",
                                 method="DELETE", headers={"Authorization": f"Bearer {KEY}"})
    assert urllib.request.urlopen(req).status == 200
    assert parked() == before - 1, "the deleted session's parked turn ended with it"
