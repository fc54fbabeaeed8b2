#!/usr/bin/env python3
"""Prints the tables of benches/pressure.sh from its directory of claude-pool-load reports."""
import json
import pathlib
import sys

runs = {json.loads(f.read_text())["label"]: json.loads(f.read_text())
        for f in sorted(pathlib.Path(sys.argv[1]).glob("*.json"))}


def errors(r):
    return ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"


def ms(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


spawn = runs.get("spawn-per-request")
print("One-shot traffic on a full pool (16 streaming clients, 4 workers, every request a new conversation)\n")
print("| configuration | turns/s | × spawn per request | TTFT p50 ms | p99 ms | errors |")
print("|---|---:|---:|---:|---:|---|")
for variant, name in [("clear", "`handoff = clear` (default)"), ("fresh-spare", "`fresh`, a spare kept at the maximum"),
                      ("fresh-no-spare", "`fresh`, no spares (as before)")]:
    r = runs.get(f"oneshot-{variant}")
    if r:
        ratio = r["turns_per_sec"] / spawn["turns_per_sec"] if spawn else float("nan")
        print(f"| {name} | {r['turns_per_sec']:.1f} | {ratio:.1f} | {ms(r['ttft_ms']['p50'])} | "
              f"{ms(r['ttft_ms']['p99'])} | {errors(r)} |")
if spawn:
    print(f"| a CLI spawned per request | {spawn['turns_per_sec']:.1f} | 1.0 | {ms(spawn['ttft_ms']['p50'])} | "
          f"{ms(spawn['ttft_ms']['p99'])} | {errors(spawn)} |")

print("\nA new conversation on a full pool (4 workers, each holding a conversation), 1 client\n")
print("| configuration | new conversation TTFT p50 ms | warm turn TTFT p50 ms | difference ms | batch of 8 new: TTFT p50 / max ms |")
print("|---|---:|---:|---:|---:|")
for variant in ["clear", "fresh-spare", "fresh-no-spare"]:
    new, warm, batch = (runs.get(f"{k}-{variant}") for k in ("new-conversation", "warm-turn", "batch8"))
    if new and warm and batch:
        print(f"| {variant} | {ms(new['ttft_ms']['p50'])} | {ms(warm['ttft_ms']['p50'])} | "
              f"{ms(new['ttft_ms']['p50'] - warm['ttft_ms']['p50'])} | "
              f"{ms(batch['ttft_ms']['p50'])} / {ms(batch['ttft_ms']['max'])} |")

r = runs.get("conversations-48on6")
if r:
    fair = r["concurrency"] / r["turns_per_sec"] * 1000
    t = r["ttft_ms"]
    print("\n48 conversations of 10 turns on 6 workers, turns back to back (`X-Session-Id`)\n")
    print("| turns/s | wait p50 ms | p90 | p99 | max | fair share ms | p99 / fair share | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    print(f"| {r['turns_per_sec']:.1f} | {ms(t['p50'])} | {ms(t['p90'])} | {ms(t['p99'])} | {ms(t['max'])} | "
          f"{ms(fair)} | {t['p99'] / fair:.2f} | {errors(r)} |")
