"""Latency of a rate-limited request (`GET /v1/models`, keep-alive, one client) against a
running claude-pool: run it against a server with `limits.shared_rate_limits` on and off (on
PostgreSQL) to see what the shared GCRA statement adds.

usage: python3 benches/rate_check.py URL KEY [REQUESTS]"""
import http.client
import statistics
import sys
import time
from urllib.parse import urlparse

url, key = urlparse(sys.argv[1]), sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
conn = http.client.HTTPConnection(url.hostname, url.port)
headers = {"Authorization": f"Bearer {key}"}
samples = []
for i in range(n + 100):
    t0 = time.perf_counter()
    conn.request("GET", "/v1/models", headers=headers)
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status
    if i >= 100:  # warm-up
        samples.append((time.perf_counter() - t0) * 1000)
samples.sort()
print(f"p50 {statistics.median(samples):.3f} ms  p99 {samples[int(0.99 * (len(samples) - 1))]:.3f} ms  n={n}")
