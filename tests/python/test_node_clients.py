"""Node clients against the server, on the fake and the real CLI: the official `openai` client
and the Vercel AI SDK's default provider (tests/node/clients.mjs), the official
`@anthropic-ai/sdk` client and the AI SDK's Anthropic provider (tests/node/anthropic.mjs).
Their packages are pinned in tests/node/package.json and installed by scripts/test.sh."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import KEY

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def run_node(server, script):
    if not (NODE_DIR / "node_modules").is_dir():
        if os.environ.get("CI"):
            raise AssertionError("tests/node/node_modules missing: scripts/test.sh installs it")
        pytest.skip("run `npm ci` in tests/node first")
    node = shutil.which("node")
    assert node, "node is required"
    env = dict(os.environ, CP_URL=server["url"], CP_KEY=KEY, CP_KIND=server["kind"],
               CP_FAKE_API=str(server["fake_api"]))
    r = subprocess.run([node, str(NODE_DIR / script)], env=env, cwd=NODE_DIR,
                       capture_output=True, text=True, timeout=300)
    print(r.stdout)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_node_clients(server):
    run_node(server, "clients.mjs")


def test_node_anthropic_clients(server):
    run_node(server, "anthropic.mjs")
