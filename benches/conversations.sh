#!/usr/bin/env bash
# More conversations than workers: N `X-Session-Id` conversations sending turns back to back on
# `max_workers = 6`, the real CLI on the fake Anthropic API (docs/operations.md, "Capacity rule").
#   benches/conversations.sh [N...]        default: 12 48, handoff = fresh then clear
# Prints one load report per run (turns/s, failures) and the pool's resume and eviction counts.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
COUNTS=("$@")
[ ${#COUNTS[@]} -eq 0 ] && COUNTS=(12 48)
TURNS_PER_CONVERSATION=${TURNS_PER_CONVERSATION:-10}
cargo build --release --workspace --bins --quiet
BIN="$ROOT/target/release"
CLI="$(scripts/install-cli.sh 2>/dev/null)"
OUT="$(mktemp -d)"
KEY="sk-bench-key-0123456789"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

python3 "$ROOT/../shared/fake-anthropic/fake_anthropic.py" --port 0 --port-file "$OUT/api.port" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$OUT/api.port" ] && break; sleep 0.1; done
API="http://127.0.0.1:$(cat "$OUT/api.port")"

for handoff in fresh clear; do
  for n in "${COUNTS[@]}"; do
    port=$(free_port)
    dir="$OUT/$handoff-$n"
    mkdir -p "$dir"
    (cd "$dir" && exec env API_KEYS="$KEY" LOG_LEVEL=warn RATE_LIMIT_REQUESTS=0 CLAUDE_MAX_COST_PER_USER=0 \
      CLAUDE_POOL_WORKER__COMMAND="$CLI" CLAUDE_POOL_WORKER__HANDOFF="$handoff" \
      CLAUDE_POOL_WORKER__HOME="$dir/home" CLAUDE_POOL_WORKER__WORK_ROOT="$dir/work" \
      CLAUDE_POOL_POOL__MIN_WORKERS=2 CLAUDE_POOL_POOL__MAX_WORKERS=6 \
      CLAUDE_POOL_POOL__QUEUE_CAPACITY=1024 CLAUDE_POOL_POOL__QUEUE_TIMEOUT=600s \
      ANTHROPIC_BASE_URL="$API" ANTHROPIC_API_KEY=dummy CLAUDE_CODE_MAX_RETRIES=0 \
      "$BIN/claude-pool" serve --host 127.0.0.1 --port "$port" >"$dir/server.log" 2>&1) &
    server=$!  # the server itself (exec), so that kill stops it and its workers
    PIDS+=($server)
    url="http://127.0.0.1:$port"
    for _ in $(seq 1 600); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.2; done
    echo "== $n conversations on 6 workers, handoff = $handoff"
    "$BIN/claude-pool-load" run --url "$url" --api-key "$KEY" -c "$n" \
      -n "$((n * TURNS_PER_CONVERSATION))" --quiet
    curl -s "$url/metrics" | grep -E '^claude_pool_pool_events_total\{event="(resumes|evictions)"' || true
    kill "$server" 2>/dev/null || true
    while kill -0 "$server" 2>/dev/null; do sleep 0.1; done
  done
done
