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
** address of a function pointer). state: 0 not tried, 1 open, -1 failed. */
struct gs_lazy {
  const char *soname;
  const char *const *names;
  void *const *slots;
  size_t n;
  int state;
  char why[256];
};

/* 0 when the library is open and every symbol found (cheap after the
** first call), else -1 with the reason in lib->why. */
int gs_lazy_open (struct gs_lazy *lib);

#endif
