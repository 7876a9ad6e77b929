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

#define GS_LAZY_API gsl_crypto_api
struct gsl_crypto_api gsl_crypto_api;
GS_LAZY_LIBRARY(GS_CRYPTO_FUNCS, GS_CRYPTO_SONAME, NULL, gsl_crypto_open, gsl_crypto_error, "libcrypto")
