#!/usr/bin/env bash
# Many streams of one key far from its budget, at the default budget limits ($50 per key, $5 per
# request, limits.turn_cost_estimate $0.50, pool.queue_timeout 30 s): how many requests get 429
# (`budget_reserved`) and how many turns run at once (docs/operations.md, "Budgets").
#   benches/budget.sh [CLIENTS] [REQUESTS] [TURN_MS]    defaults: 64 256 3000 (about a minute)
#   PROFILE=debug benches/budget.sh                      the debug build (no release build needed)
# The fake CLI's turns take about TURN_MS (three pieces of text, TURN_MS / 3 apart), like short
# real turns, and cost $0.001 each. The pool has CLIENTS workers, so only the budget can make a
# turn wait; the request rate is not limited (RATE_LIMIT_REQUESTS=0).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CLIENTS=${1:-64}
REQUESTS=${2:-256}
TURN_MS=${3:-3000}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --workspace --bins --quiet
else
  cargo build --workspace --bins --quiet
fi
BIN="$ROOT/target/$PROFILE"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

start_server budget "$BIN/fake-claude" "$CLIENTS" 1024 \
  CLAUDE_MAX_COST_PER_USER=50 CLAUDE_POOL_POOL__QUEUE_TIMEOUT=30s
echo "== $CLIENTS streams of one key, $REQUESTS requests, turns of ~$TURN_MS ms, budget \$50, cap \$5"
"$BIN/claude-pool-load" run --quiet --url "$SERVER_URL" --api-key "$KEY" -c "$CLIENTS" \
  -n "$REQUESTS" --stream --prompt "Say hello. [[slow:$((TURN_MS / 3))]]" \
  --server-pid "$SERVER_PID" --timeout 300
# The peak of running turns, from the pool's gauge (sampled while a second, shorter run is on).
"$BIN/claude-pool-load" run --quiet --url "$SERVER_URL" --api-key "$KEY" -c "$CLIENTS" \
  -n "$CLIENTS" --stream --prompt "Again. [[slow:$((TURN_MS / 3))]]" --timeout 300 >/dev/null &
LOAD_PID=$!
peak=0
while kill -0 "$LOAD_PID" 2>/dev/null; do
  busy=$(curl -s "$SERVER_URL/metrics" | awk '/^claude_pool_workers\{state="busy"\}/ {print int($2)}')
  [ "${busy:-0}" -gt "$peak" ] && peak=$busy
  sleep 0.2
done
wait "$LOAD_PID" || true
echo "peak turns running at once: $peak of $CLIENTS"
curl -s "$SERVER_URL/metrics" | grep -E '^claude_pool_cost_usd_total' || true
stop_server
