/*
** lazy.c
** dlopen a library by soname and resolve a list of symbols (lazy.h).
*/
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lazy.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int open_library (struct gsl_library *lib) {
  size_t i;
  /* RTLD_LOCAL: its symbols stay out of the global scope */
  void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    snprintf(lib->why, sizeof lib->why, "cannot load %s: %s", lib->soname, dlerror());
    return -1;
  }
  for (i = 0; i < lib->n; i++) {
    void *sym = dlsym(h, lib->names[i]);
    if (!sym) {
      snprintf(lib->why, sizeof lib->why, "%s has no %s", lib->soname, lib->names[i]);
      dlclose(h);
      return -1;
    }
    /* a function pointer the size of void *, as POSIX dlsym requires */
    memcpy(lib->slots[i], &sym, sizeof sym);
  }
  return lib->init ? lib->init(lib) : 0;
}

int gsl_open (struct gsl_library *lib) {
  int state;
  pthread_mutex_lock(&lock);
  if (!lib->state) lib->state = open_library(lib) == 0 ? 1 : -1;
  state = lib->state;
  pthread_mutex_unlock(&lock);
  return state > 0 ? 0 : -1;
}
