# Shared by the benchmark scripts (source it after setting ROOT and BIN): a scratch directory
# and key, every started process stopped on exit, free ports, the fake Anthropic API,
# claude-pool servers started and stopped, load runs, and the Messages API comparison.
OUT="$(mktemp -d)"
KEY="sk-bench-key-0123456789"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_fake_api: the fake Anthropic API (tests/fake-anthropic, built with the workspace's
# binaries into $BIN) on a free port; sets API to its URL.
start_fake_api() {
  "$BIN/fake-anthropic" --port 0 --port-file "$OUT/api.port" 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 1 100); do [ -s "$OUT/api.port" ] && break; sleep 0.1; done
  API="http://127.0.0.1:$(cat "$OUT/api.port")"
}

# start_server NAME COMMAND WORKERS QUEUE [ENV...]: starts claude-pool with WORKERS warm
# workers (ENV, K=V, is applied last and may override any setting), waits for /readyz; sets
# SERVER_URL and SERVER_PID (the server itself: it is exec'd, so stopping it stops its workers).
start_server() {
  local name=$1 command=$2 workers=$3 queue=$4; shift 4
  local port dir
  port=$(free_port)
  dir="$OUT/$name"
  mkdir -p "$dir"
  (cd "$dir" && exec env API_KEYS="$KEY" HTTPS_PORT=0 LOG_LEVEL=warn RATE_LIMIT_REQUESTS=0 CLAUDE_MAX_COST_PER_USER=0 \
    CLAUDE_POOL_WORKER__COMMAND="$command" \
    CLAUDE_POOL_WORKER__HOME="$dir/home" CLAUDE_POOL_WORKER__WORK_ROOT="$dir/work" \
    CLAUDE_POOL_POOL__MIN_WORKERS="$workers" CLAUDE_POOL_POOL__MAX_WORKERS="$workers" \
    CLAUDE_POOL_POOL__QUEUE_CAPACITY="$queue" CLAUDE_POOL_POOL__QUEUE_TIMEOUT=600s \
    "$@" "$BIN/claude-pool" serve --host 127.0.0.1 --port "$port" >"$dir/server.log" 2>&1) &
  SERVER_PID=$!
  PIDS+=($SERVER_PID)
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; then
      SERVER_URL="http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  echo "server $name did not become ready" >&2
  cat "$dir/server.log" >&2
  return 1
}

stop_server() { kill "$SERVER_PID" 2>/dev/null || true; while kill -0 "$SERVER_PID" 2>/dev/null; do sleep 0.1; done; }

# run LABEL ARGS...: one claude-pool-load run, its JSON report into $OUT/$RESULTS (default
# results).
run() {
  local label=$1 dir="$OUT/${RESULTS:-results}"; shift
  mkdir -p "$dir"
  "$BIN/claude-pool-load" run --quiet --label "$label" --json "$dir/$(echo "$label" | tr '@/' '__').json" "$@"
}

# api_runs KIND "CLIENTS..." TURNS_PER_CLIENT ONESHOTS WARMUP ROUNDS: against the running
# server, streamed time to first token through chat completions and through the Messages API,
# one conversation per client, new ones for each run (`api-chat-KIND@C`, `api-messages-KIND@C`),
# and one-shot turns (a new conversation each, one client) with and without a 64 KB image (a
# base64 PNG: `oneshot-API-KIND`, `oneshot-API-image-KIND`). First, WARMUP one-shot turns
# through each API, not measured, bring the pool to its steady state (every worker holding a
# conversation); then ROUNDS rounds of every run (labels end `#ROUND`), the order of the APIs
# and of image or not swapped every round, so that what the machine does meanwhile falls on
# both sides. Reports go to $OUT/api; benches/api_report.py takes the median over the rounds.
api_runs() {
  local kind=$1 clients=$2 per=$3 oneshots=$4 warmup=$5 rounds=$6 c api image round
  local apis images RESULTS=warmup
  for api in chat messages; do
    run "warmup-$api-$kind" --api "$api" --url "$SERVER_URL" --api-key "$KEY" -c 1 \
      -n "$warmup" --stream --turns-per-session 1 >/dev/null
  done
  RESULTS=api
  for round in $(seq 1 "$rounds"); do
    apis="chat messages" images="plain image"
    [ $((round % 2)) = 0 ] && apis="messages chat" images="image plain"
    for c in $clients; do
      for api in $apis; do
        run "api-$api-$kind@$c#$round" --api "$api" --url "$SERVER_URL" --api-key "$KEY" \
          -c "$c" -n "$((c * per))" --stream --session-prefix "api-$api-$kind-$c-$round" \
          --server-pid "$SERVER_PID" >/dev/null
      done
    done
    for api in $apis; do
      for image in $images; do
        if [ "$image" = image ]; then
          run "oneshot-$api-image-$kind#$round" --api "$api" --image-kb 64 --url "$SERVER_URL" \
            --api-key "$KEY" -c 1 -n "$oneshots" --stream --turns-per-session 1 >/dev/null
        else
          run "oneshot-$api-$kind#$round" --api "$api" --url "$SERVER_URL" --api-key "$KEY" \
            -c 1 -n "$oneshots" --stream --turns-per-session 1 >/dev/null
        fi
      done
    done
  done
}
