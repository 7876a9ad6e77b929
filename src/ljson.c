/*
** ljson.c
** core.json_fixup(value, array_mt): the fix-ups Debian's lua-cjson 2.1.0
** needs after a decode, done in C because a Lua walk of every response
** cost twice the decode itself. Integral floats become integers and
** non-empty sequences get array_mt (so they encode back as arrays).
** JSON parsing stays cjson's job: this only walks the decoded tree.
*/
#define LUA_LIB
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

#define MAX_DEPTH 200          /* cjson's own decode limit is set to this */

static void fixup (lua_State *L, int t, int mt, int depth) {
  luaL_checkstack(L, 4, "JSON nesting");
  if (depth > MAX_DEPTH) luaL_error(L, "JSON nesting deeper than %d", MAX_DEPTH);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      lua_Integer i;
      if (lua_numbertointeger(lua_tonumber(L, -1), &i) &&
          (lua_Number)i == lua_tonumber(L, -1)) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, i);
        lua_rawset(L, t);        /* an existing key: safe during lua_next */
      }
    } else if (lua_type(L, -1) == LUA_TTABLE) {
      fixup(L, lua_gettop(L), mt, depth + 1);
    }
    lua_pop(L, 1);
  }
  if (lua_rawlen(L, t) > 0 && !lua_getmetatable(L, t)) {
    lua_pushvalue(L, mt);
    lua_setmetatable(L, t);
  } else if (lua_rawlen(L, t) > 0) {
    lua_pop(L, 1);             /* the metatable lua_getmetatable pushed */
  }
}

/* core.json_fixup(value, array_mt) -> value (tables fixed in place) */
static int l_json_fixup (lua_State *L) {
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_type(L, 1) == LUA_TTABLE) {
    fixup(L, 1, 2, 0);
  } else if (lua_type(L, 1) == LUA_TNUMBER && !lua_isinteger(L, 1)) {
    lua_Integer i;
    if (lua_numbertointeger(lua_tonumber(L, 1), &i) && (lua_Number)i == lua_tonumber(L, 1))
      lua_pushinteger(L, i), lua_replace(L, 1);
  }
  lua_settop(L, 1);
  return 1;
}


/* ===== core.json_encode: sorted keys, exact literals, in one pass =====
** The emulator answers every request with JSON whose keys are sorted (so
** a body is the same bytes for the same data); a Lua encoder spent most
** of the emulator's time on it. Values: nil/null, booleans, integers,
** floats (%.14g, %.17g when needed to round-trip), strings, tables
** marked raw (their `text` written as is: exact money), arrays (marked,
** or a sequence 1..n) and objects (string or integer keys, sorted). */

struct out {
  char *p;                     /* `first` until the text outgrows it, then malloc'd */
  size_t n, cap;
  const char *err;             /* set on failure; the message is static or on the stack */
  char first[4096];            /* most answers fit: no allocation at all */
};

/* room for n more bytes: the text moves from `first` to the heap, or grows */
static int grow (struct out *o, size_t n) {
  size_t cap = o->cap * 2;
  char *p;
  while (cap < o->n + n) cap *= 2;
  p = o->p == o->first ? malloc(cap) : realloc(o->p, cap);
  if (!p) { o->err = "out of memory"; return 0; }
  if (o->p == o->first) memcpy(p, o->first, o->n);
  o->p = p;
  o->cap = cap;
  return 1;
}

static inline int put (struct out *o, const char *s, size_t n) {
  if (o->n + n > o->cap && !grow(o, n)) return 0;
  memcpy(o->p + o->n, s, n);
  o->n += n;
  return 1;
}

/* Bytes a JSON string escapes: controls, DEL, '"' and '\\'. */
static unsigned char escaped[256];

static void escaped_init (void) {
  int c;
  for (c = 0; c < 0x20; c++) escaped[c] = 1;
  escaped[0x7f] = escaped['"'] = escaped['\\'] = 1;
}

static int put_string (struct out *o, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  size_t i, from = 0;
  const unsigned char *u8 = (const unsigned char *)s;
  for (i = 0; i < n && !escaped[u8[i]]; i++) {}
  if (i == n) {                                  /* the common case: nothing to escape */
    if (o->n + n + 2 > o->cap && !grow(o, n + 2)) return 0;
    o->p[o->n] = '"';
    memcpy(o->p + o->n + 1, s, n);
    o->p[o->n + n + 1] = '"';
    o->n += n + 2;
    return 1;
  }
  if (!put(o, "\"", 1)) return 0;
  for (; i < n; i++) {
    unsigned char c = u8[i];
    const char *esc = NULL;
    char u[6];
    if (!escaped[c]) continue;
    if (c == '"') esc = "\\\"";
    else if (c == '\\') esc = "\\\\";
    else if (c == '\b') esc = "\\b";
    else if (c == '\f') esc = "\\f";
    else if (c == '\n') esc = "\\n";
    else if (c == '\r') esc = "\\r";
    else if (c == '\t') esc = "\\t";
    else {
      u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
      u[4] = hex[c >> 4]; u[5] = hex[c & 15];
      if (!put(o, s + from, i - from) || !put(o, u, 6)) return 0;
      from = i + 1;
      continue;
    }
    if (!put(o, s + from, i - from) || !put(o, esc, strlen(esc))) return 0;
    from = i + 1;
  }
  return put(o, s + from, n - from) && put(o, "\"", 1);
}

static int put_number (lua_State *L, struct out *o, int i) {
  char b[64];
  int len;
  if (lua_isinteger(L, i)) {
    len = snprintf(b, sizeof b, LUA_INTEGER_FMT, lua_tointeger(L, i));
  } else {
    lua_Number x = lua_tonumber(L, i);
    if (x != x || x == HUGE_VAL || x == -HUGE_VAL) {
      o->err = "cannot encode NaN or infinity as JSON";
      return 0;
    }
    len = snprintf(b, sizeof b, "%.14g", (double)x);
    if (strtod(b, NULL) != (double)x) len = snprintf(b, sizeof b, "%.17g", (double)x);
  }
  return put(o, b, (size_t)len);
}

/* An object key: its text (a string key's own bytes, kept alive by the
** table being encoded; an integer key's digits in `num`), the key itself
** for a lookup, and the stack slot of its value (0: look it up again). */
struct key { const char *s; size_t n; int idx; lua_Integer i; char num[24]; };

#define KEY_TEXT(k) ((k)->s ? (k)->s : (k)->num)

static inline int key_cmp (const void *a, const void *b) {
  const struct key *x = a, *y = b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(KEY_TEXT(x), KEY_TEXT(y), n);
  return c ? c : (x->n < y->n ? -1 : x->n > y->n);
}

/* Values of this many keys of one object wait on the Lua stack; the
** keys past them (a state snapshot's collections) are looked up again. */
#define STACK_VALUES 256

/* upvalue-free context: the marks are at fixed stack slots */
enum { S_VALUE = 1, S_ARRAY_MT = 2, S_RAW_MT = 3, S_NULL = 4 };

static int encode (lua_State *L, struct out *o, int i, int depth);

static int is_sequence (lua_State *L, int t, lua_Integer *len) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, t), count = 0;
  *len = n;
  if (n == 0) return 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
      lua_pop(L, 1);
      return 0;
    }
    count++;
  }
  return count == n;
}

static int encode_table (lua_State *L, struct out *o, int t, int depth) {
  lua_Integer n, k;
  int array = 0, top = lua_gettop(L), ok = 1;
  if (depth > 100) { o->err = "JSON nesting deeper than 100"; return 0; }
  if (!lua_checkstack(L, 8)) { o->err = "JSON nesting too deep for the stack"; return 0; }
  if (lua_getmetatable(L, t)) {
    if (lua_rawequal(L, -1, S_RAW_MT)) {
      size_t len;
      const char *text;
      lua_getfield(L, t, "text");
      text = lua_tolstring(L, -1, &len);
      ok = text ? put(o, text, len) : (o->err = "json.raw needs text", 0);
      lua_settop(L, top);
      return ok;
    }
    array = lua_rawequal(L, -1, S_ARRAY_MT);
    lua_pop(L, 1);
  }
  n = (lua_Integer)lua_rawlen(L, t);
  if (array || is_sequence(L, t, &n)) {
    if (!put(o, "[", 1)) return 0;
    for (k = 1; ok && k <= n; k++) {
      if (k > 1 && !put(o, ",", 1)) return 0;
      lua_rawgeti(L, t, k);
      ok = encode(L, o, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
    }
    return ok && put(o, "]", 1);
  }
  {
    /* The values stay on the stack (each key records its slot) while the
    ** keys are sorted: no table is built and no value is looked up again.
    ** Small objects keep their keys on the C stack. */
    struct key small[32], *keys = small;
    size_t nk = 0, cap = sizeof small / sizeof small[0], j;
    lua_pushnil(L);
    while (lua_next(L, t)) {                        /* ... key value */
      struct key *k;
      if (nk == cap) {
        struct key *p = malloc((cap *= 2) * sizeof *keys);
        if (!p) { o->err = "out of memory"; ok = 0; break; }
        memcpy(p, keys, nk * sizeof *keys);
        if (keys != small) free(keys);
        keys = p;
      }
      k = &keys[nk];
      if (lua_type(L, -2) == LUA_TSTRING) {
        k->s = lua_tolstring(L, -2, &k->n);        /* a key of t: alive while t is */
      } else if (lua_isinteger(L, -2)) {
        k->i = lua_tointeger(L, -2);
        k->s = NULL;                                /* the text is k->num */
        k->n = (size_t)snprintf(k->num, sizeof k->num, LUA_INTEGER_FMT, k->i);
      } else {
        o->err = "JSON object keys must be strings or integers";
        ok = 0;
        break;
      }
      nk++;
      if (nk <= STACK_VALUES && lua_checkstack(L, 3)) {
        lua_insert(L, -2);                          /* ... value key: the value stays */
        k->idx = lua_gettop(L) - 1;
      } else {
        k->idx = 0;
        lua_pop(L, 1);                              /* ... key */
      }
    }
    if (ok) {
      if (nk > 32) qsort(keys, nk, sizeof *keys, key_cmp);
      else {
        /* an object's few keys (a payment has ~30): insertion sort, no
        ** call per comparison and no merge buffer */
        size_t a, b;
        for (a = 1; a < nk; a++) {
          struct key tmp = keys[a];
          for (b = a; b > 0 && key_cmp(&keys[b - 1], &tmp) > 0; b--) keys[b] = keys[b - 1];
          if (b != a) keys[b] = tmp;
        }
      }
      ok = put(o, "{", 1);
      for (j = 0; ok && j < nk; j++) {
        struct key *k = &keys[j];
        ok = (j == 0 || put(o, ",", 1)) && put_string(o, KEY_TEXT(k), k->n) && put(o, ":", 1);
        if (!ok) break;
        if (k->idx) ok = encode(L, o, k->idx, depth + 1);
        else {
          if (k->s) lua_pushlstring(L, k->s, k->n);
          else lua_pushinteger(L, k->i);
          lua_rawget(L, t);
          ok = encode(L, o, lua_gettop(L), depth + 1);
          lua_pop(L, 1);
        }
      }
      ok = ok && put(o, "}", 1);
    }
    if (keys != small) free(keys);
    lua_settop(L, top);
    return ok;
  }
}

static int encode (lua_State *L, struct out *o, int i, int depth) {
  switch (lua_type(L, i)) {
    case LUA_TNIL: return put(o, "null", 4);
    case LUA_TBOOLEAN: return lua_toboolean(L, i) ? put(o, "true", 4) : put(o, "false", 5);
    case LUA_TNUMBER: return put_number(L, o, i);
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, i, &n);
      return put_string(o, s, n);
    }
    case LUA_TTABLE: return encode_table(L, o, i, depth);
    default:
      if (lua_rawequal(L, i, S_NULL)) return put(o, "null", 4);
      o->err = lua_pushfstring(L, "cannot encode a %s as JSON", luaL_typename(L, i));
      return 0;
  }
}

/* core.json_encode(value, array_mt, raw_mt, null) -> text | fail, message */
static int l_json_encode (lua_State *L) {
  struct out o;
  int ok;
  o.p = o.first;
  o.n = 0;
  o.cap = sizeof o.first;
  o.err = NULL;
  lua_settop(L, 4);
  ok = encode(L, &o, S_VALUE, 0);
  if (ok) lua_pushlstring(L, o.p, o.n);
  else {
    luaL_pushfail(L);
    lua_pushstring(L, o.err ? o.err : "cannot encode");
  }
  if (o.p != o.first) free(o.p);
  return ok ? 1 : 2;
}

static const luaL_Reg json_funcs[] = {
  {"json_fixup", l_json_fixup},
  {"json_encode", l_json_encode},
  {NULL, NULL}
};

void gs_json_register (lua_State *L) {
  escaped_init();
  luaL_setfuncs(L, json_funcs, 0);
}
