"""Three replicas on one PostgreSQL behind HAProxy (deploy/haproxy.cfg) behave as one gateway:
a key's rpm_limit holds across them, a revocation on one is enforced by all, and when one is
SIGKILLed under load (multi-turn conversations, with X-Session-Id and with the whole history,
from the project's load generator) every conversation goes on elsewhere with its context (the
fake API's [n=..] counter), the only failures are turns that were running on it, and none of
its workers is left. The numbers are in docs/operations.md ("Running several replicas")."""
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import KEY, MASTER, wait_until
from replicas import alive, load, metric, replicas, report

# Failures a client may see for a turn that was running on the killed replica: HAProxy's 502
# for a response not started, a stream cut off, a reset connection.
KILLED_TURN_ERRORS = ("http-502:", "stream-cut", "sse", "transport", "stream-error")


@pytest.fixture(scope="module")
def gateway(fake_api):
    with replicas(fake_api) as r:
        yield r


def call(url, method="GET", path="/v1/models", key=MASTER, body=None, headers=None):
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_a_revocation_on_one_replica_is_enforced_by_all_within_5_seconds(gateway):
    status, created = call(gateway.lb, "POST", "/key/generate", body={"key_alias": "revoked"})
    assert status == 200, created
    key = created["key"]
    for url in gateway.urls:
        assert call(url, key=key)[0] == 200
    status, _ = call(gateway.urls[0], "POST", "/key/delete", body={"keys": [key]})
    assert status == 200
    revoked_at = time.monotonic()
    for url in gateway.urls:
        wait_until("the revocation everywhere", lambda: call(url, key=key)[0] == 401, 5)
    took = time.monotonic() - revoked_at
    print(f"revocation enforced by all replicas within {took:.2f}s")
    assert took < 5


def test_an_rpm_limit_holds_for_the_whole_service(gateway):
    status, created = call(gateway.lb, "POST", "/key/generate", body={"rpm_limit": 60})
    assert status == 200, created
    key = created["key"]
    # The burst (60 at once) is spent first; then a minute of 20 requests a second through
    # HAProxy, spread round robin over the three replicas, passes 60 ± 10%.
    while call(gateway.lb, key=key)[0] == 200:
        pass
    accepted, refused = [], []
    stop = time.monotonic() + 60

    def hammer():
        while time.monotonic() < stop:
            t = time.monotonic()
            (accepted if call(gateway.lb, key=key)[0] == 200 else refused).append(t)
            time.sleep(max(0.0, 0.25 - (time.monotonic() - t)))

    threads = [threading.Thread(target=hammer) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"rpm_limit 60 across 3 replicas: {len(accepted)} accepted, {len(refused)} refused in 60 s")
    assert 54 <= len(accepted) <= 66, len(accepted)
    assert len(refused) > 500, "the hammer really hammered"


def say(url, session, text):
    status, body = call(url, "POST", "/v1/chat/completions", key=KEY,
                        body={"model": "sonnet", "messages": [{"role": "user", "content": text}]},
                        headers={"X-Session-Id": session})
    assert status == 200, body
    return body["choices"][0]["message"]["content"]


def turns_started(url):
    return metric(url, "claude_pool_pool_events_total", '{event="turns_started"}')


def test_conversations_survive_a_replica_killed_under_load(gateway, tmp_path):
    # A witness conversation decides the victim: the replica HAProxy hashes it to (the only
    # one whose turn count moves while nothing else runs), so the kill always hits a live
    # X-Session-Id conversation, which must go on elsewhere.
    before = [turns_started(u) for u in gateway.urls]
    for k in (1, 2):
        assert f"[n={2 * k - 1}]" in say(gateway.lb, "witness", f"witness {k}")
    moved = [turns_started(u) - b for u, b in zip(gateway.urls, before)]
    assert sorted(moved) == [0, 0, 2], moved
    victim = moved.index(2)
    sessions = load(gateway.lb, tmp_path / "sessions.json", "-c", "6", "-n", "150",
                    "--turns-per-session", "5", "--stream")
    history = load(gateway.lb, tmp_path / "history.json", "-c", "3", "-n", "60",
                   "--turns-per-session", "5", "--history")
    victim_url = gateway.urls[victim]
    wait_until("the victim serving conversations",
               lambda: metric(victim_url, "claude_pool_pool_events_total", '{event="turns_started"}') >= 8,
               120)
    assert sessions.poll() is None and history.poll() is None, "load still running at the kill"
    workers = gateway.kill(victim)
    assert workers, "the victim had started workers"
    wait_until("the victim's workers gone", lambda: not any(alive(p) for p in workers), 15)

    by_sessions, out1 = report(sessions, tmp_path / "sessions.json")
    by_history, out2 = report(history, tmp_path / "history.json")
    print(out1, out2)
    survivors = [u for i, u in enumerate(gateway.urls) if i != victim]
    adopted = sum(metric(u, "claude_pool_pool_events_total", '{event="conversations_adopted"}')
                  for u in survivors)
    kept = sum(metric(u, "claude_pool_conversation_turns_kept_total", '{event="kept"}')
               for u in survivors)
    print(f"taken up by the survivors: {adopted:.0f}; turns kept by them: {kept:.0f}")
    retried = 0
    for r, planned in ((by_sessions, 150), (by_history, 60)):
        errors = dict(r["errors"])
        assert errors.pop("context-lost", 0) == 0, r["errors"]
        retried += errors.pop("turns-retried", 0)
        for kind in errors:
            assert kind.startswith(KILLED_TURN_ERRORS), r["errors"]
        # Every attempt either completed or failed cleanly (a failed turn is sent again).
        assert r["ok"] + sum(errors.values()) == planned, r
    # The turns that failed were those running on the victim: at most one per client.
    assert retried <= 9, (by_sessions["errors"], by_history["errors"])
    # The witness goes on on a survivor with its whole context.
    assert "[n=5]" in say(gateway.lb, "witness", "witness 3")
    adopted = sum(metric(u, "claude_pool_pool_events_total", '{event="conversations_adopted"}')
                  for u in survivors)
    assert adopted >= 1, "the victim's conversations were taken up from the store"
