/*
** lcrypto.c
** RSA-SHA256 signatures and X.509 facts for CFDI seals, on libcrypto:
** core.rsa_sha256_sign, core.rsa_sha256_verify, core.x509_info,
** core.base64_encode, core.base64_decode. In-process, so sealing an
** invoice never forks openssl. Errors come back as nil, message.
*/
#include <string.h>
#include <stdlib.h>

#include "crypto_lazy.h"

#include "lua.h"
#include "lauxlib.h"

/* libcrypto opens with the first call (crypto_lazy.h) */
static int no_crypto (lua_State *L) {
  lua_pushnil(L);
  lua_pushstring(L, gsl_crypto_error());
  return 2;
}

static int fail (lua_State *L, const char *what) {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_clear_error();
  lua_pushnil(L);
  if (e) {
    ERR_error_string_n(e, buf, sizeof buf);
    lua_pushfstring(L, "%s: %s", what, buf);
  } else {
    lua_pushstring(L, what);
  }
  return 2;
}

static void push_base64 (lua_State *L, const unsigned char *p, size_t n) {
  luaL_Buffer b;
  size_t cap = 4 * ((n + 2) / 3) + 1;
  char *out = luaL_buffinitsize(L, &b, cap);
  int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
  luaL_pushresultsize(&b, (size_t)len);
}

/* base64 text -> bytes in a Lua-owned buffer; NULL when not base64 */
static unsigned char *decode64 (lua_State *L, const char *s, size_t n, size_t *outlen) {
  unsigned char *out;
  int len, pad = 0;
  if (n == 0 || n % 4 != 0 || n > 0x7fffffff) return NULL;
  out = lua_newuserdatauv(L, 3 * (n / 4) + 1, 0);
  len = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
  if (len < 0) return NULL;
  if (s[n - 1] == '=') pad++;
  if (n > 1 && s[n - 2] == '=') pad++;
  *outlen = (size_t)len - (size_t)pad;
  return out;
}

/* core.base64_encode(bytes) -> text (no line breaks) */
static int l_b64enc (lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  if (gsl_crypto_open() != 0) return no_crypto(L);
  push_base64(L, (const unsigned char *)s, n);
  return 1;
}

/* core.base64_decode(text) -> bytes | nil, message */
static int l_b64dec (lua_State *L) {
  size_t n, len;
  const char *s = luaL_checklstring(L, 1, &n);
  unsigned char *out;
  if (gsl_crypto_open() != 0) return no_crypto(L);
  out = decode64(L, s, n, &len);
  if (!out) return fail(L, "base64_decode: not base64 text");
  lua_pushlstring(L, (const char *)out, len);
  return 1;
}

/* core.rsa_sha256_sign(private_key_pem, data) -> base64 signature | nil, message */
static int l_sign (lua_State *L) {
  size_t kn, dn, siglen = 0;
  const char *pem = luaL_checklstring(L, 1, &kn);
  const char *data = luaL_checklstring(L, 2, &dn);
  if (gsl_crypto_open() != 0) return no_crypto(L);
  BIO *bio = BIO_new_mem_buf(pem, (int)kn);
  EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned char *sig = NULL;
  int ok = key && md
    && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1
    && EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)data, dn) == 1
    && (sig = malloc(siglen)) != NULL
    && EVP_DigestSign(md, sig, &siglen, (const unsigned char *)data, dn) == 1;
  int n;
  if (ok) {
    push_base64(L, sig, siglen);
    n = 1;
  } else {
    n = fail(L, key ? "rsa_sha256_sign" : "rsa_sha256_sign: not a PEM private key");
  }
  free(sig);
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  BIO_free(bio);
  return n;
}

/* a public key from a PEM certificate or a PEM public key */
static EVP_PKEY *read_public (const char *pem, size_t n) {
  BIO *bio = BIO_new_mem_buf(pem, (int)n);
  EVP_PKEY *key = NULL;
  X509 *cert;
  if (!bio) return NULL;
  cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  if (cert) {
    key = X509_get_pubkey(cert);
    X509_free(cert);
  } else {
    ERR_clear_error();
    (void)BIO_reset(bio);
    key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  }
  BIO_free(bio);
  return key;
}

/* core.rsa_sha256_verify(cert_or_pubkey_pem, data, base64_sig) -> true | false, message */
static int l_verify (lua_State *L) {
  size_t kn, dn, sn, siglen = 0;
  const char *pem = luaL_checklstring(L, 1, &kn);
  const char *data = luaL_checklstring(L, 2, &dn);
  const char *b64 = luaL_checklstring(L, 3, &sn);
  unsigned char *sig;
  if (gsl_crypto_open() != 0) return no_crypto(L);
  sig = decode64(L, b64, sn, &siglen);
  EVP_PKEY *key;
  EVP_MD_CTX *md;
  int r;
  if (!sig) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "rsa_sha256_verify: the signature is not base64");
    return 2;
  }
  key = read_public(pem, kn);
  if (!key) {
    fail(L, "rsa_sha256_verify: not a PEM certificate or public key");
    lua_pushboolean(L, 0);
    lua_replace(L, -3);
    return 2;
  }
  md = EVP_MD_CTX_new();
  r = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1
    ? EVP_DigestVerify(md, sig, siglen, (const unsigned char *)data, dn) : -1;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  ERR_clear_error();
  lua_pushboolean(L, r == 1);
  if (r == 1) return 1;
  lua_pushliteral(L, "rsa_sha256_verify: the signature does not match");
  return 2;
}

/* core.x509_info(cert_pem) -> {der_base64, serial_hex, not_before, not_after} | nil, message */
static int l_x509 (lua_State *L) {
  size_t n;
  const char *pem = luaL_checklstring(L, 1, &n);
  if (gsl_crypto_open() != 0) return no_crypto(L);
  BIO *bio = BIO_new_mem_buf(pem, (int)n);
  X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  unsigned char *der = NULL;
  int len;
  BIGNUM *bn;
  char *hex;
  BIO_free(bio);
  if (!cert) return fail(L, "x509_info: not a PEM certificate");
  len = i2d_X509(cert, &der);
  if (len < 0) {
    X509_free(cert);
    return fail(L, "x509_info");
  }
  lua_createtable(L, 0, 2);
  push_base64(L, der, (size_t)len);
  lua_setfield(L, -2, "der_base64");
  OPENSSL_free(der);
  bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
  hex = bn ? BN_bn2hex(bn) : NULL;
  if (hex) {
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "serial_hex");
  }
  OPENSSL_free(hex);
  BN_free(bn);
  X509_free(cert);
  return 1;
}

static const luaL_Reg crypto_funcs[] = {
  {"rsa_sha256_sign", l_sign},
  {"rsa_sha256_verify", l_verify},
  {"x509_info", l_x509},
  {"base64_encode", l_b64enc},
  {"base64_decode", l_b64dec},
  {NULL, NULL}
};

/* adds the functions above to the table on top of the stack */
void gs_crypto_register (lua_State *L) {
  luaL_setfuncs(L, crypto_funcs, 0);
}
