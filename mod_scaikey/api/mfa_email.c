/* Email as a second factor: codes mailed to the account's own address.
 *
 *   POST /api/v1/auth/tenants/{tenant_slug}/mfa/email/send?mfa_token=...&user_id=...
 *
 * A code is six digits, valid 5 minutes, for at most 5 attempts, and is bound to what it was sent
 * for ("mfa:<challenge id>" for a sign-in challenge, "flow:<flow id>" for a hosted sign-in,
 * "enable" for the enrolment): a code sent for one challenge never finishes another. Only its
 * digest is stored (HMAC-SHA256 under the master key over the row id, the purpose and the code,
 * as the email code sign-in does). Sending a new code for the same purpose ends the earlier one.
 * Sending is rate-limited per user and per client address. The method itself is enrolled at
 * /api/v1/me/mfa/email/{enable,confirm,disable} (me_mfa_email.c). */
#include "api/users.h"
#include "api/mail_flows.h"
#include "http/response.h"
#include "core/throttle.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define CODE_DIGITS       6
#define CODE_ATTEMPTS     "5"
#define SENDS_PER_USER    5
#define SENDS_PER_IP      20
#define SEND_WINDOW       600
#define BAD_TOKEN         "Invalid or expired MFA token"

static const sk_field send_fields[] = {
    { "mfa_token", SK_T_STRING, SK_F_REQUIRED, 1, 512 },
    { "user_id",   SK_T_STRING, SK_F_REQUIRED, 1, 64 },
    { NULL }
};

json_t *sk_mfa_email_user(sk_req *q, sk_db *db, const char *user_id, int *status)
{
    json_t *u = NULL;
    sk_db_status st = SK_QJ(db, "mfa_email_user", &u, user_id);
    *status = st == SK_DB_OK ? 0 : st == SK_DB_NOTFOUND ? 1 : -1;
    return st == SK_DB_OK ? sk_pool_json(q->p, u) : NULL;
}

static const char *code_context(sk_req *q, const char *row_id, const char *purpose)
{
    return apr_pstrcat(q->p, "mfa_email:", row_id, ":", purpose, NULL);
}

int sk_mfa_email_send(sk_req *q, sk_db *db, json_t *user, const char *purpose, int *retry_after)
{
    const char *uid = sk_jstr(user, "id"), *code, *id, *created = NULL, *tenant;
    const char *user_key = apr_pstrcat(q->p, "mfa-email-user:", uid, NULL);
    const char *ip_key = apr_pstrcat(q->p, "mfa-email-ip:", q->ip, NULL);
    int wait_user, wait_ip, enrol = !strcmp(purpose, "enable");
    sk_mail m = { 0 };
    sk_audit *a;
    sk_db_status st;

    *retry_after = 0;
    if (!q->cfg->have_master_key)
        return SK_MFA_MAIL_ERROR;
    wait_user = sk_throttle_wait(db, user_key, SENDS_PER_USER, SEND_WINDOW);
    wait_ip = sk_throttle_wait(db, ip_key, SENDS_PER_IP, SEND_WINDOW);
    if (wait_user < 0 || wait_ip < 0)
        return SK_MFA_MAIL_ERROR;
    a = sk_user_audit(q, "user.mfa_email_send", "denied", user);
    a->resource_type = "user";
    a->resource_id = uid;
    if (wait_user > 0 || wait_ip > 0) {
        a->details = json_pack("{s:s,s:s}", "reason", "throttled", "limit", wait_user > 0 ? "user" : "ip");
        sk_user_audit_now(q, a);
        json_decref(a->details);
        *retry_after = wait_user > wait_ip ? wait_user : wait_ip;
        return SK_MFA_MAIL_THROTTLED;
    }
    sk_throttle_fail(db, user_key, SEND_WINDOW);
    sk_throttle_fail(db, ip_key, SEND_WINDOW);

    if (!(code = sk_random_digits(q->p, CODE_DIGITS)) || !(id = sk_random_id(q->p, "otc_")))
        return SK_MFA_MAIL_ERROR;
    a->result = "success";
    a->resource_type = "one_time_code";
    a->resource_id = id;
    a->details = sk_pool_json(q->p, json_pack("{s:s}", "purpose", enrol ? "enable" : "sign-in"));
    if ((st = sk_db_begin(db)) != SK_DB_OK ||
        (st = SK_QV(db, "mfa_email_code_create", &created, id, uid, sk_jstr(user, "tenant_id"), sk_jstr(user, "email"),
                    sk_mail_flow_digest(q, code_context(q, id, purpose), code), purpose,
                    apr_itoa(q->p, SK_MFA_EMAIL_TTL), CODE_ATTEMPTS, q->ip)) != SK_DB_OK ||
        (st = sk_audit_write(db, a)) != SK_DB_OK || (st = sk_db_commit(db)) != SK_DB_OK) {
        sk_db_rollback(db);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2301) "MFA email code not stored: %s",
                      sk_db_error(db));
        return SK_MFA_MAIL_ERROR;
    }
    tenant = sk_jstr(user, "tenant_name") ? sk_jstr(user, "tenant_name") : "ScaiKey";
    sk_mail_mfa_code(q->p, &m, tenant, code, SK_MFA_EMAIL_TTL / 60, enrol);
    if (sk_mail_flow_send(q, &m, sk_jstr(user, "email"), "MFA code", sk_jstr(user, "tenant_id"), uid) != 0)
        return SK_MFA_MAIL_ERROR;
    return SK_MFA_MAIL_SENT;
}

int sk_mfa_email_match(sk_req *q, sk_db *db, const char *user_id, const char *purpose, const char *code,
                       const char **code_id)
{
    json_t *row = NULL;
    sk_db_status st;
    apr_size_t n = code ? strlen(code) : 0;
    int digits = n == CODE_DIGITS && strspn(code, "0123456789") == n;

    *code_id = NULL;
    if (!q->cfg->have_master_key)
        return -1;
    /* the attempt counts before the comparison, so parallel guesses cannot go beyond the limit */
    st = SK_QJ(db, "mfa_email_code_attempt", &row, user_id, purpose);
    if (st == SK_DB_NOTFOUND)
        return 0;
    if (st != SK_DB_OK)
        return -1;
    sk_pool_json(q->p, row);
    if (!digits || !sk_ct_streq(sk_mail_flow_digest(q, code_context(q, sk_jstr(row, "id"), purpose), code),
                                sk_jstr(row, "code_hash")))
        return 0;
    *code_id = sk_jstr(row, "id");
    return 1;
}

int sk_mfa_email_check(sk_req *q, sk_db *db, const char *user_id, const char *purpose, const char *code)
{
    const char *id = NULL, *used = NULL;
    sk_db_status st;
    int rc = sk_mfa_email_match(q, db, user_id, purpose, code, &id);
    if (rc != 1)
        return rc;
    st = SK_QV(db, "mfa_email_code_use", &used, id);
    if (st == SK_DB_NOTFOUND)        /* spent by a concurrent request */
        return 0;
    if (st != SK_DB_OK)
        return -1;
    SK_Q(db, "mfa_email_method_used", user_id);
    return 1;
}

/* ---- POST .../mfa/email/send ---- */

/* mfa_token and user_id from the query (as the reference has them), else from the JSON body */
static json_t *send_args(sk_req *q)
{
    json_t *args = sk_pool_json(q->p, json_deep_copy(q->body ? q->body : json_object()));
    const char *k[] = { "mfa_token", "user_id", NULL };
    int i;
    if (!args)
        args = sk_pool_json(q->p, json_object());
    for (i = 0; k[i]; i++)
        if (sk_req_query(q, k[i]))
            json_object_set_new(args, k[i], json_string(sk_req_query(q, k[i])));
    return args;
}

static int send_refused(sk_req *q, json_t *user, const char *tenant_id, const char *reason)
{
    sk_audit *a = sk_user_audit(q, "user.mfa_email_send", "failure", user);
    if (!a->tenant_id)
        a->tenant_id = tenant_id;
    a->details = json_pack("{s:s}", "reason", reason);
    sk_user_audit_now(q, a);
    json_decref(a->details);
    return sk_fail(q, HTTP_UNAUTHORIZED, BAD_TOKEN);
}

int sk_api_tenant_mfa_email_send(sk_req *q)
{
    const char *slug = sk_req_param(q, "tenant_slug"), *uid;
    json_t *args = send_args(q), *tenant = NULL, *tok = NULL, *user, *errs = json_array();
    sk_db *db;
    sk_db_status st;
    int rc, wait = 0;

    if (sk_validate(args, send_fields, errs))
        return sk_fail_validation(q, errs);
    json_decref(errs);
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (!(tenant = sk_user_tenant(q, db, slug)))
        return OK;

    st = SK_QJ(db, "mfa_challenge_peek", &tok, sk_sha256_hex(q->p, sk_jstr(args, "mfa_token")));
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND)
        return sk_fail_unavailable(q);
    sk_pool_json(q->p, tok);
    if (st == SK_DB_NOTFOUND || !sk_jstr(tok, "tenant_id") || strcmp(sk_jstr(tok, "tenant_id"), sk_jstr(tenant, "id")))
        return send_refused(q, NULL, sk_jstr(tenant, "id"), "invalid_mfa_token");
    uid = sk_jstr(tok, "user_id");
    /* the caller names the user the challenge is for: a token of someone else is refused alike */
    if (!uid || strcmp(uid, sk_jstr(args, "user_id")))
        return send_refused(q, NULL, sk_jstr(tenant, "id"), "user_mismatch");
    if (!(user = sk_mfa_email_user(q, db, uid, &rc)))
        return rc > 0 ? send_refused(q, NULL, sk_jstr(tenant, "id"), "user_gone") : sk_fail_unavailable(q);
    if (!json_is_true(json_object_get(user, "live")))
        return send_refused(q, user, NULL, "account_disabled");
    if (!json_is_true(json_object_get(user, "email_available"))) {
        sk_audit *a = sk_user_audit(q, "user.mfa_email_send", "denied", user);
        a->details = json_pack("{s:s}", "reason", "method_unavailable");
        sk_user_audit_now(q, a);
        json_decref(a->details);
        return sk_fail(q, HTTP_BAD_REQUEST, "Email MFA is not available");
    }
    switch (sk_mfa_email_send(q, db, user, apr_pstrcat(q->p, "mfa:", sk_jstr(tok, "id"), NULL), &wait)) {
    case SK_MFA_MAIL_SENT:
        sk_no_store(q);
        return sk_reply(q, HTTP_OK, json_pack("{s:b,s:s,s:i,s:i}", "sent", 1, "method", "email",
                                              "expires_in", SK_MFA_EMAIL_TTL, "max_attempts", atoi(CODE_ATTEMPTS)));
    case SK_MFA_MAIL_THROTTLED:
        return sk_fail_throttled(q, wait, "Too many codes sent. Try again later.");
    default:
        return sk_fail_unavailable(q);
    }
}
