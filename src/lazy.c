/*
** lazy.c
** dlopen a library by soname and resolve a list of symbols (lazy.h).
*/
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "lazy.h"

int gs_lazy_open (struct gs_lazy *lib) {
  void *h;
  size_t i;
  if (lib->state) return lib->state > 0 ? 0 : -1;
  lib->state = -1;
  /* RTLD_LOCAL: its symbols stay out of the global scope */
  h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(lib->why, sizeof lib->why, "cannot load %s: %s", lib->soname, dlerror());
    return -1;
  }
  for (i = 0; i < lib->n; i++) {
    void *sym = dlsym(h, lib->names[i]);
    if (!sym) {
      snprintf(lib->why, sizeof lib->why, "%s has no %s", lib->soname, lib->names[i]);
      return -1;
    }
    /* a function pointer the size of void *, as POSIX dlsym requires */
    memcpy(lib->slots[i], &sym, sizeof sym);
  }
  lib->state = 1;
  return 0;
}
