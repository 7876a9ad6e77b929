/*
** lcg.c
** core.lcg_chars(state, n, alphabet, ...): n characters drawn from
** alphabet with a 64-bit LCG (Knuth's MMIX constants), each the
** alphabet's character at (state >> 33) % #alphabet after a step; the
** strings given after alphabet come first. Returns the text and the new
** state. The emulator's ids are these draws (the same state gives the
** same id as the Lua loop it replaces: Lua integers wrap as uint64_t
** does, and Lua's >> is logical); a Lua loop of 16 steps per id was a
** tenth of a register's Lua instructions.
*/
#include <stdint.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

#define MAX_TEXT 512

static int l_lcg_chars (lua_State *L) {
  uint64_t r = (uint64_t)luaL_checkinteger(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  size_t na, used = 0;
  const char *alpha = luaL_checklstring(L, 3, &na);
  char buf[MAX_TEXT];
  int i, top = lua_gettop(L);
  luaL_argcheck(L, na > 0, 3, "empty alphabet");
  luaL_argcheck(L, n >= 0 && n <= MAX_TEXT / 2, 2, "at most 256 characters");
  for (i = 4; i <= top; i++) {
    size_t len;
    const char *s = luaL_checklstring(L, i, &len);
    luaL_argcheck(L, len <= MAX_TEXT / 2 - used, i, "prefixes longer than 256 bytes");
    memcpy(buf + used, s, len);
    used += len;
  }
  for (i = 0; i < n; i++) {
    r = r * 6364136223846793005u + 1442695040888963407u;
    buf[used++] = alpha[(r >> 33) % na];
  }
  lua_pushlstring(L, buf, used);
  lua_pushinteger(L, (lua_Integer)r);
  return 2;
}

/* adds lcg_chars to the table on top of the stack */
void gs_lcg_register (lua_State *L) {
  lua_pushcfunction(L, l_lcg_chars);
  lua_setfield(L, -2, "lcg_chars");
}
