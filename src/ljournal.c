/*
** ljournal.c
** The state journal for workflows: a SQLite database in WAL mode.
** A key is claimed (a pending row naming its owner process) before the
** work runs and committed done (synchronous=FULL) after it succeeded,
** each in its own IMMEDIATE transaction, so two processes on one file
** never both run the work, and a run killed at any point and run again
** neither repeats nor skips it. Every SQLite result is checked: a read
** error is an error, never "not done".
** Only "done" needs to survive a power loss: claims, releases and
** renewals are committed with synchronous=NORMAL (in WAL mode: atomic and
** visible to the other processes at once, made durable by the next FULL
** commit). A claim lost with the machine is worth nothing anyway: its
** owner died with it, so the claim would be taken over; the re-run's
** request carries the same idempotency key. This halves the fsyncs of a
** journaled batch (issue 12).
*/
#define LUA_LIB
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include <lua.h>
#include <lauxlib.h>

#include "core_internal.h"

#define JOURNAL_MT "gigstack.core.journal"

enum { Q_GET, Q_PUT, Q_CLAIM_GET, Q_CLAIM_PUT, Q_CLAIM_DEL, Q_BEGIN, Q_COMMIT,
       Q_ROLLBACK, Q_RENEW, Q_COUNT };

static const char *const queries[Q_COUNT] = {
  "SELECT result FROM done WHERE key = ?1",
  "INSERT OR REPLACE INTO done (key, result) VALUES (?1, ?2)",
  "SELECT owner, expires FROM claims WHERE key = ?1",
  "INSERT OR REPLACE INTO claims (key, owner, expires) VALUES (?1, ?2, ?3)",
  "DELETE FROM claims WHERE key = ?1 AND owner = ?2",
  "BEGIN IMMEDIATE",
  "COMMIT",
  "ROLLBACK",
  "UPDATE claims SET expires = ?2 WHERE owner = ?1",
};

struct journal {
  sqlite3 *db;
  sqlite3_stmt *q[Q_COUNT];
  int full;                    /* synchronous is FULL now (else NORMAL) */
  char owner[160];             /* host:pid:start, this process's claims */
};

/* Set synchronous FULL (full = 1) or NORMAL for the next transaction;
** SQLite applies the pragma when it is prepared, so it is run with exec,
** and only when the level changes. Outside a transaction only. */
static int set_sync (struct journal *j, int full) {
  if (j->full == full) return SQLITE_OK;
  if (sqlite3_exec(j->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                   NULL, NULL, NULL) != SQLITE_OK)
    return SQLITE_ERROR;
  j->full = full;
  return SQLITE_OK;
}

static struct journal *check_journal (lua_State *L) {
  struct journal *j = luaL_checkudata(L, 1, JOURNAL_MT);
  if (!j->db) luaL_error(L, "journal is closed");
  return j;
}

/* Raise with SQLite's reason: callers must never mistake an error for
** "not done" (the work would run twice). */
static int jraise (lua_State *L, struct journal *j, const char *what) {
  return luaL_error(L, "journal: %s: %s", what, sqlite3_errmsg(j->db));
}

/* Run a statement to completion; SQLITE_ROW is left for the caller. */
static int step (sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) sqlite3_reset(st);
  return rc;
}

static void bind_text (sqlite3_stmt *st, int i, const char *s, size_t n) {
  sqlite3_bind_text(st, i, s, (int)n, SQLITE_TRANSIENT);
}

/* The start time of a process (clock ticks since boot, /proc/PID/stat
** field 22), so a reused pid is not taken for the claim's owner. 0 when
** unknown (no /proc). */
static unsigned long long proc_start (long pid) {
  char path[64], buf[1024];
  FILE *f;
  size_t n;
  const char *p;
  unsigned long long start = 0;
  int field;
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  f = fopen(path, "r");
  if (!f) return 0;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')');       /* the command name may hold spaces */
  if (!p) return 0;
  for (field = 2; *p && field < 22; p++)
    if (*p == ' ') field++;
  sscanf(p, "%llu", &start);
  return start;
}

static void owner_of_self (char *out, size_t size) {
  char host[64] = "";
  long pid = (long)getpid();
  gethostname(host, sizeof host - 1);
  snprintf(out, size, "%s:%ld:%llu", host, pid, proc_start(pid));
}

/* Is the claim's owner still running? Only answerable on this host;
** another host's claim lives until its lease expires. */
static int owner_alive (const char *owner, const char *self) {
  char host[64] = "", self_host[64] = "";
  long pid = 0;
  unsigned long long start = 0;
  if (sscanf(owner, "%63[^:]:%ld:%llu", host, &pid, &start) < 2) return 0;
  sscanf(self, "%63[^:]", self_host);
  if (strcmp(host, self_host) != 0) return 1;
  if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return 0;
  return start == 0 || proc_start(pid) == start;
}

/* journal:get(key) -> result text | nil; raises on a read error */
static int j_get (lua_State *L) {
  struct journal *j = check_journal(L);
  size_t n;
  const char *key = luaL_checklstring(L, 2, &n);
  sqlite3_stmt *st = j->q[Q_GET];
  int rc;
  bind_text(st, 1, key, n);
  rc = step(st);
  if (rc == SQLITE_ROW) {
    lua_pushlstring(L, (const char *)sqlite3_column_text(st, 0),
                    (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_reset(st);
    return 1;
  }
  if (rc != SQLITE_DONE) return jraise(L, j, "read");
  lua_pushnil(L);
  return 1;
}

static int rollback_raise (lua_State *L, struct journal *j, const char *what) {
  lua_pushfstring(L, "journal: %s: %s", what, sqlite3_errmsg(j->db));
  if (sqlite3_get_autocommit(j->db) == 0) step(j->q[Q_ROLLBACK]);
  return lua_error(L);
}

/* journal:claim(key, lease_seconds) -> "done", result | "claimed",
** recovered | "busy", owner. One IMMEDIATE transaction: of two processes
** claiming one key, exactly one gets "claimed". A pending claim whose
** owner died (or whose lease expired) is taken over ("recovered"). */
static int j_claim (lua_State *L) {
  struct journal *j = check_journal(L);
  size_t n;
  const char *key = luaL_checklstring(L, 2, &n);
  lua_Integer lease = luaL_optinteger(L, 3, 600);
  sqlite3_stmt *st;
  int rc, recovered = 0;
  long long now = (long long)time(NULL);
  if (set_sync(j, 0) != SQLITE_OK) return jraise(L, j, "claim");
  if (step(j->q[Q_BEGIN]) != SQLITE_DONE) return jraise(L, j, "claim");
  st = j->q[Q_GET];
  bind_text(st, 1, key, n);
  rc = step(st);
  if (rc == SQLITE_ROW) {
    lua_pushliteral(L, "done");
    lua_pushlstring(L, (const char *)sqlite3_column_text(st, 0),
                    (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_reset(st);
    if (step(j->q[Q_COMMIT]) != SQLITE_DONE) return rollback_raise(L, j, "claim");
    return 2;
  }
  if (rc != SQLITE_DONE) return rollback_raise(L, j, "read");
  st = j->q[Q_CLAIM_GET];
  bind_text(st, 1, key, n);
  rc = step(st);
  if (rc == SQLITE_ROW) {
    const char *owner = (const char *)sqlite3_column_text(st, 0);
    long long expires = sqlite3_column_int64(st, 1);
    if (owner && expires > now && owner_alive(owner, j->owner)) {
      lua_pushliteral(L, "busy");
      lua_pushstring(L, owner);
      sqlite3_reset(st);
      if (step(j->q[Q_COMMIT]) != SQLITE_DONE) return rollback_raise(L, j, "claim");
      return 2;
    }
    recovered = 1;
    sqlite3_reset(st);
  } else if (rc != SQLITE_DONE) {
    return rollback_raise(L, j, "read");
  }
  st = j->q[Q_CLAIM_PUT];
  bind_text(st, 1, key, n);
  bind_text(st, 2, j->owner, strlen(j->owner));
  sqlite3_bind_int64(st, 3, now + (long long)lease);
  if (step(st) != SQLITE_DONE) return rollback_raise(L, j, "claim");
  if (step(j->q[Q_COMMIT]) != SQLITE_DONE) return rollback_raise(L, j, "claim");
  lua_pushliteral(L, "claimed");
  lua_pushboolean(L, recovered);
  return 2;
}

/* journal:done(key, result) -> true (durable on return); drops this
** process's claim in the same transaction. Raises on failure. */
static int j_done (lua_State *L) {
  struct journal *j = check_journal(L);
  size_t nk, nr;
  const char *key = luaL_checklstring(L, 2, &nk);
  const char *result = luaL_optlstring(L, 3, "", &nr);
  sqlite3_stmt *st;
  if (set_sync(j, 1) != SQLITE_OK) return jraise(L, j, "write");
  if (step(j->q[Q_BEGIN]) != SQLITE_DONE) return jraise(L, j, "write");
  st = j->q[Q_PUT];
  bind_text(st, 1, key, nk);
  bind_text(st, 2, result, nr);
  if (step(st) != SQLITE_DONE) return rollback_raise(L, j, "write");
  st = j->q[Q_CLAIM_DEL];
  bind_text(st, 1, key, nk);
  bind_text(st, 2, j->owner, strlen(j->owner));
  if (step(st) != SQLITE_DONE) return rollback_raise(L, j, "write");
  if (step(j->q[Q_COMMIT]) != SQLITE_DONE) return rollback_raise(L, j, "write");
  lua_pushboolean(L, 1);
  return 1;
}

/* journal:release(key): give up this process's claim (the work failed
** and may be tried again). Raises on failure. */
static int j_release (lua_State *L) {
  struct journal *j = check_journal(L);
  size_t n;
  const char *key = luaL_checklstring(L, 2, &n);
  sqlite3_stmt *st = j->q[Q_CLAIM_DEL];
  if (set_sync(j, 0) != SQLITE_OK) return jraise(L, j, "release");
  bind_text(st, 1, key, n);
  bind_text(st, 2, j->owner, strlen(j->owner));
  if (step(st) != SQLITE_DONE) return jraise(L, j, "release");
  return 0;
}

/* journal:renew(lease) -> claims renewed: this process's claims hold
** for another lease (their work is still running). Raises on failure. */
static int j_renew (lua_State *L) {
  struct journal *j = check_journal(L);
  lua_Integer lease = luaL_optinteger(L, 2, 600);
  sqlite3_stmt *st = j->q[Q_RENEW];
  if (set_sync(j, 0) != SQLITE_OK) return jraise(L, j, "renew");
  bind_text(st, 1, j->owner, strlen(j->owner));
  sqlite3_bind_int64(st, 2, (long long)time(NULL) + (long long)lease);
  if (step(st) != SQLITE_DONE) return jraise(L, j, "renew");
  lua_pushinteger(L, sqlite3_changes(j->db));
  return 1;
}

static void journal_close (struct journal *j) {
  int i;
  if (!j->db) return;
  for (i = 0; i < Q_COUNT; i++) {
    sqlite3_finalize(j->q[i]);
    j->q[i] = NULL;
  }
  sqlite3_close(j->db);
  j->db = NULL;
}

/* one function for __gc, __close and :close() */
static int j_close (lua_State *L) {
  journal_close(luaL_checkudata(L, 1, JOURNAL_MT));
  return 0;
}

static const luaL_Reg journal_meth[] = {
  {"get", j_get}, {"claim", j_claim}, {"done", j_done},
  {"release", j_release}, {"renew", j_renew}, {"close", j_close}, {NULL, NULL}
};

/* core.journal(path) -> journal | fail, message (SQLite's reason) */
int gs_journal_open (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct journal *j = lua_newuserdatauv(L, sizeof *j, 0);
  int i;
  memset(j, 0, sizeof *j);
  gs_core_meta(L, JOURNAL_MT, journal_meth, j_close);
  lua_setmetatable(L, -2);
  owner_of_self(j->owner, sizeof j->owner);
  if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
    goto fail;
  sqlite3_busy_timeout(j->db, 10000);
  if (sqlite3_exec(j->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                   "CREATE TABLE IF NOT EXISTS done (key TEXT PRIMARY KEY, result TEXT,"
                   " at INTEGER DEFAULT (strftime('%s','now')));"
                   "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL,"
                   " expires INTEGER NOT NULL)", NULL, NULL, NULL) != SQLITE_OK)
    goto fail;
  j->full = 1;
  for (i = 0; i < Q_COUNT; i++)
    if (sqlite3_prepare_v2(j->db, queries[i], -1, &j->q[i], NULL) != SQLITE_OK) goto fail;
  return 1;
fail:
  luaL_pushfail(L);
  lua_pushfstring(L, "journal %s: %s", path, j->db ? sqlite3_errmsg(j->db) : "out of memory");
  journal_close(j);
  return 2;
}

/* core.owner_self() -> "host:pid:start", the owner this process writes
** into claims (the PostgreSQL journal uses it too) */
int gs_owner_self (lua_State *L) {
  char owner[160];
  owner_of_self(owner, sizeof owner);
  lua_pushstring(L, owner);
  return 1;
}

/* core.owner_alive(owner) -> false only when owner is a process of this
** host that is gone: another host's claim lives until its lease ends */
int gs_owner_alive (lua_State *L) {
  char host[64] = "";
  /* owner_alive reads only the host of its second owner: no /proc read
  ** per call (a waiter on a busy key asks every 50 ms) */
  gethostname(host, sizeof host - 1);
  lua_pushboolean(L, owner_alive(luaL_checkstring(L, 1), host));
  return 1;
}
