/* The audit log, read side: /api/v1/admin/audit (filtered, newest first), one entry, the distinct
 * actions and resource types, and the verification of the hash chain. Every read is limited to
 * the caller's reach: a tenant's rows for a tenant_admin, a partner's and its tenants' rows for a
 * partner_admin, everything for the platform. */
#include "api/admin.h"
#include "api/crud.h"
#include "http/response.h"
#include "core/pooljson.h"
#include "scaikey.h"

#include <apr_strings.h>
#include <apr_lib.h>
#include <http_protocol.h>
#include <string.h>

APLOG_USE_MODULE(scaikey);

#define MAX_FILTER 320

static const char *const results[] = { "success", "failure", "denied", "error", NULL };

/* the text filters, in the order of the audit_list statement's arguments */
static const char *const text_filters[] = {
    "tenant_id", "partner_id", "actor_id", "actor_email", "action", "resource_type", "resource_id", "result", NULL
};

/* ---- ISO 8601 date-times ---- */

static int digits(const char *s, int n, int *out)
{
    int i, v = 0;
    for (i = 0; i < n; i++) {
        if (!apr_isdigit(s[i]))
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return days[m - 1];
}

/* "YYYY-MM-DD" with an optional time "THH:MM[:SS[.fraction]]" and zone "Z" or "+HH[:MM]" /
 * "-HH[:MM]" (a "+" that arrived as a space in a query string is taken as "+"). A date-time
 * without zone is UTC. Returns the value with an explicit zone for the store, or NULL. */
static const char *iso_time(apr_pool_t *p, const char *s)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, zh = 0, zm = 0;
    char sign = '+';
    const char *frac = "", *c;

    if (strlen(s) < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return NULL;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return NULL;
    c = s + 10;
    if (*c) {
        if (*c != 'T' && *c != 't' && *c != ' ')
            return NULL;
        c++;
        if (!digits(c, 2, &h) || c[2] != ':' || !digits(c + 3, 2, &mi))
            return NULL;
        c += 5;
        if (*c == ':') {
            if (!digits(c + 1, 2, &sec))
                return NULL;
            c += 3;
            if (*c == '.' || *c == ',') {
                const char *f = ++c;
                while (apr_isdigit(*c))
                    c++;
                if (c == f || c - f > 9)
                    return NULL;
                frac = apr_pstrcat(p, ".", apr_pstrndup(p, f, (apr_size_t)(c - f)), NULL);
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return NULL;
        if (*c == 'Z' || *c == 'z') {
            c++;
        }
        else if (*c == '+' || *c == '-' || *c == ' ') {
            sign = *c == '-' ? '-' : '+';
            c++;
            if (!digits(c, 2, &zh))
                return NULL;
            c += 2;
            if (*c == ':')
                c++;
            if (*c) {
                if (!digits(c, 2, &zm))
                    return NULL;
                c += 2;
            }
            if (zh > 14 || zm > 59)
                return NULL;
        }
        if (*c)
            return NULL;
    }
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d", y, mo, d, h, mi, sec, frac, sign, zh, zm);
}

/* ---- helpers ---- */

/* the reach as the statements' three arguments */
static void reach_args(sk_req *q, const char *out[3])
{
    sk_reach r = sk_policy_reach(q->who);
    out[0] = r.all ? "true" : "false";
    out[1] = r.all ? NULL : r.partner_id;
    out[2] = r.all ? NULL : r.tenant_id;
}

static int may_read(sk_req *q)
{
    if (sk_admin_gate(q, 0) != OK)
        return 0;
    if (sk_policy_decide(q->who, SK_RES_AUDIT, SK_ACT_READ, NULL) != SK_ALLOW) {
        sk_fail(q, HTTP_FORBIDDEN, "Access denied");
        return 0;
    }
    return 1;
}

static int store_failed(sk_req *q, sk_db *db, const char *what)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, q->r, SKLOGNO(0741) "audit %s: %s", what, sk_db_error(db));
    return sk_fail_unavailable(q);
}

/* ---- handlers ---- */

int sk_admin_audit_list(sk_req *q)
{
    const char *args[18], *reach[3], *v;
    const char *const *f;
    json_t *errs, *out = NULL;
    sk_db *db;
    int page, per_page, n = 0;
    sk_db_status st;

    if (!may_read(q) || sk_page_params(q, &page, &per_page) != OK)
        return OK;
    errs = json_array();
    for (f = text_filters; *f; f++) {
        v = sk_req_query(q, *f);
        if (v && strlen(v) > MAX_FILTER) {
            json_array_append_new(errs, sk_verr("query", *f, "String should have at most 320 characters",
                                                "string_too_long"));
        }
        else if (v && !strcmp(*f, "result")) {
            const char *const *c;
            for (c = results; *c && strcmp(*c, v); c++)
                ;
            if (!*c)
                json_array_append_new(errs, sk_verr("query", *f, "Input should be 'success', 'failure', 'denied' "
                                                    "or 'error'", "enum"));
        }
        args[n++] = v;
    }
    args[n++] = (v = sk_req_query(q, "start_time")) ? iso_time(q->p, v) : NULL;
    if (v && !args[n - 1])
        json_array_append_new(errs, sk_verr("query", "start_time", "Input should be a valid datetime (ISO 8601)",
                                            "datetime_parsing"));
    args[n++] = (v = sk_req_query(q, "end_time")) ? iso_time(q->p, v) : NULL;
    if (v && !args[n - 1])
        json_array_append_new(errs, sk_verr("query", "end_time", "Input should be a valid datetime (ISO 8601)",
                                            "datetime_parsing"));
    if ((v = sk_req_query(q, "ip_address")) && strlen(v) > MAX_FILTER)
        json_array_append_new(errs, sk_verr("query", "ip_address", "String should have at most 320 characters",
                                            "string_too_long"));
    args[n++] = v;
    if (json_array_size(errs))
        return sk_fail_validation(q, errs);
    json_decref(errs);
    reach_args(q, reach);
    args[n++] = reach[0];
    args[n++] = reach[1];
    args[n++] = reach[2];
    args[n++] = apr_itoa(q->p, per_page);
    args[n++] = apr_itoa(q->p, (page - 1) * per_page);

    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if ((st = sk_db_json(db, "audit_list", n, args, &out)) != SK_DB_OK)
        return store_failed(q, db, "list");
    sk_pool_json(q->p, out);
    return sk_reply(q, HTTP_OK, sk_paginated(json_incref(json_object_get(out, "items")),
                                             json_integer_value(json_object_get(out, "total")), page, per_page));
}

int sk_admin_audit_get(sk_req *q)
{
    const char *id = sk_req_param(q, "audit_id"), *reach[3], *c;
    json_t *out = NULL;
    sk_db *db;
    sk_db_status st;

    if (!may_read(q))
        return OK;
    for (c = id; c && apr_isdigit(*c); c++)
        ;
    /* ids are positive integers: anything else names no entry */
    if (!id || !*id || *c || strlen(id) > 18)
        return sk_fail(q, HTTP_NOT_FOUND, "Audit entry not found");
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    reach_args(q, reach);
    st = SK_QJ(db, "audit_get", &out, id, reach[0], reach[1], reach[2]);
    if (st == SK_DB_NOTFOUND || st == SK_DB_INVALID)
        return sk_fail(q, HTTP_NOT_FOUND, "Audit entry not found");
    if (st != SK_DB_OK)
        return store_failed(q, db, "get");
    return sk_reply(q, HTTP_OK, out);
}

static int distinct(sk_req *q, const char *label, const char *key)
{
    const char *reach[3];
    json_t *out = NULL;
    sk_db *db;

    if (!may_read(q))
        return OK;
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    reach_args(q, reach);
    if (SK_QJ(db, label, &out, reach[0], reach[1], reach[2]) != SK_DB_OK)
        return store_failed(q, db, key);
    return sk_reply(q, HTTP_OK, json_pack("{s:o}", key, out));
}

int sk_admin_audit_actions(sk_req *q)
{
    return distinct(q, "audit_actions", "actions");
}

int sk_admin_audit_resource_types(sk_req *q)
{
    return distinct(q, "audit_resource_types", "resource_types");
}

int sk_admin_audit_verify(sk_req *q)
{
    json_t *out = NULL;
    sk_db *db;

    if (sk_admin_gate(q, 0) != OK)
        return OK;
    /* the chain spans every tenant: only the platform's own administrators check it */
    if (!sk_policy_reach(q->who).all)
        return sk_fail(q, HTTP_FORBIDDEN, "Requires Super Admin role");
    if (!(db = sk_req_db(q)))
        return sk_fail_unavailable(q);
    if (sk_db_json(db, "audit_verify", 0, NULL, &out) != SK_DB_OK)
        return store_failed(q, db, "verify");
    return sk_reply(q, HTTP_OK, out);
}
