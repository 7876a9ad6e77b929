/*
** lpg.c
** PostgreSQL connections for the journal, asynchronous on the core's
** libuv loop: PQconnectStart/PQconnectPoll and PQsendQueryParams in
** non-blocking mode, the socket watched with uv_poll. A poll callback
** only moves libpq along and, when a connect or a query has finished,
** queues an event {type = "pg", token = ...}; Lua, resumed by core.step
** after uv_run returned, then takes the outcome with conn:result(). No
** Lua runs inside a libuv callback, and a slow database never blocks
** the requests in flight.
*/
#define LUA_LIB
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "pq_lazy.h"
#include <lua.h>
#include <lauxlib.h>

#include "core_internal.h"

#define PG_MT "gigstack.core.pg"

enum { PGC_CONNECTING, PGC_IDLE, PGC_BUSY, PGC_DEAD, PGC_CLOSED };

struct pgconn {
  struct ctx *c;
  struct live *live;           /* the core closes us at shutdown */
  PGconn *pg;
  uv_poll_t *poll;             /* NULL when not watching */
  int fd;                      /* the socket poll watches */
  int state;
  int flushing;                /* PQflush said 1: wait for writable */
  lua_Integer token;           /* the pending connect or query */
  int ready;                   /* the outcome waits for conn:result() */
  PGresult *result;            /* the query's result (the first error wins) */
  char *error;                 /* a connection-level failure */
};

/* notices (CREATE ... IF NOT EXISTS, say) are not errors: not printed */
static void quiet_notice (void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static void on_poll_freed (uv_handle_t *h) {
  free(h);
}

static void poll_stop (struct pgconn *p) {
  if (!p->poll) return;
  uv_poll_stop(p->poll);
  uv_close((uv_handle_t *)p->poll, on_poll_freed);
  p->poll = NULL;
}

static void set_error (struct pgconn *p, const char *msg) {
  size_t n;
  free(p->error);
  if (!msg || !*msg) msg = "connection failed";
  p->error = strdup(msg);
  /* libpq ends its messages with a newline: drop it */
  if (p->error && (n = strlen(p->error)) > 0 && p->error[n - 1] == '\n') p->error[n - 1] = '\0';
}

/* the connect or query is over: tell Lua (its event carries the token) */
static void finish (struct pgconn *p) {
  p->ready = 1;
  gs_core_post(p->c, p->token);
}

/* the connection is unusable: close the socket watch and say why */
static void fail_with (struct pgconn *p, const char *why) {
  int was_waiting = p->state == PGC_CONNECTING || p->state == PGC_BUSY;
  set_error(p, why);
  p->state = PGC_DEAD;
  poll_stop(p);
  if (was_waiting) finish(p);
}

static void fail (struct pgconn *p) {
  fail_with(p, PQerrorMessage(p->pg));
}

static void on_poll (uv_poll_t *h, int status, int events);

/* watch the current socket for `events` (it may change while connecting) */
static int watch (struct pgconn *p, int events) {
  int fd = PQsocket(p->pg);
  if (fd < 0) return -1;
  if (p->poll && p->fd != fd) poll_stop(p);
  if (!p->poll) {
    p->poll = malloc(sizeof *p->poll);
    if (!p->poll || uv_poll_init_socket(gs_core_loop(p->c), p->poll, fd) != 0) {
      free(p->poll);
      p->poll = NULL;
      return -1;
    }
    p->poll->data = p;
    p->fd = fd;
  }
  return uv_poll_start(p->poll, events, on_poll);
}

static void connect_step (struct pgconn *p) {
  switch (PQconnectPoll(p->pg)) {
    case PGRES_POLLING_OK:
      if (PQsetnonblocking(p->pg, 1) != 0) { fail(p); return; }
      p->state = PGC_IDLE;
      /* idle, the socket is still watched: a server that goes away is
      ** noticed at once, not at the next query */
      if (watch(p, UV_READABLE) != 0) { fail(p); return; }
      finish(p);
      return;
    case PGRES_POLLING_READING:
      if (watch(p, UV_READABLE) != 0) fail(p);
      return;
    case PGRES_POLLING_WRITING:
      if (watch(p, UV_WRITABLE) != 0) fail(p);
      return;
    default:
      fail(p);
      return;
  }
}

/* read what arrived; when the query's last result is in, finish */
static void query_step (struct pgconn *p) {
  if (!PQconsumeInput(p->pg)) { fail(p); return; }
  while (!PQisBusy(p->pg)) {
    PGresult *r = PQgetResult(p->pg);
    if (!r) {
      if (PQstatus(p->pg) == CONNECTION_BAD) { fail(p); return; }
      p->state = PGC_IDLE;
      finish(p);
      return;
    }
    if (p->result && PQresultStatus(p->result) == PGRES_FATAL_ERROR) {
      PQclear(r);              /* keep the first error */
    } else {
      PQclear(p->result);
      p->result = r;
    }
  }
}

static void on_poll (uv_poll_t *h, int status, int events) {
  struct pgconn *p = h->data;
  if (status < 0) {
    fail_with(p, uv_strerror(status));
    return;
  }
  switch (p->state) {
    case PGC_CONNECTING:
      connect_step(p);
      return;
    case PGC_BUSY:
      if ((events & UV_WRITABLE) && p->flushing) {
        int rc = PQflush(p->pg);
        if (rc < 0) { fail(p); return; }
        if (rc == 0) {
          p->flushing = 0;
          if (watch(p, UV_READABLE) != 0) { fail(p); return; }
        }
      }
      if (events & UV_READABLE) query_step(p);
      return;
    case PGC_IDLE:
      /* nothing asked: a notice, or the server closing the session */
      if (!PQconsumeInput(p->pg) || PQstatus(p->pg) == CONNECTION_BAD) fail(p);
      return;
    default:
      poll_stop(p);
      return;
  }
}

static void conn_release (struct pgconn *p) {
  poll_stop(p);
  if (p->pg) PQfinish(p->pg);
  p->pg = NULL;
  PQclear(p->result);
  p->result = NULL;
  free(p->error);
  p->error = NULL;
  p->state = PGC_CLOSED;
}

/* core shutdown: the live entry goes with it */
static void conn_cancel (void *data) {
  struct pgconn *p = data;
  p->live = NULL;
  conn_release(p);
}

static int conn_close (lua_State *L) {
  struct pgconn *p = luaL_checkudata(L, 1, PG_MT);
  if (p->live) {
    gs_core_unregister(p->live);
    p->live = NULL;
  }
  conn_release(p);
  return 0;
}

static struct pgconn *check_open (lua_State *L) {
  struct pgconn *p = luaL_checkudata(L, 1, PG_MT);
  if (p->state == PGC_CLOSED) luaL_error(L, "postgres connection is closed");
  return p;
}

/* conn:query(sql [, {params}]) -> token | fail, message. Parameters are
** text ($1, $2 ...; nil is NULL; params.n counts trailing nils); one
** query at a time per connection. */
static int conn_query (lua_State *L) {
  struct pgconn *p = check_open(L);
  const char *sql = luaL_checkstring(L, 2);
  const char *vals[32];
  int n = 0, i, rc;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "n");
    n = lua_isnil(L, -1) ? (int)lua_rawlen(L, 3) : (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_argcheck(L, n >= 0 && n <= 32, 3, "at most 32 parameters");
    luaL_checkstack(L, 2 * n + 2, "parameters");
    for (i = 0; i < n; i++) {
      lua_rawgeti(L, 3, i + 1);   /* stays on the stack while sent */
      vals[i] = lua_isnil(L, -1) ? NULL : luaL_tolstring(L, -1, NULL);
    }
  }
  if (p->state != PGC_IDLE) {
    luaL_pushfail(L);
    lua_pushstring(L, p->state == PGC_DEAD && p->error ? p->error
                   : p->state == PGC_DEAD ? "connection lost" : "connection busy");
    return 2;
  }
  PQclear(p->result);
  p->result = NULL;
  p->ready = 0;
  /* without parameters: the simple protocol, which runs several
  ** statements ("BEGIN; ...; COMMIT") in one call (migrations) */
  if (!(lua_isnoneornil(L, 3) ? PQsendQuery(p->pg, sql)
        : PQsendQueryParams(p->pg, sql, n, NULL, vals, NULL, NULL, 0))) {
    set_error(p, PQerrorMessage(p->pg));
    if (PQstatus(p->pg) == CONNECTION_BAD) {
      p->state = PGC_DEAD;
      poll_stop(p);
    }
    luaL_pushfail(L);
    lua_pushstring(L, p->error ? p->error : "send failed");
    return 2;
  }
  rc = PQflush(p->pg);
  p->flushing = rc == 1;
  p->state = PGC_BUSY;
  p->token = gs_core_token(p->c);
  if (rc < 0 || watch(p, UV_READABLE | (p->flushing ? UV_WRITABLE : 0)) != 0) {
    fail(p);                   /* the event still comes: Lua waits as usual */
  }
  lua_pushinteger(L, p->token);
  return 1;
}

/* conn:result() after the event -> rows, command_tuples | fail, message,
** sqlstate, lost (true when the connection is gone). rows[i][j] is text
** or nil (NULL); rows.n and rows.columns give the sizes. After a
** connect: true | fail, message. */
static int conn_result (lua_State *L) {
  struct pgconn *p = check_open(L);
  PGresult *r = p->result;
  int ok, nrows, ncols, i, j;
  if (!p->ready) {
    luaL_pushfail(L);
    lua_pushstring(L, "no result (the query is still running)");
    return 2;
  }
  p->ready = 0;
  if (!r) {
    if (p->state == PGC_IDLE) {
      lua_pushboolean(L, 1);
      return 1;
    }
    luaL_pushfail(L);
    lua_pushstring(L, p->error ? p->error : "connection lost");
    lua_pushnil(L);
    lua_pushboolean(L, p->state == PGC_DEAD);
    return 4;
  }
  ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) {
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    luaL_pushfail(L);
    lua_pushstring(L, msg ? msg : PQresStatus(PQresultStatus(r)));
    if (state) lua_pushstring(L, state); else lua_pushnil(L);
    lua_pushboolean(L, p->state == PGC_DEAD);
    PQclear(r);
    p->result = NULL;
    return 4;
  }
  nrows = PQntuples(r);
  ncols = PQnfields(r);
  lua_createtable(L, nrows, 2);
  for (i = 0; i < nrows; i++) {
    lua_createtable(L, ncols, 0);
    for (j = 0; j < ncols; j++) {
      if (PQgetisnull(r, i, j)) continue;
      lua_pushlstring(L, PQgetvalue(r, i, j), (size_t)PQgetlength(r, i, j));
      lua_rawseti(L, -2, j + 1);
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, nrows);
  lua_setfield(L, -2, "n");
  lua_pushinteger(L, ncols);
  lua_setfield(L, -2, "columns");
  lua_pushstring(L, PQcmdTuples(r));
  PQclear(r);
  p->result = NULL;
  return 2;
}

/* conn:status() -> "connecting" | "idle" | "busy" | "lost" | "closed" */
static int conn_status (lua_State *L) {
  static const char *const names[] = { "connecting", "idle", "busy", "lost", "closed" };
  struct pgconn *p = luaL_checkudata(L, 1, PG_MT);
  lua_pushstring(L, names[p->state]);
  return 1;
}

/* conn:backend_pid() -> the server process of this session */
static int conn_backend_pid (lua_State *L) {
  struct pgconn *p = check_open(L);
  lua_pushinteger(L, PQbackendPID(p->pg));
  return 1;
}

/* conn:error() -> the connection-level failure, or nil */
static int conn_error (lua_State *L) {
  struct pgconn *p = luaL_checkudata(L, 1, PG_MT);
  if (p->error) lua_pushstring(L, p->error); else lua_pushnil(L);
  return 1;
}

static const luaL_Reg conn_meth[] = {
  {"query", conn_query}, {"result", conn_result}, {"status", conn_status},
  {"backend_pid", conn_backend_pid}, {"error", conn_error},
  {"close", conn_close}, {NULL, NULL}
};

/* core.pg_connect(conninfo) -> conn, token | fail, message. The event
** of token says the attempt is over; conn:result() tells how. */
int gs_pg_connect (lua_State *L) {
  struct ctx *c = gs_core_ctx(L);
  const char *info = luaL_checkstring(L, 1);
  struct pgconn *p;
  if (gsl_pq_open() != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, gsl_pq_error());
    return 2;
  }
  p = lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  p->state = PGC_CLOSED;
  p->fd = -1;
  gs_core_meta(L, PG_MT, conn_meth, conn_close);
  lua_setmetatable(L, -2);
  p->c = c;
  p->pg = PQconnectStart(info);
  if (!p->pg) return luaL_error(L, "out of memory");
  if (PQstatus(p->pg) == CONNECTION_BAD) {
    set_error(p, PQerrorMessage(p->pg));
    luaL_pushfail(L);
    lua_pushstring(L, p->error ? p->error : "bad connection string");
    conn_release(p);
    return 2;
  }
  PQsetNoticeProcessor(p->pg, quiet_notice, NULL);
  p->live = gs_core_register(c, conn_cancel, p);
  if (!p->live) {
    conn_release(p);
    return luaL_error(L, "out of memory");
  }
  p->state = PGC_CONNECTING;
  p->token = gs_core_token(c);
  /* libpq: behave as if PQconnectPoll had said "writing" at first */
  if (watch(p, UV_WRITABLE) != 0) fail(p);
  lua_pushinteger(L, p->token);
  return 2;
}
