/*
** lazy.h
** Libraries opened on first use rather than at start-up: libcurl and
** libpq bring some 30 shared objects between them, most of the time a
** start takes, and many runs need neither (`--help`, a script that only
** computes, an emulator without a PostgreSQL journal).
*/
#ifndef GS_LAZY_H
#define GS_LAZY_H

#include <stddef.h>

/* One library: its soname, the symbols wanted and where each goes (the
** address of a function pointer), and what to run once they are found
** (NULL: nothing; non-zero: failed, reason in why). state: 0 not tried,
** 1 open, -1 failed. The gsl_ names stay out of libgigstack's exports. */
struct gsl_library {
  const char *soname;
  const char *const *names;
  void *const *slots;
  size_t n;
  int (*init) (struct gsl_library *lib);
  int state;
  char why[256];
};

/* 0 when the library is open, every symbol found and init done, else -1
** with the reason in lib->why. The first call does the work, under a
** lock: engines on several threads may make their first request at once. */
int gsl_open (struct gsl_library *lib);

/* In a file that first defines GS_LAZY_API as its struct of function
** pointers: `lib`, the library with the functions of LIST (an X-macro of
** X(ret, name, args)) found by soname and set up by init; `typecheck`,
** never called, in which the compiler checks every pointer against the
** header's prototype (sizeof does not evaluate: nothing is linked); and
** the library's two public functions: open_fn() (0, or -1 with the
** reason in error_fn()) and error_fn() (what, e.g. "libcurl", names the
** library while nothing was tried). */
#define GS_LAZY_NAME(ret, name, args) #name,
#define GS_LAZY_SLOT(ret, name, args) &GS_LAZY_API.name,
#define GS_LAZY_CHECK(ret, name, args) (void)sizeof(&name == GS_LAZY_API.name);
#define GS_LAZY_LIBRARY(LIST, soname, init, open_fn, error_fn, what) \
  static const char *const names[] = { LIST(GS_LAZY_NAME) }; \
  static void *const slots[] = { LIST(GS_LAZY_SLOT) }; \
  static struct gsl_library lib = { soname, names, slots, \
                                    sizeof names / sizeof names[0], init, 0, "" }; \
  static void typecheck (void) { LIST(GS_LAZY_CHECK) } \
  const char *error_fn (void) { \
    return lib.why[0] ? lib.why : what " is not loaded"; \
  } \
  int open_fn (void) { \
    (void)typecheck; \
    return gsl_open(&lib); \
  }

#endif
