/* Token Exchange (RFC 8693): grant_type=urn:ietf:params:oauth:grant-type:token-exchange.
 *
 * A confidential application with token_exchange_allowed trades an access token of this issuer
 * (the subject token) for a new access token for the same subject, usually for another audience
 * (resource / audience) and never with more scope. The new token says who acts: act.sub is the
 * subject of the actor token when one is given, else the requesting client; an act claim the
 * subject token already had is nested under it (the delegation chain). The new token lives no
 * longer than the subject token and, for people, ends with their session. No refresh token. */
#include "oauth/oauth.h"
#include "oauth/issue.h"
#include "http/response.h"
#include "core/pooljson.h"
#include "scaikey.h"
#include "core/jsonget.h"

#include <apr_strings.h>
#include <http_protocol.h>

APLOG_USE_MODULE(scaikey);

#define TT_ACCESS "urn:ietf:params:oauth:token-type:access_token"
#define TT_JWT    "urn:ietf:params:oauth:token-type:jwt"

static int count_cb(void *rec, const char *key, const char *value)
{
    (void)key;
    (void)value;
    (*(int *)rec)++;
    return 1;
}

static int occurrences(apr_table_t *t, const char *name)
{
    int n = 0;
    apr_table_do(count_cb, &n, t, name, NULL);
    return n;
}

static int token_type_ok(const char *t)
{
    return t && (!strcmp(t, TT_ACCESS) || !strcmp(t, TT_JWT));
}

/* the subject's or actor's token, verified as a live token of this issuer */
static int verify(sk_req *q, const char *slug, const char *token, const char *what, sk_principal **who)
{
    const char *reason = NULL;
    switch (sk_oauth_principal(q, slug, token, who, &reason)) {
    case SK_AUTH_OK:
        return OK;
    case SK_AUTH_UNAVAILABLE:
        sk_oauth_error(q, HTTP_SERVICE_UNAVAILABLE, "temporarily_unavailable", "try again later");
        return DONE;
    default:
        sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_grant",
                       apr_psprintf(q->p, "%s is invalid, expired or revoked", what));
        return DONE;
    }
}

int sk_oauth_exchange_grant(sk_req *q, const char *slug, json_t *client)
{
    static const char *const carried[] = { "token_type", "agent_id", "platform_token", "app_scope",
                                           "tenant_id", "partner_id", NULL };
    apr_table_t *f = q->form;
    const char *subject = apr_table_get(f, "subject_token"), *subject_type = apr_table_get(f, "subject_token_type");
    const char *actor = apr_table_get(f, "actor_token"), *actor_type = apr_table_get(f, "actor_token_type");
    const char *requested_type = apr_table_get(f, "requested_token_type"), *requested = apr_table_get(f, "scope");
    const char *resource = apr_table_get(f, "resource"), *audience = apr_table_get(f, "audience");
    const char *type = sk_jstr(client, "application_type"), *scope;
    sk_principal *sub = NULL, *act_by = NULL;
    json_t *act, *prior, *extra;
    sk_grant_ctx g = { 0 };
    sk_issue_opts o = { 0 };
    sk_audit *a;
    int i;

    if (strcmp(sk_jstr(client, "kind"), "app") || !type || (strcmp(type, "WEB") && strcmp(type, "SERVICE")) ||
        !json_is_true(json_object_get(client, "token_exchange_allowed")))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "unauthorized_client",
                              "token exchange is not allowed for this client");
    if (!subject || !*subject)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "subject_token is required");
    if (!subject_type)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "subject_token_type is required");
    if (!token_type_ok(subject_type))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "unsupported subject_token_type");
    if ((actor && !actor_type) || (!actor && actor_type))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request",
                              "actor_token and actor_token_type go together");
    if (actor && !token_type_ok(actor_type))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "unsupported actor_token_type");
    if (requested_type && !token_type_ok(requested_type))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_request", "unsupported requested_token_type");
    if (occurrences(f, "resource") > 1 || occurrences(f, "audience") > 1)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_target", "only one resource or audience is supported");
    if (resource && !sk_oauth_valid_resource(resource))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_target", "resource must be an absolute URI");
    if (audience && (!*audience || strlen(audience) > 2000))
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_target", "audience is not valid");
    if (requested && strlen(requested) > 2048)
        return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_scope", "scope is too long");

    if (verify(q, slug, subject, "subject_token", &sub) != OK)
        return OK;
    if (actor && verify(q, slug, actor, "actor_token", &act_by) != OK)
        return OK;

    /* scope: the subject token's, or a part of it */
    scope = sub->scope ? sub->scope : "";
    if (requested && *requested) {
        if (!sk_oauth_scope_subset(q->p, requested, scope))
            return sk_oauth_error(q, HTTP_BAD_REQUEST, "invalid_scope",
                                  "scope exceeds the scope of the subject token");
        scope = requested;
    }

    act = sk_pool_json(q->p, json_object());
    json_object_set_new(act, "sub", json_string(act_by ? sk_jstr(act_by->claims, "sub") : sk_jstr(client, "client_id")));
    prior = json_object_get(sub->claims, "act");
    if (json_is_object(prior))
        json_object_set(act, "act", prior);

    g.slug = slug;
    g.client = client;
    g.scope = scope;
    g.resource = resource ? resource : audience;
    g.act = act;
    if (sub->user) {
        g.user = sub->user;
        g.session_id = sub->session_id;
    }
    else {
        extra = sk_pool_json(q->p, json_object());
        for (i = 0; carried[i]; i++)
            if (json_object_get(sub->claims, carried[i]))
                json_object_set(extra, carried[i], json_object_get(sub->claims, carried[i]));
        o.sub = sk_jstr(sub->claims, "sub");
        o.extra = extra;
    }
    o.no_id_token = 1;
    o.max_exp = (long long)json_integer_value(json_object_get(sub->claims, "exp"));
    o.issued_token_type = TT_ACCESS;

    a = sk_req_audit(q, "oauth.token_exchange", "success");
    a->actor_id = sk_jstr(client, "client_id");
    a->actor_type = "service";
    a->tenant_id = sub->tenant_id;
    a->partner_id = sub->partner_id;
    a->resource_type = sub->user ? "user" : "client";
    a->resource_id = sk_jstr(sub->claims, "sub");
    a->details = sk_pool_json(q->p, json_pack("{s:s,s:s?,s:s?}", "scope", scope, "audience", g.resource,
                                              "actor", act_by ? sk_jstr(act_by->claims, "sub") : NULL));
    o.audit = a;
    return sk_oauth_issue_ex(q, &g, &o);
}
