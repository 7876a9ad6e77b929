/*
** response_fuzz.c
** libFuzzer target: arbitrary bytes as an API response (status line
** choice + headers + body) through the SDK's response path in Lua:
** gigstack.client.response, JSON decoding, pagination. It must always
** return a value or an error value; a raised Lua error aborts.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

int luaopen_gigstack_core (lua_State *L);

static lua_State *L;

/* Lua code is not compiled with coverage: a line hook feeds which Lua
** lines ran into libFuzzer's extra counters, so it can steer by them. */
__attribute__((section("__libfuzzer_extra_counters")))
static uint8_t lua_lines[1 << 16];

static void line_hook (lua_State *l, lua_Debug *ar) {
  uintptr_t h;
  if (!lua_getinfo(l, "S", ar)) return;
  h = ((uintptr_t)ar->source * 31u) ^ (uintptr_t)ar->currentline * 2654435761u;
  lua_lines[(h ^ (h >> 16)) & 0xffff]++;
}

static const char *harness =
  "local client = require 'gigstack.client'\n"
  "local paginate = require 'gigstack.paginate'\n"
  "local statuses = {200, 201, 400, 401, 404, 409, 422, 429, 500, 502, 503}\n"
  "return function(bytes)\n"
  "  local status = statuses[(bytes:byte(1) or 0) % #statuses + 1]\n"
  "  local body = bytes:sub(2)\n"
  "  local resp = { status = status, body = body, headers = { ['x-request-id'] = 'req_1' },\n"
  "                 attempts = {}, retry_after = nil }\n"
  "  local env, err = client.response(resp, nil, 'GET', '/fuzz', nil)\n"
  "  if env then\n"
  "    local page = paginate.page(env)\n"
  "    assert(type(page.data) == 'table')\n"
  "  else\n"
  "    assert(type(err) == 'table' and type(tostring(err)) == 'string')\n"
  "  end\n"
  "end\n";

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size) {
  if (!L) {
    const char *dir = getenv("GIGSTACK_LUA_DIR");
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_gigstack_core);
    lua_setfield(L, -2, "gigstack.core");
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;/usr/share/lua/5.4/?.lua",
                    dir ? dir : "lua", dir ? dir : "lua");
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    if (luaL_dostring(L, harness) != LUA_OK) {
      fprintf(stderr, "harness: %s\n", lua_tostring(L, -1));
      abort();
    }
    lua_setglobal(L, "fuzz_one");
    lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  }
  lua_getglobal(L, "fuzz_one");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "response path raised: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}
