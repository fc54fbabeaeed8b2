#!/usr/bin/env bash
# Regenerates the parameter table of charts/claude-pool/README.md from the `## @param` comments
# of values.yaml (@bitnami/readme-generator-for-helm, installed into .cache/). With --check, fails
# when the committed README differs from what the generator makes (CI).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=2.7.2
PREFIX="$ROOT/.cache/readme-generator"
BIN="$PREFIX/node_modules/.bin/readme-generator"
if [ ! -x "$BIN" ]; then
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    "@bitnami/readme-generator-for-helm@$VERSION" >&2
fi
CHART="$ROOT/charts/claude-pool"
if [ "${1:-}" = "--check" ]; then
  tmp="$(mktemp)"
  trap 'rm -f "$tmp"' EXIT
  cp "$CHART/README.md" "$tmp"
  "$BIN" --values "$CHART/values.yaml" --readme "$tmp" >/dev/null
  if ! diff -u "$CHART/README.md" "$tmp"; then
    echo "charts/claude-pool/README.md is out of date: run scripts/chart-readme.sh" >&2
    exit 1
  fi
  echo "chart README up to date"
else
  "$BIN" --values "$CHART/values.yaml" --readme "$CHART/README.md"
fi
