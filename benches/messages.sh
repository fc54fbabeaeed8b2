#!/usr/bin/env bash
# The Messages API against chat completions on the same pool: streamed time to first token
# through `/v1/messages` and `/v1/chat/completions`, and what a 64 KB image (base64 PNG) adds
# to a one-shot turn; first with the fake CLI (pure gateway cost), then with the real CLI
# against the fake Anthropic API. Prints every run, then the comparison with its ratios
# (benches/api_report.py). benches/run.sh runs the same comparison within its matrix.
#   benches/messages.sh            release build, about 2 minutes on 2 cores
#   benches/messages.sh --fake     the fake CLI only
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --workspace --bins --quiet
BIN="$ROOT/target/release"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"

start_server fake "$BIN/fake-claude" 16 256
api_runs fake "1 16" 50 50 40 4
stop_server

if [ "${1:-}" != "--fake" ]; then
  CLI="$(scripts/install-cli.sh 2>/dev/null)"
  start_fake_api
  start_server real "$CLI" 8 256 ANTHROPIC_BASE_URL="$API" ANTHROPIC_API_KEY=dummy \
    CLAUDE_CODE_MAX_RETRIES=0
  api_runs real "1 8" 8 6 16 4
  stop_server
fi

echo
python3 "$ROOT/benches/api_report.py" "$OUT/api"
