#!/bin/sh
# Claims per second of the PostgreSQL journal at 1, 4 and 16 concurrent
# runner processes (a benchmark, not a test: `make bench`). Each runner
# runs journal:once on CLAIMS keys of its own, one after another (claim,
# then commit: two round trips each), against a throwaway local cluster
# (scripts/dev/pg_cluster.sh, fsync off). A second table runs the same
# work with every runner on the SAME keys, where all but one find each
# key claimed or done. Usage: bench/journal_claims.sh [CLAIMS] [RUNNERS...]
set -eu
RUN=${RUN:-./build/gigstack-run}
CLAIMS=${1:-2000}
[ $# -gt 0 ] && shift
RUNNERS=${*:-1 4 16}
dir=$(mktemp -u /tmp/gsbench.XXXXXX)
url=$(sh scripts/dev/pg_cluster.sh start "$dir" $$)
trap 'sh scripts/dev/pg_cluster.sh stop "$dir"' EXIT INT TERM
script=$(mktemp /tmp/gsbench.XXXXXX.lua)
cat > "$script" <<'LUA'
local gigstack = require "gigstack"
local j = require("gigstack.runner.journal").open(arg[1])
local n, prefix = tonumber(arg[2]), arg[3]
gigstack.run(function()
  for i = 1, n do assert(j:once(prefix .. i, function() return true end, { wait = 60 })) end
end)
j:close()
LUA
now() { date +%s.%N; }
"$RUN" -e "require('gigstack.runner.journal').open('$url'):close()"   # schema first
for mode in distinct same; do
  echo "== $mode keys: $CLAIMS once() per runner"
  printf '%8s %10s %10s %12s\n' runners claims seconds claims/s
  for r in $RUNNERS; do
    t0=$(now)
    i=0
    while [ $i -lt "$r" ]; do
      if [ $mode = distinct ]; then p="$mode-$r-$i-"; else p="$mode-$r-"; fi
      "$RUN" "$script" "$url" "$CLAIMS" "$p" 2>/dev/null &
      i=$((i + 1))
    done
    wait
    t1=$(now)
    total=$((CLAIMS * r))
    [ $mode = same ] && total=$CLAIMS    # each key is claimed (and run) once
    awk -v r="$r" -v n="$total" -v a="$t0" -v b="$t1" \
      'BEGIN { printf "%8d %10d %10.2f %12.0f\n", r, n, b - a, n / (b - a) }'
  done
done
rm -f "$script"
