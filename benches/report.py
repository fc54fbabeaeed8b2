#!/usr/bin/env python3
"""Turns a directory of claude-pool-load JSON reports into docs/benchmarks.md (stdout); a second
directory, of the Messages API comparison (benches/api_report.py), adds its section."""
import json
import pathlib
import platform
import subprocess
import sys

import api_report

runs = {}
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    r = json.loads(f.read_text())
    runs[r["label"]] = r


def row(r):
    t, tot = r["ttft_ms"], r["total_ms"]
    errs = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
    return (f"| {r['label']} | {r['concurrency']} | {r['ok']}/{r['requests']} | {r['turns_per_sec']:.0f} "
            f"| {t['p50']:.2f} | {t['p90']:.2f} | {t['p99']:.2f} | {t['max']:.2f} | {tot['p50']:.2f} | {tot['p99']:.2f} | {errs} |")


def table(labels):
    out = ["| run | clients | ok | turns/s | TTFT p50 | p90 | p99 | max | total p50 | p99 | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    out += [row(runs[l]) for l in labels if l in runs]
    return "\n".join(out)


def get(label, key="p50", what="ttft_ms"):
    r = runs.get(label)
    return r[what][key] if r else None


def ratio(a, b):
    return f"{a / b:.1f}×" if a and b else "n/a"


cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
print("# Benchmarks\n")
print(f"Measured by `benches/run.sh` on one machine ({cpu} cores, {platform.machine()}), all on 127.0.0.1. "
      "Load generator: `claude-pool-load` (closed loop: each client sends its next request when the "
      "previous one finished; streaming; one conversation per client unless noted). Times in ms. "
      "The fake CLI answers instantly, so its numbers are pure overhead; the real CLI "
      "(`@anthropic-ai/claude-code` 2.1.197) runs against the local fake Anthropic API, so model time is ~0 "
      "and what remains is the CLI's own work. The load generator, the server and every CLI process "
      "share the same cores.\n")
print("![TTFT p50 against concurrency](benchmarks-ttft.svg)\n")
print("## Gateway overhead (fake CLI): through claude-pool vs writing to a warm process directly\n")
print(table([f"{m}-fake@{c}" for c in (1, 16, 64) for m in ("pool", "direct")]))
print()
for c in (1, 16, 64):
    p, d = get(f"pool-fake@{c}"), get(f"direct-fake@{c}")
    p99, d99 = get(f"pool-fake@{c}", "p99"), get(f"direct-fake@{c}", "p99")
    if p is not None and d is not None:
        print(f"- {c} clients: TTFT overhead p50 {p - d:+.2f} ms, p99 {p99 - d99:+.2f} ms")
print("\n## Warm pool vs a fresh CLI process per request\n")
print(table([f"{m}-{k}@{c}" for k in ("fake", "real") for c in (1, 16, 64) for m in ("pool", "spawn", "direct")]))
print()
for c in (1, 16):
    print(f"- real CLI, {c} clients: spawn-per-request TTFT p50 / pool TTFT p50 = "
          f"{ratio(get(f'spawn-real@{c}'), get(f'pool-real@{c}'))}")
print("\n## Many concurrent streams (fake CLI, 64 workers, queueing)\n")
print(table([f"pool-fake-queued@{c}" for c in (1000, 10000)]))
print()
for c in (1000, 10000):
    r = runs.get(f"pool-fake-queued@{c}")
    if r and r.get("server_peak"):
        b, p, a = r["server_before"], r["server_peak"], r["server_after"]
        print(f"- {c} streams: server RSS {b['rss_mb']:.0f} MB before, {p['rss_mb']:.0f} MB peak, "
              f"{a['rss_mb']:.0f} MB after; open fds {b['fds']} before, {p['fds']} peak, {a['fds']} after")
if len(sys.argv) > 2:
    print()
    print(api_report.section(api_report.load(sys.argv[2])))
print("\nReproduce: `benches/run.sh` (release build; about 5-10 minutes). Micro-benchmarks of the "
      "hot paths: `cargo bench --bench hot_paths`.")
