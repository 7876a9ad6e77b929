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

#define GS_LAZY_API gs_curl_api_
struct gs_curl_api gs_curl_api_;
GS_LAZY_LIBRARY(GS_CURL_FUNCS, GS_CURL_SONAME)
static int inited;

const char *gs_curl_error (void) {
  return lib.why[0] ? lib.why : "libcurl is not loaded";
}

int gs_curl_open (void) {
  (void)typecheck;
  if (inited) return inited > 0 ? 0 : -1;
  if (gs_lazy_open(&lib) != 0) {
    inited = -1;
    return -1;
  }
  if (gs_curl_api_.curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    snprintf(lib.why, sizeof lib.why, "curl_global_init failed");
    inited = -1;
    return -1;
  }
  inited = 1;
  return 0;
}
