"""A server started without any Claude credential, with the real CLI: a start-up warning that
names the problem, `/v1/health` showing it, and a 502 `upstream_auth_failed` that says "not
logged in" (never a 503 "retry later")."""
import json
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import openai
import pytest

from conftest import KEY, REAL_CLI, free_port, running_server


@pytest.fixture(scope="module")
def uncredentialed(fake_api):
    if not REAL_CLI.exists():
        if os.environ.get("CI"):
            raise AssertionError(f"the real CLI is required in CI: {REAL_CLI} missing")
        pytest.skip("real CLI not installed")
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    config = f"""
[server]
host = "127.0.0.1"
port = {port}
https_port = 0
log_level = "warn"
[pool]
min_workers = 1
max_workers = 2
[worker]
command = "{REAL_CLI}"
home = "{tmp / 'home'}"
work_root = "{tmp / 'work'}"
[worker.env]
ANTHROPIC_BASE_URL = "http://127.0.0.1:{fake_api}"
CLAUDE_CODE_MAX_RETRIES = "0"
[auth]
api_keys = ["{KEY}"]
"""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN")}
    with running_server(tmp, config, port, ready_timeout=60, env=env) as url:
        yield {"url": url, "log": tmp / "server.log"}
    shutil.rmtree(tmp, ignore_errors=True)


def health(url):
    with urllib.request.urlopen(url + "/v1/health") as r:
        return json.load(r)


def test_no_credential_is_named_at_start_in_health_and_as_a_502(uncredentialed):
    url = uncredentialed["url"]
    log = uncredentialed["log"].read_text()
    assert "NO CLAUDE CREDENTIAL" in log and "ANTHROPIC_API_KEY" in log, log[-2000:]
    h = health(url)
    assert h["status"] == "degraded"
    assert h["credential"]["server"]["kind"] == "missing"
    c = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model="sonnet", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 502
    assert e.value.code == "upstream_auth_failed"
    assert "not logged in" in str(e.value)
    assert health(url)["credential"]["upstream_auth_failures"]["server_credential"] == 1
