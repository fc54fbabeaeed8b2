"""Function calling timings against a running claude-pool with real CLI workers and the fake
Anthropic API: from the client's tool results to the continued answer (the parked turn goes
on), against the same history sent as a new conversation (replayed into one turn on a warm
worker), and against a first request for a new function set (a worker is started for it).

usage: python3 benches/tool_rounds.py URL KEY [ROUNDS]"""
import statistics
import sys
import time
import uuid

import openai

url, key = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 20
c = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)


def tools(tag):
    return [{"type": "function", "function": {"name": "get_weather", "description": f"weather {tag}",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def timed(f):
    t0 = time.perf_counter()
    r = f()
    return (time.perf_counter() - t0) * 1000, r


warm, replay, cold, firsts = [], [], [], []
stable = tools("stable")
for i in range(rounds):
    q = [{"role": "user", "content": f'round {i} [[call:get_weather {{"city": "Paris"}}]]'}]
    ms, first = timed(lambda: c.chat.completions.create(model="sonnet", messages=q, tools=stable))
    firsts.append(ms)
    call = first.choices[0].message.tool_calls[0]
    history = q + [first.choices[0].message.model_dump(exclude_none=True),
                   {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    ms, _ = timed(lambda: c.chat.completions.create(model="sonnet", messages=history, tools=stable))
    warm.append(ms)
    # The same history as a new conversation: replayed into one turn on a warm worker (without
    # tools: the fake API would call the tool again, as the replayed text still asks for it).
    fresh = history + [{"role": "user", "content": f"and now? {uuid.uuid4()}"}]
    ms, _ = timed(lambda: c.chat.completions.create(model="sonnet", messages=fresh, tools=stable,
                                                    tool_choice="none"))
    replay.append(ms)
    # A function set never seen: a worker is started for it.
    new_set = tools(uuid.uuid4().hex)
    cq = [{"role": "user", "content": 'cold [[call:get_weather {"city": "Rome"}]]'}]
    ms, r = timed(lambda: c.chat.completions.create(model="sonnet", tools=new_set, messages=cq))
    cold.append(ms)
    # (Its turn is finished, so its worker is free again.)
    cq += [r.choices[0].message.model_dump(exclude_none=True),
           {"role": "tool", "tool_call_id": r.choices[0].message.tool_calls[0].id, "content": "ok"}]
    c.chat.completions.create(model="sonnet", tools=new_set, messages=cq)


def row(name, xs):
    xs = sorted(xs)
    p90 = xs[int(0.9 * (len(xs) - 1))]
    print(f"{name:<44} p50 {statistics.median(xs):7.1f} ms   p90 {p90:7.1f} ms   n={len(xs)}")


row("tool results -> answer (parked turn goes on)", warm)
row("same history as a new conversation (replay)", replay)
row("first call of a new function set (worker start)", cold)
row("first call of the stable set (warm worker)", firsts)
