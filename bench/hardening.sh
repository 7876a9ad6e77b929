#!/usr/bin/env bash
# The HTTP server against hostile clients at full size (issue 13), on
# loopback only, every loop bounded; prints figures. `make hardening`.
#   1. 900 slowloris connections against `--serve-mock` under ulimit -n 1024
#   2. 200 connections x 8,000 tiny headers: server RSS before/peak/after
#   3. Expect: 100-continue POST of 2 KB
#   4. a 60 MiB response through core.request: the client's peak RSS
#   5. emulator throughput under wrk (GET /v2/ping)
# Usage: bench/hardening.sh [BUILD_DIR]   (default build)
set -u
BUILD=${1:-build}
RUN=$BUILD/gigstack-run
AUTH="Authorization: Bearer sk_test_mock"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
[ -x "$RUN" ] || { echo "no $RUN: run make all" >&2; exit 1; }

now_ms() { date +%s%3N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# start_server LOG: --serve-mock on a free port under ulimit -n 1024;
# sets SRV (pid) and PORT
start_server() {
  setsid bash -c "ulimit -n 1024; exec $RUN --serve-mock 127.0.0.1:0" > "$1" 2>&1 &
  SRV=$!
  PIDS+=("$SRV")
  for _ in $(seq 100); do
    PORT=$(sed -n 's#^http://127.0.0.1:\([0-9]*\)/v2$#\1#p' "$1")
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "server did not start: $(cat "$1")" >&2
  exit 1
}

stop_server() { kill -TERM "$SRV" 2>/dev/null; wait "$SRV" 2>/dev/null; }

ping_ms() {   # a fresh client: connect + GET /v2/ping, total seconds
  curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}' -H "$AUTH" "http://127.0.0.1:$PORT/v2/ping"
}

echo "== 1. slowloris: 900 connections dripping a byte every second, server under ulimit -n 1024"
start_server "$WORK/s1.log"
base_fds=$(nfds "$SRV")
setsid bash -c "
  ulimit -n 4096; trap '' PIPE; fds=()
  for i in \$(seq 900); do
    exec {fd}<>/dev/tcp/127.0.0.1/$PORT && fds+=(\$fd)
    printf 'GET /v2/ping HTTP/1.1\r\nHost: x\r\n' >&\$fd 2>/dev/null
  done
  echo opened > $WORK/opened
  for n in \$(seq 25); do
    for fd in \"\${fds[@]}\"; do printf 'X' >&\$fd 2>/dev/null; done
    sleep 1
  done" >/dev/null 2>&1 &
ATK=$!
PIDS+=("$ATK")
t0=$(now_ms)
for _ in $(seq 200); do [ -f "$WORK/opened" ] && break; sleep 0.05; done
echo "attacker opened 900 connections in $(( $(now_ms) - t0 )) ms; server fds: $base_fds before, $(nfds "$SRV") now"
worst=0
for i in 1 2 3 4 5; do
  r=$(ping_ms)
  echo "  fresh client $i at +$(( $(now_ms) - t0 )) ms: HTTP ${r% *} in ${r#* } s"
  us=$(awk -v s="${r#* }" 'BEGIN { printf "%d", s * 1000000 }')
  [ "$us" -gt "$worst" ] && worst=$us
  sleep 1
done
echo "  slowest fresh client: $worst us"
closed_at=""
for _ in $(seq 300); do
  if [ "$(nfds "$SRV")" -le $((base_fds + 8)) ]; then closed_at=$(( $(now_ms) - t0 )); break; fi
  sleep 0.1
done
echo "  slow connections closed (server fds back to $(nfds "$SRV")) at +${closed_at:-never (>30 s)} ms while the attacker still drips"
kill -TERM -- "-$ATK" 2>/dev/null
stop_server

echo "== 2. header flood: 200 connections x 8,000 'a:b' headers (40 KB each, block left open)"
start_server "$WORK/s2.log"
for _ in 1 2 3; do curl -s -o /dev/null -H "$AUTH" "http://127.0.0.1:$PORT/v2/ping"; done
before=$(rss_kb "$SRV")
setsid bash -c "
  ulimit -n 4096; trap '' PIPE; fds=()
  hdrs=\$(printf 'a:b\r\n%.0s' \$(seq 8000))
  for i in \$(seq 200); do
    exec {fd}<>/dev/tcp/127.0.0.1/$PORT && fds+=(\$fd)
    printf 'GET /v2/ping HTTP/1.1\r\nHost: x\r\n%s' \"\$hdrs\" >&\$fd 2>/dev/null
  done
  for fd in \"\${fds[@]}\"; do
    read -t 2 -r line <&\$fd; echo \"\${line%\$'\r'}\" >> $WORK/flood
  done
  echo done > $WORK/flooded
  sleep 20" >/dev/null 2>&1 &
ATK=$!
PIDS+=("$ATK")
peak=$before
for _ in $(seq 300); do
  r=$(rss_kb "$SRV"); [ "$r" -gt "$peak" ] && peak=$r
  [ -f "$WORK/flooded" ] && break
  sleep 0.05
done
during=$(rss_kb "$SRV")
echo "  responses: $(sort "$WORK/flood" | uniq -c | tr -s ' ' | paste -sd ';')"
kill -TERM -- "-$ATK" 2>/dev/null
sleep 1
after=$(rss_kb "$SRV")
echo "  server RSS: before $before KiB, peak sampled $peak KiB, with the attacker connected $during KiB, after close $after KiB"
echo "  growth at peak $(( (peak - before) / 1024 )) MiB; after close $(( (after - before) * 100 / before )) % from the start"
stop_server

echo "== 3. Expect: 100-continue, POST 2 KB"
start_server "$WORK/s3.log"
head -c 2048 /dev/zero | tr '\0' 'x' > "$WORK/body"
for i in 1 2 3; do
  r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "$AUTH" -H 'Expect: 100-continue' \
        -H 'Content-Type: application/json' --data-binary @"$WORK/body" "http://127.0.0.1:$PORT/v2/ping")
  echo "  try $i: HTTP ${r% *} in ${r#* } s"
done
stop_server

echo "== 4. client: one 64 MiB response (exactly the cap) through core.request (max_response 64 MiB)"
cat > "$WORK/big_server.lua" <<'EOF'
local http = require "gigstack.async.http"
local body = string.rep("x", 64 * 1024 * 1024)
local s = assert(http.listen{ port = 0, max_response = 128 * 1024 * 1024,
  handler = function() return 200, {}, body end })
io.stdout:write(s.port, "\n")
io.stdout:flush()
require("gigstack").sleep(60)   -- serves until the bench kills it
EOF
setsid "$RUN" "$WORK/big_server.lua" > "$WORK/big.port" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do BIGPORT=$(head -1 "$WORK/big.port"); [ -n "$BIGPORT" ] && break; sleep 0.1; done
cat > "$WORK/big_client.lua" <<EOF
local http = require "gigstack.async.http"
local function hwm()
  local f = io.open("/proc/self/status"); local s = f:read("a"); f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)"))
end
local base = hwm()
local r = assert(http.request{ url = "http://127.0.0.1:$BIGPORT/big", max_response = 64 * 1024 * 1024 })
print(("  status %d, body %d MiB; client peak RSS grew by %d MiB"):format(r.status, #r.body // 2^20, (hwm() - base) // 1024))
EOF
"$RUN" "$WORK/big_client.lua"

echo "== 5. emulator throughput: wrk -t2 -c64 -d5s GET /v2/ping"
if command -v wrk >/dev/null; then
  start_server "$WORK/s5.log"
  wrk -t2 -c64 -d5s -H "$AUTH" "http://127.0.0.1:$PORT/v2/ping" | grep -E "Requests/sec|Latency|requests in"
  stop_server
else
  echo "  wrk not installed (apt-get install wrk)"
fi
