/*
** pq_lazy.c
** Opens libpq on the first PostgreSQL connection (see pq_lazy.h), by
** the soname of the libpq the build found (GS_PQ_SONAME).
*/
#define GS_PQ_LAZY_IMPL
#include "pq_lazy.h"
#include "lazy.h"

#ifndef GS_PQ_SONAME
#ifdef __APPLE__
#define GS_PQ_SONAME "libpq.5.dylib"
#else
#define GS_PQ_SONAME "libpq.so.5"
#endif
#endif

struct gs_pq_api gs_pq_api_;

#define GS_NAME(ret, name, args) #name,
#define GS_SLOT(ret, name, args) &gs_pq_api_.name,
static const char *const names[] = { GS_PQ_FUNCS(GS_NAME) };
static void *const slots[] = { GS_PQ_FUNCS(GS_SLOT) };
static struct gs_lazy lib = { GS_PQ_SONAME, names, slots,
                              sizeof names / sizeof names[0], 0, "" };

/* never called: the compiler checks each field against the header's
** prototype (sizeof does not evaluate, so nothing is linked) */
static void typecheck (void) {
#define GS_CHECK(ret, name, args) (void)sizeof(&name == gs_pq_api_.name);
  GS_PQ_FUNCS(GS_CHECK)
}

const char *gs_pq_error (void) {
  return lib.why[0] ? lib.why : "libpq is not loaded";
}

int gs_pq_open (void) {
  (void)typecheck;
  return gs_lazy_open(&lib);
}
