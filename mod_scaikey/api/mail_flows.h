/* The sign-in page flows that send mail: email code sign-in (api/email_code.c), forgot / reset
 * password and email verification (api/password_reset.c), and what they share (api/mail_flows.c). */
#ifndef SK_API_MAIL_FLOWS_H
#define SK_API_MAIL_FLOWS_H

#include "http/request.h"
#include "http/validate.h"
#include "core/mail.h"

/* POST /api/v1/auth/tenants/{tenant_slug}/email-code/{send,verify,refresh,revoke} */
int sk_api_email_code_send(sk_req *q);
int sk_api_email_code_verify(sk_req *q);
int sk_api_email_code_refresh(sk_req *q);
int sk_api_email_code_revoke(sk_req *q);

/* POST /api/v1/auth/tenants/{tenant_slug}/forgot-password and .../reset-password */
int sk_api_forgot_password(sk_req *q);
int sk_api_reset_password(sk_req *q);

/* POST /api/v1/me/verify-email (bearer) and POST /api/v1/auth/verify-email */
int sk_api_me_verify_email(sk_req *q);
int sk_api_verify_email(sk_req *q);

/* ---- shared ---- */

/* The tenant named by {tenant_slug} (pool-owned JSON: id, slug, display_name, live,
 * password_min_length), or NULL after a 404 / 503 response. */
json_t *sk_mail_flow_tenant(sk_req *q);

/* Rate limit of a sending endpoint: each call counts one send for the address and one for the
 * client IP (limits per 10 minutes). 0 when allowed; otherwise the response (429 with
 * Retry-After, or 503) has been sent and the audit written. */
int sk_mail_flow_throttle(sk_req *q, const char *what, const char *tenant_id, const char *email,
                          int per_address, int per_ip, const char *action);

/* Builds and delivers a message to `to`; failures are logged and audited (action "mail.send",
 * result failure) without the content. 0 sent (or, for sendmail and SMTP, queued to leave once
 * the response is written: api/mail_outbox.c), -1 not. */
int sk_mail_flow_send(sk_req *q, sk_mail *m, const char *to, const char *kind, const char *tenant_id,
                      const char *user_id);

/* Logs and audits a message that could not be built or delivered (never its content). */
void sk_mail_flow_failed(sk_req *q, const char *kind, const char *tenant_id, const char *user_id, const char *err);

/* Queues a built message on the request; it is delivered after the response (log_transaction). */
void sk_mail_outbox_add(sk_req *q, const sk_mail_transport *t, const char *from, const char *to,
                        const char *message, const char *kind, const char *tenant_id, const char *user_id);
void sk_mail_outbox_register(apr_pool_t *p);

/* Digest of a one-time secret: HMAC-SHA256 keyed by the master key over "context:secret". */
const char *sk_mail_flow_digest(sk_req *q, const char *context, const char *secret);

/* Audit record written on its own (outside a transaction). */
void sk_mail_flow_audit(sk_req *q, sk_audit *a);

/* Whom a sending request (forgot-password, email-code send) is for. */
typedef struct sk_mail_flow_to {
    json_t *tenant;             /* sk_mail_flow_tenant */
    const char *email;          /* as given */
    json_t *user;               /* the account of that address (pool-owned), or NULL */
    const char *uid;            /* its id when the account and its tenant are live, else NULL */
} sk_mail_flow_to;

/* The first steps of a sending request: validates the body against fields (its "email"), finds
 * the tenant, counts one send (sk_mail_flow_throttle with what and action) and looks the address
 * up. 1 to go on; 0 when the response (422, 404, 429, 503) has been sent. */
int sk_mail_flow_start(sk_req *q, const sk_field *fields, const char *what, const char *action, sk_mail_flow_to *to);

/* Records a sending request: action, failure when a live account's mail was not sent, the code
 * or link row code_id, details {account, mail_sent}. */
void sk_mail_flow_done(sk_req *q, const char *action, const sk_mail_flow_to *to, const char *code_id, int sent);

#endif
