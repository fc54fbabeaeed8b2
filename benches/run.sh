#!/usr/bin/env bash
# Runs the benchmark matrix and writes docs/benchmarks.md and docs/benchmarks-ttft.svg.
#   benches/run.sh           full matrix (about 5-10 minutes on 2 cores)
#   benches/run.sh --smoke   a few seconds: fake CLI, gateway (chat completions and the
#                            Messages API) and direct, small counts (CI)
# Everything runs on 127.0.0.1: the fake CLI, or the real CLI against the fake Anthropic API.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
PROFILE=release
[ "$SMOKE" = 1 ] && PROFILE=debug
if [ "$PROFILE" = release ]; then
  cargo build --release --workspace --bins --quiet
else
  cargo build --workspace --bins --quiet
fi
BIN="$ROOT/target/$PROFILE"
LOAD="$BIN/claude-pool-load"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

FAKE="$BIN/fake-claude"
if [ "$SMOKE" = 1 ]; then
  start_server fake "$FAKE" 4 64
  run "pool@4" --url "$SERVER_URL" --api-key "$KEY" -c 4 -n 20 --stream --server-pid "$SERVER_PID"
  run "direct@4" --mode direct --cli "$FAKE" -c 4 -n 20
  api_runs smoke 2 3 2 2 2
  stop_server
  python3 - "$OUT/results" "$OUT/api" <<'PY'
import json, pathlib, sys
bad = []
for d in sys.argv[1:]:
    for f in pathlib.Path(d).glob("*.json"):
        r = json.loads(f.read_text())
        if r["errors"] or r["ok"] != r["requests"]:
            bad.append((r["label"], r["errors"], r["ok"], r["requests"]))
if bad:
    sys.exit(f"smoke run had errors: {bad}")
if not list(pathlib.Path(sys.argv[2]).glob("*.json")):
    sys.exit("smoke run: no Messages API runs")
print("benchmark smoke run: all requests completed")
PY
  python3 "$ROOT/benches/api_report.py" "$OUT/api"
  exit 0
fi

# 1. Fake CLI: gateway vs direct vs spawn-per-request at 1, 16, 64; then 1,000 and 10,000 streams.
start_server fake "$FAKE" 64 20000
for c in 1 16 64; do
  n=$((c * 50)); [ "$n" -lt 200 ] && n=200
  run "pool-fake@$c" --url "$SERVER_URL" --api-key "$KEY" -c "$c" -n "$n" --stream --server-pid "$SERVER_PID"
  run "direct-fake@$c" --mode direct --cli "$FAKE" -c "$c" -n "$n"
  run "spawn-fake@$c" --mode spawn-per-request --cli "$FAKE" -c "$c" -n "$((c * 5 + 20))"
done
for c in 1000 10000; do
  run "pool-fake-queued@$c" --url "$SERVER_URL" --api-key "$KEY" -c "$c" -n "$c" --stream \
    --turns-per-session 1 --server-pid "$SERVER_PID" --timeout 600
done
stop_server
# The Messages API vs chat completions, and a 64 KB image, on a pool of 16.
start_server fake-api "$FAKE" 16 256
api_runs fake "1 16" 50 50 40 4
stop_server

# 2. Real CLI against the fake Anthropic API: pool vs direct vs spawn at 1 and 16.
CLI="$(scripts/install-cli.sh 2>/dev/null)"
start_fake_api
CLI_ENV=(--cli-env "ANTHROPIC_BASE_URL=$API" --cli-env ANTHROPIC_API_KEY=dummy
  --cli-env CLAUDE_CODE_MAX_RETRIES=0 --cli-env DISABLE_AUTOUPDATER=1
  --cli-env CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 --cli-env "HOME=$OUT/real-home"
  --cli-env "PATH=$PATH" --cli-arg --bare --cli-arg --tools --cli-arg "")
start_server real "$CLI" 16 256 ANTHROPIC_BASE_URL="$API" \
  ANTHROPIC_API_KEY=dummy CLAUDE_CODE_MAX_RETRIES=0
for c in 1 16; do
  run "pool-real@$c" --url "$SERVER_URL" --api-key "$KEY" -c "$c" -n "$((c * 10))" --stream --server-pid "$SERVER_PID"
  run "direct-real@$c" --mode direct --cli "$CLI" "${CLI_ENV[@]}" -c "$c" -n "$((c * 10))"
  run "spawn-real@$c" --mode spawn-per-request --cli "$CLI" "${CLI_ENV[@]}" -c "$c" -n "$((c * 3))"
done
api_runs real "1 8" 8 6 16 4
stop_server

# 3. Chart and report.
"$LOAD" chart --input "$OUT/results" --output "$ROOT/docs/benchmarks-ttft.svg"
python3 "$ROOT/benches/report.py" "$OUT/results" "$OUT/api" > "$ROOT/docs/benchmarks.md"
echo "wrote docs/benchmarks.md and docs/benchmarks-ttft.svg"
