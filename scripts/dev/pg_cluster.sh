#!/bin/sh
# A throwaway PostgreSQL cluster for the specs and the benchmark.
#   pg_cluster.sh start DIR [WATCH_PID]  -> prints the journal URL
#   pg_cluster.sh stop DIR | restart DIR | url DIR
# The cluster lives in DIR (created; removed by stop), listens only on a
# Unix socket in DIR, trusts local connections and runs as an unprivileged
# user: as root, as `postgres` (Debian's package creates it) through
# runuser. With WATCH_PID, a watcher stops the cluster when that process
# is gone, so a spec run that dies leaves no server behind. Any failure
# prints the reason on stderr and exits non-zero. GS_PG_BIN names the
# directory of initdb and pg_ctl (default: the newest Debian one).
set -u
# the server is not ours to instrument: `make check` preloads the
# sanitizer runtime into the test processes, and postgres under it hangs
unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|restart|url DIR [WATCH_PID]" >&2; exit 2; }
bin=${GS_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -n "$bin" ] || bin=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")
[ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] || {
  echo "pg_cluster: initdb/pg_ctl not found (Debian: apt-get install postgresql)" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { echo "pg_cluster: running as root and no user 'postgres' to run the server" >&2; exit 1; }
  as() { runuser -u postgres -- "$@"; }
else
  as() { "$@"; }
fi
url() { printf 'postgresql://gigstack@/gigstack?host=%s\n' "$1"; }
case $cmd in
  start)
    mkdir -p "$dir" || exit 1
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    chmod 700 "$dir"
    as "$bin/initdb" -D "$dir/data" -U gigstack -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 || {
      echo "pg_cluster: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1; }
    as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-k $dir -c listen_addresses= -c fsync=off -c max_connections=200 -c shared_buffers=32MB" start >/dev/null 2>&1 || {
      echo "pg_cluster: the server did not start:" >&2; cat "$dir/server.log" >&2; exit 1; }
    as "$bin/createdb" -h "$dir" -U gigstack gigstack 2>"$dir/createdb.log" || {
      echo "pg_cluster: createdb failed:" >&2; cat "$dir/createdb.log" >&2; exit 1; }
    if [ -n "${3:-}" ]; then
      # stop the cluster once the process that asked for it is gone
      (trap '' INT TERM; while kill -0 "$3" 2>/dev/null && [ -d "$dir/data" ]; do sleep 1; done
       [ -d "$dir/data" ] && as "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1
       rm -rf "$dir") </dev/null >/dev/null 2>&1 &
    fi
    url "$dir" ;;
  stop)
    [ -d "$dir/data" ] && as "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$dir" ;;
  restart)
    as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || { echo "pg_cluster: stop failed" >&2; exit 1; }
    as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-k $dir -c listen_addresses= -c fsync=off -c max_connections=200 -c shared_buffers=32MB" start >/dev/null 2>&1 || {
      echo "pg_cluster: restart failed:" >&2; tail -n 20 "$dir/server.log" >&2; exit 1; } ;;
  down) as "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ;;
  up)
    as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-k $dir -c listen_addresses= -c fsync=off -c max_connections=200 -c shared_buffers=32MB" start >/dev/null 2>&1 || {
      echo "pg_cluster: start failed:" >&2; tail -n 20 "$dir/server.log" >&2; exit 1; } ;;
  url) url "$dir" ;;
  *) echo "pg_cluster: unknown command $cmd" >&2; exit 2 ;;
esac
