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
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
start_fake_api

for handoff in fresh clear; do
  for n in "${COUNTS[@]}"; do
    start_server "$handoff-$n" "$CLI" 6 1024 CLAUDE_POOL_POOL__MIN_WORKERS=2 \
      CLAUDE_POOL_WORKER__HANDOFF="$handoff" \
      ANTHROPIC_BASE_URL="$API" ANTHROPIC_API_KEY=dummy CLAUDE_CODE_MAX_RETRIES=0
    echo "== $n conversations on 6 workers, handoff = $handoff"
    "$BIN/claude-pool-load" run --url "$SERVER_URL" --api-key "$KEY" -c "$n" \
      -n "$((n * TURNS_PER_CONVERSATION))" --quiet
    curl -s "$SERVER_URL/metrics" | grep -E '^claude_pool_pool_events_total\{event="(resumes|evictions)"' || true
    stop_server
  done
done
