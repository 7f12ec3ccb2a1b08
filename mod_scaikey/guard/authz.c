/* Authorization providers for Require (usable in RequireAll / RequireAny / RequireNone):
 *
 *   Require scaikey-scope a b          every listed scope is granted to the credential
 *   Require scaikey-role r1 r2         the caller has one of the roles
 *   Require scaikey-group g1 g2        member of one of the groups (id or name; nesting counts)
 *   Require scaikey-tenant t1 t2       belongs to one of the tenants (slug or id)
 *   Require scaikey-claim n=v [n2=v2]  each claim equals the value (for array claims: contains it)
 *
 * They answer for callers authenticated by AuthType ScaiKey only. A failure is remembered so that
 * the 403 can say what was missing (RFC 6750 scope attribute). */
#include "guard/internal.h"
#include "scaikey.h"
#include "core/policy.h"
#include "core/jsonget.h"

#include <mod_auth.h>
#include <http_request.h>
#include <apr_strings.h>

APLOG_USE_MODULE(scaikey);

typedef struct {
    apr_array_header_t *words;       /* const char * */
    apr_array_header_t *values;      /* claim: the values, same index as words (the names) */
} rule;

#define WORD(a, i) APR_ARRAY_IDX((a), (i), const char *)

static const char *parse_words(cmd_parms *cmd, const char *line, const void **parsed, const char *what,
                               int pairs)
{
    rule *ru = apr_pcalloc(cmd->pool, sizeof(*ru));
    const char *w;
    ru->words = apr_array_make(cmd->pool, 4, sizeof(const char *));
    ru->values = apr_array_make(cmd->pool, 4, sizeof(const char *));
    while (*line && *(w = ap_getword_conf(cmd->pool, &line))) {
        if (pairs) {
            const char *eq = strchr(w, '=');
            if (!eq || eq == w)
                return apr_psprintf(cmd->pool, "Require %s: '%s' is not NAME=VALUE", what, w);
            APR_ARRAY_PUSH(ru->words, const char *) = apr_pstrndup(cmd->pool, w, (apr_size_t)(eq - w));
            APR_ARRAY_PUSH(ru->values, const char *) = eq + 1;
        }
        else {
            APR_ARRAY_PUSH(ru->words, const char *) = w;
        }
    }
    if (!ru->words->nelts)
        return apr_psprintf(cmd->pool, "Require %s needs at least one %s", what, pairs ? "NAME=VALUE" : "value");
    *parsed = ru;
    return NULL;
}

static const char *parse_scope(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_words(cmd, line, parsed, "scaikey-scope", 0);
}

static const char *parse_role(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_words(cmd, line, parsed, "scaikey-role", 0);
}

static const char *parse_group(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_words(cmd, line, parsed, "scaikey-group", 0);
}

static const char *parse_tenant(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_words(cmd, line, parsed, "scaikey-tenant", 0);
}

static const char *parse_claim(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_words(cmd, line, parsed, "scaikey-claim", 1);
}

/* The caller, or NULL with the answer to give: no user yet (authenticate first) or a user that
 * another authentication module vouched for. */
static sk_identity *caller(request_rec *r, authz_status *answer)
{
    sk_guard_req *st = ap_get_module_config(r->request_config, &scaikey_module);
    if (!r->user) {
        *answer = AUTHZ_DENIED_NO_USER;
        return NULL;
    }
    if (!st || !st->who) {
        *answer = AUTHZ_DENIED;
        return NULL;
    }
    return st->who;
}

static void note_other(request_rec *r, const char *what, const rule *ru)
{
    sk_guard_req *st = sk_guard_req_get(r);
    const char *list = "";
    int i;
    for (i = 0; i < ru->words->nelts; i++)
        list = apr_pstrcat(r->pool, list, i ? " or " : "", WORD(ru->words, i), NULL);
    list = apr_pstrcat(r->pool, "requires ", what, " ", list, NULL);
    st->need_other = st->need_other ? apr_pstrcat(r->pool, st->need_other, "; ", list, NULL) : list;
}

static authz_status check_scope(request_rec *r, const char *line, const void *parsed)
{
    const rule *ru = parsed;
    authz_status answer;
    sk_identity *id = caller(r, &answer);
    sk_guard_req *st;
    int i, ok = 1;
    if (!id)
        return answer;
    for (i = 0; i < ru->words->nelts; i++)
        if (!sk_scope_has(id->scope, WORD(ru->words, i)))
            ok = 0;
    if (ok)
        return AUTHZ_GRANTED;
    st = sk_guard_req_get(r);
    for (i = 0; i < ru->words->nelts; i++)
        if (!sk_scope_has(st->need_scope, WORD(ru->words, i)))
            st->need_scope = st->need_scope ? apr_pstrcat(r->pool, st->need_scope, " ", WORD(ru->words, i), NULL)
                                            : WORD(ru->words, i);
    return AUTHZ_DENIED;
}

/* Rules met by any one of their words: granted when match(caller, word) holds for one. */
typedef int (*word_match)(const sk_identity *id, const char *word);

static authz_status any_word(request_rec *r, const void *parsed, const char *what, word_match match)
{
    const rule *ru = parsed;
    authz_status answer;
    sk_identity *id = caller(r, &answer);
    int i;
    if (!id)
        return answer;
    for (i = 0; i < ru->words->nelts; i++)
        if (match(id, WORD(ru->words, i)))
            return AUTHZ_GRANTED;
    note_other(r, what, ru);
    return AUTHZ_DENIED;
}

static int has_role(const sk_identity *id, const char *role)
{
    return sk_jarray_has(id->roles, role);
}

/* A member of the group (by id or name); the identity's groups include the nested ones. */
static int in_group(const sk_identity *id, const char *group)
{
    size_t j;
    json_t *g;
    json_array_foreach(id->groups, j, g) {
        const char *gid = json_string_value(json_array_get(g, 0));
        const char *name = json_string_value(json_array_get(g, 1));
        if ((gid && !strcmp(gid, group)) || (name && !strcmp(name, group)))
            return 1;
    }
    return 0;
}

static int of_tenant(const sk_identity *id, const char *t)
{
    return (id->tenant_id && !strcmp(id->tenant_id, t)) || (id->tenant_slug && !strcmp(id->tenant_slug, t));
}

static authz_status check_role(request_rec *r, const char *line, const void *parsed)
{
    return any_word(r, parsed, "role", has_role);
}

static authz_status check_group(request_rec *r, const char *line, const void *parsed)
{
    return any_word(r, parsed, "group", in_group);
}

static authz_status check_tenant(request_rec *r, const char *line, const void *parsed)
{
    return any_word(r, parsed, "tenant", of_tenant);
}

/* A claim value as text, for comparison: strings as they are, numbers and booleans as in JSON. */
static const char *text_of(apr_pool_t *p, json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        return apr_psprintf(p, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_true(v))
        return "true";
    if (json_is_false(v))
        return "false";
    return NULL;
}

static int claim_matches(apr_pool_t *p, json_t *v, const char *want)
{
    size_t i;
    json_t *e;
    const char *t;
    if (json_is_array(v)) {
        json_array_foreach(v, i, e)
            if ((t = text_of(p, e)) && !strcmp(t, want))
                return 1;
        return 0;
    }
    return (t = text_of(p, v)) && !strcmp(t, want);
}

static authz_status check_claim(request_rec *r, const char *line, const void *parsed)
{
    const rule *ru = parsed;
    authz_status answer;
    sk_identity *id = caller(r, &answer);
    json_t *claims;
    int i;
    if (!id)
        return answer;
    claims = sk_guard_claims(r, id);
    for (i = 0; i < ru->words->nelts; i++) {
        if (!claim_matches(r->pool, json_object_get(claims, WORD(ru->words, i)), WORD(ru->values, i))) {
            sk_guard_req *st = sk_guard_req_get(r);
            const char *what = apr_psprintf(r->pool, "requires claim %s=%s", WORD(ru->words, i),
                                            WORD(ru->values, i));
            st->need_other = st->need_other ? apr_pstrcat(r->pool, st->need_other, "; ", what, NULL) : what;
            return AUTHZ_DENIED;
        }
    }
    return AUTHZ_GRANTED;
}

static const authz_provider scope_provider = { check_scope, parse_scope };
static const authz_provider role_provider = { check_role, parse_role };
static const authz_provider group_provider = { check_group, parse_group };
static const authz_provider tenant_provider = { check_tenant, parse_tenant };
static const authz_provider claim_provider = { check_claim, parse_claim };

void sk_guard_authz_register(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "scaikey-scope", AUTHZ_PROVIDER_VERSION,
                              &scope_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "scaikey-role", AUTHZ_PROVIDER_VERSION,
                              &role_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "scaikey-group", AUTHZ_PROVIDER_VERSION,
                              &group_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "scaikey-tenant", AUTHZ_PROVIDER_VERSION,
                              &tenant_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "scaikey-claim", AUTHZ_PROVIDER_VERSION,
                              &claim_provider, AP_AUTH_INTERNAL_PER_CONF);
}
