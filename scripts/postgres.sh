#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the store tests on a loopback port (from Debian's
# `postgresql` package; installed by .ci/run) and prints its URL. Reuses a running one.
# Usage: export TEST_POSTGRES_URL="$(scripts/postgres.sh)"
#        scripts/postgres.sh stop | restart    (outage tests: stop it, start it again with its data)
set -euo pipefail
PORT="${PG_TEST_PORT:-55432}"
DIR="${PG_TEST_DIR:-/tmp/claude-pool-pg-$PORT}"
URL="postgres://claude_pool@127.0.0.1:$PORT/postgres"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -n "$BIN" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }

# The server refuses to run as root: run it as the package's `postgres` user then.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
start() {
  as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200" start >/dev/null \
    || { cat "$DIR/server.log" >&2; exit 1; }
}
case "${1:-}" in
  stop) as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null; exit 0 ;;
  restart) start; echo "$URL"; exit 0 ;;
esac
if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  echo "$URL"
  exit 0
fi
rm -rf "$DIR"
mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown postgres: "$DIR"
as_owner "$BIN/initdb" -D "$DIR/data" -U claude_pool -A trust -E UTF8 >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; exit 1; }
start
echo "$URL"
