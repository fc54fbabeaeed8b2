"""The Grafana dashboard (deploy/grafana/claude-pool.json) against a real Prometheus: a
claude-pool with the fake CLI under a little load (turns, a stream, a queue, a crash, rejections),
scraped every second, then every panel's expression asked through Prometheus' HTTP API must
return data. Skipped without the `prometheus` binary, except under CI (.ci/run installs it).
With DASHBOARD_PNG=<file> (and matplotlib), the load runs longer and the main panels are drawn
into that file (docs/images/dashboard.png in the README)."""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import KEY, MASTER, ROOT, TARGET, free_port, running_server, wait_until

DASHBOARD = ROOT / "deploy" / "grafana" / "claude-pool.json"
# Quantile panels whose value must be a number, not NaN (they had observations).
MUST_HAVE_VALUES = ("Queue wait", "Time to first token", "Request duration")


def test_the_dashboard_files_are_generated_and_identical():
    r = subprocess.run(["python3", str(ROOT / "scripts" / "grafana-dashboard.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(DASHBOARD.read_text())
    assert d["uid"] == "claude-pool"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))


def panels():
    d = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in d["panels"] for t in p.get("targets", [])]


@pytest.fixture(scope="module")
def prometheus_bin():
    found = shutil.which("prometheus")
    if not found:
        if os.environ.get("CI"):
            raise AssertionError("prometheus is required in CI (.ci/run installs it)")
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    return found


def call(url, path, key, body=None, stream=False):
    req = urllib.request.Request(url + path, method="POST" if body is not None else "GET",
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def chat(url, text, stream=False):
    return call(url, "/v1/chat/completions", KEY,
                {"model": "sonnet", "stream": stream, "messages": [{"role": "user", "content": text}]})


def load(url):
    """Turns on two workers from six clients (so some wait in the queue), a stream, a crash
    (restart, failed turn), a 401 and a 404, and a turn by a second key."""
    statuses = []

    def client(i):
        for n in range(3):
            statuses.append(chat(url, f"[[slow:30]] [[cost:0.01]] client {i} turn {n}"))
    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    statuses.append(chat(url, "[[cost:0.02]] streamed", stream=True))
    for t in threads:
        t.join()
    chat(url, "[[crash]]")
    assert call(url, "/v1/models", "sk-wrong") == 401
    assert call(url, "/nope", KEY) == 404
    made = urllib.request.Request(url + "/key/generate", method="POST", data=b"{}",
                                  headers={"Authorization": f"Bearer {MASTER}",
                                           "Content-Type": "application/json"})
    with urllib.request.urlopen(made) as r:
        other = json.load(r)["key"]
    assert call(url, "/v1/chat/completions", other,
                {"model": "haiku", "messages": [{"role": "user", "content": "[[cost:0.03]] hi"}]}) == 200
    assert statuses.count(200) == len(statuses), statuses


def query(prom, expr):
    q = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{prom}/api/v1/query?{q}", timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_every_panel_returns_data_from_a_real_prometheus(prometheus_bin):
    assert (TARGET / "claude-pool").exists() and (TARGET / "fake-claude").exists(), \
        "build first: cargo build --bins"
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    config = f"""
[server]
host = "127.0.0.1"
port = {port}
https_port = 0
shutdown_grace = "5s"
log_level = "warn"
[pool]
min_workers = 1
max_workers = 2
queue_capacity = 64
[worker]
command = "{TARGET / 'fake-claude'}"
home = "{tmp / 'home'}"
work_root = "{tmp / 'work'}"
[auth]
api_keys = ["{KEY}"]
master_key = "{MASTER}"
[limits]
rate_limit_requests = 0
"""
    with running_server(tmp, config, port) as url:
        prom_port = free_port()
        (tmp / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: claude-pool
    static_configs:
      - targets: ["127.0.0.1:{port}"]
""")
        with open(tmp / "prometheus.log", "wb") as log:
            prom = subprocess.Popen(
                [prometheus_bin, f"--config.file={tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                stdout=log, stderr=subprocess.STDOUT)
        prom_url = f"http://127.0.0.1:{prom_port}"
        try:
            wait_until("prometheus scraping claude-pool",
                       lambda: _up(prom_url), 60)
            time.sleep(2)
            png = os.environ.get("DASHBOARD_PNG")
            start = time.time()
            for _ in range(4 if png else 1):
                load(url)
                time.sleep(4)  # a few scrapes after the load
            empty, nan = [], []
            for title, expr in panels():
                result = query(prom_url, expr.replace("$__rate_interval", "1m"))
                if not result:
                    empty.append((title, expr))
                elif title.startswith(MUST_HAVE_VALUES) and all(
                        r["value"][1] == "NaN" for r in result):
                    nan.append((title, expr))
            assert empty == [], f"panels without data: {empty}"
            assert nan == [], f"quantiles without observations: {nan}"
            # The per-key panels show both keys.
            keys = {r["metric"]["key"] for r in query(prom_url, "claude_pool_key_turns_total")}
            assert len(keys) >= 2, keys
            if png:
                from dashboard_png import draw
                draw(prom_url, json.loads(DASHBOARD.read_text()), start - 2, time.time(), png)
        finally:
            prom.terminate()
            prom.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)


def _up(prom):
    try:
        return any(r["value"][1] == "1" for r in query(prom, 'up{job="claude-pool"}'))
    except (urllib.error.URLError, ConnectionError, AssertionError):
        return False
