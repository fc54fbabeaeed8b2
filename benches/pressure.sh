#!/usr/bin/env bash
# Warm under pressure: what a busy pool gives new conversations and conversations that
# outnumber its workers. Real CLI against the fake Anthropic API, side by side in one run:
#   1. one-shot traffic (every request a new conversation) on a full pool, 16 streaming
#      clients, 4 workers: handoff = clear (default: /clear + conversation boundary) vs fresh
#      with a spare kept at max_workers vs fresh without spares (how the pool behaved before
#      spares at the maximum) vs a CLI spawned per request;
#   2. a new conversation on a full pool vs a warm turn (1 client), and a batch of 8 new
#      conversations on 4 workers that all hold a conversation;
#   3. 48 conversations on 6 workers, turns back to back: waits (time to first token) p50, p90,
#      p99, max against the fair share (conversations / turns per second: how often each
#      conversation gets a turn when all are served alike).
#   benches/pressure.sh            writes its JSON reports to $PRESSURE_OUT (default: a temp dir)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --workspace --bins --quiet
BIN="$ROOT/target/release"
LOAD="$BIN/claude-pool-load"
CLI="$(scripts/install-cli.sh 2>/dev/null)"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
RESULTS="${PRESSURE_OUT:-$OUT/results}"
mkdir -p "$RESULTS"
start_fake_api
CLI_ENV=(ANTHROPIC_BASE_URL="$API" ANTHROPIC_API_KEY=dummy CLAUDE_CODE_MAX_RETRIES=0)

run() { # run LABEL ARGS...
  local label=$1; shift
  "$LOAD" run --quiet --label "$label" --json "$RESULTS/$label.json" --url "$SERVER_URL" \
    --api-key "$KEY" --stream --timeout 600 "$@"
}

# 1 and 2: four workers, each configuration on a server of its own.
for variant in clear fresh-spare fresh-no-spare; do
  case $variant in
    clear) cfg=(CLAUDE_POOL_WORKER__HANDOFF=clear) ;;
    fresh-spare) cfg=(CLAUDE_POOL_WORKER__HANDOFF=fresh CLAUDE_POOL_POOL__SPARE_WORKERS=1) ;;
    fresh-no-spare) cfg=(CLAUDE_POOL_WORKER__HANDOFF=fresh CLAUDE_POOL_POOL__SPARE_WORKERS=0) ;;
  esac
  start_server "$variant" "$CLI" 4 1024 "${CLI_ENV[@]}" "${cfg[@]}"
  # Fill the pool: every worker holds a conversation.
  run "fill-$variant" -c 4 -n 4
  run "oneshot-$variant" -c 16 -n 160 --turns-per-session 1
  run "new-conversation-$variant" -c 1 -n 20 --turns-per-session 1
  run "warm-turn-$variant" -c 1 -n 20
  run "fill2-$variant" -c 4 -n 4
  run "batch8-$variant" -c 8 -n 8 --turns-per-session 1
  curl -s "$SERVER_URL/metrics" | grep -E '^claude_pool_pool_events_total\{event="(resumes|evictions|spare_releases)"' || true
  stop_server
done
"$LOAD" run --quiet --label spawn-per-request --json "$RESULTS/spawn-per-request.json" \
  --mode spawn-per-request --cli "$CLI" -c 16 -n 48 \
  --cli-env "ANTHROPIC_BASE_URL=$API" --cli-env ANTHROPIC_API_KEY=dummy \
  --cli-env CLAUDE_CODE_MAX_RETRIES=0 --cli-env DISABLE_AUTOUPDATER=1 \
  --cli-env CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 --cli-env "HOME=$OUT/spawn-home" \
  --cli-env "PATH=$PATH" --cli-arg --bare --cli-arg --tools --cli-arg ""

# 3: 48 conversations of 10 turns on 6 workers (X-Session-Id, back to back).
start_server conversations "$CLI" 6 1024 "${CLI_ENV[@]}" CLAUDE_POOL_POOL__MIN_WORKERS=2
run conversations-48on6 -c 48 -n 480
curl -s "$SERVER_URL/metrics" | grep -E '^claude_pool_pool_events_total\{event="(resumes|evictions)"' || true
stop_server

python3 "$ROOT/benches/pressure_report.py" "$RESULTS"
