/*
 * es256: checks of ECDSA P-256 signatures with a table of multiples of the signer's public key.
 */
#ifndef SK_CORE_ES256_H
#define SK_CORE_ES256_H

#include <openssl/evp.h>

#define SK_ES256_DIGEST_LEN 32
#define SK_ES256_SIG_LEN 64

typedef struct sk_es256 sk_es256;

/* The checker of one P-256 public key, or NULL when pub is not one. Its table is built by the
 * check that makes warmup checks; until then (and if it cannot be built) sk_es256_verify
 * answers -1. The table takes about 150 KB and 20 ms. Free with sk_es256_free. */
sk_es256 *sk_es256_new(const EVP_PKEY *pub, unsigned warmup);
void sk_es256_free(sk_es256 *e);

/* 1 when sig (r || s, 32 bytes each, big-endian) is a signature by e's key of the SHA-256
 * digest md; 0 when it is not; -1 when this check was not made (no table yet, or an OpenSSL
 * failure): the caller then checks another way. Safe from any number of threads. */
int sk_es256_verify(sk_es256 *e, const unsigned char md[SK_ES256_DIGEST_LEN],
                    const unsigned char sig[SK_ES256_SIG_LEN]);

/* 1 once the table is there (for tests). */
int sk_es256_ready(const sk_es256 *e);

/* out = a^-1 modulo the order of P-256 by the checker's own arithmetic alone (sk_es256_verify
 * checks its result by multiplication; this is for tests). 0, or -1 when a is not in [1, n-1]. */
int sk_es256_inverse(const unsigned char a[32], unsigned char out[32]);

#endif
