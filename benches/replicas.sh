#!/usr/bin/env bash
# Conversations kept in the store: what keeping costs per turn, and what a conversation that
# moves to another replica costs (docs/operations.md, "Running several replicas").
#   benches/replicas.sh    needs TEST_POSTGRES_URL (scripts/postgres.sh), the real CLI
#                          (scripts/install-cli.sh); a few minutes on 2 cores
# 1. Keeping, per turn: the fake CLI (so the gateway's own work shows), 4 clients with one
#    long conversation each (500 turns; 2,000 in all), keep_conversations on and off, SQLite and PostgreSQL.
# 2. Moves: two replicas on one PostgreSQL with the real CLI against the fake Anthropic API
#    (benches/conversation_moves.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --workspace --bins --quiet
BIN="$ROOT/target/release"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
: "${TEST_POSTGRES_URL:?TEST_POSTGRES_URL is needed (scripts/postgres.sh)}"
CLI="${CLAUDE_CLI_PATH:-$ROOT/.cache/claude-cli/node_modules/.bin/claude}"

new_database() {
  local name="cp_bench_$RANDOM$RANDOM"
  psql "$TEST_POSTGRES_URL" -q -c "CREATE DATABASE $name"
  echo "${TEST_POSTGRES_URL%/*}/$name"
}

echo "== keeping each turn (fake CLI, 4 conversations of 500 turns)"
for backend in sqlite postgres; do
  for keep in false true; do
    if [ "$backend" = postgres ]; then db=$(new_database); else db="sqlite://$OUT/keep-$keep.db"; fi
    start_server "keep-$backend-$keep" "$BIN/fake-claude" 4 64 \
      DATABASE_URL="$db" CLAUDE_POOL_STORE__KEEP_CONVERSATIONS=$keep
    printf '%-9s keep_conversations=%-5s ' "$backend" "$keep"
    "$BIN/claude-pool-load" run --quiet --url "$SERVER_URL" --api-key "$KEY" -c 4 -n 2000 \
      --turns-per-session 0 | awk '/turns\/s/ {printf "%s turns/s  ", $(NF-1)} /total/ {print "total p50 " $2 " ms, p90 " $3 " ms"}'
    stop_server
  done
done

echo "== a conversation moving to another replica (real CLI, fake Anthropic API)"
start_fake_api
db=$(new_database)
start_server move-a "$CLI" 2 64 DATABASE_URL="$db" CLAUDE_POOL_POOL__MAX_WORKERS=8 \
  ANTHROPIC_BASE_URL="$API" ANTHROPIC_API_KEY=dummy CLAUDE_CODE_MAX_RETRIES=0
A="$SERVER_URL"
start_server move-b "$CLI" 2 64 DATABASE_URL="$db" CLAUDE_POOL_POOL__MAX_WORKERS=8 \
  ANTHROPIC_BASE_URL="$API" ANTHROPIC_API_KEY=dummy CLAUDE_CODE_MAX_RETRIES=0
python3 "$ROOT/benches/conversation_moves.py" "$A" "$SERVER_URL" "$KEY" 20
