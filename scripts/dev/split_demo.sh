#!/bin/sh
# Three runners on one PostgreSQL journal invoicing the same N sales
# (default 3000) against one `gigstack-run --serve-mock` emulator; runner 2
# is killed with SIGKILL once KILL_AT payments exist and started again.
# With MODE=restart, PostgreSQL is restarted at KILL_AT payments instead.
# Prints each runner's count, the queue's per-runner counts and the
# emulator's totals. Usage: [MODE=restart] scripts/dev/split_demo.sh [N] [KILL_AT]
set -eu
RUN=${RUN:-./build/gigstack-run}
N=${1:-3000}; KILL_AT=${2:-800}
dir=$(mktemp -u /tmp/gsdemo.XXXXXX); work=$(mktemp -d /tmp/gsdemo-work.XXXXXX)
url=$(sh scripts/dev/pg_cluster.sh start "$dir" $$)
mockpid=
cleanup() { [ -n "$mockpid" ] && kill "$mockpid" 2>/dev/null; sh scripts/dev/pg_cluster.sh stop "$dir"; rm -rf "$work"; }
trap cleanup EXIT INT TERM
awk -F, -v n="$N" 'NR==1{print;next}{rows[++k]=$0}END{for(i=1;i<=n;i++){
  split(rows[(i-1)%k+1],f,","); line=sprintf("S-%05d",i); for(j=2;j<=13;j++) line=line","f[j]; print line}}' \
  scripts/data/sales.csv > "$work/sales.csv"
"$RUN" --serve-mock 0 --mock-latency 20 > "$work/mock.out" 2>&1 & mockpid=$!
while ! grep -q '^http' "$work/mock.out" 2>/dev/null; do sleep 0.1; done
base=$(head -n 1 "$work/mock.out")
stats() { curl -s -H 'Authorization: Bearer sk_test_mock' "$base/_mock/stats"; }
export GIGSTACK_BASE_URL="$base" GIGSTACK_API_KEY=sk_test_mock GIGSTACK_JOURNAL_URL="$url"
runner() { rc=0; "$RUN" --lease 5 scripts/auto_invoice.lua "$work/sales.csv" --batch demo --concurrency 8 \
  > "$work/r$1.out" 2>&1 || rc=$?; echo "runner $1 exit $rc" >> "$work/exits"; }
t0=$(date +%s.%N)
runner 1 & p1=$!; runner 2 & p2=$!; runner 3 & p3=$!
while [ "$(stats | sed 's/.*"payments":\([0-9]*\).*/\1/')" -lt "$KILL_AT" ]; do sleep 0.1; done
if [ "${MODE:-kill}" = restart ]; then
  # the database goes away mid-batch: the runners wait, then resume
  echo "restarting PostgreSQL at $(stats | sed 's/.*"payments":\([0-9]*\).*/\1/') payments"
  sh scripts/dev/pg_cluster.sh restart "$dir"
  echo "PostgreSQL back at $(stats | sed 's/.*"payments":\([0-9]*\).*/\1/') payments"
  wait "$p1" "$p2" "$p3"
else
  pkill -KILL -P "$p2" -f auto_invoice.lua || true
  echo "killed runner 2 at $(stats | sed 's/.*"payments":\([0-9]*\).*/\1/') payments"
  wait "$p2" || true
  runner 4 & p4=$!
  wait "$p1" "$p3" "$p4"
fi
t1=$(date +%s.%N)
cat "$work/exits"
for r in 1 2 3 4; do [ -f "$work/r$r.out" ] && echo "runner $r: $(grep "this runner" "$work/r$r.out" || echo "(no summary: killed)")" || true; done
grep -h '^journal (postgres)' "$work"/r?.out || true
"$RUN" journal status --batch demo | sed -n '/^batch/,$p'
echo "emulator: $(stats)"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "elapsed: %.1f s\n", b - a }'
