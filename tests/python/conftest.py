"""Fixtures for the Python end-to-end tests: the fake Anthropic API, and a `claude-pool serve`
started with either the fake CLI or the real Claude Code CLI as its workers."""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
KEY = "sk-python-test-key"
MASTER = "sk-python-master-key"
REAL_CLI = Path(os.environ.get("CLAUDE_CLI_PATH", ROOT / ".cache/claude-cli/node_modules/.bin/claude"))


def worker_toml(command, tmp, fake_api, extra=""):
    """The `[worker]` sections of a test server: `command` against the fake API on port
    `fake_api`, HOME and working directories under `tmp`; `extra` adds `[worker]` lines."""
    return f"""[worker]
{extra}command = "{command}"
home = "{tmp / 'home'}"
work_root = "{tmp / 'work'}"
[worker.env]
ANTHROPIC_BASE_URL = "http://127.0.0.1:{fake_api}"
ANTHROPIC_API_KEY = "dummy"
CLAUDE_CODE_MAX_RETRIES = "0"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def running_server(tmp, config_text, port, ready_timeout=90, env=None):
    """`claude-pool serve` with `config_text` as its config file in `tmp` (log in
    `tmp/server.log`): yields its URL once ready; on exit, SIGTERM and exit code 0."""
    config = tmp / "claude-pool.toml"
    config.write_text(config_text)
    with open(tmp / "server.log", "wb") as log:
        proc = subprocess.Popen([str(TARGET / "claude-pool"), "serve", "--config", str(config)],
                                cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("server ready", lambda: proc.poll() is None and _ready(url), ready_timeout)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, "claude-pool exits 0 on SIGTERM"


@pytest.fixture(scope="session")
def fake_api():
    """The fake Anthropic API (tests/fake-anthropic, built by `cargo build --bins`): its port."""
    binary = TARGET / "fake-anthropic"
    assert binary.exists(), "build first: cargo build --workspace --bins"
    tmp = Path(tempfile.mkdtemp())
    port_file = tmp / "port"
    proc = subprocess.Popen(
        [str(binary), "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until("fake Anthropic API", lambda: port_file.exists() and port_file.read_text().strip(), 10)
    port = int(port_file.read_text().strip())
    yield port
    proc.terminate()
    proc.wait(timeout=10)
    shutil.rmtree(tmp, ignore_errors=True)


def _ready(url):
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module", params=["fake", "real"])
def server(request, fake_api):
    kind = request.param
    if kind == "real" and not REAL_CLI.exists():
        if os.environ.get("CI"):
            raise AssertionError(f"the real CLI is required in CI: {REAL_CLI} missing")
        pytest.skip(f"real CLI not installed at {REAL_CLI} (run scripts/install-cli.sh)")
    binary = TARGET / "claude-pool"
    assert binary.exists(), "build first: cargo build --bins"
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    command = TARGET / "fake-claude" if kind == "fake" else REAL_CLI
    config = tmp / "claude-pool.toml"
    config.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
https_port = 0
shutdown_grace = "5s"
log_level = "warn"
[pool]
min_workers = 2
max_workers = 4
{worker_toml(command, tmp, fake_api)}[auth]
api_keys = ["{KEY}"]
master_key = "{MASTER}"
[limits]
rate_limit_requests = 0
max_cost_per_request = 5.0
""")
    proc = subprocess.Popen([str(binary), "serve", "--config", str(config)], cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(f"{kind} server ready", lambda: proc.poll() is None and _ready(url), 90)
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.stderr.read().decode(errors="replace")[-2000:])
    yield {"kind": kind, "url": url, "fake_api": fake_api}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, "claude-pool exits 0 on SIGTERM"
    shutil.rmtree(tmp, ignore_errors=True)


def fake_api_requests(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stats") as r:
        return json.load(r)["by_path"].get("/v1/messages", 0)


def admin(server, method, path, body=None):
    """A master-key call to the admin API; returns (status, JSON body)."""
    req = urllib.request.Request(server["url"] + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {MASTER}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
