/*
** crypto_lazy.c
** Opens libcrypto on first use (see crypto_lazy.h), by the soname of
** the libcrypto the build found (GS_CRYPTO_SONAME).
*/
#define GS_CRYPTO_LAZY_IMPL
#include "crypto_lazy.h"
#include "lazy.h"

#ifndef GS_CRYPTO_SONAME
#ifdef __APPLE__
#define GS_CRYPTO_SONAME "libcrypto.3.dylib"
#else
#define GS_CRYPTO_SONAME "libcrypto.so.3"
#endif
#endif

struct gs_crypto_api gs_crypto_api_;

#define GS_NAME(ret, name, args) #name,
#define GS_SLOT(ret, name, args) &gs_crypto_api_.name,
static const char *const names[] = { GS_CRYPTO_FUNCS(GS_NAME) };
static void *const slots[] = { GS_CRYPTO_FUNCS(GS_SLOT) };
static struct gs_lazy lib = { GS_CRYPTO_SONAME, names, slots,
                              sizeof names / sizeof names[0], 0, "" };

/* never called: the compiler checks each field against the header's
** prototype (sizeof does not evaluate, so nothing is linked) */
static void typecheck (void) {
#define GS_CHECK(ret, name, args) (void)sizeof(&name == gs_crypto_api_.name);
  GS_CRYPTO_FUNCS(GS_CHECK)
}

const char *gs_crypto_error (void) {
  return lib.why[0] ? lib.why : "libcrypto is not loaded";
}

int gs_crypto_open (void) {
  (void)typecheck;
  return gs_lazy_open(&lib);
}
