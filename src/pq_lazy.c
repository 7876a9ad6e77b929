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

#define GS_LAZY_API gsl_pq_api
struct gsl_pq_api gsl_pq_api;
GS_LAZY_LIBRARY(GS_PQ_FUNCS, GS_PQ_SONAME, NULL, gsl_pq_open, gsl_pq_error, "libpq")
