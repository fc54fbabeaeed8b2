"""Draws the main panels of the Grafana dashboard from a Prometheus' query_range results into a
PNG (docs/images/dashboard.png), for the README. Used by test_grafana_dashboard.py when
DASHBOARD_PNG names the output file; needs matplotlib (not a test requirement)."""
import json
import re
import urllib.parse
import urllib.request

MAIN = ["Workers by state", "Spare workers", "Queue depth", "Queue wait",
        "Time to first token", "Requests by status", "Turns and failures by cause",
        "Restarts, evictions, resumes", "Sessions and parked turns", "Tokens by key",
        "Spend by key (USD per hour)", "Store latency p95 by operation"]


def query_range(prom, expr, start, end, step=1):
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prom}/api/v1/query_range?{q}", timeout=10) as r:
        return json.load(r)["data"]["result"]


def draw(prom, dashboard, start, end, out, window="10s"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {p["title"]: p for p in dashboard["panels"] if p.get("targets")}
    fig, axes = plt.subplots(4, 3, figsize=(15, 12))
    for ax, title in zip(axes.flat, MAIN):
        for t in panels[title]["targets"]:
            expr = t["expr"].replace("$__rate_interval", window)
            for s in query_range(prom, expr, start, end):
                xs = [float(ts) - start for ts, _ in s["values"]]
                ys = [float(v) for _, v in s["values"]]
                label = re.sub(r"\{\{(\w+)\}\}", lambda m: s["metric"].get(m.group(1), ""),
                               t["legendFormat"])
                ax.plot(xs, ys, label=label.strip() or title)
        unit = panels[title]["fieldConfig"]["defaults"]["unit"]
        ax.set_title(f"{title} ({unit})" if unit not in ("short", None) else title, fontsize=10)
        ax.set_xlabel("s", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("claude-pool (fake CLI, 2 workers, 6 clients)", fontsize=12)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
