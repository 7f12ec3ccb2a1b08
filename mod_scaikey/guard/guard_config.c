/* Per-directory configuration of the guard and its directives. Every setter checks its value so
 * that a mistake stops Apache at start-up. */
#include "guard/guard.h"
#include "guard/internal.h"
#include "scaikey.h"

#include <http_core.h>
#include <http_request.h>
#include <apr_strings.h>
#include <apr_lib.h>

void *sk_guard_dir_create(apr_pool_t *p, char *dir)
{
    sk_guard_dir *d = apr_pcalloc(p, sizeof(*d));
    d->mcp = -1;
    d->delay = -1;
    return d;
}

void *sk_guard_dir_merge(apr_pool_t *p, void *basev, void *addv)
{
    sk_guard_dir *base = basev, *add = addv, *m = apr_pcalloc(p, sizeof(*m));
    m->audiences = add->audiences ? add->audiences : base->audiences;
    m->user_claim = add->user_claim ? add->user_claim : base->user_claim;
    m->resource_metadata = add->resource_metadata ? add->resource_metadata : base->resource_metadata;
    m->resource = add->resource ? add->resource : base->resource;
    m->scopes_supported = add->scopes_supported ? add->scopes_supported : base->scopes_supported;
    m->mcp = add->mcp != -1 ? add->mcp : base->mcp;
    m->delay = add->delay != -1 ? add->delay : base->delay;
    if (add->login_client) {
        m->login_client = add->login_client;
        m->login_slug = add->login_slug;
        m->login_callback = add->login_callback;
    }
    else {
        m->login_client = base->login_client;
        m->login_slug = base->login_slug;
        m->login_callback = base->login_callback;
    }
    return m;
}

sk_guard_dir *sk_guard_dir_get(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &scaikey_module);
}

int sk_guard_delay(const sk_guard_dir *d)
{
    return (!d || d->delay < 0) ? SK_GUARD_DEFAULT_DELAY : d->delay;
}

int sk_guard_active(request_rec *r)
{
    const char *type = ap_auth_type(r);
    return type && !strcasecmp(type, SK_GUARD_AUTH_TYPE);
}

/* ---- setters ---- */

static int absolute_url(const char *s)
{
    const char *host;
    if (strncmp(s, "https://", 8) && strncmp(s, "http://", 7))
        return 0;
    host = strstr(s, "://") + 3;
    return *host && *host != '/' && !strpbrk(s, " \"\\#");
}

/* A value that goes into a quoted-string of a header: printable, no quotes or backslashes. */
static int header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

const char *sk_guard_set_cache(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    return err ? err : sk_guard_cache_configure(cmd, arg);
}

const char *sk_guard_set_process_cache(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    return err ? err : sk_guard_local_configure(cmd, arg);
}

const char *sk_guard_set_delay(cmd_parms *cmd, void *dc, const char *arg)
{
    sk_guard_dir *d = dc;
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || v < 0 || v > 3600)
        return apr_psprintf(cmd->pool, "ScaiKeyRevocationDelay: '%s' is not a whole number of seconds "
                                       "from 0 to 3600", arg);
    d->delay = (int)v;
    return NULL;
}

const char *sk_guard_set_audience(cmd_parms *cmd, void *dc, const char *arg)
{
    sk_guard_dir *d = dc;
    if (!*arg || !header_safe(arg))
        return apr_psprintf(cmd->pool, "ScaiKeyAudience: '%s' is not a usable audience "
                                       "(no spaces, quotes or backslashes)", arg);
    if (!d->audiences)
        d->audiences = apr_array_make(cmd->pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(d->audiences, const char *) = arg;
    return NULL;
}

const char *sk_guard_set_user_claim(cmd_parms *cmd, void *dc, const char *arg)
{
    sk_guard_dir *d = dc;
    if (!*arg || !header_safe(arg) || strlen(arg) > 100)
        return apr_psprintf(cmd->pool, "ScaiKeyUserClaim: '%s' is not a claim name", arg);
    d->user_claim = arg;
    return NULL;
}

const char *sk_guard_set_resource_metadata(cmd_parms *cmd, void *dc, const char *arg)
{
    sk_guard_dir *d = dc;
    if (!header_safe(arg) || (arg[0] != '/' && !absolute_url(arg)))
        return "ScaiKeyResourceMetadata must be an absolute http(s) URL or a path starting with /, "
               "e.g. /.well-known/oauth-protected-resource/app";
    d->resource_metadata = arg;
    return NULL;
}

const char *sk_guard_set_resource(cmd_parms *cmd, void *dc, const char *arg)
{
    sk_guard_dir *d = dc;
    if (!absolute_url(arg))
        return "ScaiKeyResource must be an absolute http(s) URL, e.g. https://api.example.com/app";
    d->resource = arg;
    return NULL;
}

const char *sk_guard_set_scopes_supported(cmd_parms *cmd, void *dc, const char *arg)
{
    sk_guard_dir *d = dc;
    if (!*arg || !header_safe(arg))
        return apr_psprintf(cmd->pool, "ScaiKeyScopesSupported: '%s' is not a scope", arg);
    if (!d->scopes_supported)
        d->scopes_supported = apr_array_make(cmd->pool, 4, sizeof(const char *));
    APR_ARRAY_PUSH(d->scopes_supported, const char *) = arg;
    return NULL;
}

const char *sk_guard_set_mcp(cmd_parms *cmd, void *dc, int on)
{
    ((sk_guard_dir *)dc)->mcp = on ? 1 : 0;
    return NULL;
}
