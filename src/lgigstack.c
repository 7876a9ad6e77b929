/*
** lgigstack.c
** The Lua binding `gigstack.core`: one uv loop and one engine per Lua
** state. libuv and libcurl callbacks never touch Lua: they append to
** an event queue that core.step() turns into Lua tables after uv_run
** has returned. The scheduler (lua/gigstack/async/sched.lua) resumes the
** coroutines.
*/
#define LUA_LIB
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>
#include <curl/curl.h>
#include "curl_lazy.h"
#include <lua.h>
#include <lauxlib.h>

#include "gigstack.h"
#include "core_internal.h"

#define CTX_MT "gigstack.core.ctx"
#define SERVER_MT "gigstack.core.server"
#define HTTPREQ_MT "gigstack.core.http_request"

enum { EV_RESPONSE, EV_TIMER, EV_REQUEST, EV_SIGNAL, EV_EXT };

struct event {
  struct event *next;
  int type;
  lua_Integer token;
  long status;
  int error;
  char *error_msg, *headers, *body;
  size_t headers_len, body_len;
  double elapsed;
  long new_connections;
  int sent, deadline_hit;
  long retry_after_ms;
  struct gs_attempt *attempts;
  int nattempts;
  struct gs_http_req *req;     /* EV_REQUEST */
  const char *signal;          /* EV_SIGNAL */
};

struct server_ud;

struct live {                  /* a request, timer, server or signal */
  struct live *prev, *next;
  struct ctx *ctx;
  struct server_ud *owner;     /* servers: the userdata pointing here */
  lua_Integer token;
  int kind;
  struct expect_rules *rules;  /* servers: who may send a body (expect_auth) */
  union {
    struct gs_request *req;
    uv_timer_t *timer;
    struct gs_server *server;
    uv_signal_t *signal;
    struct { void (*cancel)(void *); void *data; } ext;   /* EV_EXT: lpg.c */
  } u;
};

struct ctx {
  uv_loop_t loop;
  struct gs_engine *engine;
  struct event *head, *tail;
  struct live *live;
  lua_Integer next_token;
  int closing;                 /* shutting down: no new events */
  int closed;
};

struct server_ud {
  struct live *l;              /* NULL once closed */
};

struct httpreq_ud {
  struct gs_http_req *req;     /* NULL once answered */
};

/* ===== small helpers ===== */

static char *dup_bytes (const char *p, size_t n) {
  char *s = malloc(n + 1);
  if (s) {
    if (n) memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

static struct ctx *check_ctx (lua_State *L) {
  struct ctx **pc = lua_touserdata(L, lua_upvalueindex(1));
  if (!*pc || (*pc)->closed) luaL_error(L, "gigstack.core is shut down");
  return *pc;
}

static struct event *event_new (struct ctx *c, int type, lua_Integer token) {
  struct event *ev;
  if (c->closing) return NULL;   /* nobody is left to take it */
  ev = calloc(1, sizeof *ev);
  if (!ev) return NULL;
  ev->type = type;
  ev->token = token;
  if (c->tail) c->tail->next = ev;
  else c->head = ev;
  c->tail = ev;
  /* An event queued from any libuv phase (a curl timer callback that
  ** completes a transfer, say) must end uv_run before it polls: without
  ** this, UV_RUN_ONCE blocks in epoll until the next timer fires. */
  uv_stop(&c->loop);
  return ev;
}

static void event_free (struct event *ev) {
  free(ev->error_msg);
  free(ev->headers);
  free(ev->body);
  free(ev->attempts);
  if (ev->req) gs_http_respond(ev->req, 503, NULL, 0, NULL, 0);
  free(ev);
}

static struct live *live_new (struct ctx *c, int kind) {
  struct live *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->ctx = c;
  l->kind = kind;
  l->token = ++c->next_token;
  l->next = c->live;
  if (c->live) c->live->prev = l;
  c->live = l;
  return l;
}

static void live_unlink (struct live *l) {
  struct ctx *c = l->ctx;
  if (l->prev) l->prev->next = l->next;
  else c->live = l->next;
  if (l->next) l->next->prev = l->prev;
  free(l->rules);
  free(l);
}

static struct live *live_find (struct ctx *c, lua_Integer token) {
  struct live *l;
  for (l = c->live; l; l = l->next)
    if (l->token == token) return l;
  return NULL;
}

static void on_handle_freed (uv_handle_t *h) {
  free(h);
}

/* ===== C callbacks: queue only, never Lua ===== */

static void on_done (struct gs_request *r, const struct gs_response *res,
                     void *ud) {
  struct live *l = ud;
  struct event *ev = event_new(l->ctx, EV_RESPONSE, l->token);
  (void)r;
  if (ev) {
    ev->status = res->status;
    ev->error = res->error;
    ev->error_msg = res->error_msg ? dup_bytes(res->error_msg,
                                               strlen(res->error_msg)) : NULL;
    ev->headers = dup_bytes(res->headers, res->headers_len);
    ev->headers_len = res->headers_len;
    /* the engine's buffer itself: a capped response costs its size
    ** here and once more only as the Lua string */
    if (res->own_body && *res->own_body) {
      ev->body = *res->own_body;
      *res->own_body = NULL;
    } else {
      ev->body = dup_bytes(res->body, res->body_len);
    }
    ev->body_len = ev->body ? res->body_len : 0;
    if (!ev->body || !ev->headers) {
      ev->status = 0;
      ev->error = CURLE_OUT_OF_MEMORY;
    }
    ev->elapsed = res->elapsed;
    ev->new_connections = res->new_connections;
    ev->sent = res->sent;
    ev->deadline_hit = res->deadline_hit;
    ev->retry_after_ms = res->retry_after_ms;
    ev->attempts = malloc(sizeof *ev->attempts * (size_t)(res->nattempts + 1));
    if (ev->attempts) {
      if (res->nattempts > 0)
        memcpy(ev->attempts, res->attempts, sizeof *ev->attempts * (size_t)res->nattempts);
      ev->nattempts = res->nattempts;
    }
  }
  live_unlink(l);
}

static void on_timer (uv_timer_t *t) {
  struct live *l = t->data;
  event_new(l->ctx, EV_TIMER, l->token);
  uv_close((uv_handle_t *)t, on_handle_freed);
  live_unlink(l);
}

static void on_request (struct gs_server *s, struct gs_http_req *req,
                        void *ud) {
  struct live *l = ud;
  struct event *ev = event_new(l->ctx, EV_REQUEST, l->token);
  (void)s;
  if (!ev) gs_http_respond(req, 503, NULL, 0, NULL, 0);
  else ev->req = req;
}

static void on_signal (uv_signal_t *h, int signum) {
  struct live *l = h->data;
  struct event *ev = event_new(l->ctx, EV_SIGNAL, l->token);
  if (ev) ev->signal = signum == SIGINT ? "SIGINT"
                       : signum == SIGTERM ? "SIGTERM" : "SIGHUP";
}

/* ===== core.request / core.cancel ===== */

#define MAX_SECONDS 31536000.0   /* a year: keeps every conversion defined */

static long opt_ms (lua_State *L, int t, const char *field) {
  double s;
  lua_getfield(L, t, field);
  s = luaL_optnumber(L, -1, 0);
  lua_pop(L, 1);
  if (!(s >= 0 && s <= MAX_SECONDS))
    luaL_error(L, "%s: must be a number of seconds from 0 to %f", field, MAX_SECONDS);
  return (long)(s * 1000.0 + 0.5);
}

/* A header line "Name: value" goes on the wire as is: a CR, LF or NUL
** in it would end the header early and let the rest be read as another
** header (injection). Returns NULL if the line is safe, else a message
** naming the header (its printable name only). */
static const char *bad_header (lua_State *L, const char *line, size_t len) {
  size_t i, name_len = 0;
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)line[i];
    if (ch == '\r' || ch == '\n' || ch == '\0') break;
  }
  if (i == len) return NULL;
  while (name_len < len && name_len < 64 && line[name_len] != ':' &&
         (unsigned char)line[name_len] > 32 && (unsigned char)line[name_len] < 127)
    name_len++;
  lua_pushlstring(L, line, name_len);
  return lua_pushfstring(L, "header %s: value contains CR, LF or NUL", lua_tostring(L, -1));
}

/* The header lines of the table at index t (argument arg, for errors):
** at most 64 strings into hdrs, each left pushed so it lives while it is
** used; NULL, or the reason one is refused (bad_header). The stack grows
** by the strings and 8 more (4 for a refusal or 7 for a request's other
** fields), no more: a coroutine's stack grown here stays grown (it was
** 64 + 16, which took every requesting task's stack past 80 slots,
** 1.3 KB, while it waited). */
static const char *header_lines (lua_State *L, int t, int arg,
                                 const char **hdrs, size_t *nh) {
  size_t i, n;
  luaL_checktype(L, t, LUA_TTABLE);
  n = lua_rawlen(L, t);
  luaL_argcheck(L, n <= 64, arg, "at most 64 headers");
  luaL_checkstack(L, (int)n + 8, "too many headers");
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *why;
    lua_rawgeti(L, t, (lua_Integer)i);
    hdrs[*nh] = luaL_checklstring(L, -1, &len);
    if ((why = bad_header(L, hdrs[(*nh)++], len)) != NULL) return why;
  }
  return NULL;
}

#define MAX_PARTS 16

/* parts = {{name=, filename=, type=, path= | data=}, ...}: the strings
** stay on the stack until gs_engine_submit has copied them. */
static size_t read_parts (lua_State *L, struct gs_part *parts) {
  size_t n, i;
  int t;
  lua_getfield(L, 1, "parts");
  if (lua_isnil(L, -1)) return 0;
  t = lua_gettop(L);
  luaL_checktype(L, t, LUA_TTABLE);
  n = lua_rawlen(L, t);
  luaL_argcheck(L, n >= 1 && n <= MAX_PARTS, 1, "parts: 1 to 16 parts");
  luaL_checkstack(L, (int)n * 6 + 2, "too many parts");   /* + a failure's two values */
  for (i = 0; i < n; i++) {
    struct gs_part *p = &parts[i];
    int pt;
    lua_rawgeti(L, t, (lua_Integer)i + 1);
    pt = lua_gettop(L);
    if (!lua_istable(L, pt)) luaL_error(L, "parts[%d]: must be a table", (int)i + 1);
    lua_getfield(L, pt, "name");
    p->name = lua_tostring(L, -1);
    if (!p->name) luaL_error(L, "parts[%d].name: is required", (int)i + 1);
    lua_getfield(L, pt, "filename");
    p->filename = lua_tostring(L, -1);
    lua_getfield(L, pt, "type");
    p->type = lua_tostring(L, -1);
    lua_getfield(L, pt, "path");
    p->path = lua_tostring(L, -1);
    lua_getfield(L, pt, "data");
    p->data = lua_tolstring(L, -1, &p->data_len);
    if (!p->path && !p->data)
      luaL_error(L, "parts[%d]: path or data is required", (int)i + 1);
  }
  return n;
}

/* core.request{method=, url=, headers={"N: v",...}, body= | parts=,
** timeout=, connect_timeout=} -> token | fail, message */
static int l_request (lua_State *L) {
  struct ctx *c = check_ctx(L);
  struct gs_request_spec spec;
  struct gs_part parts[MAX_PARTS];
  const char *hdrs[64];
  size_t nh = 0;
  struct live *l;
  memset(&spec, 0, sizeof spec);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "method");
  spec.method = luaL_optstring(L, -1, "GET");
  lua_getfield(L, 1, "url");
  spec.url = luaL_checkstring(L, -1);
  lua_getfield(L, 1, "body");
  spec.body = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1,
                                                          &spec.body_len);
  lua_getfield(L, 1, "headers");
  if (!lua_isnil(L, -1)) {
    const char *why = header_lines(L, lua_gettop(L), 1, hdrs, &nh);
    if (why) {
      luaL_pushfail(L);
      lua_pushstring(L, why);
      return 2;             /* nothing was submitted */
    }
  }
  spec.headers = hdrs;
  spec.nheaders = nh;
  spec.timeout_ms = opt_ms(L, 1, "timeout");
  spec.connect_timeout_ms = opt_ms(L, 1, "connect_timeout");
  spec.deadline_ms = opt_ms(L, 1, "deadline");
  spec.retry.base_ms = opt_ms(L, 1, "backoff_base");
  spec.retry.cap_ms = opt_ms(L, 1, "backoff_cap");
  spec.retry.max_retry_after_ms = opt_ms(L, 1, "max_retry_after");
  lua_getfield(L, 1, "retries");
  if (!lua_isnil(L, -1)) {
    lua_Integer n = luaL_checkinteger(L, -1);
    luaL_argcheck(L, n >= 0 && n < GS_MAX_ATTEMPTS, 1, "retries must be 0..31");
    spec.retry.max_retries = n == 0 ? -1 : (int)n;
  }
  lua_getfield(L, 1, "idempotent");
  spec.idempotent = lua_toboolean(L, -1);
  lua_getfield(L, 1, "max_response");
  {
    lua_Integer cap = luaL_optinteger(L, -1, 0);
    luaL_argcheck(L, cap >= 0, 1, "max_response must not be negative");
    spec.max_response = (size_t)cap;
  }
  lua_getfield(L, 1, "ca_file");
  spec.ca_file = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "fresh_connect");
  spec.fresh_connect = lua_toboolean(L, -1);
  memset(parts, 0, sizeof parts);
  spec.nparts = read_parts(L, parts);
  spec.parts = parts;
  luaL_argcheck(L, spec.nparts == 0 || !spec.body, 1, "body and parts exclude each other");
  l = live_new(c, EV_RESPONSE);
  if (!l) return luaL_error(L, "out of memory");
  l->u.req = gs_engine_submit(c->engine, &spec, on_done, l);
  if (!l->u.req) {
    live_unlink(l);
    luaL_pushfail(L);
    lua_pushstring(L, gsl_curl_open() != 0 ? gsl_curl_error()
                      : "invalid request (method must be upper-case letters)");
    return 2;
  }
  lua_pushinteger(L, l->token);
  return 1;
}

static void live_cancel (struct live *l) {
  switch (l->kind) {
    case EV_RESPONSE: gs_request_cancel(l->u.req); break;
    case EV_TIMER:
      uv_timer_stop(l->u.timer);
      uv_close((uv_handle_t *)l->u.timer, on_handle_freed);
      break;
    case EV_REQUEST:
      gs_server_close(l->u.server);
      if (l->owner) l->owner->l = NULL;   /* no dangling pointer in Lua */
      break;
    case EV_SIGNAL:
      uv_signal_stop(l->u.signal);
      uv_close((uv_handle_t *)l->u.signal, on_handle_freed);
      break;
    case EV_EXT: l->u.ext.cancel(l->u.ext.data); break;
  }
  live_unlink(l);
}

/* core.cancel(token) -> true if something was stopped */
static int l_cancel (lua_State *L) {
  struct ctx *c = check_ctx(L);
  struct live *l = live_find(c, luaL_checkinteger(L, 1));
  /* servers close via :close, database connections via theirs */
  int stopped = l != NULL && l->kind != EV_REQUEST && l->kind != EV_EXT;
  if (stopped) live_cancel(l);   /* frees l */
  lua_pushboolean(L, stopped);
  return 1;
}

/* ===== core.timer(seconds) -> token ===== */

static int l_timer (lua_State *L) {
  struct ctx *c = check_ctx(L);
  double s = luaL_checknumber(L, 1);
  uv_timer_t *t;
  struct live *l;
  luaL_argcheck(L, s >= 0 && s <= MAX_SECONDS, 1, "must be 0 to a year in seconds");
  t = malloc(sizeof *t);
  l = t ? live_new(c, EV_TIMER) : NULL;
  if (!l) {
    free(t);
    return luaL_error(L, "out of memory");
  }
  uv_timer_init(&c->loop, t);
  t->data = l;
  l->u.timer = t;
  /* Lua ran since the loop last looked at the clock: without this the
  ** timer would count from a stale "now" and fire early (pitfall 12) */
  uv_update_time(&c->loop);
  uv_timer_start(t, on_timer, (uint64_t)(s * 1000.0 + 0.5), 0);
  lua_pushinteger(L, l->token);
  return 1;
}

/* ===== core.signal(name) -> token ===== */

static int l_signal (lua_State *L) {
  static const char *const names[] = { "SIGINT", "SIGTERM", "SIGHUP", NULL };
  static const int nums[] = { SIGINT, SIGTERM, SIGHUP };
  struct ctx *c = check_ctx(L);
  int which = luaL_checkoption(L, 1, NULL, names);
  uv_signal_t *h = malloc(sizeof *h);
  struct live *l = h ? live_new(c, EV_SIGNAL) : NULL;
  if (!l) {
    free(h);
    return luaL_error(L, "out of memory");
  }
  uv_signal_init(&c->loop, h);
  h->data = l;
  l->u.signal = h;
  uv_signal_start(h, on_signal, nums[which]);
  uv_unref((uv_handle_t *)h);   /* a signal watch alone keeps nothing alive */
  lua_pushinteger(L, l->token);
  return 1;
}

/* ===== server ===== */

static size_t opt_size (lua_State *L, int t, const char *field) {
  lua_Integer v;
  lua_getfield(L, t, field);
  v = luaL_optinteger(L, -1, 0);
  lua_pop(L, 1);
  luaL_argcheck(L, v >= 0, t, "limits must not be negative");
  return (size_t)v;
}

static unsigned opt_timeout (lua_State *L, const char *field) {
  long ms = opt_ms(L, 1, field);
  if (ms > 86400000L) luaL_error(L, "%s: must be at most a day", field);
  return (unsigned)ms;
}

/* ===== expect_auth: who may send a body after Expect: 100-continue =====
** A request that waits for "100 Continue" and matches none of the rules
** gets 401 at once, its body never read. A rule is {header = name,
** prefix = text} (the header starts with it), {header = name, equals =
** text} or {path = text} (the target without its query). */

enum { RULE_PREFIX, RULE_EQUALS, RULE_PATH };

struct expect_rule { int kind; const char *name, *value; size_t value_len; };

struct expect_rules {
  size_t n;
  struct expect_rule r[];      /* strings follow in the same block */
};

static int rule_matches (const struct expect_rule *rule, const struct gs_http_req *req) {
  size_t i, n;
  if (rule->kind == RULE_PATH) {
    const char *t = gs_http_target(req);
    size_t len = strcspn(t, "?");
    return len == rule->value_len && memcmp(t, rule->value, len) == 0;
  }
  n = gs_http_nheaders(req);
  for (i = 0; i < n; i++) {
    const char *name, *value;
    gs_http_header(req, i, &name, &value);
    if (strcmp(name, rule->name) != 0 || !value) continue;
    if (rule->kind == RULE_PREFIX ? strncmp(value, rule->value, rule->value_len) == 0
                                  : strcmp(value, rule->value) == 0)
      return 1;
  }
  return 0;
}

static int expect_check (const struct gs_http_req *req, void *ud) {
  const struct expect_rules *rules = ud;
  size_t i;
  for (i = 0; i < rules->n; i++)
    if (rule_matches(&rules->r[i], req)) return 0;
  return 401;
}

/* The rules of expect_auth at table index t, in one allocation. */
static struct expect_rules *read_rules (lua_State *L, int t) {
  size_t n = lua_rawlen(L, t), i, bytes = 0;
  struct expect_rules *rules;
  char *p;
  luaL_argcheck(L, n >= 1 && n <= 16, 1, "expect_auth: 1 to 16 rules");
  for (i = 1; i <= n; i++) {
    size_t len;
    luaL_argcheck(L, lua_rawgeti(L, t, (lua_Integer)i) == LUA_TTABLE, 1, "expect_auth: rules are tables");
    lua_getfield(L, -1, "header");
    lua_getfield(L, -2, "prefix");
    lua_getfield(L, -3, "equals");
    lua_getfield(L, -4, "path");
    {
      int k;   /* room for each string given, with its NUL */
      for (k = -4; k <= -1; k++)
        if (lua_isstring(L, k)) { lua_tolstring(L, k, &len); bytes += len + 1; }
    }
    lua_pop(L, 5);
  }
  rules = malloc(sizeof *rules + n * sizeof rules->r[0] + bytes);
  if (!rules) luaL_error(L, "out of memory");
  rules->n = n;
  p = (char *)&rules->r[n];
  for (i = 0; i < n; i++) {
    struct expect_rule *rule = &rules->r[i];
    const char *header, *prefix, *equals, *path;
    size_t len;
    lua_rawgeti(L, t, (lua_Integer)i + 1);
    lua_getfield(L, -1, "header");
    lua_getfield(L, -2, "prefix");
    lua_getfield(L, -3, "equals");
    lua_getfield(L, -4, "path");
    header = lua_tostring(L, -4);
    prefix = lua_tostring(L, -3);
    equals = lua_tostring(L, -2);
    path = lua_tostring(L, -1);
    rule->name = NULL;
    if (path && !header && !prefix && !equals) {
      rule->kind = RULE_PATH;
    } else if (header && (prefix != NULL) != (equals != NULL) && !path) {
      size_t k, hl = strlen(header);
      rule->kind = prefix ? RULE_PREFIX : RULE_EQUALS;
      for (k = 0; k <= hl; k++) p[k] = (char)tolower((unsigned char)header[k]);
      rule->name = p;
      p += hl + 1;
    } else {
      free(rules);
      luaL_argerror(L, 1, "expect_auth: a rule is {header=, prefix=} or {header=, equals=} or {path=}");
    }
    {
      const char *v = path ? path : prefix ? prefix : equals;
      len = strlen(v);
      memcpy(p, v, len + 1);
      rule->value = p;
      rule->value_len = len;
      p += len + 1;
    }
    lua_pop(L, 5);
  }
  return rules;
}

/* core.listen{host=, port=, max_body=, max_header=, max_headers=,
** max_connections=, max_response=, idle_timeout=, header_timeout=,
** body_timeout=, write_timeout=, expect_auth=} -> server, token | fail,
** message (sizes and counts are integers, timeouts seconds; 0 or nil:
** default; expect_auth: see above) */
static int l_listen (lua_State *L) {
  struct ctx *c = check_ctx(L);
  struct gs_server_opts o;
  struct server_ud *su;
  struct live *l;
  int err = 0;
  memset(&o, 0, sizeof o);
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "host");
  o.host = luaL_optstring(L, -1, "127.0.0.1");
  lua_getfield(L, 1, "port");
  {
    lua_Integer port = luaL_optinteger(L, -1, 0);
    luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port out of range");
    o.port = (int)port;
  }
  o.max_body = opt_size(L, 1, "max_body");
  o.max_header = opt_size(L, 1, "max_header");
  o.max_headers = opt_size(L, 1, "max_headers");
  o.max_connections = opt_size(L, 1, "max_connections");
  o.max_response = opt_size(L, 1, "max_response");
  o.idle_timeout_ms = opt_timeout(L, "idle_timeout");
  o.header_timeout_ms = opt_timeout(L, "header_timeout");
  o.body_timeout_ms = opt_timeout(L, "body_timeout");
  o.write_timeout_ms = opt_timeout(L, "write_timeout");
  lua_getfield(L, 1, "expect_auth");
  {
    struct expect_rules *rules = NULL;
    if (!lua_isnil(L, -1)) {
      luaL_checktype(L, -1, LUA_TTABLE);
      rules = read_rules(L, lua_gettop(L));
    }
    su = lua_newuserdatauv(L, sizeof *su, 0);
    su->l = NULL;
    luaL_setmetatable(L, SERVER_MT);
    l = live_new(c, EV_REQUEST);
    if (!l) {
      free(rules);
      return luaL_error(L, "out of memory");
    }
    l->rules = rules;
    if (rules) {
      o.expect_check = expect_check;
      o.expect_ud = rules;
    }
  }
  l->u.server = gs_server_new(&c->loop, &o, on_request, l, &err);
  if (!l->u.server) {
    live_unlink(l);
    luaL_pushfail(L);
    lua_pushfstring(L, "cannot listen on %s:%d: %s", o.host, o.port,
                    uv_strerror(err));
    return 2;
  }
  su->l = l;
  l->owner = su;
  lua_pushinteger(L, l->token);
  return 2;
}

static struct server_ud *check_server (lua_State *L) {
  return luaL_checkudata(L, 1, SERVER_MT);
}

static int server_port (lua_State *L) {
  struct server_ud *su = check_server(L);
  if (!su->l) return luaL_error(L, "server is closed");
  lua_pushinteger(L, gs_server_port(su->l->u.server));
  return 1;
}

/* server:stats() -> {connections=, accepted=, evicted=, refused=,
** header_timeouts=, body_timeouts=, write_timeouts=, idle_closed=} */
static int server_stats (lua_State *L) {
  struct server_ud *su = check_server(L);
  struct gs_server_stats st;
  if (!su->l) return luaL_error(L, "server is closed");
  gs_server_get_stats(su->l->u.server, &st);
  lua_createtable(L, 0, 8);
#define STAT(f) (lua_pushinteger(L, (lua_Integer)st.f), lua_setfield(L, -2, #f))
  STAT(connections); STAT(accepted); STAT(evicted); STAT(refused);
  STAT(header_timeouts); STAT(body_timeouts); STAT(write_timeouts);
  STAT(idle_closed);
#undef STAT
  return 1;
}

/* The userdata goes; the server lives on until closed or shutdown. */
static int server_gc (lua_State *L) {
  struct server_ud *su = check_server(L);
  if (su->l) su->l->owner = NULL;
  su->l = NULL;
  return 0;
}

static int server_close (lua_State *L) {
  struct server_ud *su = check_server(L);
  if (su->l) {
    live_cancel(su->l);
    su->l = NULL;
  }
  return 0;
}

/* ===== incoming request userdata ===== */

static struct httpreq_ud *check_httpreq (lua_State *L) {
  return luaL_checkudata(L, 1, HTTPREQ_MT);
}

/* req:respond(status, {"Name: value", ...}, body [, send_len]): with
** send_len, only that many body bytes go out (a truncated response). */
static int httpreq_respond (lua_State *L) {
  struct httpreq_ud *h = check_httpreq(L);
  lua_Integer code = luaL_checkinteger(L, 2);
  int status;
  const char *hdrs[64];
  size_t nh = 0, i, blen = 0;
  const char *body = luaL_optlstring(L, 4, "", &blen);
  luaL_argcheck(L, code >= 100 && code <= 599, 2, "invalid status");
  status = (int)code;
  if (!h->req) return luaL_error(L, "request already answered");
  if (!lua_isnoneornil(L, 3)) {
    const char *why = header_lines(L, 3, 3, hdrs, &nh);
    if (why) {
      /* never write it: the client gets a bare 500, the caller the reason */
      gs_http_respond(h->req, 500, NULL, 0, NULL, 0);
      h->req = NULL;
      luaL_pushfail(L);
      lua_pushstring(L, why);
      return 2;
    }
  }
  if (lua_isnoneornil(L, 5)) {
    i = (size_t)gs_http_respond(h->req, status, hdrs, nh, body, blen);
  } else {
    lua_Integer send = luaL_checkinteger(L, 5);
    luaL_argcheck(L, send >= 0, 5, "must not be negative");
    i = (size_t)gs_http_respond_truncated(h->req, status, hdrs, nh, body, blen,
                                          (size_t)send);
  }
  h->req = NULL;
  lua_pushboolean(L, i == 0);
  return 1;
}

/* req:abort(): reset the connection without an answer */
static int httpreq_abort (lua_State *L) {
  struct httpreq_ud *h = check_httpreq(L);
  if (h->req) gs_http_abort(h->req);
  h->req = NULL;
  return 0;
}

/* __gc and __close: an unanswered request gets a 500 */
static int httpreq_gc (lua_State *L) {
  struct httpreq_ud *h = check_httpreq(L);
  if (h->req) gs_http_respond(h->req, 500, NULL, 0, NULL, 0);
  h->req = NULL;
  return 0;
}

static void push_request_event (lua_State *L, struct event *ev) {
  struct httpreq_ud *h;
  const char *body;
  size_t i, n, blen;
  lua_pushstring(L, gs_http_method(ev->req));
  lua_setfield(L, -2, "method");
  lua_pushstring(L, gs_http_target(ev->req));
  lua_setfield(L, -2, "target");
  lua_pushstring(L, gs_http_peer(ev->req));
  lua_setfield(L, -2, "peer");
  body = gs_http_body(ev->req, &blen);
  lua_pushlstring(L, body, blen);
  lua_setfield(L, -2, "body");
  lua_newtable(L);
  n = gs_http_nheaders(ev->req);
  for (i = 0; i < n; i++) {
    const char *name, *value;
    gs_http_header(ev->req, i, &name, &value);
    lua_pushstring(L, value);
    lua_setfield(L, -2, name);   /* repeated headers: the last wins */
  }
  lua_setfield(L, -2, "headers");
  h = lua_newuserdatauv(L, sizeof *h, 0);
  h->req = ev->req;
  ev->req = NULL;
  luaL_setmetatable(L, HTTPREQ_MT);
  lua_setfield(L, -2, "handle");
}

static const char *const sent_names[] = { "no", "unknown", "yes" };

static void push_attempts (lua_State *L, struct event *ev) {
  int i;
  lua_pushstring(L, sent_names[ev->sent]);
  lua_setfield(L, -2, "sent");
  lua_pushboolean(L, ev->deadline_hit);
  lua_setfield(L, -2, "deadline_hit");
  if (ev->retry_after_ms >= 0) {
    lua_pushnumber(L, (lua_Number)ev->retry_after_ms / 1000.0);
    lua_setfield(L, -2, "retry_after");
  }
  lua_createtable(L, ev->nattempts, 0);
  for (i = 0; i < ev->nattempts; i++) {
    struct gs_attempt *a = &ev->attempts[i];
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, a->status);
    lua_setfield(L, -2, "status");
    lua_pushinteger(L, a->error);
    lua_setfield(L, -2, "error");
    lua_pushstring(L, sent_names[a->sent]);
    lua_setfield(L, -2, "sent");
    lua_pushnumber(L, a->duration);
    lua_setfield(L, -2, "duration");
    lua_pushnumber(L, a->slept);
    lua_setfield(L, -2, "slept");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "attempts");
}

/* The value of header `name` (lower case) in a raw header block, found
** without parsing the rest: the SDK needs x-request-id on every response
** and the other headers rarely. */
static int push_header (lua_State *L, const char *h, size_t n, const char *name) {
  size_t len = strlen(name), i = 0;
  while (i < n) {
    size_t end = i, k;
    while (end < n && h[end] != '\n') end++;
    if (end - i > len && h[i + len] == ':') {
      for (k = 0; k < len; k++)
        if (tolower((unsigned char)h[i + k]) != name[k]) break;
      if (k == len) {
        size_t v = i + len + 1, e = end;
        while (v < e && (h[v] == ' ' || h[v] == '\t')) v++;
        while (e > v && (h[e - 1] == '\r' || h[e - 1] == ' ' || h[e - 1] == '\t')) e--;
        lua_pushlstring(L, h + v, e - v);
        return 1;
      }
    }
    i = end + 1;
  }
  return 0;
}

/* ===== core.step(block) -> {events} ===== */

static void push_event (lua_State *L, struct event *ev) {
  static const char *const types[] = { "response", "timer", "request",
                                       "signal", "pg" };
  lua_createtable(L, 0, 10);
  lua_pushstring(L, types[ev->type]);
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, ev->token);
  lua_setfield(L, -2, "token");
  switch (ev->type) {
    case EV_RESPONSE:
      lua_pushinteger(L, ev->status);
      lua_setfield(L, -2, "status");
      lua_pushinteger(L, ev->error);
      lua_setfield(L, -2, "error");
      if (ev->error_msg) {
        lua_pushstring(L, ev->error_msg);
        lua_setfield(L, -2, "message");
      }
      lua_pushlstring(L, ev->headers ? ev->headers : "", ev->headers_len);
      lua_setfield(L, -2, "headers");
      if (ev->headers && push_header(L, ev->headers, ev->headers_len, "x-request-id"))
        lua_setfield(L, -2, "request_id");
      lua_pushlstring(L, ev->body ? ev->body : "", ev->body_len);
      lua_setfield(L, -2, "body");
      lua_pushnumber(L, ev->elapsed);
      lua_setfield(L, -2, "elapsed");
      lua_pushinteger(L, ev->new_connections);
      lua_setfield(L, -2, "new_connections");
      push_attempts(L, ev);
      break;
    case EV_REQUEST:
      push_request_event(L, ev);
      break;
    case EV_SIGNAL:
      lua_pushstring(L, ev->signal);
      lua_setfield(L, -2, "signal");
      break;
    default:
      break;
  }
}

static int l_step (lua_State *L) {
  struct ctx *c = check_ctx(L);
  int block = lua_toboolean(L, 1);
  lua_Integer n = 0;
  if (!c->head) uv_run(&c->loop, block ? UV_RUN_ONCE : UV_RUN_NOWAIT);
  lua_newtable(L);
  while (c->head) {
    struct event *ev = c->head;
    push_event(L, ev);
    lua_rawseti(L, -2, ++n);
    c->head = ev->next;
    if (!c->head) c->tail = NULL;
    event_free(ev);
  }
  return 1;
}

/* core.lock(path) -> true | fail, message, busy: an exclusive advisory
** lock (flock) held until the process exits, so two runs never overlap.
** busy tells "another run holds it" (exit 4) from "cannot use the path"
** (a configuration error, exit 2). */
static int l_lock (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "cannot open lock file %s: %s", path, strerror(errno));
    lua_pushboolean(L, 0);
    return 3;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int busy = errno == EWOULDBLOCK;
    close(fd);
    luaL_pushfail(L);
    lua_pushfstring(L, busy ? "%s is locked by another run" : "cannot lock %s: %s", path,
                    strerror(errno));
    lua_pushboolean(L, busy);
    return 3;
  }
  /* the descriptor stays open (and locked) until exit on purpose */
  lua_pushboolean(L, 1);
  return 1;
}

/* core.file_mode(path) -> permission bits (e.g. 0600) | fail, message:
** the SDK refuses a credentials file others can read. */
static int l_file_mode (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
  return 1;
}

/* core.now() -> milliseconds from a monotonic clock */
static int l_now (lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e6);
  return 1;
}

/* core.max_inflight([n]) -> n: transfers on the wire at once for this
** Lua state (256 until a client asks for more; at most 65536). */
static int l_max_inflight (lua_State *L) {
  struct ctx *c = check_ctx(L);
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 1 && n <= 65536, 1, "must be 1..65536");
    gs_engine_set_max_inflight(c->engine, (int)n);
  }
  lua_pushinteger(L, gs_engine_max_inflight(c->engine));
  return 1;
}

/* core.unsetenv(name): take a variable out of this process's
** environment, so the processes it starts do not inherit it. */
static int l_unsetenv (lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_pushboolean(L, unsetenv(name) == 0);
  return 1;
}

/* core.isatty(fd) -> boolean: is 0, 1 or 2 a terminal (no shell fork) */
/* core.curl_version() -> the loaded libcurl's version (loads it), or
** fail, reason. */
static int l_curl_version (lua_State *L) {
  if (gsl_curl_open() != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, gsl_curl_error());
    return 2;
  }
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  return 1;
}

static int l_isatty (lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "must be 0, 1 or 2");
  lua_pushboolean(L, isatty((int)fd) == 1);
  return 1;
}

/* core.stats() -> inflight, queued */
static int l_stats (lua_State *L) {
  struct ctx *c = check_ctx(L);
  lua_pushinteger(L, gs_engine_inflight(c->engine));
  lua_pushinteger(L, gs_engine_queued(c->engine));
  return 2;
}

/* ===== shutdown ===== */

/* Close everything, flush close callbacks, close the loop. Returns
** uv_loop_close's result: 0 means nothing was left open. */
static int ctx_shutdown (struct ctx *c) {
  int rc;
  c->closing = 1;
  while (c->live) live_cancel(c->live);
  while (c->head) {
    struct event *ev = c->head;
    c->head = ev->next;
    event_free(ev);
  }
  c->tail = NULL;
  gs_engine_close(c->engine);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&c->loop);
  c->closed = 1;
  return rc;
}

static int l_shutdown (lua_State *L) {
  struct ctx *c = check_ctx(L);
  lua_pushinteger(L, ctx_shutdown(c));
  return 1;
}

static int ctx_gc (lua_State *L) {
  struct ctx **pc = luaL_checkudata(L, 1, CTX_MT);
  if (*pc) {
    if (!(*pc)->closed) ctx_shutdown(*pc);
    free(*pc);
    *pc = NULL;
  }
  return 0;
}

/* ===== for the binding's other C files (core_internal.h) ===== */

struct ctx *gs_core_ctx (lua_State *L) {
  return check_ctx(L);
}

uv_loop_t *gs_core_loop (struct ctx *c) {
  return &c->loop;
}

lua_Integer gs_core_token (struct ctx *c) {
  return ++c->next_token;
}

int gs_core_post (struct ctx *c, lua_Integer token) {
  return event_new(c, EV_EXT, token) != NULL;
}

struct live *gs_core_register (struct ctx *c, void (*cancel)(void *), void *data) {
  struct live *l = live_new(c, EV_EXT);
  if (!l) return NULL;
  l->u.ext.cancel = cancel;
  l->u.ext.data = data;
  return l;
}

void gs_core_unregister (struct live *l) {
  live_unlink(l);
}

/* ===== module ===== */

int gs_journal_open (lua_State *L);   /* ljournal.c */
int gs_owner_alive (lua_State *L);    /* ljournal.c */
int gs_owner_self (lua_State *L);     /* ljournal.c */
int gs_pg_connect (lua_State *L);     /* lpg.c */
void gs_crypto_register (lua_State *L);   /* lcrypto.c */
void gs_json_register (lua_State *L);     /* ljson.c */
void gs_utf8_register (lua_State *L);     /* lutf8.c */
void gs_lcg_register (lua_State *L);      /* lcg.c */

static const luaL_Reg core_funcs[] = {
  {"request", l_request},
  {"cancel", l_cancel},
  {"timer", l_timer},
  {"signal", l_signal},
  {"listen", l_listen},
  {"step", l_step},
  {"max_inflight", l_max_inflight},
  {"isatty", l_isatty},
  {"curl_version", l_curl_version},
  {"unsetenv", l_unsetenv},
  {"now", l_now},
  {"lock", l_lock},
  {"file_mode", l_file_mode},
  {"journal", gs_journal_open},
  {"owner_alive", gs_owner_alive},
  {"owner_self", gs_owner_self},
  {"pg_connect", gs_pg_connect},
  {"stats", l_stats},
  {"shutdown", l_shutdown},
  {NULL, NULL}
};

static const luaL_Reg server_meth[] = {
  {"port", server_port},
  {"stats", server_stats},
  {"close", server_close},
  {NULL, NULL}
};

static const luaL_Reg httpreq_meth[] = {
  {"respond", httpreq_respond},
  {"abort", httpreq_abort},
  {NULL, NULL}
};

void gs_core_meta (lua_State *L, const char *name, const luaL_Reg *m,
                   lua_CFunction gc) {
  if (!luaL_newmetatable(L, name)) return;   /* made by an earlier call */
  lua_newtable(L);
  luaL_setfuncs(L, m, 0);
  lua_setfield(L, -2, "__index");
  if (gc) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__close");
  }
}

LUAMOD_API int luaopen_gigstack_core (lua_State *L) {
  struct ctx **pc;
  struct ctx *c;
  struct gs_engine_opts eo;
  {
    /* a peer that hangs up mid-write must not kill the process */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    if (old != SIG_DFL && old != SIG_ERR) signal(SIGPIPE, old);
  }
  gs_core_meta(L, SERVER_MT, server_meth, NULL);
  lua_pushcfunction(L, server_gc);   /* a server is closed by :close(), not by <close> */
  lua_setfield(L, -2, "__gc");
  gs_core_meta(L, HTTPREQ_MT, httpreq_meth, httpreq_gc);
  lua_pop(L, 2);
  luaL_newmetatable(L, CTX_MT);
  lua_pushcfunction(L, ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* "create closed first, then acquire" */
  pc = lua_newuserdatauv(L, sizeof *pc, 0);
  *pc = NULL;
  luaL_setmetatable(L, CTX_MT);
  c = calloc(1, sizeof *c);
  if (!c) return luaL_error(L, "out of memory");
  if (uv_loop_init(&c->loop) != 0) {
    free(c);
    return luaL_error(L, "uv_loop_init failed");
  }
  memset(&eo, 0, sizeof eo);
  eo.max_inflight = 256;
  c->engine = gs_engine_new(&c->loop, &eo);
  if (!c->engine) {
    uv_loop_close(&c->loop);
    free(c);
    return luaL_error(L, "cannot create the HTTP engine");
  }
  *pc = c;
  luaL_newlibtable(L, core_funcs);
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, core_funcs, 1);
  gs_crypto_register(L);
  gs_json_register(L);
  gs_utf8_register(L);
  gs_lcg_register(L);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "_ctx");   /* keeps the context alive with the module */
  lua_pushliteral(L, GS_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, uv_version_string());
  lua_setfield(L, -2, "uv_version");
  return 1;
}
