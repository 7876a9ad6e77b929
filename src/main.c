/*
** main.c
** gigstack-run: a Lua 5.4 host for gigstack scripts. C does only what
** Lua cannot: make the state, preload gigstack.core, find the Lua
** sources, hand argv to gigstack.runner and turn its answer into an
** exit code (gigstack.runner decides it: 0 ok, 1 script error, 2 usage
** or configuration error, 3 items or jobs failed, 4 locked, 130/143).
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "gigstack.h"

#ifndef GS_LUADIR
#define GS_LUADIR "/usr/local/share/lua/5.4"
#endif

int luaopen_gigstack_core (lua_State *L);

static int file_exists (const char *p) {
  return access(p, R_OK) == 0;
}

/* The Lua sources: $GIGSTACK_LUA_DIR, else next to the executable
** (build tree or installed tree), else the configured install dir. */
static void lua_dir (char *out, size_t n) {
  char exe[PATH_MAX], probe[PATH_MAX + 64];
  /* out has room for exe plus the suffix */
  const char *env = getenv("GIGSTACK_LUA_DIR");
  ssize_t len;
  if (env && *env) {
    snprintf(out, n, "%s", env);
    return;
  }
  len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    char *slash;
    exe[len] = '\0';
    slash = strrchr(exe, '/');
    if (slash) {
      /* build/gigstack-run, build/asan/gigstack-run, and installed trees
      ** (PREFIX/bin next to PREFIX/share/lua/5.4, LuaRocks trees too) */
      static const char *const ups[] = { "/..", "/../..", "/../share/lua/5.4" };
      size_t k;
      *slash = '\0';
      for (k = 0; k < sizeof ups / sizeof ups[0]; k++) {
        const char *sub = k < 2 ? "/lua" : "";
        snprintf(probe, sizeof probe, "%s%s%s/gigstack/init.lua", exe, ups[k], sub);
        if (file_exists(probe)) {
          snprintf(out, n, "%s%s%s", exe, ups[k], sub);
          return;
        }
      }
    }
  }
  snprintf(out, n, "%s", GS_LUADIR);
}

static int msghandler (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int pmain (lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  char dir[PATH_MAX + 64];
  int i;
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_gigstack_core);
  lua_setfield(L, -2, "gigstack.core");
  lua_pop(L, 1);
  lua_dir(dir, sizeof dir);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir,
                  lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "gigstack.runner");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_call(L, 1, 1);
  return 1;
}

/* The API key lives in this process's memory: no core file may carry
** it to disk, and no other process of the user may read it by ptrace. */
static void protect_memory (void) {
  struct rlimit none = { 0, 0 };
  setrlimit(RLIMIT_CORE, &none);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int main (int argc, char **argv) {
  lua_State *L;
  int status, code;
  protect_memory();
  L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "gigstack-run: cannot create a Lua state\n");
    return 1;
  }
  lua_pushcfunction(L, msghandler);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 1);
  if (status != LUA_OK) {
    fprintf(stderr, "gigstack-run: %s\n", lua_tostring(L, -1));
    code = 1;
  } else {
    code = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  }
  lua_close(L);   /* the core's __gc closes the loop: nothing left open */
  fflush(stdout);
  return code;
}
