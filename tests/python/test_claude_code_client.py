"""The real Claude Code CLI as a client of the pool (`ANTHROPIC_BASE_URL` = the server, a pool
key as `ANTHROPIC_API_KEY`), with the pool's workers the fake or the real CLI: `claude -p`
answers with the worker's answer, a two-turn `--input-format stream-json` session reaches
the worker as one conversation, its second turn as one new message (the fake API's `[n=3]`,
the fake CLI's `[turn=2]`), streamed to the client as it comes, and the client's own tool
(`Read`) answers a call of the worker's model, continuing its parked turn."""
import json
import os
import re
import subprocess
import tempfile
import threading

import pytest

from conftest import KEY, REAL_CLI

# The CLI's own default model (2.1.197: `claude-opus-4-8`, shown as `claude-opus-4-8[1m]`).
FLAGS = ["--bare", "--tools", ""]


@pytest.fixture(scope="module")
def cli():
    if not REAL_CLI.exists():
        if os.environ.get("CI"):
            raise AssertionError(f"the real CLI is required in CI: {REAL_CLI} missing")
        pytest.skip(f"real CLI not installed at {REAL_CLI} (run scripts/install-cli.sh)")
    return str(REAL_CLI)


def client_env(server, home):
    """Only what the client CLI needs: nothing of this machine's own Claude settings."""
    return {"PATH": os.environ["PATH"], "HOME": home, "LANG": "C.UTF-8",
            "ANTHROPIC_BASE_URL": server["url"], "ANTHROPIC_API_KEY": KEY,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
            "CLAUDE_CODE_MAX_RETRIES": "0"}


def turn_of(server, text):
    if server["kind"] == "fake":
        return int(re.search(r"\[turn=(\d+)\]", text).group(1))
    return (int(re.search(r"\[n=(\d+)\]", text).group(1)) + 1) // 2


@pytest.mark.parametrize("model", [None, "sonnet", "claude-haiku-4-5-20251001"])
def test_claude_p_answers_with_the_workers_answer(server, cli, model):
    """With the CLI's default model, its `sonnet` (sent as `claude-sonnet-5`) and a full id."""
    flags = FLAGS + (["--model", model] if model else [])
    with tempfile.TemporaryDirectory() as home:
        r = subprocess.run([cli, "-p", "hi from claude code", *flags], env=client_env(server, home),
                           cwd=home, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    answer = r.stdout.strip()
    assert answer.startswith("echo: ") and "hi from claude code" in answer, answer
    assert turn_of(server, answer) == 1, answer


def test_a_stream_json_session_goes_on_in_one_conversation(server, cli):
    with tempfile.TemporaryDirectory() as home:
        proc = subprocess.Popen(
            [cli, "-p", "--input-format", "stream-json", "--output-format", "stream-json",
             "--verbose", "--include-partial-messages", *FLAGS],
            env=client_env(server, home), cwd=home, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        watchdog = threading.Timer(240, proc.kill)
        watchdog.start()
        try:
            def turn(text):
                """Sends a user message; returns (the result's text, text deltas seen)."""
                proc.stdin.write(json.dumps({"type": "user", "message": {"role": "user", "content": text}}) + "\n")
                proc.stdin.flush()
                deltas = 0
                for line in proc.stdout:
                    event = json.loads(line)
                    if event["type"] == "stream_event" and event["event"]["type"] == "content_block_delta":
                        deltas += 1
                    if event["type"] == "result":
                        assert not event["is_error"], event
                        return event["result"], deltas
                raise AssertionError("the client CLI ended mid-turn: " + proc.stderr.read()[-2000:])

            first, deltas = turn("first from a claude code session")
            assert first.startswith("echo: ") and "first from a claude code session" in first, first
            assert turn_of(server, first) == 1, first
            assert deltas >= 1, "the answer was streamed to the client"
            second, _ = turn("second from a claude code session")
            assert "second from a claude code session" in second, second
            # the worker was sent only the new message: its conversation's second turn
            assert turn_of(server, second) == 2, second
            proc.stdin.close()
            assert proc.wait(timeout=60) == 0
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_claude_codes_own_tool_runs_on_the_client_and_the_parked_turn_goes_on(server, cli):
    """The client CLI offers its own tools; the worker's model calls `Read` (the fake API's
    `[[call:..]]`), the call reaches the client as a `tool_use`, the client CLI reads the file
    itself, and its `tool_result` continues the worker's parked turn: the answer has the
    file's text, and the worker's model call carried the call and its result (`[n=3]`)."""
    if server["kind"] == "fake":
        pytest.skip("the fake CLI's tool calls name the gateway's own test functions")
    with tempfile.TemporaryDirectory() as home:
        path = os.path.join(home, "note.txt")
        with open(path, "w") as f:
            f.write("a note for the pool\n")
        prompt = f'read it [[call:Read {{"file_path": "{path}"}}]]'
        r = subprocess.run([cli, "-p", prompt, "--allowedTools", "Read"],
                           env=client_env(server, home), cwd=home, capture_output=True,
                           text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    answer = r.stdout.strip()
    assert answer.startswith("echo: tool results: toolu_") and "a note for the pool" in answer, answer
    assert answer.endswith("[n=3]"), answer
