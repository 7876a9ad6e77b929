#!/bin/sh
# valgrind on the end-to-end demo run: no errors, no definitely-lost bytes.
set -u
run=${1:-build/gigstack-run}
log=$(mktemp)
valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --log-file="$log" "$run" --mock scripts/auto_invoice.lua scripts/data/sales.csv
rc=$?
grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$log"
rm -f "$log"
if [ "$rc" -ne 0 ]; then echo "valgrind e2e: FAILED (exit $rc)"; exit 1; fi
echo "valgrind e2e: clean"
