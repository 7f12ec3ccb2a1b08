/*
 * password: argon2id hashing in PHC string form.
 *
 *   $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>   (16-byte random salt, 32-byte hash)
 *
 * Verification spends the same work whether or not the account exists, so response time does
 * not reveal which user names are known.
 */
#ifndef SK_CORE_PASSWORD_H
#define SK_CORE_PASSWORD_H

#include <apr_pools.h>

#define SK_PASSWORD_T_COST_DEFAULT 2
#define SK_PASSWORD_M_COST_DEFAULT 19456   /* KiB */
#define SK_PASSWORD_PARALLELISM_DEFAULT 1

/* Hash with the current cost. NULL on error, for a NULL or empty password. */
char *sk_password_hash(apr_pool_t *p, const char *password);

/* 1 if the password matches the PHC string; 0 otherwise. If phc is NULL, not an argon2id v=19
 * PHC string, or has out-of-range parameters, one argon2id verification still runs against a
 * dummy hash of the current cost, and the answer is 0. password NULL -> 0 (after the same work).
 * The dummy is made on first use (and after a cost change); one call with (NULL, NULL) at
 * process start-up keeps that one-off cost out of the first real login. */
int   sk_password_verify(const char *phc, const char *password);

/* Module-wide cost (also lets tests and benchmarks go faster). Values out of range
 * (t 1..64, m 8*parallelism..1048576 KiB, parallelism 1..16) leave the cost unchanged. */
void  sk_password_set_cost(unsigned t_cost, unsigned m_cost_kib, unsigned parallelism);

#endif
