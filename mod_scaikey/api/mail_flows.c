/* What the sign-in page flows that send mail share (see mail_flows.h). */
#include "api/mail_flows.h"
#include "http/response.h"
#include "core/throttle.h"
#include "core/secrets.h"
#include "core/pooljson.h"
#include "core/jsonget.h"
#include "scaikey.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define SENDS_PER_ADDRESS 3
#define SENDS_PER_IP    20
#define SEND_WINDOW     600

void sk_mail_flow_audit(sk_req *q, sk_audit *a)
{
    if (q->db && sk_audit_write(q->db, a) != SK_DB_OK)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2201) "audit write failed for %s: %s",
                      a->action, sk_db_error(q->db));
    json_decref(a->details);
    a->details = NULL;
}

json_t *sk_mail_flow_tenant(sk_req *q)
{
    const char *slug = sk_req_param(q, "tenant_slug");
    json_t *t = NULL;
    sk_db *db = sk_req_db(q);
    sk_db_status st;
    if (!db) {
        sk_fail_unavailable(q);
        return NULL;
    }
    if (!slug || !sk_valid_slug(slug)) {
        sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
        return NULL;
    }
    st = SK_QJ(db, "mail_tenant", &t, slug);
    if (st == SK_DB_NOTFOUND) {
        sk_fail(q, HTTP_NOT_FOUND, "Tenant not found");
        return NULL;
    }
    if (st != SK_DB_OK) {
        sk_fail_unavailable(q);
        return NULL;
    }
    sk_pool_json(q->p, t);
    return t;
}

static const char *lower(apr_pool_t *p, const char *s)
{
    char *l = apr_pstrdup(p, s), *c;
    for (c = l; *c; c++)
        *c = (char)apr_tolower((unsigned char)*c);
    return l;
}

int sk_mail_flow_throttle(sk_req *q, const char *what, const char *tenant_id, const char *email,
                          int per_address, int per_ip, const char *action)
{
    sk_db *db = q->db;
    const char *addr_key = apr_pstrcat(q->p, "mail-", what, "-addr:", tenant_id, ":", lower(q->p, email), NULL);
    const char *ip_key = apr_pstrcat(q->p, "mail-", what, "-ip:", q->ip, NULL);
    int wait_addr = sk_throttle_wait(db, addr_key, per_address, SEND_WINDOW);
    int wait_ip = sk_throttle_wait(db, ip_key, per_ip, SEND_WINDOW);
    if (wait_addr < 0 || wait_ip < 0) {
        sk_fail_unavailable(q);
        return -1;
    }
    if (wait_addr > 0 || wait_ip > 0) {
        sk_audit *a = sk_req_audit(q, action, "denied");
        a->actor_email = email;
        a->tenant_id = tenant_id;
        a->details = json_pack("{s:s,s:s}", "reason", "throttled", "limit", wait_addr > 0 ? "address" : "ip");
        sk_mail_flow_audit(q, a);
        sk_fail_throttled(q, wait_addr > wait_ip ? wait_addr : wait_ip,
                          "Too many requests. Try again later.");
        return -1;
    }
    sk_throttle_fail(db, addr_key, SEND_WINDOW);
    sk_throttle_fail(db, ip_key, SEND_WINDOW);
    return 0;
}

void sk_mail_flow_failed(sk_req *q, const char *kind, const char *tenant_id, const char *user_id, const char *err)
{
    sk_audit *a;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(2202) "%s mail for user %s not sent: %s", kind,
                  user_id ? user_id : "-", err ? err : "unknown error");
    a = sk_req_audit(q, "mail.send", "failure");
    a->tenant_id = tenant_id;
    a->resource_type = "user";
    a->resource_id = user_id;
    a->details = json_pack("{s:s,s:s}", "kind", kind, "error", err ? err : "unknown error");
    sk_mail_flow_audit(q, a);
}

int sk_mail_flow_send(sk_req *q, sk_mail *m, const char *to, const char *kind, const char *tenant_id,
                      const char *user_id)
{
    sk_mail_transport t;
    const char *err = NULL, *msg, *from_addr;
    sk_config_mail_transport(q->cfg, &t);
    m->from = sk_config_mail_from(q->p, q->cfg);
    m->to = to;
    from_addr = sk_mail_address(q->p, m->from);
    if (!(msg = sk_mail_build(q->p, m, apr_time_now(), &err))) {
        sk_mail_flow_failed(q, kind, tenant_id, user_id, err);
        return -1;
    }
    /* a mail server's time must not show in the answer (api/mail_outbox.c) */
    if (t.kind != SK_MAIL_DIR) {
        sk_mail_outbox_add(q, &t, from_addr, to, msg, kind, tenant_id, user_id);
        return 0;
    }
    if (sk_mail_deliver(q->p, &t, from_addr, to, msg, &err) == 0)
        return 0;
    sk_mail_flow_failed(q, kind, tenant_id, user_id, err);
    return -1;
}

const char *sk_mail_flow_digest(sk_req *q, const char *context, const char *secret)
{
    const char *data = apr_pstrcat(q->p, context, ":", secret, NULL);
    return sk_hmac_sha256_hex(q->p, q->cfg->master_key, sizeof(q->cfg->master_key), data, strlen(data));
}

int sk_mail_flow_start(sk_req *q, const sk_field *fields, const char *what, const char *action, sk_mail_flow_to *to)
{
    sk_db_status st;

    memset(to, 0, sizeof(*to));
    if (sk_req_invalid(q, fields))
        return 0;
    to->email = sk_jstr(q->body, "email");
    if (!(to->tenant = sk_mail_flow_tenant(q)))
        return 0;
    if (sk_mail_flow_throttle(q, what, sk_jstr(to->tenant, "id"), to->email, SENDS_PER_ADDRESS, SENDS_PER_IP,
                              action) != 0)
        return 0;
    st = SK_QJ(q->db, "mail_user_by_email", &to->user, sk_jstr(to->tenant, "id"), to->email);
    if (st != SK_DB_OK && st != SK_DB_NOTFOUND) {
        sk_fail_unavailable(q);
        return 0;
    }
    if (to->user)
        sk_pool_json(q->p, to->user);
    if (to->user && json_is_true(json_object_get(to->user, "live")) &&
        json_is_true(json_object_get(to->tenant, "live")))
        to->uid = sk_jstr(to->user, "id");
    return 1;
}

void sk_mail_flow_done(sk_req *q, const char *action, const sk_mail_flow_to *to, const char *code_id, int sent)
{
    sk_audit *a = sk_req_audit(q, action, to->uid && !sent ? "failure" : "success");
    a->actor_email = to->email;
    a->actor_id = to->uid;
    a->actor_type = to->uid ? "user" : NULL;
    a->tenant_id = sk_jstr(to->tenant, "id");
    a->resource_type = "one_time_code";
    a->resource_id = code_id;
    a->details = json_pack("{s:b,s:b}", "account", to->uid != NULL, "mail_sent", sent);
    sk_mail_flow_audit(q, a);
}
