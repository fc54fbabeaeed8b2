#!/usr/bin/env python3
"""Writes the Grafana dashboard of claude-pool's /metrics (deploy/grafana/claude-pool.json and
the chart's copy, charts/claude-pool/dashboards/claude-pool.json). With --check, fails when the
committed files differ from what this makes (tests/python/test_grafana_dashboard.py)."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = [ROOT / "deploy/grafana/claude-pool.json", ROOT / "charts/claude-pool/dashboards/claude-pool.json"]
DS = {"type": "prometheus", "uid": "${datasource}"}
R = "$__rate_interval"


def q(h, name):
    return (f"histogram_quantile({h}, sum by (le) (rate({name}_bucket[{R}])))", f"p{round(h * 100)}")


# (title, unit, kind, [(expr, legend)], width)
PANELS = [
    ("Pool", None, None, None, 24),
    ("Workers by state", "short", "timeseries", [("sum by (state) (claude_pool_workers)", "{{state}}")], 8),
    ("Spare workers", "short", "timeseries", [("sum(claude_pool_spare_workers)", "spares")], 4),
    ("Queue depth", "short", "timeseries", [("sum(claude_pool_queue_depth)", "waiting turns")], 4),
    ("Queue wait", "s", "timeseries",
     [q(0.5, "claude_pool_queue_wait_seconds"), q(0.95, "claude_pool_queue_wait_seconds"),
      q(0.99, "claude_pool_queue_wait_seconds")], 8),
    ("Sessions and parked turns", "short", "timeseries",
     [("sum(claude_pool_sessions)", "conversations"), ("sum(claude_pool_parked_turns)", "parked for tool results")], 8),
    ("Turns and failures by cause", "ops", "timeseries",
     [("sum by (event) (rate(claude_pool_pool_events_total{event=~\"turns_started|turns_failed|queue_rejections|queue_timeouts|interrupts|conversations_lost\"}[" + R + "]))", "{{event}}")], 8),
    ("Restarts, evictions, resumes", "opm", "timeseries",
     [("60 * sum by (event) (rate(claude_pool_pool_events_total{event=~\"restarts|spawn_failures|recycles|evictions|resumes|spare_releases|conversations_adopted\"}[" + R + "]))", "{{event}}")], 8),
    ("Latency", None, None, None, 24),
    ("Time to first token", "s", "timeseries",
     [q(0.5, "claude_pool_time_to_first_token_seconds"), q(0.95, "claude_pool_time_to_first_token_seconds"),
      q(0.99, "claude_pool_time_to_first_token_seconds")], 8),
    ("Request duration p95 by route (to the response head)", "s", "timeseries",
     [(f"histogram_quantile(0.95, sum by (le, route) (rate(claude_pool_http_request_duration_seconds_bucket[{R}])))", "{{route}}")], 8),
    ("Requests by status", "reqps", "timeseries",
     [(f"sum by (status) (rate(claude_pool_http_requests_total[{R}]))", "{{status}}")], 8),
    ("Keys", None, None, None, 24),
    ("Turns by key", "ops", "timeseries", [(f"sum by (key) (rate(claude_pool_key_turns_total[{R}]))", "{{key}}")], 8),
    ("Tokens by key", "short", "timeseries",
     [(f"sum by (key, direction) (rate(claude_pool_tokens_total[{R}]))", "{{key}} {{direction}}")], 8),
    ("Spend by key (USD per hour)", "currencyUSD", "timeseries",
     [(f"sum by (key) (rate(claude_pool_cost_usd_total[{R}])) * 3600", "{{key}}")], 8),
    ("Health", None, None, None, 24),
    ("Ready pods", "short", "stat", [("sum(claude_pool_ready)", "ready")], 4),
    ("Serving pods", "short", "stat", [("sum(claude_pool_serving)", "serving")], 4),
    ("Worker start failures in a row", "short", "timeseries",
     [("max by (profile) (claude_pool_worker_start_failures) or vector(0)", "{{profile}}")], 5),
    ("Conversation transcripts kept", "short", "timeseries",
     [(f"sum by (event) (increase(claude_pool_conversation_turns_kept_total[{R}]))", "{{event}}")], 5),
    ("Store latency p95 by operation", "s", "timeseries",
     [(f"histogram_quantile(0.95, sum by (le, op) (rate(claude_pool_store_call_seconds_bucket[{R}])))", "{{op}}")], 6),
]


def dashboard():
    panels, x, y, row_h = [], 0, 0, 8
    for i, (title, unit, kind, targets, w) in enumerate(PANELS, start=1):
        if kind is None:
            if x:
                x, y = 0, y + row_h
            panels.append({"id": i, "type": "row", "title": title, "collapsed": False,
                           "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
            y += 1
            continue
        if x + w > 24:
            x, y = 0, y + row_h
        p = {
            "id": i, "type": kind, "title": title, "datasource": DS,
            "gridPos": {"h": row_h, "w": w, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + n), "datasource": DS, "expr": e, "legendFormat": leg}
                        for n, (e, leg) in enumerate(targets)],
        }
        if kind == "timeseries":
            p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"},
                            "tooltip": {"mode": "multi"}}
        panels.append(p)
        x += w
    return {
        "uid": "claude-pool", "title": "claude-pool", "tags": ["claude-pool"],
        "schemaVersion": 39, "version": 1, "editable": True, "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
        "templating": {"list": [{"name": "datasource", "label": "Prometheus", "type": "datasource",
                                 "query": "prometheus", "current": {}, "hide": 0}]},
        "annotations": {"list": []},
        "panels": panels,
    }


def main():
    text = json.dumps(dashboard(), indent=2) + "\n"
    stale = [p for p in OUT if not p.exists() or p.read_text() != text]
    if "--check" in sys.argv[1:]:
        if stale:
            sys.exit(f"out of date (run scripts/grafana-dashboard.py): {', '.join(map(str, stale))}")
        return
    for p in OUT:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


if __name__ == "__main__":
    main()
