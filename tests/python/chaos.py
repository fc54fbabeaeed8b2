"""The chaos harness: mixed conversations against a `claude-pool serve` running the real CLI on
the fake Anthropic API, while workers are SIGKILLed and SIGSTOPped at random.

Every answer of the fake API ends in `[n=<messages the CLI sent>]`; turn k of a conversation
carries 2k-1 messages, so each answer proves whether the conversation kept its context. A turn
that fails must fail cleanly (an OpenAI error, or an in-band error event); the client then
retries it once, as an SDK with retries would. Used by `test_chaos.py` (short form in CI) and
runnable long (see docs/operations.md, "Chaos test").
"""
import json
import os
import random
import re
import signal
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import openai

N = re.compile(r"\[n=(\d+)\]")


@dataclass
class Tally:
    ok: int = 0
    failed_clean: int = 0
    hung: int = 0
    lost: int = 0
    context_errors: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what, detail=None):
        with self.lock:
            if what == "ok":
                self.ok += 1
            elif what == "failed":
                self.failed_clean += 1
                self.failures.append(detail)
            elif what == "lost":
                self.lost += 1
                self.failures.append(detail)
            elif what == "hung":
                self.hung += 1
                self.failures.append(detail)
            elif what == "context":
                self.context_errors.append(detail)

    def context_report(self):
        """The context errors, each with the failed attempts of its conversation before it."""
        out = []
        for e in self.context_errors[:10]:
            name = e.split("/", 1)[0]
            out.append(e)
            out += ["  after " + f for f in self.failures if f.startswith(name + "/")]
        return out


class Hung(Exception):
    pass


def ask(client, messages, session, stream):
    """One turn; returns the answer text. Raises openai errors for clean failures."""
    headers = {"X-Session-Id": session} if session else {}
    if not stream:
        r = client.chat.completions.create(model="sonnet", messages=messages, extra_headers=headers)
        return r.choices[0].message.content
    text = ""
    chunks = client.chat.completions.create(model="sonnet", messages=messages, stream=True,
                                            extra_headers=headers)
    for ch in chunks:
        if ch.choices and ch.choices[0].delta.content:
            text += ch.choices[0].delta.content
    return text


def conversation(client, tally, rng, stop_at, name, turns):
    """One conversation of `turns` turns, X-Session-Id or full history, streamed or not."""
    by_session = rng.random() < 0.5
    stream = rng.random() < 0.5
    session = f"{name}-{rng.randrange(1 << 30)}" if by_session else None
    kind = f"session {session}, " if by_session else "history, "
    kind += "stream" if stream else "json"
    history = []
    done = 0  # successful turns so far
    failures = 0  # failed attempts so far (each may leave one message in the transcript)
    for t in range(turns):
        if time.monotonic() > stop_at:
            return
        msg = {"role": "user", "content": f"{name} turn {t}"}
        for attempt in range(2):
            messages = [msg] if by_session else history + [msg]
            started = time.monotonic()
            try:
                text = ask(client, messages, session, stream)
            except openai.APITimeoutError as e:
                tally.add("hung", f"{name}/{t} ({kind}, attempt {attempt + 1}, "
                                  f"after {time.monotonic() - started:.0f}s): {e}")
                return
            except openai.APIStatusError as e:
                if e.status_code == 410:
                    # The gateway lost a conversation it had confirmed: never acceptable.
                    tally.add("lost", f"{name}/{t}: {str(e)[:120]}")
                    return
                tally.add("failed", f"{name}/{t}: {type(e).__name__}: {str(e)[:120]}")
                failures += 1
                continue
            except openai.APIError as e:
                tally.add("failed", f"{name}/{t}: {type(e).__name__}: {str(e)[:120]}")
                failures += 1
                continue
            m = N.search(text or "")
            want = 2 * (done + 1) - 1
            n = int(m.group(1)) if m else -1
            # Context kept: at least every earlier turn; a failed attempt may add its message.
            if not (want <= n <= want + 2 * failures):
                tally.add("context", f"{name}/{t} ({kind}): n={n}, want {want} (+{2 * failures})")
            tally.add("ok")
            done += 1
            history += [msg, {"role": "assistant", "content": text}]
            break
        else:
            return  # two failures in a row: give this conversation up


def client_loop(url, key, tally, seed, stop_at, turn_timeout, tag):
    rng = random.Random(seed)
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=turn_timeout)
    i = 0
    while time.monotonic() < stop_at:
        # The run's tag keeps texts (and so history fingerprints) and session ids unique.
        conversation(client, tally, rng, stop_at, f"{tag}-c{seed}-{i}", rng.randint(2, 5))
        i += 1


def worker_pids(server_pid, cli_marker):
    """The CLI processes the server started (its direct children running the CLI)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != server_pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if cli_marker.encode() in f.read():
                    pids.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def processes_in(root):
    """Processes whose working directory is under `root` (leftover workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd").startswith(str(root)):
                found.append(int(entry))
        except OSError:
            continue
    return found


def health(url):
    with urllib.request.urlopen(url + "/v1/health", timeout=5) as r:
        return json.load(r)["pool"]


@dataclass
class Sabotage:
    kills: int = 0
    stops: int = 0
    # Seconds from each kill until the pool had as many live workers again.
    recoveries: list = field(default_factory=list)
    samples: list = field(default_factory=list)


def saboteur(server, cli_marker, every, stop_share, stop_at, seed, sab):
    rng = random.Random(seed)
    stopped = []
    while time.monotonic() < stop_at:
        time.sleep(every)
        pids = worker_pids(server["pid"], cli_marker)
        if not pids:
            continue
        before = health(server["url"])
        live_before = before["workers_idle"] + before["workers_busy"] + before["workers_starting"]
        victim = rng.choice(pids)
        try:
            if rng.random() < stop_share:
                os.kill(victim, signal.SIGSTOP)
                stopped.append(victim)
                sab.stops += 1
            else:
                os.kill(victim, signal.SIGKILL)
                sab.kills += 1
        except ProcessLookupError:
            continue
        if victim in stopped:
            # A stopped idle worker is only noticed when it gets a turn (then the idle timeout
            # kills it): no recovery time to measure.
            continue
        t0 = time.monotonic()
        # Back to size: as many workers alive (starting or warm) as before.
        while time.monotonic() - t0 < 10:
            s = health(server["url"])
            live = s["workers_idle"] + s["workers_busy"] + s["workers_starting"]
            if live >= min(live_before, s["min_workers"]) and victim not in worker_pids(server["pid"], cli_marker):
                break
            time.sleep(0.05)
        sab.recoveries.append(time.monotonic() - t0)
    for pid in stopped:  # let the server's stop of them go through, if still there
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def sampler(url, stop_at, sab):
    while time.monotonic() < stop_at:
        try:
            s = health(url)
            sab.samples.append((time.monotonic(), s["workers_idle"] + s["workers_busy"],
                                s["workers_starting"], s["queue_depth"]))
        except OSError:
            pass
        time.sleep(0.25)


def run(server, key, clients, seconds, kill_every=None, stop_share=0.25, turn_timeout=60,
        cli_marker="claude"):
    """Runs `clients` conversation loops for `seconds`, with sabotage when `kill_every` is set.
    Returns (tally, sabotage)."""
    tally, sab = Tally(), Sabotage()
    stop_at = time.monotonic() + seconds
    tag = f"r{random.randrange(1 << 30):x}"
    threads = [threading.Thread(target=client_loop,
                                args=(server["url"], key, tally, i, stop_at, turn_timeout, tag))
               for i in range(clients)]
    threads.append(threading.Thread(target=sampler, args=(server["url"], stop_at, sab)))
    if kill_every:
        threads.append(threading.Thread(target=saboteur, args=(
            server, cli_marker, kill_every, stop_share, stop_at, 7, sab)))
    for t in threads:
        t.start()
    for t in threads:
        # Bounded: a conversation loop ends at stop_at plus at most a few turn timeouts.
        t.join(timeout=seconds + 6 * turn_timeout)
        if t.is_alive():
            raise AssertionError("a chaos thread did not finish: something hangs")
    return tally, sab
