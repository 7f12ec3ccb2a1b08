/* Server configuration: directives, defaults, merge. */
#ifndef SK_CONFIG_H
#define SK_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include "core/jwt.h"

#define SK_UNSET (-1)

typedef struct sk_config {
    const char *issuer;                 /* base URL, no trailing slash */
    const char *master_key_file;
    unsigned char master_key[32];
    int have_master_key;
    int alg;                            /* sk_alg or SK_UNSET */
    int key_rotation_interval;          /* seconds; 0 = never */
    int key_rotation_check;             /* seconds between the scheduled checks */
    int access_ttl;                     /* seconds */
    int refresh_ttl;
    int clock_skew;
    int production;                     /* 1 production, 0 development */
    const char *bootstrap_email;
    const char *bootstrap_secret_file;
    const char *bootstrap_password;     /* read at start-up, as root */
    apr_off_t max_body;
    int throttle_account;               /* failures per account per window */
    int throttle_ip;                    /* failures per client IP per window */
    int throttle_window;                /* seconds */
    int mail_kind;                      /* SK_MAIL_* of core/mail.h, or SK_UNSET (sendmail) */
    const char *mail_arg;               /* sendmail command, host:port, or directory */
    const char *mail_from;              /* From of outgoing mail */
} sk_config;

extern const command_rec sk_directives[];

void *sk_config_create(apr_pool_t *p, server_rec *s);
void *sk_config_merge(apr_pool_t *p, void *base, void *add);
sk_config *sk_config_get(server_rec *s);

/* Effective values (defaults applied). */
sk_alg sk_config_alg(const sk_config *c);
int sk_config_key_rotation_interval(const sk_config *c);
int sk_config_key_rotation_check(const sk_config *c);
int sk_config_access_ttl(const sk_config *c);
int sk_config_refresh_ttl(const sk_config *c);
int sk_config_clock_skew(const sk_config *c);
int sk_config_production(const sk_config *c);
apr_off_t sk_config_max_body(const sk_config *c);
/* The platform issuer: {base}/api/v1/platform/oauth */
const char *sk_config_platform_issuer(apr_pool_t *p, const sk_config *c);

/* Outgoing mail (ScaiKeyMail, ScaiKeyMailFrom). */
struct sk_mail_transport;
void sk_config_mail_transport(const sk_config *c, struct sk_mail_transport *t);
/* ScaiKeyMailFrom, or noreply@<host of ScaiKeyIssuer> */
const char *sk_config_mail_from(apr_pool_t *p, const sk_config *c);

/* Reads the secret files named by directives; called at start-up (as root). NULL or an error text. */
const char *sk_config_load_secrets(apr_pool_t *p, server_rec *s, sk_config *c);

#endif
