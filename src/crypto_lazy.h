/*
** crypto_lazy.h
** libcrypto is opened by the first seal, signature check or base64 call
** (see lazy.h). Include after the OpenSSL headers: the calls below then
** go through pointers that gsl_crypto_open() fills. BIO_reset and
** OPENSSL_free are macros over BIO_ctrl and CRYPTO_free.
*/
#ifndef GS_CRYPTO_LAZY_H
#define GS_CRYPTO_LAZY_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define GS_CRYPTO_FUNCS(X) \
  X(BIGNUM *, ASN1_INTEGER_to_BN, (const ASN1_INTEGER *, BIGNUM *)) \
  X(int, BIO_free, (BIO *)) \
  X(BIO *, BIO_new_mem_buf, (const void *, int)) \
  X(long, BIO_ctrl, (BIO *, int, long, void *)) \
  X(char *, BN_bn2hex, (const BIGNUM *)) \
  X(void, BN_free, (BIGNUM *)) \
  X(void, CRYPTO_free, (void *, const char *, int)) \
  X(void, ERR_clear_error, (void)) \
  X(void, ERR_error_string_n, (unsigned long, char *, size_t)) \
  X(unsigned long, ERR_get_error, (void)) \
  X(int, EVP_DecodeBlock, (unsigned char *, const unsigned char *, int)) \
  X(int, EVP_EncodeBlock, (unsigned char *, const unsigned char *, int)) \
  X(int, EVP_DigestSign, (EVP_MD_CTX *, unsigned char *, size_t *, \
                          const unsigned char *, size_t)) \
  X(int, EVP_DigestSignInit, (EVP_MD_CTX *, EVP_PKEY_CTX **, const EVP_MD *, \
                              ENGINE *, EVP_PKEY *)) \
  X(int, EVP_DigestVerify, (EVP_MD_CTX *, const unsigned char *, size_t, \
                            const unsigned char *, size_t)) \
  X(int, EVP_DigestVerifyInit, (EVP_MD_CTX *, EVP_PKEY_CTX **, const EVP_MD *, \
                                ENGINE *, EVP_PKEY *)) \
  X(void, EVP_MD_CTX_free, (EVP_MD_CTX *)) \
  X(EVP_MD_CTX *, EVP_MD_CTX_new, (void)) \
  X(void, EVP_PKEY_free, (EVP_PKEY *)) \
  X(const EVP_MD *, EVP_sha256, (void)) \
  X(EVP_PKEY *, PEM_read_bio_PUBKEY, (BIO *, EVP_PKEY **, pem_password_cb *, void *)) \
  X(EVP_PKEY *, PEM_read_bio_PrivateKey, (BIO *, EVP_PKEY **, pem_password_cb *, void *)) \
  X(X509 *, PEM_read_bio_X509, (BIO *, X509 **, pem_password_cb *, void *)) \
  X(void, X509_free, (X509 *)) \
  X(int, i2d_X509, (const X509 *, unsigned char **)) \
  X(const ASN1_INTEGER *, X509_get0_serialNumber, (const X509 *)) \
  X(EVP_PKEY *, X509_get_pubkey, (X509 *))

struct gsl_crypto_api {
#define GS_CRYPTO_FIELD(ret, name, args) ret (*name) args;
  GS_CRYPTO_FUNCS(GS_CRYPTO_FIELD)
#undef GS_CRYPTO_FIELD
};

extern struct gsl_crypto_api gsl_crypto_api;

/* 0 when libcrypto is open, else -1 with the reason in gsl_crypto_error(). */
int gsl_crypto_open (void);
const char *gsl_crypto_error (void);

#ifndef GS_CRYPTO_LAZY_IMPL
#define ASN1_INTEGER_to_BN (*gsl_crypto_api.ASN1_INTEGER_to_BN)
#define BIO_free (*gsl_crypto_api.BIO_free)
#define BIO_new_mem_buf (*gsl_crypto_api.BIO_new_mem_buf)
#define BIO_ctrl (*gsl_crypto_api.BIO_ctrl)
#define BN_bn2hex (*gsl_crypto_api.BN_bn2hex)
#define BN_free (*gsl_crypto_api.BN_free)
#define CRYPTO_free (*gsl_crypto_api.CRYPTO_free)
#define ERR_clear_error (*gsl_crypto_api.ERR_clear_error)
#define ERR_error_string_n (*gsl_crypto_api.ERR_error_string_n)
#define ERR_get_error (*gsl_crypto_api.ERR_get_error)
#define EVP_DecodeBlock (*gsl_crypto_api.EVP_DecodeBlock)
#define EVP_EncodeBlock (*gsl_crypto_api.EVP_EncodeBlock)
#define EVP_DigestSign (*gsl_crypto_api.EVP_DigestSign)
#define EVP_DigestSignInit (*gsl_crypto_api.EVP_DigestSignInit)
#define EVP_DigestVerify (*gsl_crypto_api.EVP_DigestVerify)
#define EVP_DigestVerifyInit (*gsl_crypto_api.EVP_DigestVerifyInit)
#define EVP_MD_CTX_free (*gsl_crypto_api.EVP_MD_CTX_free)
#define EVP_MD_CTX_new (*gsl_crypto_api.EVP_MD_CTX_new)
#define EVP_PKEY_free (*gsl_crypto_api.EVP_PKEY_free)
#define EVP_sha256 (*gsl_crypto_api.EVP_sha256)
#define PEM_read_bio_PUBKEY (*gsl_crypto_api.PEM_read_bio_PUBKEY)
#define PEM_read_bio_PrivateKey (*gsl_crypto_api.PEM_read_bio_PrivateKey)
#define PEM_read_bio_X509 (*gsl_crypto_api.PEM_read_bio_X509)
#define X509_free (*gsl_crypto_api.X509_free)
#define i2d_X509 (*gsl_crypto_api.i2d_X509)
#define X509_get0_serialNumber (*gsl_crypto_api.X509_get0_serialNumber)
#define X509_get_pubkey (*gsl_crypto_api.X509_get_pubkey)
#endif

#endif
