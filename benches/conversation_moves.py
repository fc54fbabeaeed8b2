"""What a conversation costs when it moves to another replica (two claude-pool replicas on
one database, e.g. started by benches/replicas.sh): for N conversations of three turns on
replica A, the latency of

  - its next turn on A (warm: the worker holds it),
  - its next turn on B instead, with X-Session-Id (B takes it up from the store: writes the
    transcript, starts a CLI with --resume),
  - the same for a stateless client (the whole history each turn): the next turn on A (the
    history fingerprint continues the live conversation) and on B (the history is replayed
    into a new conversation).

usage: python3 benches/conversation_moves.py URL_A URL_B KEY [N]"""
import json
import statistics
import sys
import time
import urllib.request

url_a, url_b, key = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 20


def chat(url, messages, session=None):
    """One turn; returns (ms, answer). The conversation is ended afterwards on replica B, so
    every measured turn there finds a warm worker free, as it would with spare capacity."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if session:
        headers["X-Session-Id"] = session
    req = urllib.request.Request(url + "/v1/chat/completions", method="POST", headers=headers,
                                 data=json.dumps({"model": "sonnet", "messages": messages}).encode())
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = json.load(r)
        sid = r.headers["X-Session-Id"]
    ms = (time.perf_counter() - t0) * 1000
    if url == url_b:
        end = urllib.request.Request(f"{url}/api/v1/sessions/{sid}", method="DELETE",
                                     headers={"Authorization": f"Bearer {key}"})
        urllib.request.urlopen(end, timeout=30).read()
        wait_for_spare()
    return ms, body["choices"][0]["message"]["content"]


def wait_for_spare():
    """Until replica B has a fresh idle worker again (its pool replaces the one handed back)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url_b + "/metrics", timeout=5) as r:
            text = r.read().decode()
        idle = [l for l in text.splitlines() if l.startswith('claude_pool_workers{state="idle"}')]
        starting = [l for l in text.splitlines() if l.startswith('claude_pool_workers{state="starting"}')]
        if idle and float(idle[0].split()[-1]) >= 2 and (not starting or float(starting[0].split()[-1]) == 0):
            return
        time.sleep(0.05)


def p50(xs):
    return f"p50 {statistics.median(xs):7.1f} ms  p90 {sorted(xs)[int(0.9 * (len(xs) - 1))]:7.1f} ms"


stamp = int(time.time())
stay, move, stateless_stay, stateless_move = [], [], [], []
for i in range(n):
    for sid, out in ((f"stay-{stamp}-{i}", stay), (f"move-{stamp}-{i}", move)):
        for k in range(3):
            chat(url_a, [{"role": "user", "content": f"turn {k}"}], sid)
        ms, answer = chat(url_a if out is stay else url_b, [{"role": "user", "content": "turn 3"}], sid)
        assert "[n=7]" in answer, answer
        out.append(ms)
    for target, out in ((url_a, stateless_stay), (url_b, stateless_move)):
        history = []
        for k in range(3):
            history.append({"role": "user", "content": f"{stamp} {i} {target} turn {k}"})
            _, answer = chat(url_a, history)
            history.append({"role": "assistant", "content": answer})
        history.append({"role": "user", "content": "turn 3"})
        ms, answer = chat(target, history)
        out.append(ms)
print(f"X-Session-Id, next turn on the same replica: {p50(stay)}")
print(f"X-Session-Id, next turn on another replica:  {p50(move)}  (taken up from the store)")
print(f"whole history, same replica:                 {p50(stateless_stay)}")
print(f"whole history, another replica:              {p50(stateless_move)}  (replayed)")
