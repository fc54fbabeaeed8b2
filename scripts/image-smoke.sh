#!/usr/bin/env bash
# Builds the container image with podman from locally made bases (public registries are out of
# reach here) and smoke-tests it: start, /readyz, the health check, one chat completion through
# the real CLI against the fake Anthropic API, non-root processes, and SIGTERM stopping it within
# the grace period with no process left.
#
#   scripts/image-smoke.sh            (root; needs podman, runc, debootstrap)
#
# Bases: `localdebian:bookworm` is a debootstrap minbase of Debian bookworm from the mirror apt
# already uses, with this machine's extra certificate authorities; `localrust:bookworm` adds gcc
# and this machine's Rust toolchain. Both are kept between runs. The image is built with the Dockerfile's RUST_IMAGE / RUNTIME_IMAGE arguments.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PODMAN=(podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs)
ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096)
IMAGE=localhost/claude-pool:smoke
WORK="$ROOT/.cache/image"
# The fake Anthropic API runs on the host (the container shares its network); release build,
# which the test command has made already.
FAKE_API="$ROOT/target/release/fake-anthropic"
GRACE=10
mkdir -p "$WORK"
phase() { printf '\n--- %s (%ss)\n' "$1" "$SECONDS"; }

mirror() {
  local m
  m=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -1 || true)
  [ -n "$m" ] || m=$(grep -h -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}

if ! "${PODMAN[@]}" image exists localhost/localdebian:bookworm; then
  phase "debootstrap base"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$(mirror)" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  # Certificate authorities this machine trusts beyond Debian's (a TLS-inspecting egress proxy):
  # the bases trust them too, once ca-certificates is installed in them.
  mkdir -p "$WORK/rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import - localhost/localdebian:bookworm >/dev/null
  rm -rf "$WORK/rootfs"
fi

if ! "${PODMAN[@]}" image exists localhost/localrust:bookworm; then
  phase "build base: gcc and this machine's Rust toolchain"
  ctx="$WORK/rust-context"
  rm -rf "$ctx"
  mkdir -p "$ctx/rust"
  sysroot="$(rustc --print sysroot)"
  cp -a "$sysroot/bin" "$sysroot/lib" "$ctx/rust/"
  cat >"$ctx/Containerfile" <<'EOF'
FROM localhost/localdebian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY rust /usr/local/rust
ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_HOME=/usr/local/cargo
EOF
  "${PODMAN[@]}" build --network=host "${ULIMITS[@]}" -t localhost/localrust:bookworm "$ctx" >"$WORK/rust-base.log" 2>&1 ||
    { tail -20 "$WORK/rust-base.log" >&2; exit 1; }
  rm -rf "$ctx"
fi

phase "build the image"
"${PODMAN[@]}" build --format docker --network=host "${ULIMITS[@]}" \
  --build-arg RUST_IMAGE=localhost/localrust:bookworm \
  --build-arg RUNTIME_IMAGE=localhost/localdebian:bookworm \
  -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; exit 1; }
"${PODMAN[@]}" image inspect "$IMAGE" --format 'image size: {{.Size}} bytes'

phase "smoke test"
cargo build --release --quiet -p fake-anthropic --bin fake-anthropic
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NAME="claude-pool-smoke-$$"
API_PID=""
cleanup() {
  "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null || true
  rm -f "$WORK/api.port"
}
trap cleanup EXIT
rm -f "$WORK/api.port"
"$FAKE_API" --port 0 --port-file "$WORK/api.port" 2>/dev/null &
API_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/api.port" ] && break; sleep 0.1; done
API="http://127.0.0.1:$(cat "$WORK/api.port")"
PORT=$(free_port)
HTTPS_PORT=$(free_port)
KEY="sk-smoke-0123456789abcdef"
CONSOLE_PASSWORD="smoke-console-password"
"${PODMAN[@]}" run -d --name "$NAME" --network=host "${ULIMITS[@]}" --health-interval=disable \
  -e PORT="$PORT" -e HTTPS_PORT="$HTTPS_PORT" -e ADMIN_PASSWORD="$CONSOLE_PASSWORD" -e API_KEYS="$KEY" -e ANTHROPIC_BASE_URL="$API" -e ANTHROPIC_API_KEY=dummy \
  -e CLAUDE_CODE_MAX_RETRIES=0 -e CLAUDE_POOL_POOL__MIN_WORKERS=1 -e CLAUDE_POOL_POOL__MAX_WORKERS=2 \
  -e CLAUDE_POOL_SERVER__SHUTDOWN_GRACE="${GRACE}s" "$IMAGE" >/dev/null 2>"$WORK/run.err" ||
  { cat "$WORK/run.err" >&2; exit 1; }  # (podman's complaints about a missing systemd stay in run.err)
URL="http://127.0.0.1:$PORT"
fail() { echo "image smoke test failed: $*" >&2; "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -30 >&2; exit 1; }
for _ in $(seq 1 600); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$URL/readyz" >/dev/null || fail "/readyz never answered 200"
echo "ready after ${SECONDS}s"
"${PODMAN[@]}" healthcheck run "$NAME" >/dev/null || fail "the image's HEALTHCHECK failed"

answer=$(curl -sf "$URL/v1/chat/completions" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' \
  -d '{"model":"sonnet","messages":[{"role":"user","content":"hello from the image"}]}') ||
  fail "chat completion"
echo "$answer" | python3 -c '
import json, sys
r = json.load(sys.stdin)
text = r["choices"][0]["message"]["content"]
assert "[n=1]" in text, text
print("chat completion:", text[:80].replace("\n", " "))' || fail "unexpected answer: $answer"

# The admin console: its generated certificate in /app/certs, and a sign-in over TLS with it.
"${PODMAN[@]}" exec "$NAME" cat /app/certs/server.crt >"$WORK/console.crt" || fail "no generated certificate"
curl -sf --cacert "$WORK/console.crt" "https://localhost:$HTTPS_PORT/" | grep -q 'name="csrf-token"' ||
  fail "the console's sign-in page over HTTPS"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/console.crt" \
  "https://localhost:$HTTPS_PORT/admin/login" --data-urlencode "password=$CONSOLE_PASSWORD")
[ "$status" = 200 ] || fail "console sign-in answered $status"
echo "admin console: HTTPS with the generated certificate, sign-in OK"

uid=$("${PODMAN[@]}" exec "$NAME" id -u)
[ "$uid" = 10001 ] || fail "runs as uid $uid, not 10001"
users=$("${PODMAN[@]}" top "$NAME" user | tail -n +2 | sort -u | tr '\n' ' ')
[ "$users" = "claude-pool " ] || fail "processes run as: $users"
workers=$("${PODMAN[@]}" top "$NAME" args | grep -c 'stream-json' || true)
[ "$workers" -ge 1 ] || fail "no worker process in the container"
echo "processes: all as claude-pool (uid 10001), $workers worker(s)"

t0=$(date +%s.%N)
"${PODMAN[@]}" kill --signal TERM "$NAME" >/dev/null
for _ in $(seq 1 $((GRACE * 10 + 100))); do
  [ "$("${PODMAN[@]}" inspect -f '{{.State.Running}}' "$NAME")" = false ] && break
  sleep 0.1
done
elapsed=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
[ "$("${PODMAN[@]}" inspect -f '{{.State.Running}}' "$NAME")" = false ] || fail "still running after SIGTERM"
code=$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
python3 -c "import sys; sys.exit(0 if $elapsed < $GRACE else 1)" || fail "SIGTERM took ${elapsed}s (grace ${GRACE}s)"
left=$(pgrep -f 'claude-code/bin/claude.exe' -u 10001 || true)
[ -z "$left" ] || fail "processes left behind: $left"
echo "SIGTERM: exit 0 after ${elapsed}s, no process left"
echo "image smoke test passed (${SECONDS}s)"
