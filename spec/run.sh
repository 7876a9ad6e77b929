#!/bin/sh
# Runs the busted suite with TAP output and closes with the line
# "N passed, N failed". Exit status is non-zero on any failure.
set -u
out=$(mktemp)
busted --lua=lua5.4 -o TAP "$@" > "$out" 2>&1
rc=$?
cat "$out"
passed=$(grep -c '^ok ' "$out")
failed=$(grep -c '^not ok ' "$out")
rm -f "$out"
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "no test ran"
  failed=1
fi
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
