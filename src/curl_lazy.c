/*
** curl_lazy.c
** Opens libcurl on first use (see curl_lazy.h). The soname is the one
** of the libcurl the build found (GS_CURL_SONAME), so the library loaded
** at run time has the ABI the headers describe.
*/
#define GS_CURL_LAZY_IMPL
#include <stdio.h>

#include "curl_lazy.h"
#include "lazy.h"

#ifndef GS_CURL_SONAME
#ifdef __APPLE__
#define GS_CURL_SONAME "libcurl.4.dylib"
#else
#define GS_CURL_SONAME "libcurl.so.4"
#endif
#endif

#define GS_LAZY_API gsl_curl_api
struct gsl_curl_api gsl_curl_api;

static int global_init (struct gsl_library *l) {
  if (gsl_curl_api.curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK) return 0;
  snprintf(l->why, sizeof l->why, "curl_global_init failed");
  return -1;
}

GS_LAZY_LIBRARY(GS_CURL_FUNCS, GS_CURL_SONAME, global_init, gsl_curl_open, gsl_curl_error, "libcurl")
