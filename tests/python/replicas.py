"""Three claude-pool replicas (release build, the real CLI against the fake Anthropic API) on
one PostgreSQL database, behind HAProxy configured from deploy/haproxy.cfg, all on loopback.
Used by test_replicas.py."""
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import KEY, MASTER, REAL_CLI, ROOT, _ready, free_port, wait_until, worker_toml

RELEASE = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
HAPROXY_CFG = ROOT / "deploy/haproxy.cfg"


def require(what, ok, hint):
    if ok:
        return
    if os.environ.get("CI"):
        raise AssertionError(f"{what} is required in CI: {hint}")
    pytest.skip(f"{what} missing: {hint}")


def fresh_database():
    """A new database on the PostgreSQL server of TEST_POSTGRES_URL; its URL."""
    base = os.environ.get("TEST_POSTGRES_URL", "")
    require("PostgreSQL", base, "TEST_POSTGRES_URL (scripts/postgres.sh)")
    name = f"cp_replicas_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", base, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    return base.rsplit("/", 1)[0] + "/" + name


def haproxy_config(port, backends):
    """deploy/haproxy.cfg with its listen port and server lines replaced."""
    text = HAPROXY_CFG.read_text()
    text = re.sub(r"bind 127\.0\.0\.1:\d+", f"bind 127.0.0.1:{port}", text)
    text = re.sub(r"(?m)^\s*server .*\n", "", text)
    servers = "".join(f"    server replica{i + 1} 127.0.0.1:{p}\n" for i, p in enumerate(backends))
    return text.rstrip("\n") + "\n" + servers


def children(pid):
    """Processes whose parent is `pid`."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def metric(url, name, labels=""):
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(rf"(?m)^{re.escape(name + labels)} (\S+)$", text)
    return float(m.group(1)) if m else 0.0


class Replicas:
    """The replicas, HAProxy in front, and what a test needs to reach and kill them."""

    def __init__(self, tmp, fake_api, count=3):
        self.tmp = tmp
        self.fake_api = fake_api
        self.database = fresh_database()
        self.ports = [free_port() for _ in range(count)]
        self.procs = []
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.lb_port = free_port()
        self.lb = f"http://127.0.0.1:{self.lb_port}"
        self.haproxy = None

    def config(self, i):
        home = self.tmp / f"replica{i}"
        home.mkdir(parents=True, exist_ok=True)
        return home, f"""
[server]
host = "127.0.0.1"
port = {self.ports[i]}
https_port = 0
shutdown_grace = "10s"
log_level = "info"
[pool]
min_workers = 2
max_workers = 4
queue_capacity = 256
queue_timeout = "120s"
turn_idle_timeout = "30s"
{worker_toml(REAL_CLI, home, self.fake_api)}[auth]
api_keys = ["{KEY}"]
master_key = "{MASTER}"
[limits]
rate_limit_requests = 0
[store]
database_url = "{self.database}"
"""

    def start(self):
        for i in range(len(self.ports)):
            home, text = self.config(i)
            (home / "claude-pool.toml").write_text(text)
            with open(home / "server.log", "wb") as log:
                self.procs.append(subprocess.Popen(
                    [str(RELEASE / "claude-pool"), "serve", "--config", str(home / "claude-pool.toml")],
                    cwd=home, stdout=log, stderr=subprocess.STDOUT))
        for i, url in enumerate(self.urls):
            wait_until(f"replica {i} ready", lambda: self.procs[i].poll() is None and _ready(url), 120)
        cfg = self.tmp / "haproxy.cfg"
        cfg.write_text(haproxy_config(self.lb_port, self.ports))
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                                        stdout=subprocess.DEVNULL, stderr=open(self.tmp / "haproxy.log", "wb"))
        wait_until("HAProxy", lambda: _ready(self.lb), 30)
        return self

    def kill(self, i):
        """SIGKILLs replica `i`; returns the processes it had started (its workers)."""
        workers = children(self.procs[i].pid)
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait(timeout=10)
        return workers

    def stop(self):
        if self.haproxy:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
        codes = []
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                codes.append(p.wait(timeout=60))
        return codes

    def log(self, i):
        return (self.tmp / f"replica{i}" / "server.log").read_text(errors="replace")


@contextlib.contextmanager
def replicas(fake_api, count=3):
    require("the real CLI", REAL_CLI.exists(), f"{REAL_CLI} (scripts/install-cli.sh)")
    require("the release build", (RELEASE / "claude-pool").exists(), "cargo build --release --bins")
    require("HAProxy", shutil.which("haproxy"), "apt-get install haproxy")
    tmp = Path(tempfile.mkdtemp(prefix="claude-pool-replicas-"))
    r = Replicas(tmp, fake_api, count)
    try:
        yield r.start()
        assert all(code == 0 for code in r.stop()), "the replicas left exit 0 on SIGTERM"
    except BaseException:
        r.stop()
        for i in range(count):
            print(f"--- replica {i} log (tail)\n{r.log(i)[-3000:]}")
        raise
    shutil.rmtree(tmp, ignore_errors=True)


def load(url, out, *extra):
    """Starts the load generator against `url`, its report going to `out`."""
    return subprocess.Popen(
        [str(RELEASE / "claude-pool-load"), "run", "--quiet", "--url", url, "--api-key", KEY,
         "--check-context", "--timeout", "300", "--json", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def report(proc, out):
    output = proc.communicate(timeout=600)[0].decode(errors="replace")
    assert proc.returncode == 0, output
    return json.loads(Path(out).read_text()), output
