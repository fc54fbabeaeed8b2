#!/usr/bin/env bash
# Installs the pinned Claude Code CLI into .cache/claude-cli (idempotent) and prints its path.
# The native binary ships in the npm platform package; no install script is needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${CLAUDE_CLI_VERSION:-2.1.197}"
PREFIX="$ROOT/.cache/claude-cli"
BIN="$PREFIX/node_modules/.bin/claude"
if [ ! -x "$BIN" ] || ! "$BIN" --version 2>/dev/null | grep -q "^$VERSION"; then
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$VERSION" >&2
fi
"$BIN" --version >&2
echo "$BIN"
