/*
** ljournal.c
** The state journal for workflows: a SQLite database in WAL mode with
** one table of done keys. journal:done(key, result) commits durably
** (synchronous=FULL) before it returns, so a run killed at any point
** and run again neither repeats nor skips work.
*/
#define LUA_LIB
#include <sqlite3.h>
#include <lua.h>
#include <lauxlib.h>

#define JOURNAL_MT "gigstack.core.journal"

struct journal {
  sqlite3 *db;
  sqlite3_stmt *get, *put;
};

static struct journal *check_journal (lua_State *L) {
  struct journal *j = luaL_checkudata(L, 1, JOURNAL_MT);
  if (!j->db) luaL_error(L, "journal is closed");
  return j;
}

static int fail (lua_State *L, sqlite3 *db, const char *what) {
  luaL_pushfail(L);
  lua_pushfstring(L, "journal: %s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
  return 2;
}

/* journal:get(key) -> result text | nil */
static int j_get (lua_State *L) {
  struct journal *j = check_journal(L);
  size_t n;
  const char *key = luaL_checklstring(L, 2, &n);
  int rc;
  sqlite3_reset(j->get);
  sqlite3_bind_text(j->get, 1, key, (int)n, SQLITE_TRANSIENT);
  rc = sqlite3_step(j->get);
  if (rc == SQLITE_ROW) {
    lua_pushlstring(L, (const char *)sqlite3_column_text(j->get, 0),
                    (size_t)sqlite3_column_bytes(j->get, 0));
  } else if (rc == SQLITE_DONE) {
    lua_pushnil(L);
  } else {
    return fail(L, j->db, "read");
  }
  sqlite3_reset(j->get);
  return 1;
}

/* journal:done(key, result) -> true | fail, message (durable on return) */
static int j_done (lua_State *L) {
  struct journal *j = check_journal(L);
  size_t nk, nr;
  const char *key = luaL_checklstring(L, 2, &nk);
  const char *result = luaL_optlstring(L, 3, "", &nr);
  int rc;
  sqlite3_reset(j->put);
  sqlite3_bind_text(j->put, 1, key, (int)nk, SQLITE_TRANSIENT);
  sqlite3_bind_text(j->put, 2, result, (int)nr, SQLITE_TRANSIENT);
  rc = sqlite3_step(j->put);
  sqlite3_reset(j->put);
  if (rc != SQLITE_DONE) return fail(L, j->db, "write");
  lua_pushboolean(L, 1);
  return 1;
}

/* one function for __gc, __close and :close() */
static int j_close (lua_State *L) {
  struct journal *j = luaL_checkudata(L, 1, JOURNAL_MT);
  if (j->db) {
    sqlite3_finalize(j->get);
    sqlite3_finalize(j->put);
    sqlite3_close(j->db);
    j->db = NULL;
  }
  return 0;
}

/* core.journal(path) -> journal | fail, message */
int gs_journal_open (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct journal *j = lua_newuserdatauv(L, sizeof *j, 0);
  j->db = NULL;
  j->get = j->put = NULL;
  if (luaL_newmetatable(L, JOURNAL_MT)) {
    static const luaL_Reg meth[] = {
      {"get", j_get}, {"done", j_done}, {"close", j_close}, {NULL, NULL}
    };
    lua_newtable(L);
    luaL_setfuncs(L, meth, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, j_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, j_close);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    int n = fail(L, j->db, path);
    sqlite3_close(j->db);
    j->db = NULL;
    return n;
  }
  sqlite3_busy_timeout(j->db, 5000);
  if (sqlite3_exec(j->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                   "CREATE TABLE IF NOT EXISTS done (key TEXT PRIMARY KEY, result TEXT,"
                   " at INTEGER DEFAULT (strftime('%s','now')))", NULL, NULL, NULL) != SQLITE_OK
      || sqlite3_prepare_v2(j->db, "SELECT result FROM done WHERE key = ?1", -1, &j->get, NULL) != SQLITE_OK
      || sqlite3_prepare_v2(j->db, "INSERT OR REPLACE INTO done (key, result) VALUES (?1, ?2)", -1,
                            &j->put, NULL) != SQLITE_OK) {
    int n = fail(L, j->db, path);
    j_close(L);
    return n;
  }
  return 1;
}
