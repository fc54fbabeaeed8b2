"""Turns parked for tool results with the real CLI (against the fake Anthropic API) and the
official `openai` client: parked turns whose results do not come give their workers to other
keys' turns instead of starving them, and their results, sent later, still reach the model in
the same conversation (`/_last_request` shows them); a warm and a resumed continuation are
timed. The CLI's own limit on a silent MCP call follows `pool.tool_result_timeout`, whatever
`[worker.env]` says."""
import concurrent.futures
import json
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from conftest import KEY, REAL_CLI, free_port, running_server, worker_toml

OTHER = "sk-python-other-key"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def start(fake_api, pool, env="", per_key=4):
    if not REAL_CLI.exists():
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
{pool}
{worker_toml(REAL_CLI, tmp, fake_api)}{env}
[auth]
api_keys = ["{KEY}", "{OTHER}"]
[limits]
rate_limit_requests = 0
max_parked_turns_per_key = {per_key}
"""
    return tmp, running_server(tmp, config, port)


def client(url, key=KEY):
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=90)


def last_upstream_request(fake_api):
    with urllib.request.urlopen(f"http://127.0.0.1:{fake_api}/_last_request") as r:
        return json.load(r)


def pool(url):
    return json.load(urllib.request.urlopen(url + "/v1/health"))["pool"]


def gauge(url, name):
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    return int(next(l for l in text.splitlines() if l.startswith(name + " ")).split()[-1])


def ask_weather(c, city, session):
    messages = [{"role": "user", "content": f'Weather in {city}? [[call:get_weather {{"city": "{city}"}}]]'}]
    r = c.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER],
                                  extra_headers={"X-Session-Id": session})
    assert r.choices[0].finish_reason == "tool_calls"
    return messages + [r.choices[0].message.model_dump(exclude_none=True)], r.choices[0].message.tool_calls[0]


def send_result(c, messages, call, result, session):
    messages = messages + [{"role": "tool", "tool_call_id": call.id, "content": result}]
    t0 = time.monotonic()
    r = c.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER],
                                  extra_headers={"X-Session-Id": session})
    return r.choices[0].message.content, time.monotonic() - t0


def the_model_saw(fake_api, cli_id, result):
    """The last upstream request carries the client's result for `cli_id`: a tool_result of the
    turn that held its worker, or the message naming the call of a turn set aside."""
    last = last_upstream_request(fake_api)["messages"][-1]
    blocks = last["content"] if isinstance(last["content"], list) else [{"type": "text", "text": last["content"]}]
    for b in blocks:
        if b.get("type") == "tool_result" and b.get("tool_use_id") == cli_id:
            content = b["content"] if isinstance(b["content"], str) else " ".join(
                p.get("text", "") for p in b["content"])
            if content == result:
                return "held"
        if b.get("type") == "text" and f"[result of tool call {cli_id} (get_weather)]\n{result}" in b["text"]:
            return "set aside"
    raise AssertionError(f"the model did not get {result!r} for {cli_id}: {json.dumps(last)[:2000]}")


def counter(text):
    return int(text.rsplit("[n=", 1)[1].split("]")[0])


def test_parked_turns_give_their_workers_to_other_keys_and_still_continue(fake_api):
    tmp, server = start(fake_api, 'min_workers = 1\nmax_workers = 4\nqueue_timeout = "20s"\n'
                                  'parked_turn_grace = "1s"\ntool_result_timeout = "120s"')
    with server as url:
        a, b = client(url), client(url, OTHER)
        # Four turns park, holding all four workers (structured-output clients never answer).
        parked = [ask_weather(a, f"City{i}", f"parked-{i}") for i in range(4)]
        assert gauge(url, "claude_pool_parked_turns") == 4
        assert pool(url)["workers_busy"] == 4
        # Another key's ordinary requests (slow, so they need four workers at once) complete.
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            answers = list(ex.map(lambda i: b.chat.completions.create(
                model="sonnet", messages=[{"role": "user", "content": f"hello {i} [[slow]]"}]), range(4)))
        waited = time.monotonic() - t0
        assert all(r.choices[0].message.content.startswith("echo: hello") for r in answers)
        assert pool(url)["queue_timeouts"] == 0
        set_aside = gauge(url, "claude_pool_parked_turns_set_aside")
        assert set_aside >= 1 and set_aside + gauge(url, "claude_pool_parked_turns") == 4
        print(f"other key served in {waited:.1f} s; {set_aside} parked turns gave their workers up")

        # The results come later: each reaches the model in its own conversation.
        resumed = 0
        for i, (messages, call) in enumerate(parked):
            cli_id = call.id.replace("call_", "toolu_")
            before = pool(url)["resumes"]
            text, took = send_result(a, messages, call, f"sunny {i}", f"parked-{i}")
            how = the_model_saw(fake_api, cli_id, f"sunny {i}")
            where = "resumed" if pool(url)["resumes"] > before else "warm"
            # The same conversation, nothing replayed: user, assistant tool_use, user (tool
            # result, or the CLI's refusal, its note of the interrupt and the results); resumed
            # from its transcript, the CLI puts "No response requested." after the note, and the
            # results come as a message of their own.
            assert counter(text) == (5 if where == "resumed" else 3), text
            resumed += where == "resumed"
            assert how == "set aside" or where == "warm"
            print(f"continuation {i} ({how}, {where}): {took * 1000:.0f} ms")
        assert resumed >= 1, "a conversation whose worker went to another key was resumed"
        assert gauge(url, "claude_pool_parked_turns_set_aside") == 0
    shutil.rmtree(tmp, ignore_errors=True)


def test_a_set_aside_turn_continues_warm_when_its_worker_was_not_needed(fake_api):
    tmp, server = start(fake_api, 'min_workers = 1\nmax_workers = 4\nparked_turn_grace = "0s"\n'
                                  'tool_result_timeout = "120s"', per_key=1)
    with server as url:
        a = client(url)
        times = []
        for i in range(3):
            first, call = ask_weather(a, f"Oslo{i}", f"warm-a{i}")
            # The key may hold one worker parked: its next call sets the first turn aside; the
            # pool is not full, so the conversation keeps its worker.
            second, other = ask_weather(a, f"Bergen{i}", f"warm-b{i}")
            resumes = pool(url)["resumes"]
            text, took = send_result(a, first, call, f"cold {i}", f"warm-a{i}")
            assert the_model_saw(fake_api, call.id.replace("call_", "toolu_"), f"cold {i}") == "set aside"
            assert counter(text) == 3, text
            assert pool(url)["resumes"] == resumes, "warm: the conversation never left its worker"
            times.append(took)
            send_result(a, second, other, "mild", f"warm-b{i}")
        print("warm continuations of turns set aside: " + ", ".join(f"{t * 1000:.0f} ms" for t in times))
    shutil.rmtree(tmp, ignore_errors=True)


def test_the_clis_own_limit_on_a_silent_call_follows_the_pools_deadline(fake_api):
    """An operator's CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT of 1 s would make the CLI give the held
    call up at its first check (30 s) and answer with its own error text; the gateway sets it
    from pool.tool_result_timeout, so a result sent after 33 s still reaches the model."""
    tmp, server = start(fake_api, 'min_workers = 1\nmax_workers = 2\nparked_turn_grace = "5m"\n'
                                  'tool_result_timeout = "120s"',
                        env='CLAUDE_CODE_MCP_TOOL_IDLE_TIMEOUT = "1000"\n')
    with server as url:
        a = client(url)
        messages, call = ask_weather(a, "Quito", "slow-client")
        time.sleep(33)
        text, _ = send_result(a, messages, call, "drizzle", "slow-client")
        assert "no response or progress" not in text, text
        assert the_model_saw(fake_api, call.id.replace("call_", "toolu_"), "drizzle") == "held"
        assert text == f"echo: tool results: {call.id.replace('call_', 'toolu_')}=drizzle [n=3]"
    shutil.rmtree(tmp, ignore_errors=True)
