/*
** core_internal.h
** What the other C files of the Lua binding (lpg.c, ljournal.c) need from
** lgigstack.c's context: its loop, fresh tokens, the event queue and the
** list of live handles closed at shutdown. Not installed, not public.
*/
#ifndef GS_CORE_INTERNAL_H
#define GS_CORE_INTERNAL_H

#include <uv.h>
#include <lua.h>
#include <lauxlib.h>

struct ctx;
struct live;

/* the context of the calling core function (its first upvalue); raises
** when the core is shut down */
struct ctx *gs_core_ctx (lua_State *L);
uv_loop_t *gs_core_loop (struct ctx *c);
lua_Integer gs_core_token (struct ctx *c);
/* queue an event {type = "pg", token = token} (from a libuv callback:
** no Lua); false when the core is closing or out of memory */
int gs_core_post (struct ctx *c, lua_Integer token);
/* a handle the core closes at shutdown: cancel(data) must release it
** and forget the returned pointer; gs_core_unregister drops it first */
struct live *gs_core_register (struct ctx *c, void (*cancel)(void *), void *data);
void gs_core_unregister (struct live *l);

/* push the metatable `name`; made on the first call, with the methods m
** as __index and gc (when not NULL) as __gc and __close */
void gs_core_meta (lua_State *L, const char *name, const luaL_Reg *m,
                   lua_CFunction gc);

#endif
