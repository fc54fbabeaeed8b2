#!/usr/bin/env python3
"""The Messages API against chat completions, from the claude-pool-load reports `api_runs`
(benches/common.sh) writes: streamed time to first token of each API on the same pool, and what
a 64 KB image adds to a one-shot turn. Reports of one run in several rounds (labels ending
`#ROUND`) are combined: requests added up, each figure the median over the rounds. Prints a
Markdown section with numbers and ratios.

usage: python3 benches/api_report.py DIR"""
import json
import pathlib
import re
import statistics
import sys
from collections import defaultdict


def combine(rounds):
    """One report from the rounds of a run: counts added up, figures the median of the rounds'."""
    med = lambda f: statistics.median(f(r) for r in rounds)  # noqa: E731
    errors = defaultdict(int)
    for r in rounds:
        for k, v in r["errors"].items():
            errors[k] += v
    return {
        "label": rounds[0]["label"].split("#")[0], "rounds": len(rounds),
        "concurrency": rounds[0]["concurrency"],
        "ok": sum(r["ok"] for r in rounds), "requests": sum(r["requests"] for r in rounds),
        "errors": dict(errors), "turns_per_sec": med(lambda r: r["turns_per_sec"]),
        "ttft_ms": {k: med(lambda r: r["ttft_ms"][k]) for k in ("p50", "p90", "p99")},
        "total_ms": {k: med(lambda r: r["total_ms"][k]) for k in ("p50", "p99")},
        "ttft_p50_by_round": [r["ttft_ms"]["p50"] for r in rounds],
    }


def load(directory):
    """label → report, rounds (`label#N`) combined."""
    grouped = defaultdict(list)
    for f in sorted(pathlib.Path(directory).glob("*.json")):
        r = json.loads(f.read_text())
        grouped[r["label"].split("#")[0]].append(r)
    return {label: combine(rounds) for label, rounds in grouped.items()}


def row(r):
    t, tot = r["ttft_ms"], r["total_ms"]
    errs = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
    return (f"| {r['label']} | {r['concurrency']} | {r['ok']}/{r['requests']} | {r['turns_per_sec']:.0f} "
            f"| {t['p50']:.2f} | {t['p90']:.2f} | {t['p99']:.2f} | {tot['p50']:.2f} | {tot['p99']:.2f} | {errs} |")


def table(runs, labels):
    out = ["| run | clients | ok | turns/s | TTFT p50 | p90 | p99 | total p50 | p99 | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    out += [row(runs[label]) for label in labels if label in runs]
    return "\n".join(out)


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "n/a"


def spread(a, b):
    """The range of the per-round ratios of two combined runs' TTFT p50."""
    pairs = [x / y for x, y in zip(a["ttft_p50_by_round"], b["ttft_p50_by_round"]) if y]
    if len(pairs) < 2:
        return ""
    return f"; by round {min(pairs):.2f}–{max(pairs):.2f}×"


def section(runs):
    """The Markdown section for the reports in `runs` (label → report)."""
    kinds = sorted({m.group(1) for label in runs if (m := re.match(r"api-chat-(\w+)@", label))},
                   key=lambda k: ("fake", "real").index(k) if k in ("fake", "real") else 2)
    kinds += sorted({m.group(1) for label in runs if (m := re.match(r"oneshot-chat-(\w+)$", label))} - set(kinds))
    rounds = max((r["rounds"] for r in runs.values()), default=1)
    out = ["## The Messages API vs chat completions (same pool, streamed)", "",
           f"Figures are medians over {rounds} rounds (requests added up), the order of the APIs "
           "and of image or none swapped every round. Each pair runs on one server: `api-chat-*` through "
           "`POST /v1/chat/completions`, `api-messages-*` through `POST /v1/messages`, one "
           "conversation per client (`X-Session-Id`, new ones for each run). `oneshot-*` are one-shot "
           "turns (a new conversation each, one client), `-image-` ones with a 64 KB image attached (a "
           "base64 PNG of random pixels: an `image_url` data URL, or an `image` block). Unmeasured "
           "one-shot turns through both APIs first bring the pool to its steady state.", ""]
    for kind in kinds:
        clients = sorted({int(m.group(1)) for label in runs
                          if (m := re.match(rf"api-(?:chat|messages)-{kind}@(\d+)$", label))})
        labels = [f"api-{api}-{kind}@{c}" for c in clients for api in ("chat", "messages")]
        labels += [f"oneshot-{api}{image}-{kind}" for api in ("chat", "messages") for image in ("", "-image")]
        out += [f"### {kind}", "", table(runs, labels), ""]
        for c in clients:
            chat, msgs = runs.get(f"api-chat-{kind}@{c}"), runs.get(f"api-messages-{kind}@{c}")
            if chat and msgs:
                cp, mp = chat["ttft_ms"]["p50"], msgs["ttft_ms"]["p50"]
                c99, m99 = chat["ttft_ms"]["p99"], msgs["ttft_ms"]["p99"]
                out.append(f"- {c} client(s): TTFT p50 Messages {mp:.2f} ms vs chat {cp:.2f} ms "
                           f"({mp - cp:+.2f} ms, {ratio(mp, cp)}{spread(msgs, chat)}); p99 {m99:.2f} vs {c99:.2f} ms "
                           f"({ratio(m99, c99)}); turns/s {msgs['turns_per_sec']:.0f} vs "
                           f"{chat['turns_per_sec']:.0f}")
        for api in ("chat", "messages"):
            plain, image = runs.get(f"oneshot-{api}-{kind}"), runs.get(f"oneshot-{api}-image-{kind}")
            if plain and image:
                p, i = plain["ttft_ms"]["p50"], image["ttft_ms"]["p50"]
                pt, it = plain["total_ms"]["p50"], image["total_ms"]["p50"]
                out.append(f"- one-shot {api}: a 64 KB image adds {i - p:+.2f} ms to TTFT p50 "
                           f"({i:.2f} vs {p:.2f} ms, {ratio(i, p)}{spread(image, plain)}), "
                           f"{it - pt:+.2f} ms to the whole turn")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(section(load(sys.argv[1])))
